//! External Secrets Operator's `fromYaml` (v0.16.2, `pkg/template/v2/yaml.go`) and go-yaml v2's
//! scalar resolution, which `toYaml` ([`super::eso_to_yaml`]) shares. Both functions go through
//! sigs.k8s.io/yaml v1.4.0, which converts between JSON and YAML with its copy of go-yaml v2.4.0.
//! `fromYaml` reads the first document with go-yaml's YAML 1.1 scalar rules, turns it into JSON
//! and decodes that into a `map[string]interface{}` (every number a float64); a failure gives a
//! map holding only an `Error` entry, whose wording is Go's where Signet can tell it (a top level
//! that is not a mapping, a number JSON cannot hold, a bad merge, an unknown anchor, a nil or
//! uint64 key) and Signet's own for a syntax error.
//!
//! Bounds: `fromYaml` builds at most [`MAX_YAML_NODES`] nodes (aliases count every node they
//! copy, so an alias bomb stops early) nested at most [`MAX_NESTING`] deep. Going over is a
//! template error.

use super::value::{MAX_NESTING, Value, str_value};
use granit_parser::{Event, Parser, ScalarStyle};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// Most nodes `fromYaml` builds from one document, aliases' copies included.
pub const MAX_YAML_NODES: usize = super::MAX_LIST_LEN;

type R<T> = Result<T, String>;

// ---------------------------------------------------------------------------------------------
// go-yaml v2's scalar resolution (resolve.go)

/// What a plain scalar means to go-yaml v2 (YAML 1.1): `y`, `on`, `No` are booleans, `0x1F`,
/// `0777`, `1_000`, `0b101` integers, `1e3` a float, `2024-01-02` a timestamp (a string when
/// decoded into an `interface{}`).
#[derive(Debug, PartialEq)]
pub(super) enum Resolved {
    Str,
    Null,
    Bool(bool),
    Int(String),
    Float(f64),
    Timestamp,
}

pub(super) fn resolve(s: &str) -> Resolved {
    let hint = match s.as_bytes().first() {
        None => return Resolved::Null,
        Some(c) => *c,
    };
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false);
        }
        "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match hint {
        b'.' => match go_parse_float(s) {
            Some(f) => Resolved::Float(f),
            None => Resolved::Str,
        },
        b'+' | b'-' | b'0'..=b'9' => {
            if is_timestamp(s) {
                return Resolved::Timestamp;
            }
            let plain = s.replace('_', "");
            if let Some(i) = go_parse_int(&plain) {
                return Resolved::Int(i.to_string());
            }
            if let Some(u) = go_parse_uint(&plain) {
                return Resolved::Int(u.to_string());
            }
            if is_yaml_float(&plain)
                && let Some(f) = go_parse_float(&plain)
            {
                return Resolved::Float(f);
            }
            if let Some(bin) = plain.strip_prefix("0b") {
                if let Some(i) = radix_i64(bin, 2, false) {
                    return Resolved::Int(i.to_string());
                }
                if let Some(u) = radix_u64(bin, 2) {
                    return Resolved::Int(u.to_string());
                }
            } else if let Some(bin) = plain.strip_prefix("-0b")
                && let Some(i) = radix_i64(bin, 2, true)
            {
                return Resolved::Int(i.to_string());
            }
            Resolved::Str
        }
        _ => Resolved::Str,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// `strconv.ParseFloat(s, 64)` for what go-yaml hands it: decimal forms (Go also reads hex
/// floats, `inf` and `nan`, none of which reach here through [`resolve`] but `.`-led text, which
/// Go reads only in decimal form too). Out of range is an error in Go.
fn go_parse_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let ok = !body.is_empty()
        && body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'));
    if !ok {
        return None;
    }
    // Go allows underscores only with a base prefix; decimal text with `_` fails.
    if body.contains('_') {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// `strconv.ParseInt(s, 0, 64)`: base prefixes `0x`, `0o`, `0b`, a leading `0` for octal,
/// underscores only after a prefix (they are already removed here).
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (digits, radix) = base_of(body)?;
    radix_i64(digits, radix, neg)
}

