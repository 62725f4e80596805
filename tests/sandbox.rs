//! A scratch directory plus the `signet` binary and the upstream peers, for end-to-end tests in the
//! style of ripgrep's integration suite: write files, run a program, compare what it printed.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    // At run time cargo sets CARGO_MANIFEST_DIR to this checkout; the compile-time value may name
    // another clone that shared the target directory.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The project's shared material (`shared/`, laid beside the clone): `$SIGNET_SHARED`, else
/// `../shared` next to the workspace, else the session machine's `/work/shared`.
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SIGNET_SHARED") {
        return PathBuf::from(dir);
    }
    let beside = workspace_root().join("../shared");
    if beside.is_dir() {
        return beside;
    }
    PathBuf::from("/work/shared")
}

/// The public sops test vectors in [`shared_dir`].
pub fn sops_vectors() -> PathBuf {
    shared_dir().join("vectors/sops")
}

/// A binary of this workspace, `cargo build`-ed (all of its package's binaries) once per test
/// process and package, so it is never missing or stale.
pub fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", package, "--bins"])
            .current_dir(workspace_root())
            .status()
            .unwrap_or_else(|e| panic!("running cargo build -p {package}: {e}"));
        assert!(status.success(), "cargo build -p {package} failed");
        built.push(package.to_owned());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("debug").join(bin);
    assert!(path.is_file(), "no {bin} binary at {}", path.display());
    path
}

/// The `signet` binary of this workspace.
pub fn signet_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_bin("signet", "signet"))
}

/// An upstream program (`sops`, `kubeseal`, `age`, …); panics with the install hint when missing.
pub fn peer(name: &str) -> PathBuf {
    signet_testkit::peer_path(name).unwrap_or_else(|e| panic!("{e}"))
}

/// A temporary directory with helpers to write files and run programs in it.
pub struct Sandbox {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A fresh empty sandbox. The environment seen by programs is cleared of sops/age/PGP settings
    /// (`SOPS_*`, `SIGNET_PGP_*`), with `HOME`, `XDG_CONFIG_HOME` and `GNUPGHOME` pointing inside
    /// the sandbox, so the host's keys never leak into a test.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let gnupg = dir.path().join("gnupg");
        std::fs::create_dir_all(&gnupg).expect("GNUPGHOME");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700))
                .expect("GNUPGHOME mode");
        }
        let env = vec![
            ("HOME".to_owned(), home.display().to_string()),
            ("GNUPGHOME".to_owned(), gnupg.display().to_string()),
            (
                "XDG_CONFIG_HOME".to_owned(),
                home.join(".config").display().to_string(),
            ),
            ("SOPS_DISABLE_VERSION_CHECK".to_owned(), "1".to_owned()),
        ];
        Sandbox { dir, env }
    }

    /// The sandbox directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `name` inside the sandbox.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Sets an environment variable for every program run from here on.
    pub fn env(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((
            key.to_owned(),
            value.as_ref().to_string_lossy().into_owned(),
        ));
        self
    }

    /// Writes a file (parents created) and returns its path.
    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent dir");
        }
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// Reads a file of the sandbox.
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    /// A command for `program` running in the sandbox with the sandbox environment.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("SOPS_") || k.starts_with("AGE_") || k.starts_with("SIGNET_PGP_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `signet ARGS`.
    pub fn signet<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(signet_bin());
        cmd.args(args);
        Run::of(cmd)
    }

    /// Runs `signet ARGS` with `stdin` as standard input.
    pub fn signet_stdin<I, S>(&self, args: I, stdin: &[u8]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(signet_bin());
        cmd.args(args);
        Run::with_stdin(cmd, stdin)
    }

    /// A new PGP key in the sandbox's `GNUPGHOME`, made by `gpg` with no passphrase: `kind` is
    /// `"rsa"` (RSA-2048 primary and encryption subkey) or `"ecc"` (ed25519 and cv25519). Returns
    /// its fingerprint.
    pub fn gpg_key(&self, name: &str, kind: &str) -> String {
        let uid = format!("{name} <{name}@example.invalid>");
        let algo = if kind == "rsa" {
            "rsa2048"
        } else {
            "future-default"
        };
        self.peer(
            "gpg",
            [
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                &uid,
                algo,
                "default",
                "never",
            ],
        )
        .ok();
        let listing = String::from_utf8(
            self.peer("gpg", ["--with-colons", "--list-keys", &uid])
                .ok(),
        )
        .expect("gpg listing");
        let fp = listing
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_owned())
            })
            .expect("a fingerprint");
        if kind == "rsa" {
            self.peer(
                "gpg",
                [
                    "--batch",
                    "--passphrase",
                    "",
                    "--quick-add-key",
                    &fp,
                    "rsa2048",
                    "encr",
                    "never",
                ],
            )
            .ok();
        }
        fp
    }

    /// The armored secret key `fp` of the sandbox's `GNUPGHOME`.
    pub fn gpg_export_secret(&self, fp: &str) -> Vec<u8> {
        self.peer("gpg", ["--batch", "--armor", "--export-secret-keys", fp])
            .ok()
    }

    /// Runs the upstream `program` (found with [`peer`]) with `args`.
    pub fn peer<I, S>(&self, program: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(peer(program));
        cmd.args(args);
        Run::of(cmd)
    }
}

impl Drop for Sandbox {
    /// Stops the gpg-agent a test's gpg started in the sandbox's `GNUPGHOME`, if any.
    fn drop(&mut self) {
        let gnupg = self.join("gnupg");
        if gnupg.join("S.gpg-agent").exists() {
            let _ = Command::new("gpgconf")
                .arg("--homedir")
                .arg(&gnupg)
                .args(["--kill", "all"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// What a finished program did.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub cmdline: String,
    /// Its output.
    pub output: Output,
}

impl Run {
    /// Runs a prepared command (e.g. from [`Sandbox::command`]) to the end, stdin empty.
    pub fn of(cmd: Command) -> Self {
        Self::with_stdin(cmd, b"")
    }

    /// Runs a prepared command to the end with `stdin` as its standard input.
    pub fn with_stdin(mut cmd: Command, stdin: &[u8]) -> Self {
        use std::io::Write;
        let cmdline = format!("{cmd:?}");
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmdline}: {e}"));
        let mut pipe = child.stdin.take().expect("stdin");
        let input = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        let output = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait {cmdline}: {e}"));
        let _ = writer.join();
        Run { cmdline, output }
    }

    /// Exit code (`-1` when killed by a signal).
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    /// stdout as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts success and returns stdout bytes.
    #[track_caller]
    pub fn ok(&self) -> Vec<u8> {
        assert!(
            self.output.status.success(),
            "{} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
            self.cmdline,
            self.output.status,
            self.stdout(),
            self.stderr()
        );
        self.output.stdout.clone()
    }

    /// Asserts the exit code and returns stderr.
    #[track_caller]
    pub fn fails_with(&self, code: i32) -> String {
        assert_eq!(
            self.code(),
            code,
            "{}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.cmdline,
            self.stdout(),
            self.stderr()
        );
        self.stderr()
    }
}
