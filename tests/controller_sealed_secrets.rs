//! `signet-controller` against the real kube-apiserver from `signet-testkit`: the controller runs
//! in-process (`signet_controller::start`), each test with its own key namespace and its own watched
//! namespace. SealedSecrets made by upstream kubeseal (fetching our `/v1/cert.pem`) and by
//! `signet-seal` become the right Secrets; a deleted Secret comes back; an unmanaged Secret is left
//! alone with a condition until it is annotated `managed`; tampering yields a Warning and no Secret;
//! a resync with nothing changed writes nothing; verify/rotate, key renewal and adoption of
//! Bitnami-format key Secrets.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use signet_controller::keyring::{SEALING_KEY_LABEL, fingerprint};
use signet_controller::reconcile::{OWNER_LABEL, UNSEAL_FAILED_MESSAGE, reason};
use signet_controller::{Config, RunningController, SealedSecret};
use signet_testkit::ApiServer;
use signet_tests::poll::eventually;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxError = Box<dyn std::error::Error>;

/// A value planted in secrets: it must never show up in statuses, events or metrics.
const CANARY: &str = "canary-7f3a9c-do-not-leak";

/// One controller watching one namespace, with keys in another.
struct Bed {
    client: Client,
    keys_namespace: String,
    namespace: String,
    controller: RunningController,
    base_url: String,
    config: Config,
}

impl Bed {
    async fn start(tweak: impl FnOnce(&mut Config)) -> Result<Bed, BoxError> {
        Self::start_with_keys(tweak, |_| Vec::new()).await
    }

    /// Starts a controller after creating the key Secrets `keys(keys_namespace)` returns.
    async fn start_with_keys(
        tweak: impl FnOnce(&mut Config),
        keys: impl FnOnce(&str) -> Vec<Secret>,
    ) -> Result<Bed, BoxError> {
        let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
        let client = server.client().await?;
        signet_controller::install_crd(client.clone()).await?;
        let keys_namespace = server.create_namespace(&client, "sigkeys").await?;
        let namespace = server.create_namespace(&client, "sigapp").await?;
        let key_api: Api<Secret> = Api::namespaced(client.clone(), &keys_namespace);
        for secret in keys(&keys_namespace) {
            key_api.create(&PostParams::default(), &secret).await?;
        }
        // The CRD is served once it is established.
        let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), &namespace);
        eventually(
            "SealedSecret CRD served",
            Duration::from_secs(30),
            || async { sealed_api.list(&ListParams::default()).await.ok() },
        )
        .await?;

        let mut config = Config::new(&keys_namespace);
        config.watch_namespace = Some(namespace.clone());
        config.listen_addr = "127.0.0.1:0".parse()?;
        config.metrics_addr = "127.0.0.1:0".parse()?;
        // 2048-bit keys keep key generation quick on small CI machines; the code path is the same.
        config.key_bits = 2048;
        config.resync_period = Some(Duration::from_secs(1));
        tweak(&mut config);
        Self::launch(client, keys_namespace, namespace, config).await
    }

    /// Starts a controller with `config` (a new one: empty caches, nothing remembered) and waits
    /// until it is ready.
    async fn launch(
        client: Client,
        keys_namespace: String,
        namespace: String,
        config: Config,
    ) -> Result<Bed, BoxError> {
        let controller = signet_controller::start(client.clone(), config.clone()).await?;
        let base_url = format!("http://{}", controller.http_addr);
        let http = reqwest::Client::new();
        eventually("controller ready", Duration::from_secs(60), || async {
            let response = http.get(format!("{base_url}/readyz")).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await?;
        Ok(Bed {
            client,
            keys_namespace,
            namespace,
            controller,
            base_url,
            config,
        })
    }

    fn sealed_api(&self) -> Api<SealedSecret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn secret_api(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn cert_pem(&self) -> Result<String, BoxError> {
        let response = reqwest::get(format!("{}/v1/cert.pem", self.base_url)).await?;
        assert!(response.status().is_success());
        Ok(response.text().await?)
    }

    async fn create(&self, sealed: &SealedSecret) -> Result<SealedSecret, BoxError> {
        Ok(self
            .sealed_api()
            .create(&PostParams::default(), sealed)
            .await?)
    }

    /// Waits for the Synced condition to have `status` and returns the object.
    async fn wait_synced(&self, name: &str, status: &str) -> Result<SealedSecret, BoxError> {
        let api = self.sealed_api();
        Ok(eventually(
            &format!("{name} Synced={status}"),
            Duration::from_secs(30),
            || async {
                let sealed = api.get(name).await.ok()?;
                let done = sealed.status.as_ref().is_some_and(|s| {
                    s.synced().is_some_and(|c| c.status == status)
                        && s.observed_generation == sealed.metadata.generation
                });
                done.then_some(sealed)
            },
        )
        .await?)
    }

    async fn wait_secret(&self, name: &str) -> Result<Secret, BoxError> {
        let api = self.secret_api();
        Ok(eventually(
            &format!("Secret {name}"),
            Duration::from_secs(30),
            || async { api.get_opt(name).await.ok().flatten() },
        )
        .await?)
    }

    async fn events_for(&self, name: &str) -> Result<Vec<Event>, BoxError> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect())
    }

    /// The events of `name` once there is at least one: the controller publishes an event just
    /// after the status patch that a test waits for.
    async fn wait_events(&self, name: &str) -> Result<Vec<Event>, BoxError> {
        Ok(eventually(
            &format!("events of {name}"),
            Duration::from_secs(30),
            || async {
                let events = self.events_for(name).await.ok()?;
                (!events.is_empty()).then_some(events)
            },
        )
        .await?)
    }

    async fn metrics(&self) -> Result<String, BoxError> {
        let url = format!("http://{}/metrics", self.controller.metrics_addr);
        Ok(reqwest::get(url).await?.text().await?)
    }
}

fn secret_manifest(name: &str, namespace: &str, values: &[(&str, &[u8])]) -> serde_json::Value {
    let data: BTreeMap<&str, String> = values
        .iter()
        .map(|(k, v)| (*k, STANDARD.encode(v)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "demo"},
                     "annotations": {"team": "payments"}},
        "type": "Opaque",
        "data": data,
    })
}

