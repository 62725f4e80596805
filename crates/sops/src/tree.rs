//! The document model every store reads into and writes from: an ordered tree of maps, sequences,
//! typed scalars and comments, as sops sees a file.
//!
//! Stores that keep formatting (YAML) record where each scalar and comment came from in the source
//! ([`Origin`]); a value whose `origin` is still set and whose content was not replaced is written back
//! byte for byte. Code that changes a value replaces the whole [`Scalar`] (or calls
//! [`Scalar::set`]), which marks it changed.

/// A parsed file: one or more documents (only YAML has more than one) sharing one data key and one MAC.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tree {
    /// The documents, in file order.
    pub documents: Vec<Document>,
    /// Store-private layout of the source (for byte-faithful re-emission); `None` for a tree built in
    /// memory or converted from another format.
    pub source: Option<std::sync::Arc<SourceText>>,
}

impl Tree {
    /// Marks the source text as an encrypted file, whose bytes are public and need no wipe.
    pub(crate) fn mark_source_public(&mut self) {
        if let Some(source) = self.source.as_mut().and_then(std::sync::Arc::get_mut) {
            source.public = true;
        }
    }

    /// Drops the tree the quick way, for a process about to exit: every value and comment is wiped
    /// as on drop, but the nodes' memory is left to the exit instead of being freed one by one.
    pub fn discard(mut self) {
        drop(self.source.take());
        self.wipe_values();
        std::mem::forget(self);
    }

    /// Wipes every value and comment in place (what dropping them does).
    fn wipe_values(&mut self) {
        for document in &mut self.documents {
            wipe_node(&mut document.root);
        }
    }
}

fn wipe_node(node: &mut Node) {
    use zeroize::Zeroize;
    match node {
        Node::Scalar(s) => s.value.zeroize(),
        Node::Map(m) => {
            for entry in &mut m.entries {
                match entry {
                    MapEntry::Pair(p) => wipe_node(&mut p.value),
                    MapEntry::Comment(c) => c.text.zeroize(),
                }
            }
        }
        Node::Seq(s) => {
            for item in &mut s.items {
                match item {
                    SeqItem::Node(n) => wipe_node(n),
                    SeqItem::Comment(c) => c.text.zeroize(),
                }
            }
        }
    }
}

/// The original bytes a tree was parsed from (equal when the texts are).
#[derive(Debug, Clone, Default)]
pub struct SourceText {
    /// The input, exactly as read.
    pub text: String,
    /// The text is an encrypted file (what goes into Git), so it is not wiped on drop.
    pub(crate) public: bool,
}

/// One document: its root node (a map for every store but a bare YAML scalar/sequence document).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The root node.
    pub root: Node,
    /// Where the document sits in the source, for stores that keep formatting.
    pub origin: Option<Origin>,
}

/// A node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An ordered map (sops: a `TreeBranch`).
    Map(Map),
    /// A sequence.
    Seq(Seq),
    /// A leaf value.
    Scalar(Scalar),
}

/// An ordered map whose entries may be interleaved with comments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    /// Entries in document order.
    pub entries: Vec<MapEntry>,
    /// Where the map sits in the source.
    pub origin: Option<Origin>,
}

/// One entry of a [`Map`].
#[derive(Debug, Clone, PartialEq)]
pub enum MapEntry {
    /// `key: value`.
    Pair(Pair),
    /// A comment line standing among the entries (sops encrypts these with the map's path as AAD).
    Comment(Comment),
}

/// A key and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The key as text (sops keys are strings; YAML keys of other types are stringified).
    pub key: String,
    /// The value.
    pub value: Node,
    /// Where the whole entry (key, value and trailing layout) sits in the source.
    pub origin: Option<Origin>,
}

/// A sequence whose items may be interleaved with comments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Seq {
    /// Items in document order.
    pub items: Vec<SeqItem>,
    /// Where the sequence sits in the source.
    pub origin: Option<Origin>,
}

