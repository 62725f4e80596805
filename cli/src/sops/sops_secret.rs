//! `signet encrypt --kind SopsSecret`: turns a plain Secret manifest into a `signet.dev/v1alpha1`
//! SopsSecret before encryption. The Secret's labels, annotations, type and immutability move to
//! `spec.template`; `data` and `stringData` stay values, their keys sorted, and `spec.binding`
//! (encrypted with them, see [`signet_api::sops_secret`]) says where the controller may open the
//! object. The encrypted values come in the order the API server returns them (`binding`, then
//! `data`, then `stringData`, keys sorted), where the MAC is cheapest to check.
//!
//! A plain SopsSecret with `spec.secretTemplates` — sops-secrets-operator's
//! (`isindir.github.com/*`, decrypted with `sops -d`) or Signet's — is converted the same way: its
//! templates kept (`name`, `labels`, `annotations`, `type`, `immutable`, `data`, `stringData`),
//! every map's keys sorted (the controller checks the MAC of such an object only in that order),
//! and a binding added.

use crate::exit::{CliError, CliResult, code};
use crate::seal::ScopeArg;
use serde_json::{Map, Value, json};
use signet_api::sops_secret::{BINDING_FIELD, Binding};
use signet_sops::Format;
use zeroize::Zeroizing;

/// Where the SopsSecret may be opened: `--scope`, and `--namespace` for a manifest without one.
pub struct Placement<'a> {
    /// The binding's scope.
    pub scope: ScopeArg,
    /// `--namespace`.
    pub namespace: Option<&'a str>,
}

/// The API version of the SopsSecret kind.
pub const API_VERSION: &str = "signet.dev/v1alpha1";
/// The kind name.
pub const KIND: &str = "SopsSecret";

/// The SopsSecret (plain, still to be encrypted) for the Secret in `input`, in `format`.
pub fn from_secret(
    input: &[u8],
    format: Format,
    name: &str,
    placement: &Placement<'_>,
) -> CliResult<Zeroizing<Vec<u8>>> {
    let invalid = |message: String| {
        CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!("{name}: {message}"),
        )
    };
    // The parsers' messages may quote the input (secret values): keep their first line, unquoted.
    let not_a_secret = |e: &str| {
        invalid(format!(
            "not a Secret: {}",
            signet_seal::manifest::redact(e)
        ))
    };
    let text = || std::str::from_utf8(input).map_err(|_| invalid("not UTF-8".to_owned()));
    let yaml_options = signet_seal::manifest::yaml_options;
    // A SopsSecret with templates to convert, or else a Secret (read as one: strictly typed).
    let manifest: Value = match format {
        Format::Json => serde_json::from_slice(input).map_err(|e| not_a_secret(&e.to_string()))?,
        Format::Yaml => serde_saphyr::from_str_with_options(text()?, yaml_options())
            .map_err(|e| not_a_secret(&e.to_string()))?,
        _ => {
            return Err(invalid(
                "--kind SopsSecret needs a YAML or JSON Secret manifest".to_owned(),
            ));
        }
    };
    if manifest.get("kind").and_then(Value::as_str) == Some(KIND) {
        let object = from_templates(&manifest, placement)
            .map_err(|m| CliError::new(code::INVALID_MANIFEST, format!("{name}: {m}")))?;
        return render(&object, format).map_err(invalid);
    }
    drop(manifest);
    let secret: signet_api::Secret = match format {
        Format::Json => serde_json::from_slice(input).map_err(|e| not_a_secret(&e.to_string()))?,
        _ => serde_saphyr::from_str_with_options(text()?, yaml_options())
            .map_err(|e| not_a_secret(&e.to_string()))?,
    };
    if secret.kind != "Secret" {
        return Err(invalid(format!(
            "--kind SopsSecret converts a Secret, this is kind {:?}",
            secret.kind
        )));
    }
    let meta = &secret.metadata;
    let mut metadata = Map::new();
    let object_name = meta
        .name
        .clone()
        .ok_or_else(|| invalid("metadata.name is missing".to_owned()))?;
    metadata.insert("name".into(), json!(object_name));
    let namespace = namespace_of(meta.namespace.as_deref(), placement.namespace)
        .map_err(|m| CliError::new(code::INVALID_MANIFEST, format!("{name}: {m}")))?;
    if let Some(namespace) = namespace {
        metadata.insert("namespace".into(), json!(namespace));
    }
    let binding = binding_for(placement.scope, namespace, &object_name)
        .map_err(|m| CliError::new(code::INVALID_MANIFEST, format!("{name}: {m}")))?;
    // sops' encrypted_regex selects keys at any depth: a label or annotation named like an
    // encrypted field would be encrypted, outside what the controller verifies.
    for (field, map) in [("labels", &meta.labels), ("annotations", &meta.annotations)] {
        if let Some(key) = map
            .iter()
            .flatten()
            .map(|(k, _)| k)
            .find(|k| ["data", "stringData", BINDING_FIELD].contains(&k.as_str()))
        {
            return Err(CliError::new(
                code::INVALID_MANIFEST,
                format!(
                    "{name}: metadata.{field}.{key}: a SopsSecret encrypts every key named data, stringData or binding, so this one would not stay readable; rename it"
                ),
            ));
        }
    }
    let mut template_meta = Map::new();
    if let Some(labels) = meta.labels.as_ref().filter(|m| !m.is_empty()) {
        template_meta.insert("labels".into(), json!(labels));
    }
    if let Some(annotations) = meta.annotations.as_ref().filter(|m| !m.is_empty()) {
        template_meta.insert("annotations".into(), json!(annotations));
    }
    let mut template = Map::new();
    if !template_meta.is_empty() {
        template.insert("metadata".into(), Value::Object(template_meta));
    }
    if let Some(type_) = &secret.type_ {
        template.insert("type".into(), json!(type_));
    }
    if let Some(immutable) = secret.immutable {
        template.insert("immutable".into(), json!(immutable));
    }
    let mut spec = Map::new();
    // First, as the API server will return it.
    spec.insert(BINDING_FIELD.into(), json!(binding.to_string()));
    if !template.is_empty() {
        spec.insert("template".into(), Value::Object(template));
    }
    // BTreeMaps: keys sorted.
    if let Some(data) = secret.data.as_ref().filter(|m| !m.is_empty()) {
        spec.insert("data".into(), json!(data));
    }
    if let Some(string_data) = secret.string_data.as_ref().filter(|m| !m.is_empty()) {
        spec.insert("stringData".into(), json!(string_data));
    }
    let object = json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": spec,
    });
    render(&object, format).map_err(invalid)
}

