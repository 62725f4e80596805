//! `metadata` as Kubernetes writes it: the fields a user sets plus the ones the API server fills in.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The annotation `kubectl apply` stores the last applied manifest in (it may hold plaintext values).
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Object metadata (`metav1.ObjectMeta`), in the field order of the Go type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Prefix for a server-generated name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Server-set: deprecated self link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_link: Option<String>,
    /// Server-set: unique id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Server-set: version for optimistic concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Server-set: generation of the desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Server-set: creation time (kept as raw JSON: it may be `null` in client-made manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Value>,
    /// Server-set: deletion time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<Value>,
    /// Server-set: grace period of a pending deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Owners, kept as raw JSON objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_references: Option<Vec<Value>>,
    /// Finalizers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalizers: Option<Vec<String>>,
    /// Server-set: field ownership records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_fields: Option<Vec<Value>>,
}

impl ObjectMeta {
    /// The value of an annotation, if present.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// Sets an annotation, creating the map when needed.
    pub fn set_annotation(&mut self, key: &str, value: &str) {
        self.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
    }

    /// Removes an annotation; drops the map when it becomes empty.
    pub fn remove_annotation(&mut self, key: &str) {
        if let Some(map) = self.annotations.as_mut() {
            map.remove(key);
            if map.is_empty() {
                self.annotations = None;
            }
        }
    }

    /// Clears every field the API server sets (uid, resourceVersion, generation, timestamps, selfLink,
    /// managedFields), the `last-applied-configuration` annotation and ownerReferences: what is left is
    /// what a user would write in a manifest.
    pub fn strip_server_fields(&mut self) {
        self.self_link = None;
        self.uid = None;
        self.resource_version = None;
        self.generation = None;
        self.creation_timestamp = None;
        self.deletion_timestamp = None;
        self.deletion_grace_period_seconds = None;
        self.managed_fields = None;
        self.owner_references = None;
        self.remove_annotation(LAST_APPLIED_ANNOTATION);
        if self.labels.as_ref().is_some_and(BTreeMap::is_empty) {
            self.labels = None;
        }
    }
}
