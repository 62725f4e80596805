//! age's X25519 recipient type (`age1…` and its secret key) with its shared secrets computed by
//! aws-lc, which took 24.6 µs per shared secret here against x25519-dalek's 54.0 µs (dalek's
//! Montgomery ladder runs on its portable field arithmetic). Opening a sops file costs one; a
//! re-wrap (`rekey`, `updatekeys`) two more. The key strings are still validated by the
//! `age` crate; the stanza is age's, byte for byte.
//!
//! Stanza: `-> X25519 <base64(ephemeral share)>` and a 32-byte body, the file key sealed with
//! ChaCha20-Poly1305 (zero nonce) under HKDF-SHA-256(shared secret, salt = ephemeral share ||
//! recipient, info = `age-encryption.org/v1/X25519`).

use std::collections::HashSet;

use age_core::format::{FILE_KEY_BYTES, FileKey, Stanza};
use age_core::secrecy::ExposeSecret;
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use base64::Engine;
use base64::prelude::BASE64_STANDARD_NO_PAD;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit};
use zeroize::Zeroizing;

use super::format::hkdf_sha256;
use super::pq::{bech32_decode, bech32_encode};

/// Bech32 HRP of recipients.
const RECIPIENT_HRP: &str = "age";
/// The stanza tag.
const STANZA_TAG: &str = "X25519";
/// The HKDF info string.
const KEY_LABEL: &[u8] = b"age-encryption.org/v1/X25519";
/// Length of a share (public key) and of a shared secret.
const SHARE_LEN: usize = 32;
/// A stanza body: the sealed file key and its tag.
const BODY_LEN: usize = FILE_KEY_BYTES + 16;

/// An age X25519 identity (secret key). The scalar is held once, by aws-lc.
pub struct X25519Identity {
    secret: PrivateKey,
    /// Our own share: the second half of the HKDF salt.
    public: [u8; SHARE_LEN],
}

impl X25519Identity {
    /// Parses an age X25519 secret-key string. The error never echoes it.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let parsed: age::x25519::Identity = s.parse().map_err(|_| "malformed X25519 secret key")?;
        let (_, scalar) = bech32_decode(parsed.to_string().expose_secret())?;
        let secret = PrivateKey::from_private_key(&X25519, &scalar)
            .map_err(|_| "malformed X25519 secret key")?;
        let public = share(&secret).ok_or("malformed X25519 secret key")?;
        Ok(X25519Identity { secret, public })
    }

    /// The matching recipient.
    pub fn to_public(&self) -> X25519Recipient {
        X25519Recipient {
            public: self.public,
        }
    }
}

impl age::Identity for X25519Identity {
    /// As age does: `None` for another stanza type or a file key sealed for someone else; an
    /// error for a malformed stanza or a shared secret of zero (a low-order ephemeral share).
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != STANZA_TAG {
            return None;
        }
        let invalid = || Some(Err(age::DecryptError::InvalidHeader));
        let [arg] = &stanza.args[..] else {
            return invalid();
        };
        // The base64 decoder refuses a non-canonical encoding (stray bits in the last character).
        let Ok(ephemeral) = <[u8; SHARE_LEN]>::try_from(
            BASE64_STANDARD_NO_PAD
                .decode(arg.as_bytes())
                .unwrap_or_default(),
        ) else {
            return invalid();
        };
        if stanza.body.len() != BODY_LEN {
            return invalid();
        }
        let Some(wrap_key) = wrap_key(&self.secret, &ephemeral, &ephemeral, &self.public) else {
            return invalid();
        };
        let opened = ChaCha20Poly1305::new((&*wrap_key).into())
            .decrypt(&[0u8; 12].into(), &stanza.body[..])
            .ok()
            .map(Zeroizing::new)?;
        // 16 bytes: the body is 32 and the tag 16.
        (opened.len() == FILE_KEY_BYTES)
            .then(|| Ok(FileKey::init_with_mut(|k| k.copy_from_slice(&opened))))
    }
}

