//! The SealedSecret reconciler: unseal with the key ring, render the template, server-side apply the
//! Secret, keep the `Synced` condition. Quiet by design: when nothing changed it writes nothing and
//! emits no event; events are only sent when the condition changes, and failure messages are uniform
//! (they never say which key or step failed, nor anything about the values).
//!
//! A reconcile reads plan (`plan`: up to date, refused, or the claim on the Secret) → unseal →
//! apply → finish (the status and its event); the decisions are plain functions, unit-tested below.

use super::keyring;
use super::{SYNCED_CONDITION, SealedSecret, SealedSecretStatus};
use crate::context::{Context, GaugeRefresher};
use crate::metrics::Metrics;
use crate::runtime::{
    OwnerLabel, changes, lean_controller, log_trigger_error, owned_secret_triggers, scoped_apis,
    source_of,
};
use crate::target::{
    self, Claim, ConditionEvents, ConditionStatus, DesiredSecret, LastWrite, Next, Outcome, Plan,
    SeenSecret, Source, StatusUpdate, Written,
};
use crate::{Error, supervise};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, Store};
use serde_json::json;
use signet_api::sealed_secret::SKIP_SET_OWNER_REFERENCES_ANNOTATION;
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

/// When to try again after the API server refused the Secret.
const APPLY_RETRY: Duration = Duration::from_secs(300);

/// The events of the `Synced` condition.
const EVENTS: ConditionEvents = ConditionEvents {
    action: "Unseal",
    success_reason: "Unsealed",
    success_note: "SealedSecret unsealed successfully",
};

/// What the SealedSecret reconciler needs besides the shared context.
pub struct SealedContext {
    /// Client, key ring, metrics, recorder, configuration.
    pub base: Arc<Context>,
    /// Metadata of the Secrets carrying [`OWNER_LABEL`].
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// The last successful writes (pruned with the gauges).
    pub written: Arc<Written>,
    /// The fingerprint each SealedSecret's status records (for the by-key gauge, which the
    /// metadata-only cache cannot count from).
    pub fingerprints: Arc<Fingerprints>,
}

/// The key fingerprint in each SealedSecret's status, by uid, as last read or written. A cluster
/// has a handful of keys and thousands of SealedSecrets, so each fingerprint is held once and
/// shared rather than copied into every object's entry as 64 hex characters.
#[derive(Debug, Default)]
pub struct Fingerprints(std::sync::Mutex<FingerprintMap>);

/// [`Fingerprints`]' state: the fingerprint of each uid, and each distinct fingerprint once.
#[derive(Debug, Default)]
struct FingerprintMap {
    by_uid: std::collections::HashMap<String, Option<Arc<str>>>,
    distinct: std::collections::HashSet<Arc<str>>,
}

impl Fingerprints {
    /// Records what the status of `uid` says (or will say).
    pub fn record(&self, uid: &str, fingerprint: Option<String>) {
        if let Ok(mut map) = self.0.lock() {
            let shared = fingerprint.map(|f| match map.distinct.get(f.as_str()) {
                Some(known) => known.clone(),
                None => {
                    let new: Arc<str> = f.into();
                    map.distinct.insert(new.clone());
                    new
                }
            });
            map.by_uid.insert(uid.to_owned(), shared);
        }
    }

    /// SealedSecrets by fingerprint (`none` when the status records none or it was never read),
    /// over the `live` uids; forgets the others.
    pub fn count_live<'a>(
        &self,
        live: impl IntoIterator<Item = &'a str>,
    ) -> std::collections::BTreeMap<String, i64> {
        let live: std::collections::HashSet<&str> = live.into_iter().collect();
        let mut counts = std::collections::BTreeMap::new();
        if let Ok(mut map) = self.0.lock() {
            map.by_uid.retain(|uid, _| live.contains(uid.as_str()));
            for uid in &live {
                let fingerprint = map.by_uid.get(*uid).cloned().flatten();
                *counts
                    .entry(fingerprint.map_or_else(|| "none".to_owned(), |f| f.to_string()))
                    .or_insert(0) += 1;
            }
            let FingerprintMap { by_uid, distinct } = &mut *map;
            let used: std::collections::HashSet<&Arc<str>> = by_uid.values().flatten().collect();
            distinct.retain(|f| used.contains(f));
        }
        counts
    }
}

