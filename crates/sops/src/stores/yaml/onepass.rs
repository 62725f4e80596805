//! One-pass encryption and decryption of YAML files of the common shape, without a tree.
//!
//! Most sops YAML files are block maps and lists of one-line scalars, comments and blank lines,
//! with the `sops` section last. For that shape neither direction needs a tree: each value and
//! comment is replaced where it stands (by its `ENC[…]` text, or by its plaintext rendered as the
//! full store renders it), the MAC is hashed over the values in file order, and the `sops` section
//! is appended or cut. The input is read in chunks, and encryption writes each chunk out as it is
//! done, so neither the input, the output nor a tree is held whole.
//!
//! Decryption: [`Tail::read`] reads the `sops` section from the end of the file and
//! [`Tail::decrypt_body`] the rest. Encryption: [`PlainFile::check`] reads the file through once
//! to say whether it has the shape, then [`PlainFile::encrypt`] writes it encrypted.
//!
//! The result is the full store's (`YamlStore::parse`, `engine::encrypt`/`decrypt`, `emit`): the
//! same bytes for a decryption, the same text but for the random IVs for an encryption. Otherwise
//! there is none: anything outside the shape (flow collections, block, multi-line or escaped
//! scalars, anchors, tags, tabs, CRs, bytes outside printable ASCII, several documents, keys that
//! are not plain strings, comment rules, a comment whose collection is not certain, a decrypted
//! plain value that needs more than one line), and any value or comment that does not decrypt or a
//! MAC that does not match, makes it decline. The caller then takes the full path, which gives
//! every error, so errors need no second implementation.

use super::YamlStore;
use super::render::{Place, may_be_multiline, render_scalar_cow};
use super::resolve::{resolve_plain, resolves_to_str};
use crate::Decryptor;
use crate::cipher::{self, EncryptedValue, ValueCipher, ValueType};
use crate::datakey::DataKey;
use crate::engine;
use crate::limits::Limits;
use crate::metadata::{Metadata, SOPS_KEY};
use crate::rules::RuleMatcher;
use crate::store::Store;
use crate::tree::{Document, Map, Pair};
use crate::tree::{MapEntry, Node, ScalarStyle, Tree, Value};
use rayon::prelude::*;
use sha2::Digest;
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Seek, SeekFrom, Write};
use zeroize::{Zeroize, Zeroizing};

/// How much of the end of a file is searched for the `sops` section.
const TAIL_BYTES: u64 = 64 * 1024;
/// Bytes read per chunk of the body.
const CHUNK_BYTES: usize = 1 << 18;
/// Comment lines in a row; more declines. The full parser refuses a file where it has to look
/// past more than 96 comments for the next token (granit-parser's `max_buffered_comment_events`,
/// after a key with no value on its line); the one pass declines every long run, wherever it is.
const MAX_COMMENT_RUN: usize = 64;
/// Nesting deeper than this declines (the full parser's own limit is higher).
const MAX_DEPTH: usize = 100;
/// yaml.v3 refuses implicit keys longer than this.
const MAX_KEY_BYTES: usize = 1024;
/// Values per chunk from which they are decrypted on the thread pool.
const PARALLEL_MIN: usize = 256;

/// Where a value is written: a one-line value of a block collection.
const BLOCK_VALUE: Place = Place {
    flow: false,
    key: false,
    block_ok: false,
    content_indent: 0,
    parent_indent: 0,
};

/// The `sops` section of a YAML file, read from its end: the metadata, and where the body before
/// it ends.
#[derive(Debug)]
pub struct Tail {
    decryptor: Decryptor,
    body_len: u64,
}

impl Tail {
    /// Reads the `sops` section from the end of `file`. `None` when the file does not end with a
    /// top-level `sops` key whose section parses on its own (the full path then reads the file).
    pub fn read<R: Read + Seek>(file: &mut R) -> io::Result<Option<Tail>> {
        let len = file.seek(SeekFrom::End(0))?;
        if len > Limits::get().max_input_bytes as u64 {
            return Ok(None);
        }
        let take = len.min(TAIL_BYTES);
        file.seek(SeekFrom::Start(len - take))?;
        let mut tail = vec![0; take as usize];
        file.read_exact(&mut tail)?;
        let Some(at) = memchr::memmem::rfind(&tail, b"\nsops:\n") else {
            return Ok(None);
        };
        // Every line after `sops:` is the section's (indented, not blank, not a comment), so the
        // output is the body alone: the full store keeps what follows a section in its place.
        let section_lines = tail[at + 7..].strip_suffix(b"\n").unwrap_or(b"-");
        if !section_lines.split(|&b| b == b'\n').all(|l| {
            let text = l.trim_ascii_start();
            l.first() == Some(&b' ') && !text.is_empty() && text[0] != b'#'
        }) {
            return Ok(None);
        }
        let Ok(tree) = YamlStore::default().parse(&tail[at + 1..]) else {
            return Ok(None);
        };
        if !is_sops_section(&tree) {
            return Ok(None);
        }
        let Ok(decryptor) = Decryptor::new(tree) else {
            return Ok(None);
        };
        Ok(Some(Tail {
            decryptor,
            body_len: len - take + at as u64 + 1,
        }))
    }

