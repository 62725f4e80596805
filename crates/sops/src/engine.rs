//! The encrypt/decrypt engine: walks a [`Tree`] the way sops does, decides per leaf with the
//! file's [`crate::EncryptionRule`], computes the MAC, and moves the `sops` metadata in and out.
//!
//! Walk (sops' `walkBranch`/`walkSlice`): documents in order; in a map, entries in order, the path
//! growing by each key; in a sequence, items in order with the path unchanged; comments (map or
//! sequence entries) are leaves too, with the path of the map they stand in. Nulls are skipped.
//! The AAD of a leaf is its path keys joined with `:` plus a trailing `:` (`a:b:`; `:` at top
//! level, e.g. for a top-level comment).
//!
//! MAC (sops' `Tree.Encrypt`/`Tree.Decrypt`): SHA-512 over the plaintext bytes (see
//! [`crate::cipher::plaintext_of`]) of every non-null, non-comment leaf in walk order, across all
//! documents; with `mac_only_encrypted` the hash is first fed SHA-256("sops") and only encrypted
//! leaves count. Written as 128 uppercase hex characters, encrypted as a `str` with AAD =
//! `lastmodified` (RFC 3339, as Go re-formats it).
//!
//! Large trees are encrypted/decrypted in parallel with rayon; everything per value is
//! O(value length + path length).

use std::collections::HashMap;

use rayon::prelude::*;
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::cipher::{self, EncryptedValue, IV_LEN, ValueCipher, ValueType};
use crate::metadata::{Metadata, SOPS_KEY};
use crate::rules::RuleMatcher;
use crate::tree::{
    Comment, Document, Map, MapEntry, Node, Pair, Scalar, Seq, SeqItem, Tree, Value,
};
use crate::{DataKey, Error};

/// Below this many leaves the work stays on the calling thread.
const PARALLEL_THRESHOLD: usize = 512;

/// Options for [`encrypt`].
#[derive(Debug, Clone, Default)]
pub struct EncryptOptions<'a> {
    /// IVs of the values of the previous version of the file (from [`decrypt`]): a value whose path,
    /// type and plaintext are unchanged is encrypted with its old IV, so its ciphertext is
    /// byte-identical and diffs show only what changed.
    pub previous: Option<&'a PreviousCiphertexts>,
    /// `lastmodified` to write; `None` means now (UTC, RFC 3339 without fraction).
    pub last_modified: Option<String>,
}

/// Options for [`decrypt`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DecryptOptions {
    /// Do not fail on a missing or mismatching MAC (`--ignore-mac`).
    pub ignore_mac: bool,
    /// Fill [`Decrypted::previous`] (and [`crate::Opened::previous`]) with the IVs of the values,
    /// for re-encrypting an edited tree with [`EncryptOptions::previous`]. Off, it stays empty:
    /// remembering costs a SHA-256 over every plaintext and a map entry per value, which a plain
    /// decrypt does not need.
    pub remember_ivs: bool,
}

/// IVs of decrypted values, keyed by (path AAD, type, plaintext), for IV reuse on re-encryption.
/// Keys are SHA-256 digests, so no plaintext is kept.
#[derive(Default, Clone)]
pub struct PreviousCiphertexts {
    ivs: HashMap<[u8; 32], [u8; IV_LEN]>,
}

impl std::fmt::Debug for PreviousCiphertexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviousCiphertexts")
            .field("len", &self.ivs.len())
            .finish()
    }
}

impl PreviousCiphertexts {
    fn digest(aad: &str, ty: ValueType, plaintext: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update((aad.len() as u64).to_be_bytes());
        h.update(aad.as_bytes());
        h.update(ty.as_str().as_bytes());
        h.update([0]);
        h.update(plaintext);
        h.finalize().into()
    }

    fn remember(&mut self, aad: &str, ty: ValueType, plaintext: &[u8], iv: &[u8]) {
        if let Ok(iv) = <[u8; IV_LEN]>::try_from(iv) {
            self.ivs.insert(Self::digest(aad, ty, plaintext), iv);
        }
    }

    fn lookup(&self, aad: &str, ty: ValueType, plaintext: &[u8]) -> Option<&[u8; IV_LEN]> {
        self.ivs.get(&Self::digest(aad, ty, plaintext))
    }

    /// Adds the IVs remembered in `other` (a sibling version of the same file, encrypted with the
    /// same data key), so values taken over from it keep its ciphertext too. Each IV stays bound to
    /// the (path, type, plaintext) it was used for, so no IV is ever used for a second plaintext.
    pub fn extend(&mut self, other: &PreviousCiphertexts) {
        for (digest, iv) in &other.ivs {
            self.ivs.entry(*digest).or_insert(*iv);
        }
    }

    /// Number of remembered values.
    pub fn len(&self) -> usize {
        self.ivs.len()
    }

    /// `true` when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.ivs.is_empty()
    }
}

