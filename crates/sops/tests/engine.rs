//! Engine behaviour checked against upstream sops (encryption rules, `mac_only_encrypted`) and on
//! its own (tampering, IV reuse, random round trips).

use crate::common;

use std::path::PathBuf;

use proptest::prelude::*;
use signet_sops::cipher::{EncryptedValue, looks_encrypted};
use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use signet_sops::metadata::{MasterKeyEntry, Metadata};
use signet_sops::rules::EncryptionRule;
use signet_sops::stores::store_for;
use signet_sops::tree::{Document, Map, MapEntry, Node, Pair, Scalar, Seq, SeqItem, Tree, Value};
use signet_sops::{DataKey, Error, Format};

use common::{FLUX_AGE_KEY as AGE_KEY, FLUX_AGE_RECIPIENT as AGE_RECIPIENT};

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "signet-sops-engine-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sops(args: &[&str], file: &std::path::Path) -> Vec<u8> {
    common::stdout_of(
        common::sops_command(&common::vector(AGE_KEY))
            .current_dir(file.parent().unwrap())
            .args(args)
            .arg(file),
    )
}

fn unwrap_key(meta: &Metadata) -> DataKey {
    let MasterKeyEntry::Age(a) = meta.all_keys().next().unwrap() else {
        panic!("age entry expected")
    };
    common::age_unwrap(&common::vector(AGE_KEY), &a.enc)
}

/// Paths (AAD form) of the leaves that are `ENC[…]` in `node`.
fn encrypted_paths(node: &Node, path: &str, out: &mut Vec<String>) {
    match node {
        Node::Map(m) => {
            for e in &m.entries {
                match e {
                    MapEntry::Pair(p) if p.key == "sops" && path.is_empty() => {}
                    MapEntry::Pair(p) => {
                        encrypted_paths(&p.value, &format!("{path}{}:", p.key), out)
                    }
                    MapEntry::Comment(c) if looks_encrypted(&c.text) => {
                        out.push(format!("#{path}"))
                    }
                    MapEntry::Comment(_) => {}
                }
            }
        }
        Node::Seq(s) => {
            for (i, it) in s.items.iter().enumerate() {
                match it {
                    SeqItem::Node(n) => encrypted_paths(n, &format!("{path}[{i}]"), out),
                    SeqItem::Comment(c) if looks_encrypted(&c.text) => out.push(format!("#{path}")),
                    SeqItem::Comment(_) => {}
                }
            }
        }
        Node::Scalar(Scalar {
            value: Value::Str(s),
            ..
        }) if looks_encrypted(s) => out.push(path.to_owned()),
        Node::Scalar(_) => {}
    }
}

/// sops encrypts `plain` with `flags`; we decrypt it (MAC checked), re-encrypt the plaintext under
/// the same metadata and must encrypt exactly the same leaves; sops must decrypt ours.
fn compare_with_sops(plain: &str, file_name: &str, format: Format, flags: &[&str]) {
    let dir = tempdir();
    let path = dir.join(file_name);
    std::fs::write(&path, plain).unwrap();
    // The rules go into a .sops.yaml creation rule (sops 3.11 has no CLI flags for some of them).
    let mut config = format!("creation_rules:\n  - age: {AGE_RECIPIENT}\n");
    for kv in flags.chunks(2) {
        let value = kv.get(1).map_or("true".to_owned(), |v| format!("'{v}'"));
        config.push_str(&format!("    {}: {value}\n", kv[0]));
    }
    std::fs::write(dir.join(".sops.yaml"), config).unwrap();
    let theirs = sops(&["encrypt"], &path);
    let store = store_for(format);
    let mut tree = store.parse(&theirs).unwrap();
    let mut sops_paths = Vec::new();
    encrypted_paths(&tree.documents[0].root, "", &mut sops_paths);
    let meta = engine::metadata_of(&tree).unwrap().unwrap();
    let key = unwrap_key(&meta);
    let dec = engine::decrypt(&mut tree, &key, DecryptOptions::default())
        .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
    let plain_ours = store.emit(&tree).unwrap();
    let plain_theirs = sops(
        &["decrypt"],
        &path.with_file_name(file_name).tap_write(&theirs),
    );
    assert_eq!(
        String::from_utf8_lossy(&plain_ours),
        String::from_utf8_lossy(&plain_theirs),
        "{flags:?}"
    );

    let mut fresh = store.parse(plain.as_bytes()).unwrap();
    let mut meta = dec.metadata.clone();
    engine::encrypt(&mut fresh, &key, &mut meta, &EncryptOptions::default()).unwrap();
    let mut our_paths = Vec::new();
    encrypted_paths(&fresh.documents[0].root, "", &mut our_paths);
    assert_eq!(our_paths, sops_paths, "{flags:?}: leaves encrypted");
    let ours = store.emit(&fresh).unwrap();
    std::fs::write(&path, &ours).unwrap();
    assert_eq!(
        sops(&["decrypt"], &path),
        plain_theirs,
        "{flags:?}: sops reads ours"
    );
    std::fs::remove_dir_all(dir).ok();
}

