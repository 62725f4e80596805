//! PGP master keys against upstream sops and gpg (a temporary `GNUPGHOME` per sandbox, never the
//! user's): files either tool encrypts to a PGP key decrypt with the other in every store, through
//! gpg-agent and through key files (`SIGNET_PGP_KEY_FILE`, pure Rust, no gpg at all); key groups
//! mixing PGP and age with a Shamir threshold work both ways; the public PGP vectors decrypt exactly
//! as sops prints them; a missing or wrong key fails with exit 128 naming the file and the key;
//! `rotate` and `updatekeys` add and remove PGP keys.

use crate::sops_interop::{args, samples};
use signet_tests::sandbox::{Sandbox, sops_vectors};

/// What signet is told to run instead of gpg when a test proves gpg is not needed.
const NO_GPG: &str = "/nonexistent/gpg";

/// sops always runs the real gpg; signet runs it only when `with_gpg`.
fn signet_gpg(sb: &mut Sandbox, with_gpg: bool) {
    sb.env("SOPS_GPG_EXEC", if with_gpg { "gpg" } else { NO_GPG });
}

/// `sops -d` with the sandbox's gpg, then `signet decrypt` as configured by `signet_env`; both
/// with `extra` (e.g. `--output-type json`). Returns (signet, sops) outputs.
fn decrypt_both(
    sb: &mut Sandbox,
    file: &str,
    extra: &[&str],
    signet_env: &[(&str, &str)],
) -> (String, String) {
    sb.env("SOPS_GPG_EXEC", "gpg");
    sb.env("SIGNET_PGP_KEY_FILE", "");
    let mut sops_args = vec!["-d"];
    sops_args.extend_from_slice(extra);
    sops_args.push(file);
    let theirs = String::from_utf8(sb.peer("sops", &sops_args).ok()).unwrap();
    for (k, v) in signet_env {
        sb.env(k, v);
    }
    let mut ours_args = vec!["decrypt"];
    ours_args.extend_from_slice(extra);
    ours_args.push(file);
    let ours = String::from_utf8(sb.signet(&ours_args).ok()).unwrap();
    sb.env("SOPS_GPG_EXEC", "gpg");
    sb.env("SIGNET_PGP_KEY_FILE", "");
    (ours, theirs)
}

/// The four text stores of the interop samples.
fn store_samples() -> Vec<(&'static str, &'static str)> {
    samples()
        .into_iter()
        .filter(|(n, _)| ["doc.yaml", "doc.json", "app.env", "app.ini"].contains(n))
        .collect()
}

/// Through gpg (an ed25519/cv25519 key): signet encrypts, sops decrypts to what it prints for its
/// own encryption; sops encrypts, signet decrypts (gpg-agent) to what sops prints.
#[test]
fn pgp_files_interoperate_through_gpg_in_every_store() {
    let mut sb = Sandbox::new();
    let fp = sb.gpg_key("interop", "ecc");
    signet_gpg(&mut sb, true);
    for (name, content) in store_samples() {
        let plain = sb.write(name, content);
        let plain = plain.to_str().unwrap();
        let (ours, theirs) = (format!("ours-{name}"), format!("theirs-{name}"));
        sb.signet(args(
            &["encrypt", "--pgp", &fp, "--output", &ours],
            name,
            plain,
        ))
        .ok();
        sb.peer(
            "sops",
            args(&["-e", "--pgp", &fp, "--output", &theirs], name, plain),
        )
        .ok();
        let written = String::from_utf8(sb.read(&ours)).unwrap();
        assert!(written.contains(&fp), "{name}: {written}");
        assert!(written.contains("BEGIN PGP MESSAGE"), "{name}: {written}");
        let from_ours = sb.peer("sops", ["-d", &ours]).ok();
        let from_theirs = sb.peer("sops", ["-d", &theirs]).ok();
        assert_eq!(
            String::from_utf8_lossy(&from_ours),
            String::from_utf8_lossy(&from_theirs),
            "{name}: sops reads our PGP file as its own"
        );
        let (got, expected) = decrypt_both(&mut sb, &theirs, &[], &[("SOPS_GPG_EXEC", "gpg")]);
        assert_eq!(
            got.replace("whole: 3.0\n", "whole: 3\n"),
            expected,
            "{name}: signet (gpg-agent) reads sops' PGP file"
        );
    }
}

