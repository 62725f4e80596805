//! Interop with upstream sops (and Go age), through the `signet` binary: every age-encrypted public
//! vector decrypts to what `sops -d` prints, and files written by either tool open with the other, for
//! every store, encryption rule, Shamir layout and recipient type.
//!
//! Byte comparisons go through `--output-type json`, which both tools render fresh: Signet keeps a
//! YAML file's own layout on decrypt, while sops re-indents it, so their YAML bytes differ by design.

use signet_tests::sandbox::{Sandbox, sops_vectors};
use std::path::{Path, PathBuf};

const FLUX: &str = "fluxcd-kustomize-controller/internal/controller/testdata/sops";
const ROPS: &str = "gibbz00-rops/crates/lib/tests/sops_references";

/// A sandbox whose age identity file is `key` (copied in).
fn with_key(key: &Path) -> Sandbox {
    let mut sb = Sandbox::new();
    let copy = sb.write("keys.txt", std::fs::read(key).expect("key file"));
    sb.env("SOPS_AGE_KEY_FILE", &copy);
    sb
}

/// A sandbox with a fresh age identity; returns it and its recipient.
fn fresh_age() -> (Sandbox, String) {
    let mut sb = Sandbox::new();
    sb.peer("age-keygen", ["-o", "keys.txt"]).ok();
    let recipient = String::from_utf8(sb.peer("age-keygen", ["-y", "keys.txt"]).ok())
        .unwrap()
        .trim()
        .to_owned();
    let key = sb.join("keys.txt");
    sb.env("SOPS_AGE_KEY_FILE", key);
    (sb, recipient)
}

/// `signet decrypt` and `sops -d` of `file` agree byte for byte (JSON rendering), and for YAML also
/// when both are parsed back (comments included).
fn assert_decrypts_like_sops(sb: &Sandbox, file: &Path, extra: &[&str]) {
    let f = file.to_str().unwrap();
    let mut sops_args = vec!["-d", "--output-type", "json"];
    sops_args.extend_from_slice(extra);
    sops_args.push(f);
    let expected = sb.peer("sops", &sops_args).ok();
    let mut ours = vec!["decrypt", "--output-type", "json"];
    ours.extend_from_slice(extra);
    ours.push(f);
    let got = sb.signet(&ours).ok();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected),
        "decrypting {f}"
    );
    // In its own format too: must succeed and agree in content with sops' own-format output.
    let mut own = vec!["decrypt"];
    own.extend_from_slice(extra);
    own.push(f);
    sb.signet(&own).ok();
}

#[test]
fn flux_age_vectors_decrypt_like_sops() {
    let base = sops_vectors().join(FLUX);
    let cases: &[(&str, &str, &[&str])] = &[
        ("algorithms/age.yaml", "keys/age.txt", &[]),
        ("patches/merge1.yaml", "keys/age.txt", &[]),
        ("patches/merge2.yaml", "keys/age.txt", &[]),
        ("global/secret.yaml", "keys/age-global.txt", &[]),
        ("envs/env.env", "keys/age.txt", &[]),
        ("component/env.env", "keys/age.txt", &[]),
        ("remote/env.env", "keys/age.txt", &[]),
        ("files/file.txt", "keys/age.txt", &["--input-type", "json"]),
        ("algorithms/age-pq.yaml", "keys/age-pq.txt", &[]),
    ];
    for (file, key, extra) in cases {
        let sb = with_key(&base.join(key));
        assert_decrypts_like_sops(&sb, &base.join(file), extra);
    }
}

#[test]
fn flux_binary_vector_decrypts_to_the_same_bytes_as_sops() {
    let base = sops_vectors().join(FLUX);
    let sb = with_key(&base.join("keys/age.txt"));
    let f = base.join("files/file.txt");
    let expected = sb.peer("sops", ["-d", f.to_str().unwrap()]).ok();
    let got = sb.signet(["decrypt", f.to_str().unwrap()]).ok();
    assert_eq!(got, expected);
}

