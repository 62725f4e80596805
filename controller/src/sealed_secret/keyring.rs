//! The sealing-key ring: every `kubernetes.io/tls` Secret labelled
//! `sealedsecrets.bitnami.com/sealed-secrets-key=active` in the controller namespace (the Bitnami
//! controller's own key Secrets are therefore adopted as they are), kept current by a watch, and the
//! renewal loop that adds a key when the newest is older than the renew period. Keys are never deleted.
//!
//! Unsealing tries the key recorded in the object's status first, then the newest, then the rest; a
//! SealedSecret whose items were sealed to different keys (merged after a renewal) is opened with all
//! keys together.

use crate::Error;
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use signet_seal::{PrivateKeyRing, SealError, SealingCertificate};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// Label selecting sealing-key Secrets (value `active`).
pub const SEALING_KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
/// `generateName` of the key Secrets Signet makes (the Bitnami controller's prefix).
pub const SEALING_KEY_NAME_PREFIX: &str = "sealed-secrets-key";
/// Common name of generated sealing certificates.
pub const SEALING_KEY_COMMON_NAME: &str = "sealed-secret";

/// One sealing key: its private key (in a one-key ring), its certificate when usable, and where it
/// came from.
pub struct SealingKey {
    /// Hex SHA-256 of the public key (SubjectPublicKeyInfo DER).
    pub fingerprint: String,
    /// Name of the Secret holding it.
    pub secret_name: String,
    /// When the key was issued: its certificate's NotBefore, or the Secret's creationTimestamp when
    /// it has no usable certificate (Bitnami's default `--key-order-priority CertNotBefore`: restored
    /// backups all get new creation times, their certificates keep the real order). The newest seals
    /// and renewal counts from it.
    pub created: Timestamp,
    /// The certificate PEM, when the Secret has a usable `tls.crt`.
    pub certificate_pem: Option<String>,
    ring: PrivateKeyRing,
    certificate: Option<SealingCertificate>,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("fingerprint", &self.fingerprint)
            .field("secret_name", &self.secret_name)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl SealingKey {
    /// Reads a key Secret; `None` (with a log line) when it holds no usable RSA key.
    pub fn from_secret(secret: &Secret) -> Option<SealingKey> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let data = secret.data.as_ref()?;
        let origin = format!("key Secret {name}");
        let mut ring = PrivateKeyRing::new();
        let key_pem = data.get("tls.key")?;
        match ring.add_from_bytes(&key_pem.0, &origin) {
            Ok(1) => {}
            Ok(_) | Err(_) => {
                tracing::warn!(secret = %name, "ignoring key Secret: tls.key is not exactly one RSA private key");
                return None;
            }
        }
        let public = ring.iter().next()?.public_key_der().to_vec();
        let fingerprint = fingerprint(&public);
        let (certificate_pem, certificate) = match data.get("tls.crt").map(|c| {
            (
                String::from_utf8_lossy(&c.0).into_owned(),
                SealingCertificate::from_pem(&c.0),
            )
        }) {
            Some((pem, Ok(cert))) if cert.public_key_der() == public => (Some(pem), Some(cert)),
            Some((_, Ok(_))) => {
                tracing::warn!(secret = %name, "tls.crt does not match tls.key; the key only unseals");
                (None, None)
            }
            Some((_, Err(err))) => {
                tracing::warn!(secret = %name, error = %err, "unusable tls.crt; the key only unseals");
                (None, None)
            }
            None => (None, None),
        };
        let created = certificate_pem
            .as_deref()
            .and_then(certificate_not_before)
            .or_else(|| secret.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .unwrap_or(Timestamp::UNIX_EPOCH);
        Some(SealingKey {
            fingerprint,
            secret_name: name,
            created,
            certificate_pem,
            ring,
            certificate,
        })
    }

    /// The certificate, when this key can seal.
    pub fn certificate(&self) -> Option<&SealingCertificate> {
        self.certificate.as_ref()
    }
}

/// NotBefore of the first certificate in a PEM text.
fn certificate_not_before(pem: &str) -> Option<Timestamp> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = block.parse_x509().ok()?;
    Timestamp::from_second(cert.validity().not_before.timestamp()).ok()
}

