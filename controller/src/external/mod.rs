//! `signet.dev/v1alpha1` ExternalSecret, SecretStore and ClusterSecretStore: Secrets synced from
//! external vaults. Field names follow External Secrets Operator for the supported subset, so
//! moving over is a change of `apiVersion`.
//!
//! Pieces: the resource types and CRDs (here), [`policy`] (what the operator lets a store use:
//! its own namespace, token audiences, the controller's identity, provider URLs), [`stores`] (from
//! a store object and the Secrets it references to a [`signet_providers::SecretProvider`], cached), [`template`] (the target Secret's
//! data from fetched values), [`reconcile`] (the ExternalSecret reconciler: refresh only when the
//! spec changed, the interval elapsed, the target was altered or a sync was forced), [`cluster`]
//! (ClusterExternalSecret: one ExternalSecret per selected namespace).

pub mod cluster;
pub mod decode;
pub mod keys;
pub mod policy;
pub mod reconcile;
pub mod shape;
pub mod store_status;
pub mod stores;
pub mod template;
pub mod template_from;

use crate::target::Condition;
pub use cluster::ClusterExternalSecret;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The condition type on all three kinds.
pub const READY_CONDITION: &str = "Ready";
/// Changing this annotation's value forces a refresh (as External Secrets Operator's
/// `force-sync`).
pub const FORCE_SYNC_ANNOTATION: &str = "signet.dev/force-sync";

fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {
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
        }
    })
}

/// `spec` of an ExternalSecret.
#[derive(CustomResource, Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "signet.dev",
    version = "v1alpha1",
    kind = "ExternalSecret",
    namespaced,
    status = "ExternalSecretStatus",
    shortname = "es",
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh","type":"string","jsonPath":".spec.refreshInterval"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretSpec {
    /// How often to fetch again (`1h`, `30m`, `15s`; `0` = once; at most `3650d`). Default `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|([0-9]+(ms|s|m|h|d))+)$"), length(max = 32))]
    pub refresh_interval: Option<String>,
    /// The store to read from (entries with a `sourceRef` read from theirs). May be left out when
    /// every entry names its store.
    #[serde(default)]
    pub secret_store_ref: SecretStoreRef,
    /// The Secret to write.
    #[serde(default)]
    pub target: ExternalSecretTarget,
    /// One Secret key per remote value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<ExternalSecretData>,
    /// Every key of a remote JSON object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_from: Vec<ExternalSecretDataFrom>,
}

/// `spec.secretStoreRef`, or an entry's `sourceRef.storeRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreRef {
    /// Store name.
    pub name: String,
    /// `SecretStore` (default, same namespace) or `ClusterSecretStore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `spec.target`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTarget {
    /// Secret name (default: the ExternalSecret's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Owner` (default: create and own it, refuse a Secret owned by someone else), `Merge` (merge
    /// into an existing Secret), `Orphan` (create or update, no owner reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_policy: Option<String>,
    /// When the remote value is gone: `Retain` (default, keep the Secret) or `Delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<String>,
    /// Type, metadata and templated data of the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,
    /// Write the Secret `immutable`: once written it is never refreshed; delete it to have a new
    /// one written from the current spec and values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub immutable: bool,
}

/// `spec.target.template`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTemplate {
    /// Secret `type`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Labels and annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// Secret keys whose values are templates over the fetched values: `{{ .name }}` inserts the
    /// value fetched as `name`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// `Replace` (default: only the templated keys) or `Merge` (templated keys over fetched ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_policy: Option<String>,
    /// Templates whose output is merged into the Secret's data, labels or annotations, before
    /// `data`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub template_from: Vec<TemplateFrom>,
}

/// `spec.target.template.templateFrom[]`: one source of templates.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateFrom {
    /// A template whose output is YAML `key: value` pairs, each merged into the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub literal: Option<String>,
    /// `Data` (default), `Annotations` or `Labels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Templates in a ConfigMap of the ExternalSecret's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<TemplateRef>,
    /// Templates in a Secret (refused: it would copy a Secret its author may not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<TemplateRef>,
}

/// `templateFrom[].configMap` / `.secret` (a Secret source is kept in the schema so that it is
/// refused by name rather than silently pruned).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    /// The object's name.
    #[serde(default)]
    pub name: String,
    /// Its keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<TemplateRefItem>,
}