/// One item of a [`Seq`].
#[derive(Debug, Clone, PartialEq)]
pub enum SeqItem {
    /// A value.
    Node(Node),
    /// A comment line among the items.
    Comment(Comment),
}

/// A comment's text without the leading `#` (sops keeps the text after `#` verbatim, including a
/// leading space). `Debug` shows only the text's length: comments are encrypted like values.
#[derive(Clone, PartialEq)]
pub struct Comment {
    /// The text after `#`.
    pub text: String,
    /// Where the comment sits in the source.
    pub origin: Option<Origin>,
    /// `true` once `text` no longer matches the source.
    pub changed: bool,
    /// Written right of a scalar on its line (yaml.v3's line comment). sops keeps it before the
    /// entry in the tree, like a head comment; since 3.13 it writes it back on the value's line
    /// when rendering afresh.
    pub inline: bool,
}

/// A typed leaf value.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The value.
    pub value: Value,
    /// Where the scalar sits in the source and how it was written there.
    pub origin: Option<Origin>,
    /// `true` once `value` no longer matches the source.
    pub changed: bool,
}

/// The typed value of a leaf, with the types sops distinguishes (its `type:` field on ENC values).
///
/// `Debug` never shows the content (a decrypted tree holds plaintext): only the variant, the length,
/// and whether a string is an `ENC[…]` value.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// `null` / `~` / empty: never encrypted, left out of the MAC.
    Null,
    /// A string (`type:str`).
    Str(String),
    /// An integer, kept as its canonical decimal text so integers of any size survive (`type:int`).
    Int(String),
    /// A floating-point number (`type:float`).
    Float(f64),
    /// A boolean (`type:bool`, written `True`/`False` inside ENC values).
    Bool(bool),
    /// A timestamp in RFC 3339 form (`type:time`).
    Time(String),
    /// Raw bytes (`type:bytes`).
    Bytes(Vec<u8>),
}

/// Where a node sits in its source text, and how it was written there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Byte range in [`SourceText::text`].
    pub span: (usize, usize),
    /// The scalar style, for scalars; `Plain` otherwise.
    pub style: ScalarStyle,
    /// Column at which the node starts (used to indent re-rendered block scalars and new entries).
    pub column: usize,
}

/// How a YAML scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScalarStyle {
    /// Unquoted.
    #[default]
    Plain,
    /// `'…'`.
    SingleQuoted,
    /// `"…"`.
    DoubleQuoted,
    /// `|` block.
    Literal,
    /// `>` block.
    Folded,
}

impl Scalar {
    /// A scalar built in memory (no source position).
    pub fn new(value: Value) -> Self {
        Scalar {
            value,
            origin: None,
            changed: true,
        }
    }

    /// Replaces the value and marks the scalar changed, keeping its origin (so the store can keep the
    /// surrounding layout and the quoting style).
    pub fn set(&mut self, value: Value) {
        self.value = value;
        self.changed = true;
    }

    /// [`Scalar::set`] for a scalar whose current value is ciphertext (an `ENC[…]` string being
    /// decrypted): that is public, so it is freed without the wipe every `Value` gets on drop.
    pub fn replace_ciphertext(&mut self, value: Value) {
        if let Value::Str(ciphertext) = &mut self.value {
            drop(std::mem::take(ciphertext));
        }
        self.set(value);
    }
}

impl Comment {
    /// A comment built in memory.
    pub fn new(text: impl Into<String>) -> Self {
        Comment {
            text: text.into(),
            origin: None,
            changed: true,
            inline: false,
        }
    }

    /// Replaces the text and marks the comment changed.
    pub fn set(&mut self, text: impl Into<String>) {
        self.text = text.into();
        self.changed = true;
    }
}

