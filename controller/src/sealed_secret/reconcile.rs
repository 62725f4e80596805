//! The SealedSecret reconciler: unseal with the key ring, render the template, server-side apply the
//! Secret, keep the `Synced` condition. Quiet by design: when nothing changed it writes nothing and
//! emits no event; events are only sent when the condition changes, and failure messages are uniform
//! (they never say which key or step failed, nor anything about the values).

use super::keyring;
use super::{SYNCED_CONDITION, SealedSecret, SealedSecretStatus};
use crate::context::Context;
use crate::runtime::{
    changes, lean_controller, log_trigger_error, owned_secret_triggers, scoped_apis, source_of,
};
use crate::target::{self, DesiredSecret, LastWrite};
use crate::{Error, supervise};
use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector;
use kube::{Resource, ResourceExt};
use serde_json::json;
use signet_api::sealed_secret::{
    MANAGED_ANNOTATION, PATCH_ANNOTATION, SKIP_SET_OWNER_REFERENCES_ANNOTATION,
};
use signet_seal::SealError;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::FIELD_MANAGER;
/// Kind name used in metrics labels.
pub const KIND_SEALED_SECRET: &str = "SealedSecret";
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
    ctx.metrics.count_reconcile(KIND_SEALED_SECRET);
    if sealed.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = sealed
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = sealed.name_any();
    let uid = sealed.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let generation = sealed.metadata.generation;
    let existing = target::current_secret(&ctx, &ctx.secret_store(), &namespace, &name).await?;
    let status = sealed.status.clone().unwrap_or_default();
    let last = LastWrite {
        generation,
        observed_generation: status.observed_generation,
        ready: status.synced().is_some_and(|c| c.status == "True"),
        secret_resource_version: status.secret_resource_version.as_deref(),
    };
    if target::is_up_to_date(&ctx, last, OWNER_LABEL, &uid, existing.as_ref()) {
        return Ok(ctx.idle_action());
    }
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
        Some(secret) if target::owned_by(secret, OWNER_LABEL, &uid) => SecretMode::Own,
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

    let applied = match desired_secret(&sealed, &namespace, &uid, &plain, mode)
        .apply(&ctx)
        .await?
    {
        Ok(applied) => applied,
        Err(message) => {
            ctx.metrics
                .count_error(KIND_SEALED_SECRET, reason::APPLY_FAILED);
            let outcome = Outcome {
                condition_status: "False",
                reason: reason::APPLY_FAILED,
                message,
                key_fingerprint: fingerprint,
                secret_resource_version: None,
            };
            write_status(&sealed, &ctx, outcome).await?;
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
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

/// The Secret a SealedSecret describes.
fn desired_secret<'a>(
    sealed: &'a SealedSecret,
    namespace: &'a str,
    uid: &'a str,
    plain: &signet_api::Secret,
    mode: SecretMode,
) -> DesiredSecret<'a> {
    let template = &plain.metadata;
    let skip_owner = template
        .annotation(SKIP_SET_OWNER_REFERENCES_ANNOTATION)
        .is_some_and(|v| v == "true");
    let own = mode == SecretMode::Own;
    DesiredSecret {
        name: sealed.metadata.name.as_deref().unwrap_or_default(),
        namespace,
        owner_label: OWNER_LABEL,
        owner_uid: uid,
        owner_reference: (own && !skip_owner).then(|| {
            (
                SealedSecret::api_version(&()).into_owned(),
                SealedSecret::kind(&()).into_owned(),
                sealed.name_any(),
            )
        }),
        labels: template.labels.clone().unwrap_or_default(),
        annotations: template.annotations.clone().unwrap_or_default(),
        type_: plain.type_.clone().filter(|_| own),
        immutable: plain.immutable.filter(|_| own),
        data_base64: plain.data.clone().unwrap_or_default(),
    }
}

/// Patches the status when it differs from `outcome` (timestamps aside), and emits an event when the
/// condition itself changed. Writes nothing otherwise.
async fn write_status(sealed: &SealedSecret, ctx: &Context, outcome: Outcome) -> Result<(), Error> {
    let old = sealed.status.clone().unwrap_or_default();
    let (condition, condition_changed) = target::next_condition(
        old.synced(),
        SYNCED_CONDITION,
        outcome.condition_status,
        outcome.reason,
        &outcome.message,
    );
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
    // A merge patch of the whole status: conditions is replaced as a list, and the absent Signet
    // fields are cleared with explicit nulls.
    let patch = json!({
        "conditions": new.conditions,
        "observedGeneration": new.observed_generation,
        "keyFingerprint": new.key_fingerprint,
        "secretResourceVersion": new.secret_resource_version,
    });
    target::patch_status(ctx, sealed, patch).await?;
    if condition_changed {
        target::publish_condition_event(
            ctx,
            sealed,
            &new.conditions[0],
            "Unseal",
            ("Unsealed", "SealedSecret unsealed successfully"),
        )
        .await;
    }
    Ok(())
}

/// Runs the SealedSecret reconciler until `stop` (while leading): waits for a sealing key, then
/// reconciles every SealedSecret on its changes, on changes of its Secret, and on every key change.
pub(crate) async fn run(
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    keyring::wait_for_sealing_key(&ctx.keys).await;
    let (secret_store, secret_writer) = reflector::store();
    ctx.set_secret_store(secret_store);
    let (sealed_api, secret_api) = scoped_apis::<SealedSecret>(&ctx);
    let owned_secrets = owned_secret_triggers(secret_api, OWNER_LABEL, secret_writer);
    let controller = lean_controller(sealed_api, &ctx);
    ctx.set_sealed_secret_store(Some(controller.store()));
    controller
        .watches_stream(owned_secrets, source_of::<SealedSecret>)
        .reconcile_all_on(changes(ctx.keys.subscribe()))
        .graceful_shutdown_on(stop)
        .run(
            supervise::contained(reconcile),
            error_policy,
            Arc::clone(&ctx),
        )
        .for_each(log_trigger_error)
        .await;
    ctx.set_sealed_secret_store(None);
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