/// A leaf found by the walk.
enum LeafRef<'a> {
    Value(&'a mut Scalar),
    Comment(&'a mut Comment),
}

struct Leaf<'a> {
    target: LeafRef<'a>,
    /// Where the path AAD (`a:b:`) sits in [`Leaves::aads`]: one buffer for all, not a `String`
    /// per leaf (50,000 allocations on a large file).
    aad: (usize, usize),
    encrypted: bool,
}

/// The leaves of a tree in walk order, with their path AADs.
struct Leaves<'a> {
    items: Vec<Leaf<'a>>,
    /// Every leaf's path AAD, back to back.
    aads: String,
    /// Path for messages per leaf, with list indices: `a.items[2].b`; only filled by a walk that
    /// asks for it ([`leaf_display_path`]): messages are rare, and the walk is per value.
    displays: Vec<String>,
}

/// The AAD text of `leaf` in `aads` (a [`Leaves::aads`]).
fn aad_of<'s>(aads: &'s str, leaf: &Leaf<'_>) -> &'s str {
    &aads[leaf.aad.0..leaf.aad.1]
}

/// Key path for messages: `a.items[2].b` (`<top level>` for the root).
fn display_path(display: &str) -> String {
    if display.is_empty() {
        "<top level>".to_owned()
    } else {
        display.to_owned()
    }
}

/// The message path of the leaf at `ordinal` in walk order (an error found without it names it).
fn leaf_display_path(tree: &mut Tree, rule: &RuleMatcher, ordinal: usize) -> String {
    let leaves = walk_leaves(tree, rule, true);
    leaves
        .displays
        .get(ordinal)
        .map_or_else(String::new, |d| display_path(d))
}

/// `e` naming the value at `path` (errors made while the path was not at hand carry none).
fn at_path(e: Error, path: String) -> Error {
    match e {
        Error::MalformedEncValue { message, .. } => Error::MalformedEncValue { path, message },
        Error::DecryptFailed { .. } => Error::DecryptFailed { path },
        Error::BadPlaintextType { value_type, .. } => Error::BadPlaintextType { path, value_type },
        other => other,
    }
}

struct Walker<'r> {
    rule: &'r RuleMatcher,
    /// The keys of the current path, each followed by `:` (the AAD of a leaf here, unless empty).
    path: String,
    /// Whether to fill [`Leaves::displays`].
    want_display: bool,
    display: String,
    keys_matching: usize,
    /// Per map/sequence level: how many comments of the current comment run match.
    comment_levels: Vec<usize>,
    comments_matching: usize,
}

impl<'r> Walker<'r> {
    fn new(rule: &'r RuleMatcher, want_display: bool) -> Self {
        Walker {
            rule,
            path: String::new(),
            want_display,
            display: String::new(),
            keys_matching: 0,
            comment_levels: Vec::new(),
            comments_matching: 0,
        }
    }

    /// Adds a leaf at the current path.
    fn push<'a>(&self, out: &mut Leaves<'a>, target: LeafRef<'a>, encrypted: bool) {
        let start = out.aads.len();
        // A leaf at the top level has the AAD `:`.
        out.aads.push_str(if self.path.is_empty() {
            ":"
        } else {
            &self.path
        });
        out.items.push(Leaf {
            target,
            aad: (start, out.aads.len()),
            encrypted,
        });
        if self.want_display {
            out.displays.push(self.display.clone());
        }
    }

    fn comment<'a>(&mut self, c: &'a mut Comment, out: &mut Leaves<'a>) {
        let self_matches = self.rule.uses_comments() && self.rule.comment_matches(&c.text);
        let encrypted =
            self.rule
                .should_encrypt(self.keys_matching, self.comments_matching, self_matches);
        if self_matches {
            *self.comment_levels.last_mut().expect("inside a level") += 1;
            self.comments_matching += 1;
        }
        self.push(out, LeafRef::Comment(c), encrypted);
    }

    fn end_comment_run(&mut self) {
        let top = self.comment_levels.last_mut().expect("inside a level");
        self.comments_matching -= *top;
        *top = 0;
    }

    fn node<'a>(&mut self, node: &'a mut Node, out: &mut Leaves<'a>) {
        match node {
            Node::Scalar(s) => {
                if s.value != Value::Null {
                    let encrypted =
                        self.rule
                            .should_encrypt(self.keys_matching, self.comments_matching, false);
                    self.push(out, LeafRef::Value(s), encrypted);
                }
            }
            Node::Map(m) => self.map(m, out, false),
            Node::Seq(s) => self.seq(s, out),
        }
    }

    fn map<'a>(&mut self, map: &'a mut Map, out: &mut Leaves<'a>, skip_sops: bool) {
        self.comment_levels.push(0);
        for entry in map.entries.iter_mut() {
            match entry {
                MapEntry::Comment(c) => self.comment(c, out),
                MapEntry::Pair(p) => {
                    if skip_sops && p.key == SOPS_KEY {
                        continue;
                    }
                    let matches = self.rule.uses_keys() && self.rule.key_matches(&p.key);
                    self.keys_matching += matches as usize;
                    let path_mark = self.path.len();
                    self.path.push_str(&p.key);
                    self.path.push(':');
                    let mark = self.display.len();
                    if self.want_display {
                        if mark > 0 {
                            self.display.push('.');
                        }
                        self.display.push_str(&p.key);
                    }
                    self.node(&mut p.value, out);
                    self.display.truncate(mark);
                    self.path.truncate(path_mark);
                    self.keys_matching -= matches as usize;
                    self.end_comment_run();
                }
            }
        }
        let top = self.comment_levels.pop().expect("pushed above");
        self.comments_matching -= top;
    }

    fn seq<'a>(&mut self, seq: &'a mut Seq, out: &mut Leaves<'a>) {
        self.comment_levels.push(0);
        let mut index = 0usize;
        for item in seq.items.iter_mut() {
            match item {
                SeqItem::Comment(c) => self.comment(c, out),
                SeqItem::Node(n) => {
                    let mark = self.display.len();
                    if self.want_display {
                        use std::fmt::Write as _;
                        let _ = write!(self.display, "[{index}]");
                    }
                    self.node(n, out);
                    self.display.truncate(mark);
                    index += 1;
                    self.end_comment_run();
                }
            }
        }
        let top = self.comment_levels.pop().expect("pushed above");
        self.comments_matching -= top;
    }
}