/// Key files in pure Rust (an RSA key in every store, a Curve25519 key in one): with gpg unusable,
/// signet encrypts to the public key of `SIGNET_PGP_KEY_FILE` and decrypts with its secret key;
/// sops (gpg) agrees both ways.
#[test]
fn pgp_key_files_interoperate_without_gpg_in_every_store() {
    let mut sb = Sandbox::new();
    let fp = sb.gpg_key("keyfile", "rsa");
    let public = sb.peer("gpg", ["--armor", "--export", &fp]).ok();
    let public = sb.write("public.asc", public);
    let secret = sb.write("secret.asc", sb.gpg_export_secret(&fp));
    let (public, secret) = (public.to_str().unwrap(), secret.to_str().unwrap());
    for (name, content) in store_samples() {
        let plain = sb.write(name, content);
        let plain = plain.to_str().unwrap();
        let (ours, theirs) = (format!("ours-{name}"), format!("theirs-{name}"));
        signet_gpg(&mut sb, false);
        sb.env("SIGNET_PGP_KEY_FILE", public);
        sb.signet(args(
            &["encrypt", "--pgp", &fp, "--output", &ours],
            name,
            plain,
        ))
        .ok();
        sb.env("SOPS_GPG_EXEC", "gpg");
        sb.peer(
            "sops",
            args(&["-e", "--pgp", &fp, "--output", &theirs], name, plain),
        )
        .ok();
        let from_ours = sb.peer("sops", ["-d", &ours]).ok();
        let from_theirs = sb.peer("sops", ["-d", &theirs]).ok();
        assert_eq!(
            String::from_utf8_lossy(&from_ours),
            String::from_utf8_lossy(&from_theirs),
            "{name}: sops reads what signet encrypted with the public key file"
        );
        // Several key files, separated like PATH: a public one, then the secret one.
        let files = format!("{public}:{secret}");
        let key_file = [
            ("SOPS_GPG_EXEC", NO_GPG),
            ("SIGNET_PGP_KEY_FILE", files.as_str()),
        ];
        let (got, expected) = decrypt_both(&mut sb, &theirs, &[], &key_file);
        assert_eq!(
            got.replace("whole: 3.0\n", "whole: 3\n"),
            expected,
            "{name}: signet reads sops' PGP file with the secret key file"
        );
    }
    // A Curve25519 key (ECDH) the same way, in one store: encrypted in pure Rust, read by sops.
    let ecc = sb.gpg_key("keyfile-ecc", "ecc");
    let ecc_public = sb.peer("gpg", ["--armor", "--export", &ecc]).ok();
    let ecc_public = sb.write("ecc-public.asc", ecc_public);
    signet_gpg(&mut sb, false);
    sb.env("SIGNET_PGP_KEY_FILE", &ecc_public);
    sb.signet(["encrypt", "--pgp", &ecc, "--output", "ecc.yaml", "doc.yaml"])
        .ok();
    let ecc_secret = sb.write("ecc-secret.asc", sb.gpg_export_secret(&ecc));
    let key_file = [
        ("SOPS_GPG_EXEC", NO_GPG),
        ("SIGNET_PGP_KEY_FILE", ecc_secret.to_str().unwrap()),
    ];
    let (got, expected) = decrypt_both(&mut sb, "ecc.yaml", &["--output-type", "json"], &key_file);
    assert_eq!(got, expected, "a Curve25519 key file");

    // The secret key inline in SIGNET_PGP_KEY works like the file.
    let inline = String::from_utf8(sb.read("secret.asc")).unwrap();
    let key_text = [
        ("SOPS_GPG_EXEC", NO_GPG),
        ("SIGNET_PGP_KEY", inline.as_str()),
    ];
    let json = ["--output-type", "json"];
    let (got, expected) = decrypt_both(&mut sb, "theirs-doc.json", &json, &key_text);
    assert_eq!(got, expected, "SIGNET_PGP_KEY");
}

/// Three key groups (PGP, age, age), any two of them needed: files from either tool open in both
/// with two groups' keys, and not with one.
#[test]
fn pgp_and_age_key_groups_with_a_shamir_threshold_interoperate() {
    let mut sb = Sandbox::new();
    let fp = sb.gpg_key("groups", "ecc");
    let mut recipients = Vec::new();
    for f in ["a.txt", "b.txt"] {
        sb.peer("age-keygen", ["-o", f]).ok();
        recipients.push(
            String::from_utf8(sb.peer("age-keygen", ["-y", f]).ok())
                .unwrap()
                .trim()
                .to_owned(),
        );
    }
    sb.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - pgp:\n          - {fp}\n      - age:\n          - {}\n      - age:\n          - {}\n",
            recipients[0], recipients[1]
        ),
    );
    sb.write("s.yaml", "secret: value\nn: 7\n");
    let a = sb.join("a.txt");
    sb.env("SOPS_AGE_KEY_FILE", &a);
    signet_gpg(&mut sb, true);
    sb.signet(["encrypt", "--output", "ours.yaml", "s.yaml"])
        .ok();
    sb.peer("sops", ["-e", "--output", "theirs.yaml", "s.yaml"])
        .ok();
    let ours = String::from_utf8(sb.read("ours.yaml")).unwrap();
    assert!(ours.contains(&format!("fp: {fp}")), "{ours}");
    assert_eq!(ours.matches("recipient:").count(), 2, "{ours}");
    assert!(ours.contains("shamir_threshold: 2"), "{ours}");
    for f in ["ours.yaml", "theirs.yaml"] {
        // PGP (gpg-agent) + age a: two groups.
        let json = ["--output-type", "json"];
        let (got, expected) = decrypt_both(&mut sb, f, &json, &[("SOPS_GPG_EXEC", "gpg")]);
        assert_eq!(got, expected, "{f}");
        // age a alone: one group of the two needed.
        signet_gpg(&mut sb, false);
        let refused = sb.signet(["decrypt", f]).fails_with(128);
        assert!(refused.contains(f) && refused.contains(&fp), "{refused}");
        signet_gpg(&mut sb, true);
    }
}

