//! ClusterExternalSecret (cluster-scoped, External Secrets Operator's shape): one ExternalSecret
//! per selected namespace, owned by the ClusterExternalSecret through an ownerReference (the
//! garbage collector removes them with it), removed from namespaces that leave the selection.
//!
//! What it never does: put a finalizer on anything (a namespace being deleted must finish, ESO
//! #6677), create into a namespace being deleted, or touch an ExternalSecret of the same name it
//! does not own. The ExternalSecrets it makes are ordinary ones: the ExternalSecret reconciler
//! applies the same store policy to them as to a tenant's own, so a ClusterExternalSecret reaches
//! no store a namespaced ExternalSecret there could not.
//!
//! A reconcile reads plan ([`Plan::of`]) → select ([`select`], pure) → write → prune → status.
//! It runs only in a controller that watches every namespace.

use super::reconcile::KIND_EXTERNAL_SECRET;
use super::{ExternalSecret, ExternalSecretSpec, READY_CONDITION, TemplateMetadata};
use crate::config::parse_period;
use crate::context::Context;
use crate::runtime::{lean_controller, log_trigger_error, trim_for_cache, wait_until_served};
use crate::target::{self, ConditionEvents, Outcome};
use crate::{Error, FIELD_MANAGER, supervise};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use kube::api::{
    Api, DeleteParams, PartialObjectMeta, Patch, PatchParams, PostParams, Preconditions,
};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{CustomResource, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Kind name in metrics labels.
pub const KIND_CLUSTER_EXTERNAL_SECRET: &str = "ClusterExternalSecret";
/// Label on every ExternalSecret made from a ClusterExternalSecret: the ClusterExternalSecret's uid.
pub const OWNER_LABEL: &str = "signet.dev/cluster-external-secret-uid";
/// How often the selection is evaluated again when `spec.refreshTime` gives nothing.
pub const DEFAULT_REFRESH_TIME: Duration = Duration::from_secs(60);
/// The shortest `spec.refreshTime` (besides `0`).
pub const MIN_REFRESH_TIME: Duration = Duration::from_secs(10);
/// At most this many namespaces per ClusterExternalSecret; more is refused as a whole.
pub const MAX_NAMESPACES: usize = 10_000;
/// At most this many failed namespaces are listed in the status (the condition counts them all).
pub const MAX_LISTED_FAILURES: usize = 100;
/// When a namespace failed for a reason that may pass (not a refusal), the next try.
const RETRY_SOON: Duration = Duration::from_secs(30);
/// ExternalSecrets written at once by one reconcile (in batches).
const WRITE_CONCURRENCY: usize = 8;

/// `spec` of a ClusterExternalSecret.
#[derive(CustomResource, Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "signet.dev",
    version = "v1alpha1",
    kind = "ClusterExternalSecret",
    status = "ClusterExternalSecretStatus",
    shortname = "ces",
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.externalSecretSpec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh","type":"string","jsonPath":".spec.refreshTime"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretSpec {
    /// The spec of every ExternalSecret made.
    pub external_secret_spec: ExternalSecretSpec,
    /// Their name (default: the ClusterExternalSecret's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub external_secret_name: Option<String>,
    /// Their labels and annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_metadata: Option<TemplateMetadata>,
    /// Namespaces matching any of these selectors are selected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub namespace_selectors: Vec<NamespaceSelector>,
    /// Namespaces selected by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000))]
    pub namespaces: Vec<String>,
    /// How often the namespaces are selected again (default `1m`; `0` = only on changes; at
    /// most `3650d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|([0-9]+(ms|s|m|h|d))+)$"), length(max = 32))]
    pub refresh_time: Option<String>,
}

/// A label selector over namespaces (`matchLabels` and `matchExpressions`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Every label must be present with this value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Every expression must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub match_expressions: Vec<SelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values (`In` and `NotIn` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub values: Option<Vec<String>>,
}

/// `status` of a ClusterExternalSecret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretStatus {
    /// One condition, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::conditions_schema")]
    pub conditions: Vec<target::Condition>,
    /// The namespaces whose ExternalSecret is in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioned_namespaces: Vec<String>,
    /// Selected namespaces without their ExternalSecret, and why (at most
    /// [`MAX_LISTED_FAILURES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<FailedNamespace>,
}

/// A selected namespace without its ExternalSecret.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct FailedNamespace {
    /// The namespace.
    pub namespace: String,
    /// Why.
    pub reason: String,
}

