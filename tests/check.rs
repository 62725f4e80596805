//! `signet check` on generated repositories: a clean one (a sops-encrypted Secret, a SealedSecret,
//! a Deployment, a dotenv file, a Helm template fed from values, a Kustomization that generates from
//! an env file) gives nothing and exit 0; the same repository with four planted problems (a raw
//! Secret, a plain value in the sops file, a high-entropy token, a cluster-wide SealedSecret where
//! strict is expected) gives exactly those four, in text, JSON and SARIF, with exit 215 and no value
//! in any output. Also: the allow list and inline comments, `--decrypt`, `--cert`, the exit codes,
//! and the pre-commit hook run as pre-commit runs it.

use serde_json::Value;
use signet_tests::sandbox::{Run, Sandbox, signet_bin, workspace_root};
use std::path::Path;

/// Plaintext planted in the secrets; must never appear in any output.
const CANARY: &str = "canary-5e71c0";
/// A generated-looking token planted in a Deployment (and never printed either).
const TOKEN: &str = "Cz9Kq3Lm7Xv2Tw8Nb4Hp6Yj1Rf5Gd0S";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: prod
spec:
  template:
    spec:
      containers:
      - name: app
        image: registry.example.com/team/app:v1.4.2@sha256:3f8a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e
        env:
        - name: LOG_LEVEL
          value: info
        - name: API_KEY
          value: PLACEHOLDER
";

const HELM_SECRET: &str = "{{- if .Values.secret.create }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include \"app.fullname\" . }}
  labels:
    {{- include \"app.labels\" . | nindent 4 }}
type: Opaque
data:
  password: {{ .Values.secret.password | b64enc | quote }}
{{- end }}
";

fn secret_manifest(name: &str, scope_annotation: Option<&str>) -> String {
    let annotations = scope_annotation
        .map(|a| format!("  annotations:\n    {a}: \"true\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: prod\n{annotations}type: Opaque\nstringData:\n  password: {CANARY}\n"
    )
}

/// A sandbox with an age identity (`key.txt`, SOPS_AGE_KEY_FILE not set) and a sealing key pair
/// (`seal.key`/`seal.crt`, 2048 bits), and a clean repository in `repo/`.
struct Fixture {
    sb: Sandbox,
}

impl Fixture {
    fn new() -> Fixture {
        let sb = Sandbox::new();
        sb.signet(["keygen", "-o", "key.txt"]).ok();
        let key = String::from_utf8(sb.read("key.txt")).unwrap();
        let recipient = key
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .expect("public key line")
            .to_owned();
        sb.signet([
            "keys",
            "new-sealing-key",
            "--bits",
            "2048",
            "--key-out",
            "seal.key",
            "--cert-out",
            "seal.crt",
        ])
        .ok();
        sb.write(
            "repo/.sops.yaml",
            format!(
                "creation_rules:\n  - path_regex: secrets/.*\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: {recipient}\n  - age: {recipient}\n"
            ),
        );
        sb.write("repo/secrets/app.yaml", secret_manifest("app", None));
        let run = sb
            .command(signet_bin())
            .current_dir(sb.join("repo"))
            .args(["encrypt", "-i", "secrets/app.yaml"])
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        sb.write("plain-sealed.yaml", secret_manifest("db", None));
        std::fs::create_dir_all(sb.join("repo/sealed")).unwrap();
        sb.signet([
            "seal",
            "--cert",
            "seal.crt",
            "-o",
            "yaml",
            "-w",
            "repo/sealed/db.yaml",
            "plain-sealed.yaml",
        ])
        .ok();
        sb.write("repo/deploy/deployment.yaml", DEPLOYMENT);
        sb.write("repo/config/app.env", "LOG_LEVEL=info\nREGION=eu-west-1\n");
        sb.write("repo/chart/templates/secret.yaml", HELM_SECRET);
        sb.write(
            "repo/chart/values.yaml",
            "secret:\n  create: true\n  password: \"\"\n",
        );
        sb.write(
            "repo/deploy/kustomization.yaml",
            "resources:\n- deployment.yaml\nsecretGenerator:\n- name: app\n  envs:\n  - app.env\n",
        );
        Fixture { sb }
    }

    /// Plants the four problems.
    fn plant(&self) {
        let sb = &self.sb;
        sb.write("repo/raw/secret.yaml", secret_manifest("raw", None));
        sb.write(
            "repo/deploy/deployment.yaml",
            DEPLOYMENT.replace("PLACEHOLDER", TOKEN),
        );
        // A value added by hand under `stringData:` after encryption.
        let text = String::from_utf8(sb.read("repo/secrets/app.yaml")).unwrap();
        let mut out = String::new();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            out.push_str(line);
            out.push('\n');
            if line == "stringData:" {
                let next = lines.peek().expect("a value under stringData");
                let indent = &next[..next.len() - next.trim_start().len()];
                out.push_str(&format!("{indent}added: {CANARY}\n"));
            }
        }
        assert!(out.contains("added:"), "{text}");
        sb.write("repo/secrets/app.yaml", out);
        sb.write("plain-cluster.yaml", secret_manifest("shared", None));
        sb.signet([
            "seal",
            "--cert",
            "seal.crt",
            "--scope",
            "cluster-wide",
            "-o",
            "yaml",
            "-w",
            "repo/sealed/shared.yaml",
            "plain-cluster.yaml",
        ])
        .ok();
    }

    /// `signet check ARGS` run in `repo/`.
    fn check(&self, args: &[&str]) -> Run {
        let mut cmd = self.sb.command(signet_bin());
        cmd.current_dir(self.sb.join("repo"))
            .arg("check")
            .args(args);
        Run::of(cmd)
    }
}

#[track_caller]
fn assert_no_values(run: &Run) {
    for out in [run.stdout(), run.stderr()] {
        assert!(!out.contains(CANARY), "a value was printed:\n{out}");
        assert!(!out.contains(TOKEN), "the token was printed:\n{out}");
    }
}

/// `(rule, file, line)` of each finding of a JSON report.
fn findings(run: &Run) -> Vec<(String, String, Option<u64>)> {
    let report: Value = serde_json::from_str(&run.stdout()).expect("JSON report");
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["file"].as_str().unwrap().to_owned(),
                f["line"].as_u64(),
            )
        })
        .collect()
}

