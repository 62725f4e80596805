//! sprig's `semver` and `semverCompare`: Masterminds/semver v3.4.0 (the version Bitnami v0.40.0
//! builds with), whose parsing is a handful of regular expressions — used here as they are, with
//! Go's `\s` (`[\t\n\f\r ]`) spelled out.

use regex::bytes::{Captures, Regex};
use std::cmp::Ordering;
use std::sync::LazyLock;

const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";
const S: &str = r"[\t\n\f\r ]";

fn re(pattern: String) -> Regex {
    // The patterns are constants; `(?-u)` makes them match bytes as Go's match ASCII.
    Regex::new(&format!("(?-u){pattern}")).unwrap_or_else(|e| unreachable!("{e}"))
}

static LOOSE_VERSION: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$".to_owned())
});
static CONSTRAINT: LazyLock<Regex> = LazyLock::new(|| re(format!(r"^{S}*({OPS}){S}*({CV}){S}*$")));
static RANGE: LazyLock<Regex> = LazyLock::new(|| re(format!(r"{S}*({CV}){S}+-{S}+({CV}){S}*")));
static FIND: LazyLock<Regex> = LazyLock::new(|| re(format!(r"({OPS}){S}*({CV})")));
static VALID: LazyLock<Regex> = LazyLock::new(|| {
    re(format!(
        r"^({S}*({OPS}){S}*({CV}){S}*)((?:{S}+|,{S}*)({OPS}){S}*({CV}){S}*)*$"
    ))
});

/// A `*semver.Version` (or, from `IncMajor` and its kin, a `semver.Version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Vec<u8>,
    pub metadata: Vec<u8>,
    pub original: Vec<u8>,
    /// A pointer (`*semver.Version`), as `semver` returns.
    pub pointer: bool,
}

fn group<'a>(m: &'a Captures, i: usize) -> &'a [u8] {
    m.get(i).map_or(&b""[..], |g| g.as_bytes())
}

/// `strconv.ParseUint(s, 10, 64)` of ASCII digits.
fn parse_uint(digits: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| "error parsing version segment: value out of range".to_owned())
}

fn only(s: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    s.iter().all(|&c| allowed(c))
}

