//! Exit codes and the error type every command returns. Codes follow sops where sops has one, so
//! scripts written for sops keep working.

use std::fmt;

/// sops-compatible exit codes (and Signet's own, above 200 where sops has none).
/// The whole table is kept (not only the codes used today) so the numbering stays in one place.
#[allow(missing_docs, dead_code)]
pub mod code {
    pub const ERROR_GENERIC: u8 = 1;
    pub const COULD_NOT_READ_INPUT_FILE: u8 = 2;
    pub const COULD_NOT_WRITE_OUTPUT_FILE: u8 = 3;
    pub const ERROR_DUMPING_TREE: u8 = 4;
    pub const ERROR_READING_CONFIG: u8 = 5;
    pub const ERROR_INVALID_KMS_ENCRYPTION_CONTEXT_FORMAT: u8 = 6;
    pub const ERROR_INVALID_SET_FORMAT: u8 = 7;
    pub const ERROR_CONFLICTING_PARAMETERS: u8 = 8;
    pub const ERROR_ENCRYPTING_MAC: u8 = 21;
    pub const ERROR_ENCRYPTING_TREE: u8 = 23;
    pub const ERROR_DECRYPTING_MAC: u8 = 24;
    pub const ERROR_DECRYPTING_TREE: u8 = 25;
    pub const CANNOT_CHANGE_KEYS_FROM_NON_EXISTENT_FILE: u8 = 49;
    pub const MAC_MISMATCH: u8 = 51;
    pub const MAC_NOT_FOUND: u8 = 52;
    pub const CONFIG_FILE_NOT_FOUND: u8 = 61;
    pub const KEYBOARD_INTERRUPT: u8 = 85;
    pub const INVALID_TREE_PATH_FORMAT: u8 = 91;
    pub const NEED_AT_LEAST_ONE_DOCUMENT: u8 = 92;
    pub const NO_FILE_SPECIFIED: u8 = 100;
    pub const COULD_NOT_RETRIEVE_KEY: u8 = 128;
    pub const NO_ENCRYPTION_KEY_FOUND: u8 = 111;
    pub const DUPLICATE_DECRYPTION_KEY_TYPE: u8 = 112;
    pub const INVALID_OUTPUT_TYPE: u8 = 102;
    pub const FILE_HAS_NOT_BEEN_MODIFIED: u8 = 200;
    pub const NO_EDITOR_FOUND: u8 = 201;
    pub const FILE_ALREADY_ENCRYPTED: u8 = 203;
    /// Signet: a sealed value could not be opened with any key given.
    pub const UNSEAL_FAILED: u8 = 210;
    /// Signet: `rekey --check` found stale files.
    pub const STALE_FILES: u8 = 211;
    /// Signet: the online route to the controller failed (no kubeconfig, no Service, proxy refused).
    pub const ONLINE_MODE_UNAVAILABLE: u8 = 212;
    /// Signet: the sealing certificate is unusable (unreadable, not RSA, expired).
    pub const SEALING_CERT_UNUSABLE: u8 = 213;
    /// Signet: a manifest is not what the command needs (wrong kind, missing name, bad data).
    pub const INVALID_MANIFEST: u8 = 214;
    /// Signet: `signet check` found problems (plaintext secrets, invalid sops files, …).
    pub const CHECK_FINDINGS: u8 = 215;
    /// Signet: `keys retire` refused: something still needs the key.
    pub const KEY_IN_USE: u8 = 216;
}

/// A failed command: the message shown to the user and the process exit code.
#[derive(Debug)]
pub struct CliError {
    /// Exit status.
    pub code: u8,
    /// Human-readable message; must never contain secret values.
    pub message: String,
    /// Print the message as it is, without the `signet: ` prefix: sops' own wording, for scripts
    /// that match sops' output.
    pub verbatim: bool,
}

impl CliError {
    /// An error with an explicit exit code.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
            verbatim: false,
        }
    }

    /// An error printed exactly as sops prints it.
    pub fn as_sops_says(code: u8, message: impl Into<String>) -> Self {
        CliError {
            verbatim: true,
            ..CliError::new(code, message)
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;