/// The public PGP vectors (Flux's, and sops' own in four stores) decrypt with their key files to
/// exactly what `sops -d` prints (sops through gpg with the key imported).
#[test]
fn pgp_vectors_decrypt_like_sops() {
    const FLUX: &str = "fluxcd-kustomize-controller/internal/controller/testdata/sops";
    let base = sops_vectors();
    let flux_key = base.join(FLUX).join("keys/pgp.asc");
    let sops_key = base.join("getsops-sops/pgp/sops_functional_tests_key.asc");
    let cases: Vec<(String, &std::path::Path, &[&str])> = vec![
        (format!("{FLUX}/algorithms/pgp.yaml"), &flux_key, &[]),
        ("getsops-sops/example.yaml".into(), &sops_key, &[]),
        ("getsops-sops/example.json".into(), &sops_key, &[]),
        ("getsops-sops/example.ini".into(), &sops_key, &[]),
        (
            "getsops-sops/example.txt".into(),
            &sops_key,
            &["--input-type", "json"],
        ),
        (
            "getsops-sops/functional-tests/res/format.enc.yaml".into(),
            &sops_key,
            &[],
        ),
        (
            "getsops-sops/functional-tests/res/format.enc.json".into(),
            &sops_key,
            &[],
        ),
        (
            "getsops-sops/functional-tests/res/format.enc.env".into(),
            &sops_key,
            &[],
        ),
        (
            "getsops-sops/functional-tests/res/format.enc.ini".into(),
            &sops_key,
            &[],
        ),
        (
            "getsops-sops/functional-tests/res/format-2.enc.ini".into(),
            &sops_key,
            &[],
        ),
        (
            "getsops-sops/functional-tests/res/comments.enc.yaml".into(),
            &sops_key,
            &[],
        ),
        (
            "getsops-sops/functional-tests/res/multiple_keys.yaml".into(),
            &sops_key,
            &[],
        ),
        (
            "getsops-sops/examples/all_in_one/config/secret.enc.json".into(),
            &sops_key,
            &[],
        ),
    ];
    let mut sb = Sandbox::new();
    for key in [&flux_key, &sops_key] {
        sb.peer("gpg", ["--batch", "--import", key.to_str().unwrap()])
            .ok();
    }
    for (file, key, extra) in cases {
        let path = base.join(&file);
        let path = path.to_str().unwrap();
        // JSON output, rendered fresh by both tools, must be identical (YAML layout is kept by
        // signet and re-indented by sops). INI is compared in its own format: sops adds an empty
        // `DEFAULT` section to the JSON of an INI file.
        let mut json = if file.ends_with(".ini") {
            vec![]
        } else {
            vec!["--output-type", "json"]
        };
        json.extend_from_slice(extra);
        let key_file = [
            ("SOPS_GPG_EXEC", NO_GPG),
            ("SIGNET_PGP_KEY_FILE", key.to_str().unwrap()),
        ];
        let (got, expected) = decrypt_both(&mut sb, path, &json, &key_file);
        assert_eq!(got, expected, "{file} with its key file");
        // And through gpg-agent, as sops itself does it.
        let (got, expected) = decrypt_both(&mut sb, path, &json, &[("SOPS_GPG_EXEC", "gpg")]);
        assert_eq!(got, expected, "{file} through gpg");
    }
}