impl Map {
    /// The value stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find_map(|e| match e {
            MapEntry::Pair(p) if p.key == key => Some(&p.value),
            _ => None,
        })
    }

    /// Mutable access to the value stored under `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries.iter_mut().find_map(|e| match e {
            MapEntry::Pair(p) if p.key == key => Some(&mut p.value),
            _ => None,
        })
    }

    /// Removes the entry under `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let i = self
            .entries
            .iter()
            .position(|e| matches!(e, MapEntry::Pair(p) if p.key == key))?;
        match self.entries.remove(i) {
            MapEntry::Pair(p) => Some(p.value),
            MapEntry::Comment(_) => unreachable!("position matched a pair"),
        }
    }

    /// Sets `key` to `value`, replacing an existing entry in place or appending a new one.
    pub fn insert(&mut self, key: impl Into<String>, value: Node) {
        let key = key.into();
        match self.get_mut(&key) {
            Some(slot) => *slot = value,
            None => self.entries.push(MapEntry::Pair(Pair {
                key,
                value,
                origin: None,
            })),
        }
    }

    /// Iterates over `(key, value)` pairs, skipping comments.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.entries.iter().filter_map(|e| match e {
            MapEntry::Pair(p) => Some((p.key.as_str(), &p.value)),
            MapEntry::Comment(_) => None,
        })
    }
}

// Plaintext is wiped when it is dropped: a decrypted tree's values and comments, and the source text
// (the plain input of `encrypt`), so freed heap pages do not keep secrets for a later allocation, a
// core dump or swap. Copies left behind by a `String` that grew are out of reach, as with `Zeroizing`.

impl zeroize::Zeroize for Value {
    fn zeroize(&mut self) {
        match self {
            Value::Null => {}
            Value::Str(s) | Value::Int(s) | Value::Time(s) => s.zeroize(),
            Value::Float(f) => f.zeroize(),
            Value::Bool(b) => b.zeroize(),
            Value::Bytes(b) => b.zeroize(),
        }
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(self);
    }
}

impl zeroize::ZeroizeOnDrop for Value {}

impl Drop for Comment {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.text);
    }
}

impl zeroize::ZeroizeOnDrop for Comment {}

impl PartialEq for SourceText {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SourceText {}

impl Drop for SourceText {
    fn drop(&mut self) {
        if !self.public {
            zeroize::Zeroize::zeroize(&mut self.text);
        }
    }
}

impl zeroize::ZeroizeOnDrop for SourceText {}

impl Value {
    /// Takes the value out, leaving `Null` behind (a `Value` cannot be destructured by move: it wipes
    /// itself on drop).
    pub fn take(&mut self) -> Value {
        std::mem::replace(self, Value::Null)
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Str(s) if s.starts_with("ENC[") => write!(f, "Str(<ENC, {} bytes>)", s.len()),
            Value::Str(s) => write!(f, "Str(<{} bytes>)", s.len()),
            Value::Int(s) => write!(f, "Int(<{} digits>)", s.len()),
            Value::Float(_) => f.write_str("Float(<redacted>)"),
            Value::Bool(_) => f.write_str("Bool(<redacted>)"),
            Value::Time(_) => f.write_str("Time(<redacted>)"),
            Value::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
        }
    }
}

