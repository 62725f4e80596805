//! What the operator lets a store do, checked before any credential is read, any token is minted
//! or any connection is made (DESIGN §5, tenancy):
//!
//! - a namespaced SecretStore references Secrets and ServiceAccounts of its own namespace only; a
//!   reference naming another namespace is refused (ClusterSecretStores, made by the operator, may
//!   name any);
//! - ServiceAccount tokens minted for Vault Kubernetes auth always carry an audience: the
//!   operator's default (`--service-account-token-audience`, `vault`) when the store names none,
//!   else only audiences the operator listed (`--allowed-token-audience`), so a token is never one
//!   the API server itself accepts;
//! - a namespaced AWS store without `auth` would use the controller's own identity: refused unless
//!   the operator opts in (`--allow-controller-identity-in-secret-stores`);
//! - with `--allowed-provider-url` given, `vault.server` and `aws.endpoint` must match an entry
//!   ([`AllowedUrl::allows`]).

use super::{ProviderSpec, SecretKeySelector};
use url::Url;

/// The audience of minted tokens when neither the store nor the operator names one.
pub const DEFAULT_TOKEN_AUDIENCE: &str = "vault";

/// The operator's limits on stores (controller flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePolicy {
    /// Audience of minted tokens when the store gives no `audiences`.
    pub token_audience: String,
    /// Audiences a store may ask for; empty: only [`StorePolicy::token_audience`].
    pub allowed_token_audiences: Vec<String>,
    /// Whether a namespaced SecretStore without credentials may use the controller's own cloud
    /// identity (ClusterSecretStores always may).
    pub controller_identity_in_secret_stores: bool,
    /// Provider URLs stores may use; empty: any.
    pub allowed_provider_urls: Vec<AllowedUrl>,
}

impl Default for StorePolicy {
    fn default() -> Self {
        StorePolicy {
            token_audience: DEFAULT_TOKEN_AUDIENCE.to_owned(),
            allowed_token_audiences: Vec::new(),
            controller_identity_in_secret_stores: false,
            allowed_provider_urls: Vec::new(),
        }
    }
}

/// Why the policy refuses a store: a condition reason, and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Refusal {
    /// The condition reason.
    pub reason: &'static str,
    /// The spec field, e.g. `spec.provider.vault.auth.kubernetes.serviceAccountRef.namespace`.
    pub field: String,
    /// What is wrong and how to fix it (never a credential).
    pub message: String,
}

/// Condition reasons of refusals.
pub mod reason {
    /// A namespaced SecretStore names another namespace.
    pub const CROSS_NAMESPACE: &str = "CrossNamespaceReference";
    /// A token audience the operator did not allow.
    pub const AUDIENCE: &str = "TokenAudienceNotAllowed";
    /// A namespaced store would use the controller's own identity.
    pub const CONTROLLER_IDENTITY: &str = "ControllerIdentityNotAllowed";
    /// A provider URL outside the operator's allow-list.
    pub const PROVIDER_URL: &str = "ProviderURLNotAllowed";
}

