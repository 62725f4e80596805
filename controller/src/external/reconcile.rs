//! The ExternalSecret reconciler.
//!
//! A provider is called only when one of these holds: the spec changed (generation), the refresh
//! interval elapsed since `status.refreshTime`, the target Secret is gone or was altered (its
//! resourceVersion differs from the one recorded), or the force-sync annotation changed. So a
//! controller restart costs no provider call for objects whose Secret is current. A provider error
//! keeps the last good Secret, sets `Ready=False` and retries with exponential back-off.
//!
//! A reconcile reads plan (`Settings::of`, `refresh`, `claim`) → fetch (store, provider,
//! values, template) → apply → finish; the decisions are plain functions, unit-tested below.

use super::decode::Decoding;
use super::keys::{Conversion, Rewrites};
use super::shape::{Raw, shape};
use super::stores::{FoundStore, ProviderCache, StoreError, find_store};
use super::template::{self, Rendered};
use super::{
    ClusterSecretStore, ExternalSecret, FORCE_SYNC_ANNOTATION, READY_CONDITION, SecretStore,
    SecretStoreRef,
};
use crate::config::parse_period;
use crate::context::Context;
use crate::runtime::{
    OwnerLabel, lean_controller, log_trigger_error, owned_secret_triggers, scoped_apis, source_of,
    wait_until_served,
};
use crate::target::{
    self, Claim, ConditionEvents, DesiredSecret, Next, Outcome, Source, StatusUpdate,
};
use crate::{Error, supervise};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PartialObjectMeta};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, watcher};
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
    /// `target.immutable`: the Secret was written immutable from an earlier spec and keeps its
    /// values until it is deleted.
    pub const IMMUTABLE: &str = "SecretImmutable";
}

/// The events of the `Ready` condition.
const EVENTS: ConditionEvents = ConditionEvents {
    action: "Sync",
    success_reason: "SecretSynced",
    success_note: "Secret was synced",
};

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

impl LastSync {
    /// What the status records of the last successful sync (none unless `Ready` is `True`).
    fn from_status(object: &ExternalSecret) -> Option<LastSync> {
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
        self.synced
            .lock()
            .ok()
            .and_then(|m| m.get(uid).cloned())
            .filter(|s| s.generation == generation)
            .or_else(|| LastSync::from_status(object))
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

    /// Records a sync that wrote `applied`: counted, no more back-off, remembered; its outcome,
    /// and the next refresh.
    fn synced(
        &self,
        object: &ExternalSecret,
        source: &Source,
        settings: &Settings,
        applied: Secret,
    ) -> (Outcome, Then) {
        self.base.metrics.count_sync(KIND_EXTERNAL_SECRET);
        self.succeeded(&source.uid);
        let secret_rv = applied.metadata.resource_version;
        self.remember(&source.uid, synced_now(object, secret_rv.clone()));
        let interval = settings.refresh_interval();
        let next = match interval.is_zero() {
            true => Next::OnChange,
            false => Next::After(interval),
        };
        let outcome = Outcome::written(reason::SYNCED, "Secret was synced", secret_rv);
        (outcome, Then::Next(next))
    }

    fn succeeded(&self, uid: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(uid);
        }
    }
}

/// Runs the ExternalSecret reconciler, the store status reconcilers and the ClusterExternalSecret
/// reconciler until `stop` (while leading), once the kind is served: an ExternalSecret is reconciled on its changes, on changes of
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
    let owned_secrets =
        owned_secret_triggers(secret_api, OWNER_LABEL, OwnerLabel::Keep, secret_writer);
    let external_ctx = Arc::new(ExternalContext::new(Arc::clone(&ctx), secret_store));
    let controller = lean_controller(api, &ctx);
    // A changed store re-runs the ExternalSecrets that use it.
    let (objects, cluster_objects) = (controller.store(), controller.store());
    let store_api: Api<SecretStore> = match ctx.config.watch_namespace.as_deref() {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let stop = futures::FutureExt::shared(stop);
    let stop_cluster = stop.clone();
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
            store_api,
            watcher::Config::default(),
            move |store: SecretStore| {
                let namespace = store.metadata.namespace.clone();
                users_of(&objects, "SecretStore", namespace, &store.name_any())
            },
        )
        .watches(
            Api::<ClusterSecretStore>::all(ctx.client.clone()),
            watcher::Config::default(),
            move |store: ClusterSecretStore| {
                users_of(
                    &cluster_objects,
                    "ClusterSecretStore",
                    None,
                    &store.name_any(),
                )
            },
        )
        .graceful_shutdown_on(stop)
        .run(supervise::contained(reconcile), error_policy, external_ctx)
        .for_each(log_trigger_error);
    let cluster_external_secrets = super::cluster::run(Arc::clone(&ctx), stop_cluster);
    futures::future::join3(
        external_secrets,
        store_controllers,
        cluster_external_secrets,
    )
    .await;
}

/// The ExternalSecrets that use the store `kind`/`name` (in `namespace`, for a SecretStore).
fn users_of(
    objects: &Store<ExternalSecret>,
    kind: &str,
    namespace: Option<String>,
    name: &str,
) -> Vec<ObjectRef<ExternalSecret>> {
    objects
        .state()
        .into_iter()
        .filter(|es| {
            (namespace.is_none() || es.metadata.namespace == namespace)
                && es
                    .spec
                    .store_refs()
                    .any(|r| r.name == name && r.kind.as_deref().unwrap_or("SecretStore") == kind)
        })
        .map(|es| ObjectRef::from_obj(es.as_ref()))
        .collect()
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

/// How the target Secret is claimed (`spec.target.creationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreationPolicy {
    Owner,
    Merge,
    Orphan,
}

