//! The core `v1` Secret, light enough to avoid `k8s-openapi`. Its Debug output never shows values.

use crate::meta::ObjectMeta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// `apiVersion` of a Secret.
pub const SECRET_API_VERSION: &str = "v1";
/// `kind` of a Secret.
pub const SECRET_KIND: &str = "Secret";

/// A `v1` Secret, in the field order of the Go type. `data` values are base64 text, as on the wire.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// `Secret`.
    #[serde(default)]
    pub kind: String,
    /// `v1`.
    #[serde(default)]
    pub api_version: String,
    /// Metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Immutable Secrets cannot be changed once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// Values, base64-encoded (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
    /// Values as plain strings; on write they take precedence over `data` for the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_data: Option<BTreeMap<String, String>>,
    /// Secret type (`Opaque`, `kubernetes.io/tls`, ...).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

impl Secret {
    /// An empty Secret with `kind` and `apiVersion` set.
    pub fn new(metadata: ObjectMeta) -> Self {
        Secret {
            kind: SECRET_KIND.to_owned(),
            api_version: SECRET_API_VERSION.to_owned(),
            metadata,
            ..Secret::default()
        }
    }
}

fn keys<V>(map: &Option<BTreeMap<String, V>>) -> Option<Vec<&str>> {
    map.as_ref().map(|m| m.keys().map(String::as_str).collect())
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("metadata", &self.metadata)
            .field("immutable", &self.immutable)
            .field("data_keys", &keys(&self.data))
            .field("string_data_keys", &keys(&self.string_data))
            .field("type", &self.type_)
            .finish_non_exhaustive()
    }
}