impl StorePolicy {
    /// Checks a store's provider spec; `store_namespace` is the namespace of a SecretStore (`None`
    /// for a ClusterSecretStore).
    pub fn check(&self, spec: &ProviderSpec, store_namespace: Option<&str>) -> Result<(), Refusal> {
        if let Some(vault) = &spec.vault {
            let base = "spec.provider.vault";
            self.check_url(&vault.server, &format!("{base}.server"))?;
            let auth = &vault.auth;
            if let Some(selector) = &auth.token_secret_ref {
                own_namespace(
                    selector,
                    store_namespace,
                    &format!("{base}.auth.tokenSecretRef"),
                )?;
            }
            if let Some(app_role) = &auth.app_role {
                own_namespace(
                    &app_role.secret_ref,
                    store_namespace,
                    &format!("{base}.auth.appRole.secretRef"),
                )?;
            }
            if let Some(kubernetes) = &auth.kubernetes {
                let field = format!("{base}.auth.kubernetes.serviceAccountRef");
                let account = &kubernetes.service_account_ref;
                same_namespace(account.namespace.as_deref(), store_namespace, &field)?;
                self.audiences(&account.audiences)
                    .map_err(|message| Refusal {
                        reason: reason::AUDIENCE,
                        field: format!("{field}.audiences"),
                        message,
                    })?;
            }
        }
        if let Some(aws) = &spec.aws {
            let base = "spec.provider.aws";
            if let Some(endpoint) = &aws.endpoint {
                self.check_url(endpoint, &format!("{base}.endpoint"))?;
            }
            match aws.auth.as_ref().and_then(|a| a.secret_ref.as_ref()) {
                Some(keys) => {
                    let field = format!("{base}.auth.secretRef");
                    own_namespace(
                        &keys.access_key_id_secret_ref,
                        store_namespace,
                        &format!("{field}.accessKeyIDSecretRef"),
                    )?;
                    own_namespace(
                        &keys.secret_access_key_secret_ref,
                        store_namespace,
                        &format!("{field}.secretAccessKeySecretRef"),
                    )?;
                    if let Some(selector) = &keys.session_token_secret_ref {
                        own_namespace(
                            selector,
                            store_namespace,
                            &format!("{field}.sessionTokenSecretRef"),
                        )?;
                    }
                }
                None if store_namespace.is_some() && !self.controller_identity_in_secret_stores => {
                    return Err(Refusal {
                        reason: reason::CONTROLLER_IDENTITY,
                        field: format!("{base}.auth"),
                        message:
                            "a SecretStore without credentials would use the controller's own \
                                  AWS identity; give auth.secretRef, use a ClusterSecretStore, or \
                                  have the operator allow it with \
                                  --allow-controller-identity-in-secret-stores (chart: \
                                  externalSecrets.allowControllerIdentityInSecretStores)"
                                .to_owned(),
                    });
                }
                None => {}
            }
        }
        if let Some(kubernetes) = &spec.kubernetes {
            let base = "spec.provider.kubernetes";
            let url = kubernetes
                .server
                .url
                .as_deref()
                .unwrap_or(super::IN_CLUSTER_API_SERVER);
            self.check_url(url, &format!("{base}.server.url"))?;
            if let Some(token) = &kubernetes.auth.token {
                own_namespace(
                    &token.bearer_token,
                    store_namespace,
                    &format!("{base}.auth.token.bearerToken"),
                )?;
            }
        }
        Ok(())
    }

    /// The audiences of a token minted for a store that asks for `requested`: the default when
    /// it asks for none, else `requested` when every one is allowed.
    pub fn audiences(&self, requested: &[String]) -> Result<Vec<String>, String> {
        if requested.is_empty() {
            return Ok(vec![self.token_audience.clone()]);
        }
        let allowed = |audience: &String| {
            if self.allowed_token_audiences.is_empty() {
                *audience == self.token_audience
            } else {
                self.allowed_token_audiences.contains(audience)
            }
        };
        match requested.iter().find(|a| !allowed(a)) {
            None => Ok(requested.to_vec()),
            Some(refused) => Err(format!(
                "audience {refused:?} is not allowed by the operator (--allowed-token-audience, \
                 chart: externalSecrets.allowedTokenAudiences); leave audiences out to get {:?}",
                self.token_audience
            )),
        }
    }

    fn check_url(&self, text: &str, field: &str) -> Result<(), Refusal> {
        if self.allowed_provider_urls.is_empty()
            || self.allowed_provider_urls.iter().any(|a| a.allows(text))
        {
            return Ok(());
        }
        Err(Refusal {
            reason: reason::PROVIDER_URL,
            field: field.to_owned(),
            message: format!(
                "{:?} is not in the operator's allow-list (--allowed-provider-url, chart: \
                 externalSecrets.allowedProviderURLs)",
                text.trim()
            ),
        })
    }
}

/// A Secret reference of a SecretStore must not name another namespace.
fn own_namespace(
    selector: &SecretKeySelector,
    store_namespace: Option<&str>,
    field: &str,
) -> Result<(), Refusal> {
    same_namespace(selector.namespace.as_deref(), store_namespace, field)
}

