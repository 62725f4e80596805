//! `signet encrypt --kind SopsSecret`: turns a plain Secret manifest into a `signet.dev/v1alpha1`
//! SopsSecret before encryption. The Secret's labels, annotations, type and immutability move to
//! `spec.template`; `data` and `stringData` stay values, their keys sorted, and `spec.binding`
//! (encrypted with them, see [`signet_api::sops_secret`]) says where the controller may open the
//! object. The encrypted values come in the order the API server returns them (`binding`, then
//! `data`, then `stringData`, keys sorted), where the MAC is cheapest to check.

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
    let secret: signet_api::Secret = match format {
        Format::Json => serde_json::from_slice(input).map_err(|e| not_a_secret(&e.to_string()))?,
        Format::Yaml => {
            let text = std::str::from_utf8(input).map_err(|_| invalid("not UTF-8".to_owned()))?;
            serde_saphyr::from_str_with_options(text, signet_seal::manifest::yaml_options())
                .map_err(|e| not_a_secret(&e.to_string()))?
        }
        _ => {
            return Err(invalid(
                "--kind SopsSecret needs a YAML or JSON Secret manifest".to_owned(),
            ));
        }
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
    let rendered = match format {
        Format::Json => serde_json::to_vec_pretty(&object).map_err(|e| invalid(e.to_string()))?,
        _ => serde_saphyr::to_string(&object)
            .map_err(|e| invalid(e.to_string()))?
            .into_bytes(),
    };
    Ok(Zeroizing::new(rendered))
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
