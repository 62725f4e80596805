//! Restart on change: after a reconciler wrote a Secret, roll out the Deployments, StatefulSets and
//! DaemonSets its source object names in [`RESTART_ANNOTATION`] (`deployment/web,statefulset/db`),
//! the way `kubectl rollout restart` does — a pod-template annotation — but with a value derived
//! from the Secret's data, so a write that changed no value (a resync, a re-encryption, a label)
//! leaves the workload alone.
//!
//! The value is an HMAC of the Secret's namespace, name and data under a key only the controller
//! holds ([`CHECKSUM_KEY_SECRET`] in its namespace, made on first use): whoever may read a
//! Deployment but not the Secret learns nothing about the values, not even by guessing them.
//!
//! Tenancy: a target is looked up in the source object's own namespace only (the annotation has no
//! place for another), at most [`MAX_TARGETS`] of them; a missing or forbidden target is a Warning
//! event on the source object, never an error of its reconcile. Off unless the operator turns it
//! on (`--restart-on-change`; the chart then grants `get`/`patch` on the three kinds).

use crate::context::Context;
use crate::target::DesiredSecret;
use crate::{Error, FIELD_MANAGER};
use aws_lc_rs::hmac;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::{ByteString, NamespaceResourceScope};
use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// The annotation on a SealedSecret, SopsSecret or ExternalSecret naming the workloads to roll out
/// when its Secret's data changes: `KIND/NAME` separated by commas, KIND one of `deployment`,
/// `statefulset`, `daemonset`.
pub const RESTART_ANNOTATION: &str = "signet.dev/restart";
/// Most targets one object may name.
pub const MAX_TARGETS: usize = 10;
/// Prefix of the pod-template annotations this controller sets, one per Secret:
/// `checksum.signet.dev/<Secret name>`.
pub const CHECKSUM_PREFIX: &str = "checksum.signet.dev/";
/// The Secret in the controller namespace holding the checksum key.
pub const CHECKSUM_KEY_SECRET: &str = "signet-restart-checksum-key";
const CHECKSUM_KEY_FIELD: &str = "key";

/// A workload kind that can be rolled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
}

impl WorkloadKind {
    fn parse(text: &str) -> Option<WorkloadKind> {
        match text.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => Some(WorkloadKind::Deployment),
            "statefulset" | "statefulsets" | "sts" => Some(WorkloadKind::StatefulSet),
            "daemonset" | "daemonsets" | "ds" => Some(WorkloadKind::DaemonSet),
            _ => None,
        }
    }

    /// The kind's name.
    pub fn kind(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }

    fn api_resource(self) -> ApiResource {
        let plural = match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("apps", "v1", self.kind()), plural)
    }
}

/// One workload to roll out, in the source object's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.kind().to_ascii_lowercase(), self.name)
    }
}

/// Parses the value of [`RESTART_ANNOTATION`]. The message of an error names the entry at fault.
pub fn parse_targets(value: &str) -> Result<Vec<Target>, String> {
    let mut targets: Vec<Target> = Vec::new();
    for (index, entry) in value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        if index == MAX_TARGETS {
            return Err(format!("at most {MAX_TARGETS} targets are allowed"));
        }
        let at = |why: &str| format!("entry {}: {why}", index + 1);
        let (kind, name) = entry
            .split_once('/')
            .ok_or_else(|| at("expected KIND/NAME"))?;
        let kind = WorkloadKind::parse(kind.trim())
            .ok_or_else(|| at("KIND must be deployment, statefulset or daemonset"))?;
        let name = name.trim();
        if !signet_api::sops_secret::is_dns_subdomain(name) {
            return Err(at(
                "NAME must be a workload name in this namespace (lowercase letters, digits, '-' and '.')",
            ));
        }
        let target = Target {
            kind,
            name: name.to_owned(),
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    Ok(targets)
}

/// The pod-template annotation key for the Secret `secret_name`: the name itself when it fits an
/// annotation name (63 characters), else a digest of it.
pub fn checksum_annotation(secret_name: &str) -> String {
    if secret_name.len() <= 63 {
        return format!("{CHECKSUM_PREFIX}{secret_name}");
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret_name.as_bytes());
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{CHECKSUM_PREFIX}sha256-{hex}")
}

/// The checksum of a Secret's data: HMAC-SHA256 under `key` of its namespace, name and values
/// (each length-prefixed, so no two Secrets share an input), hex.
pub fn checksum(
    key: &[u8],
    namespace: &str,
    name: &str,
    data_base64: &BTreeMap<String, String>,
) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut context = hmac::Context::with_key(&key);
    let mut field = |bytes: &[u8]| {
        context.update(&(bytes.len() as u64).to_be_bytes());
        context.update(bytes);
    };
    field(namespace.as_bytes());
    field(name.as_bytes());
    for (k, v) in data_base64 {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    context
        .sign()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The controller's checksum key, read (or made) once per process.
#[derive(Debug, Default)]
pub struct ChecksumKey(tokio::sync::OnceCell<Zeroizing<Vec<u8>>>);

impl ChecksumKey {
    /// The key: from [`CHECKSUM_KEY_SECRET`], made when missing (a replica that loses the race
    /// reads the winner's).
    async fn get(&self, ctx: &Context) -> Result<&[u8], Error> {
        let key = self.0.get_or_try_init(|| load_or_create(ctx)).await?;
        Ok(key.as_slice())
    }
}

async fn load_or_create(ctx: &Context) -> Result<Zeroizing<Vec<u8>>, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.config.controller_namespace);
    // A list by name: the chart grants list and create in the controller namespace, not get.
    let by_name = ListParams::default().fields(&format!("metadata.name={CHECKSUM_KEY_SECRET}"));
    for _ in 0..3 {
        if let Some(secret) = api.list(&by_name).await?.items.into_iter().next() {
            let key = secret
                .data
                .as_ref()
                .and_then(|d| d.get(CHECKSUM_KEY_FIELD))
                .filter(|k| k.0.len() >= 32)
                .ok_or(Error::MissingField(
                    "data.key (32 bytes or more) of the restart checksum key Secret",
                ))?;
            return Ok(Zeroizing::new(key.0.clone()));
        }
        let mut key = Zeroizing::new(vec![0u8; 32]);
        aws_lc_rs::rand::fill(&mut key).map_err(|_| Error::Task)?;
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(CHECKSUM_KEY_SECRET.to_owned()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                CHECKSUM_KEY_FIELD.to_owned(),
                ByteString(key.to_vec()),
            )])),
            ..Default::default()
        };
        ctx.metrics.count_write("secret");
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => return Ok(key),
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(Error::MissingField("the restart checksum key Secret"))
}