#[test]
fn a_clean_repository_passes_and_planted_problems_are_found_exactly() {
    let fx = Fixture::new();
    let clean = fx.check(&["--expect-scope", "strict"]);
    clean.ok();
    assert!(
        clean.stdout().starts_with("0 finding(s) in "),
        "{}",
        clean.stdout()
    );
    fx.plant();
    let run = fx.check(&["--expect-scope", "strict", "-o", "json"]);
    run.fails_with(215);
    assert_no_values(&run);
    let found = findings(&run);
    let rules_and_files: Vec<(&str, &str)> = found
        .iter()
        .map(|(r, f, _)| (r.as_str(), f.as_str()))
        .collect();
    assert_eq!(
        rules_and_files,
        [
            ("high-entropy", "deploy/deployment.yaml"),
            ("raw-secret", "raw/secret.yaml"),
            ("sealed-scope", "sealed/shared.yaml"),
            ("sops-plain-value", "secrets/app.yaml"),
        ],
        "{}",
        run.stdout()
    );
    // Lines: the token's line, the Secret's `kind:` line, the SealedSecret's, the added value's.
    let lines: Vec<Option<u64>> = found.iter().map(|f| f.2).collect();
    let app = String::from_utf8(fx.sb.read("repo/secrets/app.yaml")).unwrap();
    let added = app.lines().position(|l| l.contains("added:")).unwrap() as u64 + 1;
    let shared = String::from_utf8(fx.sb.read("repo/sealed/shared.yaml")).unwrap();
    let kind = shared
        .lines()
        .position(|l| l == "kind: SealedSecret")
        .unwrap() as u64
        + 1;
    assert_eq!(lines, [Some(16), Some(2), Some(kind), Some(added)]);

    // The same four in text and SARIF.
    let text = fx.check(&["--expect-scope", "strict"]);
    text.fails_with(215);
    assert_no_values(&text);
    assert!(text.stdout().contains(&format!(
        "secrets/app.yaml:{added}: error[sops-plain-value]: the value at stringData.added is plain text"
    )), "{}", text.stdout());
    assert!(
        text.stdout()
            .ends_with("4 finding(s) in 9 file(s) checked\n"),
        "{}",
        text.stdout()
    );
    let sarif = fx.check(&["--expect-scope", "strict", "--output", "sarif"]);
    sarif.fails_with(215);
    assert_no_values(&sarif);
    let log: Value = serde_json::from_str(&sarif.stdout()).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(log["runs"][0]["tool"]["driver"]["name"], "signet");
    let results = log["runs"][0]["results"].as_array().unwrap();
    let sarif_found: Vec<(&str, &str, u64)> = results
        .iter()
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            (
                r["ruleId"].as_str().unwrap(),
                loc["artifactLocation"]["uri"].as_str().unwrap(),
                loc["region"]["startLine"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sarif_found,
        found
            .iter()
            .map(|(r, f, l)| (r.as_str(), f.as_str(), l.unwrap()))
            .collect::<Vec<_>>()
    );
    assert_eq!(results[0]["level"], "warning");
    assert_eq!(results[1]["level"], "error");

    // Without --expect-scope the scope is not judged; without entropy the token is not.
    let relaxed = fx.check(&["--no-entropy", "-o", "json"]);
    let rules: Vec<String> = findings(&relaxed).into_iter().map(|f| f.0).collect();
    assert_eq!(rules, ["raw-secret", "sops-plain-value"]);
    // A higher threshold than the token's entropy lets it pass; a longer minimum length too.
    for args in [["--entropy-threshold", "5.5"], ["--min-length", "40"]] {
        let run = fx.check(&[args[0], args[1], "-o", "json"]);
        assert!(
            !findings(&run).iter().any(|f| f.0 == "high-entropy"),
            "{args:?}: {}",
            run.stdout()
        );
    }
}

#[test]
fn files_named_directly_are_checked_like_pre_commit_passes_them() {
    let fx = Fixture::new();
    fx.plant();
    // The hook definition, run the way pre-commit runs it: entry, then the staged file names.
    let hooks: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(workspace_root().join(".pre-commit-hooks.yaml")).unwrap(),
    )
    .unwrap();
    let hook = hooks
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == "signet-check")
        .expect("a signet-check hook");
    assert_eq!(hook["language"], "system");
    let entry: Vec<&str> = hook["entry"].as_str().unwrap().split_whitespace().collect();
    assert_eq!(entry[..2], ["signet", "check"]);
    // No `files` filter: check itself skips what it does not read, and a binary file a
    // .sops.yaml rule covers must reach it too.
    assert!(hook.get("files").is_none());
    let run_hook = |files: &[&str]| {
        let mut cmd = fx.sb.command(signet_bin());
        cmd.current_dir(fx.sb.join("repo"))
            .args(&entry[1..])
            .args(files);
        Run::of(cmd)
    };
    run_hook(&[
        "deploy/kustomization.yaml",
        "config/app.env",
        "sealed/db.yaml",
    ])
    .ok();
    let dirty = run_hook(&["raw/secret.yaml", "config/app.env"]);
    dirty.fails_with(215);
    assert_no_values(&dirty);
    assert!(
        dirty
            .stdout()
            .contains("raw/secret.yaml:2: error[raw-secret]")
    );
    // A file ignored by .gitignore is still checked when named (pre-commit only names staged files).
    fx.sb.write("repo/.gitignore", "raw/\n");
    fx.check(&["raw/secret.yaml"]).fails_with(215);
    let walked = fx.check(&["--no-entropy", "-o", "json"]);
    assert!(!findings(&walked).iter().any(|f| f.1 == "raw/secret.yaml"));
}

