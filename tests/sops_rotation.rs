//! `signet rotate` and `signet updatekeys` against upstream sops: rotation changes every ciphertext and
//! the data key, updatekeys only the key entries; sops opens the results with the new keys.

use signet_tests::sandbox::Sandbox;

/// A sandbox with two age identities `a.txt` and `b.txt`; returns their recipients.
fn two_keys() -> (Sandbox, String, String) {
    let sb = Sandbox::new();
    let mut recipients = Vec::new();
    for f in ["a.txt", "b.txt"] {
        sb.signet(["keygen", "-o", f]).ok();
        let text = String::from_utf8(sb.read(f)).unwrap();
        recipients.push(
            text.lines()
                .find_map(|l| l.strip_prefix("# public key: "))
                .unwrap()
                .to_owned(),
        );
    }
    (sb, recipients[0].clone(), recipients[1].clone())
}

fn value_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("ENC[") && !l.contains("mac:"))
        .collect()
}

fn decrypts_with(sb: &mut Sandbox, key: &str, file: &str) -> bool {
    let path = sb.join(key);
    sb.env("SOPS_AGE_KEY_FILE", &path);
    let ours = sb.signet(["decrypt", file]);
    let theirs = sb.peer("sops", ["-d", file]);
    assert_eq!(
        ours.code() == 0,
        theirs.code() == 0,
        "signet and sops agree on {file} with {key}"
    );
    ours.code() == 0
}

#[test]
fn rotate_changes_every_ciphertext_and_moves_recipients() {
    let (mut sb, a, b) = two_keys();
    sb.write("s.yaml", "user: admin\npassword: hunter2\nport: 5432\n");
    sb.signet(["encrypt", "--age", &a, "--output", "e.yaml", "s.yaml"])
        .ok();
    let before = String::from_utf8(sb.read("e.yaml")).unwrap();
    sb.env("SOPS_AGE_KEY_FILE", sb.join("a.txt"));
    sb.signet(["rotate", "-i", "--add-age", &b, "--rm-age", &a, "e.yaml"])
        .ok();
    let after = String::from_utf8(sb.read("e.yaml")).unwrap();
    for (old, new) in value_lines(&before).iter().zip(value_lines(&after)) {
        assert_ne!(*old, new, "every value is re-encrypted");
    }
    assert!(after.contains(&b) && !after.contains(&a), "{after}");
    assert!(decrypts_with(&mut sb, "b.txt", "e.yaml"));
    assert!(!decrypts_with(&mut sb, "a.txt", "e.yaml"));
    assert_eq!(sb.signet(["decrypt", "e.yaml"]).code(), 128);
    sb.env("SOPS_AGE_KEY_FILE", sb.join("b.txt"));
    assert_eq!(sb.signet(["decrypt", "e.yaml"]).ok(), sb.read("s.yaml"));
}

#[test]
fn updatekeys_rewraps_for_the_rule_and_leaves_values_alone() {
    let (mut sb, a, b) = two_keys();
    sb.write(".sops.yaml", format!("creation_rules:\n  - age: {a}\n"));
    sb.write("s.yaml", "user: admin\npassword: hunter2\n");
    sb.signet(["encrypt", "--output", "e.yaml", "s.yaml"]).ok();
    let before = String::from_utf8(sb.read("e.yaml")).unwrap();
    sb.write(".sops.yaml", format!("creation_rules:\n  - age: {a},{b}\n"));
    // No terminal and no -y: refused, nothing written.
    sb.env("SOPS_AGE_KEY_FILE", sb.join("a.txt"));
    sb.signet(["updatekeys", "e.yaml"]).fails_with(1);
    assert_eq!(String::from_utf8(sb.read("e.yaml")).unwrap(), before);
    let run = sb.signet(["updatekeys", "-y", "e.yaml"]);
    run.ok();
    assert!(
        run.stderr().contains(&format!("+++ {b}")),
        "{}",
        run.stderr()
    );
    let after = String::from_utf8(sb.read("e.yaml")).unwrap();
    assert_eq!(
        value_lines(&before),
        value_lines(&after),
        "values untouched"
    );
    let mac = |t: &str| t.lines().find(|l| l.contains("mac:")).unwrap().to_owned();
    assert_eq!(mac(&before), mac(&after), "the MAC is untouched");
    assert!(decrypts_with(&mut sb, "b.txt", "e.yaml"));
    assert!(decrypts_with(&mut sb, "a.txt", "e.yaml"));
    let again = sb.signet(["updatekeys", "-y", "e.yaml"]);
    again.ok();
    assert!(
        again.stderr().contains("already up to date"),
        "{}",
        again.stderr()
    );
}