trait TapWrite {
    fn tap_write(self, bytes: &[u8]) -> Self;
}
impl TapWrite for PathBuf {
    fn tap_write(self, bytes: &[u8]) -> Self {
        std::fs::write(&self, bytes).unwrap();
        self
    }
}

const JSON_DOC: &str = r#"{"name": "app", "password": "hunter2", "port": 5432, "ratio": 0.5, "on": true,
"db_unencrypted": {"user": "u", "pass": "p"}, "data": {"a": "1", "b": ["x", {"c_enc": "y", "d": 2}]},
"stringData": {"k": "v"}, "empty": "", "nothing": null, "list": [1, 2.5, "s"]}"#;

#[test]
fn key_rules_match_sops() {
    for flags in [
        &[][..],
        &["unencrypted_suffix", "_unencrypted"][..],
        &["encrypted_suffix", "_enc"][..],
        &["unencrypted_regex", "^(name|d)$"][..],
        &["encrypted_regex", "^(data|stringData)$"][..],
        &[
            "encrypted_regex",
            "^(data|stringData)$",
            "mac_only_encrypted",
        ][..],
        &["unencrypted_regex", "^name$", "mac_only_encrypted"][..],
    ] {
        compare_with_sops(JSON_DOC, "doc.json", Format::Json, flags);
    }
}

const ENV_DOC: &str = "#sops:enc\nA=1\nB=2\n# plain note\nC=3\n#sops:enc\n#second\nD=4\nE=\n";

#[test]
fn comment_rules_match_sops() {
    for flags in [
        &[][..],
        &["encrypted_comment_regex", "sops:enc"][..],
        &["unencrypted_comment_regex", "sops:enc"][..],
        &["unencrypted_comment_regex", "plain"][..],
    ] {
        compare_with_sops(ENV_DOC, "doc.env", Format::Dotenv, flags);
    }
}

#[test]
fn ini_sections_match_sops() {
    let ini = "top = 1\n\n[sec one]\n; a comment\nkey = value with spaces\nlong_key_name = x\n\n[s2]\nz = multi\n";
    compare_with_sops(ini, "doc.ini", Format::Ini, &[]);
    compare_with_sops(ini, "doc.ini", Format::Ini, &["encrypted_regex", "^s2$"]);
}

fn sample_tree() -> Tree {
    store_for(Format::Json).parse(JSON_DOC.as_bytes()).unwrap()
}

fn meta() -> Metadata {
    Metadata::default()
}

fn encrypted_sample() -> (Tree, DataKey) {
    let key = DataKey::generate();
    let mut tree = sample_tree();
    engine::encrypt(&mut tree, &key, &mut meta(), &EncryptOptions::default()).unwrap();
    (tree, key)
}

fn root_map(tree: &mut Tree) -> &mut Map {
    match &mut tree.documents[0].root {
        Node::Map(m) => m,
        _ => panic!(),
    }
}