fn go_parse_uint(s: &str) -> Option<u64> {
    let (digits, radix) = base_of(s)?;
    radix_u64(digits, radix)
}

fn base_of(body: &str) -> Option<(&str, u32)> {
    let lower = |p: &str| body.len() > 2 && body.as_bytes()[..2].eq_ignore_ascii_case(p.as_bytes());
    Some(if lower("0x") {
        (&body[2..], 16)
    } else if lower("0o") {
        (&body[2..], 8)
    } else if lower("0b") {
        (&body[2..], 2)
    } else if body.len() > 1 && body.starts_with('0') {
        (&body[1..], 8)
    } else {
        (body, 10)
    })
}

fn radix_u64(digits: &str, radix: u32) -> Option<u64> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn radix_i64(digits: &str, radix: u32, neg: bool) -> Option<i64> {
    let u = radix_u64(digits, radix)?;
    if neg {
        if u <= i64::MAX as u64 + 1 {
            Some((u as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

/// go-yaml v2's `parseTimestamp`: four digits and `-`, then one of `2006-1-2T15:4:5.999999999Z07:00`
/// (`t` allowed), `2006-1-2 15:4:5.999999999` or `2006-1-2`, as Go's `time.Parse` reads them.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let year = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if year != 4 || b.get(4) != Some(&b'-') {
        return false;
    }
    let mut i = 5;
    let num = |i: &mut usize, max: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
            *i += 1;
        }
        (*i > start).then(|| s[start..*i].parse().ok()).flatten()
    };
    let Some(month) = num(&mut i, 2) else {
        return false;
    };
    if b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    let Some(day) = num(&mut i, 2) else {
        return false;
    };
    let y: u32 = s[..4].parse().unwrap_or(0);
    let leap = y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day < 1 || day > days {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let zone = match b[i] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return false,
    };
    i += 1;
    let (Some(h), true) = (num(&mut i, 2), b.get(i) == Some(&b':')) else {
        return false;
    };
    i += 1;
    let (Some(m), true) = (num(&mut i, 2), b.get(i) == Some(&b':')) else {
        return false;
    };
    i += 1;
    let Some(sec) = num(&mut i, 2) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 59 {
        return false;
    }
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if !zone {
        return i == b.len();
    }
    match &b[i..] {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`: quoted on the way out (YAML 1.1's
/// base 60 floats), read as strings.
pub(super) fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(b'+' | b'-' | b'0'..=b'9')) || !s.contains(':') {
        return false;
    }
    let mut i = usize::from(matches!(b[0], b'+' | b'-'));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let n = i - start;
        if n == 0 || (n == 2 && b[start] > b'5') {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

// ---------------------------------------------------------------------------------------------
// fromYaml

/// A YAML node as go-yaml v2's decoder sees it.
#[derive(Clone)]
enum Node {
    /// The text, and whether it is resolved (plain, or tagged `!!int` and the like) or a string.
    Scalar(String, Option<String>),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// ESO's `fromYaml`.
pub fn from_yaml(src: &[u8]) -> R<Value> {
    let result = match std::str::from_utf8(src) {
        Err(_) => Err(Failure::Go(
            "error converting YAML to JSON: yaml: invalid leading UTF-8 octet".to_owned(),
        )),
        // YAML 1.1 line breaks go-yaml reads and Signet's YAML 1.2 parser does not.
        Ok(text) if text.contains(['\u{85}', '\u{2028}', '\u{2029}']) => Err(go_err(
            "yaml: Signet does not read the YAML 1.1 line breaks U+0085, U+2028 and U+2029",
        )),
        Ok(text) => parse_first_document(text).and_then(|doc| match doc {
            None => Ok(BTreeMap::new()),
            Some(node) => to_top_map(&node),
        }),
    };
    let map = match result {
        Ok(map) => map,
        Err(Failure::Limit(e)) => return Err(e),
        Err(Failure::Go(message)) => BTreeMap::from([("Error".to_owned(), str_value(message))]),
    };
    Ok(Value::Dict(Rc::new(RefCell::new(map))))
}

/// What External Secrets Operator's templating reads from a `KeysAndValues` template's output
/// (`templateFrom[].literal`): sigs.k8s.io/yaml's `Unmarshal` into a `map[string]string`, which
/// writes numbers and booleans as strings (`5432`, `true`, a float as `FormatFloat(f, 'g', -1,
/// 32)`), a null as `""`, and refuses a list or map as a value. Empty output is an empty map.
/// Unlike `fromYaml`, a failure is an error (ESO fails the template), its text Go's where Signet
/// can tell it.
pub fn string_map(src: &[u8]) -> R<BTreeMap<String, String>> {
    let text = std::str::from_utf8(src).map_err(|_| {
        "error converting YAML to JSON: yaml: invalid leading UTF-8 octet".to_owned()
    })?;
    if text.contains(['\u{85}', '\u{2028}', '\u{2029}']) {
        return Err(
            "yaml: Signet does not read the YAML 1.1 line breaks U+0085, U+2028 and U+2029"
                .to_owned(),
        );
    }
    let failure = |f: Failure| match f {
        Failure::Limit(e) | Failure::Go(e) => e,
    };
    let Some(node) = parse_first_document(text).map_err(failure)? else {
        return Ok(BTreeMap::new());
    };
    let decoded = decode(&node).map_err(failure)?;
    let entries = match decoded {
        G::Null => return Ok(BTreeMap::new()),
        G::Map(entries) => entries,
        other => {
            let kind = match other {
                G::Seq(_) => "array",
                G::Str(_) => "string",
                G::Bool(_) => "bool",
                _ => "number",
            };
            return Err(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type map[string]string"
            ));
        }
    };
    let mut out = BTreeMap::new();
    for (key, value) in entries {
        let key = match key {
            G::Str(s) => s,
            G::Int(i) => i.to_string(),
            G::Float(f) => format_float32(f),
            G::Bool(b) => b.to_string(),
            G::Uint(_) => {
                return Err(
                    "error converting YAML to JSON: unsupported map key of type: uint64".to_owned(),
                );
            }
            _ => {
                return Err(
                    "error converting YAML to JSON: unsupported map key of type: %!s(<nil>)"
                        .to_owned(),
                );
            }
        };
        let value = match value {
            G::Str(s) => s,
            G::Null => String::new(),
            G::Bool(b) => b.to_string(),
            G::Int(i) => i.to_string(),
            G::Uint(u) => u.to_string(),
            G::Float(f) if f.is_nan() => "NaN".to_owned(),
            G::Float(f) if f.is_infinite() => if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned(),
            G::Float(f) => format_float32(f),
            G::Seq(_) | G::Map(_) => {
                let kind = if matches!(value, G::Seq(_)) {
                    "array"
                } else {
                    "object"
                };
                return Err(format!(
                    "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type string"
                ));
            }
        };
        out.insert(key, value);
    }
    Ok(out)
}

enum Failure {
    /// Over one of Signet's bounds: the template fails.
    Limit(String),
    /// What Go puts in the map's `Error` entry.
    Go(String),
}

fn limit(e: impl Into<String>) -> Failure {
    Failure::Limit(e.into())
}

fn go_err(e: impl Into<String>) -> Failure {
    Failure::Go(format!("error converting YAML to JSON: {}", e.into()))
}

fn parse_first_document(text: &str) -> Result<Option<Node>, Failure> {
    let opts = granit_parser::options! {
        flow_nesting_limit: MAX_NESTING + 8,
        block_nesting_limit: MAX_NESTING + 8,
    };
    enum Open {
        Seq(Vec<Node>, usize),
        Map(Vec<(Node, Node)>, Option<Node>, usize),
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    let mut nodes = 0usize;
    let mut root = None;
    for item in Parser::new_from_str_with_options(text, opts) {
        let (event, _) = item.map_err(|e| {
            let m = e.marker();
            if e.info().contains("unknown anchor") {
                return go_err(format!(
                    "yaml: unknown anchor '{}' referenced",
                    alias_name(text, m.index())
                ));
            }
            go_err(format!("yaml: line {}: {}", m.line(), e.info()))
        })?;
        let (done, anchor, size) = match event {
            Event::DocumentEnd => {
                if root.is_some() {
                    break;
                }
                continue;
            }
            Event::Scalar(value, style, anchor, tag) => {
                let tag = match tag {
                    Some(t) if t.handle() == "tag:yaml.org,2002:" => Some(t.suffix().to_owned()),
                    // A local or unknown tag leaves the text a string.
                    Some(_) => Some("str".to_owned()),
                    None if style == ScalarStyle::Plain => None,
                    None => Some("str".to_owned()),
                };
                (Some(Node::Scalar(value.into_owned(), tag)), anchor, 1)
            }
            Event::SequenceStart(_, anchor, _) => {
                if stack.len() >= MAX_NESTING {
                    return Err(limit(format!("YAML nested more than {MAX_NESTING} deep")));
                }
                stack.push(Open::Seq(Vec::new(), anchor));
                continue;
            }
            Event::MappingStart(_, anchor, _) => {
                if stack.len() >= MAX_NESTING {
                    return Err(limit(format!("YAML nested more than {MAX_NESTING} deep")));
                }
                stack.push(Open::Map(Vec::new(), None, anchor));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq(items, anchor)) => {
                    let size = 1 + items.iter().map(count).sum::<usize>();
                    (Some(Node::Seq(items)), anchor, size)
                }
                Some(Open::Map(entries, _, anchor)) => {
                    let size = 1 + entries
                        .iter()
                        .map(|(k, v)| count(k) + count(v))
                        .sum::<usize>();
                    (Some(Node::Map(entries)), anchor, size)
                }
                None => continue,
            },
            Event::Alias(id) => {
                let Some((node, size)) = anchors.get(&id).cloned() else {
                    return Err(go_err("yaml: unknown anchor referenced"));
                };
                // A copy costs every node it holds: an alias bomb stops here.
                nodes = nodes.saturating_add(size);
                if nodes > MAX_YAML_NODES {
                    return Err(limit(format!(
                        "YAML expands to more than {MAX_YAML_NODES} nodes"
                    )));
                }
                if stack.len() + depth(&node) > MAX_NESTING {
                    return Err(limit(format!("YAML nested more than {MAX_NESTING} deep")));
                }
                (Some(node), 0, 0)
            }
            Event::UnresolvedAlias(_) => return Err(go_err("yaml: unknown anchor referenced")),
            _ => continue,
        };
        let Some(node) = done else { continue };
        if size > 0 {
            nodes = nodes.saturating_add(1);
            if nodes > MAX_YAML_NODES {
                return Err(limit(format!(
                    "YAML expands to more than {MAX_YAML_NODES} nodes"
                )));
            }
        }
        if anchor != 0 {
            anchors.insert(anchor, (node.clone(), size.max(1)));
        }
        match stack.last_mut() {
            Some(Open::Seq(items, _)) => items.push(node),
            Some(Open::Map(entries, pending, _)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => entries.push((key, node)),
            },
            None => root = Some(node),
        }
    }
    Ok(root)
}

/// The name of the alias at or after character `at` of `text`.
fn alias_name(text: &str, at: usize) -> String {
    text.chars()
        .skip(at)
        .skip_while(|&c| c != '*')
        .skip(1)
        .take_while(|&c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        .collect()
}

fn count(n: &Node) -> usize {
    match n {
        Node::Scalar(..) => 1,
        Node::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Node::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count(k) + count(v))
                .sum::<usize>()
        }
    }
}

fn depth(n: &Node) -> usize {
    match n {
        Node::Scalar(..) => 0,
        Node::Seq(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Node::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
    }
}

/// What go-yaml v2 decodes a node into, in an `interface{}`.
#[derive(Clone, Debug, PartialEq)]
enum G {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<G>),
    Map(Vec<(G, G)>),
}

/// A value `encoding/json` decodes into an `interface{}` (every number a float64).
#[derive(Debug)]
enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<J>),
    Map(BTreeMap<String, J>),
}