    /// The metadata, and the data key's unwrapping.
    pub fn decryptor(&self) -> &Decryptor {
        &self.decryptor
    }

    /// Decrypts the body of `file` (the same file [`Tail::read`] read) with `key`: the plaintext
    /// file, or `None` when the body is not of the shape this path handles, a value does not
    /// decrypt or the MAC does not match.
    pub fn decrypt_body<R: Read + Seek + Send>(
        &self,
        file: &mut R,
        key: &DataKey,
    ) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
        file.seek(SeekFrom::Start(0))?;
        decrypt_body(
            file.take(self.body_len),
            self.body_len,
            key,
            self.decryptor.metadata(),
        )
    }
}

/// A tree of one document whose root map holds the `sops` key alone.
fn is_sops_section(tree: &Tree) -> bool {
    let [doc] = tree.documents.as_slice() else {
        return false;
    };
    let Node::Map(map) = &doc.root else {
        return false;
    };
    matches!(map.entries.as_slice(), [MapEntry::Pair(p)] if p.key == SOPS_KEY)
}

/// Decrypts `body` (`len` bytes, everything before the `sops` key) for [`Tail::decrypt_body`].
fn decrypt_body(
    body: impl Read + Send,
    len: u64,
    key: &DataKey,
    meta: &Metadata,
) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    let Ok(rule) = meta.rule.compile() else {
        return Ok(None);
    };
    if rule.uses_comments() || meta.mac.is_none() {
        return Ok(None);
    }
    let cipher = ValueCipher::new(key);
    let mut writer = Writer {
        // Decrypted values are shorter than their ciphertexts: the output fits, and the pages
        // never written are never touched.
        out: Zeroizing::new(Vec::with_capacity(len as usize)),
        hasher: engine::new_mac_hasher(meta.mac_only_encrypted),
        mac_only: meta.mac_only_encrypted,
    };
    let streamed = stream(
        body,
        len,
        Scanner::new(&rule, Mode::Decrypt),
        |chunk| open_all(chunk, &cipher),
        |chunk, opened| writer.write(chunk, opened),
    )?;
    // Wiping on drop covers the whole capacity: the pages never written would be touched then,
    // unless they are given back first.
    writer.out.shrink_to_fit();
    if streamed.is_none() {
        return Ok(None);
    }
    let computed = engine::hex_upper(&writer.hasher.finalize());
    match engine::stored_mac(meta, key) {
        Ok(Some(stored)) if engine::mac_matches(&stored, &computed) => Ok(Some(writer.out)),
        _ => Ok(None),
    }
}

/// A plain YAML file that [`PlainFile::check`] found of the shape the one pass encrypts.
#[derive(Debug)]
pub struct PlainFile {
    len: u64,
}

impl PlainFile {
    /// Reads `file` through once: `Some` when the one pass can encrypt it under `meta`'s rule
    /// (which [`PlainFile::encrypt`] is then given), `None` when it is for the full path (which
    /// also reports a file that is not YAML, is empty or already encrypted).
    pub fn check<R: Read + Seek + Send>(
        file: &mut R,
        meta: &Metadata,
    ) -> io::Result<Option<PlainFile>> {
        let len = file.seek(SeekFrom::End(0))?;
        if len == 0 || len > Limits::get().max_input_bytes as u64 {
            return Ok(None);
        }
        let mut settled = meta.clone();
        engine::settle_rule(&mut settled);
        let Ok(rule) = settled.rule.compile() else {
            return Ok(None);
        };
        if rule.uses_comments() {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(0))?;
        let scanner = Scanner::new(&rule, Mode::Encrypt);
        let checked = stream(file.take(len), len, scanner, |_| Some(()), |_, ()| Some(()))?;
        Ok(checked.map(|()| PlainFile { len }))
    }

