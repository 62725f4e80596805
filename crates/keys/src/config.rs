//! `.sops.yaml`: where it is found, its `creation_rules` and `stores` sections, read as sops 3.13
//! reads them (`config/config.go`).
//!
//! - The file is found by walking up from a directory (sops: the working directory), at most
//!   100 levels; `.sops.yml` is not used but gives a warning.
//! - Rules are tried in order and the first whose `path_regex` matches wins; a rule without
//!   `path_regex` (or with an empty one) matches everything. The regex is unanchored and is
//!   matched against the file's absolute path with the config file's directory and `/`
//!   stripped from its front (so relative to the config when the file is below it).
//! - A rule's keys are read only when the rule is chosen, so a typo in another rule does not
//!   break this file. Unknown fields are ignored, like sops.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use std::collections::BTreeMap;

use serde::de::{IgnoredAny, MapAccess, Visitor};
use signet_sops::rules::EncryptionRule;

use crate::Error;
use crate::keyspec::{KeySpec, KmsKey, VaultTransitKey};

/// The config file name sops uses.
pub const CONFIG_FILE_NAME: &str = ".sops.yaml";
const ALTERNATE_CONFIG_NAME: &str = ".sops.yml";
const MAX_DEPTH: usize = 100;

/// The result of looking for `.sops.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigLookup {
    /// The config file found, if any.
    pub path: Option<PathBuf>,
    /// A warning to show (a `.sops.yml` was seen and ignored).
    pub warning: Option<String>,
}

/// Looks for `.sops.yaml` in `start_dir` and its parents, like sops.
pub fn find_config_file(start_dir: &Path) -> ConfigLookup {
    let mut dir = absolute_clean(start_dir);
    let mut alternate: Option<PathBuf> = None;
    for _ in 0..MAX_DEPTH {
        let candidate = dir.join(CONFIG_FILE_NAME);
        if candidate.exists() {
            let warning = alternate.map(|alt| {
                format!(
                    "ignoring {:?} when searching for config file; the config file must be called {CONFIG_FILE_NAME:?}; using {:?} instead",
                    alt.display().to_string(),
                    candidate.display().to_string()
                )
            });
            return ConfigLookup {
                path: Some(candidate),
                warning,
            };
        }
        if alternate.is_none() {
            let alt = dir.join(ALTERNATE_CONFIG_NAME);
            if alt.exists() {
                alternate = Some(alt);
            }
        }
        if !dir.pop() {
            break;
        }
    }
    ConfigLookup {
        path: None,
        warning: alternate.map(|alt| {
            format!(
                "ignoring {:?} when searching for config file; the config file must be called {CONFIG_FILE_NAME:?}",
                alt.display().to_string()
            )
        }),
    }
}

/// Store settings from `stores:`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoresConfig {
    /// `stores.yaml.indent` (sops' default, 4, when `None`).
    pub yaml_indent: Option<usize>,
    /// `stores.json.indent` (tab when `None`; sops' `-1`).
    pub json_indent: Option<usize>,
    /// `stores.json_binary.indent`.
    pub json_binary_indent: Option<usize>,
}

/// A parsed `.sops.yaml`.
#[derive(Debug, Clone)]
pub struct SopsConfig {
    path: PathBuf,
    creation_rules: Option<Vec<RawRule>>,
    /// The `stores:` section.
    pub stores: StoresConfig,
    warnings: Vec<String>,
}

/// The creation rule chosen for a file, with its keys resolved.
#[derive(Debug, Clone)]
pub struct CreationRule {
    /// 0-based position in `creation_rules`.
    pub index: usize,
    /// The rule's `path_regex`, if it had one.
    pub path_regex: Option<String>,
    /// The master keys, one list per key group (a single group without `key_groups`).
    pub key_groups: Vec<Vec<KeySpec>>,
    /// `shamir_threshold`, when set and non-zero.
    pub shamir_threshold: Option<usize>,
    /// The one encryption rule of the six, if the rule sets one.
    pub encryption_rule: Option<EncryptionRule>,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
}