/// The document as sigs.k8s.io/yaml's `Unmarshal` into a `map[string]interface{}` sees it, in
/// its order of failures: go-yaml's decoding, then the conversion of keys to strings, then the
/// JSON encoding (NaN and ±Inf), then the JSON decoding into a map.
fn to_top_map(node: &Node) -> Result<BTreeMap<String, Value>, Failure> {
    let decoded = decode(node)?;
    let j = convert(&decoded)?;
    unsupported_number(&j)?;
    let kind = match j {
        J::Null => return Ok(BTreeMap::new()),
        J::Map(m) => return Ok(m.into_iter().map(|(k, v)| (k, to_value(v))).collect()),
        J::Bool(_) => "bool",
        J::Num(_) => "number",
        J::Str(_) => "string",
        J::List(_) => "array",
    };
    Err(Failure::Go(format!(
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
    )))
}

fn to_value(j: J) -> Value {
    match j {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Bool(b),
        J::Num(f) => Value::Float(f),
        J::Str(s) => str_value(s),
        J::List(l) => Value::List(Rc::new(l.into_iter().map(to_value).collect())),
        J::Map(m) => Value::Dict(Rc::new(RefCell::new(
            m.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        ))),
    }
}

/// A scalar as go-yaml v2 decodes it into an `interface{}`.
fn scalar(text: &str, tag: Option<&str>) -> Result<G, Failure> {
    let resolved = match tag {
        Some("str") => return Ok(G::Str(text.to_owned())),
        Some("binary") => {
            let data = super::sprig::base64_decode(text.as_bytes())
                .map_err(|_| go_err("yaml: !!binary value contains invalid base64 data"))?;
            return Ok(G::Str(super::sprig::text(&data)));
        }
        None => resolve(text),
        Some(t @ ("int" | "float" | "bool" | "null")) => {
            let r = resolve(text);
            let fits = matches!(
                (t, &r),
                ("int", Resolved::Int(_))
                    | ("float", Resolved::Float(_) | Resolved::Int(_))
                    | ("bool", Resolved::Bool(_))
                    | ("null", Resolved::Null)
            );
            if !fits {
                return Err(go_err(format!("yaml: cannot decode the value as !!{t}")));
            }
            if let ("float", Resolved::Int(i)) = (t, &r) {
                return Ok(G::Float(i.parse().unwrap_or(0.0)));
            }
            r
        }
        Some(_) => return Err(go_err("yaml: a tag Signet does not read")),
    };
    Ok(match resolved {
        Resolved::Str | Resolved::Timestamp => G::Str(text.to_owned()),
        Resolved::Null => G::Null,
        Resolved::Bool(b) => G::Bool(b),
        Resolved::Int(i) => match i.parse::<i64>() {
            Ok(i) => G::Int(i),
            Err(_) => G::Uint(i.parse().unwrap_or(0)),
        },
        Resolved::Float(f) => G::Float(f),
    })
}

