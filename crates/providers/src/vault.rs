//! Vault / OpenBao KV version 2 over HTTP.
//!
//! A read is `GET {server}/v1/{mount}/data/{key}` (`?version=N` with a version); the secret is the
//! answer's `data.data` object. As in External Secrets Operator, a key that starts with the mount
//! (`secret/app` or `secret/data/app` for mount `secret`) has that prefix removed, so ESO keys work
//! unchanged.
//!
//! Authentication is a fixed token, or a login (AppRole, Kubernetes service-account JWT) done on
//! first use. A login token is kept until three quarters of its lease have passed, then the next
//! call logs in again. When the store answers 403 to a login token (revoked, or its policies
//! changed), the provider logs in once more and retries the call once.
//!
//! The Kubernetes JWT is only sent at login. A caller holding a short-lived projected token hands
//! a newer one over with [`VaultKv::set_kubernetes_jwt`]; the next login uses it.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::{error_chain, scrub};
use crate::http::{self, MAX_ANSWER_BYTES};
use crate::property::{self, Origin, WipedJson};
use crate::{Error, Find, FindBudget, RemoteRef, SecretBytes, SecretProvider};

/// Where a Vault / OpenBao KV v2 store is and how to log in to it.
#[derive(Clone, Debug)]
pub struct VaultKvConfig {
    /// The server's base URL, `https://vault.example:8200`.
    pub server: String,
    /// The KV v2 mount, e.g. `secret`.
    pub mount: String,
    /// The namespace (Vault Enterprise / OpenBao namespaces), sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// PEM certificates to trust instead of the system roots (ESO's `caBundle`).
    pub ca_pem: Option<Vec<u8>>,
    /// How to authenticate.
    pub auth: VaultAuth,
}

/// How the provider authenticates to Vault / OpenBao.
#[derive(Clone)]
pub enum VaultAuth {
    /// A fixed token.
    Token(Zeroizing<String>),
    /// AppRole login: `POST /v1/auth/{mount}/login` with the role id and secret id.
    AppRole {
        /// The auth mount, `approle` by default.
        mount: String,
        /// The role id.
        role_id: String,
        /// The secret id.
        secret_id: Zeroizing<String>,
    },
    /// Kubernetes login: `POST /v1/auth/{mount}/login` with a role and a service-account JWT.
    Kubernetes {
        /// The auth mount, `kubernetes` by default.
        mount: String,
        /// The Vault role bound to the service account.
        role: String,
        /// The service account's token.
        jwt: Zeroizing<String>,
    },
}

impl std::fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials stay out of Debug output; the mounts and names are not secret.
        match self {
            VaultAuth::Token(_) => f.write_str("Token(..)"),
            VaultAuth::AppRole { mount, role_id, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", role_id)
                .finish_non_exhaustive(),
            VaultAuth::Kubernetes { mount, role, .. } => f
                .debug_struct("Kubernetes")
                .field("mount", mount)
                .field("role", role)
                .finish_non_exhaustive(),
        }
    }
}

/// The credentials as held by a running provider (the Kubernetes JWT can be replaced).
enum Credentials {
    Token(Zeroizing<String>),
    AppRole {
        mount: String,
        role_id: String,
        secret_id: Zeroizing<String>,
    },
    Kubernetes {
        mount: String,
        role: String,
        jwt: RwLock<Zeroizing<String>>,
    },
}

/// A token obtained by logging in.
struct LoginToken {
    token: Zeroizing<String>,
    /// When to log in again; `None`: the token does not expire.
    renew_after: Option<Instant>,
}

/// An answer read whole: its status and body (wiped when dropped).
struct Answer {
    status: StatusCode,
    body: Zeroizing<Vec<u8>>,
}

/// A Vault / OpenBao KV version 2 store.
pub struct VaultKv {
    http: reqwest::Client,
    server: Url,
    mount: String,
    namespace: Option<String>,
    credentials: Credentials,
    login: tokio::sync::Mutex<Option<LoginToken>>,
    store: String,
}

impl std::fmt::Debug for VaultKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.credentials {
            Credentials::Token(_) => "token",
            Credentials::AppRole { .. } => "approle",
            Credentials::Kubernetes { .. } => "kubernetes",
        };
        f.debug_struct("VaultKv")
            .field("store", &self.store)
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

