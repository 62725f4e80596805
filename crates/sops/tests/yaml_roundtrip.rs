//! Round trips of the YAML store: random trees rendered fresh parse back equal; edits splice only
//! what changed; aliases, flow collections, block scalars and files without a final line break
//! behave as documented.

use crate::yaml_support;

use proptest::prelude::*;
use signet_sops::Store;
use signet_sops::stores::yaml::YamlStore;
use signet_sops::tree::{Comment, Map, MapEntry, Node, Pair, Scalar, Seq, SeqItem, Tree, Value};
use yaml_support::{fake_decrypt, fake_encrypt, leaves};

fn store() -> YamlStore {
    YamlStore::default()
}

/// Strips positions and change flags so trees from different sources compare by content.
fn normalize(n: &Node) -> Node {
    match n {
        Node::Scalar(s) => Node::Scalar(Scalar {
            value: s.value.clone(),
            origin: None,
            changed: false,
        }),
        Node::Map(m) => Node::Map(Map {
            entries: m
                .entries
                .iter()
                .map(|e| match e {
                    MapEntry::Pair(p) => MapEntry::Pair(Pair {
                        key: p.key.clone(),
                        value: normalize(&p.value),
                        origin: None,
                    }),
                    MapEntry::Comment(c) => MapEntry::Comment(Comment {
                        text: c.text.clone(),
                        origin: None,
                        changed: false,
                        inline: c.inline,
                    }),
                })
                .collect(),
            origin: None,
        }),
        Node::Seq(s) => Node::Seq(Seq {
            items: s
                .items
                .iter()
                .map(|i| match i {
                    SeqItem::Node(n) => SeqItem::Node(normalize(n)),
                    SeqItem::Comment(c) => SeqItem::Comment(Comment {
                        text: c.text.clone(),
                        origin: None,
                        changed: false,
                        inline: c.inline,
                    }),
                })
                .collect(),
            origin: None,
        }),
    }
}

fn roots(t: &Tree) -> Vec<Node> {
    t.documents.iter().map(|d| normalize(&d.root)).collect()
}

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _.:/#'\"\\-]{0,20}",
        Just("yes".to_owned()),
        Just("123".to_owned()),
        Just("true".to_owned()),
        Just("".to_owned()),
        Just(" lead".to_owned()),
        Just("trail ".to_owned()),
        Just("a: b".to_owned()),
        Just("- x".to_owned()),
        Just("...".to_owned()),
        Just("line1\nline2".to_owned()),
        Just("line1\nline2\n".to_owned()),
        Just("x\n\n".to_owned()),
        Just("  indented\nnext\n".to_owned()),
        Just("tab\there".to_owned()),
        Just("ünïcödé ✓".to_owned()),
        Just("ENC[AES256_GCM,data:abc=,iv:def=,tag:ghi==,type:str]".to_owned()),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        arb_string().prop_map(Value::Str),
        any::<i64>().prop_map(|i| Value::Int(i.to_string())),
        any::<bool>().prop_map(Value::Bool),
        (-1.0e12f64..1.0e12).prop_map(Value::Float),
        Just(Value::Float(1e30)),
        Just(Value::Float(f64::INFINITY)),
        Just(Value::Null),
        Just(Value::Time("2024-01-02T03:04:05.5+01:00".into())),
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_]{0,8}",
        Just("yes".to_owned()),
        Just("1".to_owned()),
        Just("a b".to_owned())
    ]
}

fn scalar(v: Value) -> Node {
    Node::Scalar(Scalar::new(v))
}

fn dedup_map(entries: Vec<(String, Node)>, comments: Vec<bool>, comment_first_ok: bool) -> Map {
    let mut m = Map::default();
    let mut seen = std::collections::HashSet::new();
    for ((k, v), c) in entries
        .into_iter()
        .zip(comments.into_iter().chain(std::iter::repeat(false)))
    {
        if !seen.insert(k.clone()) {
            continue;
        }
        if c && (comment_first_ok || !m.entries.is_empty()) {
            m.entries
                .push(MapEntry::Comment(Comment::new(format!(" note {k}"))));
        }
        m.entries.push(MapEntry::Pair(Pair {
            key: k,
            value: v,
            origin: None,
        }));
    }
    m
}

