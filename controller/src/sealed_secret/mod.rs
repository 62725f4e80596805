//! The `bitnami.com/v1alpha1` SealedSecret: the resource type and its CustomResourceDefinition
//! (here), [`keyring`] (the sealing keys: the key Secrets, their watch and renewal),
//! [`reconcile`] (the reconciler, its context and its `run()`) and [`flags`] (the Bitnami
//! controller's flags).
//!
//! The spec is `signet_api::SealedSecretSpec` unchanged (one serde shape for CLI and controller); only
//! the envelope (`metadata` as k8s-openapi's `ObjectMeta`) and the status differ, because kube's
//! traits need k8s-openapi metadata. The CRD is written out by hand so its schema matches the Bitnami
//! one field for field (`crdgen` prints it; a test compares both), plus two optional status fields of
//! Signet's own that the Bitnami schema would prune (harmless: they only save work).

pub mod flags;
pub mod keyring;
pub mod reconcile;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::json;
use signet_api::{SealedSecretCondition, SealedSecretSpec};
use std::borrow::Cow;

/// API group of the SealedSecret kind.
pub const GROUP: &str = "bitnami.com";
/// API version of the SealedSecret kind.
pub const VERSION: &str = "v1alpha1";
/// Kind name.
pub const KIND: &str = "SealedSecret";
/// Plural resource name.
pub const PLURAL: &str = "sealedsecrets";
/// The condition type the controller maintains.
pub const SYNCED_CONDITION: &str = "Synced";

/// A SealedSecret as the controller reads it from the API server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecret {
    /// `bitnami.com/v1alpha1`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// `SealedSecret`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// Sealed values and the template of the Secret to produce.
    #[serde(default)]
    pub spec: SealedSecretSpec,
    /// Written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SealedSecretStatus>,
}

fn default_api_version() -> String {
    format!("{GROUP}/{VERSION}")
}

fn default_kind() -> String {
    KIND.to_owned()
}

impl Default for SealedSecret {
    fn default() -> Self {
        SealedSecret {
            api_version: default_api_version(),
            kind: default_kind(),
            metadata: ObjectMeta::default(),
            spec: SealedSecretSpec::default(),
            status: None,
        }
    }
}

/// `status` of a SealedSecret: Bitnami's fields plus two of Signet's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretStatus {
    /// Conditions; the controller writes one, `Synced`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<SealedSecretCondition>,
    /// Generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// SHA-256 fingerprint (hex) of the public key of the sealing key that opened every value; tried
    /// first on the next unseal. Absent when several keys were needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// resourceVersion of the Secret as the controller last wrote it: while the Secret still has it and
    /// the generation is unchanged, there is nothing to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_resource_version: Option<String>,
}

impl SealedSecretStatus {
    /// The `Synced` condition, if any.
    pub fn synced(&self) -> Option<&SealedSecretCondition> {
        self.conditions.iter().find(|c| c.type_ == SYNCED_CONDITION)
    }
}

