//! The `edit` session: put the plaintext in a private temp file, run the user's editor on it, and hand
//! back the edited bytes once they parse. The original file is never touched here.

use super::interrupt::SignalGuard;
use super::scratch::Scratch;
use crate::exit::{CliError, CliResult, code};
use std::io::{IsTerminal, Write};

/// What the editing session produced.
pub enum Edited<T> {
    /// The buffer was saved unchanged.
    Unchanged,
    /// The edited buffer, already parsed by the caller's check.
    Changed(T),
}

/// The editor command: `SOPS_EDITOR`, then `EDITOR`, then the first of vim, nano, vi found on `PATH`.
pub fn editor_command() -> CliResult<String> {
    for var in ["SOPS_EDITOR", "EDITOR"] {
        if let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return Ok(v);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for candidate in ["vim", "nano", "vi"] {
        if std::env::split_paths(&path).any(|dir| dir.join(candidate).is_file()) {
            return Ok(candidate.to_owned());
        }
    }
    Err(CliError::new(
        code::NO_EDITOR_FOUND,
        "no editor found: set SOPS_EDITOR or EDITOR",
    ))
}

/// Runs the editor on `plaintext` (in a file named `file_name` inside a private 0700 dir) until `check`
/// accepts the result or the user gives up. When the result does not parse and a terminal is attached,
/// the user may re-open the editor; otherwise the parse error is returned. SIGINT, SIGQUIT, SIGTERM
/// and SIGHUP end the session without a result and with the scratch directory removed (see
/// [`super::interrupt`]).
pub fn edit<T>(
    plaintext: &[u8],
    file_name: &str,
    check: impl FnMut(&[u8]) -> Result<T, CliError>,
) -> CliResult<Edited<T>> {
    let editor = editor_command()?;
    // Installed before the scratch directory exists and dropped after it is gone.
    let signals = SignalGuard::install()?;
    let result = Scratch::new()
        .and_then(|scratch| session(&signals, &scratch, &editor, plaintext, file_name, check));
    signals.check()?;
    result
}

fn session<T>(
    signals: &SignalGuard,
    scratch: &Scratch,
    editor: &str,
    plaintext: &[u8],
    file_name: &str,
    mut check: impl FnMut(&[u8]) -> Result<T, CliError>,
) -> CliResult<Edited<T>> {
    let path = scratch.write_private(file_name, plaintext)?;
    loop {
        signals.check()?;
        // `exec`: the editor itself is the child, so a forwarded SIGTERM/SIGHUP reaches it rather
        // than only the shell that started it.
        let mut command = std::process::Command::new("sh");
        command
            .arg("-c")
            .arg(format!("exec {editor} \"$1\""))
            .arg("sh")
            .arg(&path);
        let status = signals.run(command).map_err(|e| {
            CliError::new(
                code::NO_EDITOR_FOUND,
                format!("cannot run editor `{editor}`: {e}"),
            )
        })?;
        signals.check()?;
        if !status.success() {
            return Err(CliError::new(
                code::ERROR_GENERIC,
                format!("editor `{editor}` exited with {status}; the file was not changed"),
            ));
        }
        let edited = zeroize::Zeroizing::new(std::fs::read(&path).map_err(|e| {
            CliError::new(
                code::COULD_NOT_READ_INPUT_FILE,
                format!("cannot read the edited buffer: {e}"),
            )
        })?);
        if edited.as_slice() == plaintext {
            return Ok(Edited::Unchanged);
        }
        match check(&edited) {
            Ok(v) => {
                signals.check()?;
                return Ok(Edited::Changed(v));
            }
            Err(e) if std::io::stdin().is_terminal() => {
                signals.check()?;
                eprintln!("signet: {e}");
                eprint!("Press Enter to return to the editor, or Ctrl+C to exit without saving. ");
                let _ = std::io::stderr().flush();
                let enter = signals.unless_interrupted(|| {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).unwrap_or(0) > 0
                });
                if enter != Some(true) {
                    signals.check()?;
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}
