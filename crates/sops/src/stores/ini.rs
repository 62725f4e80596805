//! The INI store, following sops' `stores/ini` (which uses go-ini): sections become top-level maps
//! of string values; keys before any section live in `DEFAULT` (written without a header). A
//! comment above a key is kept as a comment entry *after* that key (sops' tree shape, so its AAD
//! is the section's path); a section's own comment is its first entry. Inline comments (`#`/`;`
//! after a value) are split off into the key's comment, as go-ini does.
//!
//! Written as go-ini's pretty format: `key = value` with `=` aligned per section, `; ` before
//! comments, a blank line between sections, values with a newline or backtick in `"""…"""`, with
//! `#`/`;` in backticks, with surrounding spaces in double quotes. The metadata is the `[sops]`
//! section with flattened keys (`age__list_0__map_enc`) and newlines escaped as `\n`.

use crate::Error;
use crate::metadata::{SOPS_KEY, flatten, unflatten};
use crate::store::Store;
use crate::stores::dotenv::val_to_string;
use crate::stores::json::single_document;
use crate::tree::{Comment, Document, Map, MapEntry, Node, Pair, Scalar, Tree, Value};
use std::collections::HashMap;

/// The section holding keys that precede every section header.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// sops-compatible INI.
#[derive(Debug, Clone, Copy, Default)]
pub struct IniStore;

fn strip_comment_char(c: &str) -> String {
    if c.starts_with(';') {
        c.trim_start_matches([';', ' ']).to_owned()
    } else if c.starts_with('#') {
        c.trim_start_matches(['#', ' ']).to_owned()
    } else {
        c.to_owned()
    }
}

fn comment(text: String) -> MapEntry {
    MapEntry::Comment(Comment {
        text,
        origin: None,
        changed: false,
        inline: false,
    })
}

fn str_scalar(s: String) -> Node {
    Node::Scalar(Scalar {
        value: Value::Str(s),
        origin: None,
        changed: false,
    })
}

