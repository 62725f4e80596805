//! Secrets of a Kubernetes API server (ESO's `kubernetes` provider): another namespace of this
//! cluster, or another cluster, read with the bearer token the store gives — never the caller's own
//! identity.
//!
//! `key` is a Secret's name in the store's namespace; `property` one of its data keys (without it,
//! the whole data as a JSON object of strings). Secrets have no versions: one given is an error.
//! `find` lists the namespace's Secrets (a page of 100 at a time) and matches their names.

use std::collections::BTreeMap;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::{error_chain, scrub};
use crate::http::{self, MAX_ANSWER_BYTES};
use crate::property::WipedJson;
use crate::{Error, Find, FindBudget, RemoteRef, SecretBytes, SecretProvider};

/// Where and how to read Secrets.
#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    /// The API server, e.g. `https://kubernetes.default.svc`.
    pub server: String,
    /// PEM CA bundle of the API server; `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The namespace whose Secrets are read.
    pub namespace: String,
    /// A bearer token allowed to read them.
    pub token: Zeroizing<String>,
}

/// A namespace's Secrets on a Kubernetes API server.
pub struct KubernetesSecrets {
    http: reqwest::Client,
    server: Url,
    namespace: String,
    token: Zeroizing<String>,
    store: String,
}

impl std::fmt::Debug for KubernetesSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesSecrets")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Whether `name` can be a Kubernetes object name (a DNS subdomain).
fn object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

impl KubernetesSecrets {
    /// A provider for `config`; nothing is sent until the first call.
    pub fn new(config: KubernetesConfig) -> Result<KubernetesSecrets, Error> {
        let server = http::server_url(&config.server, "kubernetes")?;
        let namespace = config.namespace.trim().to_owned();
        if !object_name(&namespace) {
            return Err(Error::InvalidConfig(format!(
                "kubernetes: {namespace:?} is not a namespace name"
            )));
        }
        let token = Zeroizing::new(config.token.trim().to_owned());
        if token.is_empty() {
            return Err(Error::InvalidConfig(
                "kubernetes: the bearer token is empty".to_owned(),
            ));
        }
        let http = http::client(config.ca_pem.as_deref(), "kubernetes")?;
        let store = format!(
            "kubernetes at {}, namespace {namespace:?}",
            server.as_str().trim_end_matches('/')
        );
        Ok(KubernetesSecrets {
            http,
            server,
            namespace,
            token,
            store,
        })
    }

