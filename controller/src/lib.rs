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
//! [`supervise`] (reconcilers that must not stop), [`restart`] (rolling out workloads when their
//! Secret's data changed), [`cpu`] (CPU-bound work off the runtime, one task per core). Around
//! them: [`http`] (cert/verify/rotate, probes, metrics listener), [`metrics`], [`events`]
//! (Kubernetes Events, none kept), [`config`] (flags and environment). Leader election (a Lease,
//! through `kube-lease-manager`) gates the reconcilers and key renewal; the key watch and the
//! listeners run on every replica.
// A library does not print: its caller decides what reaches a terminal or a log (tests may: clippy.toml).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod config;
pub mod context;
pub mod cpu;
pub mod crd;
mod error;
pub mod events;
pub mod external;
pub mod http;
pub mod metrics;
pub mod restart;
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
pub use external::{ClusterExternalSecret, ClusterSecretStore, ExternalSecret, SecretStore};
pub use sealed_secret::{SealedSecret, SealedSecretStatus, sealed_secret_crd};
pub use sops_secret::{SopsSecret, sops_secret_crd};

use crate::events::Recorder;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::Reporter;
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
        ClusterExternalSecret::crd(),
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
/// while leading — key renewal and the reconcilers of every kind. The listeners are bound before this
/// returns.
pub async fn start(client: kube::Client, config: Config) -> Result<RunningController, Error> {
    let keys = Arc::new(keyring::LiveSealingKeys::default());
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

    let (http_listener, http_addr) = bind(config.listen_addr).await?;
    let (metrics_listener, metrics_addr) = bind(config.metrics_addr).await?;
    let Leadership {
        leadership,
        lease,
        always_leading,
    } = elect(&client, &config, &identity).await?;

    let ctx_for_lead = Arc::clone(&ctx);
    let api = http::api_router(Arc::clone(&ctx));
    let metrics_app = http::metrics_router(Arc::clone(&ctx));
    let mut tasks = vec![
        tokio::spawn(http::serve(http_listener, api, stopped())),
        tokio::spawn(http::serve(metrics_listener, metrics_app, stopped())),
        tokio::spawn(keyring::watch_keys(
            client.clone(),
            config.controller_namespace.clone(),
            Arc::clone(&keys),
        )),
    ];
    tasks.extend(gauge_tasks(&ctx));

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

/// Binds a listener; its address is the real port when `addr` asked for port 0.
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Listen(addr, e))?;
    let local = listener.local_addr().map_err(|e| Error::Listen(addr, e))?;
    Ok((listener, local))
}

/// Whether this process leads, as a watch: from a Lease when configured, else always.
struct Leadership {
    leadership: watch::Receiver<bool>,
    /// The Lease holder task (releases the Lease when its channel closes).
    lease: Option<JoinHandle<()>>,
    /// Without an election: the sender that keeps `leadership` true while it lives.
    always_leading: Option<watch::Sender<bool>>,
}