/// Every leaf of every document in walk order (the `sops` key of a document root is skipped).
fn collect_leaves<'a>(tree: &'a mut Tree, rule: &RuleMatcher) -> Leaves<'a> {
    walk_leaves(tree, rule, false)
}

/// [`collect_leaves`], with [`Leaves::displays`] filled when `want_display`.
fn walk_leaves<'a>(tree: &'a mut Tree, rule: &RuleMatcher, want_display: bool) -> Leaves<'a> {
    let mut out = Leaves {
        items: Vec::new(),
        aads: String::new(),
        displays: Vec::new(),
    };
    for doc in tree.documents.iter_mut() {
        let mut w = Walker::new(rule, want_display);
        match &mut doc.root {
            Node::Map(m) => w.map(m, &mut out, true),
            other => {
                w.comment_levels.push(0);
                w.node(other, &mut out);
            }
        }
    }
    out
}

fn root_map(doc: &Document) -> Option<&Map> {
    match &doc.root {
        Node::Map(m) => Some(m),
        _ => None,
    }
}

/// Reads the metadata of an encrypted tree without a key (from the `sops` key of the first
/// document that has one). `Ok(None)`: the tree is not encrypted.
pub fn metadata_of(tree: &Tree) -> Result<Option<Metadata>, Error> {
    for doc in &tree.documents {
        if let Some(node) = root_map(doc).and_then(|m| m.get(SOPS_KEY)) {
            if let Some(raw) = yaml_version_text(tree, node) {
                let mut node = node.clone();
                if let Node::Map(m) = &mut node
                    && let Some(Node::Scalar(v)) = m.get_mut("version")
                {
                    v.value = Value::Str(raw);
                }
                return Metadata::from_node(&node).map(Some);
            }
            return Metadata::from_node(node).map(Some);
        }
    }
    Ok(None)
}

/// The source text of a YAML `version` that YAML types as a number, bool or time (`version: 1.`
/// is the float 1.0): sops reads the field into a Go string, which yaml.v3 fills with the text as
/// written, and accepts any version starting `1.` unparsed.
fn yaml_version_text(tree: &Tree, sops: &Node) -> Option<String> {
    let source = tree.source.as_ref()?;
    let Node::Map(m) = sops else { return None };
    let Some(Node::Scalar(v)) = m.get("version") else {
        return None;
    };
    if matches!(v.value, Value::Str(_) | Value::Null | Value::Bytes(_)) {
        return None;
    }
    let o = v.origin?;
    if o.style != crate::tree::ScalarStyle::Plain {
        return None;
    }
    let text = source.text.get(o.span.0..o.span.1)?;
    // An alias's span is its `*name` token.
    (!text.starts_with('*')).then(|| text.to_owned())
}

/// What `sops filestatus` calls encrypted: a `sops` key whose `version` and `mac` are set (neither
/// is parsed, so a file whose metadata `decrypt` refuses may still count).
pub fn has_complete_metadata(tree: &Tree) -> bool {
    documents_have_complete_metadata(&tree.documents)
}

/// [`has_complete_metadata`] of documents not (yet) in a tree.
pub(crate) fn documents_have_complete_metadata(documents: &[Document]) -> bool {
    let set = |m: &Map, key: &str| match m.get(key) {
        Some(Node::Scalar(s)) => {
            !matches!(&s.value, Value::Null) && !matches!(&s.value, Value::Str(t) if t.is_empty())
        }
        Some(_) => true,
        None => false,
    };
    documents
        .iter()
        .any(|d| match root_map(d).and_then(|m| m.get(SOPS_KEY)) {
            Some(Node::Map(meta)) => set(meta, "version") && set(meta, "mac"),
            _ => false,
        })
}

