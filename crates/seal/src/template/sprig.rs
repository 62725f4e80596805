//! The sprig functions (Masterminds/sprig v3.3.0, `GenericFuncMap`) that Bitnami v0.40.0 enables in
//! templates — all of them except `env`, `expandenv` and `getHostByName`, which it removes — each
//! written to give Go's output byte for byte. [`BITNAMI_FUNCTIONS`] lists what Bitnami enables;
//! [`UNSUPPORTED`] the ones Signet refuses (clearly, before rendering): random output, the clock
//! (`now`, `ago`), and key and certificate generation. The date functions are in
//! `sprig_time.rs`; the case, decimal, URL, semver and Master Password/AES functions in
//! `sprig_extra.rs` and the modules it names.

use super::Budget;
use super::exec::{arity, fmt_arg};
use super::fmt::go_quote;
use super::value::{Bytes, Dict, Value, bytes, format_float, str_value};
use base64::Engine;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

type R<T> = Result<T, String>;

/// Every function name of sprig's `GenericFuncMap` that Bitnami v0.40.0 keeps.
pub const BITNAMI_FUNCTIONS: &[&str] = &[
    "hello",
    "ago",
    "date",
    "date_in_zone",
    "date_modify",
    "dateInZone",
    "dateModify",
    "duration",
    "durationRound",
    "htmlDate",
    "htmlDateInZone",
    "must_date_modify",
    "mustDateModify",
    "mustToDate",
    "now",
    "toDate",
    "unixEpoch",
    "abbrev",
    "abbrevboth",
    "trunc",
    "trim",
    "upper",
    "lower",
    "title",
    "untitle",
    "substr",
    "repeat",
    "trimall",
    "trimAll",
    "trimSuffix",
    "trimPrefix",
    "nospace",
    "initials",
    "randAlphaNum",
    "randAlpha",
    "randAscii",
    "randNumeric",
    "swapcase",
    "shuffle",
    "snakecase",
    "camelcase",
    "kebabcase",
    "wrap",
    "wrapWith",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "cat",
    "indent",
    "nindent",
    "replace",
    "plural",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "adler32sum",
    "toString",
    "atoi",
    "int64",
    "int",
    "float64",
    "seq",
    "toDecimal",
    "split",
    "splitList",
    "splitn",
    "toStrings",
    "until",
    "untilStep",
    "add1",
    "add",
    "sub",
    "div",
    "mod",
    "mul",
    "randInt",
    "add1f",
    "addf",
    "subf",
    "divf",
    "mulf",
    "biggest",
    "max",
    "min",
    "maxf",
    "minf",
    "ceil",
    "floor",
    "round",
    "join",
    "sortAlpha",
    "default",
    "empty",
    "coalesce",
    "all",
    "any",
    "compact",
    "mustCompact",
    "fromJson",
    "toJson",
    "toPrettyJson",
    "toRawJson",
    "mustFromJson",
    "mustToJson",
    "mustToPrettyJson",
    "mustToRawJson",
    "ternary",
    "deepCopy",
    "mustDeepCopy",
    "typeOf",
    "typeIs",
    "typeIsLike",
    "kindOf",
    "kindIs",
    "deepEqual",
    "base",
    "dir",
    "clean",
    "ext",
    "isAbs",
    "osBase",
    "osClean",
    "osDir",
    "osExt",
    "osIsAbs",
    "b64enc",
    "b64dec",
    "b32enc",
    "b32dec",
    "tuple",
    "list",
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "pluck",
    "keys",
    "pick",
    "omit",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
    "values",
    "append",
    "push",
    "mustAppend",
    "mustPush",
    "prepend",
    "mustPrepend",
    "first",
    "mustFirst",
    "rest",
    "mustRest",
    "last",
    "mustLast",
    "initial",
    "mustInitial",
    "reverse",
    "mustReverse",
    "uniq",
    "mustUniq",
    "without",
    "mustWithout",
    "has",
    "mustHas",
    "slice",
    "mustSlice",
    "concat",
    "dig",
    "chunk",
    "mustChunk",
    "bcrypt",
    "htpasswd",
    "genPrivateKey",
    "derivePassword",
    "buildCustomCert",
    "genCA",
    "genCAWithKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
    "encryptAES",
    "decryptAES",
    "randBytes",
    "uuidv4",
    "semver",
    "semverCompare",
    "fail",
    "regexMatch",
    "mustRegexMatch",
    "regexFindAll",
    "mustRegexFindAll",
    "regexFind",
    "mustRegexFind",
    "regexReplaceAll",
    "mustRegexReplaceAll",
    "regexReplaceAllLiteral",
    "mustRegexReplaceAllLiteral",
    "regexSplit",
    "mustRegexSplit",
    "regexQuoteMeta",
    "urlParse",
    "urlJoin",
];

/// Functions Bitnami enables that Signet refuses: their output is random or depends on the clock
/// (no two renderings agree, so a Secret would change on every reconcile), or they generate keys or
/// certificates.
pub const UNSUPPORTED: &[&str] = &[
    // the clock (the other date functions are rendered, and refused when an argument makes
    // them read it)
    "now",
    "ago",
    // randomness
    "randAlpha",
    "randAlphaNum",
    "randAscii",
    "randNumeric",
    "randInt",
    "randBytes",
    "shuffle",
    "uuidv4",
    "bcrypt",
    "htpasswd",
    "encryptAES",
    // keys and certificates
    "genPrivateKey",
    "genCA",
    "genCAWithKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
    "buildCustomCert",
];

/// Functions External Secrets Operator adds to sprig's in its templates (engine v2) that Signet
/// refuses: PKCS#12 encoding (its output is random: a fresh salt and IV each time), PKCS#12
/// decoding (not written yet), and reading other Secrets
/// (`getSecretKey`, `getSecretKeyRef`: a template would read any Secret of its namespace, beyond
/// what its ExternalSecret fetched). The ones Signet renders are [`super::eso::FUNCTIONS`].
pub const EXTERNAL_SECRETS_UNSUPPORTED: &[&str] = &[
    "pkcs12key",
    "pkcs12keyPass",
    "pkcs12cert",
    "pkcs12certPass",
    "pemToPkcs12",
    "pemToPkcs12Pass",
    "fullPemToPkcs12",
    "fullPemToPkcs12Pass",
    "getSecretKey",
    "getSecretKeyRef",
    // ESO's sprig fork maps it to xstrings' ToCamelCase (`helloWorld`), not sprig's ToPascalCase
    // (`HelloWorld`, what Bitnami and Signet render): not written yet.
    "camelcase",
];

/// sprig functions External Secrets Operator's sprig fork (external-secrets/sprig v3.3.0) does not
/// define: an ExternalSecret template calling one fails in ESO, so it is refused here too.
pub const EXTERNAL_SECRETS_LACKS: &[&str] = &["sha512sum"];

/// Why `name` cannot be used in a template of `dialect`, or `None` when it can.
pub fn refusal(name: &str, dialect: super::Dialect) -> Option<String> {
    use super::Dialect;
    let peer = match dialect {
        Dialect::Bitnami => "Bitnami",
        Dialect::ExternalSecrets => "External Secrets Operator",
    };
    let peer_has_it =
        dialect == Dialect::ExternalSecrets && EXTERNAL_SECRETS_UNSUPPORTED.contains(&name);
    if peer_has_it && name.starts_with("getSecretKey") {
        return Some(format!(
            "function {name:?} is enabled by {peer} but not supported by Signet (a template sees only the values its ExternalSecret fetched: reading other Secrets would reach past what the ExternalSecret's own checks allowed)"
        ));
    }
    if UNSUPPORTED.contains(&name) || peer_has_it {
        return Some(format!(
            "function {name:?} is enabled by {peer} but not supported by Signet (its output is random, time-dependent or not implemented)"
        ));
    }
    if dialect == Dialect::ExternalSecrets && name == "getHostByName" {
        // ESO keeps it (Bitnami removes it): a DNS lookup, whose answer changes with the network.
        return Some(format!(
            "function {name:?} is enabled by {peer} but not supported by Signet (a DNS lookup: its output depends on the network)"
        ));
    }
    if dialect == Dialect::ExternalSecrets && EXTERNAL_SECRETS_LACKS.contains(&name) {
        return Some(format!(
            "function {name:?} not defined (External Secrets Operator's sprig does not define it)"
        ));
    }
    let peer_adds_it = dialect == Dialect::ExternalSecrets && super::eso::FUNCTIONS.contains(&name);
    if !BITNAMI_FUNCTIONS.contains(&name) && !super::GO_BUILTINS.contains(&name) && !peer_adds_it {
        let either = match dialect {
            Dialect::Bitnami => "Bitnami v0.40.0 does not enable it either",
            Dialect::ExternalSecrets => "neither sprig nor External Secrets Operator defines it",
        };
        return Some(format!("function {name:?} not defined ({either})"));
    }
    None
}