impl VaultKv {
    /// A provider for `config`. Nothing is sent until the first call.
    pub fn new(config: VaultKvConfig) -> Result<VaultKv, Error> {
        let invalid = |message: String| Error::InvalidConfig(message);
        let server = http::server_url(&config.server, "vault")?;
        let mount = config.mount.trim_matches('/').to_owned();
        if mount.is_empty() {
            return Err(invalid("the vault KV mount is empty".to_owned()));
        }
        let namespace = config
            .namespace
            .map(|n| n.trim_matches('/').to_owned())
            .filter(|n| !n.is_empty());

        let credentials = match config.auth {
            VaultAuth::Token(token) => {
                let token = Zeroizing::new(token.trim().to_owned());
                if token.is_empty() {
                    return Err(invalid("the vault token is empty".to_owned()));
                }
                Credentials::Token(token)
            }
            VaultAuth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                if role_id.trim().is_empty() || secret_id.trim().is_empty() {
                    return Err(invalid(
                        "vault AppRole auth needs a role id and a secret id".to_owned(),
                    ));
                }
                Credentials::AppRole {
                    mount: auth_mount(&mount, "approle"),
                    role_id: role_id.trim().to_owned(),
                    secret_id: Zeroizing::new(secret_id.trim().to_owned()),
                }
            }
            VaultAuth::Kubernetes { mount, role, jwt } => {
                if role.trim().is_empty() || jwt.trim().is_empty() {
                    return Err(invalid(
                        "vault Kubernetes auth needs a role and a service-account token".to_owned(),
                    ));
                }
                Credentials::Kubernetes {
                    mount: auth_mount(&mount, "kubernetes"),
                    role: role.trim().to_owned(),
                    jwt: RwLock::new(Zeroizing::new(jwt.trim().to_owned())),
                }
            }
        };

        let http = http::client(config.ca_pem.as_deref(), "vault")?;

