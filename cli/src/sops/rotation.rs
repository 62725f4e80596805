//! `rotate` (a new data key, every value re-encrypted, optionally adding or removing master keys) and
//! `updatekeys` (the same data key re-wrapped for the keys the matching `.sops.yaml` rule names; values
//! and MAC untouched). [`KeyDrift`], [`rewrap_data_key`] and [`rotate_data_key`] are shared with
//! `rekey`, which applies them to a whole tree.

use super::args::{FormatArg, InputArgs, OutputArgs};
use super::file::{self, engine_error};
use super::keys;
use crate::exit::{CliError, CliResult, code};
use clap::Args;
use signet_keys::{CreationRule, KeySpec};
use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use signet_sops::metadata::Metadata;
use signet_sops::tree::Tree;
use signet_sops::{DataKey, Decryptor, UnwrappedDataKey};
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
    /// PGP fingerprints to add (comma-separated).
    #[arg(long, value_name = "FINGERPRINTS")]
    add_pgp: Option<String>,
    /// PGP fingerprints to remove (comma-separated).
    #[arg(long, value_name = "FINGERPRINTS")]
    rm_pgp: Option<String>,
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
fn specs(
    age: Option<&str>,
    pgp: Option<&str>,
    kms: Option<&str>,
    vault: Option<&str>,
) -> CliResult<Vec<KeySpec>> {
    keys::KeyLists {
        age,
        pgp,
        kms,
        hc_vault_transit: vault,
        ..Default::default()
    }
    .specs()
}

/// `signet rotate`: decrypt, then encrypt every value again under a fresh data key wrapped for the
/// file's master keys (plus `--add-*`, minus `--rm-*`).
pub fn rotate(cmd: RotateCmd) -> CliResult {
    let file::Encrypted {
        input,
        format,
        decryptor,
    } = file::load_encrypted(&cmd.input)?;
    let name = input.display_name();
    let old_key = keys::data_key(&name, &decryptor)?;
    let metadata = decryptor.metadata();
    let mut groups = signet_keys::key_specs_from_metadata(metadata)
        .map_err(|e| CliError::new(code::ERROR_GENERIC, format!("{name}: {e}")))?;
    signet_keys::add_keys(
        &mut groups,
        specs(
            cmd.add_age.as_deref(),
            cmd.add_pgp.as_deref(),
            cmd.add_kms.as_deref(),
            cmd.add_hc_vault_transit.as_deref(),
        )?,
    );
    let removing = specs(
        cmd.rm_age.as_deref(),
        cmd.rm_pgp.as_deref(),
        cmd.rm_kms.as_deref(),
        cmd.rm_hc_vault_transit.as_deref(),
    )?;
    signet_keys::remove_keys(&mut groups, &removing);
    groups.retain(|g| !g.is_empty());
    let threshold = metadata.shamir_threshold.map(|t| t.min(groups.len()));
    let threshold = signet_keys::shamir_threshold_for(groups.len(), threshold);
    let wanted = WantedKeys { groups, threshold };
    let mut tree = rotate_data_key(&name, decryptor, old_key, &wanted)?;
    file::render_and_write(format, &mut tree, &cmd.output, None, &input)
}

/// Decrypts the document with its data key `old_key` (checking the MAC) and encrypts every value
/// again under a fresh data key wrapped for `wanted`; returns the re-encrypted tree. The one
/// implementation of "rotate the data key" (`rotate`, `rekey --rotate`). Plaintext only ever lives
/// in memory.
pub fn rotate_data_key(
    name: &str,
    decryptor: Decryptor,
    old_key: UnwrappedDataKey,
    wanted: &WantedKeys,
) -> CliResult<Tree> {
    let opened = decryptor
        .decrypt(old_key, DecryptOptions::default())
        .map_err(|e| engine_error(name, e))?;
    let (mut tree, mut meta) = (opened.tree, opened.metadata);
    let new_key = DataKey::generate();
    meta.key_groups = signet_keys::wrap_data_key(&new_key, &wanted.groups, wanted.threshold)
        .map_err(|e| CliError::new(code::ERROR_ENCRYPTING_TREE, format!("{name}: {e}")))?;
    meta.shamir_threshold = wanted.threshold;
    meta.bump_version();
    engine::encrypt(&mut tree, &new_key, &mut meta, &EncryptOptions::default())
        .map_err(|e| engine_error(name, e))?;
    Ok(tree)
}

/// `signet updatekeys`: make the file's master keys those of its creation rule, keeping the data key
/// (values, MAC and unchanged key entries stay byte-identical).
pub fn updatekeys(cmd: UpdatekeysCmd) -> CliResult {
    let input = InputArgs {
        input_type: cmd.input_type,
        config: cmd.config.clone(),
        ..InputArgs::file(&cmd.file)
    };
    let file::Encrypted {
        input,
        format,
        decryptor,
    } = file::load_encrypted(&input)?;
    let name = input.display_name();
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
    let wanted = WantedKeys::of_rule(&rule, cmd.shamir_secret_sharing_threshold);
    let drift = KeyDrift::between(decryptor.metadata(), &wanted)
        .map_err(|e| CliError::new(code::ERROR_GENERIC, format!("{name}: {e}")))?;
    if drift.is_empty() {
        eprintln!("{name}: already up to date");
        return Ok(());
    }
    eprintln!("The following changes will be made to the file's groups:");
    for line in drift.change_lines() {
        eprintln!("{line}");
    }
    if !cmd.yes && !confirm()? {
        return Err(CliError::new(
            code::ERROR_GENERIC,
            "not changed: confirmation refused",
        ));
    }
    let key = keys::data_key(&name, &decryptor)?;
    let (mut tree, mut meta) = decryptor.into_parts();
    rewrap_data_key(&name, &mut tree, &mut meta, &key.data_key, &wanted)?;
    let out = file::store(format, None)
        .emit(&tree)
        .map_err(|e| engine_error(&name, e))?;
    crate::io::write_atomic(&cmd.file, &out)?;
    eprintln!("{name}: key groups updated");
    Ok(())
}

