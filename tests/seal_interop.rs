//! Interop with upstream kubeseal (v0.40.0): what kubeseal seals, `signet unseal` opens; what `signet
//! seal` seals, `kubeseal --recovery-unseal` opens. All three scopes, whole manifests and `--raw`,
//! empty / binary / multi-line / UTF-8 / 1 MB values, templates, `immutable`, key backups, keys made by
//! `signet keys new-sealing-key`, and the known-answer vectors.

use crate::seal_support as support;

use serde_json::{Value, json};
use support::{Scratch, b64, fixture};

const SCOPES: [&str; 3] = ["strict", "namespace-wide", "cluster-wide"];

fn values() -> Vec<(&'static str, Vec<u8>)> {
    let mut big = Vec::with_capacity(1 << 20);
    let mut x: u32 = 0x1234_5678;
    while big.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        big.push((x >> 24) as u8);
    }
    vec![
        ("empty", Vec::new()),
        ("binary", (0..=255u8).collect()),
        ("multi-line", b"line one\nline two\n\ttabbed\r\n\n".to_vec()),
        (
            "utf8",
            "h\u{e9}llo w\u{f6}rld \u{1F512} \u{65e5}\u{672c}"
                .as_bytes()
                .to_vec(),
        ),
        ("big", big),
    ]
}

fn secret_json(name: &str, namespace: &str) -> String {
    let data: serde_json::Map<String, Value> = values()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(b64(&v))))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "interop"}},
        "type": "Opaque",
        "immutable": true,
        "data": data,
    })
    .to_string()
}

fn assert_unsealed_secret(secret: &Value, name: &str, namespace: &str) {
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["metadata"]["name"], name);
    assert_eq!(secret["metadata"]["namespace"], namespace);
    assert_eq!(secret["metadata"]["labels"]["app"], "interop");
    assert_eq!(secret["immutable"], true);
    assert_eq!(secret["type"], "Opaque");
    for (key, value) in values() {
        assert!(item(secret, key) == b64(&value), "item {key} differs");
    }
}

/// An item of an unsealed Secret's `data`; kubeseal writes an empty value as `null`.
fn item(secret: &Value, key: &str) -> String {
    match &secret["data"][key] {
        Value::Null => String::new(),
        v => v.as_str().expect("data values are strings").to_owned(),
    }
}

