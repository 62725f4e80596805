//! What every reconciler of this controller shares about the Secret it produces and the status it
//! keeps: who owns a Secret, the server-side-apply body, the apply call with its refusal handling,
//! the "nothing changed" test, the condition bookkeeping and the events.
//!
//! Each source kind (SealedSecret, SopsSecret, ExternalSecret) marks its Secrets with its own owner
//! label, whose value is the source object's uid; Secrets are watched by that label only.

use crate::context::Context;
use crate::{Error, FIELD_MANAGER};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use signet_api::SealedSecretCondition;
use std::collections::BTreeMap;

/// One status condition (the same shape for every kind: type, status, reason, message, times).
pub type Condition = SealedSecretCondition;

/// Whether a Secret carries `label = uid` or an ownerReference to `uid` (as the Bitnami controller
/// writes it).
pub fn owned_by(secret: &PartialObjectMeta<Secret>, label: &str, uid: &str) -> bool {
    secret.labels().get(label).map(String::as_str) == Some(uid)
        || secret.owner_references().iter().any(|o| o.uid == uid)
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
    /// `Some((apiVersion, kind, name))` to set a controller ownerReference (garbage collection).
    pub owner_reference: Option<(String, String, String)>,
    /// Labels besides the owner label.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// `type`; `None` leaves it to the API server (Opaque) or to the Secret we merge into.
    pub type_: Option<String>,
    /// `immutable`.
    pub immutable: Option<bool>,
    /// The values, base64-encoded as in a Secret's `data`.
    pub data_base64: BTreeMap<String, String>,
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
        if let Some((api_version, kind, name)) = &self.owner_reference {
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
        if let Some(type_) = &self.type_ {
            body["type"] = json!(type_);
        }
        if let Some(immutable) = self.immutable {
            body["immutable"] = json!(immutable);
        }
        body
    }

    /// Applies the Secret. `Ok(Err(message))` when the API server refused it for good (a 4xx other
    /// than 429: invalid, forbidden, immutable); transient failures are `Err`.
    pub async fn apply(&self, ctx: &Context) -> Result<Result<Secret, String>, Error> {
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), self.namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        ctx.metrics.count_write("secret");
        match api
            .patch(self.name, &params, &Patch::Apply(&self.body()))
            .await
        {
            Ok(applied) => Ok(Ok(applied)),
            Err(kube::Error::Api(status))
                if (400..500).contains(&status.code) && status.code != 429 =>
            {
                Ok(Err(format!(
                    "the API server refused the Secret: {}",
                    status.message
                )))
            }
            Err(other) => Err(other.into()),
        }
    }
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

/// The cached metadata of the Secret `name` in `namespace`, or a fresh metadata read.
pub async fn current_secret(
    ctx: &Context,
    cache: &kube::runtime::reflector::Store<PartialObjectMeta<Secret>>,
    namespace: &str,
    name: &str,
) -> Result<Option<PartialObjectMeta<Secret>>, Error> {
    if let Some(meta) = cache.get(&ObjectRef::new(name).within(namespace)) {
        return Ok(Some(meta.as_ref().clone()));
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    Ok(api.get_metadata_opt(name).await?)
}

/// What a source object's status says about its last successful write.
#[derive(Debug, Clone, Copy)]
pub struct LastWrite<'a> {
    /// `metadata.generation` of the source now.
    pub generation: Option<i64>,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// Whether the status condition is `True`.
    pub ready: bool,
    /// resourceVersion of the Secret the status recorded.
    pub secret_resource_version: Option<&'a str>,
}

/// Whether the Secret is known to match the source: it is ours, and the status (or the
/// controller's memory of its last write) records its current resourceVersion for this generation.
pub fn is_up_to_date(
    ctx: &Context,
    last: LastWrite<'_>,
    owner_label: &str,
    uid: &str,
    secret: Option<&PartialObjectMeta<Secret>>,
) -> bool {
    let (Some(generation), Some(secret)) = (last.generation, secret) else {
        return false;
    };
    let Some(secret_rv) = secret.metadata.resource_version.as_deref() else {
        return false;
    };
    if !owned_by(secret, owner_label, uid) {
        return false;
    }
    ctx.was_synced(uid, generation, secret_rv)
        || (last.observed_generation == Some(generation)
            && last.ready
            && last.secret_resource_version == Some(secret_rv))
}

/// The condition to store next, and whether it differs from `old` in status, reason or message
/// (only then is an event due). Times: `lastTransitionTime` moves only when the status flips.
pub fn next_condition(
    old: Option<&Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> (Condition, bool) {
    let changed = old.is_none_or(|c| {
        c.status != status
            || c.reason.as_deref() != Some(reason)
            || c.message.as_deref().unwrap_or_default() != message
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
        reason: Some(reason.to_owned()),
        message: (!message.is_empty()).then(|| message.to_owned()),
    };
    (condition, changed)
}

/// Publishes the event for a condition change: Normal with `success` on `True`, else a Warning with
/// the condition's reason and message. Failures to publish are logged, not returned.
pub async fn publish_condition_event<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    condition: &Condition,
    action: &str,
    success: (&str, &str),
) {
    let (type_, reason, note) = if condition.status == "True" {
        (
            EventType::Normal,
            success.0.to_owned(),
            success.1.to_owned(),
        )
    } else {
        (
            EventType::Warning,
            condition.reason.clone().unwrap_or_default(),
            condition.message.clone().unwrap_or_default(),
        )
    };
    let event = Event {
        type_,
        reason,
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
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
