//! Private scratch space for plaintext that must briefly exist outside the process (the `edit` buffer,
//! `exec-file`'s FIFO): a 0700 directory, files 0600, everything removed when the guard drops, on every
//! exit path.

use crate::exit::{CliError, CliResult, code};
use std::path::PathBuf;

/// A private temporary directory; removed with its content on drop.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// Creates a new 0700 directory under the system temp dir.
    pub fn new() -> CliResult<Self> {
        let dir = tempfile::Builder::new()
            .prefix("signet-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .map_err(|e| {
                CliError::new(
                    code::COULD_NOT_WRITE_OUTPUT_FILE,
                    format!("cannot create a private temp dir: {e}"),
                )
            })?;
        Ok(Scratch { dir })
    }

    /// The path of `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to a new 0600 file named `name`.
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> CliResult<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.path(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                CliError::new(
                    code::COULD_NOT_WRITE_OUTPUT_FILE,
                    format!("cannot create {}: {e}", path.display()),
                )
            })?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| {
                CliError::new(
                    code::COULD_NOT_WRITE_OUTPUT_FILE,
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
        Ok(path)
    }
}
