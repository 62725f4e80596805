//! The JSON store, written the way sops writes JSON: key order kept, tab indent (Go's
//! `json.Indent` with `"\t"`), `": "` after keys, `{}`/`[]` for empty containers, a final newline,
//! Go's string escaping (`<`, `>`, `&`, U+2028/9 as `\u…`), and Go's number typing: an integer
//! literal that fits in 64 bits is an `int`, every other number a `float` (so integers beyond
//! i64 lose precision exactly as they do in sops, and are encrypted as `type:float`).
//!
//! The top level must be an object. Duplicate keys are kept in order (as sops' token decoder does).

use crate::Error;
use crate::limits::Limits;
use crate::store::Store;
use crate::tree::{
    Comment, Document, Map, MapEntry, Node, Pair, Scalar, Seq, SeqItem, Tree, Value,
};

/// sops-compatible JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonStore;

impl Store for JsonStore {
    fn parse(&self, input: &[u8]) -> Result<Tree, Error> {
        Limits::get().check_input("json", input.len())?;
        let root = parse_json_object(input)?;
        Ok(Tree {
            documents: vec![Document { root, origin: None }],
            source: None,
        })
    }

    fn emit(&self, tree: &Tree) -> Result<Vec<u8>, Error> {
        let doc = single_document(tree, "json")?;
        let mut out = String::new();
        write_node(&doc.root, 0, &mut out);
        out.push('\n');
        Ok(out.into_bytes())
    }

    /// Like the store writes it, without a final newline.
    fn emit_value(&self, node: &Node) -> Result<Vec<u8>, Error> {
        let mut out = String::new();
        write_node(node, 0, &mut out);
        Ok(out.into_bytes())
    }
}

pub(crate) fn single_document<'a>(
    tree: &'a Tree,
    format: &'static str,
) -> Result<&'a Document, Error> {
    match tree.documents.as_slice() {
        [doc] => Ok(doc),
        _ => Err(Error::Emit {
            format,
            message: "exactly one document is needed".into(),
        }),
    }
}

/// Parses a JSON document whose top level is an object into a map node.
pub(crate) fn parse_json_object(input: &[u8]) -> Result<Node, Error> {
    let text = std::str::from_utf8(input).map_err(|e| Error::Parse {
        format: "json",
        location: format!("byte {}", e.valid_up_to()),
        message: "input is not UTF-8".into(),
    })?;
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
    };
    p.skip_ws();
    if p.peek() != Some(b'{') {
        return Err(p.err(
            "sops only supports JSON files with a top-level object (starting with '{'); wrap other values in an object, e.g. {\"data\": [...]}",
        ));
    }
    let root = p.value(0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(p.err("unexpected data after the top-level object"));
    }
    Ok(root)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    /// `line:col` of the current position.
    fn location(&self) -> String {
        let before = &self.s[..self.pos.min(self.s.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = before.len()
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1)
            + 1;
        format!("{line}:{col}")
    }

    fn err(&self, message: &str) -> Error {
        Error::Parse {
            format: "json",
            location: self.location(),
            message: message.to_owned(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), Error> {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected `{}`", b as char)))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, Error> {
        let max_depth = Limits::get().max_depth;
        if depth > max_depth {
            return Err(Error::Limit {
                format: "json",
                location: self.location(),
                message: format!("objects and arrays nested more than {max_depth} deep"),
            });
        }
        self.skip_ws();
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut map = Map::default();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Node::Map(map));
                }
                loop {
                    self.skip_ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected an object key (a string)"));
                    }
                    let key = self.string()?;
                    self.expect(b':')?;
                    let value = self.value(depth + 1)?;
                    map.entries.push(MapEntry::Pair(Pair {
                        key,
                        value,
                        origin: None,
                    }));
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Node::Map(map));
                        }
                        _ => return Err(self.err("expected `,` or `}`")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut seq = Seq::default();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Node::Seq(seq));
                }
                loop {
                    // sops writes a comment that stood in a YAML list as a `type:comment` item
                    // (`--output-type json`); it is a comment, not data: not in the MAC, and
                    // left out of the decrypted JSON.
                    let item = match self.value(depth + 1)? {
                        Node::Scalar(Scalar {
                            value: Value::Str(ref text),
                            ..
                        }) if super::is_sops_comment(text) => SeqItem::Comment(Comment {
                            text: text.clone(),
                            origin: None,
                            changed: false,
                            inline: false,
                        }),
                        node => SeqItem::Node(node),
                    };
                    seq.items.push(item);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Node::Seq(seq));
                        }
                        _ => return Err(self.err("expected `,` or `]`")),
                    }
                }
            }
            Some(b'"') => Ok(scalar(Value::Str(self.string()?))),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Node, Error> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(scalar(value))
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn number(&mut self) -> Result<Node, Error> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.pos;
            while let Some(b'0'..=b'9') = p.peek() {
                p.pos += 1;
            }
            p.pos - s
        };
        let int_start = self.pos;
        let n = digits(self);
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return Err(self.err("invalid number"));
        }
        let mut is_int = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            is_int = false;
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            is_int = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        let text = &self.text[start..self.pos];
        if is_int && text.parse::<i64>().is_ok() {
            return Ok(scalar(Value::Int(text.to_owned())));
        }
        let f: f64 = text.parse().map_err(|_| self.err("invalid number"))?;
        if f.is_infinite() {
            return Err(self.err("number out of range"));
        }
        Ok(scalar(Value::Float(f)))
    }

    fn string(&mut self) -> Result<String, Error> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.pos += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let ch = if (0xD800..0xDC00).contains(&hi) {
                                if self.s[self.pos..].starts_with(b"\\u") {
                                    self.pos += 2;
                                    let lo = self.hex4()?;
                                    if (0xDC00..0xE000).contains(&lo) {
                                        char::from_u32(
                                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00),
                                        )
                                    } else {
                                        out.push('\u{FFFD}');
                                        char::from_u32(lo)
                                    }
                                } else {
                                    None
                                }
                            } else {
                                char::from_u32(hi)
                            };
                            out.push(ch.unwrap_or('\u{FFFD}'));
                        }
                        _ => return Err(self.err("invalid escape in string")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("bad \\u escape"))?;
        let h = std::str::from_utf8(h).map_err(|_| self.err("bad \\u escape"))?;
        let v = u32::from_str_radix(h, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }
}

