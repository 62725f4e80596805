//! sprig's `urlParse` and `urlJoin`: Go 1.26's `net/url` `Parse` and `URL.String`, on bytes (a
//! Go string may hold any), with the defaults of a program whose `go.mod` says 1.26 (Bitnami
//! v0.40.0's): a second colon in an `http`/`https` host is an error (`urlstrictcolons`).

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    QueryComponent,
    Fragment,
}

/// `shouldEscape`.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => return c == b'?',
            Mode::UserPassword => return matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::QueryComponent => return true,
            Mode::Fragment => return false,
            Mode::Host | Mode::Zone => {}
        },
        _ => {}
    }
    !(mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*'))
}

fn unhex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// `unescape`; the error is Go's (it quotes the bad escape, so the caller withholds it unless
/// the template's own constant was parsed).
fn unescape(s: &[u8], mode: Mode) -> Result<Vec<u8>, String> {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                if i + 2 >= s.len()
                    || !s[i + 1].is_ascii_hexdigit()
                    || !s[i + 2].is_ascii_hexdigit()
                {
                    let bad = &s[i..(i + 3).min(s.len())];
                    return Err(format!("invalid URL escape {}", quote(bad)));
                }
                let escape = &s[i..i + 3];
                if mode == Mode::Host && unhex(s[i + 1]) < 8 && escape != b"%25" {
                    return Err(format!("invalid URL escape {}", quote(escape)));
                }
                if mode == Mode::Zone {
                    let v = (unhex(s[i + 1]) << 4) | unhex(s[i + 2]);
                    if escape != b"%25" && v != b' ' && should_escape(v, Mode::Host) {
                        return Err(format!("invalid URL escape {}", quote(escape)));
                    }
                }
                i += 3;
            }
            c => {
                if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                    return Err(format!(
                        "invalid character {} in host name",
                        quote(&s[i..i + 1])
                    ));
                }
                i += 1;
            }
        }
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                out.push((unhex(s[i + 1]) << 4) | unhex(s[i + 2]));
                i += 3;
            }
            b'+' if mode == Mode::QueryComponent => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn quote(b: &[u8]) -> String {
    super::fmt::go_quote(b)
}

/// `escape`.
fn escape(s: &[u8], mode: Mode) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        if c == b' ' && mode == Mode::QueryComponent {
            out.push(b'+');
        } else if should_escape(c, mode) {
            out.extend_from_slice(&[b'%', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
        } else {
            out.push(c);
        }
    }
    out
}

/// The parts of a URL that sprig reads or writes.
#[derive(Default, Debug)]
pub(super) struct Url {
    pub scheme: Vec<u8>,
    pub opaque: Vec<u8>,
    /// Username and, when set, password (unescaped).
    pub user: Option<(Vec<u8>, Option<Vec<u8>>)>,
    pub host: Vec<u8>,
    pub path: Vec<u8>,
    pub raw_query: Vec<u8>,
    pub fragment: Vec<u8>,
    force_query: bool,
    omit_host: bool,
}

fn cut(s: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|&c| c == sep) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

fn rfind(s: &[u8], c: u8) -> Option<usize> {
    s.iter().rposition(|&x| x == c)
}

/// `getScheme`.
fn scheme(raw: &[u8]) -> Result<(&[u8], &[u8]), String> {
    for (i, &c) in raw.iter().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".to_owned()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok((b"", raw)),
        }
    }
    Ok((b"", raw))
}

/// `url.Parse`.
pub(super) fn parse(raw: &[u8]) -> Result<Url, String> {
    let (u, frag) = cut(raw, b'#');
    let mut url = parse_without_fragment(u)?;
    if let Some(frag) = frag
        && !frag.is_empty()
    {
        url.fragment = unescape(frag, Mode::Fragment)?;
    }
    Ok(url)
}

