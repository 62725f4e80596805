//! `signet git diff FILE`: git's textconv. Prints what a reader can compare: a sops file decrypted
//! with the keys at hand, or, when none opens it, its metadata and one line per value with a short
//! hash of the ciphertext; a SealedSecret as a summary of its items (names and ciphertext hashes),
//! never decrypted. Never reads stdin, never prompts, and exits 0 whenever the file could be read,
//! so git always has something to show.

use super::{Side, no_prompt_keyring};
use crate::exit::CliResult;
use crate::sops::args::FormatArg;
use clap::Args;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use signet_sops::Metadata;
use signet_sops::metadata::MasterKeyEntry;
use signet_sops::tree::{MapEntry, Node, SeqItem, Value};
use std::fmt::Write as _;
use std::path::PathBuf;

/// `signet git diff FILE`.
#[derive(Debug, Args)]
pub struct DiffCmd {
    /// The file git hands over (a temporary copy of one version, or the work-tree file).
    file: PathBuf,
    /// Format of the file; default: from its extension.
    #[arg(long, value_enum)]
    input_type: Option<FormatArg>,
}

/// `signet git diff`.
pub fn diff(cmd: DiffCmd) -> CliResult {
    let bytes = zeroize::Zeroizing::new(crate::io::Input::File(cmd.file.clone()).read()?);
    let format = super::format_for(cmd.input_type, &cmd.file);
    let name = cmd.file.display().to_string();
    if let Side::Sops(decryptor) = Side::parse(&bytes, format) {
        let metadata = decryptor.metadata().clone();
        let summary_tree = decryptor.as_ref().clone().into_parts().0;
        let why = match Side::Sops(decryptor).open(&no_prompt_keyring(), &name) {
            Ok(opened) => match crate::sops::file::store(format, None).emit(&opened.tree) {
                Ok(plain) => return crate::io::write_stdout(&zeroize::Zeroizing::new(plain)),
                Err(e) => e.to_string(),
            },
            Err(e) => e.message,
        };
        let first_line = why.lines().next().unwrap_or_default().to_owned();
        eprintln!("signet: {first_line}; showing a summary");
        return crate::io::write_stdout(sops_summary(&metadata, &summary_tree).as_bytes());
    }
    if let Some(summary) = sealed_secret_summary(&bytes) {
        return crate::io::write_stdout(summary.as_bytes());
    }
    crate::io::write_stdout(&bytes)
}

/// The first 12 hex digits of the SHA-256 of `bytes`: enough to see which ciphertext changed.
fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(6)
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn describe_key(entry: &MasterKeyEntry) -> String {
    match entry {
        MasterKeyEntry::Age(a) => format!("age {}", a.recipient),
        MasterKeyEntry::Kms(k) => format!("kms {}", k.arn),
        MasterKeyEntry::HcVault(v) => format!(
            "hc_vault {}/v1/{}/keys/{}",
            v.vault_address, v.engine_path, v.key_name
        ),
        MasterKeyEntry::Pgp(p) => format!("pgp {}", p.fp),
        MasterKeyEntry::Other(o) => {
            let first = o.fields.first().map(|(_, v)| v.as_str()).unwrap_or("");
            format!("{} {first}", o.kind)
        }
    }
}

/// What can be said of a sops file without its key: metadata, then every value's key path with
/// either `ENC sha256:…` or, for a value the rule leaves plain, the value as the file shows it.
fn sops_summary(meta: &Metadata, tree: &signet_sops::Tree) -> String {
    let mut leaves = Vec::new();
    for (i, doc) in tree.documents.iter().enumerate() {
        let prefix = if tree.documents.len() > 1 {
            format!("document {}: ", i + 1)
        } else {
            String::new()
        };
        walk(&doc.root, &mut prefix.clone(), &mut leaves, true);
    }
    let encrypted = leaves
        .iter()
        .filter(|(_, enc)| enc.starts_with("ENC "))
        .count();
    let mut out = String::from("# sops file (no key available here opens it; summary only)\n");
    let _ = writeln!(out, "# lastmodified: {}", meta.last_modified);
    let _ = writeln!(
        out,
        "# mac: {}",
        if meta.mac.is_some() {
            "present"
        } else {
            "MISSING"
        }
    );
    let _ = writeln!(out, "# encrypted values: {encrypted}");
    for (g, group) in meta.key_groups.iter().enumerate() {
        for key in group {
            let _ = writeln!(out, "# key group {}: {}", g + 1, describe_key(key));
        }
    }
    if let Some(t) = meta.shamir_threshold.filter(|_| meta.key_groups.len() > 1) {
        let _ = writeln!(out, "# shamir threshold: {t}");
    }
    for (path, what) in leaves {
        let _ = writeln!(out, "{path}: {what}");
    }
    out
}

/// Collects `(key path, description)` of every leaf of an encrypted tree (the `sops` key skipped).
fn walk(node: &Node, path: &mut String, out: &mut Vec<(String, String)>, root: bool) {
    match node {
        Node::Scalar(s) => {
            let what = match &s.value {
                Value::Str(text) if text.starts_with("ENC[") => {
                    format!("ENC sha256:{}", short_hash(text.as_bytes()))
                }
                Value::Null => "null".into(),
                Value::Str(text) => serde_json::to_string(text).unwrap_or_default(),
                Value::Int(t) | Value::Time(t) => t.clone(),
                Value::Float(f) => signet_sops::cipher::format_float(*f),
                Value::Bool(b) => b.to_string(),
                Value::Bytes(b) => format!("<{} bytes>", b.len()),
            };
            let shown = if path.is_empty() || path.ends_with(": ") {
                format!("{path}<top level>")
            } else {
                path.clone()
            };
            out.push((shown, what));
        }
        Node::Map(m) => {
            for entry in &m.entries {
                if let MapEntry::Pair(p) = entry {
                    if root && p.key == signet_sops::metadata::SOPS_KEY {
                        continue;
                    }
                    let mark = path.len();
                    let quoted = serde_json::to_string(&p.key).unwrap_or_default();
                    let _ = write!(path, "[{quoted}]");
                    walk(&p.value, path, out, false);
                    path.truncate(mark);
                }
            }
        }
        Node::Seq(s) => {
            let items = s.items.iter().filter_map(|i| match i {
                SeqItem::Node(n) => Some(n),
                SeqItem::Comment(_) => None,
            });
            for (i, item) in items.enumerate() {
                let mark = path.len();
                let _ = write!(path, "[{i}]");
                walk(item, path, out, false);
                path.truncate(mark);
            }
        }
    }
}