        let mut store = format!(
            "vault at {}, mount {mount:?}",
            server.as_str().trim_end_matches('/')
        );
        if let Some(namespace) = &namespace {
            store.push_str(&format!(", namespace {namespace:?}"));
        }
        Ok(VaultKv {
            http,
            server,
            mount,
            namespace,
            credentials,
            login: tokio::sync::Mutex::new(None),
            store,
        })
    }

    /// Replaces the service-account JWT used by the next Kubernetes login (a token already
    /// obtained is kept until it is due for renewal). An error when the store does not use
    /// Kubernetes auth.
    pub fn set_kubernetes_jwt(&self, jwt: Zeroizing<String>) -> Result<(), Error> {
        match &self.credentials {
            Credentials::Kubernetes { jwt: current, .. } => {
                let jwt = Zeroizing::new(jwt.trim().to_owned());
                if jwt.is_empty() {
                    return Err(Error::InvalidConfig(
                        "the service-account token is empty".to_owned(),
                    ));
                }
                *current.write().unwrap_or_else(|e| e.into_inner()) = jwt;
                Ok(())
            }
            _ => Err(Error::InvalidConfig(format!(
                "{} does not use Kubernetes auth",
                self.store
            ))),
        }
    }

    /// The store's name in messages: its address, mount and namespace.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// `{server}/v1/` followed by `segments`, each percent-encoded as one path segment.
    fn url<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> Url {
        let mut url = self.server.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // `new` refused URLs that cannot be a base, so this always runs.
            path.pop_if_empty().push("v1").extend(segments);
        }
        url
    }

    /// The KV path segments of `key`, ESO's mount prefix removed.
    fn key_segments<'k>(&self, key: &'k str) -> Result<Vec<&'k str>, Error> {
        let mut path = key.trim_matches('/');
        if let Some(rest) = path
            .strip_prefix(self.mount.as_str())
            .and_then(|r| r.strip_prefix('/'))
        {
            path = rest.strip_prefix("data/").unwrap_or(rest);
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{}: the remote key {key:?} names no secret",
                self.store
            )));
        }
        Ok(segments)
    }

    /// Every credential this provider holds, to remove from messages the store sends back.
    fn scrub(&self, message: &str, token: Option<&str>) -> String {
        match &self.credentials {
            Credentials::Token(t) => scrub(message, [t.as_str()]),
            Credentials::AppRole { secret_id, .. } => scrub(
                message,
                [Some(secret_id.as_str()), token].into_iter().flatten(),
            ),
            Credentials::Kubernetes { jwt, .. } => {
                let jwt = jwt.read().unwrap_or_else(|e| e.into_inner());
                scrub(message, [Some(jwt.as_str()), token].into_iter().flatten())
            }
        }
    }

    fn unavailable(&self, error: &reqwest::Error, token: Option<&str>) -> Error {
        Error::Unavailable {
            store: self.store.clone(),
            message: self.scrub(&error_chain(error), token),
        }
    }

    /// Sends `request` (with the namespace and, if given, the token) and reads the whole answer.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        token: Option<&str>,
    ) -> Result<Answer, Error> {
        let mut request = request.header("X-Vault-Request", "true");
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token).map_err(|_| {
                Error::InvalidConfig(format!(
                    "{}: the token holds characters not allowed in an HTTP header",
                    self.store
                ))
            })?;
            value.set_sensitive(true);
            request = request.header("X-Vault-Token", value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.unavailable(&e, token))?;
        match http::read_bounded(response).await {
            Ok((status, body)) => Ok(Answer { status, body }),
            Err(http::ReadError::Http(e)) => Err(self.unavailable(&e, token)),
            Err(http::ReadError::TooLarge(status)) => Err(Error::Provider {
                store: self.store.clone(),
                status: status.as_u16(),
                message: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
            }),
        }
    }

    /// The error an unsuccessful answer stands for. `key` is the KV read it answered, if any;
    /// `login` whether it answered a login.
    fn failure(
        &self,
        answer: &Answer,
        key: Option<&RemoteRef>,
        token: Option<&str>,
        login: bool,
    ) -> Error {
        let errors: Vec<String> = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| {
                v.get("errors").and_then(Value::as_array).map(|errors| {
                    errors
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
            })
            .unwrap_or_default();
        let said = self.scrub(&errors.join("; "), token);
        let status = answer.status;
        let message = if said.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {said}")
        };
        let store = self.store.clone();
        match (status.as_u16(), key) {
            // KV v2 answers a missing (or deleted) secret with 404 and no error text; a missing
            // mount is a 404 that says "no handler for route", which is a configuration error.
            (404, Some(r)) if said.is_empty() => Error::NotFound {
                store,
                key: r.key.clone(),
                version: r.version.clone(),
            },
            (401 | 403, _) => Error::Unauthorized { store, message },
            (400, _) if login => Error::Unauthorized { store, message },
            // Sealed (503), standby or overloaded (429), failing (5xx): worth another try.
            (429 | 500..=599, _) => Error::Unavailable { store, message },
            (status, _) => Error::Provider {
                store,
                status,
                message: said,
            },
        }
    }

    /// Logs in with AppRole or Kubernetes credentials.
    async fn log_in(&self) -> Result<LoginToken, Error> {
        let (mount, body) = match &self.credentials {
            Credentials::Token(token) => {
                return Ok(LoginToken {
                    token: token.clone(),
                    renew_after: None,
                });
            }
            Credentials::AppRole {
                mount,
                role_id,
                secret_id,
            } => (
                mount,
                WipedJson(serde_json::json!({
                    "role_id": role_id,
                    "secret_id": secret_id.as_str(),
                })),
            ),
            Credentials::Kubernetes { mount, role, jwt } => {
                let jwt = jwt.read().unwrap_or_else(|e| e.into_inner());
                (
                    mount,
                    WipedJson(serde_json::json!({ "role": role, "jwt": jwt.as_str() })),
                )
            }
        };
        let body = Zeroizing::new(serde_json::to_vec(&body.0).unwrap_or_default());
        let url = self.url(
            std::iter::once("auth")
                .chain(mount.split('/'))
                .chain(["login"]),
        );
        let request = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        let answer = self.send(request, None).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&answer, None, None, true));
        }
        let reply = serde_json::from_slice::<Value>(&answer.body)
            .map(WipedJson)
            .map_err(|_| self.malformed(answer.status, "the login answer is not JSON"))?;
        let auth = reply.0.get("auth");
        let token = auth
            .and_then(|a| a.get("client_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                self.malformed(answer.status, "the login answer has no auth.client_token")
            })?;
        let lease = auth
            .and_then(|a| a.get("lease_duration"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(LoginToken {
            token: Zeroizing::new(token.to_owned()),
            // The lease comes from the server the store names: a huge one must not overflow
            // (renewal then never comes due, as the lease never ends).
            renew_after: (lease > 0)
                .then(|| Instant::now().checked_add(Duration::from_secs(lease / 4 * 3)))
                .flatten(),
        })
    }

    fn malformed(&self, status: StatusCode, message: &str) -> Error {
        Error::Provider {
            store: self.store.clone(),
            status: status.as_u16(),
            message: message.to_owned(),
        }
    }

    /// The token to send, and whether it came from a login (so a 403 may mean it went stale).
    async fn token(&self) -> Result<(Zeroizing<String>, bool), Error> {
        if let Credentials::Token(token) = &self.credentials {
            return Ok((token.clone(), false));
        }
        // Held across the login, so concurrent calls wait for one login instead of racing.
        let mut cached = self.login.lock().await;
        if let Some(login) = cached.as_ref()
            && login.renew_after.is_none_or(|at| Instant::now() < at)
        {
            return Ok((login.token.clone(), true));
        }
        let fresh = self.log_in().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok((token, true))
    }

    /// Drops the cached login token if it is still `token`.
    async fn forget(&self, token: &str) {
        let mut cached = self.login.lock().await;
        if cached.as_ref().is_some_and(|l| l.token.as_str() == token) {
            *cached = None;
        }
    }

    /// GET `url` with the token; a 403 to a login token logs in again and retries once.
    async fn get_authorized(&self, url: Url) -> Result<(Answer, Zeroizing<String>), Error> {
        let (token, from_login) = self.token().await?;
        let answer = self.send(self.http.get(url.clone()), Some(&token)).await?;
        if answer.status == StatusCode::FORBIDDEN && from_login {
            self.forget(&token).await;
            let (token, _) = self.token().await?;
            let answer = self.send(self.http.get(url), Some(&token)).await?;
            return Ok((answer, token));
        }
        Ok((answer, token))
    }

    /// The `data.data` object of the KV v2 secret `r` names.
    async fn read(&self, r: &RemoteRef) -> Result<WipedJson, Error> {
        let segments = self.key_segments(&r.key)?;
        let mut url = self.url(
            self.mount
                .split('/')
                .chain(["data"])
                .chain(segments.iter().copied()),
        );
        if let Some(version) = r
            .version
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            url.query_pairs_mut().append_pair("version", version);
        }
        let (answer, token) = self.get_authorized(url).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&answer, Some(r), Some(&token), false));
        }
        let mut reply = serde_json::from_slice::<Value>(&answer.body)
            .map(WipedJson)
            .map_err(|_| self.malformed(answer.status, "the answer is not JSON"))?;
        match reply.0.pointer_mut("/data/data").map(Value::take) {
            Some(data @ Value::Object(_)) => Ok(WipedJson(data)),
            // A deleted or destroyed version has `data: null`.
            _ => Err(Error::NotFound {
                store: self.store.clone(),
                key: r.key.clone(),
                version: r.version.clone(),
            }),
        }
    }
}

