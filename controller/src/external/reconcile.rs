//! The ExternalSecret reconciler.
//!
//! A provider is called only when one of these holds: the spec changed (generation), the refresh
//! interval elapsed since `status.refreshTime`, the target Secret is gone or was altered (its
//! resourceVersion differs from the one recorded), or the force-sync annotation changed. So a
//! controller restart costs no provider call for objects whose Secret is current. A provider error
//! keeps the last good Secret, sets `Ready=False` and retries with exponential back-off.

use super::stores::{ProviderCache, StoreError, find_store};
use super::template::{self, Values};
use super::{
    ClusterSecretStore, ExternalSecret, FORCE_SYNC_ANNOTATION, READY_CONDITION, SecretStore,
};
use crate::config::parse_period;
use crate::context::Context;
use crate::runtime::{
    lean_controller, log_trigger_error, owned_secret_triggers, scoped_apis, source_of,
    wait_until_served,
};
use crate::target::{self, DesiredSecret};
use crate::{Error, supervise};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PartialObjectMeta};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;
use signet_providers::{RemoteRef, SecretProvider};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Label on every Secret written from an ExternalSecret; its value is the ExternalSecret's uid.
pub const OWNER_LABEL: &str = "signet.dev/external-secret-uid";
/// Kind name in metrics labels.
pub const KIND_EXTERNAL_SECRET: &str = "ExternalSecret";
/// Refresh interval when the spec gives none.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

/// Condition reasons (External Secrets Operator's where it has one).
pub mod reason {
    /// The Secret holds the current remote values.
    pub const SYNCED: &str = "SecretSynced";
    /// Fetching or writing failed; the last good Secret stays.
    pub const SYNC_ERROR: &str = "SecretSyncedError";
    /// The remote value is gone and `deletionPolicy: Delete` removed the Secret.
    pub const DELETED: &str = "SecretDeleted";
    /// A Secret of the target name exists and is not this ExternalSecret's (`Owner`).
    pub const NOT_OWNED: &str = "SecretNotOwned";
    /// `Merge` needs an existing Secret.
    pub const MISSING: &str = "SecretMissing";
    /// The spec cannot be acted on.
    pub const INVALID: &str = "InvalidSpec";
}

/// What the ExternalSecret reconciler needs besides the shared context.
pub struct ExternalContext {
    /// Client, metrics, recorder, configuration.
    pub base: Arc<Context>,
    /// Metadata of the Secrets carrying [`OWNER_LABEL`].
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// Providers by store.
    pub providers: ProviderCache,
    /// Consecutive failures by ExternalSecret uid, for the back-off.
    failures: Mutex<HashMap<String, u32>>,
    /// The last successful sync by uid: the cached object's status may lag behind it.
    synced: Mutex<HashMap<String, LastSync>>,
}

/// What a successful sync recorded (in the status, and in memory).
#[derive(Debug, Clone, PartialEq)]
struct LastSync {
    generation: Option<String>,
    secret_resource_version: Option<String>,
    refreshed: Option<Timestamp>,
    force_sync: Option<String>,
}

impl ExternalContext {
    /// A context with empty caches.
    pub fn new(base: Arc<Context>, secrets: Store<PartialObjectMeta<Secret>>) -> Self {
        ExternalContext {
            base,
            secrets,
            providers: ProviderCache::default(),
            failures: Mutex::new(HashMap::new()),
            synced: Mutex::new(HashMap::new()),
        }
    }

    /// The last successful sync: from memory when it is newer than the cached status.
    fn last_sync(&self, object: &ExternalSecret, uid: &str) -> Option<LastSync> {
        let generation = object.metadata.generation.map(|g| g.to_string());
        if let Some(remembered) = self
            .synced
            .lock()
            .ok()
            .and_then(|m| m.get(uid).cloned())
            .filter(|s| s.generation == generation)
        {
            return Some(remembered);
        }
        let status = object.status.as_ref()?;
        if status.ready().is_none_or(|c| c.status != "True") {
            return None;
        }
        Some(LastSync {
            generation: status.synced_resource_version.clone(),
            secret_resource_version: status.secret_resource_version.clone(),
            refreshed: status.refresh_time.as_deref().and_then(|t| t.parse().ok()),
            force_sync: status.force_sync.clone(),
        })
    }

    fn remember(&self, uid: &str, sync: LastSync) {
        if let Ok(mut synced) = self.synced.lock() {
            synced.insert(uid.to_owned(), sync);
        }
    }

    fn forget_sync(&self, uid: &str) {
        if let Ok(mut synced) = self.synced.lock() {
            synced.remove(uid);
        }
    }

