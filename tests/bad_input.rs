//! The bad-input catalogue: hostile or broken files for every store (YAML, JSON, dotenv, INI,
//! binary), the sops metadata, key files, `.sops.yaml`, Secret manifests fed to `seal` and
//! SealedSecrets fed to `unseal`. Every case must end with its documented exit code (never a panic's
//! 101 or a signal), a message naming the file (and the place in it where there is one), its input
//! files unchanged and no secret in any output, within a memory cap and a wall-clock deadline (run
//! under `prlimit --as` and `timeout`: limits, not timing assertions).

use signet_tests::sandbox::{Run, Sandbox, signet_bin, workspace_root};
use std::path::Path;

/// A value planted in every plain input; no output may show it.
const CANARY: &str = "CANARY-51c0-bad-input";
/// Address-space cap for every run: far below what the alias bomb took (24 GB), far above what a
/// refusal needs.
const MEMORY_CAP: &str = "--as=1073741824";
/// Wall-clock deadline for every run, in seconds (generous for a loaded 2-core CI machine).
const DEADLINE: &str = "60";

/// One row of the catalogue.
struct Case {
    name: &'static str,
    /// Files written into the case's own directory (the working directory of the run).
    files: Vec<(&'static str, Vec<u8>)>,
    /// `signet` arguments; `@R` is replaced by the sandbox's age recipient.
    args: Vec<&'static str>,
    /// Extra environment for this run.
    env: Vec<(&'static str, String)>,
    /// The documented exit code.
    code: i32,
    /// Fragments the message must contain (the file name, the place, the reason).
    says: Vec<&'static str>,
}

fn case(
    name: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    args: &[&'static str],
    code: i32,
    says: &[&'static str],
) -> Case {
    Case {
        name,
        files,
        args: args.to_vec(),
        env: Vec::new(),
        code,
        says: says.to_vec(),
    }
}

impl Case {
    fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }
}

fn file(name: &'static str, content: impl Into<Vec<u8>>) -> Vec<(&'static str, Vec<u8>)> {
    vec![(name, content.into())]
}

/// The 9×9 "billion laughs": ~350 bytes, 10⁹ nodes once its aliases are expanded.
fn alias_bomb() -> String {
    let mut out = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(",");
        out.push_str(&format!("{}: &{} [{refs}]\n", w[1], w[1]));
    }
    out
}

/// Anchors that each hold an alias of the one before, nested 150 deep: every copy is shallow to
/// read but deeper than the depth limit once expanded.
fn alias_depth_chain() -> String {
    let mut out = String::new();
    let mut inner = "x".to_owned();
    for level in 0..4 {
        let nested = format!("{}{inner}{}", "[".repeat(150), "]".repeat(150));
        out.push_str(&format!("l{level}: &l{level} {nested}\n"));
        inner = format!("*l{level}");
    }
    out
}

/// 150 maps nested in each other, each anchored, around a 100,000-item list: no alias at all,
/// but each anchor keeps a copy of everything below it (15 million nodes).
fn nested_anchors() -> String {
    let mut out = String::new();
    for level in 0..150 {
        out.push_str(&format!("{}k{level}: &a{level}\n", " ".repeat(level)));
    }
    out.push_str(&format!(
        "{}list: [{}x]\n",
        " ".repeat(150),
        "x,".repeat(100_000)
    ));
    out
}

fn deep_block_yaml(depth: usize) -> String {
    let mut out = String::new();
    for i in 0..depth {
        out.push_str(&" ".repeat(i));
        out.push_str("k:\n");
    }
    out.push_str(&" ".repeat(depth));
    out.push_str("v: 1\n");
    out
}

/// Encrypted files of every format, made once with the sandbox's key; the cases derive damaged
/// copies from them.
struct Encrypted {
    yaml: String,
    json: String,
    dotenv: String,
    ini: String,
    binary: String,
}

fn encrypt(sb: &Sandbox, recipient: &str, name: &str, plain: &str) -> String {
    sb.write(name, plain);
    let out = sb.signet(["encrypt", "--age", recipient, name]).ok();
    String::from_utf8(out).unwrap()
}

/// `text` with every line containing `needle` dropped.
fn without_line(text: &str, needle: &str) -> String {
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains(needle)).collect();
    kept.join("\n") + "\n"
}

/// `text` with the value of the first line starting (after indentation) with `key` replaced.
fn with_value(text: &str, key: &str, sep: &str, value: &str) -> String {
    let mut done = false;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if !done && l.trim_start().starts_with(key) {
                done = true;
                let at = l.find(sep).expect("separator") + sep.len();
                format!("{}{value}", &l[..at])
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(done, "no line starting with {key}");
    lines.join("\n") + "\n"
}

/// A base64 character of the first `data:` in an ENC value flipped.
fn tamper_ciphertext(text: &str) -> String {
    let at = text.find("data:").expect("an ENC value") + 5;
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn catalogue(enc: &Encrypted) -> Vec<Case> {
    let plain_yaml = format!("password: {CANARY}\n");
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\n  namespace: demo\nstringData:\n  password: {CANARY}\n"
    );
    let cert = workspace_root().join("keys-example/sealing.crt");
    let cert: &'static str = Box::leak(cert.display().to_string().into_boxed_str());
    let sealing_key = workspace_root().join("keys-example/sealing.key");
    let sealing_key: &'static str = Box::leak(sealing_key.display().to_string().into_boxed_str());
    let sealed = String::from_utf8(
        std::fs::read(workspace_root().join("keys-example/sealed-secret.yaml")).unwrap(),
    )
    .unwrap();
    let deep_json = format!("{{\"a\": {}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let enc_yaml = &enc.yaml;
    // `set` creates missing levels: a path deeper than a parsed document may nest.
    let deep_path: &'static str = Box::leak("[\"a\"]".repeat(300).into_boxed_str());
    let e = ["encrypt", "--age", "@R"];
    let enc_args = |f: &'static str| -> Vec<&'static str> {
        let mut v = e.to_vec();
        v.push(f);
        v
    };
    let mut cases = vec![
        // ---- YAML store ----
        case(
            "yaml alias bomb is refused on encrypt",
            file("bomb.yaml", alias_bomb()),
            &enc_args("bomb.yaml"),
            2,
            &[
                "bomb.yaml",
                "5:34",
                "anchors and aliases copy",
                "SIGNET_MAX_ALIAS_NODES",
            ],
        ),
        case(
            "yaml alias bomb is refused on decrypt",
            file("bomb.yaml", alias_bomb()),
            &["decrypt", "bomb.yaml"],
            2,
            &["bomb.yaml", "anchors and aliases copy"],
        ),
        case(
            "yaml alias bomb is refused by filestatus",
            file("bomb.yaml", alias_bomb()),
            &["filestatus", "bomb.yaml"],
            2,
            &["bomb.yaml", "anchors and aliases copy"],
        ),
        case(
            "yaml anchors nested in anchors around a long list",
            file("nested.yaml", nested_anchors()),
            &enc_args("nested.yaml"),
            2,
            &[
                "nested.yaml",
                "anchors and aliases copy",
                "SIGNET_MAX_ALIAS_NODES",
            ],
        ),
        case(
            "yaml aliases nesting past the depth limit",
            file("chain.yaml", alias_depth_chain()),
            &enc_args("chain.yaml"),
            2,
            &["chain.yaml", "nested more than 200 deep"],
        ),
        case(
            "yaml deep flow nesting",
            file(
                "deep.yaml",
                format!("a: {}1{}\n", "[".repeat(50_000), "]".repeat(50_000)),
            ),
            &enc_args("deep.yaml"),
            2,
            &["deep.yaml", "1:", "nested more than 200 deep"],
        ),
        case(
            "yaml deep block nesting",
            file("deep.yaml", deep_block_yaml(1_000)),
            &enc_args("deep.yaml"),
            2,
            &["deep.yaml", "nested more than 200 deep"],
        ),
        case(
            "yaml deep flow maps",
            file(
                "deep.yaml",
                format!("{}1{}\n", "{a: ".repeat(5_000), "}".repeat(5_000)),
            ),
            &enc_args("deep.yaml"),
            2,
            &["deep.yaml", "nested more than 200 deep"],
        ),
        case(
            "yaml over the input size limit",
            file("big.yaml", format!("a: {}\n", "x".repeat(4_000))),
            &enc_args("big.yaml"),
            2,
            &["big.yaml", "SIGNET_MAX_INPUT_BYTES"],
        )
        .env("SIGNET_MAX_INPUT_BYTES", "1000"),
        // Bounded time: each was quadratic (a column found by scanning back to the line's start,
        // the next token by scanning over the whole comment run) and took minutes.
        case(
            "yaml one long line",
            file("line.yaml", format!("a: [{}1\n", "1,".repeat(500_000))),
            &enc_args("line.yaml"),
            2,
            &["line.yaml", "1:4", "unclosed bracket"],
        ),
        case(
            "yaml long comment run",
            file(
                "comments.yaml",
                format!("a:\n  x: 1\n{}  b: 1\nc: [\n", "  # c\n".repeat(100_000)),
            ),
            &enc_args("comments.yaml"),
            2,
            &["comments.yaml", "yaml parse error"],
        ),
        case(
            "yaml int key",
            file("keys.yaml", format!("1: one\npassword: {CANARY}\n")),
            &enc_args("keys.yaml"),
            23,
            &["keys.yaml", "1:1", "an int, not a string"],
        ),
        case(
            "yaml bool key",
            file("keys.yaml", format!("password: {CANARY}\ntrue: yes\n")),
            &enc_args("keys.yaml"),
            23,
            &["keys.yaml", "2:1", "a bool, not a string"],
        ),
        case(
            "yaml null key",
            file("keys.yaml", format!("~: x\npassword: {CANARY}\n")),
            &enc_args("keys.yaml"),
            23,
            &["keys.yaml", "1:1", "null, not a string"],
        ),
        case(
            "yaml float key nested in a list",
            file("keys.yaml", format!("a:\n  - b: {CANARY}\n    1.5: x\n")),
            &enc_args("keys.yaml"),
            23,
            &["keys.yaml", "3:5", "a float"],
        ),
        case(
            "yaml timestamp key",
            file("keys.yaml", "2024-01-01: x\n"),
            &enc_args("keys.yaml"),
            23,
            &["keys.yaml", "a timestamp"],
        ),
        case(
            "yaml int key in an encrypted file",
            file("enc.yaml", format!("7: x\n{enc_yaml}")),
            &["decrypt", "enc.yaml"],
            25,
            &["enc.yaml", "1:1", "an int, not a string"],
        ),
        case(
            "yaml duplicate key",
            file("dup.yaml", format!("a: {CANARY}\na: 2\n")),
            &enc_args("dup.yaml"),
            2,
            &["dup.yaml", "2:1", "already defined"],
        ),
        case(
            "yaml unclosed flow sequence",
            file("bad.yaml", format!("a: [{CANARY}, 2\n")),
            &enc_args("bad.yaml"),
            2,
            &["bad.yaml", "yaml parse error"],
        ),
        case(
            "yaml tab indentation",
            file("bad.yaml", format!("a:\n\tb: {CANARY}\n")),
            &enc_args("bad.yaml"),
            2,
            &["bad.yaml", "2:"],
        ),
        case(
            "yaml alias to an unknown anchor",
            file("bad.yaml", "a: *nowhere\n"),
            &enc_args("bad.yaml"),
            2,
            &["bad.yaml", "1:"],
        ),
        case(
            "yaml not UTF-8",
            file("bad.yaml", b"a: \xff\xfe\n".to_vec()),
            &enc_args("bad.yaml"),
            2,
            &["bad.yaml", "1:4", "not valid UTF-8"],
        ),
        case(
            "yaml root is a list",
            file("list.yaml", format!("- {CANARY}\n")),
            &enc_args("list.yaml"),
            23,
            &["list.yaml", "not a map"],
        ),
        case(
            "yaml already encrypted",
            file("enc.yaml", enc_yaml.clone()),
            &enc_args("enc.yaml"),
            203,
            &["enc.yaml", "already encrypted"],
        ),
        // ---- sops metadata (YAML) ----
        case(
            "sops version missing",
            file("enc.yaml", without_line(enc_yaml, "version:")),
            &["decrypt", "enc.yaml"],
            1,
            &["enc.yaml", "version", "Version string empty"],
        ),
        case(
            "sops version garbage",
            file(
                "enc.yaml",
                with_value(enc_yaml, "version:", ": ", "garbage"),
            ),
            &["decrypt", "enc.yaml"],
            1,
            &["enc.yaml", "No Major.Minor.Patch elements found"],
        ),
        case(
            "sops version with leading zero",
            file("enc.yaml", with_value(enc_yaml, "version:", ": ", "03.1.1")),
            &["decrypt", "enc.yaml"],
            1,
            &["enc.yaml", "leading zeroes"],
        ),
        case(
            "sops version empty prerelease",
            file("enc.yaml", with_value(enc_yaml, "version:", ": ", "3.1.1-")),
            &["decrypt", "enc.yaml"],
            1,
            &["enc.yaml", "Prerelease is empty"],
        ),
        case(
            "sops version missing on set",
            file("enc.yaml", without_line(enc_yaml, "version:")),
            &["set", "enc.yaml", "[\"password\"]", "\"x\""],
            1,
            &["enc.yaml", "Version string empty"],
        ),
        case(
            "sops version missing on exec-env",
            file("enc.yaml", without_line(enc_yaml, "version:")),
            &["exec-env", "enc.yaml", "true"],
            1,
            &["enc.yaml", "Version string empty"],
        ),
        case(
            "sops version missing on rotate",
            file("enc.yaml", without_line(enc_yaml, "version:")),
            &["rotate", "enc.yaml"],
            1,
            &["enc.yaml", "Version string empty"],
        ),
        case(
            "set path deeper than the depth limit",
            file("enc.yaml", enc_yaml.clone()),
            &["set", "enc.yaml", deep_path, "1"],
            91,
            &["enc.yaml", "more than 200 levels deep"],
        ),
        case(
            "sops lastmodified missing",
            file("enc.yaml", without_line(enc_yaml, "lastmodified:")),
            &["decrypt", "enc.yaml"],
            1,
            &["enc.yaml", "lastmodified"],
        ),
        case(
            "sops lastmodified garbage",
            file(
                "enc.yaml",
                with_value(enc_yaml, "lastmodified:", ": ", "yesterday"),
            ),
            &["decrypt", "enc.yaml"],
            1,
            &["enc.yaml", "lastmodified", "RFC 3339"],
        ),
        case(
            "sops metadata not a map",
            file("enc.yaml", "password: x\nsops: 3\n"),
            &["decrypt", "enc.yaml"],
            1,
            &["enc.yaml", "sops", "expected a mapping"],
        ),
        case(
            "sops mac missing",
            file("enc.yaml", without_line(enc_yaml, "mac:")),
            &["decrypt", "enc.yaml"],
            51,
            &["enc.yaml", "no MAC"],
        ),
        case(
            "sops mac tampered",
            file("enc.yaml", tamper_mac(enc_yaml)),
            &["decrypt", "enc.yaml"],
            51,
            &["enc.yaml"],
        ),
        case(
            "sops value tampered",
            file("enc.yaml", tamper_ciphertext(enc_yaml)),
            &["decrypt", "enc.yaml"],
            25,
            &["enc.yaml", "password"],
        ),
        case(
            "sops value malformed",
            file(
                "enc.yaml",
                with_value(enc_yaml, "password:", ": ", "ENC[AES256_GCM,data:zz"),
            ),
            &["decrypt", "enc.yaml"],
            25,
            &["enc.yaml", "password"],
        ),
        case(
            "sops two encryption rules",
            file(
                "enc.yaml",
                enc_yaml.replace(
                    "    unencrypted_suffix: _unencrypted\n",
                    "    unencrypted_suffix: _unencrypted\n    encrypted_regex: ^a$\n",
                ),
            ),
            &["decrypt", "enc.yaml"],
            1,
            &["enc.yaml", "more than one"],
        ),
        case(
            "sops age entry without recipient",
            file("enc.yaml", without_line(enc_yaml, "recipient:")),
            &["decrypt", "enc.yaml"],
            1,
            &["enc.yaml", "age[0].recipient", "missing"],
        ),
        case(
            "sops shamir_threshold garbage",
            file(
                "enc.yaml",
                enc_yaml.replace(
                    "    lastmodified:",
                    "    shamir_threshold: many\n    lastmodified:",
                ),
            ),
            &["decrypt", "enc.yaml"],
            1,
            &["enc.yaml", "shamir_threshold"],
        ),
        case(
            "sops age enc corrupted",
            file("enc.yaml", tamper_armor(enc_yaml)),
            &["decrypt", "enc.yaml"],
            128,
            &["enc.yaml"],
        ),
        // ---- JSON store ----
        case(
            "json deep nesting",
            file("deep.json", deep_json.clone()),
            &enc_args("deep.json"),
            2,
            &["deep.json", "1:", "nested more than 200 deep"],
        ),
        case(
            "json deep nesting in an encrypted file",
            file(
                "deep.json",
                format!("{{\"sops\": {{}}, {}", &deep_json[1..]),
            ),
            &["decrypt", "deep.json"],
            2,
            &["deep.json", "nested more than 200 deep"],
        ),
        case(
            "json trailing data",
            file("bad.json", format!("{{\"a\": \"{CANARY}\"}} x")),
            &enc_args("bad.json"),
            2,
            &["bad.json", "1:", "after the top-level object"],
        ),
        case(
            "json top-level array",
            file("bad.json", format!("[\"{CANARY}\"]")),
            &enc_args("bad.json"),
            2,
            &["bad.json", "top-level object"],
        ),
        case(
            "json bad escape",
            file("bad.json", format!("{{\"a\": \"{CANARY}\\q\"}}")),
            &enc_args("bad.json"),
            2,
            &["bad.json", "1:"],
        ),
        case(
            "json number out of range",
            file("bad.json", "{\"a\": 1e999}"),
            &enc_args("bad.json"),
            2,
            &["bad.json", "out of range"],
        ),
        case(
            "json not UTF-8",
            file("bad.json", b"{\"a\": \"\xff\"}".to_vec()),
            &enc_args("bad.json"),
            2,
            &["bad.json", "UTF-8"],
        ),
        case(
            "json over the input size limit",
            file("big.json", format!("{{\"a\": \"{}\"}}", "x".repeat(4_000))),
            &enc_args("big.json"),
            2,
            &["big.json", "SIGNET_MAX_INPUT_BYTES"],
        )
        .env("SIGNET_MAX_INPUT_BYTES", "1000"),
        case(
            "json sops version garbage",
            file(
                "enc.json",
                enc.json.replace("\"version\": \"", "\"version\": \"x"),
            ),
            &["decrypt", "enc.json"],
            1,
            &["enc.json", "Invalid character(s) found in major number"],
        ),
        case(
            "json value tampered",
            file("enc.json", tamper_ciphertext(&enc.json)),
            &["decrypt", "enc.json"],
            25,
            &["enc.json", "password"],
        ),
        // ---- dotenv store ----
        case(
            "dotenv line without =",
            file("bad.env", format!("A={CANARY}\njust words\n")),
            &enc_args("bad.env"),
            2,
            &["bad.env", "2"],
        ),
        case(
            "dotenv not UTF-8",
            file("bad.env", b"A=\xff\n".to_vec()),
            &enc_args("bad.env"),
            2,
            &["bad.env", "UTF-8"],
        ),
        case(
            "dotenv sops version missing",
            file("enc.env", without_line(&enc.dotenv, "sops_version=")),
            &["decrypt", "enc.env"],
            1,
            &["enc.env", "Version string empty"],
        ),
        case(
            "dotenv flattened metadata with a hole",
            file(
                "enc.env",
                enc.dotenv
                    .replace("sops_age__list_0__", "sops_age__list_5__"),
            ),
            &["decrypt", "enc.env"],
            1,
            &["enc.env", "age"],
        ),
        case(
            "dotenv value tampered",
            file("enc.env", tamper_ciphertext(&enc.dotenv)),
            &["decrypt", "enc.env"],
            25,
            &["enc.env", "PASSWORD"],
        ),
        // ---- INI store ----
        case(
            "ini unterminated section",
            file("bad.ini", format!("[s\na = {CANARY}\n")),
            &enc_args("bad.ini"),
            2,
            &["bad.ini", "1"],
        ),
        case(
            "ini not UTF-8",
            file("bad.ini", b"[s]\na = \xff\n".to_vec()),
            &enc_args("bad.ini"),
            2,
            &["bad.ini", "UTF-8"],
        ),
        case(
            "ini sops version garbage",
            file("enc.ini", with_value(&enc.ini, "version", "= ", "three")),
            &["decrypt", "enc.ini"],
            1,
            &["enc.ini", "No Major.Minor.Patch elements found"],
        ),
        case(
            "ini value tampered",
            file("enc.ini", tamper_ciphertext(&enc.ini)),
            &["decrypt", "enc.ini"],
            25,
            &["enc.ini", "password"],
        ),
        // ---- binary store ----
        case(
            "binary sops version missing",
            file(
                "enc.bin",
                with_value(&enc.binary, "\"version\"", ": ", "\"\""),
            ),
            &["decrypt", "enc.bin"],
            1,
            &["enc.bin", "Version string empty"],
        ),
        case(
            "binary data tampered",
            file("enc.bin", tamper_ciphertext(&enc.binary)),
            &["decrypt", "enc.bin"],
            25,
            &["enc.bin", "data"],
        ),
        case(
            "binary over the input size limit",
            file("big.bin", vec![b'x'; 4_000]),
            &enc_args("big.bin"),
            2,
            &["big.bin", "SIGNET_MAX_INPUT_BYTES"],
        )
        .env("SIGNET_MAX_INPUT_BYTES", "1000"),
        case(
            "endless input file",
            vec![],
            &[
                "encrypt",
                "--age",
                "@R",
                "--input-type",
                "binary",
                "/dev/zero",
            ],
            2,
            &["/dev/zero", "SIGNET_MAX_INPUT_BYTES"],
        )
        .env("SIGNET_MAX_INPUT_BYTES", "100000"),
        case(
            "a limit that is not a number",
            file("p.yaml", plain_yaml.clone()),
            &enc_args("p.yaml"),
            1,
            &["SIGNET_MAX_ALIAS_NODES", "not a whole number"],
        )
        .env("SIGNET_MAX_ALIAS_NODES", "lots"),
        // ---- key files ----
        case(
            "age identity file garbage",
            file("enc.yaml", enc_yaml.clone()),
            &["decrypt", "enc.yaml"],
            128,
            &["enc.yaml", "bad-keys.txt"],
        )
        .env("SOPS_AGE_KEY_FILE", "bad-keys.txt"),
        case(
            "age identity with a bad checksum",
            file("enc.yaml", enc_yaml.clone()),
            &["decrypt", "enc.yaml"],
            128,
            &["enc.yaml", "broken-keys.txt"],
        )
        .env("SOPS_AGE_KEY_FILE", "broken-keys.txt"),
        case(
            "age identity file is endless",
            file("enc.yaml", enc_yaml.clone()),
            &["decrypt", "enc.yaml"],
            128,
            &["enc.yaml", "/dev/zero", "SIGNET_MAX_INPUT_BYTES"],
        )
        .env("SOPS_AGE_KEY_FILE", "/dev/zero")
        .env("SIGNET_MAX_INPUT_BYTES", "100000"),
        case(
            "ssh private key garbage",
            file("enc.yaml", enc_yaml.clone()),
            &["decrypt", "enc.yaml"],
            128,
            &["enc.yaml", "id_bad"],
        )
        .env("SOPS_AGE_KEY_FILE", "bad-keys.txt")
        .env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", "id_bad"),
        // ---- .sops.yaml ----
        case(
            ".sops.yaml alias bomb",
            vec![
                (
                    ".sops.yaml",
                    format!("creation_rules:\n  - age: x\n{}", alias_bomb()).into(),
                ),
                ("p.yaml", plain_yaml.clone().into()),
            ],
            &["encrypt", "p.yaml"],
            1,
            &[".sops.yaml"],
        ),
        case(
            ".sops.yaml deep nesting",
            vec![
                (
                    ".sops.yaml",
                    format!(
                        "creation_rules: {}{}\n",
                        "[".repeat(10_000),
                        "]".repeat(10_000)
                    )
                    .into(),
                ),
                ("p.yaml", plain_yaml.clone().into()),
            ],
            &["encrypt", "p.yaml"],
            1,
            &[".sops.yaml"],
        ),
        case(
            ".sops.yaml bad path_regex",
            vec![
                (
                    ".sops.yaml",
                    "creation_rules:\n  - path_regex: '(['\n    age: age1x\n".into(),
                ),
                ("p.yaml", plain_yaml.clone().into()),
            ],
            &["encrypt", "p.yaml"],
            1,
            &[".sops.yaml", "creation_rules[0]"],
        ),
        case(
            ".sops.yaml creation_rules not a list",
            vec![
                (".sops.yaml", "creation_rules: 3\n".into()),
                ("p.yaml", plain_yaml.clone().into()),
            ],
            &["encrypt", "p.yaml"],
            1,
            &[".sops.yaml"],
        ),
        case(
            ".sops.yaml not UTF-8",
            vec![
                (".sops.yaml", b"creation_rules: \xff\n".to_vec()),
                ("p.yaml", plain_yaml.clone().into()),
            ],
            &["encrypt", "p.yaml"],
            1,
            &[".sops.yaml"],
        ),
        // ---- keygen ----
        case(
            "keygen -o into a missing directory",
            vec![],
            &["keygen", "-o", "home/.config/sops/age/keys.txt"],
            0,
            &["Public key: age1"],
        ),
        case(
            "keygen -o under a regular file",
            file("afile", "x"),
            &["keygen", "-o", "afile/keys.txt"],
            3,
            &["cannot write", "afile/keys.txt"],
        ),
        // ---- Secret manifests fed to seal ----
        case(
            "seal: alias bomb",
            file("secret.yaml", format!("{secret}{}", alias_bomb())),
            &["seal", "--cert", cert, "secret.yaml"],
            214,
            &["secret.yaml"],
        ),
        case(
            "seal: deep JSON",
            file("secret.json", deep_json.clone()),
            &["seal", "--cert", cert, "secret.json"],
            214,
            &["secret.json"],
        ),
        case(
            "seal: deep YAML",
            file(
                "secret.yaml",
                format!("{secret}x: {}1{}\n", "[".repeat(10_000), "]".repeat(10_000)),
            ),
            &["seal", "--cert", cert, "secret.yaml"],
            214,
            &["secret.yaml"],
        ),
        case(
            "seal: not a Secret",
            file(
                "cm.yaml",
                format!("kind: ConfigMap\nmetadata: {{name: a}}\ndata: {{a: {CANARY}}}\n"),
            ),
            &["seal", "--cert", cert, "cm.yaml"],
            214,
            &["cm.yaml", "Secret"],
        ),
        case(
            "seal: data not base64",
            file(
                "secret.yaml",
                format!(
                    "kind: Secret\nmetadata: {{name: a, namespace: b}}\ndata: {{a: \"{CANARY}!\"}}\n"
                ),
            ),
            &["seal", "--cert", cert, "secret.yaml"],
            214,
            &["secret.yaml"],
        ),
        case(
            "seal: certificate garbage",
            vec![
                ("secret.yaml", secret.clone().into()),
                ("bad.crt", "not a certificate".into()),
            ],
            &["seal", "--cert", "bad.crt", "secret.yaml"],
            213,
            &["bad.crt"],
        ),
        case(
            "seal: over the input size limit",
            file(
                "secret.yaml",
                format!("{secret}pad: {}\n", "x".repeat(4_000)),
            ),
            &["seal", "--cert", cert, "secret.yaml"],
            2,
            &["secret.yaml", "SIGNET_MAX_INPUT_BYTES"],
        )
        .env("SIGNET_MAX_INPUT_BYTES", "3000"),
        // ---- SealedSecrets fed to unseal ----
        case(
            "unseal: alias bomb",
            file("sealed.yaml", format!("{sealed}{}", alias_bomb())),
            &[
                "unseal",
                "--recovery-private-key",
                sealing_key,
                "sealed.yaml",
            ],
            214,
            &["sealed.yaml"],
        ),
        case(
            "unseal: deep JSON",
            file("sealed.json", deep_json),
            &[
                "unseal",
                "--recovery-private-key",
                sealing_key,
                "sealed.json",
            ],
            214,
            &["sealed.json"],
        ),
        case(
            "unseal: value garbage",
            file(
                "sealed.yaml",
                with_value(&sealed, "API_TOKEN:", ": ", "AgAAAA=="),
            ),
            &[
                "unseal",
                "--recovery-private-key",
                sealing_key,
                "sealed.yaml",
            ],
            210,
            &["sealed.yaml"],
        ),
        case(
            "unseal: template with a non-ASCII action",
            file(
                "sealed.yaml",
                sealed.replacen(
                    "    type: Opaque\n",
                    "    type: Opaque\n    data:\n      x: \"{{ für }}\"\n",
                    1,
                ),
            ),
            &[
                "unseal",
                "--recovery-private-key",
                sealing_key,
                "sealed.yaml",
            ],
            214,
            &["sealed.yaml", "template"],
        ),
        case(
            "unseal: recovery key garbage",
            vec![
                ("sealed.yaml", sealed.clone().into()),
                (
                    "bad.key",
                    format!("-----BEGIN RSA PRIVATE KEY-----\n{CANARY}\n").into(),
                ),
            ],
            &["unseal", "--recovery-private-key", "bad.key", "sealed.yaml"],
            128,
            &["bad.key", "unusable private key"],
        ),
    ];
    cases.push(case(
        "json sops metadata not an object",
        file(
            "enc.json",
            format!("{{\"password\": \"{CANARY}\", \"sops\": [1]}}"),
        ),
        &["decrypt", "enc.json"],
        1,
        &["enc.json", "sops", "expected a mapping"],
    ));
    cases
}

/// One character of the first age stanza's armored body changed (the YAML stays valid).
fn tamper_armor(text: &str) -> String {
    let at = text
        .find("-----BEGIN AGE ENCRYPTED FILE-----\n")
        .expect("age stanza")
        + "-----BEGIN AGE ENCRYPTED FILE-----\n".len();
    let body = at + text[at..].find(|c: char| c != ' ').unwrap() + 20;
    let mut bytes = text.as_bytes().to_vec();
    bytes[body] = if bytes[body] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// The MAC with one character of its ciphertext changed.
fn tamper_mac(text: &str) -> String {
    let at =
        text.find("mac: ENC[AES256_GCM,data:").expect("mac") + "mac: ENC[AES256_GCM,data:".len();
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// Runs one case in `dir`; returns what was wrong with it.
fn run_case(sb: &Sandbox, dir: &Path, recipient: &str, identity: &str, case: &Case) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    for (name, content) in &case.files {
        std::fs::write(dir.join(name), content).unwrap();
    }
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = case
        .files
        .iter()
        .map(|(n, c)| (dir.join(n), c.clone()))
        .collect();
    let mut cmd = sb.command("timeout");
    cmd.current_dir(dir)
        .args(["-s", "KILL", DEADLINE, "prlimit", MEMORY_CAP, "--"])
        .arg(signet_bin())
        .args(
            case.args
                .iter()
                .map(|a| if *a == "@R" { recipient } else { a }),
        )
        .envs(case.env.iter().map(|(k, v)| (k, v)));
    let run = Run::of(cmd);
    let (stdout, stderr) = (run.stdout(), run.stderr());
    let mut wrong = Vec::new();
    if run.code() != case.code {
        wrong.push(format!("exit {} instead of {}", run.code(), case.code));
    }
    for fragment in &case.says {
        if !stderr.contains(fragment) {
            wrong.push(format!("message lacks {fragment:?}"));
        }
    }
    if case.code != 0 && !stderr.starts_with("signet: ") {
        wrong.push("no `signet:` error message".into());
    }
    for secret in [CANARY, identity] {
        if stdout.contains(secret) || stderr.contains(secret) {
            wrong.push(format!("output shows {secret:?}"));
        }
    }
    for (path, content) in before {
        if std::fs::read(&path).ok().as_deref() != Some(&content[..]) {
            wrong.push(format!("{} changed", path.display()));
        }
    }
    if !wrong.is_empty() {
        wrong.push(format!("stderr: {}", stderr.trim_end()));
    }
    wrong
}

#[test]
fn bad_input_catalogue() {
    let mut sb = Sandbox::new();
    sb.signet(["keygen", "-o", "keys.txt"]).ok();
    let keys = String::from_utf8(sb.read("keys.txt")).unwrap();
    let recipient = keys
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_owned();
    let identity = keys
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("identity line")
        .to_owned();
    sb.env("SOPS_AGE_KEY_FILE", sb.join("keys.txt"));
    // Key files the key cases point at (relative to each case's directory, so written there).
    let bad_keys = "this is not an identity file\n";
    let broken_keys = keys.replace("AGE-SECRET-KEY-1", "AGE-SECRET-KEY-1Q");
    let enc = Encrypted {
        yaml: encrypt(
            &sb,
            &recipient,
            "p.yaml",
            &format!("password: {CANARY}\nother: 1\n"),
        ),
        json: encrypt(
            &sb,
            &recipient,
            "p.json",
            &format!("{{\"password\": \"{CANARY}\", \"other\": 1}}"),
        ),
        dotenv: encrypt(
            &sb,
            &recipient,
            "p.env",
            &format!("PASSWORD={CANARY}\nOTHER=1\n"),
        ),
        ini: encrypt(
            &sb,
            &recipient,
            "p.ini",
            &format!("[s]\npassword = {CANARY}\n"),
        ),
        binary: encrypt(&sb, &recipient, "p.bin", CANARY),
    };
    let cases = catalogue(&enc);
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let dir = sb.join(&format!("case-{i:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bad-keys.txt"), bad_keys).unwrap();
        std::fs::write(dir.join("broken-keys.txt"), &broken_keys).unwrap();
        std::fs::write(
            dir.join("id_bad"),
            format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{CANARY}\n"),
        )
        .unwrap();
        let wrong = run_case(&sb, &dir, &recipient, &identity, case);
        if !wrong.is_empty() {
            failures.push(format!(
                "{} (case-{i:02}):\n  {}",
                case.name,
                wrong.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
