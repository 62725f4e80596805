//! `rotate` (a new data key, every value re-encrypted, optionally adding or removing master keys) and
//! `updatekeys` (the same data key re-wrapped for the keys the matching `.sops.yaml` rule names; values
//! and MAC untouched).

use super::args::{FormatArg, InputArgs, OutputArgs};
use super::file::{self, engine_error};
use super::keys;
use crate::exit::{CliError, CliResult, code};
use clap::Args;
use signet_keys::KeySpec;
use signet_sops::DataKey;
use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use std::io::IsTerminal;
use std::path::PathBuf;

/// `signet rotate`.
#[derive(Debug, Args)]
pub struct RotateCmd {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// age recipients to add (comma-separated).
    #[arg(long, value_name = "RECIPIENTS")]
    add_age: Option<String>,
    /// age recipients to remove (comma-separated).
    #[arg(long, value_name = "RECIPIENTS")]
    rm_age: Option<String>,
    /// KMS key ARNs to add (comma-separated).
    #[arg(long, value_name = "ARNS")]
    add_kms: Option<String>,
    /// KMS key ARNs to remove (comma-separated).
    #[arg(long, value_name = "ARNS")]
    rm_kms: Option<String>,
    /// Vault transit key URIs to add (comma-separated).
    #[arg(long, value_name = "URIS")]
    add_hc_vault_transit: Option<String>,
    /// Vault transit key URIs to remove (comma-separated).
    #[arg(long, value_name = "URIS")]
    rm_hc_vault_transit: Option<String>,
}

/// `signet updatekeys FILE`.
#[derive(Debug, Args)]
pub struct UpdatekeysCmd {
    /// The encrypted file (changed in place).
    file: PathBuf,
    /// Apply without asking.
    #[arg(short = 'y', long)]
    yes: bool,
    /// Input format; default: from the extension.
    #[arg(long, value_enum)]
    input_type: Option<FormatArg>,
    /// Path of the sops config file (default: the nearest `.sops.yaml`).
    #[arg(long, value_name = "PATH", env = "SOPS_CONFIG")]
    config: Option<PathBuf>,
    /// Shamir threshold to record (default: the rule's).
    #[arg(long, value_name = "N")]
    shamir_secret_sharing_threshold: Option<usize>,
}

/// Parses the keys of one `--add-*`/`--rm-*` family.
fn specs(age: Option<&str>, kms: Option<&str>, vault: Option<&str>) -> CliResult<Vec<KeySpec>> {
    let bad = |e: signet_keys::Error| CliError::new(code::ERROR_GENERIC, e.to_string());
    let mut out = Vec::new();
    if let Some(list) = age.filter(|s| !s.trim().is_empty()) {
        out.extend(KeySpec::age_list(list).map_err(bad)?);
    }
    if let Some(list) = kms.filter(|s| !s.trim().is_empty()) {
        out.extend(KeySpec::kms_list(list, &[], ""));
    }
    if let Some(list) = vault.filter(|s| !s.trim().is_empty()) {
        out.extend(KeySpec::vault_list(list).map_err(bad)?);
    }
    Ok(out)
}

/// `signet rotate`: decrypt, then encrypt every value again under a fresh data key wrapped for the
/// file's master keys (plus `--add-*`, minus `--rm-*`).
pub fn rotate(cmd: RotateCmd) -> CliResult {
    let mut loaded = file::load(&cmd.input)?;
    let name = loaded.input.display_name();
    let metadata = engine::metadata_of(&loaded.tree)
        .map_err(|e| engine_error(&name, e))?
        .ok_or_else(|| {
            loaded.err(
                code::ERROR_GENERIC,
                "sops metadata not found: the file is not encrypted",
            )
        })?;
    let old_key = keys::data_key(&name, &metadata)?;
    let decrypted = engine::decrypt(&mut loaded.tree, &old_key, DecryptOptions::default())
        .map_err(|e| engine_error(&name, e))?;
    let mut meta = decrypted.metadata;
    let mut groups = signet_keys::key_specs_from_metadata(&meta)
        .map_err(|e| CliError::new(code::ERROR_GENERIC, format!("{name}: {e}")))?;
    signet_keys::add_keys(
        &mut groups,
        specs(
            cmd.add_age.as_deref(),
            cmd.add_kms.as_deref(),
            cmd.add_hc_vault_transit.as_deref(),
        )?,
    );
    let removing = specs(
        cmd.rm_age.as_deref(),
        cmd.rm_kms.as_deref(),
        cmd.rm_hc_vault_transit.as_deref(),
    )?;
    signet_keys::remove_keys(&mut groups, &removing);
    groups.retain(|g| !g.is_empty());
    let threshold = meta.shamir_threshold.map(|t| t.min(groups.len()));
    let threshold = signet_keys::shamir_threshold_for(groups.len(), threshold);
    let new_key = DataKey::generate();
    meta.key_groups = signet_keys::wrap_data_key(&new_key, &groups, threshold)
        .map_err(|e| CliError::new(code::ERROR_ENCRYPTING_TREE, format!("{name}: {e}")))?;
    meta.shamir_threshold = threshold;
    meta.bump_version();
    engine::encrypt(
        &mut loaded.tree,
        &new_key,
        &mut meta,
        &EncryptOptions::default(),
    )
    .map_err(|e| engine_error(&name, e))?;
    let out = file::render(loaded.format, loaded.tree, &cmd.output, None)?;
    file::write(&out, &cmd.output, &loaded.input)
}

