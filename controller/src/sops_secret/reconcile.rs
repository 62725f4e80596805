//! The SopsSecret reconciler: decrypt with the keyring, write the Secret like the SealedSecret
//! reconciler does (owner label and reference, `managed`/`patch` annotations, quiet when nothing
//! changed), and keep the `Ready` condition, which names the key that opened the data key or says
//! why none did. An object opens only where its binding allows; one without a binding only when
//! the operator allows unbound objects (a migration).
//!
//! A reconcile reads plan (`plan`: up to date, refused, or the claim on the Secret) → open →
//! check the binding → apply → finish; the decisions are plain functions, unit-tested below.

use super::open::{OpenError, Opened, open};
use super::{READY_CONDITION, SopsSecret, SopsSecretStatus};
use crate::context::{Context, GaugeRefresher};
use crate::runtime::{
    AbortOnDrop, changes, lean_controller, log_trigger_error, owned_secret_triggers, scoped_apis,
    source_of, wait_until_served,
};
use crate::target::{
    self, Claim, ConditionEvents, ConditionStatus, DesiredSecret, LastWrite, Next, Outcome, Plan,
    Source, StatusUpdate, Written,
};
use crate::{Error, supervise};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, Store};
use serde_json::json;
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
    let owned_secrets = owned_secret_triggers(secret_api, OWNER_LABEL, secret_writer);
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
        .watches_stream(owned_secrets, source_of::<SopsSecret>)
        .reconcile_all_on(changes(keyring))
        .graceful_shutdown_on(stop)
        .run(supervise::contained(reconcile), error_policy, sops_ctx)
        .for_each(log_trigger_error)
        .await;
    ctx.set_gauge_refresher(KIND_SOPS_SECRET, None);
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
    let existing =
        target::current_secret(base, &ctx.secrets, &source.namespace, &source.name).await?;
    let allow_unbound = base.config.allow_unbound_sops_secrets;
    let claim = match plan(
        &object,
        &source,
        existing.as_ref(),
        &ctx.written,
        allow_unbound,
    ) {
        Plan::UpToDate => return Ok(base.idle_action()),
        Plan::Refuse(outcome, next) => return finish(&object, base, outcome, next).await,
        Plan::Write(claim) => claim,
    };
    let keyring = ctx.keyring.borrow().clone();
    let opened = match open(&object.spec, &object.sops, &keyring).await {
        Ok(opened) => opened,
        Err(err) => {
            let (outcome, next) = open_failure(&err);
            return finish(&object, base, outcome, next).await;
        }
    };
    if let Some(outcome) = binding_refusal(opened.binding.as_ref(), &source) {
        return finish(&object, base, outcome, Next::OnChange).await;
    }
    let (outcome, next) = match desired_secret(&object, &source, claim, &opened)
        .apply(base)
        .await?
    {
        Ok(applied) => {
            base.metrics.count_sync(KIND_SOPS_SECRET);
            let message = decrypted_message(&opened);
            let secret_rv = applied.metadata.resource_version;
            (
                Outcome::written(reason::DECRYPTED, message, secret_rv),
                Next::Idle,
            )
        }
        Err(message) => (
            Outcome::failed(reason::APPLY_FAILED, message),
            Next::After(RETRY),
        ),
    };
    let secret_rv = outcome.secret_resource_version.clone();
    let action = finish(&object, base, outcome, next).await?;
    ctx.written
        .remember(&source.uid, object.metadata.generation, secret_rv);
    Ok(action)
}