fn parse_without_fragment(raw: &[u8]) -> Result<Url, String> {
    if raw.iter().any(|&b| b < b' ' || b == 0x7f) {
        return Err("net/url: invalid control character in URL".to_owned());
    }
    let mut url = Url::default();
    if raw == b"*" {
        url.path = b"*".to_vec();
        return Ok(url);
    }
    let (scheme, rest) = scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let questions = rest.iter().filter(|&&c| c == b'?').count();
    let mut rest = if rest.ends_with(b"?") && questions == 1 {
        url.force_query = true;
        &rest[..rest.len() - 1]
    } else {
        let (r, q) = cut(rest, b'?');
        url.raw_query = q.unwrap_or_default().to_vec();
        r
    };
    if !rest.starts_with(b"/") {
        if !url.scheme.is_empty() {
            url.opaque = rest.to_vec();
            return Ok(url);
        }
        if cut(rest, b'/').0.contains(&b':') {
            return Err("first path segment in URL cannot contain colon".to_owned());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with(b"///")) && rest.starts_with(b"//") {
        let mut authority = &rest[2..];
        rest = b"";
        if let Some(i) = authority.iter().position(|&c| c == b'/') {
            (authority, rest) = authority.split_at(i);
        }
        let (user, host) = parse_authority(&url.scheme, authority)?;
        url.user = user;
        url.host = host;
    } else if !url.scheme.is_empty() && rest.starts_with(b"/") {
        url.omit_host = true;
    }
    url.path = unescape(rest, Mode::Path)?;
    Ok(url)
}

type User = Option<(Vec<u8>, Option<Vec<u8>>)>;

/// `parseAuthority`.
fn parse_authority(scheme: &[u8], authority: &[u8]) -> Result<(User, Vec<u8>), String> {
    let at = rfind(authority, b'@');
    let host = parse_host(scheme, at.map_or(authority, |i| &authority[i + 1..]))?;
    let Some(at) = at else {
        return Ok((None, host));
    };
    let userinfo = &authority[..at];
    if !valid_userinfo(userinfo) {
        return Err("net/url: invalid userinfo".to_owned());
    }
    let user = match cut(userinfo, b':') {
        (name, None) => (unescape(name, Mode::UserPassword)?, None),
        (name, Some(password)) => (
            unescape(name, Mode::UserPassword)?,
            Some(unescape(password, Mode::UserPassword)?),
        ),
    };
    Ok((Some(user), host))
}

/// `validUserinfo` (which walks runes: anything not ASCII is invalid).
fn valid_userinfo(s: &[u8]) -> bool {
    s.iter().all(|&c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b':'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
                    | b'@'
            )
    })
}

/// `validOptionalPort`: empty, or `:` and digits.
fn valid_optional_port(port: &[u8]) -> bool {
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// `parseHost`.
fn parse_host(scheme: &[u8], host: &[u8]) -> Result<Vec<u8>, String> {
    match rfind(host, b'[') {
        Some(i) if i > 0 => return Err("invalid IP-literal".to_owned()),
        Some(_) => {
            let close = rfind(host, b']').ok_or_else(|| "missing ']' in host".to_owned())?;
            let colon_port = &host[close + 1..];
            if !valid_optional_port(colon_port) {
                return Err(format!("invalid port {} after host", quote(colon_port)));
            }
            let colon_port = unescape(colon_port, Mode::Host)?;
            // `[` is at 0 and `]` after it (rfind of `]` ≥ 1 or the slice below is empty).
            let hostname = host.get(1..close).unwrap_or_default();
            let zone = hostname.windows(3).position(|w| w == b"%25");
            let unescaped = match zone {
                Some(z) => {
                    let mut h = unescape(&hostname[..z], Mode::Host)?;
                    h.extend(unescape(&hostname[z..], Mode::Zone)?);
                    h
                }
                None => unescape(hostname, Mode::Host)?,
            };
            if !is_ipv6_literal(&unescaped)? {
                return Err("invalid IP-literal".to_owned());
            }
            let mut out = b"[".to_vec();
            out.extend_from_slice(&unescaped);
            out.push(b']');
            out.extend_from_slice(&colon_port);
            return Ok(out);
        }
        None => {}
    }
    if let Some(first) = host.iter().position(|&c| c == b':') {
        let last = rfind(host, b':').unwrap_or(first);
        // Go 1.26: a second colon in an http(s) host is an error, elsewhere the last one starts
        // the port.
        let i = if last != first && scheme != b"http" && scheme != b"https" {
            last
        } else {
            first
        };
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)));
        }
    }
    unescape(host, Mode::Host)
}

