//! File input and output shared by every command: reading a named file or stdin, and writing results
//! atomically (a temp file in the target's directory, fsync, rename) so a killed process never leaves a
//! half-written file behind.

use crate::exit::{CliError, CliResult, code};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where input comes from: a file, or stdin when the path is `-` or absent.
#[derive(Debug, Clone)]
pub enum Input {
    /// A named file.
    File(PathBuf),
    /// Standard input.
    Stdin,
}

impl Input {
    /// `-` or `None` means stdin.
    pub fn from_arg(path: Option<&Path>) -> Self {
        match path {
            None => Input::Stdin,
            Some(p) if p == Path::new("-") => Input::Stdin,
            Some(p) => Input::File(p.to_path_buf()),
        }
    }

    /// A name for messages: the path, or `<stdin>`.
    pub fn display_name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "<stdin>".to_owned(),
        }
    }

    /// The path, if the input is a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Input::File(p) => Some(p),
            Input::Stdin => None,
        }
    }

    /// Reads everything, up to the input size limit (`SIGNET_MAX_INPUT_BYTES`).
    pub fn read(&self) -> CliResult<Vec<u8>> {
        let read = match self {
            Input::File(p) => signet_sops::limits::read_file(p),
            Input::Stdin => signet_sops::limits::read_bounded(std::io::stdin().lock()),
        };
        read.map_err(|e| {
            CliError::new(
                code::COULD_NOT_READ_INPUT_FILE,
                format!("cannot read {}: {e}", self.display_name()),
            )
        })
    }
}

/// Writes `bytes` to `path` atomically. An existing file keeps its permissions (so an in-place
/// decrypt never makes a file more open than it was); a new one is created 0600, whatever the umask
/// (its content may be secret). The temp file is staged as [`crate::staging`] describes, so a killed
/// writer leaves nothing `git add` picks up, and the next write cleans it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> CliResult {
    AtomicBatch::default().write(path, bytes)
}

/// Atomic writes of many files, from any number of threads (`rekey`): each file is written as
/// [`write_atomic`] writes it (temp file, fsync, rename) and is whole and current once `write`
/// returns, but the directories are synced and swept once each, when the batch is dropped, instead
/// of after every file. On a crash before that, a rename may not have reached the disk: that file
/// is then its old self, never half of each. One write is a batch of one.
#[derive(Debug, Default)]
pub struct AtomicBatch {
    /// The directories written into: to sync and sweep on drop.
    dirs: std::sync::Mutex<std::collections::BTreeSet<PathBuf>>,
}

impl AtomicBatch {
    /// Writes `bytes` to `path` atomically (see [`write_atomic`]).
    pub fn write(&self, path: &Path, bytes: &[u8]) -> CliResult {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // Recorded first, so a write that fails after staging its temp file is swept too.
        self.dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(dir.to_path_buf());
        write_via_temp(path, dir, bytes)
    }
}

impl Drop for AtomicBatch {
    fn drop(&mut self) {
        let dirs = std::mem::take(
            self.dirs
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for dir in dirs {
            if let Ok(d) = std::fs::File::open(&dir) {
                // Makes the renames durable; a failure cannot corrupt a file, so it is no error.
                let _ = d.sync_all();
            }
            crate::staging::sweep(&dir);
        }
    }
}

fn write_via_temp(path: &Path, dir: &Path, bytes: &[u8]) -> CliResult {
    let fail = |what: &str, e: std::io::Error| {
        CliError::new(
            code::COULD_NOT_WRITE_OUTPUT_FILE,
            format!("cannot write {}: {what}: {e}", path.display()),
        )
    };
    let mut tmp =
        crate::staging::temp_file(dir).map_err(|e| fail("creating a temporary file", e))?;
    tmp.write_all(bytes).map_err(|e| fail("writing", e))?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file()
            .set_permissions(meta.permissions())
            .map_err(|e| fail("copying permissions", e))?;
    }
    tmp.as_file().sync_all().map_err(|e| fail("syncing", e))?;
    tmp.persist(path)
        .map_err(|e| fail("renaming into place", e.error))?;
    Ok(())
}

/// Writes `bytes` to stdout.
pub fn write_stdout(bytes: &[u8]) -> CliResult {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// The error of a failed write to stdout.
pub fn stdout_error(e: std::io::Error) -> CliError {
    CliError::new(
        code::COULD_NOT_WRITE_OUTPUT_FILE,
        format!("cannot write stdout: {e}"),
    )
}

/// Writes output where it goes: `--output FILE`, in place over the input, or stdout. (Not
/// `Store::emit`, which renders a sops tree.)
pub fn write_output(bytes: &[u8], output: Option<&Path>, in_place: Option<&Path>) -> CliResult {
    match (output, in_place) {
        (Some(p), _) | (None, Some(p)) => write_atomic(p, bytes),
        (None, None) => write_stdout(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_batch_writes_each_file_whole_and_sweeps_each_directory_when_it_ends() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let existing = a.join("old.yaml");
        std::fs::write(&existing, "old").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap();
        let batch = AtomicBatch::default();
        let files = [existing.clone(), a.join("new.yaml"), b.join("new.yaml")];
        for (i, path) in files.iter().enumerate() {
            batch.write(path, format!("v{i}").as_bytes()).unwrap();
            // Whole and current as soon as `write` returns, before the batch ends.
            assert_eq!(std::fs::read_to_string(path).unwrap(), format!("v{i}"));
        }
        // The staging directories stay for the batch (no create/remove per file)...
        assert!(a.join(crate::staging::DIR_NAME).is_dir());
        assert!(b.join(crate::staging::DIR_NAME).is_dir());
        drop(batch);
        // ...and are swept, empty, when it ends.
        assert!(!a.join(crate::staging::DIR_NAME).exists());
        assert!(!b.join(crate::staging::DIR_NAME).exists());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&existing), 0o640, "an existing file keeps its mode");
        assert_eq!(mode(&files[1]), 0o600, "a new file is private");
        let mut names: Vec<_> = std::fs::read_dir(&a)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["new.yaml", "old.yaml"], "nothing else is left");
    }

    #[test]
    fn a_failed_write_in_a_batch_changes_nothing_and_leaves_no_temp_file() {
        let root = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails after the temp file was staged.
        let target = root.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), "x").unwrap();
        let batch = AtomicBatch::default();
        let err = batch.write(&target, b"new").unwrap_err();
        assert_eq!(err.code, code::COULD_NOT_WRITE_OUTPUT_FILE);
        drop(batch);
        assert_eq!(std::fs::read_to_string(target.join("inside")).unwrap(), "x");
        assert!(!root.path().join(crate::staging::DIR_NAME).exists());
    }
}
