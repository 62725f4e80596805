//! `signet keys inventory [PATH…]` and `signet keys retire KEY [PATH…]`: which key protects what in a
//! repository, and retiring a key only once nothing there needs it any more.
//!
//! sops files name their master keys in their metadata, so every key of every sops file is listed
//! without any key at hand ([`ids::sops_key`] names them). A SealedSecret's ciphertext does not name
//! its key: as `rekey --check` does, each object is opened with each `--recovery-private-key` in
//! turn, and the key that opens it is the one it needs (named by the SHA-256 of its public key, the
//! fingerprint `rekey` prints). Objects no given key opens are listed as unattributed; `retire`
//! refuses a sealing key while any remain, since they may need it. The values opened on the way are
//! wiped unseen.
//!
//! `retire` checks the repository, never the SealedSecrets that live only in the cluster. When
//! nothing there needs a sealing key, `--apply` relabels its key Secret in the controller's namespace
//! so the controller stops using it ([`cluster`]); without `--apply` it prints the `kubectl label`
//! that does the same.

mod cluster;
mod ids;

use crate::exit::{CliError, CliResult, code};
use crate::rekey::OutputFormat;
use crate::rekey::sealed::{KeyRings, SealedFile};
use crate::rekey::sops_file::{looks_like_sops, recognise};
use clap::Args;
use rayon::prelude::*;
use serde::Serialize;
use signet_seal::SealError;
use signet_seal::convert::unseal_values;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `signet keys inventory`.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Files or directories to walk (default: the working directory).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Report format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: OutputFormat,
    /// Private sealing keys (PEM, or a key-backup Secret / v1.List), to tell which key each
    /// SealedSecret needs; repeat the flag or separate with commas.
    #[arg(
        long = "recovery-private-key",
        value_name = "KEY",
        value_delimiter = ','
    )]
    recovery_private_key: Vec<PathBuf>,
}

/// `signet keys retire`.
#[derive(Debug, Args)]
pub struct RetireArgs {
    /// The key: its inventory name (`sealing:FINGERPRINT`, `age:RECIPIENT`, `pgp:FP`, `kms:ARN`, …)
    /// or the part after `TYPE:`.
    #[arg(value_name = "KEY")]
    key: String,
    /// Files or directories that must no longer need it (default: the working directory).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Private sealing keys, as for `keys inventory`: every key that may have sealed a SealedSecret
    /// under PATH (the retired one included), else retiring a sealing key is refused.
    #[arg(
        long = "recovery-private-key",
        value_name = "KEY",
        value_delimiter = ','
    )]
    recovery_private_key: Vec<PathBuf>,
    /// Namespace of the controller (where its key Secrets are).
    #[arg(long, value_name = "NAMESPACE", default_value = "kube-system")]
    controller_namespace: String,
    /// For a sealing key nothing needs: relabel its key Secret in the cluster
    /// (`sealedsecrets.bitnami.com/sealed-secrets-key=retired`) so the controller stops using it.
    /// Refused for the controller's only active key.
    #[arg(long)]
    apply: bool,
    /// Kubeconfig for --apply (default: KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, value_name = "FILE", requires = "apply")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context for --apply.
    #[arg(long, value_name = "NAME", requires = "apply")]
    context: Option<String>,
}

/// Where a key is needed: a file, and for SealedSecrets the object (`namespace/name`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Use {
    /// The file.
    pub file: String,
    /// The SealedSecret in it, for sealing keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