fn arb_node() -> impl Strategy<Value = Node> {
    let leaf = arb_value().prop_map(scalar);
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            (
                prop::collection::vec((arb_key(), inner.clone()), 0..5),
                prop::collection::vec(any::<bool>(), 0..5)
            )
                .prop_map(|(e, c)| Node::Map(dedup_map(e, c, false))),
            prop::collection::vec(inner, 0..5).prop_map(|items| Node::Seq(Seq {
                items: items.into_iter().map(SeqItem::Node).collect(),
                origin: None
            })),
        ]
    })
}

fn arb_tree() -> impl Strategy<Value = Tree> {
    let doc = (
        prop::collection::vec((arb_key(), arb_node()), 1..6),
        prop::collection::vec(any::<bool>(), 0..6),
    )
        .prop_map(|(e, c)| Node::Map(dedup_map(e, c, true)));
    prop::collection::vec(doc, 1..3).prop_map(|roots| Tree {
        documents: roots
            .into_iter()
            .map(|root| signet_sops::tree::Document { root, origin: None })
            .collect(),
        source: None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn fresh_rendering_parses_back_equal(tree in arb_tree(), indent in 1usize..6) {
        let store = YamlStore::new(indent);
        let text = store.emit(&tree).unwrap();
        let back = store.parse(&text).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&text)));
        prop_assert_eq!(roots(&back), roots(&tree), "{}", String::from_utf8_lossy(&text));
        // And the parsed tree emits its source unchanged.
        prop_assert_eq!(store.emit(&back).unwrap(), text);
    }

    #[test]
    fn changing_every_value_splices_and_reparses(tree in arb_tree()) {
        // Known limitation (see the store docs): a keep-chomped block (`|+`) whose trailing empty
        // lines end a nested block can gain a line break after encrypt+decrypt.
        prop_assume!(!leaves(&tree).iter().any(|l| matches!(l, yaml_support::Leaf::Value(Value::Str(s)) if s.ends_with("\n\n"))));
        let store = store();
        let text = store.emit(&tree).unwrap();
        let mut parsed = store.parse(&text).unwrap();
        let recorded = fake_encrypt(&mut parsed);
        let enc = store.emit(&parsed).unwrap();
        let mut enc_tree = store.parse(&enc).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&enc)));
        fake_decrypt(&mut enc_tree, &recorded);
        let dec = store.emit(&enc_tree).unwrap();
        let back = store.parse(&dec).unwrap();
        prop_assert_eq!(roots(&back), roots(&tree));
        prop_assert_eq!(leaves(&back), leaves(&tree));
    }
}

fn parse(s: &str) -> Tree {
    store().parse(s.as_bytes()).unwrap()
}

fn emit(t: &Tree) -> String {
    String::from_utf8(store().emit(t).unwrap()).unwrap()
}

fn root_map(t: &mut Tree) -> &mut Map {
    match &mut t.documents[0].root {
        Node::Map(m) => m,
        _ => panic!("not a map"),
    }
}

