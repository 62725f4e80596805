//! Rendering scalars and whole trees the way Go's yaml.v3 (and therefore sops) writes them:
//! plain when that reads back as the same string, double quotes when the text would resolve to
//! another type (`"123"`, `"yes"`), single quotes when only indicators or edge spaces forbid plain
//! (`' lead'`, `'a: b'`), literal blocks (`|`, `|-`, `|+`) for multi-line strings, `#text` comments,
//! maps and sequences indented by the store's `indent` with sequences nested under their key.

use std::borrow::Cow;

use base64::Engine as _;

use super::resolve::{format_float, resolves_to_str};
use crate::tree::{Comment, Map, MapEntry, Node, Scalar, ScalarStyle, Seq, SeqItem, Value};

/// What the libyaml emitter (inside yaml.v3) finds out about a string before choosing its style.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Analysis {
    pub flow_plain: bool,
    pub block_plain: bool,
    pub single: bool,
    pub block: bool,
    pub multiline: bool,
}

fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x0A | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && c != '\u{FEFF}'
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Whether `value` is a string that may hold a line break ([`analyze_at`] would call it
/// multiline): the only values a block style can be chosen for. Two word-at-a-time scans,
/// conservative (any non-ASCII text may hold `\u{85}`, `\u{2028}` or `\u{2029}`); a byte loop
/// testing three conditions cost more than what it saves.
pub(crate) fn may_be_multiline(value: &Value) -> bool {
    matches!(value, Value::Str(s)
        if !s.is_ascii() || memchr::memchr2(b'\n', b'\r', s.as_bytes()).is_some())
}

fn is_blankz(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == ' ' || c == '\t' || is_break(c),
    }
}

/// [`FAST_CLASS`] bit: the byte is not printable ASCII other than space (`0x21..=0x7E`).
const NOT_GRAPHIC: u8 = 1;
/// [`FAST_CLASS`] bit: the byte is a flow indicator when it is not the first (`,?[]{}:`).
const FLOW_INDICATOR: u8 = 2;
/// The class bits of every byte, for [`analyze_at`]'s fast path.
static FAST_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if !(c >= 0x21 && c <= 0x7E) {
            table[i] |= NOT_GRAPHIC;
        }
        if matches!(c, b',' | b'?' | b'[' | b']' | b'{' | b'}' | b':') {
            table[i] |= FLOW_INDICATOR;
        }
        i += 1;
    }
    table
};

/// libyaml's `yaml_emitter_analyze_scalar` as modified by yaml.v3 (tabs forbid plain and single).
pub(crate) fn analyze(s: &str) -> Analysis {
    analyze_at(s, true)
}

/// [`analyze`], where `line_start` says whether the scalar may begin a line (only there do `---`
/// and `...` read as document markers; libyaml assumes it always may).
pub(crate) fn analyze_at(s: &str, line_start: bool) -> Analysis {
    if s.is_empty() {
        return Analysis {
            flow_plain: false,
            block_plain: true,
            single: true,
            block: false,
            multiline: false,
        };
    }
    let mut flow_ind = false;
    let mut block_ind = false;
    if line_start && (s.starts_with("---") || s.starts_with("...")) {
        flow_ind = true;
        block_ind = true;
    }
    // Fast path (ENC values, most words): printable ASCII without blanks. Only indicators matter.
    // One branch-free pass over the bytes after the first gathers both facts.
    let b = s.as_bytes();
    let rest = b[1..]
        .iter()
        .fold(0u8, |acc, &c| acc | FAST_CLASS[usize::from(c)]);
    if (FAST_CLASS[usize::from(b[0])] | rest) & NOT_GRAPHIC == 0 {
        match b[0] {
            b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
            | b'"' | b'%' | b'@' | b'`' => {
                flow_ind = true;
                block_ind = true;
            }
            b'?' | b':' | b'-' if b.len() == 1 => {
                flow_ind = true;
                block_ind = true;
            }
            b'?' | b':' => flow_ind = true,
            _ => {}
        }
        if rest & FLOW_INDICATOR != 0 {
            flow_ind = true;
        }
        // `:` at the end is followed by "whitespace" (the end of the scalar).
        if b.len() > 1 && b[b.len() - 1] == b':' {
            block_ind = true;
        }
        return Analysis {
            flow_plain: !flow_ind,
            block_plain: !block_ind,
            single: true,
            block: true,
            multiline: false,
        };
    }
    let mut chars = s.chars().peekable();
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut prev_space, mut prev_break) =
        (false, false, false, false);
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let mut preceded_by_ws = true;
    let mut i = 0usize;
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let last = next.is_none();
        let followed_by_ws = is_blankz(next);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    flow_ind = true;
                    block_ind = true;
                }
                '?' | ':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                '-' if followed_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => flow_ind = true,
                ':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                '#' if preceded_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !is_printable(c) {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if last {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            if i == 0 {
                leading_break = true;
            }
            if last {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_break = true;
            prev_space = false;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_blankz(Some(c));
        i += 1;
    }
    let mut a = Analysis {
        flow_plain: true,
        block_plain: true,
        single: true,
        block: true,
        multiline: line_breaks,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.flow_plain = false;
        a.block_plain = false;
        a.single = false;
    }
    if space_break || tabs || special {
        a.flow_plain = false;
        a.block_plain = false;
        a.single = false;
    }
    if space_break || special {
        a.block = false;
    }
    if line_breaks {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if flow_ind {
        a.flow_plain = false;
    }
    if block_ind {
        a.block_plain = false;
    }
    a
}

