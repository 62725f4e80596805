//! `groups add` and `groups delete`: add a key group to a file or take one out, as sops' `groups`
//! subcommands do. The data key stays (values, IVs and MAC are untouched); it is wrapped again for
//! every group, so with Shamir every group gets a fresh share.

use super::args::{FormatArg, InputArgs};
use super::file::{self, engine_error};
use super::keys;
use super::rotation::{WantedKeys, rewrap_data_key};
use crate::exit::{CliError, CliResult, code};
use clap::{Args, Subcommand};
use signet_keys::KeySpec;
use std::path::PathBuf;

/// `signet groups`.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Add a key group (the keys named here) to a file.
    Add(AddCmd),
    /// Delete the key group at INDEX (0-based) from a file.
    #[command(alias = "remove")]
    Delete(DeleteCmd),
}

/// The file a `groups` command changes and where the result goes.
#[derive(Debug, Args)]
pub struct GroupsFile {
    /// The encrypted file.
    #[arg(short, long, value_name = "FILE")]
    file: PathBuf,
    /// Write the result back to the file instead of stdout.
    #[arg(short = 'i', long)]
    in_place: bool,
    /// Input format; default: from the extension.
    #[arg(long, value_enum)]
    input_type: Option<FormatArg>,
    /// The Shamir threshold to record (default: the file's).
    #[arg(long, value_name = "N")]
    shamir_secret_sharing_threshold: Option<usize>,
}

/// `signet groups add`.
#[derive(Debug, Args)]
pub struct AddCmd {
    #[command(flatten)]
    target: GroupsFile,
    /// age recipients of the new group (repeatable, or comma-separated).
    #[arg(long, value_name = "RECIPIENT")]
    age: Vec<String>,
    /// PGP fingerprints of the new group (repeatable, or comma-separated).
    #[arg(long, value_name = "FINGERPRINT")]
    pgp: Vec<String>,
    /// AWS KMS key ARNs of the new group (repeatable, or comma-separated).
    #[arg(long, value_name = "ARN")]
    kms: Vec<String>,
    /// Vault transit key URIs of the new group (repeatable, or comma-separated).
    #[arg(long, value_name = "URI")]
    hc_vault_transit: Vec<String>,
    /// KMS encryption context for the new group's KMS keys (`key:value,…`).
    #[arg(long, value_name = "CONTEXT")]
    encryption_context: Option<String>,
    /// AWS profile for the new group's KMS keys.
    #[arg(long, value_name = "PROFILE")]
    aws_profile: Option<String>,
}

/// `signet groups delete`.
#[derive(Debug, Args)]
pub struct DeleteCmd {
    #[command(flatten)]
    target: GroupsFile,
    /// The group to delete, 0-based as in the file.
    index: usize,
}

/// Runs a `groups` subcommand.
pub fn groups(cmd: GroupsCommand) -> CliResult {
    match cmd {
        GroupsCommand::Add(add) => {
            let group = add.group()?;
            change_groups(&add.target, |_, groups| {
                groups.push(group);
                Ok(())
            })
        }
        GroupsCommand::Delete(delete) => change_groups(&delete.target, |name, groups| {
            if delete.index >= groups.len() {
                return Err(CliError::new(
                    code::ERROR_GENERIC,
                    format!(
                        "{name}: no key group {} (the file has {}, numbered from 0)",
                        delete.index,
                        groups.len()
                    ),
                ));
            }
            groups.remove(delete.index);
            Ok(())
        }),
    }
}

impl AddCmd {
    /// The keys the new group holds; at least one.
    fn group(&self) -> CliResult<Vec<KeySpec>> {
        let (age, pgp, kms, vault) = (
            self.age.join(","),
            self.pgp.join(","),
            self.kms.join(","),
            self.hc_vault_transit.join(","),
        );
        let group = keys::KeyLists {
            age: Some(&age),
            pgp: Some(&pgp),
            kms: Some(&kms),
            hc_vault_transit: Some(&vault),
            encryption_context: self.encryption_context.as_deref(),
            aws_profile: self.aws_profile.as_deref(),
        }
        .specs()?;
        if group.is_empty() {
            return Err(CliError::new(
                code::NO_ENCRYPTION_KEY_FOUND,
                "groups add: name the new group's keys (--age, --pgp, --kms, --hc-vault-transit)",
            ));
        }
        Ok(group)
    }
}

/// Opens the file's data key, lets `change` edit its key groups, and writes the file with the data
/// key wrapped for the groups that result (refusing a Shamir threshold they cannot meet).
fn change_groups(
    target: &GroupsFile,
    change: impl FnOnce(&str, &mut Vec<Vec<KeySpec>>) -> CliResult,
) -> CliResult {
    let input = InputArgs {
        input_type: target.input_type,
        ..InputArgs::file(&target.file)
    };
    let file::Encrypted {
        input,
        format,
        decryptor,
    } = file::load_encrypted(&input)?;
    let name = input.display_name();
    let key = keys::data_key(&name, &decryptor)?;
    let mut groups = signet_keys::key_specs_from_metadata(decryptor.metadata())
        .map_err(|e| CliError::new(code::ERROR_GENERIC, format!("{name}: {e}")))?;
    change(&name, &mut groups)?;
    if groups.is_empty() {
        return Err(CliError::new(
            code::ERROR_GENERIC,
            format!("{name}: a file needs at least one key group"),
        ));
    }
    let threshold = target
        .shamir_secret_sharing_threshold
        .or(decryptor.metadata().shamir_threshold)
        .filter(|t| *t > 0);
    if let Some(t) = threshold
        && groups.len() > 1
        && t < 2
    {
        // sops writes such a file with an empty share that no key opens.
        return Err(CliError::new(
            code::ERROR_GENERIC,
            format!("{name}: a Shamir threshold over several key groups must be at least 2"),
        ));
    }
    if let Some(t) = threshold
        && t > groups.len()
    {
        return Err(CliError::new(
            code::ERROR_GENERIC,
            format!(
                "{name}: the Shamir threshold would be {t} with only {} key groups",
                groups.len()
            ),
        ));
    }
    let wanted = WantedKeys {
        threshold: signet_keys::shamir_threshold_for(groups.len(), threshold),
        groups,
    };
    let (mut tree, mut meta) = decryptor.into_parts();
    rewrap_data_key(&name, &mut tree, &mut meta, &key.data_key, &wanted)?;
    let out = file::store(format, None)
        .emit(&tree)
        .map_err(|e| engine_error(&name, e))?;
    if target.in_place {
        crate::io::write_atomic(&target.file, &out)
    } else {
        crate::io::write_stdout(&out)
    }
}
