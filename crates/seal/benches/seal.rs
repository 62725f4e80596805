//! Hot paths of sealing: one envelope (seal, open) and a whole 3-item Secret (seal, unseal), with a
//! 4096-bit key as the controller makes. Run with `cargo bench -p signet-seal`.

use signet_api::{ObjectMeta, Secret};
use signet_seal::convert::{SealOptions, seal_secret, unseal_sealed_secret};
use signet_seal::{PrivateKeyRing, SealingCertificate, generate_sealing_key, open, seal};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

fn main() {
    divan::main();
}

static KEYS: LazyLock<(SealingCertificate, PrivateKeyRing)> = LazyLock::new(|| {
    let generated = generate_sealing_key(4096, Duration::from_secs(3600), "bench").unwrap();
    let mut ring = PrivateKeyRing::new();
    ring.add_from_bytes(generated.private_key_pem.as_bytes(), "bench")
        .unwrap();
    (
        SealingCertificate::from_pem(generated.certificate_pem.as_bytes()).unwrap(),
        ring,
    )
});

fn secret() -> Secret {
    let mut secret = Secret::new(ObjectMeta {
        name: Some("app".into()),
        namespace: Some("prod".into()),
        ..ObjectMeta::default()
    });
    secret.string_data = Some(BTreeMap::from([
        ("username".to_owned(), "admin".to_owned()),
        (
            "password".to_owned(),
            "correct horse battery staple".to_owned(),
        ),
        (
            "url".to_owned(),
            "postgres://db.prod.svc:5432/app".to_owned(),
        ),
    ]));
    secret
}

#[divan::bench(args = [32, 4096, 1 << 20])]
fn seal_value(bencher: divan::Bencher, len: usize) {
    let (cert, _) = &*KEYS;
    let value = vec![7u8; len];
    bencher.bench(|| seal(cert, b"prod/app", divan::black_box(&value)).unwrap());
}

#[divan::bench(args = [32, 4096, 1 << 20])]
fn open_value(bencher: divan::Bencher, len: usize) {
    let (cert, ring) = &*KEYS;
    let sealed = seal(cert, b"prod/app", &vec![7u8; len]).unwrap();
    bencher.bench(|| open(ring, b"prod/app", divan::black_box(&sealed)).unwrap());
}

#[divan::bench]
fn seal_secret_3_items(bencher: divan::Bencher) {
    let (cert, _) = &*KEYS;
    let secret = secret();
    bencher
        .bench(|| seal_secret(divan::black_box(&secret), cert, &SealOptions::default()).unwrap());
}

#[divan::bench]
fn unseal_secret_3_items(bencher: divan::Bencher) {
    let (cert, ring) = &*KEYS;
    let sealed = seal_secret(&secret(), cert, &SealOptions::default()).unwrap();
    bencher.bench(|| unseal_sealed_secret(divan::black_box(&sealed), ring).unwrap());
}
