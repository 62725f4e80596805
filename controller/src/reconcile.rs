//! The SealedSecret reconciler: unseal with the key ring, render the template, server-side apply the
//! Secret, keep the `Synced` condition. Quiet by design: when nothing changed it writes nothing and
//! emits no event; events are only sent when the condition changes, and failure messages are uniform
//! (they never say which key or step failed, nor anything about the values).

use crate::context::Context;
use crate::crd::{SYNCED_CONDITION, SealedSecret, SealedSecretStatus};
use crate::{Error, KIND_SEALED_SECRET};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use signet_api::SealedSecretCondition;
use signet_api::sealed_secret::{
    MANAGED_ANNOTATION, PATCH_ANNOTATION, SKIP_SET_OWNER_REFERENCES_ANNOTATION,
};
use signet_seal::SealError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Field manager of every write.
pub const FIELD_MANAGER: &str = "signet-controller";
/// Label on every Secret the controller writes; its value is the SealedSecret's uid. Secrets are
/// watched by this label only.
pub const OWNER_LABEL: &str = "signet.dev/sealed-secret-uid";

/// Condition reasons.
pub mod reason {
    /// The Secret matches the SealedSecret.
    pub const UNSEALED: &str = "Unsealed";
    /// No key opens the values (or they are damaged).
    pub const UNSEAL_FAILED: &str = "UnsealFailed";
    /// A `spec.template.data` entry cannot be rendered.
    pub const TEMPLATE_FAILED: &str = "TemplateFailed";
    /// A Secret of that name exists and is not this SealedSecret's.
    pub const SECRET_NOT_OWNED: &str = "SecretNotOwned";
    /// The API server refused the Secret.
    pub const APPLY_FAILED: &str = "ApplyFailed";
}

/// The one message for every unseal failure.
pub const UNSEAL_FAILED_MESSAGE: &str = "cannot unseal: no sealing key of this controller opens the values (wrong certificate, scope, name or namespace, or the values are damaged)";

/// What the controller may do with the Secret of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretMode {
    /// Create or update it and own it (ownerReference unless the template says not to).
    Own,
    /// Merge our values into a Secret that is not ours (`patch` annotation): no ownerReference.
    Patch,
}

/// The outcome that goes into the status.
struct Outcome {
    condition_status: &'static str,
    reason: &'static str,
    message: String,
    key_fingerprint: Option<String>,
    secret_resource_version: Option<String>,
}

