//! Private keys that unseal: PKCS#1 and PKCS#8 PEM, and the controller's key-backup manifests (a
//! `kubernetes.io/tls` Secret, or a `v1.List` of them, in YAML or JSON, with the key in `tls.key`).
//!
//! RSA sizes from 2048 to 8192 bits are supported (the range aws-lc-rs accepts); the Bitnami
//! controller and `signet keys new-sealing-key` make 4096-bit keys.

use crate::SealError;
use crate::pem;
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use std::fmt;
use zeroize::Zeroizing;

/// One RSA private key able to unseal.
pub struct UnsealingKey {
    key: OaepPrivateDecryptingKey,
    public_spki_der: Vec<u8>,
    origin: String,
}

impl fmt::Debug for UnsealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsealingKey")
            .field("bits", &self.key.key_size_bits())
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl UnsealingKey {
    /// A key from PKCS#8 DER; `origin` names where it came from, for messages.
    pub fn from_pkcs8_der(der: &[u8], origin: &str) -> Result<Self, SealError> {
        let reject = |reason: String| SealError::PrivateKey {
            what: origin.to_owned(),
            reason,
        };
        let private = PrivateDecryptingKey::from_pkcs8(der)
            .map_err(|e| reject(format!("not an RSA key of 2048 to 8192 bits ({e})")))?;
        let public_spki_der = {
            use aws_lc_rs::encoding::AsDer;
            private
                .public_key()
                .as_der()
                .map_err(|_| reject("cannot derive the public key".to_owned()))?
                .as_ref()
                .to_vec()
        };
        let key = OaepPrivateDecryptingKey::new(private)
            .map_err(|_| reject("not usable for RSA-OAEP".to_owned()))?;
        Ok(UnsealingKey {
            key,
            public_spki_der,
            origin: origin.to_owned(),
        })
    }

    /// A key from PKCS#1 `RSAPrivateKey` DER.
    pub fn from_pkcs1_der(der: &[u8], origin: &str) -> Result<Self, SealError> {
        Self::from_pkcs8_der(&pkcs1_to_pkcs8(der), origin)
    }

    /// Modulus size in bytes (the length of the wrapped session key this key opens).
    pub fn size_bytes(&self) -> usize {
        self.key.key_size_bytes()
    }

    /// Modulus size in bits.
    pub fn size_bits(&self) -> usize {
        self.key.key_size_bits()
    }

    /// The public key as X.509 SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_spki_der
    }

    /// Where the key was read from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub(crate) fn oaep_decrypt(&self, wrapped: &[u8], label: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.key.min_output_size()]);
        let len = self
            .key
            .decrypt(&OAEP_SHA256_MGF1SHA256, wrapped, &mut out, Some(label))
            .ok()?
            .len();
        out.truncate(len);
        Some(out)
    }
}

/// The private keys an unseal may use, tried in order.
#[derive(Debug, Default)]
pub struct PrivateKeyRing {
    keys: Vec<UnsealingKey>,
}

impl PrivateKeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key at the end.
    pub fn push(&mut self, key: UnsealingKey) {
        self.keys.push(key);
    }

    /// Puts the key whose public key equals `spki_der` first (e.g. the key recorded in a status).
    pub fn prefer(&mut self, spki_der: &[u8]) {
        if let Some(pos) = self.keys.iter().position(|k| k.public_spki_der == spki_der) {
            let key = self.keys.remove(pos);
            self.keys.insert(0, key);
        }
    }

    /// The keys, in trial order.
    pub fn iter(&self) -> impl Iterator<Item = &UnsealingKey> {
        self.keys.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Reads every private key from `bytes`: PEM (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`
    /// blocks; other blocks such as certificates are skipped) or a key-backup manifest (Secret with
    /// `data."tls.key"`, `v1.List` of them, YAML with several documents, or JSON). Returns how many
    /// keys were added; finding none is an error.
    pub fn add_from_bytes(&mut self, bytes: &[u8], origin: &str) -> Result<usize, SealError> {
        let before = self.keys.len();
        if contains(bytes, b"-----BEGIN ") {
            self.add_pem(bytes, origin)?;
        } else {
            self.add_backup_manifest(bytes, origin)?;
        }
        match self.keys.len() - before {
            0 => Err(SealError::NoPrivateKey(origin.to_owned())),
            n => Ok(n),
        }
    }

    fn add_pem(&mut self, bytes: &[u8], origin: &str) -> Result<(), SealError> {
        for block in pem::blocks(bytes) {
            let block = block.map_err(|label| SealError::PrivateKey {
                what: origin.to_owned(),
                reason: format!("malformed PEM block {label:?}"),
            })?;
            let reject = |reason: &str| SealError::PrivateKey {
                what: origin.to_owned(),
                reason: reason.to_owned(),
            };
            match block.label.as_str() {
                "RSA PRIVATE KEY" if block.has_headers => {
                    return Err(reject(
                        "encrypted PEM keys are not supported; decrypt it first",
                    ));
                }
                "RSA PRIVATE KEY" => self
                    .keys
                    .push(UnsealingKey::from_pkcs1_der(&block.der, origin)?),
                "PRIVATE KEY" => self
                    .keys
                    .push(UnsealingKey::from_pkcs8_der(&block.der, origin)?),
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(reject(
                        "encrypted PKCS#8 keys are not supported; decrypt it first",
                    ));
                }
                "EC PRIVATE KEY" | "OPENSSH PRIVATE KEY" => {
                    return Err(reject("only RSA keys can unseal"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn add_backup_manifest(&mut self, bytes: &[u8], origin: &str) -> Result<(), SealError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SealError::PrivateKey {
            what: origin.to_owned(),
            reason: "neither PEM nor a YAML/JSON key backup".to_owned(),
        })?;
        let docs =
            crate::manifest::parse_documents(text).map_err(|reason| SealError::PrivateKey {
                what: origin.to_owned(),
                reason: format!("neither PEM nor a readable key backup: {reason}"),
            })?;
        for doc in &docs {
            self.add_from_backup_value(doc, origin)?;
        }
        Ok(())
    }

    fn add_from_backup_value(&mut self, doc: &Value, origin: &str) -> Result<(), SealError> {
        if let Some(items) = doc.get("items").and_then(Value::as_array) {
            for item in items {
                self.add_from_backup_value(item, origin)?;
            }
            return Ok(());
        }
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let item_origin = format!("{origin} (Secret {name})");
        if let Some(key_b64) = doc.pointer("/data/tls.key").and_then(Value::as_str) {
            let pem = STANDARD
                .decode(key_b64.as_bytes())
                .map(Zeroizing::new)
                .map_err(|_| SealError::PrivateKey {
                    what: item_origin.clone(),
                    reason: "data.\"tls.key\" is not valid base64".to_owned(),
                })?;
            self.add_pem(&pem, &item_origin)?;
        }
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// DER length octets.
pub(crate) fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A DER TLV.
pub(crate) fn der_tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    der_len(content.len(), out);
    out.extend_from_slice(content);
}

/// `AlgorithmIdentifier { rsaEncryption, NULL }`.
pub(crate) const RSA_ALGORITHM_ID: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// Wraps PKCS#1 `RSAPrivateKey` DER as PKCS#8 `PrivateKeyInfo` (version 0, rsaEncryption).
fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut body = Zeroizing::new(Vec::with_capacity(pkcs1.len() + 32));
    body.extend_from_slice(&[0x02, 0x01, 0x00]);
    body.extend_from_slice(RSA_ALGORITHM_ID);
    der_tlv(0x04, pkcs1, &mut body);
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 4));
    der_tlv(0x30, &body, &mut out);
    out
}
