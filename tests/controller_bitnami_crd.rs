//! Drop-in replacement with the Bitnami CRD installed (its own API server: the CRD is cluster-wide):
//! Signet's two extra status fields are pruned by Bitnami's schema, yet SealedSecrets still become
//! Secrets, the status is Bitnami-shaped, and a resync with nothing changed still writes nothing.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;
use signet_controller::{Config, SealedSecret};
use signet_testkit::ApiServer;
use signet_tests::poll::eventually;
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn works_with_the_bitnami_crd_and_stays_quiet() -> TestResult {
    // Not the shared server: the Bitnami CRD would replace, for every other suite, the CRD their
    // SealedSecrets (and their status fields) live in.
    let server = tokio::task::spawn_blocking(ApiServer::start).await??;
    let client = server.client().await?;
    let keys_ns = server.create_namespace(&client, "sigbitkeys").await?;
    let app_ns = server.create_namespace(&client, "sigbitapp").await?;
    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), &app_ns);
    crate::controller_bitnami_templates::install_bitnami_crd(&client, &app_ns).await?;

    let mut config = Config::new(&keys_ns);
    config.watch_namespace = Some(app_ns.clone());
    config.listen_addr = ([127, 0, 0, 1], 0).into();
    config.metrics_addr = ([127, 0, 0, 1], 0).into();
    config.key_bits = 2048;
    config.resync_period = Some(Duration::from_millis(300));
    let controller = signet_controller::start(client.clone(), config).await?;
    let ctx = std::sync::Arc::clone(&controller.context);
    eventually("sealing key", Duration::from_secs(60), || async {
        ctx.is_ready().then_some(())
    })
    .await?;
    let pem = reqwest::get(format!("http://{}/v1/cert.pem", controller.http_addr))
        .await?
        .text()
        .await?;
    let cert = signet_seal::SealingCertificate::from_pem(pem.as_bytes())?;
    let secret: signet_api::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "bitnami-shaped", "namespace": app_ns},
        "stringData": {"k": "v"},
    }))?;
    let sealed = signet_seal::seal_secret(&secret, &cert, &signet_seal::SealOptions::default())?;
    let sealed: SealedSecret = serde_json::from_value(serde_json::to_value(&sealed)?)?;
    sealed_api.create(&PostParams::default(), &sealed).await?;

    let synced = eventually("Synced", Duration::from_secs(30), || async {
        let s = sealed_api.get("bitnami-shaped").await.ok()?;
        (s.status.as_ref()?.synced()?.status == "True").then_some(s)
    })
    .await?;
    let status = synced.status.ok_or("no status")?;
    assert_eq!(status.observed_generation, synced.metadata.generation);
    assert_eq!(status.key_fingerprint, None, "pruned by Bitnami's schema");
    assert_eq!(
        status.secret_resource_version, None,
        "pruned by Bitnami's schema"
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &app_ns);
    let secret = secrets.get("bitnami-shaped").await?;
    assert_eq!(
        secret
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(|v| v.0.clone()),
        Some(b"v".to_vec())
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = &controller.context.metrics;
    let before = (
        metrics.writes("secret"),
        metrics.writes("status"),
        metrics.writes("event"),
    );
    let sealed_rv = sealed_api
        .get("bitnami-shaped")
        .await?
        .metadata
        .resource_version;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        (
            metrics.writes("secret"),
            metrics.writes("status"),
            metrics.writes("event")
        ),
        before,
        "resyncs wrote"
    );
    assert_eq!(
        sealed_api
            .get("bitnami-shaped")
            .await?
            .metadata
            .resource_version,
        sealed_rv
    );
    controller.shutdown().await;
    Ok(())
}