/// After `written` Secrets of `object` were applied: roll out the targets its annotation names
/// whose checksums changed. A target that is missing or forbidden, or an annotation that does not
/// parse, is a Warning event on `object` (and a log line); a transient failure (the checksum key
/// unreadable, the API server unavailable) is an error, so the reconcile is retried — it writes the
/// same Secret again and patches what was not patched, and nothing twice (same checksum).
pub async fn roll_out<K>(
    ctx: &Context,
    object: &K,
    written: &[&DesiredSecret<'_>],
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    let Some(value) = object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(RESTART_ANNOTATION))
    else {
        return Ok(());
    };
    if !ctx.config.restart_on_change {
        warn(
            ctx,
            object,
            "RestartDisabled",
            format!("{RESTART_ANNOTATION} is set but this controller does not restart workloads (--restart-on-change)"),
        )
        .await;
        return Ok(());
    }
    let targets = match parse_targets(value) {
        Ok(targets) => targets,
        Err(message) => {
            warn(
                ctx,
                object,
                "InvalidRestartTargets",
                format!("{RESTART_ANNOTATION}: {message}"),
            )
            .await;
            return Ok(());
        }
    };
    let Some(namespace) = object.meta().namespace.as_deref() else {
        return Ok(());
    };
    if targets.is_empty() || written.is_empty() {
        return Ok(());
    }
    let key = ctx.restart_key.get(ctx).await?;
    let annotations: BTreeMap<String, String> = written
        .iter()
        .map(|secret| {
            (
                checksum_annotation(secret.name),
                checksum(key, secret.namespace, secret.name, &secret.data_base64),
            )
        })
        .collect();
    for target in &targets {
        match roll_out_one(ctx, namespace, target, &annotations).await? {
            Ok(true) => {
                publish(
                    ctx,
                    object,
                    EventType::Normal,
                    "RolloutRestarted",
                    format!("{target} restarted: its Secret's data changed"),
                )
                .await
            }
            Ok(false) => {}
            Err((reason, message)) => warn(ctx, object, reason, message).await,
        }
    }
    Ok(())
}