impl Store for IniStore {
    fn parse(&self, input: &[u8]) -> Result<Tree, Error> {
        crate::limits::Limits::get().check_input("ini", input.len())?;
        let text = std::str::from_utf8(input).map_err(|e| Error::Parse {
            format: "ini",
            location: format!("byte {}", e.valid_up_to()),
            message: "input is not UTF-8".into(),
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut sections: Vec<(String, Map)> = vec![(DEFAULT_SECTION.to_owned(), Map::default())];
        let mut pending: Vec<String> = Vec::new();
        // Where each key of the current section is among its entries: go-ini (sops) keeps one
        // entry per key, at its first place with its last value; keeping both made files whose
        // MAC sops computes over one value only.
        let mut keys_at: HashMap<String, usize> = HashMap::new();
        // The section keys go to: a later `[DEFAULT]` header goes back to the first one.
        let mut current = 0;
        let lines = ini_lines(text);
        let mut i = 0;
        while i < lines.len() {
            let n = i + 1;
            let line = lines[i].trim();
            i += 1;
            if line.is_empty() {
                continue;
            }
            if line.starts_with(';') || line.starts_with('#') {
                pending.push(line.to_owned());
                continue;
            }
            let err = |message: &str| Error::Parse {
                format: "ini",
                location: format!("line {n}"),
                message: message.to_owned(),
            };
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .find(']')
                    .map(|e| rest[..e].trim())
                    .ok_or_else(|| err("unclosed section header"))?;
                let mut map = Map::default();
                if !pending.is_empty() {
                    map.entries
                        .push(comment(strip_comment_char(&pending.join("\n"))));
                    pending.clear();
                }
                if name == DEFAULT_SECTION {
                    sections[0].1.entries.extend(map.entries);
                    keys_at = index_keys(&sections[0].1);
                    current = 0;
                } else {
                    sections.push((name.to_owned(), map));
                    keys_at.clear();
                    current = sections.len() - 1;
                }
                continue;
            }
            let (key, raw) = split_key(line).ok_or_else(|| err("expected `key = value`"))?;
            let value = read_value(raw.trim_start(), &lines, &mut i, &mut pending).map_err(err)?;
            let section = &mut sections[current].1;
            // go-ini attaches the comments above a key (and its inline comment) to the key; sops
            // puts that comment right after the key.
            let key_comment = std::mem::take(&mut pending);
            match keys_at.get(key) {
                Some(&at) => {
                    if let MapEntry::Pair(p) = &mut section.entries[at] {
                        p.value = str_scalar(value);
                    }
                }
                None => {
                    keys_at.insert(key.to_owned(), section.entries.len());
                    section.entries.push(MapEntry::Pair(Pair {
                        key: key.to_owned(),
                        value: str_scalar(value),
                        origin: None,
                    }));
                }
            }
            if !key_comment.is_empty() {
                section
                    .entries
                    .push(comment(strip_comment_char(&key_comment.join("\n"))));
            }
        }
        let mut root = Map::default();
        for (name, map) in sections {
            if name == DEFAULT_SECTION && map.entries.is_empty() {
                continue;
            }
            if name == SOPS_KEY {
                let pairs: Vec<(String, Scalar)> = map
                    .entries
                    .into_iter()
                    .filter_map(|e| match e {
                        MapEntry::Pair(Pair {
                            key,
                            value: Node::Scalar(mut s),
                            ..
                        }) => {
                            if let Value::Str(t) = &s.value {
                                s.value = Value::Str(t.replace("\\n", "\n"));
                            }
                            Some((key, s))
                        }
                        _ => None,
                    })
                    .collect();
                root.entries.push(MapEntry::Pair(Pair {
                    key: name,
                    value: unflatten(&pairs)?,
                    origin: None,
                }));
                continue;
            }
            root.entries.push(MapEntry::Pair(Pair {
                key: name,
                value: Node::Map(map),
                origin: None,
            }));
        }
        Ok(Tree {
            documents: vec![Document {
                root: Node::Map(root),
                origin: None,
            }],
            source: None,
        })
    }

    /// sops' INI `EmitValue` is Go's `json.Marshal` of its tree value: compact JSON, where a map
    /// is the list of its `{"Key":…,"Value":…}` items, a comment is `{"Value":…}` and an empty
    /// list `null`.
    fn emit_value(&self, node: &Node) -> Result<Vec<u8>, Error> {
        let mut out = String::new();
        go_marshal(node, &mut out);
        Ok(out.into_bytes())
    }

    fn emit(&self, tree: &Tree) -> Result<Vec<u8>, Error> {
        let doc = single_document(tree, "ini")?;
        let Node::Map(root) = &doc.root else {
            return Err(Error::Emit {
                format: "ini",
                message: "the document is not a map".into(),
            });
        };
        let mut out = String::new();
        let mut first = true;
        for entry in &root.entries {
            let MapEntry::Pair(section) = entry else {
                continue;
            };
            // (key, value, comment written above the key)
            let mut keys: Vec<(String, String, Option<String>)> = Vec::new();
            let mut section_comment = None;
            match &section.value {
                Node::Map(m) if section.key == SOPS_KEY => {
                    let _ = m;
                    for (k, s) in flatten(&section.value, "") {
                        let v = match &s.value {
                            Value::Str(t) => t.replace('\n', "\\n"),
                            other => val_to_string(other),
                        };
                        keys.push((k, v, None));
                    }
                }
                Node::Map(m) => {
                    for (idx, e) in m.entries.iter().enumerate() {
                        match e {
                            MapEntry::Comment(c) if idx == 0 => {
                                section_comment = Some(c.text.clone())
                            }
                            MapEntry::Comment(c) => {
                                if let Some(last) = keys.last_mut() {
                                    last.2 = Some(c.text.clone());
                                }
                            }
                            MapEntry::Pair(p) => match &p.value {
                                Node::Scalar(s) => {
                                    keys.push((p.key.clone(), val_to_string(&s.value), None))
                                }
                                _ => {
                                    return Err(Error::Emit {
                                        format: "ini",
                                        message: format!(
                                            "value of {}.{} is not a scalar",
                                            section.key, p.key
                                        ),
                                    });
                                }
                            },
                        }
                    }
                }
                _ => {
                    return Err(Error::Emit {
                        format: "ini",
                        message: "section values should always be maps".into(),
                    });
                }
            }
            if !first {
                out.push('\n');
            }
            first = false;
            if let Some(c) = section_comment {
                write_comment(&c, &mut out);
            }
            if section.key != DEFAULT_SECTION {
                out.push('[');
                out.push_str(&section.key);
                out.push_str("]\n");
            }
            let mut quoted = Vec::with_capacity(keys.len());
            for (k, v, c) in keys {
                let Some(q) = quote_key(&k) else {
                    return Err(Error::Emit {
                        format: "ini",
                        message: format!(
                            "the key {k:?} in [{}] cannot be written so that it reads back as \
                             itself (go-ini, and so sops, would read another key)",
                            section.key
                        ),
                    });
                };
                let Some(v) = quote_value(&v) else {
                    return Err(Error::Emit {
                        format: "ini",
                        message: format!(
                            "the value of {k:?} in [{}] cannot be written so that it reads back: \
                             one with a line break or a backtick goes in `\"\"\"…\"\"\"`, which \
                             cannot keep a carriage return before a line break (the reader, as \
                             go-ini, takes CR LF for a line break), a `\"` at its end, a \
                             `\"\"\"` inside, or blanks ending its first line",
                            section.key
                        ),
                    });
                };
                quoted.push((q, v, c));
            }
            let align = quoted.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
            for (k, v, c) in quoted {
                if let Some(c) = c {
                    write_comment(&c, &mut out);
                }
                out.push_str(&k);
                out.push_str(&" ".repeat(align - k.len()));
                out.push_str(" = ");
                out.push_str(&v);
                out.push('\n');
            }
        }
        Ok(out.into_bytes())
    }
}

fn write_comment(c: &str, out: &mut String) {
    for line in c.split('\n') {
        if !(line.starts_with(';') || line.starts_with('#')) {
            out.push_str("; ");
        }
        out.push_str(line);
        out.push('\n');
    }
}

/// The value after `key = ` (`raw`, blanks before it dropped) as the reader takes it: a `"""`
/// value runs on over `lines` from `*next` to its closing `"""` (advancing `*next`); a bare value's
/// comment (from `#` or `;`) goes to `comments`.
fn read_value(
    raw: &str,
    lines: &[&str],
    next: &mut usize,
    comments: &mut Vec<String>,
) -> Result<String, &'static str> {
    if let Some(rest) = raw.strip_prefix("\"\"\"") {
        let mut value = String::new();
        let mut line = rest;
        loop {
            if let Some(end) = line.find("\"\"\"") {
                value.push_str(&line[..end]);
                return Ok(value);
            }
            value.push_str(line);
            let Some(following) = lines.get(*next) else {
                return Err("unclosed \"\"\" value");
            };
            value.push('\n');
            line = following;
            *next += 1;
        }
    }
    if raw.len() >= 2
        && let Some(rest) = raw.strip_prefix('`')
        && let Some(end) = rest.find('`')
    {
        return Ok(rest[..end].to_owned());
    }
    let mut v = raw;
    if let Some(c) = v.find(['#', ';']) {
        comments.push(v[c..].to_owned());
        v = &v[..c];
    }
    let v = v.trim();
    let quoted = v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')));
    Ok(if quoted { &v[1..v.len() - 1] } else { v }.to_owned())
}