/// A summary of every SealedSecret of a manifest file (`None` when it holds none): name,
/// namespace, scope, template type, labels and annotations, and one line per item with a short
/// hash of its ciphertext. Other documents of the file are shown as JSON.
fn sealed_secret_summary(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    if !text.contains("SealedSecret") {
        return None;
    }
    let docs = signet_seal::manifest::parse_documents(text).ok()?;
    let is_sealed = |d: &Json| d.get("kind").and_then(Json::as_str) == Some("SealedSecret");
    if !docs.iter().any(is_sealed) {
        return None;
    }
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        if !is_sealed(doc) {
            out.push_str(&serde_json::to_string_pretty(doc).unwrap_or_default());
            out.push('\n');
            continue;
        }
        let s = |v: Option<&Json>| v.and_then(Json::as_str).unwrap_or("").to_owned();
        let meta = doc.get("metadata");
        let annotations = meta.and_then(|m| m.get("annotations"));
        let flag = |key: &str| s(annotations.and_then(|a| a.get(key))) == "true";
        let scope = if flag("sealedsecrets.bitnami.com/cluster-wide") {
            "cluster-wide"
        } else if flag("sealedsecrets.bitnami.com/namespace-wide") {
            "namespace-wide"
        } else {
            "strict"
        };
        let _ = writeln!(
            out,
            "SealedSecret {} (apiVersion {})",
            s(meta.and_then(|m| m.get("name"))),
            s(doc.get("apiVersion"))
        );
        let _ = writeln!(
            out,
            "  namespace: {}",
            s(meta.and_then(|m| m.get("namespace")))
        );
        let _ = writeln!(out, "  scope: {scope}");
        let sorted = |v: Option<&Json>| -> Vec<(String, String)> {
            let mut pairs: Vec<(String, String)> = v
                .and_then(Json::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            pairs.sort();
            pairs
        };
        for (k, v) in sorted(annotations) {
            let _ = writeln!(out, "  annotation {k}: {v}");
        }
        let spec = doc.get("spec");
        let template = spec.and_then(|sp| sp.get("template"));
        let ttype = s(template.and_then(|t| t.get("type")));
        if !ttype.is_empty() {
            let _ = writeln!(out, "  template type: {ttype}");
        }
        let tmeta = template.and_then(|t| t.get("metadata"));
        for (what, field) in [("label", "labels"), ("annotation", "annotations")] {
            for (k, v) in sorted(tmeta.and_then(|m| m.get(field))) {
                let _ = writeln!(out, "  template {what} {k}: {v}");
            }
        }
        for (k, v) in sorted(template.and_then(|t| t.get("data"))) {
            let _ = writeln!(out, "  template data {k}: {v}");
        }
        if let Some(data) = spec.and_then(|sp| sp.get("data")).and_then(Json::as_str) {
            let _ = writeln!(
                out,
                "  data (whole Secret): sha256:{}",
                short_hash(data.as_bytes())
            );
        }
        for (k, v) in sorted(spec.and_then(|sp| sp.get("encryptedData"))) {
            let _ = writeln!(
                out,
                "  encryptedData {k}: sha256:{}",
                short_hash(v.as_bytes())
            );
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEALED: &str = "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: app\n  namespace: prod\n  annotations:\n    sealedsecrets.bitnami.com/namespace-wide: \"true\"\nspec:\n  encryptedData:\n    user: AgBx1\n    password: AgBy2\n  template:\n    type: Opaque\n    metadata:\n      labels:\n        team: a\n";

    #[test]
    fn a_sealed_secret_is_summarised_with_one_hash_per_item() {
        let out = sealed_secret_summary(SEALED.as_bytes()).unwrap();
        assert_eq!(
            out,
            format!(
                "SealedSecret app (apiVersion bitnami.com/v1alpha1)\n  namespace: prod\n  scope: namespace-wide\n  annotation sealedsecrets.bitnami.com/namespace-wide: true\n  template type: Opaque\n  template label team: a\n  encryptedData password: sha256:{}\n  encryptedData user: sha256:{}\n",
                short_hash(b"AgBy2"),
                short_hash(b"AgBx1")
            )
        );
        // One changed item changes one line.
        let changed = sealed_secret_summary(SEALED.replace("AgBy2", "AgBz3").as_bytes()).unwrap();
        let differing = out
            .lines()
            .zip(changed.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 1);
    }

    #[test]
    fn other_manifests_are_not_summarised() {
        assert!(sealed_secret_summary(b"kind: ConfigMap\nmetadata:\n  name: x\n").is_none());
        assert!(sealed_secret_summary(b"\xff\xfe").is_none());
    }

    #[test]
    fn short_hashes_are_12_hex_digits() {
        assert_eq!(short_hash(b""), "e3b0c44298fc");
    }
}
