//! Key groups: one group wraps the whole key with every key; several groups split it with
//! Shamir and need `shamir_threshold` of them back.

use std::sync::Arc;

use signet_keys::keygen::{IdentityKind, generate};
use signet_keys::{
    AgeRecipient, Environment, Error, KeySpec, Keyring, NoInteraction, add_keys,
    key_specs_from_metadata, remove_entries, remove_keys, shamir_threshold_for, unwrap_data_key,
    wrap_data_key,
};
use signet_sops::DataKey;
use signet_sops::metadata::{MasterKeyEntry, Metadata};

fn spec(recipient: &str) -> KeySpec {
    KeySpec::Age(AgeRecipient::parse(recipient).unwrap())
}

fn keyring_with(identities: &[&str]) -> Keyring {
    let env = Environment::from_vars([("SOPS_AGE_KEY", identities.join("\n"))]);
    Keyring::from_environment(&env, Arc::new(NoInteraction))
}

#[test]
fn single_group_every_key_wraps_the_whole_key() {
    let (a, b) = (
        generate(IdentityKind::X25519),
        generate(IdentityKind::Hybrid),
    );
    let key = DataKey::generate();
    let groups =
        wrap_data_key(&key, &[vec![spec(&a.recipient), spec(&b.recipient)]], None).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].len(), 2);
    let meta = Metadata {
        key_groups: groups,
        shamir_threshold: shamir_threshold_for(1, None),
        ..Default::default()
    };
    assert_eq!(meta.shamir_threshold, None);
    for id in [&a, &b] {
        let got = unwrap_data_key(&meta, &keyring_with(&[id.identity.as_str()])).unwrap();
        assert_eq!(got.as_bytes(), key.as_bytes());
    }
}

#[test]
fn three_groups_threshold_two() {
    let ids: Vec<_> = (0..3).map(|_| generate(IdentityKind::X25519)).collect();
    let key = DataKey::generate();
    let groups: Vec<Vec<KeySpec>> = ids.iter().map(|i| vec![spec(&i.recipient)]).collect();
    let wrapped = wrap_data_key(&key, &groups, Some(2)).unwrap();
    let meta = Metadata {
        key_groups: wrapped,
        shamir_threshold: shamir_threshold_for(3, Some(2)),
        ..Default::default()
    };
    assert_eq!(meta.shamir_threshold, Some(2));

    // Any two groups suffice.
    for pair in [[0, 1], [0, 2], [1, 2]] {
        let ring = keyring_with(&[
            ids[pair[0]].identity.as_str(),
            ids[pair[1]].identity.as_str(),
        ]);
        assert_eq!(
            unwrap_data_key(&meta, &ring).unwrap().as_bytes(),
            key.as_bytes(),
            "{pair:?}"
        );
    }
    // One is not enough, and the error says how many were recovered.
    let err = unwrap_data_key(&meta, &keyring_with(&[ids[1].identity.as_str()])).unwrap_err();
    match &err {
        Error::ShamirThresholdNotMet {
            threshold,
            recovered,
            failures,
        } => {
            assert_eq!((*threshold, *recovered), (2, 1));
            assert!(
                failures.iter().any(|f| f.contains(&ids[0].recipient)),
                "{failures:?}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    // Each share is a 33-byte Shamir share, not the key itself.
    let ring = keyring_with(&[ids[0].identity.as_str()]);
    let share = signet_keys::block_on(ring.unwrap_entry(&meta.key_groups[0][0]))
        .unwrap()
        .unwrap();
    assert_eq!(share.len(), 33);
    assert_eq!(share[32], 1, "x coordinate of group 0 is 1");
}

#[test]
fn empty_group_and_no_groups_are_errors() {
    let key = DataKey::generate();
    let none: Vec<Vec<KeySpec>> = Vec::new();
    assert!(matches!(
        wrap_data_key(&key, &none, None),
        Err(Error::InvalidKeyGroups(_))
    ));
    let a = generate(IdentityKind::X25519);
    let groups = vec![vec![spec(&a.recipient)], vec![]];
    assert!(matches!(
        wrap_data_key(&key, &groups, None),
        Err(Error::InvalidKeyGroups(_))
    ));
}

#[test]
fn add_and_remove_recipients_for_rotate() {
    let (a, b) = (
        generate(IdentityKind::X25519),
        generate(IdentityKind::X25519),
    );
    let key = DataKey::generate();
    let mut meta = Metadata {
        key_groups: wrap_data_key(&key, &[vec![spec(&a.recipient)]], None).unwrap(),
        ..Default::default()
    };
    let mut specs = key_specs_from_metadata(&meta).unwrap();
    add_keys(&mut specs, [spec(&b.recipient)]);
    assert_eq!(remove_keys(&mut specs, &[spec(&a.recipient)]), 1);
    meta.key_groups = wrap_data_key(&key, &specs, None).unwrap();
    assert!(unwrap_data_key(&meta, &keyring_with(&[a.identity.as_str()])).is_err());
    assert_eq!(
        unwrap_data_key(&meta, &keyring_with(&[b.identity.as_str()]))
            .unwrap()
            .as_bytes(),
        key.as_bytes()
    );
    assert_eq!(
        remove_entries(&mut meta.key_groups, &[spec(&b.recipient)]),
        1
    );
    assert!(
        meta.key_groups[0]
            .iter()
            .all(|e| !matches!(e, MasterKeyEntry::Age(_)))
    );
}

#[test]
fn rewrap_keeps_unchanged_entries_for_updatekeys() {
    let (a, b) = (
        generate(IdentityKind::X25519),
        generate(IdentityKind::X25519),
    );
    let key = DataKey::generate();
    let before = wrap_data_key(&key, &[vec![spec(&a.recipient)]], None).unwrap();
    let after = signet_keys::rewrap_data_key(
        &key,
        &before,
        &[vec![spec(&a.recipient), spec(&b.recipient)]],
        None,
    )
    .unwrap();
    assert_eq!(after[0][0], before[0][0], "a's entry is kept byte for byte");
    assert_eq!(after[0].len(), 2);
    let meta = Metadata {
        key_groups: after,
        ..Default::default()
    };
    assert_eq!(
        unwrap_data_key(&meta, &keyring_with(&[b.identity.as_str()]))
            .unwrap()
            .as_bytes(),
        key.as_bytes()
    );
    // Dropping a key drops its entry.
    let only_b =
        signet_keys::rewrap_data_key(&key, &meta.key_groups, &[vec![spec(&b.recipient)]], None)
            .unwrap();
    assert_eq!(only_b[0], vec![meta.key_groups[0][1].clone()]);
}