fn s(v: &Value) -> R<Bytes> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        Value::Missing => Err("invalid value; expected string".to_owned()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

fn int(v: &Value) -> R<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Missing => Err("invalid value; expected int".to_owned()),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

/// Bytes as Go's string functions see them: invalid UTF-8 bytes become U+FFFD one by one.
pub(super) fn text(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut rest = b;
    loop {
        match std::str::from_utf8(rest) {
            Ok(t) => {
                out.push_str(t);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or(""));
                out.push('\u{fffd}');
                rest = &bad[1..];
            }
        }
    }
}

/// sprig's `strval`: strings as they are, anything else as `fmt.Sprintf("%v")`.
fn strval(v: &Value) -> R<Bytes> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        Value::Missing => Ok(bytes(b"<nil>".to_vec())),
        v => Ok(bytes(v.to_bytes()?.to_vec())),
    }
}

/// spf13/cast's `ToInt64` as sprig uses it: numbers, bools, numeric strings (base prefixes
/// allowed, a `.0…` suffix ignored); anything else is 0.
fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => {
            let t = text(s);
            let t = trim_zero_decimal(&t);
            parse_go_int(t).unwrap_or(0)
        }
        _ => 0,
    }
}

fn trim_zero_decimal(s: &str) -> &str {
    let mut found_zero = false;
    for (i, c) in s.char_indices().rev() {
        match c {
            '.' => return if found_zero { &s[..i] } else { s },
            '0' => found_zero = true,
            _ => return s,
        }
    }
    s
}

/// `strconv.ParseInt(s, 0, 64)`.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(h) = lower.strip_prefix("0x") {
        (16, h.to_owned())
    } else if let Some(o) = lower.strip_prefix("0o") {
        (8, o.to_owned())
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b.to_owned())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_owned())
    } else {
        (10, lower.clone())
    };
    // Base 0 allows `_` between digits (and after a base prefix), as Go literals do.
    if digits.ends_with('_') || digits.contains("__") || (radix == 10 && digits.starts_with('_')) {
        return None;
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = u64::from_str_radix(&digits, radix).ok()?;
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// spf13/cast's `ToFloat64`.
pub(super) fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => super::go_strconv::parse_float(&text(s)).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// sprig's `empty`.
fn empty(v: &Value) -> bool {
    !v.truth()
}

/// The items of a list value (`[]interface{}` or `[]string`), or `None` for anything else.
fn items(v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::List(l) => Some(l.as_ref().clone()),
        Value::Strings(l) => Some(l.iter().map(|s| Value::Str(s.clone())).collect()),
        _ => None,
    }
}

fn list_of(v: &Value, name: &str) -> R<Vec<Value>> {
    items(v).ok_or_else(|| format!("Cannot find {name} on type {}", v.type_name()))
}

fn list(v: Vec<Value>) -> Value {
    Value::List(Rc::new(v))
}

fn strings(v: Vec<Bytes>) -> Value {
    Value::Strings(Rc::new(v))
}

fn dict(d: &Value) -> R<Rc<RefCell<BTreeMap<String, Value>>>> {
    match d {
        Value::Dict(d) => Ok(d.clone()),
        other => Err(format!(
            "wrong type for value; expected map[string]interface {{}}; got {}",
            other.type_name()
        )),
    }
}

fn key(v: &Value) -> R<String> {
    Ok(text(&s(v)?))
}

/// sprig's `strslice` (`toStrings`, `join`, `sortAlpha`).
fn strslice(v: &Value) -> R<Vec<Bytes>> {
    Ok(match v {
        Value::Strings(l) => l.as_ref().clone(),
        Value::List(l) => {
            let mut out = Vec::with_capacity(l.len());
            for item in l.iter() {
                if !matches!(item, Value::Nil | Value::Missing) {
                    out.push(strval(item)?);
                }
            }
            out
        }
        Value::Nil | Value::Missing => Vec::new(),
        other => vec![strval(other)?],
    })
}

/// Go's `reflect.DeepEqual` over template values.
fn deep_equal(a: &Value, b: &Value) -> bool {
    deep_equal_at(a, b, 0)
}

/// `deep_equal` below `depth` levels of nesting; deeper (only dicts that hold themselves get there)
/// counts as different.
fn deep_equal_at(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > super::value::MAX_NESTING {
        return false;
    }
    let deep_equal = |a: &Value, b: &Value| deep_equal_at(a, b, depth + 1);
    match (a, b) {
        (Value::Nil | Value::Missing, Value::Nil | Value::Missing) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) | (Value::Int64(x), Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x.as_slice() == y.as_slice(),
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| deep_equal(a, b))
        }
        (Value::Strings(x), Value::Strings(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(a, b)| a.as_slice() == b.as_slice())
        }
        (Value::Dict(x), Value::Dict(y)) => {
            Rc::ptr_eq(x, y) || {
                let (x, y) = (x.borrow(), y.borrow());
                x.len() == y.len()
                    && x.iter()
                        .zip(y.iter())
                        .all(|((ka, va), (kb, vb))| ka == kb && deep_equal(va, vb))
            }
        }
        (Value::StrMap(x), Value::StrMap(y)) => x == y,
        (Value::Time(x), Value::Time(y)) => x.deep_equal(y),
        // The versions' fields, and the same type (pointer or not).
        (Value::Semver(x), Value::Semver(y)) => x == y,
        _ => false,
    }
}

fn bound_len(n: usize) -> R<()> {
    if n > super::MAX_LIST_LEN {
        return Err(format!("more than {} items", super::MAX_LIST_LEN));
    }
    Ok(())
}

pub(super) fn bound_bytes(n: usize) -> R<()> {
    if n > super::MAX_RENDERED_BYTES {
        return Err(format!("more than {} bytes", super::MAX_RENDERED_BYTES));
    }
    Ok(())
}

