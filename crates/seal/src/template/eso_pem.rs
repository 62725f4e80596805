//! External Secrets Operator's `filterPEM` and `filterCertChain` (v0.16.2,
//! `pkg/template/v2/pem.go`, `pem_chain.go`), byte for byte: Go's `encoding/pem` reading (the
//! linear-time `Decode` of current Go: the last BEGIN line before the first END line) and writing
//! (64-column base64, headers with `Proc-Type` first), and ESO's ordering of a chain by
//! authority and subject key identifiers.
//!
//! Both read their input once, in time linear in its length; `filterCertChain` compares every
//! certificate with every other, at most one per 200 bytes of input.

use super::value::{Value, str_value};
use std::collections::BTreeMap;

type R<T> = Result<T, String>;

/// One PEM block as Go's `pem.Decode` returns it.
struct Block {
    kind: Vec<u8>,
    headers: BTreeMap<Vec<u8>, Vec<u8>>,
    bytes: Vec<u8>,
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"\n-----END ";
const DASHES: &[u8] = b"-----";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Go's `getLine`: the line without its break and trailing blanks, and the bytes it used.
fn get_line(data: &[u8]) -> (&[u8], usize) {
    let (mut end, used) = match data.iter().position(|&b| b == b'\n') {
        None => (data.len(), data.len()),
        Some(i) => (i, i + 1),
    };
    if used > end && end > 0 && data[end - 1] == b'\r' {
        end -= 1;
    }
    let mut line = &data[..end];
    while let [rest @ .., b' ' | b'\t'] = line {
        line = rest;
    }
    (line, used)
}

/// `bytes.TrimSpace`: Unicode white space at both ends.
fn trim_space(mut b: &[u8]) -> &[u8] {
    while let Some((c, w)) = first_char(b)
        && c.is_whitespace()
    {
        b = &b[w..];
    }
    while let Some((c, w)) = last_char(b)
        && c.is_whitespace()
    {
        b = &b[..b.len() - w];
    }
    b
}

fn first_char(b: &[u8]) -> Option<(char, usize)> {
    let n = b.len().min(4);
    (1..=n).find_map(|w| {
        std::str::from_utf8(&b[..w])
            .ok()
            .and_then(|s| s.chars().next())
            .map(|c| (c, w))
    })
}

fn last_char(b: &[u8]) -> Option<(char, usize)> {
    let n = b.len().min(4);
    (1..=n).find_map(|w| {
        std::str::from_utf8(&b[b.len() - w..])
            .ok()
            .and_then(|s| s.chars().next())
            .map(|c| (c, w))
    })
}

/// Go's `pem.Decode`: the next block and the offset of what follows it.
fn decode(d: &[u8]) -> Option<(Block, usize)> {
    let mut rest = 0usize;
    let mut end_trailer: isize = 0;
    loop {
        if end_trailer < 0 || end_trailer as usize > d.len() - rest {
            return None;
        }
        rest += end_trailer as usize;
        let r = &d[rest..];
        let end_index = find(r, END)?;
        end_trailer = (end_index + END.len()) as isize;
        let begin = match rfind(&r[..end_index], BEGIN) {
            Some(b) if b == 0 || r[b - 1] == b'\n' => b,
            _ => continue,
        };
        let shift = (begin + BEGIN.len()) as isize;
        rest += shift as usize;
        let mut end_index = end_index as isize - shift;
        end_trailer -= shift;
        let (type_line, used) = get_line(&d[rest..]);
        let type_line = type_line.to_vec();
        rest += used;
        end_index -= used as isize;
        end_trailer -= used as isize;
        let Some(kind) = type_line.strip_suffix(DASHES) else {
            continue;
        };
        let mut headers = BTreeMap::new();
        loop {
            if rest == d.len() {
                return None;
            }
            let (line, used) = get_line(&d[rest..]);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                break;
            };
            headers.insert(
                trim_space(&line[..colon]).to_vec(),
                trim_space(&line[colon + 1..]).to_vec(),
            );
            rest += used;
            end_index -= used as isize;
            end_trailer -= used as isize;
        }
        if !headers.is_empty() && end_index < 0 {
            continue;
        }
        if end_trailer < 0 || end_trailer as usize > d.len() - rest {
            continue;
        }
        let trailer = &d[rest + end_trailer as usize..];
        let trailer_len = kind.len() + DASHES.len();
        if trailer.len() < trailer_len {
            continue;
        }
        let (trailer, rest_of_line) = trailer.split_at(trailer_len);
        if !trailer.starts_with(kind) || !trailer.ends_with(DASHES) {
            continue;
        }
        if !get_line(rest_of_line).0.is_empty() {
            continue;
        }
        let mut bytes = Vec::new();
        if end_index > 0 {
            let data: Vec<u8> = d[rest..rest + end_index as usize]
                .iter()
                .copied()
                .filter(|&b| b != b' ' && b != b'\t')
                .collect();
            match super::sprig::base64_decode(&data) {
                Ok(b) => bytes = b,
                Err(_) => continue,
            }
        }
        let after = (rest as isize + end_index + END.len() as isize - 1) as usize;
        let (_, used) = get_line(&d[after..]);
        let block = Block {
            kind: kind.to_vec(),
            headers,
            bytes,
        };
        return Some((block, after + used));
    }
}

