//! Master keys that wrap a SOPS data key, where their private halves are found, and which keys
//! a new file gets.
//!
//! - [`masterkey`]: the two small traits, [`MasterKey`] (wrap) and [`KeySource`] (unwrap), and
//!   [`block_on`] for callers that are not async.
//! - [`age_key`]: age recipients and identities (X25519, post-quantum hybrid, ssh, plugins,
//!   passphrase-protected identity files) and the armored `enc` sops stores.
//! - [`keyspec`]: [`KeySpec`], a master key as the user names it (`--age`, `--kms`, …).
//! - [`keyring`]: [`Keyring`], identity discovery exactly like sops (`SOPS_AGE_KEY*`, ssh keys,
//!   `keys.txt`).
//! - [`groups`]: [`wrap_data_key`] / [`unwrap_data_key`] across key groups and Shamir shares.
//! - [`config`]: `.sops.yaml` lookup and creation rules.
//! - [`keygen`]: new age identities written like `age-keygen`.

pub mod age_key;
pub mod config;
pub mod error;
pub mod groups;
pub mod keygen;
pub mod keyring;
pub mod keyspec;
pub mod masterkey;
mod shlex;

pub use age_key::{AgeIdentity, AgeRecipient};
pub use config::{ConfigLookup, CreationRule, SopsConfig, StoresConfig, find_config_file};
pub use error::Error;
pub use groups::{
    entry_name, shamir_threshold_for, unwrap_data_key, unwrap_data_key_async, wrap_data_key,
    wrap_data_key_async,
};
pub use keyring::{Environment, Keyring, Notice};
pub use keyspec::{
    KeySpec, KmsKey, VaultTransitKey, add_keys, key_specs_from_metadata, remove_entries,
    remove_keys,
};
pub use masterkey::{
    Interaction, KeyFuture, KeySource, KeyType, MasterKey, NoInteraction, block_on,
};