impl SopsConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let io_err = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        // Bounded: a `.sops.yaml` is found by walking up from the working directory, so it may
        // come with a repository someone else wrote.
        let bytes = signet_sops::limits::read_file(path).map_err(io_err)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not UTF-8 text",
            ))
        })?;
        SopsConfig::parse(&text, path)
    }

    /// Parses config text; `path` is where it came from (used for matching and errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            // Alias replay bounded well below serde-saphyr's default (a million events): a
            // configuration file has no use for more.
            let options = serde_saphyr::options! {
                alias_limits: serde_saphyr::alias_limits! { max_total_replayed_events: 10_000 },
            };
            serde_saphyr::from_str_with_options(text, options).map_err(|e| Error::Config {
                path: path.to_owned(),
                rule: None,
                message: format!("could not parse the config file: {e}"),
            })?
        };
        let indent = |i: Option<i64>| i.and_then(|n| usize::try_from(n).ok());
        let warnings = unknown_field_warnings(&raw);
        Ok(SopsConfig {
            path: path.to_owned(),
            warnings,
            creation_rules: raw.creation_rules,
            stores: StoresConfig {
                yaml_indent: indent(raw.stores.yaml.indent).filter(|n| *n > 0),
                json_indent: indent(raw.stores.json.indent),
                json_binary_indent: indent(raw.stores.json_binary.indent),
            },
        })
    }

    /// Fields sops would ignore (and so do we), named with their place, e.g.
    /// `creation_rules[2]: unknown field "encrypted_regexp" ignored`. For the CLI to print.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The config file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file has a `creation_rules` key at all (sops treats a config without one as
    /// absent).
    pub fn has_creation_rules(&self) -> bool {
        self.creation_rules.is_some()
    }

    /// The `path_regex` of every creation rule, in order (`None` for a rule without one, which
    /// matches every file).
    pub fn path_regexes(&self) -> Vec<Option<&str>> {
        self.creation_rules
            .iter()
            .flatten()
            .map(|r| r.path_regex.as_deref())
            .collect()
    }

    /// Chooses the creation rule for `file` (a path as given on the command line; made
    /// absolute against the working directory). `Ok(None)` when the config has no
    /// `creation_rules`; an error naming the config when none matches or the chosen rule is
    /// invalid.
    pub fn creation_rule_for(&self, file: &Path) -> Result<Option<CreationRule>, Error> {
        let Some(rules) = &self.creation_rules else {
            return Ok(None);
        };
        let matched = self.match_path(file);
        for (index, rule) in rules.iter().enumerate() {
            let matches = match rule.path_regex.as_deref() {
                None | Some("") => true,
                Some(pattern) => regex::Regex::new(pattern)
                    .map_err(|e| {
                        self.rule_error(index, format!("can not compile path_regex: {e}"))
                    })?
                    .is_match(&matched),
            };
            if matches {
                return self.resolve(index, rule).map(Some);
            }
        }
        Err(Error::NoMatchingRule {
            config: self.path.clone(),
            file: matched,
        })
    }

    /// The string `path_regex` is matched against for `file`.
    pub fn match_path(&self, file: &Path) -> String {
        let file = absolute_clean(file).to_string_lossy().into_owned();
        let dir = absolute_clean(self.path.parent().unwrap_or(Path::new(".")));
        let prefix = format!("{}{}", dir.to_string_lossy(), std::path::MAIN_SEPARATOR);
        file.strip_prefix(&prefix)
            .map(str::to_owned)
            .unwrap_or(file)
    }

    fn rule_error(&self, index: usize, message: String) -> Error {
        Error::Config {
            path: self.path.clone(),
            rule: Some(index),
            message,
        }
    }

    fn resolve(&self, index: usize, rule: &RawRule) -> Result<CreationRule, Error> {
        let err = |message: String| self.rule_error(index, message);
        let candidates = [
            (
                &rule.unencrypted_suffix,
                EncryptionRule::UnencryptedSuffix as fn(String) -> EncryptionRule,
            ),
            (&rule.encrypted_suffix, EncryptionRule::EncryptedSuffix),
            (&rule.unencrypted_regex, EncryptionRule::UnencryptedRegex),
            (&rule.encrypted_regex, EncryptionRule::EncryptedRegex),
            (
                &rule.unencrypted_comment_regex,
                EncryptionRule::UnencryptedCommentRegex,
            ),
            (
                &rule.encrypted_comment_regex,
                EncryptionRule::EncryptedCommentRegex,
            ),
        ];
        let set: Vec<EncryptionRule> = candidates
            .into_iter()
            .filter_map(|(value, make)| {
                value
                    .as_ref()
                    .filter(|v| !v.is_empty())
                    .map(|v| make(v.clone()))
            })
            .collect();
        if set.len() > 1 {
            return Err(err(
                "cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex for the same rule".to_owned(),
            ));
        }

        let key_groups = match &rule.key_groups {
            Some(groups) if !groups.is_empty() => groups
                .iter()
                .map(|g| resolve_group(g).map(dedup))
                .collect::<Result<Vec<_>, String>>()
                .map_err(err)?,
            _ => vec![resolve_flat(rule).map_err(err)?],
        };
        let shamir_threshold = match rule.shamir_threshold {
            None | Some(0) => None,
            Some(n) => {
                Some(usize::try_from(n).map_err(|_| err(format!("invalid shamir_threshold {n}")))?)
            }
        };
        Ok(CreationRule {
            index,
            path_regex: rule.path_regex.clone(),
            key_groups,
            shamir_threshold,
            encryption_rule: set.into_iter().next(),
            mac_only_encrypted: rule.mac_only_encrypted.unwrap_or(false),
        })
    }
}

