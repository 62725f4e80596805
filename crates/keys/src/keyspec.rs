//! [`KeySpec`]: a master key named by the user (`--age`, `--kms`, `--hc-vault-transit`, `--pgp`,
//! `.sops.yaml`), before it wraps anything. It is the [`MasterKey`] the CLI passes to
//! [`crate::wrap_data_key`], and the unit that `rotate --add-*/--rm-*` and `updatekeys` add and
//! remove.
//!
//! age wraps locally; AWS KMS (`KeySpec::Kms`, [`crate::kms`]) and Vault transit
//! (`KeySpec::HcVault`, [`crate::vault`]) call the service with credentials from the process
//! environment, or from a given [`Environment`] through [`KeySpec::in_environment`]. PGP
//! (`KeySpec::Pgp`, [`crate::pgp`]) encrypts with the key files of the environment, else gpg.

use signet_sops::metadata::{KeyGroup, MasterKeyEntry, Metadata};

use crate::Error;
use crate::age_key::AgeRecipient;
use crate::keyring::Environment;
use crate::kms::KmsClient;
use crate::masterkey::{KeyFuture, KeyType, MasterKey};
use crate::pgp::PgpClient;
use crate::vault::VaultClient;

/// A master key as configured.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum KeySpec {
    /// An age recipient.
    Age(AgeRecipient),
    /// An AWS KMS key.
    Kms(KmsKey),
    /// A Vault / OpenBao transit key.
    HcVault(VaultTransitKey),
    /// A PGP key, by fingerprint.
    Pgp(String),
}

/// An AWS KMS key as sops configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKey {
    /// Key or alias ARN.
    pub arn: String,
    /// Role ARN to assume (the `arn+role` syntax, or `role:` in `.sops.yaml`).
    pub role: Option<String>,
    /// Encryption context, in the order given.
    pub context: Vec<(String, String)>,
    /// AWS profile name, empty when unset.
    pub aws_profile: String,
}

/// A Vault transit key: `<address>/v1/<engine_path>/keys/<key_name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultTransitKey {
    /// e.g. `https://vault.example.com:8200`.
    pub address: String,
    /// Transit mount path, e.g. `transit` or `sops/transit`.
    pub engine_path: String,
    /// Key name.
    pub key_name: String,
}

impl VaultTransitKey {
    /// Parses a transit URI like sops (`https://vault:8200/v1/transit/keys/name`).
    pub fn parse_uri(uri: &str) -> Result<Self, Error> {
        let invalid = |message: &str| Error::InvalidRecipient {
            recipient: uri.to_owned(),
            message: message.to_owned(),
        };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("missing scheme in Vault URL (should be like https://vault.example.com:8200/v1/transit/keys/keyName)"))?;
        if scheme.is_empty() {
            return Err(invalid("missing scheme in Vault URL"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        let dirs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let versioned = |d: &str| {
            d.len() > 1 && d.starts_with('v') && d[1..].bytes().all(|b| b.is_ascii_digit())
        };
        if dirs.len() < 4 || dirs.iter().any(|d| d.is_empty()) {
            return Err(invalid(
                "vault path does not seem to be formatted correctly (e.g. https://vault.example.com:8200/v1/transit/keys/keyName)",
            ));
        }
        if !versioned(dirs[0]) {
            return Err(invalid(
                "running Vault with a prefixed URL is not supported (format: https://vault.example.com:8200/v1/transit/keys/keyName)",
            ));
        }
        Ok(VaultTransitKey {
            address: format!("{scheme}://{authority}"),
            engine_path: dirs[1..dirs.len() - 2].join("/"),
            key_name: dirs[dirs.len() - 1].to_owned(),
        })
    }

    /// The URI form sops prints.
    pub fn uri(&self) -> String {
        format!(
            "{}/v1/{}/keys/{}",
            self.address, self.engine_path, self.key_name
        )
    }
}

impl KmsKey {
    /// One ARN as sops reads it: spaces removed, `arn+roleArn` split into key and role.
    pub fn from_arn(arn: &str, context: &[(String, String)], aws_profile: &str) -> Self {
        let arn: String = arn.chars().filter(|c| *c != ' ').collect();
        let (arn, role) = match arn.find("+arn:") {
            Some(i) if i > 0 => (arn[..i].to_owned(), Some(arn[i + 1..].to_owned())),
            _ => (arn, None),
        };
        KmsKey {
            arn,
            role,
            context: context.to_vec(),
            aws_profile: aws_profile.to_owned(),
        }
    }

    /// Parses sops' `--encryption-context` string form `k1:v1,k2:v2`. `None` when malformed
    /// (sops then ignores the context with a warning).
    pub fn parse_context(text: &str) -> Option<Vec<(String, String)>> {
        if text.is_empty() {
            return Some(Vec::new());
        }
        text.split(',')
            .map(|kv| {
                let mut parts = kv.split(':');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(k), Some(v), None) => Some((k.to_owned(), v.to_owned())),
                    _ => None,
                }
            })
            .collect()
    }
}

