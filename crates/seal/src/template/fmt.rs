//! Go's `fmt.Sprintf` for the template's `printf` (and sprig functions built on it): the verbs
//! `%v %s %q %d %b %o %x %X %c %U %e %E %f %F %g %G %t %%`, the flags `+ - # 0 space`, width and
//! precision (also `*`), and Go's error notations (`%!d(string=x)`, `%!v(MISSING)`,
//! `%!(EXTRA ...)`).

use super::value::{Value, format_float};
use zeroize::Zeroizing;

#[derive(Default, Clone, Copy)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Largest width or precision accepted (Go's own limit is 1e6).
const MAX_WIDTH: usize = 1_000_000;

/// `fmt.Sprintf(format, args...)`.
pub fn sprintf(format: &[u8], args: &[Value]) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut out = Zeroizing::new(Vec::new());
    let mut next = 0usize;
    let mut i = 0;
    while i < format.len() {
        if out.len() > super::MAX_RENDERED_BYTES {
            return Err(format!(
                "printf output over {} bytes",
                super::MAX_RENDERED_BYTES
            ));
        }
        let c = format[i];
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        while let Some(&f) = format.get(i) {
            match f {
                b'+' => spec.plus = true,
                b'-' => spec.minus = true,
                b'#' => spec.sharp = true,
                b'0' => spec.zero = true,
                b' ' => spec.space = true,
                _ => break,
            }
            i += 1;
        }
        spec.width = number_or_star(format, &mut i, args, &mut next)?;
        if format.get(i) == Some(&b'.') {
            i += 1;
            spec.prec = Some(number_or_star(format, &mut i, args, &mut next)?.unwrap_or(0));
        }
        let Some(&verb) = format.get(i) else {
            out.extend_from_slice(b"%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == b'%' {
            out.push(b'%');
            continue;
        }
        if verb == b'[' {
            return Err("printf: explicit argument indexes are not supported".to_owned());
        }
        let Some(arg) = args.get(next) else {
            out.extend_from_slice(format!("%!{}(MISSING)", verb as char).as_bytes());
            continue;
        };
        next += 1;
        if verb == b'T' {
            // The argument's type, padded and truncated as a string is.
            let name = truncate_runes(arg.type_name().as_bytes(), spec.prec);
            pad(&mut out, &name, spec, false);
            continue;
        }
        format_arg(&mut out, arg, verb, spec, 0)?;
    }
    if next < args.len() {
        out.extend_from_slice(b"%!(EXTRA ");
        for (n, arg) in args[next..].iter().enumerate() {
            if n > 0 {
                out.extend_from_slice(b", ");
            }
            match arg {
                Value::Nil | Value::Missing => out.extend_from_slice(b"<nil>"),
                v => {
                    out.extend_from_slice(v.type_name().as_bytes());
                    out.push(b'=');
                    v.print(&mut out, 0)?;
                }
            }
        }
        out.push(b')');
    }
    Ok(out)
}

fn number_or_star(
    format: &[u8],
    i: &mut usize,
    args: &[Value],
    next: &mut usize,
) -> Result<Option<usize>, String> {
    if format.get(*i) == Some(&b'*') {
        *i += 1;
        let n = match args.get(*next) {
            Some(Value::Int(n)) | Some(Value::Int64(n)) => *n,
            _ => return Err("printf: * needs an int argument".to_owned()),
        };
        *next += 1;
        return Ok(Some(n.unsigned_abs().min(MAX_WIDTH as u64) as usize));
    }
    let start = *i;
    while format.get(*i).is_some_and(u8::is_ascii_digit) {
        *i += 1;
    }
    if *i == start {
        return Ok(None);
    }
    let n: usize = std::str::from_utf8(&format[start..*i])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(MAX_WIDTH + 1);
    if n > MAX_WIDTH {
        return Err("printf: width or precision too large".to_owned());
    }
    Ok(Some(n))
}

fn bad_verb(out: &mut Vec<u8>, arg: &Value, verb: u8) -> Result<(), String> {
    out.extend_from_slice(format!("%!{}(", verb as char).as_bytes());
    match arg {
        Value::Nil | Value::Missing => out.extend_from_slice(b"<nil>"),
        v => {
            out.extend_from_slice(v.type_name().as_bytes());
            out.push(b'=');
            v.print(out, 0)?;
        }
    }
    out.push(b')');
    Ok(())
}

