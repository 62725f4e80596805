//! Go `text/template` source → syntax tree: text, actions with pipelines, `if`/`range`/`with`
//! (with `else` and `else if`/`else with`), `define`/`template`/`block`, `break`/`continue`,
//! variables, comments and the `{{-`/`-}}` trim markers. Nesting is bounded ([`MAX_DEPTH`]) so a
//! hostile template cannot exhaust the stack while being parsed or run.

use std::collections::BTreeMap;

/// Deepest nesting of blocks and parentheses accepted.
pub const MAX_DEPTH: usize = 64;

/// A parsed template: its main body and the templates it `define`s.
#[derive(Debug, Default)]
pub struct Parsed {
    pub body: Vec<Node>,
    pub defines: BTreeMap<String, Vec<Node>>,
}

#[derive(Debug)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Template(String, Option<Pipe>),
    Break,
    Continue,
}

/// `$a, $b := cmd | cmd`: declared (or assigned) variables and commands.
#[derive(Debug)]
pub struct Pipe {
    pub vars: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Vec<Term>>,
}

#[derive(Debug)]
pub enum Term {
    /// `.` followed by fields (`.a.b`; none for dot itself).
    Dot(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    Func(String),
    Str(Vec<u8>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `(pipeline).a.b`.
    Paren(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Space,
    Field(String),
    Dot,
    Var(String),
    Ident(String),
    Str(Vec<u8>),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

/// Parses `src`.
pub fn parse(src: &str) -> Result<Parsed, String> {
    let items = split(src)?;
    let mut parser = Parser {
        items,
        pos: 0,
        defines: BTreeMap::new(),
        depth: 0,
    };
    let (body, end) = parser.list(true)?;
    if let Some(end) = end {
        return Err(format!("unexpected {{{{{end}}}}}"));
    }
    Ok(Parsed {
        body,
        defines: parser.defines,
    })
}

/// A piece of the source: literal text or the tokens of one action.
enum Item {
    Text(String),
    Action(Vec<Tok>),
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits the source into text and lexed actions, applying trim markers and dropping comments.
fn split(src: &str) -> Result<Vec<Item>, String> {
    let bytes = src.as_bytes();
    let mut items = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while pos <= bytes.len() {
        let open = src[pos..].find("{{").map(|o| pos + o);
        let text_end = open.unwrap_or(bytes.len());
        let mut text = &src[pos..text_end];
        if trim_next {
            text = text.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
        }
        let Some(open) = open else {
            push_text(&mut items, text);
            break;
        };
        let mut start = open + 2;
        if bytes.get(start) == Some(&b'-') && bytes.get(start + 1).is_some_and(|&c| is_space(c)) {
            text = text.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8));
            start += 2;
        }
        push_text(&mut items, text);
        // Comments: `{{/* ... */}}`, only spaces and a trim marker may follow `*/`.
        let inner = src[start..].trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
        let (close, trim) = if inner.starts_with("/*") {
            let from = src.len() - inner.len();
            let end = src[from + 2..]
                .find("*/")
                .map(|e| from + 2 + e + 2)
                .ok_or("unclosed comment")?;
            let rest = &src[end..];
            if let Some(r) = rest.strip_prefix(" -}}") {
                (src.len() - r.len(), true)
            } else if let Some(r) = rest.strip_prefix("}}") {
                (src.len() - r.len(), false)
            } else {
                return Err("comment ends before closing delimiter".to_owned());
            }
        } else {
            let (toks, end, trim) = lex_action(src, start)?;
            items.push(Item::Action(toks));
            (end, trim)
        };
        trim_next = trim;
        pos = close;
    }
    Ok(items)
}

fn push_text(items: &mut Vec<Item>, text: &str) {
    if !text.is_empty() {
        items.push(Item::Text(text.to_owned()));
    }
}

/// Lexes one action from `start` (just after `{{` and its trim marker) to its `}}`: the tokens,
/// the position after `}}`, and whether a `-}}` trims the following text.
fn lex_action(src: &str, start: usize) -> Result<(Vec<Tok>, usize, bool), String> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = start;
    loop {
        let Some(&c) = b.get(i) else {
            return Err("unclosed action".to_owned());
        };
        if is_space(c) {
            let s = i;
            while b.get(i).is_some_and(|&c| is_space(c)) {
                i += 1;
            }
            if b[i..].starts_with(b"-}}") {
                return Ok((toks, i + 3, true));
            }
            if s > start {
                toks.push(Tok::Space);
            }
            continue;
        }
        if b[i..].starts_with(b"}}") {
            return Ok((toks, i + 2, false));
        }
        match c {
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            b'"' => {
                let (s, n) = quoted(&src[i..])?;
                toks.push(Tok::Str(s));
                i += n;
            }
            b'`' => {
                let end = src[i + 1..]
                    .find('`')
                    .ok_or("unterminated raw quoted string")?;
                toks.push(Tok::Str(src.as_bytes()[i + 1..i + 1 + end].to_vec()));
                i += end + 2;
            }
            b'\'' => {
                let (v, n) = char_constant(&src[i..])?;
                toks.push(Tok::Int(v));
                i += n;
            }
            b'.' if b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let n = number_len(&b[i..]);
                toks.push(number(&src[i..i + n])?);
                i += n;
            }
            b'.' => {
                let n = ident_len(&src[i + 1..]);
                if n == 0 {
                    toks.push(Tok::Dot);
                } else {
                    toks.push(Tok::Field(src[i + 1..i + 1 + n].to_owned()));
                }
                i += 1 + n;
            }
            b'$' => {
                let n = ident_len(&src[i + 1..]);
                toks.push(Tok::Var(src[i..i + 1 + n].to_owned()));
                i += 1 + n;
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let n = number_len(&b[i..]);
                if n == 0 || (n == 1 && !c.is_ascii_digit()) {
                    return Err(format!("unexpected {:?} in command", c as char));
                }
                toks.push(number(&src[i..i + n])?);
                i += n;
            }
            _ => {
                let n = ident_len(&src[i..]);
                if n == 0 {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err(format!("unexpected {ch:?} in command"));
                }
                toks.push(Tok::Ident(src[i..i + n].to_owned()));
                i += n;
            }
        }
    }
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i)
}