impl KeySpec {
    /// Parses a comma-separated list of age recipients (`--age a,b`).
    pub fn age_list(recipients: &str) -> Result<Vec<KeySpec>, Error> {
        Ok(AgeRecipient::parse_list(recipients)?
            .into_iter()
            .map(KeySpec::Age)
            .collect())
    }

    /// Parses a comma-separated list of KMS ARNs (`--kms`), each with the given context/profile.
    pub fn kms_list(arns: &str, context: &[(String, String)], aws_profile: &str) -> Vec<KeySpec> {
        if arns.is_empty() {
            return Vec::new();
        }
        arns.split(',')
            .map(|a| KeySpec::Kms(KmsKey::from_arn(a, context, aws_profile)))
            .collect()
    }

    /// Parses a comma-separated list of Vault transit URIs (`--hc-vault-transit`).
    pub fn vault_list(uris: &str) -> Result<Vec<KeySpec>, Error> {
        if uris.is_empty() {
            return Ok(Vec::new());
        }
        uris.split(',')
            .map(|u| VaultTransitKey::parse_uri(u).map(KeySpec::HcVault))
            .collect()
    }

    /// Parses a comma-separated list of PGP fingerprints (`--pgp`; spaces removed like sops).
    pub fn pgp_list(fingerprints: &str) -> Vec<KeySpec> {
        if fingerprints.is_empty() {
            return Vec::new();
        }
        fingerprints
            .split(',')
            .map(|f| KeySpec::Pgp(f.chars().filter(|c| !c.is_whitespace()).collect()))
            .collect()
    }

    /// The key an existing metadata entry was made with; `None` for kinds Signet only carries.
    pub fn from_entry(entry: &MasterKeyEntry) -> Result<Option<KeySpec>, Error> {
        Ok(match entry {
            MasterKeyEntry::Age(a) => Some(KeySpec::Age(AgeRecipient::parse(&a.recipient)?)),
            MasterKeyEntry::Kms(k) => Some(KeySpec::Kms(KmsKey {
                arn: k.arn.clone(),
                role: k.role.clone().filter(|r| !r.is_empty()),
                context: k.context.clone(),
                aws_profile: k.aws_profile.clone(),
            })),
            MasterKeyEntry::HcVault(v) => Some(KeySpec::HcVault(VaultTransitKey {
                address: v.vault_address.clone(),
                engine_path: v.engine_path.clone(),
                key_name: v.key_name.clone(),
            })),
            MasterKeyEntry::Pgp(p) => Some(KeySpec::Pgp(p.fp.clone())),
            _ => None,
        })
    }

    /// Whether `entry` was made with this key.
    pub fn matches_entry(&self, entry: &MasterKeyEntry) -> bool {
        match KeySpec::from_entry(entry) {
            Ok(Some(spec)) => spec.same_key(self),
            _ => false,
        }
    }

    /// Same type and same name (ARN, recipient, URI, fingerprint); sops' notion of a duplicate.
    pub fn same_key(&self, other: &KeySpec) -> bool {
        self.key_type() == other.key_type() && self.name() == other.name()
    }
}

impl MasterKey for KeySpec {
    fn key_type(&self) -> KeyType {
        match self {
            KeySpec::Age(_) => KeyType::Age,
            KeySpec::Kms(_) => KeyType::Kms,
            KeySpec::HcVault(_) => KeyType::HcVault,
            KeySpec::Pgp(_) => KeyType::Pgp,
        }
    }