fn allowed(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

fn validate_prerelease(p: &[u8]) -> Result<(), String> {
    for part in p.split(|&c| c == b'.') {
        if part.is_empty() {
            return Err("invalid prerelease string".to_owned());
        } else if only(part, |c| c.is_ascii_digit()) {
            if part.len() > 1 && part[0] == b'0' {
                return Err("version segment starts with 0".to_owned());
            }
        } else if !only(part, allowed) {
            return Err("invalid prerelease string".to_owned());
        }
    }
    Ok(())
}

fn validate_metadata(m: &[u8]) -> Result<(), String> {
    if m.split(|&c| c == b'.')
        .any(|p| p.is_empty() || !only(p, allowed))
    {
        return Err("invalid metadata string".to_owned());
    }
    Ok(())
}

impl Version {
    /// `semver.NewVersion` (with `CoerceNewVersion`, the default: the loose syntax).
    pub fn parse(v: &[u8]) -> Result<Version, String> {
        let m = LOOSE_VERSION
            .captures(v)
            .ok_or_else(|| "invalid semantic version".to_owned())?;
        let segment = |i: usize| -> Result<u64, String> {
            let g = group(&m, i);
            if g.is_empty() {
                Ok(0)
            } else {
                parse_uint(g.strip_prefix(b".").unwrap_or(g))
            }
        };
        let version = Version {
            major: segment(1)?,
            minor: segment(2)?,
            patch: segment(3)?,
            pre: group(&m, 5).to_vec(),
            metadata: group(&m, 8).to_vec(),
            original: v.to_vec(),
            pointer: true,
        };
        if !version.pre.is_empty() {
            validate_prerelease(&version.pre)?;
        }
        if !version.metadata.is_empty() {
            validate_metadata(&version.metadata)?;
        }
        Ok(version)
    }

    /// A version with every field zero, of the same type (what copystructure's deep copy gives:
    /// it copies no unexported field).
    pub fn zeroed(&self) -> Version {
        Version {
            major: 0,
            minor: 0,
            patch: 0,
            pre: Vec::new(),
            metadata: Vec::new(),
            original: Vec::new(),
            pointer: self.pointer,
        }
    }

    /// `Version.String`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{}.{}.{}", self.major, self.minor, self.patch).into_bytes();
        if !self.pre.is_empty() {
            out.push(b'-');
            out.extend_from_slice(&self.pre);
        }
        if !self.metadata.is_empty() {
            out.push(b'+');
            out.extend_from_slice(&self.metadata);
        }
        out
    }

    /// `IncMajor`, `IncMinor` and `IncPatch`: a `semver.Version` (not a pointer).
    pub fn incremented(&self, which: &str) -> Version {
        let mut next = self.clone();
        next.pointer = false;
        next.metadata.clear();
        match which {
            "IncMajor" => {
                next.major = self.major.wrapping_add(1);
                next.minor = 0;
                next.patch = 0;
            }
            "IncMinor" => {
                next.minor = self.minor.wrapping_add(1);
                next.patch = 0;
            }
            _ if self.pre.is_empty() => next.patch = self.patch.wrapping_add(1),
            _ => {}
        }
        next.pre.clear();
        next.original = [self.v_prefix(), &next.to_bytes()].concat();
        next
    }

    /// `SetPrerelease` (`prerelease`) or `SetMetadata`: a `semver.Version` with that suffix.
    pub fn with_suffix(&self, prerelease: bool, suffix: &[u8]) -> Result<Version, String> {
        if !suffix.is_empty() {
            if prerelease {
                validate_prerelease(suffix)?;
            } else {
                validate_metadata(suffix)?;
            }
        }
        let mut next = self.clone();
        next.pointer = false;
        if prerelease {
            next.pre = suffix.to_vec();
        } else {
            next.metadata = suffix.to_vec();
        }
        next.original = [self.v_prefix(), &next.to_bytes()].concat();
        Ok(next)
    }

    fn v_prefix(&self) -> &'static [u8] {
        if self.original.starts_with(b"v") {
            b"v"
        } else {
            b""
        }
    }

    /// `Version.Compare`.
    pub fn compare(&self, o: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(o.major, o.minor, o.patch))
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &o.pre),
            })
    }
}

fn compare_prerelease(v: &[u8], o: &[u8]) -> Ordering {
    let s: Vec<&[u8]> = v.split(|&c| c == b'.').collect();
    let t: Vec<&[u8]> = o.split(|&c| c == b'.').collect();
    for i in 0..s.len().max(t.len()) {
        let a = s.get(i).copied().unwrap_or_default();
        let b = t.get(i).copied().unwrap_or_default();
        let d = compare_pre_part(a, b);
        if d != Ordering::Equal {
            return d;
        }
    }
    Ordering::Equal
}