/// Deepest KV folder a find descends into.
const MAX_FIND_DEPTH: usize = 32;

impl VaultKv {
    /// The names in the KV folder `folder` (segments below the mount): secrets, and folders with
    /// a trailing `/`. A folder that does not exist has none.
    async fn list(&self, folder: &[String]) -> Result<Vec<String>, Error> {
        let mut url = self.url(
            self.mount
                .split('/')
                .chain(["metadata"])
                .chain(folder.iter().map(String::as_str)),
        );
        url.query_pairs_mut().append_pair("list", "true");
        let (answer, token) = self.get_authorized(url).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !answer.status.is_success() {
            return Err(self.failure(&answer, None, Some(&token), false));
        }
        let reply = serde_json::from_slice::<Value>(&answer.body)
            .map_err(|_| self.malformed(answer.status, "the answer is not JSON"))?;
        let keys = reply
            .pointer("/data/keys")
            .and_then(Value::as_array)
            .ok_or_else(|| self.malformed(answer.status, "a list answer without data.keys"))?;
        Ok(keys
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect())
    }
}

/// The auth mount, `default` when none is given.
fn auth_mount(mount: &str, default: &str) -> String {
    let mount = mount.trim_matches('/');
    if mount.is_empty() {
        default.to_owned()
    } else {
        mount.to_owned()
    }
}

