//! External Secrets Operator's `jwkPublicKeyPem` and `jwkPrivateKeyPem` (v0.16.2,
//! `pkg/template/v2/jwk.go`): a JSON Web Key read as lestrrat-go/jwx v2 reads it, written as Go's
//! `x509.MarshalPKIXPublicKey` (a `PUBLIC KEY` block) or `x509.MarshalPKCS8PrivateKey` (a
//! `PRIVATE KEY` block) write it. RSA, EC (P-256, P-384, P-521) and Ed25519 keys; a public key
//! from a private JWK is an error, as in ESO (Go cannot marshal the private key type as a public
//! key). An RSA private JWK needs all of `p`, `q`, `dp`, `dq` and `qi` (Go writes them as given);
//! Signet refuses one without them, where Go derives them. Go refuses an inconsistent RSA key;
//! Signet checks consistency through aws-lc for moduli of 2048 to 8192 bits and writes a key of
//! another size as given (checking it would take variable-time arithmetic on the private key).

use super::value::Value;
use zeroize::Zeroizing;

type R<T> = Result<T, String>;

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// DER's tag, length, content (sized up front: no reallocation leaves a copy of a key behind).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 10);
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = n.to_be_bytes();
        let skip = len.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn seq<T: AsRef<[u8]>>(parts: &[T]) -> Vec<u8> {
    let mut content = Zeroizing::new(Vec::with_capacity(
        parts.iter().map(|p| p.as_ref().len()).sum(),
    ));
    for p in parts {
        content.extend_from_slice(p.as_ref());
    }
    tlv(0x30, &content)
}

/// A non-negative INTEGER from big-endian bytes, minimal as DER wants it.
fn uint(b: &[u8]) -> Vec<u8> {
    let b = strip(b);
    let mut content = Vec::with_capacity(b.len() + 1);
    if b.first().is_none_or(|&f| f & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(b);
    tlv(0x02, &content)
}

fn strip(b: &[u8]) -> &[u8] {
    let zeros = b.iter().take_while(|&&x| x == 0).count();
    &b[zeros..]
}

fn oid(o: &[u8]) -> Vec<u8> {
    tlv(0x06, o)
}

fn bit_string(b: &[u8]) -> Vec<u8> {
    let mut content = vec![0];
    content.extend_from_slice(b);
    tlv(0x03, &content)
}

/// jwx's base64 for key fields: URL or standard alphabet, padded or not, as the text shows.
fn b64(field: &str, v: &serde_json::Value) -> R<Zeroizing<Vec<u8>>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    // jwx takes `null` for an empty value.
    if v.is_null() {
        return Ok(Zeroizing::new(Vec::new()));
    }
    let text = v
        .as_str()
        .ok_or_else(|| format!("jwk: field {field} is not a string"))?;
    let text: String = text.chars().filter(|&c| c != '\r' && c != '\n').collect();
    let padded = text.ends_with('=');
    let url = !text.contains(['+', '/']);
    let config = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(if padded {
            DecodePaddingMode::RequireCanonical
        } else {
            DecodePaddingMode::RequireNone
        });
    let alphabet = if url {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    };
    GeneralPurpose::new(alphabet, config)
        .decode(text.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| format!("jwk: field {field} is not base64"))
}

struct Jwk {
    obj: serde_json::Map<String, serde_json::Value>,
}

impl Jwk {
    fn get(&self, field: &str) -> R<Zeroizing<Vec<u8>>> {
        match self.obj.get(field) {
            Some(v) => b64(field, v),
            None => Err(format!("jwk: required field {field} is missing")),
        }
    }

    fn has(&self, field: &str) -> bool {
        self.obj.contains_key(field)
    }

    fn text(&self, field: &str) -> R<&str> {
        self.obj
            .get(field)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("jwk: required field {field} is missing"))
    }
}

fn parse(json: &[u8]) -> R<Jwk> {
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|_| "jwk: the key is not JSON".to_owned())?;
    match v {
        serde_json::Value::Object(obj) => Ok(Jwk { obj }),
        _ => Err("jwk: the key is not a JSON object".to_owned()),
    }
}