/// An `age1…` recipient.
#[derive(Clone)]
pub struct X25519Recipient {
    public: [u8; SHARE_LEN],
}

impl X25519Recipient {
    /// Parses an `age1…` string.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let parsed: age::x25519::Recipient = s.parse()?;
        let (_, bytes) = bech32_decode(&parsed.to_string())?;
        let public = <[u8; SHARE_LEN]>::try_from(&bytes[..]).map_err(|_| "invalid public key")?;
        Ok(X25519Recipient { public })
    }
}

/// The `age1…` string, as age writes it.
impl std::fmt::Display for X25519Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&bech32_encode(RECIPIENT_HRP, &self.public))
    }
}

impl age::Recipient for X25519Recipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let failed = |what: &str| {
            age::EncryptError::Io(std::io::Error::other(format!("X25519 recipient: {what}")))
        };
        // Drawn as the file key is (`rand`'s generator, seeded from the OS).
        let mut scalar = Zeroizing::new([0u8; SHARE_LEN]);
        rand::fill(&mut scalar[..]);
        let ephemeral = PrivateKey::from_private_key(&X25519, &scalar[..])
            .map_err(|_| failed("no ephemeral key"))?;
        let share = share(&ephemeral).ok_or_else(|| failed("no ephemeral key"))?;
        // A low-order recipient gives a shared secret of zero: refused, as Go age refuses it.
        let wrap_key = wrap_key(&ephemeral, &self.public, &share, &self.public)
            .ok_or_else(|| failed("a low-order public key"))?;
        let body = ChaCha20Poly1305::new((&*wrap_key).into())
            .encrypt(&[0u8; 12].into(), &file_key.expose_secret()[..])
            .map_err(|_| failed("sealing the file key"))?;
        let stanza = Stanza {
            tag: STANZA_TAG.to_owned(),
            args: vec![BASE64_STANDARD_NO_PAD.encode(share)],
            body,
        };
        Ok((vec![stanza], HashSet::new()))
    }
}

/// `secret`'s public share.
fn share(secret: &PrivateKey) -> Option<[u8; SHARE_LEN]> {
    let public = secret.compute_public_key().ok()?;
    <[u8; SHARE_LEN]>::try_from(public.as_ref()).ok()
}