/// Hex SHA-256 of a public key's DER.
pub fn fingerprint(spki_der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The keys as of one moment, newest first, plus a ring of all of them.
#[derive(Debug, Default)]
pub struct KeySet {
    /// Newest first.
    pub keys: Vec<Arc<SealingKey>>,
    all: PrivateKeyRing,
}

impl KeySet {
    fn build(keys: Vec<Arc<SealingKey>>, secrets: &[&Secret]) -> KeySet {
        let mut all = PrivateKeyRing::new();
        for secret in secrets {
            if let Some(pem) = secret.data.as_ref().and_then(|d| d.get("tls.key")) {
                let _ = all.add_from_bytes(&pem.0, "key Secret");
            }
        }
        KeySet { keys, all }
    }

    /// The key that seals: the newest with a usable certificate.
    pub fn sealing_key(&self) -> Option<&Arc<SealingKey>> {
        self.keys.iter().find(|k| k.certificate.is_some())
    }

    /// Unseals into the Secret the controller writes, trying `preferred` (a fingerprint) first, then
    /// the newest, then the rest, then all keys together. Returns the fingerprint of the single key
    /// that opened every value, if one did.
    pub fn unseal(
        &self,
        sealed: &signet_api::SealedSecret,
        preferred: Option<&str>,
    ) -> Result<(signet_api::Secret, Option<String>), SealError> {
        let ordered = preferred
            .and_then(|fp| self.keys.iter().find(|k| k.fingerprint == fp))
            .into_iter()
            .chain(
                self.keys
                    .iter()
                    .filter(|k| Some(k.fingerprint.as_str()) != preferred),
            );
        for key in ordered {
            match signet_seal::unseal_sealed_secret(sealed, &key.ring) {
                Ok(secret) => return Ok((secret, Some(key.fingerprint.clone()))),
                Err(SealError::Unseal) => continue,
                Err(other) => return Err(other),
            }
        }
        if self.keys.len() > 1 {
            return signet_seal::unseal_sealed_secret(sealed, &self.all).map(|s| (s, None));
        }
        Err(SealError::Unseal)
    }

    /// Opens the raw values (no template), with all keys.
    pub fn unseal_values(
        &self,
        sealed: &signet_api::SealedSecret,
    ) -> Result<signet_seal::convert::Values, SealError> {
        signet_seal::convert::unseal_values(sealed, &self.all)
    }
}

/// The sealing keys now in the key Secrets, shared by the reconciler and the HTTP handlers (not
/// to be confused with `signet_keys::Keyring`, the sops master keys, or `signet_seal::PrivateKeyRing`,
/// one set of RSA keys to unseal with).
#[derive(Debug)]
pub struct LiveSealingKeys {
    current: RwLock<Arc<KeySet>>,
    generation: watch::Sender<u64>,
}

impl Default for LiveSealingKeys {
    fn default() -> Self {
        LiveSealingKeys {
            current: RwLock::new(Arc::new(KeySet::default())),
            generation: watch::channel(0).0,
        }
    }
}

impl LiveSealingKeys {
    /// The keys now.
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.current
            .read()
            .map(|guard| Arc::clone(&guard))
            .unwrap_or_default()
    }

    /// Bumped every time the set of keys changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn replace(&self, set: KeySet) {
        if let Ok(mut guard) = self.current.write() {
            *guard = Arc::new(set);
        }
        self.generation.send_modify(|g| *g += 1);
    }
}