/// The lines of INI text as the reader splits them (a CR before each line break dropped).
fn ini_lines(text: &str) -> Vec<&str> {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// Splits a `key = value` line as go-ini reads it: a key in `"""…"""`, `"…"` or `` `…` `` ends at
/// its closing quote (so it may hold `=`, `:` and the other quote, as [`quote_key`] writes them); a
/// bare key ends at the first `=` or `:`.
fn split_key(line: &str) -> Option<(&str, &str)> {
    for quote in ["\"\"\"", "\"", "`"] {
        if let Some(rest) = line.strip_prefix(quote) {
            let end = rest.find(quote)?;
            let after = &rest[end + quote.len()..];
            let delim = after.find(['=', ':'])?;
            return Some((rest[..end].trim(), &after[delim + 1..]));
        }
    }
    let delim = line.find(['=', ':'])?;
    Some((line[..delim].trim(), &line[delim + 1..]))
}

/// Whether the reader would take `v`, written bare, for a quoted value (`"…"`, `'…'`, `"""…`).
fn reads_as_quoted(v: &str) -> bool {
    v.starts_with("\"\"\"")
        || (v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\''))))
}

/// `k` written so that go-ini reads it back, or `None` when no quoting does: keys are read
/// trimmed and line by line, and one holding a backtick goes in `"""…"""`, which a `"` next to
/// the quotes breaks.
fn quote_key(k: &str) -> Option<String> {
    if k.contains(['\n', '\r']) {
        return None;
    }
    let quoted = if k.contains('`') {
        format!("\"\"\"{k}\"\"\"")
    } else if k.contains(['=', ':', '"']) || k.starts_with([';', '#', '[']) {
        format!("`{k}`")
    } else {
        k.to_owned()
    };
    let line = format!("{quoted} = ");
    (split_key(&line).map(|(read, _)| read) == Some(k)).then_some(quoted)
}

