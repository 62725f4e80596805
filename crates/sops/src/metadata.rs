//! The `sops` metadata block: which master keys wrap the data key, the encryption rule, the MAC and
//! the version. Conversion to and from the tree form that stores read and write lives here too, so
//! every store shares one reading of the metadata.

/// Everything under the `sops:` key of an encrypted file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    /// The master-key groups. Without Shamir there is exactly one group; the flat `age`/`kms`/… lists
    /// of the file are that group.
    pub key_groups: Vec<KeyGroup>,
    /// How many groups are needed to recover the data key (`shamir_threshold`); `None` when the file
    /// has no key groups.
    pub shamir_threshold: Option<usize>,
    /// `lastmodified`, RFC 3339 UTC without fraction, also the MAC's AAD.
    pub last_modified: String,
    /// The encrypted MAC (`ENC[…]`), absent on files that lost it.
    pub mac: Option<String>,
    /// Which leaves are encrypted.
    pub rule: crate::rules::EncryptionRule,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
    /// `version`, the sops version that wrote the file.
    pub version: Option<String>,
}

/// A group of master keys; any one of them unwraps the group's share (or the whole data key).
pub type KeyGroup = Vec<MasterKeyEntry>;

/// One wrapped copy of the data key (or of a Shamir share of it).
#[derive(Debug, Clone, PartialEq)]
pub enum MasterKeyEntry {
    /// An `age` entry.
    Age(AgeEntry),
    /// An AWS KMS entry.
    Kms(KmsEntry),
    /// A Vault / OpenBao transit entry.
    HcVault(HcVaultEntry),
    /// A PGP entry.
    Pgp(PgpEntry),
    /// A GCP KMS or Azure Key Vault entry (kept verbatim; not unwrapped by Signet).
    Other(OtherEntry),
}

/// `age:` list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeEntry {
    /// The recipient string (`age1…`, `age1pq1…`, `ssh-ed25519 …`, plugin recipient).
    pub recipient: String,
    /// An ASCII-armored age file whose payload is the data key (or share).
    pub enc: String,
}

/// `kms:` list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsEntry {
    /// Key ARN or alias ARN.
    pub arn: String,
    /// Optional role to assume.
    pub role: Option<String>,
    /// Encryption context, in file order.
    pub context: Vec<(String, String)>,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Base64 ciphertext blob.
    pub enc: String,
    /// `aws_profile` (empty string when unset, as sops writes it).
    pub aws_profile: String,
}

/// `hc_vault:` list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HcVaultEntry {
    /// e.g. `http://127.0.0.1:8200`.
    pub vault_address: String,
    /// Transit mount, e.g. `transit`.
    pub engine_path: String,
    /// Transit key name.
    pub key_name: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// `vault:v1:…` ciphertext of the base64 data key.
    pub enc: String,
}

/// `pgp:` list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgpEntry {
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Armored PGP message.
    pub enc: String,
    /// Key fingerprint.
    pub fp: String,
}

/// A key entry of a kind Signet carries but does not use (`gcp_kms`, `azure_kv`), kept as its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherEntry {
    /// The metadata list it came from (`gcp_kms`, `azure_kv`).
    pub kind: String,
    /// Its fields in file order.
    pub fields: Vec<(String, String)>,
}

// ---------------------------------------------------------------------------------------------
// Tree form
// ---------------------------------------------------------------------------------------------

use crate::Error;
use crate::rules::EncryptionRule;
use crate::tree::{Map, MapEntry, Node, Pair, Scalar, Seq, SeqItem, Value};

/// The top-level key under which stores keep the metadata.
pub const SOPS_KEY: &str = "sops";

/// The prefix of flattened metadata keys in dotenv files (`sops_lastmodified`, …).
pub const FLAT_PREFIX: &str = "sops_";

/// The `version` Signet writes into new files: the sops release whose file format it follows.
pub const SOPS_FORMAT_VERSION: &str = "3.13.3";

const MAP_SEPARATOR: &str = "__map_";
const LIST_SEPARATOR: &str = "__list_";

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::InvalidMetadata {
        field: field.into(),
        message: message.into(),
    }
}

