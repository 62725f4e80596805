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
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let written = write_via_temp(path, dir, bytes);
    crate::staging::sweep(dir);
    written
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
    if let Ok(d) = std::fs::File::open(dir) {
        // Make the rename itself durable; failure here cannot corrupt the file, so it is not an error.
        let _ = d.sync_all();
    }
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
