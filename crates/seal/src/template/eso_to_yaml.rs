//! External Secrets Operator's `toYaml` (v0.16.2, `pkg/template/v2/yaml.go`), byte for byte:
//! sigs.k8s.io/yaml v1.4.0's `Marshal`, that is `encoding/json`, then go-yaml v2.4.0's decoder
//! (which picks ints and floats back out of the JSON numbers), then go-yaml's emitter (YAML 1.1
//! quoting of `yes`/`on`/`1e3`, lines folded at 80 columns, keys in go-yaml's "natural" order),
//! less one trailing newline. It never fails where Go does not: Go returns `""` on an encoding
//! error (NaN, a string go-yaml cannot read back). Its output holds at most
//! [`MAX_RENDERED_BYTES`](super::MAX_RENDERED_BYTES) bytes.

use super::eso_yaml::{Resolved, is_base60_float, resolve};
use super::value::{MAX_NESTING, Value, format_float, str_value};
use std::collections::BTreeMap;

type R<T> = Result<T, String>;

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
        // encoding/json writes a time as its RFC 3339 string (no escapes); a year it cannot
        // write fails the whole encoding.
        // A `*semver.Version` encodes as its String().
        Value::Semver(v) => match through_json(&super::sprig::text(&v.to_bytes())) {
            Some(s) => Y::Str(s),
            None => return Ok(None),
        },
        Value::Time(t) => match t.to_json() {
            Ok(json) => Y::Str(String::from_utf8_lossy(&json).trim_matches('"').to_owned()),
            Err(_) => return Ok(None),
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