/// `true` if any document has a top-level `sops` key.
pub fn is_encrypted(tree: &Tree) -> bool {
    tree.documents
        .iter()
        .any(|d| root_map(d).is_some_and(|m| m.get(SOPS_KEY).is_some()))
}

/// A leaf of an encrypted file that its rule encrypts but that holds no `ENC[…]` value (typically a
/// value added in plain text after the file was encrypted). Carries where it is, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainLeaf {
    /// Key path for messages: `a.items[2].b`.
    pub path: String,
    /// Byte range in the source text, for stores that keep positions (YAML).
    pub span: Option<(usize, usize)>,
    /// The leaf is a comment (under a comment rule) rather than a value.
    pub comment: bool,
}

/// Every leaf of `tree` that `rule` encrypts but that is not an `ENC[…]` value, in walk order. Needs
/// no key: this is the structural half of validating a sops file. Empty strings are left out, as
/// [`encrypt`] leaves them plain.
pub fn plain_leaves(
    tree: &Tree,
    rule: &crate::rules::EncryptionRule,
) -> Result<Vec<PlainLeaf>, Error> {
    let rule = rule.compile()?;
    let is_enc = |s: &str| s.starts_with("ENC[") && s.ends_with(']');
    let mut copy = tree.clone();
    let leaves = walk_leaves(&mut copy, &rule, true);
    let mut out = Vec::new();
    for (leaf, display) in leaves.items.iter().zip(&leaves.displays) {
        if !leaf.encrypted {
            continue;
        }
        let (plain, span, comment) = match &leaf.target {
            LeafRef::Value(s) => {
                let plain = match &s.value {
                    Value::Null => false,
                    Value::Str(v) => !v.is_empty() && !is_enc(v),
                    Value::Bytes(b) => !b.is_empty(),
                    _ => true,
                };
                (plain, s.origin.map(|o| o.span), false)
            }
            LeafRef::Comment(c) => (
                !c.text.is_empty() && !is_enc(&c.text),
                c.origin.map(|o| o.span),
                true,
            ),
        };
        if plain {
            out.push(PlainLeaf {
                path: display_path(display),
                span,
                comment,
            });
        }
    }
    Ok(out)
}

/// Go's `time.Time.Format(time.RFC3339)` of a parsed RFC 3339 string (fraction dropped, `Z` for a
/// zero offset): the AAD of the MAC.
pub fn mac_aad(last_modified: &str) -> Result<String, Error> {
    let t = chrono::DateTime::parse_from_rfc3339(last_modified).map_err(|_| {
        Error::InvalidMetadata {
            field: "lastmodified".into(),
            message: "not RFC 3339".into(),
        }
    })?;
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let offset = t.offset().local_minus_utc();
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60));
    }
    Ok(out)
}

/// Now, UTC, RFC 3339 without fraction (what sops writes as `lastmodified`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The MAC recorded in `meta` (uppercase hex), decrypted with the data key; `None` when the file
/// has no MAC or it decrypts to something other than a string.
pub fn stored_mac(meta: &Metadata, key: &DataKey) -> Result<Option<Zeroizing<String>>, Error> {
    let Some(stored) = &meta.mac else {
        return Ok(None);
    };
    let aad = mac_aad(&meta.last_modified)?;
    let (mut value, _) = ValueCipher::new(key).decrypt_value(stored, &aad, "sops.mac")?;
    match &mut value {
        Value::Str(s) => Ok(Some(Zeroizing::new(std::mem::take(s)))),
        _ => Ok(None),
    }
}

/// Whether a stored MAC equals a computed one, compared in constant time (an attacker who can time
/// decryptions must learn nothing about how much of a forged MAC was right). The length is not
/// secret: every sops MAC is 128 hex digits.
pub fn mac_matches(stored: &str, computed: &str) -> bool {
    use subtle::ConstantTimeEq;
    stored.as_bytes().ct_eq(computed.as_bytes()).into()
}

/// The MAC (uppercase hex) of these plaintext values taken in this order, as sops computes it over
/// a tree's leaves. For callers that must check a MAC over a re-ordered tree (the Kubernetes API
/// server returns map keys sorted).
pub fn mac_of_values<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
    mac_only_encrypted: bool,
) -> String {
    let mut hasher = new_mac_hasher(mac_only_encrypted);
    for value in values {
        hasher.update(value);
    }
    hex_upper(&hasher.finalize())
}

