//! `signet keys inventory` and `signet keys retire` on a generated repository like rekey's: sops
//! files in several stores encrypted to two age keys, SealedSecrets sealed to an old and a new
//! certificate (by signet and by kubeseal, single and multi-document). The inventory must match
//! exactly what was encrypted and sealed; `retire` must refuse a key something still needs and
//! accept it once everything was re-sealed.

use serde_json::Value;
use signet_tests::sandbox::{Run, Sandbox};
use std::collections::BTreeMap;

const CANARY: &str = "canary-inv-91b3";

fn secret(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: prod\nstringData:\n  password: {CANARY}\n"
    )
}

/// An age identity: (key file name, recipient).
fn age(sb: &Sandbox, file: &str) -> String {
    sb.signet(["keygen", "-o", file]).ok();
    String::from_utf8(sb.read(file))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_owned()
}

/// A 2048-bit sealing key pair `NAME.key`/`NAME.crt`; returns the inventory name of the key.
fn sealing(sb: &Sandbox, name: &str) -> String {
    sb.signet([
        "keys",
        "new-sealing-key",
        "--bits",
        "2048",
        "--key-out",
        &format!("{name}.key"),
        "--cert-out",
        &format!("{name}.crt"),
    ])
    .ok();
    use sha2::Digest;
    let cert = signet_seal::SealingCertificate::from_pem(&sb.read(&format!("{name}.crt"))).unwrap();
    let hex: String = sha2::Sha256::digest(cert.public_key_der())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sealing:{hex}")
}

