//! Shared helpers for the YAML store tests: simulated encryption and decryption at the store level
//! (every leaf replaced by an `ENC[…]`-shaped string, a fresh `sops` map appended to each document,
//! and back), and tree walks.

#![allow(dead_code)]

use signet_sops::tree::{Comment, Map, MapEntry, Node, Scalar, Seq, SeqItem, Tree, Value};

/// A leaf as it was before simulated encryption.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    /// A scalar value.
    Value(Value),
    /// A comment's text.
    Comment(String),
}

/// The sops type name of a value.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "str",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Bool(_) => "bool",
        Value::Time(_) => "time",
        Value::Bytes(_) => "bytes",
        Value::Null => "null",
    }
}

fn fake_enc(n: usize, t: &str) -> String {
    let data = "QUJD".repeat(1 + n % 5);
    let tag = n * 7;
    format!("ENC[AES256_GCM,data:{data},iv:{n:043}=,tag:{tag:022}==,type:{t}]")
}

fn visit_node(n: &mut Node, f: &mut dyn FnMut(&mut Scalar), g: &mut dyn FnMut(&mut Comment)) {
    match n {
        Node::Scalar(s) => f(s),
        Node::Map(m) => visit_map(m, f, g),
        Node::Seq(s) => visit_seq(s, f, g),
    }
}

fn visit_map(m: &mut Map, f: &mut dyn FnMut(&mut Scalar), g: &mut dyn FnMut(&mut Comment)) {
    for e in &mut m.entries {
        match e {
            MapEntry::Pair(p) => visit_node(&mut p.value, f, g),
            MapEntry::Comment(c) => g(c),
        }
    }
}

fn visit_seq(s: &mut Seq, f: &mut dyn FnMut(&mut Scalar), g: &mut dyn FnMut(&mut Comment)) {
    for i in &mut s.items {
        match i {
            SeqItem::Node(n) => visit_node(n, f, g),
            SeqItem::Comment(c) => g(c),
        }
    }
}

/// Visits every scalar and comment of every document, in document order.
pub fn visit(tree: &mut Tree, f: &mut dyn FnMut(&mut Scalar), g: &mut dyn FnMut(&mut Comment)) {
    for d in &mut tree.documents {
        visit_node(&mut d.root, f, g);
    }
}

/// The sops metadata map as sops 3.11 writes it for one age recipient.
pub fn sops_metadata() -> Node {
    let mut age_entry = Map::default();
    age_entry.insert(
        "recipient",
        Node::Scalar(Scalar::new(Value::Str(
            "age1e4y8feyq6wenjjjfsvc80ye2h778t8932278e62zdh7xtjpnwfjs974q2y".into(),
        ))),
    );
    age_entry.insert(
        "enc",
        Node::Scalar(Scalar::new(Value::Str(
            "-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBJaU5SSWxEd0d3dWYwSkZF\n-----END AGE ENCRYPTED FILE-----\n".into(),
        ))),
    );
    let mut sops = Map::default();
    sops.insert(
        "age",
        Node::Seq(Seq {
            items: vec![SeqItem::Node(Node::Map(age_entry))],
            origin: None,
        }),
    );
    sops.insert(
        "lastmodified",
        Node::Scalar(Scalar::new(Value::Str("2026-11-26T04:46:48Z".into()))),
    );
    sops.insert(
        "mac",
        Node::Scalar(Scalar::new(Value::Str(fake_enc(999, "str")))),
    );
    sops.insert(
        "unencrypted_suffix",
        Node::Scalar(Scalar::new(Value::Str("_unencrypted".into()))),
    );
    sops.insert(
        "version",
        Node::Scalar(Scalar::new(Value::Str("3.11.0".into()))),
    );
    Node::Map(sops)
}

/// Replaces every non-null, non-empty leaf and every comment by an `ENC[…]`-shaped string (as the
/// engine would) and appends a `sops` map to every document whose root is a map. Returns the
/// leaves in document order.
pub fn fake_encrypt(tree: &mut Tree) -> Vec<Leaf> {
    let mut leaves = Vec::new();
    let leaves_cell = std::cell::RefCell::new(&mut leaves);
    let counter = std::cell::Cell::new(0usize);
    visit(
        tree,
        &mut |s: &mut Scalar| {
            let skip = matches!(&s.value, Value::Null)
                || matches!(&s.value, Value::Str(t) if t.is_empty());
            leaves_cell.borrow_mut().push(Leaf::Value(s.value.clone()));
            if !skip {
                let i = counter.get();
                counter.set(i + 1);
                s.set(Value::Str(fake_enc(i, type_name(&s.value))));
            }
        },
        &mut |c: &mut Comment| {
            leaves_cell.borrow_mut().push(Leaf::Comment(c.text.clone()));
            let i = counter.get();
            counter.set(i + 1);
            c.set(fake_enc(i, "comment"));
        },
    );
    for d in &mut tree.documents {
        if let Node::Map(m) = &mut d.root {
            m.insert("sops", sops_metadata());
        }
    }
    leaves
}

/// Puts the recorded leaves back (as the engine's decryption would) and removes the `sops` maps.
pub fn fake_decrypt(tree: &mut Tree, leaves: &[Leaf]) {
    for d in &mut tree.documents {
        if let Node::Map(m) = &mut d.root {
            m.remove("sops");
        }
    }
    let i = std::cell::Cell::new(0usize);
    visit(
        tree,
        &mut |s: &mut Scalar| {
            let k = i.get();
            i.set(k + 1);
            match &leaves[k] {
                Leaf::Value(v) => {
                    if s.value != *v {
                        s.set(v.clone());
                    }
                }
                Leaf::Comment(_) => panic!("leaf {k}: expected a value, found a comment"),
            }
        },
        &mut |c: &mut Comment| {
            let k = i.get();
            i.set(k + 1);
            match &leaves[k] {
                Leaf::Comment(t) => c.set(t.clone()),
                Leaf::Value(_) => panic!("leaf {k}: expected a comment, found a value"),
            }
        },
    );
    assert_eq!(
        i.get(),
        leaves.len(),
        "leaf count changed between encryption and decryption"
    );
}

/// Every leaf, in order (for comparing trees without positions).
pub fn leaves(tree: &Tree) -> Vec<Leaf> {
    let mut t = tree.clone();
    let out = std::cell::RefCell::new(Vec::new());
    visit(
        &mut t,
        &mut |s: &mut Scalar| out.borrow_mut().push(Leaf::Value(s.value.clone())),
        &mut |c: &mut Comment| out.borrow_mut().push(Leaf::Comment(c.text.clone())),
    );
    out.into_inner()
}