fn password(tree: &mut Tree) -> &mut Scalar {
    match root_map(tree).get_mut("password") {
        Some(Node::Scalar(s)) => s,
        _ => panic!(),
    }
}

#[test]
fn round_trip_and_already_encrypted() {
    let (mut tree, key) = encrypted_sample();
    assert!(engine::is_encrypted(&tree));
    let again = engine::encrypt(
        &mut tree.clone(),
        &key,
        &mut meta(),
        &EncryptOptions::default(),
    );
    assert!(matches!(again, Err(Error::AlreadyEncrypted)));
    engine::decrypt(&mut tree, &key, DecryptOptions::default()).unwrap();
    let json = store_for(Format::Json);
    assert_eq!(
        json.emit(&tree).unwrap(),
        json.emit(&sample_tree()).unwrap()
    );
    assert!(matches!(
        engine::decrypt(&mut tree, &key, DecryptOptions::default()),
        Err(Error::NotEncrypted)
    ));
}

#[test]
fn tampering_is_detected() {
    let flip = |field: usize| {
        let (mut tree, key) = encrypted_sample();
        let s = password(&mut tree);
        let Value::Str(enc) = &s.value else { panic!() };
        let mut p = EncryptedValue::parse(enc, "password").unwrap();
        match field {
            0 => p.data[0] ^= 0x01,
            1 => p.iv[0] ^= 0x01,
            _ => p.tag[0] ^= 0x01,
        }
        s.set(Value::Str(p.render()));
        engine::decrypt(&mut tree, &key, DecryptOptions::default()).unwrap_err()
    };
    for field in 0..3 {
        let e = flip(field);
        assert!(
            matches!(&e, Error::DecryptFailed { path } if path == "password"),
            "{e}"
        );
        assert!(!e.to_string().contains("hunter2"));
    }

    // a value in a list is named with its index
    let (mut tree, key) = encrypted_sample();
    if let Some(Node::Map(data)) = root_map(&mut tree).get_mut("data")
        && let Some(Node::Seq(b)) = data.get_mut("b")
        && let Some(SeqItem::Node(Node::Map(m))) = b.items.get_mut(1)
        && let Some(Node::Scalar(s)) = m.get_mut("d")
    {
        s.set(Value::Str(
            "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:int]".into(),
        ));
    }
    let e = engine::decrypt(&mut tree, &key, DecryptOptions::default()).unwrap_err();
    assert!(e.to_string().contains("data.b[1].d"), "{e}");

    // renaming a key changes the AAD
    let (mut tree, key) = encrypted_sample();
    for e in root_map(&mut tree).entries.iter_mut() {
        if let MapEntry::Pair(p) = e
            && p.key == "password"
        {
            p.key = "passw0rd".into();
        }
    }
    assert!(matches!(
        engine::decrypt(&mut tree, &key, DecryptOptions::default()),
        Err(Error::DecryptFailed { .. })
    ));

    // changing a plain value breaks the MAC
    let (mut tree, key) = encrypted_sample();
    if let Some(Node::Map(db)) = root_map(&mut tree).get_mut("db_unencrypted") {
        db.insert(
            "user",
            Node::Scalar(Scalar::new(Value::Str("mallory".into()))),
        );
    }
    let mut t2 = tree.clone();
    assert!(matches!(
        engine::decrypt(&mut tree, &key, DecryptOptions::default()),
        Err(Error::MacMismatch)
    ));
    let d = engine::decrypt(
        &mut t2,
        &key,
        DecryptOptions {
            ignore_mac: true,
            ..DecryptOptions::default()
        },
    )
    .unwrap();
    assert_eq!(d.mac_matched, Some(false));

    // removing the MAC
    let (mut tree, key) = encrypted_sample();
    if let Some(Node::Map(sops)) = root_map(&mut tree).get_mut("sops") {
        sops.remove("mac");
    }
    assert!(matches!(
        engine::decrypt(&mut tree, &key, DecryptOptions::default()),
        Err(Error::MacNotFound)
    ));

    // wrong key
    let (mut tree, _) = encrypted_sample();
    assert!(matches!(
        engine::decrypt(&mut tree, &DataKey::generate(), DecryptOptions::default()),
        Err(Error::DecryptFailed { .. })
    ));
}

