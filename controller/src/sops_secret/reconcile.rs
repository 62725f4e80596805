//! The SopsSecret reconciler: decrypt with the keyring, write the Secret — or one per entry of
//! `spec.secretTemplates` ([`super::templates`]) — like the SealedSecret reconciler does (owner
//! label and reference, `managed`/`patch` annotations, quiet when nothing changed), delete the
//! Secrets of removed templates, roll out the workloads the object names ([`crate::restart`]), and
//! keep the `Ready` condition, which names the key that opened the data key or says why none did,
//! and the per-Secret `status.secrets`. An object opens only where its binding allows; one without
//! a binding only when the operator allows unbound objects (a migration). While `spec.suspend` is
//! true nothing is written.
//!
//! A reconcile reads shape → suspended? → plan (`plan`: up to date, refused, or a claim per
//! Secret) → open → check the binding → apply each → delete the removed → roll out → finish; the
//! decisions are plain functions, unit-tested below.

use super::open::{OpenError, Opened, Values, open};
use super::templates::{self, SecretTemplate, Shape};
use super::{GeneratedSecretStatus, READY_CONDITION, SopsSecret};
use crate::context::{Context, GaugeRefresher};
use crate::runtime::{
    AbortOnDrop, OwnerLabel, changes, lean_controller, log_trigger_error, owned_secret_triggers,
    scoped_apis, source_of, wait_until_served,
};
use crate::target::{
    self, Claim, ConditionEvents, ConditionStatus, DesiredSecret, Next, Outcome, Source,
    StatusUpdate, Written,
};
use crate::{Error, supervise};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PartialObjectMeta, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use serde_json::json;
use signet_api::sops_secret::{BINDING_FIELD, Binding, ENCRYPTED_REGEX};
use signet_keys::Keyring;
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
    /// `spec.suspend` is true: nothing is written.
    pub const SUSPENDED: &str = "Suspended";
    /// `spec.secretTemplates` is not usable (names, count, shape).
    pub const INVALID_TEMPLATES: &str = "InvalidSecretTemplates";
}

/// The `Ready` message while `spec.suspend` is true.
const SUSPENDED_MESSAGE: &str =
    "spec.suspend is true: the controller writes and deletes none of this object's Secrets";

/// When to look again after the API server refused the Secret, or no key opened the data key (a
/// key may arrive: an identity Secret, KMS permissions).
const RETRY: Duration = Duration::from_secs(300);

/// The events of the `Ready` condition.
const EVENTS: ConditionEvents = ConditionEvents {
    action: "Decrypt",
    success_reason: "Decrypted",
    success_note: "SopsSecret decrypted successfully",
};

/// What the SopsSecret reconciler needs besides the shared context.
pub struct SopsContext {
    /// Client, metrics, recorder, configuration.
    pub base: Arc<Context>,
    /// Metadata of the Secrets carrying [`OWNER_LABEL`].
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// The current keyring.
    pub keyring: watch::Receiver<Arc<Keyring>>,
    /// The last successful writes (pruned against the SopsSecret cache with the gauges).
    pub written: Arc<Written>,
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
    let owned_secrets =
        owned_secret_triggers(secret_api, OWNER_LABEL, OwnerLabel::Keep, secret_writer);
    let sops_ctx = Arc::new(SopsContext {
        base: Arc::clone(&ctx),
        secrets: secret_store,
        keyring: keyring.clone(),
        written: Arc::default(),
    });
    let controller = lean_controller(api, &ctx);
    let refresher = gauge_refresher(controller.store(), Arc::clone(&sops_ctx.written));
    ctx.set_gauge_refresher(KIND_SOPS_SECRET, Some(refresher));
    controller
        .watches_stream(owned_secrets, owner_of_secret)
        .reconcile_all_on(changes(keyring))
        .graceful_shutdown_on(stop)
        .run(supervise::contained(reconcile), error_policy, sops_ctx)
        .for_each(log_trigger_error)
        .await;
    ctx.set_gauge_refresher(KIND_SOPS_SECRET, None);
}

