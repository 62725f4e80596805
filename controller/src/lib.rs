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
pub mod external;
pub mod http;
pub mod keyring;
pub mod metrics;
pub mod reconcile;
pub mod sops_secret;
pub mod supervise;
pub mod target;

pub use config::{Args, Config, LogFormat};
pub use context::Context;
pub use crd::{SealedSecret, SealedSecretStatus, sealed_secret_crd};
pub use error::Error;
pub use external::{ClusterSecretStore, ExternalSecret, SecretStore};
pub use sops_secret::{SopsSecret, sops_secret_crd};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
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
        let term_ended = || {
            let mut rx = term_end_rx.clone();
            async move {
                let _ = rx.wait_for(|end| *end).await;
            }
        };
        let mut reconciler = AbortOnDrop(tokio::spawn(run_sealed_secret_controller(
            Arc::clone(&ctx),
            term_ended(),
        )));
        let mut sops_reconciler = AbortOnDrop(tokio::spawn(run_sops_secret_controller(
            Arc::clone(&ctx),
            term_ended(),
        )));
        let mut external_reconciler = AbortOnDrop(tokio::spawn(run_external_secret_controller(
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

/// `Api`s of a namespaced kind and of Secret metadata, over the watched namespace or the cluster.
fn scoped_apis<K>(ctx: &Context) -> (Api<K>, Api<kube::api::PartialObjectMeta<Secret>>)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    let client = ctx.client.clone();
    match ctx.config.watch_namespace.as_deref() {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client, ns),
        ),
        None => (Api::all(client.clone()), Api::all(client)),
    }
}

/// A watch of the metadata of the Secrets carrying `owner_label`, feeding `writer`, as triggers
/// for the source object of the same name. (`Api<PartialObjectMeta<_>>` makes metadata-only
/// requests: Secret values never enter this cache.)
fn owned_secret_triggers(
    secret_api: Api<kube::api::PartialObjectMeta<Secret>>,
    owner_label: &str,
    writer: reflector::store::Writer<kube::api::PartialObjectMeta<Secret>>,
) -> impl futures::Stream<Item = Result<kube::api::PartialObjectMeta<Secret>, watcher::Error>>
+ Send
+ 'static {
    watcher(secret_api, watcher::Config::default().labels(owner_label))
        .default_backoff()
        .modify(drop_managed_fields)
        .reflect(writer)
        .touched_objects()
}

/// A controller over `api` whose cache holds objects without their managedFields (a third of a
/// SealedSecret's size; no reconciler reads them: 116 → 84 MiB peak RSS catching up with 5,000
/// SealedSecrets), reconciling at most `max_concurrent_reconciles` at once.
fn lean_controller<K>(api: Api<K>, ctx: &Context) -> Controller<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(drop_managed_fields)
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(stream, store).with_config(
        kube::runtime::controller::Config::default()
            .concurrency(ctx.config.max_concurrent_reconciles),
    )
}

/// Drops `metadata.managedFields` from a watched object before it is cached.
fn drop_managed_fields<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// Maps an owned Secret to the source object of the same name and namespace.
fn source_of<K: kube::Resource<DynamicType = ()>>(
    secret: kube::api::PartialObjectMeta<Secret>,
) -> Option<ObjectRef<K>> {
    let name = secret.metadata.name.clone()?;
    let namespace = secret.metadata.namespace.clone()?;
    Some(ObjectRef::<K>::new(&name).within(&namespace))
}

/// A stream that yields once per change seen on `rx` (for `reconcile_all_on`).
fn changes<T: Send + Sync + 'static>(
    mut rx: watch::Receiver<T>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    rx.mark_unchanged();
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
}

/// Whether the API server serves `K` (its CRD is installed), asked through `api` — scoped like the
/// reconciler, so a namespace-bound controller asks only what it may ask. Waits and asks again
/// every minute while not, until `stop`; returns false when stopped first.
async fn wait_until_served<K>(
    api: Api<K>,
    stop: &mut (impl std::future::Future<Output = ()> + Send + Unpin),
) -> bool
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut logged = false;
    loop {
        match api
            .list_metadata(&kube::api::ListParams::default().limit(1))
            .await
        {
            Ok(_) => return true,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                if !logged {
                    tracing::info!(kind = %K::kind(&()), "kind not served (CRD not installed); waiting for it");
                    logged = true;
                }
            }
            Err(err) => tracing::warn!(kind = %K::kind(&()), error = %err, "cannot list"),
        }
        tokio::select! {
            _ = &mut *stop => return false,
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
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
    let (sealed_api, secret_api) = scoped_apis::<SealedSecret>(&ctx);
    let owned_secrets = owned_secret_triggers(secret_api, reconcile::OWNER_LABEL, secret_writer);
    let controller = lean_controller(sealed_api, &ctx);
    ctx.set_sealed_secret_store(Some(controller.store()));
    controller
        .watches_stream(owned_secrets, source_of::<SealedSecret>)
        .reconcile_all_on(changes(ctx.keys.subscribe()))
        .graceful_shutdown_on(stop)
        .run(
            supervise::contained(reconcile::reconcile),
            reconcile::error_policy,
            Arc::clone(&ctx),
        )
        .for_each(log_trigger_error)
        .await;
    ctx.set_sealed_secret_store(None);
}