/// An item of a [`TemplateRef`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRefItem {
    /// The key.
    #[serde(default)]
    pub key: String,
    /// `Values` (default: the output under `key`) or `KeysAndValues` (YAML pairs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_as: Option<String>,
}

/// Labels and annotations of the target Secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `spec.data[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretData {
    /// Key in the Secret.
    pub secret_key: String,
    /// Where the value comes from.
    pub remote_ref: RemoteRefSpec,
    /// Another store than `spec.secretStoreRef` for this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<SourceRef>,
}

/// `sourceRef` of a `data` or `dataFrom` entry: the store it reads from, so that one Secret can
/// gather values from several stores.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    /// The store (as `spec.secretStoreRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<SecretStoreRef>,
}

impl ExternalSecretSpec {
    /// The store an entry with `source` reads from: its own, else `spec.secretStoreRef`.
    pub fn store_for<'a>(&'a self, source: Option<&'a SourceRef>) -> &'a SecretStoreRef {
        source
            .and_then(|s| s.store_ref.as_ref())
            .unwrap_or(&self.secret_store_ref)
    }

    /// Refuses a spec that reads from more than `max` different stores (each costs a lookup and,
    /// uncached, a login), before any is looked up.
    pub fn check_store_count(&self, max: usize) -> Result<(), String> {
        let mut seen: Vec<&SecretStoreRef> = Vec::new();
        for reference in self.store_refs() {
            if !seen.contains(&reference) {
                if seen.len() == max {
                    return Err(format!("reads from more than {max} stores"));
                }
                seen.push(reference);
            }
        }
        Ok(())
    }

    /// Every store the spec reads from: `spec.secretStoreRef` (when named) and the entries' own.
    pub fn store_refs(&self) -> impl Iterator<Item = &SecretStoreRef> {
        let own = self
            .data_from
            .iter()
            .map(|d| d.source_ref.as_ref())
            .chain(self.data.iter().map(|d| d.source_ref.as_ref()))
            .filter_map(|s| s.and_then(|s| s.store_ref.as_ref()));
        std::iter::once(&self.secret_store_ref)
            .filter(|r| !r.name.is_empty())
            .chain(own)
    }
}

/// `remoteRef` / `extract`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteRefSpec {
    /// Path or name in the store.
    pub key: String,
    /// A JSON path into the value (`a.b`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Version (Vault KV version, AWS stage or `uuid/<id>`, SSM version or label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How the keys of `dataFrom[].extract` become Secret keys when the entry has no `rewrite`:
    /// `Default` (a character a key cannot hold becomes `_`) or `Unicode` (it becomes `_UXXXX_`).
    /// No effect on a `data[].remoteRef`, as in External Secrets Operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<String>,
    /// How values are decoded: `None` (default), `Base64`, `Base64URL` or `Auto` (standard
    /// base64, else URL-safe base64, else the value as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<String>,
}

/// `spec.dataFrom[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretDataFrom {
    /// Every top-level key of a JSON object value (for SSM: every parameter under a path ending
    /// in `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<RemoteRefSpec>,
    /// Every secret whose name matches, each under its name (characters a Secret key cannot
    /// hold become `_`) with its whole value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<FindSpec>,
    /// Another store than `spec.secretStoreRef` for this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<SourceRef>,
    /// Rewrites of the keys this entry produced, applied in order (instead of the conversion
    /// strategy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub rewrite: Vec<Rewrite>,
}

/// `dataFrom[].rewrite[]`: exactly one of `regexp` and `transform`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rewrite {
    /// Replace every match of `source` in a key by `target` (`$1`, `${name}` expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<RewriteRegexp>,
    /// A template over `.value`, the key, whose output is the new key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<RewriteTransform>,
}

/// `rewrite[].regexp`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteRegexp {
    /// The regular expression.
    #[schemars(length(max = 1024))]
    pub source: String,
    /// The replacement.
    #[schemars(length(max = 1024))]
    pub target: String,
}

/// `rewrite[].transform`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteTransform {
    /// A Go template (External Secrets Operator's dialect) over `.value`.
    #[schemars(length(max = 4096))]
    pub template: String,
}

