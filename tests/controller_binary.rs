//! The `signet-controller` binary as an operator runs it outside a cluster: configured from the
//! environment only, authenticating from `KUBECONFIG` as a ServiceAccount that holds just the
//! permissions the controller needs (SealedSecrets and their status, Secrets and Events in the watched
//! namespace, key Secrets and the leader-election Lease in its own namespace). It generates its RSA-4096 key, serves the
//! certificate kubeseal seals with, turns the SealedSecret into a Secret, logs JSON without secret
//! values, and stops cleanly on SIGTERM.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use signet_controller::SealedSecret;
use signet_controller::keyring::SEALING_KEY_LABEL;
use signet_testkit::ApiServer;
use signet_tests::poll::eventually;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CANARY: &str = "canary-binary-5e1d-do-not-leak";

/// The `signet-controller` binary of this workspace.
fn controller_bin() -> PathBuf {
    signet_tests::sandbox::workspace_bin("signet-controller", "signet-controller")
}

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |items: &[&str]| Some(items.iter().map(|s| (*s).to_owned()).collect());
    PolicyRule {
        api_groups: strings(groups),
        resources: strings(resources),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    }
}

#[tokio::test]
async fn binary_runs_from_kubeconfig_and_environment_with_least_privilege() -> TestResult {
    let bin = tokio::task::spawn_blocking(controller_bin).await?.clone();
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let admin = server.client().await?;
    signet_controller::install_crd(admin.clone()).await?;
    let keys_ns = server.create_namespace(&admin, "sigbinkeys").await?;
    let app_ns = server.create_namespace(&admin, "sigbinapp").await?;

    // RBAC: a ClusterRole bound in the watched namespace only, and a Role for the key Secrets.
    let account = "signet-controller";
    let token = server
        .service_account_token(&admin, &keys_ns, account)
        .await?;
    let role_name = format!("signet-controller-{app_ns}");
    let cluster_role = ClusterRole {
        metadata: named(&role_name),
        rules: Some(vec![
            rule(
                &["bitnami.com"],
                &["sealedsecrets"],
                &["get", "list", "watch"],
            ),
            rule(
                &["bitnami.com"],
                &["sealedsecrets/status"],
                &["get", "patch", "update"],
            ),
            rule(
                &[""],
                &["secrets"],
                &["get", "list", "watch", "create", "patch"],
            ),
            rule(&[""], &["events"], &["create", "patch"]),
        ]),
        ..ClusterRole::default()
    };
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &cluster_role)
        .await?;
    let subject = Subject {
        kind: "ServiceAccount".to_owned(),
        name: account.to_owned(),
        namespace: Some(keys_ns.clone()),
        ..Subject::default()
    };
    Api::<RoleBinding>::namespaced(admin.clone(), &app_ns)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: named("signet-controller"),
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".to_owned()),
                    kind: "ClusterRole".to_owned(),
                    name: role_name.clone(),
                },
                subjects: Some(vec![subject.clone()]),
            },
        )
        .await?;
    Api::<Role>::namespaced(admin.clone(), &keys_ns)
        .create(
            &PostParams::default(),
            &Role {
                metadata: named("signet-controller-keys"),
                rules: Some(vec![
                    rule(&[""], &["secrets"], &["get", "list", "watch", "create"]),
                    rule(
                        &["coordination.k8s.io"],
                        &["leases"],
                        &["get", "list", "watch", "create", "update", "patch"],
                    ),
                ]),
            },
        )
        .await?;
    Api::<RoleBinding>::namespaced(admin.clone(), &keys_ns)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: named("signet-controller-keys"),
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".to_owned()),
                    kind: "Role".to_owned(),
                    name: "signet-controller-keys".to_owned(),
                },
                subjects: Some(vec![subject]),
            },
        )
        .await?;

    // A kubeconfig that authenticates with the ServiceAccount token.
    let mut kubeconfig = Kubeconfig::read_from(server.kubeconfig_path())?;
    for named_auth in &mut kubeconfig.auth_infos {
        named_auth.auth_info = Some(kube::config::AuthInfo {
            token: Some(token.clone().into()),
            ..kube::config::AuthInfo::default()
        });
    }
    let dir = tempfile::tempdir()?;
    let kubeconfig_path = dir.path().join("kubeconfig.json");
    std::fs::write(&kubeconfig_path, serde_json::to_vec(&kubeconfig)?)?;
    let log_path = dir.path().join("controller.log");

    let http_port = signet_testkit::free_port()?;
    let metrics_port = signet_testkit::free_port()?;
    let child = Command::new(&bin)
        .env_clear()
        .env("KUBECONFIG", &kubeconfig_path)
        .env("SIGNET_CONTROLLER_NAMESPACE", &keys_ns)
        .env("SIGNET_WATCH_NAMESPACE", &app_ns)
        .env("SIGNET_LISTEN_ADDR", format!("127.0.0.1:{http_port}"))
        .env("SIGNET_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .env("SIGNET_LOG_FORMAT", "json")
        .stdout(std::fs::File::create(&log_path)?)
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut running = Running(child);
    let base = format!("http://127.0.0.1:{http_port}");

    // RSA-4096 generation can take a while on a busy machine.
    let ready = eventually("controller ready", Duration::from_secs(120), || async {
        let response = reqwest::get(format!("{base}/readyz")).await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    if let Err(err) = ready {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(format!("{err}\ncontroller log:\n{log}").into());
    }
    let keys = Api::<Secret>::namespaced(admin.clone(), &keys_ns)
        .list(&kube::api::ListParams::default().labels(&format!("{SEALING_KEY_LABEL}=active")))
        .await?;
    assert_eq!(keys.items.len(), 1);
    assert_eq!(keys.items[0].type_.as_deref(), Some("kubernetes.io/tls"));
    let cert = reqwest::get(format!("{base}/v1/cert.pem"))
        .await?
        .text()
        .await?;
    let parsed = signet_seal::SealingCertificate::from_pem(cert.as_bytes())?;
    assert_eq!(parsed.key_size_bits(), 4096);

    // kubeseal seals with the served certificate; the controller unseals it.
    let manifest = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "from-binary", "namespace": app_ns},
        "stringData": {"password": CANARY},
    });
    let mut kubeseal = Command::new(signet_testkit::peer_path("kubeseal")?)
        .args(["--cert", &format!("{base}/v1/cert.pem"), "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = kubeseal.stdin.take() {
        use std::io::Write;
        stdin.write_all(manifest.to_string().as_bytes())?;
    }
    let output = tokio::task::spawn_blocking(move || kubeseal.wait_with_output()).await??;
    assert!(output.status.success());
    let sealed: SealedSecret = serde_json::from_slice(&output.stdout)?;
    Api::<SealedSecret>::namespaced(admin.clone(), &app_ns)
        .create(&PostParams::default(), &sealed)
        .await?;
    let secrets = Api::<Secret>::namespaced(admin.clone(), &app_ns);
    let secret = eventually(
        "Secret from the binary",
        Duration::from_secs(60),
        || async { secrets.get_opt("from-binary").await.ok().flatten() },
    )
    .await?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .ok_or("no password")?;
    assert_eq!(value.0, CANARY.as_bytes());
    let sealed_api = Api::<SealedSecret>::namespaced(admin.clone(), &app_ns);
    eventually("Synced", Duration::from_secs(30), || async {
        let s = sealed_api.get("from-binary").await.ok()?;
        (s.status?.synced()?.status == "True").then_some(())
    })
    .await?;
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await?
        .text()
        .await?;
    assert!(metrics.contains("signet_sealing_keys 1"), "{metrics}");

    // SIGTERM stops it cleanly.
    let pid = running.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status()?;
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = running.0.try_wait()? {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "controller did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");

    let log = std::fs::read_to_string(&log_path)?;
    assert!(!log.contains(CANARY), "secret value in the log");
    assert!(log.lines().count() > 0);
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .map_err(|e| format!("log line is not JSON ({e}): {line}"))?;
    }
    Ok(())
}