/// Runs the SealedSecret reconciler until `stop` (while leading): waits for a sealing key, then
/// reconciles every SealedSecret on its changes, on changes of its Secret, and on every key change.
/// While it runs, the `sealed_secrets` gauge (SealedSecrets by key) follows its cache.
pub(crate) async fn run(
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    keyring::wait_for_sealing_key(&ctx.keys).await;
    let (secret_store, secret_writer) = reflector::store();
    let (sealed_api, secret_api) = scoped_apis::<PartialObjectMeta<SealedSecret>>(&ctx);
    let owned_secrets = owned_secret_triggers(
        secret_api,
        OWNER_LABEL,
        OwnerLabel::FoldIntoReference,
        secret_writer,
    );
    let controller = lean_controller(sealed_api, &ctx);
    let sealed_ctx = Arc::new(SealedContext {
        base: Arc::clone(&ctx),
        secrets: secret_store,
        written: Arc::default(),
        fingerprints: Arc::default(),
    });
    let refresher = gauge_refresher(
        controller.store(),
        Arc::clone(&sealed_ctx.written),
        Arc::clone(&sealed_ctx.fingerprints),
        Arc::clone(&ctx.metrics),
    );
    ctx.set_gauge_refresher(KIND_SEALED_SECRET, Some(refresher));
    controller
        .watches_stream(owned_secrets, source_of::<PartialObjectMeta<SealedSecret>>)
        .reconcile_all_on(changes(ctx.keys.subscribe()))
        .graceful_shutdown_on(stop)
        .run(
            supervise::contained(reconcile_cached),
            error_policy,
            sealed_ctx,
        )
        .for_each(log_trigger_error)
        .await;
    ctx.set_gauge_refresher(KIND_SEALED_SECRET, None);
}

/// The gauge refresher of a running SealedSecret reconciler: from its cache, forgets the writes
/// and fingerprints of SealedSecrets that are gone and counts SealedSecrets by key.
pub(crate) fn gauge_refresher(
    store: Store<PartialObjectMeta<SealedSecret>>,
    written: Arc<Written>,
    fingerprints: Arc<Fingerprints>,
    metrics: Arc<Metrics>,
) -> GaugeRefresher {
    Box::new(move || {
        let state = store.state();
        let live = || state.iter().filter_map(|s| s.metadata.uid.as_deref());
        written.retain_live(live());
        metrics.set_sealed_secrets_by_key(&fingerprints.count_live(live()));
    })
}

/// Reconciles the SealedSecret whose metadata the cache holds: nothing to read when this process
/// wrote its current Secret for this generation (resyncs, key changes); otherwise the object is
/// read and reconciled (gone by then: nothing to do).
pub async fn reconcile_cached(
    cached: Arc<PartialObjectMeta<SealedSecret>>,
    ctx: Arc<SealedContext>,
) -> Result<Action, Error> {
    let base = &ctx.base;
    let Some(source) = Source::of(cached.as_ref())? else {
        base.metrics.count_reconcile(KIND_SEALED_SECRET);
        return Ok(Action::await_change());
    };
    let seen = target::seen_secret(
        base,
        &ctx.secrets,
        &ctx.written,
        &source.uid,
        &source.namespace,
        &source.name,
    )
    .await?;
    let remembered = LastWrite {
        generation: cached.metadata.generation,
        observed_generation: None,
        condition: ConditionStatus::False,
        secret_resource_version: None,
    };
    if remembered.covers(seen.metadata(), OWNER_LABEL, &source.uid, &ctx.written) {
        base.metrics.count_reconcile(KIND_SEALED_SECRET);
        return Ok(base.idle_action());
    }
    let api: kube::Api<SealedSecret> =
        kube::Api::namespaced(base.client.clone(), &source.namespace);
    // The cache saw this object at `source.resource_version`: the watch cache has it too.
    match api
        .get_with(&source.name, &target::read_params(&source))
        .await
    {
        Ok(sealed) => reconcile(Arc::new(sealed), seen, ctx).await,
        Err(kube::Error::Api(status)) if status.code == 404 => {
            base.metrics.count_reconcile(KIND_SEALED_SECRET);
            Ok(Action::await_change())
        }
        Err(other) => Err(other.into()),
    }
}

