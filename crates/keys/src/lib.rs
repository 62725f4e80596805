//! Master keys that wrap a SOPS data key, where their private halves are found, and which keys
//! a new file gets.
//!
//! - [`masterkey`]: the two small traits, [`MasterKey`] (wrap) and [`KeySource`] (unwrap), and
//!   [`block_on`] for callers that are not async.
//! - [`age_key`]: age recipients and identities (X25519, post-quantum hybrid, ssh, plugins,
//!   passphrase-protected identity files) and the armored `enc` sops stores.
//! - [`pgp`]: PGP master keys, through key files (pure Rust) or the `gpg` binary, like sops.
//! - [`kms`] and [`vault`]: AWS KMS and Vault/OpenBao transit master keys and key sources.
//! - [`keyspec`]: [`KeySpec`], a master key as the user names it (`--age`, `--kms`, …).
//! - [`keyring`]: [`Keyring`], identity discovery exactly like sops (`SOPS_AGE_KEY*`, ssh keys,
//!   `keys.txt`); it is the [`signet_sops::KeyUnwrapper`] a [`signet_sops::Decryptor`] opens a file
//!   with.
//! - [`groups`]: [`wrap_data_key`] / [`unwrap_data_key`] across key groups and Shamir shares.
//! - [`config`]: `.sops.yaml` lookup and creation rules.
//! - [`keygen`]: new age identities written like `age-keygen`.
//!
//! How the CLI uses it:
//!
//! ```no_run
//! use std::path::Path;
//! use std::sync::Arc;
//! use signet_keys::{Keyring, KeySpec, NoInteraction, SopsConfig, find_config_file};
//! use signet_sops::{DataKey, metadata::Metadata};
//!
//! # fn main() -> Result<(), signet_keys::Error> {
//! // Encrypting: keys from `--age a,b` or from the matching `.sops.yaml` rule.
//! let file = Path::new("secrets/db.yaml");
//! let mut groups = vec![KeySpec::age_list("age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29")?];
//! let mut threshold = None;
//! if let Some(config_path) = find_config_file(Path::new(".")).path {
//!     let config = SopsConfig::load(&config_path)?;
//!     if let Some(rule) = config.creation_rule_for(file)? {
//!         groups = rule.key_groups;
//!         threshold = rule.shamir_threshold;
//!     }
//! }
//! let data_key = DataKey::generate();
//! let key_groups = signet_keys::wrap_data_key(&data_key, &groups, threshold)?;
//! let shamir_threshold = signet_keys::shamir_threshold_for(key_groups.len(), threshold);
//!
//! // Decrypting: identities found like sops finds them.
//! let keyring = Keyring::from_env(Arc::new(NoInteraction));
//! for notice in keyring.notices() {
//!     eprintln!("warning: {notice}");
//! }
//! let metadata = Metadata { key_groups, shamir_threshold, ..Default::default() };
//! let recovered = signet_keys::unwrap_data_key(&metadata, &keyring)?;
//! # let _ = recovered;
//! # Ok(())
//! # }
//! ```
// A library does not print: its caller decides what reaches a terminal or a log (tests may: clippy.toml).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod age_key;
pub mod config;
pub mod error;
pub mod groups;
pub mod keygen;
pub mod keyring;
pub mod keyspec;
pub mod kms;
pub mod masterkey;
pub mod pgp;
mod runtime;
mod shlex;
pub mod vault;

pub use age_key::{AgeIdentity, AgeRecipient};
pub use config::{ConfigLookup, CreationRule, SopsConfig, StoresConfig, find_config_file};
pub use error::Error;
pub use groups::{
    UnwrappedDataKey, entry_name, rewrap_data_key, rewrap_data_key_async, shamir_threshold_for,
    unwrap_data_key, unwrap_data_key_async, unwrap_data_key_with_origin, wrap_data_key,
    wrap_data_key_async,
};
pub use keyring::{Environment, Keyring, Notice};
pub use keyspec::{
    KeySpec, KeySpecIn, KmsKey, VaultTransitKey, add_keys, key_specs_from_metadata, remove_entries,
    remove_keys,
};
pub use kms::KmsClient;
pub use masterkey::{
    Interaction, KeyFuture, KeySource, KeyType, MasterKey, NoInteraction, block_on,
};
pub use pgp::{PgpClient, PgpKeys};
pub use vault::VaultClient;