/// Bitnami's flags that Signet refuses stop the binary at once: a non-zero exit and a message
/// naming the flag and saying why, before it connects anywhere.
#[test]
fn refused_bitnami_flags_stop_the_start_with_the_reason() {
    let bin = controller_bin();
    for (flag, says) in [
        ("--update-status=false", "always writes SealedSecret status"),
        (
            "--additional-namespaces=team-a,team-b",
            "grant its RBAC only in those namespaces",
        ),
        ("--max-unseal-retries=5", "does not retry a failed unseal"),
        ("--kubeclient-qps=5", "no client-side rate limit"),
        ("--kubeclient-burst=20", "--kubeclient-qps"),
        (
            "--key-prefix=Team_Key",
            "lower-case letters, digits and '-' only",
        ),
    ] {
        let out = Command::new(&bin)
            .arg(flag)
            .env_clear()
            .env("KUBECONFIG", "/nonexistent")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        let name = flag.split('=').next().unwrap_or(flag);
        assert!(stderr.contains(name), "{flag}: {stderr}");
        assert!(stderr.contains(says), "{flag}: {stderr}");
    }
    // The same through the environment.
    let out = Command::new(&bin)
        .env_clear()
        .env("KUBECONFIG", "/nonexistent")
        .env("SIGNET_UPDATE_STATUS", "false")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("always writes SealedSecret status"),
        "{stderr}"
    );
}