/// Both tools unsealed the same items to the same values.
fn assert_same_data(ours: &Value, theirs: &Value) {
    let keys = |v: &Value| {
        v["data"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(ours), keys(theirs));
    for key in keys(ours) {
        assert!(item(ours, &key) == item(theirs, &key), "item {key} differs");
    }
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn key() -> String {
    fixture("kat/key.pem").display().to_string()
}

fn cert() -> String {
    fixture("kat/cert.pem").display().to_string()
}

#[test]
fn kubeseal_seals_signet_unseals_every_scope_and_value_shape() {
    let s = Scratch::new();
    for scope in SCOPES {
        let sealed = s
            .kubeseal(
                &["--cert", &cert(), "--scope", scope],
                secret_json("db", "prod").as_bytes(),
            )
            .ok();
        let file = s.write("sealed.json", &sealed.stdout);
        let out = s
            .signet(
                &[
                    "unseal",
                    "--recovery-private-key",
                    &key(),
                    file.to_str().unwrap(),
                ],
                b"",
            )
            .ok();
        assert_unsealed_secret(&parse(&out.stdout), "db", "prod");
    }
}

#[test]
fn signet_seals_kubeseal_unseals_every_scope_and_value_shape() {
    let s = Scratch::new();
    for scope in SCOPES {
        let sealed = s
            .signet(
                &["seal", "--cert", &cert(), "--scope", scope],
                secret_json("db", "prod").as_bytes(),
            )
            .ok();
        let doc = parse(&sealed.stdout);
        if scope != "strict" {
            let annotation = format!("sealedsecrets.bitnami.com/{scope}");
            assert_eq!(doc["metadata"]["annotations"][&annotation], "true");
            assert_eq!(
                doc["spec"]["template"]["metadata"]["annotations"][&annotation],
                "true"
            );
        }
        let out = s
            .kubeseal(
                &["--recovery-unseal", "--recovery-private-key", &key()],
                &sealed.stdout,
            )
            .ok();
        assert_unsealed_secret(&parse(&out.stdout), "db", "prod");
    }
}

#[test]
fn yaml_output_and_multi_document_streams_interoperate() {
    let s = Scratch::new();
    let stream = format!(
        "{}\n---\n{}\n",
        r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a", "namespace": "n1"}, "stringData": {"k": "one"}}"#,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n  namespace: n2\nstringData:\n  k: two\n"
    );
    let sealed = s
        .signet(
            &["seal", "--cert", &cert(), "-o", "yaml"],
            stream.as_bytes(),
        )
        .ok();
    let text = sealed.text();
    assert_eq!(text.matches("kind: SealedSecret").count(), 2);
    // kubeseal --recovery-unseal reads one object at a time: hand it each document.
    for (doc, (name, value)) in text
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .zip([("a", "one"), ("b", "two")])
    {
        let out = s
            .kubeseal(
                &["--recovery-unseal", "--recovery-private-key", &key()],
                doc.as_bytes(),
            )
            .ok();
        let secret = parse(&out.stdout);
        assert_eq!(secret["metadata"]["name"], name);
        assert_eq!(
            secret["data"]["k"].as_str(),
            Some(b64(value.as_bytes()).as_str())
        );
    }
    // kubeseal seals a multi-document stream; signet unseals the whole stream at once.
    let by_kubeseal = s
        .kubeseal(
            &["--cert", &cert(), "-o", "yaml"],
            text_secret_stream().as_bytes(),
        )
        .ok();
    let out = s
        .signet(
            &["unseal", "--recovery-private-key", &key()],
            &by_kubeseal.stdout,
        )
        .ok();
    let secrets: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[1]["data"]["k"].as_str(), Some(b64(b"two").as_str()));
}

fn text_secret_stream() -> String {
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n  namespace: n1\nstringData:\n  k: one\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n  namespace: n2\nstringData:\n  k: two\n".to_owned()
}

fn sealed_secret_around(value: &str, scope: &str, name: &str, namespace: &str) -> String {
    let mut annotations = serde_json::Map::new();
    if scope != "strict" {
        annotations.insert(format!("sealedsecrets.bitnami.com/{scope}"), json!("true"));
    }
    json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"template": {"metadata": {"name": name, "namespace": namespace}}, "encryptedData": {"raw": value}},
    })
    .to_string()
}

#[test]
fn raw_values_both_ways_every_scope() {
    let s = Scratch::new();
    let raw = values()
        .into_iter()
        .find(|(k, _)| *k == "binary")
        .unwrap()
        .1;
    let raw_file = s.write("raw.bin", &raw);
    let raw_path = raw_file.to_str().unwrap();
    for scope in SCOPES {
        let args = [
            "--raw",
            "--from-file",
            raw_path,
            "--scope",
            scope,
            "-n",
            "prod",
            "--name",
            "db",
            "--cert",
        ];
        // kubeseal --raw -> signet unseal
        let cert_path = cert();
        let k_args: Vec<&str> = args.iter().copied().chain([cert_path.as_str()]).collect();
        let by_kubeseal = s.kubeseal(&k_args, b"").ok().text();
        assert!(!by_kubeseal.ends_with('\n'));
        let doc = sealed_secret_around(&by_kubeseal, scope, "db", "prod");
        let out = s
            .signet(
                &["unseal", "--recovery-private-key", &key()],
                doc.as_bytes(),
            )
            .ok();
        assert_eq!(
            parse(&out.stdout)["data"]["raw"].as_str(),
            Some(b64(&raw).as_str()),
            "{scope}"
        );
        // signet seal --raw -> kubeseal --recovery-unseal
        let s_args: Vec<&str> = ["seal"].into_iter().chain(k_args.iter().copied()).collect();
        let by_signet = s.signet(&s_args, b"").ok().text();
        let doc = sealed_secret_around(&by_signet, scope, "db", "prod");
        let out = s
            .kubeseal(
                &["--recovery-unseal", "--recovery-private-key", &key()],
                doc.as_bytes(),
            )
            .ok();
        assert_eq!(
            parse(&out.stdout)["data"]["raw"].as_str(),
            Some(b64(&raw).as_str()),
            "{scope}"
        );
    }
}

