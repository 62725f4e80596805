//! Encrypt→decrypt is the identity, and a modified encrypted file never decrypts to other data.
//!
//! Input: byte 0 picks the store (YAML, JSON, dotenv, INI, binary), bytes 1–3 a byte to change in
//! the encrypted file and how; the rest is the plaintext file. With a fixed data key and
//! `lastmodified`, the file is encrypted, emitted, parsed and decrypted: the data must come back.
//! Then one byte of the encrypted file is changed: if it still parses and decrypts, the values must
//! be what was encrypted, in order. Only formatting and the names of keys whose values are not
//! encrypted may change, and empty or null values may come and go: sops' MAC covers the bytes of
//! values, and the AAD of an encrypted value its path, so a renamed `x_unencrypted` key or a dropped
//! `k: ""` is not detected — by sops either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use signet_sops::{Metadata, stores::store_for};

fuzz_target!(|data: &[u8]| {
    let [selector, hi, lo, flip, body @ ..] = data else {
        return;
    };
    let store = store_for(signet_fuzz::format_of(*selector));
    let Ok(mut tree) = store.parse(body) else {
        return;
    };
    if tree.documents.is_empty() {
        return; // the CLI refuses to encrypt a file without a document
    }
    let original = signet_fuzz::leaves(&tree);
    let key = signet_fuzz::data_key();
    let mut meta = Metadata::default();
    let opts = EncryptOptions {
        previous: None,
        last_modified: Some("2026-01-01T00:00:00Z".to_owned()),
    };
    if engine::encrypt(&mut tree, &key, &mut meta, &opts).is_err() {
        return;
    }
    let Ok(encrypted) = store.emit(&tree) else {
        return;
    };

    let written = String::from_utf8_lossy(&encrypted).into_owned();
    let mut back = store
        .parse(&encrypted)
        .unwrap_or_else(|e| panic!("an encrypted file Signet wrote must parse: {e:?}\n{written}"));
    engine::decrypt(&mut back, &key, DecryptOptions::default()).unwrap_or_else(|e| {
        panic!("an encrypted file Signet wrote must decrypt: {e:?}\n{written}")
    });
    assert_eq!(
        original,
        signet_fuzz::leaves(&back),
        "encrypt→decrypt changed the data"
    );

    if encrypted.is_empty() || *flip == 0 {
        return;
    }
    let mut modified = encrypted;
    let at = usize::from(u16::from_be_bytes([*hi, *lo])) % modified.len();
    modified[at] ^= *flip;
    let Ok(mut tampered) = store.parse(&modified) else {
        return;
    };
    if engine::decrypt(&mut tampered, &key, DecryptOptions::default()).is_ok() {
        // Empty and null values add no bytes to sops' MAC (nor to Signet's): one may come or go.
        let values = |leaves: Vec<(usize, String, String)>| {
            leaves
                .into_iter()
                .map(|(_, _, v)| v)
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            values(original),
            values(signet_fuzz::leaves(&tampered)),
            "a modified file decrypted to other data (byte {at})"
        );
    }
});