/// Watches the key Secrets of `namespace` and keeps `ring` current (parsed keys are cached by
/// name and resourceVersion). Runs until the watch stream ends.
pub async fn watch_keys(client: kube::Client, namespace: String, ring: Arc<LiveSealingKeys>) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().labels(&format!("{SEALING_KEY_LABEL}=active"));
    let mut secrets: BTreeMap<String, Secret> = BTreeMap::new();
    let mut initial: Option<BTreeMap<String, Secret>> = None;
    let mut parsed: HashMap<(String, String), Arc<SealingKey>> = HashMap::new();
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(error = %err, "watching sealing-key Secrets");
                continue;
            }
        };
        match event {
            watcher::Event::Init => {
                initial = Some(BTreeMap::new());
                continue;
            }
            watcher::Event::InitApply(secret) => {
                if let Some(map) = initial.as_mut() {
                    map.insert(secret.metadata.name.clone().unwrap_or_default(), secret);
                }
                continue;
            }
            watcher::Event::InitDone => {
                secrets = initial.take().unwrap_or_default();
            }
            watcher::Event::Apply(secret) => {
                secrets.insert(secret.metadata.name.clone().unwrap_or_default(), secret);
            }
            watcher::Event::Delete(secret) => {
                secrets.remove(secret.metadata.name.as_deref().unwrap_or_default());
            }
        }
        let mut keys = Vec::new();
        let mut usable = Vec::new();
        let mut still_cached = HashMap::new();
        for (name, secret) in &secrets {
            let id = (
                name.clone(),
                secret.metadata.resource_version.clone().unwrap_or_default(),
            );
            let key = match parsed.get(&id) {
                Some(key) => Some(Arc::clone(key)),
                None => SealingKey::from_secret(secret).map(Arc::new),
            };
            if let Some(key) = key {
                still_cached.insert(id, Arc::clone(&key));
                keys.push(key);
                usable.push(secret);
            }
        }
        parsed = still_cached;
        newest_first(&mut keys);
        tracing::info!(keys = keys.len(), "sealing-key ring updated");
        ring.replace(KeySet::build(keys, &usable));
    }
}

/// Sorts keys newest first (issue time, then name).
pub fn newest_first(keys: &mut [Arc<SealingKey>]) {
    keys.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| b.secret_name.cmp(&a.secret_name))
    });
}

/// Whether a new key is due now, given the newest key's creation time.
pub fn renewal_due(
    newest: Option<Timestamp>,
    now: Timestamp,
    period: Option<Duration>,
    cutoff: Option<Timestamp>,
) -> bool {
    let Some(newest) = newest else {
        return true;
    };
    if cutoff.is_some_and(|cutoff| newest < cutoff && cutoff <= now) {
        return true;
    }
    match period {
        Some(period) => age(newest, now) >= period,
        None => false,
    }
}

fn age(then: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(then)).unwrap_or(Duration::ZERO)
}

/// How new sealing keys are made: RSA size and the name prefix of their Secrets (Bitnami's
/// `--key-prefix`; the API server appends a random suffix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// RSA key size in bits.
    pub bits: usize,
    /// `generateName` of the key Secrets.
    pub name_prefix: String,
}

/// The Secret that holds `generated` as an active sealing key, in Bitnami's format: type
/// `kubernetes.io/tls`, `tls.crt` and `tls.key`, labelled [`SEALING_KEY_LABEL`]`=active`, named
/// `name_prefix` and a suffix the API server picks.
pub fn active_key_secret(
    generated: &signet_seal::GeneratedSealingKey,
    name_prefix: &str,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            generate_name: Some(name_prefix.to_owned()),
            labels: Some(BTreeMap::from([(
                SEALING_KEY_LABEL.to_owned(),
                "active".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            (
                "tls.crt".to_owned(),
                ByteString(generated.certificate_pem.as_bytes().to_vec()),
            ),
            (
                "tls.key".to_owned(),
                ByteString(generated.private_key_pem.as_bytes().to_vec()),
            ),
        ])),
        ..Secret::default()
    }
}

/// Generates a sealing key and stores it as a `kubernetes.io/tls` Secret in `namespace`; returns
/// the Secret's name. The key watch adds it to the ring.
pub async fn create_key(
    client: kube::Client,
    namespace: &str,
    new_key: &NewKey,
) -> Result<String, Error> {
    let bits = new_key.bits;
    let generated = crate::cpu::run(move || {
        signet_seal::generate_sealing_key(
            bits,
            signet_seal::cert::DEFAULT_CERT_VALIDITY,
            SEALING_KEY_COMMON_NAME,
        )
    })
    .await
    .ok_or(Error::Task)??;
    let secret = active_key_secret(&generated, &new_key.name_prefix);
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let created = api.create(&PostParams::default(), &secret).await?;
    let name = created.metadata.name.unwrap_or_default();
    tracing::info!(secret = %name, "generated a new sealing key");
    Ok(name)
}