#[test]
fn templates_render_the_same_in_both_tools() {
    let s = Scratch::new();
    let secret = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"app","namespace":"prod"},"stringData":{"user":"admin","tls.crt":"CERT\nDATA"}}"#;
    let sealed = s
        .signet(&["seal", "--cert", &cert()], secret.as_bytes())
        .ok();
    let mut doc = parse(&sealed.stdout);
    doc["spec"]["template"]["data"] = json!({
        "dsn": "user={{ .user }} cert={{ index . \"tls.crt\" }}",
        "trimmed": "  {{- .user -}}  !",
        "literal": "no actions here",
    });
    let doc = doc.to_string();
    let ours = parse(
        &s.signet(
            &["unseal", "--recovery-private-key", &key()],
            doc.as_bytes(),
        )
        .ok()
        .stdout,
    );
    let theirs = parse(
        &s.kubeseal(
            &["--recovery-unseal", "--recovery-private-key", &key()],
            doc.as_bytes(),
        )
        .ok()
        .stdout,
    );
    assert_same_data(&ours, &theirs);
    assert_eq!(
        ours["data"]["dsn"].as_str(),
        Some(b64(b"user=admin cert=CERT\nDATA").as_str())
    );
}

/// Offline, where no API server prunes nulls: every template of the side-by-side fixture, and a
/// `null` entry dropping a sealed item (v0.40.0, #1871), unseal the same in kubeseal v0.40.0.
#[test]
fn every_fixture_template_and_null_entries_unseal_the_same_in_both_tools() {
    let s = Scratch::new();
    let fixture: Value = serde_json::from_str(include_str!(
        "fixtures/templates/bitnami-v0.40-templates.json"
    ))
    .unwrap();
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "app", "namespace": "prod"}, "stringData": fixture["values"]});
    let sealed = s
        .signet(&["seal", "--cert", &cert()], secret.to_string().as_bytes())
        .ok();
    let mut doc = parse(&sealed.stdout);
    let mut templates = serde_json::Map::new();
    for case in fixture["templates"].as_array().unwrap() {
        templates.insert(case[0].as_str().unwrap().to_owned(), case[1].clone());
    }
    templates.insert("host".to_owned(), Value::Null);
    doc["spec"]["template"]["data"] = Value::Object(templates);
    let doc = doc.to_string();
    let ours = parse(
        &s.signet(
            &["unseal", "--recovery-private-key", &key()],
            doc.as_bytes(),
        )
        .ok()
        .stdout,
    );
    let theirs = parse(
        &s.kubeseal(
            &["--recovery-unseal", "--recovery-private-key", &key()],
            doc.as_bytes(),
        )
        .ok()
        .stdout,
    );
    assert_same_data(&ours, &theirs);
    assert!(ours["data"].get("host").is_none(), "null drops the item");
    assert!(ours["data"].get("real-dsn").is_some());
}

