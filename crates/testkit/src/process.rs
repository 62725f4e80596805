//! A peer process: spawned with a piped stdin (closing it stops the peer), its output drained into
//! a bounded in-memory tail for error messages, stopped on drop.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::Error;

/// How many bytes of a peer's output are kept for error messages.
const TAIL_BYTES: usize = 16 * 1024;

/// The last [`TAIL_BYTES`] of a peer's stdout and stderr.
#[derive(Clone, Default)]
pub(crate) struct LogTail(Arc<Mutex<VecDeque<u8>>>);

impl LogTail {
    fn push(&self, bytes: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend(bytes);
        let excess = buf.len().saturating_sub(TAIL_BYTES);
        buf.drain(..excess);
    }

    pub(crate) fn text(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = buf.as_slices();
        let mut bytes = a.to_vec();
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn drain<R: Read + Send + 'static>(&self, reader: R) {
        let tail = self.clone();
        std::thread::spawn(move || {
            let mut reader = reader;
            let mut chunk = [0u8; 4096];
            while let Ok(n) = reader.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                tail.push(&chunk[..n]);
            }
        });
    }
}

/// A running peer. Dropping it closes its stdin, waits for it to exit (it shuts down cleanly on
/// EOF), and kills it if it has not exited after a grace period.
pub(crate) struct PeerProcess {
    pub(crate) peer: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    pub(crate) log: LogTail,
    stdout_lines: Option<mpsc::Receiver<String>>,
}

/// The shell wrapper for peers that do not watch their stdin themselves: it runs the peer in the
/// background and stops it once its own stdin (our pipe) reaches EOF or it is told to stop.
const STDIN_WATCHDOG: &str = r#"
exec 3<&0
"$@" </dev/null &
peer=$!
trap 'kill $peer 2>/dev/null; wait $peer; exit 0' TERM INT
(cat <&3 >/dev/null; kill $peer 2>/dev/null) &
watcher=$!
exec 3<&-
wait $peer
status=$?
kill $watcher 2>/dev/null
exit $status
"#;

impl PeerProcess {
    /// Spawns `program args…` directly, with `envs` added to its environment; the program itself
    /// must exit when stdin closes. Its stdout lines are available through
    /// [`PeerProcess::wait_for_line`].
    pub(crate) fn spawn_watching_stdin(
        peer: &'static str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &Path)],
    ) -> Result<Self, Error> {
        let mut cmd = Command::new(program);
        cmd.args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Self::spawn(peer, program, cmd, true)
    }

    /// Spawns `program args…` under a `sh` watchdog that stops it when our end of its stdin
    /// closes (including when this process dies).
    pub(crate) fn spawn_with_watchdog(
        peer: &'static str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
    ) -> Result<Self, Error> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(STDIN_WATCHDOG)
            .arg("signet-peer")
            .arg(program)
            .args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Self::spawn(peer, program, cmd, false)
    }

    fn spawn(
        peer: &'static str,
        program: &Path,
        mut cmd: Command,
        lines: bool,
    ) -> Result<Self, Error> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            peer,
            program: program.to_owned(),
            source,
        })?;
        let log = LogTail::default();
        let stdin = child.stdin.take();
        if let Some(stderr) = child.stderr.take() {
            log.drain(stderr);
        }
        let mut stdout_lines = None;
        if let Some(stdout) = child.stdout.take() {
            if lines {
                let (tx, rx) = mpsc::channel();
                let tail = log.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        tail.push(line.as_bytes());
                        tail.push(b"\n");
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                });
                stdout_lines = Some(rx);
            } else {
                log.drain(stdout);
            }
        }
        Ok(Self {
            peer,
            child,
            stdin,
            log,
            stdout_lines,
        })
    }

    /// Waits until a stdout line satisfies `accept` and returns what it maps to.
    pub(crate) fn wait_for_line<T>(
        &mut self,
        timeout: Duration,
        mut accept: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(rx) = &self.stdout_lines else {
                return Err(self.not_ready(timeout));
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(value) = accept(&line) {
                        return Ok(value);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.check_running()?;
                    if Instant::now() >= deadline {
                        return Err(self.not_ready(timeout));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process is exiting; report its status.
                    std::thread::sleep(Duration::from_millis(200));
                    self.check_running()?;
                    return Err(self.not_ready(timeout));
                }
            }
        }
    }

    /// Polls `probe` until it returns true, failing early if the process exits.
    pub(crate) fn wait_until(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut() -> bool,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if probe() {
                return Ok(());
            }
            self.check_running()?;
            if Instant::now() >= deadline {
                return Err(self.not_ready(timeout));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn check_running(&mut self) -> Result<(), Error> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => {
                // Let the drain threads catch the last words.
                std::thread::sleep(Duration::from_millis(100));
                Err(Error::ExitedEarly {
                    peer: self.peer,
                    status: status.to_string(),
                    log: self.log.text(),
                })
            }
        }
    }

    fn not_ready(&self, timeout: Duration) -> Error {
        Error::NotReady {
            peer: self.peer,
            seconds: timeout.as_secs(),
            log: self.log.text(),
        }
    }

    /// Stops the peer: closes its stdin, waits up to `grace`, then kills it.
    pub(crate) fn stop(&mut self, grace: Duration) {
        drop(self.stdin.take());
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(20));
    }
}