/// The key that seals a file key: HKDF of X25519(`secret`, `peer`) with the salt `ephemeral ||
/// recipient`; `None` when the shared secret is zero (aws-lc refuses it).
fn wrap_key(
    secret: &PrivateKey,
    peer: &[u8; SHARE_LEN],
    ephemeral: &[u8; SHARE_LEN],
    recipient: &[u8; SHARE_LEN],
) -> Option<Zeroizing<[u8; 32]>> {
    let mut salt = [0u8; 2 * SHARE_LEN];
    salt[..SHARE_LEN].copy_from_slice(ephemeral);
    salt[SHARE_LEN..].copy_from_slice(recipient);
    agreement::agree(
        secret,
        UnparsedPublicKey::new(&X25519, peer),
        (),
        |shared| Ok(hkdf_sha256(&salt, KEY_LABEL, shared)),
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::{Identity as _, Recipient as _};

    fn file_key(byte: u8) -> FileKey {
        FileKey::init_with_mut(|k| *k = [byte; FILE_KEY_BYTES])
    }

    fn pair() -> (age::x25519::Identity, X25519Identity, X25519Recipient) {
        let reference = age::x25519::Identity::generate();
        let ours = X25519Identity::parse(reference.to_string().expose_secret()).unwrap();
        let recipient = X25519Recipient::parse(&reference.to_public().to_string()).unwrap();
        (reference, ours, recipient)
    }

    #[test]
    fn the_age_crate_and_this_module_open_each_others_stanzas() {
        for _ in 0..16 {
            let (reference, ours, recipient) = pair();
            // Ours wraps, the reference unwraps.
            let (stanzas, labels) = recipient.wrap_file_key(&file_key(7)).unwrap();
            assert!(labels.is_empty());
            assert_eq!(stanzas.len(), 1);
            assert_eq!(stanzas[0].tag, "X25519");
            let opened = reference.unwrap_stanza(&stanzas[0]).unwrap().unwrap();
            assert_eq!(opened.expose_secret(), &[7; FILE_KEY_BYTES]);
            // The reference wraps, ours unwraps.
            let (stanzas, _) = reference.to_public().wrap_file_key(&file_key(9)).unwrap();
            let opened = ours.unwrap_stanza(&stanzas[0]).unwrap().unwrap();
            assert_eq!(opened.expose_secret(), &[9; FILE_KEY_BYTES]);
            assert_eq!(
                ours.to_public().to_string(),
                reference.to_public().to_string()
            );
        }
    }

    #[test]
    fn another_recipients_stanza_is_not_ours_and_a_malformed_one_is_an_error() {
        let (_, ours, _) = pair();
        let (_, _, other) = pair();
        let (stanzas, _) = other.wrap_file_key(&file_key(1)).unwrap();
        let copy = |s: &Stanza| Stanza {
            tag: s.tag.clone(),
            args: s.args.clone(),
            body: s.body.clone(),
        };
        let good = copy(&stanzas[0]);
        assert!(ours.unwrap_stanza(&good).is_none(), "sealed for another");
        let scrypt = Stanza {
            tag: "scrypt".into(),
            ..copy(&good)
        };
        assert!(ours.unwrap_stanza(&scrypt).is_none(), "another type");

        let is_invalid_header = |stanza: &Stanza| {
            matches!(
                ours.unwrap_stanza(stanza),
                Some(Err(age::DecryptError::InvalidHeader))
            )
        };
        let with = |f: &dyn Fn(&mut Stanza)| {
            let mut s = copy(&good);
            f(&mut s);
            s
        };
        assert!(is_invalid_header(&with(&|s| s.args.push("x".into()))));
        assert!(is_invalid_header(&with(&|s| s.args.clear())));
        assert!(is_invalid_header(&with(&|s| s.args[0].push('A'))));
        assert!(is_invalid_header(&with(&|s| {
            s.args[0] = BASE64_STANDARD_NO_PAD.encode([1u8; 31])
        })));
        assert!(is_invalid_header(&with(&|s| s
            .body
            .pop()
            .map(drop)
            .unwrap())));
        // A non-canonical last character (stray low bits) is refused, as age refuses it.
        let canonical = &good.args[0];
        let last = canonical.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let index = alphabet.find(last).unwrap();
        let stray = alphabet.chars().nth(index ^ 1).unwrap();
        let mut non_canonical = canonical.clone();
        non_canonical.pop();
        non_canonical.push(stray);
        assert_eq!(
            BASE64_STANDARD_NO_PAD.decode(&non_canonical).ok(),
            None,
            "the base64 crate already refuses it"
        );
        assert!(is_invalid_header(&with(
            &|s| s.args[0] = non_canonical.clone()
        )));
    }

    #[test]
    fn a_low_order_share_is_refused_both_ways() {
        let (_, ours, _) = pair();
        // u = 0 and u = 1 are low-order points: every shared secret with them is zero.
        for point in [[0u8; SHARE_LEN], {
            let mut one = [0u8; SHARE_LEN];
            one[0] = 1;
            one
        }] {
            let stanza = Stanza {
                tag: "X25519".into(),
                args: vec![BASE64_STANDARD_NO_PAD.encode(point)],
                body: vec![0; BODY_LEN],
            };
            assert!(matches!(
                ours.unwrap_stanza(&stanza),
                Some(Err(age::DecryptError::InvalidHeader))
            ));
            let low = X25519Recipient { public: point };
            assert!(low.wrap_file_key(&file_key(3)).is_err());
        }
    }
}
