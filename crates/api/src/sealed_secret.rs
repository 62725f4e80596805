//! `SealedSecret` (`bitnami.com/v1alpha1`), shaped like the Bitnami CRD so existing manifests and the
//! Bitnami controller's objects read and write unchanged.

use crate::meta::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `apiVersion` of a SealedSecret.
pub const SEALED_SECRET_API_VERSION: &str = "bitnami.com/v1alpha1";
/// `kind` of a SealedSecret.
pub const SEALED_SECRET_KIND: &str = "SealedSecret";
/// Annotation selecting the cluster-wide scope (value exactly `"true"`).
pub const CLUSTER_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/cluster-wide";
/// Annotation selecting the namespace-wide scope (value exactly `"true"`).
pub const NAMESPACE_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/namespace-wide";
/// Annotation on an existing Secret: the controller may take it over.
pub const MANAGED_ANNOTATION: &str = "sealedsecrets.bitnami.com/managed";
/// Annotation on an existing Secret: the controller merges into it.
pub const PATCH_ANNOTATION: &str = "sealedsecrets.bitnami.com/patch";
/// Annotation on the template: do not set ownerReferences on the Secret.
pub const SKIP_SET_OWNER_REFERENCES_ANNOTATION: &str =
    "sealedsecrets.bitnami.com/skip-set-owner-references";

/// A SealedSecret: encrypted values plus a template for the Secret they become.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecret {
    /// `SealedSecret`.
    #[serde(default)]
    pub kind: String,
    /// `bitnami.com/v1alpha1`.
    #[serde(default)]
    pub api_version: String,
    /// Metadata; its scope annotations select the label used to seal.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Encrypted values and the template.
    #[serde(default)]
    pub spec: SealedSecretSpec,
    /// Written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SealedSecretStatus>,
}

impl SealedSecret {
    /// An empty SealedSecret with `kind` and `apiVersion` set.
    pub fn new(metadata: ObjectMeta) -> Self {
        SealedSecret {
            kind: SEALED_SECRET_KIND.to_owned(),
            api_version: SEALED_SECRET_API_VERSION.to_owned(),
            metadata,
            ..SealedSecret::default()
        }
    }
}

/// `spec` of a SealedSecret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretSpec {
    /// The Secret to produce, minus its values.
    #[serde(default)]
    pub template: SecretTemplateSpec,
    /// Deprecated: the whole Secret sealed as one value (base64). Read, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Item name -> sealed value (base64 of the hybrid envelope).
    #[serde(default)]
    pub encrypted_data: BTreeMap<String, String>,
}

/// `spec.template`: metadata, type, immutability and templated data of the produced Secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplateSpec {
    /// Metadata given to the Secret.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Secret type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Whether the Secret is immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// Item name -> template rendered over the unsealed values (plain text, not secret); `null`
    /// removes that item from the Secret (Bitnami v0.40).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, Option<String>>>,
}

/// `status` of a SealedSecret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretStatus {
    /// Conditions; `Synced` is the one that matters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<SealedSecretCondition>,
    /// Generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One status condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretCondition {
    /// Condition type, e.g. `Synced`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Last time the condition was probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Value>,
    /// Last time the status changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Value>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBESEAL_JSON: &str = r#"{
  "kind": "SealedSecret",
  "apiVersion": "bitnami.com/v1alpha1",
  "metadata": {
    "name": "mysecret",
    "namespace": "ns1",
    "annotations": {
      "sealedsecrets.bitnami.com/cluster-wide": "true"
    }
  },
  "spec": {
    "template": {
      "metadata": {
        "name": "mysecret",
        "namespace": "ns1",
        "labels": {
          "app": "x"
        },
        "annotations": {
          "foo": "bar",
          "sealedsecrets.bitnami.com/cluster-wide": "true"
        }
      },
      "type": "Opaque",
      "immutable": true
    },
    "encryptedData": {
      "a": "AQAB",
      "b": "AQAC"
    }
  }
}"#;

    #[test]
    fn kubeseal_json_round_trips_byte_for_byte() {
        let parsed: SealedSecret = serde_json::from_str(KUBESEAL_JSON).unwrap();
        assert_eq!(
            parsed.metadata.annotation(CLUSTER_WIDE_ANNOTATION),
            Some("true")
        );
        assert_eq!(parsed.spec.template.immutable, Some(true));
        assert_eq!(parsed.spec.encrypted_data.len(), 2);
        assert_eq!(
            serde_json::to_string_pretty(&parsed).unwrap(),
            KUBESEAL_JSON
        );
    }

    #[test]
    fn yaml_with_status_and_deprecated_data_parses() {
        let yaml = "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: s\n  generation: 3\nspec:\n  data: AQID\n  encryptedData: {}\nstatus:\n  observedGeneration: 3\n  conditions:\n  - type: Synced\n    status: \"True\"\n";
        let parsed: SealedSecret = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(parsed.spec.data.as_deref(), Some("AQID"));
        let status = parsed.status.unwrap();
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.conditions[0].type_, "Synced");
        assert_eq!(status.conditions[0].status, "True");
    }

    #[test]
    fn strip_server_fields_keeps_user_fields_only() {
        let mut meta: ObjectMeta = serde_json::from_str(
            r#"{"name":"n","namespace":"ns","uid":"u","resourceVersion":"1","generation":2,
                "creationTimestamp":"2020-01-01T00:00:00Z","managedFields":[{}],
                "ownerReferences":[{"kind":"X"}],"labels":{"a":"b"},
                "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}}"#,
        )
        .unwrap();
        meta.strip_server_fields();
        assert_eq!(
            serde_json::to_string(&meta).unwrap(),
            r#"{"name":"n","namespace":"ns","labels":{"a":"b"}}"#
        );
    }
}