/// Reconciles one SealedSecret.
pub async fn reconcile(sealed: Arc<SealedSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics
        .reconciles
        .get_or_create(&crate::metrics::KindLabels {
            kind: KIND_SEALED_SECRET.to_owned(),
        })
        .inc();
    if sealed.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = sealed
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = sealed.name_any();
    let uid = sealed.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let generation = sealed.metadata.generation;
    let cached_secret = ctx
        .secret_store()
        .get(&ObjectRef::new(&name).within(&namespace));

    if is_up_to_date(&sealed, &ctx, &uid, cached_secret.as_deref()) {
        return Ok(ctx.idle_action());
    }

    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = match &cached_secret {
        Some(meta) => Some(meta.as_ref().clone()),
        None => secrets.get_metadata_opt(&name).await?,
    };
    let mode = match existing.as_ref() {
        None => SecretMode::Own,
        Some(secret)
            if secret
                .annotations()
                .get(PATCH_ANNOTATION)
                .map(String::as_str)
                == Some("true") =>
        {
            SecretMode::Patch
        }
        Some(secret) if owned_by(secret, &uid) => SecretMode::Own,
        Some(secret)
            if secret
                .annotations()
                .get(MANAGED_ANNOTATION)
                .map(String::as_str)
                == Some("true") =>
        {
            SecretMode::Own
        }
        Some(_) => {
            let outcome = Outcome {
                condition_status: "False",
                reason: reason::SECRET_NOT_OWNED,
                message: format!(
                    "Secret {name:?} exists and is not managed by this SealedSecret; annotate it with {MANAGED_ANNOTATION}=\"true\" to let the controller take it over, or {PATCH_ANNOTATION}=\"true\" to merge into it"
                ),
                key_fingerprint: None,
                secret_resource_version: None,
            };
            ctx.metrics.count_error(KIND_SEALED_SECRET, outcome.reason);
            write_status(&sealed, &ctx, outcome).await?;
            // That Secret is not watched (no owner label): look again at the next resync, when it
            // may carry the `managed` annotation or be gone.
            return Ok(ctx.idle_action());
        }
    };

    let preferred = sealed
        .status
        .as_ref()
        .and_then(|s| s.key_fingerprint.clone());
    let keys = ctx.keys.snapshot();
    let api_sealed = sealed.to_api();
    let started = Instant::now();
    let unsealed =
        tokio::task::spawn_blocking(move || keys.unseal(&api_sealed, preferred.as_deref()))
            .await
            .map_err(|_| Error::Task)?;
    ctx.metrics
        .unseal_duration
        .observe(started.elapsed().as_secs_f64());
    let (plain, fingerprint) = match unsealed {
        Ok(done) => done,
        Err(err) => {
            let (reason, message) = match err {
                SealError::Template { .. } => (reason::TEMPLATE_FAILED, err.to_string()),
                _ => (reason::UNSEAL_FAILED, UNSEAL_FAILED_MESSAGE.to_owned()),
            };
            ctx.metrics.count_error(KIND_SEALED_SECRET, reason);
            let outcome = Outcome {
                condition_status: "False",
                reason,
                message,
                key_fingerprint: None,
                secret_resource_version: None,
            };
            write_status(&sealed, &ctx, outcome).await?;
            return Ok(Action::await_change());
        }
    };

    let body = secret_body(&sealed, &uid, &plain, mode);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    ctx.metrics.count_write("secret");
    let applied = match secrets.patch(&name, &params, &Patch::Apply(&body)).await {
        Ok(applied) => applied,
        Err(kube::Error::Api(status))
            if (400..500).contains(&status.code) && status.code != 429 =>
        {
            ctx.metrics
                .count_error(KIND_SEALED_SECRET, reason::APPLY_FAILED);
            let outcome = Outcome {
                condition_status: "False",
                reason: reason::APPLY_FAILED,
                message: format!("the API server refused the Secret: {}", status.message),
                key_fingerprint: fingerprint,
                secret_resource_version: None,
            };
            write_status(&sealed, &ctx, outcome).await?;
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
        Err(other) => return Err(other.into()),
    };
    let secret_resource_version = applied.metadata.resource_version.clone();
    let outcome = Outcome {
        condition_status: "True",
        reason: reason::UNSEALED,
        message: String::new(),
        key_fingerprint: fingerprint,
        secret_resource_version: secret_resource_version.clone(),
    };
    write_status(&sealed, &ctx, outcome).await?;
    if let (Some(generation), Some(rv)) = (generation, secret_resource_version) {
        ctx.remember_synced(&uid, generation, rv);
    }
    Ok(ctx.idle_action())
}

/// Whether the Secret is known to match this generation: the status (or the controller's memory of
/// its last write) records the Secret's current resourceVersion and the generation is unchanged.
fn is_up_to_date(
    sealed: &SealedSecret,
    ctx: &Context,
    uid: &str,
    cached_secret: Option<&PartialObjectMeta<Secret>>,
) -> bool {
    let (Some(generation), Some(secret)) = (sealed.metadata.generation, cached_secret) else {
        return false;
    };
    let Some(secret_rv) = secret.metadata.resource_version.as_deref() else {
        return false;
    };
    if !owned_by(secret, uid) {
        return false;
    }
    if ctx.was_synced(uid, generation, secret_rv) {
        return true;
    }
    sealed.status.as_ref().is_some_and(|status| {
        status.observed_generation == Some(generation)
            && status.synced().is_some_and(|c| c.status == "True")
            && status.secret_resource_version.as_deref() == Some(secret_rv)
    })
}

/// Whether a Secret belongs to the SealedSecret with `uid` (our label, or an ownerReference as the
/// Bitnami controller writes it).
fn owned_by(secret: &PartialObjectMeta<Secret>, uid: &str) -> bool {
    secret.labels().get(OWNER_LABEL).map(String::as_str) == Some(uid)
        || secret.owner_references().iter().any(|o| o.uid == uid)
}

/// The server-side-apply body of the Secret.
fn secret_body(
    sealed: &SealedSecret,
    uid: &str,
    plain: &signet_api::Secret,
    mode: SecretMode,
) -> serde_json::Value {
    let template = &plain.metadata;
    let mut labels = template.labels.clone().unwrap_or_default();
    labels.insert(OWNER_LABEL.to_owned(), uid.to_owned());
    let mut metadata = json!({
        "name": sealed.name_any(),
        "namespace": sealed.namespace(),
        "labels": labels,
    });
    if let Some(annotations) = template.annotations.as_ref().filter(|a| !a.is_empty()) {
        metadata["annotations"] = json!(annotations);
    }
    let skip_owner = template
        .annotation(SKIP_SET_OWNER_REFERENCES_ANNOTATION)
        .is_some_and(|v| v == "true");
    if mode == SecretMode::Own && !skip_owner {
        metadata["ownerReferences"] = json!([{
            "apiVersion": SealedSecret::api_version(&()),
            "kind": SealedSecret::kind(&()),
            "name": sealed.name_any(),
            "uid": uid,
            "controller": true,
        }]);
    }
    let mut body = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "data": plain.data.clone().unwrap_or_default(),
    });
    if mode == SecretMode::Own {
        if let Some(type_) = &plain.type_ {
            body["type"] = json!(type_);
        }
        if let Some(immutable) = plain.immutable {
            body["immutable"] = json!(immutable);
        }
    }
    body
}