#[async_trait::async_trait]
impl SecretProvider for VaultKv {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, Error> {
        let data = self.read(r).await?;
        match &r.property {
            Some(property) => property::property_of_json(
                &Origin {
                    store: &self.store,
                    key: &r.key,
                },
                &data.0,
                property,
            ),
            None => Ok(Zeroizing::new(
                serde_json::to_vec(&data.0).unwrap_or_default(),
            )),
        }
    }

    async fn get_all(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, Error> {
        let data = self.read(r).await?;
        property::fields_of_json(
            &Origin {
                store: &self.store,
                key: &r.key,
            },
            &data.0,
            r.property.as_deref(),
        )
    }

    /// Walks the KV folders from `find.path` down (depth first, at most `MAX_FIND_DEPTH`
    /// levels), reading each secret whose path below the mount matches.
    async fn find(&self, find: &Find) -> Result<BTreeMap<String, SecretBytes>, Error> {
        let matcher = find.matcher(&self.store)?;
        let mut budget = FindBudget::new(&self.store);
        let start: Vec<String> = find
            .path
            .as_deref()
            .unwrap_or("")
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut folders = vec![start];
        let mut found = BTreeMap::new();
        while let Some(folder) = folders.pop() {
            for name in self.list(&folder).await? {
                budget.listed()?;
                let mut path = folder.clone();
                match name.strip_suffix('/') {
                    Some(sub) if !sub.is_empty() && !sub.contains('/') => {
                        if path.len() < MAX_FIND_DEPTH {
                            path.push(sub.to_owned());
                            folders.push(path);
                        }
                    }
                    None if !name.is_empty() && !name.contains('/') => {
                        path.push(name);
                        let key = path.join("/");
                        if matcher.is_match(&key) {
                            budget.found()?;
                            let data = self.read(&RemoteRef::new(key.clone())).await?;
                            found.insert(
                                key,
                                Zeroizing::new(serde_json::to_vec(&data.0).unwrap_or_default()),
                            );
                        }
                    }
                    _ => {
                        return Err(self.malformed(
                            StatusCode::OK,
                            "a list answer holds a name that is no KV entry",
                        ));
                    }
                }
            }
        }
        Ok(found)
    }

    async fn validate(&self) -> Result<(), Error> {
        let url = self.url(["auth", "token", "lookup-self"]);
        let (answer, token) = self.get_authorized(url).await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(self.failure(&answer, None, Some(&token), false))
        }
    }

    fn kind(&self) -> &'static str {
        "vault"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_testkit::one_shot_server;

    fn config(server: &str, mount: &str, auth: VaultAuth) -> VaultKvConfig {
        VaultKvConfig {
            server: server.to_owned(),
            mount: mount.to_owned(),
            namespace: None,
            ca_pem: None,
            auth,
        }
    }

    fn token(t: &str) -> VaultAuth {
        VaultAuth::Token(Zeroizing::new(t.to_owned()))
    }