/// What to do before decrypting: nothing when the Secret is current; refuse another's Secret (look
/// again at the next resync) or an unbound object the operator does not allow (nothing says where
/// it may open); else write with the claim of the `managed`/`patch` annotations.
fn plan(
    object: &SopsSecret,
    source: &Source,
    existing: Option<&PartialObjectMeta<Secret>>,
    written: &Written,
    allow_unbound: bool,
) -> Plan {
    let status = object.status.as_ref();
    let last = LastWrite {
        generation: object.metadata.generation,
        observed_generation: status.and_then(|s| s.observed_generation),
        condition: ConditionStatus::of(status.and_then(SopsSecretStatus::ready)),
        secret_resource_version: status.and_then(|s| s.secret_resource_version.as_deref()),
    };
    if last.covers(existing, OWNER_LABEL, &source.uid, written) {
        return Plan::UpToDate;
    }
    let Some(claim) = Claim::by_annotations(existing, OWNER_LABEL, &source.uid) else {
        let message = target::not_managed_message(&source.name, KIND_SOPS_SECRET);
        return Plan::Refuse(
            Outcome::failed(reason::SECRET_NOT_OWNED, message),
            Next::Idle,
        );
    };
    if !allow_unbound && !object.spec.contains_key(BINDING_FIELD) {
        let outcome = Outcome::failed(reason::UNBOUND, unbound_message());
        return Plan::Refuse(outcome, Next::OnChange);
    }
    Plan::Write(claim)
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

/// The Secret a SopsSecret describes: `spec.template`'s metadata, type and immutability.
fn desired_secret<'a>(
    object: &SopsSecret,
    source: &'a Source,
    claim: Claim,
    opened: &Opened,
) -> DesiredSecret<'a> {
    let template = object.spec.get("template");
    let string_map = |pointer: &str| -> BTreeMap<String, String> {
        template
            .and_then(|t| t.pointer(pointer))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    };
    DesiredSecret {
        name: &source.name,
        namespace: &source.namespace,
        owner_label: OWNER_LABEL,
        owner_uid: &source.uid,
        owner: target::owner_of(object),
        claim,
        labels: string_map("/metadata/labels"),
        annotations: string_map("/metadata/annotations"),
        type_: template
            .and_then(|t| t.get("type"))
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        immutable: template
            .and_then(|t| t.get("immutable"))
            .and_then(|v| v.as_bool()),
        data_base64: target::base64_values(opened.data.iter().map(|(k, v)| (k, v.as_slice()))),
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

/// Writes the status for `outcome` when it changed (and its event), and says what comes next.
async fn finish(
    object: &SopsSecret,
    ctx: &Context,
    outcome: Outcome,
    next: Next,
) -> Result<Action, Error> {
    let update = status_update(object, &outcome);
    target::finish(ctx, KIND_SOPS_SECRET, object, &outcome, update, &EVENTS).await?;
    Ok(next.action(ctx.config.resync_period))
}

/// The status patch for `outcome`, or `None` when the status already says it (timestamps aside).
fn status_update(object: &SopsSecret, outcome: &Outcome) -> Option<StatusUpdate> {
    let old = object.status.clone().unwrap_or_default();
    let (condition, changed) = target::next_condition(old.ready(), READY_CONDITION, outcome);
    let generation = object.metadata.generation;
    if !changed
        && old.observed_generation == generation
        && old.secret_resource_version == outcome.secret_resource_version
    {
        return None;
    }
    let patch = json!({
        "conditions": [condition],
        "observedGeneration": generation,
        "secretResourceVersion": outcome.secret_resource_version,
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

    #[test]
    fn plan_checks_currency_then_the_claim_then_the_binding() {
        let written = Written::default();
        let ours = secret_meta(json!({"resourceVersion": "9", "labels": {OWNER_LABEL: "u1"}}));
        let ready = json!({"observedGeneration": 3, "secretResourceVersion": "9",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Decrypted"}]});
        let current = object(bound(), ready.clone());
        assert_eq!(
            plan(&current, &source(), Some(&ours), &written, false),
            Plan::UpToDate
        );
        // Also current when the status lags behind the write this controller remembers.
        let lagging = object(bound(), json!({}));
        assert_eq!(
            plan(&lagging, &source(), Some(&ours), &written, false),
            Plan::Write(Claim::OWN)
        );
        written.remember("u1", Some(3), Some("9".into()));
        assert_eq!(
            plan(&lagging, &source(), Some(&ours), &written, false),
            Plan::UpToDate
        );
        let patched = secret_meta(json!({"annotations": {PATCH_ANNOTATION: "true"}}));
        assert_eq!(
            plan(&lagging, &source(), Some(&patched), &written, false),
            Plan::Write(Claim::Merge)
        );
        // Someone else's Secret is refused before the binding is looked at.
        let unbound = object(json!({"data": {}}), json!({}));
        let foreign = secret_meta(json!({}));
        let Plan::Refuse(outcome, next) =
            plan(&unbound, &source(), Some(&foreign), &written, false)
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
        let Plan::Refuse(outcome, next) = plan(&unbound, &source(), None, &written, false) else {
            panic!("an unbound object is not refused");
        };
        assert_eq!((outcome.reason, next), (reason::UNBOUND, Next::OnChange));
        assert_eq!(outcome.message, unbound_message());
        assert_eq!(
            plan(&unbound, &source(), None, &written, true),
            Plan::Write(Claim::OWN)
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
            data: BTreeMap::from([("k".to_owned(), zeroize::Zeroizing::new(b"v".to_vec()))]),
            opened_by: vec!["age1x".into()],
            binding: None,
        };
        let source = source();
        let body = desired_secret(&object, &source, Claim::OWN, &opened).body();
        assert_eq!(body["metadata"]["labels"]["app"], "shop");
        assert_eq!(body["metadata"]["labels"][OWNER_LABEL], "u1");
        assert_eq!(body["metadata"]["annotations"]["a"], "b");
        assert_eq!(body["metadata"]["ownerReferences"][0]["kind"], "SopsSecret");
        assert_eq!(body["type"], "kubernetes.io/basic-auth");
        assert_eq!(body["immutable"], true);
        assert_eq!(body["data"]["k"], "dg==");
        let body = desired_secret(&object, &source, Claim::Merge, &opened).body();
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
        assert_eq!(status_update(&object, &same), None);
        let rewritten =
            Outcome::written(reason::DECRYPTED, "decrypted with age1x", Some("10".into()));
        let update = status_update(&object, &rewritten).unwrap();
        assert_eq!(update.changed, None);
        assert_eq!(update.patch["secretResourceVersion"], "10");
        let failed = Outcome::failed(reason::UNBOUND, "x");
        let update = status_update(&object, &failed).unwrap();
        assert_eq!(
            update.changed.unwrap().reason.as_deref(),
            Some(reason::UNBOUND)
        );
        assert!(update.patch["secretResourceVersion"].is_null());
        assert_eq!(update.patch["observedGeneration"], 3);
    }
}
