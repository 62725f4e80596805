//! The SopsSecret reconciler: decrypt with the keyring, write the Secret like the SealedSecret
//! reconciler does (owner label and reference, `managed`/`patch` annotations, quiet when nothing
//! changed), and keep the `Ready` condition, which names the key that opened the data key or says
//! why none did. An object opens only where its binding allows; one without a binding only when
//! the operator allows unbound objects (a migration).

use super::open::{OpenError, open};
use super::{READY_CONDITION, SopsSecret};
use crate::context::Context;
use crate::runtime::{
    AbortOnDrop, changes, lean_controller, log_trigger_error, owned_secret_triggers, scoped_apis,
    source_of, wait_until_served,
};
use crate::target::{self, DesiredSecret, LastWrite};
use crate::{Error, supervise};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde_json::json;
use signet_api::sealed_secret::{MANAGED_ANNOTATION, PATCH_ANNOTATION};
use signet_api::sops_secret::{BINDING_FIELD, Binding, ENCRYPTED_REGEX};
use signet_keys::Keyring;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Label on every Secret written from a SopsSecret; its value is the SopsSecret's uid.
pub const OWNER_LABEL: &str = "signet.dev/sops-secret-uid";
/// Kind name in metrics labels.
pub const KIND_SOPS_SECRET: &str = "SopsSecret";

/// Condition reasons besides [`OpenError::reason`].
pub mod reason {
    /// The Secret matches the SopsSecret.
    pub const DECRYPTED: &str = "Decrypted";
    /// A Secret of that name exists and is not this SopsSecret's.
    pub const SECRET_NOT_OWNED: &str = "SecretNotOwned";
    /// The API server refused the Secret.
    pub const APPLY_FAILED: &str = "ApplyFailed";
    /// The object has no `spec.binding` and unbound objects are not allowed.
    pub const UNBOUND: &str = "Unbound";
    /// The binding does not allow this namespace or name (a copy, or a rename).
    pub const BINDING_MISMATCH: &str = "BindingMismatch";
}

/// What the SopsSecret reconciler needs besides the shared context.
pub struct SopsContext {
    /// Client, metrics, recorder, configuration.
    pub base: Arc<Context>,
    /// Metadata of the Secrets carrying [`OWNER_LABEL`].
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// The current keyring.
    pub keyring: watch::Receiver<Arc<Keyring>>,
}