/// Calls sprig function `name`.
pub(super) fn call(name: &str, a: &[Value], budget: &mut Budget) -> R<Value> {
    // External Secrets Operator's own: only its templates name them (checked before rendering).
    if let Some(result) = super::eso::call(name, a, budget) {
        return result;
    }
    // Checked before rendering too; both dialects render the same implemented set.
    if let Some(why) = refusal(name, super::Dialect::Bitnami) {
        return Err(why);
    }
    let n = a.len();
    let want = |k: usize| arity(name, a, k);
    let at_least = |k: usize| -> R<()> {
        if n < k {
            return Err(format!(
                "wrong number of args for {name}: want at least {k} got {n}"
            ));
        }
        Ok(())
    };
    if let Some(result) = super::sprig_time::call(name, a) {
        return result;
    }
    let string_fn = |f: &dyn Fn(&str) -> String| -> R<Value> {
        want(1)?;
        Ok(str_value(f(&text(&s(&a[0])?))))
    };
    Ok(match name {
        "hello" => {
            want(0)?;
            str_value(b"Hello!".to_vec())
        }
        // strings
        "trim" => string_fn(&|t| t.trim_matches(is_go_space).to_owned())?,
        "upper" => string_fn(&|t| t.chars().map(go_upper).collect())?,
        "lower" => string_fn(&|t| t.chars().map(go_lower).collect())?,
        "swapcase" => string_fn(&swapcase)?,
        "initials" => {
            want(1)?;
            // goutils.Initials walks bytes, each taken as a code point.
            let mut out = String::new();
            let mut gap = true;
            for &b in s(&a[0])?.iter() {
                let c = char::from(b);
                if is_go_unicode_space(c) {
                    gap = true;
                } else if gap {
                    out.push(c);
                    gap = false;
                }
            }
            str_value(out)
        }
        "abbrevboth" => {
            want(3)?;
            let (left, right, v) = (int(&a[0])?, int(&a[1])?, s(&a[2])?);
            if right < 4 || (left > 0 && right < 7) {
                Value::Str(v)
            } else {
                str_value(abbreviate_full(&v, left, right))
            }
        }
        "title" => string_fn(&title)?,
        // goutils.Uncapitalize: the first letter of every word (words split at whitespace).
        "untitle" => string_fn(&|t| {
            let mut prev_space = true;
            t.chars()
                .flat_map(|c| {
                    let lower = prev_space;
                    prev_space = c.is_whitespace();
                    if lower {
                        c.to_lowercase().collect::<Vec<_>>()
                    } else {
                        vec![c]
                    }
                })
                .collect()
        })?,
        "nospace" => {
            // goutils.DeleteWhiteSpace walks bytes, each taken as a code point.
            want(1)?;
            let kept: String = s(&a[0])?
                .iter()
                .map(|&b| char::from(b))
                .filter(|&c| !is_go_unicode_space(c))
                .collect();
            str_value(kept)
        }
        "trunc" => {
            want(2)?;
            let c = int(&a[0])?;
            let v = s(&a[1])?;
            let len = v.len() as i64;
            if c < 0 && len + c > 0 {
                str_value(v[(len + c) as usize..].to_vec())
            } else if c >= 0 && len > c {
                str_value(v[..c as usize].to_vec())
            } else {
                Value::Str(v)
            }
        }
        "abbrev" => {
            want(2)?;
            let width = int(&a[0])?;
            let v = s(&a[1])?;
            if width < 4 || v.len() as i64 <= width {
                Value::Str(v)
            } else {
                let mut out = v[..(width - 3) as usize].to_vec();
                out.extend_from_slice(b"...");
                str_value(out)
            }
        }
        "substr" => {
            want(3)?;
            let (start, end, v) = (int(&a[0])?, int(&a[1])?, s(&a[2])?);
            let len = v.len() as i64;
            let range = if start < 0 {
                0..end
            } else if end < 0 || end > len {
                start..len
            } else {
                start..end
            };
            if range.start < 0 || range.end > len || range.start > range.end {
                return Err(format!(
                    "runtime error: slice bounds out of range [{}:{}]",
                    range.start, range.end
                ));
            }
            str_value(v[range.start as usize..range.end as usize].to_vec())
        }
        "repeat" => {
            want(2)?;
            let count = int(&a[0])?;
            let v = s(&a[1])?;
            if count < 0 {
                return Err("strings: negative Repeat count".to_owned());
            }
            bound_bytes((count as usize).saturating_mul(v.len()))?;
            str_value(v.repeat(count as usize))
        }
        "trimAll" | "trimall" => {
            want(2)?;
            let cut: Vec<char> = text(&s(&a[0])?).chars().collect();
            str_value(text(&s(&a[1])?).trim_matches(cut.as_slice()).to_owned())
        }
        "trimSuffix" | "trimPrefix" => {
            want(2)?;
            let (affix, v) = (s(&a[0])?, s(&a[1])?);
            let out = if name == "trimSuffix" {
                v.strip_suffix(affix.as_slice())
            } else {
                v.strip_prefix(affix.as_slice())
            };
            out.map_or(Value::Str(v.clone()), |o| str_value(o.to_vec()))
        }
        "contains" | "hasPrefix" | "hasSuffix" => {
            want(2)?;
            let (needle, v) = (s(&a[0])?, s(&a[1])?);
            Value::Bool(match name {
                "contains" => {
                    needle.is_empty() || v.windows(needle.len()).any(|w| w == needle.as_slice())
                }
                "hasPrefix" => v.starts_with(&needle),
                _ => v.ends_with(&needle),
            })
        }
        "quote" | "squote" => {
            let mut out = Vec::new();
            for v in a
                .iter()
                .filter(|v| !matches!(v, Value::Nil | Value::Missing))
            {
                if !out.is_empty() {
                    out.push(b' ');
                }
                if name == "quote" {
                    out.extend_from_slice(go_quote(&strval(v)?).as_bytes());
                } else {
                    out.push(b'\'');
                    fmt_arg(v, &mut out)?;
                    out.push(b'\'');
                }
            }
            str_value(out)
        }
        "cat" => {
            let mut out = Vec::new();
            let present = a
                .iter()
                .filter(|v| !matches!(v, Value::Nil | Value::Missing));
            for (i, v) in present.enumerate() {
                // Sprintf("%v %v …"): one space between values, even empty ones.
                if i > 0 {
                    out.push(b' ');
                }
                fmt_arg(v, &mut out)?;
            }
            str_value(out)
        }
        "indent" | "nindent" => {
            want(2)?;
            let spaces = int(&a[0])?;
            if spaces < 0 {
                return Err("strings: negative Repeat count".to_owned());
            }
            let spaces = usize::try_from(spaces).unwrap_or(usize::MAX);
            let v = s(&a[1])?;
            let lines = v.iter().filter(|&&c| c == b'\n').count() + 1;
            bound_bytes(v.len().saturating_add(spaces.saturating_mul(lines)))?;
            let pad = vec![b' '; spaces];
            let mut out = Vec::new();
            if name == "nindent" {
                out.push(b'\n');
            }
            out.extend_from_slice(&pad);
            for &c in v.iter() {
                out.push(c);
                if c == b'\n' {
                    out.extend_from_slice(&pad);
                }
            }
            str_value(out)
        }
        "replace" => {
            want(3)?;
            let (old, new, src) = (s(&a[0])?, s(&a[1])?, s(&a[2])?);
            str_value(replace_all(&src, &old, &new)?)
        }
        "plural" => {
            want(3)?;
            let (one, many, count) = (s(&a[0])?, s(&a[1])?, int(&a[2])?);
            Value::Str(if count == 1 { one } else { many })
        }
        "sha1sum" | "sha256sum" | "sha512sum" => {
            want(1)?;
            let alg = match name {
                "sha1sum" => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
                "sha256sum" => &aws_lc_rs::digest::SHA256,
                _ => &aws_lc_rs::digest::SHA512,
            };
            let d = aws_lc_rs::digest::digest(alg, &s(&a[0])?);
            str_value(hex(d.as_ref()))
        }
        "adler32sum" => {
            want(1)?;
            let (mut x, mut y) = (1u32, 0u32);
            for &c in s(&a[0])?.iter() {
                x = (x + u32::from(c)) % 65521;
                y = (y + x) % 65521;
            }
            str_value(((y << 16) | x).to_string())
        }
        "toString" => {
            want(1)?;
            Value::Str(strval(&a[0])?)
        }
        // numbers
        "atoi" => {
            want(1)?;
            let t = text(&s(&a[0])?);
            let t = t.strip_prefix('+').unwrap_or(&t);
            Value::Int(if t.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
                t.parse().unwrap_or(0)
            } else {
                0
            })
        }
        "int" => {
            want(1)?;
            Value::Int(to_int64(&a[0]))
        }
        "int64" => {
            want(1)?;
            Value::Int64(to_int64(&a[0]))
        }
        "float64" => {
            want(1)?;
            Value::Float(to_float64(&a[0]))
        }
        "add1" => {
            want(1)?;
            Value::Int64(to_int64(&a[0]).wrapping_add(1))
        }
        "add" => Value::Int64(a.iter().fold(0i64, |acc, v| acc.wrapping_add(to_int64(v)))),
        "sub" | "div" | "mod" => {
            want(2)?;
            let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
            Value::Int64(match name {
                "sub" => x.wrapping_sub(y),
                _ if y == 0 => return Err("runtime error: integer divide by zero".to_owned()),
                "div" => x.wrapping_div(y),
                _ => x.wrapping_rem(y),
            })
        }
        "mul" => {
            at_least(1)?;
            Value::Int64(
                a.iter()
                    .skip(1)
                    .fold(to_int64(&a[0]), |acc, v| acc.wrapping_mul(to_int64(v))),
            )
        }
        "max" | "biggest" | "min" => {
            at_least(1)?;
            let vals = a.iter().map(to_int64);
            Value::Int64(
                if name == "min" {
                    vals.min()
                } else {
                    vals.max()
                }
                .unwrap_or(0),
            )
        }
        "maxf" | "minf" => {
            at_least(1)?;
            let mut acc = to_float64(&a[0]);
            for v in &a[1..] {
                let f = to_float64(v);
                acc = if name == "maxf" {
                    go_max(acc, f)
                } else {
                    go_min(acc, f)
                };
            }
            Value::Float(acc)
        }
        "round" => {
            at_least(2)?;
            let val = to_float64(&a[0]);
            let places = int(&a[1])? as f64;
            let round_on = a.get(2).map_or(0.5, to_float64);
            let pow = 10f64.powf(places);
            let digit = pow * val;
            let frac = digit.fract();
            Value::Float(
                if frac >= round_on {
                    digit.ceil()
                } else {
                    digit.floor()
                } / pow,
            )
        }
        "toDecimal" => {
            want(1)?;
            let t = text(&fmt_to_bytes(&a[0])?);
            Value::Int64(parse_octal(&t).unwrap_or(0))
        }
        "seq" => {
            let p: Vec<i64> = a.iter().map(int).collect::<R<_>>()?;
            let l = match p.as_slice() {
                [end] => {
                    let inc = if *end < 1 { -1 } else { 1 };
                    until_step(1, end.saturating_add(inc), inc)?
                }
                [start, end] => {
                    let step = if end < start { -1 } else { 1 };
                    until_step(*start, end.saturating_add(step), step)?
                }
                [start, step, end] => {
                    let inc = if end < start { -1 } else { 1 };
                    if end < start && *step > 0 {
                        list(Vec::new())
                    } else {
                        until_step(*start, end.saturating_add(inc), *step)?
                    }
                }
                _ => list(Vec::new()),
            };
            let mut out = Vec::new();
            if let Value::List(items) = &l {
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    fmt_arg(v, &mut out)?;
                }
            }
            str_value(out)
        }
        "ceil" | "floor" => {
            want(1)?;
            let f = to_float64(&a[0]);
            Value::Float(if name == "ceil" { f.ceil() } else { f.floor() })
        }
        "until" => {
            want(1)?;
            let c = int(&a[0])?;
            let step = if c < 0 { -1 } else { 1 };
            until_step(0, c, step)?
        }
        "untilStep" => {
            want(3)?;
            until_step(int(&a[0])?, int(&a[1])?, int(&a[2])?)?
        }
        // lists
        "list" | "tuple" => {
            bound_len(n)?;
            list(
                a.iter()
                    .map(|v| {
                        if matches!(v, Value::Missing) {
                            Value::Nil
                        } else {
                            v.clone()
                        }
                    })
                    .collect(),
            )
        }
        "splitList" => {
            want(2)?;
            let parts = split_bytes(&s(&a[1])?, &s(&a[0])?, -1)?;
            strings(parts.into_iter().map(bytes).collect())
        }
        "split" | "splitn" => {
            let (sep, count, orig) = if name == "split" {
                want(2)?;
                (s(&a[0])?, -1, s(&a[1])?)
            } else {
                want(3)?;
                (s(&a[0])?, int(&a[1])?, s(&a[2])?)
            };
            let parts = split_bytes(&orig, &sep, count)?;
            let map: BTreeMap<String, Bytes> = parts
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), bytes(p)))
                .collect();
            Value::StrMap(Rc::new(map))
        }
        "toStrings" => {
            want(1)?;
            strings(strslice(&a[0])?)
        }
        "join" => {
            want(2)?;
            let sep = s(&a[0])?;
            let parts = strslice(&a[1])?;
            let total = parts.iter().map(|p| p.len() + sep.len()).sum();
            bound_bytes(total)?;
            str_value(
                parts
                    .iter()
                    .map(|p| p.as_slice())
                    .collect::<Vec<_>>()
                    .join(sep.as_slice()),
            )
        }
        "sortAlpha" => {
            want(1)?;
            match &a[0] {
                Value::List(_) | Value::Strings(_) => {
                    let mut v = strslice(&a[0])?;
                    v.sort_by(|x, y| x.as_slice().cmp(y.as_slice()));
                    strings(v)
                }
                other => strings(vec![strval(other)?]),
            }
        }
        "first" | "mustFirst" | "last" | "mustLast" => {
            want(1)?;
            let l = list_of(&a[0], name)?;
            let pick = if name.ends_with("irst") {
                l.first()
            } else {
                l.last()
            };
            pick.cloned().unwrap_or(Value::Nil)
        }
        "rest" | "mustRest" | "initial" | "mustInitial" => {
            want(1)?;
            let l = list_of(&a[0], name)?;
            if l.is_empty() {
                list(Vec::new())
            } else if name.ends_with("est") {
                list(l[1..].to_vec())
            } else {
                list(l[..l.len() - 1].to_vec())
            }
        }
        "reverse" | "mustReverse" => {
            want(1)?;
            let mut l = list_of(&a[0], name)?;
            l.reverse();
            list(l)
        }
        "append" | "push" | "mustAppend" | "mustPush" | "prepend" | "mustPrepend" => {
            want(2)?;
            let mut l = list_of(&a[0], name)?;
            bound_len(l.len() + 1)?;
            if name.contains("repend") {
                l.insert(0, a[1].clone());
            } else {
                l.push(a[1].clone());
            }
            list(l)
        }
        "uniq" | "mustUniq" => {
            want(1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in list_of(&a[0], name)? {
                // Quadratic: each item is compared with every one kept so far.
                budget.spend(1 + out.len() as u64 / 16)?;
                if !out.iter().any(|o| deep_equal(o, &v)) {
                    out.push(v);
                }
            }
            list(out)
        }
        "without" | "mustWithout" => {
            at_least(1)?;
            let omit = &a[1..];
            let l = list_of(&a[0], name)?;
            list(
                l.into_iter()
                    .filter(|v| !omit.iter().any(|o| deep_equal(o, v)))
                    .collect(),
            )
        }
        "has" | "mustHas" => {
            want(2)?;
            match items(&a[1]) {
                Some(l) => Value::Bool(l.iter().any(|v| deep_equal(v, &a[0]))),
                None if matches!(a[1], Value::Nil | Value::Missing) => Value::Bool(false),
                None => return Err(format!("Cannot find has on type {}", a[1].type_name())),
            }
        }
        "compact" | "mustCompact" => {
            want(1)?;
            list(
                list_of(&a[0], name)?
                    .into_iter()
                    .filter(|v| !empty(v))
                    .collect(),
            )
        }
        "slice" | "mustSlice" => {
            at_least(1)?;
            let l = list_of(&a[0], name)?;
            let len = l.len() as i64;
            let idx: Vec<i64> = a[1..].iter().map(to_int64).collect();
            let (lo, hi) = match idx.as_slice() {
                [] => (0, len),
                [lo] => (*lo, len),
                [lo, hi, ..] => (*lo, *hi),
            };
            if lo < 0 || hi > len || lo > hi {
                return Err(format!(
                    "runtime error: slice bounds out of range [{lo}:{hi}]"
                ));
            }
            list(l[lo as usize..hi as usize].to_vec())
        }
        "concat" => {
            let mut out = Vec::new();
            for v in a {
                out.extend(list_of(v, name)?);
                bound_len(out.len())?;
            }
            list(out)
        }
        "chunk" | "mustChunk" => {
            want(2)?;
            let size = int(&a[0])?;
            if size <= 0 {
                return Err("runtime error: integer divide by zero".to_owned());
            }
            let l = list_of(&a[1], name)?;
            list(l.chunks(size as usize).map(|c| list(c.to_vec())).collect())
        }
        // defaults
        "default" => {
            at_least(1)?;
            if n < 2 || empty(&a[1]) {
                nil_if_missing(&a[0])
            } else {
                a[1].clone()
            }
        }
        "empty" => {
            want(1)?;
            Value::Bool(empty(&a[0]))
        }
        "coalesce" => a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil),
        "all" => Value::Bool(a.iter().all(|v| !empty(v))),
        "any" => Value::Bool(a.iter().any(|v| !empty(v))),
        "ternary" => {
            want(3)?;
            match &a[2] {
                Value::Bool(b) => {
                    if *b {
                        nil_if_missing(&a[0])
                    } else {
                        nil_if_missing(&a[1])
                    }
                }
                other => {
                    return Err(format!(
                        "wrong type for value; expected bool; got {}",
                        other.type_name()
                    ));
                }
            }
        }
        "toJson" | "mustToJson" | "toRawJson" | "mustToRawJson" => {
            want(1)?;
            let mut out = Vec::new();
            match to_json(&a[0], &mut out, !name.contains("Raw"), 0) {
                // sprig's toJson drops what json.Marshal refuses (a NaN, a time past 9999);
                // its toRawJson panics, an error of the template.
                Err(e) if name == "toJson" && go_json_refuses(&e) => out.clear(),
                r => r?,
            }
            str_value(out)
        }
        "toPrettyJson" | "mustToPrettyJson" => {
            want(1)?;
            let mut out = Vec::new();
            match to_json(&a[0], &mut out, true, 0) {
                Err(e) if !name.starts_with("must") && go_json_refuses(&e) => {
                    return Ok(str_value(b"".to_vec()));
                }
                r => r?,
            }
            str_value(indent_json(&out))
        }
        "deepCopy" | "mustDeepCopy" => {
            want(1)?;
            deep_copy(&a[0], 0)?
        }
        "fromJson" | "mustFromJson" => {
            want(1)?;
            match serde_json::from_slice::<serde_json::Value>(&s(&a[0])?) {
                Ok(v) => from_json(v, 0)?,
                Err(e) if name == "mustFromJson" => return Err(e.to_string()),
                Err(_) => Value::Nil,
            }
        }
        // reflection
        "typeOf" => {
            want(1)?;
            str_value(a[0].type_name())
        }
        "kindOf" => {
            want(1)?;
            str_value(a[0].kind_name())
        }
        "typeIsLike" => {
            // Also true for a pointer to that type; no template value is a pointer.
            want(2)?;
            Value::Bool(s(&a[0])?.as_slice() == a[1].type_name().as_bytes())
        }
        "typeIs" | "kindIs" => {
            want(2)?;
            let target = s(&a[0])?;
            let actual = if name == "typeIs" {
                a[1].type_name()
            } else {
                a[1].kind_name()
            };
            Value::Bool(target.as_slice() == actual.as_bytes())
        }
        "deepEqual" => {
            want(2)?;
            Value::Bool(deep_equal(&a[0], &a[1]))
        }
        // paths
        "base" | "osBase" => string_fn(&path_base)?,
        "dir" | "osDir" => string_fn(&|p| path_clean(&path_dir(p)))?,
        "clean" | "osClean" => string_fn(&path_clean)?,
        "ext" | "osExt" => string_fn(&|p| {
            let name = &p[p.rfind('/').map_or(0, |i| i + 1)..];
            name.rfind('.')
                .map_or(String::new(), |i| name[i..].to_owned())
        })?,
        "isAbs" | "osIsAbs" => {
            want(1)?;
            Value::Bool(s(&a[0])?.starts_with(b"/"))
        }
        // encodings
        "b64enc" => {
            want(1)?;
            str_value(base64::engine::general_purpose::STANDARD.encode(s(&a[0])?.as_slice()))
        }
        "b64dec" => {
            want(1)?;
            match base64_decode(&s(&a[0])?) {
                Ok(d) => str_value(d),
                Err(pos) => str_value(format!("illegal base64 data at input byte {pos}")),
            }
        }
        "b32enc" => {
            want(1)?;
            str_value(base32_encode(&s(&a[0])?))
        }
        "b32dec" => {
            want(1)?;
            match base32_decode(&s(&a[0])?) {
                Ok(d) => str_value(d),
                Err(pos) => str_value(format!("illegal base32 data at input byte {pos}")),
            }
        }
        // dicts
        "dict" => {
            bound_len(n)?;
            let mut map = BTreeMap::new();
            for pair in a.chunks(2) {
                let k = text(&strval(&pair[0])?);
                let v = pair
                    .get(1)
                    .map_or_else(|| str_value(Vec::new()), nil_if_missing);
                map.insert(k, v);
            }
            Value::Dict(Rc::new(RefCell::new(map)))
        }
        "get" => {
            want(2)?;
            let d = dict(&a[0])?;
            let k = key(&a[1])?;
            let v = d.borrow().get(&k).cloned();
            v.unwrap_or_else(|| str_value(Vec::new()))
        }
        "set" => {
            want(3)?;
            let d = dict(&a[0])?;
            bound_len(d.borrow().len() + 1)?;
            d.borrow_mut().insert(key(&a[1])?, nil_if_missing(&a[2]));
            budget.mutated(&d);
            Value::Dict(d)
        }
        "unset" => {
            want(2)?;
            let d = dict(&a[0])?;
            d.borrow_mut().remove(&key(&a[1])?);
            Value::Dict(d)
        }
        "hasKey" => {
            want(2)?;
            Value::Bool(dict(&a[0])?.borrow().contains_key(&key(&a[1])?))
        }
        "pluck" => {
            at_least(1)?;
            let k = key(&a[0])?;
            let mut out = Vec::new();
            for d in &a[1..] {
                if let Some(v) = dict(d)?.borrow().get(&k) {
                    out.push(v.clone());
                }
            }
            list(out)
        }
        "keys" => {
            // Go's map order is random; Signet's is sorted (one of the orders Go may give).
            let mut out = Vec::new();
            for d in a {
                out.extend(
                    dict(d)?
                        .borrow()
                        .keys()
                        .map(|k| bytes(k.as_bytes().to_vec())),
                );
            }
            strings(out)
        }
        "values" => {
            want(1)?;
            list(dict(&a[0])?.borrow().values().cloned().collect())
        }
        "pick" | "omit" => {
            at_least(1)?;
            let d = dict(&a[0])?;
            let names: Vec<String> = a[1..].iter().map(key).collect::<R<_>>()?;
            let out: BTreeMap<String, Value> = d
                .borrow()
                .iter()
                .filter(|(k, _)| names.contains(k) == (name == "pick"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Value::Dict(Rc::new(RefCell::new(out)))
        }
        "merge" | "mustMerge" | "mergeOverwrite" | "mustMergeOverwrite" => {
            at_least(1)?;
            let dst = dict(&a[0])?;
            let overwrite = name.ends_with("Overwrite");
            for src in &a[1..] {
                merge_into(&dst, &dict(src)?, overwrite, 0, budget)?;
            }
            budget.mutated(&dst);
            Value::Dict(dst)
        }
        "wrap" | "wrapWith" => {
            let (width, sep, v, long) = if name == "wrap" {
                want(2)?;
                (int(&a[0])?, bytes(Vec::new()), s(&a[1])?, false)
            } else {
                want(3)?;
                (int(&a[0])?, s(&a[1])?, s(&a[2])?, true)
            };
            str_value(wrap_custom(&v, width, &sep, long)?)
        }
        "dig" => {
            at_least(3)?;
            let d = dict(&a[n - 1])?;
            let default = a[n - 2].clone();
            let mut cur = Value::Dict(d);
            for k in &a[..n - 2] {
                let next = match &cur {
                    Value::Dict(d) => d.borrow().get(&key(k)?).cloned(),
                    _ => return Err("dig: not a dict".to_owned()),
                };
                match next {
                    Some(v) => cur = v,
                    None => return Ok(default),
                }
            }
            cur
        }
        // flow
        "fail" => {
            want(1)?;
            return Err(text(&s(&a[0])?));
        }
        // regular expressions (RE2 syntax, as Go's regexp)
        "regexMatch" | "mustRegexMatch" => {
            want(2)?;
            Value::Bool(regex(&a[0], budget)?.is_match(&s(&a[1])?))
        }
        "regexFind" | "mustRegexFind" => {
            want(2)?;
            let v = s(&a[1])?;
            str_value(
                regex(&a[0], budget)?
                    .find(&v)
                    .map_or(Vec::new(), |m| m.as_bytes().to_vec()),
            )
        }
        "regexFindAll" | "mustRegexFindAll" => {
            want(3)?;
            let v = s(&a[1])?;
            let limit = int(&a[2])?;
            let re = regex(&a[0], budget)?;
            let found = re.find_iter(&v).map(|m| bytes(m.as_bytes().to_vec()));
            let found: Vec<Bytes> = if limit < 0 {
                found.collect()
            } else {
                found.take(limit as usize).collect()
            };
            strings(found)
        }
        "regexReplaceAll"
        | "mustRegexReplaceAll"
        | "regexReplaceAllLiteral"
        | "mustRegexReplaceAllLiteral" => {
            want(3)?;
            let re = regex(&a[0], budget)?;
            let (v, repl) = (s(&a[1])?, s(&a[2])?);
            let out = if name.contains("Literal") {
                re.replace_all(&v, regex::bytes::NoExpand(&repl))
                    .into_owned()
            } else {
                re.replace_all(&v, repl.as_slice()).into_owned()
            };
            bound_bytes(out.len())?;
            str_value(out)
        }
        "regexSplit" | "mustRegexSplit" => {
            want(3)?;
            let re = regex(&a[0], budget)?;
            let (v, limit) = (s(&a[1])?, int(&a[2])?);
            strings(regex_split(&re, &v, limit))
        }
        "regexQuoteMeta" => {
            want(1)?;
            let mut out = Vec::new();
            for &c in s(&a[0])?.iter() {
                if b"\\.+*?()|[]{}^$".contains(&c) {
                    out.push(b'\\');
                }
                out.push(c);
            }
            str_value(out)
        }
        other if super::sprig_extra::FUNCTIONS.contains(&other) => {
            super::sprig_extra::call(other, a, budget)?
        }
        other => return Err(format!("function {other:?} is not supported by Signet")),
    })
}