impl std::fmt::Display for Use {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.object {
            Some(o) => write!(f, "{} ({o})", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Key name → where it is needed, sorted.
    pub keys: BTreeMap<String, Vec<Use>>,
    /// SealedSecrets no given private key opens.
    pub unattributed: Vec<Use>,
    /// Files and directories that could not be read.
    pub errors: Vec<String>,
}

impl Inventory {
    /// Walks `paths` (like `rekey`) and records every key each file needs.
    pub fn build(paths: &[PathBuf], private_keys: &[PathBuf]) -> CliResult<Inventory> {
        let rings = KeyRings::load(private_keys)?;
        let roots = if paths.is_empty() {
            vec![PathBuf::from(".")]
        } else {
            paths.to_vec()
        };
        let walked = crate::rekey::walk(&roots)?;
        let found: Vec<FileKeys> = walked
            .files
            .par_iter()
            .map(|p| file_keys(p, &rings))
            .collect();
        let mut inventory = Inventory {
            errors: walked
                .walk_errors
                .iter()
                .map(|e| format!("cannot walk {e}"))
                .collect(),
            ..Inventory::default()
        };
        for file in found {
            for (key, use_) in file.keys {
                inventory.keys.entry(key).or_default().push(use_);
            }
            inventory.unattributed.extend(file.unattributed);
            inventory.errors.extend(file.error);
        }
        for uses in inventory.keys.values_mut() {
            uses.sort();
            uses.dedup();
        }
        inventory.unattributed.sort();
        Ok(inventory)
    }

    /// A block per key (its name, how many files, each file), then the unattributed objects.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (key, uses) in &self.keys {
            out.push_str(&format!("{key}\t{} use(s)\n", uses.len()));
            for u in uses {
                out.push_str(&format!("  {u}\n"));
            }
        }
        if !self.unattributed.is_empty() {
            out.push_str(&format!(
                "unattributed\t{} SealedSecret(s) that no --recovery-private-key given opens\n",
                self.unattributed.len()
            ));
            for u in &self.unattributed {
                out.push_str(&format!("  {u}\n"));
            }
        }
        for e in &self.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        out
    }

    /// `{"keys": [{"key", "type", "uses": [{"file", "object"?}]}], "unattributed": [...], "errors": [...]}`.
    pub fn json(&self) -> String {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|(key, uses)| {
                serde_json::json!({"key": key, "type": ids::kind_of(key), "uses": uses})
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&serde_json::json!({
            "keys": keys,
            "unattributed": self.unattributed,
            "errors": self.errors,
        }))
        .unwrap_or_default();
        text.push('\n');
        text
    }
}

/// What one file needs.
#[derive(Default)]
struct FileKeys {
    keys: Vec<(String, Use)>,
    unattributed: Vec<Use>,
    error: Option<String>,
}

fn file_keys(path: &Path, rings: &KeyRings) -> FileKeys {
    let name = path.display().to_string();
    let mut out = FileKeys::default();
    let bytes = match signet_sops::limits::read_file(path) {
        Ok(b) => zeroize::Zeroizing::new(b),
        Err(e) => {
            out.error = Some(format!("{name}: cannot read: {e}"));
            return out;
        }
    };
    let file_use = || Use {
        file: name.clone(),
        object: None,
    };
    match recognise(path, &bytes) {
        Ok(Some(file)) => {
            for entry in file.decryptor.metadata().all_keys() {
                out.keys.push((ids::sops_key(entry), file_use()));
            }
            return out;
        }
        Err(e) if looks_like_sops(&bytes) => {
            out.error = Some(format!("{name}: {e}"));
            return out;
        }
        _ => {}
    }
    let manifest = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    );
    if !manifest || !bytes.windows(12).any(|w| w == b"SealedSecret") {
        return out;
    }
    let file = match SealedFile::parse(&bytes, &name) {
        Ok(Some(file)) => file,
        // Not SealedSecrets after all (a template, a document about them).
        Ok(None) | Err(_) => return out,
    };
    for (_, object_name, object) in file.objects() {
        let use_ = Use {
            file: name.clone(),
            object: Some(object_name),
        };
        let mut opened_by = None;
        for (fp, ring) in &rings.single {
            match unseal_values(object, ring) {
                Ok(values) => {
                    drop(values);
                    opened_by = Some(fp.clone());
                    break;
                }
                Err(SealError::Unseal) => {}
                Err(e) => {
                    out.error = Some(format!("{use_}: {e}"));
                    break;
                }
            }
        }
        match opened_by {
            Some(fp) => out.keys.push((ids::sealing_key(&fp), use_)),
            None => out.unattributed.push(use_),
        }
    }
    out
}

