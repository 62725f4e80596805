//! From a store reference to a usable provider: find the SecretStore or ClusterSecretStore, check
//! that the ExternalSecret's namespace may use it, read the credentials it names (Secrets, a
//! service-account token through the TokenRequest API) and build the provider. Providers are
//! cached per store version and credentials, so a Vault login is reused across reconciles; an
//! entry lives at most [`PROVIDER_TTL`], after which a fresh service-account token is used.

use super::{
    ClusterSecretStore, ProviderSpec, SecretKeySelector, SecretStore, SecretStoreRef,
    SecretStoreSpec, StoreNamespaceCondition,
};
use crate::context::Context;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use signet_providers::{
    AwsConfig, AwsStaticCredentials, KubernetesConfig, KubernetesSecrets, ParameterStore,
    SecretProvider, SecretsManager, VaultAuth, VaultKv, VaultKvConfig,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How long a built provider (and the credentials it was built with) is reused.
pub const PROVIDER_TTL: Duration = Duration::from_secs(600);

/// Why a store cannot be used. Messages name objects and fields, never credential values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// `SecretStore` or `ClusterSecretStore`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The ClusterSecretStore's conditions do not allow this namespace.
    #[error("ClusterSecretStore {store:?} does not allow namespace {namespace:?}")]
    NotAllowed {
        /// The store.
        store: String,
        /// The ExternalSecret's namespace.
        namespace: String,
    },
    /// The store's spec is unusable, or a credential it names is missing.
    #[error("{0}")]
    Invalid(String),
    /// The provider refused to start (bad address, bad credentials format).
    #[error("provider: {0}")]
    Provider(#[from] signet_providers::Error),
    /// The operator's policy refuses the store (another namespace, an audience, the controller's
    /// identity, a provider URL).
    #[error(transparent)]
    Refused(#[from] super::policy::Refusal),
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {}", crate::target::describe_kube_error(.0))]
    Kube(#[from] kube::Error),
}

impl StoreError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::NotAllowed { .. } => "StoreNotAllowed",
            StoreError::Refused(refusal) => refusal.reason,
            _ => "StoreNotReady",
        }
    }
}

/// A store as found: its spec, where its credential Secrets live (`None`: they must name their
/// namespace), and an identity for the cache.
pub struct FoundStore {
    /// The spec.
    pub spec: SecretStoreSpec,
    /// The namespace of a SecretStore.
    pub namespace: Option<String>,
    /// `kind/namespace/name@resourceVersion`.
    pub identity: String,
}

/// Finds the store `reference` names for an ExternalSecret in `namespace`, and checks that the
/// namespace may use it.
pub async fn find_store(
    ctx: &Context,
    namespace: &str,
    reference: &SecretStoreRef,
) -> Result<FoundStore, StoreError> {
    if reference.kind.as_deref() == Some("ClusterSecretStore") {
        let api: Api<ClusterSecretStore> = Api::all(ctx.client.clone());
        let store = api
            .get_opt(&reference.name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "ClusterSecretStore",
                name: reference.name.clone(),
            })?;
        if !namespace_allowed(ctx, &store.spec.store.conditions, namespace).await? {
            return Err(StoreError::NotAllowed {
                store: reference.name.clone(),
                namespace: namespace.to_owned(),
            });
        }
        Ok(FoundStore {
            identity: format!(
                "ClusterSecretStore//{}@{}",
                store.name_any(),
                store.resource_version().unwrap_or_default()
            ),
            spec: store.spec.store,
            namespace: None,
        })
    } else {
        let api: Api<SecretStore> = Api::namespaced(ctx.client.clone(), namespace);
        let store = api
            .get_opt(&reference.name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "SecretStore",
                name: reference.name.clone(),
            })?;
        Ok(FoundStore {
            identity: format!(
                "SecretStore/{namespace}/{}@{}",
                store.name_any(),
                store.resource_version().unwrap_or_default()
            ),
            spec: store.spec,
            namespace: Some(namespace.to_owned()),
        })
    }
}