/// What the spec says about the target and the refresh, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    /// `spec.target.name`, else the ExternalSecret's name.
    target_name: String,
    /// `spec.refreshInterval` (zero: once).
    interval: Duration,
    /// `spec.target.creationPolicy`.
    policy: CreationPolicy,
    /// `spec.target.immutable`.
    immutable: bool,
}

impl Settings {
    /// How often to fetch again: never (only on a change) for an immutable Secret.
    fn refresh_interval(&self) -> Duration {
        match self.immutable {
            true => Duration::ZERO,
            false => self.interval,
        }
    }

    /// The settings of `object`, or the `InvalidSpec` outcome that says which field is wrong.
    fn of(object: &ExternalSecret) -> Result<Settings, Outcome> {
        let spec = &object.spec;
        let interval = match spec.refresh_interval.as_deref() {
            None => DEFAULT_REFRESH_INTERVAL,
            Some(text) => parse_period(text).map_err(|message| {
                Outcome::failed(reason::INVALID, format!("spec.refreshInterval: {message}"))
            })?,
        };
        let policy = match spec.target.creation_policy.as_deref() {
            None | Some("Owner") => CreationPolicy::Owner,
            Some("Merge") => CreationPolicy::Merge,
            Some("Orphan") => CreationPolicy::Orphan,
            Some(other) => {
                return Err(Outcome::failed(
                    reason::INVALID,
                    format!("spec.target.creationPolicy: {other:?} (Owner, Merge or Orphan)"),
                ));
            }
        };
        if spec.target.immutable && policy == CreationPolicy::Merge {
            return Err(Outcome::failed(
                reason::INVALID,
                "spec.target.immutable: needs creationPolicy Owner or Orphan (a merged Secret is not this ExternalSecret's)",
            ));
        }
        check_fields(spec).map_err(|message| Outcome::failed(reason::INVALID, message))?;
        let target_name = spec
            .target
            .name
            .clone()
            .unwrap_or_else(|| object.name_any());
        Ok(Settings {
            target_name,
            interval,
            policy,
            immutable: spec.target.immutable,
        })
    }
}

/// Refuses, naming the field, a value of `decodingStrategy`, `conversionStrategy`, `rewrite`,
/// `mergePolicy` or `templateFrom` that cannot be acted on (before any provider call).
fn check_fields(spec: &super::ExternalSecretSpec) -> Result<(), String> {
    for (i, item) in spec.data.iter().enumerate() {
        let at = format!("spec.data[{i}].remoteRef");
        Decoding::parse(item.remote_ref.decoding_strategy.as_deref(), &at)?;
        Conversion::parse(item.remote_ref.conversion_strategy.as_deref(), &at)?;
    }
    for (i, from) in spec.data_from.iter().enumerate() {
        let at = format!("spec.dataFrom[{i}]");
        for (strategies, what) in [
            (
                from.extract
                    .as_ref()
                    .map(|e| (&e.conversion_strategy, &e.decoding_strategy)),
                "extract",
            ),
            (
                from.find
                    .as_ref()
                    .map(|f| (&f.conversion_strategy, &f.decoding_strategy)),
                "find",
            ),
        ] {
            if let Some((conversion, decoding)) = strategies {
                let at = format!("{at}.{what}");
                Conversion::parse(conversion.as_deref(), &at)?;
                Decoding::parse(decoding.as_deref(), &at)?;
            }
        }
        Rewrites::compile(&from.rewrite, &at)?;
    }
    if let Some(template) = &spec.target.template {
        if let Some(other) = template
            .merge_policy
            .as_deref()
            .filter(|p| !matches!(*p, "Replace" | "Merge"))
        {
            return Err(format!(
                "spec.target.template.mergePolicy: {other:?} (Replace or Merge)"
            ));
        }
        super::template_from::check(&template.template_from, "spec.target.template.templateFrom")?;
    }
    Ok(())
}

/// What follows a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// As [`Next`] says.
    Next(Next),
    /// A failed attempt: forget the last good sync (so the retry fetches) and back off.
    Backoff,
}

/// Whether to call the provider now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// The spec changed, a sync was forced, the Secret is gone or altered, or the interval elapsed.
    Due,
    /// Current, and the interval is zero (once): only a change calls the provider again.
    OnChange,
    /// Current until this much time has passed.
    After(Duration),
}

