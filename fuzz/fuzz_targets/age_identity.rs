//! age identity files and recipient lists: X25519 `AGE-SECRET-KEY-1…`, post-quantum
//! `AGE-SECRET-KEY-PQ-1…`, plugin identities, age-encrypted identity files (detected, not opened),
//! one-per-line and whitespace-separated (`SOPS_AGE_KEY`) forms; each parsed identity derives its
//! recipient, which must parse as a recipient again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_keys::AgeRecipient;
use signet_keys::age_key::identity::identities_from_bytes;

fuzz_target!(|data: &[u8]| {
    for multiple_per_line in [false, true] {
        if let Ok(identities) = identities_from_bytes(data, "fuzz", multiple_per_line) {
            for identity in &identities {
                if let Some(recipient) = identity.recipient()
                    && !recipient.starts_with("ssh-")
                {
                    AgeRecipient::parse(&recipient).expect("a derived recipient parses");
                }
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = AgeRecipient::parse_list(text);
        let _ = signet_keys::age_key::pq::HybridIdentity::parse(text);
        let _ = signet_keys::age_key::pq::HybridRecipient::parse(text);
    }
});