/// Every line holding a ciphertext, the MAC's included.
fn ciphertext_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("ENC[")).collect()
}

/// `groups add` and `groups delete` change the key groups and nothing else (values and MAC stay
/// byte for byte), sops agrees on which keys open each result, and a group that is not there, or a
/// threshold the groups left cannot meet, is refused with the file unchanged.
#[test]
fn groups_add_and_delete_change_only_the_key_groups() {
    let (mut sb, a, b) = two_keys();
    sb.write("ab.txt", [sb.read("a.txt"), sb.read("b.txt")].concat());
    sb.write("s.yaml", "user: admin\npassword: hunter2\n");
    sb.signet(["encrypt", "--age", &a, "--output", "e.yaml", "s.yaml"])
        .ok();
    let before = String::from_utf8(sb.read("e.yaml")).unwrap();
    sb.env("SOPS_AGE_KEY_FILE", sb.join("a.txt"));

    // Without -i the result goes to stdout and the file stays.
    let two = sb
        .signet(["groups", "add", "--file", "e.yaml", "--age", &b])
        .ok();
    assert_eq!(sb.read("e.yaml"), before.as_bytes());
    sb.write("two.yaml", &two);
    let two = String::from_utf8(two).unwrap();
    assert_eq!(ciphertext_lines(&two), ciphertext_lines(&before));
    assert!(two.contains(&a) && two.contains(&b), "{two}");
    // Two groups and no threshold named: both are needed.
    assert!(!decrypts_with(&mut sb, "a.txt", "two.yaml"));
    assert!(!decrypts_with(&mut sb, "b.txt", "two.yaml"));
    assert!(decrypts_with(&mut sb, "ab.txt", "two.yaml"));

    // Out of range, or leaving a threshold of 2 with one group: refused, nothing written.
    let err = sb
        .signet(["groups", "delete", "-f", "two.yaml", "-i", "5"])
        .fails_with(1);
    assert!(err.contains("no key group 5"), "{err}");
    let err = sb
        .signet(["groups", "delete", "-f", "two.yaml", "-i", "0"])
        .fails_with(1);
    assert!(err.contains("threshold"), "{err}");
    assert_eq!(sb.read("two.yaml"), two.as_bytes());

    // Delete group 0 with the threshold lowered: only b opens the file.
    sb.signet([
        "groups",
        "remove",
        "-f",
        "two.yaml",
        "-i",
        "--shamir-secret-sharing-threshold",
        "1",
        "0",
    ])
    .ok();
    let one = String::from_utf8(sb.read("two.yaml")).unwrap();
    assert_eq!(ciphertext_lines(&one), ciphertext_lines(&before));
    assert!(decrypts_with(&mut sb, "b.txt", "two.yaml"));
    assert!(!decrypts_with(&mut sb, "a.txt", "two.yaml"));

    // A threshold of 1 over two groups is refused: sops writes such a file with an empty share
    // that no key opens.
    sb.env("SOPS_AGE_KEY_FILE", sb.join("b.txt"));
    let err = sb
        .signet([
            "groups",
            "add",
            "-f",
            "two.yaml",
            "-i",
            "--shamir-secret-sharing-threshold",
            "1",
            "--age",
            &a,
        ])
        .fails_with(1);
    assert!(err.contains("at least 2"), "{err}");
    assert_eq!(sb.read("two.yaml"), one.as_bytes());

    // sops' own `groups add` on our file reads the same way to us.
    sb.env("SOPS_AGE_KEY_FILE", sb.join("a.txt"));
    let theirs = sb
        .peer("sops", ["groups", "add", "--file", "e.yaml", "--age", &b])
        .ok();
    sb.write("theirs.yaml", theirs);
    assert!(!decrypts_with(&mut sb, "a.txt", "theirs.yaml"));
    assert!(decrypts_with(&mut sb, "ab.txt", "theirs.yaml"));
}