/// Seals a Secret manifest with upstream kubeseal, which fetches the certificate from `cert`.
async fn kubeseal(
    cert: &str,
    scope: &str,
    manifest: &serde_json::Value,
) -> Result<SealedSecret, BoxError> {
    let mut child = tokio::process::Command::new(signet_testkit::peer_path("kubeseal")?)
        .args(["--cert", cert, "--scope", scope, "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    stdin.write_all(manifest.to_string().as_bytes()).await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    assert!(
        output.status.success(),
        "kubeseal failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// Seals with `signet-seal`.
fn signet_seal(
    cert_pem: &str,
    manifest: &serde_json::Value,
    scope: signet_seal::Scope,
) -> Result<SealedSecret, BoxError> {
    let cert = signet_seal::SealingCertificate::from_pem(cert_pem.as_bytes())?;
    let secret: signet_api::Secret = serde_json::from_value(manifest.clone())?;
    let options = signet_seal::SealOptions {
        scope: Some(scope),
        ..signet_seal::SealOptions::default()
    };
    let sealed = signet_seal::seal_secret(&secret, &cert, &options)?;
    Ok(serde_json::from_value(serde_json::to_value(&sealed)?)?)
}

fn data_of(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

#[tokio::test]
async fn kubeseal_and_signet_sealed_secrets_become_the_right_secrets() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let cert_url = format!("{}/v1/cert.pem", bed.base_url);
    let cert_pem = bed.cert_pem().await?;
    let key_fp = fingerprint(
        signet_seal::SealingCertificate::from_pem(cert_pem.as_bytes())?.public_key_der(),
    );
    let binary: Vec<u8> = (0..=255u8).collect();
    let values: [(&str, &[u8]); 3] = [
        ("password", CANARY.as_bytes()),
        ("binary", &binary),
        ("multi-line", b"one\ntwo\n"),
    ];

    let mut cases = Vec::new();
    for scope in ["strict", "namespace-wide", "cluster-wide"] {
        let name = format!("kubeseal-{scope}");
        let sealed = kubeseal(
            &cert_url,
            scope,
            &secret_manifest(&name, &bed.namespace, &values),
        )
        .await?;
        cases.push((name, sealed));
    }
    for scope in [
        signet_seal::Scope::Strict,
        signet_seal::Scope::NamespaceWide,
        signet_seal::Scope::ClusterWide,
    ] {
        let name = format!("signet-{}", scope.as_str());
        let sealed = signet_seal(
            &cert_pem,
            &secret_manifest(&name, &bed.namespace, &values),
            scope,
        )?;
        cases.push((name, sealed));
    }
    // A template (rendered over the values), a type and immutability.
    let mut tls = signet_seal(
        &cert_pem,
        &secret_manifest(
            "templated",
            &bed.namespace,
            &[("username", b"admin"), ("password", CANARY.as_bytes())],
        ),
        signet_seal::Scope::Strict,
    )?;
    tls.spec.template.type_ = Some("kubernetes.io/basic-auth".to_owned());
    tls.spec.template.immutable = Some(true);
    tls.spec.template.data = Some(BTreeMap::from([(
        "url".to_owned(),
        Some("https://{{ .username }}:{{ index . \"password\" }}@db".to_owned()),
    )]));
    cases.push(("templated".to_owned(), tls));

    for (_, sealed) in &cases {
        bed.create(sealed).await?;
    }
    for (name, _) in &cases {
        let sealed = bed.wait_synced(name, "True").await?;
        let status = sealed.status.clone().unwrap_or_default();
        assert_eq!(
            status.key_fingerprint.as_deref(),
            Some(key_fp.as_str()),
            "{name}"
        );
        let secret = bed.wait_secret(name).await?;
        let owner = &secret.owner_references()[0];
        assert_eq!(owner.kind, "SealedSecret");
        assert_eq!(Some(&owner.uid), sealed.metadata.uid.as_ref());
        assert_eq!(owner.controller, Some(true));
        assert_eq!(
            secret.labels().get("app").map(String::as_str),
            Some("demo"),
            "{name}"
        );
        assert_eq!(
            secret.annotations().get("team").map(String::as_str),
            Some("payments"),
            "{name}"
        );
        let data = data_of(&secret);
        if name == "templated" {
            assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
            assert_eq!(secret.immutable, Some(true));
            assert_eq!(data["username"], b"admin");
            assert_eq!(
                data["url"],
                format!("https://admin:{CANARY}@db").into_bytes()
            );
        } else {
            assert_eq!(secret.type_.as_deref(), Some("Opaque"));
            assert_eq!(data.len(), 3, "{name}");
            for (key, value) in values {
                assert_eq!(data[key], value, "{name}/{key}");
            }
        }
        let events = bed.wait_events(name).await?;
        assert!(
            events.iter().all(|e| e.type_.as_deref() == Some("Normal")),
            "{name}: {events:?}"
        );
    }
    let per_key = format!(
        "signet_sealed_secrets_by_key{{fingerprint=\"{key_fp}\"}} {}",
        cases.len()
    );
    let metrics = eventually("per-key gauge", Duration::from_secs(15), || async {
        let text = bed.metrics().await.ok()?;
        text.contains(&per_key).then_some(text)
    })
    .await?;
    assert!(metrics.contains("signet_sealing_keys 1"), "{metrics}");
    assert!(!metrics.contains(CANARY));
    bed.controller.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn deleted_secret_comes_back_and_deleting_the_sealed_secret_removes_it() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let cert = bed.cert_pem().await?;
    let manifest = secret_manifest("comeback", &bed.namespace, &[("k", b"v1")]);
    bed.create(&signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?)
        .await?;
    let first = bed.wait_secret("comeback").await?;
    bed.secret_api()
        .delete("comeback", &DeleteParams::default())
        .await?;
    let api = bed.secret_api();
    let again = eventually("Secret re-created", Duration::from_secs(30), || async {
        let secret = api.get_opt("comeback").await.ok().flatten()?;
        (secret.metadata.uid != first.metadata.uid).then_some(secret)
    })
    .await?;
    assert_eq!(data_of(&again)["k"], b"v1");
    assert!(again.labels().contains_key(OWNER_LABEL));

    // Deleting the SealedSecret removes the Secret (garbage collection through the ownerReference).
    bed.sealed_api()
        .delete("comeback", &DeleteParams::background())
        .await?;
    eventually(
        "Secret garbage-collected",
        Duration::from_secs(60),
        || async { api.get_opt("comeback").await.ok()?.is_none().then_some(()) },
    )
    .await?;
    bed.controller.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unmanaged_secret_is_left_alone_until_annotated_managed() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let cert = bed.cert_pem().await?;
    let existing = Secret {
        metadata: ObjectMeta {
            name: Some("taken".to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "other".to_owned(),
            ByteString(b"theirs".to_vec()),
        )])),
        ..Secret::default()
    };
    let before = bed
        .secret_api()
        .create(&PostParams::default(), &existing)
        .await?;
    let manifest = secret_manifest("taken", &bed.namespace, &[("k", CANARY.as_bytes())]);
    bed.create(&signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?)
        .await?;
    let sealed = bed.wait_synced("taken", "False").await?;
    let condition = sealed
        .status
        .as_ref()
        .and_then(|s| s.synced().cloned())
        .ok_or("no condition")?;
    assert_eq!(condition.reason.as_deref(), Some(reason::SECRET_NOT_OWNED));
    assert!(
        condition
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("managed")
    );
    let events = bed.wait_events("taken").await?;
    assert!(events.iter().any(|e| e.type_.as_deref() == Some("Warning")
        && e.reason.as_deref() == Some(reason::SECRET_NOT_OWNED)));
    let after = bed.secret_api().get("taken").await?;
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(data_of(&after).keys().collect::<Vec<_>>(), ["other"]);

    // With the `managed` annotation the controller takes it over.
    bed.secret_api()
        .patch(
            "taken",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"sealedsecrets.bitnami.com/managed": "true"}}}),
            ),
        )
        .await?;
    let sealed = bed.wait_synced("taken", "True").await?;
    let secret = bed.secret_api().get("taken").await?;
    assert_eq!(data_of(&secret)["k"], CANARY.as_bytes());
    assert_eq!(
        secret.owner_references()[0].uid,
        sealed.uid().unwrap_or_default()
    );
    bed.controller.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn tampered_sealed_secret_gets_a_uniform_warning_and_no_secret_change() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let cert = bed.cert_pem().await?;
    let manifest = secret_manifest("tampered", &bed.namespace, &[("k", CANARY.as_bytes())]);
    let mut sealed = signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?;
    let value = sealed.spec.encrypted_data.get_mut("k").ok_or("no value")?;
    let mut raw = STANDARD.decode(value.as_bytes())?;
    let last = raw.len() - 1;
    raw[last] ^= 1;
    *value = STANDARD.encode(&raw);
    // The same values under another name: the label no longer matches.
    let mut renamed = signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?;
    renamed.metadata.name = Some("renamed".to_owned());
    bed.create(&sealed).await?;
    bed.create(&renamed).await?;
    for name in ["tampered", "renamed"] {
        let sealed = bed.wait_synced(name, "False").await?;
        let condition = sealed
            .status
            .as_ref()
            .and_then(|s| s.synced().cloned())
            .ok_or("no condition")?;
        assert_eq!(condition.reason.as_deref(), Some(reason::UNSEAL_FAILED));
        assert_eq!(condition.message.as_deref(), Some(UNSEAL_FAILED_MESSAGE));
        let events = bed.wait_events(name).await?;
        let warnings: Vec<_> = events
            .iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .collect();
        assert_eq!(warnings.len(), 1, "{name}: {events:?}");
        assert_eq!(warnings[0].note.as_deref(), Some(UNSEAL_FAILED_MESSAGE));
        assert!(bed.secret_api().get_opt(name).await?.is_none());
    }
    // Tampering with a synced object leaves its Secret exactly as it was.
    let good = signet_seal(
        &cert,
        &secret_manifest("was-good", &bed.namespace, &[("k", b"v")]),
        signet_seal::Scope::Strict,
    )?;
    bed.create(&good).await?;
    bed.wait_synced("was-good", "True").await?;
    let before = bed.wait_secret("was-good").await?;
    let mut damaged = good.spec.encrypted_data.clone();
    let value = damaged.get_mut("k").ok_or("no value")?;
    let mut raw = STANDARD.decode(value.as_bytes())?;
    raw[10] ^= 0x80;
    *value = STANDARD.encode(&raw);
    bed.sealed_api()
        .patch(
            "was-good",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"encryptedData": damaged}})),
        )
        .await?;
    let failed = bed.wait_synced("was-good", "False").await?;
    assert_eq!(
        failed
            .status
            .as_ref()
            .and_then(|s| s.synced())
            .and_then(|c| c.reason.as_deref()),
        Some(reason::UNSEAL_FAILED)
    );
    let after = bed.secret_api().get("was-good").await?;
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(data_of(&after)["k"], b"v");

    // Resyncs of a failing object add no events.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        bed.events_for("tampered")
            .await?
            .iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .count(),
        1
    );
    let metrics = bed.metrics().await?;
    assert!(metrics.contains("reason=\"UnsealFailed\""), "{metrics}");
    assert!(!metrics.contains(CANARY));
    bed.controller.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn resync_without_change_writes_nothing() -> TestResult {
    let bed = Bed::start(|c| c.resync_period = Some(Duration::from_millis(300))).await?;
    let cert = bed.cert_pem().await?;
    let manifest = secret_manifest("quiet", &bed.namespace, &[("k", b"v")]);
    bed.create(&signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?)
        .await?;
    bed.wait_synced("quiet", "True").await?;
    bed.wait_secret("quiet").await?;
    // Let the follow-up reconciles of the first write settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = &bed.controller.context.metrics;
    let reconciles_before = bed.metrics().await?;
    let writes_before = (
        metrics.writes("secret"),
        metrics.writes("status"),
        metrics.writes("event"),
    );
    let sealed_rv = bed
        .sealed_api()
        .get("quiet")
        .await?
        .metadata
        .resource_version;
    let secret_rv = bed
        .secret_api()
        .get("quiet")
        .await?
        .metadata
        .resource_version;
    let events = bed.events_for("quiet").await?.len();

    tokio::time::sleep(Duration::from_secs(3)).await;
    let reconciles_after = bed.metrics().await?;
    assert_ne!(
        reconcile_count(&reconciles_before),
        reconcile_count(&reconciles_after),
        "resyncs ran"
    );
    assert_eq!(
        (
            metrics.writes("secret"),
            metrics.writes("status"),
            metrics.writes("event")
        ),
        writes_before
    );
    assert_eq!(
        bed.sealed_api()
            .get("quiet")
            .await?
            .metadata
            .resource_version,
        sealed_rv
    );
    assert_eq!(
        bed.secret_api()
            .get("quiet")
            .await?
            .metadata
            .resource_version,
        secret_rv
    );
    assert_eq!(bed.events_for("quiet").await?.len(), events);

    // A real change is written once.
    let updated = signet_seal(
        &cert,
        &secret_manifest("quiet", &bed.namespace, &[("k", b"v2")]),
        signet_seal::Scope::Strict,
    )?;
    bed.sealed_api()
        .patch(
            "quiet",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"encryptedData": updated.spec.encrypted_data}})),
        )
        .await?;
    let api = bed.secret_api();
    eventually("Secret updated", Duration::from_secs(30), || async {
        let secret = api.get("quiet").await.ok()?;
        (data_of(&secret)["k"] == b"v2").then_some(())
    })
    .await?;
    bed.controller.shutdown().await;
    Ok(())
}

