//! Shamir key groups against upstream sops: a file sops splits over two age key groups opens with
//! our `combine`, and a file we split and write with `key_groups` opens with sops.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use signet_sops::metadata::{AgeEntry, MasterKeyEntry, Metadata};
use signet_sops::stores::store_for;
use signet_sops::{DataKey, Format, shamir};

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("signet-sops-shamir-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let recipient = common::age_keygen(&path);
    (path, recipient)
}

fn sops_decrypt(dir: &Path, file: &Path, key_file: &Path) -> Vec<u8> {
    common::stdout_of(
        common::sops_command(key_file)
            .current_dir(dir)
            .arg("decrypt")
            .arg(file),
    )
}

#[test]
fn key_groups_interoperate_with_sops() {
    for (format, name, plain) in [
        (Format::Json, "doc.json", "{\"a\": \"secret\", \"n\": 3}"),
        (Format::Dotenv, "doc.env", "A=secret\nN=3\n"),
        (Format::Ini, "doc.ini", "[s]\na = secret\nn = 3\n"),
    ] {
        key_groups_roundtrip(format, name, plain);
    }
}

fn key_groups_roundtrip(format: Format, name: &str, plain: &str) {
    let dir = tempdir();
    let (k1, r1) = keygen(&dir, "k1.txt");
    let (k2, r2) = keygen(&dir, "k2.txt");
    let both = dir.join("both.txt");
    std::fs::write(
        &both,
        [std::fs::read(&k1).unwrap(), std::fs::read(&k2).unwrap()].concat(),
    )
    .unwrap();
    std::fs::write(
        dir.join(".sops.yaml"),
        format!("creation_rules:\n  - key_groups:\n    - age: [{r1}]\n    - age: [{r2}]\n    shamir_threshold: 2\n"),
    )
    .unwrap();
    let file = dir.join(name);
    std::fs::write(&file, plain).unwrap();
    let encrypted = common::stdout_of(
        common::sops_command(&both)
            .current_dir(&dir)
            .args(["encrypt"])
            .arg(&file),
    );

    // sops -> us
    let store = store_for(format);
    let mut tree = store.parse(&encrypted).unwrap();
    let meta = engine::metadata_of(&tree).unwrap().unwrap();
    assert_eq!(meta.key_groups.len(), 2);
    assert_eq!(meta.shamir_threshold, Some(2));
    let shares: Vec<Vec<u8>> = meta
        .key_groups
        .iter()
        .zip([&k1, &k2])
        .map(|(group, key)| {
            let MasterKeyEntry::Age(a) = &group[0] else {
                panic!("age entry")
            };
            common::run_with_stdin(
                Command::new("age").arg("-d").arg("-i").arg(key),
                a.enc.as_bytes(),
            )
        })
        .collect();
    assert!(shares.iter().all(|s| s.len() == 33));
    // sops puts x = 1, 2 in the last byte
    assert_eq!((shares[0][32], shares[1][32]), (1, 2));
    let refs: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
    let key = DataKey::from_slice(&shamir::combine(&refs).unwrap()).unwrap();
    engine::decrypt(&mut tree, &key, DecryptOptions::default()).unwrap();
    let ours = store.emit(&tree).unwrap();
    let enc_path = dir.join(format!("enc.{name}"));
    std::fs::write(&enc_path, &encrypted).unwrap();
    let plain_theirs = sops_decrypt(&dir, &enc_path, &both);
    assert_eq!(ours, plain_theirs, "{name}");

    // us -> sops
    let key = DataKey::generate();
    let parts = shamir::split(key.as_bytes(), 2, 2).unwrap();
    let groups = parts
        .iter()
        .zip([&r1, &r2])
        .map(|(part, r)| {
            let enc = common::run_with_stdin(Command::new("age").args(["-a", "-r", r]), part);
            vec![MasterKeyEntry::Age(AgeEntry {
                recipient: r.clone(),
                enc: String::from_utf8(enc).unwrap(),
            })]
        })
        .collect();
    let mut meta = Metadata {
        key_groups: groups,
        shamir_threshold: Some(2),
        ..Metadata::default()
    };
    let mut tree = store.parse(plain.as_bytes()).unwrap();
    engine::encrypt(&mut tree, &key, &mut meta, &EncryptOptions::default()).unwrap();
    let written = store.emit(&tree).unwrap();
    let text = String::from_utf8(written.clone()).unwrap();
    assert!(text.contains("key_groups"), "{text}");
    assert!(text.contains("shamir_threshold"), "{text}");
    let ours_path = dir.join(format!("ours.{name}"));
    std::fs::write(&ours_path, &written).unwrap();
    let theirs = sops_decrypt(&dir, &ours_path, &both);
    assert_eq!(theirs, plain_theirs, "{name}");
    std::fs::remove_dir_all(dir).ok();
}
