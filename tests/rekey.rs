//! `signet rekey` on a generated repository: sops files in every store under several `.sops.yaml`
//! rules (made by signet and by upstream sops), SealedSecret files (single and multi-document, made
//! by signet and by kubeseal) sealed to an old and a new certificate, an ignored stale file and an
//! unrelated YAML. `--check` must name exactly the stale files and why; `rekey` must fix them with
//! values untouched (updatekeys) or all re-encrypted (`--rotate`); upstream sops and kubeseal must
//! open the results with the new keys only. Also: one broken file among good ones, and SIGKILL in
//! the middle of a run.

use serde_json::Value;
use signet_tests::sandbox::{Sandbox, peer};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Plaintext planted in every secret; must never show up in output or in a file on disk.
const CANARY: &str = "canary-8d1e5f";

/// Runs `cmd` with `stdin` and returns its output.
fn run_with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[track_caller]
fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An age identity made by `signet keygen`: (key file, recipient).
fn age_identity(sb: &Sandbox, file: &str) -> (PathBuf, String) {
    sb.signet(["keygen", "-o", file]).ok();
    let text = String::from_utf8(sb.read(file)).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_owned();
    (sb.join(file), recipient)
}

/// A sealing key pair: (private key, certificate).
fn sealing_key(sb: &Sandbox, name: &str) -> (String, String) {
    let (key, cert) = (format!("{name}.key"), format!("{name}.crt"));
    sb.signet([
        "keys",
        "new-sealing-key",
        "--bits",
        "2048",
        "--key-out",
        &key,
        "--cert-out",
        &cert,
    ])
    .ok();
    (
        sb.join(&key).display().to_string(),
        sb.join(&cert).display().to_string(),
    )
}

/// Hex SHA-256 of a certificate's public key: the fingerprint rekey reports.
fn fingerprint(cert: &str) -> String {
    use sha2::Digest;
    let cert = signet_seal::SealingCertificate::from_pem(&std::fs::read(cert).unwrap()).unwrap();
    sha2::Sha256::digest(cert.public_key_der())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn secret_json(name: &str) -> String {
    serde_json::json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "prod"},
        "stringData": {"password": format!("{CANARY}-{name}"), "user": "admin"}})
    .to_string()
}

/// Every `ENC[…]` string of a file, in order.
fn enc_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("ENC[") {
        let end = rest[start..].find(']').expect("closing bracket") + start + 1;
        out.push(rest[start..end].to_owned());
        rest = &rest[end..];
    }
    out
}

/// Every file below `dir` (relative, `/`-separated) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn visit(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(dir, dir, &mut out);
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The JSON report of `signet rekey ARGS --output json` run in `dir`: exit code and
/// path -> (status, reasons).
fn rekey_json(sb: &Sandbox, dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut cmd = sb.command(signet_tests::sandbox::signet_bin());
    cmd.current_dir(dir)
        .arg("rekey")
        .args(args)
        .args(["--output", "json"]);
    let out = run_with_stdin(cmd, b"");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stdout.contains(CANARY) && !stderr.contains(CANARY),
        "plaintext in rekey output"
    );
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("rekey --output json is not JSON ({e}): {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), report)
}

fn by_path(report: &Value) -> BTreeMap<String, (String, Vec<String>)> {
    report["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                (
                    f["status"].as_str().unwrap().to_owned(),
                    f["reasons"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_owned())
                        .collect(),
                ),
            )
        })
        .collect()
}

fn with_status(report: &Value, status: &str) -> BTreeSet<String> {
    by_path(report)
        .into_iter()
        .filter(|(_, (s, _))| s == status)
        .map(|(p, _)| p)
        .collect()
}

/// Decrypts `file` (in `dir`) with upstream sops using only the identity in `key`.
fn sops_decrypt(sb: &Sandbox, dir: &Path, key: &Path, file: &str) -> Output {
    let mut cmd = sb.command(peer("sops"));
    cmd.current_dir(dir).env("SOPS_AGE_KEY_FILE", key).args([
        "--disable-version-check",
        "-d",
        file,
    ]);
    run_with_stdin(cmd, b"")
}

/// The fixture repository.
struct Fixture {
    sb: Sandbox,
    repo: PathBuf,
    /// Identities: `a` is removed from the rules, `b` stays, `c` is added.
    a: (PathBuf, String),
    b: (PathBuf, String),
    c: (PathBuf, String),
    old_seal: (String, String),
    new_seal: (String, String),
    /// Plaintext of every sops file, by path.
    plain: BTreeMap<String, Vec<u8>>,
}

