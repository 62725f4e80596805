//! Encrypt/decrypt throughput on a 50,000-value document (the target: far faster than sops on a
//! 5 MB file). Run with `cargo bench -p signet-sops`.

use signet_sops::DataKey;
use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use signet_sops::metadata::Metadata;
use signet_sops::tree::{Document, Map, Node, Scalar, Tree, Value};

fn main() {
    divan::main();
}

/// 500 maps of 100 string values, ~100 bytes each (≈ 5 MB of plaintext).
fn big_tree() -> Tree {
    let mut root = Map::default();
    for i in 0..500 {
        let mut m = Map::default();
        for j in 0..100 {
            let v = format!("value-{i}-{j}-{}", "x".repeat(90));
            m.insert(format!("key_{j}"), Node::Scalar(Scalar::new(Value::Str(v))));
        }
        root.insert(format!("section_{i}"), Node::Map(m));
    }
    Tree {
        documents: vec![Document {
            root: Node::Map(root),
            origin: None,
        }],
        source: None,
    }
}

#[divan::bench(sample_count = 10)]
fn encrypt_50k(bencher: divan::Bencher) {
    let key = DataKey::generate();
    bencher
        .with_inputs(big_tree)
        .bench_local_values(|mut tree| {
            let mut meta = Metadata::default();
            engine::encrypt(&mut tree, &key, &mut meta, &EncryptOptions::default()).unwrap();
            tree
        });
}

#[divan::bench(sample_count = 10)]
fn decrypt_50k(bencher: divan::Bencher) {
    let key = DataKey::generate();
    let mut encrypted = big_tree();
    engine::encrypt(
        &mut encrypted,
        &key,
        &mut Metadata::default(),
        &EncryptOptions::default(),
    )
    .unwrap();
    bencher
        .with_inputs(|| encrypted.clone())
        .bench_local_values(|mut tree| {
            engine::decrypt(&mut tree, &key, DecryptOptions::default()).unwrap();
            tree
        });
}

#[divan::bench(sample_count = 10)]
fn json_parse_emit_50k(bencher: divan::Bencher) {
    use signet_sops::Store;
    let store = signet_sops::stores::json::JsonStore;
    let bytes = store.emit(&big_tree()).unwrap();
    bencher.bench_local(|| store.emit(&store.parse(&bytes).unwrap()).unwrap());
}

/// The whole `encrypt` path on a 5 MB YAML file: parse, encrypt 50k values, splice the output.
#[divan::bench(sample_count = 10)]
fn yaml_file_encrypt_50k(bencher: divan::Bencher) {
    use signet_sops::Store;
    let store = signet_sops::stores::yaml::YamlStore::default();
    let bytes = store.emit(&big_tree()).unwrap();
    let key = DataKey::generate();
    bencher.bench_local(|| {
        let mut tree = store.parse(&bytes).unwrap();
        engine::encrypt(
            &mut tree,
            &key,
            &mut Metadata::default(),
            &EncryptOptions::default(),
        )
        .unwrap();
        store.emit(&tree).unwrap()
    });
}
