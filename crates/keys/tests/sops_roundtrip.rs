//! Upstream sops 3.11 and we agree on age `enc` both ways, X25519 and post-quantum: sops
//! encrypts a file to our recipient, we unwrap its data key with our identity; then we replace
//! sops' `enc` by our own wrapping of that same key and `sops -d` decrypts the file.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use signet_keys::keygen::{IdentityKind, generate, write_identity_file};
use signet_keys::{AgeRecipient, Environment, Keyring, MasterKey, NoInteraction};
use signet_sops::metadata::{AgeEntry, MasterKeyEntry};

use crate::remote::sops;

fn run_sops(key_file: &Path, args: &[&str]) -> String {
    run_sops_with(
        key_file.parent().unwrap(),
        &[("SOPS_AGE_KEY_FILE", &key_file.display().to_string())],
        args,
    )
}

fn run_sops_with(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> String {
    let out = Command::new(sops())
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .envs(vars.iter().copied())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sops {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn indent_block(enc: &str, indent: &str) -> String {
    enc.lines().map(|l| format!("{indent}{l}\n")).collect()
}

fn round_trip(kind: IdentityKind) {
    let dir = tempfile::tempdir().unwrap();
    let generated = generate(kind);
    let key_file = dir.path().join("keys.txt");
    write_identity_file(&key_file, &generated).unwrap();
    let plain = dir.path().join("secret.yaml");
    std::fs::write(&plain, "password: hunter2\nnested:\n    token: abc\n").unwrap();

    let encrypted = run_sops(
        &key_file,
        &["-e", "--age", &generated.recipient, plain.to_str().unwrap()],
    );
    let (recipient, sops_enc) = common::age_entries(&encrypted).remove(0);
    assert_eq!(recipient, generated.recipient);

    // sops -> us: our keyring (found through SOPS_AGE_KEY_FILE) unwraps sops' enc.
    let env = Environment::from_vars([("SOPS_AGE_KEY_FILE", key_file.display().to_string())]);
    let ring = Keyring::from_environment(&env, Arc::new(NoInteraction));
    let entry = MasterKeyEntry::Age(AgeEntry {
        recipient: recipient.clone(),
        enc: sops_enc.clone(),
    });
    let data_key = signet_keys::block_on(ring.unwrap_entry(&entry))
        .unwrap()
        .expect("our identity matches");
    assert_eq!(data_key.len(), 32);

    // us -> sops: swap in our own wrapping of the same key; sops must decrypt the document.
    let ours =
        signet_keys::block_on(AgeRecipient::parse(&recipient).unwrap().wrap(&data_key)).unwrap();
    let MasterKeyEntry::Age(AgeEntry { enc: our_enc, .. }) = ours else {
        panic!()
    };
    assert_ne!(our_enc, sops_enc);
    let indent = "            ";
    let swapped = encrypted.replace(
        &indent_block(&sops_enc, indent),
        &indent_block(&our_enc, indent),
    );
    assert_ne!(swapped, encrypted, "the enc block was found and replaced");
    let swapped_path = dir.path().join("swapped.yaml");
    std::fs::write(&swapped_path, swapped).unwrap();
    let decrypted = run_sops(&key_file, &["-d", swapped_path.to_str().unwrap()]);
    assert!(decrypted.contains("password: hunter2"), "{decrypted}");
    assert!(decrypted.contains("token: abc"), "{decrypted}");
}

#[test]
fn x25519_enc_round_trips_with_sops() {
    round_trip(IdentityKind::X25519);
}

#[test]
fn post_quantum_enc_round_trips_with_sops() {
    round_trip(IdentityKind::Hybrid);
}

/// Shamir key groups agree with sops byte for byte: sops splits (3 groups, threshold 2) and we
/// combine; we split and wrap, sops combines.
#[test]
fn shamir_key_groups_round_trip_with_sops() {
    use signet_sops::metadata::Metadata;
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<_> = (0..3).map(|_| generate(IdentityKind::X25519)).collect();
    let config = format!(
        "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n{}",
        ids.iter()
            .map(|i| format!("      - age: [{}]\n", i.recipient))
            .collect::<String>()
    );
    std::fs::write(dir.path().join(".sops.yaml"), config).unwrap();
    std::fs::write(dir.path().join("s.yaml"), "password: hunter2\n").unwrap();
    let encrypted = run_sops_with(dir.path(), &[], &["-e", "s.yaml"]);
    let entries = common::age_entries(&encrypted);
    assert_eq!(entries.len(), 3);
    let entry = |(recipient, enc): &(String, String)| {
        MasterKeyEntry::Age(AgeEntry {
            recipient: recipient.clone(),
            enc: enc.clone(),
        })
    };
    let metadata = Metadata {
        key_groups: entries.iter().map(|e| vec![entry(e)]).collect(),
        shamir_threshold: Some(2),
        ..Default::default()
    };

    // sops -> us, with the identities of groups 0 and 2 only.
    let two = format!("{}\n{}", ids[0].identity.as_str(), ids[2].identity.as_str());
    let ring = Keyring::from_environment(
        &Environment::from_vars([("SOPS_AGE_KEY", two.clone())]),
        Arc::new(NoInteraction),
    );
    let data_key = signet_keys::unwrap_data_key(&metadata, &ring).unwrap();

    // us -> sops: split the same key ourselves, wrap each share, put them in sops' file.
    let groups: Vec<Vec<signet_keys::KeySpec>> = ids
        .iter()
        .map(|i| {
            vec![signet_keys::KeySpec::Age(
                AgeRecipient::parse(&i.recipient).unwrap(),
            )]
        })
        .collect();
    let ours = signet_keys::wrap_data_key(&data_key, &groups, Some(2)).unwrap();
    let indent = "                ";
    let mut swapped = encrypted.clone();
    for ((_, sops_enc), group) in entries.iter().zip(&ours) {
        let MasterKeyEntry::Age(AgeEntry { enc, .. }) = &group[0] else {
            panic!()
        };
        swapped = swapped.replace(&indent_block(sops_enc, indent), &indent_block(enc, indent));
    }
    for (_, sops_enc) in &entries {
        assert!(
            !swapped.contains(sops_enc.lines().nth(1).unwrap()),
            "every enc was replaced"
        );
    }
    std::fs::write(dir.path().join("swapped.yaml"), swapped).unwrap();
    let one_and_two = format!("{}\n{}", ids[1].identity.as_str(), ids[2].identity.as_str());
    let decrypted = run_sops_with(
        dir.path(),
        &[("SOPS_AGE_KEY", &one_and_two)],
        &["-d", "swapped.yaml"],
    );
    assert!(decrypted.contains("password: hunter2"), "{decrypted}");
}
