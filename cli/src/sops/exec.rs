//! `exec-env` and `exec-file`: hand decrypted values to a child process without writing them to disk.

use super::interrupt::SignalGuard;
use super::scratch::Scratch;
use crate::exit::{CliError, CliResult, code};
use std::process::Command;

/// Runs `command` through `sh -c` with `vars` added to its environment; returns its exit status code.
/// With `same_process` the shell replaces this process (`exec`) and nothing returns unless that fails.
pub fn exec_env(
    command: &str,
    vars: &[(String, zeroize::Zeroizing<String>)],
    pristine: bool,
    same_process: bool,
) -> CliResult<i32> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command);
    if pristine {
        cmd.env_clear();
    }
    cmd.envs(vars.iter().map(|(k, v)| (k, v.as_str())));
    if same_process {
        // Returns only when the exec failed.
        let e = std::os::unix::process::CommandExt::exec(&mut cmd);
        return status_of(Err(e), command);
    }
    status_of(cmd.status(), command)
}

/// Runs `command` through `sh -c` with `{}` replaced by the path of a FIFO (or, with `no_fifo`, a 0600
/// temp file) that yields `plaintext`; the file lives in a private 0700 directory removed afterwards,
/// also when Signet gets SIGINT, SIGQUIT, SIGTERM or SIGHUP meanwhile (see [`super::interrupt`]).
pub fn exec_file(command: &str, plaintext: &[u8], filename: &str, no_fifo: bool) -> CliResult<i32> {
    // Installed before the scratch directory exists and dropped after it is gone.
    let signals = SignalGuard::install()?;
    let status = Scratch::new().and_then(|scratch| {
        let path = if no_fifo {
            scratch.write_private(filename, plaintext)?
        } else {
            fifo(&scratch, filename, plaintext)?
        };
        let quoted = shell_quote(&path.to_string_lossy());
        let command = if command.contains("{}") {
            command.replace("{}", &quoted)
        } else {
            format!("{command} {quoted}")
        };
        signals.check()?;
        let mut child = Command::new("sh");
        child.arg("-c").arg(&command);
        status_of(signals.run(child), &command)
    });
    signals.check()?;
    status
}

/// A FIFO named `filename` in `scratch`, fed `plaintext` by a thread once the command opens it.
fn fifo(scratch: &Scratch, filename: &str, plaintext: &[u8]) -> CliResult<std::path::PathBuf> {
    let path = scratch.path(filename);
    nix::unistd::mkfifo(
        &path,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .map_err(|e| {
        CliError::new(
            code::COULD_NOT_WRITE_OUTPUT_FILE,
            format!("cannot create a FIFO: {e}"),
        )
    })?;
    let writer_path = path.clone();
    let data = zeroize::Zeroizing::new(plaintext.to_vec());
    // Opening a FIFO for writing blocks until the child opens it; a child that never reads leaves this
    // thread parked, and it ends with the process.
    std::thread::spawn(move || {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&writer_path) {
            let _ = f.write_all(&data);
        }
    });
    Ok(path)
}

fn status_of(status: std::io::Result<std::process::ExitStatus>, command: &str) -> CliResult<i32> {
    let status = status
        .map_err(|e| CliError::new(code::ERROR_GENERIC, format!("cannot run `{command}`: {e}")))?;
    Ok(status.code().unwrap_or(1))
}

/// Single-quotes `s` for `sh`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
