//! What every reconciler of this controller shares about the Secret it produces and the status it
//! keeps, as small types and plain functions (unit-tested without an API server) plus the few calls
//! that reach the API server:
//! - which object a reconcile works on ([`Source`]: nothing to do while it is being deleted);
//! - who may write the Secret ([`Claim`]: own it, merge into someone else's, or refuse);
//! - whether the Secret is known to be current ([`LastWrite::covers`], with the kind's memory of its
//!   own last writes, [`Written`]);
//! - the server-side-apply body and call ([`DesiredSecret`]);
//! - how a reconcile ends ([`Outcome`], [`ConditionStatus`]), the condition it leaves
//!   ([`next_condition`]), the status patch and the event of a changed condition
//!   ([`finish`]), and when to look again ([`Next`]).
//!
//! Each source kind (SealedSecret, SopsSecret, ExternalSecret) marks its Secrets with its own owner
//! label, whose value is the source object's uid; Secrets are watched by that label only.

use crate::context::Context;
use crate::{Error, FIELD_MANAGER};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, GetParams, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use signet_api::SealedSecretCondition;
use signet_api::sealed_secret::{MANAGED_ANNOTATION, PATCH_ANNOTATION};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

/// One status condition (the same shape for every kind: type, status, reason, message, times).
pub type Condition = SealedSecretCondition;

/// The `status` of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    /// `"True"`: the Secret matches the source.
    True,
    /// `"False"`: it does not; the reason says why.
    False,
}

impl ConditionStatus {
    /// The string the API stores.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
        }
    }

    /// The status of `condition`: anything but a present `"True"` is `False`.
    pub fn of(condition: Option<&Condition>) -> ConditionStatus {
        match condition {
            Some(c) if c.status == "True" => ConditionStatus::True,
            _ => ConditionStatus::False,
        }
    }
}

/// How a reconcile ends, as its condition will say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The condition's status.
    pub status: ConditionStatus,
    /// The condition's reason (also the `reason` label of the error counter on failures).
    pub reason: &'static str,
    /// The condition's message (never a value).
    pub message: String,
    /// resourceVersion of the Secret as written (successes only).
    pub secret_resource_version: Option<String>,
}

impl Outcome {
    /// A failure: `False` with this reason and message.
    pub fn failed(reason: &'static str, message: impl Into<String>) -> Outcome {
        Outcome {
            status: ConditionStatus::False,
            reason,
            message: message.into(),
            secret_resource_version: None,
        }
    }

    /// A written Secret: `True`, and the Secret's resourceVersion.
    pub fn written(
        reason: &'static str,
        message: impl Into<String>,
        secret_resource_version: Option<String>,
    ) -> Outcome {
        Outcome {
            status: ConditionStatus::True,
            reason,
            message: message.into(),
            secret_resource_version,
        }
    }

    /// Whether the condition is `True`.
    pub fn succeeded(&self) -> bool {
        self.status == ConditionStatus::True
    }
}

/// When to reconcile an object again (besides the changes that trigger it anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// At the next resync, if one is configured (the object is done).
    Idle,
    /// Only on a change of the object or its Secret (nothing will fix it by waiting).
    OnChange,
    /// After this delay (something outside may fix it).
    After(Duration),
}

impl Next {
    /// The controller action, given the configured resync period.
    pub fn action(self, resync_period: Option<Duration>) -> Action {
        match self {
            Next::Idle => match resync_period {
                Some(period) => Action::requeue(period),
                None => Action::await_change(),
            },
            Next::OnChange => Action::await_change(),
            Next::After(delay) => Action::requeue(delay),
        }
    }
}

/// What a reconcile does, decided before any decryption or provider call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The Secret is known to be current: nothing to write.
    UpToDate,
    /// The Secret cannot be written: say so in the status, then look again as `Next` says.
    Refuse(Outcome, Next),
    /// Produce the values and write the Secret with this claim.
    Write(Claim),
}

/// The source object a reconcile works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its namespace (also the Secret's).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid: the value of the owner label and of the ownerReference.
    pub uid: String,
    /// The resourceVersion it was seen at ([`read_params`]).
    pub resource_version: Option<String>,
}