/// Reconciles one SopsSecret.
pub async fn reconcile(object: Arc<SopsSecret>, ctx: Arc<SopsContext>) -> Result<Action, Error> {
    let base = &ctx.base;
    base.metrics.count_reconcile(KIND_SOPS_SECRET);
    if object.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = object
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = object.name_any();
    let uid = object.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let existing = target::current_secret(base, &ctx.secrets, &namespace, &name).await?;
    let status = object.status.clone().unwrap_or_default();
    let last = LastWrite {
        generation: object.metadata.generation,
        observed_generation: status.observed_generation,
        ready: status.ready().is_some_and(|c| c.status == "True"),
        secret_resource_version: status.secret_resource_version.as_deref(),
    };
    if target::is_up_to_date(base, last, OWNER_LABEL, &uid, existing.as_ref()) {
        return Ok(base.idle_action());
    }

    let own = match existing.as_ref() {
        None => true,
        Some(secret) if annotation_is_true(secret, PATCH_ANNOTATION) => false,
        Some(secret)
            if target::owned_by(secret, OWNER_LABEL, &uid)
                || annotation_is_true(secret, MANAGED_ANNOTATION) =>
        {
            true
        }
        Some(_) => {
            let message = format!(
                "Secret {name:?} exists and is not managed by this SopsSecret; annotate it with {MANAGED_ANNOTATION}=\"true\" to let the controller take it over, or {PATCH_ANNOTATION}=\"true\" to merge into it"
            );
            finish(
                &object,
                base,
                "False",
                reason::SECRET_NOT_OWNED,
                &message,
                None,
            )
            .await?;
            return Ok(base.idle_action());
        }
    };

    let allow_unbound = base.config.allow_unbound_sops_secrets;
    if !allow_unbound && !object.spec.contains_key(BINDING_FIELD) {
        // Refused before any decryption: nothing says where it may open.
        finish(
            &object,
            base,
            "False",
            reason::UNBOUND,
            &unbound_message(),
            None,
        )
        .await?;
        return Ok(Action::await_change());
    }
    let keyring = ctx.keyring.borrow().clone();
    let opened = match open(&object.spec, &object.sops, &keyring).await {
        Ok(opened) => opened,
        Err(err) => {
            let message = err.to_string();
            finish(&object, base, "False", err.reason(), &message, None).await?;
            return Ok(match err {
                // A key may arrive (identity Secret, KMS permissions): look again later.
                OpenError::NoKey(_) => Action::requeue(Duration::from_secs(300)),
                _ => Action::await_change(),
            });
        }
    };

    if let Some(binding) = opened
        .binding
        .as_ref()
        .filter(|b| !b.allows(&namespace, &name))
    {
        let message = mismatch_message(binding, &namespace, &name);
        finish(
            &object,
            base,
            "False",
            reason::BINDING_MISMATCH,
            &message,
            None,
        )
        .await?;
        return Ok(Action::await_change());
    }

    let template = object.spec.get("template");
    let string_map = |pointer: &str| -> BTreeMap<String, String> {
        template
            .and_then(|t| t.pointer(pointer))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    };
    let desired = DesiredSecret {
        name: &name,
        namespace: &namespace,
        owner_label: OWNER_LABEL,
        owner_uid: &uid,
        owner_reference: own.then(|| {
            (
                SopsSecret::api_version(&()).into_owned(),
                SopsSecret::kind(&()).into_owned(),
                name.clone(),
            )
        }),
        labels: string_map("/metadata/labels"),
        annotations: string_map("/metadata/annotations"),
        type_: template
            .and_then(|t| t.get("type"))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .filter(|_| own),
        immutable: template
            .and_then(|t| t.get("immutable"))
            .and_then(|v| v.as_bool())
            .filter(|_| own),
        data_base64: target::base64_values(opened.data.iter().map(|(k, v)| (k, v.as_slice()))),
    };
    match desired.apply(base).await? {
        Ok(applied) => {
            base.metrics.count_sync(KIND_SOPS_SECRET);
            let rv = applied.metadata.resource_version.clone();
            let mut message = format!("decrypted with {}", opened.opened_by.join(", "));
            if opened.binding.is_none() {
                message.push_str("; not bound to a namespace (allowed by --allow-unbound-sops-secrets): re-encrypt it with `signet encrypt --kind SopsSecret`");
            }
            finish(
                &object,
                base,
                "True",
                reason::DECRYPTED,
                &message,
                rv.clone(),
            )
            .await?;
            if let (Some(generation), Some(rv)) = (object.metadata.generation, rv) {
                base.remember_synced(&uid, generation, rv);
            }
            Ok(base.idle_action())
        }
        Err(message) => {
            finish(&object, base, "False", reason::APPLY_FAILED, &message, None).await?;
            Ok(Action::requeue(Duration::from_secs(300)))
        }
    }
}

/// How to fix an object without a binding.
fn unbound_message() -> String {
    format!(
        "spec.binding is missing: without it the object would open in any namespace it is copied to. Re-encrypt it with `signet encrypt --kind SopsSecret` (bound to its namespace and name; --scope namespace-wide or cluster-wide to widen), or add `binding: <namespace>/<name>` to spec and encrypt with `sops --encrypt --encrypted-regex '{ENCRYPTED_REGEX}' --mac-only-encrypted`; during a migration the operator may allow unbound SopsSecrets (--allow-unbound-sops-secrets)"
    )
}