fn compare_pre_part(s: &[u8], o: &[u8]) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    let num = |x: &[u8]| {
        std::str::from_utf8(x)
            .ok()
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok())
    };
    match (num(s), num(o)) {
        (None, None) => {
            if s > o {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(a), Some(b)) => {
            if a > b {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

struct Constraint {
    con: Version,
    op: Op,
    minor_dirty: bool,
    dirty: bool,
    patch_dirty: bool,
}

fn is_x(x: &[u8]) -> bool {
    matches!(x, b"x" | b"*" | b"X")
}

/// `parseConstraint`.
fn parse_constraint(c: &[u8]) -> Result<Constraint, String> {
    let improper = || "improper constraint".to_owned();
    let m = CONSTRAINT.captures(c).ok_or_else(improper)?;
    let op = match group(&m, 1) {
        b"" | b"=" => Op::TildeOrEqual,
        b"!=" => Op::NotEqual,
        b">" => Op::Greater,
        b"<" => Op::Less,
        b">=" | b"=>" => Op::GreaterEqual,
        b"<=" | b"=<" => Op::LessEqual,
        b"~" | b"~>" => Op::Tilde,
        _ => Op::Caret,
    };
    let (major, minor, patch, pre) = (group(&m, 3), group(&m, 4), group(&m, 5), group(&m, 6));
    let strip = |g: &[u8]| g.strip_prefix(b".").unwrap_or(g).to_vec();
    let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
    let ver = if is_x(major) || major.is_empty() {
        dirty = true;
        [&b"0.0.0"[..], pre].concat()
    } else if is_x(&strip(minor)) || minor.is_empty() {
        (dirty, minor_dirty) = (true, true);
        [major, b".0.0", pre].concat()
    } else if is_x(&strip(patch)) || patch.is_empty() {
        (dirty, patch_dirty) = (true, true);
        [major, minor, b".0", pre].concat()
    } else {
        group(&m, 2).to_vec()
    };
    let con = Version::parse(&ver).map_err(|_| "constraint parser error".to_owned())?;
    Ok(Constraint {
        con,
        op,
        minor_dirty,
        dirty,
        patch_dirty,
    })
}

impl Constraint {
    fn check(&self, v: &Version, include_pre: bool) -> bool {
        if !v.pre.is_empty() && !include_pre {
            return false;
        }
        let c = &self.con;
        match self.op {
            Op::NotEqual => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    } else if self.minor_dirty {
                        return false;
                    } else if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    } else if self.patch_dirty {
                        return (!v.pre.is_empty() || !c.pre.is_empty())
                            && compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                    }
                }
                v.compare(c) != Ordering::Equal
            }
            Op::Greater => {
                if !self.dirty {
                    return v.compare(c) == Ordering::Greater;
                }
                if v.major != c.major {
                    return v.major > c.major;
                }
                if self.minor_dirty {
                    return false;
                }
                if self.patch_dirty {
                    return v.minor > c.minor;
                }
                v.compare(c) == Ordering::Greater
            }
            Op::Less => v.compare(c) == Ordering::Less,
            Op::GreaterEqual => v.compare(c) != Ordering::Less,
            Op::LessEqual => {
                if !self.dirty {
                    return v.compare(c) != Ordering::Greater;
                }
                !(v.major > c.major
                    || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            Op::Tilde => self.tilde(v),
            Op::TildeOrEqual => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v.compare(c) == Ordering::Equal
                }
            }
            Op::Caret => {
                if v.compare(c) == Ordering::Less {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                c.patch == v.patch
            }
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.minor_dirty)
    }
}

/// `rewriteRange`: each `A - B` becomes `>= A, <= B `.
fn rewrite_range(c: &[u8]) -> Vec<u8> {
    let mut out = c.to_vec();
    for m in RANGE.captures_iter(c) {
        let whole = group(&m, 0);
        let t = [b">= ", group(&m, 1), b", <= ", group(&m, 11), b" "].concat();
        if let Some(at) = out.windows(whole.len()).position(|w| w == whole) {
            out.splice(at..at + whole.len(), t);
        }
    }
    out
}

/// `semverCompare constraint version`; `steps` is charged one per constraint.
pub(super) fn compare(
    constraint: &[u8],
    version: &[u8],
    steps: &mut dyn FnMut(u64) -> Result<(), String>,
) -> Result<bool, String> {
    let rewritten = rewrite_range(constraint);
    let mut groups = Vec::new();
    for or in split_or(&rewritten) {
        if !VALID.is_match(or) {
            return Err("improper constraint".to_owned());
        }
        let mut group = Vec::new();
        let mut has_pre = false;
        let found: Vec<&[u8]> = FIND.find_iter(or).map(|m| m.as_bytes()).collect();
        let found = if found.is_empty() { vec![or] } else { found };
        steps(found.len() as u64)?;
        for s in found {
            let c = parse_constraint(s)?;
            has_pre |= !c.con.pre.is_empty();
            group.push(c);
        }
        groups.push((group, has_pre));
    }
    let v = Version::parse(version)?;
    Ok(groups
        .iter()
        .any(|(group, has_pre)| group.iter().all(|c| c.check(&v, *has_pre))))
}

/// `strings.Split(c, "||")`.
fn split_or(c: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = c;
    while let Some(i) = rest.windows(2).position(|w| w == b"||") {
        parts.push(&rest[..i]);
        rest = &rest[i + 2..];
    }
    parts.push(rest);
    parts
}