/// Reconciles one ExternalSecret.
pub async fn reconcile(
    object: Arc<ExternalSecret>,
    ctx: Arc<ExternalContext>,
) -> Result<Action, Error> {
    let base = &ctx.base;
    base.metrics.count_reconcile(KIND_EXTERNAL_SECRET);
    let Some(source) = Source::of(object.as_ref())? else {
        return Ok(Action::await_change());
    };
    let settings = match Settings::of(&object) {
        Ok(settings) => settings,
        Err(outcome) => {
            return finish(&object, &ctx, &source, outcome, Then::Next(Next::OnChange)).await;
        }
    };
    let existing =
        target::current_secret(base, &ctx.secrets, &source.namespace, &settings.target_name)
            .await?;
    let last = ctx.last_sync(&object, &source.uid);
    let now = Timestamp::now();
    match refresh(
        &object,
        last.as_ref(),
        existing.as_ref(),
        &source.uid,
        settings.refresh_interval(),
        now,
    ) {
        Refresh::Due => {}
        Refresh::OnChange => return Ok(Action::await_change()),
        Refresh::After(wait) => return Ok(Action::requeue(wait)),
    }
    // An immutable Secret of ours takes no new data: say so, and fetch nothing.
    if settings.immutable
        && let Some(secret) = existing.as_ref()
        && target::owned_by(secret, OWNER_LABEL, &source.uid)
        && is_immutable(base, &source.namespace, &settings.target_name).await?
    {
        return match immutable_outcome(&object, last.as_ref(), &settings.target_name) {
            Some(outcome) => {
                finish(&object, &ctx, &source, outcome, Then::Next(Next::OnChange)).await
            }
            None => Ok(Action::await_change()),
        };
    }
    // Who owns the target, before any provider call.
    let claim = match claim(
        settings.policy,
        existing.as_ref(),
        &source.uid,
        &settings.target_name,
    ) {
        Ok(claim) => claim,
        Err(outcome) => return finish(&object, &ctx, &source, outcome, Then::Backoff).await,
    };
    let rendered = match fetch(&object, &ctx, &source, &settings, existing.as_ref()).await? {
        Ok(rendered) => rendered,
        Err((outcome, then)) => return finish(&object, &ctx, &source, outcome, then).await,
    };
    let desired = desired_secret(&object, &source, &settings, claim, &rendered);
    let (outcome, then) = match desired.apply(base).await? {
        Ok(applied) => {
            crate::restart::roll_out(base, object.as_ref(), &[&desired]).await?;
            ctx.synced(&object, &source, &settings, applied)
        }
        Err(message) => (Outcome::failed(reason::SYNC_ERROR, message), Then::Backoff),
    };
    finish(&object, &ctx, &source, outcome, then).await
}

/// Whether a provider call is due: never while the last sync covers this generation and
/// force-sync value, our Secret still has the version written then, and the interval has not
/// elapsed since (`now`).
fn refresh(
    object: &ExternalSecret,
    last: Option<&LastSync>,
    existing: Option<&PartialObjectMeta<Secret>>,
    uid: &str,
    interval: Duration,
    now: Timestamp,
) -> Refresh {
    let Some(last) = last else {
        return Refresh::Due;
    };
    if last.generation != object.metadata.generation.map(|g| g.to_string())
        || object.annotations().get(FORCE_SYNC_ANNOTATION) != last.force_sync.as_ref()
    {
        return Refresh::Due;
    }
    // The Secret must still be the one we wrote.
    let Some(secret) = existing else {
        return Refresh::Due;
    };
    if secret.metadata.resource_version != last.secret_resource_version
        || secret.labels().get(OWNER_LABEL).map(String::as_str) != Some(uid)
    {
        return Refresh::Due;
    }
    if interval.is_zero() {
        return Refresh::OnChange;
    }
    let Some(refreshed) = last.refreshed else {
        return Refresh::Due;
    };
    let elapsed = Duration::try_from(now.duration_since(refreshed)).unwrap_or(Duration::ZERO);
    match interval.checked_sub(elapsed) {
        Some(wait) => Refresh::After(wait),
        None => Refresh::Due,
    }
}

/// Whether the Secret `name` is immutable (a GET: the metadata cache does not hold the field).
async fn is_immutable(ctx: &Context, namespace: &str, name: &str) -> Result<bool, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    Ok(api
        .get_opt(name)
        .await?
        .is_some_and(|secret| secret.immutable == Some(true)))
}

/// What an ExternalSecret whose immutable Secret cannot be rewritten reports: nothing new when
/// the last sync covered this spec and force-sync value (only the Secret's metadata moved), else
/// `SecretImmutable`: the spec asks for what the Secret will not take.
fn immutable_outcome(
    object: &ExternalSecret,
    last: Option<&LastSync>,
    target_name: &str,
) -> Option<Outcome> {
    let current = last.is_some_and(|last| {
        last.generation == object.metadata.generation.map(|g| g.to_string())
            && object.annotations().get(FORCE_SYNC_ANNOTATION) == last.force_sync.as_ref()
    });
    (!current).then(|| {
        Outcome::failed(
            reason::IMMUTABLE,
            format!(
                "Secret {target_name:?} is immutable (spec.target.immutable) and keeps the values written before this change; delete it to have a new one written"
            ),
        )
    })
}

/// The claim `policy` makes on the target: `Owner` refuses a Secret that is not ours, `Merge`
/// needs an existing one, `Orphan` writes whatever is there without an ownerReference.
fn claim(
    policy: CreationPolicy,
    existing: Option<&PartialObjectMeta<Secret>>,
    uid: &str,
    target_name: &str,
) -> Result<Claim, Outcome> {
    match (policy, existing) {
        (CreationPolicy::Owner, Some(secret)) if !target::owned_by(secret, OWNER_LABEL, uid) => {
            Err(Outcome::failed(
                reason::NOT_OWNED,
                format!(
                    "Secret {target_name:?} exists and is not owned by this ExternalSecret; delete it, or use creationPolicy Merge to merge into it"
                ),
            ))
        }
        (CreationPolicy::Merge, None) => Err(Outcome::failed(
            reason::MISSING,
            format!("creationPolicy Merge: Secret {target_name:?} does not exist"),
        )),
        (CreationPolicy::Owner, _) => Ok(Claim::OWN),
        (CreationPolicy::Orphan, _) => Ok(Claim::OWN.without_owner_reference()),
        (CreationPolicy::Merge, Some(_)) => Ok(Claim::Merge),
    }
}