/// Re-wraps the file's data key `key` for `wanted` and writes the new key groups into `meta` and the
/// tree: the one implementation of "updatekeys" (`updatekeys`, `rekey`). Values, IVs and MAC are
/// untouched; entries of keys that stay are kept byte for byte (without Shamir).
pub fn rewrap_data_key(
    name: &str,
    tree: &mut Tree,
    meta: &mut Metadata,
    key: &DataKey,
    wanted: &WantedKeys,
) -> CliResult {
    meta.key_groups =
        signet_keys::rewrap_data_key(key, &meta.key_groups, &wanted.groups, wanted.threshold)
            .map_err(|e| CliError::new(code::ERROR_ENCRYPTING_TREE, format!("{name}: {e}")))?;
    meta.shamir_threshold = wanted.threshold;
    engine::attach_metadata(tree, meta);
    Ok(())
}

/// The master keys a file should be encrypted to, and the Shamir threshold to record.
#[derive(Debug, Clone)]
pub struct WantedKeys {
    /// One list per key group.
    pub groups: Vec<Vec<KeySpec>>,
    /// `shamir_threshold` as recorded (`None` with a single group).
    pub threshold: Option<usize>,
}

impl WantedKeys {
    /// What a creation rule asks for; `threshold` overrides the rule's `shamir_threshold`.
    pub fn of_rule(rule: &CreationRule, threshold: Option<usize>) -> Self {
        let groups = rule.key_groups.clone();
        let threshold =
            signet_keys::shamir_threshold_for(groups.len(), threshold.or(rule.shamir_threshold));
        WantedKeys { groups, threshold }
    }
}

/// How a file's key groups differ from the keys it should have: the one answer to "is this file's
/// key set what its rule wants" (`updatekeys`, `rekey`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyDrift {
    /// Groups whose keys differ, in group order.
    pub groups: Vec<GroupDrift>,
    /// `(file's, wanted)` Shamir thresholds, when they differ.
    pub threshold: Option<(Option<usize>, Option<usize>)>,
}

/// Keys to add to and remove from one key group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDrift {
    /// 0-based group index.
    pub group: usize,
    /// Keys the rule names that the file lacks.
    pub missing: Vec<String>,
    /// Keys the file has that the rule no longer names.
    pub extra: Vec<String>,
}

impl KeyDrift {
    /// Compares the key groups (positionally: a group's index is its Shamir share) and thresholds of
    /// `meta` with `wanted`. Needs no key.
    pub fn between(meta: &Metadata, wanted: &WantedKeys) -> Result<KeyDrift, signet_keys::Error> {
        let current = signet_keys::key_specs_from_metadata(meta)?;
        let mut groups = Vec::new();
        for i in 0..current.len().max(wanted.groups.len()) {
            let (have, want) = (
                current.get(i).map_or(&[][..], Vec::as_slice),
                wanted.groups.get(i).map_or(&[][..], Vec::as_slice),
            );
            let name = |k: &KeySpec| signet_keys::MasterKey::name(k);
            let missing: Vec<String> = want
                .iter()
                .filter(|k| !have.iter().any(|h| h.same_key(k)))
                .map(name)
                .collect();
            let extra: Vec<String> = have
                .iter()
                .filter(|k| !want.iter().any(|w| w.same_key(k)))
                .map(name)
                .collect();
            if !missing.is_empty() || !extra.is_empty() {
                groups.push(GroupDrift {
                    group: i,
                    missing,
                    extra,
                });
            }
        }
        let have = signet_keys::shamir_threshold_for(current.len(), meta.shamir_threshold);
        let threshold = (have != wanted.threshold).then_some((have, wanted.threshold));
        Ok(KeyDrift { groups, threshold })
    }

    /// Whether the file already has exactly the wanted keys and threshold.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.threshold.is_none()
    }

    /// `Group N` / `+++ key` / `--- key` lines, as sops prints them before updating.
    pub fn change_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for g in &self.groups {
            lines.push(format!("Group {}", g.group + 1));
            lines.extend(g.missing.iter().map(|k| format!("+++ {k}")));
            lines.extend(g.extra.iter().map(|k| format!("--- {k}")));
        }
        if let Some((have, want)) = self.threshold {
            lines.push(format!(
                "shamir_threshold: {} -> {}",
                threshold_text(have),
                threshold_text(want)
            ));
        }
        lines
    }

    /// One sentence per difference, for reports.
    pub fn reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        for g in &self.groups {
            let group = g.group + 1;
            out.extend(
                g.extra
                    .iter()
                    .map(|k| format!("extra recipient {k} (group {group}): no longer in the rule")),
            );
            out.extend(
                g.missing
                    .iter()
                    .map(|k| format!("missing recipient {k} (group {group}): named by the rule")),
            );
        }
        if let Some((have, want)) = self.threshold {
            out.push(format!(
                "shamir_threshold is {}, the rule wants {}",
                threshold_text(have),
                threshold_text(want)
            ));
        }
        out
    }
}

fn threshold_text(t: Option<usize>) -> String {
    t.map_or_else(|| "none".to_owned(), |t| t.to_string())
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