async fn run_sops_secret_controller(
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let mut stop = Box::pin(stop);
    if !wait_until_served(scoped_apis::<SopsSecret>(&ctx).0, &mut stop).await {
        return;
    }
    let (keyring, identities) = sops_secret::identities::watch_identities(
        ctx.client.clone(),
        ctx.config.controller_namespace.clone(),
        ctx.config.sops_age_secrets.clone(),
        ctx.config.sops_environment.clone(),
    );
    let _identities = AbortOnDrop(tokio::spawn(identities));
    let (secret_store, secret_writer) = reflector::store();
    let (api, secret_api) = scoped_apis::<SopsSecret>(&ctx);
    let owned_secrets = owned_secret_triggers(
        secret_api,
        sops_secret::reconcile::OWNER_LABEL,
        secret_writer,
    );
    let sops_ctx = Arc::new(sops_secret::reconcile::SopsContext {
        base: Arc::clone(&ctx),
        secrets: secret_store,
        keyring: keyring.clone(),
    });
    lean_controller(api, &ctx)
        .watches_stream(owned_secrets, source_of::<SopsSecret>)
        .reconcile_all_on(changes(keyring))
        .graceful_shutdown_on(stop)
        .run(
            supervise::contained(sops_secret::reconcile::reconcile),
            sops_secret::reconcile::error_policy,
            sops_ctx,
        )
        .for_each(log_trigger_error)
        .await;
}

async fn run_external_secret_controller(
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    use external::reconcile::{ExternalContext, OWNER_LABEL, error_policy, reconcile};
    let mut stop = Box::pin(stop);
    if !wait_until_served(scoped_apis::<ExternalSecret>(&ctx).0, &mut stop).await {
        return;
    }
    let (secret_store, secret_writer) = reflector::store();
    let (api, secret_api) = scoped_apis::<ExternalSecret>(&ctx);
    let owned_secrets = owned_secret_triggers(secret_api, OWNER_LABEL, secret_writer);
    let external_ctx = Arc::new(ExternalContext::new(Arc::clone(&ctx), secret_store));
    let controller = lean_controller(api, &ctx);
    // A changed store re-runs the ExternalSecrets that use it.
    let objects = controller.store();
    let users_of = move |kind: &'static str, namespace: Option<String>, name: String| {
        objects
            .state()
            .into_iter()
            .filter(|es| {
                let r = &es.spec.secret_store_ref;
                r.name == name
                    && r.kind.as_deref().unwrap_or("SecretStore") == kind
                    && (namespace.is_none() || es.metadata.namespace == namespace)
            })
            .map(|es| ObjectRef::from_obj(es.as_ref()))
            .collect::<Vec<_>>()
    };
    let users_of_cluster_store = users_of.clone();
    let store_api: Api<SecretStore> = match ctx.config.watch_namespace.as_deref() {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let stop = futures::FutureExt::shared(stop);
    let store_controllers = futures::future::join(
        run_store_status::<SecretStore>(Arc::clone(&external_ctx), store_api.clone(), stop.clone()),
        run_store_status::<ClusterSecretStore>(
            Arc::clone(&external_ctx),
            Api::all(ctx.client.clone()),
            stop.clone(),
        ),
    );
    let external_secrets = controller
        .watches_stream(owned_secrets, source_of::<ExternalSecret>)
        .watches(
            store_api.clone(),
            watcher::Config::default(),
            move |store: SecretStore| {
                users_of(
                    "SecretStore",
                    store.metadata.namespace.clone(),
                    store.name_any(),
                )
            },
        )
        .watches(
            Api::<ClusterSecretStore>::all(ctx.client.clone()),
            watcher::Config::default(),
            move |store: ClusterSecretStore| {
                users_of_cluster_store("ClusterSecretStore", None, store.name_any())
            },
        )
        .graceful_shutdown_on(stop)
        .run(supervise::contained(reconcile), error_policy, external_ctx)
        .for_each(log_trigger_error);
    futures::future::join(external_secrets, store_controllers).await;
}

/// Keeps the `Ready` condition of one store kind.
async fn run_store_status<S>(
    ctx: Arc<external::reconcile::ExternalContext>,
    api: Api<S>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) where
    S: external::store_status::StoreObject,
{
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(stop)
        .run(
            supervise::contained(external::store_status::reconcile::<S>),
            external::store_status::error_policy::<S>,
            ctx,
        )
        .for_each(log_trigger_error)
        .await;
}

async fn log_trigger_error<T, E: std::fmt::Display>(result: Result<T, E>) {
    if let Err(err) = result {
        tracing::debug!(error = %err, "reconcile trigger");
    }
}
