//! The values a template works with, modelled on the Go types Bitnami's templates see: the root
//! `map[string]string` of unsealed items, `string`, `int`, `int64`, `float64`, `bool`, `nil`,
//! `[]interface{}`, `[]string` and sprig's `map[string]interface{}` — and how Go's `fmt` prints
//! each (`%v`), which is what a template writes.
//!
//! Strings are bytes (a Go string may hold any bytes) kept in [`Zeroizing`] buffers: they are
//! mostly secret values.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use zeroize::Zeroizing;

/// A Go string: any bytes, wiped when dropped.
pub type Bytes = Rc<Zeroizing<Vec<u8>>>;

/// A sprig dict, shared by every value that refers to it.
pub type Dict = Rc<RefCell<BTreeMap<String, Value>>>;

#[derive(Clone, Debug)]
pub enum Value {
    /// Go's invalid `reflect.Value`: a missing map entry; prints `<no value>`.
    Missing,
    Nil,
    Bool(bool),
    /// Go `int`.
    Int(i64),
    /// Go `int64` (what sprig's arithmetic returns).
    Int64(i64),
    Float(f64),
    Str(Bytes),
    /// `[]interface{}`.
    List(Rc<Vec<Value>>),
    /// `[]string`.
    Strings(Rc<Vec<Bytes>>),
    /// `map[string]interface{}`: shared and mutable (sprig's `set` and `unset` change it in place).
    Dict(Dict),
    /// `map[string]string` (the root: the unsealed items).
    StrMap(Rc<BTreeMap<String, Bytes>>),
    /// `time.Time` (sprig's `toDate` and `dateModify` make them).
    Time(Rc<super::sprig_time::GoTime>),
    /// sprig's `semver` result, a `*semver.Version` (or a `semver.Version`, from `IncMajor`…):
    /// prints as its `String()`; its methods without arguments are reachable as fields.
    Semver(Rc<super::sprig_semver::Version>),
}

pub fn bytes(v: impl Into<Vec<u8>>) -> Bytes {
    Rc::new(Zeroizing::new(v.into()))
}

pub fn str_value(v: impl Into<Vec<u8>>) -> Value {
    Value::Str(bytes(v))
}

/// A string value from a buffer that is already wiped on drop.
pub fn zstr(v: Zeroizing<Vec<u8>>) -> Value {
    Value::Str(Rc::new(v))
}

impl Value {
    /// Go's `reflect.Type.String()` of the value (sprig's `typeOf`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Strings(_) => "[]string",
            Value::Dict(_) => "map[string]interface {}",
            Value::StrMap(_) => "map[string]string",
            Value::Time(_) => "time.Time",
            Value::Semver(v) if v.pointer => "*semver.Version",
            Value::Semver(_) => "semver.Version",
        }
    }

    /// Go's `reflect.Kind` name (sprig's `kindOf`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) | Value::Strings(_) => "slice",
            Value::Dict(_) | Value::StrMap(_) => "map",
            Value::Time(_) => "struct",
            Value::Semver(v) if v.pointer => "ptr",
            Value::Semver(_) => "struct",
        }
    }

    /// Go's truth for `if`, `with`, `and`, `or`, `not`: false, 0, nil and empty are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Strings(l) => !l.is_empty(),
            Value::Dict(d) => !d.borrow().is_empty(),
            Value::StrMap(d) => !d.is_empty(),
            // A struct is always true.
            Value::Time(_) => true,
            // A non-nil pointer, or a struct (always true for Go's `if`).
            Value::Semver(_) => true,
        }
    }

    /// Appends Go's `fmt.Sprint` (`%v`) of the value; `depth` bounds nesting (a dict may hold
    /// itself).
    pub fn print(&self, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
        if depth > MAX_NESTING {
            return Err(format!("value nested more than {MAX_NESTING} deep"));
        }
        if out.len() > super::MAX_RENDERED_BYTES {
            return Err(format!(
                "value prints to more than {} bytes",
                super::MAX_RENDERED_BYTES
            ));
        }
        match self {
            Value::Missing => out.extend_from_slice(b"<no value>"),
            Value::Nil => out.extend_from_slice(b"<nil>"),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int(i) | Value::Int64(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::Float(f) => out.extend_from_slice(format_float_g(*f).as_bytes()),
            Value::Str(s) => out.extend_from_slice(s),
            Value::Time(t) => out.extend_from_slice(&t.to_go_string()),
            Value::List(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    match item {
                        Value::Missing => out.extend_from_slice(b"<nil>"),
                        item => item.print(out, depth + 1)?,
                    }
                }
                out.push(b']');
            }
            Value::Strings(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(item);
                }
                out.push(b']');
            }
            Value::Dict(map) => {
                out.extend_from_slice(b"map[");
                for (i, (k, v)) in map.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(k.as_bytes());
                    out.push(b':');
                    v.print(out, depth + 1)?;
                }
                out.push(b']');
            }
            Value::StrMap(map) => {
                out.extend_from_slice(b"map[");
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(k.as_bytes());
                    out.push(b':');
                    out.extend_from_slice(v);
                }
                out.push(b']');
            }
            Value::Semver(v) => out.extend_from_slice(&v.to_bytes()),
        }
        Ok(())
    }

    /// `fmt.Sprint(v)` as bytes.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        let mut out = Zeroizing::new(Vec::new());
        self.print(&mut out, 0)?;
        Ok(out)
    }

    pub fn is_str(&self) -> bool {
        matches!(self, Value::Str(_))
    }

    /// Roughly how many bytes the value holds (for the memory bound); a dict is counted by its
    /// entries only (it may hold itself).
    pub fn weight(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::List(l) => l
                .iter()
                .map(|v| 8 + if let Value::Str(s) = v { s.len() } else { 8 })
                .sum(),
            Value::Strings(l) => l.iter().map(|s| s.len() + 8).sum(),
            Value::Dict(d) => d.borrow().len() * 16,
            Value::StrMap(d) => d.len() * 16,
            _ => 8,
        }
    }
}

