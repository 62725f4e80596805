//! Catch-up benchmark against the real API server (not a test: it prints timings, asserts nothing).
//!
//! 1. Creates `SIGNET_BENCH_N` (default 5000) SealedSecrets with 3 items each, sealed with signet-seal,
//!    while no controller runs.
//! 2. Starts the controller in-process (RSA-4096 key adopted from a pre-created key Secret) and times
//!    how long until every object has a Secret and `Synced=True`.
//! 3. Creates 50 more, one at a time, and reports p50/p99 of "created -> Secret exists".
//! 4. Prints the peak RSS (`SIGNET_BENCH_BITNAMI_BIN` runs the upstream Bitnami controller instead,
//!    for the side-by-side comparison; note that v0.36.6 only loads in-cluster configuration, so it needs
//!    `KUBERNETES_SERVICE_HOST`/`PORT` and a service-account token file to run out of cluster): of the controller process when `SIGNET_BENCH_CONTROLLER_BIN` names the
//!    `signet-controller` binary (run as a child with `KUBECONFIG`), else of this process (controller +
//!    the bench's own client).
//!
//! Run: `cargo bench -p signet-controller --bench catch_up` (`SIGNET_BENCH_N=500` for a quick run;
//! without `--bench`, as under `cargo test --all-targets`, it is a 20-object smoke run).

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams};
use signet_controller::keyring::SEALING_KEY_LABEL;
use signet_controller::{Config, SealedSecret};
use signet_testkit::ApiServer;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The controller under measurement.
enum Controller {
    InProcess(signet_controller::RunningController),
    Child(std::process::Child),
}

fn sealed(
    cert: &signet_seal::SealingCertificate,
    namespace: &str,
    name: &str,
) -> Result<SealedSecret, BoxError> {
    let mut secret = signet_api::Secret::new(signet_api::ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        ..Default::default()
    });
    secret.string_data = Some(BTreeMap::from([
        ("username".to_owned(), format!("user-{name}")),
        ("password".to_owned(), format!("password-{name}")),
        ("url".to_owned(), format!("https://db.example/{name}")),
    ]));
    let sealed = signet_seal::seal_secret(&secret, cert, &signet_seal::SealOptions::default())?;
    Ok(serde_json::from_value(serde_json::to_value(&sealed)?)?)
}