    /// Encrypts the file [`PlainFile::check`] checked with `key`, writing it to `out` with the
    /// `sops` section (indented `indent` per level) last; `meta` gets the rule it was encrypted
    /// under, the MAC, `lastmodified` and the version, as `engine::encrypt` gives them. Fails
    /// (after writing part of the output) only when `out` does, or when the file changed since it
    /// was checked.
    pub fn encrypt<R: Read + Seek + Send, W: Write>(
        &self,
        file: &mut R,
        key: &DataKey,
        meta: &mut Metadata,
        indent: usize,
        out: &mut W,
    ) -> io::Result<()> {
        let changed = || io::Error::other("the file changed while it was being encrypted");
        engine::settle_rule(meta);
        let rule = meta.rule.compile().map_err(|_| changed())?;
        let cipher = ValueCipher::new(key);
        let mut writer = Writer {
            // A chunk's output: its values grow about threefold once encrypted.
            out: Zeroizing::new(Vec::with_capacity(
                (self.len.min(CHUNK_BYTES as u64) as usize).saturating_mul(3),
            )),
            hasher: engine::new_mac_hasher(meta.mac_only_encrypted),
            mac_only: meta.mac_only_encrypted,
        };
        let mut failed = None;
        file.seek(SeekFrom::Start(0))?;
        let scanner = Scanner::new(&rule, Mode::Encrypt);
        let streamed = stream(
            file.take(self.len),
            self.len,
            scanner,
            |chunk| seal_all(chunk, &cipher),
            |chunk, sealed| {
                writer.write(chunk, sealed)?;
                if let Err(e) = out.write_all(&writer.out) {
                    failed = Some(e);
                    return None;
                }
                writer.out.clear();
                Some(())
            },
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
        streamed.ok_or_else(changed)?;
        let last_modified = engine::now_rfc3339();
        let aad = engine::mac_aad(&last_modified).map_err(io::Error::other)?;
        let digest = writer.hasher.finalize();
        engine::record_mac(meta, &cipher, &digest, last_modified, &aad);
        out.write_all(sops_section(meta, indent).as_bytes())
    }
}

/// The `sops` key and its section, as the full store appends it to a file's root map.
fn sops_section(meta: &Metadata, indent: usize) -> String {
    let root = Map {
        entries: vec![MapEntry::Pair(Pair {
            key: SOPS_KEY.to_owned(),
            value: meta.to_node(),
            origin: None,
        })],
        origin: None,
    };
    let tree = Tree {
        documents: vec![Document {
            root: Node::Map(root),
            origin: None,
        }],
        source: None,
    };
    YamlStore::new(indent).render_fresh(&tree)
}

/// A chunk of whole lines, scanned: its bytes (up to where the scan made them final), edits and
/// their AADs.
struct Chunk {
    data: Zeroizing<Vec<u8>>,
    edits: Vec<Edit>,
    aads: String,
}

/// Why a stream stopped early.
enum Stop {
    Declined,
    Failed(io::Error),
}

/// Reads an input in chunks of whole lines and scans them.
struct Chunks<'r, R> {
    body: R,
    left: u64,
    /// Bytes of the last chunk not yet final (an unfinished line, comments not yet placed).
    carry: Zeroizing<Vec<u8>>,
    scanner: Scanner<'r>,
    finished: bool,
}

impl<R: Read> Chunks<'_, R> {
    /// The next chunk; `None` after the last.
    fn next(&mut self) -> Result<Option<Chunk>, Stop> {
        while !self.finished {
            if self.carry.len() > 8 * CHUNK_BYTES {
                return Err(Stop::Declined);
            }
            let want = (CHUNK_BYTES as u64).min(self.left) as usize;
            // A buffer of its own per chunk (the previous one may still be written out), sized
            // once: plaintext is never left behind by a reallocation.
            let mut data = Zeroizing::new(Vec::with_capacity(self.carry.len() + want));
            data.extend_from_slice(&self.carry);
            let read = (&mut self.body)
                .take(want as u64)
                .read_to_end(&mut data)
                .map_err(Stop::Failed)?;
            if read != want {
                return Err(Stop::Failed(io::ErrorKind::UnexpectedEof.into()));
            }
            self.left -= want as u64;
            let at_end = self.left == 0;
            // Whole lines only; the input must end with a line break.
            let lines_end = memchr::memrchr(b'\n', &data).map_or(0, |i| i + 1);
            if at_end && lines_end != data.len() {
                return Err(Stop::Declined);
            }
            if lines_end == 0 {
                self.carry = data;
                continue;
            }
            if !printable_ascii(&data[..lines_end]) {
                return Err(Stop::Declined);
            }
            let (mut edits, mut aads) = (Vec::new(), String::new());
            let done = self
                .scanner
                .scan(&data[..lines_end], at_end, &mut edits, &mut aads)
                .ok_or(Stop::Declined)?;
            self.carry = Zeroizing::new(data[done..].to_vec());
            data.truncate(done);
            self.finished = at_end;
            return Ok(Some(Chunk { data, edits, aads }));
        }
        Ok(None)
    }
}

/// What the committing side makes of one step of the reading side: `None` to go on.
type Outcome = Option<io::Result<Option<()>>>;

