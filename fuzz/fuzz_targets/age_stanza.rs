//! age stanzas: an armored age file in a sops `age:` entry, unwrapped by a keyring holding X25519,
//! post-quantum and SSH identities (header parsing, stanza dispatch, HPKE/X25519 unwrap, MAC, payload).
//! Byte 0 of the input picks the mode: arbitrary `enc` text, or a round trip where the rest of the
//! input is a data key encrypted to one of the recipients and decrypted back (must be identical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_keys::AgeRecipient;
use signet_keys::masterkey::block_on;
use signet_sops::metadata::{AgeEntry, MasterKeyEntry};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let ring = signet_fuzz::vector_keyring();
    let recipients = signet_fuzz::vector_recipients();
    if mode & 1 == 0 {
        let Ok(enc) = std::str::from_utf8(body) else {
            return;
        };
        let entry = MasterKeyEntry::Age(AgeEntry {
            recipient: recipients[usize::from(mode >> 1) % recipients.len()].clone(),
            enc: enc.to_owned(),
        });
        let _ = block_on(ring.unwrap_entry(&entry));
    } else {
        let recipient = &recipients[usize::from(mode >> 1) % recipients.len()];
        let recipient = AgeRecipient::parse(recipient).expect("fixture recipient parses");
        let enc = recipient
            .encrypt_armored(body)
            .expect("encryption to a fixture recipient");
        let entry = MasterKeyEntry::Age(AgeEntry {
            recipient: recipient.as_str().to_owned(),
            enc,
        });
        let opened = block_on(ring.unwrap_entry(&entry))
            .expect("a fresh age file opens")
            .expect("a key of the ring matches");
        assert_eq!(opened.as_slice(), body, "age round trip changed the key");
    }
});
