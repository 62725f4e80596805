//! `charts/signet` as users run it, on a real node of the test bed: the image `scripts/build-image`
//! writes, imported into the node's containerd; `helm install` with the chart's defaults (one age
//! key Secret named); two replicas under the chart's securityContext and RBAC, in-cluster
//! credentials, one leader that hands over when its Pod is deleted. Then what users do: upstream
//! `kubeseal` and `signet seal` with their defaults (the API server's service proxy to the
//! controller's Service) fetch the certificate, seal and validate; a SealedSecret, a SopsSecret and
//! an ExternalSecret (OpenBao on the host, reached from the Pod) become Secrets; `/metrics` is
//! scraped through its Service; `helm upgrade` rolls the Deployment and `helm uninstall` leaves the
//! CRDs, the objects and their Secrets in place. No value appears in logs, events or statuses.
//!
//! Needs the node's pieces (`scripts/bootstrap node`), helm, kubeseal and OpenBao; under `CI=true` a
//! missing one fails the test.

use crate::chart_support as support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use signet_controller::{ExternalSecret, SealedSecret, SecretStore, SopsSecret};
use signet_testkit::{ApiServer, NodeOptions, OpenBao};
use signet_tests::image::controller_archive;
use signet_tests::poll::eventually;
use signet_tests::sandbox::{Run, Sandbox, peer, signet_bin};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{chart_dir, helm};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxError = Box<dyn std::error::Error>;

/// Planted in every value: it must never show in a log, event, status or metric.
const CANARY: &str = "canary-node-8d41-do-not-leak";
/// kubeseal's default controller namespace: the release goes there, as the chart's values advise.
const RELEASE_NS: &str = "kube-system";
const RELEASE: &str = "signet";
/// The Secret holding the controller's age identity (`sops.ageSecretNames`).
const AGE_SECRET: &str = "sops-age";
/// The namespace the users' objects live in.
const APP_NS: &str = "app";
/// How long a Deployment may take to become Available on the 2-core test machine.
const ROLLOUT: Duration = Duration::from_secs(180);

struct Bed {
    server: ApiServer,
    client: Client,
    sandbox: Sandbox,
    bao: &'static OpenBao,
    /// The age recipient of the controller's identity.
    recipient: String,
}

impl Bed {
    fn kubeconfig(&self) -> &Path {
        self.server.kubeconfig_path()
    }

    fn kubeconfig_arg(&self) -> String {
        self.kubeconfig().display().to_string()
    }

    /// helm against the test bed's API server.
    fn helm(&self, args: &[&str]) -> Result<String, BoxError> {
        let kubeconfig = self.kubeconfig_arg();
        let mut all = vec!["--kubeconfig", kubeconfig.as_str()];
        all.extend_from_slice(args);
        tokio::task::block_in_place(|| helm(&all))
    }

    /// Runs `program` (the signet binary or an upstream peer) with `stdin`, its kubeconfig from
    /// `KUBECONFIG` only and no sealing environment: the defaults a user at a terminal has.
    fn run(&self, program: &Path, args: &[&str], stdin: &[u8]) -> Run {
        let mut command = self.sandbox.command(program);
        command
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env_remove("SEALED_SECRETS_CERT")
            .env_remove("SEALED_SECRETS_CONTROLLER_NAME")
            .env_remove("SEALED_SECRETS_CONTROLLER_NAMESPACE")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT");
        tokio::task::block_in_place(|| Run::with_stdin(command, stdin))
    }

    fn kubeseal(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.run(&peer("kubeseal"), args, stdin)
    }

