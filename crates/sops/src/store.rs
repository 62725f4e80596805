//! The seam between file formats and the engine: a store turns bytes into a [`Tree`] and back.
//!
//! Stores never see keys. The `sops` metadata travels through them as an ordinary top-level entry
//! (`sops:` in YAML/JSON, flattened `sops_…` keys in dotenv, a `[sops]` section in INI); the engine
//! converts it with [`crate::metadata`].

use crate::tree::Tree;

/// The file formats sops knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML, possibly multi-document.
    Yaml,
    /// JSON.
    Json,
    /// dotenv (`KEY=value` lines).
    Dotenv,
    /// INI sections.
    Ini,
    /// Any bytes, stored as `{"data": ENC[…]}` in JSON.
    Binary,
}

/// Reads and writes one file format.
pub trait Store {
    /// Parses `input` (a plain or an encrypted file) into a tree. `path` is for error messages only.
    fn parse(&self, input: &[u8]) -> Result<Tree, crate::Error>;

    /// Writes `tree` out. A tree that still carries its source keeps every byte of it that was not
    /// changed (as far as the format allows).
    fn emit(&self, tree: &Tree) -> Result<Vec<u8>, crate::Error>;
}
