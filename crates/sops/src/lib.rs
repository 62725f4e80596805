//! The SOPS 3.x file format, byte-compatible with upstream sops: the document [`tree`], the `ENC[…]`
//! value codec, path AAD, the MAC, the `sops` [`metadata`] block, encryption rules, Shamir secret
//! sharing of the data key, and the stores (YAML, JSON, dotenv, INI, binary).
//!
//! Synchronous and offline: no network, no async. Key wrapping lives in `signet-keys`; this crate only
//! ever holds the plain data key, in a [`DataKey`] that zeroizes on drop.
//!
//! A typical decrypt, as the CLI does it:
//!
//! ```no_run
//! # fn unwrap_data_key(_: &signet_sops::Metadata) -> signet_sops::DataKey { todo!() }
//! use signet_sops::{Format, engine, stores::store_for};
//! let store = store_for(Format::from_path("secret.enc.yaml"));
//! let mut tree = store.parse(&std::fs::read("secret.enc.yaml")?)?;
//! let meta = engine::metadata_of(&tree)?.ok_or(signet_sops::Error::NotEncrypted)?;
//! let key = unwrap_data_key(&meta); // signet-keys: age / KMS / Vault, Shamir via `shamir::combine`
//! let decrypted = engine::decrypt(&mut tree, &key, engine::DecryptOptions::default())?;
//! let plain = store.emit(&tree)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! and encrypt: build a [`Metadata`] (key groups with the wrapped data key, rule,
//! `mac_only_encrypted`), then [`engine::encrypt`] the parsed plain tree and `emit` it.

pub mod cipher;
pub mod datakey;
pub mod engine;
pub mod error;
pub mod limits;
pub mod metadata;
pub mod path;
pub mod rules;
pub mod shamir;
pub mod store;
pub mod stores;
pub mod tree;

pub use datakey::DataKey;
pub use error::Error;
pub use metadata::Metadata;
pub use rules::EncryptionRule;
pub use store::{Format, Store};
pub use tree::Tree;
