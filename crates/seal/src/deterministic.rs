//! Sealing with a caller-chosen session key *and* OAEP seed, for known-answer tests (feature
//! `deterministic`).
//!
//! aws-lc-rs draws the OAEP seed itself, so this module encodes EME-OAEP (RFC 8017 §7.1.1, SHA-256,
//! MGF1-SHA-256) here and performs the RSA public operation with `num-bigint-dig`. That arithmetic is
//! variable-time, which is why it lives behind a feature that production builds never enable. The
//! known-answer test compares this output with a vector derived independently (Python, see
//! `tests/fixtures/seal/kat/derive.py`) and opens it with the normal aws-lc-rs path.

use crate::SealError;
use crate::cert::SealingCertificate;
use crate::envelope::{SESSION_KEY_LEN, assemble};
use num_bigint_dig::BigUint;
use sha2::{Digest, Sha256};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

const HASH_LEN: usize = 32;

/// Seals like [`crate::envelope::seal_bytes`] but with every random input fixed.
pub fn seal_bytes_deterministic(
    cert: &SealingCertificate,
    label: &[u8],
    plaintext: &[u8],
    session_key: &[u8; SESSION_KEY_LEN],
    oaep_seed: &[u8; HASH_LEN],
) -> Result<Vec<u8>, SealError> {
    let (n, e) = rsa_numbers(cert.public_key_der())?;
    let k = n.bits().div_ceil(8);
    let em = eme_oaep_encode(k, session_key, label, oaep_seed)?;
    let c = BigUint::from_bytes_be(&em).modpow(&e, &n);
    let mut wrapped = vec![0u8; k];
    let c_bytes = c.to_bytes_be();
    wrapped[k - c_bytes.len()..].copy_from_slice(&c_bytes);
    assemble(&wrapped, session_key, plaintext)
}

fn rsa_numbers(spki_der: &[u8]) -> Result<(BigUint, BigUint), SealError> {
    let bad = || SealError::Certificate("cannot read the RSA public numbers".to_owned());
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(|_| bad())?;
    match spki.parsed().map_err(|_| bad())? {
        PublicKey::RSA(rsa) => Ok((
            BigUint::from_bytes_be(rsa.modulus),
            BigUint::from_bytes_be(rsa.exponent),
        )),
        _ => Err(bad()),
    }
}

fn mgf1(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + HASH_LEN);
    let mut counter = 0u32;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// EME-OAEP encoding of `message` for a `k`-byte modulus.
fn eme_oaep_encode(
    k: usize,
    message: &[u8],
    label: &[u8],
    seed: &[u8; HASH_LEN],
) -> Result<Vec<u8>, SealError> {
    if message.len() + 2 * HASH_LEN + 2 > k {
        return Err(SealError::Seal("message too long for RSA-OAEP"));
    }
    let db_len = k - HASH_LEN - 1;
    let mut db = Vec::with_capacity(db_len);
    db.extend_from_slice(&Sha256::digest(label));
    db.resize(db_len - message.len() - 1, 0);
    db.push(0x01);
    db.extend_from_slice(message);
    for (b, m) in db.iter_mut().zip(mgf1(seed, db_len)) {
        *b ^= m;
    }
    let mut masked_seed = *seed;
    for (b, m) in masked_seed.iter_mut().zip(mgf1(&db, HASH_LEN)) {
        *b ^= m;
    }
    let mut em = Vec::with_capacity(k);
    em.push(0);
    em.extend_from_slice(&masked_seed);
    em.extend_from_slice(&db);
    Ok(em)
}
