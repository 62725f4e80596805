//! `signet seal --cert a.pem --cert b.pem`: one SealedSecret per certificate and input Secret, in
//! one stream (YAML or JSON) or one file per cluster (`--output-pattern`). Each document must open
//! with its own cluster's key only, with kubeseal's `--recovery-unseal` and with `signet unseal`.

use crate::seal_support::{Scratch, b64};
use serde_json::Value;

const CANARY: &str = "canary-multi-7c2d";

/// Two Secrets in one input.
const SECRETS: &str = "apiVersion: v1
kind: Secret
metadata:
  name: app
  namespace: prod
stringData:
  password: canary-multi-7c2d
---
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: prod
stringData:
  url: canary-multi-7c2d
";

/// A 2048-bit sealing key pair per cluster name: `NAME.key`, `NAME.pem`.
fn keys(s: &Scratch, names: &[&str]) {
    for name in names {
        s.signet(
            &[
                "keys",
                "new-sealing-key",
                "--bits",
                "2048",
                "--key-out",
                &format!("{name}.key"),
                "--cert-out",
                &format!("{name}.pem"),
            ],
            b"",
        )
        .ok();
    }
}

/// The documents of a YAML stream or JSON stream, as JSON text each (what kubeseal reads).
fn documents(bytes: &[u8]) -> Vec<Value> {
    signet_seal::manifest::parse_documents(std::str::from_utf8(bytes).unwrap()).unwrap()
}

/// Unseals one SealedSecret with kubeseal and with signet using `key`; `None` when neither opens it
/// (and both must agree).
fn open(s: &Scratch, doc: &Value, key: &str) -> Option<Value> {
    let body = doc.to_string();
    let kubeseal = s.kubeseal(
        &["--recovery-unseal", "--recovery-private-key", key],
        body.as_bytes(),
    );
    let signet = s.signet(&["unseal", "--recovery-private-key", key], body.as_bytes());
    assert_eq!(
        kubeseal.code == Some(0),
        signet.code == Some(0),
        "kubeseal and signet disagree: {} / {}",
        kubeseal.stderr,
        signet.stderr
    );
    (kubeseal.code == Some(0)).then(|| serde_json::from_slice(&kubeseal.stdout).unwrap())
}