/// An absent map entry given to a function arrives as Go's nil interface.
fn nil_if_missing(v: &Value) -> Value {
    match v {
        Value::Missing => Value::Nil,
        v => v.clone(),
    }
}

fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// `strings.Title`: `unicode.ToTitle` of every letter that follows a separator (ASCII other than
/// letters, digits and `_`; beyond ASCII, spaces).
fn title(t: &str) -> String {
    let separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !c.is_alphanumeric() && is_go_unicode_space(c)
        }
    };
    let mut prev = ' ';
    t.chars()
        .map(|c| {
            let out = if separator(prev) { go_title(c) } else { c };
            prev = c;
            out
        })
        .collect()
}

/// `unicode.ToTitle`: upper case, except the four digraphs that have a title form.
fn go_title(c: char) -> char {
    match c {
        'Ǆ' | 'ǅ' | 'ǆ' => 'ǅ',
        'Ǉ' | 'ǈ' | 'ǉ' => 'ǈ',
        'Ǌ' | 'ǋ' | 'ǌ' => 'ǋ',
        'Ǳ' | 'ǲ' | 'ǳ' => 'ǲ',
        c => go_upper(c),
    }
}

fn hex(b: &[u8]) -> Vec<u8> {
    b.iter()
        .flat_map(|c| format!("{c:02x}").into_bytes())
        .collect()
}