/// The SopsSecret a Secret it wrote belongs to: the one its controller ownerReference names (a
/// template's Secret is named by the template), else the one of the same name (a merged Secret).
fn owner_of_secret(secret: PartialObjectMeta<Secret>) -> Option<ObjectRef<SopsSecret>> {
    let owner = secret
        .owner_references()
        .iter()
        .find(|o| {
            o.controller == Some(true)
                && o.kind == super::KIND
                && o.api_version == super::default_api_version()
        })
        .map(|o| o.name.clone());
    match owner {
        Some(name) => Some(ObjectRef::new(&name).within(secret.metadata.namespace.as_deref()?)),
        None => source_of::<SopsSecret>(secret),
    }
}

/// The gauge refresher of a running SopsSecret reconciler: forgets the writes of SopsSecrets that
/// are gone from its cache (no gauge of its own).
pub(crate) fn gauge_refresher(store: Store<SopsSecret>, written: Arc<Written>) -> GaugeRefresher {
    Box::new(move || {
        let state = store.state();
        written.retain_live(state.iter().filter_map(|s| s.metadata.uid.as_deref()));
    })
}

/// Reconciles one SopsSecret.
pub async fn reconcile(object: Arc<SopsSecret>, ctx: Arc<SopsContext>) -> Result<Action, Error> {
    let base = &ctx.base;
    base.metrics.count_reconcile(KIND_SOPS_SECRET);
    let Some(source) = Source::of(object.as_ref())? else {
        return Ok(Action::await_change());
    };
    let shape = match templates::shape_of(&object.spec, &source.name) {
        Ok(shape) => shape,
        Err(message) => {
            let outcome = Outcome::failed(reason::INVALID_TEMPLATES, message);
            return finish(&object, base, outcome, None, Next::OnChange).await;
        }
    };
    if templates::suspended(&object.spec) {
        let outcome = Outcome::failed(reason::SUSPENDED, SUSPENDED_MESSAGE);
        return finish(&object, base, outcome, None, Next::OnChange).await;
    }
    let mut existing = Vec::with_capacity(shape.templates().len());
    for template in shape.templates() {
        existing.push(
            target::current_secret(base, &ctx.secrets, &source.namespace, &template.name).await?,
        );
    }
    let allow_unbound = base.config.allow_unbound_sops_secrets;
    let claims = match plan(
        &object,
        &source,
        &shape,
        &existing,
        &ctx.written,
        allow_unbound,
    ) {
        SopsPlan::UpToDate => return Ok(base.idle_action()),
        SopsPlan::Refuse(outcome, next) => return finish(&object, base, outcome, None, next).await,
        SopsPlan::Write(claims) => claims,
    };
    let keyring = ctx.keyring.borrow().clone();
    let opened = match open(&object.spec, &object.sops, &keyring).await {
        Ok(opened) => opened,
        Err(err) => {
            let (outcome, next) = open_failure(&err);
            return finish(&object, base, outcome, None, next).await;
        }
    };
    if let Some(outcome) = binding_refusal(opened.binding.as_ref(), &source) {
        return finish(&object, base, outcome, None, Next::OnChange).await;
    }
    let values: Vec<&Values> = match &shape {
        Shape::Single(_) => vec![&opened.data],
        Shape::Many(_) => opened.templates.iter().collect(),
    };
    let mut results = Vec::with_capacity(claims.len());
    let mut applied = Vec::new();
    for ((template, claim), values) in shape.templates().iter().zip(&claims).zip(values) {
        let Some(claim) = *claim else {
            results.push(SecretResult::NotOwned);
            continue;
        };
        let desired = desired_secret(&object, &source, template, claim, values);
        match desired.apply(base).await? {
            Ok(secret) => {
                results.push(SecretResult::Applied(secret.metadata.resource_version));
                applied.push(desired);
            }
            Err(message) => results.push(SecretResult::Refused(message)),
        }
    }
    delete_removed(&ctx, &object, &source, &shape).await?;
    crate::restart::roll_out(base, object.as_ref(), &applied.iter().collect::<Vec<_>>()).await?;
    let (outcome, next) = outcome_of(&shape, &results, &opened);
    if outcome.succeeded() {
        base.metrics.count_sync(KIND_SOPS_SECRET);
    }
    let fingerprint = fingerprint(
        &shape,
        results.iter().map(|r| match r {
            SecretResult::Applied(rv) => rv.as_deref(),
            _ => None,
        }),
    );
    let secrets = secret_statuses(&shape, &results);
    let action = finish(&object, base, outcome.clone(), Some(secrets), next).await?;
    if outcome.succeeded() {
        ctx.written
            .remember(&source.uid, object.metadata.generation, fingerprint);
    }
    Ok(action)
}

