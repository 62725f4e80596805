//! Manifest streams in and out: parsing Secret / SealedSecret documents (errors name the input, never
//! its content) and rendering objects as kubeseal does (pretty JSON, or `---` YAML documents).

use super::args::ManifestFormat;
use super::seal_error;
use crate::exit::{CliError, CliResult, code};
use serde::Serialize;
use serde_json::Value;

/// Parses a manifest stream (see [`signet_seal::manifest::parse_documents`]); errors name the input,
/// never its content.
pub(super) fn parse_documents(bytes: &[u8], origin: &str) -> CliResult<Vec<Value>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| CliError::new(code::INVALID_MANIFEST, format!("{origin}: not UTF-8 text")))?;
    signet_seal::manifest::parse_documents(text).map_err(|e| seal_error(origin, e))
}

pub(super) fn typed<T: serde::de::DeserializeOwned>(
    doc: Value,
    kind: &str,
    where_: &str,
) -> CliResult<T> {
    signet_seal::manifest::typed(doc, kind).map_err(|e| seal_error(where_, e))
}

pub(crate) fn render<T: Serialize>(objects: &[T], format: ManifestFormat) -> CliResult<Vec<u8>> {
    let mut out = Vec::new();
    for object in objects {
        match format {
            ManifestFormat::Json => {
                let text = serde_json::to_string_pretty(object).map_err(|e| {
                    CliError::new(code::ERROR_DUMPING_TREE, format!("cannot write JSON: {e}"))
                })?;
                out.extend_from_slice(text.as_bytes());
                out.push(b'\n');
            }
            ManifestFormat::Yaml => {
                // Sealed values are long single-line tokens: keep them plain on one line like kubeseal
                // (the default would fold them into `>-` blocks).
                let mut options = serde_saphyr::SerializerOptions::default();
                options.prefer_block_scalars = false;
                let text = serde_saphyr::to_string_with_options(object, options).map_err(|e| {
                    CliError::new(code::ERROR_DUMPING_TREE, format!("cannot write YAML: {e}"))
                })?;
                out.extend_from_slice(b"---\n");
                out.extend_from_slice(text.as_bytes());
                if !text.ends_with('\n') {
                    out.push(b'\n');
                }
            }
        }
    }
    Ok(out)
}
