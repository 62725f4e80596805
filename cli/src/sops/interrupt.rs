//! Termination signals while plaintext sits in a scratch directory (`edit`'s buffer, `exec-file
//! --no-fifo`'s file).
//!
//! By default SIGTERM (`kill`, a service manager), SIGHUP (a closed terminal or SSH session), SIGINT and
//! SIGQUIT end the process at once, and the scratch directory's `Drop` never runs. From the moment a
//! [`SignalGuard`] is installed these signals are only recorded; the code holding the scratch directory
//! calls [`SignalGuard::check`] after every step, and on a signal returns an error, so the directory
//! is removed on the way out, the original file is left untouched, and the exit code is 128 + the
//! signal number, as a shell reports a process killed by that signal.
//!
//! The child running meanwhile (the editor, the command) is handled as git handles its editor, plus
//! forwarding: SIGINT and SIGQUIT come from the terminal, which delivers them to the whole foreground
//! process group, so the child already has them and they are not passed on. SIGTERM and SIGHUP may
//! have been sent to Signet alone (`kill PID`), so they are forwarded to the child. Either way Signet
//! waits for the child to exit before removing the directory: the child may still write plaintext
//! into it (vim saves its swap file next to the buffer when it gets SIGHUP), and removing the
//! directory only after the last writer is gone is what leaves nothing behind. (sops handles no
//! signal: a SIGTERM during `sops edit` leaves its plaintext temp file.)
//!
//! The handlers are tokio's (safe code; this crate forbids `unsafe`), and like every tokio handler they
//! stay installed until the process exits: a signal arriving after the session (while the re-encrypted
//! file is renamed into place) no longer ends the process, and that last step completes.

use crate::exit::CliError;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::Poll;
use tokio::signal::unix::{Signal, SignalKind, signal};

const CAUGHT: [SignalKind; 4] = [
    SignalKind::interrupt(),
    SignalKind::quit(),
    SignalKind::terminate(),
    SignalKind::hangup(),
];

/// Records SIGINT, SIGQUIT, SIGTERM and SIGHUP instead of dying of them.
pub struct SignalGuard {
    runtime: tokio::runtime::Runtime,
    streams: RefCell<Vec<(SignalKind, Signal)>>,
    received: Cell<Option<SignalKind>>,
}

impl SignalGuard {
    /// Installs the handlers.
    pub fn install() -> Result<Self, CliError> {
        let fail = |e: std::io::Error| {
            CliError::new(
                crate::exit::code::ERROR_GENERIC,
                format!("cannot install signal handlers: {e}"),
            )
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(fail)?;
        let streams = {
            let _context = runtime.enter();
            CAUGHT
                .iter()
                .map(|&kind| signal(kind).map(|s| (kind, s)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?
        };
        Ok(SignalGuard {
            runtime,
            streams: RefCell::new(streams),
            received: Cell::new(None),
        })
    }

    /// `Err` (exit 128 + signal) once a signal has arrived: the caller stops and cleans up.
    pub fn check(&self) -> Result<(), CliError> {
        {
            let mut streams = self.streams.borrow_mut();
            self.runtime.block_on(async {
                // Long enough for the runtime to look at its signal pipe once.
                let tick = tokio::time::sleep(std::time::Duration::from_millis(1));
                tokio::pin!(tick);
                loop {
                    tokio::select! {
                        biased;
                        kind = next(&mut streams) => self.record(kind),
                        () = &mut tick => break,
                    }
                }
            });
        }
        match self.received.get() {
            Some(kind) => Err(interrupted(kind)),
            None => Ok(()),
        }
    }

    /// Spawns `command` (its signal dispositions reset to the defaults) and waits for it, forwarding
    /// SIGTERM and SIGHUP to it, also one that arrived before it started. `Err` when it could not be
    /// started or waited for.
    pub fn run(&self, command: std::process::Command) -> std::io::Result<std::process::ExitStatus> {
        let mut child = {
            let _context = self.runtime.enter();
            tokio::process::Command::from(command).spawn()?
        };
        let pid = child.id();
        if let Some(kind) = self.received.get() {
            forward(pid, kind);
        }
        let mut streams = self.streams.borrow_mut();
        self.runtime.block_on(async {
            loop {
                tokio::select! {
                    status = child.wait() => return status,
                    kind = next(&mut streams) => {
                        self.record(kind);
                        forward(pid, kind);
                    }
                }
            }
        })
    }

    /// Runs `blocking` (a read from the terminal) on its own thread; `None` when a signal arrives
    /// first (the thread is left behind, blocked, and ends with the process).
    pub fn unless_interrupted<T: Send + 'static>(
        &self,
        blocking: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(blocking());
        });
        let mut streams = self.streams.borrow_mut();
        self.runtime.block_on(async {
            tokio::select! {
                value = rx => value.ok(),
                kind = next(&mut streams) => {
                    self.record(kind);
                    None
                }
            }
        })
    }

    fn record(&self, kind: SignalKind) {
        if self.received.get().is_none() {
            self.received.set(Some(kind));
        }
    }
}

/// The next signal delivered on any of `streams`.
fn next(streams: &mut [(SignalKind, Signal)]) -> impl Future<Output = SignalKind> + '_ {
    std::future::poll_fn(move |cx| {
        for (kind, stream) in streams.iter_mut() {
            if stream.poll_recv(cx).is_ready() {
                return Poll::Ready(*kind);
            }
        }
        Poll::Pending
    })
}

/// Passes SIGTERM and SIGHUP on to the child (the terminal already sent it SIGINT and SIGQUIT).
fn forward(pid: Option<u32>, kind: SignalKind) {
    let forwarded = [SignalKind::terminate(), SignalKind::hangup()];
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok())
        && forwarded.contains(&kind)
        && let Ok(signal) = nix::sys::signal::Signal::try_from(kind.as_raw_value())
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// The error for a command ended by a signal.
fn interrupted(kind: SignalKind) -> CliError {
    let raw = kind.as_raw_value();
    let name = nix::sys::signal::Signal::try_from(raw).map_or("a signal", |s| s.as_str());
    CliError::new(
        128u8.saturating_add(u8::try_from(raw).unwrap_or(0)),
        format!(
            "interrupted by {name}: nothing was written and the plaintext scratch copy was removed"
        ),
    )
}