/// `object` in `format` (plaintext: kept in a zeroized buffer).
fn render(object: &Value, format: Format) -> Result<Zeroizing<Vec<u8>>, String> {
    let rendered = match format {
        Format::Json => serde_json::to_vec_pretty(object).map_err(|e| e.to_string())?,
        _ => serde_saphyr::to_string(object)
            .map_err(|e| e.to_string())?
            .into_bytes(),
    };
    Ok(Zeroizing::new(rendered))
}

/// The fields a Secret template may have (sops-secrets-operator's, and `immutable`).
const TEMPLATE_FIELDS: [&str; 7] = [
    "annotations",
    "data",
    "immutable",
    "labels",
    "name",
    "stringData",
    "type",
];

/// A Signet SopsSecret (plain) for a plain SopsSecret with `spec.secretTemplates` (either API
/// group): the templates with their keys sorted, `spec.suspend` kept, a binding added.
fn from_templates(manifest: &Value, placement: &Placement<'_>) -> Result<Value, String> {
    let meta = manifest.get("metadata").cloned().unwrap_or_default();
    let object_name = meta
        .get("name")
        .and_then(Value::as_str)
        .ok_or("metadata.name is missing")?
        .to_owned();
    let namespace = namespace_of(
        meta.get("namespace").and_then(Value::as_str),
        placement.namespace,
    )?;
    let binding = binding_for(placement.scope, namespace, &object_name)?;
    let spec = manifest
        .get("spec")
        .and_then(Value::as_object)
        .ok_or("spec is missing")?;
    if let Some(field) = spec
        .keys()
        .find(|k| !["secretTemplates", "suspend"].contains(&k.as_str()))
    {
        return Err(format!(
            "spec.{field}: a SopsSecret to convert holds spec.secretTemplates (and spec.suspend); write a Secret manifest for the single-Secret shape"
        ));
    }
    let templates = spec
        .get("secretTemplates")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
        .ok_or("spec.secretTemplates is missing or empty")?;
    let mut sorted_templates = Vec::with_capacity(templates.len());
    for (index, template) in templates.iter().enumerate() {
        let at = format!("spec.secretTemplates[{index}]");
        let template = template
            .as_object()
            .ok_or_else(|| format!("{at} is not a map"))?;
        let mut sorted = Map::new();
        for field in TEMPLATE_FIELDS {
            if let Some(value) = template.get(field) {
                sorted.insert(field.to_owned(), sorted_value(value));
            }
        }
        if let Some(field) = template
            .keys()
            .find(|k| !TEMPLATE_FIELDS.contains(&k.as_str()))
        {
            return Err(format!("{at}.{field}: not a field of a Secret template"));
        }
        for field in ["labels", "annotations"] {
            check_readable(template.get(field), &format!("{at}.{field}"))?;
        }
        sorted_templates.push(Value::Object(sorted));
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(object_name));
    if let Some(namespace) = namespace {
        metadata.insert("namespace".into(), json!(namespace));
    }
    for field in ["labels", "annotations"] {
        if let Some(map) = meta
            .get(field)
            .filter(|m| m.as_object().is_some_and(|m| !m.is_empty()))
        {
            check_readable(Some(map), &format!("metadata.{field}"))?;
            metadata.insert(field.into(), sorted_value(map));
        }
    }
    // Keys in the order the API server returns them: binding, secretTemplates, suspend.
    let mut new_spec = Map::new();
    new_spec.insert(BINDING_FIELD.into(), json!(binding.to_string()));
    new_spec.insert("secretTemplates".into(), Value::Array(sorted_templates));
    if let Some(suspend) = spec.get("suspend") {
        new_spec.insert("suspend".into(), suspend.clone());
    }
    Ok(json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": new_spec,
    }))
}