    fn url<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> Url {
        let mut url = self.server.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend([
                    "api",
                    "v1",
                    "namespaces",
                    self.namespace.as_str(),
                    "secrets",
                ])
                .extend(segments);
        }
        url
    }

    /// GETs `url` with the token and parses the JSON answer; `key` names the Secret read, if one.
    async fn get_json(&self, url: Url, key: Option<&str>) -> Result<WipedJson, Error> {
        let mut token =
            HeaderValue::from_str(&format!("Bearer {}", self.token.as_str())).map_err(|_| {
                Error::InvalidConfig(format!(
                    "{}: the token holds characters not allowed in an HTTP header",
                    self.store
                ))
            })?;
        token.set_sensitive(true);
        let response = self
            .http
            .get(url)
            .header(AUTHORIZATION, token)
            .send()
            .await
            .map_err(|e| self.unavailable(&e))?;
        let (status, body) = match http::read_bounded(response).await {
            Ok(answer) => answer,
            Err(http::ReadError::Http(e)) => return Err(self.unavailable(&e)),
            Err(http::ReadError::TooLarge(status)) => {
                return Err(self.provider_error(
                    status,
                    format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
                ));
            }
        };
        if status.is_success() {
            return serde_json::from_slice::<Value>(&body)
                .map(WipedJson)
                .map_err(|_| self.provider_error(status, "the answer is not JSON".to_owned()));
        }
        // A Status object's message names the object and the user, never a value.
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .map(|m| scrub(&m, [self.token.as_str()]))
            .unwrap_or_default();
        Err(match status {
            StatusCode::NOT_FOUND if key.is_some() => Error::NotFound {
                store: self.store.clone(),
                key: key.unwrap_or_default().to_owned(),
                version: None,
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized {
                store: self.store.clone(),
                message: format!("{}: {message}", status.as_u16()),
            },
            _ => self.provider_error(status, message),
        })
    }

    fn unavailable(&self, error: &reqwest::Error) -> Error {
        Error::Unavailable {
            store: self.store.clone(),
            message: scrub(&error_chain(error), [self.token.as_str()]),
        }
    }

    fn provider_error(&self, status: StatusCode, message: String) -> Error {
        Error::Provider {
            store: self.store.clone(),
            status: status.as_u16(),
            message,
        }
    }

    /// The data of the Secret `r` names, decoded, by key.
    async fn data(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, Error> {
        if r.version.as_deref().is_some_and(|v| !v.trim().is_empty()) {
            return Err(Error::InvalidConfig(format!(
                "{}: Secrets have no versions (remote key {:?})",
                self.store, r.key
            )));
        }
        let name = r.key.trim();
        if !object_name(name) {
            return Err(Error::InvalidConfig(format!(
                "{}: the remote key {name:?} is not a Secret name",
                self.store
            )));
        }
        let secret = self.get_json(self.url([name]), Some(name)).await?;
        self.decode(name, &secret.0)
    }

    /// The `data` of a Secret object, base64-decoded.
    fn decode(&self, name: &str, secret: &Value) -> Result<BTreeMap<String, SecretBytes>, Error> {
        let invalid = |message: &str| Error::InvalidValue {
            store: self.store.clone(),
            key: name.to_owned(),
            message: message.to_owned(),
        };
        let mut out = BTreeMap::new();
        let Some(data) = secret.get("data") else {
            return Ok(out);
        };
        let data = data
            .as_object()
            .ok_or_else(|| invalid("its data is not an object"))?;
        for (key, value) in data {
            let text = value
                .as_str()
                .ok_or_else(|| invalid("a data value is not a string"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| invalid("a data value is not base64"))?;
            out.insert(key.clone(), Zeroizing::new(bytes));
        }
        Ok(out)
    }

    /// A Secret's data as one JSON object of strings (ESO's whole-Secret value).
    fn as_json(
        &self,
        name: &str,
        data: &BTreeMap<String, SecretBytes>,
    ) -> Result<SecretBytes, Error> {
        let mut object = serde_json::Map::new();
        for (key, value) in data {
            let text = std::str::from_utf8(value).map_err(|_| Error::InvalidValue {
                store: self.store.clone(),
                key: name.to_owned(),
                message: format!("the value of {key:?} is not UTF-8 (select it with a property)"),
            })?;
            object.insert(key.clone(), Value::String(text.to_owned()));
        }
        let json = WipedJson(Value::Object(object));
        Ok(Zeroizing::new(
            serde_json::to_vec(&json.0).unwrap_or_default(),
        ))
    }
}

#[async_trait::async_trait]
impl SecretProvider for KubernetesSecrets {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, Error> {
        let mut data = self.data(r).await?;
        match r.property.as_deref() {
            Some(property) => data.remove(property).ok_or_else(|| Error::InvalidProperty {
                store: self.store.clone(),
                key: r.key.clone(),
                property: property.to_owned(),
                message: "the Secret has no such key".to_owned(),
            }),
            None => self.as_json(&r.key, &data),
        }
    }

    async fn get_all(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, Error> {
        if let Some(property) = &r.property {
            return Err(Error::InvalidProperty {
                store: self.store.clone(),
                key: r.key.clone(),
                property: property.clone(),
                message: "a Secret's keys are flat: extract takes no property".to_owned(),
            });
        }
        self.data(r).await
    }

    async fn find(&self, find: &Find) -> Result<BTreeMap<String, SecretBytes>, Error> {
        if find.path.as_deref().is_some_and(|p| !p.trim().is_empty()) {
            return Err(Error::InvalidConfig(format!(
                "{}: Secrets have no paths: find takes only a name",
                self.store
            )));
        }
        let matcher = find.matcher(&self.store)?;
        let mut budget = FindBudget::new(&self.store);
        let mut found = BTreeMap::new();
        let mut next: Option<String> = None;
        loop {
            let mut url = self.url([]);
            url.query_pairs_mut().append_pair("limit", "100");
            if let Some(token) = next.take() {
                url.query_pairs_mut().append_pair("continue", &token);
            }
            let page = self.get_json(url, None).await?;
            budget.page()?;
            let items = page.0.get("items").and_then(Value::as_array);
            for item in items.into_iter().flatten() {
                budget.listed()?;
                let Some(name) = item.pointer("/metadata/name").and_then(Value::as_str) else {
                    continue;
                };
                if matcher.is_match(name) {
                    budget.found()?;
                    let data = self.decode(name, item)?;
                    found.insert(name.to_owned(), self.as_json(name, &data)?);
                }
            }
            match page
                .0
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                Some(token) => next = Some(token.to_owned()),
                None => break,
            }
        }
        Ok(found)
    }

    /// Lists at most one Secret of the namespace: a refused token shows (401); a 403 means the
    /// token was accepted but may not list, which a reader of named Secrets commonly is, so it
    /// counts as usable.
    async fn validate(&self) -> Result<(), Error> {
        let mut url = self.url([]);
        url.query_pairs_mut().append_pair("limit", "1");
        match self.get_json(url, None).await {
            Ok(_) => Ok(()),
            Err(Error::Unauthorized { message, .. }) if message.starts_with("403") => Ok(()),
            Err(other) => Err(other),
        }
    }

    fn kind(&self) -> &'static str {
        "kubernetes"
    }
}
