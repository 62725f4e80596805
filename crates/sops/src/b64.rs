//! Standard base64 with padding for the three fields of every `ENC[…]` value, written for that
//! job: a file of 50,000 values has ~12 MB of them to decode or encode, and the general-purpose
//! engine of the `base64` crate spent ~20 instructions per encoded character there (callgrind),
//! more than the AES-GCM of the value. Accepts exactly what `base64`'s `STANDARD` engine accepts
//! (canonical padding, no stray trailing bits, no whitespace): a property test compares the two.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Not a base64 digit.
const INVALID: u8 = 0xFF;

/// The value of each byte as a base64 digit, or [`INVALID`].
const DECODE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// [`DECODE`] shifted to the place of the digit at position `at` (0..4) of a group, so that a
/// group's 24 bits are the OR of four lookups; a non-digit sets the top byte (`0xFF` << 24).
const fn placed(at: u32) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if DECODE[i] == INVALID {
            0xFF00_0000
        } else {
            (DECODE[i] as u32) << (18 - 6 * at)
        };
        i += 1;
    }
    t
}

/// [`placed`] for the four positions of a group.
static PLACED: [[u32; 256]; 4] = [placed(0), placed(1), placed(2), placed(3)];

/// The two digits of every 12-bit value: a group of three bytes is two lookups.
static PAIRS: [[u8; 2]; 4096] = {
    let mut t = [[0u8; 2]; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = [ALPHABET[i >> 6], ALPHABET[i & 63]];
        i += 1;
    }
    t
};

/// Length of the encoding of `n` bytes.
pub(crate) const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends the padded encoding of `input` to `out` (ASCII only).
pub(crate) fn encode_into(input: &[u8], out: &mut Vec<u8>) {
    let digit = |v: u32| ALPHABET[(v & 63) as usize];
    let mut chunks = input.chunks_exact(3);
    // The whole groups are written into room made for them at once (no capacity check each).
    let at = out.len();
    out.resize(at + input.len() / 3 * 4, 0);
    for (c, o) in (&mut chunks).zip(out[at..].chunks_exact_mut(4)) {
        let n = (usize::from(c[0]) << 16) | (usize::from(c[1]) << 8) | usize::from(c[2]);
        let ([a, b], [c, d]) = (PAIRS[n >> 12], PAIRS[n & 0xFFF]);
        o.copy_from_slice(&[a, b, c, d]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[digit(n >> 18), digit(n >> 12), b'=', b'=']);
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.extend_from_slice(&[digit(n >> 18), digit(n >> 12), digit(n >> 6), b'=']);
        }
        _ => {}
    }
}

/// Decodes padded standard base64; `None` for anything `base64`'s `STANDARD` engine refuses.
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    let mut buf = s.as_bytes().to_vec();
    let n = decode_in_place(&mut buf, 0)?;
    buf.truncate(n);
    Some(buf)
}

/// [`decode`] of `buf[start..]`, written to the front of `buf` (the decoded bytes of a group are
/// fewer than its digits and land behind them, so no second buffer is needed); returns their
/// length. On `None`, `buf` may have been partly overwritten.
pub(crate) fn decode_in_place(buf: &mut [u8], start: usize) -> Option<usize> {
    let len = buf.len().checked_sub(start)?;
    if !len.is_multiple_of(4) {
        return None;
    }
    let pad = if buf[start..].ends_with(b"==") {
        2
    } else {
        usize::from(buf[start..].ends_with(b"="))
    };
    let body = len - pad;
    let groups = body / 4;
    let mut invalid = 0u32;
    for g in 0..groups {
        let i = start + 4 * g;
        let d: [u8; 4] = buf[i..i + 4].try_into().expect("four digits");
        let n = PLACED[0][usize::from(d[0])]
            | PLACED[1][usize::from(d[1])]
            | PLACED[2][usize::from(d[2])]
            | PLACED[3][usize::from(d[3])];
        invalid |= n;
        // Behind the digits just read: 3g + 2 < start + 4g + 4.
        buf[3 * g..3 * g + 3].copy_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    if invalid & 0xFF00_0000 != 0 {
        return None;
    }
    let (i, o) = (start + 4 * groups, 3 * groups);
    match body % 4 {
        0 => Some(o),
        2 => {
            let (a, b) = (DECODE[buf[i] as usize], DECODE[buf[i + 1] as usize]);
            // The bits of the last digit past the byte must be zero (canonical encoding).
            if (a | b) & 0xC0 != 0 || b & 0x0F != 0 {
                return None;
            }
            buf[o] = (a << 2) | (b >> 4);
            Some(o + 1)
        }
        3 => {
            let [a, b, c] = [buf[i], buf[i + 1], buf[i + 2]].map(|x| DECODE[x as usize]);
            if (a | b | c) & 0xC0 != 0 || c & 0x03 != 0 {
                return None;
            }
            let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6);
            buf[o..o + 2].copy_from_slice(&[(n >> 16) as u8, (n >> 8) as u8]);
            Some(o + 2)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        for (plain, enc) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"\xff\xfe\xfd", "//79"),
        ] {
            let mut s = Vec::new();
            encode_into(plain, &mut s);
            assert_eq!(s, enc.as_bytes());
            assert_eq!(decode(enc).as_deref(), Some(plain));
        }
    }

    #[test]
    fn refuses_what_the_standard_engine_refuses() {
        for bad in [
            "Zg", "Zg=", "Zh==", "Zm9=", "Z===", "====", "Zg==Zg==", "Zm 9", "Zm9v\n", "Zm-_",
            "=Zm9",
        ] {
            assert!(STANDARD.decode(bad).is_err(), "{bad}");
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn encodes_like_the_base64_crate(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut s = b"x".to_vec();
            encode_into(&bytes, &mut s);
            let s = String::from_utf8(s).unwrap();
            prop_assert_eq!(&s[1..], STANDARD.encode(&bytes));
            prop_assert_eq!(decode(&s[1..]), Some(bytes));
        }

        #[test]
        fn decodes_like_the_base64_crate(s in "[A-Za-z0-9+/=]{0,12}") {
            prop_assert_eq!(decode(&s), STANDARD.decode(&s).ok());
        }

        /// Decoded in place behind a prefix (as an `ENC[…]` value's data field is), the bytes
        /// are those of the standard engine.
        #[test]
        fn decodes_in_place_like_the_base64_crate(
            bytes in proptest::collection::vec(any::<u8>(), 0..100),
            prefix in "[a-zA-Z:,\\[]{0,24}",
        ) {
            let mut buf = prefix.clone().into_bytes();
            encode_into(&bytes, &mut buf);
            let n = decode_in_place(&mut buf, prefix.len());
            prop_assert_eq!(n.map(|n| buf[..n].to_vec()), Some(bytes));
        }
    }
}
