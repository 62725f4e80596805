//! Property tests on untrusted input: arbitrary sealed values and key files never panic, and every
//! unusable sealed value is the uniform unseal error.

use proptest::prelude::*;
use signet_seal::{PrivateKeyRing, SealError, SealingCertificate, open, open_bytes};
use std::path::PathBuf;
use std::sync::LazyLock;

static RING: LazyLock<PrivateKeyRing> = LazyLock::new(|| {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/seal/kat/key.pem");
    let mut ring = PrivateKeyRing::new();
    ring.add_from_bytes(&std::fs::read(path).unwrap(), "key.pem")
        .unwrap();
    ring
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_envelopes_are_refused_uniformly(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(matches!(open_bytes(&RING, b"ns/n", &bytes), Err(SealError::Unseal)));
    }

    #[test]
    fn envelopes_with_a_plausible_header_are_refused_uniformly(body in proptest::collection::vec(any::<u8>(), 256..400)) {
        let mut bytes = vec![0x01, 0x00];
        bytes.extend_from_slice(&body);
        prop_assert!(matches!(open_bytes(&RING, b"", &bytes), Err(SealError::Unseal)));
    }

    #[test]
    fn arbitrary_text_is_refused_uniformly(text in "\\PC{0,400}") {
        prop_assert!(matches!(open(&RING, b"", &text), Err(SealError::Unseal)));
    }

    #[test]
    fn arbitrary_key_and_cert_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000), pem in "(-----BEGIN (RSA )?PRIVATE KEY-----\n[A-Za-z0-9+/=\n]{0,300}-----END (RSA )?PRIVATE KEY-----\n)?") {
        let _ = PrivateKeyRing::new().add_from_bytes(&bytes, "fuzz");
        let _ = PrivateKeyRing::new().add_from_bytes(pem.as_bytes(), "fuzz");
        let _ = SealingCertificate::from_pem(&bytes);
    }
}
