//! The one-pass YAML paths (`stores::yaml::onepass`) on arbitrary bytes, against the full store.
//!
//! Byte 0 picks the direction. Even: the rest is an encrypted file, opened with the public test
//! identities of the shared vectors; when the one pass decrypts it, the full path must give the
//! same bytes. Odd: the rest is a plain file, encrypted with the fixed test data key; when the one
//! pass encrypts it, the full path must decrypt that to what it decrypts its own encryption of the
//! file to, and the one pass must read it back to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use signet_sops::stores::yaml::YamlStore;
use signet_sops::stores::yaml::onepass::{PlainFile, Tail};
use signet_sops::{Decryptor, Metadata, Store, UnwrappedDataKey};
use std::io::Cursor;

/// The full path's decryption: parse, decrypt, emit.
fn full_decrypt(encrypted: &[u8], key: &UnwrappedDataKey) -> Option<Vec<u8>> {
    let store = YamlStore::default();
    let decryptor = Decryptor::new(store.parse(encrypted).ok()?).ok()?;
    let opened = decryptor
        .decrypt(key.clone(), DecryptOptions::default())
        .ok()?;
    store.emit(&opened.tree).ok()
}

/// The one pass's decryption.
fn one_pass_decrypt(encrypted: &[u8], key: &UnwrappedDataKey) -> Option<Vec<u8>> {
    let mut file = Cursor::new(encrypted);
    let tail = Tail::read(&mut file).ok()??;
    let plain = tail.decrypt_body(&mut file, &key.data_key).ok()??;
    Some(plain.to_vec())
}

fuzz_target!(|data: &[u8]| {
    let Some((&direction, body)) = data.split_first() else {
        return;
    };
    if direction % 2 == 0 {
        let mut file = Cursor::new(body);
        let Ok(Some(tail)) = Tail::read(&mut file) else {
            return;
        };
        let Ok(key) = tail
            .decryptor()
            .unwrap_key(signet_fuzz::MemoKeyring::shared())
        else {
            return;
        };
        if let Some(out) = one_pass_decrypt(body, &key) {
            assert!(
                full_decrypt(body, &key).as_deref() == Some(&out[..]),
                "the one pass decrypted unlike the full path"
            );
        }
        return;
    }
    let key = UnwrappedDataKey {
        data_key: signet_fuzz::data_key(),
        opened_by: Vec::new(),
    };
    let mut file = Cursor::new(body);
    let mut meta = Metadata::default();
    let Ok(Some(checked)) = PlainFile::check(&mut file, &meta) else {
        return;
    };
    let mut ours = Vec::new();
    checked
        .encrypt(&mut file, &key.data_key, &mut meta, 4, &mut ours)
        .expect("a checked file encrypts");
    let store = YamlStore::default();
    let mut tree = store.parse(body).expect("a checked file parses");
    engine::encrypt(
        &mut tree,
        &key.data_key,
        &mut Metadata::default(),
        &EncryptOptions::default(),
    )
    .expect("the full path encrypts a checked file");
    let theirs = store.emit(&tree).expect("the full path writes its encryption");
    let plain = full_decrypt(&ours, &key).expect("the one pass's encryption decrypts");
    assert!(
        full_decrypt(&theirs, &key).as_ref() == Some(&plain),
        "the one pass's encryption decrypts to other data"
    );
    if let Some(back) = one_pass_decrypt(&ours, &key) {
        assert!(back == plain, "the one pass reads its own encryption otherwise");
    }
});