/// go-yaml v2's decoding: scalars resolved, merges applied, a later duplicate key winning.
fn decode(node: &Node) -> Result<G, Failure> {
    Ok(match node {
        Node::Scalar(text, tag) => scalar(text, tag.as_deref())?,
        Node::Seq(items) => G::Seq(items.iter().map(decode).collect::<Result<_, _>>()?),
        Node::Map(entries) => {
            let mut map = GoMap::default();
            fill_map(entries, &mut map)?;
            G::Map(map.entries)
        }
    })
}

/// A Go map being filled: entries in order, and where each key is (a later duplicate replaces the
/// value in place; found through the index, not a scan, so a map of n keys costs n, not n²).
#[derive(Default)]
struct GoMap {
    entries: Vec<(G, G)>,
    index: HashMap<String, usize>,
}

impl GoMap {
    fn insert(&mut self, key: G, value: G) {
        // NaN is never equal to itself: each NaN key is a key of its own, as in Go.
        let nan = matches!(key, G::Float(f) if f.is_nan());
        // -0 and 0 are one key in Go.
        let id = match key {
            G::Float(0.0) => "Float(0.0)".to_owned(),
            _ => format!("{key:?}"),
        };
        match self.index.get(&id) {
            Some(&at) if !nan => self.entries[at].1 = value,
            _ => {
                self.index.insert(id, self.entries.len());
                self.entries.push((key, value));
            }
        }
    }
}

