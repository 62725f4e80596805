//! Two `signet-controller` replicas (in-process) on the real API server share one Lease: exactly one
//! leads (reconciles, makes keys), both serve the certificate; when the leader dies without releasing
//! the Lease, the standby takes over within the lease duration (15 s) and reconciles; a graceful
//! shutdown releases the Lease.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use signet_controller::config::LeaderElection;
use signet_controller::keyring::SEALING_KEY_LABEL;
use signet_controller::{Config, RunningController, SealedSecret};
use signet_testkit::ApiServer;
use signet_tests::poll::eventually;
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn replica_config(keys_ns: &str, app_ns: &str, name: &str) -> Config {
    let mut config = Config::new(keys_ns);
    config.watch_namespace = Some(app_ns.to_owned());
    config.listen_addr = ([127, 0, 0, 1], 0).into();
    config.metrics_addr = ([127, 0, 0, 1], 0).into();
    config.key_bits = 2048;
    config.instance = Some(name.to_owned());
    config.leader_election = Some(LeaderElection::default());
    config
}

async fn seal_and_create(
    client: &kube::Client,
    replica: &RunningController,
    namespace: &str,
    name: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let pem = reqwest::get(format!("http://{}/v1/cert.pem", replica.http_addr))
        .await?
        .text()
        .await?;
    let cert = signet_seal::SealingCertificate::from_pem(pem.as_bytes())?;
    let secret: signet_api::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"k": name},
    }))?;
    let sealed = signet_seal::seal_secret(&secret, &cert, &signet_seal::SealOptions::default())?;
    let sealed: SealedSecret = serde_json::from_value(serde_json::to_value(&sealed)?)?;
    Api::<SealedSecret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &sealed)
        .await?;
    Ok(())
}

async fn holder(client: &kube::Client, namespace: &str) -> Option<String> {
    let lease = Api::<Lease>::namespaced(client.clone(), namespace)
        .get("signet-controller")
        .await
        .ok()?;
    lease.spec?.holder_identity.filter(|h| !h.is_empty())
}

#[tokio::test]
async fn two_replicas_elect_one_leader_and_the_standby_takes_over() -> TestResult {
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let client = server.client().await?;
    signet_controller::install_crd(client.clone()).await?;
    let keys_ns = server.create_namespace(&client, "sigleader").await?;
    let app_ns = server.create_namespace(&client, "sigleaderapp").await?;

    let first = signet_controller::start(
        client.clone(),
        replica_config(&keys_ns, &app_ns, "replica-a"),
    )
    .await?;
    eventually("replica-a leads", Duration::from_secs(30), || async {
        first.context.is_leading().then_some(())
    })
    .await?;
    let second = signet_controller::start(
        client.clone(),
        replica_config(&keys_ns, &app_ns, "replica-b"),
    )
    .await?;
    eventually(
        "both replicas have the key",
        Duration::from_secs(60),
        || async { (first.context.is_ready() && second.context.is_ready()).then_some(()) },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(first.context.is_leading());
    assert!(!second.context.is_leading(), "two leaders");
    assert_eq!(
        holder(&client, &keys_ns).await.as_deref(),
        Some("replica-a")
    );
    let keys = Api::<Secret>::namespaced(client.clone(), &keys_ns)
        .list(&ListParams::default().labels(&format!("{SEALING_KEY_LABEL}=active")))
        .await?;
    assert_eq!(keys.items.len(), 1, "only the leader makes a key");

    // Sealed with the certificate the standby serves; unsealed by the leader.
    seal_and_create(&client, &second, &app_ns, "before-failover").await?;
    let secrets = Api::<Secret>::namespaced(client.clone(), &app_ns);
    eventually(
        "Secret from the leader",
        Duration::from_secs(30),
        || async { secrets.get_opt("before-failover").await.ok().flatten() },
    )
    .await?;
    assert!(first.context.metrics.writes("secret") >= 1);
    assert_eq!(
        second.context.metrics.writes("secret"),
        0,
        "the standby wrote"
    );

    // The leader dies without releasing the Lease.
    let died = Instant::now();
    first.abort();
    eventually("replica-b takes over", Duration::from_secs(40), || async {
        second.context.is_leading().then_some(())
    })
    .await?;
    let takeover = died.elapsed();
    assert!(
        takeover <= Duration::from_secs(25),
        "takeover took {takeover:?}"
    );
    assert_eq!(
        holder(&client, &keys_ns).await.as_deref(),
        Some("replica-b")
    );
    seal_and_create(&client, &second, &app_ns, "after-failover").await?;
    eventually(
        "Secret from the new leader",
        Duration::from_secs(30),
        || async { secrets.get_opt("after-failover").await.ok().flatten() },
    )
    .await?;
    assert!(second.context.metrics.writes("secret") >= 1);

    // A graceful shutdown releases the Lease.
    second.shutdown().await;
    eventually("Lease released", Duration::from_secs(15), || async {
        holder(&client, &keys_ns).await.is_none().then_some(())
    })
    .await?;
    Ok(())
}