/// Runs `signet keys inventory`.
pub fn inventory(args: InventoryArgs) -> CliResult {
    let inventory = Inventory::build(&args.paths, &args.recovery_private_key)?;
    let printed = match args.output {
        OutputFormat::Text => inventory.text(),
        OutputFormat::Json => inventory.json(),
    };
    crate::io::write_stdout(printed.as_bytes())?;
    if !inventory.errors.is_empty() {
        return Err(CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!(
                "{} path(s) could not be read: the inventory is incomplete",
                inventory.errors.len()
            ),
        ));
    }
    Ok(())
}

/// Runs `signet keys retire`.
pub fn retire(args: RetireArgs) -> CliResult {
    let inventory = Inventory::build(&args.paths, &args.recovery_private_key)?;
    if !inventory.errors.is_empty() {
        for e in &inventory.errors {
            eprintln!("signet: {e}");
        }
        return Err(CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!(
                "{} path(s) could not be read: cannot tell whether {} is still needed",
                inventory.errors.len(),
                args.key
            ),
        ));
    }
    let uses: Vec<&Use> = inventory
        .keys
        .iter()
        .filter(|(key, _)| ids::names(&args.key, key))
        .flat_map(|(_, uses)| uses)
        .collect();
    if !uses.is_empty() {
        let mut listed = String::new();
        for u in &uses {
            listed.push_str(&format!("{u}\n"));
        }
        crate::io::write_stdout(listed.as_bytes())?;
        return Err(CliError::new(
            code::KEY_IN_USE,
            format!(
                "{} is still needed by {} file(s) or object(s) (listed above): re-encrypt or \
                 re-seal them first (signet rekey)",
                args.key,
                uses.len()
            ),
        ));
    }
    let sealing = args.key.starts_with("sealing:")
        || (args.key.len() == 64 && args.key.bytes().all(|b| b.is_ascii_hexdigit()));
    if sealing && !inventory.unattributed.is_empty() {
        let mut listed = String::new();
        for u in &inventory.unattributed {
            listed.push_str(&format!("{u}\n"));
        }
        crate::io::write_stdout(listed.as_bytes())?;
        return Err(CliError::new(
            code::KEY_IN_USE,
            format!(
                "{} SealedSecret(s) (listed above) open with none of the --recovery-private-key \
                 given, so they may need {}: give every key that may have sealed them",
                inventory.unattributed.len(),
                args.key
            ),
        ));
    }
    let fingerprint = args.key.trim_start_matches("sealing:");
    if args.apply {
        if !sealing {
            return Err(CliError::new(
                code::ERROR_CONFLICTING_PARAMETERS,
                "--apply retires sealing keys (sealing:FINGERPRINT); other keys live outside the \
                 cluster",
            ));
        }
        let name = cluster::retire_key_secret(
            cluster::ClusterTarget {
                namespace: args.controller_namespace.clone(),
                kubeconfig: args.kubeconfig.clone(),
                context: args.context.clone(),
            },
            &fingerprint.to_ascii_lowercase(),
        )?;
        crate::io::write_stdout(
            format!(
                "{}: nothing under the given paths needs it; {}/{name} relabelled {}={}\n",
                args.key,
                args.controller_namespace,
                cluster::SEALING_KEY_LABEL,
                cluster::RETIRED
            )
            .as_bytes(),
        )?;
        return Ok(());
    }
    let next = if sealing {
        format!(
            "To stop the controller using it, take its key Secret off the active keys:\n  \
             kubectl -n {} label secret <the key Secret whose tls.crt has fingerprint {fingerprint}> \
             sealedsecrets.bitnami.com/sealed-secrets-key=retired --overwrite\n\
             (signet does not change the cluster; SealedSecrets in the cluster that Git does not \
             hold are not checked.)\n",
            args.controller_namespace
        )
    } else {
        "Remove it from the .sops.yaml creation rules and from the key store.\n".to_owned()
    };
    crate::io::write_stdout(
        format!(
            "{}: nothing under the given paths needs it.\n{next}",
            args.key
        )
        .as_bytes(),
    )?;
    Ok(())
}
