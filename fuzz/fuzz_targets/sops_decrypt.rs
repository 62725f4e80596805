//! Decrypting an arbitrary file as the CLI does: parse (store by byte 0), open it with the
//! `Decryptor` (read the metadata, unwrap the data key with the public test identities of the shared
//! vectors: age X25519, post-quantum, SSH), decrypt with and without `--ignore-mac`, and write the
//! plaintext out (the unwrapping memoized per key groups: see `MemoKeyring`). Seeded with the real sops files those identities open, so mutations reach
//! values, comments and the MAC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sops::Decryptor;
use signet_sops::engine::DecryptOptions;
use signet_sops::stores::store_for;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let store = store_for(signet_fuzz::format_of(selector));
    let Ok(tree) = store.parse(body) else { return };
    let Ok(decryptor) = Decryptor::new(tree) else {
        return;
    };
    let Ok(key) = decryptor.unwrap_key(signet_fuzz::MemoKeyring::shared()) else {
        return;
    };
    for ignore_mac in [false, true] {
        let opts = DecryptOptions {
            ignore_mac,
            ..DecryptOptions::default()
        };
        if let Ok(opened) = decryptor.clone().decrypt(key.clone(), opts) {
            let _ = store.emit(&opened.tree);
        }
    }
});
