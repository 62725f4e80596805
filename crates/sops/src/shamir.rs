//! Shamir secret sharing over GF(2^8), byte-compatible with sops' `shamir` package (a copy of
//! HashiCorp Vault's).
//!
//! Field: GF(2^8) with the AES reduction polynomial x^8 + x^4 + x^3 + x + 1 (0x11B). Every byte of the
//! secret gets its own random polynomial of degree `threshold - 1` whose constant term is that byte.
//!
//! Share layout (as sops writes it): `len(secret) + 1` bytes; byte `i` is the polynomial of secret
//! byte `i` evaluated at x, and the **last byte is x**. sops (3.x, `shamir.Split`) uses x = share
//! index + 1, i.e. 1, 2, …, parts, in order (Vault itself uses a random permutation; the sops copy
//! does not). [`split`] does the same. [`combine`] accepts any set of distinct x values (including
//! Vault-style random ones), interpolating at x = 0.
//!
//! How sops uses it (`sops.go`): with exactly one key group the data key is not split (every key of
//! the group wraps the whole 32-byte key); with two or more groups it is split into one share per
//! group (share i for group i), threshold = `shamir_threshold`, or the number of groups when that is 0.
//! On decrypt, one share from each of `threshold` groups is combined.
//!
//! Like sops, [`split`] requires `2 <= threshold <= parts <= 255` and a non-empty secret, and
//! [`combine`] requires at least two shares of equal length ≥ 2 with distinct x. Combining fewer
//! shares than the threshold does not fail — it yields a wrong secret (that is the point of the
//! scheme); sops detects that later when the data key fails to open the MAC.

use zeroize::Zeroizing;

use crate::Error;

/// Multiplication in GF(2^8) modulo 0x11B, without data-dependent branches.
fn gf_mul(a: u8, b: u8) -> u8 {
    let mut acc: u8 = 0;
    for i in (0..8).rev() {
        let bit = (b >> i) & 1;
        let a_or_zero = 0u8.wrapping_sub(bit) & a;
        let reduce = 0u8.wrapping_sub(acc >> 7) & 0x1B;
        acc = a_or_zero ^ (reduce ^ acc.wrapping_add(acc));
    }
    acc
}

/// Multiplicative inverse: a^254 (0 maps to 0; callers never divide by 0).
fn gf_inv(a: u8) -> u8 {
    // square-and-multiply over the exponent 254 = 0b1111_1110
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            result = gf_mul(result, base);
        }
        base = gf_mul(base, base);
        e >>= 1;
    }
    result
}

/// Evaluates the polynomial with `coefficients` (constant term first) at `x` (Horner's rule).
fn evaluate(coefficients: &[u8], x: u8) -> u8 {
    coefficients
        .iter()
        .rev()
        .fold(0u8, |acc, &c| gf_mul(acc, x) ^ c)
}

/// Splits `secret` into `parts` shares, any `threshold` of which recover it.
///
/// Each share is `secret.len() + 1` bytes; the last byte is the share's x coordinate (index + 1).
pub fn split(
    secret: &[u8],
    parts: usize,
    threshold: usize,
) -> Result<Vec<Zeroizing<Vec<u8>>>, Error> {
    if parts < threshold {
        return Err(Error::Shamir("parts cannot be less than threshold"));
    }
    if parts > 255 {
        return Err(Error::Shamir("parts cannot exceed 255"));
    }
    if threshold < 2 {
        return Err(Error::Shamir("threshold must be at least 2"));
    }
    if secret.is_empty() {
        return Err(Error::Shamir("cannot split an empty secret"));
    }
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (0..parts)
        .map(|i| {
            let mut share = Zeroizing::new(vec![0u8; secret.len() + 1]);
            share[secret.len()] = (i + 1) as u8;
            share
        })
        .collect();
    let mut coefficients = Zeroizing::new(vec![0u8; threshold]);
    for (byte_index, &byte) in secret.iter().enumerate() {
        coefficients[0] = byte;
        rand::fill(&mut coefficients[1..]);
        for (i, share) in shares.iter_mut().enumerate() {
            share[byte_index] = evaluate(&coefficients, (i + 1) as u8);
        }
    }
    Ok(shares)
}