/// `v` as written after `key = `, or `None` when no form reads back as `v` (checked by reading it
/// back: in `"""…"""` a `"` at the end or a `"""` inside closes the value early, the first line is
/// read trimmed and each line without a CR that ends it).
fn quote_value(v: &str) -> Option<String> {
    let quoted = if v.contains(['\n', '`']) {
        // Refused as it always was: a multi-line value ending in a CR.
        if v.contains('\n') && v.ends_with('\r') {
            return None;
        }
        format!("\"\"\"{v}\"\"\"")
    } else if v.contains(['#', ';']) || reads_as_quoted(v) {
        format!("`{v}`")
    } else if v.trim() != v && !v.starts_with('"') {
        format!("\"{v}\"")
    } else if v.trim() != v {
        // `"…"` around a value starting with `"` would open a `"""` value.
        format!("`{v}`")
    } else {
        v.to_owned()
    };
    let text = format!("k = {quoted}");
    let lines = ini_lines(&text);
    let (_, raw) = split_key(lines[0].trim())?;
    let (mut next, mut comments) = (1, Vec::new());
    let read = read_value(raw.trim_start(), &lines, &mut next, &mut comments).ok()?;
    (read == v && comments.is_empty() && next == lines.len()).then_some(quoted)
}

/// Where each key of `section` is among its entries.
fn index_keys(section: &Map) -> HashMap<String, usize> {
    section
        .entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            MapEntry::Pair(p) => Some((p.key.clone(), i)),
            MapEntry::Comment(_) => None,
        })
        .collect()
}