/// Whether any condition allows `namespace` (no conditions: every namespace).
async fn namespace_allowed(
    ctx: &Context,
    conditions: &[StoreNamespaceCondition],
    namespace: &str,
) -> Result<bool, StoreError> {
    if conditions.is_empty() {
        return Ok(true);
    }
    let mut labels = None;
    for condition in conditions {
        if condition.namespaces.iter().any(|n| n == namespace) {
            return Ok(true);
        }
        for pattern in &condition.namespace_regexes {
            let regex = regex::Regex::new(pattern).map_err(|e| {
                StoreError::Invalid(format!("namespaceRegexes: {pattern:?} is not a regex: {e}"))
            })?;
            if regex.is_match(namespace) {
                return Ok(true);
            }
        }
        if let Some(selector) = &condition.namespace_selector {
            if labels.is_none() {
                let api: Api<Namespace> = Api::all(ctx.client.clone());
                labels = Some(api.get(namespace).await?.labels().clone());
            }
            let have = labels.as_ref().expect("set above");
            if selector
                .match_labels
                .iter()
                .all(|(k, v)| have.get(k) == Some(v))
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A built provider and when it was built.
type CacheEntry = (Instant, Arc<dyn SecretProvider>);

/// Providers built so far, by store identity.
#[derive(Default)]
pub struct ProviderCache {
    entries: Mutex<HashMap<String, CacheEntry>>,
}

impl ProviderCache {
    /// The provider for `store`, built (and its credentials read) unless a fresh one is cached.
    pub async fn provider(
        &self,
        ctx: &Context,
        store: &FoundStore,
    ) -> Result<Arc<dyn SecretProvider>, StoreError> {
        if let Some(provider) = self.cached(&store.identity) {
            return Ok(provider);
        }
        let provider = build(ctx, &store.spec.provider, store.namespace.as_deref()).await?;
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (at, _)| at.elapsed() < PROVIDER_TTL);
            entries.insert(
                store.identity.clone(),
                (Instant::now(), Arc::clone(&provider)),
            );
        }
        Ok(provider)
    }

    /// Forgets the provider of a store (after an authentication failure, so credentials are read
    /// again).
    pub fn forget(&self, store: &FoundStore) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&store.identity);
        }
    }

    fn cached(&self, identity: &str) -> Option<Arc<dyn SecretProvider>> {
        let entries = self.entries.lock().ok()?;
        let (at, provider) = entries.get(identity)?;
        (at.elapsed() < PROVIDER_TTL).then(|| Arc::clone(provider))
    }
}

/// Builds the provider a spec describes, reading the credentials it names — after the operator's
/// policy allowed it, so a refused store reads nothing, mints nothing and connects nowhere.
async fn build(
    ctx: &Context,
    spec: &ProviderSpec,
    store_namespace: Option<&str>,
) -> Result<Arc<dyn SecretProvider>, StoreError> {
    let policy = &ctx.config.store_policy;
    policy.check(spec, store_namespace)?;
    match (&spec.vault, &spec.aws, &spec.kubernetes) {
        (Some(vault), None, None) => {
            if vault.version.as_deref().is_some_and(|v| v != "v2") {
                return Err(StoreError::Invalid(
                    "provider.vault.version: only v2 (KV version 2) is supported".into(),
                ));
            }
            let auth = &vault.auth;
            let auth = match (&auth.token_secret_ref, &auth.app_role, &auth.kubernetes) {
                (Some(token), None, None) => VaultAuth::Token(
                    secret_value(ctx, token, store_namespace, "auth.tokenSecretRef").await?,
                ),
                (None, Some(app_role), None) => VaultAuth::AppRole {
                    mount: app_role.path.clone().unwrap_or_else(|| "approle".into()),
                    role_id: app_role.role_id.clone(),
                    secret_id: secret_value(
                        ctx,
                        &app_role.secret_ref,
                        store_namespace,
                        "auth.appRole.secretRef",
                    )
                    .await?,
                },
                (None, None, Some(kubernetes)) => {
                    let account = &kubernetes.service_account_ref;
                    // A SecretStore's own namespace (the policy refused any other).
                    let namespace = store_namespace
                        .or(account.namespace.as_deref())
                        .ok_or_else(|| {
                            StoreError::Invalid(
                                "auth.kubernetes.serviceAccountRef.namespace is required in a ClusterSecretStore".into(),
                            )
                        })?;
                    VaultAuth::Kubernetes {
                        mount: kubernetes
                            .mount_path
                            .clone()
                            .unwrap_or_else(|| "kubernetes".into()),
                        role: kubernetes.role.clone(),
                        jwt: service_account_token(
                            ctx,
                            namespace,
                            &account.name,
                            policy
                                .audiences(&account.audiences)
                                .map_err(StoreError::Invalid)?,
                        )
                        .await?,
                    }
                }
                _ => {
                    return Err(StoreError::Invalid(
                        "provider.vault.auth: give exactly one of tokenSecretRef, appRole, kubernetes".into(),
                    ));
                }
            };
            let ca_pem = ca_bundle(vault.ca_bundle.as_deref(), "provider.vault.caBundle")?;
            let provider = VaultKv::new(VaultKvConfig {
                server: vault.server.clone(),
                mount: vault.path.clone().unwrap_or_else(|| "secret".into()),
                namespace: vault.namespace.clone(),
                ca_pem,
                auth,
            })?;
            Ok(Arc::new(provider))
        }
        (None, Some(aws), None) => {
            let credentials = match aws.auth.as_ref().and_then(|a| a.secret_ref.as_ref()) {
                Some(keys) => Some(AwsStaticCredentials {
                    access_key_id: secret_value(
                        ctx,
                        &keys.access_key_id_secret_ref,
                        store_namespace,
                        "auth.secretRef.accessKeyIDSecretRef",
                    )
                    .await?
                    .to_string(),
                    secret_access_key: secret_value(
                        ctx,
                        &keys.secret_access_key_secret_ref,
                        store_namespace,
                        "auth.secretRef.secretAccessKeySecretRef",
                    )
                    .await?,
                    session_token: match &keys.session_token_secret_ref {
                        Some(selector) => Some(
                            secret_value(
                                ctx,
                                selector,
                                store_namespace,
                                "auth.secretRef.sessionTokenSecretRef",
                            )
                            .await?,
                        ),
                        None => None,
                    },
                }),
                None => None,
            };
            let config = AwsConfig {
                region: aws.region.clone(),
                endpoint_url: aws.endpoint.clone(),
                credentials,
                role_arn: aws.role.clone(),
            };
            match aws.service.as_str() {
                "SecretsManager" => Ok(Arc::new(SecretsManager::new(config).await?)),
                "ParameterStore" => Ok(Arc::new(ParameterStore::new(config).await?)),
                other => Err(StoreError::Invalid(format!(
                    "provider.aws.service: {other:?} (SecretsManager or ParameterStore)"
                ))),
            }
        }
        (None, None, Some(kubernetes)) => {
            let token = kubernetes.auth.token.as_ref().ok_or_else(|| {
                StoreError::Invalid(
                    "provider.kubernetes.auth: give token.bearerToken (the only kind supported)"
                        .into(),
                )
            })?;
            let provider = KubernetesSecrets::new(KubernetesConfig {
                server: kubernetes
                    .server
                    .url
                    .clone()
                    .unwrap_or_else(|| super::IN_CLUSTER_API_SERVER.to_owned()),
                ca_pem: ca_bundle(
                    kubernetes.server.ca_bundle.as_deref(),
                    "provider.kubernetes.server.caBundle",
                )?,
                namespace: kubernetes
                    .remote_namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_owned()),
                token: secret_value(
                    ctx,
                    &token.bearer_token,
                    store_namespace,
                    "auth.token.bearerToken",
                )
                .await?,
            })?;
            Ok(Arc::new(provider))
        }
        _ => Err(StoreError::Invalid(
            "spec.provider: give exactly one of vault, aws, kubernetes".into(),
        )),
    }
}