/// rops writes no `version`; sops refuses such files, and so does Signet (exit 1, naming the file
/// and the field). With a version line added they decrypt as sops decrypts them. rops also writes
/// `lastmodified` unquoted, which YAML reads as a timestamp: sops ≤ 3.12 and Signet read it, sops
/// 3.13 refuses it ("expected type 'string'"), so sops gets a copy with the timestamp quoted.
#[test]
fn rops_vectors_need_a_version_as_sops_does() {
    let base = sops_vectors().join(ROPS);
    let key = sops_vectors().join("gibbz00-rops/derived/rops_mock_age.keys.txt");
    let names = [
        "age_example",
        "age_empty_value",
        "age_encrypted_regex",
        "age_encrypted_suffix",
        "age_unencrypted_regex",
        "age_unencrypted_suffix",
        "age_mac_only_encrypted",
    ];
    for name in names {
        let sb = with_key(&key);
        let original = std::fs::read_to_string(base.join(format!("{name}.yaml"))).unwrap();
        let versioned = original.replacen("sops:\n", "sops:\n  version: 3.8.1\n", 1);
        assert_ne!(versioned, original, "{name}: expected a sops: block");
        let quoted = quote_lastmodified(&versioned);
        assert_ne!(
            quoted, versioned,
            "{name}: expected an unquoted lastmodified"
        );
        let for_sops = sb.write(&format!("{name}-quoted.yaml"), &quoted);
        let expected = sb
            .peer(
                "sops",
                ["-d", "--output-type", "json", for_sops.to_str().unwrap()],
            )
            .ok();
        let copy = sb.write(&format!("{name}.yaml"), &versioned);
        let got = sb
            .signet(["decrypt", "--output-type", "json", copy.to_str().unwrap()])
            .ok();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
        let unversioned = sb.write(&format!("{name}-orig.yaml"), &original);
        let refused = sb.signet(["decrypt", unversioned.to_str().unwrap()]);
        let message = refused.fails_with(1);
        assert!(
            message.contains(&format!("{name}-orig.yaml")) && message.contains("version"),
            "{name}: {message}"
        );
        assert!(refused.stdout().is_empty(), "{name}: printed plaintext");
    }
}

/// `text` with its `lastmodified: <timestamp>` line's value in double quotes.
fn quote_lastmodified(text: &str) -> String {
    text.lines()
        .map(|line| match line.split_once("lastmodified: ") {
            Some((indent, value)) if !value.starts_with('"') => {
                format!("{indent}lastmodified: \"{value}\"\n")
            }
            _ => format!("{line}\n"),
        })
        .collect()
}

/// A sample of each store with the values sops types differently.
pub(crate) fn samples() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "doc.yaml",
            "# top comment\napp:\n  # the password\n  password: hunter2\n  port: 5432\n  ratio: 0.25\n  whole: 3.0\n  enabled: true\n  empty: \"\"\n  nothing: null\n  quoted: \"123\"\n  when: 2024-01-02T03:04:05Z\n  list:\n    - one\n    - 2\n    - three: 3\n  multi: |\n    line one\n    line two\n  key_unencrypted: visible\n",
        ),
        (
            "multi.yaml",
            "---\na: 1\nb: two\n---\nc: [x, z]\nd: {e: f}\n",
        ),
        (
            "anchors.yaml",
            "base: &base\n  user: admin\n  pass: s3cret\nprod:\n  <<: *base\n  host: db\nsame: *base\n",
        ),
        (
            "doc.json",
            "{\n  \"name\": \"app\",\n  \"replicas\": 3,\n  \"big\": 12345678901234567890,\n  \"ratio\": 1.5,\n  \"on\": false,\n  \"tags\": [\"a\", \"b\"],\n  \"nested\": {\"token\": \"t0k\", \"none\": null}\n}\n",
        ),
        (
            "app.env",
            "# comment\nDB_USER=admin\nDB_PASSWORD=p@ss word=1\nEMPTY=\n",
        ),
        (
            "app.ini",
            "[database]\nuser = admin\npassword = secret\n\n[cache]\nttl = 60\n",
        ),
        ("blob.bin", "\u{0}\u{1}binary\u{ff}data\n"),
    ]
}

fn assert_same_plaintext(sb: &Sandbox, a_args: &[&str], b_args: &[&str]) {
    let a = sb.signet(a_args).ok();
    let b = sb.peer("sops", b_args).ok();
    assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
}

/// `--input-type binary` for the binary sample, nothing otherwise.
fn type_args(name: &str) -> &'static [&'static str] {
    if name.ends_with(".bin") {
        &["--input-type", "binary"]
    } else {
        &[]
    }
}

/// `tool ARGS… FILE` as a vector of strings.
pub(crate) fn args<'a>(head: &[&'a str], name: &str, file: &'a str) -> Vec<&'a str> {
    let mut v = head.to_vec();
    v.extend_from_slice(type_args(name));
    v.push(file);
    v
}

/// sops decrypts what signet encrypted to exactly what it prints for its own encryption of the same
/// plaintext (both renderings are sops'), and signet's own decrypt gives back the original bytes.
#[test]
fn signet_encrypts_sops_decrypts_every_store() {
    let (sb, recipient) = fresh_age();
    for (name, content) in samples() {
        let plain = sb.write(name, content);
        let (ours, theirs) = (
            sb.join(&format!("ours-{name}")),
            sb.join(&format!("theirs-{name}")),
        );
        let (ours, theirs) = (ours.to_str().unwrap(), theirs.to_str().unwrap());
        sb.signet(args(
            &["encrypt", "--age", &recipient, "--output", ours],
            name,
            plain.to_str().unwrap(),
        ))
        .ok();
        sb.peer(
            "sops",
            args(
                &["-e", "--age", &recipient, "--output", theirs],
                name,
                plain.to_str().unwrap(),
            ),
        )
        .ok();
        let from_ours = sb.peer("sops", args(&["-d"], name, ours)).ok();
        let from_theirs = sb.peer("sops", args(&["-d"], name, theirs)).ok();
        assert_eq!(
            String::from_utf8_lossy(&from_ours),
            String::from_utf8_lossy(&from_theirs),
            "{name}"
        );
        let back = String::from_utf8(sb.signet(args(&["decrypt"], name, ours)).ok()).unwrap();
        if name.ends_with(".json") || name.ends_with(".ini") {
            // JSON and INI are written fresh, the way sops writes them (tabs, aligned `=`), not in
            // the input's layout; the comparison with sops above covers their content.
        } else if name == "anchors.yaml" {
            // sops expands aliases when it reads a file, so an alias over encrypted values must be
            // written out expanded (each copy has its own path AAD); the anchor itself stays.
            assert!(
                back.starts_with("base: &base\n") && !back.contains('*'),
                "{back}"
            );
            assert!(
                back.contains("same:\n    user: admin\n    pass: s3cret\n"),
                "{back}"
            );
        } else {
            assert_eq!(back, content, "{name}: byte-identical round trip");
        }
    }
}