/// sops files: (path, plaintext, made by upstream sops?). `apps/` and `misc/` fall under rules
/// that change; `infra/` and `team/` (own nested `.sops.yaml`) under rules that do not.
fn sops_files() -> Vec<(&'static str, String, bool)> {
    vec![
        (
            "apps/db.yaml",
            format!("# database\nuser: admin\npassword: {CANARY}-db\nport: 5432\n"),
            false,
        ),
        (
            "apps/api.json",
            format!("{{\n\t\"token\": \"{CANARY}-api\",\n\t\"retries\": 3\n}}\n"),
            true,
        ),
        (
            "apps/app.env",
            format!("API_KEY={CANARY}-env\nMODE=prod\n"),
            false,
        ),
        (
            "apps/app.ini",
            format!("[db]\npassword = {CANARY}-ini\nhostname = db.local\n"),
            true,
        ),
        ("apps/blob.bin", format!("raw bytes {CANARY}-bin\n"), false),
        (
            "apps/tls.key",
            format!("-----{CANARY}-sops-binary-----\n"),
            true,
        ),
        (
            "apps/multi.yaml",
            format!("a: {CANARY}-m1\n---\nb: {CANARY}-m2\n"),
            false,
        ),
        ("misc/other.yaml", format!("k: {CANARY}-misc\n"), true),
        ("infra/net.yaml", format!("vpn: {CANARY}-infra\n"), false),
        ("infra/net.env", format!("VPN={CANARY}-infra-env\n"), true),
        (
            "team/t.json",
            format!("{{\n\t\"t\": \"{CANARY}-team\"\n}}\n"),
            false,
        ),
        (
            "ignored/stale.yaml",
            format!("never: {CANARY}-ignored\n"),
            false,
        ),
    ]
}

impl Fixture {
    fn new() -> Fixture {
        let mut sb = Sandbox::new();
        let a = age_identity(&sb, "a.agekey");
        let b = age_identity(&sb, "b.agekey");
        let c = age_identity(&sb, "c.agekey");
        let old_seal = sealing_key(&sb, "old");
        let new_seal = sealing_key(&sb, "new");
        let repo = sb.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let mut plain = BTreeMap::new();
        // Encrypt before any .sops.yaml exists, with explicit recipients: apps/, misc/ and ignored/
        // to a+b (and misc to a alone), infra/ and team/ to b.
        for (path, text, by_sops) in sops_files() {
            let recipients = match path.split('/').next().unwrap() {
                "apps" | "ignored" => format!("{},{}", a.1, b.1),
                "misc" => a.1.clone(),
                _ => b.1.clone(),
            };
            let file = repo.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &text).unwrap();
            plain.insert(path.to_owned(), text.into_bytes());
            let program = if by_sops {
                peer("sops")
            } else {
                signet_tests::sandbox::signet_bin().to_path_buf()
            };
            let mut cmd = sb.command(program);
            cmd.current_dir(&repo);
            if by_sops {
                cmd.arg("--disable-version-check");
            }
            cmd.args(["encrypt", "--age", &recipients, "-i", path]);
            ok(run_with_stdin(cmd, b""), &format!("encrypting {path}"));
        }
        // SealedSecrets: old certificate (signet YAML, kubeseal JSON), a multi-document file
        // mixing a ConfigMap, an old and a new one, and one already on the new certificate.
        let seal = |cert: &str, name: &str, yaml: bool, kubeseal: bool| -> Vec<u8> {
            let mut cmd = if kubeseal {
                let mut c = sb.command(peer("kubeseal"));
                c.args([
                    "--cert",
                    cert,
                    "--format",
                    if yaml { "yaml" } else { "json" },
                ]);
                c
            } else {
                let mut c = sb.command(signet_tests::sandbox::signet_bin());
                c.args([
                    "seal",
                    "--cert",
                    cert,
                    "-o",
                    if yaml { "yaml" } else { "json" },
                ]);
                c
            };
            cmd.current_dir(&repo);
            ok(run_with_stdin(cmd, secret_json(name).as_bytes()), "sealing")
        };
        std::fs::create_dir_all(repo.join("sealed")).unwrap();
        std::fs::write(
            repo.join("sealed/single.yaml"),
            seal(&old_seal.1, "single", true, false),
        )
        .unwrap();
        std::fs::write(
            repo.join("sealed/kubeseal.json"),
            seal(&old_seal.1, "by-kubeseal", false, true),
        )
        .unwrap();
        let mut multi = b"# app bundle\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings   # kept\ndata: {mode: 'prod'}\n".to_vec();
        for part in [
            seal(&old_seal.1, "multi-old", true, false),
            seal(&new_seal.1, "multi-new", true, true),
        ] {
            if !part.starts_with(b"---") {
                multi.extend_from_slice(b"---\n");
            }
            multi.extend_from_slice(&part);
        }
        std::fs::write(repo.join("sealed/multi.yaml"), multi).unwrap();
        std::fs::write(
            repo.join("sealed/current.yaml"),
            seal(&new_seal.1, "current", true, true),
        )
        .unwrap();
        // Not secrets: an unrelated YAML that mentions sops, and an ignored stale file.
        std::fs::write(
            repo.join("unrelated.yaml"),
            "# deploy notes: secrets use sops and SealedSecret\nreplicas: 3\n",
        )
        .unwrap();
        std::fs::write(repo.join(".gitignore"), "ignored/\n").unwrap();
        // The rules as they were when the files were made.
        Fixture::write_rules(&repo, &a.1, &b.1, &a.1);
        // The operator's identities: the old key `a` (being retired) and `b`.
        let mut both = sb.read("a.agekey");
        both.extend(sb.read("b.agekey"));
        let both = sb.write("ab.agekey", both);
        sb.env("SOPS_AGE_KEY_FILE", &both);
        Fixture {
            sb,
            repo,
            a,
            b,
            c,
            old_seal,
            new_seal,
            plain,
        }
    }

    /// `.sops.yaml` at the root: apps/ and ignored/ to `apps1`+b, misc/ (catch-all) to `misc`,
    /// infra/ to b; team/ has its own, to b.
    fn write_rules(repo: &Path, apps1: &str, b: &str, misc: &str) {
        std::fs::write(
            repo.join(".sops.yaml"),
            format!(
                "creation_rules:\n  - path_regex: ^(apps|ignored)/\n    age: {apps1},{b}\n  \
                 - path_regex: ^infra/\n    age: {b}\n  - age: {misc}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            repo.join("team/.sops.yaml"),
            format!("creation_rules:\n  - age: {b}\n"),
        )
        .unwrap();
    }

    /// Remove `a`, add `c`.
    fn change_rules(&self) {
        Fixture::write_rules(&self.repo, &self.c.1, &self.b.1, &self.c.1);
    }

    fn seal_args(&self) -> Vec<String> {
        vec![
            "--cert".into(),
            self.new_seal.1.clone(),
            "--recovery-private-key".into(),
            self.old_seal.0.clone(),
            "--recovery-private-key".into(),
            self.new_seal.0.clone(),
        ]
    }

    fn rekey(&self, args: &[&str]) -> (i32, Value) {
        let seal = self.seal_args();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(seal.iter().map(String::as_str));
        rekey_json(&self.sb, &self.repo, &all)
    }

    fn read(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.repo.join(path)).unwrap()
    }

    /// Asserts that upstream sops opens every changed-rule sops file with `c` alone (giving the
    /// original plaintext back) and no longer with `a`.
    fn assert_new_identity_only(&self) {
        for (path, text) in &self.plain {
            if !(path.starts_with("apps/") || path.starts_with("misc/")) {
                continue;
            }
            let out = sops_decrypt(&self.sb, &self.repo, &self.c.0, path);
            assert_eq!(
                String::from_utf8_lossy(&ok(out, &format!("sops -d {path} with the new key"))),
                String::from_utf8_lossy(text),
                "{path}: values unchanged"
            );
            let old = sops_decrypt(&self.sb, &self.repo, &self.a.0, path);
            assert!(
                !old.status.success(),
                "{path}: the removed identity still opens it"
            );
        }
    }
}

