//! Sealing certificates: loading the public key to seal to, and generating a key pair with a
//! self-signed certificate shaped like the Bitnami controller's.
//!
//! The controller's certificate (as its Go code builds it): RSA-4096, random 128-bit serial, key usage
//! `EncipherOnly` only, basic constraints `CA:TRUE`, subject = issuer = `CN=<my-cn>` (empty by
//! default), valid for ten years from now. Such a certificate carries no `keyEncipherment` usage and is a
//! CA, so this loader deliberately does not check key usage or CA flags: it takes the first certificate
//! in the PEM, requires an RSA key, and refuses it once expired.

use crate::SealError;
use crate::keys::{RSA_ALGORITHM_ID, der_tlv};
use crate::pem;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey,
};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::Zeroizing;

/// OID 1.2.840.113549.1.1.1 (rsaEncryption) as dotted text.
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// A public key to seal to, usually read from the controller's certificate.
pub struct SealingCertificate {
    key: OaepPublicEncryptingKey,
    spki_der: Vec<u8>,
    not_after_unix: Option<i64>,
}

impl fmt::Debug for SealingCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingCertificate")
            .field("bits", &self.key.key_size_bits())
            .field("not_after_unix", &self.not_after_unix)
            .finish_non_exhaustive()
    }
}

impl SealingCertificate {
    /// Reads the first `CERTIFICATE` block of `pem_bytes` (or, failing that, a `PUBLIC KEY` /
    /// `RSA PUBLIC KEY` block) and checks it against the current time.
    pub fn from_pem(pem_bytes: &[u8]) -> Result<Self, SealError> {
        Self::from_pem_at(pem_bytes, SystemTime::now())
    }

    /// [`Self::from_pem`] checking expiry against `now`.
    pub fn from_pem_at(pem_bytes: &[u8], now: SystemTime) -> Result<Self, SealError> {
        let blocks: Vec<_> = pem::blocks(pem_bytes).into_iter().flatten().collect();
        if let Some(cert) = blocks.iter().find(|b| b.label == "CERTIFICATE") {
            return Self::from_certificate_der_at(&cert.der, now);
        }
        if let Some(key) = blocks.iter().find(|b| b.label == "PUBLIC KEY") {
            return Self::from_spki_der(&key.der);
        }
        if let Some(key) = blocks.iter().find(|b| b.label == "RSA PUBLIC KEY") {
            let mut bit_string = vec![0u8];
            bit_string.extend_from_slice(&key.der);
            let mut body = RSA_ALGORITHM_ID.to_vec();
            der_tlv(0x03, &bit_string, &mut body);
            let mut spki = Vec::new();
            der_tlv(0x30, &body, &mut spki);
            return Self::from_spki_der(&spki);
        }
        Err(SealError::Certificate(
            "no PEM CERTIFICATE or PUBLIC KEY block found".to_owned(),
        ))
    }

    /// A certificate in DER, checked against `now`.
    pub fn from_certificate_der_at(der: &[u8], now: SystemTime) -> Result<Self, SealError> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| SealError::Certificate(format!("not an X.509 certificate ({e})")))?;
        let spki = cert.public_key();
        if spki.algorithm.algorithm.to_id_string() != RSA_ENCRYPTION_OID {
            return Err(SealError::Certificate(
                "the certificate's key is not RSA".to_owned(),
            ));
        }
        let not_after = cert.validity().not_after.timestamp();
        let now_unix = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if not_after < now_unix {
            return Err(SealError::CertificateExpired(
                cert.validity().not_after.to_string(),
            ));
        }
        let mut sealing = Self::from_spki_der(spki.raw)?;
        sealing.not_after_unix = Some(not_after);
        Ok(sealing)
    }

    /// A bare public key (X.509 SubjectPublicKeyInfo DER); no expiry.
    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self, SealError> {
        let public = PublicEncryptingKey::from_der(spki_der).map_err(|e| {
            SealError::Certificate(format!("not an RSA public key of 2048 to 8192 bits ({e})"))
        })?;
        let key = OaepPublicEncryptingKey::new(public)
            .map_err(|_| SealError::Certificate("not usable for RSA-OAEP".to_owned()))?;
        Ok(SealingCertificate {
            key,
            spki_der: spki_der.to_vec(),
            not_after_unix: None,
        })
    }

    /// Modulus size in bits.
    pub fn key_size_bits(&self) -> usize {
        self.key.key_size_bits()
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// End of validity as Unix seconds, when loaded from a certificate.
    pub fn not_after_unix(&self) -> Option<i64> {
        self.not_after_unix
    }

    pub(crate) fn oaep_encrypt(&self, message: &[u8], label: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut out = vec![0u8; self.key.ciphertext_size()];
        let len = self
            .key
            .encrypt(&OAEP_SHA256_MGF1SHA256, message, &mut out, Some(label))
            .map_err(|_| SealError::Seal("RSA-OAEP encryption failed"))?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

/// A freshly generated sealing key and its certificate, both PEM.
pub struct GeneratedSealingKey {
    /// PKCS#8 `PRIVATE KEY` PEM; write it 0600.
    pub private_key_pem: Zeroizing<String>,
    /// Self-signed `CERTIFICATE` PEM.
    pub certificate_pem: String,
}

impl fmt::Debug for GeneratedSealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedSealingKey")
            .field("certificate_pem", &self.certificate_pem)
            .finish_non_exhaustive()
    }
}

/// The Bitnami controller's default certificate lifetime (`--key-ttl`): ten years.
pub const DEFAULT_CERT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Generates an RSA key (4096 bits unless `bits` says 2048, 3072 or 8192) and a self-signed
/// certificate shaped like the Bitnami controller's: random 128-bit serial, `EncipherOnly` key usage,
/// `CA:TRUE`, subject `CN=common_name` (omitted when empty), valid from now for `validity`.
pub fn generate_sealing_key(
    bits: usize,
    validity: Duration,
    common_name: &str,
) -> Result<GeneratedSealingKey, SealError> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        8192 => KeySize::Rsa8192,
        other => {
            return Err(SealError::KeyGeneration(format!(
                "unsupported key size {other} (use 2048, 3072, 4096 or 8192)"
            )));
        }
    };
    let fail = |e: &dyn fmt::Display| SealError::KeyGeneration(e.to_string());
    let private = PrivateDecryptingKey::generate(size).map_err(|e| fail(&e))?;
    let pkcs8 = private.as_der().map_err(|e| fail(&e))?;
    let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &pkcs8.as_slice().into(),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|e| fail(&e))?;

    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| SealError::Random)?;
    serial[0] &= 0x7f; // positive INTEGER below 2^127 keeps DER minimal and in Go's range
    let now = time::OffsetDateTime::now_utc();
    let mut params = rcgen::CertificateParams::default();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.not_before = now;
    params.not_after = now + validity;
    params.distinguished_name = rcgen::DistinguishedName::new();
    if !common_name.is_empty() {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
    }
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::EncipherOnly];
    let cert = params.self_signed(&key_pair).map_err(|e| fail(&e))?;

    let private_key_pem = Zeroizing::new(pem_encode("PRIVATE KEY", &pkcs8));
    Ok(GeneratedSealingKey {
        private_key_pem,
        certificate_pem: cert.pem(),
    })
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