#[test]
fn allow_list_and_inline_comments_suppress_findings() {
    let fx = Fixture::new();
    fx.plant();
    let run = fx.check(&["-o", "json"]);
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    let fingerprint = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "high-entropy")
        .and_then(|f| f["fingerprint"].as_str())
        .expect("a fingerprint")
        .to_owned();
    assert!(fingerprint.starts_with("sha256:") && !fingerprint.contains(TOKEN));
    // By fingerprint, in the default allow file.
    fx.sb.write(
        "repo/.signet-check-allow",
        format!("# reviewed\n{fingerprint}\nraw/*.yaml raw-secret\n"),
    );
    let run = fx.check(&["-o", "json"]);
    let rules: Vec<String> = findings(&run).into_iter().map(|f| f.0).collect();
    assert_eq!(rules, ["sops-plain-value"]);
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout()).unwrap()["summary"]["suppressed"],
        2
    );
    // A rule given for a path allows only that rule.
    fx.sb.write("other-allow", "raw/** high-entropy\n");
    let run = fx.check(&["--allow-file", "../other-allow", "-o", "json"]);
    assert!(findings(&run).iter().any(|f| f.0 == "raw-secret"));
    // Inline: the comment allows its line and the next.
    std::fs::remove_file(fx.sb.join("repo/.signet-check-allow")).unwrap();
    let raw = secret_manifest("raw", None).replace(
        "kind: Secret\n",
        "# signet-check: allow (test fixture)\nkind: Secret\n",
    );
    fx.sb.write("repo/raw/secret.yaml", raw);
    let run = fx.check(&["-o", "json", "raw"]);
    run.ok();
    // Bad allow lists are configuration errors (exit 5), named by line.
    fx.sb.write("bad-allow", "raw/** no-such-rule\n");
    let err = fx.check(&["--allow-file", "../bad-allow"]).fails_with(5);
    assert!(err.contains("line 1"), "{err}");
    fx.check(&["--allow-file", "../missing-allow"])
        .fails_with(5);
}

