//! A small PEM reader that keeps decoded blocks in zeroizing buffers (private keys pass through it).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// One decoded PEM block.
pub(crate) struct PemBlock {
    /// The label after `BEGIN`, e.g. `RSA PRIVATE KEY`.
    pub label: String,
    /// Whether the block had RFC 1421 headers (`Proc-Type: 4,ENCRYPTED` etc.).
    pub has_headers: bool,
    /// The DER contents.
    pub der: Zeroizing<Vec<u8>>,
}

/// Every well-formed PEM block in `text`, in order. Malformed blocks are returned as `Err(label)`.
pub(crate) fn blocks(text: &[u8]) -> Vec<Result<PemBlock, String>> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = Zeroizing::new(String::new());
        let mut has_headers = false;
        let mut closed = false;
        for inner in lines.by_ref() {
            let inner = inner.trim();
            if inner == end {
                closed = true;
                break;
            }
            if inner.contains(':') {
                has_headers = true;
                continue;
            }
            body.push_str(inner);
        }
        let decoded = STANDARD.decode(body.as_bytes()).map(Zeroizing::new);
        match (closed, decoded) {
            (true, Ok(der)) => out.push(Ok(PemBlock {
                label: label.to_owned(),
                has_headers,
                der,
            })),
            _ => out.push(Err(label.to_owned())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_and_flags_bad_ones() {
        let text = b"junk\n-----BEGIN A-----\nAQID\n-----END A-----\n-----BEGIN B-----\n!!!\n-----END B-----\n-----BEGIN C-----\nAQ==\n";
        let got = blocks(text);
        assert_eq!(got.len(), 3);
        let a = got[0].as_ref().ok().unwrap();
        assert_eq!((a.label.as_str(), &a.der[..]), ("A", &[1u8, 2, 3][..]));
        assert_eq!(got[1].as_ref().err().unwrap(), "B");
        assert_eq!(got[2].as_ref().err().unwrap(), "C", "unterminated");
    }
}
