//! The runbooks of `docs/runbooks/`, run as written: every ```` ```sh ```` block of a runbook, in
//! order, in one bash session (see `runbooks/harness.rs`) with the freshly built `signet`, upstream
//! sops, kubeseal and age on PATH (and kubectl and helm against the test API server for the cluster
//! runbooks), then the end state checked from Rust with the upstream tools. The documentation
//! therefore cannot drift from the binary.

mod cluster;
mod harness;

use cluster::{Controller, connect_env, fresh_cluster};
use harness::{Runbook, Session, run_all};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use signet_tests::sandbox::Sandbox;
use std::path::Path;

/// The plaintext values the practice repositories of runbooks 1, 2 and 6 hold.
const PRACTICE_VALUES: [(&str, &str); 3] = [
    ("secrets/db.yaml", "hunter2-db-password"),
    ("config/payments.json", "sk-live-payments-42"),
    ("config/mail.env", "mail-password-7"),
];

/// Runs upstream `sops -d` on `file` with `identity` as the only age identity.
fn sops_decrypt(
    sandbox: &Sandbox,
    repo: &Path,
    identity: &Path,
    file: &str,
) -> std::process::Output {
    sandbox
        .command(signet_tests::sandbox::peer("sops"))
        .current_dir(repo)
        .env("SOPS_AGE_KEY_FILE", identity)
        .args(["--disable-version-check", "-d", file])
        .output()
        .expect("running sops")
}

/// `signet ARGS` in `dir` with the sandbox environment plus `env`.
fn signet_in(
    sandbox: &Sandbox,
    dir: &Path,
    env: &[(&str, &Path)],
    args: &[&str],
) -> std::process::Output {
    let mut cmd = sandbox.command(signet_tests::sandbox::signet_bin());
    cmd.current_dir(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running signet")
}

/// `git ARGS` in `dir`, stdout as text (asserting success).
fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `ENC[…]` token of a text, in order.
fn enc_values(text: &str) -> Vec<String> {
    text.split("ENC[")
        .skip(1)
        .filter_map(|rest| rest.split(']').next())
        .map(str::to_owned)
        .collect()
}

/// Asserts that upstream sops opens every practice file with `good` (giving the original values)
/// and with none of `bad`.
fn assert_practice_repo_opens_only_with(
    sandbox: &Sandbox,
    repo: &Path,
    good: &Path,
    bad: &[&Path],
) {
    for (file, value) in PRACTICE_VALUES {
        let out = sops_decrypt(sandbox, repo, good, file);
        assert!(
            out.status.success(),
            "sops -d {file} with {}: {}",
            good.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(value),
            "{file} lost its value"
        );
        for identity in bad {
            let out = sops_decrypt(sandbox, repo, identity, file);
            assert!(
                !out.status.success(),
                "{} still opens {file}",
                identity.display()
            );
        }
        // Encrypted at rest: the value is not in the committed file.
        let committed = std::fs::read_to_string(repo.join(file)).expect("read");
        assert!(!committed.contains(value), "{file} holds plaintext");
    }
}

#[test]
fn runbook_01_rotate_an_age_key_across_a_repository() {
    let sandbox = Sandbox::new();
    let runbook = Runbook::load("01-rotate-age-key.md");
    run_all(&sandbox, &runbook, &[]);

    let repo = sandbox.join("practice-repo");
    let old = sandbox.join("old.agekey");
    let new = sandbox.join("new.agekey");
    assert_practice_repo_opens_only_with(&sandbox, &repo, &new, &[&old]);

    // `rekey --check` passes on the committed result, with the new key only.
    let check = signet_in(
        &sandbox,
        &repo,
        &[("SOPS_AGE_KEY_FILE", &new)],
        &["rekey", "--check"],
    );
    assert!(
        check.status.success(),
        "rekey --check after the runbook: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The rotation re-wrapped the data keys only: every ENC[] value is byte-identical to the
    // commit before, and the working tree is clean (everything committed).
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]).trim(), "2");
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    for (file, _) in PRACTICE_VALUES {
        let before = git(&repo, &["show", &format!("HEAD~1:{file}")]);
        let after = git(&repo, &["show", &format!("HEAD:{file}")]);
        assert_ne!(before, after, "{file} was not re-encrypted");
        assert_eq!(
            enc_values(&before),
            enc_values(&after),
            "{file}: values changed"
        );
    }
    // The combined identity file is gone (step 6).
    assert!(!sandbox.join("rotation.agekeys").exists());
}

