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

impl Format {
    /// The format sops picks for a file name: `.yaml`/`.yml` YAML, `.json` JSON, `.env` dotenv,
    /// `.ini` INI, anything else binary. Like sops, only the extension is looked at (so
    /// `secret.enc.yaml` is YAML), case-sensitively.
    pub fn from_path(path: impl AsRef<std::path::Path>) -> Format {
        match path.as_ref().extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("env") => Format::Dotenv,
            Some("ini") => Format::Ini,
            _ => Format::Binary,
        }
    }

    /// The format named on the command line (`--input-type`): `yaml`, `json`, `dotenv`, `ini`,
    /// `binary`.
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "yaml" => Format::Yaml,
            "json" => Format::Json,
            "dotenv" => Format::Dotenv,
            "ini" => Format::Ini,
            "binary" => Format::Binary,
            _ => return None,
        })
    }

    /// The name sops uses for the format.
    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Dotenv => "dotenv",
            Format::Ini => "ini",
            Format::Binary => "binary",
        }
    }
}

/// Reads and writes one file format.
pub trait Store {
    /// Parses `input` (a plain or an encrypted file) into a tree. `path` is for error messages only.
    fn parse(&self, input: &[u8]) -> Result<Tree, crate::Error>;

    /// Writes `tree` out. A tree that still carries its source keeps every byte of it that was not
    /// changed (as far as the format allows).
    fn emit(&self, tree: &Tree) -> Result<Vec<u8>, crate::Error>;
}