/// What became of one Secret of the object.
enum SecretResult {
    /// Written; its resourceVersion.
    Applied(Option<String>),
    /// Someone else's: left alone.
    NotOwned,
    /// The API server refused it; why.
    Refused(String),
}

/// What to do before decrypting, as [`Plan`] says for one Secret, with a claim per Secret (`None`:
/// someone else's Secret, left alone).
#[derive(Debug, Clone, PartialEq, Eq)]
enum SopsPlan {
    UpToDate,
    Refuse(Outcome, Next),
    Write(Vec<Option<Claim>>),
}

/// What to do before decrypting: nothing when every Secret is current; refuse another's Secret in
/// the single shape (look again at the next resync) or an unbound object the operator does not
/// allow (nothing says where it may open); else write with the claims of the `managed`/`patch`
/// annotations (in the many shape, someone else's Secret is skipped and reported).
fn plan(
    object: &SopsSecret,
    source: &Source,
    shape: &Shape,
    existing: &[Option<PartialObjectMeta<Secret>>],
    written: &Written,
    allow_unbound: bool,
) -> SopsPlan {
    if up_to_date(object, source, shape, existing, written) {
        return SopsPlan::UpToDate;
    }
    let claims: Vec<Option<Claim>> = existing
        .iter()
        .map(|e| Claim::by_annotations(e.as_ref(), OWNER_LABEL, &source.uid))
        .collect();
    if let Shape::Single(_) = shape
        && claims.first().copied().flatten().is_none()
    {
        let message = target::not_managed_message(&source.name, KIND_SOPS_SECRET);
        return SopsPlan::Refuse(
            Outcome::failed(reason::SECRET_NOT_OWNED, message),
            Next::Idle,
        );
    }
    if !allow_unbound && !object.spec.contains_key(BINDING_FIELD) {
        let outcome = Outcome::failed(reason::UNBOUND, unbound_message());
        return SopsPlan::Refuse(outcome, Next::OnChange);
    }
    SopsPlan::Write(claims)
}

/// Whether every Secret is ours and known to match this generation: the status (or the memory of
/// the last write) records their current resourceVersions.
fn up_to_date(
    object: &SopsSecret,
    source: &Source,
    shape: &Shape,
    existing: &[Option<PartialObjectMeta<Secret>>],
    written: &Written,
) -> bool {
    let Some(generation) = object.metadata.generation else {
        return false;
    };
    if !existing.iter().all(|e| {
        e.as_ref()
            .is_some_and(|s| target::owned_by(s, OWNER_LABEL, &source.uid))
    }) {
        return false;
    }
    let Some(now) = fingerprint(
        shape,
        existing.iter().map(|e| {
            e.as_ref()
                .and_then(|s| s.metadata.resource_version.as_deref())
        }),
    ) else {
        return false;
    };
    if written.was(&source.uid, generation, &now) {
        return true;
    }
    let Some(status) = object.status.as_ref() else {
        return false;
    };
    let recorded = match shape {
        Shape::Single(_) => status.secret_resource_version.clone(),
        Shape::Many(templates) => {
            let names: Vec<&str> = status.secrets.iter().map(|s| s.name.as_str()).collect();
            let same_names = names
                .iter()
                .copied()
                .eq(templates.iter().map(|t| t.name.as_str()));
            same_names
                .then(|| {
                    fingerprint(
                        shape,
                        status.secrets.iter().map(|s| {
                            (s.status == "True")
                                .then_some(s.resource_version.as_deref())
                                .flatten()
                        }),
                    )
                })
                .flatten()
        }
    };
    status.observed_generation == Some(generation)
        && ConditionStatus::of(status.ready()) == ConditionStatus::True
        && recorded.as_deref() == Some(now.as_str())
}