/// Reads `len` bytes of `body` in chunks of whole lines, scans each with `scanner`, works out each
/// chunk's edits with `prepare` (on the thread pool where it pays) and hands them to `commit` in
/// order: `Some` when every chunk was read and committed, `None` when the scanner, `prepare` or
/// `commit` declined. From the second chunk on, a thread of its own reads, scans and prepares the
/// next chunk while this one commits the last (at most one more chunk waits between them).
fn stream<T: Send>(
    body: impl Read + Send,
    len: u64,
    scanner: Scanner<'_>,
    prepare: impl Fn(&Chunk) -> Option<T> + Sync,
    mut commit: impl FnMut(&Chunk, T) -> Option<()>,
) -> io::Result<Option<()>> {
    let mut chunks = Chunks {
        body,
        left: len,
        carry: Zeroizing::new(Vec::new()),
        scanner,
        finished: false,
    };
    // Shared, not moved: the reading thread needs only `Sync` of it.
    let prepare = &prepare;
    let mut produce = move || -> Result<Option<(Chunk, T)>, Stop> {
        let Some(chunk) = chunks.next()? else {
            return Ok(None);
        };
        let prepared = prepare(&chunk).ok_or(Stop::Declined)?;
        Ok(Some((chunk, prepared)))
    };
    let mut consume = |step: Result<Option<(Chunk, T)>, Stop>| -> Outcome {
        match step {
            Ok(Some((chunk, prepared))) => commit(&chunk, prepared).is_none().then_some(Ok(None)),
            Ok(None) => Some(Ok(Some(()))),
            Err(Stop::Declined) => Some(Ok(None)),
            Err(Stop::Failed(e)) => Some(Err(e)),
        }
    };
    if len > CHUNK_BYTES as u64 {
        let outcome = std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let producer = &mut produce;
            let spawned = std::thread::Builder::new()
                .name("onepass-read".into())
                .spawn_scoped(scope, move || {
                    loop {
                        let step = producer();
                        let last = !matches!(step, Ok(Some(_)));
                        // A send fails once the committing side stopped: so does this side.
                        if tx.send(step).is_err() || last {
                            return;
                        }
                    }
                });
            // No thread to be had: the chunks are read in turn below instead.
            spawned.ok()?;
            for step in rx {
                if let Some(outcome) = consume(step) {
                    return Some(outcome);
                }
            }
            Some(Err(io::Error::other("the reading thread stopped")))
        });
        if let Some(outcome) = outcome {
            return outcome;
        }
    }
    loop {
        if let Some(outcome) = consume(produce()) {
            return outcome;
        }
    }
}

/// Every byte a printable ASCII character or a line feed (no tab, CR, control or non-ASCII byte,
/// whose handling the full parser owns).
fn printable_ascii(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\n')
}

/// A block collection open at a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Seq,
}

#[derive(Debug)]
struct Frame {
    col: usize,
    kind: Kind,
    /// The path's length where this collection starts (its own key is not part of it).
    path_mark: usize,
    /// Whether the current key (of a map) matches the rule's key pattern.
    key_matches: bool,
    /// Hashes of the keys seen (a map): a repeat (or a collision) declines.
    keys: HashSet<u64>,
}

/// What an edit replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EditKind {
    /// A value to decrypt (an `ENC[…]` text) or to encrypt.
    Value,
    /// A comment to decrypt or encrypt (the span starts at its `#`).
    Comment,
    /// A value that stays as it is: kept, and hashed into the MAC.
    Plain,
}

#[derive(Debug)]
struct Edit {
    /// The span replaced (a quoted scalar's quotes included).
    start: usize,
    end: usize,
    kind: EditKind,
    /// How the scalar is written (plain, or quoted with no escape inside).
    style: ScalarStyle,
    /// The AAD's span in the chunk's AAD buffer.
    aad: (usize, usize),
}

/// A comment line waiting for the content line that says which collection it is in.
#[derive(Debug, Clone, Copy)]
struct PendingComment {
    line_start: usize,
    hash_at: usize,
    end: usize,
    col: usize,
}

/// Which way a [`Scanner`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Encrypted input: `ENC[…]` values and comments are edits.
    Decrypt,
    /// Plain input: every value and comment the rule encrypts is an edit.
    Encrypt,
}

/// Reads lines, keeping the path of keys and the open collections; produces the edits of a chunk.
struct Scanner<'r> {
    rule: &'r RuleMatcher,
    mode: Mode,
    frames: Vec<Frame>,
    /// Keys of the open maps, each followed by `:` (an AAD).
    path: String,
    /// How many keys on the path match the rule's key pattern.
    keys_matching: usize,
    /// A key or dash ending its line: the column it is at and which collection it belongs to. The
    /// next content line says whether its value is a nested collection or null.
    open: Option<(usize, Kind)>,
    comments: Vec<PendingComment>,
    /// A blank line came after a pending comment: yaml.v3 may then keep the comment in the block
    /// above, not the line below.
    comments_split: bool,
    hash_keys: RandomState,
}

impl<'r> Scanner<'r> {
    fn new(rule: &'r RuleMatcher, mode: Mode) -> Self {
        Scanner {
            rule,
            mode,
            frames: Vec::new(),
            path: String::new(),
            keys_matching: 0,
            open: None,
            comments: Vec::new(),
            comments_split: false,
            hash_keys: RandomState::new(),
        }
    }

