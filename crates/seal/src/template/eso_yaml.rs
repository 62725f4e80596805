//! External Secrets Operator's `toYaml` and `fromYaml` (v0.16.2, `pkg/template/v2/yaml.go`), byte
//! for byte: both go through sigs.k8s.io/yaml v1.4.0, which converts between JSON and YAML with
//! its copy of go-yaml v2.4.0. `toYaml` is `encoding/json`, then go-yaml's decoder (which picks
//! ints and floats back out of the JSON numbers), then go-yaml's emitter (YAML 1.1 quoting of
//! `yes`/`on`/`1e3`, lines folded at 80 columns, keys in go-yaml's "natural" order), less one
//! trailing newline; it never fails (Go returns `""` on an encoding error). `fromYaml` reads the
//! first document with go-yaml's YAML 1.1 scalar rules, turns it into JSON and decodes that into a
//! `map[string]interface{}` (every number a float64); a failure gives a map holding only an
//! `Error` entry, whose wording is Go's where Signet can tell it (a top level that is not a
//! mapping, a number JSON cannot hold, a bad merge) and Signet's own for a syntax error.
//!
//! Bounds: `fromYaml` builds at most [`MAX_YAML_NODES`] nodes (aliases count every node they
//! copy, so an alias bomb stops early) nested at most [`MAX_NESTING`] deep; both functions write
//! at most [`MAX_RENDERED_BYTES`](super::MAX_RENDERED_BYTES) bytes. Going over is a template error.

use super::value::{MAX_NESTING, Value, format_float, str_value};
use granit_parser::{Event, Parser, ScalarStyle};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

type R<T> = Result<T, String>;

/// Most nodes `fromYaml` builds from one document, aliases' copies included.
pub const MAX_YAML_NODES: usize = super::MAX_LIST_LEN;

/// What go-yaml's decoder makes of JSON text (and of YAML): the values the emitter writes.
#[derive(Clone, Debug)]
enum Y {
    Null,
    Bool(bool),
    /// An int, int64 or uint64, as its decimal text.
    Int(String),
    Float(f64),
    Str(String),
    Seq(Vec<Y>),
    Map(Vec<(Y, Y)>),
}

// ---------------------------------------------------------------------------------------------
// go-yaml v2's scalar resolution (resolve.go)

/// What a plain scalar means to go-yaml v2 (YAML 1.1): `y`, `on`, `No` are booleans, `0x1F`,
/// `0777`, `1_000`, `0b101` integers, `1e3` a float, `2024-01-02` a timestamp (a string when
/// decoded into an `interface{}`).
#[derive(Debug, PartialEq)]
enum Resolved {
    Str,
    Null,
    Bool(bool),
    Int(String),
    Float(f64),
    Timestamp,
}

