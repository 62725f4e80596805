//! The command tree (clap derive) and dispatch to each command's module.

use crate::exit::CliResult;
use clap::{Parser, Subcommand};

/// Keep Kubernetes secrets safe in Git: sops-compatible encryption and kubeseal-compatible sealing.
#[derive(Debug, Parser)]
#[command(name = "signet", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> CliResult {
    match cli.command {}
}