/// YAML 1.1 booleans that yaml.v3 still quotes on output so old readers keep them strings.
fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// yaml.v3's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() && i - st < 2 {
            i += 1;
        }
        let g = &b[st..i];
        let ok = match g.len() {
            1 => true,
            2 => g[0] <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// Whether a string must be quoted because plain it would read back as something else.
/// Whether `s` can be written as a plain scalar in block context (not at a line start).
pub(crate) fn plain_in_block(s: &str) -> bool {
    !s.is_empty() && analyze_at(s, false).block_plain && !needs_type_quotes(s)
}

/// libyaml's line folding of a plain scalar (yaml.v2 and kubebuilder output, width 80): a space
/// becomes a line break when the column has passed 80 and the next character is not a space;
/// continuation lines start at `indent`. `column` is where the scalar starts.
pub(crate) fn wrap_plain(s: &str, column: usize, indent: usize) -> String {
    const BEST_WIDTH: usize = 80;
    let mut out = String::with_capacity(s.len() + 16);
    let mut col = column;
    let mut spaces = false;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if !spaces && col > BEST_WIDTH && chars.get(i + 1).is_some_and(|&n| n != ' ') {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', indent));
                col = indent;
            } else {
                out.push(' ');
                col += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            col += 1;
            spaces = false;
        }
    }
    out
}

fn needs_type_quotes(s: &str) -> bool {
    !resolves_to_str(s) || is_old_bool(s) || is_base60_float(s)
}