    /// Records a failure and returns the delay before the next try: 5 s doubling up to the
    /// configured maximum.
    fn backoff(&self, uid: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(uid.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        let delay = Duration::from_secs(5).saturating_mul(1 << (*count - 1).min(10));
        delay.min(self.base.config.provider_backoff_max)
    }

    fn succeeded(&self, uid: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(uid);
        }
    }
}

/// How the target Secret is claimed (`spec.target.creationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreationPolicy {
    Owner,
    Merge,
    Orphan,
}

/// The outcome written to the status.
struct Outcome<'a> {
    status: &'a str,
    reason: &'a str,
    message: String,
    /// `Some` after a successful fetch: refreshTime moves.
    refreshed: bool,
    secret_resource_version: Option<String>,
}

/// Reconciles one ExternalSecret.
pub async fn reconcile(
    object: Arc<ExternalSecret>,
    ctx: Arc<ExternalContext>,
) -> Result<Action, Error> {
    let base = &ctx.base;
    base.metrics.count_reconcile(KIND_EXTERNAL_SECRET);
    if object.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = object
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let uid = object.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let spec = &object.spec;
    let target_name = spec
        .target
        .name
        .clone()
        .unwrap_or_else(|| object.name_any());
    let interval = match spec.refresh_interval.as_deref() {
        None => DEFAULT_REFRESH_INTERVAL,
        Some(text) => match parse_period(text) {
            Ok(interval) => interval,
            Err(message) => {
                let outcome = failure(reason::INVALID, format!("spec.refreshInterval: {message}"));
                finish(&object, base, outcome).await?;
                return Ok(Action::await_change());
            }
        },
    };
    let policy = match spec.target.creation_policy.as_deref() {
        None | Some("Owner") => CreationPolicy::Owner,
        Some("Merge") => CreationPolicy::Merge,
        Some("Orphan") => CreationPolicy::Orphan,
        Some(other) => {
            let outcome = failure(
                reason::INVALID,
                format!("spec.target.creationPolicy: {other:?} (Owner, Merge or Orphan)"),
            );
            finish(&object, base, outcome).await?;
            return Ok(Action::await_change());
        }
    };
    let existing = target::current_secret(base, &ctx.secrets, &namespace, &target_name).await?;

    let last = ctx.last_sync(&object, &uid);
    if let Some(wait) =
        time_until_refresh(&object, last.as_ref(), existing.as_ref(), &uid, interval)
    {
        return Ok(match wait {
            Some(wait) => Action::requeue(wait),
            None => Action::await_change(),
        });
    }

    // Who owns the target, before any provider call.
    match (policy, existing.as_ref()) {
        (CreationPolicy::Owner, Some(secret)) if !target::owned_by(secret, OWNER_LABEL, &uid) => {
            let outcome = failure(
                reason::NOT_OWNED,
                format!(
                    "Secret {target_name:?} exists and is not owned by this ExternalSecret; delete it, or use creationPolicy Merge to merge into it"
                ),
            );
            finish(&object, base, outcome).await?;
            return Ok(failed(&ctx, &uid));
        }
        (CreationPolicy::Merge, None) => {
            let outcome = failure(
                reason::MISSING,
                format!("creationPolicy Merge: Secret {target_name:?} does not exist"),
            );
            finish(&object, base, outcome).await?;
            return Ok(failed(&ctx, &uid));
        }
        _ => {}
    }

    let store = match find_store(base, &namespace, &spec.secret_store_ref).await {
        Ok(store) => store,
        Err(err) => return store_failed(&object, &ctx, &uid, err).await,
    };
    let provider = match ctx.providers.provider(base, &store).await {
        Ok(provider) => provider,
        Err(err) => return store_failed(&object, &ctx, &uid, err).await,
    };
    let fetched = match fetch(&object, provider.as_ref(), base).await {
        Ok(values) => values,
        Err(err) => {
            if err.is_unauthorized() {
                ctx.providers.forget(&store);
            }
            if err.is_not_found() && spec.target.deletion_policy.as_deref() == Some("Delete") {
                return delete_target(
                    &object,
                    &ctx,
                    &uid,
                    existing.as_ref(),
                    policy,
                    &target_name,
                    err,
                )
                .await;
            }
            let outcome = failure(reason::SYNC_ERROR, err.to_string());
            finish(&object, base, outcome).await?;
            return Ok(failed(&ctx, &uid));
        }
    };
    let template_spec = spec.target.template.clone().unwrap_or_default();
    let merge = template_spec.merge_policy.as_deref() == Some("Merge");
    let values = match template::render(fetched, &template_spec.data, merge)
        .and_then(template::check_keys)
    {
        Ok(values) => values,
        Err(message) => {
            finish(&object, base, failure(reason::SYNC_ERROR, message)).await?;
            return Ok(Action::await_change());
        }
    };
    let metadata = template_spec.metadata.unwrap_or_default();
    let own = policy != CreationPolicy::Merge;
    let desired = DesiredSecret {
        name: &target_name,
        namespace: &namespace,
        owner_label: OWNER_LABEL,
        owner_uid: &uid,
        owner_reference: (policy == CreationPolicy::Owner).then(|| {
            (
                ExternalSecret::api_version(&()).into_owned(),
                ExternalSecret::kind(&()).into_owned(),
                object.name_any(),
            )
        }),
        labels: metadata.labels,
        annotations: metadata.annotations,
        type_: template_spec.type_.filter(|_| own),
        immutable: None,
        data_base64: target::base64_values(values.iter().map(|(k, v)| (k, v.as_slice()))),
    };
    match desired.apply(base).await? {
        Ok(applied) => {
            base.metrics.count_sync(KIND_EXTERNAL_SECRET);
            ctx.succeeded(&uid);
            ctx.remember(
                &uid,
                LastSync {
                    generation: object.metadata.generation.map(|g| g.to_string()),
                    secret_resource_version: applied.metadata.resource_version.clone(),
                    refreshed: Some(Timestamp::now()),
                    force_sync: object.annotations().get(FORCE_SYNC_ANNOTATION).cloned(),
                },
            );
            let outcome = Outcome {
                status: "True",
                reason: reason::SYNCED,
                message: "Secret was synced".into(),
                refreshed: true,
                secret_resource_version: applied.metadata.resource_version,
            };
            finish(&object, base, outcome).await?;
            Ok(if interval.is_zero() {
                Action::await_change()
            } else {
                Action::requeue(interval)
            })
        }
        Err(message) => {
            finish(&object, base, failure(reason::SYNC_ERROR, message)).await?;
            Ok(failed(&ctx, &uid))
        }
    }
}

