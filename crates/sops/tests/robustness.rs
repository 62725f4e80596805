//! Untrusted input never panics: arbitrary bytes through every store's parser, arbitrary strings
//! through the ENC codec and the path parser, and arbitrary `sops` maps through the metadata reader.

use proptest::prelude::*;
use signet_sops::cipher::{EncryptedValue, ValueCipher};
use signet_sops::engine::{self, DecryptOptions};
use signet_sops::metadata::Metadata;
use signet_sops::path::parse_path;
use signet_sops::stores::{
    binary::BinaryStore, dotenv::DotenvStore, ini::IniStore, json::JsonStore,
};
use signet_sops::{DataKey, Store};

fn json_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just(",".to_owned()),
            Just(":".to_owned()),
            Just("\"sops\"".to_owned()),
            Just("\"mac\"".to_owned()),
            Just("\"lastmodified\"".to_owned()),
            Just("\"2024-01-01T00:00:00Z\"".to_owned()),
            Just("\"ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\"".to_owned()),
            Just("null".to_owned()),
            Just("1e400".to_owned()),
            Just("-0".to_owned()),
            Just("\"\\ud800\"".to_owned()),
            "[a-z0-9\" \\\\]{0,6}",
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn stores_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        for store in [&JsonStore as &dyn Store, &DotenvStore, &IniStore, &BinaryStore] {
            if let Ok(tree) = store.parse(&bytes) {
                let _ = store.emit(&tree);
                let _ = engine::metadata_of(&tree);
            }
        }
    }

    #[test]
    fn json_like_input_never_panics(text in json_like()) {
        if let Ok(mut tree) = JsonStore.parse(text.as_bytes()) {
            let _ = JsonStore.emit(&tree);
            let _ = engine::decrypt(&mut tree, &DataKey::from_slice(&[1; 32]).unwrap(), DecryptOptions::default());
        }
    }

    #[test]
    fn flattened_metadata_never_panics(lines in prop::collection::vec("sops_[a-z_]{0,12}(__list_[0-9]|__map_[a-z]{1,4}){0,3}=[a-z0-9:-]{0,12}", 0..12)) {
        let text = lines.join("\n");
        if let Ok(tree) = DotenvStore.parse(text.as_bytes()) {
            let _ = engine::metadata_of(&tree);
        }
    }

    #[test]
    fn enc_values_never_panic(s in "ENC\\[AES256_GCM,(data:[A-Za-z0-9+/=]{0,12},?|iv:[A-Za-z0-9+/=]{0,48},?|tag:[A-Za-z0-9+/=]{0,26},?|type:[a-z]{0,7},?){0,5}\\]?") {
        let cipher = ValueCipher::new(&DataKey::from_slice(&[2; 32]).unwrap());
        let _ = EncryptedValue::parse(&s, "p");
        prop_assert!(cipher.decrypt_value(&s, "p:", "p").is_err() || s.is_empty());
    }

    #[test]
    fn paths_never_panic(s in "[\\[\\]\"'0-9a-z\\\\ ]{0,20}") {
        let _ = parse_path(&s);
    }
}

#[test]
fn metadata_reader_rejects_wrong_shapes() {
    for bad in [
        r#"{"sops": "x"}"#,
        r#"{"sops": {"lastmodified": "nope", "mac": ""}}"#,
        r#"{"sops": {"mac": ""}}"#,
        r#"{"sops": {"lastmodified": "2024-01-01T00:00:00Z", "age": {"a": 1}}}"#,
        r#"{"sops": {"lastmodified": "2024-01-01T00:00:00Z", "age": [{"recipient": "r"}]}}"#,
        r#"{"sops": {"lastmodified": "2024-01-01T00:00:00Z", "encrypted_regex": "a", "unencrypted_suffix": "b"}}"#,
        r#"{"sops": {"lastmodified": "2024-01-01T00:00:00Z", "shamir_threshold": "many"}}"#,
    ] {
        let tree = JsonStore.parse(bad.as_bytes()).unwrap();
        let err = engine::metadata_of(&tree).unwrap_err();
        assert!(
            matches!(err, signet_sops::Error::InvalidMetadata { .. }),
            "{bad}: {err}"
        );
    }
    // accepted: null/[] lists, missing version, bare fields in any order
    let ok = r#"{"sops": {"version": "3.7.3", "kms": null, "pgp": [], "mac": "ENC[x]", "lastmodified": "2024-01-01T00:00:00+02:00", "age": [{"enc": "E", "recipient": "R"}]}}"#;
    let m: Metadata = engine::metadata_of(&JsonStore.parse(ok.as_bytes()).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(m.key_groups.len(), 1);
    assert_eq!(
        engine::mac_aad(&m.last_modified).unwrap(),
        "2024-01-01T00:00:00+02:00"
    );
}