/// Go's `pem.Encode`.
fn encode(b: &Block, out: &mut Vec<u8>) {
    out.extend_from_slice(BEGIN);
    out.extend_from_slice(&b.kind);
    out.extend_from_slice(b"-----\n");
    if !b.headers.is_empty() {
        let proc_type = b"Proc-Type".as_slice();
        let header = |out: &mut Vec<u8>, k: &[u8], v: &[u8]| {
            out.extend_from_slice(k);
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.push(b'\n');
        };
        if let Some(v) = b.headers.get(proc_type) {
            header(out, proc_type, v);
        }
        for (k, v) in &b.headers {
            if k != proc_type {
                header(out, k, v);
            }
        }
        out.push(b'\n');
    }
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(&b.bytes);
    for line in text.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(&END[1..]);
    out.extend_from_slice(&b.kind);
    out.extend_from_slice(b"-----\n");
}

/// Every block of `input`, and whether bytes that are not a block are left after the last one.
fn blocks(input: &[u8]) -> (Vec<Block>, bool) {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some((block, used)) = decode(&input[at..]) {
        found.push(block);
        at += used;
    }
    (found, at < input.len())
}

/// `strings.EqualFold` (simple case folding, Unicode-aware).
fn equal_fold(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (super::sprig::text(a), super::sprig::text(b));
    let fold = |s: &str| -> Vec<char> { s.chars().flat_map(char::to_lowercase).collect() };
    a.chars().count() == b.chars().count() && fold(&a) == fold(&b)
}

/// ESO's `filterPEM`: the blocks of type `kind` (any case), re-encoded; "found junk" when none
/// matches and something that is not a block is left.
pub fn filter_pem(kind: &[u8], input: &[u8]) -> R<Value> {
    let (found, junk) = blocks(input);
    let mut out = Vec::new();
    for b in found.iter().filter(|b| equal_fold(&b.kind, kind)) {
        encode(b, &mut out);
    }
    if out.is_empty() && junk {
        return Err("error filtering pem: found junk".to_owned());
    }
    super::sprig::bound_bytes(out.len())?;
    Ok(str_value(out))
}

/// A certificate of a chain: its DER and key identifiers (`None` where the extension is absent,
/// which Go's `bytes.Equal` takes as equal to an empty identifier).
struct Cert {
    der: Vec<u8>,
    authority: Option<Vec<u8>>,
    subject: Option<Vec<u8>>,
}

fn same(a: &Option<Vec<u8>>, b: &Option<Vec<u8>>) -> bool {
    a.as_deref().unwrap_or_default() == b.as_deref().unwrap_or_default()
}

fn is_root(c: &Cert) -> bool {
    c.authority.is_none() || same(&c.authority, &c.subject)
}

fn parse_cert(der: Vec<u8>) -> R<Cert> {
    use x509_parser::prelude::*;
    let (rest, cert) =
        X509Certificate::from_der(&der).map_err(|_| "x509: malformed certificate".to_owned())?;
    if !rest.is_empty() {
        return Err("x509: trailing data".to_owned());
    }
    let mut authority = None;
    let mut subject = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            ParsedExtension::SubjectKeyIdentifier(ski) => subject = Some(ski.0.to_vec()),
            _ => {}
        }
    }
    drop(cert);
    Ok(Cert {
        der,
        authority,
        subject,
    })
}

/// ESO's `fetchX509CertChains`: every block of `input` a certificate, ordered leaf first by
/// following each one's authority key identifier to the certificate with that subject key
/// identifier.
fn chain(input: &[u8]) -> R<Vec<Cert>> {
    let (found, _) = blocks(input);
    let certs: Vec<Cert> = found
        .into_iter()
        .map(|b| parse_cert(b.bytes))
        .collect::<R<_>>()?;
    let n = certs.len();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut is_parent = vec![false; n];
    for i in 0..n {
        if let Some(j) = (0..n).find(|&j| j != i && same(&certs[i].authority, &certs[j].subject)) {
            is_parent[j] = true;
            parent[i] = Some(j);
        }
    }
    let mut leaves = (0..n).filter(|&i| !is_parent[i]);
    let Some(leaf) = leaves.next() else {
        return Err("no leaf certificate found".to_owned());
    };
    if leaves.next().is_some() {
        return Err("found multiple leaf or disjunct certificates".to_owned());
    }
    let mut order = Vec::new();
    let mut at = Some(leaf);
    while let Some(i) = at {
        if order.len() >= n {
            return Err("constructing chain resulted in cycle".to_owned());
        }
        order.push(i);
        at = parent[i];
    }
    let mut slots: Vec<Option<Cert>> = certs.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

fn cert_pem(c: &Cert, out: &mut Vec<u8>) {
    let block = Block {
        kind: b"CERTIFICATE".to_vec(),
        headers: BTreeMap::new(),
        bytes: c.der.clone(),
    };
    encode(&block, out);
}

/// ESO's `filterCertChain`: the `leaf` (when it names an authority other than itself), the
/// `intermediate`s (up to the first root) or the `root` of the chain in `input`; anything else is
/// `""`.
pub fn filter_cert_chain(kind: &[u8], input: &[u8]) -> R<Value> {
    let ordered = chain(input)?;
    let mut out = Vec::new();
    match kind {
        b"leaf" => {
            let c = &ordered[0];
            if c.authority.is_some() && !same(&c.authority, &c.subject) {
                cert_pem(c, &mut out);
            }
        }
        b"intermediate" => {
            for c in ordered.iter().skip(1) {
                if is_root(c) {
                    break;
                }
                cert_pem(c, &mut out);
            }
        }
        b"root" => {
            if let Some(c) = ordered.last().filter(|c| is_root(c)) {
                cert_pem(c, &mut out);
            }
        }
        _ => {}
    }
    super::sprig::bound_bytes(out.len())?;
    Ok(str_value(out))
}
