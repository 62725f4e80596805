//! `signet.dev/v1alpha1` SopsSecret: a whole sops document (top-level `sops:` metadata) whose
//! `spec.data` / `spec.stringData` values and `spec.binding` (where it may be opened, see
//! [`signet_api::sops_secret`]) are encrypted (`encrypted_regex: ^(data|stringData|binding)$`,
//! `mac_only_encrypted: true`, so what the cluster adds to `metadata` does not touch the MAC), and
//! whose `spec.template` (`metadata.labels`/`annotations`, `type`, `immutable`) describes the Secret;
//! or, in the shape of sops-secrets-operator, whose `spec.secretTemplates[]` each describe one Secret
//! with values of its own. `spec.suspend` stops every write while true.
//!
//! Pieces: the resource type and its CRD (here), [`templates`] (the Secrets an object describes),
//! [`open`] (the sops decryption of one object),
//! [`identities`] (the controller's age identities, from Secrets named in its configuration),
//! [`reconcile`] (the reconciler).

pub mod identities;
pub mod open;
pub mod reconcile;
pub mod templates;

use crate::target::Condition;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::borrow::Cow;

/// API group of Signet's own kinds.
pub const GROUP: &str = "signet.dev";
/// API version of Signet's own kinds.
pub const VERSION: &str = "v1alpha1";
/// Kind name.
pub const KIND: &str = "SopsSecret";
/// The condition type the controller maintains.
pub const READY_CONDITION: &str = "Ready";

/// A SopsSecret as the controller reads it. `spec` and `sops` stay JSON: they are a sops document
/// whose encrypted values are only understood after decryption.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SopsSecret {
    /// `signet.dev/v1alpha1`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// `SopsSecret`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// `template`, and the encrypted `binding`, `data` and `stringData`.
    #[serde(default)]
    pub spec: serde_json::Map<String, serde_json::Value>,
    /// The sops metadata block.
    #[serde(default)]
    pub sops: serde_json::Value,
    /// Written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SopsSecretStatus>,
}

pub(crate) fn default_api_version() -> String {
    format!("{GROUP}/{VERSION}")
}

fn default_kind() -> String {
    KIND.to_owned()
}

/// `status` of a SopsSecret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SopsSecretStatus {
    /// One condition, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// resourceVersion of the Secret as last written (the single shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_resource_version: Option<String>,
    /// One entry per Secret of `spec.secretTemplates`, in list order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<GeneratedSecretStatus>,
}

/// The state of one Secret of `spec.secretTemplates`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratedSecretStatus {
    /// The Secret's name.
    pub name: String,
    /// `"True"` when the Secret matches its template, else `"False"`.
    pub status: String,
    /// Why not, when `"False"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// resourceVersion of the Secret as last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

impl SopsSecretStatus {
    /// The `Ready` condition, if any.
    pub fn ready(&self) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == READY_CONDITION)
    }
}

impl kube::Resource for SopsSecret {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(KIND)
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(GROUP)
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(VERSION)
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("signet.dev/v1alpha1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("sopssecrets")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The SopsSecret CustomResourceDefinition. Values under `data`/`stringData` are strings (`ENC[…]`
/// once encrypted); `sops` is kept as written (preserve-unknown-fields), since sops versions add
/// fields.
pub fn sops_secret_crd() -> CustomResourceDefinition {
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let condition = json!({
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string"},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastUpdateTime": {"type": "string", "format": "date-time"},
            "lastTransitionTime": {"type": "string", "format": "date-time"}
        }
    });
    let schema = json!({
        "type": "object",
        "description": "A Secret encrypted with sops (values under spec.data/spec.stringData, bound to a namespace by spec.binding), decrypted in the cluster by signet-controller.",
        "required": ["spec", "sops"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {
                    "template": {
                        "type": "object",
                        "description": "Metadata, type and immutability of the Secret to produce (not encrypted).",
                        "properties": {
                            "metadata": {
                                "type": "object",
                                "properties": {
                                    "labels": string_map,
                                    "annotations": string_map
                                }
                            },
                            "type": {"type": "string"},
                            "immutable": {"type": "boolean"}
                        }
                    },
                    "secretTemplates": {
                        "type": "array",
                        "maxItems": open::MAX_TEMPLATES,
                        "description": "One Secret per entry, in this object's namespace (the shape of sops-secrets-operator); instead of template/data/stringData.",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string", "maxLength": 253},
                                "labels": string_map,
                                "annotations": string_map,
                                "type": {"type": "string"},
                                "immutable": {"type": "boolean"},
                                "data": string_map,
                                "stringData": string_map
                            }
                        }
                    },
                    "suspend": {
                        "type": "boolean",
                        "description": "While true the controller writes and deletes no Secret of this object."
                    },
                    "binding": {
                        "type": "string",
                        "description": "Encrypted (ENC[...]): where the object may be opened, `<namespace>/<name>` (strict), `<namespace>/*` (namespace-wide) or `*` (cluster-wide)."
                    },
                    "data": string_map,
                    "stringData": string_map
                }
            },
            "sops": {
                "type": "object",
                "description": "sops metadata: key groups, lastmodified, mac, encrypted_regex, mac_only_encrypted.",
                "x-kubernetes-preserve-unknown-fields": true
            },
            "status": {
                "type": "object",
                "properties": {
                    "conditions": {"type": "array", "items": condition},
                    "observedGeneration": {"type": "integer", "format": "int64"},
                    "secretResourceVersion": {"type": "string"},
                    "secrets": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "status"],
                            "properties": {
                                "name": {"type": "string"},
                                "status": {"type": "string"},
                                "reason": {"type": "string"},
                                "resourceVersion": {"type": "string"}
                            }
                        }
                    }
                }
            }
        }
    });
    crate::crd::custom_resource_definition(crate::crd::CrdNames {
        group: GROUP,
        version: VERSION,
        kind: KIND,
        plural: "sopssecrets",
        short_names: &["sops"],
        schema,
        printer_columns: json!([
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
        ]),
    })
}
