//! `signet-controller`: turns `bitnami.com/v1alpha1` SealedSecrets into Secrets and manages the
//! sealing keys, as a drop-in replacement for the Bitnami Sealed Secrets controller.
//!
//! The binary is thin: [`start`] runs everything in-process from a `kube::Client` and a [`Config`]
//! (tests use it directly), and the returned [`RunningController`] stops it. Pieces:
//! [`keyring`] (key Secrets, renewal), [`reconcile`] (the SealedSecret reconciler), [`http`]
//! (cert/verify/rotate, probes, metrics listener), [`metrics`], [`crd`] (the resource type and its
//! CustomResourceDefinition), [`config`] (flags and environment).

pub mod config;
pub mod context;
pub mod crd;
mod error;
pub mod http;
pub mod keyring;
pub mod metrics;
pub mod reconcile;

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
    tasks: Vec<JoinHandle<()>>,
}

impl RunningController {
    /// Stops every task and waits for the reconciler to finish its current work.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }

    /// Resolves when the controller should stop (for the binary: after a signal).
    pub async fn wait(&mut self) {
        for task in &mut self.tasks {
            let _ = task.await;
        }
    }
}

impl Drop for RunningController {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
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

/// Starts the key watch, key renewal, HTTP and metrics listeners and the SealedSecret reconciler.
/// The listeners are bound before this returns.
pub async fn start(client: kube::Client, config: Config) -> Result<RunningController, Error> {
    let keys = Arc::new(keyring::KeyRing::default());
    let metrics = Arc::new(metrics::Metrics::new());
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: reconcile::FIELD_MANAGER.to_owned(),
            instance: config.instance.clone(),
        },
    );
    let (secret_store, secret_writer) = reflector::store();
    let ctx = Arc::new(Context::new(
        client.clone(),
        config.clone(),
        Arc::clone(&keys),
        Arc::clone(&metrics),
        recorder,
        secret_store,
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
    tasks.push(tokio::spawn(keyring::renew_keys(
        client.clone(),
        config.controller_namespace.clone(),
        Arc::clone(&keys),
        config.key_renew_period,
        config.key_cutoff_time,
        config.key_bits,
    )));
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
    let reconciler_ctx = Arc::clone(&ctx);
    tasks.push(tokio::spawn(async move {
        run_sealed_secret_controller(reconciler_ctx, secret_writer, stop).await;
    }));

    Ok(RunningController {
        http_addr,
        metrics_addr,
        context: ctx,
        shutdown,
        tasks,
    })
}

async fn run_sealed_secret_controller(
    ctx: Arc<Context>,
    secret_writer: reflector::store::Writer<kube::api::PartialObjectMeta<Secret>>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    keyring::wait_for_sealing_key(&ctx.keys).await;
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
    ctx.reconciling.store(true, Ordering::Relaxed);
    Controller::new(sealed_api, watcher::Config::default())
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
    ctx.reconciling.store(false, Ordering::Relaxed);
}