/// Makes a key when none exists or the newest is due for renewal, then sleeps until the next one is
/// due (or the ring changes). Runs forever; errors are logged and retried.
pub async fn renew_keys(
    client: kube::Client,
    namespace: String,
    ring: Arc<LiveSealingKeys>,
    period: Option<Duration>,
    cutoff: Option<Timestamp>,
    new_key: NewKey,
) {
    let mut changes = ring.subscribe();
    // Wait for the initial list, so existing keys are seen before deciding to make one.
    while *changes.borrow_and_update() == 0 {
        if changes.changed().await.is_err() {
            return;
        }
    }
    let mut cutoff = cutoff;
    loop {
        let newest = ring.snapshot().keys.first().map(|k| k.created);
        let now = Timestamp::now();
        if renewal_due(newest, now, period, cutoff) {
            match create_key(client.clone(), &namespace, &new_key).await {
                Ok(_) => {
                    // A passed cutoff forces one key, not one per turn of the loop (even if the API
                    // server's clock, which stamps the new key, lags behind ours).
                    if cutoff.is_some_and(|cutoff| cutoff <= now) {
                        cutoff = None;
                    }
                    // Wait for the watch to bring the new key in before deciding again.
                    let _ = tokio::time::timeout(Duration::from_secs(30), changes.changed()).await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot create a sealing key; retrying in 10s");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            }
            continue;
        }
        let until_period = match (newest, period) {
            (Some(newest), Some(period)) => period.saturating_sub(age(newest, now)),
            _ => Duration::from_secs(3600),
        };
        // A cutoff still in the future is due when it arrives (if the newest key predates it).
        let until_cutoff = cutoff
            .filter(|cutoff| newest.is_some_and(|newest| newest < *cutoff))
            .map_or(Duration::MAX, |cutoff| age(now, cutoff));
        let wait = until_period
            .min(until_cutoff)
            .max(Duration::from_millis(200));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = changes.changed() => if changed.is_err() { return; },
        }
    }
}

/// Reads a key Secret's `tls.crt` as PEM text (for tests and tools).
pub fn certificate_pem_of(secret: &Secret) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get("tls.crt")
        .map(|c| String::from_utf8_lossy(&c.0).into_owned())
}