/// `"…"` with YAML escapes (libyaml's set: `\0 \a \b \t \n \v \f \r \e \" \\ \N \_ \L \P`, then
/// `\xXX`, `\uXXXX`, `\UXXXXXXXX` for other non-printable characters).
pub(crate) fn double_quoted(s: &str) -> String {
    if s.bytes()
        .all(|c| (0x20..=0x7E).contains(&c) && c != b'"' && c != b'\\')
    {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return out;
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !is_printable(c) => {
                let v = c as u32;
                if v <= 0xFF {
                    out.push_str(&format!("\\x{v:02X}"));
                } else if v <= 0xFFFF {
                    out.push_str(&format!("\\u{v:04X}"));
                } else {
                    out.push_str(&format!("\\U{v:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `'…'` with `''` for a quote. Only valid when [`Analysis::single`] holds.
pub(crate) fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A literal (`|`) or folded (`>`) block: header, then the lines at `content_indent`, without the
/// final line break (the caller's layout supplies it). `trailing_blank_lines` is how many empty
/// lines already follow in the surrounding text (they count for `+` chomping).
pub(crate) fn block_scalar(
    s: &str,
    indicator: char,
    content_indent: usize,
    parent_indent: usize,
    trailing_blank_lines: usize,
) -> String {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let mut out = String::with_capacity(s.len() + 16 + content_indent * 4);
    out.push(indicator);
    // Without an indicator the indentation is taken from the first line, which must then not
    // start with a blank (yaml.v3: "found a tab character where an indentation space is expected").
    if s.starts_with([' ', '\t', '\n']) {
        out.push_str(
            &content_indent
                .saturating_sub(parent_indent)
                .clamp(1, 9)
                .to_string(),
        );
    }
    // Clip keeps one final line break only after content: a value of line breaks only keeps.
    match trailing {
        0 => out.push('-'),
        1 if !body.is_empty() => {}
        _ => out.push('+'),
    }
    let pad = " ".repeat(content_indent);
    if !body.is_empty() || trailing > 0 {
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
                out.push_str(line);
            }
        }
    }
    if trailing > 1 {
        for _ in trailing_blank_lines..trailing - 1 {
            out.push('\n');
        }
    }
    out
}

/// Whether `s` can be written as a block scalar at all.
pub(crate) fn block_allowed(s: &str) -> bool {
    let a = analyze(s);
    a.block && !s.is_empty()
}

/// Where a scalar is written, which limits its possible styles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    /// Inside `[…]` or `{…}`.
    pub flow: bool,
    /// A mapping key (no block styles).
    pub key: bool,
    /// A block scalar may be started here (nothing else follows on the line).
    pub block_ok: bool,
    /// Indentation of block scalar content.
    pub content_indent: usize,
    /// Indentation of the node holding the scalar (block indentation indicators count from it).
    pub parent_indent: usize,
}

/// Renders a scalar value, honouring `want` (the style it had in the source) where that is valid
/// for the value, else choosing as yaml.v3 would.
pub(crate) fn render_scalar(value: &Value, want: ScalarStyle, place: Place) -> String {
    render_scalar_cow(value, want, place).into_owned()
}

/// [`render_scalar`], borrowing a string that is written as it is (plain).
pub(crate) fn render_scalar_cow(value: &Value, want: ScalarStyle, place: Place) -> Cow<'_, str> {
    let s = match value {
        Value::Str(s) => s,
        Value::Null => return "null".into(),
        Value::Bool(b) => return if *b { "true".into() } else { "false".into() },
        Value::Int(i) => return i.as_str().into(),
        Value::Float(f) => return format_float(*f).into(),
        Value::Time(t) => return t.as_str().into(),
        Value::Bytes(b) => {
            return format!(
                "!!binary {}",
                base64::engine::general_purpose::STANDARD.encode(b)
            )
            .into();
        }
    };
    let a = analyze_at(s, place.key);
    match want {
        ScalarStyle::DoubleQuoted => double_quoted(s).into(),
        ScalarStyle::SingleQuoted if a.single && !a.multiline && !s.is_empty() => {
            single_quoted(s).into()
        }
        ScalarStyle::SingleQuoted if s.is_empty() => "''".into(),
        ScalarStyle::SingleQuoted => double_quoted(s).into(),
        ScalarStyle::Literal | ScalarStyle::Folded | ScalarStyle::Plain => {
            auto_str_cow(s, &a, place)
        }
    }
}

/// yaml.v3's own choice for a string.
fn auto_str(s: &str, a: &Analysis, place: Place) -> String {
    auto_str_cow(s, a, place).into_owned()
}

/// [`auto_str`], borrowing `s` when it is written plain.
fn auto_str_cow<'s>(s: &'s str, a: &Analysis, place: Place) -> Cow<'s, str> {
    if a.multiline {
        if !place.flow && !place.key && place.block_ok && a.block {
            return block_scalar(s, '|', place.content_indent, place.parent_indent, 0).into();
        }
        return double_quoted(s).into();
    }
    if needs_type_quotes(s) {
        return double_quoted(s).into();
    }
    let plain_ok = if place.flow {
        a.flow_plain
    } else {
        a.block_plain
    };
    if plain_ok && !s.is_empty() {
        Cow::Borrowed(s)
    } else if a.single {
        single_quoted(s).into()
    } else {
        double_quoted(s).into()
    }
}