fn set(t: &mut Tree, key: &str, v: Value) {
    match root_map(t).get_mut(key) {
        Some(Node::Scalar(s)) => s.set(v),
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn quoting_style_is_kept_for_changed_values() {
    let mut t = parse("a: \"x\"\nb: 'y'\nc: z\nd: |\n  l1\n  l2\ne: 1 # keep\n");
    for k in ["a", "b", "c", "d"] {
        set(
            &mut t,
            k,
            Value::Str("ENC[AES256_GCM,data:QQ==,type:str]".into()),
        );
    }
    set(&mut t, "e", Value::Str("ENC[x]".into()));
    assert_eq!(
        emit(&t),
        "a: \"ENC[AES256_GCM,data:QQ==,type:str]\"\nb: 'ENC[AES256_GCM,data:QQ==,type:str]'\nc: ENC[AES256_GCM,data:QQ==,type:str]\nd: |-\n  ENC[AES256_GCM,data:QQ==,type:str]\ne: ENC[x] # keep\n"
    );
}

#[test]
fn values_that_would_change_type_are_quoted() {
    let mut t = parse("a: ENC[x]\nb: ENC[x]\nc: ENC[x]\nd: ENC[x]\ne: ENC[x]\n");
    set(&mut t, "a", Value::Str("true".into()));
    set(&mut t, "b", Value::Str("123".into()));
    set(&mut t, "c", Value::Str("".into()));
    set(&mut t, "d", Value::Str("x # y".into()));
    set(&mut t, "e", Value::Str("multi\nline".into()));
    assert_eq!(
        emit(&t),
        "a: \"true\"\nb: \"123\"\nc: \"\"\nd: 'x # y'\ne: |-\n    multi\n    line\n"
    );
    let back = parse(&emit(&t));
    assert_eq!(leaves(&back), leaves(&t));
}

#[test]
fn sops_entry_is_inserted_last_and_removed_exactly() {
    for src in [
        "a: 1\n",
        "a: 1",
        "a: 1\n\n# trailing\n",
        "a: 1\n---\nb: 2\n",
        "# only\na:\n  - x\n",
    ] {
        let mut t = parse(src);
        let recorded = fake_encrypt(&mut t);
        let enc = emit(&t);
        for doc in enc.split("\n---\n") {
            assert!(
                doc.contains("sops:\n    age:\n        - recipient: "),
                "{src:?} -> {enc}"
            );
        }
        let mut t2 = parse(&enc);
        fake_decrypt(&mut t2, &recorded);
        // A file without a final line break gets one, as sops writes every file.
        let expected = if src.ends_with('\n') {
            src.to_owned()
        } else {
            format!("{src}\n")
        };
        assert_eq!(emit(&t2), expected);
    }
}

#[test]
fn aliases_are_expanded_and_written_out_when_changed() {
    let src = "base: &b\n  x: 1\nm:\n  <<: *b\n  y: 2\ns: &s val\nt: *s\nl:\n  - *b\n";
    let mut t = parse(src);
    let m = root_map(&mut t);
    // sops sees the anchored value again at every alias.
    let Some(Node::Map(merged)) = m.get("m") else {
        panic!()
    };
    assert!(matches!(merged.get("<<"), Some(Node::Map(x)) if x.get("x").is_some()));
    assert!(
        matches!(m.get("t"), Some(Node::Scalar(Scalar { value: Value::Str(v), .. })) if v == "val")
    );
    // Unchanged: byte for byte, aliases kept.
    assert_eq!(emit(&t), src);
    let recorded = fake_encrypt(&mut t);
    let enc = emit(&t);
    assert!(
        !enc.contains('*'),
        "aliases over encrypted values must be written out: {enc}"
    );
    let mut t2 = parse(&enc);
    fake_decrypt(&mut t2, &recorded);
    // Documented divergence: the aliases come back expanded.
    assert_eq!(
        emit(&t2),
        "base: &b\n  x: 1\nm:\n  <<:\n      x: 1\n  y: 2\ns: &s val\nt: val\nl:\n  - x: 1\n"
    );
    assert_eq!(leaves(&t2), leaves(&parse(src)));
}

#[test]
fn plain_scalars_in_flow_collections_come_back_plain() {
    let src = "a: [x, \"y\", 'z']\nb: {k: v}\n";
    let mut t = parse(src);
    let recorded = fake_encrypt(&mut t);
    let enc = emit(&t);
    assert!(enc.contains("[!!str 'ENC["), "{enc}");
    let mut t2 = parse(&enc);
    fake_decrypt(&mut t2, &recorded);
    assert_eq!(emit(&t2), src);
}

#[test]
fn changed_comments_are_rewritten_in_place() {
    let mut t = parse("# one\na: 1 # two\n");
    let m = root_map(&mut t);
    let mut n = 0;
    for e in &mut m.entries {
        if let MapEntry::Comment(c) = e {
            n += 1;
            c.set(format!("ENC[{n}]"));
        }
    }
    assert_eq!(n, 2);
    assert_eq!(emit(&t), "#ENC[1]\na: 1 #ENC[2]\n");
}

#[test]
fn replaced_values_and_new_keys_render_fresh() {
    let mut t = parse("a:\n  b: 1\nc: 2\n");
    let mut inner = Map::default();
    inner.insert(
        "x",
        Node::Seq(Seq {
            items: vec![SeqItem::Node(scalar(Value::Int("1".into())))],
            origin: None,
        }),
    );
    root_map(&mut t).insert("a", Node::Map(inner));
    root_map(&mut t).insert("d", scalar(Value::Str("new".into())));
    assert_eq!(emit(&t), "a:\n    x:\n        - 1\nc: 2\nd: new\n");
}

#[test]
fn parse_errors_name_line_and_column() {
    let e = store().parse(b"a: 1\nb: [1, 2\n").unwrap_err().to_string();
    assert!(e.contains("yaml parse error at 2:"), "{e}");
    let e = store().parse(b"a: 1\na: 2\n").unwrap_err().to_string();
    assert!(e.contains("2:1") && e.contains("already defined"), "{e}");
    // In every document: sops checks only the first (README, known differences).
    let e = store()
        .parse(b"k: v\n---\na: 1\na: 2\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("4:1") && e.contains("already defined"), "{e}");
    let e = store().parse(b"a: *nope\n").unwrap_err().to_string();
    assert!(e.contains("1:"), "{e}");
    let e = store().parse(b"a: \xff\n").unwrap_err().to_string();
    assert!(e.contains("UTF-8"), "{e}");
}

#[test]
fn documents_and_empty_documents() {
    let t = parse("---\na: 1\n...\n---\n# c\nb: 2\n");
    assert_eq!(t.documents.len(), 2);
    assert_eq!(emit(&t), "---\na: 1\n...\n---\n# c\nb: 2\n");
    let t = parse("---\n");
    assert_eq!(t.documents.len(), 1);
    assert!(matches!(&t.documents[0].root, Node::Map(m) if m.entries.is_empty()));
}

#[test]
fn crlf_files_keep_their_line_breaks() {
    let src = "# c\r\na: 1\r\nb: |\r\n  x\r\n  y\r\n";
    let mut t = parse(src);
    assert!(matches!(
        root_map(&mut t).get("b"),
        Some(Node::Scalar(Scalar { value: Value::Str(v), .. })) if v == "x\ny\n"
    ));
    assert_eq!(emit(&t), src);
    let recorded = fake_encrypt(&mut t);
    let enc = emit(&t);
    assert!(
        !enc.replace("\r\n", "").contains('\n'),
        "bare LF written into a CRLF file: {enc:?}"
    );
    let mut t2 = parse(&enc);
    fake_decrypt(&mut t2, &recorded);
    assert_eq!(emit(&t2), src);
}

#[test]
fn sops_list_comment_items_read_as_comments() {
    // sops writes a comment that stood in a list as an item; it is a comment to sops on read.
    let src = "l:\n    - ENC[AES256_GCM,data:QQ==,iv:QQ==,tag:QQ==,type:comment]\n    - x\n";
    let mut t = parse(src);
    assert_eq!(emit(&t), src);
    let Some(Node::Seq(s)) = root_map(&mut t).get_mut("l") else {
        panic!()
    };
    assert!(matches!(&s.items[0], SeqItem::Comment(c) if c.text.starts_with("ENC[")));
    assert!(matches!(&s.items[1], SeqItem::Node(_)));
    if let SeqItem::Comment(c) = &mut s.items[0] {
        c.set(" note");
    }
    assert_eq!(emit(&t), "l:\n    # note\n    - x\n");
}

#[test]
fn comments_go_where_yaml_v3_puts_them() {
    fn comment_paths(n: &Node, path: &str, out: &mut Vec<String>) {
        match n {
            Node::Scalar(_) => {}
            Node::Map(m) => {
                for e in &m.entries {
                    match e {
                        MapEntry::Comment(c) => out.push(format!("{path}#{}", c.text.trim())),
                        MapEntry::Pair(p) => {
                            comment_paths(&p.value, &format!("{path}{}:", p.key), out)
                        }
                    }
                }
            }
            Node::Seq(s) => {
                for i in &s.items {
                    match i {
                        SeqItem::Comment(c) => out.push(format!("{path}[]#{}", c.text.trim())),
                        SeqItem::Node(n) => comment_paths(n, path, out),
                    }
                }
            }
        }
    }
    let src = "\
a:
  # head of b (into a)
  b: 1 # line of b (a)
  # foot of b (a)
# head of c (root)
c:
# head of d, less indented (into c)
  d: [x] # line of the flow list (into it)
e:

  # head of the indentless list (into it)
  - k: v

    # free after a deeper block (deepest: the item map)

f: 1
";
    let t = parse(src);
    let mut got = Vec::new();
    comment_paths(&t.documents[0].root, "", &mut got);
    assert_eq!(
        got,
        [
            "a:#head of b (into a)",
            "a:#line of b (a)",
            "a:#foot of b (a)",
            "#head of c (root)",
            "c:#head of d, less indented (into c)",
            "c:d:[]#line of the flow list (into it)",
            "e:[]#head of the indentless list (into it)",
            "e:#free after a deeper block (deepest: the item map)",
        ]
    );
}

/// Encrypts and decrypts at the store level; returns the decrypted text.
fn round_trip(src: &str) -> String {
    let mut t = parse(src);
    let recorded = fake_encrypt(&mut t);
    let mut t2 = parse(&emit(&t));
    fake_decrypt(&mut t2, &recorded);
    emit(&t2)
}

#[test]
fn values_sops_normalises_come_back_normalised() {
    assert_eq!(
        round_trip("a: 0x1F\nb: 1e3\nc: 2001-12-14t21:59:43.10-05:00\nd: 017\n"),
        "a: 31\nb: 1000.0\nc: 2001-12-14T21:59:43.1-05:00\nd: 15\n"
    );
}

#[test]
fn folded_blocks_come_back_refolded_or_literal() {
    assert_eq!(round_trip("f: >\n  a\n  b\n"), "f: >\n  a b\n");
    assert_eq!(round_trip("g: >\n  a\n\n  b\n"), "g: |\n  a\n  b\n");
    assert_eq!(round_trip("h: \"a\n  b\"\n"), "h: \"a b\"\n");
}

#[test]
fn keep_chomped_block_at_the_end_of_a_nested_block() {
    let src = "a:\n    a: |+\n        x\n\n";
    assert_eq!(round_trip(src), "a:\n    a: |+\n        x\n\n\n");
    // Not at the end it round-trips.
    assert_eq!(round_trip("a: |+\n  x\n\nb: 1\n"), "a: |+\n  x\n\nb: 1\n");
}

#[test]
fn sops_entry_in_edge_documents() {
    for src in [
        "---\n",
        "# just a comment\n",
        "a:\n  b: 1\n...\n",
        "---\na: 1\n---\n",
    ] {
        let mut t = parse(src);
        let recorded = fake_encrypt(&mut t);
        let enc = emit(&t);
        let t_enc = parse(&enc);
        for d in &t_enc.documents {
            assert!(
                matches!(&d.root, Node::Map(m) if m.get("sops").is_some()),
                "{src:?} -> {enc}"
            );
        }
        let mut t2 = t_enc;
        fake_decrypt(&mut t2, &recorded);
        assert_eq!(emit(&t2), src, "encrypted was:\n{enc}");
    }
}

#[test]
fn core_type_tags_give_way_to_encrypted_values() {
    let mut t = parse("a: !!int 5\nb: !!str 6\n");
    assert!(
        matches!(root_map(&mut t).get("a"), Some(Node::Scalar(Scalar { value: Value::Int(i), .. })) if i == "5")
    );
    assert!(
        matches!(root_map(&mut t).get("b"), Some(Node::Scalar(Scalar { value: Value::Str(s), .. })) if s == "6")
    );
    set(&mut t, "a", Value::Str("ENC[x]".into()));
    set(&mut t, "b", Value::Str("ENC[y]".into()));
    assert_eq!(emit(&t), "a: ENC[x]\nb: !!str ENC[y]\n");
    // Decrypted, the value's own rendering carries the type.
    assert_eq!(round_trip("a: !!int 5\n"), "a: 5\n");
}

#[test]
fn set_and_unset_like_edits_touch_only_their_lines() {
    let src = "# head\na:\n  b: 1 # keep\n  c: 2\nl:\n  - x\n  - y\nz: 3\n";
    // Replace a sequence item by a fresh node (as `set '["l"][0]'` does).
    let mut t = parse(src);
    if let Some(Node::Seq(s)) = root_map(&mut t).get_mut("l") {
        s.items[0] = SeqItem::Node(scalar(Value::Str("new".into())));
    }
    assert_eq!(
        emit(&t),
        "# head\na:\n  b: 1 # keep\n  c: 2\nl:\n  - new\n  - y\nz: 3\n"
    );
    // Remove a nested key (as `unset '["a"]["c"]'`).
    let mut t = parse(src);
    if let Some(Node::Map(m)) = root_map(&mut t).get_mut("a") {
        m.remove("c");
    }
    assert_eq!(
        emit(&t),
        "# head\na:\n  b: 1 # keep\nl:\n  - x\n  - y\nz: 3\n"
    );
    // Add a nested key.
    let mut t = parse(src);
    if let Some(Node::Map(m)) = root_map(&mut t).get_mut("a") {
        m.insert("d", scalar(Value::Bool(true)));
    }
    assert_eq!(
        emit(&t),
        "# head\na:\n  b: 1 # keep\n  c: 2\n  d: true\nl:\n  - x\n  - y\nz: 3\n"
    );
    // Remove the key whose line carries a comment: the comment stays in the tree (sops keeps it
    // as a separate entry), so it stays in the file.
    let mut t = parse(src);
    if let Some(Node::Map(m)) = root_map(&mut t).get_mut("a") {
        m.remove("b");
    }
    let out = emit(&t);
    assert!(out.contains("# keep") && !out.contains("b: 1"), "{out}");
    assert_eq!(roots(&parse(&out)).len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    /// Any input the parser takes emits back unchanged, and survives a simulated encrypt +
    /// decrypt as parseable YAML with the same values.
    #[test]
    // (Explicit `? key` entries are left out: the store reads them but does not insert entries
    // into such maps.)
    // Anchors and aliases are left out too (covered by their own tests).
    // Block scalars are left out as well: the corpus, the unit tests and the fresh-rendering
    // property cover them. (An empty block scalar is reported by the parser at its header at the
    // end of a file but at the next line otherwise, which moves a comment above it after it in
    // tree order once the sops block follows: same map, same AAD, same bytes in the file, but
    // this order-sensitive fake decryption would trip on it.)
    fn arbitrary_input_round_trips(src in "([a-c0-9 :\\-#'\"\\[\\]{},!.~\\n]|\\n  |\\n    |: |- ){0,60}") {
        // Empty (null) keys are out of scope (sops keys are strings): give each one a name.
        let src: String = src
            .split('\n')
            .map(|l| {
                let t = l.trim_start();
                if t.starts_with(':') {
                    format!("{}k{}", &l[..l.len() - t.len()], t)
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        encrypted_and_decrypted_round_trip(&src)?;
    }
}

/// The body of `arbitrary_input_round_trips`: `src` (if it parses) is written back unchanged, and
/// its leaves survive a fake encryption and decryption.
fn encrypted_and_decrypted_round_trip(src: &str) -> Result<(), TestCaseError> {
    let store = store();
    if let Ok(mut t) = store.parse(src.as_bytes()) {
        prop_assert_eq!(store.emit(&t).unwrap(), src.as_bytes());
        let before = leaves(&t);
        let recorded = fake_encrypt(&mut t);
        if let Ok(enc) = store.emit(&t) {
            let mut t2 = store
                .parse(&enc)
                .unwrap_or_else(|e| panic!("{e}\n{src:?}\n{}", String::from_utf8_lossy(&enc)));
            if leaves(&t2).len() == recorded.len() + count_sops_leaves(&t2) {
                fake_decrypt(&mut t2, &recorded);
                let dec = store.emit(&t2).unwrap();
                let back = store
                    .parse(&dec)
                    .unwrap_or_else(|e| panic!("{e}\n{src:?}\n{}", String::from_utf8_lossy(&dec)));
                prop_assert_eq!(leaves(&back), before);
            }
        }
    }
    Ok(())
}

/// The case `arbitrary_input_round_trips` shrank to, kept here since proptest's persisted seeds
/// replay only with the same generator.
#[test]
fn arbitrary_input_regressions() {
    // A blank line indented past the block a decrypted value became, once `sops:` is cut.
    let src = "k: \n- .\n  \n  a\n    ";
    encrypted_and_decrypted_round_trip(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, .. ProptestConfig::default() })]

    /// Untrusted input never panics the parser or the unchanged emit.
    #[test]
    fn arbitrary_input_never_panics(src in "([a-c0-9 :\\-#'\"|>\\[\\]{},&*!?%@`.~\\t\\r\\n]|\\n  |: |- ){0,80}") {
        let store = store();
        if let Ok(t) = store.parse(src.as_bytes()) {
            let _ = store.emit(&t);
        }
    }
}

/// Leaves inside the `sops` maps (the fake metadata).
fn count_sops_leaves(t: &Tree) -> usize {
    t.documents
        .iter()
        .map(|d| match &d.root {
            Node::Map(m) => m.get("sops").map_or(0, |n| {
                let tree = Tree {
                    documents: vec![signet_sops::tree::Document {
                        root: n.clone(),
                        origin: None,
                    }],
                    source: None,
                };
                leaves(&tree).len()
            }),
            _ => 0,
        })
        .sum()
}