fn resolve(s: &str) -> Resolved {
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
fn is_base60_float(s: &str) -> bool {
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
// toYaml

/// ESO's `toYaml`: `None` where Go swallows an encoding error and returns `""` (NaN or ±Inf).
pub fn to_yaml(v: &Value) -> R<Value> {
    let Some(y) = json_view(v, 0)? else {
        return Ok(str_value(Vec::new()));
    };
    let mut e = Emitter::default();
    e.node(&y, Ctx::default())?;
    e.indent = -1;
    e.write_indent();
    let mut out = e.out;
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    e.out = Vec::new();
    super::sprig::bound_bytes(out.len())?;
    Ok(str_value(out))
}

/// The value as go-yaml decodes its `encoding/json` text; `None` when the JSON encoding fails.
fn json_view(v: &Value, depth: usize) -> R<Option<Y>> {
    if depth > MAX_NESTING {
        return Err(format!("value nested more than {MAX_NESTING} deep"));
    }
    Ok(Some(match v {
        Value::Missing | Value::Nil => Y::Null,
        Value::Bool(b) => Y::Bool(*b),
        Value::Int(i) | Value::Int64(i) => Y::Int(i.to_string()),
        Value::Float(f) => {
            if !f.is_finite() {
                return Ok(None);
            }
            // The JSON text, read back as go-yaml reads a plain scalar.
            let mut json = Vec::new();
            super::sprig::to_json_value(v, &mut json)?;
            match resolve(&String::from_utf8_lossy(&json)) {
                Resolved::Int(i) => Y::Int(i),
                Resolved::Float(f) => Y::Float(f),
                _ => Y::Float(*f),
            }
        }
        Value::Str(s) => match through_json(&super::sprig::text(s)) {
            Some(s) => Y::Str(s),
            None => return Ok(None),
        },
        Value::List(l) => {
            let mut items = Vec::with_capacity(l.len());
            for item in l.iter() {
                match json_view(item, depth + 1)? {
                    Some(y) => items.push(y),
                    None => return Ok(None),
                }
            }
            Y::Seq(items)
        }
        Value::Strings(l) => {
            let mut items = Vec::with_capacity(l.len());
            for s in l.iter() {
                match through_json(&super::sprig::text(s)) {
                    Some(s) => items.push(Y::Str(s)),
                    None => return Ok(None),
                }
            }
            Y::Seq(items)
        }
        Value::Dict(d) => {
            let mut entries = BTreeMap::new();
            for (k, item) in d.borrow().iter() {
                match (json_key(k), json_view(item, depth + 1)?) {
                    (Some(k), Some(y)) => entries.insert(k, y),
                    _ => return Ok(None),
                };
            }
            Y::Map(sort_keys(entries))
        }
        Value::StrMap(d) => {
            let mut entries = BTreeMap::new();
            for (k, s) in d.iter() {
                match (json_key(k), through_json(&super::sprig::text(s))) {
                    (Some(k), Some(s)) => entries.insert(k, Y::Str(s)),
                    _ => return Ok(None),
                };
            }
            Y::Map(sort_keys(entries))
        }
    }))
}

/// A map key as go-yaml reads it back from `encoding/json`'s text: `None` (go-yaml fails, `toYaml`
/// gives `""`) when it spans lines (a NEL) or its JSON text is longer than the 1024 characters
/// libyaml allows a simple key.
fn json_key(k: &str) -> Option<String> {
    if k.contains('\u{85}') {
        return None;
    }
    let mut json = Vec::new();
    super::sprig::to_json_value(&str_value(k.as_bytes().to_vec()), &mut json).ok()?;
    if String::from_utf8_lossy(&json).chars().count() > 1024 {
        return None;
    }
    through_json(k)
}

/// A string as go-yaml reads it back from `encoding/json`'s text of it. JSON escapes every control
/// character below U+0020 and U+2028/U+2029, but writes DEL, the C1 controls and U+FFFE/U+FFFF as
/// they are: go-yaml refuses those ("control characters are not allowed"; `None`, and `toYaml`
/// gives `""`). It also writes NEL (U+0085) as is, which go-yaml takes for a line break inside the
/// quoted scalar and folds (with the spaces around it) into one space, or into `n - 1` newlines
/// for `n` breaks in a row; `---` or `...` right after a NEL is a document marker it refuses.
fn through_json(s: &str) -> Option<String> {
    let allowed = |c: char| {
        matches!(c, '\0'..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
            || c >= '\u{10000}'
    };
    if !s.chars().all(allowed) {
        return None;
    }
    if !s.contains('\u{85}') {
        return Some(s.to_owned());
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != ' ' && chars[i] != '\u{85}' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A run of spaces and breaks: spaces alone stay; with breaks, the first folds.
        let start = i;
        let mut breaks = 0;
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\u{85}') {
            breaks += usize::from(chars[i] == '\u{85}');
            i += 1;
        }
        if breaks == 0 {
            out.extend(&chars[start..i]);
            continue;
        }
        if chars[i - 1] == '\u{85}' {
            let marker = chars[i..].starts_with(&['-', '-', '-'])
                || chars[i..].starts_with(&['.', '.', '.']);
            if marker && matches!(chars.get(i + 3), Some(' ' | '\u{85}')) {
                return None;
            }
        }
        if breaks == 1 {
            out.push(' ');
        } else {
            out.extend(std::iter::repeat_n('\n', breaks - 1));
        }
    }
    Some(out)
}

/// go-yaml v2 writes map keys in its "natural" order: runs of digits compare as numbers, letters
/// before other characters. A merge sort: it never panics, whatever the comparison does.
fn sort_keys(entries: BTreeMap<String, Y>) -> Vec<(Y, Y)> {
    let mut entries: Vec<(Y, Y)> = entries.into_iter().map(|(k, v)| (Y::Str(k), v)).collect();
    let key = |e: &(Y, Y)| match &e.0 {
        Y::Str(s) => s.chars().collect::<Vec<char>>(),
        _ => Vec::new(),
    };
    let keys: Vec<Vec<char>> = entries.iter().map(key).collect();
    let mut order: Vec<usize> = (0..entries.len()).collect();
    merge_sort(&mut order, &|a, b| natural_less(&keys[*a], &keys[*b]));
    let mut slots: Vec<Option<(Y, Y)>> = entries.drain(..).map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

fn merge_sort<T: Copy>(v: &mut [T], less: &dyn Fn(&T, &T) -> bool) {
    if v.len() <= 1 {
        return;
    }
    let mid = v.len() / 2;
    merge_sort(&mut v[..mid], less);
    merge_sort(&mut v[mid..], less);
    let mut merged = Vec::with_capacity(v.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < v.len() {
        if less(&v[j], &v[i]) {
            merged.push(v[j]);
            j += 1;
        } else {
            merged.push(v[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&v[i..mid]);
    merged.extend_from_slice(&v[j..]);
    v.copy_from_slice(&merged);
}

/// go-yaml v2's `keyList.Less` for two string keys.
fn natural_less(a: &[char], b: &[char]) -> bool {
    let digit = |c: char| c.is_ascii_digit();
    for i in 0..a.len().min(b.len()) {
        if a[i] == b[i] {
            continue;
        }
        let (al, bl) = (a[i].is_alphabetic(), b[i].is_alphabetic());
        if al && bl {
            return a[i] < b[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if a[i] == '0' || b[i] == '0' {
            let mut j = i;
            while j > 0 && digit(a[j - 1]) {
                j -= 1;
                if a[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < a.len() && digit(a[ai]) {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(a[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < b.len() && digit(b[bi]) {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(b[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return a[i] < b[i];
    }
    a.len() < b.len()
}

/// Where a node is written (libyaml's emitter contexts).
#[derive(Clone, Copy, Default)]
struct Ctx {
    mapping: bool,
    simple_key: bool,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// go-yaml v2's emitter (a port of libyaml's) for block collections of scalars: indent 2, lines
/// folded past 80 columns, Unicode written as is where printable.
struct Emitter {
    out: Vec<u8>,
    column: usize,
    indent: i64,
    whitespace: bool,
    indention: bool,
}

impl Default for Emitter {
    fn default() -> Self {
        Emitter {
            out: Vec::new(),
            column: 0,
            indent: -1,
            whitespace: true,
            indention: true,
        }
    }
}

const BEST_WIDTH: usize = 80;
const BEST_INDENT: i64 = 2;

/// What libyaml's `analyze_scalar` finds in a scalar.
struct Analysis {
    multiline: bool,
    block_plain: bool,
    single: bool,
    block: bool,
}

fn char_width(b: u8) -> usize {
    match b {
        _ if b & 0x80 == 0 => 1,
        _ if b & 0xE0 == 0xC0 => 2,
        _ if b & 0xF0 == 0xE0 => 3,
        _ => 4,
    }
}

fn at(v: &[u8], i: usize) -> u8 {
    v.get(i).copied().unwrap_or(0)
}

fn is_printable(v: &[u8], i: usize) -> bool {
    let (b0, b1, b2) = (at(v, i), at(v, i + 1), at(v, i + 2));
    b0 == 0x0A
        || (0x20..=0x7E).contains(&b0)
        || (b0 == 0xC2 && b1 >= 0xA0)
        || (b0 > 0xC2 && b0 < 0xED)
        || (b0 == 0xED && b1 < 0xA0)
        || b0 == 0xEE
        || (b0 == 0xEF
            && !(b1 == 0xBB && b2 == 0xBF)
            && !(b1 == 0xBF && (b2 == 0xBE || b2 == 0xBF)))
}

fn is_break(v: &[u8], i: usize) -> bool {
    let (b0, b1, b2) = (at(v, i), at(v, i + 1), at(v, i + 2));
    b0 == b'\r'
        || b0 == b'\n'
        || (b0 == 0xC2 && b1 == 0x85)
        || (b0 == 0xE2 && b1 == 0x80 && (b2 == 0xA8 || b2 == 0xA9))
}

fn is_blankz(v: &[u8], i: usize) -> bool {
    i >= v.len() || matches!(v[i], b' ' | b'\t' | 0) || is_break(v, i)
}

fn analyze(v: &[u8]) -> Analysis {
    if v.is_empty() {
        return Analysis {
            multiline: false,
            block_plain: true,
            single: true,
            block: false,
        };
    }
    let mut block_ind = v.starts_with(b"---") || v.starts_with(b"...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_by_ws = true;
    let mut i = 0;
    while i < v.len() {
        let w = char_width(v[i]);
        let followed_by_ws = i + w >= v.len() || matches!(v[i + w], b' ' | b'\t');
        let c = v[i];
        if i == 0 {
            match c {
                b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>'
                | b'\'' | b'"' | b'%' | b'@' | b'`' => block_ind = true,
                b'?' | b':' if followed_by_ws => block_ind = true,
                b'-' if followed_by_ws => block_ind = true,
                _ => {}
            }
        } else {
            match c {
                b':' if followed_by_ws => block_ind = true,
                b'#' if preceded_by_ws => block_ind = true,
                _ => {}
            }
        }
        if !is_printable(v, i) {
            special = true;
        }
        if c == b' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + w == v.len() {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(v, i) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + w == v.len() {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_blankz(v, i);
        i += w;
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain: true,
        single: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.block_plain = false;
        a.single = false;
    }
    if space_break || special {
        a.block_plain = false;
        a.single = false;
        a.block = false;
    }
    if line_breaks || block_ind {
        a.block_plain = false;
    }
    a
}

impl Emitter {
    fn put(&mut self, b: u8) {
        self.out.push(b);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push(b'\n');
        self.column = 0;
    }

    /// Copies the character at `*i`.
    fn write(&mut self, v: &[u8], i: &mut usize) {
        let w = char_width(v[*i]).min(v.len() - *i);
        self.out.extend_from_slice(&v[*i..*i + w]);
        self.column += 1;
        *i += w;
    }

    fn write_break(&mut self, v: &[u8], i: &mut usize) {
        if v[*i] == b'\n' {
            self.put_break();
            *i += 1;
        } else {
            self.write(v, i);
            self.column = 0;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(b' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn indicator(&mut self, ind: &[u8], need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(b' ');
        }
        let mut i = 0;
        while i < ind.len() {
            self.write(ind, &mut i);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn check_size(&self) -> R<()> {
        super::sprig::bound_bytes(self.out.len())
    }

    fn node(&mut self, y: &Y, ctx: Ctx) -> R<()> {
        self.check_size()?;
        match y {
            Y::Null => self.scalar(b"null", Style::Plain, ctx),
            Y::Bool(b) => self.scalar(if *b { b"true" } else { b"false" }, Style::Plain, ctx),
            Y::Int(i) => self.scalar(i.as_bytes(), Style::Plain, ctx),
            Y::Float(f) => {
                let t = match format_float(*f, 6).as_str() {
                    "+Inf" => ".inf".to_owned(),
                    "-Inf" => "-.inf".to_owned(),
                    "NaN" => ".nan".to_owned(),
                    t => t.to_owned(),
                };
                self.scalar(t.as_bytes(), Style::Plain, ctx)
            }
            Y::Str(s) => {
                let plain = resolve(s) == Resolved::Str && !is_base60_float(s);
                let style = if s.contains('\n') {
                    Style::Literal
                } else if plain {
                    Style::Plain
                } else {
                    Style::Double
                };
                self.scalar(s.as_bytes(), style, ctx)
            }
            Y::Seq(items) if items.is_empty() => {
                self.indicator(b"[", true, true, false);
                self.indicator(b"]", false, false, false);
                Ok(())
            }
            Y::Map(entries) if entries.is_empty() => {
                self.indicator(b"{", true, true, false);
                self.indicator(b"}", false, false, false);
                Ok(())
            }
            Y::Seq(items) => {
                let saved = self.indent;
                let indentless = ctx.mapping && !self.indention;
                self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.indicator(b"-", true, false, true);
                    self.node(item, Ctx::default())?;
                }
                self.indent = saved;
                Ok(())
            }
            Y::Map(entries) => {
                let saved = self.indent;
                self.increase_indent(false, false);
                let as_key = Ctx {
                    mapping: true,
                    simple_key: true,
                };
                let as_value = Ctx {
                    mapping: true,
                    simple_key: false,
                };
                for (k, v) in entries {
                    self.write_indent();
                    if simple_key(k) {
                        self.node(k, as_key)?;
                        self.indicator(b":", false, false, false);
                    } else {
                        self.indicator(b"?", true, false, true);
                        self.node(k, as_value)?;
                        self.write_indent();
                        self.indicator(b":", true, false, true);
                    }
                    self.node(v, as_value)?;
                }
                self.indent = saved;
                Ok(())
            }
        }
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn scalar(&mut self, v: &[u8], style: Style, ctx: Ctx) -> R<()> {
        let a = analyze(v);
        let mut style = style;
        if ctx.simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.block_plain || (v.is_empty() && ctx.simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block || ctx.simple_key) {
            style = Style::Double;
        }
        let saved = self.indent;
        self.increase_indent(true, false);
        let breaks = !ctx.simple_key;
        match style {
            Style::Plain => self.plain(v, breaks),
            Style::Single => self.single(v, breaks),
            Style::Double => self.double(v, breaks),
            Style::Literal => self.literal(v),
        }
        self.indent = saved;
        self.check_size()
    }

    fn plain(&mut self, v: &[u8], allow_breaks: bool) {
        if !self.whitespace {
            self.put(b' ');
        }
        let (mut spaces, mut breaks) = (false, false);
        let mut i = 0;
        while i < v.len() {
            if v[i] == b' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && at(v, i + 1) != b' ' {
                    self.write_indent();
                    i += 1;
                } else {
                    self.write(v, &mut i);
                }
                spaces = true;
            } else if is_break(v, i) {
                if !breaks && v[i] == b'\n' {
                    self.put_break();
                }
                self.write_break(v, &mut i);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.write(v, &mut i);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn single(&mut self, v: &[u8], allow_breaks: bool) {
        self.indicator(b"'", true, false, false);
        let (mut spaces, mut breaks) = (false, false);
        let mut i = 0;
        while i < v.len() {
            if v[i] == b' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i < v.len() - 1
                    && at(v, i + 1) != b' '
                {
                    self.write_indent();
                    i += 1;
                } else {
                    self.write(v, &mut i);
                }
                spaces = true;
            } else if is_break(v, i) {
                if !breaks && v[i] == b'\n' {
                    self.put_break();
                }
                self.write_break(v, &mut i);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if v[i] == b'\'' {
                    self.put(b'\'');
                }
                self.write(v, &mut i);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.indicator(b"'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn double(&mut self, v: &[u8], allow_breaks: bool) {
        self.indicator(b"\"", true, false, false);
        let bom = v.starts_with(b"\xEF\xBB\xBF");
        let mut spaces = false;
        let mut i = 0;
        while i < v.len() {
            if !is_printable(v, i) || bom || is_break(v, i) || v[i] == b'"' || v[i] == b'\\' {
                let w = char_width(v[i]).min(v.len() - i);
                let c = std::str::from_utf8(&v[i..i + w])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .map_or(u32::from(v[i]), u32::from);
                i += w;
                self.put(b'\\');
                let short = match c {
                    0x00 => Some(b'0'),
                    0x07 => Some(b'a'),
                    0x08 => Some(b'b'),
                    0x09 => Some(b't'),
                    0x0A => Some(b'n'),
                    0x0B => Some(b'v'),
                    0x0C => Some(b'f'),
                    0x0D => Some(b'r'),
                    0x1B => Some(b'e'),
                    0x22 => Some(b'"'),
                    0x5C => Some(b'\\'),
                    0x85 => Some(b'N'),
                    0xA0 => Some(b'_'),
                    0x2028 => Some(b'L'),
                    0x2029 => Some(b'P'),
                    _ => None,
                };
                match short {
                    Some(s) => self.put(s),
                    None => {
                        let (letter, digits) = if c <= 0xFF {
                            (b'x', 2)
                        } else if c <= 0xFFFF {
                            (b'u', 4)
                        } else {
                            (b'U', 8)
                        };
                        self.put(letter);
                        for k in (0..digits).rev() {
                            let d = ((c >> (k * 4)) & 0xF) as u8;
                            self.put(if d < 10 { b'0' + d } else { b'A' + d - 10 });
                        }
                    }
                }
                spaces = false;
            } else if v[i] == b' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i < v.len() - 1 {
                    self.write_indent();
                    if at(v, i + 1) == b' ' {
                        self.put(b'\\');
                    }
                    i += 1;
                } else {
                    self.write(v, &mut i);
                }
                spaces = true;
            } else {
                self.write(v, &mut i);
                spaces = false;
            }
        }
        self.indicator(b"\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn literal(&mut self, v: &[u8]) {
        self.indicator(b"|", true, false, false);
        if v.first() == Some(&b' ') || is_break(v, 0) {
            self.indicator(b"2", false, false, false);
        }
        // Chomping: `-` without a final break, `+` with more than one.
        let mut chomp = None;
        if v.is_empty() {
            chomp = Some(b'-');
        } else {
            let mut i = v.len() - 1;
            while i > 0 && v[i] & 0xC0 == 0x80 {
                i -= 1;
            }
            if !is_break(v, i) {
                chomp = Some(b'-');
            } else if i == 0 {
                chomp = Some(b'+');
            } else {
                i -= 1;
                while i > 0 && v[i] & 0xC0 == 0x80 {
                    i -= 1;
                }
                if is_break(v, i) {
                    chomp = Some(b'+');
                }
            }
        }
        if let Some(c) = chomp {
            self.indicator(&[c], false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        let mut i = 0;
        while i < v.len() {
            if is_break(v, i) {
                self.write_break(v, &mut i);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.write(v, &mut i);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// libyaml writes a key as `key:` unless it spans lines or is longer than 128 bytes (then `? key`).
fn simple_key(k: &Y) -> bool {
    match k {
        Y::Str(s) => !analyze(s.as_bytes()).multiline && s.len() <= 128,
        Y::Seq(v) => v.is_empty(),
        Y::Map(v) => v.is_empty(),
        _ => true,
    }
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
    let sign = if g < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    if exp < 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else if exp + 1 >= n {
        format!("{sign}{digits}{}", "0".repeat((exp + 1 - n) as usize))
    } else {
        let (int, frac) = digits.split_at((exp + 1) as usize);
        format!("{sign}{int}.{frac}")
    }
}