/// Go's `json.Marshal` of sops' in-memory value for `node` (see [`IniStore::emit_value`]).
fn go_marshal(node: &Node, out: &mut String) {
    use crate::stores::json::{write_json_string, write_scalar};
    // sops 3.13's `Comment{Value, Inline}`.
    let comment = |c: &crate::tree::Comment, out: &mut String| {
        out.push_str("{\"Value\":");
        write_json_string(&c.text, out);
        out.push_str(if c.inline {
            ",\"Inline\":true}"
        } else {
            ",\"Inline\":false}"
        });
    };
    match node {
        Node::Scalar(s) => write_scalar(&s.value, out),
        // Go marshals the nil slice an empty list or map decodes to as `null`.
        Node::Seq(seq) if seq.items.is_empty() => out.push_str("null"),
        Node::Map(m) if m.entries.is_empty() => out.push_str("null"),
        Node::Seq(seq) => {
            out.push('[');
            for (i, item) in seq.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match item {
                    crate::tree::SeqItem::Node(n) => go_marshal(n, out),
                    crate::tree::SeqItem::Comment(c) => comment(c, out),
                }
            }
            out.push(']');
        }
        Node::Map(m) => {
            out.push('[');
            for (i, entry) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"Key\":");
                match entry {
                    MapEntry::Pair(p) => {
                        write_json_string(&p.key, out);
                        out.push_str(",\"Value\":");
                        go_marshal(&p.value, out);
                    }
                    MapEntry::Comment(c) => {
                        comment(c, out);
                        out.push_str(",\"Value\":null");
                    }
                }
                out.push('}');
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::tree::{MapEntry, Node};

    /// As go-ini (so sops) reads a section that repeats a key: one entry, at the first place, with
    /// the last value; a repeated section stays a section of its own.
    #[test]
    fn a_repeated_key_keeps_its_first_place_and_last_value() {
        let tree = IniStore
            .parse(b"[s]\na = 1\nb = x\na = 2\n[t]\nc = 3\n[s]\na = 4\n")
            .unwrap();
        let out = String::from_utf8(IniStore.emit(&tree).unwrap()).unwrap();
        assert_eq!(out, "[s]\na = 2\nb = x\n\n[t]\nc = 3\n\n[s]\na = 4\n");
    }

    fn keys(input: &[u8]) -> Vec<String> {
        let tree = IniStore.parse(input).expect("parses");
        let Node::Map(root) = &tree.documents[0].root else {
            panic!("root is a map")
        };
        let Some(Node::Map(section)) = root.get("s") else {
            panic!("section s")
        };
        section
            .entries
            .iter()
            .filter_map(|e| match e {
                MapEntry::Pair(p) => Some(p.key.clone()),
                MapEntry::Comment(_) => None,
            })
            .collect()
    }

    /// Found by the `store_ini` fuzz target: a key `` ` `` came back as ``""`""`` because the writer
    /// puts such keys in `"""…"""` and the reader only stripped one quote; a key holding `=` was
    /// split at it. Keys are read as go-ini reads them (a quoted key ends at its closing quote).
    #[test]
    fn quoted_keys_read_back_as_written() {
        let input =
            b"[s]\n\"\"\"`\"\"\" = 1\na=b : 2\n\"\"\"x`y\"\"\" = 3\n`k:\"v=\"` = 4\n\"q\" = 5\n";
        let original = keys(input);
        assert_eq!(original, ["`", "a", "x`y", "k:\"v=\"", "q"]);
        assert_keys_read_back(input, &original);
    }

    /// Found by the `store_ini` fuzz target: a key starting with `;`, `#` or `[` was written bare
    /// and read back as a comment or a section header.
    /// Found by the `sops_roundtrip` fuzz target: a key holding a backtick and ending in `"` was
    /// written `"""k""""`, read back without its quote, and its value no longer decrypted (the
    /// key is in its AAD). A key no quoting brings back is refused when written, as are keys with
    /// blanks around them or a line break, which the reader cannot return either.
    #[test]
    fn keys_that_cannot_read_back_are_refused() {
        for key in ["a`b\"", "a`\"\"\"b", " a", "a ", "a\nb", "a\rb"] {
            let mut section = Map::default();
            section.insert(key, str_scalar("v".into()));
            let mut root = Map::default();
            root.insert(DEFAULT_SECTION, Node::Map(section));
            let tree = Tree {
                documents: vec![Document {
                    root: Node::Map(root),
                    origin: None,
                }],
                source: None,
            };
            let err = IniStore.emit(&tree).expect_err(key);
            assert!(
                err.to_string().contains("cannot be written"),
                "{key:?}: {err}"
            );
        }
        for key in ["a`b", "\"a`b", "a\"b", "a=b", "#a", "x y"] {
            assert_keys_read_back(
                format!("[s]\n{} = v\n", quote_key(key).expect(key)).as_bytes(),
                &[key.to_owned()],
            );
        }
    }

    /// Found by the `store_ini` fuzz campaign: a value holding CR LF went into `"""…"""`, and the
    /// reader (as go-ini) took the CR for part of the line break, so the value came back changed.
    /// Such a value is refused when written; a lone CR, or one before no line break, reads back.
    #[test]
    fn values_with_a_cr_before_a_line_break_are_refused() {
        let tree_with = |value: &str| {
            let mut section = Map::default();
            section.insert("k", str_scalar(value.into()));
            let mut root = Map::default();
            root.insert(DEFAULT_SECTION, Node::Map(section));
            Tree {
                documents: vec![Document {
                    root: Node::Map(root),
                    origin: None,
                }],
                source: None,
            }
        };
        // Found by the `sops_roundtrip` fuzz campaign: a value with a backtick and a `"` at its
        // end was written `"""…""""`, and read back without that `"` (the MAC then failed).
        for value in [
            "a\r\nb",
            "a\nb\r",
            "\r\n",
            "a`b\"",
            "a\nb\"",
            "a`\"\"\"b",
            "a\n\"\"\"b",
            "a  \nb",
        ] {
            let err = IniStore.emit(&tree_with(value)).expect_err(value);
            assert!(
                err.to_string()
                    .contains("cannot be written so that it reads back"),
                "{value:?}: {err}"
            );
        }
        for value in ["a\rb", "a\r", "a\n\rb", "a\nb", "\"a`b", "a`b\"c", "a\nb  "] {
            let written = IniStore.emit(&tree_with(value)).expect(value);
            let back = IniStore.parse(&written).expect(value);
            let Node::Map(root) = &back.documents[0].root else {
                panic!("a map")
            };
            let Some(Node::Map(section)) = root.get(DEFAULT_SECTION) else {
                panic!("the default section")
            };
            let Some(Node::Scalar(s)) = section.get("k") else {
                panic!("k")
            };
            assert_eq!(s.value, Value::Str(value.into()), "{written:?}");
        }
    }

    #[test]
    fn keys_like_comments_or_sections_are_quoted() {
        let input = b"[s]\n`;k` = 1\n`#k` = 2\n`[k]` = 3\n";
        let original = keys(input);
        assert_eq!(original, [";k", "#k", "[k]"]);
        assert_keys_read_back(input, &original);
    }

    /// What the store writes for `input` reads back with the keys `original`.
    fn assert_keys_read_back(input: &[u8], original: &[String]) {
        let written = IniStore.emit(&IniStore.parse(input).unwrap()).unwrap();
        assert_eq!(
            keys(&written),
            original,
            "{}",
            String::from_utf8_lossy(&written)
        );
    }

    /// Found by the `store_ini` fuzz target: the value `""` was written bare and read back as the
    /// empty string (a quoted one); `'a'` and `"""x` likewise.
    #[test]
    fn values_that_look_quoted_are_quoted() {
        let input = b"[s]\nk = `\"\"`\nl = `'a'`\nm = `\"\"\"x`\nn = after\n";
        let tree = IniStore.parse(input).unwrap();
        let written = IniStore.emit(&tree).unwrap();
        let again = IniStore.parse(&written).unwrap();
        let text = String::from_utf8_lossy(&written);
        assert_eq!(
            crate::stores::json::JsonStore
                .emit_value(&again.documents[0].root)
                .unwrap(),
            crate::stores::json::JsonStore
                .emit_value(&tree.documents[0].root)
                .unwrap(),
            "{text}"
        );
        assert_eq!(keys(&written), ["k", "l", "m", "n"], "{text}");
    }

    /// Found by the `store_ini` fuzz target: a value starting with `"` and ending in blanks was
    /// written in `"…"`, which made it start with `"""` and read as an unclosed multi-line value.
    #[test]
    fn a_blank_padded_value_starting_with_a_quote_reads_back() {
        for value in ["\"\"\u{c}", "\" x ", "\"\"\" "] {
            let input = format!("[s]\nk = `{value}`\n");
            let tree = IniStore.parse(input.as_bytes()).unwrap();
            let written = IniStore.emit(&tree).unwrap();
            let again = IniStore
                .parse(&written)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&written)));
            assert_eq!(
                crate::stores::json::JsonStore
                    .emit_value(&again.documents[0].root)
                    .unwrap(),
                crate::stores::json::JsonStore
                    .emit_value(&tree.documents[0].root)
                    .unwrap(),
                "{}",
                String::from_utf8_lossy(&written)
            );
        }
    }

    /// Found by the `store_ini` fuzz target: keys after a second `[DEFAULT]` header went to the
    /// last section while their index came from DEFAULT (a panic on a repeated key). They belong to
    /// DEFAULT, as go-ini reads them.
    #[test]
    fn keys_after_a_second_default_header_go_to_default() {
        let tree = IniStore
            .parse(b"a = 1\nb = 2\n[s]\nc = 3\n[DEFAULT]\nb = 4\nd = 5\n")
            .unwrap();
        let out = String::from_utf8(IniStore.emit(&tree).unwrap()).unwrap();
        assert_eq!(out, "a = 1\nb = 4\nd = 5\n\n[s]\nc = 3\n");
    }

    /// As go-ini: an opening key quote without its closing one is an error, not part of the key.
    #[test]
    fn unclosed_key_quote_is_refused() {
        for input in [&b"[s]\n`=1\n"[..], b"[s]\n\"a = 1\n"] {
            assert!(
                IniStore.parse(input).is_err(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
