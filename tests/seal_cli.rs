//! `signet seal` / `signet unseal` behaviour on their own: every damaged or misdirected SealedSecret is
//! refused with one uniform message, a non-zero exit and nothing written; file output is atomic; the
//! online flags fail clearly; plaintext never shows up in errors.

use crate::seal_support as support;

use serde_json::{Value, json};
use std::path::Path;
use support::{Ran, Scratch, b64, fixture};

const CANARY: &str = "CANARY-7d1f-plaintext";

fn key() -> String {
    fixture("kat/key.pem").display().to_string()
}

fn cert() -> String {
    fixture("kat/cert.pem").display().to_string()
}

fn secret(name: &str, namespace: &str) -> String {
    // One-byte value (envelope length 2+256+1+16 = 275, so its base64 has padding) plus the canary.
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
           "stringData": {"a": "x", "canary": CANARY}})
    .to_string()
}

fn decode_b64(text: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64"),
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| *c != b'=').map(val).collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, v)| acc | u32::from(*v) << (18 - 6 * i));
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// A SealedSecret (JSON) made by kubeseal for `prod/db`, strict scope.
fn sealed_by_kubeseal(s: &Scratch) -> Value {
    serde_json::from_slice(
        &s.kubeseal(&["--cert", &cert()], secret("db", "prod").as_bytes())
            .ok()
            .stdout,
    )
    .unwrap()
}