/// Waits until the ring holds at least one key that can seal.
pub async fn wait_for_sealing_key(ring: &LiveSealingKeys) {
    let mut changes = ring.subscribe();
    while ring.snapshot().sealing_key().is_none() {
        if changes.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn renewal_is_due_without_keys_after_the_period_and_for_a_passed_cutoff() {
        let now = ts("2026-03-01T00:00:00Z");
        let month = Some(Duration::from_secs(30 * 86_400));
        assert!(renewal_due(None, now, None, None));
        assert!(!renewal_due(
            Some(ts("2026-02-15T00:00:00Z")),
            now,
            month,
            None
        ));
        assert!(renewal_due(
            Some(ts("2026-01-15T00:00:00Z")),
            now,
            month,
            None
        ));
        assert!(!renewal_due(
            Some(ts("2025-01-01T00:00:00Z")),
            now,
            None,
            None
        ));
        assert!(renewal_due(
            Some(ts("2026-02-15T00:00:00Z")),
            now,
            None,
            Some(ts("2026-02-20T00:00:00Z"))
        ));
        // A cutoff in the future does not force a key yet.
        assert!(!renewal_due(
            Some(ts("2026-02-15T00:00:00Z")),
            now,
            None,
            Some(ts("2026-04-01T00:00:00Z"))
        ));
    }

    fn key_secret(name: &str, generated: &signet_seal::GeneratedSealingKey) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([
                (
                    "tls.crt".to_owned(),
                    ByteString(generated.certificate_pem.clone().into_bytes()),
                ),
                (
                    "tls.key".to_owned(),
                    ByteString(generated.private_key_pem.as_bytes().to_vec()),
                ),
            ])),
            ..Secret::default()
        }
    }

    #[test]
    fn keys_are_ordered_by_certificate_not_before_not_by_secret_creation() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let validity = Duration::from_secs(3600);
        let older = signet_seal::generate_sealing_key(2048, validity, "t").unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let newer = signet_seal::generate_sealing_key(2048, validity, "t").unwrap();
        // Restored from a backup in the "wrong" order: the older key's Secret was created last.
        let mut older_secret = key_secret("a-older", &older);
        older_secret.metadata.creation_timestamp = Some(Time(ts("2026-03-02T00:00:00Z")));
        let mut newer_secret = key_secret("b-newer", &newer);
        newer_secret.metadata.creation_timestamp = Some(Time(ts("2026-03-01T00:00:00Z")));
        let mut keys = vec![
            Arc::new(SealingKey::from_secret(&older_secret).unwrap()),
            Arc::new(SealingKey::from_secret(&newer_secret).unwrap()),
        ];
        newest_first(&mut keys);
        assert_eq!(keys[0].secret_name, "b-newer");
        assert!(keys[0].created > keys[1].created);
        // Without a certificate, the Secret's creation time counts.
        let mut bare = key_secret("c-bare", &older);
        bare.data.as_mut().unwrap().remove("tls.crt");
        bare.metadata.creation_timestamp = Some(Time(ts("2030-01-01T00:00:00Z")));
        let bare = SealingKey::from_secret(&bare).unwrap();
        assert_eq!(bare.created, ts("2030-01-01T00:00:00Z"));
        assert!(bare.certificate().is_none());
    }

    #[test]
    fn unseal_prefers_the_status_key_and_reports_which_key_opened() {
        let validity = Duration::from_secs(3600);
        let old = signet_seal::generate_sealing_key(2048, validity, "t").unwrap();
        let new = signet_seal::generate_sealing_key(2048, validity, "t").unwrap();
        let old_key = Arc::new(SealingKey::from_secret(&key_secret("old", &old)).unwrap());
        let new_key = Arc::new(SealingKey::from_secret(&key_secret("new", &new)).unwrap());
        assert_ne!(old_key.fingerprint, new_key.fingerprint);
        let secrets = [key_secret("new", &new), key_secret("old", &old)];
        let set = KeySet::build(
            vec![Arc::clone(&new_key), Arc::clone(&old_key)],
            &secrets.iter().collect::<Vec<_>>(),
        );
        assert_eq!(set.sealing_key().unwrap().fingerprint, new_key.fingerprint);

        let mut plain = signet_api::Secret::new(signet_api::ObjectMeta {
            name: Some("s".into()),
            namespace: Some("n".into()),
            ..Default::default()
        });
        plain.string_data = Some(BTreeMap::from([("k".to_owned(), "v".to_owned())]));
        let sealed = signet_seal::seal_secret(
            &plain,
            old_key.certificate().unwrap(),
            &signet_seal::SealOptions::default(),
        )
        .unwrap();
        let (secret, fp) = set.unseal(&sealed, None).unwrap();
        assert_eq!(fp.as_deref(), Some(old_key.fingerprint.as_str()));
        assert_eq!(secret.data.unwrap()["k"], b64(b"v"));
        let (_, fp) = set.unseal(&sealed, Some(&old_key.fingerprint)).unwrap();
        assert_eq!(fp.as_deref(), Some(old_key.fingerprint.as_str()));

        // Items sealed to different keys open with all keys together, without a single fingerprint.
        let mut mixed = sealed.clone();
        let mut more = plain.clone();
        more.string_data = Some(BTreeMap::from([("k2".to_owned(), "v2".to_owned())]));
        signet_seal::convert::merge_into(&mut mixed, &more, new_key.certificate().unwrap())
            .unwrap();
        let (secret, fp) = set.unseal(&mixed, None).unwrap();
        assert_eq!(fp, None);
        assert_eq!(secret.data.unwrap().len(), 2);

        // A key set without the sealing key refuses, uniformly.
        let only_new = KeySet::build(vec![new_key], &[&secrets[0]]);
        assert!(matches!(
            only_new.unseal(&sealed, None),
            Err(SealError::Unseal)
        ));
    }
}
