//! The SOPS 3.x file format, byte-compatible with upstream sops: the document [`tree`], the `ENC[…]`
//! value codec, path AAD, the MAC, the `sops` [`metadata`] block, encryption rules, Shamir secret
//! sharing of the data key, and the stores (YAML, JSON, dotenv, INI, binary).
//!
//! Synchronous and offline: no network, no async. Key wrapping lives in `signet-keys`; this crate only
//! ever holds the plain data key, in a [`DataKey`] that zeroizes on drop.
//!
//! A typical decrypt, as the CLI does it: the [`Decryptor`] reads the metadata and unwraps the data
//! key through a [`KeyUnwrapper`] (signet-keys' `Keyring`), so the caller never touches either.
//!
//! ```no_run
//! # fn keyring() -> impl signet_sops::KeyUnwrapper<Error = std::io::Error> {
//! #     struct K;
//! #     impl signet_sops::KeyUnwrapper for K {
//! #         type Error = std::io::Error;
//! #         fn unwrap_data_key(&self, _: &signet_sops::Metadata)
//! #             -> Result<signet_sops::UnwrappedDataKey, std::io::Error> { todo!() }
//! #     }
//! #     K
//! # }
//! use signet_sops::{Decryptor, Format, engine::DecryptOptions, stores::store_for};
//! let store = store_for(Format::from_path("secret.enc.yaml"));
//! let tree = store.parse(&std::fs::read("secret.enc.yaml")?)?;
//! let opened = Decryptor::new(tree)?.open(&keyring(), DecryptOptions::default())?;
//! let plain = store.emit(&opened.tree)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! and encrypt: build a [`Metadata`] (key groups with the wrapped data key, rule,
//! `mac_only_encrypted`), then [`engine::encrypt`] the parsed plain tree and `emit` it.
// A library does not print: its caller decides what reaches a terminal or a log (tests may: clippy.toml).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod b64;
pub mod cipher;
pub mod datakey;
pub mod decryptor;
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
pub use decryptor::{Decryptor, KeyUnwrapper, Opened, UnwrappedDataKey};
pub use error::Error;
pub use metadata::Metadata;
pub use rules::EncryptionRule;
pub use store::{Format, Store};
pub use tree::Tree;