/// Deepest nesting of lists and dicts printed or encoded.
pub const MAX_NESTING: usize = 64;

/// Shortest decimal digits and exponent of `f` (finite, non-zero, positive): `d.ddd × 10^exp`.
pub(super) fn shortest(f: f64) -> (String, i32) {
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp = exp.parse().unwrap_or(0);
    tie_to_even(f, &digits, exp).unwrap_or((digits, exp))
}

/// Where `f` lies exactly halfway between two shortest candidates (`…0625` at 16 digits), Go's
/// `strconv` takes the even one and Rust the upper one: Go's choice, when it reads back as `f`.
fn tie_to_even(f: f64, digits: &str, exp: i32) -> Option<(String, i32)> {
    // f = odd × 2^e2, and its exact decimal digits when there are at most 18 of them.
    let bits = f.to_bits();
    let (mut m, mut e2) = (bits & ((1 << 52) - 1), ((bits >> 52) & 0x7ff) as i32);
    if e2 == 0 {
        e2 = 1;
    } else {
        m |= 1 << 52;
    }
    e2 -= 1075;
    let zeros = m.trailing_zeros();
    let (m, e2) = (u128::from(m >> zeros), e2 + zeros as i32);
    let (exact, exact_exp) = if e2 >= 0 {
        // m < 2^53: below 2^60 (more digits than 18 above) the shift cannot overflow.
        if e2 >= 60 {
            return None;
        }
        let n = (m << e2).min(1_000_000_000_000_000_000);
        if n == 1_000_000_000_000_000_000 {
            return None;
        }
        let t = n.to_string();
        let len = t.len() as i32;
        (t, len - 1)
    } else {
        if -e2 > 25 {
            return None;
        }
        let t = (m * 5u128.pow((-e2) as u32)).to_string();
        let len = t.len() as i32;
        (t.trim_end_matches('0').to_owned(), len - 1 + e2)
    };
    let n = digits.len();
    if exact.len() != n + 1 || exact_exp != exp || !exact.ends_with('5') {
        return None;
    }
    // The even one of the two n-digit neighbours.
    let mut even = exact.as_bytes()[..n].to_vec();
    let mut even_exp = exp;
    if even.last().is_some_and(|d| (d - b'0') % 2 == 1) {
        let mut i = n;
        loop {
            if i == 0 {
                // 99…9 + 1: one more digit.
                even.insert(0, b'1');
                even_exp += 1;
                break;
            }
            i -= 1;
            if even[i] == b'9' {
                even[i] = b'0';
            } else {
                even[i] += 1;
                break;
            }
        }
    }
    let even = String::from_utf8(even).ok()?;
    let even = even.trim_end_matches('0');
    let reads_back = format!("{even}e{}", even_exp - (even.len() as i32 - 1))
        .parse::<f64>()
        .is_ok_and(|g| g == f);
    reads_back.then(|| (even.to_owned(), even_exp))
}

/// Go's `%v` of a float64, `strconv.FormatFloat(f, 'g', -1, 64)`: shortest digits, exponent form
/// when the decimal exponent is below -4 or at least 6.
pub fn format_float_g(f: f64) -> String {
    format_float(f, 6)
}

/// Shortest digits of `f`, in exponent form when the exponent is below -4 or at least `eprec`
/// (6 for Go's `%v`, 21 for `encoding/json`).
pub fn format_float(f: f64, eprec: i32) -> String {
    format_float_with(f, |exp| exp < -4 || exp >= eprec)
}

/// Shortest digits of `f` without an exponent (`strconv.FormatFloat(f, 'f', -1, 64)`, what
/// `encoding/json` writes between 1e-6 and 1e21).
pub fn format_float_fixed(f: f64) -> String {
    format_float_with(f, |_| false)
}

fn format_float_with(f: f64, exponent_form: impl Fn(i32) -> bool) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let (digits, exp) = shortest(f.abs());
    float_text(f < 0.0, &digits, exp, exponent_form(exp))
}

/// A float written from its shortest decimal `digits` and decimal exponent `exp`, in exponent
/// form (`1.5e+06`, two exponent digits at least) or plain (`1500000`, `0.0015`), as Go's
/// `strconv.FormatFloat` with format `g` and precision -1 writes it.
pub(super) fn float_text(negative: bool, digits: &str, exp: i32, exponent_form: bool) -> String {
    let sign = if negative { "-" } else { "" };
    if exponent_form {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_prints_them() {
        // Go 1.26: fmt.Println of each.
        for (f, go) in [
            (1.5, "1.5"),
            (1e6, "1e+06"),
            (100000.0, "100000"),
            (3.0, "3"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.25, "-2.25"),
            (123456789.0, "1.23456789e+08"),
            (1e21, "1e+21"),
            // Exactly halfway at the shortest length: Go rounds to even.
            (-81536328395610.62, "-8.153632839561062e+13"),
            (-81536328395609.62, "-8.153632839560962e+13"),
        ] {
            assert_eq!(format_float_g(f), go, "{f}");
        }
    }
}