/// The values of the target Secret: the store and its provider, every remote value, the
/// template. A remote value that is gone with `deletionPolicy: Delete` deletes our Secret.
async fn fetch(
    object: &ExternalSecret,
    ctx: &ExternalContext,
    source: &Source,
    settings: &Settings,
    existing: Option<&PartialObjectMeta<Secret>>,
) -> Result<Result<Rendered, (Outcome, Then)>, Error> {
    let mut stores = Stores::default();
    let fetched = match fetch_values(object, ctx, source, &mut stores).await {
        Ok(values) => values,
        Err(Fetch::Store(err)) => return Ok(Err((store_failure(&err), Then::Backoff))),
        Err(Fetch::Value(store, err)) => {
            return fetch_failed(
                object,
                ctx,
                &stores.0[store].0,
                source,
                settings,
                existing,
                err,
            )
            .await;
        }
    };
    let spec = object.spec.clone();
    let template_from = spec
        .target
        .template
        .as_ref()
        .map_or(&[][..], |t| t.template_from.as_slice());
    let config_maps = match read_config_maps(&ctx.base, &source.namespace, template_from).await? {
        Ok(maps) => maps,
        Err(message) => {
            return Ok(Err((
                Outcome::failed(reason::SYNC_ERROR, message),
                Then::Backoff,
            )));
        }
    };
    // Rewrites and rendering are bounded but may take a while: off the async runtime. Keys and
    // values depend on the remote data (retried with back-off); templates on the spec.
    let rendered = crate::cpu::run(move || {
        let values = shape(&spec, fetched).map_err(|e| (e, Then::Backoff))?;
        let template_spec = spec.target.template.unwrap_or_default();
        let merge = template_spec.merge_policy.as_deref() == Some("Merge");
        template::render(
            values,
            &template_spec.data,
            &template_spec.template_from,
            &config_maps,
            merge,
        )
        .and_then(|mut rendered| {
            rendered.data = template::check_keys(rendered.data)?;
            Ok(rendered)
        })
        .map_err(|e| (e, Then::Next(Next::OnChange)))
    })
    .await
    .ok_or(Error::Task)?;
    Ok(rendered.map_err(|(message, then)| (Outcome::failed(reason::SYNC_ERROR, message), then)))
}

