//! The post-quantum hybrid identity of the Flux vector opens the age entry written by sops
//! 3.12.1, and the key it yields really is the file's data key: it authenticates the file's MAC.

use crate::common;

use aes_gcm::aead::consts::U32;
use aes_gcm::aes::Aes256;
use aes_gcm::{AeadInOut, AesGcm, KeyInit, Nonce, Tag};
use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use signet_keys::{Environment, Keyring, NoInteraction};
use signet_sops::metadata::{AgeEntry, MasterKeyEntry, Metadata};
use std::sync::Arc;

fn decrypt_mac(data_key: &[u8; 32], mac: &str, last_modified: &str) -> Vec<u8> {
    let inner = mac
        .strip_prefix("ENC[AES256_GCM,")
        .unwrap()
        .strip_suffix(']')
        .unwrap();
    let field = |name: &str| {
        inner
            .split(',')
            .find_map(|p| p.strip_prefix(&format!("{name}:")))
            .unwrap()
            .to_owned()
    };
    let mut data = BASE64_STANDARD.decode(field("data")).unwrap();
    let iv = BASE64_STANDARD.decode(field("iv")).unwrap();
    let tag = BASE64_STANDARD.decode(field("tag")).unwrap();
    assert_eq!(iv.len(), 32);
    let gcm = AesGcm::<Aes256, U32>::new_from_slice(data_key).unwrap();
    gcm.decrypt_inout_detached(
        &Nonce::<U32>::try_from(iv.as_slice()).unwrap(),
        last_modified.as_bytes(),
        data.as_mut_slice().into(),
        &Tag::try_from(tag.as_slice()).unwrap(),
    )
    .expect("MAC authenticates with the unwrapped data key");
    data
}

#[test]
fn pq_identity_unwraps_the_flux_vector_data_key() {
    let dir = common::flux_sops();
    let yaml = std::fs::read_to_string(dir.join("algorithms/age-pq.yaml")).unwrap();
    let entries = common::age_entries(&yaml);
    assert_eq!(entries.len(), 1);
    let (recipient, enc) = &entries[0];
    assert!(recipient.starts_with("age1pq1"), "{recipient}");
    assert!(enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));

    // The recipient in the file parses as our hybrid type and matches the identity's public key.
    let env = Environment::from_vars([(
        "SOPS_AGE_KEY_FILE",
        dir.join("keys/age-pq.txt").display().to_string(),
    )]);
    let keyring = Keyring::from_environment(&env, Arc::new(NoInteraction));
    assert_eq!(keyring.age_recipients(), vec![recipient.clone()]);

    let metadata = Metadata {
        key_groups: vec![vec![MasterKeyEntry::Age(AgeEntry {
            recipient: recipient.clone(),
            enc: enc.clone(),
        })]],
        last_modified: common::sops_field(&yaml, "lastmodified"),
        ..Default::default()
    };
    let data_key = signet_keys::unwrap_data_key(&metadata, &keyring).unwrap();

    let mac = decrypt_mac(
        data_key.as_bytes(),
        &common::sops_field(&yaml, "mac"),
        &metadata.last_modified,
    );
    assert_eq!(mac.len(), 128);
    assert!(
        mac.iter()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
    );
}

#[test]
fn x25519_identity_unwraps_the_flux_vector_and_the_mac_authenticates() {
    let dir = common::flux_sops();
    let yaml = std::fs::read_to_string(dir.join("algorithms/age.yaml")).unwrap();
    let (recipient, enc) = common::age_entries(&yaml).remove(0);
    let env = Environment::from_vars([(
        "SOPS_AGE_KEY_FILE",
        dir.join("keys/age.txt").display().to_string(),
    )]);
    let keyring = Keyring::from_environment(&env, Arc::new(NoInteraction));
    let metadata = Metadata {
        key_groups: vec![vec![MasterKeyEntry::Age(AgeEntry { recipient, enc })]],
        last_modified: common::sops_field(&yaml, "lastmodified"),
        ..Default::default()
    };
    let data_key = signet_keys::unwrap_data_key(&metadata, &keyring).unwrap();
    let mac = decrypt_mac(
        data_key.as_bytes(),
        &common::sops_field(&yaml, "mac"),
        &metadata.last_modified,
    );
    assert_eq!(mac.len(), 128);
}

#[test]
fn wrong_identity_gives_no_match_listing_the_recipient_and_no_secret() {
    let dir = common::flux_sops();
    let yaml = std::fs::read_to_string(dir.join("algorithms/age-pq.yaml")).unwrap();
    let (recipient, enc) = common::age_entries(&yaml).remove(0);
    let env = Environment::from_vars([(
        "SOPS_AGE_KEY_FILE",
        dir.join("keys/age.txt").display().to_string(),
    )]);
    let keyring = Keyring::from_environment(&env, Arc::new(NoInteraction));
    let metadata = Metadata {
        key_groups: vec![vec![MasterKeyEntry::Age(AgeEntry {
            recipient: recipient.clone(),
            enc,
        })]],
        ..Default::default()
    };
    let err = signet_keys::unwrap_data_key(&metadata, &keyring).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, signet_keys::Error::NoIdentityMatched { .. }),
        "{message}"
    );
    assert!(message.contains(&recipient));
    assert!(!message.contains("AGE-SECRET-KEY"), "{message}");
}