/// `None` when a refresh is due now; `Some(None)` to wait for a change only; `Some(Some(d))` to
/// look again in `d`.
fn time_until_refresh(
    object: &ExternalSecret,
    last: Option<&LastSync>,
    existing: Option<&PartialObjectMeta<Secret>>,
    uid: &str,
    interval: Duration,
) -> Option<Option<Duration>> {
    let last = last?;
    if last.generation != object.metadata.generation.map(|g| g.to_string()) {
        return None;
    }
    if object.annotations().get(FORCE_SYNC_ANNOTATION) != last.force_sync.as_ref() {
        return None;
    }
    // The Secret must still be the one we wrote.
    let secret = existing?;
    if secret.metadata.resource_version != last.secret_resource_version
        || secret.labels().get(OWNER_LABEL).map(String::as_str) != Some(uid)
    {
        return None;
    }
    if interval.is_zero() {
        return Some(None);
    }
    let elapsed = Timestamp::now().duration_since(last.refreshed?);
    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
    interval.checked_sub(elapsed).map(Some)
}

/// Why fetching failed: a provider error naming the key (never a value).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {error}")]
struct FetchError {
    what: String,
    error: signet_providers::Error,
}

impl FetchError {
    fn is_not_found(&self) -> bool {
        self.error.reason() == "NotFound"
    }
    fn is_unauthorized(&self) -> bool {
        self.error.reason() == "Unauthorized"
    }
}

/// Fetches every `data` and `dataFrom` entry, counting each provider call.
async fn fetch(
    object: &ExternalSecret,
    provider: &dyn SecretProvider,
    base: &Context,
) -> Result<Values, FetchError> {
    let count = |operation: &str, result: Result<(), &signet_providers::Error>| {
        let status = match result {
            Ok(()) => "ok",
            Err(e) => e.reason(),
        };
        base.metrics
            .count_provider_call(provider.kind(), operation, status);
    };
    let mut values = Values::new();
    for from in &object.spec.data_from {
        let Some(extract) = &from.extract else {
            continue;
        };
        let remote = remote_ref(extract);
        let got = provider.get_all(&remote).await;
        count("get_all", got.as_ref().map(|_| ()));
        let all = got.map_err(|error| FetchError {
            what: format!("dataFrom.extract {:?}", extract.key),
            error,
        })?;
        // Nested names (SSM paths) become valid Secret keys: `db/user` -> `db_user`.
        values.extend(all.into_iter().map(|(k, v)| (k.replace('/', "_"), v)));
    }
    for item in &object.spec.data {
        let remote = remote_ref(&item.remote_ref);
        let got = provider.get(&remote).await;
        count("get", got.as_ref().map(|_| ()));
        let value = got.map_err(|error| FetchError {
            what: format!("data {:?} (key {:?})", item.secret_key, item.remote_ref.key),
            error,
        })?;
        values.insert(item.secret_key.clone(), value);
    }
    Ok(values)
}