    /// Scans the lines of `chunk` (whole lines), appending its edits. Returns how far the chunk is
    /// final: comment lines not yet placed stay for the next chunk, which starts with them.
    /// `None`: decline.
    fn scan(
        &mut self,
        chunk: &[u8],
        at_end: bool,
        edits: &mut Vec<Edit>,
        aads: &mut String,
    ) -> Option<usize> {
        self.comments.clear();
        self.comments_split = false;
        let mut pos = 0;
        while let Some(eol) = memchr::memchr(b'\n', &chunk[pos..]) {
            self.line(chunk, pos, pos + eol, edits, aads)?;
            pos += eol + 1;
        }
        if at_end {
            self.finish(chunk, edits, aads)?;
            return Some(chunk.len());
        }
        Some(self.comments.first().map_or(pos, |c| c.line_start))
    }

    fn line(
        &mut self,
        chunk: &[u8],
        start: usize,
        end: usize,
        edits: &mut Vec<Edit>,
        aads: &mut String,
    ) -> Option<()> {
        let line = &chunk[start..end];
        let col = line.iter().take_while(|&&b| b == b' ').count();
        let rest = &line[col..];
        let Some(&first) = rest.first() else {
            self.comments_split |= !self.comments.is_empty();
            return Some(());
        };
        if first == b'#' {
            // (Whether trailing blanks are part of a comment's text is the parser's business.)
            if self.comments.len() >= MAX_COMMENT_RUN
                || (self.mode == Mode::Encrypt && line.ends_with(b" "))
            {
                return None;
            }
            self.comments.push(PendingComment {
                line_start: start,
                hash_at: start + col,
                end,
                col,
            });
            return Some(());
        }
        if col == 0 && (rest.starts_with(b"---") || rest.starts_with(b"...")) {
            return None;
        }
        if rest == b"-" || rest.starts_with(b"- ") {
            self.seq_item(chunk, start + col, col, rest, edits, aads)
        } else {
            self.map_entry(chunk, start + col, col, rest, edits, aads)
        }
    }

    /// Makes the collection of a content line of `kind` at `col` the innermost frame.
    fn enter(&mut self, col: usize, kind: Kind) -> Option<()> {
        if let Some((open_col, open_kind)) = self.open.take() {
            // The open key's (or dash's) value is this nested collection, or else it was null.
            // A list may sit at its key's own column.
            if col > open_col || (col == open_col && kind == Kind::Seq && open_kind == Kind::Map) {
                return self.push_frame(col, kind);
            }
        }
        while let Some(top) = self.frames.last() {
            let list_of_key = top.col == col
                && top.kind == Kind::Seq
                && kind == Kind::Map
                && self.frames.len() >= 2
                && self.frames[self.frames.len() - 2].col == col;
            if top.col > col || list_of_key {
                self.pop_frame();
            } else {
                break;
            }
        }
        match self.frames.last() {
            Some(top) if top.col == col && top.kind == kind => Some(()),
            None if col == 0 && kind == Kind::Map => self.push_frame(col, kind),
            _ => None,
        }
    }

    fn push_frame(&mut self, col: usize, kind: Kind) -> Option<()> {
        if self.frames.len() >= MAX_DEPTH {
            return None;
        }
        self.frames.push(Frame {
            col,
            kind,
            path_mark: self.path.len(),
            key_matches: false,
            keys: HashSet::new(),
        });
        Some(())
    }

    /// The innermost map's current key is done with: it leaves the path.
    fn leave_key(&mut self) {
        if let Some(frame) = self.frames.last_mut() {
            self.path.truncate(frame.path_mark);
            self.keys_matching -= frame.key_matches as usize;
            frame.key_matches = false;
        }
    }

    fn pop_frame(&mut self) {
        if let Some(frame) = self.frames.pop() {
            self.path.truncate(frame.path_mark);
            self.keys_matching -= frame.key_matches as usize;
        }
    }

    /// Places the pending comments in the collection now innermost (the path as it stands),
    /// where a content line at `col` continues: each comment to decrypt (`ENC[…]`) or encrypt
    /// (not empty) becomes an edit.
    fn place_comments(
        &mut self,
        chunk: &[u8],
        col: usize,
        edits: &mut Vec<Edit>,
        aads: &mut String,
    ) -> Option<()> {
        let split = std::mem::take(&mut self.comments_split);
        for c in std::mem::take(&mut self.comments) {
            let text = &chunk[c.hash_at + 1..c.end];
            let encrypt = self.rule.should_encrypt(self.keys_matching, 0, false);
            let edit = match self.mode {
                Mode::Decrypt if !text.starts_with(b"ENC[") => continue,
                // A comment is placed by the line below it only when that line is at its column
                // (yaml.v3's head comment); and kept encrypted by a key rule only where the
                // placement is certain.
                Mode::Decrypt => c.col == col && encrypt,
                Mode::Encrypt if text.is_empty() => continue,
                // Unverified by any decryption: only directly above its line, at its column.
                Mode::Encrypt if c.col != col || split => return None,
                Mode::Encrypt if !encrypt => continue,
                Mode::Encrypt => true,
            };
            if !edit {
                return None;
            }
            let aad = self.aad(aads);
            edits.push(Edit {
                start: c.hash_at,
                end: c.end,
                kind: EditKind::Comment,
                style: ScalarStyle::Plain,
                aad,
            });
        }
        Some(())
    }