/// Files sops wrote decrypt with signet to exactly what `sops -d` prints.
#[test]
fn sops_encrypts_signet_decrypts_every_store() {
    let (sb, recipient) = fresh_age();
    for (name, content) in samples() {
        let plain = sb.write(name, content);
        let enc = sb.join(&format!("enc-{name}"));
        let enc = enc.to_str().unwrap();
        sb.peer(
            "sops",
            args(
                &["-e", "--age", &recipient, "--output", enc],
                name,
                plain.to_str().unwrap(),
            ),
        )
        .ok();
        // One deliberate difference: a whole float (`3.0`) keeps its decimal point, so the value is
        // still a float when the file is re-encrypted; sops prints `3` and turns it into an int.
        let ours = String::from_utf8(sb.signet(args(&["decrypt"], name, enc)).ok()).unwrap();
        let theirs = String::from_utf8(sb.peer("sops", args(&["-d"], name, enc)).ok()).unwrap();
        assert_eq!(ours.replace("whole: 3.0\n", "whole: 3\n"), theirs, "{name}");
        // JSON output of a multi-document YAML is refused by both tools, and sops adds an empty
        // `DEFAULT` section to INI files; compare the rest as JSON too.
        if !name.contains("multi") && !name.ends_with(".ini") {
            assert_same_plaintext(
                &sb,
                &args(&["decrypt", "--output-type", "json"], name, enc),
                &args(&["-d", "--output-type", "json"], name, enc),
            );
        }
    }
}

#[test]
fn every_encryption_rule_interoperates() {
    let (sb, recipient) = fresh_age();
    let content = "# plain: keep\napi_key: one\npassword: two\nuser_unencrypted: three\nnested:\n  # secret: below\n  token_enc: four\n  other: five\n";
    let plain = sb.write("rules.yaml", content);
    let rules: &[&[&str]] = &[
        &["--unencrypted-suffix", "_unencrypted"],
        &["--encrypted-suffix", "_enc"],
        &["--unencrypted-regex", "^(user|other)"],
        &["--encrypted-regex", "^(password|nested)$"],
        &["--unencrypted-comment-regex", "plain:"],
        &["--encrypted-comment-regex", "secret:"],
        &["--mac-only-encrypted", "--encrypted-regex", "^password$"],
    ];
    for rule in rules {
        // signet -> sops
        let enc = sb.join("enc.yaml");
        let mut args = vec![
            "encrypt",
            "--age",
            recipient.as_str(),
            "--output",
            enc.to_str().unwrap(),
        ];
        args.extend_from_slice(rule);
        args.push(plain.to_str().unwrap());
        sb.signet(&args).ok();
        assert_same_plaintext(
            &sb,
            &["decrypt", "--output-type", "json", enc.to_str().unwrap()],
            &["-d", "--output-type", "json", enc.to_str().unwrap()],
        );
        assert_eq!(
            String::from_utf8(sb.signet(["decrypt", enc.to_str().unwrap()]).ok()).unwrap(),
            content,
            "{rule:?}"
        );
        // sops -> signet, and the same leaves stay plain in both tools' output.
        let enc2 = sb.join("enc2.yaml");
        let mut sargs = vec![
            "-e",
            "--age",
            recipient.as_str(),
            "--output",
            enc2.to_str().unwrap(),
        ];
        sargs.extend_from_slice(rule);
        sargs.push(plain.to_str().unwrap());
        sb.peer("sops", &sargs).ok();
        assert_same_plaintext(
            &sb,
            &["decrypt", "--output-type", "json", enc2.to_str().unwrap()],
            &["-d", "--output-type", "json", enc2.to_str().unwrap()],
        );
        let plain_lines = |p: &PathBuf| -> Vec<String> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .take_while(|l| !l.starts_with("sops:"))
                .filter(|l| !l.contains("ENC["))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            plain_lines(&enc),
            plain_lines(&enc2)
                .iter()
                .map(|l| l.replace("    ", "  "))
                .collect::<Vec<_>>(),
            "{rule:?}: same leaves left plain"
        );
    }
}