/// The ConfigMaps `templateFrom` names, read from the ExternalSecret's own `namespace` (never
/// another): `Ok(Err(message))` when one is missing.
async fn read_config_maps(
    ctx: &Context,
    namespace: &str,
    template_from: &[super::TemplateFrom],
) -> Result<Result<template::ConfigMaps, String>, Error> {
    let mut maps = template::ConfigMaps::new();
    let names = super::template_from::config_map_names(template_from);
    if names.is_empty() {
        return Ok(Ok(maps));
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    for name in names {
        match api.get_opt(name).await? {
            Some(config_map) => {
                maps.insert(name.to_owned(), config_map.data.unwrap_or_default());
            }
            None => {
                return Ok(Err(format!(
                    "templateFrom: ConfigMap {name:?} not found in namespace {namespace:?}"
                )));
            }
        }
    }
    Ok(Ok(maps))
}

/// The outcome of a store that cannot be used.
fn store_failure(err: &StoreError) -> Outcome {
    Outcome::failed(err.reason(), err.to_string())
}

/// After a failed provider call: forget a provider whose credentials were refused, and delete our
/// Secret when the value is gone and `deletionPolicy: Delete`.
async fn fetch_failed(
    object: &ExternalSecret,
    ctx: &ExternalContext,
    store: &FoundStore,
    source: &Source,
    settings: &Settings,
    existing: Option<&PartialObjectMeta<Secret>>,
    err: FetchError,
) -> Result<Result<Rendered, (Outcome, Then)>, Error> {
    if err.is_unauthorized() {
        ctx.providers.forget(store);
    }
    let delete = object.spec.target.deletion_policy.as_deref() == Some("Delete");
    if !(err.is_not_found() && delete) {
        return Ok(Err((
            Outcome::failed(reason::SYNC_ERROR, err.to_string()),
            Then::Backoff,
        )));
    }
    let ours = existing.filter(|secret| {
        settings.policy != CreationPolicy::Merge
            && target::owned_by(secret, OWNER_LABEL, &source.uid)
    });
    if let Some(secret) = ours {
        delete_secret(&ctx.base, secret, &settings.target_name).await?;
    }
    let message = format!("{err}; the Secret was deleted (deletionPolicy Delete)");
    Ok(Err((
        Outcome::failed(reason::DELETED, message),
        Then::Backoff,
    )))
}

/// Deletes the target Secret (gone already is fine).
async fn delete_secret(
    ctx: &Context,
    secret: &PartialObjectMeta<Secret>,
    name: &str,
) -> Result<(), Error> {
    let api: Api<Secret> = Api::namespaced(
        ctx.client.clone(),
        secret.namespace().as_deref().unwrap_or_default(),
    );
    ctx.metrics.count_write("secret");
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(other) => Err(other.into()),
    }
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

/// Most stores one ExternalSecret may read from (each costs a lookup and, uncached, a login).
pub const MAX_STORES_PER_OBJECT: usize = 16;

/// The stores one reconcile has resolved, with their providers, in the order first named.
#[derive(Default)]
struct Stores(Vec<(FoundStore, Arc<dyn SecretProvider>, SecretStoreRef)>);

/// Why fetching stopped: a store that cannot be used, or a value the store at that index of
/// [`Stores`] did not give.
enum Fetch {
    Store(StoreError),
    Value(usize, FetchError),
}

impl Stores {
    /// The index of the store `reference` names, resolved (and its use checked) on first use.
    async fn resolve(
        &mut self,
        ctx: &ExternalContext,
        namespace: &str,
        reference: &SecretStoreRef,
    ) -> Result<usize, Fetch> {
        if let Some(i) = self.0.iter().position(|(_, _, r)| r == reference) {
            return Ok(i);
        }
        if reference.name.is_empty() {
            return Err(Fetch::Store(StoreError::Invalid(
                "no store: set spec.secretStoreRef, or sourceRef.storeRef on every entry"
                    .to_owned(),
            )));
        }
        let store = find_store(&ctx.base, namespace, reference)
            .await
            .map_err(Fetch::Store)?;
        let provider = ctx
            .providers
            .provider(&ctx.base, &store)
            .await
            .map_err(Fetch::Store)?;
        self.0.push((store, provider, reference.clone()));
        Ok(self.0.len() - 1)
    }
}

/// Fetches every `dataFrom` and then every `data` entry, each from its store, counting each
/// provider call: what each gave, for [`shape`].
async fn fetch_values(
    object: &ExternalSecret,
    ctx: &ExternalContext,
    source: &Source,
    stores: &mut Stores,
) -> Result<Vec<Raw>, Fetch> {
    let spec = &object.spec;
    spec.check_store_count(MAX_STORES_PER_OBJECT)
        .map_err(|e| Fetch::Store(StoreError::Invalid(e)))?;
    let count = |provider: &dyn SecretProvider,
                 operation: &str,
                 result: Result<(), &signet_providers::Error>| {
        let status = match result {
            Ok(()) => "ok",
            Err(e) => e.reason(),
        };
        ctx.base
            .metrics
            .count_provider_call(provider.kind(), operation, status);
    };
    let mut fetched = Vec::new();
    for (entry, from) in spec.data_from.iter().enumerate() {
        if from.extract.is_none() && from.find.is_none() {
            continue;
        }
        let reference = spec.store_for(from.source_ref.as_ref());
        let at = stores.resolve(ctx, &source.namespace, reference).await?;
        let provider = stores.0[at].1.as_ref();
        if let Some(extract) = &from.extract {
            let got = provider.get_all(&remote_ref(extract)).await;
            count(provider, "get_all", got.as_ref().map(|_| ()));
            let all = got.map_err(|error| {
                Fetch::Value(
                    at,
                    FetchError {
                        what: format!("dataFrom.extract {:?}", extract.key),
                        error,
                    },
                )
            })?;
            fetched.push(Raw::From {
                entry,
                find: false,
                values: all.into_iter().collect(),
            });
        }
        if let Some(find) = &from.find {
            let search = signet_providers::Find {
                path: find.path.clone(),
                name: find.name.as_ref().map(|n| n.regexp.clone()),
            };
            let got = provider.find(&search).await;
            count(provider, "find", got.as_ref().map(|_| ()));
            let found = got.map_err(|error| {
                Fetch::Value(
                    at,
                    FetchError {
                        what: format!("dataFrom.find {:?}", search.path.as_deref().unwrap_or("")),
                        error,
                    },
                )
            })?;
            fetched.push(Raw::From {
                entry,
                find: true,
                values: found.into_iter().collect(),
            });
        }
    }
    for (entry, item) in spec.data.iter().enumerate() {
        let reference = spec.store_for(item.source_ref.as_ref());
        let at = stores.resolve(ctx, &source.namespace, reference).await?;
        let provider = stores.0[at].1.as_ref();
        let got = provider.get(&remote_ref(&item.remote_ref)).await;
        count(provider, "get", got.as_ref().map(|_| ()));
        let value = got.map_err(|error| {
            Fetch::Value(
                at,
                FetchError {
                    what: format!("data {:?} (key {:?})", item.secret_key, item.remote_ref.key),
                    error,
                },
            )
        })?;
        fetched.push(Raw::Data { entry, value });
    }
    Ok(fetched)
}

fn remote_ref(spec: &super::RemoteRefSpec) -> RemoteRef {
    RemoteRef {
        key: spec.key.clone(),
        property: spec.property.clone(),
        version: spec.version.clone(),
    }
}

/// The target Secret: the template's metadata and type, the values.
fn desired_secret<'a>(
    object: &ExternalSecret,
    source: &'a Source,
    settings: &'a Settings,
    claim: Claim,
    rendered: &Rendered,
) -> DesiredSecret<'a> {
    let template_spec = object.spec.target.template.clone().unwrap_or_default();
    let metadata = template_spec.metadata.unwrap_or_default();
    // `templateFrom`'s labels and annotations, the template's own over them.
    let mut labels = rendered.labels.clone();
    labels.extend(metadata.labels);
    let mut annotations = rendered.annotations.clone();
    annotations.extend(metadata.annotations);
    DesiredSecret {
        name: &settings.target_name,
        namespace: &source.namespace,
        owner_label: OWNER_LABEL,
        owner_uid: &source.uid,
        owner: target::owner_of(object),
        claim,
        labels,
        annotations,
        type_: template_spec.type_,
        immutable: settings.immutable.then_some(true),
        data_base64: target::base64_values(rendered.data.iter().map(|(k, v)| (k, v.as_slice()))),
    }
}