/// A started peer kept behind a lock so that a `&'static` shared instance can still hand out its
/// log; stopped when dropped.
pub(crate) struct RunningPeer(Mutex<PeerProcess>);

impl RunningPeer {
    /// Wraps a started process.
    pub(crate) fn new(process: PeerProcess) -> Self {
        Self(Mutex::new(process))
    }

    /// The peer's recent output (stdout and stderr).
    pub(crate) fn log_tail(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).log.text()
    }

    /// Kills the peer at once (a crash, for fault tests).
    pub(crate) fn kill(&self) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop(Duration::ZERO);
    }

    /// Puts a new process in place of the stopped one.
    pub(crate) fn replace(&self, process: PeerProcess) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = process;
    }
}

/// Starts `program` on a given loopback port (a restart where the peer was) and waits until
/// `ready(port)` holds.
pub(crate) fn spawn_on_port(
    peer: &'static str,
    program: &Path,
    timeout: Duration,
    port: u16,
    args: &[String],
    ready: impl Fn(u16) -> bool,
) -> Result<PeerProcess, Error> {
    let mut process = PeerProcess::spawn_with_watchdog(peer, program, args, &[])?;
    process.wait_until(timeout, || ready(port))?;
    Ok(process)
}

/// The instance in `cell`, started with `start` on first use and kept for the rest of the process.
/// A failed start is remembered, and every later call reports it as [`Error::SharedFailed`].
pub(crate) fn shared_instance<T>(
    cell: &'static OnceLock<Result<T, String>>,
    peer: &'static str,
    start: impl FnOnce() -> Result<T, Error>,
) -> Result<&'static T, Error> {
    cell.get_or_init(|| start().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|message| Error::SharedFailed {
            peer,
            message: message.clone(),
        })
}