    fn signet(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.run(signet_bin(), args, stdin)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), RELEASE_NS)
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), APP_NS)
    }

    /// The controller's running, ready Pods.
    async fn ready_pods(&self) -> Vec<String> {
        let selector = format!("app.kubernetes.io/instance={RELEASE}");
        let Ok(pods) = self
            .pods()
            .list(&ListParams::default().labels(&selector))
            .await
        else {
            return Vec::new();
        };
        pods.into_iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .filter(|pod| {
                pod.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .map(|pod| pod.name_any())
            .collect()
    }

    /// Waits until the Deployment has `replicas` ready replicas of its newest generation.
    async fn wait_available(&self, replicas: i32) -> TestResult {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), RELEASE_NS);
        let outcome = eventually(
            &format!("Deployment {RELEASE} with {replicas} available replicas"),
            ROLLOUT,
            || async {
                let d = deployments.get(RELEASE).await.ok()?;
                let status = d.status.as_ref()?;
                let current = status.observed_generation == d.metadata.generation
                    && status.updated_replicas == Some(replicas)
                    && status.available_replicas == Some(replicas)
                    && status.replicas == Some(replicas);
                current.then_some(())
            },
        )
        .await;
        if outcome.is_err() {
            eprintln!("{}", self.diagnose().await);
        }
        Ok(outcome?)
    }

    /// The leader Lease's holder, when it is one of the ready Pods.
    async fn leader(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), RELEASE_NS);
        let lease = leases.get("signet-controller").await.ok()?;
        let holder = lease.spec?.holder_identity?;
        self.ready_pods().await.contains(&holder).then_some(holder)
    }

    /// Waits until the Secret `name` in the app namespace has `key = value`.
    async fn wait_value(&self, name: &str, key: &str, value: &str) -> Result<Secret, BoxError> {
        let secrets = self.secrets();
        let outcome = eventually(
            &format!("Secret {APP_NS}/{name} {key}=…"),
            Duration::from_secs(60),
            || async {
                let secret = secrets.get_opt(name).await.ok()??;
                let got = secret.data.as_ref()?.get(key)?;
                (got.0 == value.as_bytes()).then_some(secret)
            },
        )
        .await;
        if outcome.is_err() {
            eprintln!("{}", self.diagnose().await);
        }
        Ok(outcome?)
    }

    /// Pods, their states and the controller's logs, for a failure message.
    async fn diagnose(&self) -> String {
        let mut out = String::new();
        if let Ok(pods) = self.pods().list(&ListParams::default()).await {
            for pod in pods {
                let name = pod.name_any();
                out.push_str(&format!(
                    "pod {name}: {}\n",
                    serde_json::to_string(&pod.status).unwrap_or_default()
                ));
                if name.starts_with(RELEASE)
                    && let Ok(log) = self.pods().logs(&name, &LogParams::default()).await
                {
                    let tail: Vec<&str> = log.lines().rev().take(30).collect();
                    out.push_str(&format!("log {name} (last lines, newest first):\n"));
                    for line in tail {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    /// Every log line the controller's Pods wrote so far.
    async fn controller_logs(&self) -> Result<String, BoxError> {
        let selector = format!("app.kubernetes.io/instance={RELEASE}");
        let mut all = String::new();
        for pod in self
            .pods()
            .list(&ListParams::default().labels(&selector))
            .await?
        {
            if let Ok(log) = self
                .pods()
                .logs(&pod.name_any(), &LogParams::default())
                .await
            {
                all.push_str(&log);
            }
        }
        Ok(all)
    }
}

/// A Secret manifest in the app namespace, as a user seals it.
fn secret_manifest(name: &str, value: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": name, "namespace": APP_NS},
           "stringData": {"password": value}})
    .to_string()
}

/// The port of an `http://127.0.0.1:PORT` address.
fn port_of(addr: &str) -> Result<u16, BoxError> {
    Ok(addr
        .rsplit(':')
        .next()
        .ok_or("no port")?
        .trim_end_matches('/')
        .parse()?)
}

async fn start() -> Result<Bed, BoxError> {
    let archive: PathBuf = tokio::task::spawn_blocking(controller_archive).await?;
    let bao = tokio::task::spawn_blocking(OpenBao::shared).await??;
    let bao_port = port_of(&bao.addr())?;
    let server = tokio::task::spawn_blocking(move || {
        ApiServer::start_with_node(NodeOptions {
            images: vec![archive],
            expose_host_ports: vec![bao_port],
        })
    })
    .await??;
    let client = server.client().await?;
    let sandbox = Sandbox::new();

    // The controller's age identity, Flux style, before the release that names it.
    let made = sandbox.signet(["keygen", "-o", "age.txt"]);
    made.ok();
    let identity = String::from_utf8(sandbox.read("age.txt"))?;
    let recipient = identity
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .ok_or("keygen wrote no public key line")?
        .to_owned();
    let key_secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": AGE_SECRET},
        "stringData": {"keys.agekey": identity}
    }))?;
    Api::<Secret>::namespaced(client.clone(), RELEASE_NS)
        .create(&PostParams::default(), &key_secret)
        .await?;
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": APP_NS}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    Ok(Bed {
        server,
        client,
        sandbox,
        bao,
        recipient,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_runs_on_a_real_node_end_to_end() -> TestResult {
    let bed = start().await?;
    let chart = chart_dir().display().to_string();

    // helm install with the chart's defaults: the image reference is the one scripts/build-image
    // wrote, already in the node's runtime.
    let started = Instant::now();
    bed.helm(&[
        "install",
        RELEASE,
        &chart,
        "--namespace",
        RELEASE_NS,
        "--set",
        &format!("sops.ageSecretNames[0]={AGE_SECRET}"),
        "--wait",
        "--timeout",
        "5m",
    ])?;
    bed.wait_available(2).await?;
    eprintln!("install to 2 available replicas: {:?}", started.elapsed());

    // The Pods run as the chart says, from the imported image.
    for pod in bed
        .pods()
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={RELEASE}")))
        .await?
    {
        let spec = pod.spec.as_ref().ok_or("pod without spec")?;
        let container = &spec.containers[0];
        let context = container
            .security_context
            .as_ref()
            .ok_or("no securityContext")?;
        assert_eq!(context.read_only_root_filesystem, Some(true));
        assert_eq!(context.allow_privilege_escalation, Some(false));
        let pod_context = spec
            .security_context
            .as_ref()
            .ok_or("no pod securityContext")?;
        assert_eq!(pod_context.run_as_user, Some(65532));
        let image_id = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|s| s.first())
            .map(|s| s.image_id.clone())
            .unwrap_or_default();
        assert!(image_id.contains("sha256:"), "image id {image_id:?}");
    }

    // One leader; deleting its Pod hands the Lease over to the other replica.
    let leader = eventually(
        "a leader among the ready Pods",
        Duration::from_secs(60),
        || bed.leader(),
    )
    .await?;
    let handover = Instant::now();
    bed.pods().delete(&leader, &DeleteParams::default()).await?;
    let successor = eventually(
        "the Lease handed over to another Pod",
        Duration::from_secs(90),
        || async { bed.leader().await.filter(|holder| *holder != leader) },
    )
    .await?;
    eprintln!(
        "leader {leader} deleted; {successor} leads after {:?}",
        handover.elapsed()
    );
    bed.wait_available(2).await?;

    // Upstream kubeseal with its defaults: the service-proxy route to the controller's Service.
    let cert = bed.kubeseal(&["--fetch-cert"], b"").ok();
    let cert = String::from_utf8(cert)?;
    assert!(
        cert.starts_with("-----BEGIN CERTIFICATE-----"),
        "kubeseal --fetch-cert: {cert}"
    );
    let manifest = secret_manifest("from-kubeseal", &format!("{CANARY}-kubeseal"));
    let sealed = bed.kubeseal(&["-o", "yaml"], manifest.as_bytes()).ok();
    bed.kubeseal(&["--validate"], &sealed).ok();
    let mut object: SealedSecret = serde_saphyr::from_slice(&sealed)?;
    object.metadata.resource_version = None;
    Api::<SealedSecret>::namespaced(bed.client.clone(), APP_NS)
        .create(&PostParams::default(), &object)
        .await?;
    bed.wait_value("from-kubeseal", "password", &format!("{CANARY}-kubeseal"))
        .await?;
    // A tampered value does not validate.
    let tampered: Value = {
        let mut v: Value = serde_saphyr::from_slice(&sealed)?;
        let data = v["spec"]["encryptedData"]["password"]
            .as_str()
            .ok_or("no encryptedData")?;
        let flipped = if data.ends_with('A') { 'B' } else { 'A' };
        let changed = format!("{}{flipped}", &data[..data.len() - 1]);
        v["spec"]["encryptedData"]["password"] = Value::String(changed);
        v
    };
    let refused = bed.kubeseal(&["--validate"], tampered.to_string().as_bytes());
    assert_ne!(
        refused.code(),
        0,
        "kubeseal --validate accepts a tampered value"
    );

    // `signet seal` with its defaults takes the same route.
    let cert_by_signet = String::from_utf8(bed.signet(&["seal", "--fetch-cert"], b"").ok())?;
    assert_eq!(
        cert_by_signet, cert,
        "signet and kubeseal fetch the same certificate"
    );
    let manifest = secret_manifest("from-signet", &format!("{CANARY}-signet"));
    let sealed = bed.signet(&["seal"], manifest.as_bytes()).ok();
    bed.signet(&["seal", "--validate"], &sealed).ok();
    let object: SealedSecret = serde_saphyr::from_slice(&sealed)?;
    Api::<SealedSecret>::namespaced(bed.client.clone(), APP_NS)
        .create(&PostParams::default(), &object)
        .await?;
    bed.wait_value("from-signet", "password", &format!("{CANARY}-signet"))
        .await?;

    // A SopsSecret, opened with the age key from the chart's `sops.ageSecretNames`.
    let plain = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: from-sops\nstringData:\n  password: {CANARY}-sops\n"
    );
    bed.sandbox.write("from-sops.yaml", plain);
    let encrypted = tokio::task::block_in_place(|| {
        bed.sandbox
            .signet([
                "encrypt",
                "--kind",
                "SopsSecret",
                "--namespace",
                APP_NS,
                "--age",
                &bed.recipient,
                "from-sops.yaml",
            ])
            .ok()
    });
    let object: SopsSecret = serde_saphyr::from_slice(&encrypted)?;
    Api::<SopsSecret>::namespaced(bed.client.clone(), APP_NS)
        .create(&PostParams::default(), &object)
        .await?;
    bed.wait_value("from-sops", "password", &format!("{CANARY}-sops"))
        .await?;

    // An ExternalSecret from OpenBao on the host, which the Pod reaches through the exposed port.
    let mount = signet_testkit::unique_name("kv");
    tokio::task::block_in_place(|| -> TestResult {
        bed.bao.bao(
            None,
            &["secrets", "enable", &format!("-path={mount}"), "kv-v2"],
        )?;
        bed.bao.bao(
            None,
            &[
                "kv",
                "put",
                &format!("-mount={mount}"),
                "app/db",
                &format!("password={CANARY}-vault"),
            ],
        )?;
        Ok(())
    })?;
    let bao_in_pod = bed
        .server
        .pod_address_of_host_port(port_of(&bed.bao.addr())?)
        .ok_or("OpenBao's port is not exposed to Pods")?;
    let token: Secret = serde_json::from_value(json!({
        "metadata": {"name": "vault-token"},
        "stringData": {"token": bed.bao.root_token()}
    }))?;
    bed.secrets().create(&PostParams::default(), &token).await?;
    let store: SecretStore = serde_json::from_value(json!({
        "apiVersion": "signet.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {
            "server": format!("http://{bao_in_pod}"), "path": mount, "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}
    }))?;
    Api::<SecretStore>::namespaced(bed.client.clone(), APP_NS)
        .create(&PostParams::default(), &store)
        .await?;
    let external: ExternalSecret = serde_json::from_value(json!({
        "apiVersion": "signet.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "from-vault"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
                 "data": [{"secretKey": "password",
                           "remoteRef": {"key": "app/db", "property": "password"}}]}
    }))?;
    Api::<ExternalSecret>::namespaced(bed.client.clone(), APP_NS)
        .create(&PostParams::default(), &external)
        .await?;
    bed.wait_value("from-vault", "password", &format!("{CANARY}-vault"))
        .await?;

    // /metrics through the metrics Service (the API server's service proxy).
    let path = format!(
        "/api/v1/namespaces/{RELEASE_NS}/services/http:{RELEASE}-metrics:metrics/proxy/metrics"
    );
    let metrics = String::from_utf8(
        bed.run(&peer("kubectl"), &["get", "--raw", &path], b"")
            .ok(),
    )?;
    assert!(
        metrics.contains("signet_unseal_duration_seconds_bucket"),
        "metrics: {}",
        &metrics[..metrics.len().min(2000)]
    );
    assert!(!metrics.contains(CANARY), "metrics leak a value");

    // helm upgrade rolls the Deployment; the controller goes on working.
    let generation = Api::<Deployment>::namespaced(bed.client.clone(), RELEASE_NS)
        .get(RELEASE)
        .await?
        .metadata
        .generation;
    bed.helm(&[
        "upgrade",
        RELEASE,
        &chart,
        "--namespace",
        RELEASE_NS,
        "--reuse-values",
        "--set",
        "logFormat=text",
        "--wait",
        "--timeout",
        "5m",
    ])?;
    bed.wait_available(2).await?;
    let upgraded = Api::<Deployment>::namespaced(bed.client.clone(), RELEASE_NS)
        .get(RELEASE)
        .await?
        .metadata
        .generation;
    assert!(upgraded > generation, "helm upgrade changed the Deployment");
    let manifest = secret_manifest("after-upgrade", &format!("{CANARY}-upgrade"));
    let sealed = bed.signet(&["seal"], manifest.as_bytes()).ok();
    let object: SealedSecret = serde_saphyr::from_slice(&sealed)?;
    Api::<SealedSecret>::namespaced(bed.client.clone(), APP_NS)
        .create(&PostParams::default(), &object)
        .await?;
    bed.wait_value("after-upgrade", "password", &format!("{CANARY}-upgrade"))
        .await?;

    // Nothing leaked into the controller's logs, events or statuses.
    let logs = bed.controller_logs().await?;
    assert!(!logs.is_empty(), "the controller logged something");
    assert!(!logs.contains(CANARY), "controller logs leak a value");
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(bed.client.clone());
    for event in events.list(&ListParams::default()).await? {
        let text = serde_json::to_string(&event)?;
        assert!(!text.contains(CANARY), "an event leaks a value: {text}");
    }
    for object in Api::<SopsSecret>::namespaced(bed.client.clone(), APP_NS)
        .list(&ListParams::default())
        .await?
    {
        assert!(!serde_json::to_string(&object.status)?.contains(CANARY));
    }

    // helm uninstall keeps the CRDs, the objects and their Secrets.
    bed.helm(&["uninstall", RELEASE, "--namespace", RELEASE_NS, "--wait"])?;
    let crds: Api<CustomResourceDefinition> = Api::all(bed.client.clone());
    for crd in [
        "sealedsecrets.bitnami.com",
        "sopssecrets.signet.dev",
        "externalsecrets.signet.dev",
        "secretstores.signet.dev",
        "clustersecretstores.signet.dev",
        "clusterexternalsecrets.signet.dev",
    ] {
        assert!(
            crds.get_opt(crd).await?.is_some(),
            "{crd} survives helm uninstall"
        );
    }
    for name in [
        "from-kubeseal",
        "from-signet",
        "from-sops",
        "from-vault",
        "after-upgrade",
    ] {
        assert!(
            bed.secrets().get_opt(name).await?.is_some(),
            "Secret {name} survives helm uninstall"
        );
    }
    assert_eq!(
        Api::<SealedSecret>::namespaced(bed.client.clone(), APP_NS)
            .list(&ListParams::default())
            .await?
            .items
            .len(),
        3
    );
    Ok(())
}
