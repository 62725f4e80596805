//! The runbooks of `docs/runbooks/`, run as written: every ```` ```sh ```` block of a runbook, in
//! order, in one bash session (see `runbooks/harness.rs`) with the freshly built `signet`, upstream
//! sops, kubeseal and age on PATH (and kubectl and helm against the test API server for the cluster
//! runbooks), then the end state checked from Rust with the upstream tools. The documentation
//! therefore cannot drift from the binary.

#[path = "runbooks/cluster.rs"]
mod cluster;
#[path = "runbooks/harness.rs"]
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
async fn runbook_03_a_sealing_key_is_compromised() {
    let sandbox = Sandbox::new();
    let runbook = Runbook::load("03-sealing-key-compromised.md");
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
}