/// Renders a map key.
pub(crate) fn render_key(key: &str, flow: bool) -> String {
    if key == "<<" {
        // What yaml.v3 writes for the merge key sops keeps as a plain `<<` entry.
        return "!!merge <<".into();
    }
    auto_str(
        key,
        &analyze(key),
        Place {
            flow,
            key: true,
            block_ok: false,
            content_indent: 0,
            parent_indent: 0,
        },
    )
}

/// Whether a rendered key may stand as `key:`: YAML reads an implicit key only within 1024
/// characters of its `:` (libyaml's lookahead; granit-parser's too). A longer one is written
/// explicit, `? key` (yaml.v3 writes keys over 128 characters so).
fn implicit_key(rendered: &str) -> bool {
    rendered.len() < 1000
}

/// Writes whole trees fresh, yaml.v3 style.
#[derive(Clone, Copy)]
pub(crate) struct Fresh {
    /// Spaces per nesting level.
    pub step: usize,
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn scalar_text(s: &Scalar, flow: bool, content_indent: usize, parent_indent: usize) -> String {
    render_scalar(
        &s.value,
        ScalarStyle::Plain,
        Place {
            flow,
            key: false,
            block_ok: !flow,
            content_indent,
            parent_indent,
        },
    )
}

impl Fresh {
    /// A whole document's root.
    pub fn document(&self, out: &mut String, root: &Node) {
        match root {
            Node::Map(m) if has_content_map(m) => self.block_map(out, m, 0, 0, false),
            Node::Seq(s) if has_content_seq(s) => self.block_seq(out, s, 0, false),
            Node::Map(_) => out.push_str("{}\n"),
            Node::Seq(_) => out.push_str("[]\n"),
            Node::Scalar(s) => {
                out.push_str(&scalar_text(s, false, self.step, 0));
                out.push('\n');
            }
        }
    }

    /// A block map: keys at `keycol`, nested content based at `base + step`. With `inline_first`
    /// the caller already wrote the first line's indentation (`- `).
    pub fn block_map(
        &self,
        out: &mut String,
        m: &Map,
        keycol: usize,
        base: usize,
        inline_first: bool,
    ) {
        let child = (base + self.step).max(keycol + 1);
        let mut first_line = inline_first;
        let mut line_comments = LineComments::default();
        for (i, e) in m.entries.iter().enumerate() {
            match e {
                MapEntry::Comment(c) if line_comments.defer(c, m.entries.get(i + 1..)) => {}
                MapEntry::Comment(c) => {
                    pad_unless(out, keycol, &mut first_line);
                    out.push('#');
                    out.push_str(&c.text);
                    out.push('\n');
                }
                MapEntry::Pair(p) => {
                    pad_unless(out, keycol, &mut first_line);
                    let key = render_key(&p.key, false);
                    if !implicit_key(&key) {
                        out.push_str("? ");
                        out.push_str(&key);
                        out.push('\n');
                        pad(out, keycol);
                    } else {
                        out.push_str(&key);
                    }
                    out.push(':');
                    let value_at = out.len();
                    self.value_after_key(out, &p.value, child, keycol);
                    line_comments.write(out, value_at);
                    out.push('\n');
                }
            }
        }
    }

    /// What follows `key:` — ` scalar`, ` {}`, or a nested block at `child` — without the final
    /// line break.
    pub fn value_after_key(&self, out: &mut String, v: &Node, child: usize, parent: usize) {
        match v {
            Node::Scalar(s) => {
                out.push(' ');
                out.push_str(&scalar_text(s, false, child, parent));
            }
            Node::Map(m) if only_comments_map(m) => {
                out.push_str(" {}");
                for e in &m.entries {
                    if let MapEntry::Comment(c) = e {
                        out.push('\n');
                        pad(out, parent);
                        out.push('#');
                        out.push_str(&c.text);
                    }
                }
            }
            Node::Seq(s) if only_comments_seq(s) => {
                out.push_str(" []");
                for i in &s.items {
                    if let SeqItem::Comment(c) = i {
                        out.push('\n');
                        pad(out, parent);
                        out.push('#');
                        out.push_str(&c.text);
                    }
                }
            }
            Node::Map(m) if has_content_map(m) => {
                out.push('\n');
                self.block_map(out, m, child, child, false);
                out.pop();
            }
            Node::Seq(s) if has_content_seq(s) => {
                out.push('\n');
                self.block_seq(out, s, child, false);
                out.pop();
            }
            Node::Map(_) => out.push_str(" {}"),
            Node::Seq(_) => out.push_str(" []"),
        }
    }