#[test]
fn sops_files_are_validated_with_and_without_keys() {
    let mut fx = Fixture::new();
    // No key needed: the clean file passes; with --decrypt and no key at hand it is reported.
    fx.check(&["secrets/app.yaml"]).ok();
    let run = fx.check(&["--decrypt", "-o", "json", "secrets/app.yaml"]);
    run.fails_with(215);
    assert_eq!(findings(&run)[0].0, "sops-decrypt");
    // With the key it opens and the MAC holds.
    let key = fx.sb.join("key.txt");
    fx.sb.env("SOPS_AGE_KEY_FILE", &key);
    fx.check(&["--decrypt", "secrets/app.yaml"]).ok();
    // A value removed: the MAC no longer holds. Reported, nothing printed.
    let text = String::from_utf8(fx.sb.read("repo/secrets/app.yaml")).unwrap();
    let tampered: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("password:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(tampered, text);
    fx.sb.write("repo/secrets/app.yaml", &tampered);
    // Structurally fine (no plain value, MAC present)...
    fx.check(&["secrets/app.yaml"]).ok();
    // ...but it does not verify.
    let run = fx.check(&["--decrypt", "secrets/app.yaml"]);
    run.fails_with(215);
    assert_no_values(&run);
    assert!(
        run.stdout().contains("error[sops-decrypt]: MAC mismatch"),
        "{}",
        run.stdout()
    );
    // No MAC at all: reported without a key.
    let no_mac: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("mac:"))
        .map(|l| format!("{l}\n"))
        .collect();
    fx.sb.write("repo/secrets/app.yaml", &no_mac);
    let run = fx.check(&["-o", "json", "secrets/app.yaml"]);
    run.fails_with(215);
    assert_eq!(findings(&run)[0].0, "sops-invalid");
    // A file the path_regex covers that is not encrypted at all.
    fx.sb
        .write("repo/secrets/new.yaml", secret_manifest("new", None));
    let run = fx.check(&["-o", "json", "secrets/new.yaml"]);
    run.fails_with(215);
    assert_no_values(&run);
    assert_eq!(findings(&run)[0].0, "sops-unencrypted-file");
}

