//! Envelope round trips and every way a sealed value can be damaged.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
use signet_seal::{
    PrivateKeyRing, SealError, SealingCertificate, generate_sealing_key, open, open_bytes, seal,
    seal_bytes,
};
use std::sync::OnceLock;
use std::time::Duration;

struct Pair {
    cert: SealingCertificate,
    ring: PrivateKeyRing,
}

fn pair(slot: &'static OnceLock<(String, String)>) -> Pair {
    let (key, cert) = slot.get_or_init(|| {
        let generated = generate_sealing_key(2048, Duration::from_secs(3600), "test").unwrap();
        (
            generated.private_key_pem.to_string(),
            generated.certificate_pem,
        )
    });
    let mut ring = PrivateKeyRing::new();
    ring.add_from_bytes(key.as_bytes(), "test key").unwrap();
    Pair {
        cert: SealingCertificate::from_pem(cert.as_bytes()).unwrap(),
        ring,
    }
}

static A: OnceLock<(String, String)> = OnceLock::new();
static B: OnceLock<(String, String)> = OnceLock::new();

fn is_unseal(r: Result<impl Sized, SealError>) -> bool {
    matches!(r, Err(SealError::Unseal))
}

#[test]
fn round_trips_values_of_every_shape() {
    let p = pair(&A);
    let big: Vec<u8> = (0..1_048_576u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for value in [
        &b""[..],
        b"x",
        b"line1\nline2\n",
        "h\u{e9}llo \u{1F512}".as_bytes(),
        &[0, 255, 1, 254],
        &big,
    ] {
        let sealed = seal(&p.cert, b"ns/name", value).unwrap();
        assert_eq!(&open(&p.ring, b"ns/name", &sealed).unwrap()[..], value);
    }
}

#[test]
fn layout_is_length_prefix_wrapped_key_then_gcm() {
    let p = pair(&A);
    let bytes = seal_bytes(&p.cert, b"", b"abc").unwrap();
    assert_eq!(u16::from_be_bytes([bytes[0], bytes[1]]), 256);
    assert_eq!(bytes.len(), 2 + 256 + 3 + 16);
    assert_ne!(
        seal_bytes(&p.cert, b"", b"abc").unwrap(),
        bytes,
        "fresh session key every time"
    );
}

#[test]
fn wrong_label_wrong_key_and_empty_ring_are_refused_uniformly() {
    let p = pair(&A);
    let other = pair(&B);
    let sealed = seal(&p.cert, b"ns/name", b"v").unwrap();
    assert!(is_unseal(open(&p.ring, b"ns/other", &sealed)));
    assert!(is_unseal(open(&p.ring, b"ns", &sealed)));
    assert!(is_unseal(open(&p.ring, b"", &sealed)));
    assert!(is_unseal(open(&other.ring, b"ns/name", &sealed)));
    assert!(is_unseal(open(&PrivateKeyRing::new(), b"ns/name", &sealed)));
    // With both keys in the ring the right one is found whatever the order.
    let mut both = PrivateKeyRing::new();
    both.add_from_bytes(B.get().unwrap().0.as_bytes(), "b")
        .unwrap();
    both.add_from_bytes(A.get().unwrap().0.as_bytes(), "a")
        .unwrap();
    assert_eq!(&open(&both, b"ns/name", &sealed).unwrap()[..], b"v");
}

#[test]
fn every_flipped_bit_and_every_truncation_is_refused() {
    let p = pair(&A);
    let bytes = seal_bytes(&p.cert, b"ns/n", b"secret-value").unwrap();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut damaged = bytes.clone();
            damaged[i] ^= bit;
            assert!(
                is_unseal(open_bytes(&p.ring, b"ns/n", &damaged)),
                "byte {i} bit {bit:#x}"
            );
        }
    }
    for len in 0..bytes.len() {
        assert!(
            is_unseal(open_bytes(&p.ring, b"ns/n", &bytes[..len])),
            "truncated to {len}"
        );
    }
    let mut extended = bytes.clone();
    extended.push(0);
    assert!(is_unseal(open_bytes(&p.ring, b"ns/n", &extended)));
}

#[test]
fn only_canonical_standard_padded_base64_is_accepted() {
    let p = pair(&A);
    // Find a value whose base64 needs padding and uses URL-unsafe characters.
    let (bytes, text) = loop {
        let b = seal_bytes(&p.cert, b"", b"pad").unwrap();
        let t = STANDARD.encode(&b);
        if t.ends_with('=') && (t.contains('+') || t.contains('/')) {
            break (b, t);
        }
    };
    assert!(open(&p.ring, b"", &text).is_ok());
    assert!(is_unseal(open(&p.ring, b"", &URL_SAFE.encode(&bytes))));
    assert!(is_unseal(open(
        &p.ring,
        b"",
        &STANDARD_NO_PAD.encode(&bytes)
    )));
    assert!(is_unseal(open(&p.ring, b"", &format!("{text}\n"))));
    assert!(is_unseal(open(&p.ring, b"", &text[..text.len() - 4])));
}

#[test]
fn unseal_error_message_is_the_same_for_every_cause() {
    let p = pair(&A);
    let sealed = seal(&p.cert, b"ns/name", b"v").unwrap();
    let messages: std::collections::BTreeSet<String> = [
        open(&p.ring, b"ns/x", &sealed).unwrap_err(),
        open(&p.ring, b"ns/name", "!!").unwrap_err(),
        open(&p.ring, b"ns/name", &sealed[..20]).unwrap_err(),
        open(&pair(&B).ring, b"ns/name", &sealed).unwrap_err(),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
}