    fn name(&self) -> String {
        match self {
            KeySpec::Age(r) => r.as_str().to_owned(),
            KeySpec::Kms(k) => match &k.role {
                Some(role) => format!("{}+{}", k.arn, role),
                None => k.arn.clone(),
            },
            KeySpec::HcVault(v) => v.uri(),
            KeySpec::Pgp(fp) => fp.clone(),
        }
    }

    fn wrap<'a>(&'a self, secret: &'a [u8]) -> KeyFuture<'a, MasterKeyEntry> {
        match self {
            KeySpec::Age(recipient) => recipient.wrap(secret),
            KeySpec::Kms(key) => Box::pin(async move {
                Ok(MasterKeyEntry::Kms(
                    process_clients().0.wrap(key, secret).await?,
                ))
            }),
            KeySpec::HcVault(key) => Box::pin(async move {
                Ok(MasterKeyEntry::HcVault(
                    process_clients().1.wrap(key, secret).await?,
                ))
            }),
            KeySpec::Pgp(fp) => {
                Box::pin(
                    async move { Ok(MasterKeyEntry::Pgp(process_clients().2.wrap(fp, secret)?)) },
                )
            }
        }
    }
}

impl KeySpec {
    /// This key with network credentials (AWS, Vault) taken from `env` instead of the process
    /// environment.
    pub fn in_environment(self, env: Environment) -> KeySpecIn {
        KeySpecIn { spec: self, env }
    }

    async fn wrap_in(&self, env: Environment, secret: &[u8]) -> Result<MasterKeyEntry, Error> {
        match self {
            KeySpec::Kms(key) => Ok(MasterKeyEntry::Kms(
                KmsClient::new(&env).wrap(key, secret).await?,
            )),
            KeySpec::HcVault(key) => Ok(MasterKeyEntry::HcVault(
                VaultClient::new(&env).wrap(key, secret).await?,
            )),
            KeySpec::Pgp(fp) => Ok(MasterKeyEntry::Pgp(PgpClient::new(&env).wrap(fp, secret)?)),
            other => other.wrap(secret).await,
        }
    }
}

/// A [`KeySpec`] bound to an [`Environment`] for its credentials (see
/// [`KeySpec::in_environment`]).
#[derive(Debug, Clone)]
pub struct KeySpecIn {
    /// The key.
    pub spec: KeySpec,
    /// Where AWS and Vault settings are read from.
    pub env: Environment,
}

impl MasterKey for KeySpecIn {
    fn key_type(&self) -> KeyType {
        self.spec.key_type()
    }
    fn name(&self) -> String {
        self.spec.name()
    }
    fn wrap<'a>(&'a self, secret: &'a [u8]) -> KeyFuture<'a, MasterKeyEntry> {
        Box::pin(self.spec.wrap_in(self.env.clone(), secret))
    }
}

/// KMS, Vault and PGP clients for the process environment, made once so that wrapping many files
/// reuses their SDK clients and connections, and reads the PGP key files once.
fn process_clients() -> &'static (KmsClient, VaultClient, PgpClient) {
    static CLIENTS: std::sync::OnceLock<(KmsClient, VaultClient, PgpClient)> =
        std::sync::OnceLock::new();
    CLIENTS.get_or_init(|| {
        let env = Environment::from_process();
        (
            KmsClient::new(&env),
            VaultClient::new(&env),
            PgpClient::new(&env),
        )
    })
}

/// The key groups of a file as [`KeySpec`]s (entries Signet only carries, like GCP KMS, are left
/// out). Used by `rotate` and `updatekeys` to re-wrap for the same or changed keys.
pub fn key_specs_from_metadata(metadata: &Metadata) -> Result<Vec<Vec<KeySpec>>, Error> {
    metadata
        .key_groups
        .iter()
        .map(|group| {
            group
                .iter()
                .filter_map(|entry| KeySpec::from_entry(entry).transpose())
                .collect()
        })
        .collect()
}

/// Adds keys to the first group (as `sops rotate --add-*` does), skipping keys already there.
/// Creates the group when there is none.
pub fn add_keys(groups: &mut Vec<Vec<KeySpec>>, keys: impl IntoIterator<Item = KeySpec>) {
    if groups.is_empty() {
        groups.push(Vec::new());
    }
    for key in keys {
        if !groups[0].iter().any(|k| k.same_key(&key)) {
            groups[0].push(key);
        }
    }
}