/// Top-level keys sops knows besides the ones Signet reads.
const OTHER_TOP_LEVEL_KEYS: &[&str] = &["destination_rules"];

fn unknown_field_warnings(raw: &RawConfig) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut note = |place: String, unknown: &BTreeMap<String, IgnoredAny>| {
        for name in unknown.keys() {
            warnings.push(format!("{place}unknown field {name:?} ignored"));
        }
    };
    let top: BTreeMap<String, IgnoredAny> = raw
        .unknown
        .keys()
        .filter(|k| !OTHER_TOP_LEVEL_KEYS.contains(&k.as_str()))
        .map(|k| (k.clone(), IgnoredAny))
        .collect();
    note(String::new(), &top);
    for (i, rule) in raw.creation_rules.iter().flatten().enumerate() {
        note(format!("creation_rules[{i}]: "), &rule.unknown);
        for (g, group) in rule.key_groups.iter().flatten().enumerate() {
            note(
                format!("creation_rules[{i}].key_groups[{g}]: "),
                &group.unknown,
            );
        }
    }
    warnings
}

fn dedup(group: Vec<KeySpec>) -> Vec<KeySpec> {
    let mut out: Vec<KeySpec> = Vec::with_capacity(group.len());
    for key in group {
        if !out.iter().any(|k| k.same_key(&key)) {
            out.push(key);
        }
    }
    out
}

