//! The command tree (clap derive) and dispatch to each command's module.

use crate::exit::CliResult;
use crate::sops::commands as sops;
use clap::{Parser, Subcommand};

/// Keep Kubernetes secrets safe in Git: sops-compatible encryption and kubeseal-compatible sealing.
#[derive(Debug, Parser)]
#[command(name = "signet", version, about, propagate_version = true)]
pub struct Cli {
    /// The order in which key types are tried within a key group, comma separated (sops'
    /// `--decryption-order`; default `age,pgp`, then the others in file order).
    #[arg(
        long,
        global = true,
        env = "SOPS_DECRYPTION_ORDER",
        value_name = "TYPES",
        hide_env_values = true
    )]
    pub decryption_order: Option<String>,
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
    /// Add or delete key groups of a sops file (the data key stays; values and MAC untouched).
    #[command(subcommand)]
    Groups(crate::sops::groups::GroupsCommand),
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
    if let Some(order) = cli.decryption_order.as_deref().filter(|o| !o.is_empty()) {
        crate::sops::keys::set_decryption_order(order)?;
    }
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
        Command::Groups(c) => crate::sops::groups::groups(c),
        Command::Rekey(c) => crate::rekey::rekey(c),
        Command::Completion(c) => crate::docs::completion(c),
        Command::Man(c) => crate::docs::man(c),
    }
}

/// Rewrites sops' flag-style invocations (`-e FILE`, `-d FILE`, `--encrypt`, `--decrypt`) into
/// subcommands, so `signet -d secrets.yaml` works like `sops -d secrets.yaml`; and, like `sops
/// FILE`, a file named first with neither opens it in the editor (`signet edit FILE`). A first
/// word that is not a subcommand is taken for a file only if it exists or has a `.` or `/` in it,
/// so a mistyped subcommand still gets clap's error rather than a new file.
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
    if let Some(rewritten) = legacy_set(&args) {
        return rewritten;
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
    } else if let Some(first) = args.get(1).and_then(|a| a.to_str())
        && !first.starts_with('-')
        && (first.contains(['.', '/']) || std::path::Path::new(first).exists())
    {
        args.insert(1, "edit".into());
    }
    args
}

/// sops' flag form of `set`: `--set '["a"]["b"] VALUE' [-i] FILE` becomes `set FILE '["a"]["b"]'
/// VALUE` (split at the first `] `, as sops splits it; `-i` is implied: `set` writes in place).
/// Without a `] ` the whole text is taken for the path, so `set` reports the missing value.
fn legacy_set(args: &[std::ffi::OsString]) -> Option<Vec<std::ffi::OsString>> {
    let mut rest = vec![args.first()?.clone(), "set".into()];
    let mut spec = None;
    let mut i = 1;
    while i < args.len() {
        match args[i].to_str() {
            Some("--set") if spec.is_none() => {
                spec = Some(args.get(i + 1)?.to_str()?.to_owned());
                i += 1;
            }
            Some(a) if spec.is_none() && a.starts_with("--set=") => {
                spec = Some(a["--set=".len()..].to_owned());
            }
            Some("-i" | "--in-place") => {}
            _ => rest.push(args[i].clone()),
        }
        i += 1;
    }
    let spec = spec?;
    match spec.split_once("] ") {
        Some((path, value)) => {
            rest.push(format!("{path}]").into());
            rest.push(value.into());
        }
        None => rest.push(spec.into()),
    }
    Some(rest)
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

    #[test]
    fn sops_set_flag_becomes_the_set_command() {
        assert_eq!(
            rewrite(&["signet", "--set", r#"["a"]["b"] {"c": 1}"#, "-i", "f.yaml"]),
            ["signet", "set", "f.yaml", r#"["a"]["b"]"#, r#"{"c": 1}"#]
        );
        assert_eq!(
            rewrite(&["signet", r#"--set=["a"] "x y""#, "f.yaml"]),
            ["signet", "set", "f.yaml", r#"["a"]"#, r#""x y""#]
        );
        assert_eq!(
            rewrite(&["signet", "--set", r#"["a"]"#, "f.yaml"]),
            ["signet", "set", "f.yaml", r#"["a"]"#]
        );
    }

    #[test]
    fn a_file_named_first_is_edited_like_sops_file() {
        assert_eq!(
            rewrite(&["signet", "secrets.enc.yaml"]),
            ["signet", "edit", "secrets.enc.yaml"]
        );
        assert_eq!(
            rewrite(&["signet", "dir/secrets"]),
            ["signet", "edit", "dir/secrets"]
        );
        // A mistyped subcommand is not a file to create; flags alone are not a file either.
        assert_eq!(rewrite(&["signet", "sael"]), ["signet", "sael"]);
        assert_eq!(rewrite(&["signet", "--version"]), ["signet", "--version"]);
        assert_eq!(rewrite(&["signet", "seal"]), ["signet", "seal"]);
    }
}
