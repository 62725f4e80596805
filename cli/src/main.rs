//! `signet`: the command-line front end. Argument parsing, file I/O and exit codes; no crypto here.

mod check;
mod cli;
mod docs;
mod exit;
mod git;
mod inventory;
mod io;
mod rekey;
mod seal;
mod sops;
mod staging;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::sops_style_args(std::env::args_os().collect());
    let cli = cli::Cli::parse_from(args);
    // A mistyped limit would otherwise fall back to the default without a word.
    if let Err(message) = signet_sops::limits::Limits::from_env() {
        eprintln!("signet: {message}");
        return ExitCode::from(exit::code::ERROR_GENERIC);
    }
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.verbatim {
                eprintln!("{}", e.message);
            } else if !e.message.is_empty() {
                eprintln!("signet: {}", e.message);
            }
            ExitCode::from(e.code)
        }
    }
}
