//! Writes an age v1 file byte for byte as Go age does (the implementation sops uses), so the
//! `enc` fields we write look exactly like sops' own.
//!
//! The `age` crate's encryptor adds a random "grease" stanza to every header; that is valid age
//! but makes our `enc` differ in shape from sops'. This writer produces the plain header: the
//! recipient's stanzas, the header MAC, the 16-byte nonce and a single STREAM chunk (the payload
//! is a 32- or 33-byte key, far below the 64 KiB chunk size), then ASCII armor with 64-column
//! lines. Decryption still goes through the `age` crate.

use age_core::format::FileKey;
use age_core::secrecy::ExposeSecret;
use base64::Engine;
use base64::prelude::{BASE64_STANDARD, BASE64_STANDARD_NO_PAD};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit as _, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const COLUMNS: usize = 64;
const CHUNK_SIZE: usize = 64 * 1024;

/// HKDF-SHA-256 of `ikm` to 32 bytes.
pub(super) fn hkdf_sha256(salt: &[u8], info: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out[..])
        .expect("32 bytes is a valid HKDF length");
    out
}

fn push_wrapped(out: &mut String, b64: &str) {
    for chunk in b64.as_bytes().chunks(COLUMNS) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
}

/// Encrypts `payload` to `recipient` and returns the armored age file.
pub(crate) fn encrypt_armored(
    recipient: &dyn age::Recipient,
    payload: &[u8],
) -> Result<String, age::EncryptError> {
    assert!(
        payload.len() < CHUNK_SIZE,
        "only single-chunk payloads are written here"
    );
    let mut key_bytes = Zeroizing::new([0u8; 16]);
    rand::fill(&mut key_bytes[..]);
    let file_key = FileKey::init_with_mut(|k| k.copy_from_slice(&key_bytes[..]));
    let (stanzas, _labels) = recipient.wrap_file_key(&file_key)?;

    let mut header = String::from("age-encryption.org/v1\n");
    for stanza in &stanzas {
        header.push_str("-> ");
        header.push_str(&stanza.tag);
        for arg in &stanza.args {
            header.push(' ');
            header.push_str(arg);
        }
        header.push('\n');
        let body = BASE64_STANDARD_NO_PAD.encode(&stanza.body);
        push_wrapped(&mut header, &body);
        // The last body line must be shorter than a full line, so a body that fills its last
        // line (or is empty) ends with an empty line.
        if body.len() % COLUMNS == 0 {
            header.push('\n');
        }
    }
    header.push_str("---");
    let mac_key = hkdf_sha256(&[], b"header", file_key.expose_secret());
    let mut mac = Hmac::<Sha256>::new_from_slice(&mac_key[..]).expect("any key length");
    mac.update(header.as_bytes());
    header.push(' ');
    header.push_str(&BASE64_STANDARD_NO_PAD.encode(mac.finalize().into_bytes()));
    header.push('\n');

    let mut nonce = [0u8; 16];
    rand::fill(&mut nonce[..]);
    let payload_key = hkdf_sha256(&nonce, b"payload", file_key.expose_secret());
    let mut chunk_nonce = [0u8; 12];
    chunk_nonce[11] = 1; // counter 0, last chunk
    let sealed = ChaCha20Poly1305::new((&*payload_key).into())
        .encrypt(
            (&chunk_nonce).into(),
            Payload {
                msg: payload,
                aad: b"",
            },
        )
        .expect("ChaCha20-Poly1305 cannot fail on a short message");

    let mut binary = header.into_bytes();
    binary.extend_from_slice(&nonce);
    binary.extend_from_slice(&sealed);

    let mut armored = String::from("-----BEGIN AGE ENCRYPTED FILE-----\n");
    push_wrapped(&mut armored, &BASE64_STANDARD.encode(&binary));
    armored.push_str("-----END AGE ENCRYPTED FILE-----\n");
    Ok(armored)
}
