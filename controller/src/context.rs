//! The `Context` every reconciler and HTTP handler shares: client, configuration, the sealing key
//! ring (served by the HTTP API on every replica), metrics, the event recorder, leadership and the
//! health of the reconcilers. What one kind needs besides (its caches, its memory of its writes)
//! lives in that kind's own context, in its folder.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::sealed_secret::keyring::KeyRing;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
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
    pub keys: Arc<KeyRing>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event recorder (reporting controller `signet-controller`).
    pub recorder: Recorder,
    /// True while this process holds the leadership and its reconcilers run.
    pub leading: AtomicBool,
    /// The reconciler tasks of the current term and the first unexpected failure (health).
    pub reconcilers: crate::supervise::Reconcilers,
    /// The gauge refreshers of the kinds whose reconcilers run now, by kind.
    refreshers: Mutex<BTreeMap<&'static str, GaugeRefresher>>,
}

impl Context {
    /// A context with no reconciler running.
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
            leading: AtomicBool::new(false),
            reconcilers: crate::supervise::Reconcilers::default(),
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
