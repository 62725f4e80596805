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
    let failures: Vec<String> = corpus()
        .into_iter()
        .filter(|(name, bytes)| !encrypt_then_decrypt_is_byte_identical(name, bytes))
        .map(|(name, _)| name)
        .collect();
    assert!(failures.is_empty(), "diverging: {failures:?}");
}

/// Each corpus file with 300 KiB of comment lines after it: past the size from which the scanner
/// runs on a thread of its own and a block root map's values are spliced in parallel. Parse and
/// emit, and a simulated encrypt + decrypt, still give back its bytes.
#[test]
fn large_corpus_files_round_trip_byte_identical() {
    let store = YamlStore::default();
    let padding: String = (0..7_000)
        .map(|i| format!("# padding line {i:05} of the large corpus\n"))
        .collect();
    let mut failures = Vec::new();
    for (name, mut bytes) in corpus() {
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(padding.as_bytes());
        let tree = store
            .parse(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            store.emit(&tree).unwrap() == bytes,
            "{name}: unchanged emit differs"
        );
        if !encrypt_then_decrypt_is_byte_identical(&name, &bytes) {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "diverging: {failures:?}");
}

/// Encrypts `bytes` (simulated), reads the output back and decrypts it: whether that gives back
/// `bytes` (the lines that differ are printed when not).
fn encrypt_then_decrypt_is_byte_identical(name: &str, bytes: &[u8]) -> bool {
    let store = YamlStore::default();
    let mut tree = store.parse(bytes).unwrap();
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
        let o = String::from_utf8_lossy(bytes);
        let lines: Vec<usize> = d
            .lines()
            .zip(o.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, _)| i + 1)
            .collect();
        eprintln!("DIVERGES {name}: lines {lines:?}");
        return false;
    }
    true
}

/// A writer taking at most 7 bytes per call, so every piece boundary is exercised.
struct Trickle(Vec<u8>);

impl std::io::Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(7);
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `emit_to` writes exactly what `emit` returns.
fn assert_streams_like_emit(store: &YamlStore, tree: &signet_sops::tree::Tree, what: &str) {
    let whole = store.emit(tree).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut streamed = Trickle(Vec::new());
    store
        .emit_to(tree, &mut streamed)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .unwrap();
    assert!(streamed.0 == whole, "{what}: streamed output differs");
}

#[test]
fn corpus_streamed_emit_equals_emit() {
    let store = YamlStore::default();
    for (name, bytes) in corpus() {
        let mut tree = store.parse(&bytes).unwrap();
        assert_streams_like_emit(&store, &tree, &format!("{name} unchanged"));
        let leaves = fake_encrypt(&mut tree);
        assert_streams_like_emit(&store, &tree, &format!("{name} encrypted"));
        let mut tree2 = store.parse(&store.emit(&tree).unwrap()).unwrap();
        fake_decrypt(&mut tree2, &leaves);
        assert_streams_like_emit(&store, &tree2, &format!("{name} decrypted"));
        // Without a source the tree is rendered afresh, then written.
        tree2.source = None;
        assert_streams_like_emit(&store, &tree2, &format!("{name} fresh"));
    }
}

/// An output several times the stream buffer (64 KiB), every value changed: the buffer fills
/// and is written many times over, mid-piece.
#[test]
fn streamed_emit_of_a_large_file_equals_emit() {
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&format!(
            "k{i}:\n  # note {i}\n  a: value number {i} with some padding\n  l:\n    - {i}\n"
        ));
    }
    assert!(text.len() > 3 * 64 * 1024);
    let store = YamlStore::default();
    let mut tree = store.parse(text.as_bytes()).unwrap();
    assert_streams_like_emit(&store, &tree, "large unchanged");
    fake_encrypt(&mut tree);
    assert_streams_like_emit(&store, &tree, "large encrypted");
}

/// A failing writer's error comes back as the inner error; a tree that cannot be emitted fails
/// before anything is written.
#[test]
fn streamed_emit_reports_the_writers_error() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let store = YamlStore::default();
    let mut tree = store.parse(b"# c\na: 1\n").unwrap();
    let inner = store.emit_to(&tree, &mut Broken).unwrap().unwrap_err();
    assert_eq!(inner.to_string(), "disk on fire");

    let signet_sops::tree::Node::Map(m) = &mut tree.documents[0].root else {
        panic!("a map")
    };
    let signet_sops::tree::MapEntry::Comment(c) = &mut m.entries[0] else {
        panic!("a comment")
    };
    c.set("two\nlines");
    let mut out = Vec::new();
    let e = store.emit_to(&tree, &mut out).unwrap_err();
    assert!(e.to_string().contains("line break"), "{e}");
    assert!(out.is_empty());
}