impl Source {
    /// `Ok(None)` while the object is being deleted: its Secret goes with it (ownerReference), so
    /// there is nothing to do. An error when the API server left out the namespace or the uid.
    pub fn of<K: Resource>(object: &K) -> Result<Option<Source>, Error> {
        let meta = object.meta();
        if meta.deletion_timestamp.is_some() {
            return Ok(None);
        }
        Ok(Some(Source {
            namespace: meta
                .namespace
                .clone()
                .ok_or(Error::MissingField("metadata.namespace"))?,
            name: meta.name.clone().unwrap_or_default(),
            uid: meta
                .uid
                .clone()
                .ok_or(Error::MissingField("metadata.uid"))?,
            resource_version: meta.resource_version.clone(),
        }))
    }
}

/// Whether a Secret carries `label = uid` or an ownerReference to `uid` (as the Bitnami controller
/// writes it).
pub fn owned_by(secret: &PartialObjectMeta<Secret>, label: &str, uid: &str) -> bool {
    secret.labels().get(label).map(String::as_str) == Some(uid)
        || secret.owner_references().iter().any(|o| o.uid == uid)
}

fn annotation_is_true(secret: &PartialObjectMeta<Secret>, annotation: &str) -> bool {
    secret.annotations().get(annotation).map(String::as_str) == Some("true")
}

/// How a reconciler may write the Secret it produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Create or update the Secret as ours: its type and immutability too, and a controller
    /// ownerReference (garbage collection with the source) when `owner_reference`.
    Own {
        /// Whether to set the controller ownerReference.
        owner_reference: bool,
    },
    /// Merge our data, labels and annotations into a Secret that is someone else's: no
    /// ownerReference, type or immutability.
    Merge,
}

impl Claim {
    /// Owned, with an ownerReference.
    pub const OWN: Claim = Claim::Own {
        owner_reference: true,
    };

    /// The claim of SealedSecrets and SopsSecrets (the Bitnami controller's rules) on the Secret of
    /// their name: none yet, or ours (owner label or ownerReference), or one annotated
    /// `managed: "true"` is owned; one annotated `patch: "true"` is merged into (that annotation
    /// wins); `None` for anyone else's Secret.
    pub fn by_annotations(
        existing: Option<&PartialObjectMeta<Secret>>,
        owner_label: &str,
        uid: &str,
    ) -> Option<Claim> {
        let Some(secret) = existing else {
            return Some(Claim::OWN);
        };
        if annotation_is_true(secret, PATCH_ANNOTATION) {
            Some(Claim::Merge)
        } else if owned_by(secret, owner_label, uid)
            || annotation_is_true(secret, MANAGED_ANNOTATION)
        {
            Some(Claim::OWN)
        } else {
            None
        }
    }

    /// The same claim without the ownerReference (a Merge stays a Merge).
    pub fn without_owner_reference(self) -> Claim {
        match self {
            Claim::Own { .. } => Claim::Own {
                owner_reference: false,
            },
            Claim::Merge => Claim::Merge,
        }
    }

    /// Whether the Secret is ours (type and immutability are set).
    pub fn owns(self) -> bool {
        matches!(self, Claim::Own { .. })
    }
}

/// The message of a refused claim: the Secret is someone else's.
pub fn not_managed_message(name: &str, kind: &str) -> String {
    format!(
        "Secret {name:?} exists and is not managed by this {kind}; annotate it with {MANAGED_ANNOTATION}=\"true\" to let the controller take it over, or {PATCH_ANNOTATION}=\"true\" to merge into it"
    )
}

/// The Secret a reconciler wants, as a server-side-apply body.
#[derive(Debug, Clone)]
pub struct DesiredSecret<'a> {
    /// Name (also the source object's name, unless a target name says otherwise).
    pub name: &'a str,
    /// Namespace of the source and the Secret.
    pub namespace: &'a str,
    /// The owner label of the source kind.
    pub owner_label: &'static str,
    /// uid of the source object.
    pub owner_uid: &'a str,
    /// `(apiVersion, kind, name)` of the source object, for the ownerReference ([`owner_of`]).
    pub owner: (String, String, String),
    /// How the Secret is written: what of `owner`, `type_` and `immutable` goes in.
    pub claim: Claim,
    /// Labels besides the owner label.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// `type` when the claim owns the Secret; `None` leaves it to the API server (Opaque).
    pub type_: Option<String>,
    /// `immutable` when the claim owns the Secret.
    pub immutable: Option<bool>,
    /// The values, base64-encoded as in a Secret's `data`.
    pub data_base64: BTreeMap<String, String>,
}