/// Condition reasons.
pub mod reason {
    /// Every selected namespace has its ExternalSecret.
    pub const PROVISIONED: &str = "Provisioned";
    /// Some selected namespaces do not (`status.failedNamespaces` says why).
    pub const NOT_ALL_PROVISIONED: &str = "NotAllProvisioned";
    /// The spec cannot be acted on (nothing was created or deleted).
    pub const INVALID: &str = "InvalidSpec";
}

/// Why a selected namespace has no ExternalSecret of ours.
pub const NOT_OWNED: &str = "exists and is not owned by this ClusterExternalSecret";
/// A namespace being deleted gets nothing (creating there would be refused anyway).
pub const TERMINATING: &str = "namespace is being deleted";

const EVENTS: ConditionEvents = ConditionEvents {
    action: "Provision",
    success_reason: reason::PROVISIONED,
    success_note: "ExternalSecrets provisioned",
};

/// What the spec says, once validated.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Name of every ExternalSecret.
    pub name: String,
    /// How often to select again (zero: only on changes).
    pub refresh: Duration,
    selectors: Vec<Selector>,
    names: BTreeSet<String>,
}

impl Plan {
    /// The plan of `object`, or a message naming the field that is wrong.
    pub fn of(object: &ClusterExternalSecret) -> Result<Plan, String> {
        let spec = &object.spec;
        let refresh = match spec.refresh_time.as_deref() {
            None => DEFAULT_REFRESH_TIME,
            Some(text) => parse_period(text).map_err(|e| format!("spec.refreshTime: {e}"))?,
        };
        if !refresh.is_zero() && refresh < MIN_REFRESH_TIME {
            return Err(format!(
                "spec.refreshTime: {:?} is shorter than {}s (each evaluation looks at every namespace)",
                spec.refresh_time.as_deref().unwrap_or_default(),
                MIN_REFRESH_TIME.as_secs()
            ));
        }
        let name = spec
            .external_secret_name
            .clone()
            .unwrap_or_else(|| object.name_any());
        if !is_dns_subdomain(&name) {
            return Err(format!(
                "spec.externalSecretName: {name:?} is not a valid object name"
            ));
        }
        let selectors = spec
            .namespace_selectors
            .iter()
            .enumerate()
            .map(|(i, s)| selector(s).map_err(|e| format!("spec.namespaceSelectors[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if spec.namespaces.len() > MAX_NAMESPACES {
            return Err(too_many(spec.namespaces.len()));
        }
        Ok(Plan {
            name,
            refresh,
            selectors,
            names: spec.namespaces.iter().cloned().collect(),
        })
    }
}

fn too_many(count: usize) -> String {
    format!("{count} namespaces selected; at most {MAX_NAMESPACES} per ClusterExternalSecret")
}

/// A Kubernetes object name (RFC 1123 subdomain).
fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// A selector as the API server reads it: an unknown operator, values on `Exists` or
/// `DoesNotExist`, or none on `In`/`NotIn` is an error.
fn selector(spec: &NamespaceSelector) -> Result<Selector, String> {
    for (i, e) in spec.match_expressions.iter().enumerate() {
        let has_values = e.values.as_ref().is_some_and(|v| !v.is_empty());
        let ok = match e.operator.as_str() {
            "In" | "NotIn" => has_values,
            "Exists" | "DoesNotExist" => !has_values,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "matchExpressions[{i}]: operator {:?} with {} values (In/NotIn need values, Exists/DoesNotExist none)",
                e.operator,
                e.values.as_ref().map_or(0, Vec::len)
            ));
        }
    }
    let label_selector = meta::LabelSelector {
        match_labels: Some(spec.match_labels.clone()),
        match_expressions: Some(
            spec.match_expressions
                .iter()
                .map(|e| meta::LabelSelectorRequirement {
                    key: e.key.clone(),
                    operator: e.operator.clone(),
                    values: e.values.clone(),
                })
                .collect(),
        ),
    };
    Selector::try_from(label_selector).map_err(|e| e.0)
}

/// A namespace as the selection sees it.
#[derive(Debug, Clone, Copy)]
pub struct NamespaceView<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Whether it is being deleted.
    pub terminating: bool,
}

