//! The crate's one error type.

/// Everything that can go wrong while sealing, unsealing, or loading keys and certificates.
///
/// Messages never contain plaintext, key material or anything that depends on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A sealed value could not be opened. Deliberately uniform: wrong key, wrong scope, renamed object,
    /// other namespace, tampering, truncation and malformed base64 all look the same.
    #[error(
        "cannot unseal: no key given opens this value (wrong key, scope, name or namespace, or the value is damaged)"
    )]
    Unseal,
    /// The certificate or public key could not be used for sealing.
    #[error("unusable sealing certificate: {0}")]
    Certificate(String),
    /// The certificate's validity period has ended.
    #[error("sealing certificate expired at {0}")]
    CertificateExpired(String),
    /// A private key could not be read; `what` names the input, never its content.
    #[error("unusable private key in {what}: {reason}")]
    PrivateKey {
        /// Where the key came from (file name or description).
        what: String,
        /// Why it was rejected.
        reason: String,
    },
    /// No private key was found in the inputs.
    #[error("no RSA private key found in {0}")]
    NoPrivateKey(String),
    /// The manifest (Secret or SealedSecret) is not usable as given.
    #[error("{0}")]
    Manifest(String),
    /// A `spec.template.data` entry could not be rendered.
    #[error("template for item {key:?}: {reason}")]
    Template {
        /// The template item (not a secret value).
        key: String,
        /// What is wrong with the template.
        reason: String,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// An encryption primitive failed where it should not (bad key size, plaintext too large).
    #[error("sealing failed: {0}")]
    Seal(&'static str),
    /// Key or certificate generation failed.
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
}