/// key → ["file" or "file (ns/name)"] from `keys inventory -o json`.
fn inventory(run: &Run) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let report: Value = serde_json::from_str(&run.stdout()).expect("JSON inventory");
    let show = |u: &Value| match u["object"].as_str() {
        Some(o) => format!("{} ({o})", u["file"].as_str().unwrap()),
        None => u["file"].as_str().unwrap().to_owned(),
    };
    let keys = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key"].as_str().unwrap().to_owned(),
                k["uses"].as_array().unwrap().iter().map(show).collect(),
            )
        })
        .collect();
    let unattributed = report["unattributed"]
        .as_array()
        .unwrap()
        .iter()
        .map(show)
        .collect();
    (keys, unattributed)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn inventory_matches_what_was_encrypted_and_sealed_and_retire_refuses_keys_in_use() {
    let sb = Sandbox::new();
    let a = age(&sb, "a.txt");
    let b = age(&sb, "b.txt");
    let unused = age(&sb, "c.txt");
    let old = sealing(&sb, "old");
    let new = sealing(&sb, "new");
    // sops files: YAML to a, dotenv to a and b, JSON to b.
    sb.write("repo/app/secret.yaml", secret("app"));
    sb.write("repo/app/.env", format!("PASSWORD={CANARY}\n"));
    sb.write(
        "repo/db/config.json",
        format!("{{\"password\": \"{CANARY}\"}}\n"),
    );
    for (file, recipients) in [
        ("repo/app/secret.yaml", a.clone()),
        ("repo/app/.env", format!("{a},{b}")),
        ("repo/db/config.json", b.clone()),
    ] {
        sb.signet(["encrypt", "--age", &recipients, "-i", file])
            .ok();
    }
    // SealedSecrets: old certificate (signet, YAML), new certificate (kubeseal, JSON), and a
    // two-document file with one of each.
    std::fs::create_dir_all(sb.join("repo/sealed")).unwrap();
    sb.write("s-web.yaml", secret("web"));
    sb.write("s-api.yaml", secret("api"));
    sb.signet([
        "seal",
        "--cert",
        "old.crt",
        "-o",
        "yaml",
        "-w",
        "repo/sealed/web.yaml",
        "s-web.yaml",
    ])
    .ok();
    let api = sb
        .peer("kubeseal", ["--cert", "new.crt", "-f", "s-api.yaml"])
        .ok();
    sb.write("repo/sealed/api.json", api);
    // The two-document file: `one` sealed to the old certificate, `two` to the new one.
    sb.write("s-one.yaml", secret("one"));
    sb.write("s-two.yaml", secret("two"));
    let one = sb
        .signet(["seal", "--cert", "old.crt", "-o", "yaml", "s-one.yaml"])
        .ok();
    let two = sb
        .signet(["seal", "--cert", "new.crt", "-o", "yaml", "s-two.yaml"])
        .ok();
    sb.write("repo/sealed/both.yaml", [one, two].concat());
    // Not a secret file.
    sb.write("repo/README.md", "# the repo\n");

    let keys = "old.key,new.key";
    let run = sb.signet([
        "keys",
        "inventory",
        "-o",
        "json",
        "--recovery-private-key",
        keys,
        "repo",
    ]);
    run.ok();
    assert!(!run.stdout().contains(CANARY) && !run.stderr().contains(CANARY));
    let (found, unattributed) = inventory(&run);
    let expected: BTreeMap<String, Vec<String>> = [
        (
            format!("age:{a}"),
            strings(&["repo/app/.env", "repo/app/secret.yaml"]),
        ),
        (
            format!("age:{b}"),
            strings(&["repo/app/.env", "repo/db/config.json"]),
        ),
        (
            new.clone(),
            strings(&[
                "repo/sealed/api.json (prod/api)",
                "repo/sealed/both.yaml (prod/two)",
            ]),
        ),
        (
            old.clone(),
            strings(&[
                "repo/sealed/both.yaml (prod/one)",
                "repo/sealed/web.yaml (prod/web)",
            ]),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(found, expected);
    assert!(unattributed.is_empty());
    // Text: a block per key.
    let text = sb
        .signet(["keys", "inventory", "--recovery-private-key", keys, "repo"])
        .ok();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains(&format!(
            "{old}\t2 use(s)\n  repo/sealed/both.yaml (prod/one)\n"
        )),
        "{text}"
    );
    // Without private keys the sops side is the same and every SealedSecret is unattributed.
    let run = sb.signet(["keys", "inventory", "-o", "json", "repo"]);
    run.ok();
    let (found, unattributed) = inventory(&run);
    assert_eq!(found.len(), 2);
    assert_eq!(unattributed.len(), 4);

    // retire: refused while needed, by full name or bare id.
    for key in [old.as_str(), old.trim_start_matches("sealing:")] {
        let run = sb.signet([
            "keys",
            "retire",
            key,
            "repo",
            "--recovery-private-key",
            keys,
        ]);
        let err = run.fails_with(216);
        assert!(err.contains("still needed by 2"), "{err}");
        assert!(run.stdout().contains("repo/sealed/web.yaml (prod/web)"));
    }
    sb.signet(["keys", "retire", &b, "repo"]).fails_with(216);
    // A sealing key cannot be cleared without the keys that tell what sealed what.
    let err = sb
        .signet([
            "keys",
            "retire",
            &old,
            "repo",
            "--recovery-private-key",
            "new.key",
        ])
        .fails_with(216);
    assert!(
        err.contains("open with none of the --recovery-private-key"),
        "{err}"
    );
    // A key nothing uses may go.
    let ok = sb
        .signet(["keys", "retire", &format!("age:{unused}"), "repo"])
        .ok();
    assert!(
        String::from_utf8(ok)
            .unwrap()
            .contains("nothing under the given paths needs it")
    );

    // Re-seal everything to the new certificate: now the old key may be retired.
    sb.signet([
        "reseal",
        "--cert",
        "new.crt",
        "--recovery-private-key",
        keys,
        "repo/sealed/web.yaml",
        "repo/sealed/both.yaml",
    ])
    .ok();
    let run = sb.signet([
        "keys",
        "inventory",
        "-o",
        "json",
        "--recovery-private-key",
        keys,
        "repo",
    ]);
    let (found, _) = inventory(&run);
    assert!(!found.contains_key(&old));
    assert_eq!(found[&new].len(), 4);
    let ok = sb
        .signet([
            "keys",
            "retire",
            &old,
            "repo",
            "--recovery-private-key",
            keys,
        ])
        .ok();
    let ok = String::from_utf8(ok).unwrap();
    assert!(
        ok.contains("sealedsecrets.bitnami.com/sealed-secrets-key=retired"),
        "{ok}"
    );
    // kubeseal still opens the re-sealed files with the new key only.
    let opened = sb
        .peer(
            "kubeseal",
            [
                "--recovery-unseal",
                "--recovery-private-key",
                "new.key",
                "-f",
                "repo/sealed/web.yaml",
            ],
        )
        .ok();
    assert!(!opened.is_empty());
}

/// `keys retire --apply` against a real API server: the retired key's Secret is relabelled
/// `retired`, the other stays `active`; a key still needed, the only active key and a key the
/// cluster does not hold are refused, changing nothing.
#[test]
fn retire_apply_relabels_the_key_secret_in_the_cluster() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, PostParams};
    const LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
    let server = signet_testkit::ApiServer::shared().expect("API server");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(server.client()).unwrap();
    let namespace = runtime
        .block_on(server.create_namespace(&client, "retire"))
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, &namespace);
    let label_of = |name: &str| -> String {
        let secret = runtime.block_on(secrets.get(name)).unwrap();
        secret.metadata.labels.unwrap_or_default()[LABEL].clone()
    };

    let sb = Sandbox::new();
    let mut fps = BTreeMap::new();
    for name in ["old", "new", "stray"] {
        sb.signet([
            "keys",
            "new-sealing-key",
            "--bits",
            "2048",
            "--key-out",
            &format!("{name}.key"),
            "--cert-out",
            &format!("{name}.crt"),
            "--secret-out",
            &format!("{name}-secret.json"),
            "--secret-name",
            &format!("sealed-secrets-key-{name}"),
            "--secret-namespace",
            &namespace,
        ])
        .ok();
        use sha2::Digest;
        let cert =
            signet_seal::SealingCertificate::from_pem(&sb.read(&format!("{name}.crt"))).unwrap();
        let hex: String = sha2::Sha256::digest(cert.public_key_der())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        fps.insert(name, format!("sealing:{hex}"));
    }
    let create = |name: &str| {
        let secret: Secret =
            serde_json::from_slice(&sb.read(&format!("{name}-secret.json"))).unwrap();
        runtime
            .block_on(secrets.create(&PostParams::default(), &secret))
            .unwrap();
    };
    create("new");
    std::fs::create_dir_all(sb.join("repo")).unwrap();
    sb.write("s.yaml", secret("web"));
    sb.signet([
        "seal",
        "--cert",
        "new.crt",
        "-o",
        "yaml",
        "-w",
        "repo/web.yaml",
        "s.yaml",
    ])
    .ok();
    let kubeconfig = server.kubeconfig_path().display().to_string();
    let retire = |key: &str| {
        sb.signet([
            "keys",
            "retire",
            key,
            "repo",
            "--recovery-private-key",
            "old.key,new.key",
            "--apply",
            "--kubeconfig",
            &kubeconfig,
            "--controller-namespace",
            &namespace,
        ])
    };
    // Nothing in the repository needs `new`, but it is the only active key: refused.
    std::fs::rename(sb.join("repo/web.yaml"), sb.join("web.yaml")).unwrap();
    let err = retire(&fps["new"]).fails_with(216);
    assert!(err.contains("only active key"), "{err}");
    assert_eq!(label_of("sealed-secrets-key-new"), "active");
    std::fs::rename(sb.join("web.yaml"), sb.join("repo/web.yaml")).unwrap();
    create("old");
    // Still needed by the repository: refused before the cluster is touched.
    retire(&fps["new"]).fails_with(216);
    // Not among the cluster's keys.
    retire(&fps["stray"]).fails_with(128);
    // Nothing needs `old`: relabelled.
    let out = String::from_utf8(retire(&fps["old"]).ok()).unwrap();
    assert!(out.contains("relabelled"), "{out}");
    assert_eq!(label_of("sealed-secrets-key-old"), "retired");
    assert_eq!(label_of("sealed-secrets-key-new"), "active");
    // --apply is for sealing keys.
    retire("age:age1notasealingkey").fails_with(8);
}
