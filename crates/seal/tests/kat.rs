//! Known-answer tests: with a fixed session key and OAEP seed, sealing gives exactly the bytes derived
//! independently by `tests/fixtures/seal/kat/derive.py` (hashlib + Python integers for OAEP,
//! `cryptography` for AES-GCM, cross-checked by `cryptography`'s OAEP decryption).

use signet_seal::deterministic::seal_bytes_deterministic;
use signet_seal::{PrivateKeyRing, SealingCertificate, open};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/seal/kat")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> Vec<serde_json::Value> {
    serde_json::from_slice(&fixture("vectors.json")).unwrap()
}

#[test]
fn deterministic_sealing_matches_the_independent_vectors() {
    let cert = SealingCertificate::from_pem(&fixture("cert.pem")).unwrap();
    let vectors = vectors();
    assert_eq!(vectors.len(), 4);
    for v in &vectors {
        let field = |k: &str| v[k].as_str().unwrap().to_owned();
        let session_key: [u8; 32] = hex(&field("session_key_hex")).try_into().unwrap();
        let seed: [u8; 32] = hex(&field("oaep_seed_hex")).try_into().unwrap();
        let sealed = seal_bytes_deterministic(
            &cert,
            field("label").as_bytes(),
            &hex(&field("plaintext_hex")),
            &session_key,
            &seed,
        )
        .unwrap();
        use base64::Engine;
        let expected = base64::engine::general_purpose::STANDARD
            .decode(field("sealed"))
            .unwrap();
        assert_eq!(sealed, expected, "vector {}", field("name"));
    }
}

#[test]
fn the_vectors_open_with_both_key_encodings() {
    for key_file in ["key.pem", "key-pkcs1.pem"] {
        let mut ring = PrivateKeyRing::new();
        assert_eq!(
            ring.add_from_bytes(&fixture(key_file), key_file).unwrap(),
            1
        );
        for v in vectors() {
            let field = |k: &str| v[k].as_str().unwrap().to_owned();
            let plain = open(&ring, field("label").as_bytes(), &field("sealed")).unwrap();
            assert_eq!(&plain[..], &hex(&field("plaintext_hex"))[..]);
        }
    }
}