/// `(apiVersion, kind, name)` of `object`, for [`DesiredSecret::owner`].
pub fn owner_of<K: Resource<DynamicType = ()>>(object: &K) -> (String, String, String) {
    (
        K::api_version(&()).into_owned(),
        K::kind(&()).into_owned(),
        object.name_any(),
    )
}

impl DesiredSecret<'_> {
    /// The apply body: only the fields this controller owns (so merging into someone else's Secret
    /// leaves their fields alone).
    pub fn body(&self) -> serde_json::Value {
        let mut labels = self.labels.clone();
        labels.insert(self.owner_label.to_owned(), self.owner_uid.to_owned());
        let mut metadata = json!({
            "name": self.name,
            "namespace": self.namespace,
            "labels": labels,
        });
        if !self.annotations.is_empty() {
            metadata["annotations"] = json!(self.annotations);
        }
        if self.claim == Claim::OWN {
            let (api_version, kind, name) = &self.owner;
            metadata["ownerReferences"] = json!([{
                "apiVersion": api_version,
                "kind": kind,
                "name": name,
                "uid": self.owner_uid,
                "controller": true,
            }]);
        }
        let mut body = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "data": self.data_base64,
        });
        if self.claim.owns() {
            if let Some(type_) = &self.type_ {
                body["type"] = json!(type_);
            }
            if let Some(immutable) = self.immutable {
                body["immutable"] = json!(immutable);
            }
        }
        body
    }

    /// Applies the Secret. `Ok(Err(message))` when the API server refused it for good (a 4xx other
    /// than 429: invalid, forbidden, immutable); transient failures are `Err`.
    pub async fn apply(&self, ctx: &Context) -> Result<Result<Secret, String>, Error> {
        Ok(self
            .send(ctx, self.body())
            .await?
            .map_err(|status| refusal(&status)))
    }

    /// Applies the Secret only if none of its name exists: `Ok(Ok(None))` when one does (someone
    /// else's, or ours and not yet in the cache), and nothing was written. Otherwise as
    /// [`DesiredSecret::apply`].
    ///
    /// The apply names a resourceVersion no object has ([`NO_OBJECT_HAS_THIS_VERSION`]): the API
    /// server creates a missing object whatever version the apply names, and refuses an existing
    /// one with a conflict because the versions differ. So the check and the write are one
    /// request, where a read and then an apply could take over a Secret created in between.
    pub async fn apply_new(&self, ctx: &Context) -> Result<Result<Option<Secret>, String>, Error> {
        let mut body = self.body();
        body["metadata"]["resourceVersion"] = json!(NO_OBJECT_HAS_THIS_VERSION);
        Ok(match self.send(ctx, body).await? {
            Ok(applied) => Ok(Some(applied)),
            Err(status) if status.code == 409 => Ok(None),
            Err(status) => Err(refusal(&status)),
        })
    }

    /// Sends `body` as this controller's forced server-side apply: the Secret, or the API server's
    /// lasting refusal (a 4xx other than 429); transient failures are `Err`.
    async fn send(
        &self,
        ctx: &Context,
        body: serde_json::Value,
    ) -> Result<Result<Secret, kube::core::Status>, Error> {
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), self.namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        ctx.metrics.count_write("secret");
        match api.patch(self.name, &params, &Patch::Apply(&body)).await {
            Ok(applied) => Ok(Ok(applied)),
            Err(kube::Error::Api(status))
                if (400..500).contains(&status.code) && status.code != 429 =>
            {
                Ok(Err(*status))
            }
            Err(other) => Err(other.into()),
        }
    }
}

/// The resourceVersion of a create-only apply ([`DesiredSecret::apply_new`]). etcd counts
/// revisions from 1, its empty state, and every write makes a new one, so no object is at 1.
pub const NO_OBJECT_HAS_THIS_VERSION: &str = "1";

/// The message of a lasting refusal of the Secret.
fn refusal(status: &kube::core::Status) -> String {
    format!("the API server refused the Secret: {}", status.message)
}

/// Base64-encodes values for [`DesiredSecret::data_base64`].
pub fn base64_values<'a>(
    values: impl IntoIterator<Item = (&'a String, &'a [u8])>,
) -> BTreeMap<String, String> {
    use base64::Engine as _;
    values
        .into_iter()
        .map(|(k, v)| {
            (
                k.clone(),
                base64::engine::general_purpose::STANDARD.encode(v),
            )
        })
        .collect()
}

