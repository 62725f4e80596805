//! The YAML store against upstream sops (3.11, found at `$SIGNET_SOPS` or
//! `/root/.cache/signet/bin/sops`, with Go age's `age-keygen`): values are typed as sops types
//! them, and a tree rendered fresh is byte for byte what sops (yaml.v3) writes.

use crate::common;
use crate::yaml_support;

use std::path::{Path, PathBuf};

use signet_sops::Store;
use signet_sops::stores::yaml::YamlStore;
use signet_sops::tree::{MapEntry, Node, SeqItem, Tree, Value};
use yaml_support::{Leaf, leaves, type_name};

struct Sandbox {
    dir: PathBuf,
    recipient: String,
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        let dir = std::env::temp_dir().join(format!("signet-yaml-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let recipient = common::age_keygen(&dir.join("key.txt"));
        Sandbox { dir, recipient }
    }

    fn sops(&self, args: &[&str], file: &Path) -> Vec<u8> {
        common::stdout_of(
            common::sops_command(&self.dir.join("key.txt"))
                .args(args)
                .arg(file),
        )
    }

    fn encrypt(&self, name: &str, yaml: &str) -> Vec<u8> {
        let f = self.dir.join(name);
        std::fs::write(&f, yaml).unwrap();
        self.sops(&["-e", "--age", &self.recipient.clone()], &f)
    }

    fn decrypt(&self, name: &str, enc: &[u8]) -> Vec<u8> {
        let f = self.dir.join(name);
        std::fs::write(&f, enc).unwrap();
        self.sops(&["-d"], &f)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Drops positions so the store renders the tree fresh.
fn forget_source(tree: &mut Tree) {
    tree.source = None;
}

const TYPED: &str = r#"s: hello
yes_: yes
on_: on
t: true
f: False
i: 42
hx: 0x1F
oc: 0o17
o2: 017
bin: 0b101
under: 1_000
fl: 3.5
fe: 1e3
inf: .inf
nan: .nan
eight: 08
ts: 2001-12-14t21:59:43.10-05:00
spaced: 2001-12-14 21:59:43.10
d: 2002-12-14
notdate: 2002-13-14
big: 123456789012345678901234567890
q: "123"
sq: 'true'
lit: |
  line1
  line2
fold: >
  a
  b
tagged: !!str 12
neg: -7
dot: .5
words: hello world
nested:
  a: 1
  list:
    - x
    - 2
    - false
"#;

/// The `type:` of every ENC value in a sops-encrypted tree, in document order.
fn enc_types(tree: &Tree) -> Vec<String> {
    leaves(tree)
        .into_iter()
        .filter_map(|l| match &l {
            Leaf::Value(Value::Str(s)) if s.starts_with("ENC[") => Some(
                s.rsplit_once("type:")
                    .unwrap()
                    .1
                    .trim_end_matches(']')
                    .to_owned(),
            ),
            _ => None,
        })
        .collect()
}

fn without_sops(tree: &mut Tree) {
    for d in &mut tree.documents {
        if let Node::Map(m) = &mut d.root {
            m.remove("sops");
        }
    }
}

#[test]
fn scalar_types_match_sops() {
    let sb = Sandbox::new("types");
    let store = YamlStore::default();
    let enc = sb.encrypt("typed.yaml", TYPED);
    let mut enc_tree = store.parse(&enc).unwrap();
    without_sops(&mut enc_tree);
    let sops_types = enc_types(&enc_tree);
    let ours: Vec<String> = leaves(&store.parse(TYPED.as_bytes()).unwrap())
        .into_iter()
        .filter_map(|l| match &l {
            Leaf::Value(Value::Null) => None,
            Leaf::Value(Value::Str(s)) if s.is_empty() => None,
            Leaf::Value(v) => Some(type_name(v).to_owned()),
            Leaf::Comment(_) => None,
        })
        .collect();
    assert_eq!(ours, sops_types);
    // And the plaintext sops decrypts matches our values where sops keeps them exactly.
    let dec = store.parse(&sb.decrypt("typed.enc.yaml", &enc)).unwrap();
    let ours = store.parse(TYPED.as_bytes()).unwrap();
    let root = |t: &Tree| match &t.documents[0].root {
        Node::Map(m) => m.clone(),
        _ => panic!("root is not a map"),
    };
    let (dec, ours) = (root(&dec), root(&ours));
    for key in [
        "hx", "oc", "o2", "under", "ts", "d", "fl", "i", "t", "f", "s", "yes_", "q", "sq", "lit",
        "fold",
    ] {
        let v = |m: &signet_sops::tree::Map| match m.get(key) {
            Some(Node::Scalar(s)) => s.value.clone(),
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(v(&dec), v(&ours), "{key}");
    }
}

const FRESH: &str = r#"# head comment
s: hello # inline
yes_: yes
n1: ~
empty: ""
lead: " lead"
colon: 'x: y'
hash: '#x'
tab: "a\tb"
k: "line1\nline2"
l: "trail\n"
lit: |
  line1
  line2
nested:
  a: 1
  # foot of a
# before list
list:
  - x
  - k: v
    m:
      deep: 1
    lit: |
      a
      b
    s:
      - 1
      - - 2
        - 3
  - []
  - {}
e: []
em: {}
"y": 2
"#;

#[test]
fn fresh_rendering_is_what_sops_writes() {
    let sb = Sandbox::new("fresh");
    let store = YamlStore::default();
    let enc = sb.encrypt("fresh.yaml", FRESH);
    // sops' encrypted output, parsed and rendered again from the tree alone.
    let mut tree = store.parse(&enc).unwrap();
    forget_source(&mut tree);
    let ours = store.emit(&tree).unwrap();
    assert_eq!(
        String::from_utf8(ours).unwrap(),
        String::from_utf8(enc.clone()).unwrap()
    );
    // sops' decrypted output (plain yaml.v3 rendering of every type) likewise.
    let dec = sb.decrypt("fresh.enc.yaml", &enc);
    let mut tree = store.parse(&dec).unwrap();
    forget_source(&mut tree);
    let ours = store.emit(&tree).unwrap();
    assert_eq!(
        String::from_utf8(ours).unwrap(),
        String::from_utf8(dec).unwrap()
    );
}

#[test]
fn multi_document_fresh_rendering_is_what_sops_writes() {
    let sb = Sandbox::new("multidoc");
    let store = YamlStore::default();
    let enc = sb.encrypt("m.yaml", "a: 1\n---\n# c\nb: [1, 2]\n---\nc: {x: y}\n");
    let mut tree = store.parse(&enc).unwrap();
    assert_eq!(tree.documents.len(), 3);
    forget_source(&mut tree);
    assert_eq!(store.emit(&tree).unwrap(), enc);
}

#[test]
fn comments_land_in_the_maps_sops_puts_them_in() {
    // sops encrypts each comment with the path of the map holding it, so the map matters.
    let sb = Sandbox::new("comments");
    let store = YamlStore::default();
    let src = "# top\na: 1 # right of a\nnested:\n  b: 1\n  # foot of b\n# before c\nc:\n  - x\n  - k: v\n    # in item\nd: 2\n";
    let enc = store.parse(&sb.encrypt("c.yaml", src)).unwrap();
    let ours = store.parse(src.as_bytes()).unwrap();
    fn shape(n: &Node, path: &str, out: &mut Vec<String>) {
        match n {
            Node::Scalar(_) => {}
            Node::Map(m) => {
                for e in &m.entries {
                    match e {
                        MapEntry::Comment(_) => out.push(format!("{path}#")),
                        MapEntry::Pair(p) if p.key == "sops" => {}
                        MapEntry::Pair(p) => {
                            out.push(format!("{path}{}", p.key));
                            shape(&p.value, &format!("{path}{}:", p.key), out);
                        }
                    }
                }
            }
            Node::Seq(s) => {
                for i in &s.items {
                    match i {
                        SeqItem::Comment(_) => out.push(format!("{path}[#]")),
                        SeqItem::Node(n) => shape(n, path, out),
                    }
                }
            }
        }
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    shape(&ours.documents[0].root, "", &mut a);
    shape(&enc.documents[0].root, "", &mut b);
    assert_eq!(a, b);
}
