//! The hybrid envelope: RSA-OAEP-SHA256 wraps a one-time AES-256-GCM session key.
//!
//! Layout: `u16be(len R) || R || G`; `R` = RSA-OAEP(SHA-256, MGF1-SHA-256, label) of the 32-byte
//! session key, `G` = AES-256-GCM(session key, 12 zero bytes, no AAD) of the plaintext with the 16-byte
//! tag appended. As text it is standard, padded base64 without newlines.

use crate::SealError;
use crate::cert::SealingCertificate;
use crate::keys::PrivateKeyRing;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// Length of the AES-256-GCM session key.
pub const SESSION_KEY_LEN: usize = 32;
/// The nonce: all zero, safe because each session key encrypts exactly one value.
const ZERO_NONCE: [u8; 12] = [0; 12];
/// Length of the GCM tag appended to the ciphertext.
pub const TAG_LEN: usize = 16;

/// Where session keys come from. The system generator in production; a fixed source in known-answer
/// tests.
pub trait SessionKeySource {
    /// A fresh 32-byte session key.
    fn session_key(&mut self) -> Result<Zeroizing<[u8; SESSION_KEY_LEN]>, SealError>;
}

/// Session keys from the operating system's CSPRNG (through aws-lc-rs).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemSessionKeys;

impl SessionKeySource for SystemSessionKeys {
    fn session_key(&mut self) -> Result<Zeroizing<[u8; SESSION_KEY_LEN]>, SealError> {
        let mut key = Zeroizing::new([0u8; SESSION_KEY_LEN]);
        SystemRandom::new()
            .fill(&mut key[..])
            .map_err(|_| SealError::Random)?;
        Ok(key)
    }
}

/// Seals `plaintext` for `label` to `cert`'s public key; returns the envelope bytes.
pub fn seal_bytes(
    cert: &SealingCertificate,
    label: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    seal_bytes_with(cert, label, plaintext, &mut SystemSessionKeys)
}

/// Seals `plaintext` for `label`; returns the value as it appears in a SealedSecret (base64).
pub fn seal(
    cert: &SealingCertificate,
    label: &[u8],
    plaintext: &[u8],
) -> Result<String, SealError> {
    seal_bytes(cert, label, plaintext).map(|bytes| STANDARD.encode(bytes))
}

/// [`seal_bytes`] with a caller-chosen session key source. The OAEP seed still comes from aws-lc-rs'
/// own generator; see the `deterministic` feature for fixing it too.
pub fn seal_bytes_with(
    cert: &SealingCertificate,
    label: &[u8],
    plaintext: &[u8],
    keys: &mut dyn SessionKeySource,
) -> Result<Vec<u8>, SealError> {
    let session_key = keys.session_key()?;
    let wrapped = cert.oaep_encrypt(&session_key[..], label)?;
    assemble(&wrapped, &session_key, plaintext)
}

/// Joins the wrapped key and the AES-GCM ciphertext of `plaintext` under `session_key`.
pub(crate) fn assemble(
    wrapped_key: &[u8],
    session_key: &[u8; SESSION_KEY_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let wrapped_len =
        u16::try_from(wrapped_key.len()).map_err(|_| SealError::Seal("RSA key too large"))?;
    let aead = aead_key(session_key)?;
    let mut out = Vec::with_capacity(2 + wrapped_key.len() + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&wrapped_len.to_be_bytes());
    out.extend_from_slice(wrapped_key);
    let mut body = Vec::with_capacity(plaintext.len() + TAG_LEN);
    body.extend_from_slice(plaintext);
    aead.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(ZERO_NONCE),
        Aad::empty(),
        &mut body,
    )
    .map_err(|_| SealError::Seal("AES-GCM encryption failed"))?;
    out.extend_from_slice(&body);
    Ok(out)
}

fn aead_key(session_key: &[u8]) -> Result<LessSafeKey, SealError> {
    UnboundKey::new(&AES_256_GCM, session_key)
        .map(LessSafeKey::new)
        .map_err(|_| SealError::Seal("bad session key length"))
}

/// Opens a base64 sealed value with any key of `ring`. Only canonical standard padded base64 is
/// accepted (no URL-safe alphabet, no missing padding, no whitespace). Every failure is
/// [`SealError::Unseal`].
pub fn open(
    ring: &PrivateKeyRing,
    label: &[u8],
    sealed: &str,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let bytes = STANDARD
        .decode(sealed.as_bytes())
        .map_err(|_| SealError::Unseal)?;
    open_bytes(ring, label, &bytes)
}

/// Opens envelope bytes with any key of `ring`, trying them in order. Every failure is
/// [`SealError::Unseal`].
pub fn open_bytes(
    ring: &PrivateKeyRing,
    label: &[u8],
    envelope: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let (len_bytes, rest) = envelope.split_at_checked(2).ok_or(SealError::Unseal)?;
    let wrapped_len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    let (wrapped, ciphertext) = rest
        .split_at_checked(wrapped_len)
        .ok_or(SealError::Unseal)?;
    if ciphertext.len() < TAG_LEN {
        return Err(SealError::Unseal);
    }
    for key in ring.iter() {
        if key.size_bytes() != wrapped.len() {
            continue;
        }
        let Some(session_key) = key.oaep_decrypt(wrapped, label) else {
            continue;
        };
        if session_key.len() != SESSION_KEY_LEN {
            continue;
        }
        let Ok(aead) = aead_key(&session_key) else {
            continue;
        };
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        if let Ok(plain) = aead.open_in_place(
            Nonce::assume_unique_for_key(ZERO_NONCE),
            Aad::empty(),
            &mut buf[..],
        ) {
            let len = plain.len();
            buf.truncate(len);
            return Ok(buf);
        }
    }
    Err(SealError::Unseal)
}