fn peak_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this as a 20-object smoke run.
    let benching = std::env::args().any(|a| a == "--bench");
    let count: usize = std::env::var("SIGNET_BENCH_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if benching { 5000 } else { 20 });
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let client = server.client().await?;
    signet_controller::install_crd(client.clone()).await?;
    let keys_ns = server.create_namespace(&client, "benchkeys").await?;
    let app_ns = server.create_namespace(&client, "benchapp").await?;

    let generated =
        signet_seal::generate_sealing_key(4096, signet_seal::cert::DEFAULT_CERT_VALIDITY, "bench")?;
    let cert = signet_seal::SealingCertificate::from_pem(generated.certificate_pem.as_bytes())?;
    let key_secret = Secret {
        metadata: ObjectMeta {
            generate_name: Some("sealed-secrets-key".to_owned()),
            labels: Some(BTreeMap::from([(
                SEALING_KEY_LABEL.to_owned(),
                "active".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            (
                "tls.crt".to_owned(),
                ByteString(generated.certificate_pem.clone().into_bytes()),
            ),
            (
                "tls.key".to_owned(),
                ByteString(generated.private_key_pem.as_bytes().to_vec()),
            ),
        ])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), &keys_ns)
        .create(&PostParams::default(), &key_secret)
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await; // the CRD becomes established

    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), &app_ns);
    let started = Instant::now();
    let objects: Vec<SealedSecret> = (0..count)
        .map(|i| sealed(&cert, &app_ns, &format!("s{i:05}")))
        .collect::<Result<_, _>>()?;
    let created = futures::stream::iter(objects.into_iter().map(|object| {
        let api = sealed_api.clone();
        async move {
            api.create(&PostParams::default(), &object)
                .await
                .map(|_| ())
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    let failures = created.iter().filter(|r| r.is_err()).count();
    println!(
        "created {count} SealedSecrets ({failures} failed) in {:.1?}",
        started.elapsed()
    );

    let start = Instant::now();
    let bitnami = std::env::var_os("SIGNET_BENCH_BITNAMI_BIN");
    let mut controller = match std::env::var_os("SIGNET_BENCH_CONTROLLER_BIN") {
        // The upstream Bitnami controller, out of cluster against the same API server, adopting
        // the same key Secret.
        _ if bitnami.is_some() => {
            let child = std::process::Command::new(bitnami.unwrap_or_default())
                .env("KUBECONFIG", server.kubeconfig_path())
                .env("POD_NAMESPACE", &keys_ns)
                .args([
                    "--all-namespaces=false",
                    &format!("--additional-namespaces={app_ns}"),
                    &format!("--listen-addr=127.0.0.1:{}", signet_testkit::free_port()?),
                    &format!(
                        "--listen-metrics-addr=127.0.0.1:{}",
                        signet_testkit::free_port()?
                    ),
                    "--log-level=ERROR",
                ])
                .stdout(std::process::Stdio::null())
                .spawn()?;
            Controller::Child(child)
        }
        Some(bin) => {
            let child = std::process::Command::new(bin)
                .env("KUBECONFIG", server.kubeconfig_path())
                .env("SIGNET_CONTROLLER_NAMESPACE", &keys_ns)
                .env("SIGNET_WATCH_NAMESPACE", &app_ns)
                .env(
                    "SIGNET_LISTEN_ADDR",
                    format!("127.0.0.1:{}", signet_testkit::free_port()?),
                )
                .env(
                    "SIGNET_METRICS_ADDR",
                    format!("127.0.0.1:{}", signet_testkit::free_port()?),
                )
                .env("SIGNET_LEADER_ELECT", "false")
                .env("RUST_LOG", "warn")
                .spawn()?;
            Controller::Child(child)
        }
        None => {
            let mut config = Config::new(&keys_ns);
            config.watch_namespace = Some(app_ns.clone());
            config.listen_addr = ([127, 0, 0, 1], 0).into();
            config.metrics_addr = ([127, 0, 0, 1], 0).into();
            Controller::InProcess(signet_controller::start(client.clone(), config).await?)
        }
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &app_ns);
    loop {
        let listed = secrets.list_metadata(&ListParams::default()).await?;
        if listed.items.len() >= count {
            break;
        }
        if let Controller::Child(child) = &mut controller
            && let Some(exit) = child.try_wait()?
        {
            return Err(format!("the controller exited early: {exit}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let secrets_done = start.elapsed();
    loop {
        let listed = sealed_api.list(&ListParams::default()).await?;
        let synced = listed
            .items
            .iter()
            .filter(|s| {
                s.status
                    .as_ref()
                    .and_then(|st| st.synced())
                    .is_some_and(|c| c.status == "True")
            })
            .count();
        if synced >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "catch-up: all {count} Secrets after {secrets_done:.2?}, all Synced after {:.2?}",
        start.elapsed()
    );

    let mut latencies = Vec::new();
    for i in 0..50 {
        let name = format!("late{i:02}");
        let object = sealed(&cert, &app_ns, &name)?;
        let t = Instant::now();
        sealed_api.create(&PostParams::default(), &object).await?;
        loop {
            if secrets.get_metadata_opt(&name).await?.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(t.elapsed());
    }
    latencies.sort();
    println!(
        "new SealedSecret -> Secret with {count} others: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        latencies[latencies.len() / 2],
        latencies[(latencies.len() * 99) / 100 - 1],
        latencies[latencies.len() - 1]
    );
    match controller {
        Controller::Child(mut child) => {
            let pid = child.id().to_string();
            println!(
                "peak RSS of the controller process: {} MiB",
                peak_rss_kib(&pid).unwrap_or(0) / 1024
            );
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status();
            let _ = child.wait();
        }
        Controller::InProcess(controller) => {
            println!(
                "peak RSS of this process (controller + bench client): {} MiB",
                peak_rss_kib("self").unwrap_or(0) / 1024
            );
            controller.shutdown().await;
        }
    }
    Ok(())
}