    /// Appends the AAD of a leaf here (`:` at the top level) to `aads`.
    fn aad(&self, aads: &mut String) -> (usize, usize) {
        let start = aads.len();
        aads.push_str(if self.path.is_empty() {
            ":"
        } else {
            &self.path
        });
        (start, aads.len())
    }

    fn map_entry(
        &mut self,
        chunk: &[u8],
        at: usize,
        col: usize,
        rest: &[u8],
        edits: &mut Vec<Edit>,
        aads: &mut String,
    ) -> Option<()> {
        let (key, value) = split_key(rest)?;
        self.enter(col, Kind::Map)?;
        self.leave_key();
        self.place_comments(chunk, col, edits, aads)?;
        let key = std::str::from_utf8(key).ok()?;
        if !plain(key.as_bytes())
            || key.len() > MAX_KEY_BYTES
            || key == "<<"
            || !resolves_to_str(key)
            || (self.frames.len() == 1 && key == SOPS_KEY)
        {
            return None;
        }
        let hash = self.hash_keys.hash_one(key);
        let frame = self.frames.last_mut()?;
        if !frame.keys.insert(hash) {
            return None;
        }
        let matches = self.rule.uses_keys() && self.rule.key_matches(key);
        frame.key_matches = matches;
        self.keys_matching += matches as usize;
        self.path.push_str(key);
        self.path.push(':');
        match value {
            None => {
                self.open = Some((col, Kind::Map));
                Some(())
            }
            Some(offset) => self.leaf(chunk, at + offset, at + rest.len(), edits, aads),
        }
    }

    fn seq_item(
        &mut self,
        chunk: &[u8],
        at: usize,
        col: usize,
        rest: &[u8],
        edits: &mut Vec<Edit>,
        aads: &mut String,
    ) -> Option<()> {
        self.enter(col, Kind::Seq)?;
        self.place_comments(chunk, col, edits, aads)?;
        let after = &rest[1..];
        let spaces = after.iter().take_while(|&&b| b == b' ').count();
        let content = &after[spaces..];
        if content.is_empty() {
            if !after.is_empty() {
                return None;
            }
            self.open = Some((col, Kind::Seq));
            return Some(());
        }
        let content_col = col + 1 + spaces;
        let content_at = at + 1 + spaces;
        if matches!(content[0], b'-' | b'#') && !plain(content) {
            return None;
        }
        if split_key(content).is_some() {
            // `- key: …`: a map whose keys are at the column of this one.
            self.push_frame(content_col, Kind::Map)?;
            return self.map_entry(chunk, content_at, content_col, content, edits, aads);
        }
        self.leaf(chunk, content_at, content_at + content.len(), edits, aads)
    }

    /// A one-line scalar value at `start..end`: plain, or quoted with no escape inside.
    fn leaf(
        &mut self,
        chunk: &[u8],
        start: usize,
        end: usize,
        edits: &mut Vec<Edit>,
        aads: &mut String,
    ) -> Option<()> {
        let (style, inner) = scalar(&chunk[start..end])?;
        let text = std::str::from_utf8(inner).ok()?;
        // A list item sops wrote for a comment is a comment to the full store.
        if crate::stores::is_sops_comment(text) {
            return None;
        }
        let mut edit = Edit {
            start,
            end,
            kind: EditKind::Plain,
            style,
            aad: (0, 0),
        };
        let quoted = style != ScalarStyle::Plain;
        let null = !quoted && is_null(text);
        if self.rule.should_encrypt(self.keys_matching, 0, false) {
            match self.mode {
                Mode::Decrypt if cipher::looks_encrypted(text) => edit.kind = EditKind::Value,
                // An empty string stays as it is (and adds nothing to the MAC); null is no value.
                Mode::Decrypt | Mode::Encrypt if null || (quoted && text.is_empty()) => {}
                // A value the rule encrypts that is not encrypted: an error, which the full path
                // reports.
                Mode::Decrypt => return None,
                Mode::Encrypt => edit.kind = EditKind::Value,
            }
            if edit.kind == EditKind::Value {
                edit.aad = self.aad(aads);
            }
        }
        edits.push(edit);
        Some(())
    }