/// Reconciles one SealedSecret whose Secret was just looked up ([`reconcile_cached`] looked to
/// decide whether to read the object; looking again here was one request per object more on a
/// catch-up).
async fn reconcile(
    sealed: Arc<SealedSecret>,
    seen: SeenSecret,
    ctx: Arc<SealedContext>,
) -> Result<Action, Error> {
    let base = &ctx.base;
    base.metrics.count_reconcile(KIND_SEALED_SECRET);
    let Some(source) = Source::of(sealed.as_ref())? else {
        return Ok(Action::await_change());
    };
    let recorded = sealed
        .status
        .as_ref()
        .and_then(|s| s.key_fingerprint.clone());
    ctx.fingerprints.record(&source.uid, recorded);
    // A Secret refused before is most likely still there: read it rather than unseal for a
    // create-only apply that it would refuse again.
    let seen = match seen {
        SeenSecret::Unread if refused_before(&sealed) => {
            SeenSecret::read(target::read_secret(base, &source.namespace, &source.name).await?)
        }
        seen => seen,
    };
    let claim = match plan(&sealed, &source, seen.metadata(), &ctx.written) {
        Plan::UpToDate => return Ok(base.idle_action()),
        Plan::Refuse(outcome, next) => return fail(&sealed, &ctx, &source, outcome, next).await,
        Plan::Write(claim) => claim,
    };
    let (plain, fingerprint) = match unseal(&sealed, base).await? {
        Ok(unsealed) => unsealed,
        Err(outcome) => return fail(&sealed, &ctx, &source, outcome, Next::OnChange).await,
    };
    ctx.fingerprints.record(&source.uid, fingerprint.clone());
    let mut desired = desired_secret(&sealed, &source, &plain, claim);
    let applied = if matches!(seen, SeenSecret::Unread) {
        match desired.apply_new(base).await? {
            Ok(Some(applied)) => Ok(applied),
            // A Secret of that name exists after all: plan again with what it is.
            Ok(None) => {
                let existing = target::read_secret(base, &source.namespace, &source.name).await?;
                match plan(&sealed, &source, existing.as_ref(), &ctx.written) {
                    Plan::UpToDate => return Ok(base.idle_action()),
                    Plan::Refuse(outcome, next) => {
                        return fail(&sealed, &ctx, &source, outcome, next).await;
                    }
                    Plan::Write(claim) => {
                        desired = desired_secret(&sealed, &source, &plain, claim);
                        desired.apply(base).await?
                    }
                }
            }
            Err(message) => Err(message),
        }
    } else {
        desired.apply(base).await?
    };
    let (outcome, next) = match applied {
        Ok(applied) => {
            crate::restart::roll_out(base, sealed.as_ref(), &[&desired]).await?;
            (
                Outcome::written(reason::UNSEALED, "", applied.metadata.resource_version),
                Next::Idle,
            )
        }
        Err(message) => (
            Outcome::failed(reason::APPLY_FAILED, message),
            Next::After(APPLY_RETRY),
        ),
    };
    let secret_rv = outcome.secret_resource_version.clone();
    let action = finish(&sealed, base, outcome, fingerprint, next).await?;
    ctx.written
        .remember(&source.uid, sealed.metadata.generation, secret_rv);
    Ok(action)
}

/// Ends a reconcile that writes no Secret: no key opened it, so none is recorded; the status
/// says why.
async fn fail(
    sealed: &SealedSecret,
    ctx: &SealedContext,
    source: &Source,
    outcome: Outcome,
    next: Next,
) -> Result<Action, Error> {
    ctx.fingerprints.record(&source.uid, None);
    finish(sealed, &ctx.base, outcome, None, next).await
}

/// Whether the status says the Secret of this name was someone else's when last looked at.
fn refused_before(sealed: &SealedSecret) -> bool {
    sealed
        .status
        .as_ref()
        .and_then(SealedSecretStatus::synced)
        .and_then(|c| c.reason.as_deref())
        == Some(reason::SECRET_NOT_OWNED)
}

