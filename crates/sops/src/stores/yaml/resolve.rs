//! Plain-scalar typing the way Go's `gopkg.in/yaml.v3` resolves it when decoding into `interface{}`
//! (which is what sops does): YAML 1.2 core booleans and nulls only (`yes`/`on` stay strings), integers
//! through Go's `strconv.ParseInt(s, 0, 64)` (so `0x1F`, `0o17`, `017`, `0b1`, `1_000`), integers too
//! big for 64 bits become floats, and unquoted timestamps become `time` values in RFC 3339 form.

use crate::tree::Value;

/// Types a plain (unquoted, untagged) scalar.
pub(crate) fn resolve_plain(text: &str) -> Value {
    let Some(&first) = text.as_bytes().first() else {
        return Value::Null;
    };
    match text {
        "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match first {
        b'.' => match text.parse::<f64>() {
            Ok(f) if is_go_float_syntax(text) => Value::Float(f),
            _ => Value::Str(text.to_owned()),
        },
        b'0'..=b'9' | b'+' | b'-' => resolve_number(text),
        _ => Value::Str(text.to_owned()),
    }
}

/// Whether `text` (plain, no tag) would resolve to a string. Used by the emitter to decide whether
/// a string can be written plain.
pub(crate) fn resolves_to_str(text: &str) -> bool {
    // Only these first characters can start a non-string plain scalar.
    match text.as_bytes().first() {
        None => false,
        Some(b'0'..=b'9' | b'+' | b'-' | b'.' | b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F') => {
            matches!(resolve_plain(text), Value::Str(_))
        }
        Some(_) => true,
    }
}

fn resolve_number(text: &str) -> Value {
    if first_is_digit(text)
        && let Some(t) = parse_timestamp(text)
    {
        return Value::Time(t);
    }
    // Most numbers have no `_`: only those are copied.
    let plain: std::borrow::Cow<'_, str> = if text.contains('_') {
        text.chars()
            .filter(|&c| c != '_')
            .collect::<String>()
            .into()
    } else {
        text.into()
    };
    if let Some(i) = go_parse_int(&plain) {
        return Value::Int(i);
    }
    if is_yaml_style_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Value::Float(f);
    }
    for (prefix, radix, neg) in [
        ("0b", 2, false),
        ("-0b", 2, true),
        ("0o", 8, false),
        ("-0o", 8, true),
    ] {
        if let Some(digits) = plain.strip_prefix(prefix)
            && let Ok(v) = i128::from_str_radix(digits, radix)
            && !digits.starts_with(['+', '-'])
        {
            let v = if neg { -v } else { v };
            if i64::try_from(v).is_ok() {
                return Value::Int(v.to_string());
            }
        }
    }
    Value::Str(text.to_owned())
}