    /// A block sequence with dashes at `dashcol`.
    pub fn block_seq(&self, out: &mut String, s: &Seq, dashcol: usize, inline_first: bool) {
        let mut first_line = inline_first;
        let mut line_comments = LineComments::default();
        for (i, item) in s.items.iter().enumerate() {
            match item {
                SeqItem::Comment(c) if line_comments.defer(c, s.items.get(i + 1..)) => continue,
                SeqItem::Comment(c) => {
                    pad_unless(out, dashcol, &mut first_line);
                    out.push('#');
                    out.push_str(&c.text);
                }
                SeqItem::Node(n) => {
                    pad_unless(out, dashcol, &mut first_line);
                    let item_at = out.len();
                    self.seq_item(out, n, dashcol);
                    line_comments.write(out, item_at);
                }
            }
            out.push('\n');
        }
    }

    /// One `- item` (the dash's indentation already written), without the final line break.
    pub fn seq_item(&self, out: &mut String, n: &Node, dashcol: usize) {
        match n {
            Node::Scalar(s) => {
                out.push_str("- ");
                out.push_str(&scalar_text(s, false, dashcol + 2, dashcol));
            }
            Node::Map(m) if has_content_map(m) => {
                if matches!(m.entries.first(), Some(MapEntry::Comment(_))) {
                    out.push_str("-\n");
                    self.block_map(out, m, dashcol + 2, dashcol, false);
                } else {
                    out.push_str("- ");
                    self.block_map(out, m, dashcol + 2, dashcol, true);
                }
                out.pop();
            }
            Node::Seq(s) if has_content_seq(s) => {
                out.push_str("- ");
                self.block_seq(out, s, dashcol + 2, true);
                out.pop();
            }
            Node::Map(_) => out.push_str("- {}"),
            Node::Seq(_) => out.push_str("- []"),
        }
    }

    /// A flow rendering (`{a: 1, b: [x, y]}`), used where the source had a flow collection.
    /// Comments cannot live inside one line and are left out.
    /// One `key: value` entry of a flow map.
    pub fn flow_pair(&self, out: &mut String, key: &str, value: &Node) {
        let key = render_key(key, true);
        if !implicit_key(&key) {
            out.push_str("? ");
        }
        out.push_str(&key);
        out.push_str(": ");
        self.flow(out, value);
    }

    pub fn flow(&self, out: &mut String, n: &Node) {
        match n {
            Node::Scalar(s) => out.push_str(&scalar_text(s, true, 0, 0)),
            Node::Map(m) => {
                out.push('{');
                let mut first = true;
                for (k, v) in m.pairs() {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    self.flow_pair(out, k, v);
                }
                out.push('}');
            }
            Node::Seq(s) => {
                out.push('[');
                let mut first = true;
                for item in &s.items {
                    if let SeqItem::Node(v) = item {
                        if !first {
                            out.push_str(", ");
                        }
                        first = false;
                        self.flow(out, v);
                    }
                }
                out.push(']');
            }
        }
    }
}

/// Pads to `col`, except on the first line when the caller already wrote its indentation.
fn pad_unless(out: &mut String, col: usize, first_line: &mut bool) {
    if !std::mem::take(first_line) {
        pad(out, col);
    }
}

/// An entry a line comment can follow: a scalar value (yaml.v3 writes a multi-line one's comment
/// after its `|-` indicator).
trait ScalarEntry {
    /// Whether this entry is a scalar value or item.
    fn is_scalar(&self) -> bool;
}

impl ScalarEntry for MapEntry {
    fn is_scalar(&self) -> bool {
        matches!(self, MapEntry::Pair(p) if matches!(p.value, Node::Scalar(_)))
    }
}

impl ScalarEntry for SeqItem {
    fn is_scalar(&self) -> bool {
        matches!(self, SeqItem::Node(Node::Scalar(_)))
    }
}

/// sops 3.13's line comments: an inline comment right before a scalar entry is written on that
/// entry's first line (yaml.v3's `LineComment`). Elsewhere an inline comment keeps a line of its
/// own, as sops 3.11 wrote every comment.
#[derive(Default)]
struct LineComments<'a> {
    held: Option<&'a str>,
}