/// Which namespaces a plan selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Selected and live: each gets the ExternalSecret.
    pub targets: BTreeSet<String>,
    /// Selected but being deleted: nothing is created there, nothing deleted.
    pub terminating: BTreeSet<String>,
}

/// The namespaces `plan` selects among `namespaces` (a name listed in `spec.namespaces` selects
/// only an existing namespace), or an error when that is more than [`MAX_NAMESPACES`].
pub fn select<'a>(
    plan: &Plan,
    namespaces: impl IntoIterator<Item = NamespaceView<'a>>,
) -> Result<Selection, String> {
    let mut selection = Selection::default();
    for ns in namespaces {
        let selected =
            plan.names.contains(ns.name) || plan.selectors.iter().any(|s| s.matches(ns.labels));
        if !selected {
            continue;
        }
        match ns.terminating {
            true => selection.terminating.insert(ns.name.to_owned()),
            false => selection.targets.insert(ns.name.to_owned()),
        };
        if selection.targets.len() + selection.terminating.len() > MAX_NAMESPACES {
            return Err(format!(
                "more than {MAX_NAMESPACES} namespaces selected; at most {MAX_NAMESPACES} per ClusterExternalSecret"
            ));
        }
    }
    Ok(selection)
}

/// What the reconciler needs besides the shared context.
pub struct ClusterContext {
    base: Arc<Context>,
    /// Metadata of every namespace.
    namespaces: Store<PartialObjectMeta<Namespace>>,
    /// Metadata of the ExternalSecrets carrying [`OWNER_LABEL`].
    owned: Store<PartialObjectMeta<ExternalSecret>>,
    /// What was last written, by ExternalSecret uid: its generation after the write and the hash
    /// of what was written. An ExternalSecret whose generation and desired hash match is current.
    written: Mutex<HashMap<String, (i64, u64)>>,
}

