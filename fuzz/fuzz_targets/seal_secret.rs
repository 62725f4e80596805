//! Secret manifests fed to `seal`: parse, type-check, seal to a fixed certificate, and unseal the
//! result back: the values must be the Secret's (`data` decoded, `stringData` on top).
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_api::secret::Secret;
use signet_seal::convert::{SealOptions, secret_values, unseal_values};
use signet_seal::manifest::{parse_documents, typed};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = parse_documents(text) else {
        return;
    };
    let (cert, ring) = signet_fuzz::sealing_key();
    let options = SealOptions {
        default_namespace: Some("default".to_owned()),
        ..SealOptions::default()
    };
    for doc in docs.into_iter().take(4) {
        let Ok(secret) = typed::<Secret>(doc, "Secret") else {
            continue;
        };
        let Ok(sealed) = signet_seal::seal_secret(&secret, cert, &options) else {
            continue;
        };
        // RSA decryption is the cost here: check the round trip on small Secrets only.
        if sealed.spec.encrypted_data.len() <= 4 {
            let values = unseal_values(&sealed, ring).expect("a fresh SealedSecret unseals");
            assert!(
                values == secret_values(&secret).expect("sealed, so its values decode"),
                "seal→unseal changed the values"
            );
        }
    }
});