#[test]
fn unchanged_values_keep_their_ciphertext() {
    let (mut tree, key) = encrypted_sample();
    let before = tree.clone();
    let dec = engine::decrypt(
        &mut tree,
        &key,
        DecryptOptions {
            remember_ivs: true,
            ..DecryptOptions::default()
        },
    )
    .unwrap();
    password(&mut tree).set(Value::Str("changed".into()));
    let mut meta = dec.metadata.clone();
    let opts = EncryptOptions {
        previous: Some(&dec.previous),
        last_modified: None,
    };
    engine::encrypt(&mut tree, &key, &mut meta, &opts).unwrap();
    let (Node::Map(a), Node::Map(b)) = (&before.documents[0].root, &tree.documents[0].root) else {
        panic!()
    };
    for (k, v) in a.pairs() {
        if k == "sops" {
            continue;
        }
        if k == "password" {
            assert_ne!(Some(v), b.get(k));
        } else {
            assert_eq!(Some(v), b.get(k), "{k}");
        }
    }
}

/// `signet git merge-driver`: a value taken from a sibling version keeps that version's ciphertext
/// once its IVs are added to ours.
#[test]
fn extended_previous_ciphertexts_keep_a_siblings_values() {
    let (mut ours, key) = encrypted_sample();
    let mut theirs = ours.clone();
    // Theirs changes the password and is re-encrypted (new IV for it).
    let dec = engine::decrypt(&mut theirs, &key, remembering()).unwrap();
    password(&mut theirs).set(Value::Str("theirs".into()));
    let mut meta = dec.metadata.clone();
    let opts = EncryptOptions {
        previous: Some(&dec.previous),
        last_modified: None,
    };
    engine::encrypt(&mut theirs, &key, &mut meta, &opts).unwrap();
    let their_password = root_map(&mut theirs).get("password").cloned();

    // Ours takes their password: with ours' IVs only it gets a new ciphertext; with theirs' added,
    // exactly theirs.
    let mut dec_ours = engine::decrypt(&mut ours, &key, remembering()).unwrap();
    let dec_theirs = engine::decrypt(&mut theirs.clone(), &key, remembering()).unwrap();
    password(&mut ours).set(Value::Str("theirs".into()));
    let our_meta = dec_ours.metadata.clone();
    let reencrypt = |previous: &engine::PreviousCiphertexts| {
        let mut tree = ours.clone();
        let mut meta = our_meta.clone();
        let opts = EncryptOptions {
            previous: Some(previous),
            last_modified: None,
        };
        engine::encrypt(&mut tree, &key, &mut meta, &opts).unwrap();
        root_map(&mut tree).get("password").cloned()
    };
    assert_ne!(reencrypt(&dec_ours.previous), their_password);
    let before = dec_ours.previous.len();
    dec_ours.previous.extend(&dec_theirs.previous);
    assert!(dec_ours.previous.len() > before);
    assert_eq!(reencrypt(&dec_ours.previous), their_password);
}