    /// The end of the input. Decrypting, the `sops:` line that follows is a key of the root
    /// map. Encrypting, the `sops` section will follow the last line, which must be content.
    fn finish(&mut self, chunk: &[u8], edits: &mut Vec<Edit>, aads: &mut String) -> Option<()> {
        self.open = None;
        if self.frames.is_empty() {
            return None;
        }
        if self.mode == Mode::Encrypt {
            let last = chunk.strip_suffix(b"\n")?;
            let last = &last[memchr::memrchr(b'\n', last).map_or(0, |i| i + 1)..];
            let first = last.trim_ascii_start().first();
            return (self.comments.is_empty() && first.is_some_and(|&b| b != b'#')).then_some(());
        }
        self.enter(0, Kind::Map)?;
        self.leave_key();
        self.place_comments(chunk, 0, edits, aads)
    }
}

/// Whether a plain scalar is null (`resolve_plain` without its allocation for strings).
fn is_null(text: &str) -> bool {
    !resolves_to_str(text) && matches!(resolve_plain(text), Value::Null)
}

/// Hashes a scalar's plaintext into the MAC as sops does: a quoted scalar's text, a plain one's
/// typed value (null adds nothing).
fn hash_scalar(hasher: &mut sha2::Sha512, style: ScalarStyle, text: &str) {
    if style != ScalarStyle::Plain || resolves_to_str(text) {
        hasher.update(text.as_bytes());
    } else {
        cipher::with_plaintext(&resolve_plain(text), |bytes, _| hasher.update(bytes));
    }
}

/// Splits a map entry's line (from its key on) into the key and where its value starts (`None`:
/// the key ends the line). `None` overall: not a `key: value` or `key:` line this path reads.
fn split_key(rest: &[u8]) -> Option<(&[u8], Option<usize>)> {
    if let Some(colon) = memchr::memmem::find(rest, b": ") {
        let after = colon + 2;
        let spaces = rest[after..].iter().take_while(|&&b| b == b' ').count();
        if after + spaces == rest.len() {
            return None;
        }
        return Some((&rest[..colon], Some(after + spaces)));
    }
    rest.strip_suffix(b":").map(|key| (key, None))
}

/// How a scalar token is written, and its text: a plain scalar ([`plain`]), or a quoted one with no
/// escape (and so no quote) inside, whose text is between its quotes. `None`: anything else.
fn scalar(token: &[u8]) -> Option<(ScalarStyle, &[u8])> {
    let quoted = |q: u8, style| {
        let inner = token.strip_prefix(&[q])?.strip_suffix(&[q])?;
        (!inner.contains(&q) && !inner.contains(&b'\\')).then_some((style, inner))
    };
    match token.first()? {
        b'"' => quoted(b'"', ScalarStyle::DoubleQuoted),
        b'\'' => quoted(b'\'', ScalarStyle::SingleQuoted),
        _ => plain(token).then_some((ScalarStyle::Plain, token)),
    }
}

/// A scalar this path reads as YAML reads it: one plain (unquoted) line in block context that
/// starts with no indicator (a dash only before a non-blank) and holds no `: `, ` #`, and does not
/// end with a blank or a colon.
fn plain(text: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (text.first(), text.last()) else {
        return false;
    };
    if b"-?:,[]{}#&*!|>'\"%@`".contains(&first)
        && !(first == b'-' && text.len() > 1 && text[1] != b' ')
    {
        return false;
    }
    last != b' '
        && last != b':'
        && memchr::memmem::find(text, b": ").is_none()
        && memchr::memmem::find(text, b" #").is_none()
}

/// A value edit's scalar text (inside its quotes).
fn inner<'c>(chunk: &'c [u8], e: &Edit) -> &'c [u8] {
    let quotes = (e.style != ScalarStyle::Plain) as usize;
    &chunk[e.start + quotes..e.end - quotes]
}

/// What an edit is replaced with.
enum Opened {
    /// A decrypted value.
    Value(Value),
    /// A decrypted comment's text.
    Comment(Zeroizing<String>),
    /// An `ENC[…]` text, for a value or a comment.
    Sealed(String),
    /// Nothing: the scalar stays.
    Plain,
}

