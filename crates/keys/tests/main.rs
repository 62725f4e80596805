//! The integration suites of `signet-keys`, one module each, in one test binary. Run one suite by
//! its module path: `cargo test -p signet-keys --test integration go_age::`.

mod common;
mod config;
mod discovery;
mod go_age;
mod key_groups;
mod kms;
mod mixed_groups;
mod pgp_keys;
mod plugin;
mod pq_vector;
mod remote;
mod sops_roundtrip;
mod vault;