fn format_arg(
    out: &mut Vec<u8>,
    arg: &Value,
    verb: u8,
    spec: Spec,
    depth: usize,
) -> Result<(), String> {
    if depth > super::value::MAX_NESTING {
        return Err("value nested too deep".to_owned());
    }
    match arg {
        Value::Str(s) => match verb {
            b'v' | b's' => pad(out, &truncate_runes(s, spec.prec), spec, false),
            b'q' => pad(out, go_quote(s).as_bytes(), spec, false),
            b'x' | b'X' => pad(out, &hex_bytes(s, verb == b'X', spec), spec, false),
            _ => bad_verb(out, arg, verb)?,
        },
        Value::Int(n) | Value::Int64(n) => format_int(out, *n, verb, spec, arg)?,
        Value::Float(f) => format_floatv(out, *f, verb, spec, arg)?,
        Value::Bool(b) => match verb {
            b'v' | b't' => pad(out, if *b { b"true" } else { b"false" }, spec, false),
            _ => bad_verb(out, arg, verb)?,
        },
        // A `fmt.Stringer`: these verbs format its `String()`.
        Value::Time(t) => match verb {
            b'v' if spec.sharp => pad(out, super::sprig_time::go_string(t).as_bytes(), spec, false),
            b'T' => pad(out, b"time.Time", spec, false),
            b'v' | b's' | b'q' | b'x' | b'X' => format_arg(
                out,
                &super::value::str_value(t.to_go_string()),
                verb,
                spec,
                depth + 1,
            )?,
            _ => {
                return Err(format!(
                    "printf of a time.Time with %{} is not supported",
                    char::from(verb)
                ));
            }
        },
        Value::Nil | Value::Missing => match verb {
            b'v' => pad(out, b"<nil>", spec, false),
            _ => bad_verb(out, arg, verb)?,
        },
        Value::List(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                format_arg(out, v, verb, spec, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Strings(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                format_arg(out, &Value::Str(v.clone()), verb, spec, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Dict(_) | Value::StrMap(_) => {
            let entries: Vec<(String, Value)> = match arg {
                Value::Dict(d) => d
                    .borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                Value::StrMap(d) => d
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                    .collect(),
                _ => Vec::new(),
            };
            out.extend_from_slice(b"map[");
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                format_arg(
                    out,
                    &super::value::str_value(k.as_bytes()),
                    verb,
                    spec,
                    depth + 1,
                )?;
                out.push(b':');
                format_arg(out, v, verb, spec, depth + 1)?;
            }
            out.push(b']');
        }
        // A fmt.Stringer: the string verbs format its String().
        Value::Semver(v) => match verb {
            b'v' | b's' | b'q' | b'x' | b'X' => format_arg(
                out,
                &super::value::str_value(v.to_bytes()),
                verb,
                spec,
                depth + 1,
            )?,
            _ => {
                return Err(
                    "printf: a semver version takes only the verbs %v %s %q %x %X in Signet"
                        .to_owned(),
                );
            }
        },
    }
    Ok(())
}

fn truncate_runes(s: &[u8], prec: Option<usize>) -> Vec<u8> {
    let Some(p) = prec else { return s.to_vec() };
    let text = String::from_utf8_lossy(s);
    text.chars().take(p).collect::<String>().into_bytes()
}

fn hex_bytes(s: &[u8], upper: bool, spec: Spec) -> Vec<u8> {
    let mut out = String::new();
    for (i, b) in s.iter().enumerate() {
        if spec.space && i > 0 {
            out.push(' ');
        }
        if spec.sharp && (spec.space || i == 0) {
            out.push_str(if upper { "0X" } else { "0x" });
        }
        if upper {
            out.push_str(&format!("{b:02X}"));
        } else {
            out.push_str(&format!("{b:02x}"));
        }
    }
    out.into_bytes()
}

/// Pads to the width: spaces (or zeros, after any sign, when `numeric` and the 0 flag is set) on
/// the left, or spaces on the right with `-`.
fn pad(out: &mut Vec<u8>, text: &[u8], spec: Spec, numeric: bool) {
    let len = String::from_utf8_lossy(text).chars().count();
    let fill = spec.width.unwrap_or(0).saturating_sub(len);
    if spec.minus {
        out.extend_from_slice(text);
        out.extend(std::iter::repeat_n(b' ', fill));
    } else if spec.zero && (numeric || !text.is_empty()) {
        let sign = numeric && matches!(text.first(), Some(b'-' | b'+' | b' '));
        if sign {
            out.push(text[0]);
        }
        out.extend(std::iter::repeat_n(b'0', fill));
        out.extend_from_slice(if sign { &text[1..] } else { text });
    } else {
        out.extend(std::iter::repeat_n(b' ', fill));
        out.extend_from_slice(text);
    }
}

fn format_int(out: &mut Vec<u8>, n: i64, verb: u8, spec: Spec, arg: &Value) -> Result<(), String> {
    let abs = n.unsigned_abs();
    let digits = match verb {
        b'v' | b'd' => abs.to_string(),
        b'b' => format!("{abs:b}"),
        b'o' | b'O' => format!("{abs:o}"),
        b'x' => format!("{abs:x}"),
        b'X' => format!("{abs:X}"),
        b'c' => {
            let c = u32::try_from(n)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{fffd}');
            pad(out, c.to_string().as_bytes(), spec, false);
            return Ok(());
        }
        b'q' => {
            let c = u32::try_from(n)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{fffd}');
            let q = go_quote(c.to_string().as_bytes());
            let inner = &q[1..q.len() - 1];
            let inner = if inner == "'" {
                "\\'".to_owned()
            } else {
                inner.replace("\\\"", "\"")
            };
            pad(out, format!("'{inner}'").as_bytes(), spec, false);
            return Ok(());
        }
        b'U' => {
            pad(out, format!("U+{abs:04X}").as_bytes(), spec, false);
            return Ok(());
        }
        _ => return bad_verb(out, arg, verb),
    };
    let digits = match spec.prec {
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        Some(0) if n == 0 => String::new(),
        _ => digits,
    };
    let prefix = match (spec.sharp, verb) {
        (true, b'x') => "0x",
        (true, b'X') => "0X",
        (true, b'o') if !digits.starts_with('0') => "0",
        (_, b'O') => "0o",
        (true, b'b') => "0b",
        _ => "",
    };
    let sign = if n < 0 {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let text = format!("{sign}{prefix}{digits}");
    let spec = Spec {
        zero: spec.zero && spec.prec.is_none(),
        ..spec
    };
    pad(out, text.as_bytes(), spec, true);
    Ok(())
}

fn format_floatv(
    out: &mut Vec<u8>,
    f: f64,
    verb: u8,
    spec: Spec,
    arg: &Value,
) -> Result<(), String> {
    let mut text = match verb {
        b'v' | b'g' | b'G' => match spec.prec {
            None => super::value::format_float_g(f),
            Some(p) => format_g_prec(f, p.max(1)),
        },
        b'e' | b'E' => exp_form(f, spec.prec.unwrap_or(6)),
        b'f' | b'F' => format!("{:.*}", spec.prec.unwrap_or(6), f),
        _ => return bad_verb(out, arg, verb),
    };
    if verb == b'E' || verb == b'G' {
        text = text.replace('e', "E");
    }
    if !text.starts_with('-') {
        if spec.plus {
            text.insert(0, '+');
        } else if spec.space {
            text.insert(0, ' ');
        }
    }
    pad(out, text.as_bytes(), spec, f.is_finite());
    Ok(())
}

/// `%.{prec}e`: `d.ddde±XX`.
fn exp_form(f: f64, prec: usize) -> String {
    if !f.is_finite() {
        return format_float(f, 0);
    }
    let e = format!("{f:.prec$e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// `%.{prec}g`.
fn format_g_prec(f: f64, prec: usize) -> String {
    if !f.is_finite() || f == 0.0 {
        return format_float(f, 21);
    }
    let e = format!("{:.*e}", prec - 1, f);
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let m = trim_zeros(mantissa);
        return format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{f:.decimals$}")).to_owned()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `strconv.Quote`: Go escapes for control characters, `\xHH` for invalid UTF-8, printable
/// characters as they are.
pub fn go_quote(s: &[u8]) -> String {
    let mut out = String::from("\"");
    let mut rest = s;
    while !rest.is_empty() {
        let (c, n) = match std::str::from_utf8(&rest[..rest.len().min(4)]) {
            Ok(t) => (t.chars().next(), t.chars().next().map_or(1, char::len_utf8)),
            Err(e) if e.valid_up_to() > 0 => {
                let t = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or("");
                (t.chars().next(), t.chars().next().map_or(1, char::len_utf8))
            }
            Err(_) => (None, 1),
        };
        match c {
            None => out.push_str(&format!("\\x{:02x}", rest[0])),
            Some('\x07') => out.push_str("\\a"),
            Some('\x08') => out.push_str("\\b"),
            Some('\x0c') => out.push_str("\\f"),
            Some('\n') => out.push_str("\\n"),
            Some('\r') => out.push_str("\\r"),
            Some('\t') => out.push_str("\\t"),
            Some('\x0b') => out.push_str("\\v"),
            Some('\\') => out.push_str("\\\\"),
            Some('"') => out.push_str("\\\""),
            Some(c) if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            Some(c) if is_go_print(c) => out.push(c),
            Some(c) if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            Some(c) => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
        rest = &rest[n..];
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint`: not a control or format character, and no space
/// other than U+0020.
pub(super) fn is_go_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c as u32, 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xD800..=0xDFFF))
}
