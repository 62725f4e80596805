//! `signet-controller`: turns `bitnami.com/v1alpha1` SealedSecrets into Secrets and manages the
//! sealing keys, as a drop-in replacement for the Bitnami Sealed Secrets controller.
//!
//! The binary is thin: [`start`] runs everything in-process from a `kube::Client` and a [`Config`]
//! (tests use it directly), and the returned [`RunningController`] stops it. Pieces:
//! [`keyring`] (key Secrets, renewal), [`reconcile`] (the SealedSecret reconciler), [`http`]
//! (cert/verify/rotate, probes, metrics listener), [`metrics`], [`crd`] (the resource type and its
//! CustomResourceDefinition), [`config`] (flags and environment). Leader election (a Lease, through
//! `kube-lease-manager`) gates the reconciler and key renewal; the key watch and the listeners run on
//! every replica.

pub mod config;
pub mod context;
pub mod crd;
mod error;
pub mod http;
pub mod keyring;
pub mod metrics;
pub mod reconcile;
pub mod target;

pub use config::{Args, Config, LogFormat};
pub use context::Context;
pub use crd::{SealedSecret, SealedSecretStatus, sealed_secret_crd};
pub use error::Error;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Field manager of every write (and the reporting controller of events).
pub const FIELD_MANAGER: &str = "signet-controller";

/// Kind name used in metrics labels.
pub const KIND_SEALED_SECRET: &str = "SealedSecret";

/// A controller started by [`start`].
pub struct RunningController {
    /// Where the HTTP API listens (the real port when the config asked for port 0).
    pub http_addr: SocketAddr,
    /// Where `/metrics` listens.
    pub metrics_addr: SocketAddr,
    /// The shared context (key ring, metrics).
    pub context: Arc<Context>,
    shutdown: watch::Sender<bool>,
    /// The lease holder task (releases the Lease when its channel closes).
    lease: Option<JoinHandle<()>>,
    /// Runs the reconciler and key renewal while leading.
    supervisor: Option<JoinHandle<()>>,
    /// Key watch, listeners, gauges.
    tasks: Vec<JoinHandle<()>>,
}

impl RunningController {
    /// Stops gracefully: the reconciler finishes its current work, the Lease is released (a standby
    /// takes over at once), then the listeners stop.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(supervisor) = self.supervisor.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(20), supervisor).await;
        }
        if let Some(lease) = self.lease.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), lease).await;
        }
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }

    /// Stops at once without releasing anything, like a process that dies (tests of failover).
    pub fn abort(mut self) {
        self.abort_all();
    }

    fn abort_all(&mut self) {
        // The lease first: once the supervisor is gone the lease task would release the Lease.
        if let Some(lease) = self.lease.take() {
            lease.abort();
        }
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.abort();
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for RunningController {
    fn drop(&mut self) {
        self.abort_all();
    }
}

/// Installs (server-side apply) the SealedSecret CRD; for development and tests — the chart installs
/// it in a cluster.
pub async fn install_crd(client: kube::Client) -> Result<(), Error> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let crd = sealed_secret_crd();
    let name = crd.metadata.name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(reconcile::FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await?;
    Ok(())
}

/// Starts the key watch, the HTTP and metrics listeners, leader election when configured, and —
/// while leading — key renewal and the SealedSecret reconciler. The listeners are bound before this
/// returns.
pub async fn start(client: kube::Client, config: Config) -> Result<RunningController, Error> {
    let keys = Arc::new(keyring::KeyRing::default());
    let metrics = Arc::new(metrics::Metrics::new());
    let identity = config.instance.clone().unwrap_or_else(random_identity);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: reconcile::FIELD_MANAGER.to_owned(),
            instance: Some(identity.clone()),
        },
    );
    let ctx = Arc::new(Context::new(
        client.clone(),
        config.clone(),
        Arc::clone(&keys),
        Arc::clone(&metrics),
        recorder,
    ));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = shutdown_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let http_listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .map_err(|e| Error::Listen(config.listen_addr, e))?;
    let metrics_listener = tokio::net::TcpListener::bind(config.metrics_addr)
        .await
        .map_err(|e| Error::Listen(config.metrics_addr, e))?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|e| Error::Listen(config.listen_addr, e))?;
    let metrics_addr = metrics_listener
        .local_addr()
        .map_err(|e| Error::Listen(config.metrics_addr, e))?;

    // Leadership: a Lease when configured, else always leading.
    let (leadership, lease, always_leading) = match &config.leader_election {
        Some(election) => {
            let params = kube_lease_manager::LeaseParams::new(
                identity.clone(),
                election.lease_duration.as_secs().max(2),
                election
                    .renew_grace
                    .as_secs()
                    .clamp(1, election.lease_duration.as_secs().max(2) - 1),
            );
            let manager = kube_lease_manager::LeaseManager::new(
                client.clone(),
                election.lease_name.clone(),
                config.controller_namespace.clone(),
                params,
                kube_lease_manager::LeaseCreateMode::AutoCreate,
            )
            .await
            .map_err(|e| Error::LeaderElection(e.to_string()))?;
            let (receiver, handle) = manager.watch().await;
            let lease = tokio::spawn(async move {
                match handle.await {
                    Ok(Ok(_)) => tracing::info!("leader-election Lease released"),
                    Ok(Err(err)) => tracing::warn!(error = %err, "leader election stopped"),
                    Err(_) => {}
                }
            });
            (receiver, Some(lease), None)
        }
        None => {
            let (sender, receiver) = watch::channel(true);
            (receiver, None, Some(sender))
        }
    };

    let ctx_for_lead = Arc::clone(&ctx);
    let mut tasks = Vec::new();
    let api = http::api_router(Arc::clone(&ctx));
    let stop = stopped();
    tasks.push(tokio::spawn(async move {
        if let Err(err) = axum::serve(http_listener, api)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %err, "HTTP server failed");
        }
    }));
    let metrics_app = http::metrics_router(Arc::clone(&ctx));
    let stop = stopped();
    tasks.push(tokio::spawn(async move {
        if let Err(err) = axum::serve(metrics_listener, metrics_app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %err, "metrics server failed");
        }
    }));
    tasks.push(tokio::spawn(keyring::watch_keys(
        client.clone(),
        config.controller_namespace.clone(),
        Arc::clone(&keys),
    )));
    {
        // Keeps derived gauges fresh and the per-object memory bounded even without scrapes.
        let ctx = Arc::clone(&ctx);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                ctx.refresh_gauges();
            }
        }));
    }
    {
        let keys = Arc::clone(&keys);
        let metrics = Arc::clone(&metrics);
        tasks.push(tokio::spawn(async move {
            let mut changes = keys.subscribe();
            loop {
                metrics.sealing_keys.set(keys.snapshot().keys.len() as i64);
                if changes.changed().await.is_err() {
                    return;
                }
            }
        }));
    }

    let stop = stopped();
    let supervisor = tokio::spawn(async move {
        // Without an election the sender lives as long as the supervisor: leadership never ends.
        let _always_leading = always_leading;
        lead(Arc::clone(&ctx_for_lead), leadership, stop).await;
    });
    Ok(RunningController {
        http_addr,
        metrics_addr,
        context: ctx,
        shutdown,
        lease,
        supervisor: Some(supervisor),
        tasks,
    })
}

