//! Shell completions and man pages, generated from the clap definitions so they never drift.

use crate::exit::{CliError, CliResult, code};
use clap::{Args, CommandFactory};
use std::path::PathBuf;

/// `signet completion SHELL`.
#[derive(Debug, Args)]
pub struct CompletionCmd {
    /// bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

/// `signet man DIR`.
#[derive(Debug, Args)]
pub struct ManCmd {
    /// Directory to write `signet.1` and one page per subcommand into.
    dir: PathBuf,
}

/// Prints completions for the shell.
pub fn completion(cmd: CompletionCmd) -> CliResult {
    let mut command = crate::cli::Cli::command();
    clap_complete::generate(cmd.shell, &mut command, "signet", &mut std::io::stdout());
    Ok(())
}

/// Writes man pages.
pub fn man(cmd: ManCmd) -> CliResult {
    std::fs::create_dir_all(&cmd.dir)
        .and_then(|()| clap_mangen::generate_to(crate::cli::Cli::command(), &cmd.dir))
        .map_err(|e| {
            CliError::new(
                code::COULD_NOT_WRITE_OUTPUT_FILE,
                format!("{}: {e}", cmd.dir.display()),
            )
        })
}
