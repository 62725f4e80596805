//! The crate's error type.

/// What can go wrong reading, writing, encrypting or decrypting a sops file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be parsed in its format.
    #[error("{format} parse error at {location}: {message}")]
    Parse {
        /// Format name.
        format: &'static str,
        /// Line/column or path inside the document.
        location: String,
        /// What was wrong (never contains secret values).
        message: String,
    },
}
