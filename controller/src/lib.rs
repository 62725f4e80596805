//! `signet-controller`: turns `bitnami.com/v1alpha1` SealedSecrets into Secrets and manages the
//! sealing keys, as a drop-in replacement for the Bitnami Sealed Secrets controller; decrypts
//! SopsSecrets; syncs ExternalSecrets from external vaults.
//!
//! The binary is thin: [`start`] runs everything in-process from a `kube::Client` and a [`Config`]
//! (tests use it directly), and the returned [`RunningController`] stops it. This file only wires
//! the pieces together. One folder per kind, each holding its resource type and CRD, its
//! reconciler, the reconciler's context and its `run()`:
//! - [`sealed_secret`]: SealedSecrets, and the sealing keys ([`sealed_secret::keyring`]: key
//!   Secrets, their watch, renewal);
//! - [`sops_secret`]: SopsSecrets (sops documents opened with the controller's identities);
//! - [`external`]: ExternalSecrets, SecretStores and ClusterSecretStores.
//!
//! Shared by the kinds: [`target`] (the Secret a reconciler writes: who may claim it, the apply
//! body, conditions and events), [`context`] (client, configuration, metrics, recorder), `runtime`
//! (the watches and controller plumbing of every `run()`), [`crd`] (what the CRDs share),
//! [`supervise`] (reconcilers that must not stop). Around them: [`http`] (cert/verify/rotate,
//! probes, metrics listener), [`metrics`], [`config`] (flags and environment). Leader election (a
//! Lease, through `kube-lease-manager`) gates the reconcilers and key renewal; the key watch and
//! the listeners run on every replica.

pub mod config;
pub mod context;
pub mod crd;
mod error;
pub mod external;
pub mod http;
pub mod metrics;
mod runtime;
pub mod sealed_secret;
pub mod sops_secret;
pub mod supervise;
pub mod target;

/// The SealedSecret key ring at its former path.
pub use sealed_secret::keyring;
/// The SealedSecret reconciler at its former path.
pub use sealed_secret::reconcile;

pub use config::{Args, Config, LogFormat};
pub use context::Context;
pub use error::Error;
pub use external::{ClusterSecretStore, ExternalSecret, SecretStore};
pub use sealed_secret::{SealedSecret, SealedSecretStatus, sealed_secret_crd};
pub use sops_secret::{SopsSecret, sops_secret_crd};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use runtime::AbortOnDrop;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Field manager of every write (and the reporting controller of events).
pub const FIELD_MANAGER: &str = "signet-controller";

pub use sealed_secret::reconcile::KIND_SEALED_SECRET;

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

    /// Resolves when a reconciler stopped unexpectedly (see [`supervise`]), with what stopped: the
    /// binary then shuts down (releasing the Lease) and exits with a failure.
    pub async fn failed(&self) -> String {
        self.context.reconcilers.failed().await
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

/// Every CustomResourceDefinition this controller serves (what `crdgen` prints).
pub fn all_crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    vec![
        sealed_secret_crd(),
        sops_secret_crd(),
        ExternalSecret::crd(),
        SecretStore::crd(),
        ClusterSecretStore::crd(),
    ]
}

/// Installs (server-side apply) every CRD of [`all_crds`] and waits until they are served; for
/// development and tests — the chart installs them in a cluster.
pub async fn install_crd(client: kube::Client) -> Result<(), Error> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client);
    for crd in all_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await?;
    }
    for crd in all_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        for _ in 0..100 {
            let established = api.get_opt(&name).await?.is_some_and(|c| {
                c.status
                    .iter()
                    .flat_map(|s| s.conditions.iter().flatten())
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
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
            controller: FIELD_MANAGER.to_owned(),
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
    tasks.push(tokio::spawn(http::serve(http_listener, api, stop)));
    let metrics_app = http::metrics_router(Arc::clone(&ctx));
    let stop = stopped();
    tasks.push(tokio::spawn(http::serve(
        metrics_listener,
        metrics_app,
        stop,
    )));
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
        let term_ended = || {
            let mut rx = term_end_rx.clone();
            async move {
                let _ = rx.wait_for(|end| *end).await;
            }
        };
        let mut reconciler = AbortOnDrop(tokio::spawn(sealed_secret::reconcile::run(
            Arc::clone(&ctx),
            term_ended(),
        )));
        let mut sops_reconciler = AbortOnDrop(tokio::spawn(sops_secret::reconcile::run(
            Arc::clone(&ctx),
            term_ended(),
        )));
        let mut external_reconciler = AbortOnDrop(tokio::spawn(external::reconcile::run(
            Arc::clone(&ctx),
            term_ended(),
        )));
        let mut renewer = renewer;
        let names = [
            KIND_SEALED_SECRET,
            sops_secret::reconcile::KIND_SOPS_SECRET,
            external::reconcile::KIND_EXTERNAL_SECRET,
            "key renewal",
        ];
        ctx.reconcilers.start_term(
            names
                .iter()
                .zip([
                    &reconciler,
                    &sops_reconciler,
                    &external_reconciler,
                    &renewer,
                ])
                .map(|(name, task)| (*name, task.0.abort_handle()))
                .collect(),
        );
        // Every task of the term runs until the term ends; one that ends before is a failure.
        let ended = tokio::select! {
            _ = &mut stopped => Err(true),
            lost = leadership.wait_for(|leading| !*leading) => Err(lost.is_err()),
            (result, index, _) = futures::future::select_all([
                &mut reconciler.0,
                &mut sops_reconciler.0,
                &mut external_reconciler.0,
                &mut renewer.0,
            ]) => Ok((names[index], result)),
        };
        let shutting_down = match ended {
            Err(shutting_down) => shutting_down,
            Ok((name, result)) => {
                let how = match result {
                    Ok(()) => "returned",
                    Err(err) if err.is_panic() => "panicked",
                    Err(_) => "was cancelled",
                };
                let failure = format!("{name} task {how}");
                tracing::error!(
                    task = name,
                    how,
                    "a task of the leader stopped; giving up the leadership and stopping"
                );
                ctx.reconcilers.fail(failure);
                true
            }
        };
        tracing::info!("no longer leading");
        ctx.reconcilers.end_term();
        ctx.leading.store(false, Ordering::Relaxed);
        drop(renewer);
        let _ = term_end.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(15), async {
            let _ = (&mut reconciler.0).await;
            let _ = (&mut sops_reconciler.0).await;
            let _ = (&mut external_reconciler.0).await;
        })
        .await;
        if shutting_down {
            return;
        }
    }
}