    #[tokio::test]
    async fn redirects_are_not_followed_so_the_token_stays_with_the_allowed_server() {
        let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        elsewhere.set_nonblocking(true).unwrap();
        let target = elsewhere.local_addr().unwrap();
        let (server, served) = one_shot_server(
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{target}/v1/auth/token/lookup-self\r\nContent-Length: 0\r\n\r\n"
            ),
            0,
        );
        let vault = VaultKv::new(config(&server, "secret", token("s.CANARY-redirect"))).unwrap();
        let err = vault.validate().await.unwrap_err();
        assert!(err.to_string().contains("307"), "{err}");
        assert!(!err.to_string().contains("CANARY"), "{err}");
        assert!(served.join().unwrap().contains("s.CANARY-redirect"));
        assert!(
            elsewhere.accept().is_err(),
            "the redirect target was contacted"
        );
    }

    /// A hostile server may answer every LIST with a folder: the walk stops at its depth
    /// bound; and with more names than a find may list, or secrets than it may return.
    #[tokio::test]
    async fn a_find_is_bounded_in_depth_names_and_matches() {
        use crate::test_server::serve;
        use std::sync::atomic::Ordering;
        let json = "application/json".to_owned();
        let (server, served) =
            serve(move |_| (json.clone(), r#"{"data":{"keys":["a/"]}}"#.to_owned()));
        let vault = VaultKv::new(config(&server, "secret", token("t"))).unwrap();
        let found = vault.find(&Find::default()).await.unwrap();
        assert!(found.is_empty());
        assert_eq!(served.load(Ordering::SeqCst), MAX_FIND_DEPTH + 1);

        let many: Vec<String> = (0..=crate::MAX_LISTED).map(|i| format!("s{i}")).collect();
        let listing = serde_json::json!({"data": {"keys": many}}).to_string();
        let (server, _) = serve(move |_| ("application/json".to_owned(), listing.clone()));
        let vault = VaultKv::new(config(&server, "secret", token("t"))).unwrap();
        let none = Find {
            path: None,
            name: Some("^never$".to_owned()),
        };
        let err = vault.find(&none).await.unwrap_err().to_string();
        assert!(err.contains("lists more than 5000 names"), "{err}");

        let names: Vec<String> = (0..=crate::MAX_FOUND).map(|i| format!("s{i}")).collect();
        let listing = serde_json::json!({"data": {"keys": names}}).to_string();
        let (server, served) = serve(move |line| {
            let body = if line.contains("list=true") {
                listing.clone()
            } else {
                r#"{"data":{"data":{"v":"x"}}}"#.to_owned()
            };
            ("application/json".to_owned(), body)
        });
        let vault = VaultKv::new(config(&server, "secret", token("t"))).unwrap();
        let err = vault.find(&Find::default()).await.unwrap_err().to_string();
        assert!(err.contains("matches more than 500 secrets"), "{err}");
        // Refused before reading the secret past the bound.
        assert_eq!(served.load(Ordering::SeqCst), 1 + crate::MAX_FOUND);
        let err = vault
            .find(&Find {
                path: None,
                name: Some("(unclosed".to_owned()),
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("find.name.regexp"), "{err}");
    }

    #[tokio::test]
    async fn an_oversized_answer_is_refused_without_reading_it_all() {
        let size = MAX_ANSWER_BYTES + (1 << 20);
        let (server, _served) = one_shot_server(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
            ),
            size,
        );
        let vault = VaultKv::new(config(&server, "secret", token("t"))).unwrap();
        let err = vault.validate().await.unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn keys_lose_the_eso_mount_prefix_and_are_encoded_per_segment() {
        let kv =
            VaultKv::new(config("https://vault.example:8200/", "kv/team", token("t"))).unwrap();
        for (key, want) in [
            ("app/db", vec!["app", "db"]),
            ("/app/db/", vec!["app", "db"]),
            ("kv/team/app", vec!["app"]),
            ("kv/team/data/app", vec!["app"]),
            ("kv/teamx/app", vec!["kv", "teamx", "app"]),
        ] {
            assert_eq!(kv.key_segments(key).unwrap(), want, "{key}");
        }
        assert_eq!(kv.key_segments("//").unwrap_err().reason(), "InvalidConfig");
        let url = kv.url(kv.mount.split('/').chain(["data", "a b", "c?d"]));
        assert_eq!(
            url.as_str(),
            "https://vault.example:8200/v1/kv/team/data/a%20b/c%3Fd"
        );
    }

    #[test]
    fn a_server_prefix_path_is_kept() {
        let kv = VaultKv::new(config("https://proxy.example/vault", "secret", token("t"))).unwrap();
        assert_eq!(
            kv.url(["sys", "health"]).as_str(),
            "https://proxy.example/vault/v1/sys/health"
        );
    }

    #[test]
    fn bad_configurations_are_refused_without_echoing_credentials() {
        for (server, mount, auth) in [
            ("not a url", "secret", token("canary-token")),
            ("ftp://vault.example", "secret", token("canary-token")),
            ("https://vault.example", "/", token("canary-token")),
            ("https://vault.example", "secret", token("  ")),
            (
                "https://vault.example",
                "secret",
                VaultAuth::AppRole {
                    mount: String::new(),
                    role_id: String::new(),
                    secret_id: Zeroizing::new("canary-secret-id".to_owned()),
                },
            ),
        ] {
            let error = VaultKv::new(config(server, mount, auth)).unwrap_err();
            assert_eq!(error.reason(), "InvalidConfig");
            assert!(!format!("{error} {error:?}").contains("canary"), "{error}");
        }
        let mut with_ca = config("https://vault.example", "secret", token("t"));
        with_ca.ca_pem = Some(b"no certificate here".to_vec());
        assert_eq!(VaultKv::new(with_ca).unwrap_err().reason(), "InvalidConfig");
    }

    #[test]
    fn debug_output_holds_no_credentials() {
        let auths = [
            token("canary-token"),
            VaultAuth::AppRole {
                mount: "approle".into(),
                role_id: "role".into(),
                secret_id: Zeroizing::new("canary-secret-id".into()),
            },
            VaultAuth::Kubernetes {
                mount: "kubernetes".into(),
                role: "app".into(),
                jwt: Zeroizing::new("canary.jwt.value".into()),
            },
        ];
        for auth in auths {
            let cfg = config("http://127.0.0.1:8200", "secret", auth);
            let text = format!("{cfg:?} {:?}", VaultKv::new(cfg.clone()).unwrap());
            assert!(!text.contains("canary"), "{text}");
            assert!(text.contains("127.0.0.1:8200"), "{text}");
        }
    }

    #[test]
    fn answers_map_to_errors_and_echoed_credentials_are_removed() {
        let kv = VaultKv::new(config(
            "http://127.0.0.1:8200",
            "secret",
            VaultAuth::AppRole {
                mount: String::new(),
                role_id: "role".into(),
                secret_id: Zeroizing::new("canary-secret-id".into()),
            },
        ))
        .unwrap();
        let answer = |status: u16, body: &str| Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: Zeroizing::new(body.as_bytes().to_vec()),
        };
        let key = RemoteRef::new("app").with_version("2");
        let cases = [
            (
                answer(404, r#"{"errors":[]}"#),
                Some(&key),
                false,
                "NotFound",
            ),
            (
                answer(404, r#"{"errors":["no handler for route \"x/data/app\""]}"#),
                Some(&key),
                false,
                "ProviderError",
            ),
            (
                answer(403, r#"{"errors":["permission denied"]}"#),
                Some(&key),
                false,
                "Unauthorized",
            ),
            (
                answer(400, r#"{"errors":["invalid secret id canary-secret-id"]}"#),
                None,
                true,
                "Unauthorized",
            ),
            (
                answer(400, r#"{"errors":["bad request"]}"#),
                Some(&key),
                false,
                "ProviderError",
            ),
            (
                answer(503, r#"{"errors":["Vault is sealed"]}"#),
                Some(&key),
                false,
                "ProviderUnavailable",
            ),
            (
                answer(502, "<html>bad gateway</html>"),
                Some(&key),
                false,
                "ProviderUnavailable",
            ),
        ];
        for (answer, key, login, reason) in cases {
            let error = kv.failure(&answer, key, Some("s.canary-login-token"), login);
            assert_eq!(error.reason(), reason, "{error}");
            assert!(!format!("{error} {error:?}").contains("canary"), "{error}");
            assert!(error.to_string().contains("127.0.0.1:8200"), "{error}");
        }
        let error = kv.failure(&answer(503, "{}"), Some(&key), None, false);
        assert!(error.is_retryable());
        let error = kv.failure(&answer(404, "{}"), Some(&key), None, false);
        assert_eq!(
            error.to_string(),
            "vault at http://127.0.0.1:8200, mount \"secret\": \"app\" (version \"2\") not found"
        );
    }

    #[test]
    fn the_jwt_can_only_be_replaced_on_kubernetes_auth() {
        let kv = VaultKv::new(config("http://127.0.0.1:1", "secret", token("t"))).unwrap();
        assert_eq!(
            kv.set_kubernetes_jwt(Zeroizing::new("x".into()))
                .unwrap_err()
                .reason(),
            "InvalidConfig"
        );
        let kv = VaultKv::new(config(
            "http://127.0.0.1:1",
            "secret",
            VaultAuth::Kubernetes {
                mount: String::new(),
                role: "app".into(),
                jwt: Zeroizing::new("old".into()),
            },
        ))
        .unwrap();
        kv.set_kubernetes_jwt(Zeroizing::new("new".into())).unwrap();
        match &kv.credentials {
            Credentials::Kubernetes { mount, jwt, .. } => {
                assert_eq!(mount, "kubernetes");
                assert_eq!(jwt.read().unwrap().as_str(), "new");
            }
            _ => panic!("not Kubernetes credentials"),
        }
    }
}
