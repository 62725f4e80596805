//! The `Context` every reconciler and HTTP handler shares: client, configuration, the sealing key
//! ring (served by the HTTP API on every replica), metrics, the event recorder, leadership and the
//! health of the reconcilers. What one kind needs besides (its caches, its memory of its writes)
//! lives in that kind's own context, in its folder.

use crate::config::Config;
use crate::events::Recorder;
use crate::metrics::Metrics;
use crate::sealed_secret::keyring::LiveSealingKeys;
use kube::runtime::controller::Action;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Recomputes a kind's derived gauges and prunes its memory of objects that are gone.
pub type GaugeRefresher = Box<dyn Fn() + Send + Sync>;

/// Shared state of one controller process.
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// Configuration.
    pub config: Config,
    /// Sealing keys.
    pub keys: Arc<LiveSealingKeys>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event recorder (reporting controller `signet-controller`).
    pub recorder: Recorder,
    /// True while this process holds the leadership and its reconcilers run.
    pub leading: AtomicBool,
    /// The reconciler tasks of the current term and the first unexpected failure (health).
    pub reconcilers: crate::supervise::Reconcilers,
    /// The key of the restart checksums (read or made on first use).
    pub restart_key: crate::restart::ChecksumKey,
    /// The gauge refreshers of the kinds whose reconcilers run now, by kind.
    refreshers: Mutex<BTreeMap<&'static str, GaugeRefresher>>,
}

impl Context {
    /// A context with no reconciler running.
    pub fn new(
        client: kube::Client,
        config: Config,
        keys: Arc<LiveSealingKeys>,
        metrics: Arc<Metrics>,
        recorder: Recorder,
    ) -> Context {
        Context {
            client,
            config,
            keys,
            metrics,
            recorder,
            leading: AtomicBool::new(false),
            reconcilers: crate::supervise::Reconcilers::default(),
            restart_key: crate::restart::ChecksumKey::default(),
            refreshers: Mutex::new(BTreeMap::new()),
        }
    }

    /// What to do after a successful reconcile: wait for a change, or for the next resync.
    pub fn idle_action(&self) -> Action {
        crate::target::Next::Idle.action(self.config.resync_period)
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

    /// Sets (while `kind`'s reconciler runs) or removes the gauge refresher of `kind`.
    pub(crate) fn set_gauge_refresher(
        &self,
        kind: &'static str,
        refresher: Option<GaugeRefresher>,
    ) {
        let mut refreshers = self.refreshers.lock().unwrap_or_else(|e| e.into_inner());
        match refresher {
            Some(refresher) => refreshers.insert(kind, refresher),
            None => refreshers.remove(kind),
        };
    }

    /// Recomputes the gauges derived from the caches of the running reconcilers and prunes each
    /// kind's memory of deleted objects; called on scrape and periodically.
    pub fn refresh_gauges(&self) {
        let refreshers = self.refreshers.lock().unwrap_or_else(|e| e.into_inner());
        for refresh in refreshers.values() {
            refresh();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Written;
    use crate::{SealedSecret, SopsSecret, sealed_secret, sops_secret};
    use kube::runtime::events::Reporter;
    use kube::runtime::{reflector, watcher};
    use serde_json::json;

    fn object<K: serde::de::DeserializeOwned>(kind: &str, uid: &str) -> K {
        serde_json::from_value(json!({
            "apiVersion": "x/v1", "kind": kind,
            "metadata": {"name": uid, "namespace": "n", "uid": uid},
            "spec": {"encryptedData": {}}, "sops": {},
            "status": {"keyFingerprint": "f1"},
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn each_kind_prunes_its_own_memory_against_its_own_cache() {
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "test".into(),
                instance: None,
            },
        );
        let metrics = Arc::new(Metrics::new());
        let ctx = Context::new(
            client,
            Config::new("signet"),
            Arc::default(),
            Arc::clone(&metrics),
            recorder,
        );
        let (sealed_store, mut sealed_writer) =
            reflector::store::<kube::api::PartialObjectMeta<SealedSecret>>();
        sealed_writer.apply_watcher_event(&watcher::Event::Apply(object("SealedSecret", "s1")));
        let fingerprints = Arc::new(sealed_secret::reconcile::Fingerprints::default());
        fingerprints.record("s1", Some("f1".into()));
        let (sops_store, mut sops_writer) = reflector::store::<SopsSecret>();
        sops_writer.apply_watcher_event(&watcher::Event::Apply(object("SopsSecret", "o1")));
        let (sealed_written, sops_written) =
            (Arc::new(Written::default()), Arc::new(Written::default()));
        for (written, uids) in [
            (&sealed_written, ["s1", "s-gone"]),
            (&sops_written, ["o1", "o-gone"]),
        ] {
            for uid in uids {
                written.remember(uid, Some(1), Some("1".into()));
            }
        }
        ctx.set_gauge_refresher(
            sealed_secret::reconcile::KIND_SEALED_SECRET,
            Some(sealed_secret::reconcile::gauge_refresher(
                sealed_store,
                Arc::clone(&sealed_written),
                fingerprints,
                Arc::clone(&metrics),
            )),
        );
        ctx.set_gauge_refresher(
            sops_secret::reconcile::KIND_SOPS_SECRET,
            Some(sops_secret::reconcile::gauge_refresher(
                sops_store,
                Arc::clone(&sops_written),
            )),
        );
        ctx.refresh_gauges();
        // The SopsSecret memory survives the SealedSecret refresh, and the reverse.
        assert!(sealed_written.was("s1", 1, "1"));
        assert!(sops_written.was("o1", 1, "1"));
        assert_eq!((sealed_written.len(), sops_written.len()), (1, 1));
        assert!(
            metrics
                .encode()
                .contains("sealed_secrets_by_key{fingerprint=\"f1\"} 1")
        );
        // A kind whose reconciler stopped no longer refreshes.
        ctx.set_gauge_refresher(sops_secret::reconcile::KIND_SOPS_SECRET, None);
        sops_written.remember("o-gone", Some(1), Some("1".into()));
        ctx.refresh_gauges();
        assert_eq!(sops_written.len(), 2);
    }
}
