//! Fidelity over the shared corpus (`<shared>/corpus/yaml`, or `$SIGNET_YAML_CORPUS`): every
//! file parses, emits unchanged byte for byte, and survives a simulated encrypt + decrypt byte
//! for byte.

use crate::common;
use crate::yaml_support;

use signet_sops::Store;
use signet_sops::stores::yaml::YamlStore;
use yaml_support::{fake_decrypt, fake_encrypt};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = common::corpus_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn corpus_parse_emit_is_byte_identical() {
    let store = YamlStore::default();
    for (name, bytes) in corpus() {
        let tree = store
            .parse(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = store.emit(&tree).unwrap();
        assert!(out == bytes, "{name}: unchanged emit differs");
    }
}

#[test]
fn corpus_encrypt_then_decrypt_is_byte_identical() {
    let store = YamlStore::default();
    let mut failures = Vec::new();
    for (name, bytes) in corpus() {
        let mut tree = store.parse(&bytes).unwrap();
        let leaves = fake_encrypt(&mut tree);
        let enc = store
            .emit(&tree)
            .unwrap_or_else(|e| panic!("{name}: emit encrypted: {e}"));
        let enc_text = String::from_utf8(enc.clone()).unwrap();
        assert!(
            enc_text.contains("\nsops:\n    age:\n"),
            "{name}: sops block missing:\n{enc_text}"
        );
        let mut tree2 = store
            .parse(&enc)
            .unwrap_or_else(|e| panic!("{name}: encrypted output does not parse: {e}\n{enc_text}"));
        // Every value is now an ENC string; the structure is unchanged.
        for d in &tree2.documents {
            if let signet_sops::tree::Node::Map(m) = &d.root {
                assert!(m.get("sops").is_some(), "{name}: sops entry lost");
            }
        }
        fake_decrypt(&mut tree2, &leaves);
        let dec = store.emit(&tree2).unwrap();
        if dec != bytes {
            let d = String::from_utf8_lossy(&dec);
            let o = String::from_utf8_lossy(&bytes);
            let lines: Vec<usize> = d
                .lines()
                .zip(o.lines())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(i, _)| i + 1)
                .collect();
            eprintln!("DIVERGES {name}: lines {lines:?}");
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "diverging: {failures:?}");
}