fn replace_all(src: &[u8], old: &[u8], new: &[u8]) -> R<Vec<u8>> {
    let mut out = Vec::new();
    if old.is_empty() {
        // Go inserts `new` before every UTF-8 sequence and at the end.
        let t = text(src);
        bound_bytes(
            src.len()
                .saturating_add(new.len().saturating_mul(t.chars().count() + 1)),
        )?;
        for c in t.chars() {
            out.extend_from_slice(new);
            out.extend_from_slice(c.to_string().as_bytes());
        }
        out.extend_from_slice(new);
        return Ok(out);
    }
    let mut i = 0;
    while i < src.len() {
        if src[i..].starts_with(old) {
            out.extend_from_slice(new);
            i += old.len();
        } else {
            out.push(src[i]);
            i += 1;
        }
        bound_bytes(out.len())?;
    }
    Ok(out)
}

/// `strings.SplitN(s, sep, n)` (`n < 0`: all).
fn split_bytes(src: &[u8], sep: &[u8], n: i64) -> R<Vec<Vec<u8>>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut parts = Vec::new();
    if sep.is_empty() {
        let t = text(src);
        let chars: Vec<char> = t.chars().collect();
        bound_len(chars.len())?;
        let limit = if n < 0 {
            chars.len()
        } else {
            (n as usize).min(chars.len())
        };
        for (i, c) in chars.iter().enumerate().take(limit) {
            if i + 1 == limit && limit < chars.len() {
                parts.push(chars[i..].iter().collect::<String>().into_bytes());
            } else {
                parts.push(c.to_string().into_bytes());
            }
        }
        return Ok(parts);
    }
    let mut rest = src;
    while n < 0 || (parts.len() as i64) < n - 1 {
        let Some(pos) = rest.windows(sep.len()).position(|w| w == sep) else {
            break;
        };
        parts.push(rest[..pos].to_vec());
        rest = &rest[pos + sep.len()..];
        bound_len(parts.len())?;
    }
    parts.push(rest.to_vec());
    Ok(parts)
}