fn reconcile_count(metrics: &str) -> String {
    metrics
        .lines()
        .find(|l| l.starts_with("signet_reconciles_total{kind=\"SealedSecret\"}"))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn verify_and_rotate_endpoints_answer_uniformly_and_reseal_to_the_newest_key() -> TestResult {
    let bed = Bed::start(|c| c.key_renew_period = Some(Duration::from_secs(4))).await?;
    let first_cert = bed.cert_pem().await?;
    let manifest = secret_manifest("rotated", &bed.namespace, &[("k", CANARY.as_bytes())]);
    let sealed = signet_seal(&first_cert, &manifest, signet_seal::Scope::Strict)?;
    let http = reqwest::Client::new();
    let verify = http
        .post(format!("{}/v1/verify", bed.base_url))
        .json(&sealed)
        .send()
        .await?;
    assert_eq!(verify.status().as_u16(), 200);
    let mut tampered = sealed.clone();
    tampered.metadata.namespace = Some("elsewhere".to_owned());
    let verify = http
        .post(format!("{}/v1/verify", bed.base_url))
        .json(&tampered)
        .send()
        .await?;
    assert_eq!(verify.status().as_u16(), 409);
    assert!(!verify.text().await?.contains(CANARY));

    // Renewal adds a key; the certificate served changes; old objects still open.
    let second_cert = eventually("renewed key", Duration::from_secs(60), || async {
        let response = reqwest::get(format!("{}/v1/cert.pem", bed.base_url))
            .await
            .ok()?;
        let pem = response.text().await.ok()?;
        (pem != first_cert).then_some(pem)
    })
    .await?;
    let new_fp = fingerprint(
        signet_seal::SealingCertificate::from_pem(second_cert.as_bytes())?.public_key_der(),
    );
    let rotated = http
        .post(format!("{}/v1/rotate", bed.base_url))
        .json(&sealed)
        .send()
        .await?;
    assert_eq!(rotated.status().as_u16(), 200);
    let rotated: SealedSecret = rotated.json().await?;
    assert_ne!(rotated.spec.encrypted_data, sealed.spec.encrypted_data);
    bed.create(&sealed).await?;
    let synced = bed.wait_synced("rotated", "True").await?;
    let old_fp = synced
        .status
        .and_then(|s| s.key_fingerprint)
        .ok_or("no fingerprint")?;
    assert_ne!(old_fp, new_fp);
    bed.sealed_api()
        .patch(
            "rotated",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"encryptedData": rotated.spec.encrypted_data}})),
        )
        .await?;
    let api = bed.sealed_api();
    let resynced = eventually(
        "re-sealed object synced",
        Duration::from_secs(30),
        || async {
            let s = api.get("rotated").await.ok()?;
            let status = s.status.clone()?;
            (status.observed_generation == s.metadata.generation
                && status.synced()?.status == "True"
                && status.key_fingerprint.as_deref() == Some(new_fp.as_str()))
            .then_some(s)
        },
    )
    .await?;
    assert!(resynced.status.is_some());
    assert_eq!(
        data_of(&bed.secret_api().get("rotated").await?)["k"],
        CANARY.as_bytes()
    );
    bed.controller.shutdown().await;
    Ok(())
}