/// Decrypts the edits' values and comments (on the thread pool when there are many); `None`
/// when one does not decrypt or is not what this path writes.
fn open_all(chunk: &Chunk, cipher: &ValueCipher) -> Option<Vec<Opened>> {
    let Chunk {
        data: chunk,
        edits,
        aads,
    } = chunk;
    let open = |e: &Edit| -> Option<Opened> {
        let aad = &aads[e.aad.0..e.aad.1];
        match e.kind {
            EditKind::Plain => Some(Opened::Plain),
            EditKind::Value => {
                let text = std::str::from_utf8(inner(chunk, e)).ok()?;
                let enc = EncryptedValue::parse(text, "").ok()?;
                let ty = enc.value_type;
                if ty == ValueType::Comment {
                    return None;
                }
                let plain = cipher.open_owned(enc, aad, "").ok()?;
                cipher::typed_value_owned(plain, ty, "")
                    .ok()
                    .map(Opened::Value)
            }
            EditKind::Comment => {
                let text = std::str::from_utf8(&chunk[e.start + 1..e.end]).ok()?;
                let enc = EncryptedValue::parse(text, "").ok()?;
                let mut plain = cipher.open_owned(enc, aad, "").ok()?;
                // Checked before it is converted: a failed `String::from_utf8` would drop its
                // copy of the plaintext unwiped.
                std::str::from_utf8(&plain).ok()?;
                let text = Zeroizing::new(String::from_utf8(std::mem::take(&mut *plain)).ok()?);
                (!text.contains(['\n', '\r'])).then_some(Opened::Comment(text))
            }
        }
    };
    if edits.len() >= PARALLEL_MIN {
        edits.par_iter().with_min_len(64).map(open).collect()
    } else {
        edits.iter().map(open).collect()
    }
}

/// Encrypts the edits' values and comments (on the thread pool when there are many). `None` (never
/// for a scanned chunk, which is printable ASCII): text that is not UTF-8.
fn seal_all(chunk: &Chunk, cipher: &ValueCipher) -> Option<Vec<Opened>> {
    let Chunk {
        data: chunk,
        edits,
        aads,
    } = chunk;
    let seal = |e: &Edit| -> Option<Opened> {
        let aad = &aads[e.aad.0..e.aad.1];
        let text = std::str::from_utf8(inner(chunk, e)).ok()?;
        Some(match e.kind {
            EditKind::Plain => Opened::Plain,
            EditKind::Comment => {
                Opened::Sealed(cipher.seal(&text.as_bytes()[1..], aad, ValueType::Comment))
            }
            EditKind::Value if e.style != ScalarStyle::Plain || resolves_to_str(text) => {
                Opened::Sealed(cipher.seal(text.as_bytes(), aad, ValueType::Str))
            }
            EditKind::Value => cipher::with_plaintext(&resolve_plain(text), |bytes, ty| {
                Opened::Sealed(cipher.seal(bytes, aad, ty))
            })
            .unwrap_or(Opened::Plain),
        })
    };
    if edits.len() >= PARALLEL_MIN {
        edits.par_iter().with_min_len(64).map(seal).collect()
    } else {
        edits.iter().map(seal).collect()
    }
}

/// Writes the output in order and hashes the MAC.
struct Writer {
    out: Zeroizing<Vec<u8>>,
    hasher: sha2::Sha512,
    mac_only: bool,
}

impl Writer {
    /// Writes `chunk` with its edits applied; `None` when a value needs what this path does not
    /// write (a line break).
    fn write(&mut self, chunk: &Chunk, opened: Vec<Opened>) -> Option<()> {
        let Chunk {
            data: chunk, edits, ..
        } = chunk;
        let mut last = 0;
        for (edit, opened) in edits.iter().zip(opened) {
            self.out.extend_from_slice(&chunk[last..edit.start]);
            match opened {
                Opened::Plain => {
                    self.out.extend_from_slice(&chunk[edit.start..edit.end]);
                    if !self.mac_only || edit.kind == EditKind::Value {
                        let text = std::str::from_utf8(inner(chunk, edit)).ok()?;
                        hash_scalar(&mut self.hasher, edit.style, text);
                    }
                }
                Opened::Value(value) => {
                    // A plain value with a line break may become a block, which depends on the
                    // lines below: the full path decides. (The value is wiped when dropped.)
                    if edit.style == ScalarStyle::Plain && may_be_multiline(&value) {
                        return None;
                    }
                    let rendered = render_scalar_cow(&value, edit.style, BLOCK_VALUE);
                    self.out.extend_from_slice(rendered.as_bytes());
                    if let std::borrow::Cow::Owned(mut r) = rendered {
                        r.zeroize();
                    }
                    let hasher = &mut self.hasher;
                    cipher::with_plaintext(&value, |bytes, _| hasher.update(bytes));
                }
                Opened::Sealed(enc) if edit.kind == EditKind::Comment => {
                    self.out.push(b'#');
                    self.out.extend_from_slice(enc.as_bytes());
                }
                Opened::Sealed(enc) => {
                    let enc = Value::Str(enc);
                    let rendered = render_scalar_cow(&enc, edit.style, BLOCK_VALUE);
                    self.out.extend_from_slice(rendered.as_bytes());
                    let text = std::str::from_utf8(inner(chunk, edit)).ok()?;
                    hash_scalar(&mut self.hasher, edit.style, text);
                }
                Opened::Comment(text) => {
                    self.out.push(b'#');
                    self.out.extend_from_slice(text.as_bytes());
                }
            }
            last = edit.end;
        }
        self.out.extend_from_slice(&chunk[last..]);
        Some(())
    }
}
