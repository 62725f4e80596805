//! PGP messages in sops `pgp:` entries, opened in-process (rPGP) with a Curve25519 test key made for
//! fuzzing: armor, packet parsing, recipient matching, ECDH, SEIPD and its MDC, decompression, the
//! bounded plaintext read. Byte 0 picks the mode: arbitrary `enc` text, or a round trip where the rest
//! of the input (at most a data key's length) is encrypted to the key and must decrypt back unchanged.
//! (`sops_decrypt` reaches the vectors' RSA keys through the keyring.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_keys::NoInteraction;
use signet_keys::pgp::MAX_SECRET_LEN;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let keys = signet_fuzz::pgp_keys();
    if mode & 1 == 0 {
        if let Ok(enc) = std::str::from_utf8(body) {
            let _ = keys.decrypt(enc, &NoInteraction);
        }
    } else if body.len() <= MAX_SECRET_LEN {
        let enc = keys
            .encrypt(signet_fuzz::FUZZ_PGP_FP, body)
            .expect("the fixture key is there")
            .expect("encrypting to it works");
        let back = keys
            .decrypt(&enc, &NoInteraction)
            .expect("our own message decrypts")
            .expect("it is for this key");
        assert_eq!(back.as_slice(), body);
    }
});