/// Removes keys from every group (as `sops rotate --rm-*` does). Returns how many were removed.
pub fn remove_keys(groups: &mut [Vec<KeySpec>], keys: &[KeySpec]) -> usize {
    let mut removed = 0;
    for group in groups.iter_mut() {
        let before = group.len();
        group.retain(|k| !keys.iter().any(|r| r.same_key(k)));
        removed += before - group.len();
    }
    removed
}

/// Removes the entries made with any of `keys` from existing key groups, without re-wrapping.
/// Returns how many entries were removed.
pub fn remove_entries(groups: &mut [KeyGroup], keys: &[KeySpec]) -> usize {
    let mut removed = 0;
    for group in groups.iter_mut() {
        let before = group.len();
        group.retain(|entry| !keys.iter().any(|k| k.matches_entry(entry)));
        removed += before - group.len();
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_uri_like_sops() {
        let key =
            VaultTransitKey::parse_uri("https://vault.example.com:8200/v1/transit/keys/keyName")
                .unwrap();
        assert_eq!(key.address, "https://vault.example.com:8200");
        assert_eq!(key.engine_path, "transit");
        assert_eq!(key.key_name, "keyName");
        let nested =
            VaultTransitKey::parse_uri("http://127.0.0.1:8200/v1/sops/transit/keys/k1").unwrap();
        assert_eq!(nested.engine_path, "sops/transit");
        assert_eq!(
            nested.uri(),
            "http://127.0.0.1:8200/v1/sops/transit/keys/k1"
        );
        assert!(VaultTransitKey::parse_uri("vault.example.com/v1/transit/keys/k").is_err());
        assert!(VaultTransitKey::parse_uri("https://v/prefix/v1/transit/keys/k").is_err());
        assert!(VaultTransitKey::parse_uri("https://v/v1/keys/k").is_err());
    }

    #[test]
    fn kms_arn_with_role_and_context() {
        let specs = KeySpec::kms_list(
            "arn:aws:kms:us-east-1:1:key/a+arn:aws:iam::1:role/r, arn:aws:kms:us-east-1:1:key/b",
            &[("env".into(), "prod".into())],
            "p",
        );
        let KeySpec::Kms(first) = &specs[0] else {
            panic!()
        };
        assert_eq!(first.arn, "arn:aws:kms:us-east-1:1:key/a");
        assert_eq!(first.role.as_deref(), Some("arn:aws:iam::1:role/r"));
        let KeySpec::Kms(second) = &specs[1] else {
            panic!()
        };
        assert_eq!(second.arn, "arn:aws:kms:us-east-1:1:key/b");
        assert_eq!(second.context, vec![("env".to_owned(), "prod".to_owned())]);
        assert_eq!(KmsKey::parse_context("a:1,b:2").unwrap().len(), 2);
        assert!(KmsKey::parse_context("a:1:2").is_none());
    }

    #[test]
    fn pgp_key_found_nowhere_names_the_fingerprint_and_the_places() {
        let env = Environment::from_vars([("SOPS_GPG_EXEC", "/nonexistent/gpg")]);
        let spec = KeySpec::pgp_list("ABCD").remove(0).in_environment(env);
        let err = crate::block_on(spec.wrap(&[0; 32])).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Wrap { .. }), "{text}");
        for part in ["ABCD", "SIGNET_PGP_KEY_FILE", "/nonexistent/gpg"] {
            assert!(text.contains(part), "{text}");
        }
    }

    #[test]
    fn kms_key_with_a_bad_arn_names_it() {
        let spec = KeySpec::kms_list("not-an-arn", &[], "")
            .remove(0)
            .in_environment(Environment::default());
        let err = crate::block_on(spec.wrap(&[0; 32])).unwrap_err();
        assert!(err.to_string().contains("not-an-arn"), "{err}");
    }

    #[test]
    fn add_and_remove_keys() {
        let a = KeySpec::age_list("age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29")
            .unwrap();
        let mut groups = Vec::new();
        add_keys(&mut groups, a.clone());
        add_keys(&mut groups, a.clone());
        assert_eq!(groups[0].len(), 1);
        add_keys(&mut groups, KeySpec::pgp_list("AB CD"));
        assert_eq!(groups[0][1].name(), "ABCD");
        assert_eq!(remove_keys(&mut groups, &a), 1);
        assert_eq!(groups[0].len(), 1);
    }
}