/// `netip.ParseAddr` of a bracketed host: `Ok(true)` for IPv6 (with an optional non-empty
/// zone), `Ok(false)` for IPv4, an error otherwise.
fn is_ipv6_literal(s: &[u8]) -> Result<bool, String> {
    let bad = || "invalid host: ParseAddr: unable to parse IP".to_owned();
    let text = std::str::from_utf8(s).map_err(|_| bad())?;
    if text.parse::<Ipv4Addr>().is_ok() {
        return Ok(false);
    }
    let addr = match text.split_once('%') {
        Some((_, "")) => return Err(bad()),
        Some((a, _)) => a,
        None => text,
    };
    addr.parse::<Ipv6Addr>().map(|_| true).map_err(|_| bad())
}

impl Url {
    /// `URL.Hostname`: the host without its port and brackets.
    pub fn hostname(&self) -> &[u8] {
        let mut host = self.host.as_slice();
        if let Some(colon) = rfind(host, b':')
            && valid_optional_port(&host[colon..])
        {
            host = &host[..colon];
        }
        if host.len() >= 2 && host.starts_with(b"[") && host.ends_with(b"]") {
            host = &host[1..host.len() - 1];
        }
        host
    }

    /// `Userinfo.String` (empty without a user).
    pub fn userinfo(&self) -> Vec<u8> {
        let Some((name, password)) = &self.user else {
            return Vec::new();
        };
        let mut out = escape(name, Mode::UserPassword);
        if let Some(p) = password {
            out.push(b':');
            out.extend(escape(p, Mode::UserPassword));
        }
        out
    }

    /// `URL.String` of a URL built from fields (no raw path or fragment hints).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.scheme.is_empty() {
            out.extend_from_slice(&self.scheme);
            out.push(b':');
        }
        if !self.opaque.is_empty() {
            out.extend_from_slice(&self.opaque);
        } else {
            let authority = !self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some();
            let omitted = self.omit_host && self.host.is_empty() && self.user.is_none();
            if authority && !omitted {
                if !self.host.is_empty() || !self.path.is_empty() || self.user.is_some() {
                    out.extend_from_slice(b"//");
                }
                if self.user.is_some() {
                    out.extend(self.userinfo());
                    out.push(b'@');
                }
                out.extend(escape(&self.host, Mode::Host));
            }
            let path = if self.path == b"*" {
                b"*".to_vec()
            } else {
                escape(&self.path, Mode::Path)
            };
            if !path.is_empty() && path[0] != b'/' && !self.host.is_empty() {
                out.push(b'/');
            }
            if out.is_empty() && cut(&path, b'/').0.contains(&b':') {
                out.extend_from_slice(b"./");
            }
            out.extend(path);
        }
        if self.force_query || !self.raw_query.is_empty() {
            out.push(b'?');
            out.extend_from_slice(&self.raw_query);
        }
        if !self.fragment.is_empty() {
            out.push(b'#');
            out.extend(escape(&self.fragment, Mode::Fragment));
        }
        out
    }

    /// A URL of the given parts, its user parsed from `userinfo` as sprig's `urlJoin` does
    /// (through `proto://USERINFO@host`).
    pub fn from_parts(parts: [&[u8]; 6], userinfo: &[u8]) -> Result<Url, String> {
        let [scheme, host, path, query, opaque, fragment] = parts;
        let user = if userinfo.is_empty() {
            None
        } else {
            let mut probe = b"proto://".to_vec();
            probe.extend_from_slice(userinfo);
            probe.extend_from_slice(b"@host");
            parse(&probe)
                .map_err(|e| format!("unable to parse userinfo in dict: {e}"))?
                .user
        };
        Ok(Url {
            scheme: scheme.to_vec(),
            opaque: opaque.to_vec(),
            user,
            host: host.to_vec(),
            path: path.to_vec(),
            raw_query: query.to_vec(),
            fragment: fragment.to_vec(),
            force_query: false,
            omit_host: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile inputs never panic (each byte at each place of a few URL shapes).
    #[test]
    fn any_bytes_parse_or_fail_without_panicking() {
        let shapes: [&[u8]; 6] = [
            b"http://u:p@[::1%25e]:80/p?q#f",
            b"s://h:1:2/",
            b"[",
            b"//@[]",
            b"a%2",
            b"x:%",
        ];
        for shape in shapes {
            for i in 0..=shape.len() {
                for b in [
                    0u8, b'%', b'[', b']', b':', b'@', b'/', b'?', b'#', 0xff, b'2',
                ] {
                    let mut s = shape.to_vec();
                    s.insert(i, b);
                    if let Ok(u) = parse(&s) {
                        let _ = (u.hostname(), u.userinfo(), u.to_bytes());
                    }
                }
            }
        }
    }
}