/// `dataFrom[].find`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindSpec {
    /// Where to look: a KV folder, a Secrets Manager name prefix, a parameter path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub path: Option<String>,
    /// Which names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<FindName>,
    /// How found names become Secret keys when the entry has no `rewrite`: `Default` or
    /// `Unicode` (as in `extract`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<String>,
    /// How the values are decoded (as in `extract`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<String>,
}

/// `dataFrom[].find.name`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindName {
    /// A regular expression the name must match (anywhere in it).
    #[schemars(length(max = 1024))]
    pub regexp: String,
}

/// `status` of an ExternalSecret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretStatus {
    /// One condition, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// When the values were last fetched successfully (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<String>,
    /// The `metadata.generation` of the ExternalSecret last synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_resource_version: Option<String>,
    /// resourceVersion of the Secret as last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_resource_version: Option<String>,
    /// The value of the force-sync annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_sync: Option<String>,
}

impl ExternalSecretStatus {
    /// The `Ready` condition, if any.
    pub fn ready(&self) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == READY_CONDITION)
    }
}

/// `spec` of a SecretStore or ClusterSecretStore.
#[derive(CustomResource, Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "signet.dev",
    version = "v1alpha1",
    kind = "SecretStore",
    namespaced,
    status = "SecretStoreStatus",
    shortname = "ss",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreSpec {
    /// Exactly one provider.
    pub provider: ProviderSpec,
    /// ClusterSecretStore only: the namespaces whose ExternalSecrets may use it (any condition
    /// matching allows; none given allows all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<StoreNamespaceCondition>,
}

/// The cluster-wide store: the same spec, referenced Secrets name their namespace.
#[derive(CustomResource, Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "signet.dev",
    version = "v1alpha1",
    kind = "ClusterSecretStore",
    status = "SecretStoreStatus",
    shortname = "css",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
pub struct ClusterSecretStoreSpec {
    /// Provider and namespace conditions, as in a SecretStore.
    #[serde(flatten)]
    pub store: SecretStoreSpec,
}

/// Which namespaces may use a ClusterSecretStore.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreNamespaceCondition {
    /// Namespace names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces with these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Namespace names matching one of these regular expressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_regexes: Vec<String>,
}

/// A label selector (`matchLabels` only).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Every label must be present with this value.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// `status` of a store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreStatus {
    /// One condition, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// `spec.provider`: one of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    /// Vault / OpenBao KV v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultProviderSpec>,
    /// AWS Secrets Manager or SSM Parameter Store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsProviderSpec>,
    /// Secrets of a namespace on a Kubernetes API server (this cluster's or another's), read
    /// with the store's own bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesProviderSpec>,
}

/// `provider.kubernetes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesProviderSpec {
    /// The namespace whose Secrets are read (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_namespace: Option<String>,
    /// The API server.
    #[serde(default)]
    pub server: KubernetesServerSpec,
    /// How to authenticate: a bearer token.
    pub auth: KubernetesAuthSpec,
}

/// `provider.kubernetes.server`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesServerSpec {
    /// Its URL (default `https://kubernetes.default.svc`, this cluster's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PEM CA bundle, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
}

/// `provider.kubernetes.auth`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesAuthSpec {
    /// A bearer token in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<KubernetesTokenAuth>,
}

/// `provider.kubernetes.auth.token`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesTokenAuth {
    /// Where the token is.
    pub bearer_token: SecretKeySelector,
}

/// This cluster's API server, where `provider.kubernetes.server.url` is not given.
pub const IN_CLUSTER_API_SERVER: &str = "https://kubernetes.default.svc";

/// A key of a Secret (`namespace` only for ClusterSecretStores).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// Secret name.
    pub name: String,
    /// Key in the Secret.
    pub key: String,
    /// Namespace (ClusterSecretStore only; in a SecretStore another namespace is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `provider.vault`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultProviderSpec {
    /// Server address, e.g. `https://vault.example:8200`.
    pub server: String,
    /// Mount path of the KV engine (default `secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// KV version: only `v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Vault Enterprise / OpenBao namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// PEM CA bundle, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// How to log in.
    pub auth: VaultAuthSpec,
}

