//! The file-format stores: each turns bytes into a [`crate::tree::Tree`] and back.

// pub mod yaml;
