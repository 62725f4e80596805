//! The SOPS 3.x file format, byte-compatible with upstream sops: the document [`tree`], the `ENC[…]`
//! value codec, path AAD, the MAC, the `sops` [`metadata`] block, encryption rules, Shamir secret
//! sharing of the data key, and the stores (YAML, JSON, dotenv, INI, binary).
//!
//! Synchronous and offline: no network, no async. Key wrapping lives in `signet-keys`; this crate only
//! ever holds the plain data key, in a [`DataKey`] that zeroizes on drop.

pub mod cipher;
pub mod datakey;
pub mod engine;
pub mod error;
pub mod metadata;
pub mod path;
pub mod rules;
pub mod shamir;
pub mod store;
pub mod stores;
pub mod tree;

pub use datakey::DataKey;
pub use error::Error;
pub use store::{Format, Store};