fn fill_map(entries: &[(Node, Node)], map: &mut GoMap) -> Result<(), Failure> {
    for (k, v) in entries {
        if let Node::Scalar(text, None) = k
            && text == "<<"
        {
            merge(v, map)?;
            continue;
        }
        let key = decode(k)?;
        if matches!(key, G::Seq(_) | G::Map(_)) {
            return Err(go_err("yaml: invalid map key"));
        }
        let value = decode(v)?;
        map.insert(key, value);
    }
    Ok(())
}

/// go-yaml v2's merge (`<<`): a mapping, or a sequence of mappings merged last to first, each
/// entry overwriting what is already there.
fn merge(v: &Node, map: &mut GoMap) -> Result<(), Failure> {
    let wrong = || go_err("yaml: map merge requires map or sequence of maps as the value");
    match v {
        Node::Map(entries) => fill_map(entries, map),
        Node::Seq(items) => {
            for item in items.iter().rev() {
                match item {
                    Node::Map(entries) => fill_map(entries, map)?,
                    _ => return Err(wrong()),
                }
            }
            Ok(())
        }
        Node::Scalar(..) => Err(wrong()),
    }
}

/// sigs.k8s.io/yaml's `convertToJSONableObject`: keys become strings (ints and bools written
/// out, floats with float32 precision); null and uint64 keys are refused.
fn convert(g: &G) -> Result<J, Failure> {
    Ok(match g {
        G::Null => J::Null,
        G::Bool(b) => J::Bool(*b),
        G::Int(i) => J::Num(*i as f64),
        G::Uint(u) => J::Num(*u as f64),
        G::Float(f) => J::Num(*f),
        G::Str(s) => J::Str(s.clone()),
        G::Seq(items) => J::List(items.iter().map(convert).collect::<Result<_, _>>()?),
        G::Map(entries) => {
            let mut map = BTreeMap::new();
            for (k, v) in entries {
                let key = match k {
                    G::Str(s) => s.clone(),
                    G::Int(i) => i.to_string(),
                    G::Float(f) => format_float32(*f),
                    G::Bool(b) => b.to_string(),
                    G::Uint(u) => {
                        return Err(go_err(format!(
                            "unsupported map key of type: uint64, key: {:#x}, value: {}",
                            u,
                            sharp_v(v, true)
                        )));
                    }
                    _ => {
                        return Err(go_err(format!(
                            "unsupported map key of type: %!s(<nil>), key: <nil>, value: {}",
                            sharp_v(v, true)
                        )));
                    }
                };
                map.insert(key, convert(v)?);
            }
            J::Map(map)
        }
    })
}

