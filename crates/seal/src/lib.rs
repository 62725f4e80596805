//! The Sealed-Secrets envelope, scopes, sealing certificates and keys, SealedSecret <-> Secret conversion.
//!
//! Wire format (kubeseal- and Bitnami-controller-compatible): a sealed value is standard padded base64
//! of `u16be(len R) || R || G`, where `R` is RSA-OAEP (SHA-256, MGF1-SHA-256, label = the scope label)
//! of a fresh 32-byte session key and `G` is AES-256-GCM of the plaintext under that key with a
//! 12-byte zero nonce, no AAD, tag appended. The session key is used once, which makes the fixed nonce
//! safe. RSA and AES run on `aws-lc-rs` (constant time).
//!
//! Failure to open a value is reported as one uniform [`SealError::Unseal`], whatever the cause
//! (wrong key, wrong scope, tampering, truncation, bad base64): the controller built on this crate is a
//! decryption oracle and must not say which step failed.
// A library does not print: its caller decides what reaches a terminal or a log (tests may: clippy.toml).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod cert;
pub mod convert;
#[cfg(feature = "deterministic")]
pub mod deterministic;
pub mod envelope;
mod error;
pub mod keys;
pub mod manifest;
mod pem;
pub mod scope;
pub mod template;

pub use cert::{GeneratedSealingKey, SealingCertificate, generate_sealing_key};
pub use convert::{SealOptions, reseal_values, seal_secret, unseal_sealed_secret};
pub use envelope::{open, open_bytes, seal, seal_bytes};
pub use error::SealError;
pub use keys::{PrivateKeyRing, UnsealingKey};
pub use scope::Scope;
