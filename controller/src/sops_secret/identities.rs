//! The keyring SopsSecrets are opened with: age identities and PGP secret keys from the Secrets
//! named in the configuration (every `*.agekey` and `*.asc` entry, as Flux's kustomize-controller
//! reads them), plus AWS KMS and Vault transit through the controller's own identity (its
//! environment). The `gpg` binary is never run: PGP keys are used in-process only.
//!
//! The Secrets are watched: a new or changed identity Secret rebuilds the keyring, and the
//! reconciler retries every SopsSecret.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use signet_keys::{Environment, Keyring, NoInteraction};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Suffix of the Secret entries holding age identities.
pub const AGE_KEY_SUFFIX: &str = ".agekey";
/// Suffix of the Secret entries holding armored PGP secret keys.
pub const PGP_KEY_SUFFIX: &str = ".asc";

/// Builds a keyring from the controller's environment and the identity Secrets' entries.
pub fn keyring_from(
    environment: &[(String, String)],
    secrets: &BTreeMap<String, Secret>,
) -> Keyring {
    let env = Environment::from_vars(environment.iter().cloned());
    let mut ring = Keyring::from_environment(&env, Arc::new(NoInteraction));
    ring.disable_gpg();
    for (name, secret) in secrets {
        for (entry, value) in secret.data.iter().flatten() {
            let is_age = entry.ends_with(AGE_KEY_SUFFIX);
            if !is_age && !entry.ends_with(PGP_KEY_SUFFIX) {
                continue;
            }
            let location = format!("Secret {name}, entry {entry}");
            let Ok(text) = std::str::from_utf8(&value.0) else {
                tracing::warn!(%location, "identity entry is not UTF-8; ignored");
                continue;
            };
            let added = if is_age {
                ring.add_identities_text(text, &location, false)
            } else {
                ring.add_pgp_keys_text(text, &location)
            };
            if let Err(err) = added {
                tracing::warn!(%location, error = %err, "identity entry unusable; ignored");
            }
        }
    }
    ring
}

/// Watches the named Secrets in `namespace` and publishes a fresh keyring whenever one of them
/// changes. The first keyring (environment only) is published at once.
pub fn watch_identities(
    client: kube::Client,
    namespace: String,
    names: Vec<String>,
    environment: Vec<(String, String)>,
) -> (
    watch::Receiver<Arc<Keyring>>,
    impl std::future::Future<Output = ()>,
) {
    let (sender, receiver) = watch::channel(Arc::new(keyring_from(&environment, &BTreeMap::new())));
    let task = async move {
        if names.is_empty() {
            // Nothing to watch; keep the sender alive so receivers never see a closed channel.
            std::future::pending::<()>().await;
        }
        let api: Api<Secret> = Api::namespaced(client, &namespace);
        let mut known: BTreeMap<String, Secret> = BTreeMap::new();
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
        let mut initial: Option<BTreeMap<String, Secret>> = None;
        while let Some(event) = events.next().await {
            let changed = match event {
                Ok(watcher::Event::Init) => {
                    initial = Some(BTreeMap::new());
                    false
                }
                Ok(watcher::Event::InitApply(secret)) => {
                    if let (Some(batch), Some(name)) = (initial.as_mut(), wanted(&secret, &names)) {
                        batch.insert(name, secret);
                    }
                    false
                }
                Ok(watcher::Event::InitDone) => {
                    known = initial.take().unwrap_or_default();
                    true
                }
                Ok(watcher::Event::Apply(secret)) => match wanted(&secret, &names) {
                    Some(name) => {
                        known.insert(name, secret);
                        true
                    }
                    None => false,
                },
                Ok(watcher::Event::Delete(secret)) => match wanted(&secret, &names) {
                    Some(name) => known.remove(&name).is_some(),
                    None => false,
                },
                Err(err) => {
                    tracing::warn!(error = %err, "watching the SOPS identity Secrets");
                    false
                }
            };
            if changed {
                let _ = sender.send(Arc::new(keyring_from(&environment, &known)));
            }
        }
    };
    (receiver, task)
}

fn wanted(secret: &Secret, names: &[String]) -> Option<String> {
    let name = secret.metadata.name.as_ref()?;
    names.contains(name).then(|| name.clone())
}
