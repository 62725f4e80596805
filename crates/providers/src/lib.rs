//! External secret backends behind one trait, for the controller's ExternalSecret reconciler:
//! Vault / OpenBao KV version 2 ([`VaultKv`]), AWS Secrets Manager ([`SecretsManager`]) and AWS
//! SSM Parameter Store ([`ParameterStore`]).
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
mod parameter_store;
pub mod property;
mod secrets_manager;
mod vault;

use std::collections::BTreeMap;

pub use aws::{AwsConfig, AwsStaticCredentials};
pub use error::Error;
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

    /// A cheap check that the store is reachable and the credentials are accepted; for the
    /// store's `Ready` condition.
    async fn validate(&self) -> Result<(), Error>;

    /// `"vault"`, `"aws-secretsmanager"` or `"aws-ssm"` (a metrics label).
    fn kind(&self) -> &'static str;
}
