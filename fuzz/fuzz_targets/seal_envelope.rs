//! The sealed envelope (kubeseal's hybrid format: u16 length, RSA-OAEP session key, AES-GCM) opened
//! with a fixed 2048-bit key: arbitrary bytes and base64 text are refused uniformly; byte 0 odd
//! makes it a round trip instead (seal the rest, open it back, then change one byte: refused).
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_seal::{SealError, open, open_bytes, seal_bytes};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let (cert, ring) = signet_fuzz::sealing_key();
    let label = b"fuzz-namespace/fuzz-name";
    if mode & 1 == 0 {
        if let Err(e) = open_bytes(ring, label, body) {
            assert!(matches!(e, SealError::Unseal), "non-uniform refusal: {e:?}");
        }
        if let Ok(text) = std::str::from_utf8(body) {
            let _ = open(ring, label, text);
        }
    } else {
        let sealed = seal_bytes(cert, label, body).expect("sealing");
        let opened = open_bytes(ring, label, &sealed).expect("a fresh envelope opens");
        assert_eq!(opened.as_slice(), body, "seal→open changed the value");
        assert!(
            open_bytes(ring, b"other/label", &sealed).is_err(),
            "opened under another label"
        );
        let mut modified = sealed;
        let at = usize::from(mode >> 1) * 7 % modified.len();
        modified[at] ^= 0x01;
        assert!(
            open_bytes(ring, label, &modified).is_err(),
            "a modified envelope opened"
        );
    }
});
