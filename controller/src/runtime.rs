//! The plumbing every kind's `run()` shares: the `Api`s scoped to the watched namespace, a
//! controller whose cache drops managedFields, the metadata-only watch of owned Secrets that
//! triggers the source object, waiting until a kind is served, and tasks that die with their owner.

use crate::context::Context;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A task that is aborted when its handle is dropped: the term's tasks die with the supervisor, as
/// they would with the process.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `Api`s of a namespaced kind and of Secret metadata, over the watched namespace or the cluster.
pub(crate) fn scoped_apis<K>(ctx: &Context) -> (Api<K>, Api<kube::api::PartialObjectMeta<Secret>>)
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
pub(crate) fn owned_secret_triggers(
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

/// A controller over `api` whose cache holds objects without their managedFields (no reconciler
/// reads them; they were a third of a SealedSecret's size), reconciling at most
/// `max_concurrent_reconciles` at once. Given an `Api<PartialObjectMeta<K>>`, its watch and cache
/// are metadata only: SealedSecrets, the kind clusters hold by the thousand, are cached so, and
/// their reconciler reads an object when it has work.
pub(crate) fn lean_controller<K>(api: Api<K>, ctx: &Context) -> Controller<K>
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
pub(crate) fn drop_managed_fields<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// Maps an owned Secret to the source object of the same name and namespace.
pub(crate) fn source_of<K: kube::Resource<DynamicType = ()>>(
    secret: kube::api::PartialObjectMeta<Secret>,
) -> Option<ObjectRef<K>> {
    let name = secret.metadata.name.clone()?;
    let namespace = secret.metadata.namespace.clone()?;
    Some(ObjectRef::<K>::new(&name).within(&namespace))
}

/// A stream that yields once per change seen on `rx` (for `reconcile_all_on`).
pub(crate) fn changes<T: Send + Sync + 'static>(
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
pub(crate) async fn wait_until_served<K>(
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

pub(crate) async fn log_trigger_error<T, E: std::fmt::Display>(result: Result<T, E>) {
    if let Err(err) = result {
        tracing::debug!(error = %err, "reconcile trigger");
    }
}