/// Runs the ClusterExternalSecret reconciler until `stop`, once the kind is served, in a controller
/// that watches every namespace (a namespace-bound controller has no business in others).
pub(crate) async fn run(
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    if ctx.config.watch_namespace.is_some() {
        return;
    }
    let mut stop = Box::pin(stop);
    let api: Api<ClusterExternalSecret> = Api::all(ctx.client.clone());
    if !wait_until_served(api.clone(), &mut stop).await {
        return;
    }
    let (namespaces, namespace_writer) = reflector::store();
    let (owned, owned_writer) = reflector::store();
    let namespace_events = watcher(
        Api::<PartialObjectMeta<Namespace>>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(trim_for_cache)
    .reflect(namespace_writer)
    .touched_objects();
    let owned_events = watcher(
        Api::<PartialObjectMeta<ExternalSecret>>::all(ctx.client.clone()),
        watcher::Config::default().labels(OWNER_LABEL),
    )
    .default_backoff()
    .modify(trim_for_cache)
    .reflect(owned_writer)
    .touched_objects();
    let cluster_ctx = Arc::new(ClusterContext {
        base: Arc::clone(&ctx),
        namespaces,
        owned,
        written: Mutex::new(HashMap::new()),
    });
    let controller = lean_controller(api, &ctx);
    let every = controller.store();
    controller
        // A namespace that appears, changes labels or starts terminating: every
        // ClusterExternalSecret looks again (there are few; each looks up its selection in memory).
        .watches_stream(namespace_events, move |_: PartialObjectMeta<Namespace>| {
            every
                .state()
                .iter()
                .map(|ces| ObjectRef::from_obj(ces.as_ref()))
                .collect::<Vec<_>>()
        })
        // An ExternalSecret of ours changed or was deleted: put it back.
        .watches_stream(owned_events, |es: PartialObjectMeta<ExternalSecret>| {
            es.owner_references()
                .iter()
                .find(|o| o.kind == KIND_CLUSTER_EXTERNAL_SECRET)
                .map(|o| ObjectRef::<ClusterExternalSecret>::new(&o.name))
        })
        .graceful_shutdown_on(stop)
        .run(supervise::contained(reconcile), error_policy, cluster_ctx)
        .for_each(log_trigger_error)
        .await;
}

/// Reconciles one ClusterExternalSecret.
pub async fn reconcile(
    object: Arc<ClusterExternalSecret>,
    ctx: Arc<ClusterContext>,
) -> Result<Action, Error> {
    let base = &ctx.base;
    base.metrics.count_reconcile(KIND_CLUSTER_EXTERNAL_SECRET);
    if object.metadata.deletion_timestamp.is_some() {
        // The garbage collector removes its ExternalSecrets.
        return Ok(Action::await_change());
    }
    let uid = object
        .metadata
        .uid
        .clone()
        .ok_or(Error::MissingField("metadata.uid"))?;
    let plan = match Plan::of(&object) {
        Ok(plan) => plan,
        Err(message) => return refuse(&object, &ctx, message).await,
    };
    // An empty cache would look like an empty selection and prune everything.
    let (Ok(()), Ok(())) = futures::join!(
        ctx.namespaces.wait_until_ready(),
        ctx.owned.wait_until_ready()
    ) else {
        return Ok(Action::requeue(Duration::from_secs(5)));
    };
    let namespaces = ctx.namespaces.state();
    let selection = select(
        &plan,
        namespaces.iter().map(|ns| NamespaceView {
            name: ns.metadata.name.as_deref().unwrap_or_default(),
            labels: ns.labels(),
            terminating: ns.metadata.deletion_timestamp.is_some(),
        }),
    );
    let selection = match selection {
        Ok(selection) => selection,
        Err(message) => return refuse(&object, &ctx, message).await,
    };
    let body = desired_body(&object, &uid);
    let hash = hash_of(&body);
    let mut provisioned = Vec::new();
    let mut failed = Vec::new();
    let mut retry_soon = false;
    let targets: Vec<&String> = selection.targets.iter().collect();
    for batch in targets.chunks(WRITE_CONCURRENCY) {
        let results = futures::future::join_all(
            batch
                .iter()
                .map(|namespace| provide(&ctx, &plan, &uid, namespace, &body, hash)),
        )
        .await;
        for (namespace, result) in batch.iter().zip(results) {
            let reason = match result {
                Ok(Ok(())) => {
                    provisioned.push(namespace.to_string());
                    continue;
                }
                Ok(Err(reason)) => reason,
                // One namespace's trouble (a webhook, a timeout) is its own: the others go on,
                // and it is tried again soon.
                Err(err) => {
                    retry_soon = true;
                    err.to_string()
                }
            };
            failed.push(FailedNamespace {
                namespace: namespace.to_string(),
                reason,
            });
        }
    }
    failed.extend(
        selection
            .terminating
            .iter()
            .map(|namespace| FailedNamespace {
                namespace: namespace.clone(),
                reason: TERMINATING.to_owned(),
            }),
    );
    prune(&ctx, &uid, &plan.name, &selection).await?;
    let outcome = summarize(&plan.name, &mut provisioned, &mut failed);
    write_status(&object, &ctx, &outcome, provisioned, failed).await?;
    Ok(match (retry_soon, plan.refresh.is_zero()) {
        (true, true) => Action::requeue(RETRY_SOON),
        (true, false) => Action::requeue(RETRY_SOON.min(plan.refresh)),
        (false, true) => Action::await_change(),
        (false, false) => Action::requeue(plan.refresh),
    })
}

/// The `Ready` outcome of a reconcile that provisioned `provisioned` and failed `failed` (both
/// sorted after; `failed` cut to the first [`MAX_LISTED_FAILURES`], the message counts them all, so
/// the status stays small whatever the fan-out).
fn summarize(name: &str, provisioned: &mut [String], failed: &mut Vec<FailedNamespace>) -> Outcome {
    provisioned.sort();
    failed.sort();
    let outcome = match failed.len() {
        0 => Outcome::written(
            reason::PROVISIONED,
            format!(
                "ExternalSecret {name:?} in {} namespaces",
                provisioned.len()
            ),
            None,
        ),
        n => Outcome::failed(
            reason::NOT_ALL_PROVISIONED,
            format!(
                "{n} of {} selected namespaces have no ExternalSecret {name:?} (status.failedNamespaces)",
                n + provisioned.len(),
            ),
        ),
    };
    failed.truncate(MAX_LISTED_FAILURES);
    outcome
}

/// Puts the ExternalSecret into `namespace`: `Ok(Err(reason))` when that namespace failed (an
/// ExternalSecret of the name that is not ours, a refusal of the API server).
async fn provide(
    ctx: &ClusterContext,
    plan: &Plan,
    uid: &str,
    namespace: &str,
    body: &serde_json::Value,
    hash: u64,
) -> Result<Result<(), String>, Error> {
    let reference = ObjectRef::new(&plan.name).within(namespace);
    let cached = ctx.owned.get(&reference);
    if let Some(es) = &cached {
        if !owned_by(&es.metadata, uid) {
            return Ok(Err(NOT_OWNED.to_owned()));
        }
        let current = ctx
            .written
            .lock()
            .ok()
            .and_then(|w| w.get(es.metadata.uid.as_deref()?).copied());
        if current.is_some() && current == es.metadata.generation.map(|g| (g, hash)) {
            return Ok(Ok(()));
        }
    }
    let api: Api<ExternalSecret> = Api::namespaced(ctx.base.client.clone(), namespace);
    let mut body = body.clone();
    body["metadata"]["name"] = json!(plan.name);
    body["metadata"]["namespace"] = json!(namespace);
    let desired: ExternalSecret = serde_json::from_value(body).map_err(|_| Error::Task)?;
    let written = match cached {
        // Create, not apply: an ExternalSecret someone else made in the meantime is refused
        // (409), never taken over.
        None => match create(ctx, &api, &desired).await {
            // Ours after all (the cache lags behind our own create), or someone else's.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                update(ctx, &api, &desired, uid).await
            }
            other => other.map(Some),
        },
        Some(_) => update(ctx, &api, &desired, uid).await,
    };
    let written = match written {
        Ok(None) => return Ok(Err(NOT_OWNED.to_owned())),
        Ok(Some(es)) => Ok(es),
        Err(err) => Err(err),
    };
    match written {
        Ok(es) => {
            if let (Some(es_uid), Some(generation), Ok(mut w)) =
                (es.metadata.uid, es.metadata.generation, ctx.written.lock())
            {
                w.insert(es_uid, (generation, hash));
            }
            Ok(Ok(()))
        }
        Err(kube::Error::Api(status))
            if (400..500).contains(&status.code) && status.code != 429 =>
        {
            Ok(Err(format!(
                "the API server refused the ExternalSecret: {}",
                status.message
            )))
        }
        Err(other) => Err(other.into()),
    }
}