#[test]
fn the_sops_yaml_rule_is_judged_too_when_the_file_was_encrypted_under_another() {
    let fx = Fixture::new();
    // Encrypted by hand with a narrower rule than .sops.yaml's: only `password` is encrypted.
    fx.sb.write(
        "repo/secrets/narrow.yaml",
        format!("{}  other: {CANARY}\n", secret_manifest("narrow", None)),
    );
    let mut cmd = fx.sb.command(signet_bin());
    cmd.current_dir(fx.sb.join("repo")).args([
        "encrypt",
        "--encrypted-regex",
        "^password$",
        "-i",
        "secrets/narrow.yaml",
    ]);
    Run::of(cmd).ok();
    let run = fx.check(&["secrets/narrow.yaml"]);
    run.fails_with(215);
    assert_no_values(&run);
    assert!(
        run.stdout().contains(
            "the value at stringData.other is plain text, but its .sops.yaml creation rule \
             (encrypted_regex: \"^(data|stringData)$\") encrypts it"
        ),
        "{}",
        run.stdout()
    );
    assert!(run.stdout().contains("1 finding(s)"), "{}", run.stdout());
}

#[test]
fn walks_stay_in_the_tree_and_within_the_input_limit() {
    let mut fx = Fixture::new();
    // A symlink to a raw Secret outside the repository is not followed.
    fx.sb
        .write("outside/secret.yaml", secret_manifest("outside", None));
    std::os::unix::fs::symlink(fx.sb.join("outside"), fx.sb.join("repo/linked")).unwrap();
    std::os::unix::fs::symlink(
        fx.sb.join("outside/secret.yaml"),
        fx.sb.join("repo/linked.yaml"),
    )
    .unwrap();
    fx.check(&[]).ok();
    // A file over the input limit is an error, not skipped.
    let config_len = fx.sb.read("repo/.sops.yaml").len();
    assert!(config_len < DEPLOYMENT.len());
    fx.sb.env("SIGNET_MAX_INPUT_BYTES", config_len.to_string());
    let err = fx.check(&["deploy/deployment.yaml"]).fails_with(2);
    assert!(err.contains("could not be checked"), "{err}");
}

#[test]
fn sealed_secrets_against_a_certificate_of_another_size() {
    let fx = Fixture::new();
    fx.sb
        .signet([
            "keys",
            "new-sealing-key",
            "--bits",
            "3072",
            "--key-out",
            "other.key",
            "--cert-out",
            "other.crt",
        ])
        .ok();
    fx.check(&["--cert", "../seal.crt", "sealed"]).ok();
    let run = fx.check(&["--cert", "../other.crt", "-o", "json", "sealed"]);
    run.fails_with(215);
    let found = findings(&run);
    assert_eq!(found.len(), 1, "{}", run.stdout());
    assert_eq!(found[0].0, "sealed-cert");
    assert!(
        run.stdout()
            .contains("2048-bit key; --cert holds a 3072-bit key")
    );
}

#[test]
fn exit_codes() {
    let fx = Fixture::new();
    fx.check(&[]).ok();
    fx.sb
        .write("repo/raw/secret.yaml", secret_manifest("raw", None));
    fx.check(&[]).fails_with(215);
    // A path that does not exist: the check is incomplete.
    let err = fx.check(&["no/such/dir"]).fails_with(2);
    assert!(err.contains("no/such/dir"), "{err}");
    // A broken .sops.yaml is a configuration error.
    fx.sb.write("repo/.sops.yaml", "creation_rules: [");
    fx.check(&["deploy"]).fails_with(5);
    // Usage errors are clap's 2.
    fx.check(&["--output", "xml"]).fails_with(2);
}

/// The hook file itself is valid for pre-commit: a list of hooks with the keys it requires.
#[test]
fn pre_commit_hooks_file_is_well_formed() {
    let path = workspace_root().join(".pre-commit-hooks.yaml");
    assert!(Path::new(&path).is_file());
    let hooks: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for hook in hooks.as_array().unwrap() {
        for key in ["id", "name", "entry", "language"] {
            assert!(hook[key].is_string(), "{key} missing in {hook}");
        }
    }
}