/// A curve's OID, aws-lc-rs' algorithm for checking a point on it, and its size in bytes.
fn curve(
    name: &str,
) -> R<(
    &'static [u8],
    &'static aws_lc_rs::agreement::Algorithm,
    usize,
)> {
    use aws_lc_rs::agreement::{ECDH_P256, ECDH_P384, ECDH_P521};
    match name {
        "P-256" => Ok((OID_P256, &ECDH_P256, 32)),
        "P-384" => Ok((OID_P384, &ECDH_P384, 48)),
        "P-521" => Ok((OID_P521, &ECDH_P521, 66)),
        _ => Err("jwk: unsupported elliptic curve".to_owned()),
    }
}

/// `elliptic.Marshal` of the point, refused (as Go's `IsOnCurve` refuses it) off the curve.
fn ec_point(k: &Jwk) -> R<(&'static [u8], Vec<u8>, usize)> {
    let (curve_oid, alg, size) = curve(k.text("crv")?)?;
    let (x, y) = (k.get("x")?, k.get("y")?);
    let (x, y) = (strip(&x), strip(&y));
    if x.len() > size || y.len() > size {
        return Err("x509: invalid elliptic curve public key".to_owned());
    }
    let mut point = vec![4u8];
    point.extend(std::iter::repeat_n(0, size - x.len()));
    point.extend_from_slice(x);
    point.extend(std::iter::repeat_n(0, size - y.len()));
    point.extend_from_slice(y);
    let unparsed = aws_lc_rs::agreement::UnparsedPublicKey::new(alg, &point);
    aws_lc_rs::agreement::ParsedPublicKey::try_from(&unparsed)
        .map_err(|_| "x509: invalid elliptic curve public key".to_owned())?;
    Ok((curve_oid, point, size))
}

fn pem(kind: &str, der: &[u8]) -> Value {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = Zeroizing::new(Vec::new());
    out.extend_from_slice(format!("-----BEGIN {kind}-----\n").as_bytes());
    for line in text.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {kind}-----\n").as_bytes());
    super::value::zstr(out)
}

fn kty(k: &Jwk) -> R<&str> {
    k.text("kty")
}

/// ESO's `jwkPublicKeyPem`: a public JWK as a PKIX `PUBLIC KEY` block.
pub fn public_key_pem(json: &[u8]) -> R<Value> {
    let k = parse(json)?;
    let der = match kty(&k)? {
        "RSA" if k.has("d") => return Err(unsupported_public("*rsa.PrivateKey")),
        "RSA" => {
            let (n, e) = (k.get("n")?, k.get("e")?);
            if strip(&e).len() > 7 {
                return Err("jwk: the exponent e is too large".to_owned());
            }
            let key = seq(&[uint(&n), uint(&e)]);
            seq(&[seq(&[oid(OID_RSA), vec![0x05, 0x00]]), bit_string(&key)])
        }
        "EC" if k.has("d") => return Err(unsupported_public("*ecdsa.PrivateKey")),
        "EC" => {
            let (curve_oid, point, _) = ec_point(&k)?;
            seq(&[seq(&[oid(OID_EC), oid(curve_oid)]), bit_string(&point)])
        }
        "OKP" if k.has("d") => return Err(unsupported_public("a private key")),
        "OKP" => match k.text("crv")? {
            "Ed25519" => {
                let x = k.get("x")?;
                seq(&[seq(&[oid(OID_ED25519)]), bit_string(&x)])
            }
            _ => return Err(unsupported_public("x25519.PublicKey")),
        },
        _ => return Err("jwk: unsupported key type".to_owned()),
    };
    Ok(pem("PUBLIC KEY", &der))
}

fn unsupported_public(kind: &str) -> String {
    format!("x509: unsupported public key type: {kind}")
}

const UNKNOWN_PKCS8: &str = "x509: unknown key type while marshaling PKCS#8";