fn same_namespace(
    named: Option<&str>,
    store_namespace: Option<&str>,
    field: &str,
) -> Result<(), Refusal> {
    match (store_namespace, named) {
        (Some(own), Some(other)) if other != own => Err(Refusal {
            reason: reason::CROSS_NAMESPACE,
            field: format!("{field}.namespace"),
            message: format!(
                "a SecretStore may only use its own namespace {own:?}, not {other:?}; \
                 leave namespace out, or have the operator make a ClusterSecretStore"
            ),
        }),
        _ => Ok(()),
    }
}

/// One entry of the provider-URL allow-list: an absolute `http`/`https` URL without user info,
/// query or fragment.
///
/// A provider URL is allowed by an entry when both, parsed as WHATWG URLs (host names lower-cased
/// and IDNA-mapped, IP addresses and default ports normalised, `.`/`..` path segments resolved),
/// have the same scheme, host and port, and the provider URL's path equals the entry's path or
/// continues it after a `/` (`https://vault.example/team-a` allows `…/team-a` and `…/team-a/x`,
/// not `…/team-ab`). Host names are compared as names: the list does not pin addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedUrl {
    scheme: String,
    host: String,
    port: u16,
    /// Without a trailing `/`; empty allows every path.
    path: String,
}

impl AllowedUrl {
    /// Parses an entry (a flag value).
    pub fn parse(text: &str) -> Result<AllowedUrl, String> {
        let url = Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{text:?}: only http and https URLs"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{text:?}: no user info in an allowed URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{text:?}: no query or fragment in an allowed URL"));
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(format!("{text:?}: a host is required"));
        };
        Ok(AllowedUrl {
            scheme: url.scheme().to_owned(),
            host: host.to_owned(),
            port,
            path: url.path().trim_end_matches('/').to_owned(),
        })
    }

    /// Whether this entry allows the provider URL `text` (unparsable URLs are not allowed).
    pub fn allows(&self, text: &str) -> bool {
        let Ok(url) = Url::parse(text.trim()) else {
            return false;
        };
        let path = url.path();
        url.scheme() == self.scheme
            && url.host_str() == Some(self.host.as_str())
            && url.port_or_known_default() == Some(self.port)
            && (path.trim_end_matches('/') == self.path
                || path
                    .strip_prefix(self.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

impl std::fmt::Display for AllowedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme, self.host, self.port, self.path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::ProviderSpec;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> ProviderSpec {
        serde_json::from_value(value).expect("provider spec")
    }

    fn vault(auth: serde_json::Value) -> ProviderSpec {
        spec(json!({"vault": {"server": "https://vault.example:8200", "auth": auth}}))
    }

    #[test]
    fn a_secret_store_may_not_name_another_namespace_anywhere() {
        let policy = StorePolicy::default();
        let other = |selector: serde_json::Value| {
            let mut s = selector;
            s["namespace"] = json!("kube-system");
            s
        };
        let key = json!({"name": "creds", "key": "k"});
        let cases = [
            (
                vault(json!({"tokenSecretRef": other(key.clone())})),
                "spec.provider.vault.auth.tokenSecretRef.namespace",
            ),
            (
                vault(json!({"appRole": {"roleId": "r", "secretRef": other(key.clone())}})),
                "spec.provider.vault.auth.appRole.secretRef.namespace",
            ),
            (
                vault(json!({"kubernetes": {"role": "r",
                    "serviceAccountRef": {"name": "admin", "namespace": "kube-system"}}})),
                "spec.provider.vault.auth.kubernetes.serviceAccountRef.namespace",
            ),
            (
                spec(
                    json!({"aws": {"service": "SecretsManager", "region": "eu-west-1",
                    "auth": {"secretRef": {"accessKeyIDSecretRef": other(key.clone()),
                                           "secretAccessKeySecretRef": key.clone()}}}}),
                ),
                "spec.provider.aws.auth.secretRef.accessKeyIDSecretRef.namespace",
            ),
            (
                spec(
                    json!({"aws": {"service": "SecretsManager", "region": "eu-west-1",
                    "auth": {"secretRef": {"accessKeyIDSecretRef": key.clone(),
                                           "secretAccessKeySecretRef": other(key.clone())}}}}),
                ),
                "spec.provider.aws.auth.secretRef.secretAccessKeySecretRef.namespace",
            ),
            (
                spec(
                    json!({"aws": {"service": "SecretsManager", "region": "eu-west-1",
                    "auth": {"secretRef": {"accessKeyIDSecretRef": key.clone(),
                                           "secretAccessKeySecretRef": key.clone(),
                                           "sessionTokenSecretRef": other(key.clone())}}}}),
                ),
                "spec.provider.aws.auth.secretRef.sessionTokenSecretRef.namespace",
            ),
        ];
        for (spec, field) in cases {
            let refusal = policy.check(&spec, Some("team-a")).expect_err(field);
            assert_eq!(refusal.reason, reason::CROSS_NAMESPACE);
            assert_eq!(refusal.field, field);
            assert!(refusal.to_string().contains("\"kube-system\""), "{refusal}");
            // Its own namespace, spelled out, is fine; a ClusterSecretStore may name any.
            assert_eq!(policy.check(&spec, None), Ok(()), "{field}");
        }
        let own = vault(json!({"kubernetes": {"role": "r",
            "serviceAccountRef": {"name": "reader", "namespace": "team-a"}}}));
        assert_eq!(policy.check(&own, Some("team-a")), Ok(()));
    }

    #[test]
    fn tokens_always_carry_an_allowed_audience() {
        let mut policy = StorePolicy::default();
        assert_eq!(policy.audiences(&[]), Ok(vec!["vault".to_owned()]));
        assert_eq!(
            policy.audiences(&["vault".to_owned()]),
            Ok(vec!["vault".to_owned()])
        );
        // The API server's own audience is never listed by default.
        let api = "https://kubernetes.default.svc.cluster.local".to_owned();
        assert!(policy.audiences(std::slice::from_ref(&api)).is_err());
        let asks = vault(json!({"kubernetes": {"role": "r",
            "serviceAccountRef": {"name": "reader", "audiences": [api]}}}));
        let refusal = policy.check(&asks, Some("team-a")).unwrap_err();
        assert_eq!(refusal.reason, reason::AUDIENCE);
        assert_eq!(
            refusal.field,
            "spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences"
        );
        // The same holds for a ClusterSecretStore.
        assert!(policy.check(&asks, None).is_err());

        policy.token_audience = "openbao".into();
        policy.allowed_token_audiences = vec!["openbao".into(), "vault-eu".into()];
        assert_eq!(policy.audiences(&[]), Ok(vec!["openbao".to_owned()]));
        assert!(policy.audiences(&["vault-eu".to_owned()]).is_ok());
        assert!(
            policy
                .audiences(&["vault-eu".to_owned(), "vault".to_owned()])
                .is_err()
        );
    }

    #[test]
    fn the_controller_identity_is_for_cluster_stores_unless_the_operator_opts_in() {
        let ambient = spec(
            json!({"aws": {"service": "SecretsManager", "region": "eu-west-1",
                                          "role": "arn:aws:iam::1:role/admin"}}),
        );
        let mut policy = StorePolicy::default();
        let refusal = policy.check(&ambient, Some("team-a")).unwrap_err();
        assert_eq!(refusal.reason, reason::CONTROLLER_IDENTITY);
        assert_eq!(refusal.field, "spec.provider.aws.auth");
        assert!(
            refusal
                .message
                .contains("--allow-controller-identity-in-secret-stores")
        );
        // `auth: {}` is the same as no auth.
        let empty_auth = spec(
            json!({"aws": {"service": "SecretsManager", "region": "eu-west-1",
                                             "auth": {}}}),
        );
        assert!(policy.check(&empty_auth, Some("team-a")).is_err());
        assert_eq!(policy.check(&ambient, None), Ok(()));
        policy.controller_identity_in_secret_stores = true;
        assert_eq!(policy.check(&ambient, Some("team-a")), Ok(()));
    }

    #[test]
    fn allowed_urls_match_scheme_host_port_and_a_path_prefix() {
        let entry = AllowedUrl::parse("https://Vault.Example/team-a/").unwrap();
        for allowed in [
            "https://vault.example/team-a",
            "https://vault.example/team-a/",
            "https://vault.example:443/team-a/v1",
            "https://VAULT.example/team-a/x/../y",
        ] {
            assert!(entry.allows(allowed), "{allowed}");
        }
        for refused in [
            "http://vault.example/team-a",
            "https://vault.example:8200/team-a",
            "https://vault.example/team-ab",
            "https://vault.example/",
            "https://vault.example/team-a/../team-b",
            "https://vault.example.evil.com/team-a",
            "https://vault.example@evil.com/team-a",
            "https://evil.com/https://vault.example/team-a",
            "not a url",
            "",
        ] {
            assert!(!entry.allows(refused), "{refused}");
        }
        let host = AllowedUrl::parse("http://127.0.0.1:8200").unwrap();
        assert!(host.allows("http://127.0.0.1:8200"));
        assert!(host.allows("http://127.0.0.1:8200/any/path"));
        // One IPv4 address, however spelled.
        assert!(host.allows("http://127.1:8200/"));
        assert!(!host.allows("http://127.0.0.2:8200/"));
        for bad in [
            "ftp://x",
            "https://u:p@vault.example",
            "https://vault.example/?q=1",
            "vault.example",
            "file:///etc/passwd",
        ] {
            assert!(AllowedUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vault_server_and_aws_endpoint_are_checked_against_the_allow_list() {
        let policy = StorePolicy {
            allowed_provider_urls: vec![AllowedUrl::parse("https://vault.example:8200").unwrap()],
            ..StorePolicy::default()
        };
        let token = json!({"tokenSecretRef": {"name": "t", "key": "k"}});
        assert_eq!(policy.check(&vault(token.clone()), Some("a")), Ok(()));
        let elsewhere = spec(json!({"vault": {"server": "http://169.254.169.254", "auth": token}}));
        let refusal = policy.check(&elsewhere, None).unwrap_err();
        assert_eq!(refusal.reason, reason::PROVIDER_URL);
        assert_eq!(refusal.field, "spec.provider.vault.server");
        let aws = spec(
            json!({"aws": {"service": "SecretsManager", "region": "eu-west-1",
                                      "endpoint": "http://10.0.0.1:5000"}}),
        );
        assert_eq!(
            policy.check(&aws, None).unwrap_err().field,
            "spec.provider.aws.endpoint"
        );
        // The SDK's own endpoint (no override) is not a tenant's choice.
        let default_endpoint =
            spec(json!({"aws": {"service": "SecretsManager", "region": "eu-west-1"}}));
        assert_eq!(policy.check(&default_endpoint, None), Ok(()));
    }

    /// A kubernetes store's server (this cluster's when none is given) is checked against the
    /// allow-list, and its token must be in the SecretStore's own namespace.
    #[test]
    fn a_kubernetes_store_is_checked_like_the_others() {
        let kubernetes = |server: serde_json::Value, namespace: Option<&str>| {
            let mut selector = json!({"name": "t", "key": "k"});
            if let Some(ns) = namespace {
                selector["namespace"] = json!(ns);
            }
            spec(json!({"kubernetes": {"server": server,
                                       "auth": {"token": {"bearerToken": selector}}}}))
        };
        let open = StorePolicy::default();
        assert_eq!(open.check(&kubernetes(json!({}), None), None), Ok(()));
        let refusal = open
            .check(&kubernetes(json!({}), Some("other")), Some("a"))
            .unwrap_err();
        assert_eq!(
            refusal.field,
            "spec.provider.kubernetes.auth.token.bearerToken.namespace"
        );
        let policy = StorePolicy {
            allowed_provider_urls: vec![AllowedUrl::parse("https://remote.example:6443").unwrap()],
            ..StorePolicy::default()
        };
        let remote = kubernetes(json!({"url": "https://remote.example:6443"}), None);
        assert_eq!(policy.check(&remote, Some("a")), Ok(()));
        for server in [json!({}), json!({"url": "https://10.0.0.1"})] {
            let refusal = policy
                .check(&kubernetes(server, None), Some("a"))
                .unwrap_err();
            assert_eq!(refusal.reason, reason::PROVIDER_URL);
            assert_eq!(refusal.field, "spec.provider.kubernetes.server.url");
        }
    }
}