const APPS: [&str; 7] = [
    "apps/api.json",
    "apps/app.env",
    "apps/app.ini",
    "apps/blob.bin",
    "apps/db.yaml",
    "apps/multi.yaml",
    "apps/tls.key",
];

#[test]
fn check_lists_exactly_the_stale_files_and_rekey_fixes_them() {
    let mut fx = Fixture::new();
    let (old_fp, new_fp) = (fingerprint(&fx.old_seal.1), fingerprint(&fx.new_seal.1));

    // Before the rules change: every sops file is current; without a certificate the SealedSecrets
    // are unchecked, not current.
    let (code, report) = rekey_json(&fx.sb, &fx.repo, &["--check"]);
    assert_eq!(code, 0, "{report:#}");
    let sealed: BTreeSet<String> = [
        "sealed/current.yaml",
        "sealed/kubeseal.json",
        "sealed/multi.yaml",
        "sealed/single.yaml",
    ]
    .map(String::from)
    .into();
    assert_eq!(with_status(&report, "unchecked"), sealed, "{report:#}");
    for (_, reasons) in by_path(&report).values().filter(|(s, _)| s == "unchecked") {
        assert!(reasons[0].contains("--cert"), "{reasons:?}");
    }
    let sops_paths: BTreeSet<String> = fx
        .plain
        .keys()
        .filter(|p| !p.starts_with("ignored/"))
        .cloned()
        .collect();
    assert_eq!(with_status(&report, "current"), sops_paths, "{report:#}");
    assert_eq!(report["summary"]["files"], 15);
    // .sops.yaml x2, .gitignore, unrelated.yaml: read and ignored; ignored/ never walked.
    assert_eq!(report["summary"]["ignored"], 4, "{report:#}");

    // Certificate but no private keys: still unchecked, with that reason.
    let (code, report) = rekey_json(&fx.sb, &fx.repo, &["--check", "--cert", &fx.new_seal.1]);
    assert_eq!(code, 0);
    assert_eq!(with_status(&report, "unchecked"), sealed);
    assert!(
        by_path(&report)["sealed/single.yaml"].1[0].contains("--recovery-private-key"),
        "{report:#}"
    );

    fx.change_rules();
    let before = snapshot(&fx.repo);
    let (code, report) = fx.rekey(&["--check"]);
    assert_eq!(code, 211, "{report:#}");
    assert_eq!(snapshot(&fx.repo), before, "--check changes nothing");
    let mut expected_stale: BTreeSet<String> = APPS.map(String::from).into();
    expected_stale.extend(
        [
            "misc/other.yaml",
            "sealed/kubeseal.json",
            "sealed/multi.yaml",
            "sealed/single.yaml",
        ]
        .map(String::from),
    );
    assert_eq!(with_status(&report, "stale"), expected_stale, "{report:#}");
    let current: BTreeSet<String> = [
        "infra/net.env",
        "infra/net.yaml",
        "team/t.json",
        "sealed/current.yaml",
    ]
    .map(String::from)
    .into();
    assert_eq!(with_status(&report, "current"), current, "{report:#}");
    let files = by_path(&report);
    let (a, c) = (&fx.a.1, &fx.c.1);
    for path in APPS {
        assert_eq!(
            files[path].1,
            vec![
                format!("extra recipient {a} (group 1): no longer in the rule"),
                format!("missing recipient {c} (group 1): named by the rule"),
            ],
            "{path}"
        );
    }
    assert_eq!(files["misc/other.yaml"].1.len(), 2);
    for path in ["sealed/single.yaml", "sealed/kubeseal.json"] {
        assert_eq!(files[path].1.len(), 1, "{path}");
        assert!(
            files[path].1[0].ends_with(&format!("sealed with certificate {old_fp} not {new_fp}")),
            "{path}: {:?}",
            files[path].1
        );
    }
    assert_eq!(
        files["sealed/multi.yaml"].1,
        vec![format!(
            "SealedSecret prod/multi-old: sealed with certificate {old_fp} not {new_fp}"
        )]
    );
    for kind in ["sops", "sealed-secret"] {
        assert!(
            report["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["kind"] == kind)
        );
    }
    assert_eq!(report["summary"]["stale"], 11);

    // The text report names the same files.
    let mut cmd = fx.sb.command(signet_tests::sandbox::signet_bin());
    cmd.current_dir(&fx.repo)
        .args(["rekey", "--dry-run"])
        .args(fx.seal_args());
    let text = run_with_stdin(cmd, b"");
    assert_eq!(text.status.code(), Some(211));
    let text = String::from_utf8(text.stdout).unwrap();
    for path in &expected_stale {
        assert!(
            text.contains(&format!("stale     {path} ")),
            "{path}: {text}"
        );
    }

    // Fix.
    let (code, report) = fx.rekey(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        with_status(&report, "updated"),
        expected_stale,
        "{report:#}"
    );
    let after = snapshot(&fx.repo);
    for (path, bytes) in &before {
        let changed = after[path] != *bytes;
        assert_eq!(
            changed,
            expected_stale.contains(path),
            "{path} changed: {changed}"
        );
    }
    assert!(
        !after.keys().any(|p| p.contains(".signet-")),
        "temp files left"
    );
    for bytes in after.values() {
        assert!(!contains(bytes, CANARY), "plaintext on disk");
    }
    // updatekeys: every ENC[] string (values, comments, MAC) is byte-identical.
    for path in APPS.iter().chain(&["misc/other.yaml"]) {
        let (old, new) = (
            String::from_utf8_lossy(&before[*path]).into_owned(),
            String::from_utf8_lossy(&after[*path]).into_owned(),
        );
        let (old_enc, new_enc) = (enc_strings(&old), enc_strings(&new));
        assert!(!old_enc.is_empty(), "{path}");
        assert_eq!(old_enc, new_enc, "{path}: values and MAC untouched");
        assert!(
            new.contains(c.as_str()) && !new.contains(a.as_str()),
            "{path}"
        );
    }
    fx.assert_new_identity_only();

    // SealedSecrets: the new key opens them (kubeseal agrees), the old one does not; the other
    // documents of the multi-document file keep their bytes.
    let multi = String::from_utf8(fx.read("sealed/multi.yaml")).unwrap();
    let resealed_doc = multi
        .split("\n---")
        .nth(1)
        .expect("second document")
        .to_owned();
    for (path, content) in [
        ("sealed/single.yaml", fx.read("sealed/single.yaml")),
        ("sealed/kubeseal.json", fx.read("sealed/kubeseal.json")),
        (
            "sealed/multi.yaml",
            format!("---{resealed_doc}\n").into_bytes(),
        ),
    ] {
        let mut cmd = fx.sb.command(peer("kubeseal"));
        cmd.args([
            "--recovery-unseal",
            "--recovery-private-key",
            &fx.new_seal.0,
            "--format",
            "json",
        ]);
        let opened = String::from_utf8(ok(run_with_stdin(cmd, &content), path)).unwrap();
        assert!(opened.contains("password"), "{path}: {opened}");
        let mut old = fx.sb.command(signet_tests::sandbox::signet_bin());
        old.args(["unseal", "--recovery-private-key", &fx.old_seal.0]);
        assert!(
            !run_with_stdin(old, &content).status.success(),
            "{path}: the old key still opens it"
        );
    }
    let multi_before = String::from_utf8(before["sealed/multi.yaml"].clone()).unwrap();
    let multi_after = String::from_utf8(after["sealed/multi.yaml"].clone()).unwrap();
    let docs_before: Vec<&str> = multi_before.split("\n---").collect();
    let docs_after: Vec<&str> = multi_after.split("\n---").collect();
    assert_eq!(docs_before.len(), 3);
    assert_eq!(docs_after.len(), 3);
    assert_eq!(
        docs_before[0], docs_after[0],
        "the ConfigMap keeps its bytes"
    );
    assert_eq!(
        docs_before[2], docs_after[2],
        "the current SealedSecret keeps its bytes"
    );
    assert_ne!(docs_before[1], docs_after[1]);
    assert!(
        serde_json::from_slice::<Value>(&after["sealed/kubeseal.json"]).is_ok(),
        "JSON stays JSON"
    );

    // Nothing is stale any more.
    let (code, report) = fx.rekey(&["--check"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(with_status(&report, "stale"), BTreeSet::new());
    assert_eq!(report["summary"]["current"], 15);

    // --rotate: every sops file (rules unchanged or not) gets a new data key: every ENC[] string
    // changes, the values do not.
    // The old key `a` is gone now: the operator uses b and c.
    let mut bc = fx.sb.read("b.agekey");
    bc.extend(fx.sb.read("c.agekey"));
    let bc = fx.sb.write("bc.agekey", bc);
    fx.sb.env("SOPS_AGE_KEY_FILE", &bc);
    let before_rotate = snapshot(&fx.repo);
    let (code, report) = fx.rekey(&["--rotate"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(with_status(&report, "updated"), sops_paths, "{report:#}");
    for path in &sops_paths {
        let old = String::from_utf8_lossy(&before_rotate[path]).into_owned();
        let new = String::from_utf8(fx.read(path)).unwrap();
        let old_enc: BTreeSet<String> = enc_strings(&old).into_iter().collect();
        for value in enc_strings(&new) {
            assert!(
                !old_enc.contains(&value),
                "{path}: {value} not re-encrypted"
            );
        }
        let key = if path.starts_with("apps/") || path.starts_with("misc/") {
            &fx.c.0
        } else {
            &fx.b.0
        };
        let out = sops_decrypt(&fx.sb, &fx.repo, key, path);
        assert_eq!(
            ok(out, &format!("sops -d {path} after --rotate")),
            fx.plain[path],
            "{path}"
        );
    }
    assert_eq!(fx.read("ignored/stale.yaml"), before["ignored/stale.yaml"]);
    fx.assert_new_identity_only();
    let (code, _) = fx.rekey(&["--check"]);
    assert_eq!(code, 0);
}

#[test]
fn one_broken_file_is_reported_and_the_others_are_still_fixed() {
    let mut sb = Sandbox::new();
    let (a_key, a) = age_identity(&sb, "a.agekey");
    let (_, b) = age_identity(&sb, "b.agekey");
    let (_, stranger) = age_identity(&sb, "stranger.agekey");
    for i in 0..6 {
        sb.write(
            &format!("repo/s{i}.yaml"),
            format!("user: u{i}\npassword: {CANARY}-{i}\n"),
        );
        let recipients = if i == 5 { stranger.clone() } else { a.clone() };
        sb.signet([
            "encrypt",
            "--age",
            &recipients,
            "-i",
            &format!("repo/s{i}.yaml"),
        ])
        .ok();
    }
    // s0: a value removed, so the MAC no longer matches; s5: no identity here opens it.
    let s0 = String::from_utf8(sb.read("repo/s0.yaml")).unwrap();
    let broken: String = s0
        .lines()
        .filter(|l| !l.starts_with("user:"))
        .map(|l| format!("{l}\n"))
        .collect();
    sb.write("repo/s0.yaml", &broken);
    sb.write(
        "repo/.sops.yaml",
        format!("creation_rules:\n  - age: {a},{b}\n"),
    );
    sb.env("SOPS_AGE_KEY_FILE", &a_key);
    use std::os::unix::fs::PermissionsExt;
    let mode_of = |name: &str| {
        std::fs::metadata(sb.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    std::fs::set_permissions(
        sb.join("repo/s1.yaml"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let before = snapshot(&sb.join("repo"));
    let (code, report) = rekey_json(&sb, &sb.join("repo"), &["-j", "3"]);
    assert_eq!(code, 1, "{report:#}");
    let files = by_path(&report);
    assert_eq!(
        with_status(&report, "failed"),
        ["s0.yaml", "s5.yaml"].map(String::from).into()
    );
    assert_eq!(
        with_status(&report, "updated"),
        ["s1.yaml", "s2.yaml", "s3.yaml", "s4.yaml"]
            .map(String::from)
            .into()
    );
    let errors: BTreeMap<&str, &str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| Some((f["path"].as_str()?, f["error"].as_str()?)))
        .collect();
    assert!(
        errors["s0.yaml"].to_lowercase().contains("mac"),
        "{errors:?}"
    );
    assert!(errors["s5.yaml"].contains("data key"), "{errors:?}");
    assert_eq!(files.len(), 6);
    let after = snapshot(&sb.join("repo"));
    assert_eq!(
        after["s0.yaml"], before["s0.yaml"],
        "the broken file is untouched"
    );
    assert_eq!(after["s5.yaml"], before["s5.yaml"]);
    assert_eq!(
        mode_of("repo/s1.yaml"),
        0o640,
        "the rewrite keeps the file's mode"
    );
    for i in 1..5 {
        let name = format!("s{i}.yaml");
        assert!(contains(&after[&name], &b), "{name} gained b");
        let plain = sb.signet(["decrypt", &format!("repo/{name}")]).ok();
        assert!(contains(&plain, &format!("{CANARY}-{i}")));
    }
    // The text report names the failures too, and the exit is still non-zero.
    let run = sb.signet(["rekey", "repo"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout().contains("failed    repo/s0.yaml (sops)"),
        "{}",
        run.stdout()
    );
    assert!(!run.stdout().contains(CANARY) && !run.stderr().contains(CANARY));
}

/// `rekey` reads files as every command reads its input, at most `SIGNET_MAX_INPUT_BYTES`: a sops
/// file over the limit is reported by name, left unchanged, and the run exits 2 as `decrypt` does
/// for it; the other files are still fixed, and a large file that cannot be a secret file is
/// ignored like any other.
#[test]
fn a_file_over_the_input_limit_is_refused_like_other_commands() {
    let mut sb = Sandbox::new();
    let (a_key, a) = age_identity(&sb, "a.agekey");
    let (_, b) = age_identity(&sb, "b.agekey");
    sb.write("repo/small.yaml", format!("password: {CANARY}\n"));
    let big_value = "x".repeat(6000);
    sb.write(
        "repo/big.yaml",
        format!("password: {CANARY}\nblob: {big_value}\n"),
    );
    for f in ["repo/small.yaml", "repo/big.yaml"] {
        sb.signet(["encrypt", "--age", &a, "-i", f]).ok();
    }
    sb.write("repo/data.bin", "y".repeat(200_000));
    sb.write(
        "repo/.sops.yaml",
        format!("creation_rules:\n  - age: {a},{b}\n"),
    );
    sb.env("SOPS_AGE_KEY_FILE", &a_key);
    sb.env("SIGNET_MAX_INPUT_BYTES", "4096");
    let before = snapshot(&sb.join("repo"));
    let (code, report) = rekey_json(&sb, &sb.join("repo"), &[]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(
        with_status(&report, "failed"),
        ["big.yaml"].map(String::from).into()
    );
    assert_eq!(
        with_status(&report, "updated"),
        ["small.yaml"].map(String::from).into()
    );
    let error = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "big.yaml")
        .and_then(|f| f["error"].as_str())
        .unwrap()
        .to_owned();
    assert!(
        error.contains("4096 bytes") && error.contains("SIGNET_MAX_INPUT_BYTES"),
        "{error}"
    );
    assert_eq!(report["summary"]["ignored"], 2, "{report:#}"); // data.bin, .sops.yaml
    let after = snapshot(&sb.join("repo"));
    assert_eq!(after["big.yaml"], before["big.yaml"]);
    assert_eq!(after["data.bin"], before["data.bin"]);
    let decrypt = sb.signet(["decrypt", "repo/big.yaml"]).fails_with(2);
    assert!(decrypt.contains("SIGNET_MAX_INPUT_BYTES"), "{decrypt}");
    let text = sb.signet(["rekey", "--check", "repo"]);
    assert_eq!(text.code(), 2);
    assert!(
        text.stdout()
            .contains("failed    repo/big.yaml (sops): cannot read"),
        "{}",
        text.stdout()
    );
}

#[test]
fn sigkill_mid_run_leaves_every_file_old_or_new() {
    let mut sb = Sandbox::new();
    let (a_key, a) = age_identity(&sb, "a.agekey");
    let (c_key, c) = age_identity(&sb, "c.agekey");
    // One file with many values, copied 300 times (each copy is a valid sops file).
    let mut plain = String::new();
    for i in 0..150 {
        plain.push_str(&format!("key{i}: {CANARY}-value-{i}\n"));
    }
    sb.write("seed.yaml", &plain);
    sb.signet(["encrypt", "--age", &a, "-i", "seed.yaml"]).ok();
    let seed = sb.read("seed.yaml");
    for i in 0..300 {
        sb.write(&format!("repo/d{}/s{i:03}.yaml", i % 10), &seed);
    }
    sb.write(
        "repo/.sops.yaml",
        format!("creation_rules:\n  - age: {c}\n"),
    );
    let repo = sb.join("repo");
    let files: Vec<PathBuf> = snapshot(&repo)
        .keys()
        .filter(|p| p.ends_with(".yaml") && !p.ends_with(".sops.yaml"))
        .map(|p| repo.join(p))
        .collect();
    assert_eq!(files.len(), 300);

    sb.env("SOPS_AGE_KEY_FILE", &a_key);
    let mut cmd = sb.command(signet_tests::sandbox::signet_bin());
    cmd.current_dir(&repo)
        .args(["rekey", "-j", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn rekey");
    let started = std::time::Instant::now();
    loop {
        if files.iter().any(|f| std::fs::read(f).unwrap() != seed) {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "rekey changed nothing in 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "rekey finished before it could be killed; make the fixture larger"
    );
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    let mut changed = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        if bytes == seed {
            continue;
        }
        changed += 1;
        // Fully new: encrypted to c only, and c decrypts it to the original values.
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(&c) && !text.contains(&a), "{}", f.display());
        let mut dec = sb.command(signet_tests::sandbox::signet_bin());
        dec.env("SOPS_AGE_KEY_FILE", &c_key).arg("decrypt").arg(f);
        assert_eq!(
            ok(run_with_stdin(dec, b""), "decrypt with c"),
            plain.as_bytes()
        );
    }
    eprintln!("rekey killed after {changed} of 300 files were rewritten");
    assert!(
        changed > 0 && changed < 300,
        "killed mid-run: {changed} of 300 changed"
    );
    let leftovers: Vec<String> = snapshot(&repo)
        .into_iter()
        .filter(|(p, _)| p.contains(".signet-") && p.ends_with(".tmp"))
        .map(|(p, bytes)| {
            assert!(!contains(&bytes, CANARY), "plaintext in temp file {p}");
            p
        })
        .collect();
    for (p, bytes) in snapshot(&repo) {
        assert!(!contains(&bytes, CANARY), "plaintext on disk in {p}");
    }

    // A later run skips any leftover temp files and finishes the job.
    let (code, report) = rekey_json(&sb, &repo, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["leftover_temp_files"], leftovers.len());
    assert_eq!(
        report["summary"]["files"], 300,
        "temp files are not taken for secrets"
    );
    assert_eq!(report["summary"]["updated"], 300 - changed);
    assert!(
        !snapshot(&repo).keys().any(|p| p.contains(".signet-")),
        "the later run's writes removed the leftovers"
    );
    let (code, report) = rekey_json(&sb, &repo, &["--check"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["current"], 300);
}

/// Serves `body` to one HTTP request on a loopback port; returns the base URL.
fn serve_once(body: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut request = [0u8; 4096];
        let n = stream.read(&mut request).unwrap_or(0);
        let path_ok = request[..n].starts_with(b"GET /v1/cert.pem ");
        let status = if path_ok { "200 OK" } else { "404 Not Found" };
        let body = if path_ok { body } else { Vec::new() };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(&body);
    });
    url
}

#[test]
fn the_current_certificate_can_come_from_a_controller_and_a_missing_current_key_is_unchecked() {
    let sb = Sandbox::new();
    let (old_key, old_cert) = sealing_key(&sb, "old");
    let (new_key, new_cert) = sealing_key(&sb, "new");
    let repo = sb.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for (file, cert) in [("old.yaml", &old_cert), ("new.yaml", &new_cert)] {
        let mut cmd = sb.command(signet_tests::sandbox::signet_bin());
        cmd.args(["seal", "--cert", cert, "-o", "yaml"]);
        let sealed = ok(run_with_stdin(cmd, secret_json(file).as_bytes()), "seal");
        std::fs::write(repo.join(file), sealed).unwrap();
    }
    let (old_fp, new_fp) = (fingerprint(&old_cert), fingerprint(&new_cert));

    // Certificate from the controller's /v1/cert.pem, both keys: old.yaml is stale.
    let url = serve_once(std::fs::read(&new_cert).unwrap());
    let (code, report) = rekey_json(
        &sb,
        &repo,
        &[
            "--check",
            "--controller-url",
            &url,
            "--recovery-private-key",
            &format!("{old_key},{new_key}"),
        ],
    );
    assert_eq!(code, 211, "{report:#}");
    let files = by_path(&report);
    assert_eq!(files["old.yaml"].0, "stale");
    assert!(
        files["old.yaml"].1[0].ends_with(&format!("certificate {old_fp} not {new_fp}")),
        "{report:#}"
    );
    assert_eq!(files["new.yaml"].0, "current");

    // Only the old key: what it opens is stale; what it does not open may be current, so it is
    // unchecked (not failed, not current).
    let (code, report) = rekey_json(
        &sb,
        &repo,
        &[
            "--check",
            "--cert",
            &new_cert,
            "--recovery-private-key",
            &old_key,
        ],
    );
    assert_eq!(code, 211, "{report:#}");
    let files = by_path(&report);
    assert_eq!(files["old.yaml"].0, "stale");
    assert_eq!(files["new.yaml"].0, "unchecked");
    assert!(
        files["new.yaml"].1[0].contains("was not given"),
        "{report:#}"
    );

    // Only the new key: old.yaml opens with nothing given, and the current key was given: failed.
    let before = std::fs::read(repo.join("old.yaml")).unwrap();
    let (code, report) = rekey_json(
        &sb,
        &repo,
        &["--cert", &new_cert, "--recovery-private-key", &new_key],
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(by_path(&report)["old.yaml"].0, "failed");
    assert_eq!(std::fs::read(repo.join("old.yaml")).unwrap(), before);

    // Both keys: fixed, then current.
    let both = format!("{old_key},{new_key}");
    let args = [
        "--cert",
        new_cert.as_str(),
        "--recovery-private-key",
        both.as_str(),
    ];
    let (code, report) = rekey_json(&sb, &repo, &args);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        with_status(&report, "updated"),
        ["old.yaml".to_owned()].into()
    );
    let mut check = vec!["--check"];
    check.extend(args);
    let (code, report) = rekey_json(&sb, &repo, &check);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["current"], 2);
}

#[test]
fn key_groups_and_their_threshold_are_part_of_the_key_set() {
    let mut sb = Sandbox::new();
    let (_, a) = age_identity(&sb, "a.agekey");
    let (_, b) = age_identity(&sb, "b.agekey");
    let (_, c) = age_identity(&sb, "c.agekey");
    let rules = |threshold: u32| {
        format!(
            "creation_rules:\n  - shamir_threshold: {threshold}\n    key_groups:\n      - age: [{a}]\n      - age: [{b}]\n      - age: [{c}]\n"
        )
    };
    let mut ab = sb.read("a.agekey");
    ab.extend(sb.read("b.agekey"));
    let ab = sb.write("ab.agekey", ab);
    let mut abc = sb.read("ab.agekey");
    abc.extend(sb.read("c.agekey"));
    let abc = sb.write("abc.agekey", abc);
    sb.write("repo/.sops.yaml", rules(3));
    sb.write("repo/s.yaml", format!("pw: {CANARY}-shamir\n"));
    let mut cmd = sb.command(signet_tests::sandbox::signet_bin());
    cmd.current_dir(sb.join("repo"))
        .args(["encrypt", "-i", "s.yaml"]);
    ok(run_with_stdin(cmd, b""), "encrypt with key groups");
    // All three groups are needed: a and b do not open it.
    assert!(
        !sops_decrypt(&sb, &sb.join("repo"), &ab, "s.yaml")
            .status
            .success()
    );
    let (code, report) = rekey_json(&sb, &sb.join("repo"), &["--check"]);
    assert_eq!(code, 0, "{report:#}");

    sb.write("repo/.sops.yaml", rules(2));
    let (code, report) = rekey_json(&sb, &sb.join("repo"), &["--check"]);
    assert_eq!(code, 211, "{report:#}");
    assert_eq!(
        by_path(&report)["s.yaml"].1,
        vec!["shamir_threshold is 3, the rule wants 2".to_owned()]
    );
    sb.env("SOPS_AGE_KEY_FILE", &abc);
    let (code, report) = rekey_json(&sb, &sb.join("repo"), &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(by_path(&report)["s.yaml"].0, "updated");
    // Now two groups are enough: upstream sops opens it with a and b.
    let out = sops_decrypt(&sb, &sb.join("repo"), &ab, "s.yaml");
    assert!(contains(
        &ok(out, "sops -d with two of three groups"),
        CANARY
    ));
    let (code, _) = rekey_json(&sb, &sb.join("repo"), &["--check"]);
    assert_eq!(code, 0);
}