/// ESO's `jwkPrivateKeyPem`: a private JWK as a PKCS#8 `PRIVATE KEY` block.
pub fn private_key_pem(json: &[u8]) -> R<Value> {
    let k = parse(json)?;
    let der: Zeroizing<Vec<u8>> = match kty(&k)? {
        "RSA" if !k.has("d") => return Err(UNKNOWN_PKCS8.to_owned()),
        "RSA" => {
            let (n, e, d) = (k.get("n")?, k.get("e")?, k.get("d")?);
            if strip(&e).len() > 7 {
                return Err("jwk: the exponent e is too large".to_owned());
            }
            let mut parts: Vec<Zeroizing<Vec<u8>>> = [&[0u8][..], &n, &e, &d]
                .iter()
                .map(|v| Zeroizing::new(uint(v)))
                .collect();
            for f in ["p", "q", "dp", "dq", "qi"] {
                let v = k.get(f).map_err(|_| {
                    "jwk: an RSA private key needs p, q, dp, dq and qi (Signet does not derive them)"
                        .to_owned()
                })?;
                parts.push(Zeroizing::new(uint(&v)));
            }
            let pkcs1 = Zeroizing::new(seq(&parts));
            // Go refuses an inconsistent key (`Validate`). aws-lc checks the same relations (p·q
            // = n, d·e ≡ 1, the CRT values) in constant time, for moduli of 2048 to 8192 bits;
            // a key of another size is written as given.
            let bits =
                strip(&n).len() * 8 - strip(&n).first().map_or(8, |b| b.leading_zeros() as usize);
            if (2048..=8192).contains(&bits) && aws_lc_rs::rsa::KeyPair::from_der(&pkcs1).is_err() {
                return Err("crypto/rsa: invalid RSA private key".to_owned());
            }
            Zeroizing::new(seq(&[
                uint(&[0]),
                seq(&[oid(OID_RSA), vec![0x05, 0x00]]),
                tlv(0x04, &pkcs1),
            ]))
        }
        "EC" if !k.has("d") => return Err(UNKNOWN_PKCS8.to_owned()),
        "EC" => {
            let (curve_oid, point, _) = ec_point(&k).map_err(|_| {
                "x509: failed to marshal EC private key while building PKCS#8: invalid elliptic key public key".to_owned()
            })?;
            let d = k.get("d")?;
            // Go pads the scalar to the order's size, and fails on a longer one.
            let order_size = match curve_oid {
                OID_P256 => 32,
                OID_P384 => 48,
                _ => 66,
            };
            let d = strip(&d);
            if d.len() > order_size {
                return Err("jwk: the private scalar d is too large for its curve".to_owned());
            }
            let mut scalar = Zeroizing::new(vec![0u8; order_size - d.len()]);
            scalar.extend_from_slice(d);
            let sec1 = Zeroizing::new(seq(&[
                uint(&[1]),
                tlv(0x04, &scalar),
                tlv(0xa1, &bit_string(&point)),
            ]));
            Zeroizing::new(seq(&[
                uint(&[0]),
                seq(&[oid(OID_EC), oid(curve_oid)]),
                tlv(0x04, &sec1),
            ]))
        }
        "OKP" if !k.has("d") => return Err(UNKNOWN_PKCS8.to_owned()),
        "OKP" => match k.text("crv")? {
            "Ed25519" => {
                let (x, d) = (k.get("x")?, k.get("d")?);
                // jwx refuses a seed whose public key is not `x`.
                if d.len() != 32
                    || aws_lc_rs::signature::Ed25519KeyPair::from_seed_and_public_key(&d, &x)
                        .is_err()
                {
                    return Err("jwk: invalid Ed25519 private key".to_owned());
                }
                let inner = Zeroizing::new(tlv(0x04, &d));
                Zeroizing::new(seq(&[
                    uint(&[0]),
                    seq(&[oid(OID_ED25519)]),
                    tlv(0x04, &inner),
                ]))
            }
            _ => return Err(format!("{UNKNOWN_PKCS8}: x25519.PrivateKey")),
        },
        "oct" => return Err(format!("{UNKNOWN_PKCS8}: []uint8")),
        _ => return Err("jwk: unsupported key type".to_owned()),
    };
    Ok(pem("PRIVATE KEY", &der))
}