impl kube::Resource for SealedSecret {
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
        Cow::Borrowed("bitnami.com/v1alpha1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(PLURAL)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl SealedSecret {
    /// The same object as `signet_api`'s type, for `signet_seal`: name, namespace and annotations
    /// (they select the scope label) and the spec.
    pub fn to_api(&self) -> signet_api::SealedSecret {
        let meta = signet_api::ObjectMeta {
            name: self.metadata.name.clone(),
            namespace: self.metadata.namespace.clone(),
            annotations: self.metadata.annotations.clone(),
            ..signet_api::ObjectMeta::default()
        };
        let mut sealed = signet_api::SealedSecret::new(meta);
        sealed.spec = self.spec.clone();
        sealed
    }
}

fn metadata_schema() -> serde_json::Value {
    json!({
        "description": "Standard object's metadata.\nMore info: https://git.k8s.io/community/contributors/devel/api-conventions.md#metadata",
        "nullable": true,
        "properties": {
            "annotations": {"additionalProperties": {"type": "string"}, "type": "object"},
            "finalizers": {"items": {"type": "string"}, "type": "array"},
            "labels": {"additionalProperties": {"type": "string"}, "type": "object"},
            "name": {"type": "string"},
            "namespace": {"type": "string"}
        },
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// The SealedSecret CustomResourceDefinition: Bitnami v0.40.0's schema (same properties,
/// descriptions, types, formats, required fields, printer columns and status subresource) plus the optional status fields
/// `keyFingerprint` and `secretResourceVersion`.
pub fn sealed_secret_crd() -> CustomResourceDefinition {
    let schema = json!({
        "description": "SealedSecret is the K8s representation of a \"sealed Secret\" - a\nregular k8s Secret that has been sealed (encrypted) using the\ncontroller's key.",
        "properties": {
            "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object.\nServers should convert recognized schemas to the latest internal value, and\nmay reject unrecognized values.\nMore info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"},
            "kind": {"description": "Kind is a string value representing the REST resource this object represents.\nServers may infer this from the endpoint the client submits requests to.\nCannot be updated.\nIn CamelCase.\nMore info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "description": "SealedSecretSpec is the specification of a SealedSecret.",
                "properties": {
                    "data": {
                        "description": "Data is deprecated and will be removed eventually. Use per-value EncryptedData instead.",
                        "format": "byte",
                        "type": "string"
                    },
                    "encryptedData": {
                        "additionalProperties": {"type": "string"},
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": true
                    },
                    "template": {
                        "description": "Template defines the structure of the Secret that will be\ncreated from this sealed secret.",
                        "properties": {
                            "data": {
                                "additionalProperties": {"type": "string"},
                                "description": "Keys that should be templated using decrypted data.\nSet a key with the same name as in `encryptedData`\nto `null` to omit the unsealed data from the final secret.",
                                "nullable": true,
                                "type": "object"
                            },
                            "immutable": {
                                "description": "Immutable, if set to true, ensures that data stored in the Secret cannot\nbe updated (only object metadata can be modified).\nIf not set to true, the field can be modified at any time.\nDefaulted to nil.",
                                "type": "boolean"
                            },
                            "metadata": metadata_schema(),
                            "type": {"description": "Used to facilitate programmatic handling of secret data.", "type": "string"}
                        },
                        "type": "object"
                    }
                },
                "required": ["encryptedData"],
                "type": "object"
            },
            "status": {
                "description": "SealedSecretStatus is the most recently observed status of the SealedSecret.",
                "properties": {
                    "conditions": {
                        "description": "Represents the latest available observations of a sealed secret's current state.",
                        "items": {
                            "description": "SealedSecretCondition describes the state of a sealed secret at a certain point.",
                            "properties": {
                                "lastTransitionTime": {"description": "Last time the condition transitioned from one status to another.", "format": "date-time", "type": "string"},
                                "lastUpdateTime": {"description": "The last time this condition was updated.", "format": "date-time", "type": "string"},
                                "message": {"description": "A human readable message indicating details about the transition.", "type": "string"},
                                "reason": {"description": "The reason for the condition's last transition.", "type": "string"},
                                "status": {"description": "Status of the condition for a sealed secret.\nValid values for \"Synced\": \"True\", \"False\", or \"Unknown\".", "type": "string"},
                                "type": {"description": "Type of condition for a sealed secret.\nValid value: \"Synced\"", "type": "string"}
                            },
                            "required": ["status", "type"],
                            "type": "object"
                        },
                        "type": "array"
                    },
                    "observedGeneration": {
                        "description": "ObservedGeneration reflects the generation most recently observed by the sealed-secrets controller.",
                        "format": "int64",
                        "type": "integer"
                    },
                    "keyFingerprint": {
                        "description": "Signet: SHA-256 fingerprint of the public key of the sealing key that opened the values.",
                        "type": "string"
                    },
                    "secretResourceVersion": {
                        "description": "Signet: resourceVersion of the Secret as the controller last wrote it.",
                        "type": "string"
                    }
                },
                "type": "object"
            }
        },
        "required": ["spec"],
        "type": "object"
    });
    crate::crd::custom_resource_definition(crate::crd::CrdNames {
        group: GROUP,
        version: VERSION,
        kind: KIND,
        plural: PLURAL,
        short_names: &[],
        schema,
        printer_columns: json!([
            {"jsonPath": ".status.conditions[0].message", "name": "Status", "type": "string"},
            {"jsonPath": ".status.conditions[0].status", "name": "Synced", "type": "string"},
            {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"}
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_round_trips_through_k8s_openapi_with_every_field() {
        let crd = sealed_secret_crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("sealedsecrets.bitnami.com")
        );
        let version = &crd.spec.versions[0];
        assert!(version.subresources.as_ref().unwrap().status.is_some());
        let schema = serde_json::to_value(version.schema.as_ref().unwrap()).unwrap();
        assert_eq!(
            schema.pointer("/openAPIV3Schema/properties/spec/properties/encryptedData/x-kubernetes-preserve-unknown-fields"),
            Some(&json!(true))
        );
        assert_eq!(
            schema.pointer("/openAPIV3Schema/properties/spec/properties/data/format"),
            Some(&json!("byte"))
        );
    }

    #[test]
    fn status_reads_bitnami_status_and_finds_synced() {
        let sealed: SealedSecret = serde_json::from_value(json!({
            "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
            "metadata": {"name": "a", "namespace": "n", "generation": 2},
            "spec": {"encryptedData": {"k": "AQAB"}},
            "status": {"observedGeneration": 2, "conditions": [{"type": "Synced", "status": "True"}]}
        }))
        .unwrap();
        let status = sealed.status.unwrap();
        assert_eq!(status.synced().unwrap().status, "True");
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(sealed.spec.encrypted_data["k"], "AQAB");
    }
}