/// Bitnami's flags that Signet accepts do what they do in Bitnami: `--all-namespaces=false` keeps
/// the controller to its own namespace, `--key-prefix` names the key it generates, the rate limit
/// applies to `/v1/verify`; `--update-status`, `--kubeclient-qps=-1`/`--kubeclient-burst` and
/// `--metrics-omit-secret-labels` start it as usual, and its metrics never name a SealedSecret.
#[tokio::test]
async fn accepted_bitnami_flags_change_what_the_binary_does() -> TestResult {
    let bin = tokio::task::spawn_blocking(controller_bin).await?.clone();
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let admin = server.client().await?;
    signet_controller::install_crd(admin.clone()).await?;
    let own_ns = server.create_namespace(&admin, "sigbitflags").await?;
    let other_ns = server.create_namespace(&admin, "sigbitother").await?;
    let dir = tempfile::tempdir()?;
    let log_path = dir.path().join("controller.log");
    let http_port = signet_testkit::free_port()?;
    let metrics_port = signet_testkit::free_port()?;
    let child = Command::new(&bin)
        .args([
            format!("--controller-namespace={own_ns}"),
            "--all-namespaces=false".to_owned(),
            "--key-prefix=team-key-".to_owned(),
            "--update-status".to_owned(),
            "--kubeclient-qps=-1".to_owned(),
            "--kubeclient-burst=50".to_owned(),
            "--metrics-omit-secret-labels".to_owned(),
            "--rate-limit=1".to_owned(),
            "--rate-limit-burst=1".to_owned(),
            "--leader-elect=false".to_owned(),
            format!("--listen-addr=127.0.0.1:{http_port}"),
            format!("--metrics-addr=127.0.0.1:{metrics_port}"),
        ])
        .env_clear()
        .env("KUBECONFIG", server.kubeconfig_path())
        .stdout(std::fs::File::create(&log_path)?)
        .stderr(std::fs::File::create(dir.path().join("stderr.log"))?)
        .spawn()?;
    let _running = Running(child);
    let base = format!("http://127.0.0.1:{http_port}");
    let ready = eventually("controller ready", Duration::from_secs(120), || async {
        let response = reqwest::get(format!("{base}/readyz")).await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    if let Err(err) = ready {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(format!("{err}\ncontroller log:\n{log}").into());
    }
    let keys = Api::<Secret>::namespaced(admin.clone(), &own_ns)
        .list(&kube::api::ListParams::default().labels(&format!("{SEALING_KEY_LABEL}=active")))
        .await?;
    assert_eq!(keys.items.len(), 1);
    let key_name = keys.items[0].metadata.name.clone().unwrap_or_default();
    assert!(key_name.starts_with("team-key-"), "{key_name}");

    let cert = reqwest::get(format!("{base}/v1/cert.pem"))
        .await?
        .text()
        .await?;
    let cert = signet_seal::SealingCertificate::from_pem(cert.as_bytes())?;
    let sealed_in = |ns: &str, name: &str| -> Result<SealedSecret, Box<dyn std::error::Error>> {
        let secret: signet_api::Secret = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "stringData": {"k": CANARY},
        }))?;
        let sealed =
            signet_seal::seal_secret(&secret, &cert, &signet_seal::SealOptions::default())?;
        Ok(serde_json::from_value(serde_json::to_value(&sealed)?)?)
    };
    // The other namespace's object first: when the own one is done, the other has had its chance.
    let elsewhere = sealed_in(&other_ns, "elsewhere")?;
    Api::<SealedSecret>::namespaced(admin.clone(), &other_ns)
        .create(&PostParams::default(), &elsewhere)
        .await?;
    let own = sealed_in(&own_ns, "own-sealed")?;
    Api::<SealedSecret>::namespaced(admin.clone(), &own_ns)
        .create(&PostParams::default(), &own)
        .await?;
    let own_secrets = Api::<Secret>::namespaced(admin.clone(), &own_ns);
    eventually(
        "Secret in the own namespace",
        Duration::from_secs(60),
        || async { own_secrets.get_opt("own-sealed").await.ok().flatten() },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let other = Api::<SealedSecret>::namespaced(admin.clone(), &other_ns)
        .get("elsewhere")
        .await?;
    assert!(
        other.status.is_none(),
        "--all-namespaces=false reconciled {other_ns}"
    );
    assert!(
        Api::<Secret>::namespaced(admin.clone(), &other_ns)
            .get_opt("elsewhere")
            .await?
            .is_none()
    );

    // --rate-limit=1 --rate-limit-burst=1: the second verify at once is refused.
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let response = http
            .post(format!("{base}/v1/verify"))
            .json(&own)
            .send()
            .await?;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 429]);

    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await?
        .text()
        .await?;
    assert!(metrics.contains("signet_sealing_keys 1"), "{metrics}");
    for name in ["own-sealed", "elsewhere", own_ns.as_str()] {
        assert!(!metrics.contains(name), "metrics name {name}: {metrics}");
    }
    Ok(())
}