/// `signet updatekeys`: make the file's master keys those of its creation rule, keeping the data key
/// (values, MAC and unchanged key entries stay byte-identical).
pub fn updatekeys(cmd: UpdatekeysCmd) -> CliResult {
    let input = InputArgs {
        input_type: cmd.input_type,
        config: cmd.config.clone(),
        ..InputArgs::file(&cmd.file)
    };
    let mut loaded = file::load(&input)?;
    let name = loaded.input.display_name();
    let mut meta = engine::metadata_of(&loaded.tree)
        .map_err(|e| engine_error(&name, e))?
        .ok_or_else(|| {
            loaded.err(
                code::ERROR_GENERIC,
                "sops metadata not found: the file is not encrypted",
            )
        })?;
    let config = keys::config(cmd.config.as_deref())?.ok_or_else(|| {
        CliError::new(
            code::CONFIG_FILE_NOT_FOUND,
            "updatekeys needs a .sops.yaml (none found walking up from here)",
        )
    })?;
    let rule = keys::creation_rule(Some(&config), Some(&cmd.file))?.ok_or_else(|| {
        CliError::new(
            code::ERROR_GENERIC,
            format!("{name}: no creation rule matches"),
        )
    })?;
    let wanted = rule.key_groups.clone();
    let current = signet_keys::key_specs_from_metadata(&meta)
        .map_err(|e| CliError::new(code::ERROR_GENERIC, format!("{name}: {e}")))?;
    let threshold = signet_keys::shamir_threshold_for(
        wanted.len(),
        cmd.shamir_secret_sharing_threshold
            .or(rule.shamir_threshold),
    );
    let changes = describe_changes(&current, &wanted);
    if changes.is_empty() && threshold == meta.shamir_threshold {
        eprintln!("{name}: already up to date");
        return Ok(());
    }
    eprintln!("The following changes will be made to the file's groups:");
    for line in &changes {
        eprintln!("{line}");
    }
    if !cmd.yes && !confirm()? {
        return Err(CliError::new(
            code::ERROR_GENERIC,
            "not changed: confirmation refused",
        ));
    }
    let key = keys::data_key(&name, &meta)?;
    meta.key_groups = signet_keys::rewrap_data_key(&key, &meta.key_groups, &wanted, threshold)
        .map_err(|e| CliError::new(code::ERROR_ENCRYPTING_TREE, format!("{name}: {e}")))?;
    meta.shamir_threshold = threshold;
    engine::attach_metadata(&mut loaded.tree, &meta);
    let out = file::store(loaded.format, None)
        .emit(&loaded.tree)
        .map_err(|e| engine_error(&name, e))?;
    crate::io::write_atomic(&cmd.file, &out)?;
    eprintln!("{name}: key groups updated");
    Ok(())
}

/// `+ key` / `- key` lines per group, like sops prints them.
fn describe_changes(current: &[Vec<KeySpec>], wanted: &[Vec<KeySpec>]) -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..current.len().max(wanted.len()) {
        let (have, want) = (
            current.get(i).map_or(&[][..], Vec::as_slice),
            wanted.get(i).map_or(&[][..], Vec::as_slice),
        );
        let added: Vec<_> = want
            .iter()
            .filter(|k| !have.iter().any(|h| h.same_key(k)))
            .collect();
        let removed: Vec<_> = have
            .iter()
            .filter(|k| !want.iter().any(|w| w.same_key(k)))
            .collect();
        if added.is_empty() && removed.is_empty() {
            continue;
        }
        lines.push(format!("Group {}", i + 1));
        lines.extend(
            added
                .iter()
                .map(|k| format!("+++ {}", signet_keys::MasterKey::name(*k))),
        );
        lines.extend(
            removed
                .iter()
                .map(|k| format!("--- {}", signet_keys::MasterKey::name(*k))),
        );
    }
    lines
}

/// Asks on the terminal; refuses (asks for `-y`) without one.
fn confirm() -> CliResult<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(
            code::ERROR_GENERIC,
            "no terminal to confirm on: pass -y to apply",
        ));
    }
    eprint!("Is this okay? (y/n): ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::new(code::ERROR_GENERIC, e.to_string()))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