/// A key Secret as the Bitnami controller writes it: PKCS#1 key, self-signed certificate.
fn kat_key_secret() -> Secret {
    let read = |name: &str| {
        std::fs::read(format!(
            "{}/fixtures/seal/kat/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("KAT fixture")
    };
    Secret {
        metadata: ObjectMeta {
            name: Some("sealed-secrets-keyabcde".to_owned()),
            labels: Some(BTreeMap::from([(
                SEALING_KEY_LABEL.to_owned(),
                "active".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(read("cert.pem"))),
            ("tls.key".to_owned(), ByteString(read("key-pkcs1.pem"))),
        ])),
        ..Secret::default()
    }
}

#[tokio::test]
async fn bitnami_format_key_secret_is_adopted_without_generating_a_key() -> TestResult {
    let cert_pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/seal/kat/cert.pem"
    ))?;
    let bed = Bed::start_with_keys(|_| {}, |_| vec![kat_key_secret()]).await?;
    assert_eq!(bed.cert_pem().await?.as_bytes(), cert_pem.as_slice());
    let keys: Api<Secret> = Api::namespaced(bed.client.clone(), &bed.keys_namespace);
    let listed = keys
        .list(&ListParams::default().labels(&format!("{SEALING_KEY_LABEL}=active")))
        .await?;
    assert_eq!(
        listed.items.len(),
        1,
        "no key generated next to the adopted one"
    );
    let manifest = secret_manifest("adopted", &bed.namespace, &[("k", b"v")]);
    let sealed = kubeseal(
        &format!("{}/v1/cert.pem", bed.base_url),
        "strict",
        &manifest,
    )
    .await?;
    bed.create(&sealed).await?;
    bed.wait_synced("adopted", "True").await?;
    assert_eq!(data_of(&bed.wait_secret("adopted").await?)["k"], b"v");
    bed.controller.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn skip_set_owner_references_writes_a_labelled_secret_without_owner() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let cert = bed.cert_pem().await?;
    let manifest = secret_manifest("unowned", &bed.namespace, &[("k", b"v")]);
    let mut sealed = signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?;
    sealed.spec.template.metadata.set_annotation(
        "sealedsecrets.bitnami.com/skip-set-owner-references",
        "true",
    );
    bed.create(&sealed).await?;
    bed.wait_synced("unowned", "True").await?;
    let secret = bed.wait_secret("unowned").await?;
    assert!(secret.owner_references().is_empty());
    assert!(secret.labels().contains_key(OWNER_LABEL));
    // Still watched by label: a deleted Secret comes back.
    bed.secret_api()
        .delete("unowned", &DeleteParams::default())
        .await?;
    let api = bed.secret_api();
    eventually("Secret re-created", Duration::from_secs(30), || async {
        let again = api.get_opt("unowned").await.ok().flatten()?;
        (again.metadata.uid != secret.metadata.uid).then_some(())
    })
    .await?;
    bed.controller.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn patch_annotation_merges_into_an_existing_secret() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let cert = bed.cert_pem().await?;
    let existing = Secret {
        metadata: ObjectMeta {
            name: Some("merged".to_owned()),
            annotations: Some(BTreeMap::from([(
                "sealedsecrets.bitnami.com/patch".to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "other".to_owned(),
            ByteString(b"theirs".to_vec()),
        )])),
        ..Secret::default()
    };
    bed.secret_api()
        .create(&PostParams::default(), &existing)
        .await?;
    let manifest = secret_manifest("merged", &bed.namespace, &[("k", b"ours")]);
    bed.create(&signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?)
        .await?;
    bed.wait_synced("merged", "True").await?;
    let secret = bed.secret_api().get("merged").await?;
    let data = data_of(&secret);
    assert_eq!(data["other"], b"theirs");
    assert_eq!(data["k"], b"ours");
    assert!(
        secret.owner_references().is_empty(),
        "a patched Secret is not owned"
    );
    bed.controller.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn refused_secret_update_is_a_condition_and_one_warning() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let cert = bed.cert_pem().await?;
    let mut sealed = signet_seal(
        &cert,
        &secret_manifest("frozen", &bed.namespace, &[("k", b"v1")]),
        signet_seal::Scope::Strict,
    )?;
    sealed.spec.template.immutable = Some(true);
    bed.create(&sealed).await?;
    bed.wait_synced("frozen", "True").await?;
    let before = bed.wait_secret("frozen").await?;
    let changed = signet_seal(
        &cert,
        &secret_manifest("frozen", &bed.namespace, &[("k", b"v2")]),
        signet_seal::Scope::Strict,
    )?;
    bed.sealed_api()
        .patch(
            "frozen",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"encryptedData": changed.spec.encrypted_data}})),
        )
        .await?;
    let sealed = bed.wait_synced("frozen", "False").await?;
    let condition = sealed
        .status
        .as_ref()
        .and_then(|s| s.synced().cloned())
        .ok_or("no condition")?;
    assert_eq!(condition.reason.as_deref(), Some(reason::APPLY_FAILED));
    let after = bed.secret_api().get("frozen").await?;
    assert_eq!(data_of(&after)["k"], b"v1");
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    let warnings = bed
        .events_for("frozen")
        .await?
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason::APPLY_FAILED))
        .count();
    assert_eq!(warnings, 1);
    bed.controller.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn deprecated_spec_data_is_unsealed() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let cert_pem = bed.cert_pem().await?;
    let cert = signet_seal::SealingCertificate::from_pem(cert_pem.as_bytes())?;
    let inner = secret_manifest("legacy", &bed.namespace, &[("k", CANARY.as_bytes())]);
    let label = format!("{}/legacy", bed.namespace);
    let mut sealed = SealedSecret::default();
    sealed.metadata.name = Some("legacy".to_owned());
    sealed.spec.data = Some(signet_seal::seal(
        &cert,
        label.as_bytes(),
        inner.to_string().as_bytes(),
    )?);
    bed.create(&sealed).await?;
    bed.wait_synced("legacy", "True").await?;
    assert_eq!(
        data_of(&bed.wait_secret("legacy").await?)["k"],
        CANARY.as_bytes()
    );
    bed.controller.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn key_cutoff_time_forces_one_new_key_and_old_objects_still_open() -> TestResult {
    let cutoff =
        k8s_openapi::jiff::Timestamp::now() + k8s_openapi::jiff::SignedDuration::from_secs(3);
    let bed = Bed::start(|c| c.key_cutoff_time = Some(cutoff)).await?;
    let first_cert = bed.cert_pem().await?;
    let manifest = secret_manifest("before-cutoff", &bed.namespace, &[("k", b"v")]);
    bed.create(&signet_seal(
        &first_cert,
        &manifest,
        signet_seal::Scope::Strict,
    )?)
    .await?;
    bed.wait_synced("before-cutoff", "True").await?;
    let keys: Api<Secret> = Api::namespaced(bed.client.clone(), &bed.keys_namespace);
    let selector = ListParams::default().labels(&format!("{SEALING_KEY_LABEL}=active"));
    eventually(
        "a second key after the cutoff",
        Duration::from_secs(60),
        || async { (keys.list(&selector).await.ok()?.items.len() == 2).then_some(()) },
    )
    .await?;
    let base = bed.base_url.clone();
    let second_cert = eventually(
        "new certificate served",
        Duration::from_secs(30),
        || async {
            let pem = reqwest::get(format!("{base}/v1/cert.pem"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (pem != first_cert).then_some(pem)
        },
    )
    .await?;
    // One key per cutoff, not one per loop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(keys.list(&selector).await?.items.len(), 2);
    let manifest = secret_manifest("after-cutoff", &bed.namespace, &[("k", b"w")]);
    bed.create(&signet_seal(
        &second_cert,
        &manifest,
        signet_seal::Scope::Strict,
    )?)
    .await?;
    bed.wait_synced("after-cutoff", "True").await?;
    // The old object is still in sync (its key is kept).
    bed.secret_api()
        .delete("before-cutoff", &DeleteParams::default())
        .await?;
    let api = bed.secret_api();
    eventually("old object re-created", Duration::from_secs(30), || async {
        api.get_opt("before-cutoff").await.ok().flatten()
    })
    .await?;
    let metrics = bed.metrics().await?;
    assert!(metrics.contains("signet_sealing_keys 2"), "{metrics}");
    bed.controller.shutdown().await;
    Ok(())
}

/// `signet seal --controller-url`: the CLI fetches the certificate, seals without `--cert`, validates
/// and re-encrypts through the running controller.
#[tokio::test]
async fn cli_online_modes_talk_to_the_controller() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let url = bed.base_url.clone();
    let namespace = bed.namespace.clone();
    let cert = bed.cert_pem().await?;
    let (fetched, sealed, valid, tampered, resealed) = tokio::task::spawn_blocking(move || {
        let sb = signet_tests::sandbox::Sandbox::new();
        let fetched = sb
            .signet(["seal", "--controller-url", &url, "--fetch-cert"])
            .ok();
        let manifest = secret_manifest("online", &namespace, &[("k", CANARY.as_bytes())]);
        let sealed = sb
            .signet_stdin(
                ["seal", "--controller-url", &url],
                manifest.to_string().as_bytes(),
            )
            .ok();
        sb.write("sealed.json", &sealed);
        let valid = sb
            .signet([
                "seal",
                "--controller-url",
                &url,
                "--validate",
                "sealed.json",
            ])
            .code();
        let mut other: serde_json::Value = serde_json::from_slice(&sealed).expect("JSON");
        other["metadata"]["name"] = json!("renamed");
        sb.write("renamed.json", other.to_string());
        let tampered = sb.signet([
            "seal",
            "--controller-url",
            &url,
            "--validate",
            "renamed.json",
        ]);
        let resealed = sb
            .signet([
                "seal",
                "--controller-url",
                &url,
                "--re-encrypt",
                "sealed.json",
            ])
            .ok();
        (fetched, sealed, valid, tampered, resealed)
    })
    .await?;
    assert_eq!(String::from_utf8(fetched)?, cert);
    assert_eq!(valid, 0, "a SealedSecret sealed by the CLI validates");
    assert_eq!(tampered.code(), 210, "{}", tampered.stderr());
    assert!(!tampered.stderr().contains(CANARY));
    let sealed: SealedSecret = serde_json::from_slice(&sealed)?;
    let resealed: SealedSecret = serde_json::from_slice(&resealed)?;
    assert_ne!(resealed.spec.encrypted_data, sealed.spec.encrypted_data);
    bed.create(&resealed).await?;
    bed.wait_synced("online", "True").await?;
    assert_eq!(
        data_of(&bed.wait_secret("online").await?)["k"],
        CANARY.as_bytes()
    );
    bed.controller.shutdown().await;
    Ok(())
}

/// Non-ASCII text in template actions (`{{/* für */}}` once panicked the renderer and, with it, the
/// reconciler for every object): a comment renders, an unsupported action is a failing condition
/// naming the item, and a SealedSecret created afterwards still becomes a Secret.
#[tokio::test]
async fn non_ascii_template_actions_fail_alone_and_the_controller_keeps_running() -> TestResult {
    let logs = signet_tests::logs::capture();
    let bed = Bed::start(|_| {}).await?;
    let cert = bed.cert_pem().await?;
    let templated = |name: &str, template: &str| -> Result<SealedSecret, BoxError> {
        let manifest = secret_manifest(name, &bed.namespace, &[("user", CANARY.as_bytes())]);
        let mut sealed = signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?;
        sealed.spec.template.data = Some(BTreeMap::from([(
            "out".to_owned(),
            Some(template.to_owned()),
        )]));
        Ok(sealed)
    };
    bed.create(&templated("comment", "a{{/* für */}}b{{ .user }}")?)
        .await?;
    bed.create(&templated("unsupported", "{{ für .user }}")?)
        .await?;
    bed.create(&templated("unclosed", "{{ .usér")?).await?;
    bed.wait_synced("comment", "True").await?;
    assert_eq!(
        data_of(&bed.wait_secret("comment").await?)["out"],
        format!("ab{CANARY}").as_bytes()
    );
    for name in ["unsupported", "unclosed"] {
        let refused = bed.wait_synced(name, "False").await?;
        let condition = refused
            .status
            .as_ref()
            .and_then(|s| s.synced())
            .ok_or("no condition")?;
        assert_eq!(
            condition.reason.as_deref(),
            Some(reason::TEMPLATE_FAILED),
            "{name}"
        );
        let message = condition.message.clone().unwrap_or_default();
        assert!(message.contains("\"out\""), "{message}");
        assert!(!message.contains(CANARY), "{message}");
    }
    let after = signet_seal(
        &cert,
        &secret_manifest("after", &bed.namespace, &[("k", b"v")]),
        signet_seal::Scope::Strict,
    )?;
    bed.create(&after).await?;
    bed.wait_secret("after").await?;
    let health = reqwest::get(format!("{}/healthz", bed.base_url)).await?;
    assert_eq!(health.status().as_u16(), 200);
    assert!(!bed.metrics().await?.contains(CANARY));
    let logged = logs.text();
    assert!(logged.contains("leading"), "the log capture works");
    assert!(!logged.contains(CANARY), "logs leak a value");
    Ok(())
}

/// Hostile templates (a loop of ten billion steps, endless recursion, a gigabyte of output, a
/// regular expression that compiles to gigabytes) fail alone and quickly: each gets
/// `TemplateFailed` naming its item, and a SealedSecret created after them still becomes a Secret.
#[tokio::test]
async fn hostile_templates_fail_alone_without_stalling_the_controller() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let cert = bed.cert_pem().await?;
    let hostile = [
        (
            "loop",
            "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}",
        ),
        (
            "recursion",
            r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#,
        ),
        (
            "output",
            r#"{{ range until 2000 }}{{ repeat 1000000 "x" }}{{ end }}"#,
        ),
        ("regex", r#"{{ regexMatch "(a{1000}){1000}" .user }}"#),
        // Its message would be the value.
        ("fail", "{{ fail .user }}"),
    ];
    for (name, template) in hostile {
        let manifest = secret_manifest(name, &bed.namespace, &[("user", CANARY.as_bytes())]);
        let mut sealed = signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?;
        sealed.spec.template.data = Some(BTreeMap::from([(
            "out".to_owned(),
            Some(template.to_owned()),
        )]));
        bed.create(&sealed).await?;
    }
    let after = signet_seal(
        &cert,
        &secret_manifest("after-hostile", &bed.namespace, &[("k", b"v")]),
        signet_seal::Scope::Strict,
    )?;
    bed.create(&after).await?;
    bed.wait_secret("after-hostile").await?;
    for (name, _) in hostile {
        let failed = bed.wait_synced(name, "False").await?;
        let condition = failed
            .status
            .as_ref()
            .and_then(|s| s.synced())
            .ok_or("no condition")?;
        assert_eq!(
            condition.reason.as_deref(),
            Some(reason::TEMPLATE_FAILED),
            "{name}"
        );
        let message = condition.message.clone().unwrap_or_default();
        assert!(message.contains("\"out\""), "{name}: {message}");
        assert!(!message.contains(CANARY), "{message}");
    }
    let health = reqwest::get(format!("{}/healthz", bed.base_url)).await?;
    assert_eq!(health.status().as_u16(), 200);
    Ok(())
}

/// `/v1/verify` and `/v1/rotate` open values only and never render `spec.template` (Bitnami's
/// #2019 and #2049: a template turned them into oracles on the values): a template naming a missing
/// item still verifies, a template that would render a value is neither rendered nor answered.
#[tokio::test]
async fn verify_and_rotate_never_render_templates() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let cert = bed.cert_pem().await?;
    let manifest = secret_manifest("oracle", &bed.namespace, &[("k", CANARY.as_bytes())]);
    let mut sealed = signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?;
    let http = reqwest::Client::new();
    // `fail` would put the value into the error, `b64enc` into the answer, were they rendered.
    for template in [
        "{{ .missing }}",
        "{{ .k }}",
        "prefix-{{ index . \"k\" }}",
        "{{ fail .k }}",
        "{{ .k | b64enc }}",
    ] {
        sealed.spec.template.data = Some(BTreeMap::from([(
            "t".to_owned(),
            Some(template.to_owned()),
        )]));
        let verify = http
            .post(format!("{}/v1/verify", bed.base_url))
            .json(&sealed)
            .send()
            .await?;
        assert_eq!(verify.status().as_u16(), 200, "{template}");
        assert!(!verify.text().await?.contains(CANARY));
        let rotate = http
            .post(format!("{}/v1/rotate", bed.base_url))
            .json(&sealed)
            .send()
            .await?;
        assert_eq!(rotate.status().as_u16(), 200, "{template}");
        let body = rotate.text().await?;
        assert!(!body.contains(CANARY), "rotate rendered: {body}");
        let rotated: SealedSecret = serde_json::from_str(&body)?;
        assert_eq!(rotated.spec.template.data, sealed.spec.template.data);
        assert!(
            !rotated
                .spec
                .template
                .data
                .iter()
                .flatten()
                .any(|(k, _)| k == "k")
        );
    }
    Ok(())
}