/// Why `binding` does not allow `namespace`/`name`, without saying what it allows (it was
/// encrypted; the author can read it with `signet decrypt`).
fn mismatch_message(binding: &Binding, namespace: &str, name: &str) -> String {
    let scope = binding.scope();
    let other = match binding {
        Binding::Strict { namespace: n, .. } if n == namespace => "another name in this namespace",
        _ => "another namespace",
    };
    format!(
        "this SopsSecret was encrypted for {other} ({scope} scope), so it does not open as {namespace}/{name}: a copy or a rename. Re-encrypt it for this place with `signet encrypt --kind SopsSecret` (--scope namespace-wide or cluster-wide to widen)"
    )
}

fn annotation_is_true(secret: &PartialObjectMeta<Secret>, annotation: &str) -> bool {
    secret.annotations().get(annotation).map(String::as_str) == Some("true")
}

/// Writes the status when it changed, counts errors, and sends an event when the condition changed.
async fn finish(
    object: &SopsSecret,
    ctx: &Context,
    status: &str,
    reason: &str,
    message: &str,
    secret_resource_version: Option<String>,
) -> Result<(), Error> {
    if status != "True" {
        ctx.metrics.count_error(KIND_SOPS_SECRET, reason);
    }
    let old = object.status.clone().unwrap_or_default();
    let (condition, changed) =
        target::next_condition(old.ready(), READY_CONDITION, status, reason, message);
    if !changed
        && old.observed_generation == object.metadata.generation
        && old.secret_resource_version == secret_resource_version
    {
        return Ok(());
    }
    let patch = json!({
        "conditions": [condition],
        "observedGeneration": object.metadata.generation,
        "secretResourceVersion": secret_resource_version,
    });
    target::patch_status(ctx, object, patch).await?;
    if changed {
        target::publish_condition_event(
            ctx,
            object,
            &condition,
            "Decrypt",
            ("Decrypted", "SopsSecret decrypted successfully"),
        )
        .await;
    }
    Ok(())
}

/// Runs the SopsSecret reconciler until `stop` (while leading), once the kind is served: watches
/// the identity Secrets and reconciles every SopsSecret on its changes, on changes of its Secret,
/// and on every keyring change.
pub(crate) async fn run(
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let mut stop = Box::pin(stop);
    if !wait_until_served(scoped_apis::<SopsSecret>(&ctx).0, &mut stop).await {
        return;
    }
    let (keyring, identities) = super::identities::watch_identities(
        ctx.client.clone(),
        ctx.config.controller_namespace.clone(),
        ctx.config.sops_age_secrets.clone(),
        ctx.config.sops_environment.clone(),
    );
    let _identities = AbortOnDrop(tokio::spawn(identities));
    let (secret_store, secret_writer) = reflector::store();
    let (api, secret_api) = scoped_apis::<SopsSecret>(&ctx);
    let owned_secrets = owned_secret_triggers(secret_api, OWNER_LABEL, secret_writer);
    let sops_ctx = Arc::new(SopsContext {
        base: Arc::clone(&ctx),
        secrets: secret_store,
        keyring: keyring.clone(),
    });
    lean_controller(api, &ctx)
        .watches_stream(owned_secrets, source_of::<SopsSecret>)
        .reconcile_all_on(changes(keyring))
        .graceful_shutdown_on(stop)
        .run(supervise::contained(reconcile), error_policy, sops_ctx)
        .for_each(log_trigger_error)
        .await;
}

/// Retry policy for errors (API unavailable, conflicts): back off and try again.
pub fn error_policy(object: Arc<SopsSecret>, error: &Error, ctx: Arc<SopsContext>) -> Action {
    ctx.base
        .metrics
        .count_error(KIND_SOPS_SECRET, error.reason());
    tracing::warn!(
        namespace = object.namespace().unwrap_or_default(),
        name = %object.name_any(),
        error = %error,
        "SopsSecret reconcile failed; retrying"
    );
    Action::requeue(Duration::from_secs(5))
}