/// Recovers the secret from shares produced by [`split`] (or by sops / Vault).
///
/// Needs at least two shares of the same length (≥ 2) with distinct x coordinates (their last byte).
pub fn combine(shares: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, Error> {
    if shares.len() < 2 {
        return Err(Error::Shamir(
            "less than two parts cannot be used to reconstruct the secret",
        ));
    }
    let len = shares[0].len();
    if len < 2 {
        return Err(Error::Shamir("parts must be at least two bytes"));
    }
    if shares.iter().any(|s| s.len() != len) {
        return Err(Error::Shamir("all parts must be the same length"));
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs[..i].contains(x) {
            return Err(Error::Shamir("duplicate part detected"));
        }
    }
    // Lagrange basis values at x = 0 depend only on the xs: compute them once.
    // basis_i = prod_{j != i} x_j / (x_i + x_j)   (subtraction is addition in GF(2^8))
    let basis: Vec<u8> = (0..xs.len())
        .map(|i| {
            let mut b = 1u8;
            for (j, &xj) in xs.iter().enumerate() {
                if i != j {
                    b = gf_mul(b, gf_mul(xj, gf_inv(xs[i] ^ xj)));
                }
            }
            b
        })
        .collect();
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (byte_index, out) in secret.iter_mut().enumerate() {
        *out = shares
            .iter()
            .zip(&basis)
            .fold(0u8, |acc, (share, &b)| acc ^ gf_mul(share[byte_index], b));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(shares: &[Zeroizing<Vec<u8>>]) -> Vec<&[u8]> {
        shares.iter().map(|s| s.as_slice()).collect()
    }

    #[test]
    fn field_inverse_is_inverse() {
        for a in 1..=255u8 {
            assert_eq!(gf_mul(a, gf_inv(a)), 1, "a = {a}");
        }
    }

    #[test]
    fn field_matches_aes_known_products() {
        // FIPS-197 §4.2: {57} • {83} = {c1}, {57} • {13} = {fe}
        assert_eq!(gf_mul(0x57, 0x83), 0xc1);
        assert_eq!(gf_mul(0x57, 0x13), 0xfe);
    }

    #[test]
    fn shares_have_layout_of_sops() {
        let secret = [7u8; 32];
        let shares = split(&secret, 5, 3).unwrap();
        assert_eq!(shares.len(), 5);
        for (i, s) in shares.iter().enumerate() {
            assert_eq!(s.len(), 33);
            assert_eq!(s[32], (i + 1) as u8);
        }
    }

    #[test]
    fn every_subset_of_threshold_size_recovers() {
        let secret: Vec<u8> = (0..32).map(|i| (i * 37 + 11) as u8).collect();
        let shares = split(&secret, 5, 3).unwrap();
        for a in 0..5 {
            for b in (a + 1)..5 {
                for c in (b + 1)..5 {
                    let got = combine(&[&shares[a], &shares[b], &shares[c]]).unwrap();
                    assert_eq!(got.as_slice(), secret.as_slice());
                }
            }
        }
        // more than threshold works too, in any order
        let all = refs(&shares);
        let reversed: Vec<&[u8]> = all.iter().rev().copied().collect();
        assert_eq!(combine(&reversed).unwrap().as_slice(), secret.as_slice());
    }

    #[test]
    fn fewer_than_threshold_does_not_reproduce() {
        let secret = [0xAAu8; 32];
        let shares = split(&secret, 3, 3).unwrap();
        let got = combine(&[&shares[0], &shares[1]]).unwrap();
        assert_ne!(got.as_slice(), secret.as_slice());
    }

    #[test]
    fn arbitrary_distinct_x_accepted() {
        // A degree-1 polynomial per byte, evaluated at x = 200 and x = 3 by hand.
        let secret = [0x42u8, 0x99];
        let slope = [0x10u8, 0xEE];
        let share = |x: u8| {
            let mut s: Vec<u8> = secret
                .iter()
                .zip(&slope)
                .map(|(&c, &m)| c ^ gf_mul(m, x))
                .collect();
            s.push(x);
            s
        };
        let (a, b) = (share(200), share(3));
        assert_eq!(combine(&[&a, &b]).unwrap().as_slice(), &secret);
    }

    #[test]
    fn bad_inputs_error() {
        assert!(split(b"k", 2, 3).is_err());
        assert!(split(b"k", 256, 2).is_err());
        assert!(split(b"k", 3, 1).is_err());
        assert!(split(b"", 3, 2).is_err());
        let shares = split(b"secret", 3, 2).unwrap();
        assert!(combine(&[&shares[0]]).is_err());
        assert!(combine(&[&shares[0], &shares[0]]).is_err(), "duplicate x");
        assert!(
            combine(&[&shares[0], &shares[1][..5]]).is_err(),
            "length mismatch"
        );
        assert!(combine(&[&[1u8][..], &[2u8][..]]).is_err(), "too short");
    }
}