/// `--rate-limit`/`--rate-limit-burst` limit verify and rotate per client: the burst passes, the
/// next request is refused with 429, and the probes are not limited.
#[tokio::test]
async fn verify_and_rotate_are_rate_limited() -> TestResult {
    let bed = Bed::start(|c| {
        c.verify_rate_per_second = 0.01;
        c.verify_burst = 3;
    })
    .await?;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for path in ["verify", "rotate", "verify", "rotate"] {
        let response = http
            .post(format!("{}/v1/{path}", bed.base_url))
            .body("not a sealed secret")
            .send()
            .await?;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [400, 400, 400, 429]);
    let health = http.get(format!("{}/healthz", bed.base_url)).send().await?;
    assert_eq!(health.status().as_u16(), 200);
    Ok(())
}

/// A reconciler task that stops (a bug; a panicking reconcile only fails its object) turns
/// `/healthz` and `/readyz` to 503 and resolves `failed()`, on which the binary releases the
/// Lease and exits non-zero.
#[tokio::test]
async fn a_stopped_reconciler_fails_the_health_checks_and_the_controller() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let http = reqwest::Client::new();
    let status = |path: &'static str| {
        let http = http.clone();
        let url = format!("{}/{path}", bed.base_url);
        async move { Some(http.get(url).send().await.ok()?.status().as_u16()) }
    };
    assert_eq!(status("healthz").await, Some(200));
    assert_eq!(status("readyz").await, Some(200));
    assert!(
        bed.controller
            .context
            .reconcilers
            .end_task_for_test("SopsSecret")
    );
    let failure = tokio::time::timeout(Duration::from_secs(30), bed.controller.failed()).await?;
    assert!(failure.contains("SopsSecret"), "{failure}");
    assert_eq!(status("healthz").await, Some(503));
    assert_eq!(status("readyz").await, Some(503));
    let body = http
        .get(format!("{}/healthz", bed.base_url))
        .send()
        .await?
        .text()
        .await?;
    assert!(body.contains("SopsSecret"), "{body}");
    Ok(())
}