fn until_step(start: i64, stop: i64, step: i64) -> R<Value> {
    let mut v = Vec::new();
    if step == 0 || (step > 0 && start >= stop) || (step < 0 && start <= stop) {
        return Ok(list(v));
    }
    let count = (stop.abs_diff(start)).div_ceil(step.unsigned_abs());
    bound_len(usize::try_from(count).unwrap_or(usize::MAX))?;
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        v.push(Value::Int(i));
        match i.checked_add(step) {
            Some(next) => i = next,
            None => break,
        }
    }
    Ok(list(v))
}

/// Go's `base64.StdEncoding.DecodeString` (newlines skipped, padding required, trailing bytes
/// after padding refused); the error is the offset Go reports.
pub(super) fn base64_decode(src: &[u8]) -> Result<Vec<u8>, usize> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let newline = |c: u8| c == b'\n' || c == b'\r';
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    while si < src.len() {
        let mut dbuf = [0u32; 4];
        let mut dlen = 4;
        let mut trailing = None;
        let mut j = 0;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                return Err(si - j);
            }
            let c = src[si];
            si += 1;
            if let Some(v) = value(c) {
                dbuf[j] = v;
                j += 1;
                continue;
            }
            if newline(c) {
                continue;
            }
            if c != b'=' || j < 2 {
                return Err(si - 1);
            }
            if j == 2 {
                while si < src.len() && newline(src[si]) {
                    si += 1;
                }
                if si == src.len() {
                    return Err(src.len());
                }
                if src[si] != b'=' {
                    return Err(si - 1);
                }
                si += 1;
            }
            while si < src.len() && newline(src[si]) {
                si += 1;
            }
            if si < src.len() {
                trailing = Some(si);
            }
            dlen = j;
            break;
        }
        let val = dbuf[0] << 18 | dbuf[1] << 12 | dbuf[2] << 6 | dbuf[3];
        let bytes = [(val >> 16) as u8, (val >> 8) as u8, val as u8];
        out.extend_from_slice(&bytes[..dlen - 1]);
        if let Some(pos) = trailing {
            return Err(pos);
        }
        if dlen < 4 {
            return Ok(out);
        }
    }
    Ok(out)
}

