//! The plumbing every kind's `run()` shares: the `Api`s scoped to the watched namespace, a
//! controller whose cache drops what no reconciler reads, the metadata-only watch of owned Secrets that
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

/// How a kind's cache of owned Secrets stores their owner label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerLabel {
    /// As it is: the kind reads the label's value itself.
    Keep,
    /// Folded into the controller ownerReference when it names the same uid: for a kind that reads
    /// ownership only through [`crate::target::owned_by`] (label or reference), which answers the
    /// same either way. A one-entry label map is a 544-byte B-tree node plus two strings: ~3 MB of
    /// a 5,000-object cache.
    FoldIntoReference,
}

/// A watch of the metadata of the Secrets carrying `owner_label`, feeding `writer`, as triggers
/// for the source object of the same name. (`Api<PartialObjectMeta<_>>` makes metadata-only
/// requests: Secret values never enter this cache.)
pub(crate) fn owned_secret_triggers(
    secret_api: Api<kube::api::PartialObjectMeta<Secret>>,
    owner_label: &'static str,
    label_in_cache: OwnerLabel,
    writer: reflector::store::Writer<kube::api::PartialObjectMeta<Secret>>,
) -> impl futures::Stream<Item = Result<kube::api::PartialObjectMeta<Secret>, watcher::Error>>
+ Send
+ 'static {
    watcher(secret_api, watcher::Config::default().labels(owner_label))
        .default_backoff()
        .modify(move |secret| {
            trim_for_cache(secret);
            if label_in_cache == OwnerLabel::FoldIntoReference {
                fold_owner_label(secret, owner_label);
            }
        })
        .reflect(writer)
        .touched_objects()
}

/// Drops `owner_label` from `secret` when its value is the uid of its controller ownerReference,
/// so that `owned_by(secret, owner_label, uid)` is unchanged for every `uid`.
fn fold_owner_label(secret: &mut kube::api::PartialObjectMeta<Secret>, owner_label: &str) {
    let meta = &mut secret.metadata;
    let Some(labels) = &mut meta.labels else {
        return;
    };
    let Some(value) = labels.get(owner_label) else {
        return;
    };
    let referenced = meta
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && &o.uid == value);
    if referenced {
        labels.remove(owner_label);
        if labels.is_empty() {
            meta.labels = None;
        }
    }
}

/// A controller over `api` whose cache holds objects trimmed by [`trim_for_cache`] (managedFields
/// were a third of a SealedSecret's size), reconciling at most
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
        .modify(trim_for_cache)
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(stream, store).with_config(
        kube::runtime::controller::Config::default()
            .concurrency(ctx.config.max_concurrent_reconciles),
    )
}

/// Drops what no reconciler reads from a watched object before it is cached: `managedFields`, and
/// the annotation `kubectl apply` keeps the whole last applied manifest in (for a SealedSecret
/// applied so, its ciphertext again: the larger part of a metadata-only cache entry).
pub(crate) fn trim_for_cache<K: kube::Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(signet_api::meta::LAST_APPLIED_ANNOTATION);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};

    #[test]
    fn the_cache_keeps_no_managed_fields_and_no_last_applied_manifest() {
        let meta = |annotations: &[(&str, &str)]| ObjectMeta {
            name: Some("db".into()),
            managed_fields: Some(vec![ManagedFieldsEntry::default()]),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        };
        let last_applied = (signet_api::meta::LAST_APPLIED_ANNOTATION, "{\"spec\":{}}");
        let mut secret = Secret {
            metadata: meta(&[last_applied, ("signet.dev/restart", "deployment/web")]),
            ..Secret::default()
        };
        trim_for_cache(&mut secret);
        assert_eq!(secret.metadata.managed_fields, None);
        assert_eq!(
            secret.metadata.annotations,
            Some([("signet.dev/restart".to_owned(), "deployment/web".to_owned())].into())
        );
        assert_eq!(secret.metadata.name.as_deref(), Some("db"));

        let mut only_last_applied = Secret {
            metadata: meta(&[last_applied]),
            ..Secret::default()
        };
        trim_for_cache(&mut only_last_applied);
        assert_eq!(only_last_applied.metadata.annotations, None);
    }

    #[test]
    fn a_folded_owner_label_leaves_ownership_as_it_was() {
        use crate::target::owned_by;
        use kube::ResourceExt;
        const LABEL: &str = "signet.dev/sealed-secret-uid";
        let secret = |labels: serde_json::Value, owner_uid: Option<&str>, controller: bool| {
            let refs: Vec<serde_json::Value> = owner_uid
                .into_iter()
                .map(|uid| {
                    serde_json::json!({"apiVersion": "bitnami.com/v1alpha1",
                    "kind": "SealedSecret", "name": "db", "uid": uid, "controller": controller})
                })
                .collect();
            serde_json::from_value::<kube::api::PartialObjectMeta<Secret>>(serde_json::json!({
                "metadata": {"name": "db", "labels": labels, "ownerReferences": refs}
            }))
            .unwrap()
        };
        let cases = [
            // (labels, ownerReference uid, controller, label folded)
            (serde_json::json!({LABEL: "u1"}), Some("u1"), true, true),
            (
                serde_json::json!({LABEL: "u1", "app": "web"}),
                Some("u1"),
                true,
                true,
            ),
            (serde_json::json!({LABEL: "u1"}), Some("u2"), true, false),
            (serde_json::json!({LABEL: "u1"}), Some("u1"), false, false),
            (serde_json::json!({LABEL: "u1"}), None, false, false),
            (serde_json::json!({"app": "web"}), Some("u1"), true, false),
        ];
        for (labels, owner, controller, folded) in cases {
            let before = secret(labels, owner, controller);
            let mut after = before.clone();
            fold_owner_label(&mut after, LABEL);
            assert_eq!(
                after.labels().contains_key(LABEL),
                before.labels().contains_key(LABEL) && !folded,
                "{before:?}"
            );
            for uid in ["u1", "u2", "u3"] {
                assert_eq!(
                    owned_by(&after, LABEL, uid),
                    owned_by(&before, LABEL, uid),
                    "{before:?} {uid}"
                );
            }
            if folded && before.labels().len() == 1 {
                assert_eq!(after.metadata.labels, None);
            }
        }
    }
}