/// Takes part in the leader election of `config`, or leads alone without one.
async fn elect(
    client: &kube::Client,
    config: &Config,
    identity: &str,
) -> Result<Leadership, Error> {
    let Some(election) = &config.leader_election else {
        let (sender, receiver) = watch::channel(true);
        return Ok(Leadership {
            leadership: receiver,
            lease: None,
            always_leading: Some(sender),
        });
    };
    let params = kube_lease_manager::LeaseParams::new(
        identity.to_owned(),
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
    Ok(Leadership {
        leadership: receiver,
        lease: Some(lease),
        always_leading: None,
    })
}

/// The tasks that keep gauges current on every replica: the derived gauges (and the per-object
/// memory bounded) even without scrapes, and the number of sealing keys.
fn gauge_tasks(ctx: &Arc<Context>) -> [JoinHandle<()>; 2] {
    let refresh = {
        let ctx = Arc::clone(ctx);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                ctx.refresh_gauges();
            }
        })
    };
    let keys = Arc::clone(&ctx.keys);
    let metrics = Arc::clone(&ctx.metrics);
    let sealing_keys = tokio::spawn(async move {
        let mut changes = keys.subscribe();
        loop {
            metrics.sealing_keys.set(keys.snapshot().keys.len() as i64);
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
    [refresh, sealing_keys]
}

fn random_identity() -> String {
    let mut bytes = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("signet-controller-{suffix}")
}

/// The tasks of one term of leadership: the three reconcilers, then key renewal.
struct Term {
    names: [&'static str; 4],
    tasks: [AbortOnDrop; 4],
    /// Tells the reconcilers to finish.
    end: watch::Sender<bool>,
}

impl Term {
    /// Starts key renewal and the reconcilers, and registers them for the health checks.
    fn start(ctx: &Arc<Context>) -> Term {
        let (end, end_rx) = watch::channel(false);
        let ended = || {
            let mut rx = end_rx.clone();
            async move {
                let _ = rx.wait_for(|end| *end).await;
            }
        };
        let renewer = AbortOnDrop(tokio::spawn(keyring::renew_keys(
            ctx.client.clone(),
            ctx.config.controller_namespace.clone(),
            Arc::clone(&ctx.keys),
            ctx.config.key_renew_period,
            ctx.config.key_cutoff_time,
            keyring::NewKey {
                bits: ctx.config.key_bits,
                name_prefix: ctx.config.key_prefix.clone(),
            },
        )));
        let tasks = [
            AbortOnDrop(tokio::spawn(sealed_secret::reconcile::run(
                Arc::clone(ctx),
                ended(),
            ))),
            AbortOnDrop(tokio::spawn(sops_secret::reconcile::run(
                Arc::clone(ctx),
                ended(),
            ))),
            AbortOnDrop(tokio::spawn(external::reconcile::run(
                Arc::clone(ctx),
                ended(),
            ))),
            renewer,
        ];
        let names = [
            KIND_SEALED_SECRET,
            sops_secret::reconcile::KIND_SOPS_SECRET,
            external::reconcile::KIND_EXTERNAL_SECRET,
            "key renewal",
        ];
        ctx.reconcilers.start_term(
            names
                .iter()
                .zip(&tasks)
                .map(|(name, task)| (*name, task.0.abort_handle()))
                .collect(),
        );
        Term { names, tasks, end }
    }

    /// Ends the term: key renewal stops at once; the reconcilers finish their current work (at
    /// most 15 s) and are aborted after.
    async fn end(self) {
        let [mut sealed, mut sops, mut external, renewer] = self.tasks;
        drop(renewer);
        let _ = self.end.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(15), async {
            let _ = (&mut sealed.0).await;
            let _ = (&mut sops.0).await;
            let _ = (&mut external.0).await;
        })
        .await;
    }
}

/// Runs key renewal and the reconcilers for each term of leadership, and stops them when the
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
        let mut term = Term::start(&ctx);
        let names = term.names;
        // Every task of the term runs until the term ends; one that ends before is a failure.
        let ended = tokio::select! {
            _ = &mut stopped => Err(true),
            lost = leadership.wait_for(|leading| !*leading) => Err(lost.is_err()),
            (result, index, _) = futures::future::select_all(
                term.tasks.iter_mut().map(|task| &mut task.0),
            ) => Ok((names[index], result)),
        };
        let shutting_down = match ended {
            Err(shutting_down) => shutting_down,
            Ok((name, result)) => {
                task_stopped(&ctx, name, result);
                true
            }
        };
        tracing::info!("no longer leading");
        ctx.reconcilers.end_term();
        ctx.leading.store(false, Ordering::Relaxed);
        term.end().await;
        if shutting_down {
            return;
        }
    }
}

/// Records that a task of the term stopped before the term ended (a failure: the process gives
/// up the leadership and stops).
fn task_stopped(ctx: &Context, name: &str, result: Result<(), tokio::task::JoinError>) {
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
}
