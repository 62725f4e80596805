//! The `Context` every reconcile and HTTP handler shares: client, configuration, key ring, metrics,
//! event recorder, the metadata cache of owned Secrets, and a small memory of the last writes.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::sealed_secret::SealedSecret;
use crate::sealed_secret::keyring::KeyRing;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Shared state of one controller process.
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// Configuration.
    pub config: Config,
    /// Sealing keys.
    pub keys: Arc<KeyRing>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event recorder (reporting controller `signet-controller`).
    pub recorder: Recorder,
    /// Metadata of the Secrets carrying the owner label, kept by a watch while this process leads.
    secrets: RwLock<Store<PartialObjectMeta<Secret>>>,
    /// The reconciler's cache of SealedSecrets, while leading.
    sealed_secrets: RwLock<Option<Store<SealedSecret>>>,
    /// True while this process holds the leadership and its reconcilers run.
    pub leading: AtomicBool,
    /// The reconciler tasks of the current term and the first unexpected failure (health).
    pub reconcilers: crate::supervise::Reconcilers,
    /// SealedSecret uid -> (generation, Secret resourceVersion) of the last successful write: the
    /// status may lag in the cache right after the write.
    synced: Mutex<HashMap<String, (i64, String)>>,
}

impl Context {
    /// A context with empty caches.
    pub fn new(
        client: kube::Client,
        config: Config,
        keys: Arc<KeyRing>,
        metrics: Arc<Metrics>,
        recorder: Recorder,
    ) -> Context {
        Context {
            client,
            config,
            keys,
            metrics,
            recorder,
            secrets: RwLock::new(kube::runtime::reflector::store().0),
            sealed_secrets: RwLock::new(None),
            leading: AtomicBool::new(false),
            reconcilers: crate::supervise::Reconcilers::default(),
            synced: Mutex::new(HashMap::new()),
        }
    }

    /// What to do after a successful reconcile: wait for a change, or for the next resync.
    pub fn idle_action(&self) -> Action {
        match self.config.resync_period {
            Some(period) => Action::requeue(period),
            None => Action::await_change(),
        }
    }

    /// Records a successful write.
    pub(crate) fn remember_synced(&self, uid: &str, generation: i64, secret_rv: String) {
        if let Ok(mut map) = self.synced.lock() {
            map.insert(uid.to_owned(), (generation, secret_rv));
        }
    }

    /// Whether the last successful write for `uid` was this generation and Secret version.
    pub(crate) fn was_synced(&self, uid: &str, generation: i64, secret_rv: &str) -> bool {
        self.synced.lock().is_ok_and(|map| {
            map.get(uid)
                .is_some_and(|(g, rv)| *g == generation && rv == secret_rv)
        })
    }

    /// Whether the controller can serve: a sealing key is loaded and every reconciler of this
    /// term runs. (A standby replica is ready too: it serves the certificate and verify/rotate.)
    pub fn is_ready(&self) -> bool {
        self.keys.snapshot().sealing_key().is_some() && self.reconcilers.problem().is_none()
    }

    /// Whether this process leads (reconciles and renews keys) now.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    /// The owned-Secret cache of the current leadership term.
    pub fn secret_store(&self) -> Store<PartialObjectMeta<Secret>> {
        self.secrets
            .read()
            .map(|store| store.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub(crate) fn set_sealed_secret_store(&self, store: Option<Store<SealedSecret>>) {
        match self.sealed_secrets.write() {
            Ok(mut guard) => *guard = store,
            Err(e) => *e.into_inner() = store,
        }
    }

    /// Recomputes the gauges derived from the caches (SealedSecrets by key) and prunes the memory of
    /// deleted objects; called on scrape and periodically.
    pub fn refresh_gauges(&self) {
        let store = match self.sealed_secrets.read() {
            Ok(guard) => guard.clone(),
            Err(e) => e.into_inner().clone(),
        };
        let Some(store) = store else {
            return;
        };
        let mut counts = std::collections::BTreeMap::new();
        let state = store.state();
        // Forget the last writes of objects that are gone.
        if let Ok(mut synced) = self.synced.lock() {
            let live: std::collections::HashSet<&str> = state
                .iter()
                .filter_map(|s| s.metadata.uid.as_deref())
                .collect();
            synced.retain(|uid, _| live.contains(uid.as_str()));
        }
        for sealed in &state {
            let fingerprint = sealed
                .status
                .as_ref()
                .and_then(|s| s.key_fingerprint.clone())
                .unwrap_or_else(|| "none".to_owned());
            *counts.entry(fingerprint).or_insert(0) += 1;
        }
        self.metrics.set_sealed_secrets_by_key(&counts);
    }

    pub(crate) fn set_secret_store(&self, store: Store<PartialObjectMeta<Secret>>) {
        match self.secrets.write() {
            Ok(mut guard) => *guard = store,
            Err(e) => *e.into_inner() = store,
        }
    }
}