fn scalar(value: Value) -> Node {
    Node::Scalar(Scalar {
        value,
        origin: None,
        changed: false,
    })
}

/// Go's `json.Marshal` of a string.
pub(crate) fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `json.Marshal` of a float64 (`'f'` between 1e-6 and 1e21, else `'e'` with a trimmed
/// exponent).
pub(crate) fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("exponent");
        let sign = if exp < 0 { '-' } else { '+' };
        let abs_exp = exp.abs();
        if abs_exp < 10 && exp > 0 {
            format!("{mant}e{sign}0{abs_exp}")
        } else {
            format!("{mant}e{sign}{abs_exp}")
        }
    } else {
        crate::cipher::format_float(f)
    }
}

pub(crate) fn write_scalar(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Str(s) => write_json_string(s, out),
        Value::Int(i) => out.push_str(&crate::cipher::canonical_int(i)),
        Value::Float(f) if f.is_finite() => out.push_str(&go_json_float(*f)),
        // JSON has no NaN/Inf; Go's encoder fails there. Write them as strings rather than fail.
        Value::Float(f) => write_json_string(&crate::cipher::format_float(*f), out),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Time(t) => write_json_string(
            &crate::cipher::normalize_time(t).unwrap_or_else(|| t.clone()),
            out,
        ),
        Value::Bytes(b) => {
            use base64::Engine as _;
            write_json_string(&base64::engine::general_purpose::STANDARD.encode(b), out)
        }
    }
}

fn indent(level: usize, out: &mut String) {
    out.push('\n');
    for _ in 0..level {
        out.push('\t');
    }
}

/// Writes `node` as sops does (`json.Indent(compact, "", "\t")`). Comments are dropped.
pub(crate) fn write_node(node: &Node, level: usize, out: &mut String) {
    match node {
        Node::Scalar(s) => write_scalar(&s.value, out),
        Node::Map(m) => {
            let pairs: Vec<&Pair> = m
                .entries
                .iter()
                .filter_map(|e| match e {
                    MapEntry::Pair(p) => Some(p),
                    MapEntry::Comment(_) => None,
                })
                .collect();
            if pairs.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, p) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(level + 1, out);
                write_json_string(&p.key, out);
                out.push_str(": ");
                write_node(&p.value, level + 1, out);
            }
            indent(level, out);
            out.push('}');
        }
        Node::Seq(s) => {
            let items: Vec<&Node> = s
                .items
                .iter()
                .filter_map(|i| match i {
                    SeqItem::Node(n) => Some(n),
                    SeqItem::Comment(_) => None,
                })
                .collect();
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, n) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(level + 1, out);
                write_node(n, level + 1, out);
            }
            indent(level, out);
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_keeps_order_and_layout() {
        let input = "{\n\t\"b\": 1,\n\t\"a\": [\n\t\t\"x\",\n\t\t{}\n\t],\n\t\"c\": {\n\t\t\"d\": null,\n\t\t\"e\": true\n\t},\n\t\"f\": 1.5,\n\t\"g\": []\n}\n";
        let tree = JsonStore.parse(input.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(JsonStore.emit(&tree).unwrap()).unwrap(),
            input
        );
    }

    #[test]
    fn numbers_typed_like_go() {
        let tree = JsonStore.parse(br#"{"i": 9223372036854775807, "big": 12345678901234567890123, "f": 3.0, "e": 1e21}"#).unwrap();
        let Node::Map(m) = &tree.documents[0].root else {
            panic!()
        };
        assert!(matches!(
            m.get("i"),
            Some(Node::Scalar(Scalar {
                value: Value::Int(_),
                ..
            }))
        ));
        assert!(matches!(
            m.get("big"),
            Some(Node::Scalar(Scalar {
                value: Value::Float(_),
                ..
            }))
        ));
        let out = String::from_utf8(JsonStore.emit(&tree).unwrap()).unwrap();
        assert!(out.contains("\"big\": 1.2345678901234568e+22"), "{out}");
        assert!(out.contains("\"f\": 3,"), "{out}");
        assert!(out.contains("\"e\": 1e+21"), "{out}");
    }

    #[test]
    fn go_escaping() {
        let tree = JsonStore
            .parse(br#"{"k": "<a&b>\u2028\n\"\\\u0001"}"#)
            .unwrap();
        let out = String::from_utf8(JsonStore.emit(&tree).unwrap()).unwrap();
        assert_eq!(
            out,
            "{\n\t\"k\": \"\\u003ca\\u0026b\\u003e\\u2028\\n\\\"\\\\\\u0001\"\n}\n"
        );
    }

    #[test]
    fn errors_name_the_place() {
        for bad in [
            &b"[1]"[..],
            b"{\"a\": }",
            b"{\"a\": 1",
            b"{\"a\": 01}",
            b"{} x",
            b"{\"a\": \"\x01\"}",
        ] {
            let e = JsonStore.parse(bad).unwrap_err();
            assert!(matches!(e, Error::Parse { .. }), "{e}");
        }
        let e = JsonStore.parse(b"{\n  \"a\": tru\n}").unwrap_err();
        assert!(e.to_string().contains("2:8"), "{e}");
    }
}