/// The HTTP server closes a connection that does not send its request headers in time (a
/// slowloris client would otherwise hold it forever) and refuses a body beyond the limit.
#[tokio::test]
async fn slow_or_oversized_requests_are_cut_off() -> TestResult {
    use tokio::io::AsyncReadExt;
    let bed = Bed::start(|_| {}).await?;
    let mut slow = tokio::net::TcpStream::connect(bed.controller.http_addr).await?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await?;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        signet_controller::http::HEADER_READ_TIMEOUT + Duration::from_secs(20),
        slow.read_to_end(&mut rest),
    )
    .await;
    assert!(closed.is_ok(), "the connection stayed open");
    let big = vec![b'x'; signet_controller::http::MAX_BODY_BYTES + 1];
    let response = reqwest::Client::new()
        .post(format!("{}/v1/verify", bed.base_url))
        .body(big)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 413);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_change_rolls_out_the_named_deployment_and_a_resealing_does_not() -> TestResult {
    use crate::restart_support::{create_deployment, rollout_state};
    let bed = Bed::start(|c| c.restart_on_change = true).await?;
    let cert = bed.cert_pem().await?;
    create_deployment(&bed.client, &bed.namespace, "web").await?;
    let sealed_with = |value: &[u8]| -> Result<SealedSecret, BoxError> {
        let manifest = secret_manifest("db", &bed.namespace, &[("password", value)]);
        let mut sealed = signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?;
        sealed.metadata.annotations = Some(BTreeMap::from([(
            "signet.dev/restart".to_owned(),
            "deployment/web".to_owned(),
        )]));
        Ok(sealed)
    };
    bed.create(&sealed_with(b"one")?).await?;
    bed.wait_synced("db", "True").await?;
    let (client, namespace) = (&bed.client, bed.namespace.as_str());
    let (generation, first) = eventually("web rolled out", Duration::from_secs(30), || async {
        let state = rollout_state(client, namespace, "web").await.ok()?;
        (!state.1.is_empty()).then_some(state)
    })
    .await?;
    assert_eq!(first.keys().collect::<Vec<_>>(), ["checksum.signet.dev/db"]);

    // Resyncs (every second here), and the same value sealed again (a new generation, a new
    // write of the same data): no rollout.
    let api = bed.sealed_api();
    let patch_sealed = |sealed: SealedSecret| {
        let api = api.clone();
        async move {
            let patch = json!({"spec": {"encryptedData": sealed.spec.encrypted_data}});
            api.patch("db", &PatchParams::default(), &Patch::Merge(patch))
                .await
        }
    };
    patch_sealed(sealed_with(b"one")?).await?;
    bed.wait_synced("db", "True").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rollout_state(client, namespace, "web").await?,
        (generation, first.clone())
    );

    // A new value: one rollout.
    patch_sealed(sealed_with(b"two")?).await?;
    let (next_generation, _) =
        eventually("web rolled out again", Duration::from_secs(30), || async {
            let state = rollout_state(client, namespace, "web").await.ok()?;
            (state.1 != first).then_some(state)
        })
        .await?;
    assert_eq!(next_generation, generation + 1);
    bed.controller.shutdown().await;
    Ok(())
}

