//! What the restart-on-change tests of every kind share: a Deployment the API server keeps (no
//! scheduler needed: the rollout is the pod-template change, which bumps `metadata.generation`),
//! and what its pod template says.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;
use signet_controller::restart::CHECKSUM_PREFIX;
use std::collections::BTreeMap;

type BoxError = Box<dyn std::error::Error>;

/// Creates a one-container Deployment `name` in `namespace`.
pub async fn create_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(), BoxError> {
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"kept": "yes"}},
                "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}
            }
        }
    }))?;
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &deployment)
        .await?;
    Ok(())
}

/// The Deployment's generation (a rollout bumps it) and the checksum annotations of its pod
/// template; fails if the template lost an annotation that was not ours or a checksum is not one.
pub async fn rollout_state(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(i64, BTreeMap<String, String>), BoxError> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(name)
        .await?;
    let annotations = deployment
        .spec
        .template
        .metadata
        .and_then(|m| m.annotations)
        .unwrap_or_default();
    assert_eq!(
        annotations.get("kept").map(String::as_str),
        Some("yes"),
        "{namespace}/{name}: the pod template lost an annotation of its own"
    );
    let checksums: BTreeMap<String, String> = annotations
        .into_iter()
        .filter(|(k, _)| k.starts_with(CHECKSUM_PREFIX))
        .collect();
    // A keyed hash, never the data.
    for (key, value) in &checksums {
        assert!(
            value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()),
            "{key}: {value}"
        );
    }
    Ok((
        deployment.metadata.generation.unwrap_or_default(),
        checksums,
    ))
}

/// Creates a one-container StatefulSet and a DaemonSet named `name` in `namespace`.
pub async fn create_stateful_set_and_daemon_set(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(), BoxError> {
    let spec = json!({
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}
        }
    });
    let stateful_set: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": spec
    }))?;
    Api::<StatefulSet>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &stateful_set)
        .await?;
    let daemon_set: DaemonSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name}, "spec": spec
    }))?;
    Api::<DaemonSet>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &daemon_set)
        .await?;
    Ok(())
}

/// The checksum annotations of the pod templates of the StatefulSet and the DaemonSet `name`.
pub async fn stateful_set_and_daemon_set_checksums(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<[BTreeMap<String, String>; 2], BoxError> {
    let checksums = |annotations: Option<BTreeMap<String, String>>| -> BTreeMap<String, String> {
        annotations
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with(CHECKSUM_PREFIX))
            .collect()
    };
    let stateful_set = Api::<StatefulSet>::namespaced(client.clone(), namespace)
        .get(name)
        .await?;
    let daemon_set = Api::<DaemonSet>::namespaced(client.clone(), namespace)
        .get(name)
        .await?;
    Ok([
        checksums(
            stateful_set
                .spec
                .template
                .metadata
                .and_then(|m| m.annotations),
        ),
        checksums(
            daemon_set
                .spec
                .template
                .metadata
                .and_then(|m| m.annotations),
        ),
    ])
}