/// The cached metadata of the Secret `name` in `namespace`, or a fresh metadata read
/// ([`read_secret`]).
pub async fn current_secret(
    ctx: &Context,
    cache: &kube::runtime::reflector::Store<PartialObjectMeta<Secret>>,
    namespace: &str,
    name: &str,
) -> Result<Option<PartialObjectMeta<Secret>>, Error> {
    if let Some(meta) = cache.get(&ObjectRef::new(name).within(namespace)) {
        return Ok(Some(meta.as_ref().clone()));
    }
    read_secret(ctx, namespace, name).await
}

/// A fresh read of the metadata of the Secret `name` in `namespace`. A quorum read on purpose:
/// asked for a state no older than the source object's revision ([`read_params`]), the API
/// server's Secret watch cache, which only sees Secret revisions, waited ~80 ms per new object for
/// a progress notification (measured: new-object p50 18 ms → 100 ms).
pub async fn read_secret(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Option<PartialObjectMeta<Secret>>, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    Ok(api.get_metadata_opt(name).await?)
}

/// What a reconciler knows of the Secret it is about to write.
#[derive(Debug, Clone)]
pub enum SeenSecret {
    /// Its metadata, from the owned-Secret cache or a read.
    Present(Box<PartialObjectMeta<Secret>>),
    /// A read found none.
    Absent,
    /// Not read: the owned-Secret cache, complete since its first list, does not hold it, and
    /// this process never wrote it. Most likely absent; possibly someone else's (never labelled).
    /// Written only by a create-only apply ([`DesiredSecret::apply_new`]), which refuses a Secret
    /// of that name, so a catch-up saves a read per new object.
    Unread,
}

impl SeenSecret {
    /// The Secret's metadata, when it was seen.
    pub fn metadata(&self) -> Option<&PartialObjectMeta<Secret>> {
        match self {
            SeenSecret::Present(meta) => Some(meta.as_ref()),
            SeenSecret::Absent | SeenSecret::Unread => None,
        }
    }

    /// A read's answer.
    pub fn read(meta: Option<PartialObjectMeta<Secret>>) -> SeenSecret {
        meta.map_or(SeenSecret::Absent, |meta| {
            SeenSecret::Present(Box::new(meta))
        })
    }
}

/// The Secret `name` in `namespace` of the source object `uid`: from `cache`, else
/// [`SeenSecret::Unread`] when the cache is complete and `written` has no write for `uid`, else
/// read.
pub async fn seen_secret(
    ctx: &Context,
    cache: &kube::runtime::reflector::Store<PartialObjectMeta<Secret>>,
    written: &Written,
    uid: &str,
    namespace: &str,
    name: &str,
) -> Result<SeenSecret, Error> {
    use futures::FutureExt as _;
    if let Some(meta) = cache.get(&ObjectRef::new(name).within(namespace)) {
        return Ok(SeenSecret::Present(Box::new(meta.as_ref().clone())));
    }
    let complete = cache
        .wait_until_ready()
        .now_or_never()
        .is_some_and(|ready| ready.is_ok());
    if complete && !written.wrote(uid) {
        return Ok(SeenSecret::Unread);
    }
    Ok(SeenSecret::read(read_secret(ctx, namespace, name).await?))
}

/// Params to read `source` again: no older than the revision its watch event carried, which the
/// API server's watch cache of the same resource already holds, so it answers from memory rather
/// than with a quorum read from etcd (on the test API server, 0.25–0.3 ms of its CPU against
/// 0.4–0.55 ms).
pub fn read_params(source: &Source) -> GetParams {
    GetParams {
        resource_version: source.resource_version.clone(),
    }
}

/// A kind's memory of its last successful writes: source uid -> (generation, Secret
/// resourceVersion). The status may lag in the cache right after a write; this does not. Each kind
/// keeps its own, pruned against its own cache of source objects.
#[derive(Debug, Default)]
pub struct Written(Mutex<HashMap<String, (i64, String)>>);

impl Written {
    /// Records a successful write (nothing when the generation or the resourceVersion is unknown).
    pub fn remember(&self, uid: &str, generation: Option<i64>, secret_rv: Option<String>) {
        if let (Some(generation), Some(rv)) = (generation, secret_rv)
            && let Ok(mut map) = self.0.lock()
        {
            map.insert(uid.to_owned(), (generation, rv));
        }
    }

    /// Whether the last successful write for `uid` was this generation and Secret version.
    pub fn was(&self, uid: &str, generation: i64, secret_rv: &str) -> bool {
        self.0.lock().is_ok_and(|map| {
            map.get(uid)
                .is_some_and(|(g, rv)| *g == generation && rv == secret_rv)
        })
    }