impl std::fmt::Debug for Comment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Comment")
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .field("origin", &self.origin)
            .field("changed", &self.changed)
            .field("inline", &self.inline)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything that holds plaintext wipes it on drop (a compile-time check: freed memory cannot be
    /// observed from safe code, so the types are pinned instead).
    #[test]
    fn plaintext_holders_zeroize_on_drop() {
        fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroizes_on_drop::<Value>();
        zeroizes_on_drop::<Comment>();
        zeroizes_on_drop::<SourceText>();
        zeroizes_on_drop::<crate::DataKey>();
    }

    /// What `Drop` runs: every variant is wiped.
    #[test]
    fn zeroize_wipes_every_variant() {
        use zeroize::Zeroize;
        let mut values = [
            Value::Str("secret".into()),
            Value::Int("42".into()),
            Value::Time("2024-01-01T00:00:00Z".into()),
            Value::Bytes(b"secret".to_vec()),
            Value::Float(4.2),
            Value::Bool(true),
        ];
        for v in &mut values {
            v.zeroize();
        }
        assert_eq!(
            values,
            [
                Value::Str(String::new()),
                Value::Int(String::new()),
                Value::Time(String::new()),
                Value::Bytes(Vec::new()),
                Value::Float(0.0),
                Value::Bool(false),
            ]
        );
    }

    /// `discard` leaves the nodes' memory to the exit but wipes every value and comment first.
    #[test]
    fn discard_wipes_what_it_does_not_free() {
        let secret = |text: &str| Node::Scalar(Scalar::new(Value::Str(text.into())));
        let mut tree = Tree {
            documents: vec![Document {
                root: Node::Map(Map {
                    entries: vec![
                        MapEntry::Comment(Comment::new("canary-comment")),
                        MapEntry::Pair(Pair {
                            key: "k".into(),
                            value: Node::Seq(Seq {
                                items: vec![
                                    SeqItem::Node(secret("canary-in-list")),
                                    SeqItem::Comment(Comment::new("canary-list-comment")),
                                    SeqItem::Node(Node::Scalar(Scalar::new(Value::Bytes(
                                        b"canary-bytes".to_vec(),
                                    )))),
                                ],
                                origin: None,
                            }),
                            origin: None,
                        }),
                        MapEntry::Pair(Pair {
                            key: "n".into(),
                            value: Node::Scalar(Scalar::new(Value::Int("42".into()))),
                            origin: None,
                        }),
                    ],
                    origin: None,
                }),
                origin: None,
            }],
            source: None,
        };
        tree.wipe_values();
        let Node::Map(map) = &tree.documents[0].root else {
            panic!("a map")
        };
        let MapEntry::Comment(c) = &map.entries[0] else {
            panic!("a comment")
        };
        assert_eq!(c.text, "");
        let Some(Node::Seq(seq)) = map.get("k") else {
            panic!("a list")
        };
        let texts: Vec<String> = seq
            .items
            .iter()
            .map(|i| match i {
                SeqItem::Node(Node::Scalar(s)) => format!("{:?}", s.value),
                SeqItem::Comment(c) => c.text.clone(),
                SeqItem::Node(_) => unreachable!(),
            })
            .collect();
        assert_eq!(texts, ["Str(<0 bytes>)", "", "Bytes(<0 bytes>)"]);
        assert!(
            matches!(map.get("n"), Some(Node::Scalar(s)) if s.value == Value::Int(String::new()))
        );
    }

    #[test]
    fn debug_hides_plaintext() {
        let tree = Tree {
            documents: vec![Document {
                root: Node::Map(Map {
                    entries: vec![
                        MapEntry::Comment(Comment::new("canary-comment")),
                        MapEntry::Pair(Pair {
                            key: "k".into(),
                            value: Node::Seq(Seq {
                                items: vec![
                                    SeqItem::Node(Node::Scalar(Scalar::new(Value::Str(
                                        "canary-str".into(),
                                    )))),
                                    SeqItem::Node(Node::Scalar(Scalar::new(Value::Int(
                                        "424242".into(),
                                    )))),
                                    SeqItem::Node(Node::Scalar(Scalar::new(Value::Float(4.2424)))),
                                    SeqItem::Node(Node::Scalar(Scalar::new(Value::Bytes(
                                        b"canary-bytes".to_vec(),
                                    )))),
                                ],
                                origin: None,
                            }),
                            origin: None,
                        }),
                    ],
                    origin: None,
                }),
                origin: None,
            }],
            source: None,
        };
        let dbg = format!("{tree:?}{tree:#?}");
        for canary in ["canary", "4242"] {
            assert!(!dbg.contains(canary), "{dbg}");
        }
    }
}
