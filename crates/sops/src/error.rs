//! The crate's error type. Messages name the place in the document (a key path such as
//! `data.password`, or `line:col`) but never a plaintext value or key material.

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
    /// The input is over one of the [`crate::limits`] (size, nesting depth, alias expansion).
    #[error("{format} input at {location}: {message}")]
    Limit {
        /// Format name.
        format: &'static str,
        /// Line/column (or "the whole document") where the limit was reached.
        location: String,
        /// Which limit, and how to raise it if it can be.
        message: String,
    },
    /// A mapping key is not a string (`1:`, `true:`, `~:`): sops only supports string keys and
    /// refuses such files both when encrypting and when decrypting.
    #[error(
        "mapping key at {location} is {key_type}, not a string: sops only supports string keys (quote the key)"
    )]
    NonStringKey {
        /// Line/column of the key.
        location: String,
        /// The type YAML gives the key (`an int`, `a bool`, `null`, …).
        key_type: &'static str,
        /// Whether the file has `sops` metadata (decrypting it fails, rather than encrypting).
        encrypted: bool,
        /// Whether that metadata has a `version` and a `mac`: what `sops filestatus` calls
        /// encrypted (sops reads such a file for `filestatus`; only walking its tree fails).
        complete_metadata: bool,
    },
    /// The `version` of the `sops` metadata is missing or not a version sops accepts.
    #[error("invalid sops metadata: version: {message}")]
    InvalidVersion {
        /// What sops would say (`Version string empty`, `No Major.Minor.Patch elements found`).
        message: String,
    },
    /// The tree could not be written in the requested format (e.g. a nested map in dotenv).
    #[error("cannot write {format}: {message}")]
    Emit {
        /// Format name.
        format: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The file has no `sops` metadata: it is not encrypted.
    #[error("the file is not encrypted (no sops metadata found)")]
    NotEncrypted,
    /// A document's root is not a map, so it has nowhere to keep the `sops` metadata (sops refuses
    /// such files too).
    #[error("document {document} is not a map: sops files need a map at the top of every document")]
    RootNotAMap {
        /// 1-based document number.
        document: usize,
    },
    /// The file already has a `sops` key: refusing to encrypt it twice.
    #[error("the file is already encrypted (it has a sops metadata key)")]
    AlreadyEncrypted,
    /// A field of the `sops` metadata is missing or has the wrong shape.
    #[error("invalid sops metadata: {field}: {message}")]
    InvalidMetadata {
        /// The metadata field (`lastmodified`, `age[0].enc`, …).
        field: String,
        /// What was wrong.
        message: String,
    },
    /// The metadata has no `mac` and MAC checking was not disabled.
    #[error("the file has no MAC (sops metadata lacks `mac`)")]
    MacNotFound,
    /// The MAC computed over the decrypted values does not match the stored one.
    #[error("MAC mismatch: the file was modified outside sops or decrypted with the wrong key")]
    MacMismatch,
    /// A value looked like `ENC[…]` but could not be parsed.
    #[error("malformed encrypted value at {path}: {message}")]
    MalformedEncValue {
        /// Key path of the value (`data.password`, `sops.mac`).
        path: String,
        /// What was wrong.
        message: String,
    },
    /// Authentication failed decrypting a value: wrong data key, or the value, IV, tag or its path
    /// (AAD) was changed.
    #[error(
        "could not decrypt value at {path}: authentication failed (wrong key or tampered value)"
    )]
    DecryptFailed {
        /// Key path of the value.
        path: String,
    },
    /// A decrypted value does not fit the type its `type:` field names.
    #[error("decrypted value at {path} is not a valid {value_type}")]
    BadPlaintextType {
        /// Key path of the value.
        path: String,
        /// The declared type.
        value_type: String,
    },
    /// Invalid arguments to Shamir split or combine.
    #[error("shamir: {0}")]
    Shamir(&'static str),
    /// A regular expression of an encryption rule does not compile.
    #[error("invalid {rule} regex: {message}")]
    InvalidRegex {
        /// The rule (`encrypted_regex`, …).
        rule: &'static str,
        /// The regex engine's message.
        message: String,
    },
    /// A path given to set/unset/extract is malformed (or deeper than the depth limit).
    #[error("path {path}: {message}")]
    Path {
        /// The path as given.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// A well-formed path given to unset/extract names nothing in the document.
    #[error("path {path}: {message}")]
    PathNotFound {
        /// The path as far as it was followed.
        path: String,
        /// What was missing.
        message: String,
    },
}