#[test]
fn one_stream_holds_each_clusters_sealed_secrets_and_each_opens_with_its_key_only() {
    let s = Scratch::new();
    keys(&s, &["dev", "prod"]);
    s.write("secrets.yaml", SECRETS);
    for format in ["yaml", "json"] {
        let out = s
            .signet(
                &[
                    "seal",
                    "--cert",
                    "dev.pem",
                    "--cert",
                    "prod.pem",
                    "-o",
                    format,
                    "secrets.yaml",
                ],
                b"",
            )
            .ok();
        assert!(!out.text().contains(CANARY));
        let docs = documents(&out.stdout);
        let seen: Vec<(String, String)> = docs
            .iter()
            .map(|d| {
                (
                    d["metadata"]["annotations"]["signet.dev/cluster"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    d["metadata"]["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = [
            ("dev", "app"),
            ("dev", "db"),
            ("prod", "app"),
            ("prod", "db"),
        ]
        .iter()
        .map(|(c, n)| (c.to_string(), n.to_string()))
        .collect();
        assert_eq!(seen, expected, "{format}");
        for (doc, (cluster, name)) in docs.iter().zip(&seen) {
            let other = if cluster == "dev" { "prod" } else { "dev" };
            let secret = open(&s, doc, &format!("{cluster}.key"))
                .unwrap_or_else(|| panic!("{format}: {cluster}/{name} does not open with its key"));
            let item = if name == "app" { "password" } else { "url" };
            assert_eq!(
                secret["data"][item].as_str(),
                Some(b64(CANARY.as_bytes()).as_str())
            );
            assert!(
                open(&s, doc, &format!("{other}.key")).is_none(),
                "{format}: {cluster}/{name} opens with {other}'s key"
            );
        }
    }
}

#[test]
fn an_output_pattern_writes_one_file_per_cluster() {
    let s = Scratch::new();
    keys(&s, &["a", "b"]);
    s.write("secrets.yaml", SECRETS);
    // Named clusters, a file each.
    s.signet(
        &[
            "seal",
            "--cert",
            "staging=a.pem",
            "--cert",
            "dr=b.pem",
            "-o",
            "yaml",
            "--output-pattern",
            "sealed-{cluster}.yaml",
            "secrets.yaml",
        ],
        b"",
    )
    .ok();
    for (cluster, key, other) in [("staging", "a.key", "b.key"), ("dr", "b.key", "a.key")] {
        let bytes = std::fs::read(s.path(&format!("sealed-{cluster}.yaml"))).unwrap();
        let docs = documents(&bytes);
        assert_eq!(docs.len(), 2);
        for doc in &docs {
            assert_eq!(
                doc["metadata"]["annotations"]["signet.dev/cluster"],
                cluster
            );
            assert!(open(&s, doc, key).is_some());
            assert!(open(&s, doc, other).is_none());
        }
    }
    // Mistakes write nothing: a pattern without {cluster}, two certificates of the same name, a
    // flag that needs one certificate, an unreadable certificate among good ones.
    let before = s.files();
    for (args, code) in [
        (
            vec![
                "--cert",
                "a.pem",
                "--cert",
                "b.pem",
                "--output-pattern",
                "x.yaml",
            ],
            8,
        ),
        (
            vec!["--cert", "a.pem", "--cert", "x=a.pem", "--cert", "a=b.pem"],
            8,
        ),
        (
            vec![
                "--cert",
                "a.pem",
                "--cert",
                "b.pem",
                "--raw",
                "--from-file",
                "secrets.yaml",
            ],
            8,
        ),
        (
            vec![
                "--cert",
                "a.pem",
                "--cert",
                "missing.pem",
                "--output-pattern",
                "o-{cluster}.yaml",
            ],
            2,
        ),
    ] {
        let mut all = vec!["seal"];
        all.extend(args.iter().copied());
        all.push("secrets.yaml");
        let ran = s.signet(&all, b"");
        assert_eq!(ran.code, Some(code), "{args:?}: {}", ran.stderr);
        assert!(!ran.stderr.contains(CANARY));
    }
    assert_eq!(s.files(), before);
}

/// `rekey` keeps a multi-cluster set in step: with `--cert NAME=FILE` per cluster, only the
/// SealedSecrets of the cluster whose key changed are stale and re-sealed, each to its own cluster's
/// certificate.
#[test]
fn rekey_keeps_each_clusters_sealed_secrets_on_its_own_certificate() {
    let s = Scratch::new();
    keys(&s, &["dev", "prod", "prod2"]);
    s.write("secrets.yaml", SECRETS);
    std::fs::create_dir_all(s.path("repo")).unwrap();
    s.signet(
        &[
            "seal",
            "--cert",
            "dev.pem",
            "--cert",
            "prod.pem",
            "-o",
            "yaml",
            "-w",
            "repo/sealed.yaml",
            "secrets.yaml",
        ],
        b"",
    )
    .ok();
    let keys = "dev.key,prod.key,prod2.key";
    let rekey = |check: bool, prod_cert: &str| {
        let mut args = vec!["rekey", "-o", "json"];
        if check {
            args.push("--check");
        }
        let prod = format!("prod={prod_cert}");
        args.extend(["--cert", "dev=dev.pem", "--cert", &prod]);
        args.extend(["--recovery-private-key", keys, "repo"]);
        s.signet(&args, b"")
    };
    // In step with the certificates it was sealed to.
    rekey(true, "prod.pem").ok();
    // prod's key rotated: only prod's two objects are stale.
    let checked = rekey(true, "prod2.pem");
    assert_eq!(checked.code, Some(211), "{}", checked.stderr);
    let report: Value = serde_json::from_slice(&checked.stdout).unwrap();
    let reasons = report["files"][0]["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 2, "{report}");
    assert!(
        reasons
            .iter()
            .all(|r| r.as_str().unwrap().contains("prod/"))
    );
    rekey(false, "prod2.pem").ok();
    rekey(true, "prod2.pem").ok();
    let docs = documents(&std::fs::read(s.path("repo/sealed.yaml")).unwrap());
    assert_eq!(docs.len(), 4);
    for doc in &docs {
        let cluster = doc["metadata"]["annotations"]["signet.dev/cluster"]
            .as_str()
            .unwrap();
        let (own, others) = if cluster == "dev" {
            ("dev.key", ["prod.key", "prod2.key"])
        } else {
            ("prod2.key", ["dev.key", "prod.key"])
        };
        assert!(open(&s, doc, own).is_some(), "{cluster} with {own}");
        for other in others {
            assert!(
                open(&s, doc, other).is_none(),
                "{cluster} opens with {other}"
            );
        }
    }
    // A cluster with no --cert and no default certificate: unchecked, unchanged.
    let before = std::fs::read(s.path("repo/sealed.yaml")).unwrap();
    let ran = s.signet(
        &[
            "rekey",
            "--cert",
            "dev=dev.pem",
            "--recovery-private-key",
            keys,
            "repo",
        ],
        b"",
    );
    assert!(
        ran.text().contains("no --cert for its cluster"),
        "{}",
        ran.text()
    );
    assert_eq!(std::fs::read(s.path("repo/sealed.yaml")).unwrap(), before);
}