/// What a sync that wrote `secret_rv` now records.
fn synced_now(object: &ExternalSecret, secret_rv: Option<String>) -> LastSync {
    LastSync {
        generation: object.metadata.generation.map(|g| g.to_string()),
        secret_resource_version: secret_rv,
        refreshed: Some(Timestamp::now()),
        force_sync: object.annotations().get(FORCE_SYNC_ANNOTATION).cloned(),
    }
}

/// Writes the status for `outcome` when it says something new (and its event), and says what
/// comes next.
async fn finish(
    object: &ExternalSecret,
    ctx: &ExternalContext,
    source: &Source,
    outcome: Outcome,
    then: Then,
) -> Result<Action, Error> {
    let update = status_update(object, &outcome, Timestamp::now());
    target::finish(
        &ctx.base,
        KIND_EXTERNAL_SECRET,
        object,
        &outcome,
        update,
        &EVENTS,
    )
    .await?;
    Ok(match then {
        Then::Next(next) => next.action(ctx.base.config.resync_period),
        Then::Backoff => {
            ctx.forget_sync(&source.uid);
            Action::requeue(ctx.backoff(&source.uid))
        }
    })
}

/// The status patch for `outcome`: a sync records when and what it wrote; a failure only a
/// changed condition (the same failure again writes nothing).
fn status_update(
    object: &ExternalSecret,
    outcome: &Outcome,
    now: Timestamp,
) -> Option<StatusUpdate> {
    let old = object.status.clone().unwrap_or_default();
    let (condition, changed) = target::next_condition(old.ready(), READY_CONDITION, outcome);
    let mut patch = json!({ "conditions": [condition] });
    if outcome.succeeded() {
        patch["refreshTime"] = json!(now.to_string());
        patch["syncedResourceVersion"] = json!(object.metadata.generation.map(|g| g.to_string()));
        patch["secretResourceVersion"] = json!(outcome.secret_resource_version);
        patch["forceSync"] = json!(object.annotations().get(FORCE_SYNC_ANNOTATION));
    } else if !changed {
        return None;
    }
    Some(StatusUpdate {
        patch,
        changed: changed.then_some(condition),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::tests::secret_meta;

    fn object(spec: serde_json::Value, annotations: serde_json::Value) -> ExternalSecret {
        serde_json::from_value(json!({
            "apiVersion": "signet.dev/v1alpha1", "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "shop", "uid": "u1", "generation": 4,
                "annotations": annotations},
            "spec": spec,
        }))
        .unwrap()
    }

    fn spec(target: serde_json::Value) -> serde_json::Value {
        json!({"secretStoreRef": {"name": "vault"}, "target": target})
    }

    #[test]
    fn settings_default_and_refuse_what_cannot_be_acted_on() {
        let settings = Settings::of(&object(spec(json!({})), json!({}))).unwrap();
        assert_eq!(
            settings,
            Settings {
                target_name: "db".into(),
                interval: DEFAULT_REFRESH_INTERVAL,
                policy: CreationPolicy::Owner,
                immutable: false,
            }
        );
        let mut named = spec(json!({"name": "db-creds", "creationPolicy": "Orphan"}));
        named["refreshInterval"] = json!("15s");
        let settings = Settings::of(&object(named, json!({}))).unwrap();
        assert_eq!(settings.target_name, "db-creds");
        assert_eq!(settings.interval, Duration::from_secs(15));
        assert_eq!(settings.policy, CreationPolicy::Orphan);
        let bad =
            Settings::of(&object(spec(json!({"creationPolicy": "Steal"})), json!({}))).unwrap_err();
        assert_eq!(bad.reason, reason::INVALID);
        assert!(
            bad.message
                .starts_with("spec.target.creationPolicy: \"Steal\"")
        );
        let mut bad_interval = spec(json!({}));
        bad_interval["refreshInterval"] = json!("soon");
        let bad = Settings::of(&object(bad_interval, json!({}))).unwrap_err();
        assert_eq!(bad.reason, reason::INVALID);
        assert!(bad.message.starts_with("spec.refreshInterval: "));
    }

    /// Unknown strategies, bad rewrites and templateFrom sources Signet does not read are refused
    /// before any provider call, naming the field.
    #[test]
    fn settings_refuse_unknown_strategies_rewrites_and_template_sources() {
        let invalid = |extra: serde_json::Value| {
            let mut s = spec(json!({}));
            for (k, v) in extra.as_object().unwrap() {
                s[k] = v.clone();
            }
            let outcome = Settings::of(&object(s, json!({}))).unwrap_err();
            assert_eq!(outcome.reason, reason::INVALID);
            outcome.message
        };
        let data =
            |remote: serde_json::Value| json!({"data": [{"secretKey": "a", "remoteRef": remote}]});
        assert_eq!(
            invalid(data(json!({"key": "k", "decodingStrategy": "Foo"}))),
            "spec.data[0].remoteRef.decodingStrategy: \"Foo\" (None, Base64, Base64URL or Auto)"
        );
        assert!(
            invalid(data(json!({"key": "k", "conversionStrategy": "Ascii"})))
                .starts_with("spec.data[0].remoteRef.conversionStrategy: \"Ascii\"")
        );
        assert!(
            invalid(json!({"dataFrom": [{"find": {"decodingStrategy": "hex"}}]}))
                .starts_with("spec.dataFrom[0].find.decodingStrategy: ")
        );
        assert!(
            invalid(json!({"dataFrom": [{"extract": {"key": "k", "conversionStrategy": "x"}}]}))
                .starts_with("spec.dataFrom[0].extract.conversionStrategy: ")
        );
        assert!(
            invalid(json!({"dataFrom": [{"extract": {"key": "k"}, "rewrite": [{"regexp": {"source": "(", "target": ""}}]}]}))
                .starts_with("spec.dataFrom[0].rewrite[0].regexp.source: ")
        );
        assert!(
            invalid(json!({"dataFrom": [{"extract": {"key": "k"}, "rewrite": [{}]}]}))
                .contains("exactly one of regexp and transform")
        );
        let target = |t: serde_json::Value| json!({"target": t});
        assert!(
            invalid(target(
                json!({"template": {"templateFrom": [{"secret": {"name": "c"}}]}})
            ))
            .starts_with("spec.target.template.templateFrom[0].secret: ")
        );
        assert!(
            invalid(target(
                json!({"template": {"templateFrom": [{"configMap": {"name": "c"}}]}})
            ))
            .starts_with("spec.target.template.templateFrom[0].configMap.items: ")
        );
        assert!(
            invalid(target(json!({"template": {"mergePolicy": "Both"}})))
                .starts_with("spec.target.template.mergePolicy: \"Both\"")
        );
        assert!(
            invalid(target(
                json!({"immutable": true, "creationPolicy": "Merge"})
            ))
            .starts_with("spec.target.immutable: needs creationPolicy Owner or Orphan")
        );
        // The same fields with known values are accepted.
        let mut fine =
            spec(json!({"immutable": true, "template": {"templateFrom": [{"literal": "a: b"}]}}));
        fine["data"] =
            json!([{"secretKey": "a", "remoteRef": {"key": "k", "decodingStrategy": "Auto"}}]);
        fine["dataFrom"] = json!([{"find": {"conversionStrategy": "Unicode", "decodingStrategy": "Base64URL"},
            "rewrite": [{"transform": {"template": "{{ .value }}"}}]}]);
        let settings = Settings::of(&object(fine, json!({}))).unwrap();
        assert!(settings.immutable);
        assert_eq!(settings.refresh_interval(), Duration::ZERO);
    }

    #[test]
    fn an_immutable_secret_reports_a_spec_it_cannot_take_and_nothing_else() {
        let es = object(spec(json!({"immutable": true})), json!({}));
        let current = LastSync {
            generation: Some("4".into()),
            secret_resource_version: Some("5".into()),
            refreshed: None,
            force_sync: None,
        };
        assert_eq!(immutable_outcome(&es, Some(&current), "db"), None);
        let older = LastSync {
            generation: Some("3".into()),
            ..current.clone()
        };
        let outcome = immutable_outcome(&es, Some(&older), "db").unwrap();
        assert_eq!(outcome.reason, reason::IMMUTABLE);
        assert!(outcome.message.starts_with("Secret \"db\" is immutable"));
        assert!(immutable_outcome(&es, None, "db").is_some());
        let forced = object(
            spec(json!({"immutable": true})),
            json!({FORCE_SYNC_ANNOTATION: "2"}),
        );
        assert!(immutable_outcome(&forced, Some(&current), "db").is_some());
    }

    #[test]
    fn the_desired_secret_is_immutable_and_carries_template_from_metadata() {
        let es = object(
            spec(
                json!({"immutable": true, "template": {"metadata": {"labels": {"team": "spec"}}}}),
            ),
            json!({}),
        );
        let settings = Settings::of(&es).unwrap();
        let source = Source::of(&es).unwrap().unwrap();
        let rendered = Rendered {
            data: [("k".to_owned(), zeroize::Zeroizing::new(b"v".to_vec()))].into(),
            labels: [
                ("team".to_owned(), "from".to_owned()),
                ("tier".to_owned(), "1".to_owned()),
            ]
            .into(),
            annotations: [("note".to_owned(), "n".to_owned())].into(),
        };
        let desired = desired_secret(&es, &source, &settings, Claim::OWN, &rendered);
        let body = desired.body();
        assert_eq!(body["immutable"], true);
        assert_eq!(body["metadata"]["labels"]["team"], "spec");
        assert_eq!(body["metadata"]["labels"]["tier"], "1");
        assert_eq!(body["metadata"]["annotations"]["note"], "n");
        assert_eq!(body["data"]["k"], "dg==");
        let mutable = object(spec(json!({})), json!({}));
        let settings = Settings::of(&mutable).unwrap();
        let desired = desired_secret(&mutable, &source, &settings, Claim::OWN, &rendered);
        assert!(desired.body().get("immutable").is_none());
    }

    #[test]
    fn a_refresh_is_due_only_when_something_changed_or_the_interval_elapsed() {
        let es = object(spec(json!({})), json!({FORCE_SYNC_ANNOTATION: "1"}));
        let ours = secret_meta(json!({"resourceVersion": "5", "labels": {OWNER_LABEL: "u1"}}));
        let then: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let last = LastSync {
            generation: Some("4".into()),
            secret_resource_version: Some("5".into()),
            refreshed: Some(then),
            force_sync: Some("1".into()),
        };
        let hour = Duration::from_secs(3600);
        let at = |secs: i64| then + k8s_openapi::jiff::SignedDuration::from_secs(secs);
        let due = |last: Option<&LastSync>, secret: Option<&PartialObjectMeta<Secret>>, now| {
            refresh(&es, last, secret, "u1", hour, now)
        };
        assert_eq!(
            due(Some(&last), Some(&ours), at(600)),
            Refresh::After(Duration::from_secs(3000))
        );
        assert_eq!(
            due(Some(&last), Some(&ours), at(3600)),
            Refresh::After(Duration::ZERO)
        );
        assert_eq!(due(Some(&last), Some(&ours), at(3601)), Refresh::Due);
        assert_eq!(due(None, Some(&ours), at(1)), Refresh::Due);
        assert_eq!(due(Some(&last), None, at(1)), Refresh::Due);
        let altered = secret_meta(json!({"resourceVersion": "6", "labels": {OWNER_LABEL: "u1"}}));
        assert_eq!(due(Some(&last), Some(&altered), at(1)), Refresh::Due);
        let taken = secret_meta(json!({"resourceVersion": "5", "labels": {OWNER_LABEL: "u2"}}));
        assert_eq!(due(Some(&last), Some(&taken), at(1)), Refresh::Due);
        let older_spec = LastSync {
            generation: Some("3".into()),
            ..last.clone()
        };
        assert_eq!(due(Some(&older_spec), Some(&ours), at(1)), Refresh::Due);
        let before_force = LastSync {
            force_sync: None,
            ..last.clone()
        };
        assert_eq!(due(Some(&before_force), Some(&ours), at(1)), Refresh::Due);
        let never = LastSync {
            refreshed: None,
            ..last.clone()
        };
        assert_eq!(due(Some(&never), Some(&ours), at(1)), Refresh::Due);
        assert_eq!(
            refresh(
                &es,
                Some(&last),
                Some(&ours),
                "u1",
                Duration::ZERO,
                at(99_999)
            ),
            Refresh::OnChange
        );
    }

    #[test]
    fn the_creation_policy_decides_the_claim() {
        let ours = secret_meta(json!({"labels": {OWNER_LABEL: "u1"}}));
        let foreign = secret_meta(json!({"labels": {"app": "x"}}));
        use CreationPolicy::*;
        assert_eq!(claim(Owner, None, "u1", "t"), Ok(Claim::OWN));
        assert_eq!(claim(Owner, Some(&ours), "u1", "t"), Ok(Claim::OWN));
        let refused = claim(Owner, Some(&foreign), "u1", "t").unwrap_err();
        assert_eq!(refused.reason, reason::NOT_OWNED);
        assert!(
            refused
                .message
                .starts_with("Secret \"t\" exists and is not owned")
        );
        assert_eq!(claim(Merge, Some(&foreign), "u1", "t"), Ok(Claim::Merge));
        assert_eq!(
            claim(Merge, None, "u1", "t").unwrap_err().reason,
            reason::MISSING
        );
        let orphan = Claim::Own {
            owner_reference: false,
        };
        assert_eq!(claim(Orphan, None, "u1", "t"), Ok(orphan));
        assert_eq!(claim(Orphan, Some(&foreign), "u1", "t"), Ok(orphan));
    }

    #[test]
    fn the_status_records_a_sync_and_only_new_failures() {
        let mut es = object(spec(json!({})), json!({FORCE_SYNC_ANNOTATION: "2"}));
        let now: Timestamp = "2026-02-03T04:05:06Z".parse().unwrap();
        let synced = Outcome::written(reason::SYNCED, "Secret was synced", Some("8".into()));
        let update = status_update(&es, &synced, now).unwrap();
        assert_eq!(update.patch["refreshTime"], now.to_string());
        assert_eq!(update.patch["syncedResourceVersion"], "4");
        assert_eq!(update.patch["secretResourceVersion"], "8");
        assert_eq!(update.patch["forceSync"], "2");
        assert_eq!(update.changed.as_ref().unwrap().status, "True");
        // A sync is recorded even when the condition stays (the refresh time moves).
        es.status =
            serde_json::from_value(json!({"conditions": [update.patch["conditions"][0]]})).unwrap();
        let again = status_update(&es, &synced, now).unwrap();
        assert_eq!(again.changed, None);
        // A failure records only a changed condition.
        let failed = Outcome::failed(reason::SYNC_ERROR, "gone");
        let update = status_update(&es, &failed, now).unwrap();
        assert!(update.patch.get("refreshTime").is_none());
        es.status =
            serde_json::from_value(json!({"conditions": [update.patch["conditions"][0]]})).unwrap();
        assert_eq!(status_update(&es, &failed, now), None);
    }

    #[test]
    fn the_remembered_sync_wins_over_a_lagging_status_of_the_same_generation() {
        let mut es = object(spec(json!({})), json!({}));
        es.status = serde_json::from_value(json!({
            "conditions": [{"type": "Ready", "status": "True"}],
            "syncedResourceVersion": "4", "secretResourceVersion": "5",
            "refreshTime": "2026-01-01T00:00:00Z"}))
        .unwrap();
        let from_status = LastSync::from_status(&es).unwrap();
        assert_eq!(from_status.secret_resource_version.as_deref(), Some("5"));
        assert!(from_status.refreshed.is_some());
        es.status = serde_json::from_value(json!({
            "conditions": [{"type": "Ready", "status": "False"}],
            "syncedResourceVersion": "4", "secretResourceVersion": "5"}))
        .unwrap();
        assert_eq!(LastSync::from_status(&es), None);
    }
}