fn number_len(b: &[u8]) -> usize {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let sign_after_exp =
            (c == b'+' || c == b'-') && (i == 0 || matches!(b[i - 1], b'e' | b'E' | b'p' | b'P'));
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || sign_after_exp {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// A number constant: an `int` when its text is an integer, else a `float64` (as Go passes
/// untyped constants to functions taking `interface{}`).
fn number(text: &str) -> Result<Tok, String> {
    let bad = || format!("bad number syntax: {text:?}");
    let (neg, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    // The magnitude, then the sign: `-9223372036854775808` is an int, as in Go.
    let magnitude = if let Some(h) = lower.strip_prefix("0x") {
        (!h.contains(['.', 'p'])).then(|| u64::from_str_radix(h, 16))
    } else if let Some(o) = lower.strip_prefix("0o") {
        Some(u64::from_str_radix(o, 8))
    } else if let Some(bin) = lower.strip_prefix("0b") {
        Some(u64::from_str_radix(bin, 2))
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        Some(u64::from_str_radix(&lower[1..], 8))
    } else if !lower.is_empty() && lower.bytes().all(|c| c.is_ascii_digit()) {
        Some(lower.parse::<u64>())
    } else {
        None
    };
    let int = magnitude.map(|m| {
        let m = i128::from(m.map_err(|_| ())?);
        i64::try_from(if neg { -m } else { m }).map_err(|_| ())
    });
    match int {
        Some(Ok(v)) => Ok(Tok::Int(v)),
        Some(Err(())) => Err(bad()),
        None => {
            let f: f64 = lower.parse().map_err(|_| bad())?;
            if !f.is_finite() {
                return Err(bad());
            }
            Ok(Tok::Float(if neg { -f } else { f }))
        }
    }
}

/// A Go interpreted string literal at the start of `s`: its bytes and its length in `s`.
fn quoted(s: &str) -> Result<(Vec<u8>, usize), String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 1;
    loop {
        match b.get(i) {
            None | Some(b'\n') => return Err("unterminated quoted string".to_owned()),
            Some(b'"') => return Ok((out, i + 1)),
            Some(b'\\') => i += escape(&s[i..], &mut out, b'"')?,
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// A Go character constant (`'a'`, `'\n'`, `'é'`) at the start of `s`: its code point and length.
fn char_constant(s: &str) -> Result<(i64, usize), String> {
    let body = &s[1..];
    let (value, n) = if body.starts_with('\\') {
        let mut out = Vec::new();
        let n = escape(body, &mut out, b'\'')?;
        let text = String::from_utf8(out).map_err(|_| "bad character constant".to_owned())?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => (c as i64, n),
            _ => return Err("bad character constant".to_owned()),
        }
    } else {
        let c = body
            .chars()
            .next()
            .ok_or("unterminated character constant")?;
        (c as i64, c.len_utf8())
    };
    if body.as_bytes().get(n) != Some(&b'\'') {
        return Err("unterminated character constant".to_owned());
    }
    Ok((value, n + 2))
}

/// One escape sequence at the start of `s` (which begins with `\`), appended to `out`; returns
/// its length.
fn escape(s: &str, out: &mut Vec<u8>, quote: u8) -> Result<usize, String> {
    let b = s.as_bytes();
    let bad = || "invalid escape sequence in quoted string".to_owned();
    let simple = match b.get(1) {
        Some(b'a') => Some(7),
        Some(b'b') => Some(8),
        Some(b'f') => Some(12),
        Some(b'n') => Some(b'\n'),
        Some(b'r') => Some(b'\r'),
        Some(b't') => Some(b'\t'),
        Some(b'v') => Some(11),
        Some(b'\\') => Some(b'\\'),
        Some(&c) if c == quote => Some(c),
        _ => None,
    };
    if let Some(c) = simple {
        out.push(c);
        return Ok(2);
    }
    let hex = |from: usize, n: usize| -> Result<u32, String> {
        let digits = s.get(from..from + n).ok_or_else(bad)?;
        u32::from_str_radix(digits, 16).map_err(|_| bad())
    };
    match b.get(1) {
        Some(b'x') => {
            out.push(hex(2, 2)? as u8);
            Ok(4)
        }
        Some(b'0'..=b'7') => {
            let digits = s.get(1..4).ok_or_else(bad)?;
            let v = u32::from_str_radix(digits, 8).map_err(|_| bad())?;
            out.push(u8::try_from(v).map_err(|_| bad())?);
            Ok(4)
        }
        Some(b'u') | Some(b'U') => {
            let n = if b[1] == b'u' { 4 } else { 8 };
            let c = char::from_u32(hex(2, n)?).ok_or_else(bad)?;
            out.extend_from_slice(c.to_string().as_bytes());
            Ok(2 + n)
        }
        _ => Err(bad()),
    }
}

struct Parser {
    items: Vec<Item>,
    pos: usize,
    defines: BTreeMap<String, Vec<Node>>,
    depth: usize,
}

/// How a list of nodes ended: `end`, `else` (with the rest of its action), or the source's end.
type ListEnd = Option<String>;

impl Parser {
    /// Nodes up to `{{end}}`/`{{else ...}}` (returned as the end) or the end of the source.
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, ListEnd), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} levels deep"));
        }
        let mut nodes = Vec::new();
        while self.pos < self.items.len() {
            let item = std::mem::replace(&mut self.items[self.pos], Item::Text(String::new()));
            self.pos += 1;
            let toks = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action(toks) => toks,
            };
            let keyword = match toks.first() {
                Some(Tok::Ident(k)) => k.as_str(),
                _ => "",
            };
            let rest = || strip_space(&toks[1..]);
            match keyword {
                "end" | "else" => {
                    self.depth -= 1;
                    if keyword == "end" && !rest().is_empty() {
                        return Err("unexpected tokens after end".to_owned());
                    }
                    self.pos -= 1;
                    self.items[self.pos] = Item::Action(toks[1..].to_vec());
                    return Ok((nodes, Some(keyword.to_owned())));
                }
                "if" | "range" | "with" => {
                    let pipe = pipeline(rest(), self.depth)?;
                    let (body, otherwise) = self.branches(keyword)?;
                    nodes.push(match keyword {
                        "if" => Node::If(pipe, body, otherwise),
                        "range" => Node::Range(pipe, body, otherwise),
                        _ => Node::With(pipe, body, otherwise),
                    });
                }
                "define" | "block" => {
                    if keyword == "define" && !top {
                        return Err("unexpected define: only at the top level".to_owned());
                    }
                    let (name, pipe) = template_call(rest(), self.depth)?;
                    let (body, end) = self.list(false)?;
                    if end.as_deref() != Some("end") {
                        return Err(format!("missing end of {keyword}"));
                    }
                    self.pos += 1;
                    self.defines.insert(name.clone(), body);
                    if keyword == "block" {
                        nodes.push(Node::Template(name, pipe));
                    }
                }
                "template" => {
                    let (name, pipe) = template_call(rest(), self.depth)?;
                    nodes.push(Node::Template(name, pipe));
                }
                "break" | "continue" if rest().is_empty() => nodes.push(if keyword == "break" {
                    Node::Break
                } else {
                    Node::Continue
                }),
                _ => nodes.push(Node::Action(pipeline(&toks, self.depth)?)),
            }
        }
        self.depth -= 1;
        Ok((nodes, None))
    }

    /// The body of an `if`/`range`/`with` and its `else` branch (an `else if`/`else with` chain is
    /// a nested node in the else branch sharing one `end`).
    fn branches(&mut self, keyword: &str) -> Result<(Vec<Node>, Vec<Node>), String> {
        let (body, end) = self.list(false)?;
        let Some(end) = end else {
            return Err(format!("unexpected EOF: missing end of {keyword}"));
        };
        let Item::Action(rest) =
            std::mem::replace(&mut self.items[self.pos], Item::Text(String::new()))
        else {
            return Err("internal: expected an action".to_owned());
        };
        self.pos += 1;
        if end == "end" {
            return Ok((body, Vec::new()));
        }
        let rest = strip_space(&rest);
        match rest.first() {
            None => {
                let (otherwise, end) = self.list(false)?;
                if end.as_deref() != Some("end") {
                    return Err(format!("expected end after else of {keyword}"));
                }
                self.pos += 1;
                Ok((body, otherwise))
            }
            Some(Tok::Ident(k))
                if (k == "if" || k == "with") && (k == keyword || keyword != "range") =>
            {
                let k = k.clone();
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(format!("nested more than {MAX_DEPTH} levels deep"));
                }
                let pipe = pipeline(strip_space(&rest[1..]), self.depth)?;
                let (inner, otherwise) = self.branches(&k)?;
                self.depth -= 1;
                let node = if k == "if" {
                    Node::If(pipe, inner, otherwise)
                } else {
                    Node::With(pipe, inner, otherwise)
                };
                Ok((body, vec![node]))
            }
            _ => Err(format!("unexpected tokens after else of {keyword}")),
        }
    }
}

