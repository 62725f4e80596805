//! sprig's `derivePassword` (the Master Password algorithm) and `decryptAES` (sprig's own
//! AES-256-CBC format), as sprig v3.3.0's crypto.go computes them. `encryptAES` stays refused:
//! its IV is random.

use aes::cipher::{BlockDecrypt, KeyInit, generic_array::GenericArray};
use zeroize::Zeroizing;

const SEED: &[u8] = b"com.lyndir.masterpassword";

/// The password templates of each password type.
fn templates(kind: &[u8]) -> Option<&'static [&'static [u8]]> {
    Some(match kind {
        b"maximum" => &[b"anoxxxxxxxxxxxxxxxxx", b"axxxxxxxxxxxxxxxxxno"],
        b"long" => &[
            b"CvcvnoCvcvCvcv",
            b"CvcvCvcvnoCvcv",
            b"CvcvCvcvCvcvno",
            b"CvccnoCvcvCvcv",
            b"CvccCvcvnoCvcv",
            b"CvccCvcvCvcvno",
            b"CvcvnoCvccCvcv",
            b"CvcvCvccnoCvcv",
            b"CvcvCvccCvcvno",
            b"CvcvnoCvcvCvcc",
            b"CvcvCvcvnoCvcc",
            b"CvcvCvcvCvccno",
            b"CvccnoCvccCvcv",
            b"CvccCvccnoCvcv",
            b"CvccCvccCvcvno",
            b"CvcvnoCvccCvcc",
            b"CvcvCvccnoCvcc",
            b"CvcvCvccCvccno",
            b"CvccnoCvcvCvcc",
            b"CvccCvcvnoCvcc",
            b"CvccCvcvCvccno",
        ],
        b"medium" => &[b"CvcnoCvc", b"CvcCvcno"],
        b"short" => &[b"Cvcn"],
        b"basic" => &[b"aaanaaan", b"aannaaan", b"aaannaaa"],
        b"pin" => &[b"nnnn"],
        _ => return None,
    })
}

/// The characters a template letter stands for.
fn characters(class: u8) -> &'static [u8] {
    match class {
        b'V' => b"AEIOU",
        b'C' => b"BCDFGHJKLMNPQRSTVWXYZ",
        b'v' => b"aeiou",
        b'c' => b"bcdfghjklmnpqrstvwxyz",
        b'A' => b"AEIOUBCDFGHJKLMNPQRSTVWXYZ",
        b'a' => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        b'n' => b"0123456789",
        b'o' => b"@&%?,=[]_:-+*$#!'^~;()/.",
        _ => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
}

/// `derivePassword counter type password user site`. An unknown type is not an error in sprig:
/// the output says so.
pub(super) fn derive_password(
    counter: u32,
    kind: &[u8],
    password: &[u8],
    user: &[u8],
    site: &[u8],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let Some(templates) = templates(kind) else {
        let mut out = b"cannot find password template ".to_vec();
        out.extend_from_slice(kind);
        return Ok(Zeroizing::new(out));
    };
    // Go writes len() as a uint32: a longer string wraps (and no template gets near 4 GiB).
    let len32 = |b: &[u8]| (b.len() as u32).to_be_bytes();
    let mut salt = SEED.to_vec();
    salt.extend_from_slice(&len32(user));
    salt.extend_from_slice(user);
    let mut key = Zeroizing::new([0u8; 64]);
    let params = scrypt::Params::new(15, 8, 2, 64).map_err(|e| e.to_string())?;
    scrypt::scrypt(password, &salt, &params, key.as_mut())
        .map_err(|_| "failed to derive password".to_owned())?;

    let mut message = SEED.to_vec();
    message.extend_from_slice(&len32(site));
    message.extend_from_slice(site);
    message.extend_from_slice(&counter.to_be_bytes());
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.as_ref());
    let seed = aws_lc_rs::hmac::sign(&hmac_key, &message);
    let seed = seed.as_ref();
    let template = templates[usize::from(seed[0]) % templates.len()];
    let out = template
        .iter()
        .enumerate()
        .map(|(i, &class)| {
            let chars = characters(class);
            chars[usize::from(seed[i + 1]) % chars.len()]
        })
        .collect();
    Ok(Zeroizing::new(out))
}

/// `decryptAES password ciphertext`: base64 of a 16-byte IV and AES-256-CBC blocks under the
/// password's first 32 bytes (zero-padded), the last byte of the plaintext saying how many to drop
/// (not checked further, as sprig does not). Where sprig panics (too short, not whole blocks,
/// a pad longer than the plaintext), this is an error.
pub(super) fn decrypt_aes(password: &[u8], crypt64: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    if crypt64.is_empty() {
        return Ok(Zeroizing::new(Vec::new()));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    let n = password.len().min(32);
    key[..n].copy_from_slice(&password[..n]);
    let crypt = Zeroizing::new(
        super::sprig::base64_decode(crypt64)
            .map_err(|at| format!("illegal base64 data at input byte {at}"))?,
    );
    if crypt.len() < 16 {
        return Err(format!(
            "runtime error: slice bounds out of range [:16] with capacity {}",
            crypt.len()
        ));
    }
    let (iv, blocks) = crypt.split_at(16);
    if !blocks.len().is_multiple_of(16) {
        return Err("crypto/cipher: input not full blocks".to_owned());
    }
    if blocks.is_empty() {
        return Err("runtime error: index out of range [-1]".to_owned());
    }
    let cipher = aes::Aes256::new(GenericArray::from_slice(key.as_ref()));
    let mut plain = Zeroizing::new(Vec::with_capacity(blocks.len()));
    let mut prev = iv;
    for block in blocks.chunks(16) {
        let mut b = GenericArray::clone_from_slice(block);
        cipher.decrypt_block(&mut b);
        plain.extend(b.iter().zip(prev).map(|(x, y)| x ^ y));
        prev = block;
    }
    let pad = usize::from(plain[plain.len() - 1]);
    if pad > plain.len() {
        return Err(format!(
            "runtime error: slice bounds out of range [:{}]",
            plain.len() as i64 - pad as i64
        ));
    }
    let keep = plain.len() - pad;
    plain.truncate(keep);
    Ok(plain)
}
