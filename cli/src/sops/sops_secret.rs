//! `signet encrypt --kind SopsSecret`: turns a plain Secret manifest into a `signet.dev/v1alpha1`
//! SopsSecret before encryption. The Secret's labels, annotations, type and immutability move to
//! `spec.template`; `data` and `stringData` stay values, their keys sorted — the API server returns
//! them sorted, and the MAC is cheapest to check in the order it was made.

use crate::exit::{CliError, CliResult, code};
use serde_json::{Map, Value, json};
use signet_sops::Format;
use zeroize::Zeroizing;

/// The API version of the SopsSecret kind.
pub const API_VERSION: &str = "signet.dev/v1alpha1";
/// The kind name.
pub const KIND: &str = "SopsSecret";

/// The SopsSecret (plain, still to be encrypted) for the Secret in `input`, in `format`.
pub fn from_secret(input: &[u8], format: Format, name: &str) -> CliResult<Zeroizing<Vec<u8>>> {
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
    if let Some(namespace) = &meta.namespace {
        metadata.insert("namespace".into(), json!(namespace));
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