#[test]
fn known_answer_vectors_open_in_kubeseal() {
    let s = Scratch::new();
    let vectors: Vec<Value> =
        serde_json::from_slice(&std::fs::read(fixture("kat/vectors.json")).unwrap()).unwrap();
    for v in vectors {
        let label = v["label"].as_str().unwrap();
        let (scope, namespace, name) = match label.split_once('/') {
            Some((ns, n)) => ("strict", ns, n),
            None if label.is_empty() => ("cluster-wide", "anywhere", "anything"),
            None => ("namespace-wide", label, "anything"),
        };
        let doc = sealed_secret_around(v["sealed"].as_str().unwrap(), scope, name, namespace);
        let out = s
            .kubeseal(
                &["--recovery-unseal", "--recovery-private-key", &key()],
                doc.as_bytes(),
            )
            .ok();
        let plain: Vec<u8> = (0..v["plaintext_hex"].as_str().unwrap().len() / 2)
            .map(|i| {
                u8::from_str_radix(&v["plaintext_hex"].as_str().unwrap()[2 * i..2 * i + 2], 16)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            item(&parse(&out.stdout), "raw"),
            b64(&plain),
            "{}",
            v["name"]
        );
    }
}

#[test]
fn generated_sealing_key_works_with_kubeseal_both_ways() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    s.signet(
        &[
            "keys",
            "new-sealing-key",
            "--key-out",
            "k.pem",
            "--cert-out",
            "c.pem",
            "--secret-out",
            "backup.json",
        ],
        b"",
    )
    .ok();
    for private in ["k.pem", "backup.json"] {
        let mode = std::fs::metadata(s.path(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{private}");
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(s.path("backup.json")).unwrap()).unwrap();
    assert_eq!(manifest["type"], "kubernetes.io/tls");
    assert_eq!(manifest["metadata"]["namespace"], "kube-system");
    assert_eq!(
        manifest["metadata"]["labels"]["sealedsecrets.bitnami.com/sealed-secrets-key"],
        "active"
    );
    let (k, c) = (
        s.path("k.pem").display().to_string(),
        s.path("c.pem").display().to_string(),
    );
    let secret = secret_json("gen", "prod");
    let by_kubeseal = s.kubeseal(&["--cert", &c], secret.as_bytes()).ok();
    let out = s
        .signet(
            &["unseal", "--recovery-private-key", &k],
            &by_kubeseal.stdout,
        )
        .ok();
    assert_unsealed_secret(&parse(&out.stdout), "gen", "prod");
    let by_signet = s.signet(&["seal", "--cert", &c], secret.as_bytes()).ok();
    let out = s
        .kubeseal(
            &["--recovery-unseal", "--recovery-private-key", &k],
            &by_signet.stdout,
        )
        .ok();
    assert_unsealed_secret(&parse(&out.stdout), "gen", "prod");
    // The Secret manifest is a key backup kubeseal itself accepts.
    let backup = s.path("backup.json").display().to_string();
    let out = s
        .kubeseal(
            &["--recovery-unseal", "--recovery-private-key", &backup],
            &by_signet.stdout,
        )
        .ok();
    assert_unsealed_secret(&parse(&out.stdout), "gen", "prod");
    // A second run refuses to overwrite the key.
    let again = s.signet(
        &[
            "keys",
            "new-sealing-key",
            "--key-out",
            "k.pem",
            "--cert-out",
            "c.pem",
        ],
        b"",
    );
    assert_ne!(again.code, Some(0));
}

#[test]
fn key_backup_list_opens_in_both_tools() {
    let s = Scratch::new();
    let key_pem = std::fs::read(fixture("kat/key-pkcs1.pem")).unwrap();
    let other_pem = std::fs::read(fixture("other-key.pem")).unwrap();
    let backup = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sealed-secrets-key1"}, "type": "kubernetes.io/tls",
             "data": {"tls.key": b64(&other_pem), "tls.crt": b64(&std::fs::read(fixture("other-cert.pem")).unwrap())}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sealed-secrets-key2"}, "type": "kubernetes.io/tls",
             "data": {"tls.key": b64(&key_pem), "tls.crt": b64(&std::fs::read(fixture("kat/cert.pem")).unwrap())}},
        ],
    });
    let backup_file = s.write("backup.json", backup.to_string());
    let backup_path = backup_file.to_str().unwrap();
    let sealed = s
        .kubeseal(&["--cert", &cert()], secret_json("db", "prod").as_bytes())
        .ok();
    let ours = s
        .signet(
            &["unseal", "--recovery-private-key", backup_path],
            &sealed.stdout,
        )
        .ok();
    let theirs = s
        .kubeseal(
            &["--recovery-unseal", "--recovery-private-key", backup_path],
            &sealed.stdout,
        )
        .ok();
    assert_same_data(&parse(&ours.stdout), &parse(&theirs.stdout));
    assert_unsealed_secret(&parse(&ours.stdout), "db", "prod");
}
