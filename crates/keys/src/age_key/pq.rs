//! age's post-quantum hybrid recipient type (`age1pq1…` / `AGE-SECRET-KEY-PQ-1…`, stanza
//! `mlkem768x25519`), which the `age` crate 0.12 does not have.
//!
//! Per the age specification: the file key is sealed with HPKE (RFC 9180) base mode using the
//! X-Wing KEM (ML-KEM-768 combined with X25519), HKDF-SHA256 and ChaCha20-Poly1305, with info string
//! `age-encryption.org/mlkem768x25519` and empty AAD. The stanza carries one argument, the
//! unpadded base64 of the 1,120-byte encapsulation, and the 32-byte sealed file key as its body.
//! The identity is the 32-byte X-Wing seed; the recipient is the 1,216-byte encapsulation key.
//! Both are Bech32 without Bech32's 90-character limit.

use std::collections::HashSet;
use std::fmt;

use age_core::format::{FILE_KEY_BYTES, FileKey, Stanza};
use age_core::secrecy::ExposeSecret;
use base64::Engine;
use base64::prelude::BASE64_STANDARD_NO_PAD;
use bech32::Hrp;
use bech32::primitives::decode::CheckedHrpstring;
use zeroize::Zeroizing;

use super::xwing::{self, XWING_CIPHERTEXT_LEN, XWING_PUBLIC_KEY_LEN};

/// The stanza type written for this recipient.
pub const STANZA_TAG: &str = "mlkem768x25519";
/// The HPKE info string.
const HPKE_INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
/// Bech32 HRP of recipients.
const RECIPIENT_HRP: &str = "age1pq";
/// Bech32 HRP of identities (written upper case).
const IDENTITY_HRP: &str = "AGE-SECRET-KEY-PQ-";
/// ChaCha20-Poly1305 tag length.
const TAG_LEN: usize = 16;

/// Bech32 exactly as BIP-173 but without its length limit (age's keys are longer than 90 chars).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Bech32Unlimited {}

impl bech32::Checksum for Bech32Unlimited {
    type MidstateRepr = u32;
    type CorrectionField = <bech32::Bech32 as bech32::Checksum>::CorrectionField;
    const ROOT_GENERATOR: Self::CorrectionField = bech32::Bech32::ROOT_GENERATOR;
    const ROOT_EXPONENTS: std::ops::RangeInclusive<usize> = bech32::Bech32::ROOT_EXPONENTS;
    const CODE_LENGTH: usize = usize::MAX;
    const CHECKSUM_LENGTH: usize = bech32::Bech32::CHECKSUM_LENGTH;
    const GENERATOR_SH: [u32; 5] = bech32::Bech32::GENERATOR_SH;
    const TARGET_RESIDUE: u32 = bech32::Bech32::TARGET_RESIDUE;
}

/// Decodes unlimited-length Bech32, returning the HRP (as written) and the data bytes.
pub(crate) fn bech32_decode(s: &str) -> Result<(String, Zeroizing<Vec<u8>>), &'static str> {
    let parsed =
        CheckedHrpstring::new::<Bech32Unlimited>(s).map_err(|_| "invalid Bech32 encoding")?;
    let hrp = parsed.hrp().as_str().to_owned();
    let data = Zeroizing::new(parsed.byte_iter().collect::<Vec<u8>>());
    Ok((hrp, data))
}

/// Encodes unlimited-length Bech32 (lower case).
pub(crate) fn bech32_encode(hrp: &str, data: &[u8]) -> String {
    let hrp = Hrp::parse(&hrp.to_ascii_lowercase()).expect("constant HRP is valid");
    bech32::encode::<Bech32Unlimited>(hrp, data).expect("unlimited length cannot overflow")
}

/// A post-quantum hybrid age recipient (`age1pq1…`).
#[derive(Clone)]
pub struct HybridRecipient {
    public_key: xwing::PublicKey,
}

impl HybridRecipient {
    /// Parses an `age1pq1…` recipient.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let (hrp, data) = bech32_decode(s)?;
        if hrp != RECIPIENT_HRP {
            return Err("not an age1pq recipient");
        }
        if data.len() != XWING_PUBLIC_KEY_LEN {
            return Err("invalid ML-KEM-768+X25519 public key length");
        }
        let public_key = xwing::PublicKey::from_bytes(&data);
        Ok(HybridRecipient { public_key })
    }
}

impl fmt::Display for HybridRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32_encode(RECIPIENT_HRP, &self.public_key.to_bytes()))
    }
}

impl fmt::Debug for HybridRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HybridRecipient({self})")
    }
}