/// A scalar of the metadata as text (metadata fields are strings, but YAML may type them).
fn scalar_text(node: &Node, field: &str) -> Result<Option<String>, Error> {
    match node {
        Node::Scalar(s) => Ok(match &s.value {
            Value::Null => None,
            Value::Str(t) | Value::Int(t) | Value::Time(t) => Some(t.clone()),
            Value::Float(f) => Some(crate::cipher::format_float(*f)),
            Value::Bool(b) => Some(b.to_string()),
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        }),
        _ => Err(invalid(field, "expected a scalar")),
    }
}

/// The entries of a metadata list (`null` and `[]` both mean empty).
fn list_items<'a>(node: &'a Node, field: &str) -> Result<Vec<&'a Map>, Error> {
    match node {
        Node::Scalar(Scalar {
            value: Value::Null, ..
        }) => Ok(Vec::new()),
        Node::Scalar(Scalar {
            value: Value::Str(s),
            ..
        }) if s.is_empty() => Ok(Vec::new()),
        Node::Seq(seq) => seq
            .items
            .iter()
            .filter_map(|i| match i {
                SeqItem::Node(n) => Some(n),
                SeqItem::Comment(_) => None,
            })
            .enumerate()
            .map(|(i, n)| match n {
                Node::Map(m) => Ok(m),
                _ => Err(invalid(format!("{field}[{i}]"), "expected a mapping")),
            })
            .collect(),
        // Flattened files (dotenv, INI) with a map whose keys are list indices are converted by
        // `unflatten`, so a map here is an error.
        _ => Err(invalid(field, "expected a list")),
    }
}

fn field_string(map: &Map, key: &str, where_: &str) -> Result<Option<String>, Error> {
    match map.get(key) {
        Some(n) => scalar_text(n, &format!("{where_}.{key}")),
        None => Ok(None),
    }
}

fn required(map: &Map, key: &str, where_: &str) -> Result<String, Error> {
    field_string(map, key, where_)?.ok_or_else(|| invalid(format!("{where_}.{key}"), "missing"))
}