fn remote_ref(spec: &super::RemoteRefSpec) -> RemoteRef {
    RemoteRef {
        key: spec.key.clone(),
        property: spec.property.clone(),
        version: spec.version.clone(),
    }
}

fn failure(reason: &str, message: String) -> Outcome<'_> {
    Outcome {
        status: "False",
        reason,
        message,
        refreshed: false,
        secret_resource_version: None,
    }
}

/// Records a failed attempt: the back-off delay, and no memory of a good sync (so the retry
/// fetches).
fn failed(ctx: &ExternalContext, uid: &str) -> Action {
    ctx.forget_sync(uid);
    Action::requeue(ctx.backoff(uid))
}

async fn store_failed(
    object: &ExternalSecret,
    ctx: &ExternalContext,
    uid: &str,
    err: StoreError,
) -> Result<Action, Error> {
    finish(object, &ctx.base, failure(err.reason(), err.to_string())).await?;
    Ok(failed(ctx, uid))
}

/// The remote value is gone and `deletionPolicy: Delete`: delete the Secret if it is ours.
async fn delete_target(
    object: &ExternalSecret,
    ctx: &ExternalContext,
    uid: &str,
    existing: Option<&PartialObjectMeta<Secret>>,
    policy: CreationPolicy,
    target_name: &str,
    err: FetchError,
) -> Result<Action, Error> {
    let base = &ctx.base;
    if let Some(secret) = existing
        && policy != CreationPolicy::Merge
        && target::owned_by(secret, OWNER_LABEL, uid)
    {
        let api: Api<Secret> = Api::namespaced(
            base.client.clone(),
            secret.namespace().as_deref().unwrap_or_default(),
        );
        base.metrics.count_write("secret");
        match api.delete(target_name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(other) => return Err(other.into()),
        }
    }
    let message = format!("{err}; the Secret was deleted (deletionPolicy Delete)");
    finish(object, base, failure(reason::DELETED, message)).await?;
    Ok(failed(ctx, uid))
}

/// Writes the status when it changed; events on condition changes; error counts.
async fn finish(object: &ExternalSecret, ctx: &Context, outcome: Outcome<'_>) -> Result<(), Error> {
    if outcome.status != "True" {
        ctx.metrics
            .count_error(KIND_EXTERNAL_SECRET, outcome.reason);
    }
    let old = object.status.clone().unwrap_or_default();
    let (condition, changed) = target::next_condition(
        old.ready(),
        READY_CONDITION,
        outcome.status,
        outcome.reason,
        &outcome.message,
    );
    let generation = object.metadata.generation.map(|g| g.to_string());
    let force = object.annotations().get(FORCE_SYNC_ANNOTATION).cloned();
    let mut patch = json!({ "conditions": [condition] });
    if outcome.refreshed {
        patch["refreshTime"] = json!(Timestamp::now().to_string());
        patch["syncedResourceVersion"] = json!(generation);
        patch["secretResourceVersion"] = json!(outcome.secret_resource_version);
        patch["forceSync"] = json!(force);
    } else if !changed {
        // Same failure again: nothing new to record.
        return Ok(());
    }
    target::patch_status(ctx, object, patch).await?;
    if changed {
        target::publish_condition_event(
            ctx,
            object,
            &condition,
            "Sync",
            ("SecretSynced", "Secret was synced"),
        )
        .await;
    }
    Ok(())
}

/// Runs the ExternalSecret reconciler and the store status reconcilers until `stop` (while
/// leading), once the kind is served: an ExternalSecret is reconciled on its changes, on changes of
/// its Secret, and when the store it uses changes.
pub(crate) async fn run(
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
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
    ctx: Arc<ExternalContext>,
    api: Api<S>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) where
    S: super::store_status::StoreObject,
{
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(stop)
        .run(
            supervise::contained(super::store_status::reconcile::<S>),
            super::store_status::error_policy::<S>,
            ctx,
        )
        .for_each(log_trigger_error)
        .await;
}

/// Retry policy for errors (API unavailable, conflicts).
pub fn error_policy(
    object: Arc<ExternalSecret>,
    error: &Error,
    ctx: Arc<ExternalContext>,
) -> Action {
    ctx.base
        .metrics
        .count_error(KIND_EXTERNAL_SECRET, error.reason());
    tracing::warn!(
        namespace = object.namespace().unwrap_or_default(),
        name = %object.name_any(),
        error = %error,
        "ExternalSecret reconcile failed; retrying"
    );
    Action::requeue(Duration::from_secs(5))
}