/// Go's `Regexp.Split`: pieces between the matches, an empty match at the start or right after a
/// piece not making an empty piece.
fn regex_split(re: &regex::bytes::Regex, s: &[u8], n: i64) -> Vec<Bytes> {
    if n == 0 {
        return Vec::new();
    }
    if !re.as_str().is_empty() && s.is_empty() {
        return vec![bytes(Vec::new())];
    }
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let mut pieces = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for m in re.find_iter(s).take(limit) {
        if n > 0 && pieces.len() == limit - 1 {
            break;
        }
        end = m.start();
        if m.end() != 0 {
            pieces.push(bytes(s[beg..end].to_vec()));
        }
        beg = m.end();
    }
    if end != s.len() {
        pieces.push(bytes(s[beg..].to_vec()));
    }
    pieces
}

/// Steps a regular expression costs: compiling one takes as long as thousands of other steps.
const REGEX_STEPS: u64 = 200;

fn regex(pattern: &Value, budget: &mut Budget) -> R<regex::bytes::Regex> {
    budget.spend(REGEX_STEPS)?;
    let p = text(&s(pattern)?);
    regex::bytes::RegexBuilder::new(&p)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| {
            format!(
                "error parsing regexp: {}",
                e.to_string().lines().last().unwrap_or("")
            )
        })
}

fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        return "/".to_owned();
    }
    p[p.rfind('/').map_or(0, |i| i + 1)..].to_owned()
}

fn path_dir(p: &str) -> String {
    p[..p.rfind('/').map_or(0, |i| i + 1)].to_owned()
}

/// `path.Clean`.
fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Whether `error` is one of `json.Marshal`'s own refusals (a NaN or an infinity, a time it cannot
/// write), not one of the renderer's bounds.
fn go_json_refuses(error: &str) -> bool {
    ["json: error calling MarshalJSON", "json: unsupported value"]
        .iter()
        .any(|p| error.starts_with(p))
}

/// `encoding/json` of a template value: keys sorted, `<>&` escaped unless raw, floats as Go
/// writes them.
/// `encoding/json` of one value, as `toJson` writes it.
pub(super) fn to_json_value(v: &Value, out: &mut Vec<u8>) -> R<()> {
    to_json(v, out, true, 0)
}

fn to_json(v: &Value, out: &mut Vec<u8>, escape_html: bool, depth: usize) -> R<()> {
    if depth > super::value::MAX_NESTING {
        return Err("json: value nested too deep".to_owned());
    }
    bound_bytes(out.len())?;
    match v {
        Value::Missing | Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) | Value::Int64(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(format!("json: unsupported value: {}", format_float(*f, 21)));
            }
            let abs = f.abs();
            let t = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                let e = format_float(*f, -100);
                // Go writes e-07 as e-7.
                e.replace("e-0", "e-").replace("e+0", "e+")
            } else {
                super::value::format_float_fixed(*f)
            };
            out.extend_from_slice(t.as_bytes());
        }
        Value::Str(s) => json_string(s, out, escape_html),
        Value::Time(t) => out.extend(
            t.to_json()
                .map_err(|e| format!("json: error calling MarshalJSON for type time.Time: {e}"))?,
        ),
        // Version.MarshalJSON: its String() as a JSON string.
        Value::Semver(v) => json_string(&v.to_bytes(), out, escape_html),
        Value::List(l) => {
            out.push(b'[');
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                to_json(item, out, escape_html, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Strings(l) => {
            out.push(b'[');
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_string(item, out, escape_html);
            }
            out.push(b']');
        }
        Value::Dict(d) => {
            out.push(b'{');
            for (i, (k, item)) in d.borrow().iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_string(k.as_bytes(), out, escape_html);
                out.push(b':');
                to_json(item, out, escape_html, depth + 1)?;
            }
            out.push(b'}');
        }
        Value::StrMap(d) => {
            out.push(b'{');
            for (i, (k, item)) in d.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_string(k.as_bytes(), out, escape_html);
                out.push(b':');
                json_string(item, out, escape_html);
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn json_string(s: &[u8], out: &mut Vec<u8>, escape_html: bool) {
    out.push(b'"');
    for c in text(s).chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' if escape_html => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => out.extend_from_slice(c.to_string().as_bytes()),
        }
    }
    out.push(b'"');
}

fn from_json(v: serde_json::Value, depth: usize) -> R<Value> {
    if depth > super::value::MAX_NESTING {
        return Err("json: nested too deep".to_owned());
    }
    Ok(match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        // Go keeps decoding past a number out of float64's range and leaves nil there.
        serde_json::Value::Number(n) => match n.to_string().parse::<f64>() {
            Ok(f) if f.is_finite() => Value::Float(f),
            _ => Value::Nil,
        },
        serde_json::Value::String(s) => str_value(s),
        serde_json::Value::Array(a) => {
            bound_len(a.len())?;
            list(
                a.into_iter()
                    .map(|v| from_json(v, depth + 1))
                    .collect::<R<_>>()?,
            )
        }
        serde_json::Value::Object(o) => {
            let mut map = BTreeMap::new();
            for (k, v) in o {
                map.insert(k, from_json(v, depth + 1)?);
            }
            Value::Dict(Rc::new(RefCell::new(map)))
        }
    })
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// `base32.StdEncoding.EncodeToString`.
fn base32_encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len().div_ceil(5) * 8);
    for chunk in input.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(BASE32[((bits >> (35 - 5 * i)) & 31) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// `base32.StdEncoding.DecodeString` (newlines ignored); the error is the offset Go reports.
fn base32_decode(input: &[u8]) -> Result<Vec<u8>, usize> {
    let clean: Vec<(usize, u8)> = input
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != b'\r' && **c != b'\n')
        .map(|(i, c)| (i, *c))
        .collect();
    if !clean.len().is_multiple_of(8) {
        return Err(clean.len() / 8 * 8);
    }
    let mut out = Vec::new();
    for (block, chunk) in clean.chunks(8).enumerate() {
        let pad = chunk.iter().rev().take_while(|(_, c)| *c == b'=').count();
        let data = 8 - pad;
        if !matches!(pad, 0 | 1 | 3 | 4 | 6) || (pad > 0 && block + 1 != clean.len() / 8) {
            return Err(chunk[data.min(7)].0);
        }
        let mut bits = 0u64;
        for (i, (pos, c)) in chunk.iter().enumerate() {
            let v = if i < data {
                BASE32.iter().position(|b| b == c).ok_or(*pos)? as u64
            } else {
                0
            };
            bits = (bits << 5) | v;
        }
        let bytes = match pad {
            0 => 5,
            1 => 4,
            3 => 3,
            4 => 2,
            _ => 1,
        };
        out.extend_from_slice(&bits.to_be_bytes()[3..3 + bytes]);
    }
    Ok(out)
}

/// Go's `unicode.ToUpper` of one character (no expansion: `ß` stays `ß`).
pub(super) fn go_upper(c: char) -> char {
    // Greek with ypogegrammeni: the full mapping is two letters, the simple one Go uses is the
    // titlecase letter.
    match c as u32 {
        0x1f80..=0x1f87 | 0x1f90..=0x1f97 | 0x1fa0..=0x1fa7 => {
            return char::from_u32(c as u32 + 8).unwrap_or(c);
        }
        0x1fb3 | 0x1fc3 | 0x1ff3 => return char::from_u32(c as u32 + 9).unwrap_or(c),
        _ => {}
    }
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => super::sprig_case::in_go_tables(c, u),
        _ => c,
    }
}

