//! Helpers for the sealing suites: the `signet` binary, the kubeseal peer, fixture keys, and a
//! scratch directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An upstream peer (`kubeseal`, …), found like every suite finds it; a missing peer fails the
/// test with the install hint.
pub fn peer(name: &str) -> PathBuf {
    signet_tests::sandbox::peer(name)
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    signet_tests::sandbox::workspace_root()
}

/// The `signet` binary of this workspace.
pub fn signet() -> &'static Path {
    signet_tests::sandbox::signet_bin()
}

/// A fixture of `tests/fixtures/seal/`.
pub fn fixture(rel: &str) -> PathBuf {
    workspace().join("tests/fixtures/seal").join(rel)
}

/// A scratch directory.
pub struct Scratch {
    dir: tempfile::TempDir,
}

/// What a program did.
pub struct Ran {
    /// Exit code (None if killed).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error, as text.
    pub stderr: String,
}

impl Ran {
    /// Panics unless the program succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "failed: {}", self.stderr);
        self
    }

    /// Stdout as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        Ran {
            code: o.status.code(),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Scratch {
    /// A fresh directory.
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A path inside.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file and returns its path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Runs `program args` in the directory with `stdin`.
    pub fn run(&self, program: &Path, args: &[&str], stdin: &[u8]) -> Ran {
        use std::io::Write;
        let mut child = Command::new(program)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("SEALED_SECRETS_CERT")
            .env("KUBECONFIG", self.path("no-kubeconfig"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
        let mut input = child.stdin.take().unwrap();
        let stdin = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out.into()
    }

    /// Runs `signet`.
    pub fn signet(&self, args: &[&str], stdin: &[u8]) -> Ran {
        self.run(signet(), args, stdin)
    }

    /// Runs kubeseal.
    pub fn kubeseal(&self, args: &[&str], stdin: &[u8]) -> Ran {
        self.run(&peer("kubeseal"), args, stdin)
    }

    /// Names of the files in the directory.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// Standard base64.
pub fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