/// `value` with the keys of every map sorted, at any depth.
fn sorted_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted_value(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_value).collect()),
        other => other.clone(),
    }
}

/// Refuses a label or annotation named like an encrypted field: sops' encrypted_regex selects keys
/// at any depth, so it would be encrypted, outside what the controller verifies.
fn check_readable(map: Option<&Value>, place: &str) -> Result<(), String> {
    let Some(map) = map.and_then(Value::as_object) else {
        return Ok(());
    };
    match map
        .keys()
        .find(|k| ["data", "stringData", BINDING_FIELD].contains(&k.as_str()))
    {
        Some(key) => Err(format!(
            "{place}.{key}: a SopsSecret encrypts every key named data, stringData or binding, so this one would not stay readable; rename it"
        )),
        None => Ok(()),
    }
}

/// The object's namespace: the manifest's, or `--namespace`; both only when they agree.
fn namespace_of<'a>(
    manifest: Option<&'a str>,
    flag: Option<&'a str>,
) -> Result<Option<&'a str>, String> {
    match (manifest.filter(|n| !n.is_empty()), flag) {
        (Some(m), Some(f)) if m != f => Err(format!(
            "metadata.namespace is {m:?} but --namespace says {f:?}"
        )),
        (m, f) => Ok(m.or(f)),
    }
}

/// The binding `scope` asks for; strict and namespace-wide need a namespace.
fn binding_for(scope: ScopeArg, namespace: Option<&str>, name: &str) -> Result<Binding, String> {
    let namespace = || {
        namespace.map(str::to_owned).ok_or_else(|| {
            format!(
                "metadata.namespace is missing: a {} SopsSecret opens only in the namespace it was encrypted for; set metadata.namespace, pass --namespace, or choose --scope cluster-wide to let it open in any namespace",
                match scope {
                    ScopeArg::NamespaceWide => "namespace-wide",
                    _ => "strict",
                }
            )
        })
    };
    let binding = match scope {
        ScopeArg::Strict => Binding::Strict {
            namespace: namespace()?,
            name: name.to_owned(),
        },
        ScopeArg::NamespaceWide => Binding::NamespaceWide {
            namespace: namespace()?,
        },
        ScopeArg::ClusterWide => Binding::ClusterWide,
    };
    binding.validate()?;
    Ok(binding)
}