/// Runs `signet unseal -w out.json in.json` on `doc`; asserts it was refused and wrote nothing;
/// returns stderr.
fn refused(s: &Scratch, doc: &Value, keys: &[String], case: &str) -> String {
    let input = s.write("in.json", doc.to_string());
    let out = s.path("out.json");
    let mut args = vec![
        "unseal".to_owned(),
        "-w".to_owned(),
        out.display().to_string(),
        input.display().to_string(),
    ];
    for k in keys {
        args.extend(["--recovery-private-key".to_owned(), k.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = s.signet(&args, b"");
    assert_eq!(ran.code, Some(210), "{case}: {}", ran.stderr);
    assert!(ran.stdout.is_empty(), "{case}");
    assert!(!out.exists(), "{case}: output written");
    assert!(
        !ran.stderr.contains(CANARY) && !ran.stderr.contains(&b64(CANARY.as_bytes())),
        "{case}"
    );
    assert_eq!(s.files(), ["in.json"], "{case}: stray files");
    // Key files checked out by git are 0644, which earns a permissions warning; the error is the rest.
    ran.stderr
        .lines()
        .filter(|l| !l.starts_with("signet: warning:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn misdirected_or_damaged_sealed_secrets_are_refused_uniformly() {
    let s = Scratch::new();
    let good = sealed_by_kubeseal(&s);
    let ours = vec![key()];
    // Sanity: the untouched object opens.
    let input = s.write("in.json", good.to_string());
    s.signet(
        &[
            "unseal",
            "--recovery-private-key",
            &key(),
            input.to_str().unwrap(),
        ],
        b"",
    )
    .ok();
    std::fs::remove_file(&input).unwrap();

    let mut cases: Vec<(String, Value, Vec<String>)> = Vec::new();
    let mut with = |name: &str, f: &dyn Fn(&mut Value)| {
        let mut doc = good.clone();
        f(&mut doc);
        cases.push((name.to_owned(), doc, ours.clone()));
    };
    with("wrong scope: namespace-wide", &|d| {
        d["metadata"]["annotations"] = json!({"sealedsecrets.bitnami.com/namespace-wide": "true"})
    });
    with("wrong scope: cluster-wide", &|d| {
        d["metadata"]["annotations"] = json!({"sealedsecrets.bitnami.com/cluster-wide": "true"})
    });
    with("renamed", &|d| d["metadata"]["name"] = json!("db2"));
    with("other namespace", &|d| {
        d["metadata"]["namespace"] = json!("dev")
    });
    let value = good["spec"]["encryptedData"]["a"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes = decode_b64(&value);
    assert_eq!(bytes.len(), 275);
    for (what, pos) in [
        ("length prefix", 0),
        ("length prefix low byte", 1),
        ("RSA block start", 2),
        ("RSA block middle", 130),
        ("RSA block end", 257),
        ("GCM body", 258),
        ("GCM tag", 265),
        ("last byte", 274),
    ] {
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0x01;
        let text = b64(&damaged);
        with(&format!("flipped bit: {what}"), &|d| {
            d["spec"]["encryptedData"]["a"] = json!(text)
        });
    }
    for keep in [0, 2, 200, 258, 274] {
        let text = b64(&bytes[..keep]);
        with(&format!("truncated to {keep} bytes"), &|d| {
            d["spec"]["encryptedData"]["a"] = json!(text)
        });
    }
    let url_safe = value.replace('+', "-").replace('/', "_");
    assert_ne!(url_safe, value, "value has + or /");
    with("URL-safe base64", &|d| {
        d["spec"]["encryptedData"]["a"] = json!(url_safe)
    });
    let unpadded = value.trim_end_matches('=').to_owned();
    assert_ne!(unpadded, value, "value is padded");
    with("unpadded base64", &|d| {
        d["spec"]["encryptedData"]["a"] = json!(unpadded)
    });
    with("not base64 at all", &|d| {
        d["spec"]["encryptedData"]["a"] = json!("*** not base64 ***")
    });
    let other_key = fixture("other-key.pem").display().to_string();
    cases.push(("wrong key".to_owned(), good.clone(), vec![other_key]));

    let mut messages = std::collections::BTreeSet::new();
    for (case, doc, keys) in &cases {
        messages.insert(refused(&s, doc, keys, case));
        std::fs::remove_file(s.path("in.json")).unwrap();
    }
    assert_eq!(messages.len(), 1, "messages differ: {messages:#?}");
    let message = messages.into_iter().next().unwrap();
    assert!(message.contains("cannot unseal"), "{message}");
    assert_eq!(cases.len(), 21);
}

#[test]
fn kubeseal_agrees_that_the_misdirected_ones_are_refused() {
    let s = Scratch::new();
    let good = sealed_by_kubeseal(&s);
    for (field, value) in [("name", "db2"), ("namespace", "dev")] {
        let mut doc = good.clone();
        doc["metadata"][field] = json!(value);
        let ran = s.kubeseal(
            &["--recovery-unseal", "--recovery-private-key", &key()],
            doc.to_string().as_bytes(),
        );
        assert_ne!(
            ran.code,
            Some(0),
            "kubeseal opened a {field}-changed object"
        );
    }
}

#[test]
fn seal_writes_atomically_and_failures_write_nothing() {
    let s = Scratch::new();
    let input = s.write("secret.json", secret("db", "prod"));
    s.signet(
        &[
            "seal",
            "--cert",
            &cert(),
            "-w",
            "sealed.json",
            input.to_str().unwrap(),
        ],
        b"",
    )
    .ok();
    assert_eq!(s.files(), ["sealed.json", "secret.json"]);
    let sealed = std::fs::read_to_string(s.path("sealed.json")).unwrap();
    assert!(!sealed.contains(CANARY) && !sealed.contains(&b64(CANARY.as_bytes())));
    assert!(
        sealed.starts_with(
            "{\n  \"kind\": \"SealedSecret\",\n  \"apiVersion\": \"bitnami.com/v1alpha1\","
        ),
        "{sealed}"
    );

    // Expired certificate: exit 213, nothing written.
    let expired = fixture("expired-cert.pem").display().to_string();
    let ran = s.signet(
        &[
            "seal",
            "--cert",
            &expired,
            "-w",
            "x.json",
            input.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(ran.code, Some(213), "{}", ran.stderr);
    assert!(ran.stderr.contains("expired"), "{}", ran.stderr);
    // Not a Secret, and a Secret without data.
    let ran = s.signet(
        &["seal", "--cert", &cert(), "-w", "x.json"],
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ns1}\n",
    );
    assert_eq!(ran.code, Some(214), "{}", ran.stderr);
    let empty = b"apiVersion: v1\nkind: Secret\nmetadata: {name: e, namespace: ns1}\n";
    let ran = s.signet(&["seal", "--cert", &cert(), "-w", "x.json"], empty);
    assert_eq!(ran.code, Some(214), "{}", ran.stderr);
    assert!(ran.stderr.contains("--allow-empty-data"));
    // No namespace anywhere (strict scope needs one) — kubeseal refuses too.
    let ran = s.signet(
        &["seal", "--cert", &cert(), "-w", "x.json"],
        b"kind: Secret\nmetadata: {name: e}\nstringData: {a: b}\n",
    );
    assert_ne!(ran.code, Some(0));
    assert_eq!(s.files(), ["sealed.json", "secret.json"]);

    let ran = s
        .signet(&["seal", "--cert", &cert(), "--allow-empty-data"], empty)
        .ok();
    let doc: Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(doc["spec"]["encryptedData"], json!({}));
    let ran = s
        .signet(
            &["seal", "--cert", &cert(), "-n", "given"],
            b"kind: Secret\nmetadata: {name: e}\nstringData: {a: b}\n",
        )
        .ok();
    assert_eq!(
        serde_json::from_slice::<Value>(&ran.stdout).unwrap()["metadata"]["namespace"],
        "given"
    );
}

#[test]
fn merge_into_adds_and_replaces_items_in_place() {
    let s = Scratch::new();
    let first = s
        .signet(
            &[
                "seal",
                "--cert",
                &cert(),
                "-o",
                "yaml",
                "--scope",
                "namespace-wide",
            ],
            secret("db", "prod").as_bytes(),
        )
        .ok();
    let target = s.write("sealed.yaml", &first.stdout);
    let before = first.text();
    let extra = r#"{"kind":"Secret","metadata":{"name":"other","namespace":"elsewhere"},"stringData":{"a":"replaced","new":"added"}}"#;
    s.signet(
        &[
            "seal",
            "--cert",
            &cert(),
            "--merge-into",
            target.to_str().unwrap(),
        ],
        extra.as_bytes(),
    )
    .ok();
    let after = std::fs::read_to_string(&target).unwrap();
    let canary_line = |t: &str| {
        t.lines()
            .find(|l| l.trim_start().starts_with("canary:"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        canary_line(&before),
        canary_line(&after),
        "untouched items keep their ciphertext"
    );
    assert!(after.contains("sealedsecrets.bitnami.com/namespace-wide"));
    assert_eq!(s.files(), ["sealed.yaml"]);
    let out = s
        .kubeseal(
            &["--recovery-unseal", "--recovery-private-key", &key()],
            after.as_bytes(),
        )
        .ok();
    let data = &serde_json::from_slice::<Value>(&out.stdout).unwrap()["data"];
    assert_eq!(data["a"].as_str(), Some(b64(b"replaced").as_str()));
    assert_eq!(data["new"].as_str(), Some(b64(b"added").as_str()));
    assert_eq!(
        data["canary"].as_str(),
        Some(b64(CANARY.as_bytes()).as_str())
    );
}

#[test]
fn online_flags_without_a_kubeconfig_fail_clearly() {
    // `Scratch` points KUBECONFIG at a missing file: the service-proxy route (the default without
    // --cert and --controller-url) has no cluster to ask.
    let s = Scratch::new();
    for flag in [
        &["--fetch-cert"][..],
        &["--validate"],
        &["--re-encrypt"],
        &["--controller-name", "sealed-secrets-controller"],
        &[],
    ] {
        let mut args = vec!["seal"];
        args.extend_from_slice(flag);
        let ran = s.signet(&args, secret("db", "prod").as_bytes());
        assert_eq!(ran.code, Some(212), "{flag:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("Kubernetes configuration")
                && ran.stderr.contains("kube-system/sealed-secrets-controller")
                && ran.stderr.contains("--cert")
                && ran.stderr.contains("--controller-url"),
            "{flag:?}: {}",
            ran.stderr
        );
        assert!(!ran.stderr.contains(CANARY));
    }
    // --cert overrides the controller: --fetch-cert prints that certificate, like kubeseal.
    let ran = s.signet(&["seal", "--cert", &cert(), "--fetch-cert"], b"");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(ran.stdout, std::fs::read(cert()).unwrap());
    // A controller that does not answer is named in the error.
    let ran = s.signet(
        &[
            "seal",
            "--controller-url",
            "http://127.0.0.1:1",
            "--fetch-cert",
        ],
        b"",
    );
    assert_ne!(ran.code, Some(0));
    assert!(ran.stderr.contains("127.0.0.1:1"), "{}", ran.stderr);
}

#[test]
fn raw_needs_exactly_one_source_and_its_scope_fields() {
    let s = Scratch::new();
    let f = s.write("v.txt", "value");
    let f = f.to_str().unwrap();
    let ran = s.signet(
        &[
            "seal",
            "--cert",
            &cert(),
            "--raw",
            "--from-file",
            f,
            "-n",
            "prod",
        ],
        b"",
    );
    assert_ne!(ran.code, Some(0), "strict needs --name");
    assert!(ran.stderr.contains("name"), "{}", ran.stderr);
    let ran = s.signet(
        &[
            "seal",
            "--cert",
            &cert(),
            "--raw",
            "--scope",
            "cluster-wide",
        ],
        b"",
    );
    assert_ne!(ran.code, Some(0), "needs --from-file");
    let ok = s
        .signet(
            &[
                "seal",
                "--cert",
                &cert(),
                "--raw",
                "--scope",
                "namespace-wide",
                "-n",
                "prod",
                "--from-file",
                f,
            ],
            b"",
        )
        .ok();
    assert_eq!(decode_b64(&ok.text()).len(), 2 + 256 + 5 + 16);
}

/// Serves `body` once over HTTP on a loopback port; returns the URL.
fn serve_once(body: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/cert.pem", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    url
}

#[test]
fn cert_can_come_from_a_url() {
    let s = Scratch::new();
    let url = serve_once(std::fs::read(fixture("kat/cert.pem")).unwrap());
    let sealed = s
        .signet(&["seal", "--cert", &url], secret("db", "prod").as_bytes())
        .ok();
    let out = s
        .kubeseal(
            &["--recovery-unseal", "--recovery-private-key", &key()],
            &sealed.stdout,
        )
        .ok();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["data"]["canary"].as_str(),
        Some(b64(CANARY.as_bytes()).as_str())
    );
    // A URL that serves nothing usable fails with a clear message, writing nothing.
    let url = serve_once(b"not a certificate".to_vec());
    let ran = s.signet(
        &["seal", "--cert", &url, "-w", "x.json"],
        secret("db", "prod").as_bytes(),
    );
    assert_eq!(ran.code, Some(213), "{}", ran.stderr);
    assert!(s.files().is_empty());
}

#[test]
fn malformed_input_errors_never_echo_the_input() {
    let s = Scratch::new();
    let inputs = [
        format!(
            "kind: Secret\nmetadata: {{name: a, namespace: ns1}}\nstringData:\n  pw: {CANARY}: [x\n"
        ),
        format!(
            "kind: Secret\nmetadata: {{name: a, namespace: ns1}}\nstringData:\n  pw: [{CANARY}]\n"
        ),
        format!("{{\"kind\": \"Secret\", \"stringData\": {{\"pw\": \"{CANARY}\"}}, oops}}"),
        format!("kind: {CANARY}\n"),
    ];
    for input in &inputs {
        let ran = s.signet(&["seal", "--cert", &cert()], input.as_bytes());
        assert_eq!(ran.code, Some(214), "{}", ran.stderr);
        assert!(!ran.stderr.contains("CANARY"), "{}", ran.stderr);
        assert!(ran.stdout.is_empty());
    }
    let bad_backup = s.write(
        "backup.yaml",
        format!("kind: Secret\ndata:\n  tls.key: {CANARY}: [\n"),
    );
    let ran = s.signet(
        &[
            "unseal",
            "--recovery-private-key",
            bad_backup.to_str().unwrap(),
        ],
        b"",
    );
    assert_ne!(ran.code, Some(0));
    assert!(!ran.stderr.contains("CANARY"), "{}", ran.stderr);
}

/// `signet reseal`: offline re-sealing to a new certificate with the old private key; the result
/// opens with the new key only (signet and kubeseal agree), and a file the keys cannot open is
/// reported and left unchanged while the others are still done.
#[test]
fn reseal_moves_sealed_secrets_to_a_new_certificate_offline() {
    let s = Scratch::new();
    let new_key = s.path("new.key").display().to_string();
    let new_cert = s.path("new.crt").display().to_string();
    s.signet(
        &[
            "keys",
            "new-sealing-key",
            "--bits",
            "2048",
            "--key-out",
            &new_key,
            "--cert-out",
            &new_cert,
        ],
        b"",
    )
    .ok();
    let sealed = s
        .signet(
            &["seal", "--cert", &cert()],
            secret("db", "prod").as_bytes(),
        )
        .ok()
        .stdout;
    let json_file = s.write("sealed.json", &sealed);
    let yaml = s
        .signet(
            &["seal", "--cert", &cert(), "-o", "yaml"],
            secret("db", "prod").as_bytes(),
        )
        .ok()
        .stdout;
    let yaml_file = s.write("sealed.yaml", &yaml);
    // Sealed to the new certificate already: the old key cannot open it.
    let foreign = s
        .signet(
            &["seal", "--cert", &new_cert],
            secret("x", "prod").as_bytes(),
        )
        .ok()
        .stdout;
    let foreign_file = s.write("foreign.json", &foreign);
    let (j, y, f) = (
        json_file.display().to_string(),
        yaml_file.display().to_string(),
        foreign_file.display().to_string(),
    );
    let ran = s.signet(
        &[
            "reseal",
            "--cert",
            &new_cert,
            "--recovery-private-key",
            &key(),
            &j,
            &f,
            &y,
        ],
        b"",
    );
    assert_eq!(ran.code, Some(210), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("foreign.json") && !ran.stderr.contains(CANARY),
        "{}",
        ran.stderr
    );
    assert_eq!(
        std::fs::read(&foreign_file).unwrap(),
        foreign,
        "the failed file is untouched"
    );
    let resealed_json = std::fs::read(&json_file).unwrap();
    assert_ne!(resealed_json, sealed);
    assert!(resealed_json.starts_with(b"{"), "JSON stays JSON");
    assert!(
        !std::fs::read(&yaml_file).unwrap().starts_with(b"{"),
        "YAML stays YAML"
    );
    for file in [&j, &y] {
        let opened = s
            .signet(&["unseal", "--recovery-private-key", &new_key, file], b"")
            .ok()
            .text();
        assert!(opened.contains(&b64(CANARY.as_bytes())), "{opened}");
        let old = s.signet(&["unseal", "--recovery-private-key", &key(), file], b"");
        assert_eq!(old.code, Some(210), "the old key no longer opens {file}");
    }
    let by_kubeseal = s
        .kubeseal(
            &[
                "--recovery-unseal",
                "--recovery-private-key",
                &new_key,
                "-o",
                "json",
            ],
            &resealed_json,
        )
        .ok()
        .text();
    assert!(
        by_kubeseal.contains(&b64(CANARY.as_bytes())),
        "{by_kubeseal}"
    );
}

/// Runs `signet args` in `s` with `stdin`, PATH replaced by an empty directory (no `curl`, nothing
/// else either) and `env` added.
fn signet_without_path(s: &Scratch, args: &[&str], stdin: &[u8], env: &[(&str, &Path)]) -> Ran {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let empty = s.path("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let mut child = Command::new(support::signet())
        .args(args)
        .current_dir(s.path(""))
        .env_clear()
        .env("PATH", &empty)
        .env("KUBECONFIG", s.path("no-kubeconfig"))
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap().into()
}

/// `--cert URL` is fetched by signet itself (no `curl` on PATH), and a plain-http URL is warned
/// about: whoever is on the path could hand over their own certificate.
#[test]
fn a_cert_url_is_fetched_without_curl_and_plain_http_is_warned_about() {
    let s = Scratch::new();
    let url = serve_once(std::fs::read(fixture("kat/cert.pem")).unwrap());
    let ran = signet_without_path(
        &s,
        &["seal", "--cert", &url],
        secret("db", "prod").as_bytes(),
        &[],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let sealed: Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(sealed["kind"], "SealedSecret");
    assert!(
        ran.stderr.contains("warning")
            && ran.stderr.contains("plain http")
            && ran.stderr.contains(&url),
        "{}",
        ran.stderr
    );
    // A file certificate draws no warning.
    let ran = signet_without_path(
        &s,
        &["seal", "--cert", &cert()],
        secret("db", "prod").as_bytes(),
        &[],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stderr.is_empty(), "{}", ran.stderr);
}

/// An answer larger than any certificate is refused without being read to its end, and nothing is
/// written.
#[test]
fn an_oversized_cert_answer_is_cut_off() {
    let s = Scratch::new();
    let url = serve_once(vec![b'x'; 2 << 20]);
    let ran = s.signet(
        &["seal", "--cert", &url, "-w", "x.json"],
        secret("db", "prod").as_bytes(),
    );
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("larger than 1048576 bytes"),
        "{}",
        ran.stderr
    );
    assert!(s.files().is_empty(), "{:?}", s.files());
}

/// `openssl s_server -WWW` serving `dir` over TLS on `port` with `cert`/`key`; killed when dropped.
struct TlsServer(std::process::Child);

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl TlsServer {
    fn start(openssl: &Path, dir: &Path, port: u16, cert: &Path, key: &Path) -> TlsServer {
        let child = std::process::Command::new(openssl)
            .args(["s_server", "-WWW", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let server = TlsServer(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "openssl s_server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }
}

/// An https certificate URL is verified against the system's roots: a self-signed server is refused
/// (exit 2, nothing written) until its certificate is trusted (here through `SSL_CERT_FILE`, which
/// the system-roots loader reads), and https draws no plain-http warning.
#[test]
fn an_https_cert_url_with_a_self_signed_certificate_is_refused_unless_trusted() {
    let s = Scratch::new();
    let openssl = support::peer("openssl");
    let (tls_key, tls_cert) = (s.path("tls.key"), s.path("tls.crt"));
    let made = std::process::Command::new(&openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=signet-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&tls_key)
        .arg("-out")
        .arg(&tls_cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let www = s.path("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::copy(fixture("kat/cert.pem"), www.join("cert.pem")).unwrap();
    let port = signet_testkit::free_port().unwrap();
    let _server = TlsServer::start(&openssl, &www, port, &tls_cert, &tls_key);
    let url = format!("https://127.0.0.1:{port}/cert.pem");

    let refused = s.signet(
        &["seal", "--cert", &url, "-w", "x.json"],
        secret("db", "prod").as_bytes(),
    );
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&url) && refused.stderr.contains("certificate"),
        "{}",
        refused.stderr
    );
    assert!(!s.path("x.json").exists());

    let trusted = signet_without_path(
        &s,
        &["seal", "--cert", &url],
        secret("db", "prod").as_bytes(),
        &[("SSL_CERT_FILE", &tls_cert)],
    );
    assert_eq!(trusted.code, Some(0), "{}", trusted.stderr);
    assert!(trusted.stderr.is_empty(), "{}", trusted.stderr);
    let opened = s
        .kubeseal(
            &["--recovery-unseal", "--recovery-private-key", &key()],
            &trusted.stdout,
        )
        .ok();
    let doc: Value = serde_json::from_slice(&opened.stdout).unwrap();
    assert_eq!(
        doc["data"]["canary"].as_str(),
        Some(b64(CANARY.as_bytes()).as_str())
    );
}