/// Whether `meta` is of an object this ClusterExternalSecret made (its label or its ownerReference).
fn owned_by(meta: &kube::api::ObjectMeta, uid: &str) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(OWNER_LABEL))
        .map(String::as_str)
        == Some(uid)
        || meta.owner_references.iter().flatten().any(|o| o.uid == uid)
}

fn write_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

async fn create(
    ctx: &ClusterContext,
    api: &Api<ExternalSecret>,
    desired: &ExternalSecret,
) -> kube::Result<ExternalSecret> {
    ctx.base.metrics.count_write("externalsecret");
    api.create(&write_params(), desired).await
}

/// Brings our ExternalSecret to `desired`: its spec and owner replaced, our labels and annotations
/// set (a read, and a write only when something differs; a whole-object update, so a field the
/// spec no longer has goes). `None` when the object of that name is not ours.
async fn update(
    ctx: &ClusterContext,
    api: &Api<ExternalSecret>,
    desired: &ExternalSecret,
    uid: &str,
) -> kube::Result<Option<ExternalSecret>> {
    let name = desired.name_any();
    let Some(mut current) = api.get_opt(&name).await? else {
        return create(ctx, api, desired).await.map(Some);
    };
    if !owned_by(&current.metadata, uid) {
        return Ok(None);
    }
    let same_spec =
        serde_json::to_value(&current.spec).ok() == serde_json::to_value(&desired.spec).ok();
    let contains = |have: &Option<BTreeMap<String, String>>,
                    want: &Option<BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    let meta = &desired.metadata;
    if same_spec
        && contains(&current.metadata.labels, &meta.labels)
        && contains(&current.metadata.annotations, &meta.annotations)
        && current.metadata.owner_references == meta.owner_references
    {
        return Ok(Some(current));
    }
    current.spec = desired.spec.clone();
    current.metadata.owner_references = meta.owner_references.clone();
    current.metadata.managed_fields = None;
    for (have, want) in [
        (&mut current.metadata.labels, &meta.labels),
        (&mut current.metadata.annotations, &meta.annotations),
    ] {
        have.get_or_insert_default()
            .extend(want.iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
    }
    ctx.base.metrics.count_write("externalsecret");
    api.replace(&name, &write_params(), &current)
        .await
        .map(Some)
}

/// Deletes our ExternalSecrets that are no longer wanted: in a namespace that left the selection
/// (not one being deleted: its deletion takes them), or under a name no longer used.
async fn prune(
    ctx: &ClusterContext,
    uid: &str,
    name: &str,
    selection: &Selection,
) -> Result<(), Error> {
    for es in ctx.owned.state() {
        if es.labels().get(OWNER_LABEL).map(String::as_str) != Some(uid) {
            continue;
        }
        let namespace = es.metadata.namespace.clone().unwrap_or_default();
        let wanted = selection.targets.contains(&namespace) && es.name_any() == name;
        if wanted || selection.terminating.contains(&namespace) {
            continue;
        }
        let api: Api<ExternalSecret> = Api::namespaced(ctx.base.client.clone(), &namespace);
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: es.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        ctx.base.metrics.count_write("externalsecret");
        match api.delete(&es.name_any(), &params).await {
            Ok(_) => {}
            // Gone already, or replaced by another object of that name (precondition failed).
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(other) => return Err(other.into()),
        }
    }
    // Forget what was written to ExternalSecrets that are gone (of any ClusterExternalSecret).
    let live: HashSet<String> = ctx
        .owned
        .state()
        .iter()
        .filter_map(|es| es.metadata.uid.clone())
        .collect();
    if let Ok(mut written) = ctx.written.lock() {
        written.retain(|es_uid, _| live.contains(es_uid));
    }
    Ok(())
}

/// The ExternalSecret every selected namespace gets (name and namespace filled in per namespace).
fn desired_body(object: &ClusterExternalSecret, uid: &str) -> serde_json::Value {
    let metadata = object
        .spec
        .external_secret_metadata
        .clone()
        .unwrap_or_default();
    let mut labels = metadata.labels;
    labels.insert(OWNER_LABEL.to_owned(), uid.to_owned());
    let mut body = json!({
        "apiVersion": ExternalSecret::api_version(&()),
        "kind": KIND_EXTERNAL_SECRET,
        "metadata": {
            "labels": labels,
            // No blockOwnerDeletion: nothing waits on these ExternalSecrets.
            "ownerReferences": [{
                "apiVersion": ClusterExternalSecret::api_version(&()),
                "kind": KIND_CLUSTER_EXTERNAL_SECRET,
                "name": object.name_any(),
                "uid": uid,
                "controller": true,
            }],
        },
        "spec": object.spec.external_secret_spec,
    });
    if !metadata.annotations.is_empty() {
        body["metadata"]["annotations"] = json!(metadata.annotations);
    }
    body
}

/// A hash of `body` (in memory only: it tells whether what was written is what is wanted).
fn hash_of(body: &serde_json::Value) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.to_string().hash(&mut hasher);
    hasher.finish()
}