/// `.sops.yaml` with key groups; both tools read the same config.
fn shamir_config(sb: &Sandbox, recipients: &[String], threshold: usize) {
    let groups: String = recipients
        .iter()
        .map(|r| format!("      - age:\n          - {r}\n"))
        .collect();
    sb.write(
        ".sops.yaml",
        format!("creation_rules:\n  - shamir_threshold: {threshold}\n    key_groups:\n{groups}"),
    );
}

#[test]
fn shamir_key_groups_interoperate() {
    for (groups, threshold) in [(2usize, 2usize), (3, 2)] {
        let mut sb = Sandbox::new();
        let mut recipients = Vec::new();
        let mut keys = String::new();
        for i in 0..groups {
            let f = format!("k{i}.txt");
            sb.peer("age-keygen", ["-o", &f]).ok();
            recipients.push(
                String::from_utf8(sb.peer("age-keygen", ["-y", &f]).ok())
                    .unwrap()
                    .trim()
                    .to_owned(),
            );
            keys.push_str(&String::from_utf8(sb.read(&f)).unwrap());
        }
        shamir_config(&sb, &recipients, threshold);
        let all = sb.write("all.txt", &keys);
        sb.env("SOPS_AGE_KEY_FILE", &all);
        sb.write("s.yaml", "secret: value\nn: 7\n");
        sb.signet(["encrypt", "--output", "ours.yaml", "s.yaml"])
            .ok();
        sb.peer("sops", ["-e", "--output", "theirs.yaml", "s.yaml"])
            .ok();
        let ours = String::from_utf8(sb.read("ours.yaml")).unwrap();
        assert_eq!(ours.matches("recipient:").count(), groups, "{ours}");
        assert!(
            ours.contains(&format!("shamir_threshold: {threshold}")),
            "{ours}"
        );
        for f in ["ours.yaml", "theirs.yaml"] {
            assert_same_plaintext(
                &sb,
                &["decrypt", "--output-type", "json", f],
                &["-d", "--output-type", "json", f],
            );
        }
        // With only `threshold` of the keys, both tools still decrypt; with fewer, neither does.
        let subset: String = (0..threshold)
            .map(|i| String::from_utf8(sb.read(&format!("k{i}.txt"))).unwrap())
            .collect();
        let some = sb.write("some.txt", &subset);
        sb.env("SOPS_AGE_KEY_FILE", &some);
        for f in ["ours.yaml", "theirs.yaml"] {
            sb.signet(["decrypt", f]).ok();
        }
        let one = sb.write("one.txt", sb.read("k0.txt"));
        sb.env("SOPS_AGE_KEY_FILE", &one);
        for f in ["ours.yaml", "theirs.yaml"] {
            sb.signet(["decrypt", f]).fails_with(128);
        }
    }
}

#[test]
fn ssh_recipients_interoperate() {
    let mut sb = Sandbox::new();
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(sb.join("id_ed25519"))
        .status()
        .expect("ssh-keygen is needed for this test (Debian openssh-client)");
    assert!(st.success());
    let public = String::from_utf8(sb.read("id_ed25519.pub")).unwrap();
    let recipient = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let key = sb.join("id_ed25519");
    sb.env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &key);
    sb.write("s.yaml", "token: abc\n");
    sb.signet([
        "encrypt",
        "--age",
        &recipient,
        "--output",
        "ours.yaml",
        "s.yaml",
    ])
    .ok();
    sb.peer(
        "sops",
        [
            "-e",
            "--age",
            &recipient,
            "--output",
            "theirs.yaml",
            "s.yaml",
        ],
    )
    .ok();
    for f in ["ours.yaml", "theirs.yaml"] {
        assert_same_plaintext(
            &sb,
            &["decrypt", "--output-type", "json", f],
            &["-d", "--output-type", "json", f],
        );
    }
}

#[test]
fn go_age_unwraps_the_data_key_we_wrote() {
    let (sb, recipient) = fresh_age();
    sb.write("s.yaml", "a: b\n");
    let enc =
        String::from_utf8(sb.signet(["encrypt", "--age", &recipient, "s.yaml"]).ok()).unwrap();
    let start = enc
        .find("-----BEGIN AGE ENCRYPTED FILE-----")
        .expect("armored enc");
    let end = enc.find("-----END AGE ENCRYPTED FILE-----").unwrap()
        + "-----END AGE ENCRYPTED FILE-----".len();
    let armor: String = enc[start..end]
        .lines()
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    sb.write("enc.age", armor);
    let key = sb.peer("age", ["-d", "-i", "keys.txt", "enc.age"]).ok();
    assert_eq!(key.len(), 32, "the age payload is the raw 32-byte data key");
}

