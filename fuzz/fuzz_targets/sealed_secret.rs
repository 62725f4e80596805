//! SealedSecret manifests (YAML or JSON streams, `List`s): parse, type-check, unseal with a fixed
//! key (values are refused uniformly unless sealed to it; templates render over what opened).
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_api::sealed_secret::SealedSecret;
use signet_seal::manifest::{parse_documents, typed};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = parse_documents(text) else {
        return;
    };
    let (_, ring) = signet_fuzz::sealing_key();
    for doc in docs {
        if let Ok(sealed) = typed::<SealedSecret>(doc, "SealedSecret") {
            let _ = signet_seal::convert::sealed_secret_label(&sealed);
            let _ = signet_seal::unseal_sealed_secret(&sealed, ring);
        }
    }
});