fn read_group_lists(map: &Map, where_: &str, group: &mut KeyGroup) -> Result<(), Error> {
    for (kind, node) in map.pairs() {
        let field = format!("{where_}{kind}");
        match kind {
            "age" => {
                for (i, m) in list_items(node, &field)?.into_iter().enumerate() {
                    let w = format!("{field}[{i}]");
                    group.push(MasterKeyEntry::Age(AgeEntry {
                        recipient: required(m, "recipient", &w)?,
                        enc: required(m, "enc", &w)?,
                    }));
                }
            }
            "kms" => {
                for (i, m) in list_items(node, &field)?.into_iter().enumerate() {
                    let w = format!("{field}[{i}]");
                    let context = match m.get("context") {
                        Some(Node::Map(c)) => c
                            .pairs()
                            .map(|(k, v)| {
                                Ok((
                                    k.to_owned(),
                                    scalar_text(v, &format!("{w}.context"))?.unwrap_or_default(),
                                ))
                            })
                            .collect::<Result<Vec<_>, Error>>()?,
                        Some(Node::Scalar(Scalar {
                            value: Value::Null, ..
                        }))
                        | None => Vec::new(),
                        Some(_) => {
                            return Err(invalid(format!("{w}.context"), "expected a mapping"));
                        }
                    };
                    group.push(MasterKeyEntry::Kms(KmsEntry {
                        arn: required(m, "arn", &w)?,
                        role: field_string(m, "role", &w)?.filter(|r| !r.is_empty()),
                        context,
                        created_at: field_string(m, "created_at", &w)?.unwrap_or_default(),
                        enc: required(m, "enc", &w)?,
                        aws_profile: field_string(m, "aws_profile", &w)?.unwrap_or_default(),
                    }));
                }
            }
            "hc_vault" => {
                for (i, m) in list_items(node, &field)?.into_iter().enumerate() {
                    let w = format!("{field}[{i}]");
                    group.push(MasterKeyEntry::HcVault(HcVaultEntry {
                        vault_address: required(m, "vault_address", &w)?,
                        engine_path: required(m, "engine_path", &w)?,
                        key_name: required(m, "key_name", &w)?,
                        created_at: field_string(m, "created_at", &w)?.unwrap_or_default(),
                        enc: required(m, "enc", &w)?,
                    }));
                }
            }
            "pgp" => {
                for (i, m) in list_items(node, &field)?.into_iter().enumerate() {
                    let w = format!("{field}[{i}]");
                    group.push(MasterKeyEntry::Pgp(PgpEntry {
                        created_at: field_string(m, "created_at", &w)?.unwrap_or_default(),
                        enc: required(m, "enc", &w)?,
                        fp: required(m, "fp", &w)?,
                    }));
                }
            }
            "gcp_kms" | "azure_kv" | "hckms" => {
                for (i, m) in list_items(node, &field)?.into_iter().enumerate() {
                    let w = format!("{field}[{i}]");
                    let fields = m
                        .pairs()
                        .map(|(k, v)| {
                            Ok((
                                k.to_owned(),
                                scalar_text(v, &format!("{w}.{k}"))?.unwrap_or_default(),
                            ))
                        })
                        .collect::<Result<Vec<_>, Error>>()?;
                    group.push(MasterKeyEntry::Other(OtherEntry {
                        kind: kind.to_owned(),
                        fields,
                    }));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_bool(text: &str, field: &str) -> Result<bool, Error> {
    // mapstructure's weak typing: "1", "true", "True", … and "" for false.
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Ok(false),
        _ => Err(invalid(field, "expected a boolean")),
    }
}

impl Metadata {
    /// Reads the metadata from the value of a `sops` key (any key order; `null`/`[]` lists; bare,
    /// quoted or timestamp-typed `lastmodified`). A missing or malformed `version` is refused, as
    /// sops refuses it (see [`check_version`]).
    pub fn from_node(node: &Node) -> Result<Metadata, Error> {
        let Node::Map(map) = node else {
            return Err(invalid(SOPS_KEY, "expected a mapping"));
        };
        let mut flat = KeyGroup::new();
        read_group_lists(map, "", &mut flat)?;
        let mut key_groups = Vec::new();
        if !flat.is_empty() {
            key_groups.push(flat);
        } else if let Some(groups) = map.get("key_groups") {
            for (i, g) in list_items(groups, "key_groups")?.into_iter().enumerate() {
                let mut group = KeyGroup::new();
                read_group_lists(g, &format!("key_groups[{i}]."), &mut group)?;
                key_groups.push(group);
            }
        }
        let shamir_threshold = match field_string(map, "shamir_threshold", SOPS_KEY)? {
            None => None,
            Some(t) if t.is_empty() => None,
            Some(t) => Some(
                t.parse::<usize>()
                    .map_err(|_| invalid("shamir_threshold", "expected an integer"))?,
            ),
        }
        .filter(|&t| t != 0);
        let last_modified = field_string(map, "lastmodified", SOPS_KEY)?
            .ok_or_else(|| invalid("lastmodified", "missing"))?;
        if chrono::DateTime::parse_from_rfc3339(&last_modified).is_err() {
            return Err(invalid("lastmodified", "not an RFC 3339 timestamp"));
        }
        let mac = field_string(map, "mac", SOPS_KEY)?.filter(|m| !m.is_empty());
        let mut rules = Vec::new();
        for (key, make) in [
            (
                "unencrypted_suffix",
                EncryptionRule::UnencryptedSuffix as fn(String) -> EncryptionRule,
            ),
            ("encrypted_suffix", EncryptionRule::EncryptedSuffix),
            ("unencrypted_regex", EncryptionRule::UnencryptedRegex),
            ("encrypted_regex", EncryptionRule::EncryptedRegex),
            (
                "unencrypted_comment_regex",
                EncryptionRule::UnencryptedCommentRegex,
            ),
            (
                "encrypted_comment_regex",
                EncryptionRule::EncryptedCommentRegex,
            ),
        ] {
            if let Some(v) = field_string(map, key, SOPS_KEY)?.filter(|v| !v.is_empty()) {
                rules.push(make(v));
            }
        }
        if rules.len() > 1 {
            return Err(invalid(
                "encryption rule",
                "cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, \
                 unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file",
            ));
        }
        let rule = rules.pop().unwrap_or_default();
        let mac_only_encrypted = match field_string(map, "mac_only_encrypted", SOPS_KEY)? {
            Some(t) => parse_bool(&t, "mac_only_encrypted")?,
            None => false,
        };
        let version = field_string(map, "version", SOPS_KEY)?.filter(|v| !v.is_empty());
        check_version(version.as_deref())?;
        Ok(Metadata {
            key_groups,
            shamir_threshold,
            last_modified,
            mac,
            rule,
            mac_only_encrypted,
            version,
        })
    }

    /// Writes the metadata as the value of the `sops` key, in the key order sops 3.13 writes
    /// (alphabetical at every level, as its `stores.SerializeMetadata` sorts map keys): `age`,
    /// `azure_kv`, the rule, `gcp_kms`, `hc_vault`, `hckms`, `key_groups`, `kms`, `lastmodified`,
    /// `mac`, `mac_only_encrypted`, `pgp`, `shamir_threshold`, …, `version`. Empty key lists are
    /// left out (inside `key_groups` entries sops always writes `age` and `hc_vault`, `[]` when
    /// empty, and so do we).
    pub fn to_node(&self) -> Node {
        let mut entries: Vec<(String, Node)> = Vec::new();
        if self.key_groups.len() == 1 {
            entries.extend(group_lists(&self.key_groups[0], false));
        } else if !self.key_groups.is_empty() {
            let groups = self
                .key_groups
                .iter()
                .map(|g| {
                    let mut e = group_lists(g, true);
                    e.sort_by(|a, b| a.0.cmp(&b.0));
                    map_node(e)
                })
                .collect();
            entries.push(("key_groups".into(), seq_node(groups)));
        }
        let (rule_key, rule_value) = self.rule.key_and_value();
        entries.push((rule_key.to_owned(), str_node(rule_value)));
        entries.push(("lastmodified".into(), str_node(&self.last_modified)));
        entries.push(("mac".into(), str_node(self.mac.as_deref().unwrap_or(""))));
        if self.mac_only_encrypted {
            entries.push((
                "mac_only_encrypted".into(),
                Node::Scalar(Scalar::new(Value::Bool(true))),
            ));
        }
        if let Some(t) = self.shamir_threshold.filter(|&t| t != 0) {
            entries.push((
                "shamir_threshold".into(),
                Node::Scalar(Scalar::new(Value::Int(t.to_string()))),
            ));
        }
        entries.push((
            "version".into(),
            str_node(self.version.as_deref().unwrap_or(SOPS_FORMAT_VERSION)),
        ));
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        map_node(entries)
    }

    /// What `sops filestatus` calls encrypted: metadata with a `version` and a `mac`.
    pub fn is_complete(&self) -> bool {
        self.version.is_some() && self.mac.is_some()
    }

    /// As `sops edit` does: raise `version` to [`SOPS_FORMAT_VERSION`] when it is missing or older
    /// (a newer version is kept). Returns whether it changed.
    pub fn bump_version(&mut self) -> bool {
        fn parse(v: &str) -> Vec<u64> {
            v.trim_start_matches('v')
                .split(['.', '-', '+'])
                .take(3)
                .map(|p| p.parse().unwrap_or(0))
                .collect()
        }
        let older = match &self.version {
            None => true,
            Some(v) => parse(v) < parse(SOPS_FORMAT_VERSION),
        };
        if older {
            self.version = Some(SOPS_FORMAT_VERSION.to_owned());
        }
        older
    }

    /// All master-key entries of all groups.
    pub fn all_keys(&self) -> impl Iterator<Item = &MasterKeyEntry> {
        self.key_groups.iter().flatten()
    }
}

fn str_node(s: &str) -> Node {
    Node::Scalar(Scalar::new(Value::Str(s.to_owned())))
}

fn map_node(entries: Vec<(String, Node)>) -> Node {
    Node::Map(Map {
        entries: entries
            .into_iter()
            .map(|(key, value)| {
                MapEntry::Pair(Pair {
                    key,
                    value,
                    origin: None,
                })
            })
            .collect(),
        origin: None,
    })
}

fn seq_node(items: Vec<Node>) -> Node {
    Node::Seq(Seq {
        items: items.into_iter().map(SeqItem::Node).collect(),
        origin: None,
    })
}

fn sorted_map(mut fields: Vec<(&str, String)>) -> Node {
    fields.sort_by(|a, b| a.0.cmp(b.0));
    map_node(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), str_node(&v)))
            .collect(),
    )
}

/// The per-kind lists of one group, unsorted; `in_group` adds sops' always-present `age`/`hc_vault`.
fn group_lists(group: &KeyGroup, in_group: bool) -> Vec<(String, Node)> {
    let mut lists: Vec<(String, Vec<Node>)> = Vec::new();
    let mut push = |kind: &str, node: Node| match lists.iter_mut().find(|(k, _)| k == kind) {
        Some((_, v)) => v.push(node),
        None => lists.push((kind.to_owned(), vec![node])),
    };
    for entry in group {
        match entry {
            MasterKeyEntry::Age(a) => push(
                "age",
                sorted_map(vec![
                    ("recipient", a.recipient.clone()),
                    ("enc", a.enc.clone()),
                ]),
            ),
            MasterKeyEntry::Kms(k) => {
                let mut e: Vec<(String, Node)> = vec![
                    ("arn".into(), str_node(&k.arn)),
                    ("aws_profile".into(), str_node(&k.aws_profile)),
                    ("created_at".into(), str_node(&k.created_at)),
                    ("enc".into(), str_node(&k.enc)),
                ];
                if let Some(role) = &k.role {
                    e.push(("role".into(), str_node(role)));
                }
                if !k.context.is_empty() {
                    let mut c: Vec<(String, Node)> = k
                        .context
                        .iter()
                        .map(|(a, b)| (a.clone(), str_node(b)))
                        .collect();
                    c.sort_by(|a, b| a.0.cmp(&b.0));
                    e.push(("context".into(), map_node(c)));
                }
                e.sort_by(|a, b| a.0.cmp(&b.0));
                push("kms", map_node(e))
            }
            MasterKeyEntry::HcVault(v) => push(
                "hc_vault",
                sorted_map(vec![
                    ("vault_address", v.vault_address.clone()),
                    ("engine_path", v.engine_path.clone()),
                    ("key_name", v.key_name.clone()),
                    ("created_at", v.created_at.clone()),
                    ("enc", v.enc.clone()),
                ]),
            ),
            MasterKeyEntry::Pgp(p) => push(
                "pgp",
                sorted_map(vec![
                    ("created_at", p.created_at.clone()),
                    ("enc", p.enc.clone()),
                    ("fp", p.fp.clone()),
                ]),
            ),
            MasterKeyEntry::Other(o) => push(
                &o.kind,
                sorted_map(
                    o.fields
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.clone()))
                        .collect(),
                ),
            ),
        }
    }
    let mut out: Vec<(String, Node)> = lists.into_iter().map(|(k, v)| (k, seq_node(v))).collect();
    if in_group {
        for kind in ["age", "hc_vault"] {
            if !out.iter().any(|(k, _)| k == kind) {
                out.push((kind.to_owned(), seq_node(Vec::new())));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Flattened form (dotenv: `sops_age__list_0__map_enc`; INI: `[sops]` + `age__list_0__map_enc`)
// ---------------------------------------------------------------------------------------------

/// Refuses a `version` sops refuses, with sops' words: sops parses it with `blang/semver`'s strict
/// `Parse` after dropping one leading `v`, except that a version starting `1.` (sops 1.x files) is
/// not parsed at all.
pub fn check_version(version: Option<&str>) -> Result<(), Error> {
    let fail = |message: String| Err(Error::InvalidVersion { message });
    let Some(v) = version.filter(|v| !v.is_empty()) else {
        return fail("Version string empty".into());
    };
    if v.starts_with("1.") {
        return Ok(());
    }
    let v = v.strip_prefix('v').unwrap_or(v);
    if v.is_empty() {
        return fail("Version string empty".into());
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let leading_zero = |s: &str| s.len() > 1 && s.starts_with('0');
    let number = |s: &str, what: &str| {
        if !digits(s) {
            return Err(format!("Invalid character(s) found in {what} number {s:?}"));
        }
        if leading_zero(s) {
            let what = format!("{}{}", what[..1].to_uppercase(), &what[1..]);
            return Err(format!(
                "{what} number must not contain leading zeroes {s:?}"
            ));
        }
        let why = if s.is_empty() {
            "invalid syntax"
        } else {
            "value out of range"
        };
        s.parse::<u64>()
            .map(drop)
            .map_err(|_| format!("strconv.ParseUint: parsing {s:?}: {why}"))
    };
    let parts: Vec<&str> = v.splitn(3, '.').collect();
    let [major, minor, rest] = parts[..] else {
        return fail("No Major.Minor.Patch elements found".into());
    };
    let (rest, build) = match rest.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (rest, None),
    };
    let (patch, pre) = match rest.split_once('-') {
        Some((p, pre)) => (p, Some(pre)),
        None => (rest, None),
    };
    let checked = number(major, "major")
        .and_then(|()| number(minor, "minor"))
        .and_then(|()| number(patch, "patch"));
    if let Err(message) = checked {
        return fail(message);
    }
    for part in pre.into_iter().flat_map(|p| p.split('.')) {
        if part.is_empty() {
            return fail("Prerelease is empty".into());
        }
        if digits(part) && leading_zero(part) {
            return fail(format!(
                "Numeric PreRelease version must not contain leading zeroes {part:?}"
            ));
        }
        if !alnum(part) {
            return fail(format!("Invalid character(s) found in prerelease {part:?}"));
        }
    }
    for part in build.into_iter().flat_map(|b| b.split('.')) {
        if part.is_empty() {
            return fail("Build meta data is empty".into());
        }
        if !alnum(part) {
            return fail(format!(
                "Invalid character(s) found in build meta data {part:?}"
            ));
        }
    }
    Ok(())
}

/// Flattens the metadata node (as [`Metadata::to_node`] makes it) into `(key, scalar)` pairs, keys
/// prefixed with `prefix` (`"sops_"` for dotenv, `""` for INI). Nested maps add `__map_<key>`,
/// lists `__list_<index>`, as sops' `stores/flatten.go`. Order: depth-first in node order (which is
/// alphabetical, so matching sops).
pub fn flatten(node: &Node, prefix: &str) -> Vec<(String, Scalar)> {
    fn walk(node: &Node, key: String, out: &mut Vec<(String, Scalar)>) {
        match node {
            Node::Map(m) => {
                for (k, v) in m.pairs() {
                    walk(v, format!("{key}{MAP_SEPARATOR}{k}"), out);
                }
            }
            Node::Seq(s) => {
                let items = s.items.iter().filter_map(|i| match i {
                    SeqItem::Node(n) => Some(n),
                    SeqItem::Comment(_) => None,
                });
                for (i, n) in items.enumerate() {
                    walk(n, format!("{key}{LIST_SEPARATOR}{i}"), out);
                }
            }
            Node::Scalar(s) => out.push((key, s.clone())),
        }
    }
    let mut out = Vec::new();
    if let Node::Map(m) = node {
        for (k, v) in m.pairs() {
            walk(v, format!("{prefix}{k}"), &mut out);
        }
    }
    out
}

/// Rebuilds the metadata node from flattened `(key, value)` pairs whose prefix was already removed
/// (the inverse of [`flatten`]). Errors on duplicate keys, a key that is both a value and a
/// container, or lists with holes.
pub fn unflatten(pairs: &[(String, Scalar)]) -> Result<Node, Error> {
    #[derive(Default)]
    struct Slot {
        value: Option<Scalar>,
        keys: std::collections::BTreeMap<String, Slot>,
        indices: std::collections::BTreeMap<usize, Slot>,
    }
    fn tokenize(path: &str) -> Vec<(bool, String)> {
        // (is_list, token); the first token is a map key
        let mut tokens = Vec::new();
        let mut rest = path;
        let mut is_list = false;
        loop {
            let next_map = rest.find(MAP_SEPARATOR);
            let next_list = rest.find(LIST_SEPARATOR);
            let (pos, sep_len, next_is_list) = match (next_map, next_list) {
                (Some(m), Some(l)) if l < m => (l, LIST_SEPARATOR.len(), true),
                (Some(m), _) => (m, MAP_SEPARATOR.len(), false),
                (None, Some(l)) => (l, LIST_SEPARATOR.len(), true),
                (None, None) => {
                    tokens.push((is_list, rest.to_owned()));
                    return tokens;
                }
            };
            tokens.push((is_list, rest[..pos].to_owned()));
            rest = &rest[pos + sep_len..];
            is_list = next_is_list;
        }
    }
    fn convert(slot: Slot, path: &str) -> Result<Node, Error> {
        let kinds = slot.value.is_some() as u8
            + !slot.keys.is_empty() as u8
            + !slot.indices.is_empty() as u8;
        if kinds > 1 {
            return Err(invalid(
                path,
                "flattened key is both a value and a container",
            ));
        }
        if let Some(v) = slot.value {
            return Ok(Node::Scalar(v));
        }
        if !slot.indices.is_empty() {
            let n = slot.indices.len();
            if slot.indices.keys().next_back() != Some(&(n - 1)) {
                return Err(invalid(path, "incomplete flattened list"));
            }
            let items = slot
                .indices
                .into_iter()
                .map(|(i, s)| convert(s, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(seq_node(items));
        }
        let entries = slot
            .keys
            .into_iter()
            .map(|(k, s)| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                Ok((k, convert(s, &p)?))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(map_node(entries))
    }
    let mut root = Slot::default();
    for (key, value) in pairs {
        let mut slot = &mut root;
        let tokens = tokenize(key);
        // sops metadata is at most a few levels deep; refuse pathological keys before recursing.
        if tokens.len() > 16 {
            return Err(invalid(key.as_str(), "flattened key nested too deeply"));
        }
        for (is_list, token) in tokens {
            slot = if is_list {
                let i = token
                    .parse::<usize>()
                    .map_err(|_| invalid(key.as_str(), "bad list index"))?;
                slot.indices.entry(i).or_default()
            } else {
                slot.keys.entry(token).or_default()
            };
        }
        if slot.value.is_some() {
            return Err(invalid(key.as_str(), "duplicate flattened key"));
        }
        slot.value = Some(value.clone());
    }
    convert(root, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each spelling decided as sops 3.11 decides it (measured with `sops -d`).
    #[test]
    fn versions_checked_as_sops_checks_them() {
        for ok in [
            "3.11.0",
            "v3.7.3",
            "3.7.3-rc1",
            "3.7.3+build",
            "1.0.0",
            "0.0.0",
            "1.2",
            "1.a.b",
            "1.2.3.4",
            "1.2.3-01",
            "3.13.3-0",
            "3.13.3-rc.1",
            "3.13.3-alpha.beta+exp.sha.5114f85",
            "18446744073709551615.0.0",
            "3.1.1-a-b",
            "3.1.1+0001",
        ] {
            assert!(check_version(Some(ok)).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("", "Version string empty"),
            ("3.7", "No Major.Minor.Patch elements found"),
            ("3", "No Major.Minor.Patch elements found"),
            ("true", "No Major.Minor.Patch elements found"),
            ("garbage", "No Major.Minor.Patch elements found"),
            ("03.1.1", "Major number must not contain leading zeroes"),
            (" 3.7.3", "Invalid character(s) found in major number"),
            ("3.7.3.4", "Invalid character(s) found in patch number"),
            (
                "10.2.3-01",
                "Numeric PreRelease version must not contain leading zeroes",
            ),
            (
                "v1.2.3-01",
                "Numeric PreRelease version must not contain leading zeroes",
            ),
            ("3.13.3-", "Prerelease is empty"),
            ("3.13.3+", "Build meta data is empty"),
            ("3.13.3-!", "Invalid character(s) found in prerelease"),
            ("3.13.3+a..b", "Build meta data is empty"),
            ("18446744073709551616.0.0", "value out of range"),
            ("V3.1.1", "Invalid character(s) found in major number"),
            ("vv3.1.1", "Invalid character(s) found in major number"),
        ] {
            let err = check_version(Some(bad)).unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        assert!(
            check_version(None)
                .unwrap_err()
                .to_string()
                .contains("Version string empty")
        );
    }

    #[test]
    fn version_bump_only_raises() {
        let mut m = Metadata {
            version: Some("3.7.3".into()),
            ..Metadata::default()
        };
        assert!(m.bump_version());
        assert_eq!(m.version.as_deref(), Some(SOPS_FORMAT_VERSION));
        let mut m = Metadata {
            version: Some("3.99.0".into()),
            ..Metadata::default()
        };
        assert!(!m.bump_version());
        assert_eq!(m.version.as_deref(), Some("3.99.0"));
        let mut m = Metadata::default();
        assert!(m.bump_version());
    }

    #[test]
    fn flatten_names_match_sops() {
        let m = Metadata {
            key_groups: vec![vec![MasterKeyEntry::Age(AgeEntry {
                recipient: "age1x".into(),
                enc: "E".into(),
            })]],
            last_modified: "2024-01-01T00:00:00Z".into(),
            mac: Some("ENC[m]".into()),
            version: Some("3.13.2".into()),
            ..Metadata::default()
        };
        let keys: Vec<String> = flatten(&m.to_node(), FLAT_PREFIX)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "sops_age__list_0__map_enc",
                "sops_age__list_0__map_recipient",
                "sops_lastmodified",
                "sops_mac",
                "sops_unencrypted_suffix",
                "sops_version"
            ]
        );
    }
}