/// The create-only apply a reconciler uses for a Secret its cache has never seen: it writes a
/// missing Secret (owned by the controller's apply, so a later apply can remove what it dropped)
/// and refuses one that exists, whoever's it is, changing nothing. This is the guard that keeps a
/// SealedSecret from taking over a Secret its cache did not show.
#[tokio::test]
async fn a_create_only_apply_writes_a_missing_secret_and_refuses_an_existing_one() -> TestResult {
    use signet_controller::target::{Claim, DesiredSecret};
    let server = ApiServer::shared()?;
    let client = server.client().await?;
    let namespace = server.create_namespace(&client, "create-only").await?;
    let recorder = signet_controller::events::Recorder::new(
        client.clone(),
        kube::runtime::events::Reporter {
            controller: "test".into(),
            instance: None,
        },
    );
    let ctx = signet_controller::Context::new(
        client.clone(),
        Config::new(&namespace),
        std::sync::Arc::default(),
        std::sync::Arc::new(signet_controller::metrics::Metrics::new()),
        recorder,
    );
    let desired = |name: &'static str| DesiredSecret {
        name,
        namespace: &namespace,
        owner_label: OWNER_LABEL,
        owner_uid: "u1",
        owner: (
            "bitnami.com/v1alpha1".into(),
            "SealedSecret".into(),
            name.into(),
        ),
        // No ownerReference: its owner does not exist, and garbage collection would take it.
        claim: Claim::Own {
            owner_reference: false,
        },
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        type_: None,
        immutable: None,
        data_base64: BTreeMap::from([("k".to_owned(), STANDARD.encode(CANARY))]),
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);

    let created = desired("fresh")
        .apply_new(&ctx)
        .await??
        .ok_or("a missing Secret was not created")?;
    assert_eq!(data_of(&created)["k"], CANARY.as_bytes());
    let managers: Vec<_> = created
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| (m.manager.clone(), m.operation.clone()))
        .collect();
    assert_eq!(
        managers,
        [(
            Some(signet_controller::FIELD_MANAGER.to_owned()),
            Some("Apply".to_owned())
        )]
    );
    // Ours, but a create-only apply does not know that: refused, unchanged.
    assert!(desired("fresh").apply_new(&ctx).await??.is_none());
    let again = secrets.get("fresh").await?;
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );

    // Someone else's: refused, unchanged.
    let theirs = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "theirs"},
                "data": {"other": STANDARD.encode("theirs")},
            }))?,
        )
        .await?;
    assert!(desired("theirs").apply_new(&ctx).await??.is_none());
    let after = secrets.get("theirs").await?;
    assert_eq!(
        after.metadata.resource_version,
        theirs.metadata.resource_version
    );
    assert_eq!(data_of(&after).keys().collect::<Vec<_>>(), ["other"]);
    assert!(after.labels().get(OWNER_LABEL).is_none());
    Ok(())
}

