//! `signet`: the command-line front end. Argument parsing, file I/O and exit codes; no crypto here.

mod cli;
mod exit;
mod io;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signet: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
