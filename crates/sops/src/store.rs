//! The seam between file formats and the engine: a store turns bytes into a [`Tree`] and back.
//!
//! Stores never see keys. The `sops` metadata travels through them as an ordinary top-level entry
//! (`sops:` in YAML/JSON, flattened `sops_…` keys in dotenv, a `[sops]` section in INI); the engine
//! converts it with [`crate::metadata`].

use crate::tree::{Node, Tree};

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
    /// `.ini` INI, anything else binary. Like sops (`strings.HasSuffix`), only the name's ending
    /// is looked at, case-sensitively: `secret.enc.yaml` is YAML and a file named `.env` is dotenv.
    pub fn from_path(path: impl AsRef<std::path::Path>) -> Format {
        let name = path.as_ref().to_string_lossy();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            Format::Yaml
        } else if name.ends_with(".json") {
            Format::Json
        } else if name.ends_with(".env") {
            Format::Dotenv
        } else if name.ends_with(".ini") {
            Format::Ini
        } else {
            Format::Binary
        }
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

    /// [`Store::parse`] of input the caller hands over: a store that keeps its source (YAML) keeps
    /// this buffer instead of a copy of it. The input is wiped once it is no longer needed (it may
    /// be a plain file).
    fn parse_owned(&self, mut input: Vec<u8>) -> Result<Tree, crate::Error> {
        let tree = self.parse(&input);
        zeroize::Zeroize::zeroize(&mut input);
        tree
    }

    /// Writes `tree` out. A tree that still carries its source keeps every byte of it that was not
    /// changed (as far as the format allows).
    fn emit(&self, tree: &Tree) -> Result<Vec<u8>, crate::Error>;

    /// [`Store::emit`] into `out`, the same bytes. A store that can (YAML with its source) writes
    /// them as it goes, through a small buffer wiped after use, instead of building the whole
    /// output first. The outer error is one of [`Store::emit`] (found before anything is
    /// written); the inner one is `out`'s.
    fn emit_to(
        &self,
        tree: &Tree,
        out: &mut dyn std::io::Write,
    ) -> Result<std::io::Result<()>, crate::Error> {
        let bytes = zeroize::Zeroizing::new(self.emit(tree)?);
        Ok(out.write_all(&bytes).and_then(|()| out.flush()))
    }

    /// Writes one value that is neither a map nor a string (a number, bool, null, time or list), as
    /// sops' `EmitValue` does for `--extract`.
    fn emit_value(&self, node: &Node) -> Result<Vec<u8>, crate::Error>;
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn formats_from_names_like_sops() {
        assert_eq!(Format::from_path("a/secret.enc.yaml"), Format::Yaml);
        assert_eq!(Format::from_path("x.yml"), Format::Yaml);
        assert_eq!(Format::from_path("x.json"), Format::Json);
        assert_eq!(Format::from_path(".env"), Format::Dotenv);
        assert_eq!(Format::from_path("dir/.env"), Format::Dotenv);
        assert_eq!(Format::from_path("x.ini"), Format::Ini);
        assert_eq!(Format::from_path("x.YAML"), Format::Binary);
        assert_eq!(Format::from_path("x.txt"), Format::Binary);
    }
}
