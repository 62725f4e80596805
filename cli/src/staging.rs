//! Where atomic writes stage their bytes before the rename: a `.signet-tmp/` directory next to the
//! target, holding a `.gitignore` of `*`.
//!
//! A writer killed between creating its temp file and renaming it (SIGKILL, OOM, power loss) leaves
//! the temp file behind, possibly with plaintext (`decrypt -i`). Staged here, it is ignored by
//! `git add .` (and by every tool that honours `.gitignore`) from the moment it exists, and the next
//! write into the same directory removes it: temp files are named `<pid>-<random>.tmp`, and one
//! whose pid no longer runs is stale. When nothing is left, the directory itself goes.
//!
//! A temp file of a live writer is never removed by another writer in the same pid namespace. A
//! writer in another pid namespace sharing the directory may see a live writer's pid as dead; the
//! worst that does is make that writer's rename fail with an error, the target unchanged.
//!
//! The directory is only used when it is a real directory owned by the current user: a planted
//! `.signet-tmp` (a symlink in a hostile repository, another user's directory in a shared one)
//! could otherwise redirect the temp file or swap it before the rename. Otherwise the temp file is
//! staged in the target's own directory, as `.signet-<pid>-<random>.tmp`.

use std::io;
use std::path::{Path, PathBuf};

/// The staging directory's name.
pub const DIR_NAME: &str = ".signet-tmp";
const IGNORE_FILE: &str = ".gitignore";
/// Enough for any real directory; bounds the work a directory full of junk can cause.
const MAX_SWEPT: usize = 10_000;

/// Creates a 0600 temp file for a write into `dir`, in the staging directory when it can be used.
pub fn temp_file(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    fn builder(prefix: &str) -> tempfile::Builder<'_, 'static> {
        let mut b = tempfile::Builder::new();
        b.prefix(prefix)
            .suffix(".tmp")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
        b
    }
    let prefix = format!("{}-", std::process::id());
    // Another writer's cleanup may remove the directory between `prepare` and the create: retry.
    for _ in 0..3 {
        let Some(staging) = prepare(dir) else { break };
        match builder(&prefix).tempfile_in(&staging) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            other => return other,
        }
    }
    builder(&format!(".signet-{prefix}")).tempfile_in(dir)
}

/// Removes stale temp files from `dir`'s staging directory, and the directory once it is empty.
pub fn sweep(dir: &Path) {
    let staging = dir.join(DIR_NAME);
    if !is_ours(&staging) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(&staging) else {
        return;
    };
    let mut others = false;
    for entry in entries.take(MAX_SWEPT).flatten() {
        let name = entry.file_name();
        if name == IGNORE_FILE {
            continue;
        }
        match writer_pid(&name.to_string_lossy()) {
            Some(pid) if !is_running(pid) => {
                let _ = std::fs::remove_file(entry.path());
            }
            _ => others = true,
        }
    }
    if !others {
        // If another writer staged a file meanwhile, the directory is not empty: put the ignore
        // file back.
        let _ = std::fs::remove_file(staging.join(IGNORE_FILE));
        if std::fs::remove_dir(&staging).is_err() {
            let _ = write_ignore_file(&staging);
        }
    }
}

/// How many temp files sit in the staging directory `staging` (for reports).
pub fn staged_files(staging: &Path) -> usize {
    std::fs::read_dir(staging).map_or(0, |entries| {
        entries
            .take(MAX_SWEPT)
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count()
    })
}

/// The staging directory of `dir`, created with its ignore file if missing; `None` when it cannot be
/// used.
fn prepare(dir: &Path) -> Option<PathBuf> {
    let staging = dir.join(DIR_NAME);
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    if !is_ours(&staging) {
        return None;
    }
    write_ignore_file(&staging).ok()?;
    Some(staging)
}

/// A real directory (not a symlink) owned by the effective user.
fn is_ours(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_dir() && m.uid() == nix::unistd::geteuid().as_raw())
}

/// `*` in `.gitignore`: git ignores everything in the directory, the ignore file included.
fn write_ignore_file(staging: &Path) -> io::Result<()> {
    use std::io::Write;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(staging.join(IGNORE_FILE))
    {
        Ok(mut f) => f.write_all(b"*\n"),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The pid in a staged file's name (`<pid>-<random>.tmp`).
fn writer_pid(name: &str) -> Option<i32> {
    let (pid, rest) = name.split_once('-')?;
    if !rest.ends_with(".tmp") {
        return None;
    }
    pid.parse().ok().filter(|&p| p > 0)
}

/// Whether a process with this pid exists (EPERM: it does, under another user).
fn is_running(pid: i32) -> bool {
    if u32::try_from(pid).is_ok_and(|p| p == std::process::id()) {
        return true;
    }
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pid_named_temp_files_are_judged() {
        assert_eq!(writer_pid("123-abc.tmp"), Some(123));
        assert_eq!(writer_pid("0-abc.tmp"), None);
        assert_eq!(writer_pid("x-abc.tmp"), None);
        assert_eq!(writer_pid("123-abc.yaml"), None);
        assert_eq!(writer_pid(".gitignore"), None);
    }

    #[test]
    fn a_dead_writers_file_is_swept_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let live = temp_file(dir.path()).unwrap();
        let staging = dir.path().join(DIR_NAME);
        assert_eq!(live.path().parent(), Some(staging.as_path()));
        std::fs::write(staging.join(format!("{dead}-stale.tmp")), "x").unwrap();
        sweep(dir.path());
        assert!(!staging.join(format!("{dead}-stale.tmp")).exists());
        assert!(live.path().exists() && staging.join(IGNORE_FILE).exists());
        drop(live);
        sweep(dir.path());
        assert!(!staging.exists(), "an empty staging dir is removed");
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(DIR_NAME)).unwrap();
        let tmp = temp_file(dir.path()).unwrap();
        assert_eq!(tmp.path().parent(), Some(dir.path()));
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }
}