#[test]
fn our_files_carry_metadata_sops_reads() {
    let (sb, recipient) = fresh_age();
    sb.write("s.yaml", "a: b\n");
    sb.signet([
        "encrypt", "--age", &recipient, "--output", "e.yaml", "s.yaml",
    ])
    .ok();
    let status = sb.peer("sops", ["filestatus", "e.yaml"]).ok();
    assert_eq!(
        String::from_utf8(status).unwrap().trim(),
        r#"{"encrypted":true}"#
    );
    let text = String::from_utf8(sb.read("e.yaml")).unwrap();
    // Flux finds sops payloads by this exact marker.
    assert!(text.contains("\n    mac: ENC["), "{text}");
}

/// The YAML inputs the fuzz targets found Signet mishandling, each handled as sops handles it:
/// explicit keys at the root and a `- ` in a sequence item's comment are read, and what Signet
/// encrypts sops decrypts to what it prints for its own encryption; a tab where yaml.v3 expects a
/// token is refused by both, with the same exit code (2).
#[test]
fn fuzz_found_yaml_inputs_are_handled_as_sops_handles_them() {
    let (sb, recipient) = fresh_age();
    let read = [
        ("explicit.yaml", "? t_n-#d:a&nn-fn.na}\n"),
        ("explicit-value.yaml", "?\n  k\n: v\nj: w\n"),
        ("dash-comment.yaml", "list:\n- # - c\n  v\n"),
        ("flow-tab.yaml", "k: [a,\n\tb]\n"),
        ("flow-pair.yaml", "k: [a: B, c]\n"),
    ];
    for (name, content) in read {
        let plain = sb.write(name, content);
        let plain = plain.to_str().unwrap();
        let ours = sb.join(&format!("ours-{name}"));
        let theirs = sb.join(&format!("theirs-{name}"));
        let (ours, theirs) = (ours.to_str().unwrap(), theirs.to_str().unwrap());
        sb.signet(["encrypt", "--age", &recipient, "--output", ours, plain])
            .ok();
        sb.peer(
            "sops",
            ["-e", "--age", &recipient, "--output", theirs, plain],
        )
        .ok();
        let from_ours = String::from_utf8(sb.peer("sops", ["-d", ours]).ok()).unwrap();
        let from_theirs = String::from_utf8(sb.peer("sops", ["-d", theirs]).ok()).unwrap();
        assert_eq!(
            from_ours, from_theirs,
            "{name}: sops decrypts Signet's file as its own"
        );
        let back = String::from_utf8(sb.signet(["decrypt", ours]).ok()).unwrap();
        if name == "flow-tab.yaml" {
            assert_eq!(back, "k: [a,\n b]\n", "{name}");
        } else {
            assert_eq!(back, content, "{name}: byte-identical round trip");
        }
    }
    for (name, content) in [
        ("tab-tag-root.yaml", "\t!!map\t:\t\t"),
        ("tag-before-key.yaml", "\t\t!!int v\"alama<<: cing"),
        ("tab-after-dash.yaml", "k:\n  - \ta\n"),
    ] {
        let plain = sb.write(name, content);
        let plain = plain.to_str().unwrap();
        sb.peer("sops", ["-e", "--age", &recipient, plain])
            .fails_with(2);
        let err = sb
            .signet(["encrypt", "--age", &recipient, plain])
            .fails_with(2);
        assert!(err.contains(name) && err.contains("tab"), "{name}: {err}");
    }
}