/// Patches the status when it differs from `outcome` (timestamps aside), and emits an event when the
/// condition itself changed. Writes nothing otherwise.
async fn write_status(sealed: &SealedSecret, ctx: &Context, outcome: Outcome) -> Result<(), Error> {
    let old = sealed.status.clone().unwrap_or_default();
    let old_condition = old.synced();
    let condition_changed = old_condition.is_none_or(|c| {
        c.status != outcome.condition_status
            || c.reason.as_deref() != Some(outcome.reason)
            || c.message.as_deref().unwrap_or_default() != outcome.message
    });
    let now = json!(Timestamp::now().to_string());
    let condition = SealedSecretCondition {
        type_: SYNCED_CONDITION.to_owned(),
        status: outcome.condition_status.to_owned(),
        last_update_time: Some(now.clone()),
        last_transition_time: match old_condition {
            Some(c) if c.status == outcome.condition_status => {
                c.last_transition_time.clone().or(Some(now.clone()))
            }
            _ => Some(now),
        },
        reason: Some(outcome.reason.to_owned()),
        message: (!outcome.message.is_empty()).then(|| outcome.message.clone()),
    };
    let new = SealedSecretStatus {
        conditions: vec![condition],
        observed_generation: sealed.metadata.generation,
        key_fingerprint: outcome.key_fingerprint.clone(),
        secret_resource_version: outcome.secret_resource_version.clone(),
    };
    let unchanged = !condition_changed
        && old.observed_generation == new.observed_generation
        && old.key_fingerprint == new.key_fingerprint
        && old.secret_resource_version == new.secret_resource_version;
    if unchanged {
        return Ok(());
    }
    let api: Api<SealedSecret> = Api::namespaced(
        ctx.client.clone(),
        sealed.metadata.namespace.as_deref().unwrap_or_default(),
    );
    // A merge patch of the whole status: conditions is replaced as a list, and the absent Signet
    // fields are cleared with explicit nulls.
    let patch = json!({"status": {
        "conditions": new.conditions,
        "observedGeneration": new.observed_generation,
        "keyFingerprint": new.key_fingerprint,
        "secretResourceVersion": new.secret_resource_version,
    }});
    ctx.metrics.count_write("status");
    api.patch_status(
        &sealed.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    if condition_changed {
        let (type_, reason, note) = if outcome.condition_status == "True" {
            (
                EventType::Normal,
                "Unsealed",
                "SealedSecret unsealed successfully".to_owned(),
            )
        } else {
            (EventType::Warning, outcome.reason, outcome.message)
        };
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Unseal".to_owned(),
            secondary: None,
        };
        ctx.metrics.count_write("event");
        if let Err(err) = ctx.recorder.publish(&event, &sealed.object_ref(&())).await {
            tracing::warn!(error = %err, "cannot publish an event");
        }
    }
    Ok(())
}

/// Retry policy for errors (API unavailable, conflicts): back off and try again.
pub fn error_policy(sealed: Arc<SealedSecret>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.count_error(KIND_SEALED_SECRET, error.reason());
    tracing::warn!(
        namespace = sealed.namespace().unwrap_or_default(),
        name = %sealed.name_any(),
        error = %error,
        "reconcile failed; retrying"
    );
    Action::requeue(Duration::from_secs(5))
}