/// One string for the resourceVersions of all the Secrets (`None` when one is missing): the
/// version itself in the single shape, `name=version` joined by commas otherwise.
fn fingerprint<'a>(
    shape: &Shape,
    versions: impl Iterator<Item = Option<&'a str>>,
) -> Option<String> {
    let versions: Vec<&str> = versions.collect::<Option<_>>()?;
    match shape {
        Shape::Single(_) => versions.first().map(|v| (*v).to_owned()),
        Shape::Many(templates) => (versions.len() == templates.len()).then(|| {
            templates
                .iter()
                .zip(versions)
                .map(|(t, v)| format!("{}={v}", t.name))
                .collect::<Vec<_>>()
                .join(",")
        }),
    }
}

/// The condition after the writes, and when to look again: every Secret written, or the first
/// that was not (someone else's: at the next resync; refused: after a while).
fn outcome_of(shape: &Shape, results: &[SecretResult], opened: &Opened) -> (Outcome, Next) {
    let names = shape.templates().iter().map(|t| t.name.as_str());
    for (name, result) in names.zip(results) {
        match result {
            SecretResult::Applied(_) => {}
            SecretResult::NotOwned => {
                let message = target::not_managed_message(name, KIND_SOPS_SECRET);
                return (
                    Outcome::failed(reason::SECRET_NOT_OWNED, message),
                    Next::Idle,
                );
            }
            SecretResult::Refused(message) => {
                let message = match shape {
                    Shape::Single(_) => message.clone(),
                    Shape::Many(_) => format!("Secret {name:?}: {message}"),
                };
                return (
                    Outcome::failed(reason::APPLY_FAILED, message),
                    Next::After(RETRY),
                );
            }
        }
    }
    let secret_rv = match (shape, results.first()) {
        (Shape::Single(_), Some(SecretResult::Applied(rv))) => rv.clone(),
        _ => None,
    };
    let mut message = decrypted_message(opened);
    if let Shape::Many(templates) = shape {
        message.push_str(&format!("; {} Secrets written", templates.len()));
    }
    (
        Outcome::written(reason::DECRYPTED, message, secret_rv),
        Next::Idle,
    )
}

/// The per-Secret status of the many shape (empty for the single shape).
fn secret_statuses(shape: &Shape, results: &[SecretResult]) -> Vec<GeneratedSecretStatus> {
    let Shape::Many(templates) = shape else {
        return Vec::new();
    };
    templates
        .iter()
        .zip(results)
        .map(|(template, result)| {
            let (status, reason, resource_version) = match result {
                SecretResult::Applied(rv) => ("True", None, rv.clone()),
                SecretResult::NotOwned => ("False", Some(reason::SECRET_NOT_OWNED), None),
                SecretResult::Refused(_) => ("False", Some(reason::APPLY_FAILED), None),
            };
            GeneratedSecretStatus {
                name: template.name.clone(),
                status: status.to_owned(),
                reason: reason.map(str::to_owned),
                resource_version,
            }
        })
        .collect()
}

