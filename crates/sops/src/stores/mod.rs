//! The file-format stores: each turns bytes into a [`crate::tree::Tree`] and back.

pub mod binary;
pub mod dotenv;
pub mod ini;
pub mod json;
pub mod yaml;

use crate::store::{Format, Store};

/// The store for `format`.
///
/// YAML is [`yaml::YamlStore`] with sops' 4-space indent.
pub fn store_for(format: Format) -> Box<dyn Store + Send + Sync> {
    match format {
        Format::Json => Box::new(json::JsonStore),
        Format::Dotenv => Box::new(dotenv::DotenvStore),
        Format::Ini => Box::new(ini::IniStore),
        Format::Binary => Box::new(binary::BinaryStore),
        Format::Yaml => Box::new(yaml::YamlStore::default()),
    }
}

/// Whether `text` is a comment sops encrypted as an item of a list (`ENC[…,type:comment]`): sops
/// writes YAML list comments that way, in YAML and in every format it converts YAML to.
pub(crate) fn is_sops_comment(text: &str) -> bool {
    text.starts_with("ENC[AES256_GCM,") && text.ends_with(",type:comment]")
}