/// Sets `annotations` on the pod template of `target` in `namespace` when they differ. `Ok(true)`
/// when it did (a rollout begins), `Ok(false)` when they were set already; `Err` with a reason and
/// message when the target is missing or refused for good (a 4xx other than 429), and the outer
/// `Err` for a transient failure.
async fn roll_out_one(
    ctx: &Context,
    namespace: &str,
    target: &Target,
    annotations: &BTreeMap<String, String>,
) -> Result<Result<bool, (&'static str, String)>, Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &target.kind.api_resource());
    let refused = |error: kube::Error| -> Result<(&'static str, String), Error> {
        match &error {
            kube::Error::Api(status) if status.code == 404 => Ok((
                "RestartTargetNotFound",
                format!("{target} does not exist in namespace {namespace}"),
            )),
            kube::Error::Api(status) if status.code == 403 => Ok((
                "RestartForbidden",
                format!(
                    "the controller may not patch {target}: {}",
                    crate::target::describe_kube_error(&error)
                ),
            )),
            kube::Error::Api(status) if (400..500).contains(&status.code) && status.code != 429 => {
                Ok((
                    "RestartFailed",
                    format!("{target}: {}", crate::target::describe_kube_error(&error)),
                ))
            }
            _ => Err(error.into()),
        }
    };
    let current = match template_annotations(&api, &target.name).await {
        Ok(current) => current,
        Err(error) => return Ok(Err(refused(error)?)),
    };
    if annotations
        .iter()
        .all(|(k, v)| current.get(k).map(String::as_str) == Some(v))
    {
        return Ok(Ok(false));
    }
    let patch = json!({"spec": {"template": {"metadata": {"annotations": annotations}}}});
    ctx.metrics.count_write("workload");
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    match api
        .patch(&target.name, &params, &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(Ok(true)),
        Err(error) => Ok(Err(refused(error)?)),
    }
}

/// The pod-template annotations of a workload.
async fn template_annotations(
    api: &Api<DynamicObject>,
    name: &str,
) -> Result<BTreeMap<String, String>, kube::Error> {
    let object = api.get(name).await?;
    Ok(object
        .data
        .pointer("/spec/template/metadata/annotations")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default())
}

async fn warn<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    reason: &str,
    note: String,
) {
    tracing::warn!(
        namespace = object.namespace().unwrap_or_default(),
        name = %object.name_any(),
        reason,
        "{note}"
    );
    publish(ctx, object, EventType::Warning, reason, note).await;
}

async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Restart".to_owned(),
        secondary: None,
    };
    ctx.metrics.count_write("event");
    if let Err(err) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(error = %err, "cannot publish an event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_kind_slash_name_in_this_namespace_and_bounded() {
        let targets =
            parse_targets(" deployment/web, sts/db ,DaemonSet/agent,deployment/web,").unwrap();
        assert_eq!(
            targets,
            vec![
                Target {
                    kind: WorkloadKind::Deployment,
                    name: "web".into()
                },
                Target {
                    kind: WorkloadKind::StatefulSet,
                    name: "db".into()
                },
                Target {
                    kind: WorkloadKind::DaemonSet,
                    name: "agent".into()
                },
            ]
        );
        assert_eq!(targets[1].to_string(), "statefulset/db");
        assert_eq!(parse_targets("").unwrap(), vec![]);
        // No way to name another namespace, a path, or another kind.
        for bad in [
            "deployment/other/web",
            "deployment/../web",
            "web",
            "pod/web",
            "deployment/",
            "deployment/Web",
        ] {
            assert!(parse_targets(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            parse_targets("deployment/a,pod/b").unwrap_err(),
            "entry 2: KIND must be deployment, statefulset or daemonset"
        );
        let many: Vec<String> = (0..=MAX_TARGETS)
            .map(|i| format!("deployment/w{i}"))
            .collect();
        assert!(
            parse_targets(&many.join(","))
                .unwrap_err()
                .contains("at most")
        );
        assert_eq!(
            parse_targets(&many[..MAX_TARGETS].join(",")).unwrap().len(),
            MAX_TARGETS
        );
    }

    #[test]
    fn the_checksum_follows_the_data_and_hides_it() {
        let data = |v: &str| BTreeMap::from([("password".to_owned(), v.to_owned())]);
        let key = [7u8; 32];
        let a = checksum(&key, "shop", "db", &data("aHVudGVyMg=="));
        assert_eq!(a, checksum(&key, "shop", "db", &data("aHVudGVyMg==")));
        assert_ne!(a, checksum(&key, "shop", "db", &data("aHVudGVyMw==")));
        // Bound to the Secret and to the key: no guessing with a Secret of one's own, or offline.
        assert_ne!(a, checksum(&key, "shop", "db2", &data("aHVudGVyMg==")));
        assert_ne!(a, checksum(&key, "bank", "db", &data("aHVudGVyMg==")));
        assert_ne!(a, checksum(&[8u8; 32], "shop", "db", &data("aHVudGVyMg==")));
        assert!(!a.contains("aHVudGVy") && a.len() == 64);
        // Key/value boundaries count.
        let split = BTreeMap::from([("passwor".to_owned(), "daHVudGVyMg==".to_owned())]);
        assert_ne!(a, checksum(&key, "shop", "db", &split));
    }

    #[test]
    fn annotation_keys_fit_the_name_limit() {
        assert_eq!(checksum_annotation("db"), "checksum.signet.dev/db");
        let long = "a".repeat(200);
        let key = checksum_annotation(&long);
        let name = key.strip_prefix(CHECKSUM_PREFIX).unwrap();
        assert!(name.len() <= 63 && name.starts_with("sha256-"));
        assert_ne!(key, checksum_annotation(&"b".repeat(200)));
    }
}
