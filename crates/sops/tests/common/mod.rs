//! Helpers shared by the signet-sops integration tests: where the shared vectors and corpus live,
//! where upstream sops is, and running sops, Go `age` and `age-keygen`.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use signet_sops::DataKey;

/// The flux test age identity among the sops vectors, relative to [`vectors_dir`].
pub const FLUX_AGE_KEY: &str =
    "fluxcd-kustomize-controller/internal/controller/testdata/sops/keys/age.txt";
/// The recipient of [`FLUX_AGE_KEY`].
pub const FLUX_AGE_RECIPIENT: &str =
    "age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29";

/// The `shared/` folder: `$SIGNET_SHARED` if set, else `shared/` beside the repository clone
/// (found from the run-time `CARGO_MANIFEST_DIR`, or the compile-time one), else the session
/// machine's `/work/shared`.
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SIGNET_SHARED") {
        return dir.into();
    }
    let manifest_dir: PathBuf = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    // crates/sops -> the clone's root -> the folder holding the clone.
    let beside_clone = manifest_dir.join("../../../shared");
    if beside_clone.is_dir() {
        return beside_clone;
    }
    "/work/shared".into()
}

/// The public sops vectors, `<shared>/vectors/sops`.
pub fn vectors_dir() -> PathBuf {
    shared_dir().join("vectors/sops")
}

/// A file under the sops vectors, `rel` relative to [`vectors_dir`].
pub fn vector(rel: &str) -> PathBuf {
    vectors_dir().join(rel)
}

/// The YAML corpus: `$SIGNET_YAML_CORPUS` if set, else `<shared>/corpus/yaml`.
pub fn corpus_dir() -> PathBuf {
    std::env::var_os("SIGNET_YAML_CORPUS")
        .map(Into::into)
        .unwrap_or_else(|| shared_dir().join("corpus/yaml"))
}

/// Upstream sops: `$SIGNET_SOPS` if set, else `$SIGNET_PEER_BIN/sops`, else the bootstrap's cache.
pub fn sops_bin() -> PathBuf {
    // Where `signet_testkit::peer_path` looks first: SIGNET_PEER_BIN, then the bootstrap's cache.
    let p: PathBuf = std::env::var_os("SIGNET_SOPS")
        .map(Into::into)
        .or_else(|| {
            std::env::var_os("SIGNET_PEER_BIN")
                .filter(|d| !d.is_empty())
                .map(|d| PathBuf::from(d).join("sops"))
                .filter(|p| p.exists())
        })
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/signet/bin/sops")
        });
    assert!(
        p.exists(),
        "upstream sops not found at {} (run scripts/bootstrap)",
        p.display()
    );
    p
}

/// An upstream sops command with the version check off and `SOPS_AGE_KEY_FILE` set to
/// `age_key_file`.
pub fn sops_command(age_key_file: &Path) -> Command {
    let mut cmd = Command::new(sops_bin());
    cmd.env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("SOPS_AGE_KEY_FILE", age_key_file);
    cmd
}

/// Runs `cmd` and returns its stdout; panics with its stderr if it fails.
pub fn stdout_of(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `cmd` with `input` on its stdin and returns its stdout; panics with its stderr if it fails.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Unwraps an age-encrypted data key with Go `age -d -i identity_file`.
pub fn age_unwrap(identity_file: &Path, encrypted: &str) -> DataKey {
    let out = run_with_stdin(
        Command::new("age").arg("-d").arg("-i").arg(identity_file),
        encrypted.as_bytes(),
    );
    DataKey::from_slice(&out).expect("32-byte data key")
}

/// Writes a fresh age identity to `path` with Go `age-keygen` (replacing any file there) and
/// returns its recipient.
pub fn age_keygen(path: &Path) -> String {
    let _ = std::fs::remove_file(path);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(path)
        .output()
        .expect("age-keygen (Debian package `age`) must be installed");
    assert!(out.status.success(), "age-keygen failed");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_owned()
}