    /// Forgets every uid not in `live` (objects that are gone).
    pub fn retain_live<'a>(&self, live: impl IntoIterator<Item = &'a str>) {
        let live: HashSet<&str> = live.into_iter().collect();
        if let Ok(mut map) = self.0.lock() {
            map.retain(|uid, _| live.contains(uid.as_str()));
        }
    }

    /// Whether a write for `uid` is remembered.
    pub fn wrote(&self, uid: &str) -> bool {
        self.0.lock().is_ok_and(|map| map.contains_key(uid))
    }

    /// How many writes are remembered.
    pub fn len(&self) -> usize {
        self.0.lock().map(|map| map.len()).unwrap_or_default()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a source object's status says about its last successful write.
#[derive(Debug, Clone, Copy)]
pub struct LastWrite<'a> {
    /// `metadata.generation` of the source now.
    pub generation: Option<i64>,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// The status condition.
    pub condition: ConditionStatus,
    /// resourceVersion of the Secret the status recorded.
    pub secret_resource_version: Option<&'a str>,
}

impl LastWrite<'_> {
    /// Whether `secret` is known to match the source: it is ours, and the status (or the kind's
    /// memory of its last writes) records its current resourceVersion for this generation.
    pub fn covers(
        &self,
        secret: Option<&PartialObjectMeta<Secret>>,
        owner_label: &str,
        uid: &str,
        written: &Written,
    ) -> bool {
        let (Some(generation), Some(secret)) = (self.generation, secret) else {
            return false;
        };
        let Some(secret_rv) = secret.metadata.resource_version.as_deref() else {
            return false;
        };
        if !owned_by(secret, owner_label, uid) {
            return false;
        }
        written.was(uid, generation, secret_rv)
            || (self.observed_generation == Some(generation)
                && self.condition == ConditionStatus::True
                && self.secret_resource_version == Some(secret_rv))
    }
}

/// The condition to store next for `outcome`, and whether it differs from `old` in status, reason
/// or message (only then is an event due). Times: `lastTransitionTime` moves only when the status
/// flips.
pub fn next_condition(
    old: Option<&Condition>,
    type_: &str,
    outcome: &Outcome,
) -> (Condition, bool) {
    let status = outcome.status.as_str();
    let changed = old.is_none_or(|c| {
        c.status != status
            || c.reason.as_deref() != Some(outcome.reason)
            || c.message.as_deref().unwrap_or_default() != outcome.message
    });
    let now = json!(Timestamp::now().to_string());
    let condition = Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        last_update_time: Some(now.clone()),
        last_transition_time: match old {
            Some(c) if c.status == status => c.last_transition_time.clone().or(Some(now)),
            _ => Some(now),
        },
        reason: Some(outcome.reason.to_owned()),
        message: (!outcome.message.is_empty()).then(|| outcome.message.clone()),
    };
    (condition, changed)
}

/// What a kind says in the event of a changed condition: the action, and the reason and note of a
/// success (a failure's event carries the condition's reason and message).
#[derive(Debug, Clone, Copy)]
pub struct ConditionEvents {
    /// The event's action (`Unseal`, `Decrypt`, `Sync`, `Validate`).
    pub action: &'static str,
    /// Reason of the Normal event of a `True` condition.
    pub success_reason: &'static str,
    /// Note of the Normal event of a `True` condition.
    pub success_note: &'static str,
}

/// A status to write: the merge patch of `status`, and the new condition when it changed (an
/// event is due).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The fields of `status` to merge.
    pub patch: serde_json::Value,
    /// The condition, when it changed.
    pub changed: Option<Condition>,
}

/// Ends a reconcile of a `kind` object: counts a failure, then writes `update` (when the status
/// changed) and publishes the event of a changed condition.
pub async fn finish<K>(
    ctx: &Context,
    kind: &str,
    object: &K,
    outcome: &Outcome,
    update: Option<StatusUpdate>,
    events: &ConditionEvents,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    if !outcome.succeeded() {
        ctx.metrics.count_error(kind, outcome.reason);
    }
    let Some(update) = update else {
        return Ok(());
    };
    patch_status(ctx, object, update.patch).await?;
    if let Some(condition) = update.changed {
        publish_condition_event(ctx, object, &condition, events).await;
    }
    Ok(())
}

