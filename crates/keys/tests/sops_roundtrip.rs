//! Upstream sops 3.11 and we agree on age `enc` both ways, X25519 and post-quantum: sops
//! encrypts a file to our recipient, we unwrap its data key with our identity; then we replace
//! sops' `enc` by our own wrapping of that same key and `sops -d` decrypts the file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use signet_keys::keygen::{IdentityKind, generate, write_identity_file};
use signet_keys::{AgeRecipient, Environment, Keyring, MasterKey, NoInteraction};
use signet_sops::metadata::{AgeEntry, MasterKeyEntry};

fn sops() -> PathBuf {
    let path = PathBuf::from("/root/.cache/signet/bin/sops");
    assert!(
        path.exists(),
        "upstream sops is not installed; run scripts/bootstrap"
    );
    path
}

fn run_sops(key_file: &Path, args: &[&str]) -> String {
    let out = Command::new(sops())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", key_file.parent().unwrap())
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("SOPS_AGE_KEY_FILE", key_file)
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