/// A spec that cannot be acted on: `InvalidSpec`, nothing created or deleted, looked at again on
/// its next change.
async fn refuse(
    object: &ClusterExternalSecret,
    ctx: &ClusterContext,
    message: String,
) -> Result<Action, Error> {
    let outcome = Outcome::failed(reason::INVALID, message);
    let old = object.status.clone().unwrap_or_default();
    write_status(
        object,
        ctx,
        &outcome,
        old.provisioned_namespaces,
        old.failed_namespaces,
    )
    .await?;
    Ok(Action::await_change())
}

/// Writes the status when it says something new, and the event of a changed condition.
async fn write_status(
    object: &ClusterExternalSecret,
    ctx: &ClusterContext,
    outcome: &Outcome,
    provisioned: Vec<String>,
    failed: Vec<FailedNamespace>,
) -> Result<(), Error> {
    let base = &ctx.base;
    if !outcome.succeeded() {
        base.metrics
            .count_error(KIND_CLUSTER_EXTERNAL_SECRET, outcome.reason);
    }
    let old = object.status.clone().unwrap_or_default();
    let old_condition = old.conditions.iter().find(|c| c.type_ == READY_CONDITION);
    let (condition, changed) = target::next_condition(old_condition, READY_CONDITION, outcome);
    if !changed && old.provisioned_namespaces == provisioned && old.failed_namespaces == failed {
        return Ok(());
    }
    let condition = match changed {
        true => condition,
        false => old_condition.cloned().unwrap_or(condition),
    };
    let api: Api<ClusterExternalSecret> = Api::all(base.client.clone());
    base.metrics.count_write("status");
    api.patch_status(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "conditions": [condition],
            "provisionedNamespaces": provisioned,
            "failedNamespaces": failed,
        }})),
    )
    .await?;
    if changed {
        target::publish_condition_event(base, object, &condition, &EVENTS).await;
    }
    Ok(())
}

