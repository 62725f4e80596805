//! Go's `strconv.ParseFloat(s, 64)`, as spf13/cast's `ToFloat64` (and so sprig's float functions)
//! uses it: `None` where Go returns an error, overflow included (cast then gives 0).

/// `strconv.ParseFloat(s, 64)`: decimal and hexadecimal (`0x1.8p3`) forms, `_` between digits,
/// `inf`/`infinity` with an optional sign and `nan` without one (any case).
pub fn parse_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let (negative, unsigned) = match lower.as_bytes().first() {
        Some(b'-') => (true, &lower[1..]),
        Some(b'+') => (false, &lower[1..]),
        _ => (false, lower.as_str()),
    };
    if unsigned == "inf" || unsigned == "infinity" {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return Some(f64::NAN);
    }
    if s.contains('_') && !underscore_ok(s) {
        return None;
    }
    let plain: String = unsigned.chars().filter(|&c| c != '_').collect();
    let f = if let Some(hex) = plain.strip_prefix("0x").filter(|h| !h.is_empty()) {
        parse_hex(hex)?
    } else {
        // Rust's grammar is Go's decimal one, except that it also takes these words.
        if plain.contains("inf") || plain.contains("nan") {
            return None;
        }
        plain.parse::<f64>().ok()?
    };
    // Out of range is an error in Go (ErrRange with ±Inf).
    if f.is_infinite() {
        return None;
    }
    Some(if negative { -f } else { f })
}

/// `underscoreOK`: each `_` between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1].eq_ignore_ascii_case(&b'x');
    }
    for &c in &s[i..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// The digits of a hexadecimal float after `0x` (lowercase, no `_`): `readFloat` and `atofHex`.
fn parse_hex(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (mut mantissa, mut nd, mut nd_mant, mut dp) = (0u64, 0i64, 0i64, 0i64);
    let (mut saw_dot, mut saw_digits, mut trunc) = (false, false, false);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'.' {
            if saw_dot {
                break;
            }
            saw_dot = true;
            dp = nd;
        } else if c.is_ascii_hexdigit() {
            saw_digits = true;
            if c == b'0' && nd == 0 {
                dp -= 1;
            } else {
                nd += 1;
                if nd_mant < 16 {
                    mantissa = mantissa * 16 + u64::from((c as char).to_digit(16)?);
                    nd_mant += 1;
                } else if c != b'0' {
                    trunc = true;
                }
            }
        } else {
            break;
        }
        i += 1;
    }
    if !saw_digits {
        return None;
    }
    if !saw_dot {
        dp = nd;
    }
    dp *= 4;
    nd_mant *= 4;
    // A hexadecimal mantissa must have a `p` exponent, and nothing may follow it.
    if b.get(i) != Some(&b'p') {
        return None;
    }
    i += 1;
    let sign = match b.get(i) {
        Some(b'+') => {
            i += 1;
            1
        }
        Some(b'-') => {
            i += 1;
            -1
        }
        _ => 1,
    };
    if i >= b.len() || !b[i..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut e = 0i64;
    for &c in &b[i..] {
        if e < 10_000 {
            e = e * 10 + i64::from(c - b'0');
        }
    }
    dp += e * sign;
    let exp = if mantissa != 0 { dp - nd_mant } else { 0 };
    Some(hex_to_float(mantissa, exp, trunc))
}

/// `atofHex` for float64: `mantissa × 2^exp`, rounded to even; overflow is ±Inf.
fn hex_to_float(mut mantissa: u64, exp: i64, trunc: bool) -> f64 {
    const MANT_BITS: i64 = 52;
    const BIAS: i64 = -1023;
    let max_exp = (1 << 11) + BIAS - 2;
    let min_exp = BIAS + 1;
    let mut exp = exp + MANT_BITS;
    while mantissa != 0 && mantissa >> (MANT_BITS + 2) == 0 {
        mantissa <<= 1;
        exp -= 1;
    }
    if trunc {
        mantissa |= 1;
    }
    while mantissa >> (1 + MANT_BITS + 2) != 0 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    while mantissa > 1 && exp < min_exp - 2 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    let mut round = mantissa & 3;
    mantissa >>= 2;
    round |= mantissa & 1;
    exp += 2;
    if round == 3 {
        mantissa += 1;
        if mantissa == 1 << (1 + MANT_BITS) {
            mantissa >>= 1;
            exp += 1;
        }
    }
    if mantissa >> MANT_BITS == 0 {
        exp = BIAS;
    }
    if exp > max_exp {
        return f64::INFINITY;
    }
    let bits = (mantissa & ((1 << MANT_BITS) - 1)) | ((((exp - BIAS) & 0x7ff) as u64) << MANT_BITS);
    f64::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::parse_float;

    #[test]
    fn parses_as_go_parse_float() {
        // Go 1.26's strconv.ParseFloat(s, 64) of each (None: an error).
        for (s, go) in [
            ("1_000", Some(1000.0)),
            ("0x1p-2", Some(0.25)),
            ("0x1.8p1", Some(3.0)),
            ("1e400", None),
            ("-1e400", None),
            ("1e-400", Some(0.0)),
            ("+nan", None),
            ("-Inf", Some(f64::NEG_INFINITY)),
            ("infinity", Some(f64::INFINITY)),
            ("infin", None),
            ("1__0", None),
            ("_1", None),
            ("0x_1p0", Some(1.0)),
            ("0x1", None),
            ("0x1p", None),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("1e", None),
            (" 1", None),
            ("0x1.fffffffffffff8p1023", None),
            ("0x1p-1075", Some(0.0)),
            ("0x1.8p-1074", Some(1e-323)),
            ("0X1P+2", Some(4.0)),
            ("1_000.5", Some(1000.5)),
            ("1_000e1_0", Some(1e13)),
            ("0x1.000000000000000001p0", Some(1.0)),
            ("0x1.00000000000008p0", Some(1.0)),
            ("0x1.00000000000018p0", Some(1.0000000000000004)),
        ] {
            assert_eq!(parse_float(s), go, "{s}");
        }
        assert!(parse_float("NaN").is_some_and(f64::is_nan));
    }
}
