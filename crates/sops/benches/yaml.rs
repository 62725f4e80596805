//! YAML store hot paths on a generated 4.9 MB file with 50,000 values (comments, nested maps,
//! sequences, quoted strings): parse, unchanged emit (a copy of the source), and emit after every
//! value changed (the splice path encryption takes).

use signet_sops::Store;
use signet_sops::stores::yaml::YamlStore;
use signet_sops::tree::{MapEntry, Node, SeqItem, Tree, Value};

fn main() {
    divan::main();
}

/// About 5 MB and 50,000 leaf values.
fn generate() -> String {
    let mut out = String::with_capacity(5_200_000);
    let mut n = 0usize;
    let mut section = 0usize;
    while n < 50_000 {
        out.push_str(&format!(
            "section{section}:\n    # settings of section {section}\n"
        ));
        for j in 0..10 {
            // Deterministic filler of 100 characters.
            let v: String = (0..100)
                .map(|k| (b'a' + ((section * 31 + j * 7 + k) % 26) as u8) as char)
                .collect();
            out.push_str(&format!("    key{j}: {v}\n"));
            n += 1;
        }
        out.push_str("    list:\n");
        for j in 0..5 {
            out.push_str(&format!("        - \"item {j} of section {section} with some padding text to make it longer\"\n"));
            n += 1;
        }
        out.push_str(&format!("    port: {}\n", 1000 + section % 60000));
        n += 1;
        section += 1;
    }
    out
}

fn change_all(n: &mut Node) {
    match n {
        Node::Scalar(s) => s.set(Value::Str(
            "ENC[AES256_GCM,data:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]".into(),
        )),
        Node::Map(m) => {
            for e in &mut m.entries {
                match e {
                    MapEntry::Pair(p) => change_all(&mut p.value),
                    MapEntry::Comment(c) => c.set("ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:comment]"),
                }
            }
        }
        Node::Seq(s) => {
            for i in &mut s.items {
                if let SeqItem::Node(n) = i {
                    change_all(n);
                }
            }
        }
    }
}

fn changed(tree: &Tree) -> Tree {
    let mut t = tree.clone();
    for d in &mut t.documents {
        change_all(&mut d.root);
    }
    t
}

#[divan::bench(sample_count = 20)]
fn parse(bencher: divan::Bencher) {
    let text = generate();
    let store = YamlStore::default();
    bencher.bench(|| store.parse(divan::black_box(text.as_bytes())).unwrap());
}

#[divan::bench(sample_count = 20)]
fn emit_unchanged(bencher: divan::Bencher) {
    let store = YamlStore::default();
    let tree = store.parse(generate().as_bytes()).unwrap();
    bencher.bench(|| store.emit(divan::black_box(&tree)).unwrap());
}

#[divan::bench(sample_count = 20)]
fn emit_every_value_changed(bencher: divan::Bencher) {
    let store = YamlStore::default();
    let tree = changed(&store.parse(generate().as_bytes()).unwrap());
    bencher.bench(|| store.emit(divan::black_box(&tree)).unwrap());
}

#[divan::bench(sample_count = 20)]
fn render_fresh(bencher: divan::Bencher) {
    let store = YamlStore::default();
    let mut tree = store.parse(generate().as_bytes()).unwrap();
    tree.source = None;
    bencher.bench(|| store.emit(divan::black_box(&tree)).unwrap());
}
