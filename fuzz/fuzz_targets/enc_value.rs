//! The `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` codec: parse and render back; open with a fixed
//! key (must fail cleanly: the input was not sealed with it); typed plaintext conversion of every
//! type; seal→open is the identity; the `--extract` path syntax.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sops::cipher::{EncryptedValue, ValueCipher, ValueType, looks_encrypted, typed_value};

const TYPES: [ValueType; 7] = [
    ValueType::Str,
    ValueType::Int,
    ValueType::Float,
    ValueType::Bool,
    ValueType::Time,
    ValueType::Bytes,
    ValueType::Comment,
];

fuzz_target!(|data: &[u8]| {
    for ty in TYPES {
        let _ = typed_value(data, ty, "fuzz:");
    }
    let cipher = ValueCipher::new(&signet_fuzz::data_key());
    let sealed = cipher.seal_with_iv(data, "fuzz:", ValueType::Bytes, &[7; 32]);
    let parsed = EncryptedValue::parse(&sealed, "fuzz:").expect("a sealed value parses");
    let opened = cipher
        .open(&parsed, "fuzz:", "fuzz:")
        .expect("a sealed value opens");
    assert_eq!(opened.as_slice(), data, "seal then open changed the value");
    assert!(
        cipher.open(&parsed, "other:", "fuzz:").is_err(),
        "a value opened under another path"
    );

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = signet_sops::path::parse_path(text);
    let _ = looks_encrypted(text);
    if let Ok(value) = EncryptedValue::parse(text, "fuzz:") {
        let rendered = value.render();
        let again = EncryptedValue::parse(&rendered, "fuzz:").expect("a rendered value parses");
        assert_eq!(again.render(), rendered, "render is not stable");
    }
    let _ = cipher.decrypt_value(text, "fuzz:", "fuzz:");
});