#[test]
fn runbook_02_a_team_member_leaves() {
    let sandbox = Sandbox::new();
    let runbook = Runbook::load("02-team-member-leaves.md");
    run_all(&sandbox, &runbook, &[]);

    let repo = sandbox.join("practice-repo");
    let alice = sandbox.join("alice.agekey");
    let bob = sandbox.join("bob.agekey");
    let ci = sandbox.join("ci.agekey");
    // Bob opens nothing at the tip; Alice and CI open everything, and hold the new credentials.
    let new_values = [
        ("secrets/db.yaml", "db-password-after-bob"),
        ("config/payments.json", "sk-live-payments-after-bob"),
        ("config/mail.env", "mail-password-after-bob"),
    ];
    for (file, value) in new_values {
        for identity in [&alice, &ci] {
            let out = sops_decrypt(&sandbox, &repo, identity, file);
            assert!(out.status.success(), "sops -d {file}");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains(value), "{file}: new credential missing");
        }
        assert!(!sops_decrypt(&sandbox, &repo, &bob, file).status.success());
    }
    // The commit that removed Bob changed every data key: no ENC[] value survives from the
    // commit Bob could read.
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]).trim(), "3");
    for (file, _) in PRACTICE_VALUES {
        let before = enc_values(&git(&repo, &["show", &format!("HEAD~2:{file}")]));
        let after = enc_values(&git(&repo, &["show", &format!("HEAD~1:{file}")]));
        assert!(!before.is_empty());
        assert!(
            after.iter().all(|v| !before.contains(v)),
            "{file}: a value kept its old ciphertext, so the data key did not change"
        );
    }
    let check = signet_in(
        &sandbox,
        &repo,
        &[("SOPS_AGE_KEY_FILE", &alice)],
        &["rekey", "--check"],
    );
    assert!(check.status.success(), "rekey --check after the runbook");
    // The JSON report of step 1 listed exactly the three files, each for Bob's recipient.
    let bob_recipient = sed_public_key(&std::fs::read_to_string(&bob).expect("bob"));
    let report: serde_json::Value =
        serde_json::from_slice(&sandbox.read("stale.json")).expect("JSON report");
    let mut stale: Vec<_> = report["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["status"] == "stale")
        .map(|f| {
            let reasons = f["reasons"].to_string();
            assert!(reasons.contains(&bob_recipient), "{f}");
            f["path"].as_str().expect("path").to_owned()
        })
        .collect();
    stale.sort();
    assert_eq!(stale.len(), 3, "{stale:?}");
    for file in ["config/mail.env", "config/payments.json", "secrets/db.yaml"] {
        assert!(
            stale.iter().any(|p| p.ends_with(file)),
            "{file} not reported stale"
        );
    }
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
}

/// The sealing-key Secrets of a cluster's `kube-system`, as (name, tls.key bytes), sorted.
async fn sealing_keys(client: &kube::Client) -> Vec<(String, Vec<u8>)> {
    let secrets = Api::<Secret>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key=active"))
        .await
        .expect("listing key Secrets");
    let mut keys: Vec<_> = secrets
        .items
        .into_iter()
        .map(|s| {
            let key = s
                .data
                .as_ref()
                .and_then(|d| d.get("tls.key"))
                .map(|b| b.0.clone())
                .unwrap_or_default();
            (s.metadata.name.unwrap_or_default(), key)
        })
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread")]
async fn runbook_05_disaster_recovery_from_a_key_backup() {
    let _turn = cluster::ONE_CLUSTER_TEST_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let runbook = Runbook::load("05-disaster-recovery.md");
    let lost = tokio::task::spawn_blocking(fresh_cluster)
        .await
        .expect("thread");
    let lost_client = lost.client().await.expect("client");
    // The lost cluster had Signet installed: the CRD and a controller with its generated key.
    signet_controller::install_crd(lost_client.clone())
        .await
        .expect("CRD");
    let lost_controller = Controller::start(&lost, Controller::ports(), sandbox.path()).await;
    let original_keys = sealing_keys(&lost_client).await;
    assert_eq!(original_keys.len(), 1, "the controller made one key");

    let mut session = Session::start(&sandbox, &runbook, &[], true);
    session.connect(&connect_env(&lost, &lost_controller.url));
    // Practice repository, backup, offline recovery: all before the second connect.
    tokio::task::block_in_place(|| session.advance_to("restore-me-db", true));
    tokio::task::block_in_place(|| session.advance_to("BACKUP_RECIPIENT=", true));

    // The disaster: controller and API server gone.
    drop(lost_controller);
    drop(lost);

    // Offline recovery reads Git and the backups only.
    tokio::task::block_in_place(|| session.advance_to("db-plain.yaml", true));
    let plain = std::fs::read_to_string(sandbox.join("db-plain.yaml")).expect("unsealed file");
    assert!(plain.contains("restore-me-db") || plain.contains("cmVzdG9yZS1tZS1kYg=="));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sandbox.join("db-plain.yaml"))
        .expect("mode")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "plaintext Secret readable by others");
    let env_plain = std::fs::read_to_string(sandbox.join("app-plain.env")).expect("decrypted env");
    assert_eq!(env_plain, "API_TOKEN=restore-me-token\n");

    // The replacement cluster; its controller starts where the runbook installs the chart.
    let new = tokio::task::spawn_blocking(fresh_cluster)
        .await
        .expect("thread");
    let ports = Controller::ports();
    let url = format!("http://127.0.0.1:{}", ports.0);
    tokio::task::block_in_place(|| session.connect(&connect_env(&new, &url)));
    tokio::task::block_in_place(|| session.advance_to("helm install", true));
    let new_client = new.client().await.expect("client");
    assert_eq!(
        sealing_keys(&new_client).await,
        original_keys,
        "the restored key Secrets are the lost cluster's"
    );
    let controller = Controller::start(&new, ports, sandbox.path()).await;
    tokio::task::block_in_place(|| session.run_rest());
    let output = tokio::task::block_in_place(|| session.finish());

    // The controller adopted the restored key and made none of its own; the Secret is back.
    assert_eq!(sealing_keys(&new_client).await, original_keys, "{output}");
    let secret = Api::<Secret>::namespaced(new_client.clone(), "shop")
        .get("db")
        .await
        .expect("restored Secret");
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .expect("password");
    assert_eq!(value.0, b"restore-me-db");
    assert!(controller.metrics().await.contains("signet_sealing_keys 1"));
    // No plaintext left behind in the working area.
    for leftover in [
        "db-plain.yaml",
        "app-plain.env",
        "sealing-keys-backup.yaml",
        "restored-identities.txt",
    ] {
        assert!(!sandbox.join(leftover).exists(), "{leftover} left on disk");
    }
    // The encrypted backups stay, and hold no plaintext.
    let backup = std::fs::read(sandbox.join("sealing-keys-backup.yaml.age")).expect("backup");
    assert!(backup.starts_with(b"age-encryption.org/v1"));
}