pub(crate) fn new_mac_hasher(mac_only_encrypted: bool) -> Sha512 {
    let mut h = Sha512::new();
    if mac_only_encrypted {
        h.update(Sha256::digest(b"sops"));
    }
    h
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Encrypts a plain tree in place: every leaf the rule selects becomes `ENC[…]` (comments too,
/// unless the rule keeps them plain), the MAC is computed and stored, `lastmodified` set, and the
/// metadata is inserted as the last key of every document.
///
/// `meta` supplies the key groups, rule, `mac_only_encrypted` and version; `mac` and
/// `last_modified` are overwritten. Fails with [`Error::AlreadyEncrypted`] if a document has a
/// `sops` key; on any failure the tree's values are left as they were.
pub fn encrypt(
    tree: &mut Tree,
    key: &DataKey,
    meta: &mut Metadata,
    opts: &EncryptOptions<'_>,
) -> Result<(), Error> {
    if is_encrypted(tree) {
        return Err(Error::AlreadyEncrypted);
    }
    if let Some(i) = tree
        .documents
        .iter()
        .position(|d| !matches!(d.root, Node::Map(_)))
    {
        return Err(Error::RootNotAMap { document: i + 1 });
    }
    settle_rule(meta);
    let rule = meta.rule.compile()?;
    let cipher = ValueCipher::new(key);
    let mac_only = meta.mac_only_encrypted;
    let Leaves {
        items: mut leaves,
        aads,
        ..
    } = collect_leaves(tree, &rule);
    // The MAC over the plaintext, in order.
    let mac_over = |leaves: &[Leaf<'_>]| {
        let mut hasher = new_mac_hasher(mac_only);
        for leaf in leaves {
            if let LeafRef::Value(s) = &leaf.target
                && (!mac_only || leaf.encrypted)
            {
                cipher::with_plaintext(&s.value, |bytes, _| hasher.update(bytes));
            }
        }
        hasher.finalize()
    };
    let previous = opts.previous;
    // The ciphertext of one leaf (`None`: it stays as it is).
    let seal_one = |leaf: &Leaf<'_>| -> Result<Option<String>, Error> {
        if !leaf.encrypted {
            return Ok(None);
        }
        let seal = |bytes: &[u8], ty: ValueType| match previous
            .and_then(|p| p.lookup(aad_of(&aads, leaf), ty, bytes))
        {
            Some(iv) => cipher.seal_with_iv(bytes, aad_of(&aads, leaf), ty, iv),
            None => cipher.seal(bytes, aad_of(&aads, leaf), ty),
        };
        match &leaf.target {
            LeafRef::Value(s) => Ok(cipher::with_plaintext(&s.value, |bytes, ty| {
                (!(bytes.is_empty() && matches!(ty, ValueType::Str | ValueType::Bytes)))
                    .then(|| seal(bytes, ty))
            })
            .flatten()),
            LeafRef::Comment(c) if c.text.is_empty() => Ok(None),
            LeafRef::Comment(c) => {
                let enc = seal(c.text.as_bytes(), ValueType::Comment);
                if rule.is_unencrypted_comment_rule() && rule.comment_matches(&enc) {
                    return Err(Error::InvalidRegex {
                        rule: "unencrypted_comment_regex",
                        message: "the regex matches an encrypted comment; make sure it cannot"
                            .into(),
                    });
                }
                Ok(Some(enc))
            }
        }
    };
    // Both only read the leaves: on a large tree, one thread hashes while the others encrypt.
    let (digest, sealed): (_, Vec<Result<Option<String>, Error>>) =
        if leaves.len() >= PARALLEL_THRESHOLD {
            rayon::join(
                || mac_over(&leaves),
                || leaves.par_iter().map(seal_one).collect(),
            )
        } else {
            (mac_over(&leaves), leaves.iter().map(seal_one).collect())
        };
    // The first failure in walk order, before anything is written back.
    let sealed: Vec<Option<String>> = sealed.into_iter().collect::<Result<_, _>>()?;
    let last_modified = opts.last_modified.clone().unwrap_or_else(now_rfc3339);
    let aad = mac_aad(&last_modified)?;
    // Writing back drops (and so wipes) each plaintext: on the thread pool for a large tree.
    let write_back = |(leaf, enc): (&mut Leaf<'_>, Option<String>)| {
        if let Some(enc) = enc {
            match &mut leaf.target {
                LeafRef::Value(s) => s.set(Value::Str(enc)),
                LeafRef::Comment(c) => c.set(enc),
            }
        }
    };
    if leaves.len() >= PARALLEL_THRESHOLD {
        leaves.par_iter_mut().zip(sealed).for_each(write_back);
    } else {
        leaves.iter_mut().zip(sealed).for_each(write_back);
    }
    record_mac(meta, &cipher, &digest, last_modified, &aad);
    attach_metadata(tree, meta);
    Ok(())
}

/// The rule a new file is encrypted under: an empty pattern cannot be written (sops omits empty
/// rule fields and then reads the default `unencrypted_suffix`), so the default rule, as sops ends
/// up doing.
pub(crate) fn settle_rule(meta: &mut Metadata) {
    if meta.rule.key_and_value().1.is_empty() {
        meta.rule = crate::rules::EncryptionRule::default();
    }
}

/// Records a finished encryption in `meta`: the MAC over the plaintext (`digest`), sealed under
/// `aad` (the [`mac_aad`] of `last_modified`), `lastmodified`, and the format version if unset.
pub(crate) fn record_mac(
    meta: &mut Metadata,
    cipher: &ValueCipher,
    digest: &[u8],
    last_modified: String,
    aad: &str,
) {
    let mac_hex = hex_upper(digest);
    meta.mac = Some(cipher.seal(mac_hex.as_bytes(), aad, ValueType::Str));
    meta.last_modified = last_modified;
    if meta.version.is_none() {
        meta.version = Some(crate::metadata::SOPS_FORMAT_VERSION.to_owned());
    }
}

/// Inserts (or replaces) the `sops` key as the last entry of every document's root map.
pub fn attach_metadata(tree: &mut Tree, meta: &Metadata) {
    let node = meta.to_node();
    for doc in tree.documents.iter_mut() {
        if let Node::Map(m) = &mut doc.root {
            m.remove(SOPS_KEY);
            m.entries.push(MapEntry::Pair(Pair {
                key: SOPS_KEY.to_owned(),
                value: node.clone(),
                origin: None,
            }));
        }
    }
}

/// Removes the `sops` key from every document, returning the metadata read from the first.
pub fn detach_metadata(tree: &mut Tree) -> Result<Metadata, Error> {
    let meta = metadata_of(tree)?.ok_or(Error::NotEncrypted)?;
    strip_metadata(tree);
    Ok(meta)
}

/// Removes the `sops` key from every document (its metadata already read).
pub(crate) fn strip_metadata(tree: &mut Tree) {
    for doc in tree.documents.iter_mut() {
        if let Node::Map(m) = &mut doc.root {
            m.remove(SOPS_KEY);
        }
    }
}

/// The outcome of [`decrypt`].
#[derive(Debug)]
pub struct Decrypted {
    /// The file's metadata (the `sops` key is gone from the tree).
    pub metadata: Metadata,
    /// IVs for [`EncryptOptions::previous`] (empty unless [`DecryptOptions::remember_ivs`]).
    pub previous: PreviousCiphertexts,
    /// `Some(true)`/`Some(false)`: the MAC was checked and matched / did not match (only possible
    /// with `ignore_mac`); `None`: there was no MAC.
    pub mac_matched: Option<bool>,
}

/// Decrypts an encrypted tree in place: verifies the MAC (unless `ignore_mac`), replaces every
/// encrypted value with its typed plaintext and every encrypted comment with its text, and removes
/// the `sops` key. On any error the tree may be partly decrypted; callers discard it.
///
/// To open a file, use [`crate::Decryptor`], which reads the metadata once and unwraps the data
/// key; this is the step after, for a tree whose key is already at hand.
pub fn decrypt(tree: &mut Tree, key: &DataKey, opts: DecryptOptions) -> Result<Decrypted, Error> {
    let metadata = detach_metadata(tree)?;
    let (previous, mac_matched) = decrypt_detached(tree, key, &metadata, opts)?;
    Ok(Decrypted {
        metadata,
        previous,
        mac_matched,
    })
}

/// [`decrypt`] of a tree whose metadata was already read and removed: the IVs and whether the MAC
/// matched.
pub(crate) fn decrypt_detached(
    tree: &mut Tree,
    key: &DataKey,
    metadata: &Metadata,
    opts: DecryptOptions,
) -> Result<(PreviousCiphertexts, Option<bool>), Error> {
    let (previous, mac) = decrypt_values(tree, key, metadata, opts.remember_ivs)?;
    let mac_matched = match &metadata.mac {
        None => {
            if !opts.ignore_mac {
                return Err(Error::MacNotFound);
            }
            None
        }
        Some(_) => {
            let stored_plain = match stored_mac(metadata, key) {
                Ok(plain) => plain,
                Err(e) if !opts.ignore_mac => return Err(e),
                Err(_) => None,
            };
            let ok = stored_plain
                .as_deref()
                .is_some_and(|stored| mac_matches(stored, &mac));
            if !ok && !opts.ignore_mac {
                return Err(Error::MacMismatch);
            }
            Some(ok)
        }
    };
    Ok((previous, mac_matched))
}

/// Decrypts the values of a tree whose `sops` key was already removed; returns the IVs and the
/// computed MAC (uppercase hex).
fn decrypt_values(
    tree: &mut Tree,
    key: &DataKey,
    meta: &Metadata,
    remember_ivs: bool,
) -> Result<(PreviousCiphertexts, String), Error> {
    let rule = meta.rule.compile()?;
    let cipher = ValueCipher::new(key);
    let mac_only = meta.mac_only_encrypted;
    let Leaves {
        items: mut leaves,
        aads,
        ..
    } = collect_leaves(tree, &rule);
    let aads = aads.as_str();

    // Step 1 (parallel): decrypt one leaf; an encrypted leaf yields (value, type, iv) or stays.
    let open_one = |leaf: &mut Leaf<'_>| -> Outcome {
        if !leaf.encrypted {
            return Ok(None);
        }
        let aad = aad_of(aads, leaf);
        match &mut leaf.target {
            LeafRef::Comment(c) => {
                // sops keeps a comment that does not decrypt (files from older sops had plain
                // comments).
                if c.text.is_empty() {
                    return Ok(None);
                }
                match EncryptedValue::parse(&c.text, "")
                    .ok()
                    .and_then(|p| cipher.open(&p, aad, "").ok().map(|b| (p, b)))
                {
                    // Borrowed, not converted: a failed `String::from_utf8` would drop its
                    // copy of the plaintext unwiped.
                    Some((p, bytes)) => match std::str::from_utf8(&bytes) {
                        Ok(s) => Ok(Some((Value::Str(s.to_owned()), p.value_type, p.iv))),
                        Err(_) => Ok(None),
                    },
                    None => Ok(None),
                }
            }
            // Errors name no path yet (building it per value costs more than the decryption of
            // a short value): the fold fills it in for the one it reports.
            LeafRef::Value(s) => match &mut s.value {
                Value::Str(text) if text.is_empty() => Ok(None),
                Value::Str(text) => {
                    // Decrypted in the ciphertext's own buffer, which the plaintext keeps: no
                    // allocation per value (on a worker thread, where the memory the ciphertext
                    // frees would not be reused).
                    let (bytes, ty, iv) = cipher.open_string(std::mem::take(text), aad, "")?;
                    let v = cipher::typed_value_owned(bytes, ty, "")?;
                    Ok(Some((v, ty, if remember_ivs { iv } else { Vec::new() })))
                }
                _ => Err(Error::MalformedEncValue {
                    path: String::new(),
                    message: "expected an encrypted string value".into(),
                }),
            },
        }
    };

    // Step 2 (in order): MAC, IV memory, write back.
    let mut fold = DecryptFold {
        hasher: new_mac_hasher(mac_only),
        previous: PreviousCiphertexts::default(),
        comment_values: Vec::new(),
        value_ordinal: 0,
        ordinal: 0,
        failed: None,
        mac_only,
        remember_ivs,
    };
    if leaves.len() < PARALLEL_THRESHOLD {
        let outcomes = leaves.iter_mut().map(open_one).collect();
        fold.chunk(&mut leaves, aads, outcomes);
    } else {
        // A pipeline: the MAC is one SHA-512 stream over the values in order, so while one chunk
        // is hashed and written back, the next is decrypted on the other threads.
        const CHUNK: usize = 2048;
        let mut chunks = leaves.chunks_mut(CHUNK);
        let mut pending: Option<(&mut [Leaf<'_>], Vec<Outcome>)> = None;
        loop {
            let next = chunks.next();
            if next.is_none() && pending.is_none() {
                break;
            }
            let ((), opened) = rayon::join(
                || {
                    if let Some((done, outcomes)) = pending.take() {
                        fold.chunk(done, aads, outcomes);
                    }
                },
                || {
                    next.map(|c| {
                        let outcomes: Vec<Outcome> = c.par_iter_mut().map(open_one).collect();
                        (c, outcomes)
                    })
                },
            );
            pending = opened;
            if fold.failed.is_some() {
                break;
            }
        }
    }
    if let Some((ordinal, e)) = fold.failed {
        return Err(at_path(e, leaf_display_path(tree, &rule, ordinal)));
    }
    if !fold.comment_values.is_empty() {
        comment_values_to_maps(tree, &fold.comment_values);
    }
    Ok((fold.previous, hex_upper(&fold.hasher.finalize())))
}

/// What decrypting one leaf gives: its value, type and IV, `None` when it stays as it is.
type Outcome = Result<Option<(Value, ValueType, Vec<u8>)>, Error>;

/// The in-order half of decryption: the MAC, the IVs, the values written back.
struct DecryptFold {
    hasher: Sha512,
    previous: PreviousCiphertexts,
    /// Ordinals (among value leaves) of values typed `comment` (see `comment_values_to_maps`).
    comment_values: Vec<usize>,
    value_ordinal: usize,
    /// Leaves folded so far.
    ordinal: usize,
    /// The first leaf that did not decrypt, by ordinal.
    failed: Option<(usize, Error)>,
    mac_only: bool,
    remember_ivs: bool,
}

impl DecryptFold {
    /// Folds the next leaves in walk order with what decrypting them gave.
    fn chunk(&mut self, leaves: &mut [Leaf<'_>], aads: &str, outcomes: Vec<Outcome>) {
        for (leaf, outcome) in leaves.iter_mut().zip(outcomes) {
            if self.failed.is_some() {
                return;
            }
            let ordinal = self.ordinal;
            self.ordinal += 1;
            let decrypted = match outcome {
                Ok(d) => d,
                Err(e) => {
                    self.failed = Some((ordinal, e));
                    return;
                }
            };
            let aad = aad_of(aads, leaf);
            match &mut leaf.target {
                LeafRef::Comment(c) => {
                    if let Some((mut value, ty, iv)) = decrypted
                        && let Value::Str(text) = &mut value
                    {
                        if self.remember_ivs {
                            self.previous.remember(aad, ty, text.as_bytes(), &iv);
                        }
                        c.set(std::mem::take(text));
                        // As sops 3.13 decrypts it: a decrypted comment is no longer a line
                        // comment when written afresh (the layout of a source is kept anyway).
                        c.inline = false;
                    }
                }
                LeafRef::Value(s) => {
                    self.value_ordinal += 1;
                    let mut comment = false;
                    if let Some((value, ty, iv)) = decrypted {
                        if self.remember_ivs {
                            let previous = &mut self.previous;
                            cipher::with_plaintext(&value, |bytes, _| {
                                previous.remember(aad, ty, bytes, &iv)
                            });
                        }
                        s.replace_ciphertext(value);
                        comment = ty == ValueType::Comment;
                    }
                    if comment {
                        // sops: a value typed `comment` decrypts to a comment, which is not data:
                        // not in the MAC.
                        self.comment_values.push(self.value_ordinal - 1);
                    } else if !self.mac_only || leaf.encrypted {
                        let hasher = &mut self.hasher;
                        cipher::with_plaintext(&s.value, |bytes, _| hasher.update(bytes));
                    }
                }
            }
        }
    }
}

/// sops decrypts a value typed `comment` that stands where data does (`"k": "ENC[…,type:comment]"`,
/// not a list item, which the JSON store reads as a comment) to its Go `Comment` struct, which it
/// prints as `{"Value": "…"}`: so does Signet, with a map holding the text under `Value` (sops'
/// YAML output spells it `value`). `ordinals` count the value leaves in walk order, as
/// [`collect_leaves`] visits them.
fn comment_values_to_maps(tree: &mut Tree, ordinals: &[usize]) {
    fn walk(node: &mut Node, seen: &mut usize, ordinals: &[usize], root_map: bool) {
        match node {
            Node::Scalar(s) => {
                if s.value == Value::Null {
                    return;
                }
                let ordinal = *seen;
                *seen += 1;
                if ordinals.binary_search(&ordinal).is_ok() {
                    let text = std::mem::replace(&mut s.value, Value::Null);
                    let mut map = Map::default();
                    map.entries.push(MapEntry::Pair(Pair {
                        key: "Value".to_owned(),
                        value: Node::Scalar(Scalar {
                            value: text,
                            origin: None,
                            changed: true,
                        }),
                        origin: None,
                    }));
                    *node = Node::Map(map);
                }
            }
            Node::Map(m) => {
                for e in m.entries.iter_mut() {
                    if let MapEntry::Pair(p) = e
                        && !(root_map && p.key == SOPS_KEY)
                    {
                        walk(&mut p.value, seen, ordinals, false);
                    }
                }
            }
            Node::Seq(q) => {
                for i in q.items.iter_mut() {
                    if let SeqItem::Node(n) = i {
                        walk(n, seen, ordinals, false);
                    }
                }
            }
        }
    }
    let mut seen = 0;
    for doc in tree.documents.iter_mut() {
        let root_map = matches!(doc.root, Node::Map(_));
        walk(&mut doc.root, &mut seen, ordinals, root_map);
    }
}

/// What `--extract` yields, as sops' `extract` decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Extracted {
    /// A map: write it as a whole plain file in the output format.
    Tree(Tree),
    /// A string: write its bytes as they are (no quoting, no newline).
    Text(Zeroizing<Vec<u8>>),
    /// Anything else (number, bool, null, time, list): write it with the output store's
    /// [`crate::Store::emit_value`].
    Value(Node),
}

/// The part of the first document at `path` (`--extract '["a"]["b"]'`), on a decrypted tree.
pub fn extract(tree: &Tree, path: &[crate::path::PathStep]) -> Result<Extracted, Error> {
    let doc = tree.documents.first().ok_or(Error::PathNotFound {
        path: String::new(),
        message: "empty file".into(),
    })?;
    Ok(match crate::path::get(&doc.root, path)? {
        Node::Map(m) => Extracted::Tree(Tree {
            documents: vec![Document {
                root: Node::Map(m.clone()),
                origin: None,
            }],
            source: None,
        }),
        Node::Scalar(Scalar {
            value: Value::Str(s),
            ..
        }) => Extracted::Text(Zeroizing::new(s.as_bytes().to_vec())),
        // Text that is not UTF-8 (binary data) is a string to sops too.
        Node::Scalar(Scalar {
            value: Value::Bytes(b),
            ..
        }) => Extracted::Text(Zeroizing::new(b.clone())),
        other => Extracted::Value(other.clone()),
    })
}