/// A base64 PEM CA bundle from the store's `field`, decoded.
fn ca_bundle(b64: Option<&str>, field: &str) -> Result<Option<Vec<u8>>, StoreError> {
    use base64::Engine as _;
    b64.map(|b64| {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| StoreError::Invalid(format!("{field} is not base64")))
    })
    .transpose()
}

/// The value of `selector` in its Secret; `field` names the spec field in errors.
async fn secret_value(
    ctx: &Context,
    selector: &SecretKeySelector,
    store_namespace: Option<&str>,
    field: &str,
) -> Result<Zeroizing<String>, StoreError> {
    let namespace = match (store_namespace, selector.namespace.as_deref()) {
        // A SecretStore only reads its own namespace (the policy refused any other).
        (Some(own), _) => own,
        (None, Some(ns)) => ns,
        (None, None) => {
            return Err(StoreError::Invalid(format!(
                "{field}.namespace is required in a ClusterSecretStore"
            )));
        }
    };
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = api.get_opt(&selector.name).await?.ok_or_else(|| {
        StoreError::Invalid(format!(
            "{field}: Secret {namespace}/{} not found",
            selector.name
        ))
    })?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&selector.key))
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "{field}: Secret {namespace}/{} has no key {:?}",
                selector.name, selector.key
            ))
        })?;
    let text = String::from_utf8(bytes.0.clone())
        .map_err(|_| StoreError::Invalid(format!("{field}: the value is not UTF-8")))?;
    Ok(Zeroizing::new(
        text.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

/// A fresh token of a service account (TokenRequest API, 10 minutes) for `audiences` (never
/// empty: an empty list would mean the API server's own audience).
async fn service_account_token(
    ctx: &Context,
    namespace: &str,
    name: &str,
    audiences: Vec<String>,
) -> Result<Zeroizing<String>, StoreError> {
    if audiences.is_empty() {
        return Err(StoreError::Invalid(
            "a service-account token needs an audience".into(),
        ));
    }
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(audiences),
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let response = api
        .create_token_request(name, &PostParams::default(), &request)
        .await?;
    let token = response
        .status
        .and_then(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "no token issued for service account {namespace}/{name}"
            ))
        })?;
    Ok(Zeroizing::new(token))
}