/// What to do before unsealing: nothing when the Secret is current, refuse another's Secret, or
/// write with the claim of the `managed`/`patch` annotations.
fn plan(
    sealed: &SealedSecret,
    source: &Source,
    existing: Option<&PartialObjectMeta<Secret>>,
    written: &Written,
) -> Plan {
    let status = sealed.status.as_ref();
    let last = LastWrite {
        generation: sealed.metadata.generation,
        observed_generation: status.and_then(|s| s.observed_generation),
        condition: ConditionStatus::of(status.and_then(SealedSecretStatus::synced)),
        secret_resource_version: status.and_then(|s| s.secret_resource_version.as_deref()),
    };
    if last.covers(existing, OWNER_LABEL, &source.uid, written) {
        return Plan::UpToDate;
    }
    match Claim::by_annotations(existing, OWNER_LABEL, &source.uid) {
        Some(claim) => Plan::Write(claim),
        // That Secret is not watched (no owner label): look again at the next resync, when it
        // may carry the `managed` annotation or be gone.
        None => Plan::Refuse(
            Outcome::failed(
                reason::SECRET_NOT_OWNED,
                target::not_managed_message(&source.name, KIND_SEALED_SECRET),
            ),
            Next::Idle,
        ),
    }
}

/// Unseals off the runtime (RSA is slow), trying the key that opened it last time first: the
/// Secret and the fingerprint of the key that opened every value, or the failure's outcome.
async fn unseal(
    sealed: &SealedSecret,
    ctx: &Context,
) -> Result<Result<(signet_api::Secret, Option<String>), Outcome>, Error> {
    let preferred = sealed
        .status
        .as_ref()
        .and_then(|s| s.key_fingerprint.clone());
    let keys = ctx.keys.snapshot();
    let api_sealed = sealed.to_api();
    let started = Instant::now();
    let unsealed = crate::cpu::run(move || keys.unseal(&api_sealed, preferred.as_deref()))
        .await
        .ok_or(Error::Task)?;
    ctx.metrics
        .unseal_duration
        .observe(started.elapsed().as_secs_f64());
    Ok(unsealed.map_err(|err| unseal_failure(&err)))
}

/// The outcome of a failed unseal: a template error says which item; every other failure reads
/// the same (no key, scope, damage: never which).
fn unseal_failure(err: &SealError) -> Outcome {
    match err {
        SealError::Template { .. } => Outcome::failed(reason::TEMPLATE_FAILED, err.to_string()),
        _ => Outcome::failed(reason::UNSEAL_FAILED, UNSEAL_FAILED_MESSAGE),
    }
}

/// The Secret a SealedSecret describes: the template's metadata, type and immutability; no
/// ownerReference when the template carries the skip annotation.
fn desired_secret<'a>(
    sealed: &SealedSecret,
    source: &'a Source,
    plain: &signet_api::Secret,
    claim: Claim,
) -> DesiredSecret<'a> {
    let template = &plain.metadata;
    let skip_owner = template
        .annotation(SKIP_SET_OWNER_REFERENCES_ANNOTATION)
        .is_some_and(|v| v == "true");
    DesiredSecret {
        name: &source.name,
        namespace: &source.namespace,
        owner_label: OWNER_LABEL,
        owner_uid: &source.uid,
        owner: target::owner_of(sealed),
        claim: if skip_owner {
            claim.without_owner_reference()
        } else {
            claim
        },
        labels: template.labels.clone().unwrap_or_default(),
        annotations: template.annotations.clone().unwrap_or_default(),
        type_: plain.type_.clone(),
        immutable: plain.immutable,
        data_base64: plain.data.clone().unwrap_or_default(),
    }
}

/// Writes the status for `outcome` when it changed (and its event), and says what comes next.
async fn finish(
    sealed: &SealedSecret,
    ctx: &Context,
    outcome: Outcome,
    key_fingerprint: Option<String>,
    next: Next,
) -> Result<Action, Error> {
    let update = status_update(sealed, &outcome, key_fingerprint);
    target::finish(ctx, KIND_SEALED_SECRET, sealed, &outcome, update, &EVENTS).await?;
    Ok(next.action(ctx.config.resync_period))
}