/// Retry policy for API errors.
pub fn error_policy(
    object: Arc<ClusterExternalSecret>,
    error: &Error,
    ctx: Arc<ClusterContext>,
) -> Action {
    ctx.base
        .metrics
        .count_error(KIND_CLUSTER_EXTERNAL_SECRET, error.reason());
    tracing::warn!(name = %object.name_any(), error = %error, "ClusterExternalSecret reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ces(spec: serde_json::Value) -> ClusterExternalSecret {
        let mut spec = spec;
        spec["externalSecretSpec"] = json!({"secretStoreRef": {"name": "vault"}});
        serde_json::from_value(json!({
            "apiVersion": "signet.dev/v1alpha1", "kind": "ClusterExternalSecret",
            "metadata": {"name": "shared", "uid": "c1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_and_names_select_live_namespaces_and_set_terminating_ones_apart() {
        let plan = Plan::of(&ces(json!({
            "namespaces": ["by-name", "absent"],
            "namespaceSelectors": [
                {"matchLabels": {"team": "a"}},
                {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]},
                                      {"key": "legacy", "operator": "DoesNotExist"}]},
            ],
        })))
        .unwrap();
        assert_eq!(plan.name, "shared");
        assert_eq!(plan.refresh, DEFAULT_REFRESH_TIME);
        let (team_a, gold, gold_legacy, none) = (
            labels(&[("team", "a")]),
            labels(&[("tier", "gold")]),
            labels(&[("tier", "gold"), ("legacy", "")]),
            labels(&[]),
        );
        let view = |name, labels, terminating| NamespaceView {
            name,
            labels,
            terminating,
        };
        let selection = select(
            &plan,
            [
                view("a1", &team_a, false),
                view("a2", &team_a, true),
                view("g1", &gold, false),
                view("g2", &gold_legacy, false),
                view("by-name", &none, false),
                view("other", &none, false),
            ],
        )
        .unwrap();
        let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(selection.targets, set(&["a1", "by-name", "g1"]));
        assert_eq!(selection.terminating, set(&["a2"]));
    }

    fn unlabelled<'a>(
        names: &'a [String],
        none: &'a BTreeMap<String, String>,
    ) -> Vec<NamespaceView<'a>> {
        names
            .iter()
            .map(|n| NamespaceView {
                name: n,
                labels: none,
                terminating: false,
            })
            .collect()
    }

    #[test]
    fn more_than_the_bound_is_refused_as_a_whole() {
        let plan = Plan::of(&ces(json!({"namespaceSelectors": [{}]}))).unwrap();
        let none = BTreeMap::new();
        let names: Vec<String> = (0..=MAX_NAMESPACES).map(|i| format!("ns-{i}")).collect();
        let at_bound = select(&plan, unlabelled(&names[..MAX_NAMESPACES], &none)).unwrap();
        assert_eq!(at_bound.targets.len(), MAX_NAMESPACES);
        let err = select(&plan, unlabelled(&names, &none)).unwrap_err();
        assert!(err.contains("more than 10000 namespaces"), "{err}");
        let listed = ces(json!({"namespaces": names}));
        assert!(Plan::of(&listed).unwrap_err().contains("at most 10000"));
    }

    #[test]
    fn bad_selectors_names_and_periods_are_refused_naming_the_field() {
        let bad = |spec: serde_json::Value| Plan::of(&ces(spec)).unwrap_err();
        let e = bad(
            json!({"namespaceSelectors": [{}, {"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]}]}),
        );
        assert!(
            e.starts_with("spec.namespaceSelectors[1]: matchExpressions[0]: operator \"Near\""),
            "{e}"
        );
        let e = bad(
            json!({"namespaceSelectors": [{"matchExpressions": [{"key": "a", "operator": "In"}]}]}),
        );
        assert!(e.starts_with("spec.namespaceSelectors[0]:"), "{e}");
        let e = bad(
            json!({"namespaceSelectors": [{"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}]}),
        );
        assert!(e.starts_with("spec.namespaceSelectors[0]:"), "{e}");
        let e = bad(json!({"externalSecretName": "Not_A_Name"}));
        assert!(e.starts_with("spec.externalSecretName:"), "{e}");
        let e = bad(json!({"refreshTime": "3651d"}));
        assert!(e.starts_with("spec.refreshTime:"), "{e}");
        let e = bad(json!({"refreshTime": "9s999ms"}));
        assert!(
            e.starts_with("spec.refreshTime: \"9s999ms\" is shorter than 10s"),
            "{e}"
        );
        assert!(Plan::of(&ces(json!({"refreshTime": "10s"}))).is_ok());
        let plan = Plan::of(&ces(
            json!({"refreshTime": "0", "externalSecretName": "db.creds"}),
        ))
        .unwrap();
        assert_eq!(
            (plan.refresh, plan.name.as_str()),
            (Duration::ZERO, "db.creds")
        );
    }

    #[test]
    fn the_status_lists_a_bounded_number_of_failures_and_counts_them_all() {
        let mut provisioned = vec!["b".to_owned(), "a".to_owned()];
        let mut none = Vec::new();
        let ok = summarize("db", &mut provisioned, &mut none);
        assert_eq!(
            (ok.reason, ok.message.as_str()),
            (reason::PROVISIONED, "ExternalSecret \"db\" in 2 namespaces")
        );
        assert_eq!(provisioned, ["a", "b"]);
        let mut failed: Vec<FailedNamespace> = (0..MAX_LISTED_FAILURES + 50)
            .rev()
            .map(|i| FailedNamespace {
                namespace: format!("ns-{i:04}"),
                reason: NOT_OWNED.to_owned(),
            })
            .collect();
        let outcome = summarize("db", &mut provisioned, &mut failed);
        assert_eq!(outcome.reason, reason::NOT_ALL_PROVISIONED);
        assert!(
            outcome
                .message
                .starts_with("150 of 152 selected namespaces"),
            "{}",
            outcome.message
        );
        assert_eq!(failed.len(), MAX_LISTED_FAILURES);
        assert_eq!(failed[0].namespace, "ns-0000");
    }

    #[test]
    fn the_documented_example_is_valid_and_selects_as_documented() {
        let doc = include_str!("../../../docs/external-secrets.md");
        let section = doc.split("## ClusterExternalSecret").nth(1).unwrap();
        let yaml = section.split("```yaml\n").nth(1).unwrap();
        let yaml = yaml.split("```").next().unwrap();
        let mut object: ClusterExternalSecret = serde_saphyr::from_str(yaml).unwrap();
        object.metadata.uid = Some("u".into());
        let plan = Plan::of(&object).unwrap();
        assert_eq!(
            (plan.name.as_str(), plan.refresh),
            ("db-creds", DEFAULT_REFRESH_TIME)
        );
        let body = desired_body(&object, "u");
        assert_eq!(body["metadata"]["labels"]["made-by"], "platform");
        assert_eq!(body["spec"]["secretStoreRef"]["kind"], "ClusterSecretStore");
        let (tenant, gold, silver, none) = (
            labels(&[("tenant", "yes")]),
            labels(&[("tier", "gold")]),
            labels(&[("tier", "silver")]),
            labels(&[]),
        );
        let view = |name, labels| NamespaceView {
            name,
            labels,
            terminating: false,
        };
        let selection = select(
            &plan,
            [
                view("t", &tenant),
                view("g", &gold),
                view("s", &silver),
                view("payments", &none),
                view("x", &none),
            ],
        )
        .unwrap();
        let selected: Vec<&str> = selection.targets.iter().map(String::as_str).collect();
        assert_eq!(selected, ["g", "payments", "t"]);
    }

    #[test]
    fn the_external_secret_is_owned_without_blocking_and_carries_no_finalizer() {
        let mut object = ces(
            json!({"externalSecretMetadata": {"labels": {"app": "x"}, "annotations": {"note": "y"}}}),
        );
        object.metadata.uid = Some("c1".into());
        let body = desired_body(&object, "c1");
        assert_eq!(body["metadata"]["labels"][OWNER_LABEL], "c1");
        assert_eq!(body["metadata"]["labels"]["app"], "x");
        assert_eq!(body["metadata"]["annotations"]["note"], "y");
        let owner = &body["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["uid"].as_str()),
            (Some("ClusterExternalSecret"), Some("c1"))
        );
        assert!(owner.get("blockOwnerDeletion").is_none());
        assert!(body["metadata"].get("finalizers").is_none());
        assert_eq!(body["spec"]["secretStoreRef"]["name"], "vault");
    }
}