#[test]
fn metadata_round_trips_through_every_form() {
    let (tree, _) = encrypted_sample();
    let meta = engine::metadata_of(&tree).unwrap().unwrap();
    assert_eq!(Metadata::from_node(&meta.to_node()).unwrap(), meta);
    let flat = signet_sops::metadata::flatten(&meta.to_node(), "");
    let back = signet_sops::metadata::unflatten(&flat).unwrap();
    assert_eq!(Metadata::from_node(&back).unwrap(), meta);
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        ".{0,20}".prop_map(Value::Str),
        any::<i64>().prop_map(|i| Value::Int(i.to_string())),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn arb_node() -> impl Strategy<Value = Node> {
    let leaf = arb_value().prop_map(|v| Node::Scalar(Scalar::new(v)));
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(("[a-z_]{1,8}", inner.clone()), 0..6).prop_map(|pairs| {
                let mut m = Map::default();
                for (k, v) in pairs {
                    m.insert(k, v);
                }
                Node::Map(m)
            }),
            prop::collection::vec(inner, 0..6).prop_map(|items| Node::Seq(Seq {
                items: items.into_iter().map(SeqItem::Node).collect(),
                origin: None
            })),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_trees_round_trip(pairs in prop::collection::vec(("[a-z]{1,6}", arb_node()), 1..6), regex in prop_oneof![Just(None), Just(Some("^[a-m]"))]) {
        let mut m = Map::default();
        for (k, v) in pairs {
            if k != "sops" { m.insert(k, v); }
        }
        let original = Tree { documents: vec![Document { root: Node::Map(m), origin: None }], source: None };
        let mut tree = original.clone();
        let key = DataKey::generate();
        let mut meta = Metadata::default();
        if let Some(r) = regex {
            meta.rule = EncryptionRule::EncryptedRegex(r.into());
            meta.mac_only_encrypted = true;
        }
        engine::encrypt(&mut tree, &key, &mut meta, &EncryptOptions::default()).unwrap();
        engine::decrypt(&mut tree, &key, DecryptOptions::default()).unwrap();
        fn values(n: &Node, out: &mut Vec<Value>) {
            match n {
                Node::Scalar(s) => out.push(s.value.clone()),
                Node::Map(m) => for (_, v) in m.pairs() { values(v, out) },
                Node::Seq(s) => for i in &s.items { if let SeqItem::Node(n) = i { values(n, out) } },
            }
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        values(&original.documents[0].root, &mut a);
        values(&tree.documents[0].root, &mut b);
        prop_assert_eq!(a, b);
    }
}

#[test]
fn pair_is_used() {
    // keeps the Pair import honest: a map built by hand encrypts too
    let mut m = Map::default();
    m.entries.push(MapEntry::Pair(Pair {
        key: "k".into(),
        value: Node::Scalar(Scalar::new(Value::Str("v".into()))),
        origin: None,
    }));
    let mut tree = Tree {
        documents: vec![Document {
            root: Node::Map(m),
            origin: None,
        }],
        source: None,
    };
    engine::encrypt(
        &mut tree,
        &DataKey::generate(),
        &mut Metadata::default(),
        &EncryptOptions::default(),
    )
    .unwrap();
    let Node::Map(m) = &tree.documents[0].root else {
        panic!()
    };
    assert!(
        matches!(m.get("k"), Some(Node::Scalar(Scalar { value: Value::Str(s), .. })) if looks_encrypted(s))
    );
}

#[test]
fn mac_comparison_needs_every_digit() {
    let mac = engine::mac_of_values([b"a".as_slice(), b"b"], false);
    assert!(engine::mac_matches(&mac, &mac.clone()));
    let mut last = mac.clone().into_bytes();
    *last.last_mut().unwrap() ^= 0x01;
    let mut first = mac.clone().into_bytes();
    first[0] ^= 0x01;
    for forged in [last, first] {
        assert!(!engine::mac_matches(
            &mac,
            &String::from_utf8(forged).unwrap()
        ));
    }
    assert!(!engine::mac_matches(&mac, &mac[..mac.len() - 1]));
    assert!(!engine::mac_matches(&mac, ""));
}

/// sops reads the YAML `version` into a Go string, which yaml.v3 fills with the text as written:
/// `version: 1.` is "1." to sops (a 1.x version, accepted unparsed), not the float 1.0 (whose
/// rendering "1" has no Major.Minor.Patch). Measured with sops 3.11: `sops -d` accepts `1.` and
/// `1.5e3`, refuses `3.10` and `3`.
#[test]
fn yaml_version_is_read_as_written() {
    let store = store_for(Format::Yaml);
    let file = |version: &str| {
        format!(
            "a: b\nsops:\n    lastmodified: \"2024-01-01T00:00:00Z\"\n    mac: x\n    version: {version}\n"
        )
    };
    for (version, expected) in [
        ("1.", "1."),
        ("1.5e3", "1.5e3"),
        ("'1.'", "1."),
        ("v3.7.0", "v3.7.0"),
    ] {
        let tree = store.parse(file(version).as_bytes()).unwrap();
        let meta = engine::metadata_of(&tree)
            .unwrap_or_else(|e| panic!("{version}: {e}"))
            .unwrap();
        assert_eq!(meta.version.as_deref(), Some(expected), "{version}");
    }
    for version in ["3.10", "3", "true", "2024-01-01"] {
        let tree = store.parse(file(version).as_bytes()).unwrap();
        assert!(
            matches!(
                engine::metadata_of(&tree),
                Err(Error::InvalidVersion { .. })
            ),
            "{version}"
        );
    }
}

#[test]
fn plain_leaves_names_values_left_plain_where_the_rule_encrypts() {
    let key = DataKey::generate();
    let yaml = store_for(Format::Yaml);
    let mut tree = yaml
        .parse(b"kind: Secret\ndata:\n  password: s3cret\n  empty: \"\"\nnote: public\n")
        .unwrap();
    let mut meta = Metadata {
        rule: EncryptionRule::EncryptedRegex("^data$".into()),
        ..meta()
    };
    engine::encrypt(&mut tree, &key, &mut meta, &EncryptOptions::default()).unwrap();
    assert_eq!(engine::plain_leaves(&tree, &meta.rule).unwrap(), vec![]);
    // Added by hand after encryption: plain, and the rule encrypts it.
    let mut text = String::from_utf8(yaml.emit(&tree).unwrap()).unwrap();
    text = text.replace("data:\n", "data:\n  added: plain-canary\n");
    let tree = yaml.parse(text.as_bytes()).unwrap();
    let plain = engine::plain_leaves(&tree, &meta.rule).unwrap();
    assert_eq!(plain.len(), 1, "{text}");
    assert_eq!(plain[0].path, "data.added");
    assert!(!plain[0].comment);
    let (start, end) = plain[0].span.expect("YAML keeps positions");
    assert_eq!(&text[start..end], "plain-canary");
    assert!(!format!("{plain:?}").contains("canary"));
    // Under a rule that encrypts everything, `note` counts too.
    let all = engine::plain_leaves(&tree, &EncryptionRule::default()).unwrap();
    let paths: Vec<&str> = all.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(paths, ["kind", "data.added", "note"]);
}

/// A YAML file with `sections` maps of 20 values and a list each: more leaves than the engine
/// decrypts on the calling thread, so the pipelined path (decrypt a chunk in parallel while the
/// one before is hashed) runs.
fn large_yaml(sections: usize) -> String {
    let mut out = String::new();
    for i in 0..sections {
        out.push_str(&format!("s{i}:\n  # note {i}\n"));
        for j in 0..20 {
            out.push_str(&format!("  k{j}: value {i} {j}\n"));
        }
        out.push_str(&format!(
            "  n: {i}\n  f: 1.5\n  b: true\n  l:\n    - a\n    - {i}\n"
        ));
    }
    out
}

#[test]
fn large_files_round_trip_and_name_the_value_that_fails() {
    let yaml = store_for(Format::Yaml);
    let plain = large_yaml(400);
    let key = DataKey::generate();
    let mut tree = yaml.parse(plain.as_bytes()).unwrap();
    engine::encrypt(&mut tree, &key, &mut meta(), &EncryptOptions::default()).unwrap();
    let encrypted = yaml.emit(&tree).unwrap();

    // Round trip: byte-identical, MAC checked, no IVs kept unless asked for.
    let mut back = yaml.parse(&encrypted).unwrap();
    let d = engine::decrypt(&mut back, &key, DecryptOptions::default()).unwrap();
    assert_eq!(d.mac_matched, Some(true));
    assert!(d.previous.is_empty());
    assert_eq!(String::from_utf8(yaml.emit(&back).unwrap()).unwrap(), plain);
    let mut back = yaml.parse(&encrypted).unwrap();
    let opts = DecryptOptions {
        remember_ivs: true,
        ..DecryptOptions::default()
    };
    let d = engine::decrypt(&mut back, &key, opts).unwrap();
    // 25 values and one comment per section.
    assert_eq!(d.previous.len(), 400 * 26);

    // A value deep in the file (a late chunk) that does not decrypt is named by its path.
    let text = String::from_utf8(encrypted).unwrap();
    let line = text.lines().position(|l| l.starts_with("s377:")).unwrap();
    let target = text.lines().nth(line + 3).unwrap();
    assert!(target.starts_with("  k1: ENC["), "{target}");
    let enc = target.trim_start_matches("  k1: ");
    let mut p = EncryptedValue::parse(enc, "").unwrap();
    p.data[0] ^= 1;
    let tampered = text.replacen(enc, &p.render(), 1);
    let mut tree = yaml.parse(tampered.as_bytes()).unwrap();
    let e = engine::decrypt(&mut tree, &key, DecryptOptions::default()).unwrap_err();
    assert!(
        matches!(&e, Error::DecryptFailed { path } if path == "s377.k1"),
        "{e}"
    );

    // A value that is not an ENC string, in a list, is named with its index.
    let item = text.lines().find(|l| l.starts_with("    - ENC[")).unwrap();
    let mut tree = yaml
        .parse(text.replacen(item, "    - 7", 1).as_bytes())
        .unwrap();
    let e = engine::decrypt(&mut tree, &key, DecryptOptions::default()).unwrap_err();
    assert!(
        matches!(&e, Error::MalformedEncValue { path, .. } if path == "s0.l[0]"),
        "{e}"
    );

    // A changed value anywhere fails the MAC.
    let mut tree = yaml.parse(text.as_bytes()).unwrap();
    if let Node::Map(m) = &mut tree.documents[0].root
        && let Some(Node::Map(s)) = m.get_mut("s399")
        && let Some(Node::Scalar(v)) = s.get_mut("n")
    {
        let Value::Str(enc) = &v.value else { panic!() };
        let p = EncryptedValue::parse(enc, "").unwrap();
        // Re-encrypt another number under the same path: decrypts fine, but the MAC differs.
        let c = signet_sops::cipher::ValueCipher::new(&key);
        v.set(Value::Str(c.seal(b"12345", "s399:n:", p.value_type)));
    } else {
        panic!("no s399.n");
    }
    assert!(matches!(
        engine::decrypt(&mut tree, &key, DecryptOptions::default()),
        Err(Error::MacMismatch)
    ));
}

/// Decrypt options that keep the values' IVs (for re-encryption).
fn remembering() -> DecryptOptions {
    DecryptOptions {
        remember_ivs: true,
        ..DecryptOptions::default()
    }
}

/// An encryption that fails leaves every value as it was, whether the values were sealed on one
/// thread or on the pool: a comment rule whose regex matches the encrypted comment, or a
/// `lastmodified` that is not a time.
#[test]
fn a_failed_encryption_changes_no_value() {
    let store = store_for(Format::Yaml);
    for entries in [3, 2_000] {
        let text: String = (0..entries)
            .map(|i| format!("# note {i}\nk{i}: secret {i}\n"))
            .collect();
        let original = store.parse(text.as_bytes()).unwrap();
        let refused_comment = Metadata {
            rule: EncryptionRule::UnencryptedCommentRegex("AES256_GCM".into()),
            ..Metadata::default()
        };
        let not_a_time = EncryptOptions {
            last_modified: Some("yesterday".into()),
            ..EncryptOptions::default()
        };
        for (mut meta, opts) in [
            (refused_comment, EncryptOptions::default()),
            (Metadata::default(), not_a_time),
        ] {
            let mut tree = original.clone();
            let e = engine::encrypt(&mut tree, &DataKey::generate(), &mut meta, &opts);
            assert!(e.is_err(), "{entries} entries: {meta:?}");
            assert!(
                tree == original,
                "{entries} entries: values changed by a failed encryption"
            );
        }
    }
}