/// Go's `%+#v` of a decoded value (`top`: not inside a slice or map, where nil is written
/// `interface {}(nil)`); map entries in `fmt`'s order (numbers, then strings).
fn sharp_v(g: &G, top: bool) -> String {
    match g {
        G::Null if top => "<nil>".to_owned(),
        G::Null => "interface {}(nil)".to_owned(),
        G::Bool(b) => b.to_string(),
        G::Int(i) => i.to_string(),
        G::Uint(u) => format!("{u:#x}"),
        G::Float(f) => super::value::format_float_g(*f),
        G::Str(s) => super::fmt::go_quote(s.as_bytes()),
        G::Seq(items) => {
            let inner: Vec<String> = items.iter().map(|i| sharp_v(i, false)).collect();
            format!("[]interface {{}}{{{}}}", inner.join(", "))
        }
        G::Map(entries) => {
            let mut shown: Vec<(&G, String)> = entries
                .iter()
                .map(|(k, v)| (k, format!("{}:{}", sharp_v(k, false), sharp_v(v, false))))
                .collect();
            shown.sort_by(|a, b| fmt_order(a.0, b.0));
            let inner: Vec<String> = shown.into_iter().map(|(_, s)| s).collect();
            format!("map[interface {{}}]interface {{}}{{{}}}", inner.join(", "))
        }
    }
}