/// The count of `signet_unseal_duration_seconds` in a metrics page: how many unseals ran.
fn unseal_count(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("signet_unseal_duration_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default()
}

/// A restarted controller (a new process: empty caches, nothing remembered) trusts the status of
/// the SealedSecrets whose Secrets still carry the resourceVersion it records, and unseals nothing
/// for them; the one whose Secret was changed while no controller ran is unsealed and put back.
#[tokio::test]
async fn a_restart_unseals_only_what_changed_while_the_controller_was_down() -> TestResult {
    let bed = Bed::start(|_| {}).await?;
    let cert = bed.cert_pem().await?;
    let names = ["kept-0", "changed", "kept-1"];
    for name in names {
        let manifest = secret_manifest(name, &bed.namespace, &[("k", CANARY.as_bytes())]);
        bed.create(&signet_seal(&cert, &manifest, signet_seal::Scope::Strict)?)
            .await?;
    }
    let mut before = BTreeMap::new();
    for name in names {
        bed.wait_synced(name, "True").await?;
        bed.wait_secret(name).await?;
    }
    // Let the follow-up reconciles of the first writes settle, then note what is there.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in names {
        let sealed_rv = bed.sealed_api().get(name).await?.metadata.resource_version;
        let secret_rv = bed.secret_api().get(name).await?.metadata.resource_version;
        before.insert(name, (sealed_rv, secret_rv));
    }
    assert_eq!(unseal_count(&bed.metrics().await?), 3);

    let Bed {
        client,
        keys_namespace,
        namespace,
        controller,
        config,
        ..
    } = bed;
    controller.shutdown().await;
    // While no controller runs, someone changes one Secret's value.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    secrets
        .patch(
            "changed",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": STANDARD.encode("tampered")}})),
        )
        .await?;
    let bed = Bed::launch(client, keys_namespace, namespace, config).await?;
    eventually(
        "the changed Secret put back",
        Duration::from_secs(60),
        || async {
            let secret = bed.secret_api().get("changed").await.ok()?;
            (data_of(&secret)["k"] == CANARY.as_bytes()).then_some(())
        },
    )
    .await?;
    let metrics = &bed.controller.context.metrics;
    eventually(
        "every SealedSecret looked at after the restart",
        Duration::from_secs(60),
        || async {
            let reconciled = metrics
                .reconciles
                .get_or_create(&signet_controller::metrics::KindLabels {
                    kind: "SealedSecret".into(),
                })
                .get();
            (reconciled >= names.len() as u64).then_some(())
        },
    )
    .await?;
    // Resyncs run every second here: give them time to (wrongly) unseal again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        unseal_count(&bed.metrics().await?),
        1,
        "only the changed one is unsealed"
    );
    for name in ["kept-0", "kept-1"] {
        let sealed_rv = bed.sealed_api().get(name).await?.metadata.resource_version;
        let secret_rv = bed.secret_api().get(name).await?.metadata.resource_version;
        assert_eq!((sealed_rv, secret_rv), before[name], "{name} was written");
    }
    bed.controller.shutdown().await;
    Ok(())
}