impl<'a> LineComments<'a> {
    /// Holds `c` for the next entry's line if it is inline and the entry right after it (the
    /// first of `rest`) is a scalar; `false` means write it on its own line now.
    fn defer<E: ScalarEntry>(&mut self, c: &'a Comment, rest: Option<&[E]>) -> bool {
        let fits = c.inline
            && self.held.is_none()
            && rest.and_then(|r| r.first()).is_some_and(|e| e.is_scalar());
        if fits {
            self.held = Some(&c.text);
        }
        fits
    }

    /// Writes the held comment, if any, at the end of the first line of the value written from
    /// `value_at` on.
    fn write(&mut self, out: &mut String, value_at: usize) {
        if let Some(text) = self.held.take() {
            let at = out[value_at..]
                .find('\n')
                .map_or(out.len(), |i| value_at + i);
            out.insert_str(at, &format!(" #{text}"));
        }
    }
}

fn only_comments_map(m: &Map) -> bool {
    !m.entries.is_empty() && m.entries.iter().all(|e| matches!(e, MapEntry::Comment(_)))
}

fn only_comments_seq(s: &Seq) -> bool {
    !s.items.is_empty() && s.items.iter().all(|i| matches!(i, SeqItem::Comment(_)))
}

fn has_content_map(m: &Map) -> bool {
    !m.entries.is_empty()
}

fn has_content_seq(s: &Seq) -> bool {
    !s.items.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(s: &str) -> String {
        render_scalar(
            &Value::Str(s.into()),
            ScalarStyle::Plain,
            Place {
                flow: false,
                key: false,
                block_ok: true,
                content_indent: 4,
                parent_indent: 0,
            },
        )
    }

    #[test]
    fn strings_quoted_like_yaml_v3() {
        assert_eq!(auto("hello"), "hello");
        assert_eq!(auto("yes"), "\"yes\"");
        assert_eq!(auto("123"), "\"123\"");
        assert_eq!(auto(""), "\"\"");
        assert_eq!(auto(" lead"), "' lead'");
        assert_eq!(auto("x: y"), "'x: y'");
        assert_eq!(auto("#x"), "'#x'");
        assert_eq!(auto("a:"), "'a:'");
        assert_eq!(auto("a:b"), "a:b");
        assert_eq!(auto("-"), "'-'");
        assert_eq!(auto("-x"), "-x");
        assert_eq!(auto("a\tb"), "\"a\\tb\"");
        assert_eq!(auto("1:20"), "\"1:20\"");
        assert_eq!(auto("line1\nline2"), "|-\n    line1\n    line2");
        assert_eq!(auto("trail\n"), "|\n    trail");
        assert_eq!(auto(" indented\n"), "|4\n     indented");
        assert_eq!(
            auto("ENC[AES256_GCM,data:x,type:str]"),
            "ENC[AES256_GCM,data:x,type:str]"
        );
    }

    #[test]
    fn keep_chomping_writes_trailing_empty_lines() {
        assert_eq!(block_scalar("a\n\n", '|', 2, 0, 0), "|+\n  a\n");
        assert_eq!(block_scalar("a\n\n", '|', 2, 0, 1), "|+\n  a");
    }

    /// Found by a differential run against sops: a value whose first line starts with a tab was
    /// written without an indentation indicator, which yaml.v3 cannot read back.
    #[test]
    fn a_first_line_starting_with_a_blank_gets_an_indentation_indicator() {
        assert_eq!(block_scalar("\t\n", '|', 2, 0, 0), "|2\n  \t");
        assert_eq!(block_scalar(" x\n", '|', 2, 0, 0), "|2\n   x");
        assert_eq!(block_scalar("x\n\ty\n", '|', 2, 0, 0), "|\n  x\n  \ty");
    }
}