/// No key, another key, or a key file that does not exist: exit 128 (no key could decrypt), the
/// message names the file, the fingerprint and what was tried, nothing is printed on stdout, and
/// the plaintext never shows.
#[test]
fn a_missing_or_wrong_pgp_key_fails_with_128_naming_the_file() {
    let mut sb = Sandbox::new();
    let fp = sb.gpg_key("owner", "ecc");
    let other = sb.gpg_key("other", "ecc");
    let other_key = sb.write("other.asc", sb.gpg_export_secret(&other));
    sb.write("s.yaml", "token: canary-pgp-7f3e\n");
    signet_gpg(&mut sb, true);
    // The key named by SOPS_PGP_FP, as sops reads it.
    sb.env("SOPS_PGP_FP", &fp);
    sb.signet(["encrypt", "--output", "locked.yaml", "s.yaml"])
        .ok();
    assert!(
        String::from_utf8(sb.read("locked.yaml"))
            .unwrap()
            .contains(&format!("fp: {fp}"))
    );
    let mut elsewhere = Sandbox::new();
    let copy = elsewhere.write("locked.yaml", sb.read("locked.yaml"));
    let copy = copy.to_str().unwrap();
    let missing = elsewhere.join("missing.asc");
    // (what is tried, signet's environment, what the message must say)
    type Attempt<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let attempts: Vec<Attempt> = vec![
        (
            "no key, gpg has none",
            vec![("SOPS_GPG_EXEC", "gpg")],
            "No secret key",
        ),
        (
            "another key in a key file",
            vec![
                ("SOPS_GPG_EXEC", NO_GPG),
                ("SIGNET_PGP_KEY_FILE", other_key.to_str().unwrap()),
            ],
            NO_GPG,
        ),
        (
            "a key file that does not exist",
            vec![
                ("SOPS_GPG_EXEC", NO_GPG),
                ("SIGNET_PGP_KEY_FILE", missing.to_str().unwrap()),
            ],
            "missing.asc",
        ),
    ];
    for (what, env, says) in attempts {
        for (k, v) in &env {
            elsewhere.env(k, v);
        }
        let run = elsewhere.signet(["decrypt", copy]);
        let message = run.fails_with(128);
        assert!(run.stdout().is_empty(), "{what}: printed {}", run.stdout());
        for part in ["locked.yaml", fp.as_str(), says] {
            assert!(message.contains(part), "{what}: {part} not in: {message}");
        }
        assert!(!message.contains("canary-pgp"), "{what}: {message}");
        elsewhere.env("SIGNET_PGP_KEY_FILE", "");
    }
    // sops agrees that the file cannot be opened there, with the same code.
    elsewhere.env("SOPS_GPG_EXEC", "gpg");
    elsewhere.peer("sops", ["-d", copy]).fails_with(128);
}

/// `rotate --add-pgp/--rm-pgp` and `updatekeys` treat PGP keys like age keys; sops opens the results.
#[test]
fn rotate_and_updatekeys_add_and_remove_pgp_keys() {
    let mut sb = Sandbox::new();
    let fp = sb.gpg_key("rotation", "ecc");
    sb.peer("age-keygen", ["-o", "a.txt"]).ok();
    let age = String::from_utf8(sb.peer("age-keygen", ["-y", "a.txt"]).ok())
        .unwrap()
        .trim()
        .to_owned();
    sb.write("s.yaml", "token: abc\n");
    let a = sb.join("a.txt");
    sb.env("SOPS_AGE_KEY_FILE", &a);
    signet_gpg(&mut sb, true);
    sb.signet(["encrypt", "--age", &age, "--output", "e.yaml", "s.yaml"])
        .ok();
    sb.signet(["rotate", "-i", "--add-pgp", &fp, "--rm-age", &age, "e.yaml"])
        .ok();
    let rotated = String::from_utf8(sb.read("e.yaml")).unwrap();
    assert!(
        rotated.contains(&format!("fp: {fp}")) && !rotated.contains(&age),
        "{rotated}"
    );
    // Only the PGP key opens it now.
    let (got, expected) = decrypt_both(&mut sb, "e.yaml", &[], &[("SOPS_GPG_EXEC", "gpg")]);
    assert_eq!(
        (got.as_str(), expected.as_str()),
        ("token: abc\n", "token: abc\n")
    );

    // updatekeys: the rule now wants the age key beside the PGP key.
    sb.write(
        ".sops.yaml",
        format!("creation_rules:\n  - pgp: {fp}\n    age: {age}\n"),
    );
    sb.signet(["updatekeys", "-y", "e.yaml"]).ok();
    let updated = String::from_utf8(sb.read("e.yaml")).unwrap();
    assert!(
        updated.contains(&format!("fp: {fp}")) && updated.contains(&age),
        "{updated}"
    );
    signet_gpg(&mut sb, false);
    assert_eq!(sb.signet(["decrypt", "e.yaml"]).ok(), b"token: abc\n");
    signet_gpg(&mut sb, true);
    sb.signet(["rotate", "-i", "--rm-pgp", &fp, "e.yaml"]).ok();
    let removed = String::from_utf8(sb.read("e.yaml")).unwrap();
    assert!(!removed.contains(&fp), "{removed}");
}