impl age::Recipient for HybridRecipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let (encapsulation, sealed) =
            xwing::hpke_seal(&self.public_key, HPKE_INFO, file_key.expose_secret());
        let stanza = Stanza {
            tag: STANZA_TAG.to_owned(),
            args: vec![BASE64_STANDARD_NO_PAD.encode(encapsulation)],
            body: sealed,
        };
        // Like Go age: a post-quantum recipient may only be mixed with other post-quantum ones.
        Ok((vec![stanza], HashSet::from(["postquantum".to_owned()])))
    }
}

/// A post-quantum hybrid age identity (`AGE-SECRET-KEY-PQ-1…`): the 32-byte X-Wing seed.
#[derive(Clone)]
pub struct HybridIdentity {
    private_key: xwing::PrivateKey,
}

impl HybridIdentity {
    /// Parses an `AGE-SECRET-KEY-PQ-1…` identity. The error never contains key material.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let (hrp, seed) = bech32_decode(s)?;
        if hrp != IDENTITY_HRP {
            return Err("not an AGE-SECRET-KEY-PQ- identity");
        }
        let seed: &[u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| "invalid ML-KEM-768+X25519 secret key length")?;
        let private_key = xwing::PrivateKey::from_seed(seed);
        Ok(HybridIdentity { private_key })
    }

    /// A fresh random identity.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::fill(&mut seed[..]);
        HybridIdentity {
            private_key: xwing::PrivateKey::from_seed(&seed),
        }
    }

    /// The matching recipient.
    pub fn to_public(&self) -> HybridRecipient {
        HybridRecipient {
            public_key: self.private_key.public_key(),
        }
    }

    /// The Bech32 encoding (upper case), as written to identity files.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        Zeroizing::new(bech32_encode(IDENTITY_HRP, self.private_key.seed()).to_ascii_uppercase())
    }
}

impl fmt::Debug for HybridIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HybridIdentity(<redacted>)")
    }
}

impl age::Identity for HybridIdentity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != STANZA_TAG {
            return None;
        }
        if stanza.args.len() != 1 || stanza.body.len() != FILE_KEY_BYTES + TAG_LEN {
            return Some(Err(age::DecryptError::InvalidHeader));
        }
        let encapsulation = match BASE64_STANDARD_NO_PAD.decode(&stanza.args[0]) {
            Ok(bytes) if bytes.len() == XWING_CIPHERTEXT_LEN => bytes,
            _ => return Some(Err(age::DecryptError::InvalidHeader)),
        };
        // X-Wing rejects implicitly: a stanza for another key only fails at the AEAD open, and
        // that means "not ours" (like Go age), so try the next stanza.
        let opened = xwing::hpke_open(&self.private_key, &encapsulation, HPKE_INFO, &stanza.body)?;
        if opened.len() != FILE_KEY_BYTES {
            return Some(Err(age::DecryptError::InvalidHeader));
        }
        Some(Ok(FileKey::init_with_mut(|k| k.copy_from_slice(&opened))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_round_trips_through_bech32() {
        let identity = HybridIdentity::generate();
        let recipient = identity.to_public().to_string();
        assert!(recipient.starts_with("age1pq1"));
        // 1,216 bytes of key: far over Bech32's usual 90 characters.
        assert!(recipient.len() > 1900);
        let parsed = HybridRecipient::parse(&recipient).unwrap();
        assert_eq!(parsed.to_string(), recipient);
    }

    #[test]
    fn identity_round_trips_and_is_upper_case() {
        let identity = HybridIdentity::generate();
        let text = identity.to_secret_string();
        assert!(text.starts_with("AGE-SECRET-KEY-PQ-1"));
        let parsed = HybridIdentity::parse(&text).unwrap();
        assert_eq!(
            parsed.to_public().to_string(),
            identity.to_public().to_string()
        );
    }

    #[test]
    fn wrong_identity_does_not_match_and_right_one_does() {
        let alice = HybridIdentity::generate();
        let bob = HybridIdentity::generate();
        let secret = b"0123456789abcdef0123456789abcdef";
        let encrypted = age::encrypt(&alice.to_public(), secret).unwrap();
        assert_eq!(age::decrypt(&alice, &encrypted).unwrap(), secret);
        assert!(matches!(
            age::decrypt(&bob, &encrypted),
            Err(age::DecryptError::NoMatchingKeys)
        ));
    }

    #[test]
    fn rejects_x25519_strings() {
        assert!(
            HybridRecipient::parse(
                "age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29"
            )
            .is_err()
        );
        assert!(HybridIdentity::parse("AGE-SECRET-KEY-1QQQQ").is_err());
    }
}
