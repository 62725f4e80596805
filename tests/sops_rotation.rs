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