/// `fmt`'s order of `interface{}` map keys: by type (in the order the values first differ), then
/// by value.
fn fmt_order(a: &G, b: &G) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let rank = |g: &G| match g {
        G::Null => 0,
        G::Bool(_) => 1,
        G::Int(_) => 2,
        G::Uint(_) => 3,
        G::Float(_) => 4,
        G::Str(_) => 5,
        _ => 6,
    };
    match (a, b) {
        (G::Bool(x), G::Bool(y)) => x.cmp(y),
        (G::Int(x), G::Int(y)) => x.cmp(y),
        (G::Uint(x), G::Uint(y)) => x.cmp(y),
        (G::Float(x), G::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (G::Str(x), G::Str(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `encoding/json` refuses NaN and ±Inf (the first one in its order of writing).
fn unsupported_number(j: &J) -> Result<(), Failure> {
    match j {
        J::Num(f) if !f.is_finite() => {
            let shown = if f.is_nan() {
                "NaN"
            } else if *f > 0.0 {
                "+Inf"
            } else {
                "-Inf"
            };
            Err(go_err(format!("json: unsupported value: {shown}")))
        }
        J::List(items) => items.iter().try_for_each(unsupported_number),
        J::Map(m) => m.values().try_for_each(unsupported_number),
        _ => Ok(()),
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 32)`.
fn format_float32(f: f64) -> String {
    let g = f as f32;
    if g.is_nan() {
        return ".nan".to_owned();
    }
    if g.is_infinite() {
        return if g > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    if g == 0.0 {
        return if g.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let e = format!("{:e}", g.abs());
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    super::value::float_text(g < 0.0, &digits, exp, !(-4..6).contains(&exp))
}

#[cfg(test)]
mod string_map_tests {
    use super::string_map;

    #[test]
    fn scalars_become_strings_as_sigs_yaml_writes_them_into_a_string_map() {
        let map = string_map(
            b"user: admin\nport: 5432\nhex: 0x1F\non: yes\nratio: 0.5\nbig: 1e3\nnothing: ~\n\"quoted\": '007'\n",
        )
        .unwrap();
        let got: Vec<(&str, &str)> = map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("big", "1000"),
                ("hex", "31"),
                ("nothing", ""),
                ("port", "5432"),
                ("quoted", "007"),
                ("ratio", "0.5"),
                ("true", "true"),
                ("user", "admin"),
            ]
        );
        assert!(string_map(b"").unwrap().is_empty());
        assert!(string_map(b"# only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn lists_maps_and_non_maps_are_refused() {
        let err = string_map(b"a: [1, 2]\n").unwrap_err();
        assert!(
            err.ends_with("cannot unmarshal array into Go value of type string"),
            "{err}"
        );
        let err = string_map(b"a: {b: c}\n").unwrap_err();
        assert!(
            err.ends_with("cannot unmarshal object into Go value of type string"),
            "{err}"
        );
        let err = string_map(b"just text").unwrap_err();
        assert!(
            err.contains("cannot unmarshal string into Go value of type map[string]string"),
            "{err}"
        );
        let err = string_map(b"a: [\n").unwrap_err();
        assert!(
            err.starts_with("error converting YAML to JSON: yaml: line"),
            "{err}"
        );
    }
}