/// The event of a changed condition: Normal with the success reason and note on `True`, else a
/// Warning with the condition's reason and message.
pub fn condition_event(condition: &Condition, events: &ConditionEvents) -> Event {
    let (type_, reason, note) = if condition.status == "True" {
        (
            EventType::Normal,
            events.success_reason.to_owned(),
            events.success_note.to_owned(),
        )
    } else {
        (
            EventType::Warning,
            condition.reason.clone().unwrap_or_default(),
            condition.message.clone().unwrap_or_default(),
        )
    };
    Event {
        type_,
        reason,
        note: Some(note),
        action: events.action.to_owned(),
        secondary: None,
    }
}

/// Publishes [`condition_event`]. Failures to publish are logged, not returned.
pub async fn publish_condition_event<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    condition: &Condition,
    events: &ConditionEvents,
) {
    let event = condition_event(condition, events);
    ctx.metrics.count_write("event");
    if let Err(err) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(error = %err, "cannot publish an event");
    }
}

/// Patches `status` of a namespaced object with a JSON merge patch.
pub async fn patch_status<K>(
    ctx: &Context,
    object: &K,
    status: serde_json::Value,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(
        ctx.client.clone(),
        object.meta().namespace.as_deref().unwrap_or_default(),
    );
    ctx.metrics.count_write("status");
    api.patch_status(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await?;
    Ok(())
}

/// A Kubernetes API error for a status message: the API server's own message and code, not the
/// client's debug dump.
pub fn describe_kube_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A context whose API server does not answer: a lookup that sends a request fails.
    fn unreachable_context() -> Context {
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        let recorder = crate::events::Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: "test".into(),
                instance: None,
            },
        );
        Context::new(
            client,
            crate::Config::new("signet"),
            std::sync::Arc::default(),
            std::sync::Arc::new(crate::metrics::Metrics::new()),
            recorder,
        )
    }

    #[tokio::test]
    async fn a_secret_is_left_unread_only_when_the_cache_is_complete_and_it_was_never_written() {
        use kube::runtime::{reflector, watcher};
        let ctx = unreachable_context();
        let (cache, mut writer) = reflector::store::<PartialObjectMeta<Secret>>();
        let written = Written::default();
        // The cache has not listed yet: it is read (and the read fails here).
        assert!(
            seen_secret(&ctx, &cache, &written, "u1", "app", "db")
                .await
                .is_err()
        );
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        // Complete, never written: no request.
        assert!(matches!(
            seen_secret(&ctx, &cache, &written, "u1", "app", "db").await,
            Ok(SeenSecret::Unread)
        ));
        // Written by this process, not yet in the cache: read.
        written.remember("u1", Some(1), Some("7".to_owned()));
        assert!(
            seen_secret(&ctx, &cache, &written, "u1", "app", "db")
                .await
                .is_err()
        );
        // In the cache: taken from it, no request.
        writer.apply_watcher_event(&watcher::Event::Apply(secret_meta(
            json!({"name": "db", "namespace": "app", "resourceVersion": "7"}),
        )));
        let seen = seen_secret(&ctx, &cache, &written, "u1", "app", "db").await;
        assert_eq!(
            seen.ok()
                .as_ref()
                .and_then(SeenSecret::metadata)
                .and_then(|m| m.metadata.resource_version.as_deref()),
            Some("7")
        );
    }

    /// The metadata of a Secret as the owned-Secret cache holds it.
    pub(crate) fn secret_meta(metadata: serde_json::Value) -> PartialObjectMeta<Secret> {
        serde_json::from_value(json!({ "metadata": metadata })).unwrap()
    }

    const LABEL: &str = "signet.dev/test-uid";

    #[test]
    fn claim_follows_the_bitnami_annotations() {
        let claim =
            |meta: serde_json::Value| Claim::by_annotations(Some(&secret_meta(meta)), LABEL, "u1");
        assert_eq!(Claim::by_annotations(None, LABEL, "u1"), Some(Claim::OWN));
        assert_eq!(claim(json!({"labels": {LABEL: "u1"}})), Some(Claim::OWN));
        assert_eq!(
            claim(
                json!({"ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "a", "uid": "u1"}]})
            ),
            Some(Claim::OWN)
        );
        assert_eq!(
            claim(json!({"annotations": {MANAGED_ANNOTATION: "true"}})),
            Some(Claim::OWN)
        );
        // `patch` wins, even over our own label.
        assert_eq!(
            claim(json!({"labels": {LABEL: "u1"}, "annotations": {PATCH_ANNOTATION: "true"}})),
            Some(Claim::Merge)
        );
        // Someone else's: another uid, or annotations that are not "true".
        assert_eq!(claim(json!({"labels": {LABEL: "u2"}})), None);
        assert_eq!(
            claim(json!({"annotations": {MANAGED_ANNOTATION: "yes", PATCH_ANNOTATION: "1"}})),
            None
        );
        assert_eq!(claim(json!({})), None);
    }

    #[test]
    fn the_claim_decides_owner_reference_type_and_immutability() {
        let desired = |claim| {
            DesiredSecret {
                name: "s",
                namespace: "n",
                owner_label: LABEL,
                owner_uid: "u1",
                owner: (
                    "signet.dev/v1alpha1".into(),
                    "SopsSecret".into(),
                    "s".into(),
                ),
                claim,
                labels: BTreeMap::from([("app".into(), "x".into())]),
                annotations: BTreeMap::new(),
                type_: Some("kubernetes.io/tls".into()),
                immutable: Some(true),
                data_base64: BTreeMap::from([("k".into(), "dg==".into())]),
            }
            .body()
        };
        let owned = desired(Claim::OWN);
        assert_eq!(owned["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(owned["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(owned["metadata"]["labels"][LABEL], "u1");
        assert_eq!(owned["type"], "kubernetes.io/tls");
        assert_eq!(owned["immutable"], true);
        assert!(owned["metadata"].get("annotations").is_none());
        let orphan = desired(Claim::OWN.without_owner_reference());
        assert!(orphan["metadata"].get("ownerReferences").is_none());
        assert_eq!(orphan["type"], "kubernetes.io/tls");
        let merged = desired(Claim::Merge);
        assert!(merged["metadata"].get("ownerReferences").is_none());
        assert!(merged.get("type").is_none());
        assert!(merged.get("immutable").is_none());
        assert_eq!(merged["metadata"]["labels"][LABEL], "u1");
        assert_eq!(merged["data"]["k"], "dg==");
        assert_eq!(Claim::Merge.without_owner_reference(), Claim::Merge);
    }

    #[test]
    fn up_to_date_needs_our_secret_at_the_recorded_version_and_generation() {
        let ours = secret_meta(json!({"resourceVersion": "7", "labels": {LABEL: "u1"}}));
        let written = Written::default();
        let status = LastWrite {
            generation: Some(3),
            observed_generation: Some(3),
            condition: ConditionStatus::True,
            secret_resource_version: Some("7"),
        };
        assert!(status.covers(Some(&ours), LABEL, "u1", &written));
        // Anything off: the Secret is gone, changed, someone else's, or the status is stale or False.
        assert!(!status.covers(None, LABEL, "u1", &written));
        let changed = secret_meta(json!({"resourceVersion": "8", "labels": {LABEL: "u1"}}));
        assert!(!status.covers(Some(&changed), LABEL, "u1", &written));
        assert!(!status.covers(Some(&ours), LABEL, "u2", &written));
        let new_generation = LastWrite {
            generation: Some(4),
            ..status
        };
        assert!(!new_generation.covers(Some(&ours), LABEL, "u1", &written));
        let failed = LastWrite {
            condition: ConditionStatus::False,
            ..status
        };
        assert!(!failed.covers(Some(&ours), LABEL, "u1", &written));
        let unknown_generation = LastWrite {
            generation: None,
            ..status
        };
        assert!(!unknown_generation.covers(Some(&ours), LABEL, "u1", &written));
        // The memory of the write covers a status that lags behind it.
        written.remember("u1", Some(4), Some("8".into()));
        let lagging = LastWrite {
            generation: Some(4),
            ..status
        };
        assert!(lagging.covers(Some(&changed), LABEL, "u1", &written));
        assert!(!lagging.covers(Some(&ours), LABEL, "u1", &written));
    }

    #[test]
    fn written_remembers_complete_writes_and_forgets_the_gone() {
        let written = Written::default();
        written.remember("a", Some(1), Some("10".into()));
        written.remember("b", Some(1), None);
        written.remember("c", None, Some("10".into()));
        written.remember("d", Some(2), Some("20".into()));
        assert_eq!(written.len(), 2);
        assert!(written.was("a", 1, "10"));
        assert!(!written.was("a", 2, "10"));
        written.retain_live(["d", "z"]);
        assert!(!written.was("a", 1, "10"));
        assert!(written.was("d", 2, "20"));
        assert_eq!(written.len(), 1);
    }

    #[test]
    fn a_condition_changes_on_status_reason_or_message_and_keeps_its_transition_time() {
        let failed = Outcome::failed("ApplyFailed", "refused");
        let (first, changed) = next_condition(None, "Ready", &failed);
        assert!(changed);
        assert_eq!(first.status, "False");
        assert_eq!(first.type_, "Ready");
        assert_eq!(first.reason.as_deref(), Some("ApplyFailed"));
        assert_eq!(first.message.as_deref(), Some("refused"));
        let mut old = first.clone();
        old.last_transition_time = Some(json!("2020-01-01T00:00:00Z"));
        let (again, changed) = next_condition(Some(&old), "Ready", &failed);
        assert!(!changed);
        assert_eq!(again.last_transition_time, old.last_transition_time);
        let other_message = Outcome::failed("ApplyFailed", "refused again");
        assert!(next_condition(Some(&old), "Ready", &other_message).1);
        let other_reason = Outcome::failed("Unbound", "refused");
        assert!(next_condition(Some(&old), "Ready", &other_reason).1);
        let (ok, changed) =
            next_condition(Some(&old), "Ready", &Outcome::written("Synced", "", None));
        assert!(changed);
        assert_eq!(ok.status, "True");
        assert_ne!(ok.last_transition_time, old.last_transition_time);
        assert_eq!(ok.message, None);
        assert_eq!(ConditionStatus::of(Some(&ok)), ConditionStatus::True);
        assert_eq!(ConditionStatus::of(Some(&old)), ConditionStatus::False);
        assert_eq!(ConditionStatus::of(None), ConditionStatus::False);
    }

    #[test]
    fn events_are_normal_on_success_and_warnings_with_the_reason_otherwise() {
        let events = ConditionEvents {
            action: "Decrypt",
            success_reason: "Decrypted",
            success_note: "done",
        };
        let (ok, _) = next_condition(None, "Ready", &Outcome::written("X", "", None));
        let event = condition_event(&ok, &events);
        assert_eq!(event.type_, EventType::Normal);
        assert_eq!(
            (event.reason.as_str(), event.note.as_deref()),
            ("Decrypted", Some("done"))
        );
        assert_eq!(event.action, "Decrypt");
        let (bad, _) = next_condition(None, "Ready", &Outcome::failed("Unbound", "why"));
        let event = condition_event(&bad, &events);
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!(
            (event.reason.as_str(), event.note.as_deref()),
            ("Unbound", Some("why"))
        );
    }

    #[test]
    fn nothing_to_do_while_deleting_and_namespace_and_uid_are_required() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let object = |meta: serde_json::Value| -> ConfigMap {
            serde_json::from_value(json!({ "metadata": meta })).unwrap()
        };
        let live = object(json!({"name": "a", "namespace": "n", "uid": "u"}));
        assert_eq!(
            Source::of(&live).unwrap(),
            Some(Source {
                namespace: "n".into(),
                name: "a".into(),
                uid: "u".into(),
                resource_version: None,
            })
        );
        let deleting = object(json!({"name": "a", "namespace": "n", "uid": "u",
            "deletionTimestamp": "2026-01-01T00:00:00Z"}));
        assert_eq!(Source::of(&deleting).unwrap(), None);
        assert!(Source::of(&object(json!({"name": "a", "uid": "u"}))).is_err());
        assert!(Source::of(&object(json!({"name": "a", "namespace": "n"}))).is_err());
    }

    #[test]
    fn a_source_is_read_again_no_older_than_it_was_seen() {
        let seen: k8s_openapi::api::core::v1::ConfigMap =
            serde_json::from_value(json!({"metadata":
            {"name": "a", "namespace": "n", "uid": "u", "resourceVersion": "4711"}}))
            .unwrap();
        let source = Source::of(&seen).unwrap().unwrap();
        assert_eq!(
            read_params(&source).resource_version.as_deref(),
            Some("4711")
        );
    }

    #[test]
    fn next_maps_to_the_controller_action() {
        let minute = Some(Duration::from_secs(60));
        assert_eq!(
            Next::Idle.action(minute),
            Action::requeue(Duration::from_secs(60))
        );
        assert_eq!(Next::Idle.action(None), Action::await_change());
        assert_eq!(Next::OnChange.action(minute), Action::await_change());
        assert_eq!(
            Next::After(Duration::from_secs(5)).action(minute),
            Action::requeue(Duration::from_secs(5))
        );
    }
}