/// Starts `program` under the stdin watchdog on a freshly picked loopback port and waits until
/// `ready(port)` holds. A port picked free can be taken before the peer binds it, so a peer that
/// exits early is retried on a new port (three attempts in all).
pub(crate) fn spawn_on_free_port(
    peer: &'static str,
    program: &Path,
    timeout: Duration,
    args_for_port: impl Fn(u16) -> Vec<String>,
    ready: impl Fn(u16) -> bool,
) -> Result<(u16, PeerProcess), Error> {
    let mut last_error = None;
    for _ in 0..3 {
        let port = crate::free_port()?;
        let mut process =
            PeerProcess::spawn_with_watchdog(peer, program, &args_for_port(port), &[])?;
        match process.wait_until(timeout, || ready(port)) {
            Ok(()) => return Ok((port, process)),
            Err(e @ Error::ExitedEarly { .. }) => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.expect("three attempts were made"))
}

/// Sends `GET path` over plain HTTP/1.0 to 127.0.0.1:`port` and returns the status code, if any
/// HTTP answer came back.
pub(crate) fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::Write;
    use std::net::TcpStream;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).ok()?;
    status_line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> std::path::PathBuf {
        crate::peer_path("sh").expect("sh on PATH")
    }

    fn alive(pid: u32) -> bool {
        // A zombie is as good as dead: it only waits for its parent to reap it.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    #[test]
    fn dropping_a_watchdog_peer_stops_the_peer_itself() {
        let args = ["-c".to_owned(), "echo pid=$$; exec sleep 300".to_owned()];
        let mut peer = PeerProcess::spawn_with_watchdog("sleeper", &sh(), &args, &[]).unwrap();
        let log = peer.log.clone();
        peer.wait_until(Duration::from_secs(10), || log.text().contains("pid="))
            .unwrap();
        let pid: u32 = log
            .text()
            .split("pid=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .expect("pid printed");
        assert!(alive(pid), "the peer runs while we hold it");
        drop(peer);
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) {
            assert!(Instant::now() < deadline, "peer {pid} outlived its handle");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_peer_that_exits_early_is_reported_with_its_output() {
        let args = ["-c".to_owned(), "echo cannot bind >&2; exit 3".to_owned()];
        let mut peer = PeerProcess::spawn_watching_stdin("doomed", &sh(), &args, &[]).unwrap();
        let err = peer
            .wait_for_line(Duration::from_secs(10), |l| {
                l.strip_prefix("ready ").map(str::to_owned)
            })
            .unwrap_err();
        match err {
            Error::ExitedEarly { peer, status, log } => {
                assert_eq!(peer, "doomed");
                assert!(status.contains('3'), "{status}");
                assert!(log.contains("cannot bind"), "{log}");
            }
            other => panic!("expected ExitedEarly, got {other}"),
        }
    }

    #[test]
    fn a_failed_shared_start_is_remembered_and_not_retried() {
        static CELL: OnceLock<Result<u32, String>> = OnceLock::new();
        let first = shared_instance(&CELL, "flaky", || {
            Err(Error::Io(std::io::Error::other("port in use")))
        })
        .unwrap_err();
        let second = shared_instance(&CELL, "flaky", || -> Result<u32, Error> {
            panic!("a remembered failure must not start the peer again")
        })
        .unwrap_err();
        for err in [first, second] {
            match err {
                Error::SharedFailed { peer, message } => {
                    assert_eq!(peer, "flaky");
                    assert!(message.contains("port in use"), "{message}");
                }
                other => panic!("expected SharedFailed, got {other}"),
            }
        }
    }

    #[test]
    fn a_shared_instance_is_started_once() {
        static CELL: OnceLock<Result<u32, String>> = OnceLock::new();
        let a = shared_instance(&CELL, "once", || Ok(7)).unwrap();
        let b = shared_instance(&CELL, "once", || Ok(8)).unwrap();
        assert_eq!((*a, *b), (7, 7));
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn a_peer_that_keeps_exiting_is_tried_on_three_ports() {
        let ports = Mutex::new(Vec::new());
        let err = spawn_on_free_port(
            "doomed",
            &sh(),
            Duration::from_secs(10),
            |port| {
                ports.lock().unwrap().push(port);
                vec![
                    "-c".to_owned(),
                    format!("echo cannot bind {port} >&2; exit 4"),
                ]
            },
            |_| false,
        )
        .err()
        .expect("a peer that always exits must not be returned");
        let ports = ports.into_inner().unwrap();
        assert_eq!(ports.len(), 3, "{ports:?}");
        match err {
            Error::ExitedEarly { peer, log, .. } => {
                assert_eq!(peer, "doomed");
                assert!(log.contains(&format!("cannot bind {}", ports[2])), "{log}");
            }
            other => panic!("expected ExitedEarly, got {other}"),
        }
    }

    #[test]
    fn a_ready_peer_is_returned_with_its_port() {
        let (port, mut process) = spawn_on_free_port(
            "listener",
            &sh(),
            Duration::from_secs(10),
            |port| {
                vec![
                    "-c".to_owned(),
                    format!("echo serving {port}; exec sleep 300"),
                ]
            },
            |_| true,
        )
        .unwrap();
        let log = process.log.clone();
        process
            .wait_until(Duration::from_secs(10), || {
                log.text().contains(&format!("serving {port}"))
            })
            .unwrap();
        // The watchdog stops `sleep` when we close its stdin: well before the kill deadline.
        let started = Instant::now();
        process.stop(Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_ready_line_is_found_among_other_output() {
        let args = [
            "-c".to_owned(),
            "echo starting; echo ready /x/y; cat >/dev/null".to_owned(),
        ];
        let mut peer = PeerProcess::spawn_watching_stdin("talker", &sh(), &args, &[]).unwrap();
        let path = peer
            .wait_for_line(Duration::from_secs(10), |l| {
                l.strip_prefix("ready ").map(str::to_owned)
            })
            .unwrap();
        assert_eq!(path, "/x/y");
        // `cat` exits when we close its stdin: stop() returns well before the kill deadline.
        let started = Instant::now();
        peer.stop(Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