/// The status patch for `outcome`, or `None` when the status already says it (timestamps aside).
/// A merge patch of the whole status: conditions is replaced as a list, and the absent Signet
/// fields are cleared with explicit nulls.
fn status_update(
    sealed: &SealedSecret,
    outcome: &Outcome,
    key_fingerprint: Option<String>,
) -> Option<StatusUpdate> {
    let old = sealed.status.clone().unwrap_or_default();
    let (condition, changed) = target::next_condition(old.synced(), SYNCED_CONDITION, outcome);
    let generation = sealed.metadata.generation;
    let unchanged = !changed
        && old.observed_generation == generation
        && old.key_fingerprint == key_fingerprint
        && old.secret_resource_version == outcome.secret_resource_version;
    if unchanged {
        return None;
    }
    let patch = json!({
        "conditions": [condition],
        "observedGeneration": generation,
        "keyFingerprint": key_fingerprint,
        "secretResourceVersion": outcome.secret_resource_version,
    });
    Some(StatusUpdate {
        patch,
        changed: changed.then_some(condition),
    })
}

/// Retry policy for errors (API unavailable, conflicts): back off and try again.
pub fn error_policy(
    sealed: Arc<PartialObjectMeta<SealedSecret>>,
    error: &Error,
    ctx: Arc<SealedContext>,
) -> Action {
    ctx.base
        .metrics
        .count_error(KIND_SEALED_SECRET, error.reason());
    tracing::warn!(
        namespace = sealed.namespace().unwrap_or_default(),
        name = %sealed.name_any(),
        error = %error,
        "reconcile failed; retrying"
    );
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::tests::secret_meta;
    use signet_api::sealed_secret::{MANAGED_ANNOTATION, PATCH_ANNOTATION};

    fn sealed(status: serde_json::Value) -> SealedSecret {
        serde_json::from_value(json!({
            "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "shop", "uid": "u1", "generation": 2},
            "spec": {"encryptedData": {"k": "AQAB"}},
            "status": status,
        }))
        .unwrap()
    }

    fn source() -> Source {
        Source::of(&sealed(json!({}))).unwrap().unwrap()
    }

    fn synced_status(rv: &str) -> serde_json::Value {
        json!({"observedGeneration": 2, "secretResourceVersion": rv, "keyFingerprint": "f1",
            "conditions": [{"type": "Synced", "status": "True", "reason": "Unsealed"}]})
    }

    #[test]
    fn plan_skips_a_current_secret_and_claims_or_refuses_the_others() {
        let ours = secret_meta(json!({"resourceVersion": "7", "labels": {OWNER_LABEL: "u1"}}));
        let written = Written::default();
        let current = sealed(synced_status("7"));
        assert_eq!(
            plan(&current, &source(), Some(&ours), &written),
            Plan::UpToDate
        );
        // Our Secret was changed since: write it again, as ours.
        assert_eq!(
            plan(
                &sealed(synced_status("6")),
                &source(),
                Some(&ours),
                &written
            ),
            Plan::Write(Claim::OWN)
        );
        assert_eq!(
            plan(&current, &source(), None, &written),
            Plan::Write(Claim::OWN)
        );
        let patched = secret_meta(json!({"annotations": {PATCH_ANNOTATION: "true"}}));
        assert_eq!(
            plan(&current, &source(), Some(&patched), &written),
            Plan::Write(Claim::Merge)
        );
        let managed = secret_meta(json!({"annotations": {MANAGED_ANNOTATION: "true"}}));
        assert_eq!(
            plan(&current, &source(), Some(&managed), &written),
            Plan::Write(Claim::OWN)
        );
        let foreign = secret_meta(json!({"resourceVersion": "7"}));
        let Plan::Refuse(outcome, next) = plan(&current, &source(), Some(&foreign), &written)
        else {
            panic!("a foreign Secret is not refused");
        };
        assert_eq!(next, Next::Idle);
        assert_eq!(outcome.reason, reason::SECRET_NOT_OWNED);
        assert_eq!(outcome.status, ConditionStatus::False);
        assert!(outcome.message.starts_with(
            "Secret \"db\" exists and is not managed by this SealedSecret; annotate it with"
        ));
    }

    #[test]
    fn unseal_failures_are_uniform_except_templates() {
        let template = SealError::Template {
            key: "dsn".into(),
            reason: "unknown function".into(),
        };
        let outcome = unseal_failure(&template);
        assert_eq!(outcome.reason, reason::TEMPLATE_FAILED);
        assert_eq!(outcome.message, template.to_string());
        for err in [SealError::Unseal, SealError::Manifest("x".into())] {
            let outcome = unseal_failure(&err);
            assert_eq!(outcome.reason, reason::UNSEAL_FAILED);
            assert_eq!(outcome.message, UNSEAL_FAILED_MESSAGE);
        }
    }

    #[test]
    fn the_template_may_drop_the_owner_reference() {
        let plain = |annotations: serde_json::Value| -> signet_api::Secret {
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": "db", "namespace": "shop", "annotations": annotations},
                "data": {"k": "dg=="},
            }))
            .unwrap()
        };
        let object = sealed(json!({}));
        let body = desired_secret(&object, &source(), &plain(json!({})), Claim::OWN).body();
        assert_eq!(
            body["metadata"]["ownerReferences"][0]["kind"],
            "SealedSecret"
        );
        assert_eq!(body["metadata"]["ownerReferences"][0]["name"], "db");
        assert_eq!(body["type"], "kubernetes.io/tls");
        let skip = plain(json!({SKIP_SET_OWNER_REFERENCES_ANNOTATION: "true"}));
        let body = desired_secret(&object, &source(), &skip, Claim::OWN).body();
        assert!(body["metadata"].get("ownerReferences").is_none());
        assert_eq!(body["type"], "kubernetes.io/tls");
        let body = desired_secret(&object, &source(), &plain(json!({})), Claim::Merge).body();
        assert!(body["metadata"].get("ownerReferences").is_none());
        assert!(body.get("type").is_none());
    }

    #[test]
    fn the_status_is_written_only_when_it_says_something_new() {
        let object = sealed(synced_status("7"));
        let same = Outcome::written(reason::UNSEALED, "", Some("7".into()));
        assert_eq!(status_update(&object, &same, Some("f1".into())), None);
        // Another key opened it: a patch, but no event.
        let update = status_update(&object, &same, Some("f2".into())).unwrap();
        assert_eq!(update.changed, None);
        assert_eq!(update.patch["keyFingerprint"], "f2");
        assert_eq!(update.patch["observedGeneration"], 2);
        // A failure: the condition changes (an event), the Signet fields are cleared.
        let failed = Outcome::failed(reason::UNSEAL_FAILED, UNSEAL_FAILED_MESSAGE);
        let update = status_update(&object, &failed, None).unwrap();
        assert_eq!(update.changed.as_ref().unwrap().status, "False");
        assert_eq!(
            update.patch["conditions"][0]["reason"],
            reason::UNSEAL_FAILED
        );
        assert!(update.patch["keyFingerprint"].is_null());
        assert!(update.patch["secretResourceVersion"].is_null());
        // The same failure again writes nothing.
        let failing = sealed(json!({"observedGeneration": 2, "conditions": [
            {"type": "Synced", "status": "False", "reason": reason::UNSEAL_FAILED,
             "message": UNSEAL_FAILED_MESSAGE}]}));
        assert_eq!(status_update(&failing, &failed, None), None);
    }

    #[test]
    fn sealed_secrets_are_counted_by_the_key_their_status_records() {
        let fingerprints = Fingerprints::default();
        fingerprints.record("a", Some("f1".into()));
        fingerprints.record("b", Some("f1".into()));
        fingerprints.record("c", None);
        fingerprints.record("gone", Some("f2".into()));
        // "d" is live but was never read.
        let counts = fingerprints.count_live(["a", "b", "c", "d"]);
        assert_eq!(counts.get("f1"), Some(&2));
        assert_eq!(counts.get("none"), Some(&2));
        assert_eq!(counts.len(), 2);
        // The uid that is gone was forgotten.
        assert_eq!(fingerprints.count_live(["gone"]).get("none"), Some(&1));
    }

    #[test]
    fn a_fingerprint_is_held_once_however_many_objects_record_it() {
        let fingerprints = Fingerprints::default();
        for uid in ["a", "b", "c"] {
            fingerprints.record(uid, Some("f1".into()));
        }
        fingerprints.record("d", Some("f2".into()));
        {
            let map = fingerprints.0.lock().unwrap();
            let a = map.by_uid["a"].clone().unwrap();
            let c = map.by_uid["c"].clone().unwrap();
            assert!(Arc::ptr_eq(&a, &c));
            assert_eq!(map.distinct.len(), 2);
        }
        // Once no live object records "f2", it is not held any more.
        fingerprints.count_live(["a", "b", "c"]);
        assert_eq!(fingerprints.0.lock().unwrap().distinct.len(), 1);
    }
}
