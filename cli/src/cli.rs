//! The command tree (clap derive) and dispatch to each command's module.

use crate::exit::CliResult;
use crate::sops::commands as sops;
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
pub enum Command {
    /// Seal Secrets into SealedSecrets (kubeseal-compatible).
    Seal(crate::seal::SealArgs),
    /// Unseal SealedSecrets offline with the controller's private keys (recovery).
    Unseal(crate::seal::UnsealArgs),
    /// Sealing key management.
    #[command(subcommand)]
    Keys(crate::seal::KeysCommand),
    /// Re-seal SealedSecret files to a new certificate offline, with the keys that open them today.
    Reseal(crate::seal::ResealArgs),
    /// Encrypt a file in the sops format (values encrypted in place).
    #[command(visible_alias = "e")]
    Encrypt(sops::EncryptCmd),
    /// Decrypt a sops file.
    #[command(visible_alias = "d")]
    Decrypt(sops::DecryptCmd),
    /// Edit a sops file in $SOPS_EDITOR/$EDITOR (plaintext only in a private temp dir).
    Edit(sops::EditCmd),
    /// Set one value of a sops file, e.g. `signet set f.yaml '["data"]["k"]' '"v"'`.
    Set(sops::SetCmd),
    /// Remove one value of a sops file.
    Unset(sops::UnsetCmd),
    /// Run a command with the decrypted top-level values as environment variables.
    ExecEnv(sops::ExecEnvCmd),
    /// Run a command with the decrypted file at `{}` (a FIFO by default).
    ExecFile(sops::ExecFileCmd),
    /// Print `{"encrypted":true}` or `{"encrypted":false}`.
    Filestatus(sops::FilestatusCmd),
    /// Rotate the data key: re-encrypt every value (optionally --add-*/--rm-* master keys).
    Rotate(crate::sops::rotation::RotateCmd),
    /// Re-wrap the data key for the keys of the matching .sops.yaml rule (values untouched).
    Updatekeys(crate::sops::rotation::UpdatekeysCmd),
    /// Bring a whole tree up to date: sops files to their .sops.yaml rule, SealedSecrets to the
    /// current certificate (`--check` to only list what is stale).
    Rekey(crate::rekey::RekeyCmd),
    /// Find plaintext secrets and validate sops files and SealedSecrets without printing a value
    /// (for pre-commit hooks and CI; exit 215 on findings).
    Check(crate::check::CheckCmd),
    /// Generate an age identity.
    Keygen(sops::KeygenCmd),
    /// Git integration: merge driver and diff textconv for sops files (`signet git setup`).
    #[command(subcommand)]
    Git(crate::git::GitCommand),
    /// Print shell completions.
    Completion(crate::docs::CompletionCmd),
    /// Write man pages.
    Man(crate::docs::ManCmd),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Seal(c) => crate::seal::seal(c),
        Command::Unseal(c) => crate::seal::unseal(c),
        Command::Keys(c) => crate::seal::keys(c),
        Command::Reseal(c) => crate::seal::reseal(c),
        Command::Encrypt(c) => sops::encrypt(c),
        Command::Decrypt(c) => sops::decrypt(c),
        Command::Edit(c) => sops::edit(c),
        Command::Set(c) => sops::set(c),
        Command::Unset(c) => sops::unset(c),
        Command::ExecEnv(c) => sops::exec_env(c),
        Command::ExecFile(c) => sops::exec_file(c),
        Command::Filestatus(c) => sops::filestatus(c),
        Command::Check(c) => crate::check::check(c),
        Command::Keygen(c) => sops::keygen(c),
        Command::Git(c) => crate::git::run(c),
        Command::Rotate(c) => crate::sops::rotation::rotate(c),
        Command::Updatekeys(c) => crate::sops::rotation::updatekeys(c),
        Command::Rekey(c) => crate::rekey::rekey(c),
        Command::Completion(c) => crate::docs::completion(c),
        Command::Man(c) => crate::docs::man(c),
    }
}

/// Rewrites sops' flag-style invocations (`-e FILE`, `-d FILE`, `--encrypt`, `--decrypt`) into
/// subcommands, so `signet -d secrets.yaml` works like `sops -d secrets.yaml`.
pub fn sops_style_args(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let known = ["encrypt", "decrypt", "edit", "e", "d"];
    if args
        .iter()
        .skip(1)
        .any(|a| a.to_str().is_some_and(|s| known.contains(&s)))
    {
        return args;
    }
    // A subcommand named first owns its flags (`signet check --decrypt`).
    let command = <Cli as clap::CommandFactory>::command();
    if let Some(first) = args.get(1).and_then(|a| a.to_str())
        && command
            .get_subcommands()
            .any(|c| c.get_name() == first || c.get_all_aliases().any(|a| a == first))
    {
        return args;
    }
    let pos = args
        .iter()
        .position(|a| matches!(a.to_str(), Some("-e" | "--encrypt" | "-d" | "--decrypt")));
    if let Some(i) = pos {
        let sub = match args[i].to_str() {
            Some("-e" | "--encrypt") => "encrypt",
            _ => "decrypt",
        };
        args.remove(i);
        args.insert(1, sub.into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::sops_style_args;

    fn rewrite(args: &[&str]) -> Vec<String> {
        sops_style_args(args.iter().map(Into::into).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn sops_flags_become_subcommands_unless_a_subcommand_comes_first() {
        assert_eq!(
            rewrite(&["signet", "-d", "f.yaml"]),
            ["signet", "decrypt", "f.yaml"]
        );
        assert_eq!(
            rewrite(&["signet", "f.yaml", "--encrypt"]),
            ["signet", "encrypt", "f.yaml"]
        );
        assert_eq!(
            rewrite(&["signet", "check", "--decrypt", "f.yaml"]),
            ["signet", "check", "--decrypt", "f.yaml"]
        );
    }
}