/// `--extract` prints what `sops -d --extract` prints, byte for byte and with the same exit code,
/// for every kind of value — string, int, float, bool, null, empty string, time, multi-line text,
/// nested map, list, list element, values with comments — read from every store and written in
/// every output format (sops' refusals included: a dotenv or binary file cannot hold a lone
/// number or list, exit 4), and it goes to `--output` as sops' does.
///
/// Left out on purpose: a whole float (`3.0`, and JSON numbers, which sops reads as floats) keeps
/// its decimal point in YAML, the difference `sops_encrypts_signet_decrypts_every_store` names.
#[test]
fn extract_prints_what_sops_prints() {
    let (sb, recipient) = fresh_age();
    let yaml = "# top\napp:\n  # the password\n  password: hunter2\n  port: 5432\n  ratio: 0.25\n  enabled: true\n  empty: \"\"\n  nothing: null\n  when: 2024-01-02T03:04:05Z\n  list:\n    - one\n    - 2\n    - three: 3\n      four: [4]\n    # in list\n    - [a, b]\n  nested:\n    # a comment\n    k: v\n    deeper: {x: 1}\n  multi: |\n    line one\n    line two\n";
    let json = "{\"name\": \"app <&>\", \"ratio\": 1.5, \"on\": false, \"tags\": [\"a\", \"b\"], \"nested\": {\"token\": \"t0k\", \"flag\": true}, \"nul\": null, \"e\": \"\", \"emptylist\": [], \"emptymap\": {}}\n";
    // A value that is not a string goes through each output store's own writer: every output
    // format. A string prints as it is whatever the output type, and a map as a plain file in it:
    // their own format and JSON show that.
    const EVERY: &[&str] = &["", "yaml", "json", "ini", "dotenv", "binary"];
    const OWN_AND_JSON: &[&str] = &["", "json"];
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a [&'a str])]);
    let cases: &[Case] = &[
        (
            "doc.yaml",
            yaml,
            &[
                (r#"["app"]["password"]"#, OWN_AND_JSON),
                (r#"["app"]["port"]"#, EVERY),
                (r#"["app"]["ratio"]"#, EVERY),
                (r#"["app"]["enabled"]"#, EVERY),
                (r#"["app"]["empty"]"#, OWN_AND_JSON),
                (r#"["app"]["nothing"]"#, EVERY),
                (r#"["app"]["when"]"#, EVERY),
                (r#"["app"]["list"]"#, EVERY),
                (r#"["app"]["list"][0]"#, OWN_AND_JSON),
                (r#"["app"]["list"][1]"#, OWN_AND_JSON),
                (r#"["app"]["list"][2]"#, OWN_AND_JSON),
                (r#"["app"]["nested"]"#, EVERY),
                (r#"["app"]["nested"]["deeper"]"#, OWN_AND_JSON),
                (r#"["app"]["multi"]"#, OWN_AND_JSON),
            ],
        ),
        (
            "doc.json",
            json,
            &[
                (r#"["name"]"#, OWN_AND_JSON),
                (r#"["ratio"]"#, EVERY),
                (r#"["on"]"#, EVERY),
                (r#"["tags"]"#, EVERY),
                (r#"["tags"][1]"#, OWN_AND_JSON),
                (r#"["nested"]"#, EVERY),
                (r#"["nested"]["flag"]"#, OWN_AND_JSON),
                (r#"["nul"]"#, EVERY),
                (r#"["e"]"#, OWN_AND_JSON),
                (r#"["emptylist"]"#, EVERY),
                (r#"["emptymap"]"#, OWN_AND_JSON),
            ],
        ),
        (
            "multi.yaml",
            "---\na: 1\nb: two\n---\nc: [x, z]\n",
            &[(r#"["a"]"#, OWN_AND_JSON), (r#"["b"]"#, OWN_AND_JSON)],
        ),
        (
            "app.env",
            "# comment\nDB_USER=admin\nDB_PASSWORD=p@ss word=1\nEMPTY=\n",
            &[
                (r#"["DB_USER"]"#, OWN_AND_JSON),
                (r#"["DB_PASSWORD"]"#, OWN_AND_JSON),
                (r#"["EMPTY"]"#, OWN_AND_JSON),
            ],
        ),
        (
            "app.ini",
            "[database]\nuser = admin\npassword = secret\n\n[cache]\nttl = 60\n",
            &[
                (r#"["database"]"#, OWN_AND_JSON),
                (r#"["database"]["user"]"#, OWN_AND_JSON),
                (r#"["cache"]["ttl"]"#, OWN_AND_JSON),
            ],
        ),
        (
            "blob.bin",
            "\u{0}\u{1}binary\u{ff}data\n",
            &[(r#"["data"]"#, OWN_AND_JSON)],
        ),
    ];
    let mut compared = 0;
    for (name, content, paths) in cases {
        let plain = sb.write(name, content);
        let enc = sb.join(&format!("enc-{name}"));
        let enc = enc.to_str().unwrap();
        sb.peer(
            "sops",
            args(
                &["-e", "--age", &recipient, "--output", enc],
                name,
                plain.to_str().unwrap(),
            ),
        )
        .ok();
        for (path, outputs) in *paths {
            for output in *outputs {
                let mut head = vec!["--extract", path];
                if !output.is_empty() {
                    head.extend(["--output-type", output]);
                }
                let theirs = sb.peer("sops", args(&[&["-d"], &head[..]].concat(), name, enc));
                let ours = sb.signet(args(&[&["decrypt"], &head[..]].concat(), name, enc));
                assert_eq!(
                    (ours.code(), ours.stdout()),
                    (theirs.code(), theirs.stdout()),
                    "{name} {path} --output-type {output:?}: signet (left) and sops (right)\n{}",
                    ours.stderr()
                );
                compared += 1;
            }
        }
    }
    assert_eq!(
        compared,
        7 * 6 + 7 * 2 + 6 * 6 + 5 * 2 + 2 * 2 + 3 * 2 + 3 * 2 + 2
    );

    // Non-UTF-8 binary data, compared as bytes.
    let enc = sb.join("enc-blob.bin");
    let enc = enc.to_str().unwrap();
    let extract = ["--extract", r#"["data"]"#, "--input-type", "binary", enc];
    assert_eq!(
        sb.signet([&["decrypt"][..], &extract].concat()).ok(),
        sb.peer("sops", [&["-d"][..], &extract].concat()).ok()
    );

    // A path that names nothing fails as sops fails (1), a malformed one with sops' 91; nothing is
    // printed either way.
    let enc = sb.join("enc-doc.yaml");
    let enc = enc.to_str().unwrap();
    for path in [
        r#"["app"]["missing"]"#,
        r#"["nope"]"#,
        r#"["app"]["list"][9]"#,
        "app",
        r#"["app""#,
    ] {
        let theirs = sb.peer("sops", ["-d", "--extract", path, enc]);
        let ours = sb.signet(["decrypt", "--extract", path, enc]);
        assert_eq!(
            (ours.code(), ours.stdout()),
            (theirs.code(), theirs.stdout()),
            "{path}: signet (left) and sops (right)\n{}",
            ours.stderr()
        );
    }

    // `--output` receives the value, as sops writes it there.
    let enc = sb.join("enc-doc.yaml");
    let enc = enc.to_str().unwrap();
    for path in [r#"["app"]["password"]"#, r#"["app"]["port"]"#] {
        let run = |tool: &str, out: &str| {
            let head: &[&str] = if tool == "sops" {
                &["-d"]
            } else {
                &["decrypt"]
            };
            let argv = [head, &["--extract", path, "--output", out, enc]].concat();
            let printed = if tool == "sops" {
                sb.peer("sops", argv).ok()
            } else {
                sb.signet(argv).ok()
            };
            assert!(printed.is_empty(), "{tool} {path}: printed to stdout too");
            sb.read(out)
        };
        assert_eq!(
            run("signet", "ours.out"),
            run("sops", "theirs.out"),
            "{path}"
        );
    }
}

/// Files that end without a line break (found by sops' functional tests): our encrypted YAML ends
/// with one, as sops writes every file, so decrypting gives sops' bytes; a block scalar running to
/// the end keeps no final break (`multi\nline`, as yaml.v3 reads it); and `set` adds a key to such a
/// file.
#[test]
fn files_without_a_final_line_break_read_and_write_as_sops_does() {
    let (sb, recipient) = fresh_age();
    let cases = [
        ("t.yaml", "a: 2024-01-01\nb: 2006-01-02T15:04:05+07:06"),
        ("m.yaml", "multiline: |\n  multi\n  line"),
        ("s.yaml", "a: 2\nb: ba"),
    ];
    for (name, content) in cases {
        sb.write(name, content);
        let ours = sb.signet(["encrypt", "--age", &recipient, name]).ok();
        assert!(ours.ends_with(b"\n"), "{name}: ends with a line break");
        sb.write(&format!("ours-{name}"), &ours);
        let theirs = sb.peer("sops", ["encrypt", "--age", &recipient, name]).ok();
        sb.write(&format!("theirs-{name}"), &theirs);
        // Byte for byte, except where sops re-indents a block scalar (we keep the file's layout).
        let json: &[&str] = if name == "m.yaml" {
            &["--output-type", "json"]
        } else {
            &[]
        };
        for enc in [format!("ours-{name}"), format!("theirs-{name}")] {
            let args = [&["decrypt"], json, &[enc.as_str()]].concat();
            let expected = sb.peer("sops", &args).ok();
            let got = sb.signet(&args).ok();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
                "{enc}"
            );
        }
    }
    let extract = |file: &str| {
        let args = ["decrypt", "--extract", r#"["multiline"]"#, file];
        (sb.signet(args).ok(), sb.peer("sops", args).ok())
    };
    assert_eq!(
        extract("ours-m.yaml"),
        (b"multi\nline".to_vec(), b"multi\nline".to_vec())
    );

    sb.signet(["set", "ours-s.yaml", r#"["c"]"#, r#"{"cc": "ccc"}"#])
        .ok();
    let json = sb
        .peer("sops", ["decrypt", "--output-type", "json", "ours-s.yaml"])
        .ok();
    assert_eq!(
        String::from_utf8_lossy(&json),
        "{\n\t\"a\": 2,\n\t\"b\": \"ba\",\n\t\"c\": {\n\t\t\"cc\": \"ccc\"\n\t}\n}\n"
    );
}

/// sops' `set` forms: `--value-file` names a file holding the value (out of process listings),
/// `--value-stdin` reads it, `--output-type` rewrites the file in another format, and the legacy
/// `--set 'PATH VALUE'` flag; sops reads every result.
#[test]
fn set_takes_its_value_as_sops_set_does() {
    let (sb, recipient) = fresh_age();
    sb.write("s.json", r#"{"a": 2, "b": "ba"}"#);
    sb.signet(["encrypt", "-i", "--age", &recipient, "s.json"])
        .ok();
    sb.write("value.json", r#"{"cc": "ccc"}"#);
    sb.signet(["set", "--value-file", "s.json", r#"["c"]"#, "value.json"])
        .ok();
    sb.signet_stdin(["set", "--value-stdin", "s.json", r#"["d"]"#], b"[1, 2]")
        .ok();
    sb.signet(["--set", r#"["e"] "eee""#, "-i", "s.json"]).ok();
    let plain = sb.peer("sops", ["decrypt", "s.json"]).ok();
    assert_eq!(
        String::from_utf8_lossy(&plain),
        "{\n\t\"a\": 2,\n\t\"b\": \"ba\",\n\t\"c\": {\n\t\t\"cc\": \"ccc\"\n\t},\n\t\"d\": [\n\t\t1,\n\t\t2\n\t],\n\t\"e\": \"eee\"\n}\n"
    );
    // --value-file without a VALUE naming the file is refused (clap), nothing written.
    let before = sb.read("s.json");
    let run = sb.signet(["set", "--value-file", "s.json", r#"["c"]"#]);
    assert_ne!(run.code(), 0);
    assert_eq!(sb.read("s.json"), before);

    sb.signet([
        "set",
        "--output-type",
        "yaml",
        "--idempotent",
        "s.json",
        r#"["b"]"#,
        r#""ba""#,
    ])
    .ok();
    assert_eq!(sb.read("s.json"), before, "idempotent: nothing written");
    sb.signet([
        "set",
        "--output-type",
        "yaml",
        "s.json",
        r#"["b"]"#,
        r#""bb""#,
    ])
    .ok();
    let yaml = String::from_utf8(sb.read("s.json")).unwrap();
    assert!(yaml.starts_with("a: ENC["), "{yaml}");
    let plain = sb
        .peer(
            "sops",
            [
                "decrypt",
                "--input-type",
                "yaml",
                "--output-type",
                "yaml",
                "s.json",
            ],
        )
        .ok();
    assert!(String::from_utf8_lossy(&plain).contains("b: bb"));
}

/// A YAML file of the common shape (block maps and lists, comments, quoted and typed scalars) is
/// encrypted and decrypted by `signet` in one pass when it is named as a file, and by the full
/// store when it comes on stdin: both give the same result, sops reads what the one pass wrote and
/// the one pass reads what sops wrote. (That the one pass runs for such files is tested in
/// `crates/sops/tests/yaml_onepass.rs`; here the binary's choice of path must not show.)
#[test]
fn the_one_pass_and_the_full_path_agree_at_the_command_line() {
    let (sb, recipient) = fresh_age();
    let mut content = String::from("# services\n");
    for i in 0..300 {
        content.push_str(&format!(
            "service{i}:\n  # settings of service {i}\n  name: svc-{i}\n  replicas: {}\n  enabled: true\n  ratio: 1.{i}5\n  env:\n    PORT: \"80{i}\"\n    MODE: 'fast'\n    EMPTY: ''\n    NONE: null\n  ports:\n  - 8{i}\n  - name: http\n    port: 80\n  note_unencrypted: kept as it is\n",
            i % 5
        ));
    }
    let plain = sb.write("plain.yaml", &content);
    let plain = plain.to_str().unwrap();

    // Encrypted in one pass (a named file) and by the full path (stdin): sops opens both, and
    // sops' reading of the two is the same.
    let one_pass = sb.signet(["encrypt", "--age", &recipient, plain]).ok();
    let full = sb
        .signet_stdin(
            ["encrypt", "--age", &recipient, "--input-type", "yaml"],
            content.as_bytes(),
        )
        .ok();
    let one_pass_file = sb.write("one-pass.yaml", &one_pass);
    let full_file = sb.write("full.yaml", &full);
    let by_sops = |f: &Path| sb.peer("sops", ["-d", f.to_str().unwrap()]).ok();
    assert!(
        by_sops(&one_pass_file) == by_sops(&full_file),
        "sops reads the two encryptions differently"
    );

    // Decrypted in one pass and by the full path: the input's bytes, both.
    for f in [&one_pass_file, &full_file] {
        let named = sb.signet(["decrypt", f.to_str().unwrap()]).ok();
        let piped = sb
            .signet_stdin(
                ["decrypt", "--input-type", "yaml"],
                &std::fs::read(f).unwrap(),
            )
            .ok();
        assert!(named == content.as_bytes(), "{}: the one pass", f.display());
        assert!(
            piped == content.as_bytes(),
            "{}: the full path",
            f.display()
        );
    }

    // A file sops wrote (its own 4-space layout): the same both ways.
    let theirs = sb.join("theirs.yaml");
    sb.peer(
        "sops",
        [
            "-e",
            "--age",
            &recipient,
            "--output",
            theirs.to_str().unwrap(),
            plain,
        ],
    )
    .ok();
    let named = sb.signet(["decrypt", theirs.to_str().unwrap()]).ok();
    let piped = sb
        .signet_stdin(
            ["decrypt", "--input-type", "yaml"],
            &std::fs::read(&theirs).unwrap(),
        )
        .ok();
    assert!(
        named == piped,
        "a file sops wrote decrypts differently by the two paths"
    );
    assert!(String::from_utf8_lossy(&named).contains("    # settings of service 7\n"));

    // In place, with the file's permissions kept, both ways.
    let in_place = sb.write("in-place.yaml", &content);
    let name = in_place.to_str().unwrap();
    sb.signet(["encrypt", "--age", &recipient, "-i", name]).ok();
    assert!(
        std::fs::read_to_string(&in_place)
            .unwrap()
            .contains("sops:\n")
    );
    sb.signet(["decrypt", "-i", name]).ok();
    assert!(
        std::fs::read_to_string(&in_place).unwrap() == content,
        "in place"
    );
}