/// Go's `unicode.ToLower` of one character (`İ` becomes `i`).
pub(super) fn go_lower(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    let mut low = c.to_lowercase();
    match (low.next(), low.next()) {
        (Some(l), None) => super::sprig_case::in_go_tables(c, l),
        _ => c,
    }
}

/// `unicode.IsSpace`.
pub(super) fn is_go_unicode_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    ) || (c as u32 > 0xff && c.is_whitespace())
}

/// goutils.SwapCase.
fn swapcase(t: &str) -> String {
    let mut whitespace = true;
    t.chars()
        .map(|c| {
            if c.is_uppercase() {
                whitespace = false;
                go_lower(c)
            } else if c.is_lowercase() {
                whitespace = false;
                go_upper(c)
            } else {
                whitespace = is_go_unicode_space(c);
                c
            }
        })
        .collect()
}

/// goutils.AbbreviateFull (on bytes, as Go slices strings).
fn abbreviate_full(v: &[u8], offset: i64, max_width: i64) -> Vec<u8> {
    let len = v.len() as i64;
    if v.is_empty() || len <= max_width {
        return v.to_vec();
    }
    let mut offset = offset.min(len);
    if len - offset < max_width - 3 {
        offset = len - (max_width - 3);
    }
    let dots = b"...";
    if offset <= 4 {
        return [&v[..(max_width - 3) as usize], dots].concat();
    }
    if offset.saturating_add(max_width - 3) < len {
        let rest = &v[offset as usize..];
        let inner = if rest.len() as i64 <= max_width - 3 || max_width - 3 < 4 {
            rest.to_vec()
        } else {
            [&rest[..(max_width - 6) as usize], dots].concat()
        };
        return [&dots[..], &inner].concat();
    }
    [&dots[..], &v[(len - (max_width - 3)) as usize..]].concat()
}

/// `strconv.ParseInt(s, 8, 64)`.
fn parse_octal(t: &str) -> Option<i64> {
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
        return None;
    }
    let v = i64::from_str_radix(digits, 8).ok()?;
    Some(if neg { -v } else { v })
}

/// `fmt.Sprint(v)`.
fn fmt_to_bytes(v: &Value) -> R<Vec<u8>> {
    let mut out = Vec::new();
    fmt_arg(v, &mut out)?;
    Ok(out)
}

/// `json.MarshalIndent(v, "", "  ")` from compact JSON: two spaces per level, `": "` after keys,
/// empty objects and arrays kept as `{}` and `[]`.
fn indent_json(compact: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.extend(std::iter::repeat_n(b' ', depth * 2));
    };
    let mut i = 0;
    while i < compact.len() {
        let c = compact[i];
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                out.push(c);
            }
            b'{' | b'[' => {
                let close = if c == b'{' { b'}' } else { b']' };
                if compact.get(i + 1) == Some(&close) {
                    out.extend_from_slice(&[c, close]);
                    i += 2;
                    continue;
                }
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            b',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// copystructure's deep copy: new lists and dicts all the way down.
fn deep_copy(v: &Value, depth: usize) -> R<Value> {
    if depth > super::value::MAX_NESTING {
        return Err("deepCopy: value nested too deep".to_owned());
    }
    Ok(match v {
        Value::List(l) => list(
            l.iter()
                .map(|x| deep_copy(x, depth + 1))
                .collect::<R<_>>()?,
        ),
        Value::Strings(l) => Value::Strings(Rc::new(l.as_ref().clone())),
        Value::Dict(d) => {
            let copied = d
                .borrow()
                .iter()
                .map(|(k, x)| Ok((k.clone(), deep_copy(x, depth + 1)?)))
                .collect::<R<BTreeMap<_, _>>>()?;
            Value::Dict(Rc::new(RefCell::new(copied)))
        }
        Value::StrMap(m) => Value::StrMap(Rc::new(m.as_ref().clone())),
        // copystructure copies no unexported field: a zero version (0.0.0) of the same type.
        Value::Semver(v) => Value::Semver(Rc::new(v.zeroed())),
        Value::Missing => Value::Nil,
        other => other.clone(),
    })
}

/// mergo's `Merge` (or `MergeWithOverwrite`) of `src` into `dst`, in place, as sprig's `merge` and
/// `mergeOverwrite` use it: a missing or empty entry of `dst` takes `src`'s (every entry does with
/// `overwrite`, nil included); dicts on both sides merge deeply.
fn merge_into(dst: &Dict, src: &Dict, overwrite: bool, depth: usize, budget: &mut Budget) -> R<()> {
    if depth > super::value::MAX_NESTING {
        return Err("merge: dicts nested too deep".to_owned());
    }
    // A snapshot: `src` may be `dst` itself, or hold it.
    let entries: Vec<(String, Value)> = src
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, from) in entries {
        budget.step()?;
        let to = dst.borrow().get(&key).cloned();
        if matches!(from, Value::Nil | Value::Missing) {
            if overwrite {
                dst.borrow_mut().insert(key, Value::Nil);
            }
            continue;
        }
        if let (Value::Dict(from_dict), Some(Value::Dict(to_dict))) = (&from, &to)
            && !Rc::ptr_eq(from_dict, to_dict)
        {
            merge_into(to_dict, from_dict, overwrite, depth + 1, budget)?;
            budget.mutated(to_dict);
        }
        let is_list = matches!(from, Value::List(_) | Value::Strings(_));
        let is_map = |v: &Value| matches!(v, Value::Dict(_) | Value::StrMap(_));
        if let Some(to) = &to
            && !empty(to)
        {
            if is_list && !overwrite {
                continue;
            }
            if is_map(&from) && is_map(to) {
                continue;
            }
        }
        if overwrite || to.as_ref().is_none_or(empty) {
            dst.borrow_mut().insert(key, from);
        }
    }
    Ok(())
}

/// goutils.WrapCustom, on bytes as Go slices strings: break at the last space within `width`,
/// long words broken (`long`) or left whole.
fn wrap_custom(v: &[u8], width: i64, sep: &[u8], long: bool) -> R<Vec<u8>> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let sep: &[u8] = if sep.is_empty() { b"\n" } else { sep };
    let width = usize::try_from(width.max(1)).unwrap_or(usize::MAX);
    let len = v.len();
    let mut out = Vec::with_capacity(len);
    let mut offset = 0;
    while len - offset > width {
        if v[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = width + offset + 1;
        let space = v[offset..end].iter().rposition(|&c| c == b' ');
        match space {
            Some(at) => {
                out.extend_from_slice(&v[offset..offset + at]);
                out.extend_from_slice(sep);
                offset += at + 1;
            }
            None if long => {
                out.extend_from_slice(&v[offset..offset + width]);
                out.extend_from_slice(sep);
                offset += width;
            }
            None => match v[offset + width..].iter().position(|&c| c == b' ') {
                None => {
                    out.extend_from_slice(&v[offset..]);
                    offset = len;
                }
                Some(index) => {
                    let at = offset + width + index;
                    out.extend_from_slice(&v[offset..at]);
                    out.extend_from_slice(sep);
                    offset = at + 1;
                }
            },
        }
        bound_bytes(out.len())?;
    }
    out.extend_from_slice(&v[offset..]);
    bound_bytes(out.len())?;
    Ok(out)
}
