//! What the restart-on-change tests of every kind share: a Deployment the API server keeps (no
//! scheduler needed: the rollout is the pod-template change, which bumps `metadata.generation`),
//! and what its pod template says.

use k8s_openapi::api::apps::v1::Deployment;
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
