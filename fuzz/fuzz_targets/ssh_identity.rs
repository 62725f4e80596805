//! OpenSSH private keys used as age identities (`ssh-ed25519`, `ssh-rsa`, PEM RSA, encrypted keys
//! detected without asking for a passphrase).
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_keys::age_key::identity::SshIdentity;

fuzz_target!(|data: &[u8]| {
    if let Ok(identity) = SshIdentity::parse(data, "fuzz") {
        let _ = identity.is_encrypted();
    }
});