fn first_is_digit(text: &str) -> bool {
    text.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint` for values above `i64::MAX`.
/// Returns the canonical decimal text.
fn go_parse_int(s: &str) -> Option<String> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(digits, radix).ok()?;
    if neg {
        // ParseUint rejects a sign, ParseInt allows down to i64::MIN.
        if magnitude <= (i64::MAX as u128) + 1 {
            return Some(if magnitude == 0 {
                "0".to_owned()
            } else {
                format!("-{magnitude}")
            });
        }
        None
    } else if s.starts_with('+') {
        (magnitude <= i64::MAX as u128).then(|| magnitude.to_string())
    } else {
        (magnitude <= u64::MAX as u128).then(|| magnitude.to_string())
    }
}

/// yaml.v3's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if int_digits == 0 {
        if i >= b.len() || b[i] != b'.' {
            return false;
        }
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == f {
            return false;
        }
    } else if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat` accepts what yaml.v3 hands it after a leading `.` (e.g. `.5`, `.5e3`).
fn is_go_float_syntax(s: &str) -> bool {
    is_yaml_style_float(s)
}

/// yaml.v3's `parseTimestamp`: the layouts `2006-1-2T15:4:5.999999999Z07:00` (also with `t`),
/// `2006-1-2 15:4:5.999999999` and `2006-1-2`, rendered back as Go's RFC 3339 with nanoseconds
/// (`time.RFC3339Nano`, the form sops encrypts).
pub(crate) fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let year: u32 = s[..4].parse().ok()?;
    let mut i = 5;
    let month = take_num(b, &mut i, 2)?;
    expect(b, &mut i, b'-')?;
    let day = take_num(b, &mut i, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if i == b.len() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let sep = b[i];
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    i += 1;
    let hour = take_num(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let minute = take_num(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let second = take_num(b, &mut i, 2)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut frac = String::new();
    if i < b.len() && (b[i] == b'.' || b[i] == b',') && i + 1 < b.len() && b[i + 1].is_ascii_digit()
    {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = s[st..i.min(st + 9)].to_owned();
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    let zone = if sep == b' ' {
        if i != b.len() {
            return None;
        }
        "Z".to_owned()
    } else {
        if i >= b.len() {
            return None;
        }
        match b[i] {
            b'Z' if i + 1 == b.len() => "Z".to_owned(),
            b'+' | b'-' => {
                let sign = b[i] as char;
                i += 1;
                if b.len() != i + 5 || b[i + 2] != b':' {
                    return None;
                }
                let hh = &s[i..i + 2];
                let mm = &s[i + 3..i + 5];
                if !hh.bytes().chain(mm.bytes()).all(|c| c.is_ascii_digit()) {
                    return None;
                }
                let (h, m): (u32, u32) = (hh.parse().ok()?, mm.parse().ok()?);
                if h > 24 || m > 59 {
                    return None;
                }
                if h == 0 && m == 0 {
                    "Z".to_owned()
                } else {
                    format!("{sign}{hh}:{mm}")
                }
            }
            _ => return None,
        }
    };
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    Some(format!(
        "{date}T{hour:02}:{minute:02}:{second:02}{frac}{zone}"
    ))
}

fn take_num(b: &[u8], i: &mut usize, max: usize) -> Option<u32> {
    let st = *i;
    while *i < b.len() && *i - st < max && b[*i].is_ascii_digit() {
        *i += 1;
    }
    if *i == st {
        return None;
    }
    std::str::from_utf8(&b[st..*i]).ok()?.parse().ok()
}

fn expect(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    if *i < b.len() && b[*i] == c {
        *i += 1;
        Some(())
    } else {
        None
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

/// Formats a float the way Go's `strconv.FormatFloat(f, 'g', -1, 64)` does (what yaml.v3 writes),
/// then appends `.0` when the result would read back as an integer, so the type survives a
/// round trip (yaml.v3 itself writes `3` for 3.0, which sops then reads as an int).
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "d.ddde[-]x".
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    let out = if !(-4..6).contains(&exp) {
        let (d0, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let es = if exp < 0 { '-' } else { '+' };
        format!("{sign}{d0}{rest}e{es}{:02}", exp.abs())
    } else if exp < 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else {
        let point = exp as usize + 1;
        if digits.len() <= point {
            format!("{sign}{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        }
    };
    if out.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
        format!("{out}.0")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_numbers() {
        assert_eq!(resolve_plain("0x1F"), Value::Int("31".into()));
        assert_eq!(resolve_plain("0o17"), Value::Int("15".into()));
        assert_eq!(resolve_plain("017"), Value::Int("15".into()));
        assert_eq!(resolve_plain("-0b101"), Value::Int("-5".into()));
        assert_eq!(resolve_plain("1_000"), Value::Int("1000".into()));
        assert_eq!(resolve_plain("08"), Value::Float(8.0));
        assert_eq!(resolve_plain("1e3"), Value::Float(1000.0));
        assert_eq!(resolve_plain(".5"), Value::Float(0.5));
        assert_eq!(
            resolve_plain("18446744073709551615"),
            Value::Int("18446744073709551615".into())
        );
        assert!(matches!(
            resolve_plain("123456789012345678901234567890"),
            Value::Float(_)
        ));
        assert_eq!(
            resolve_plain("-9223372036854775808"),
            Value::Int("-9223372036854775808".into())
        );
        assert_eq!(resolve_plain("0"), Value::Int("0".into()));
        assert_eq!(resolve_plain("-0"), Value::Int("0".into()));
        assert_eq!(resolve_plain("1.2.3"), Value::Str("1.2.3".into()));
        assert_eq!(resolve_plain("+"), Value::Str("+".into()));
    }

    #[test]
    fn core_schema_words() {
        assert_eq!(resolve_plain("yes"), Value::Str("yes".into()));
        assert_eq!(resolve_plain("on"), Value::Str("on".into()));
        assert_eq!(resolve_plain("True"), Value::Bool(true));
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain(""), Value::Null);
        assert_eq!(resolve_plain("nan"), Value::Str("nan".into()));
        assert!(matches!(resolve_plain(".NaN"), Value::Float(f) if f.is_nan()));
    }

    #[test]
    fn timestamps_like_go() {
        assert_eq!(
            parse_timestamp("2002-12-14").as_deref(),
            Some("2002-12-14T00:00:00Z")
        );
        assert_eq!(
            parse_timestamp("2001-12-14t21:59:43.10-05:00").as_deref(),
            Some("2001-12-14T21:59:43.1-05:00")
        );
        assert_eq!(
            parse_timestamp("2001-12-14 21:59:43.10").as_deref(),
            Some("2001-12-14T21:59:43.1Z")
        );
        assert_eq!(
            parse_timestamp("2001-2-3T4:05:06+00:00").as_deref(),
            Some("2001-02-03T04:05:06Z")
        );
        assert_eq!(parse_timestamp("2001-12-14 21:59:43.10 -5"), None);
        assert_eq!(parse_timestamp("2001-02-30"), None);
        assert_eq!(parse_timestamp("20011-02-03"), None);
    }

    #[test]
    fn floats_like_go_g_format() {
        assert_eq!(format_float(3.5), "3.5");
        assert_eq!(format_float(3.0), "3.0");
        assert_eq!(format_float(1000.0), "1000.0");
        assert_eq!(format_float(1e6), "1e+06");
        assert_eq!(
            format_float(1.2345678901234568e29),
            "1.2345678901234568e+29"
        );
        assert_eq!(format_float(0.0001), "0.0001");
        assert_eq!(format_float(0.00001), "1e-05");
        assert_eq!(format_float(-2.5), "-2.5");
        assert_eq!(format_float(f64::NEG_INFINITY), "-.inf");
    }
}