/// `provider.vault.auth`: one of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAuthSpec {
    /// A token in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeySelector>,
    /// AppRole login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role: Option<VaultAppRoleSpec>,
    /// Kubernetes service-account login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<VaultKubernetesSpec>,
}

/// `auth.appRole`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAppRoleSpec {
    /// Mount path (default `approle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The role id.
    pub role_id: String,
    /// The secret id, in a Secret.
    pub secret_ref: SecretKeySelector,
}

/// `auth.kubernetes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetesSpec {
    /// Mount path (default `kubernetes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    /// The Vault role.
    pub role: String,
    /// The service account whose token (made with the TokenRequest API) logs in.
    pub service_account_ref: ServiceAccountRef,
}

/// A service account (`namespace` only for ClusterSecretStores).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountRef {
    /// Name.
    pub name: String,
    /// Namespace (ClusterSecretStore only; in a SecretStore another namespace is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Token audiences (default: the operator's `--service-account-token-audience`, `vault`;
    /// others only when listed with `--allowed-token-audience`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
}

/// `provider.aws`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsProviderSpec {
    /// `SecretsManager` or `ParameterStore`.
    pub service: String,
    /// Region.
    pub region: String,
    /// A role to assume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Endpoint override (Signet extension: VPC endpoints, LocalStack, moto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Static credentials in Secrets; without them the controller's own identity is used (in a
    /// SecretStore only when the operator allows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AwsAuthSpec>,
}

/// `provider.aws.auth`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuthSpec {
    /// Static keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<AwsSecretRef>,
}

/// Static AWS keys in Secrets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretRef {
    /// Access key id.
    #[serde(rename = "accessKeyIDSecretRef")]
    pub access_key_id_secret_ref: SecretKeySelector,
    /// Secret access key.
    pub secret_access_key_secret_ref: SecretKeySelector,
    /// Session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_secret_ref: Option<SecretKeySelector>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: serde_json::Value) -> ExternalSecretSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn entries_read_from_their_own_store_or_the_specs() {
        let s = spec(serde_json::json!({
            "secretStoreRef": {"name": "main"},
            "data": [
                {"secretKey": "a", "remoteRef": {"key": "k"}},
                {"secretKey": "b", "remoteRef": {"key": "k"},
                 "sourceRef": {"storeRef": {"name": "other", "kind": "ClusterSecretStore"}}}
            ],
            "dataFrom": [{"extract": {"key": "k"}, "sourceRef": {"storeRef": {"name": "main"}}}]
        }));
        assert_eq!(s.store_for(s.data[0].source_ref.as_ref()).name, "main");
        let other = s.store_for(s.data[1].source_ref.as_ref());
        assert_eq!(
            (other.name.as_str(), other.kind.as_deref()),
            ("other", Some("ClusterSecretStore"))
        );
        let names: Vec<&str> = s.store_refs().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["main", "main", "other"]);
        // No spec.secretStoreRef: it is not counted as a store.
        let own_only = spec(serde_json::json!({
            "data": [{"secretKey": "a", "remoteRef": {"key": "k"},
                      "sourceRef": {"storeRef": {"name": "x"}}}]
        }));
        assert_eq!(own_only.store_refs().count(), 1);
        assert!(own_only.secret_store_ref.name.is_empty());
    }

    #[test]
    fn more_stores_than_allowed_are_refused_before_any_lookup() {
        let entries = |n: usize| -> Vec<serde_json::Value> {
            (0..n)
                .map(|i| {
                    serde_json::json!({"secretKey": format!("k{i}"), "remoteRef": {"key": "k"},
                                       "sourceRef": {"storeRef": {"name": format!("s{i}")}}})
                })
                .collect()
        };
        let at_limit = spec(serde_json::json!({"data": entries(16)}));
        assert!(at_limit.check_store_count(16).is_ok());
        // The same store named many times counts once.
        let repeated =
            spec(serde_json::json!({"secretStoreRef": {"name": "s0"}, "data": entries(16)}));
        assert!(repeated.check_store_count(16).is_ok());
        let over = spec(serde_json::json!({"data": entries(17)}));
        let err = over.check_store_count(16).unwrap_err();
        assert_eq!(err, "reads from more than 16 stores");
    }
}