fn strip_space(toks: &[Tok]) -> &[Tok] {
    let start = toks
        .iter()
        .position(|t| *t != Tok::Space)
        .unwrap_or(toks.len());
    let end = toks
        .iter()
        .rposition(|t| *t != Tok::Space)
        .map_or(start, |e| e + 1);
    &toks[start..end.max(start)]
}

/// `"name" [pipeline]` of `template`, `define` and `block`.
fn template_call(toks: &[Tok], depth: usize) -> Result<(String, Option<Pipe>), String> {
    let Some(Tok::Str(name)) = toks.first() else {
        return Err("template name must be a string constant".to_owned());
    };
    let name = String::from_utf8(name.clone()).map_err(|_| "bad template name".to_owned())?;
    let rest = strip_space(&toks[1..]);
    let pipe = if rest.is_empty() {
        None
    } else {
        Some(pipeline(rest, depth)?)
    };
    Ok((name, pipe))
}

/// `[$a [, $b] (:= | =)] command { | command }`.
fn pipeline(toks: &[Tok], depth: usize) -> Result<Pipe, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested more than {MAX_DEPTH} levels deep"));
    }
    let toks = strip_space(toks);
    let mut vars = Vec::new();
    let mut assign = false;
    let mut body = toks;
    // A declaration: variables separated by commas, then := or =.
    let mut i = 0;
    let mut names = Vec::new();
    while let Some(Tok::Var(v)) = toks.get(i) {
        names.push(v.clone());
        i += 1;
        while toks.get(i) == Some(&Tok::Space) {
            i += 1;
        }
        match toks.get(i) {
            Some(Tok::Comma) if names.len() == 1 => {
                i += 1;
                while toks.get(i) == Some(&Tok::Space) {
                    i += 1;
                }
            }
            Some(Tok::Declare) | Some(Tok::Assign) => {
                assign = toks[i] == Tok::Assign;
                vars = names;
                body = strip_space(&toks[i + 1..]);
                break;
            }
            _ => break,
        }
    }
    if body.is_empty() {
        return Err("missing value for command".to_owned());
    }
    // Split at the `|`s outside parentheses.
    let mut cmds = Vec::new();
    let (mut level, mut start) = (0usize, 0usize);
    for (i, t) in body.iter().enumerate() {
        match t {
            Tok::LParen => level += 1,
            Tok::RParen => level = level.saturating_sub(1),
            Tok::Pipe if level == 0 => {
                cmds.push(command(strip_space(&body[start..i]), depth)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    cmds.push(command(strip_space(&body[start..]), depth)?);
    Ok(Pipe { vars, assign, cmds })
}

/// Space-separated operands (parentheses group a pipeline).
fn command(toks: &[Tok], depth: usize) -> Result<Vec<Term>, String> {
    if toks.is_empty() {
        return Err("missing command".to_owned());
    }
    let mut terms = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i] == Tok::Space {
            i += 1;
            continue;
        }
        if !terms.is_empty() && i > 0 && toks[i - 1] != Tok::Space {
            return Err("missing space between operands".to_owned());
        }
        let (term, n) = operand(&toks[i..], depth)?;
        terms.push(term);
        i += n;
    }
    Ok(terms)
}

/// One operand and the number of tokens it used.
fn operand(toks: &[Tok], depth: usize) -> Result<(Term, usize), String> {
    let mut n = 1;
    let term = match &toks[0] {
        Tok::Dot => Term::Dot(Vec::new()),
        Tok::Field(f) => Term::Dot(vec![f.clone()]),
        Tok::Var(v) => Term::Var(v.clone(), Vec::new()),
        Tok::Ident(k) => match k.as_str() {
            "true" => Term::Bool(true),
            "false" => Term::Bool(false),
            "nil" => Term::Nil,
            "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block"
            | "break" | "continue" => return Err(format!("unexpected {k} in operand")),
            _ => Term::Func(k.clone()),
        },
        Tok::Str(s) => Term::Str(s.clone()),
        Tok::Int(v) => Term::Int(*v),
        Tok::Float(v) => Term::Float(*v),
        Tok::LParen => {
            let mut level = 0usize;
            let close = toks
                .iter()
                .position(|t| {
                    match t {
                        Tok::LParen => level += 1,
                        Tok::RParen => level = level.saturating_sub(1),
                        _ => {}
                    }
                    level == 0
                })
                .ok_or("unclosed left paren")?;
            n = close + 1;
            Term::Paren(Box::new(pipeline(&toks[1..close], depth + 1)?), Vec::new())
        }
        other => return Err(format!("unexpected {other:?} in operand")),
    };
    // Fields chained right after the operand, without a space.
    let mut fields = Vec::new();
    while let Some(Tok::Field(f)) = toks.get(n) {
        fields.push(f.clone());
        n += 1;
    }
    if fields.is_empty() {
        return Ok((term, n));
    }
    let term = match term {
        Term::Dot(mut f) => {
            f.extend(fields);
            Term::Dot(f)
        }
        Term::Var(v, _) => Term::Var(v, fields),
        Term::Paren(p, _) => Term::Paren(p, fields),
        _ => return Err("unexpected field after a constant or function".to_owned()),
    };
    Ok((term, n))
}