/// A task that is aborted when its handle is dropped: the term's tasks die with the supervisor, as
/// they would with the process.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn random_identity() -> String {
    let mut bytes = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("signet-controller-{suffix}")
}

/// Runs key renewal and the reconciler for each term of leadership, and stops them when the
/// leadership is lost or the process stops.
async fn lead(
    ctx: Arc<Context>,
    mut leadership: watch::Receiver<bool>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            became = leadership.wait_for(|leading| *leading) => if became.is_err() { return; },
        }
        tracing::info!("leading: reconciling and renewing keys");
        ctx.leading.store(true, Ordering::Relaxed);
        let (term_end, term_end_rx) = watch::channel(false);
        let renewer = AbortOnDrop(tokio::spawn(keyring::renew_keys(
            ctx.client.clone(),
            ctx.config.controller_namespace.clone(),
            Arc::clone(&ctx.keys),
            ctx.config.key_renew_period,
            ctx.config.key_cutoff_time,
            ctx.config.key_bits,
        )));
        let mut reconciler = AbortOnDrop(tokio::spawn(run_sealed_secret_controller(
            Arc::clone(&ctx),
            {
                let mut rx = term_end_rx.clone();
                async move {
                    let _ = rx.wait_for(|end| *end).await;
                }
            },
        )));
        let shutting_down = tokio::select! {
            _ = &mut stopped => true,
            lost = leadership.wait_for(|leading| !*leading) => lost.is_err(),
        };
        tracing::info!("no longer leading");
        ctx.leading.store(false, Ordering::Relaxed);
        drop(renewer);
        let _ = term_end.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(15), &mut reconciler.0).await;
        if shutting_down {
            return;
        }
    }
}

async fn run_sealed_secret_controller(
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    keyring::wait_for_sealing_key(&ctx.keys).await;
    let (secret_store, secret_writer) = reflector::store();
    ctx.set_secret_store(secret_store);
    let client = ctx.client.clone();
    // `Api<PartialObjectMeta<_>>` makes metadata-only requests: Secret values never enter this cache.
    let (sealed_api, secret_api): (Api<SealedSecret>, Api<kube::api::PartialObjectMeta<Secret>>) =
        match ctx.config.watch_namespace.as_deref() {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
    let owned_secrets = watcher(
        secret_api,
        watcher::Config::default().labels(reconcile::OWNER_LABEL),
    )
    .default_backoff()
    .reflect(secret_writer)
    .touched_objects();
    let mut key_changes = ctx.keys.subscribe();
    key_changes.mark_unchanged();
    let key_changed = futures::stream::unfold(key_changes, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    });
    let controller = Controller::new(sealed_api, watcher::Config::default()).with_config(
        kube::runtime::controller::Config::default()
            .concurrency(ctx.config.max_concurrent_reconciles),
    );
    ctx.set_sealed_secret_store(Some(controller.store()));
    controller
        .watches_stream(owned_secrets, |secret| {
            let name = secret.metadata.name.clone()?;
            let namespace = secret.metadata.namespace.clone()?;
            Some(ObjectRef::<SealedSecret>::new(&name).within(&namespace))
        })
        .reconcile_all_on(key_changed)
        .graceful_shutdown_on(stop)
        .run(
            reconcile::reconcile,
            reconcile::error_policy,
            Arc::clone(&ctx),
        )
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "reconcile trigger");
            }
        })
        .await;
    ctx.set_sealed_secret_store(None);
}
