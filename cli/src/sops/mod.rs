//! The sops-style commands: `encrypt`, `decrypt`, `edit`, `set`, `unset`, `exec-env`, `exec-file`,
//! `filestatus`, `keygen`, `rotate`, `updatekeys`, `groups`. They read files through `signet-sops` stores, get keys from `signet-keys`,
//! and write atomically. Behaviour and exit codes follow sops.

pub mod args;
mod editor;
mod exec;
pub(crate) mod file;
pub mod groups;
mod interrupt;
pub(crate) mod keys;
pub mod rotation;
mod scratch;
mod sops_secret;

pub mod commands;