/// Fingerprint of a PEM certificate's public key as the controller records it (SHA-256 of the DER
/// SubjectPublicKeyInfo), computed here without openssl.
fn cert_fingerprint(pem: &[u8]) -> String {
    let cert = signet_seal::SealingCertificate::from_pem(pem).expect("certificate");
    signet_controller::keyring::fingerprint(cert.public_key_der())
}

#[tokio::test(flavor = "multi_thread")]
async fn runbook_03_a_sealing_key_is_compromised_resealing_online() {
    follow_runbook_03("online").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runbook_03_a_sealing_key_is_compromised_resealing_offline() {
    let sandbox = follow_runbook_03("offline").await;
    // Offline `rekey` rewrote only the sealed values: every other line of each file is as it was.
    let repo = sandbox.join("practice-repo");
    for file in ["sealed/db.yaml", "sealed/api.yaml"] {
        let before = git(&repo, &["show", &format!("HEAD~2:{file}")]);
        let after = git(&repo, &["show", &format!("HEAD~1:{file}")]);
        assert_ne!(before, after, "{file} was not resealed");
        let (before, after): (Vec<_>, Vec<_>) = (before.lines().collect(), after.lines().collect());
        assert_eq!(before.len(), after.len(), "{file}: lines added or removed");
        for (old, new) in before.iter().zip(&after) {
            if old != new {
                let key = |l: &str| l.split(':').next().unwrap_or_default().to_owned();
                assert_eq!(
                    key(old),
                    key(new),
                    "{file}: a line other than a value changed"
                );
            }
        }
    }
}

/// Runbook 3 following `variant` (`online` or `offline` resealing); returns the sandbox.
async fn follow_runbook_03(variant: &str) -> Sandbox {
    let _turn = cluster::ONE_CLUSTER_TEST_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let runbook = Runbook::load("03-sealing-key-compromised.md");
    assert_eq!(runbook.variants(), ["offline", "online"]);
    let cluster_api = tokio::task::spawn_blocking(fresh_cluster)
        .await
        .expect("thread");
    let client = cluster_api.client().await.expect("client");
    signet_controller::install_crd(client.clone())
        .await
        .expect("CRD");
    let controller = Controller::start(&cluster_api, Controller::ports(), sandbox.path()).await;
    let before = sealing_keys(&client).await;
    assert_eq!(before.len(), 1);
    let old_key_pem = sandbox.write("test-old.key", &before[0].1);

    let mut session = Session::start(&sandbox, &runbook, &[], true);
    session.follow_variant(variant);
    session.connect(&connect_env(&cluster_api, &controller.url));
    tokio::task::block_in_place(|| session.run_rest());
    let output = tokio::task::block_in_place(|| session.finish());

    // Before the reseal both objects depended on the old key; after it, none.
    assert!(
        output.contains("SealedSecrets on the old key: 2"),
        "{output}"
    );
    assert!(
        output.contains("SealedSecrets on the old key: 0"),
        "{output}"
    );

    // One key left, the new one; the controller serves its certificate.
    let after = sealing_keys(&client).await;
    assert_eq!(after.len(), 1, "{output}");
    assert_ne!(after[0].1, before[0].1, "the old key is still there");
    let new_cert = std::fs::read(sandbox.join("new.crt")).expect("new.crt");
    let served = reqwest::get(format!("{}/v1/cert.pem", controller.url))
        .await
        .expect("cert")
        .bytes()
        .await
        .expect("cert body");
    let new_fp = cert_fingerprint(&new_cert);
    assert_eq!(cert_fingerprint(&served), new_fp);
    // No private key left on the workstation.
    assert!(!sandbox.join("new.key").exists());
    assert!(!sandbox.join("new-key-secret.json").exists());
    assert!(!sandbox.join("old-key.yaml").exists());

    // Every object synced on the new key, with the rotated values.
    let sealed_api = Api::<signet_controller::SealedSecret>::namespaced(client.clone(), "payments");
    for (name, item, value) in [
        ("db", "password", "fresh-db-password"),
        ("api", "token", "fresh-api-token"),
    ] {
        let status = sealed_api
            .get(name)
            .await
            .expect("object")
            .status
            .expect("status");
        assert_eq!(status.key_fingerprint.as_deref(), Some(new_fp.as_str()));
        assert_eq!(status.synced().expect("Synced").status, "True");
        let secret = Api::<Secret>::namespaced(client.clone(), "payments")
            .get(name)
            .await
            .expect("Secret");
        let got = secret
            .data
            .as_ref()
            .and_then(|d| d.get(item))
            .expect("item");
        assert_eq!(got.0, value.as_bytes());
    }

    // The compromised key opens nothing in Git any more, at the tip.
    let repo = sandbox.join("practice-repo");
    for file in ["sealed/db.yaml", "sealed/api.yaml"] {
        let out = signet_in(
            &sandbox,
            &repo,
            &[],
            &[
                "unseal",
                "--recovery-private-key",
                &old_key_pem.display().to_string(),
                file,
            ],
        );
        assert!(!out.status.success(), "the old key still opens {file}");
    }
    let log = controller.log_text();
    for value in ["leaked-db-password", "fresh-db-password", "fresh-api-token"] {
        assert!(!log.contains(value), "controller log holds a secret value");
    }
    drop(controller);
    sandbox
}

/// What a Bitnami installation leaves in a cluster and a repository, made without the Bitnami
/// controller (it runs only in-cluster): Bitnami's CRD, a key Secret made as Bitnami's
/// bring-your-own-key instructions make it (PKCS#1 key, `kubectl create secret tls` + label), the
/// `sealed-secrets-controller` Deployment and Service, two `kubeseal`-made SealedSecrets committed
/// in `practice-repo/` and applied, and the Secrets Bitnami made from them (controlled by their
/// SealedSecret).
const BITNAMI_INSTALLATION: &str = r#"
kubectl apply -f "$BITNAMI_CRD" > /dev/null
kubectl wait --for=condition=Established crd/sealedsecrets.bitnami.com --timeout=60s > /dev/null
signet keys new-sealing-key --key-out bitnami.pkcs8 --cert-out bitnami.crt 2> /dev/null
openssl pkey -in bitnami.pkcs8 -traditional -out bitnami.key
kubectl -n kube-system create secret tls sealed-secrets-keyb1tn4 --cert=bitnami.crt --key=bitnami.key
kubectl -n kube-system label secret sealed-secrets-keyb1tn4 sealedsecrets.bitnami.com/sealed-secrets-key=active
kubectl -n kube-system create deployment sealed-secrets-controller \
  --image=docker.io/bitnami/sealed-secrets-controller:0.40.0
kubectl -n kube-system create service clusterip sealed-secrets-controller --tcp=8080:8080
mkdir -p practice-repo/sealed && cd practice-repo
git init -q -b main . && git config user.email runbook@example.invalid && git config user.name runbook
kubectl create namespace shop
kubectl -n shop create secret generic db --from-literal=password=bitnami-db-password \
  --dry-run=client -o yaml | kubeseal --cert ../bitnami.crt -o yaml > sealed/db.yaml
kubectl -n shop create secret generic api --from-literal=token=bitnami-api-token \
  --dry-run=client -o yaml | kubeseal --cert ../bitnami.crt -o yaml --scope namespace-wide > sealed/api.yaml
git add -A && git commit -qm "sealed with kubeseal"
kubectl apply -f sealed/
for pair in db:password:bitnami-db-password api:token:bitnami-api-token; do
  IFS=: read -r name item value <<< "$pair"
  uid=$(kubectl -n shop get sealedsecret "$name" -o jsonpath='{.metadata.uid}')
  kubectl apply -f - <<JSON
{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
 "metadata": {"name": "$name", "namespace": "shop",
   "ownerReferences": [{"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "name": "$name",
                        "uid": "$uid", "controller": true}]},
 "data": {"$item": "$(printf %s "$value" | base64 -w0)"}}
JSON
done
"#;

#[tokio::test(flavor = "multi_thread")]
async fn runbook_04_move_from_kubeseal_and_bitnami_to_signet_and_back() {
    let _turn = cluster::ONE_CLUSTER_TEST_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let runbook = Runbook::load("04-migrate-from-kubeseal-or-sops.md");
    let cluster_api = tokio::task::spawn_blocking(fresh_cluster)
        .await
        .expect("thread");
    let client = cluster_api.client().await.expect("client");
    let ports = Controller::ports();
    let env = connect_env(&cluster_api, &format!("http://127.0.0.1:{}", ports.0));
    let mut fixture_env = env.clone();
    fixture_env.push((
        "BITNAMI_CRD".to_owned(),
        signet_tests::sandbox::workspace_root()
            .join("controller/tests/fixtures/bitnami-sealedsecrets-crd.yaml")
            .display()
            .to_string(),
    ));
    tokio::task::block_in_place(|| {
        harness::run_fixture(&sandbox, &fixture_env, BITNAMI_INSTALLATION)
    });
    let keys_before = sealing_keys(&client).await;
    let secrets = Api::<Secret>::namespaced(client.clone(), "shop");
    let db_before = secrets.get("db").await.expect("Bitnami's Secret");

    // The session starts with kubectl configured and SIGNET_CHART known, like the reader's
    // terminal; the controller URL arrives at the cluster-connect block after the install.
    let chart_env: Vec<_> = env
        .iter()
        .filter(|(k, _)| k == "SIGNET_CHART" || k == "KUBECONFIG")
        .cloned()
        .collect();
    let mut session = Session::start(&sandbox, &runbook, &chart_env, true);
    tokio::task::block_in_place(|| session.advance_to("helm install signet", true));
    // The chart's Deployment cannot run here: the controller binary stands in for its Pods.
    let controller = Controller::start(&cluster_api, ports, sandbox.path()).await;
    tokio::task::block_in_place(|| session.connect(&env));
    tokio::task::block_in_place(|| session.advance_to("helm uninstall signet", false));

    // Signet runs on Bitnami's keys and objects: no new key, Bitnami's Secrets kept (same uid),
    // every SealedSecret synced, including the one kubeseal made after the move.
    assert_eq!(sealing_keys(&client).await, keys_before);
    let db_after = secrets.get("db").await.expect("Secret");
    assert_eq!(db_after.metadata.uid, db_before.metadata.uid);
    assert_eq!(db_after.data, db_before.data);
    let sealed_api = Api::<signet_controller::SealedSecret>::namespaced(client.clone(), "shop");
    for name in ["db", "api", "after-move"] {
        let object = sealed_api.get(name).await.expect("SealedSecret");
        let synced = object.status.as_ref().and_then(|s| s.synced().cloned());
        assert_eq!(synced.map(|c| c.status).as_deref(), Some("True"), "{name}");
    }
    let after_move = secrets
        .get("after-move")
        .await
        .expect("Secret from kubeseal");
    let token = after_move
        .data
        .as_ref()
        .and_then(|d| d.get("token"))
        .expect("token");
    assert_eq!(token.0, b"sealed-after-move");

    // And back: the chart goes, the controller with it; CRD, objects, keys and Secrets stay.
    tokio::task::block_in_place(|| session.advance_to("helm uninstall signet", true));
    drop(controller);
    tokio::task::block_in_place(|| session.run_rest());
    tokio::task::block_in_place(|| session.finish());
    assert_eq!(sealing_keys(&client).await, keys_before);
    let services =
        Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), "kube-system");
    assert!(
        services
            .get_opt("sealed-secrets-controller")
            .await
            .expect("get")
            .is_none(),
        "the chart's Service outlived helm uninstall"
    );
    for (name, item, value) in [
        ("db", "password", "bitnami-db-password"),
        ("api", "token", "bitnami-api-token"),
        ("after-move", "token", "sealed-after-move"),
    ] {
        let object = sealed_api.get(name).await.expect("SealedSecret survives");
        let uid = object.metadata.uid.clone().expect("uid");
        let secret = secrets.get(name).await.expect("Secret survives");
        // Controlled by its SealedSecret, which is what Bitnami checks before it manages a Secret.
        assert!(
            secret
                .metadata
                .owner_references
                .unwrap_or_default()
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true)),
            "{name} is not controlled by its SealedSecret"
        );
        let got = secret
            .data
            .as_ref()
            .and_then(|d| d.get(item))
            .expect("item");
        assert_eq!(got.0, value.as_bytes());
    }
    // The kubeseal-made files were never rewritten.
    let first = git(
        &sandbox.join("practice-repo"),
        &["rev-list", "--max-parents=0", "HEAD"],
    );
    git(
        &sandbox.join("practice-repo"),
        &[
            "diff",
            "--quiet",
            first.trim(),
            "HEAD",
            "--",
            "sealed/db.yaml",
            "sealed/api.yaml",
        ],
    );
    // What Bitnami will do with the kept keys: kubeseal opens every file in Git with them.
    let repo = sandbox.join("practice-repo");
    for file in [
        "sealed/db.yaml",
        "sealed/api.yaml",
        "sealed/after-move.yaml",
    ] {
        let out = sandbox
            .command(signet_tests::sandbox::peer("kubeseal"))
            .current_dir(&repo)
            .args([
                "--recovery-unseal",
                "--recovery-private-key",
                "../bitnami.key",
                "-o",
                "yaml",
            ])
            .stdin(std::fs::File::open(repo.join(file)).expect("file"))
            .output()
            .expect("kubeseal");
        assert!(
            out.status.success(),
            "kubeseal cannot open {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Part B: the sops file went sops -> signet -> sops (the runbook's own greps); it is still a
    // sops file with the same recipient.
    let sops_file = std::fs::read_to_string(sandbox.join("sops-repo/app.yaml")).expect("sops file");
    assert!(sops_file.contains("mac: ENC["));
    assert!(!sops_file.contains("changed-by-signet"));
}

/// The YAML block of a runbook whose first line is `# <file>`, parsed.
fn ci_file(runbook: &Runbook, file: &str) -> serde_json::Value {
    let block = runbook
        .blocks
        .iter()
        .find(|b| b.info == "yaml" && b.body.lines().next() == Some(&format!("# {file}")))
        .unwrap_or_else(|| panic!("{}: no yaml block for {file}", runbook.name));
    serde_saphyr::from_str(&block.body).unwrap_or_else(|e| panic!("{file} is not YAML: {e}"))
}

/// A CI job's shell: a fresh clone of `origin.git` (detached like GitLab's when `detached`), the
/// script run with bash `-eo pipefail` (what both CI systems use) and `env`; returns (success,
/// output).
fn run_ci_job(
    sandbox: &Sandbox,
    job: &str,
    script: &str,
    env: &[(String, String)],
    detached: bool,
) -> (bool, String) {
    let workdir = sandbox.join(&format!("ci-{job}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&workdir);
    let origin = sandbox.join("origin.git");
    git(
        sandbox.path(),
        &[
            "clone",
            "-q",
            &origin.display().to_string(),
            &workdir.display().to_string(),
        ],
    );
    if detached {
        git(&workdir, &["checkout", "-q", "--detach"]);
    }
    let script = format!("cd {}\n{script}", workdir.display());
    let output = sandbox
        .command("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
        .env(
            "PATH",
            format!(
                "{}:/usr/local/bin:/usr/bin:/bin",
                sandbox.join(".runbook-bin").display()
            ),
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("running the CI job");
    let _ = std::fs::remove_dir_all(&workdir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The `run:` steps of a GitHub Actions job, without `uses:` steps and the "Install signet" step
/// (the test's signet is the fresh build); `${{ secrets.NAME }}` in step `env` resolved from
/// `secrets`.
fn github_job(
    workflow: &serde_json::Value,
    job: &str,
    secrets: &[(&str, String)],
) -> (String, Vec<(String, String)>) {
    let steps = workflow["jobs"][job]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("job {job} has no steps"));
    let mut script = String::new();
    let mut env = Vec::new();
    let mut skipped = Vec::new();
    for step in steps {
        let Some(run) = step["run"].as_str() else {
            assert!(step["uses"].is_string(), "a step with neither run nor uses");
            continue;
        };
        if step["name"] == "Install signet" {
            skipped.push(run.to_owned());
            continue;
        }
        if let Some(vars) = step["env"].as_object() {
            for (name, value) in vars {
                let value = value.as_str().expect("env value");
                let resolved = secrets
                    .iter()
                    .find(|(secret, _)| value == format!("${{{{ secrets.{secret} }}}}"))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| panic!("unresolved env {name}: {value}"));
                env.push((name.clone(), resolved));
            }
        }
        // Each step is its own shell in Actions.
        script.push_str(&format!("(\n{run}\n)\n"));
    }
    assert_eq!(skipped.len(), 1, "exactly one install step is replaced");
    (script, env)
}

/// A GitLab CI job's `script:` lines joined into one shell.
fn gitlab_job(ci: &serde_json::Value, job: &str) -> String {
    let lines = ci[job]["script"]
        .as_array()
        .unwrap_or_else(|| panic!("job {job} has no script"));
    assert_eq!(
        ci[job]["extends"], ".signet",
        "{job} installs signet through .signet"
    );
    lines
        .iter()
        .map(|l| l.as_str().expect("script line").to_owned() + "\n")
        .collect()
}

#[test]
fn runbook_06_a_ci_re_encryption_job() {
    let sandbox = Sandbox::new();
    let runbook = Runbook::load("06-ci-re-encryption-job.md");
    let mut session = Session::start(&sandbox, &runbook, &[], false);
    session.advance_to("if signet rekey --check; then", false);

    let ci_identity = std::fs::read_to_string(sandbox.join("ci.agekey")).expect("ci identity");
    let check_workflow = ci_file(&runbook, ".github/workflows/secrets-check.yml");
    let rekey_workflow = ci_file(&runbook, ".github/workflows/secrets-rekey.yml");
    let (check_script, check_env) = github_job(&check_workflow, "rekey-check", &[]);
    assert!(
        check_env.is_empty(),
        "the pull-request check must need no secrets"
    );
    let (rekey_script, rekey_env) = github_job(
        &rekey_workflow,
        "rekey",
        &[("SIGNET_CI_AGE_KEY", ci_identity.clone())],
    );

    // GitHub: the pull request removed Carol, so the check fails and names both files.
    let (ok, out) = run_ci_job(&sandbox, "gh-check", &check_script, &check_env, false);
    assert!(!ok, "the check passed on a stale repository:\n{out}");
    assert!(
        out.contains("secrets/app.yaml") && out.contains("secrets/app.env"),
        "{out}"
    );
    let json_start = out.find('{').expect("a JSON report");
    let report: serde_json::Value = serde_json::Deserializer::from_str(&out[json_start..])
        .into_iter()
        .next()
        .expect("report")
        .expect("the report is JSON");
    assert_eq!(report["summary"]["stale"], 2, "{report}");
    let commits_before = git(
        &sandbox.join("origin.git"),
        &["rev-list", "--count", "main"],
    );
    let (ok, out) = run_ci_job(&sandbox, "gh-rekey", &rekey_script, &rekey_env, false);
    assert!(ok, "the scheduled job failed:\n{out}");
    let commits_after = git(
        &sandbox.join("origin.git"),
        &["rev-list", "--count", "main"],
    );
    assert_eq!(
        commits_after.trim().parse::<u32>().expect("count"),
        commits_before.trim().parse::<u32>().expect("count") + 1,
        "the scheduled job pushed one commit"
    );
    let (ok, out) = run_ci_job(&sandbox, "gh-check-2", &check_script, &check_env, false);
    assert!(ok, "the check still fails after the scheduled job:\n{out}");
    // A second scheduled run has nothing to do and pushes nothing.
    let (ok, out) = run_ci_job(&sandbox, "gh-rekey-2", &rekey_script, &rekey_env, false);
    assert!(ok && out.contains("nothing stale"), "{out}");

    // GitLab: another pull request adds Carol back; same cycle through .gitlab-ci.yml.
    let gitlab = ci_file(&runbook, ".gitlab-ci.yml");
    let (check, rekey) = (
        gitlab_job(&gitlab, "rekey-check"),
        gitlab_job(&gitlab, "rekey"),
    );
    assert_eq!(
        gitlab["rekey"]["variables"]["SOPS_AGE_KEY"],
        "$SIGNET_CI_AGE_KEY"
    );
    let ci_key = sed_public_key(&ci_identity);
    let carol_key =
        sed_public_key(&std::fs::read_to_string(sandbox.join("carol.agekey")).expect("carol"));
    let repo = sandbox.join("practice-repo");
    git(&repo, &["pull", "-q", "origin", "main"]);
    std::fs::write(
        repo.join(".sops.yaml"),
        format!("creation_rules:\n  - path_regex: secrets/\n    age: {ci_key},{carol_key}\n"),
    )
    .expect("write");
    git(&repo, &["commit", "-qam", "Carol is back"]);
    git(&repo, &["push", "-q", "origin", "main"]);
    let gitlab_env = vec![
        ("CI_COMMIT_REF_NAME".to_owned(), "main".to_owned()),
        ("SIGNET_CI_AGE_KEY".to_owned(), ci_identity.clone()),
        ("SOPS_AGE_KEY".to_owned(), ci_identity.clone()),
        (
            "REKEY_PUSH_URL".to_owned(),
            sandbox.join("origin.git").display().to_string(),
        ),
    ];
    let (ok, out) = run_ci_job(&sandbox, "gl-check", &check, &[], true);
    assert!(!ok && out.contains("secrets/app.yaml"), "{out}");
    let (ok, out) = run_ci_job(&sandbox, "gl-rekey", &rekey, &gitlab_env, true);
    assert!(ok, "{out}");
    let (ok, out) = run_ci_job(&sandbox, "gl-check-2", &check, &[], true);
    assert!(ok, "{out}");

    // The end state in origin: Carol and CI open every file with upstream sops.
    let (ok, out) = run_ci_job(
        &sandbox,
        "verify",
        "for f in secrets/app.yaml secrets/app.env; do SOPS_AGE_KEY_FILE=$CAROL sops -d \"$f\"; done",
        &[(
            "CAROL".to_owned(),
            sandbox.join("carol.agekey").display().to_string(),
        )],
        false,
    );
    assert!(
        ok && out.contains("ci-practice-db") && out.contains("ci-practice-token"),
        "{out}"
    );

    session.run_rest();
    let output = session.finish();
    assert!(output.contains("nothing stale"), "{output}");
}

/// The `# public key: age1…` of an identity file.
fn sed_public_key(identity: &str) -> String {
    identity
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_owned()
}

#[test]
fn runbook_07_merge_concurrent_edits_of_an_encrypted_file() {
    let sandbox = Sandbox::new();
    let runbook = Runbook::load("07-merge-encrypted-files.md");
    let output = run_all(&sandbox, &runbook, &[]);
    assert!(
        output.contains(r#"["db_password"] (changed differently on both sides)"#),
        "{output}"
    );
    // Step 2's diff went through the textconv: plaintext, not ciphertext.
    assert!(
        output.contains("+api_token: merge-practice-token-2"),
        "{output}"
    );

    let repo = sandbox.join("practice-merge");
    let key = sandbox.join("merge.agekey");
    let out = sops_decrypt(&sandbox, &repo, &key, "app.enc.yaml");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "db_user: app2\ndb_password: merge-practice-pw-final\napi_token: merge-practice-token-2\n"
    );
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    // Both merges are merge commits, and the first changed only the token's ciphertext.
    let merges = git(&repo, &["rev-list", "--merges", "HEAD"]);
    assert_eq!(merges.lines().count(), 2, "{merges}");
    let merge = merges.lines().last().expect("the first merge");
    let ours = enc_values(&git(&repo, &["show", &format!("{merge}^1:app.enc.yaml")]));
    let merged = enc_values(&git(&repo, &["show", &format!("{merge}:app.enc.yaml")]));
    let changed: Vec<_> = ours.iter().zip(&merged).filter(|(a, b)| a != b).collect();
    // The token, and the MAC that covers it.
    assert_eq!(changed.len(), 2, "{ours:?}\n{merged:?}");
    // No plaintext of the conflicting values in any file of the work tree.
    for entry in std::fs::read_dir(&repo).expect("repo") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let text = std::fs::read(&path).expect("read");
            for needle in ["merge-practice-pw-ours", "merge-practice-pw-theirs"] {
                assert!(
                    !text.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} in {}",
                    path.display()
                );
            }
        }
    }
}

/// Guards the convention the other tests rely on: every runbook is loaded by a test here, is linked
/// from the index, has blocks the test runs, and uses only fences the harness knows — a ```` ```bash ````
/// typo would otherwise silently take a step out of the test.
#[test]
fn every_runbook_is_tested_indexed_and_uses_known_fences() {
    let suite = include_str!("runbooks.rs");
    let dir = harness::runbooks_dir();
    let index = std::fs::read_to_string(dir.join("README.md")).expect("runbooks index");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("docs/runbooks")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md") && n != "README.md")
        .collect();
    names.sort();
    assert_eq!(names.len(), 7, "{names:?}");
    for name in names {
        assert!(
            suite.contains(&format!("Runbook::load(\"{name}\")")),
            "{name} is not run by any test"
        );
        assert!(
            index.contains(&format!("]({name})")),
            "{name} missing from the index"
        );
        let runbook = Runbook::load(&name);
        assert!(!runbook.runnable(None).is_empty(), "{name} has no sh block");
        for block in &runbook.blocks {
            let known = matches!(
                block.info.as_str(),
                "sh" | "sh cluster-connect" | "text" | "yaml"
            ) || block.info.starts_with("sh variant=")
                && block.info.split_whitespace().count() == 2;
            assert!(
                known,
                "{name} line {}: fence ```{} is neither run nor declared illustrative",
                block.line, block.info
            );
        }
    }
}
