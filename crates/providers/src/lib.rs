//! External secret backends behind one trait, for the controller's ExternalSecret reconciler:
//! Vault / OpenBao KV version 2 ([`VaultKv`]), AWS Secrets Manager ([`SecretsManager`]), AWS
//! SSM Parameter Store ([`ParameterStore`]) and a Kubernetes API server's Secrets
//! ([`KubernetesSecrets`]).
//!
//! The crate knows nothing of Kubernetes: the caller resolves references (Secrets holding tokens,
//! service-account JWTs) and passes plain credentials in. What a remote reference means follows
//! External Secrets Operator, so an ESO `remoteRef` or `dataFrom.extract` gives the same bytes here:
//!
//! - `key` names the secret (KV path, secret name or ARN, parameter name);
//! - `property` selects a field of a JSON value ([`property`] describes the path syntax);
//! - `version` is a KV version number, an AWS Secrets Manager stage (`AWSCURRENT`, `AWSPREVIOUS`)
//!   or `uuid/<VersionId>`, or a parameter version or label.
//!
//! Errors ([`Error`]) name the key and the store's address, never a value or a credential.
// A library does not print: its caller decides what reaches a terminal or a log (tests may: clippy.toml).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod aws;
mod error;
mod http;
mod kubernetes;
mod parameter_store;
pub mod property;
mod secrets_manager;
mod vault;

use std::collections::BTreeMap;

pub use aws::{AwsConfig, AwsStaticCredentials};
pub use error::Error;
pub use kubernetes::{KubernetesConfig, KubernetesSecrets};
pub use parameter_store::ParameterStore;
pub use secrets_manager::SecretsManager;
pub use vault::{VaultAuth, VaultKv, VaultKvConfig};

/// How long one call to a remote store may take (connect, request, answer).
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A reference to one remote value (ESO's `remoteRef`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RemoteRef {
    /// The secret's name or path in the store.
    pub key: String,
    /// A field of the (JSON) value: a dotted path, `\.` for a dot inside a name.
    pub property: Option<String>,
    /// Which version: store-specific (see the crate documentation).
    pub version: Option<String>,
}

impl RemoteRef {
    /// A reference to the current version of `key`, whole.
    pub fn new(key: impl Into<String>) -> Self {
        RemoteRef {
            key: key.into(),
            property: None,
            version: None,
        }
    }

    /// The same reference, selecting `property`.
    pub fn with_property(mut self, property: impl Into<String>) -> Self {
        self.property = Some(property.into());
        self
    }

    /// The same reference, at `version`.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }
}

/// Secret bytes, wiped from memory when dropped.
pub type SecretBytes = zeroize::Zeroizing<Vec<u8>>;

/// A search for secrets by name (ESO's `dataFrom.find`): every secret under `path` whose name
/// matches the regular expression `name` (anywhere in the name, as Go's `MatchString`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Find {
    /// Where to look: a KV folder, a Secrets Manager name prefix, a parameter path. Default: all.
    pub path: Option<String>,
    /// A regular expression the name must match. Default: every name.
    pub name: Option<String>,
}

/// Most secrets one [`Find`] may return: more is an error naming the search, not a partial result.
pub const MAX_FOUND: usize = 500;
/// Most names and pages one [`Find`] may list while searching (KV folder entries, Secrets Manager
/// secrets, parameters), matching or not: a store may hold more, and a search must not stall on it.
pub const MAX_LISTED: usize = 5_000;
/// Largest compiled `name` expression (the `regex` crate's size limit).
const MAX_REGEX_BYTES: usize = 1 << 20;

impl Find {
    /// The compiled `name` (matching everything when absent).
    pub fn matcher(&self, store: &str) -> Result<regex::Regex, Error> {
        regex::RegexBuilder::new(self.name.as_deref().unwrap_or(""))
            .size_limit(MAX_REGEX_BYTES)
            .build()
            .map_err(|e| Error::InvalidConfig(format!("{store}: find.name.regexp: {e}")))
    }
}

/// Counts what a search lists and finds against [`MAX_LISTED`] and [`MAX_FOUND`].
pub(crate) struct FindBudget<'a> {
    store: &'a str,
    listed: usize,
    found: usize,
}

impl<'a> FindBudget<'a> {
    pub(crate) fn new(store: &'a str) -> Self {
        FindBudget {
            store,
            listed: 0,
            found: 0,
        }
    }

    /// One more name listed.
    pub(crate) fn listed(&mut self) -> Result<(), Error> {
        self.listed += 1;
        if self.listed > MAX_LISTED {
            return Err(Error::InvalidConfig(format!(
                "{}: find lists more than {MAX_LISTED} names; narrow its path",
                self.store
            )));
        }
        Ok(())
    }

    /// One more page of a listing: a store that answers with empty pages and a next token
    /// forever is stopped as one that lists too many names.
    pub(crate) fn page(&mut self) -> Result<(), Error> {
        self.listed()
    }

    /// One more secret found.
    pub(crate) fn found(&mut self) -> Result<(), Error> {
        self.found += 1;
        if self.found > MAX_FOUND {
            return Err(Error::InvalidConfig(format!(
                "{}: find matches more than {MAX_FOUND} secrets; narrow its path or name",
                self.store
            )));
        }
        Ok(())
    }
}

/// One external secret store.
///
/// Object safe (through `async_trait`), so callers can hold an `Arc<dyn SecretProvider>`.
#[async_trait::async_trait]
pub trait SecretProvider: Send + Sync {
    /// One value. Without `property`, the whole value (a KV v2 secret's data object as JSON
    /// text); with `property`, the value is parsed as JSON and the field selected: a string
    /// leaf gives its bytes, any other leaf its JSON text.
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, Error>;

    /// Every top-level field of a JSON object value (ESO's `dataFrom.extract`): strings as they
    /// are, other values as JSON text. With `property`, the fields of that nested object.
    async fn get_all(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, Error>;

    /// Every secret `find` matches, keyed by its name in the store (a KV path below the mount, a
    /// secret name, a parameter name), each value whole (a KV secret's data object as JSON text).
    async fn find(&self, find: &Find) -> Result<BTreeMap<String, SecretBytes>, Error>;

    /// A cheap check that the store is reachable and the credentials are accepted; for the
    /// store's `Ready` condition.
    async fn validate(&self) -> Result<(), Error>;

    /// `"vault"`, `"aws-secretsmanager"` or `"aws-ssm"` (a metrics label).
    fn kind(&self) -> &'static str;
}

#[cfg(test)]
pub(crate) mod test_server {
    //! A loopback HTTP server answering every request with what `answer` makes of its request
    //! line, for stores that misbehave across many requests.
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Its `http://127.0.0.1:PORT` address and the count of requests served so far.
    pub fn serve(
        answer: impl Fn(&str) -> (String, String) + Send + 'static,
    ) -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        let served = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&served);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = vec![0u8; 65536];
                let n = stream.read(&mut request).unwrap_or(0);
                let text = String::from_utf8_lossy(&request[..n]).into_owned();
                let (content_type, body) = answer(text.lines().next().unwrap_or(""));
                count.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (address, served)
    }
}