fn comma_list(field: &Option<StringOrList>) -> Vec<String> {
    match field {
        None => Vec::new(),
        Some(StringOrList::One(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(StringOrList::Many(items)) => items.clone(),
    }
}

fn unsupported(field: &Option<StringOrList>, name: &str) -> Result<(), String> {
    if comma_list(field).is_empty() {
        Ok(())
    } else {
        Err(format!("{name} keys are not supported by Signet"))
    }
}

/// A rule without `key_groups`: one group from the flat fields.
fn resolve_flat(rule: &RawRule) -> Result<Vec<KeySpec>, String> {
    let mut group = Vec::new();
    let age = comma_list(&rule.age).join(",");
    group.extend(KeySpec::age_list(&age).map_err(|e| e.to_string())?);
    group.extend(KeySpec::pgp_list(&comma_list(&rule.pgp).join(",")));
    group.extend(KeySpec::kms_list(
        &comma_list(&rule.kms).join(","),
        &[],
        rule.aws_profile.as_deref().unwrap_or(""),
    ));
    unsupported(&rule.gcp_kms, "gcp_kms")?;
    unsupported(&rule.azure_keyvault, "azure_keyvault")?;
    unsupported(&rule.hckms, "hckms")?;
    group.extend(
        KeySpec::vault_list(&comma_list(&rule.hc_vault_transit_uri).join(","))
            .map_err(|e| e.to_string())?,
    );
    Ok(group)
}

fn resolve_group(group: &RawKeyGroup) -> Result<Vec<KeySpec>, String> {
    let mut keys = Vec::new();
    for merged in group.merge.iter().flatten() {
        keys.extend(resolve_group(merged)?);
    }
    for item in group.age.iter().flatten() {
        keys.extend(KeySpec::age_list(item).map_err(|e| e.to_string())?);
    }
    for fp in group.pgp.iter().flatten() {
        keys.push(KeySpec::Pgp(fp.clone()));
    }
    for kms in group.kms.iter().flatten() {
        let mut key = KmsKey::from_arn(
            &kms.arn,
            &kms.context.0,
            kms.aws_profile.as_deref().unwrap_or(""),
        );
        if let Some(role) = kms.role.as_deref().filter(|r| !r.is_empty()) {
            key.role = Some(role.to_owned());
        }
        keys.push(KeySpec::Kms(key));
    }
    if group.gcp_kms.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err("gcp_kms keys are not supported by Signet".to_owned());
    }
    if group.azure_keyvault.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err("azure_keyvault keys are not supported by Signet".to_owned());
    }
    if group.hckms.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err("hckms keys are not supported by Signet".to_owned());
    }
    for uri in group.hc_vault.iter().flatten() {
        keys.push(KeySpec::HcVault(
            VaultTransitKey::parse_uri(uri).map_err(|e| e.to_string())?,
        ));
    }
    Ok(keys)
}

/// Makes `path` absolute against the working directory and removes `.` and `..` lexically
/// (Go's `filepath.Abs`).
pub fn absolute_clean(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    creation_rules: Option<Vec<RawRule>>,
    #[serde(default)]
    stores: RawStores,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawStores {
    #[serde(default)]
    yaml: RawIndent,
    #[serde(default)]
    json: RawIndent,
    #[serde(default)]
    json_binary: RawIndent,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawIndent {
    #[serde(default)]
    indent: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawRule {
    path_regex: Option<String>,
    kms: Option<StringOrList>,
    aws_profile: Option<String>,
    age: Option<StringOrList>,
    pgp: Option<StringOrList>,
    gcp_kms: Option<StringOrList>,
    hckms: Option<StringOrList>,
    azure_keyvault: Option<StringOrList>,
    hc_vault_transit_uri: Option<StringOrList>,
    key_groups: Option<Vec<RawKeyGroup>>,
    shamir_threshold: Option<i64>,
    unencrypted_suffix: Option<String>,
    encrypted_suffix: Option<String>,
    unencrypted_regex: Option<String>,
    encrypted_regex: Option<String>,
    unencrypted_comment_regex: Option<String>,
    encrypted_comment_regex: Option<String>,
    mac_only_encrypted: Option<bool>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawKeyGroup {
    merge: Option<Vec<RawKeyGroup>>,
    kms: Option<Vec<RawKms>>,
    gcp_kms: Option<Vec<IgnoredAny>>,
    hckms: Option<Vec<IgnoredAny>>,
    azure_keyvault: Option<Vec<IgnoredAny>>,
    hc_vault: Option<Vec<String>>,
    age: Option<Vec<String>>,
    pgp: Option<Vec<String>>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawKms {
    arn: String,
    role: Option<String>,
    #[serde(default)]
    context: OrderedContext,
    aws_profile: Option<String>,
}

/// A KMS encryption context map kept in file order; null values are dropped.
#[derive(Debug, Clone, Default)]
struct OrderedContext(Vec<(String, String)>);

impl<'de> Deserialize<'de> for OrderedContext {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContextVisitor;
        impl<'de> Visitor<'de> for ContextVisitor {
            type Value = OrderedContext;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<OrderedContext, E> {
                Ok(OrderedContext::default())
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<OrderedContext, E> {
                Ok(OrderedContext::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedContext, A::Error> {
                let mut pairs = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Option<String>>()? {
                    if let Some(value) = value {
                        pairs.push((key, value));
                    }
                }
                Ok(OrderedContext(pairs))
            }
        }
        deserializer.deserialize_any(ContextVisitor)
    }
}