/// Deletes the Secrets of the templates removed since the last write — the names `status.secrets`
/// lists and no template names now — that this object owns (owner label and ownerReference: a
/// Secret merged into stays). Looked up by name in the cache: a write where no template went away
/// costs nothing more, however many Secrets the controller watches.
async fn delete_removed(
    ctx: &SopsContext,
    object: &SopsSecret,
    source: &Source,
    shape: &Shape,
) -> Result<(), Error> {
    let names: Vec<&str> = shape.templates().iter().map(|t| t.name.as_str()).collect();
    let removed = object
        .status
        .iter()
        .flat_map(|s| &s.secrets)
        .take(super::open::MAX_TEMPLATES)
        .map(|s| s.name.as_str())
        .filter(|name| !names.contains(name));
    let api: Api<Secret> = Api::namespaced(ctx.base.client.clone(), &source.namespace);
    for name in removed {
        let Some(secret) = ctx
            .secrets
            .get(&ObjectRef::new(name).within(&source.namespace))
        else {
            continue;
        };
        let owned = secret.labels().get(OWNER_LABEL) == Some(&source.uid)
            && secret
                .owner_references()
                .iter()
                .any(|o| o.uid == source.uid && o.controller == Some(true));
        if !owned {
            continue;
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: secret.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        ctx.base.metrics.count_write("secret");
        match api.delete(name, &params).await {
            Ok(_) => {
                tracing::info!(namespace = %source.namespace, secret = %name, "deleted a Secret whose template was removed")
            }
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

/// The outcome of an object that does not open, and when to look again: only when a key may
/// arrive; anything else needs a new object.
fn open_failure(err: &OpenError) -> (Outcome, Next) {
    let next = match err {
        OpenError::NoKey(_) => Next::After(RETRY),
        _ => Next::OnChange,
    };
    (Outcome::failed(err.reason(), err.to_string()), next)
}

/// The refusal of an object opened where its binding does not allow (`None`: no binding, or it
/// allows this place).
fn binding_refusal(binding: Option<&Binding>, source: &Source) -> Option<Outcome> {
    let binding = binding.filter(|b| !b.allows(&source.namespace, &source.name))?;
    Some(Outcome::failed(
        reason::BINDING_MISMATCH,
        mismatch_message(binding, &source.namespace, &source.name),
    ))
}

/// The `Ready` message of a decrypted object: which keys opened it, and a nudge when unbound.
fn decrypted_message(opened: &Opened) -> String {
    let mut message = format!("decrypted with {}", opened.opened_by.join(", "));
    if opened.binding.is_none() {
        message.push_str("; not bound to a namespace (allowed by --allow-unbound-sops-secrets): re-encrypt it with `signet encrypt --kind SopsSecret`");
    }
    message
}

/// One Secret of a SopsSecret: its template's metadata, type and immutability, and its values.
fn desired_secret<'a>(
    object: &SopsSecret,
    source: &'a Source,
    template: &'a SecretTemplate,
    claim: Claim,
    values: &Values,
) -> DesiredSecret<'a> {
    DesiredSecret {
        name: &template.name,
        namespace: &source.namespace,
        owner_label: OWNER_LABEL,
        owner_uid: &source.uid,
        owner: target::owner_of(object),
        claim,
        labels: template.labels.clone(),
        annotations: template.annotations.clone(),
        type_: template.type_.clone(),
        immutable: template.immutable,
        data_base64: target::base64_values(values.iter().map(|(k, v)| (k, v.as_slice()))),
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

/// Writes the status for `outcome` (and `secrets`, the per-Secret status after a write; `None`
/// keeps the last one, which names the Secrets to delete when a template goes) when it changed
/// (and its event), and says what comes next.
async fn finish(
    object: &SopsSecret,
    ctx: &Context,
    outcome: Outcome,
    secrets: Option<Vec<GeneratedSecretStatus>>,
    next: Next,
) -> Result<Action, Error> {
    let secrets = secrets.unwrap_or_else(|| {
        object
            .status
            .as_ref()
            .map(|s| s.secrets.clone())
            .unwrap_or_default()
    });
    let update = status_update(object, &outcome, secrets);
    target::finish(ctx, KIND_SOPS_SECRET, object, &outcome, update, &EVENTS).await?;
    Ok(next.action(ctx.config.resync_period))
}

/// The status patch for `outcome`, or `None` when the status already says it (timestamps aside).
fn status_update(
    object: &SopsSecret,
    outcome: &Outcome,
    secrets: Vec<GeneratedSecretStatus>,
) -> Option<StatusUpdate> {
    let old = object.status.clone().unwrap_or_default();
    let (condition, changed) = target::next_condition(old.ready(), READY_CONDITION, outcome);
    let generation = object.metadata.generation;
    if !changed
        && old.observed_generation == generation
        && old.secret_resource_version == outcome.secret_resource_version
        && old.secrets == secrets
    {
        return None;
    }
    let patch = json!({
        "conditions": [condition],
        "observedGeneration": generation,
        "secretResourceVersion": outcome.secret_resource_version,
        "secrets": (!secrets.is_empty()).then_some(secrets),
    });
    Some(StatusUpdate {
        patch,
        changed: changed.then_some(condition),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::tests::secret_meta;
    use signet_api::sealed_secret::PATCH_ANNOTATION;

    fn object(spec: serde_json::Value, status: serde_json::Value) -> SopsSecret {
        serde_json::from_value(json!({
            "apiVersion": "signet.dev/v1alpha1", "kind": "SopsSecret",
            "metadata": {"name": "db", "namespace": "shop", "uid": "u1", "generation": 3},
            "spec": spec, "sops": {}, "status": status,
        }))
        .unwrap()
    }

    fn bound() -> serde_json::Value {
        json!({"binding": "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]", "data": {}})
    }

    fn source() -> Source {
        Source::of(&object(bound(), json!({}))).unwrap().unwrap()
    }

    /// The plan of an object of the single shape whose Secret is `existing`.
    fn single(
        object: &SopsSecret,
        existing: Option<&PartialObjectMeta<Secret>>,
        written: &Written,
        allow_unbound: bool,
    ) -> SopsPlan {
        let shape = templates::shape_of(&object.spec, "db").unwrap();
        plan(
            object,
            &source(),
            &shape,
            &[existing.cloned()],
            written,
            allow_unbound,
        )
    }

    #[test]
    fn plan_checks_currency_then_the_claim_then_the_binding() {
        let written = Written::default();
        let ours = secret_meta(json!({"resourceVersion": "9", "labels": {OWNER_LABEL: "u1"}}));
        let ready = json!({"observedGeneration": 3, "secretResourceVersion": "9",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Decrypted"}]});
        let current = object(bound(), ready.clone());
        assert_eq!(
            single(&current, Some(&ours), &written, false),
            SopsPlan::UpToDate
        );
        // Also current when the status lags behind the write this controller remembers.
        let lagging = object(bound(), json!({}));
        assert_eq!(
            single(&lagging, Some(&ours), &written, false),
            SopsPlan::Write(vec![Some(Claim::OWN)])
        );
        written.remember("u1", Some(3), Some("9".into()));
        assert_eq!(
            single(&lagging, Some(&ours), &written, false),
            SopsPlan::UpToDate
        );
        let patched = secret_meta(json!({"annotations": {PATCH_ANNOTATION: "true"}}));
        assert_eq!(
            single(&lagging, Some(&patched), &written, false),
            SopsPlan::Write(vec![Some(Claim::Merge)])
        );
        // Someone else's Secret is refused before the binding is looked at.
        let unbound = object(json!({"data": {}}), json!({}));
        let foreign = secret_meta(json!({}));
        let SopsPlan::Refuse(outcome, next) = single(&unbound, Some(&foreign), &written, false)
        else {
            panic!("a foreign Secret is not refused");
        };
        assert_eq!(
            (outcome.reason, next),
            (reason::SECRET_NOT_OWNED, Next::Idle)
        );
        assert!(
            outcome
                .message
                .contains("is not managed by this SopsSecret")
        );
        let SopsPlan::Refuse(outcome, next) = single(&unbound, None, &written, false) else {
            panic!("an unbound object is not refused");
        };
        assert_eq!((outcome.reason, next), (reason::UNBOUND, Next::OnChange));
        assert_eq!(outcome.message, unbound_message());
        assert_eq!(
            single(&unbound, None, &written, true),
            SopsPlan::Write(vec![Some(Claim::OWN)])
        );
    }

    #[test]
    fn only_a_missing_key_is_worth_waiting_for() {
        let (outcome, next) = open_failure(&OpenError::NoKey("age: none of 2".into()));
        assert_eq!(next, Next::After(RETRY));
        assert_eq!(outcome.reason, "NoDecryptionKey");
        assert!(outcome.message.contains("age: none of 2"));
        let (outcome, next) = open_failure(&OpenError::Tampered);
        assert_eq!(next, Next::OnChange);
        assert_eq!(outcome.reason, "DecryptionFailed");
    }

    #[test]
    fn a_binding_refuses_other_places_without_saying_which_it_allows() {
        let source = source();
        assert_eq!(binding_refusal(None, &source), None);
        let here = Binding::parse("shop/db").unwrap();
        assert_eq!(binding_refusal(Some(&here), &source), None);
        assert_eq!(
            binding_refusal(Some(&Binding::parse("shop/*").unwrap()), &source),
            None
        );
        let renamed =
            binding_refusal(Some(&Binding::parse("shop/other").unwrap()), &source).unwrap();
        assert_eq!(renamed.reason, reason::BINDING_MISMATCH);
        assert!(
            renamed
                .message
                .contains("another name in this namespace (strict scope)")
        );
        assert!(!renamed.message.contains("shop/other"));
        let copied = binding_refusal(Some(&Binding::parse("bank/*").unwrap()), &source).unwrap();
        assert!(
            copied
                .message
                .contains("another namespace (namespace-wide scope)")
        );
        assert!(!copied.message.contains("bank"));
    }

    #[test]
    fn the_secret_follows_the_template_and_the_claim() {
        let spec = json!({"binding": "x", "template": {
            "metadata": {"labels": {"app": "shop"}, "annotations": {"a": "b"}},
            "type": "kubernetes.io/basic-auth", "immutable": true}});
        let object = object(spec, json!({}));
        let opened = Opened {
            data: Values::from([("k".to_owned(), zeroize::Zeroizing::new(b"v".to_vec()))]),
            templates: Vec::new(),
            opened_by: vec!["age1x".into()],
            binding: None,
        };
        let source = source();
        let shape = templates::shape_of(&object.spec, "db").unwrap();
        let template = &shape.templates()[0];
        let body = desired_secret(&object, &source, template, Claim::OWN, &opened.data).body();
        assert_eq!(body["metadata"]["labels"]["app"], "shop");
        assert_eq!(body["metadata"]["labels"][OWNER_LABEL], "u1");
        assert_eq!(body["metadata"]["annotations"]["a"], "b");
        assert_eq!(body["metadata"]["ownerReferences"][0]["kind"], "SopsSecret");
        assert_eq!(body["type"], "kubernetes.io/basic-auth");
        assert_eq!(body["immutable"], true);
        assert_eq!(body["data"]["k"], "dg==");
        let body = desired_secret(&object, &source, template, Claim::Merge, &opened.data).body();
        assert!(body.get("type").is_none() && body.get("immutable").is_none());
        assert!(decrypted_message(&opened).starts_with("decrypted with age1x; not bound"));
        let bound = Opened {
            binding: Some(Binding::parse("shop/db").unwrap()),
            ..opened
        };
        assert_eq!(decrypted_message(&bound), "decrypted with age1x");
    }

    #[test]
    fn the_status_is_written_only_when_it_says_something_new() {
        let ready = json!({"observedGeneration": 3, "secretResourceVersion": "9",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Decrypted",
                "message": "decrypted with age1x"}]});
        let object = object(bound(), ready);
        let same = Outcome::written(reason::DECRYPTED, "decrypted with age1x", Some("9".into()));
        assert_eq!(status_update(&object, &same, Vec::new()), None);
        let rewritten =
            Outcome::written(reason::DECRYPTED, "decrypted with age1x", Some("10".into()));
        let update = status_update(&object, &rewritten, Vec::new()).unwrap();
        assert_eq!(update.changed, None);
        assert_eq!(update.patch["secretResourceVersion"], "10");
        let failed = Outcome::failed(reason::UNBOUND, "x");
        let update = status_update(&object, &failed, Vec::new()).unwrap();
        assert_eq!(
            update.changed.unwrap().reason.as_deref(),
            Some(reason::UNBOUND)
        );
        assert!(update.patch["secretResourceVersion"].is_null());
        assert_eq!(update.patch["observedGeneration"], 3);
    }

    fn many() -> serde_json::Value {
        json!({"binding": "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]", "secretTemplates": [
            {"name": "a", "data": {}}, {"name": "b", "stringData": {}}]})
    }

    fn generated(name: &str, status: &str, rv: Option<&str>) -> GeneratedSecretStatus {
        GeneratedSecretStatus {
            name: name.into(),
            status: status.into(),
            reason: None,
            resource_version: rv.map(str::to_owned),
        }
    }

    #[test]
    fn many_secrets_are_current_only_all_together() {
        let written = Written::default();
        let ours = |rv: &str| {
            Some(secret_meta(
                json!({"resourceVersion": rv, "labels": {OWNER_LABEL: "u1"}}),
            ))
        };
        let ready = json!({"observedGeneration": 3, "secrets": [
                {"name": "a", "status": "True", "resourceVersion": "5"},
                {"name": "b", "status": "True", "resourceVersion": "6"}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "Decrypted"}]});
        let object = object(many(), ready);
        let shape = templates::shape_of(&object.spec, "db").unwrap();
        let plan_with = |existing: Vec<Option<PartialObjectMeta<Secret>>>| {
            plan(&object, &source(), &shape, &existing, &written, false)
        };
        assert_eq!(plan_with(vec![ours("5"), ours("6")]), SopsPlan::UpToDate);
        // One changed, one missing, or one someone else's: all are written again, the foreign
        // one skipped (not a refusal of the whole object).
        assert_eq!(
            plan_with(vec![ours("5"), ours("7")]),
            SopsPlan::Write(vec![Some(Claim::OWN); 2])
        );
        assert_eq!(
            plan_with(vec![ours("5"), None]),
            SopsPlan::Write(vec![Some(Claim::OWN); 2])
        );
        assert_eq!(
            plan_with(vec![
                Some(secret_meta(json!({"resourceVersion": "1"}))),
                ours("6")
            ]),
            SopsPlan::Write(vec![None, Some(Claim::OWN)])
        );
        assert_eq!(
            fingerprint(&shape, [Some("5"), Some("6")].into_iter()).as_deref(),
            Some("a=5,b=6")
        );
        assert_eq!(fingerprint(&shape, [Some("5"), None].into_iter()), None);
    }

    #[test]
    fn the_outcome_names_the_first_secret_not_written_and_the_status_lists_each() {
        let shape = templates::shape_of(many().as_object().unwrap(), "db").unwrap();
        let opened = Opened {
            data: Values::new(),
            templates: vec![Values::new(), Values::new()],
            opened_by: vec!["age1x".into()],
            binding: Some(Binding::parse("shop/db").unwrap()),
        };
        let all = [
            SecretResult::Applied(Some("5".into())),
            SecretResult::Applied(Some("6".into())),
        ];
        let (outcome, next) = outcome_of(&shape, &all, &opened);
        assert!(outcome.succeeded() && next == Next::Idle);
        assert_eq!(outcome.message, "decrypted with age1x; 2 Secrets written");
        assert_eq!(
            secret_statuses(&shape, &all),
            vec![
                generated("a", "True", Some("5")),
                generated("b", "True", Some("6"))
            ]
        );
        let partial = [
            SecretResult::Applied(Some("5".into())),
            SecretResult::NotOwned,
        ];
        let (outcome, next) = outcome_of(&shape, &partial, &opened);
        assert_eq!(
            (outcome.reason, next),
            (reason::SECRET_NOT_OWNED, Next::Idle)
        );
        assert!(outcome.message.starts_with("Secret \"b\" exists"));
        let statuses = secret_statuses(&shape, &partial);
        assert_eq!(
            statuses[1].reason.as_deref(),
            Some(reason::SECRET_NOT_OWNED)
        );
        let refused = [
            SecretResult::Refused("invalid".into()),
            SecretResult::Applied(None),
        ];
        let (outcome, next) = outcome_of(&shape, &refused, &opened);
        assert_eq!(outcome.message, "Secret \"a\": invalid");
        assert_eq!(next, Next::After(RETRY));
        // The per-Secret status alone is news for the status.
        let object = object(many(), json!({}));
        let update = status_update(&object, &outcome, statuses).unwrap();
        assert_eq!(update.patch["secrets"][0]["name"], "a");
        assert_eq!(update.patch["secrets"][1]["status"], "False");
    }
}
