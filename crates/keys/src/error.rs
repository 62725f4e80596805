//! The crate's error type. Messages name files, environment variables, recipients, rule indices
//! and key types, never key material or plaintext.

use std::path::PathBuf;

/// What can go wrong parsing keys, wrapping or unwrapping a data key, or reading `.sops.yaml`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A recipient string (`--age`, `.sops.yaml`, file metadata) could not be parsed.
    #[error("invalid recipient {recipient:?}: {message}")]
    InvalidRecipient {
        /// The recipient as given (public, safe to show).
        recipient: String,
        /// Why it was rejected.
        message: String,
    },
    /// An identity could not be parsed. Only the place is named, never the line's content.
    #[error("invalid identity in {location}: {message}")]
    InvalidIdentity {
        /// Where it came from: a file path, `SOPS_AGE_KEY`, a command.
        location: String,
        /// Why it was rejected.
        message: String,
    },
    /// A file named explicitly (by a flag or an environment variable) could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A file (a new identity file) could not be written, or its directory created.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A key command (`SOPS_AGE_KEY_CMD`, `SOPS_AGE_SSH_PRIVATE_KEY_CMD`) failed.
    #[error("command {command:?} failed: {message}")]
    Command {
        /// The command line as configured.
        command: String,
        /// What went wrong (exit status, stderr excerpt).
        message: String,
    },
    /// Wrapping the data key for a master key failed.
    #[error("failed to encrypt the data key with {key}: {message}")]
    Wrap {
        /// The master key (recipient, ARN, URI).
        key: String,
        /// What went wrong.
        message: String,
    },
    /// An entry was meant for a key we hold but could not be decrypted (corrupt `enc`, wrong
    /// passphrase, plugin failure).
    #[error("failed to decrypt the data key with {key}: {message}")]
    Unwrap {
        /// The master key (recipient, ARN, URI).
        key: String,
        /// What went wrong.
        message: String,
    },
    /// None of the file's master keys could be used: no identity matched.
    #[error("{}", no_match_message(recipients, problems))]
    NoIdentityMatched {
        /// The master keys of the file that were tried (recipients, ARNs, URIs).
        recipients: Vec<String>,
        /// Per-key errors and identity-loading problems, for the user to act on.
        problems: Vec<String>,
    },
    /// Fewer key groups than the Shamir threshold could be decrypted.
    #[error(
        "could not recover the data key: decrypted {recovered} of the {threshold} key groups needed; {}",
        failures.join("; ")
    )]
    ShamirThresholdNotMet {
        /// `shamir_threshold`.
        threshold: usize,
        /// Groups whose share was recovered.
        recovered: usize,
        /// Why each other group failed (its recipients and errors).
        failures: Vec<String>,
    },
    /// A decrypted share or data key has the wrong length, or shares do not combine.
    #[error("key group {group}: {message}")]
    InvalidShare {
        /// 0-based key group index.
        group: usize,
        /// What was wrong.
        message: String,
    },
    /// Key groups are missing or one of them is empty.
    #[error("invalid key groups: {0}")]
    InvalidKeyGroups(String),
    /// Shamir split or combine rejected its input (only `signet_sops::shamir`'s errors: no
    /// `From`, so another sops error cannot end up here by `?`). The wrapped error already says
    /// `shamir: …`.
    #[error("{0}")]
    Shamir(signet_sops::Error),
    /// A master key type this build does not implement (GCP KMS and Azure Key Vault are only
    /// carried).
    #[error("{kind} master keys are not supported yet ({key})")]
    Unsupported {
        /// `kms`, `hc_vault`, `pgp`, …
        kind: &'static str,
        /// The key (ARN, URI, fingerprint).
        key: String,
    },
    /// `.sops.yaml` is malformed.
    #[error("{}: {}{message}", path.display(), rule.map(|i| format!("creation_rules[{i}]: ")).unwrap_or_default())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// 0-based index of the creation rule at fault, when one is.
        rule: Option<usize>,
        /// What was wrong.
        message: String,
    },
    /// `.sops.yaml` has creation rules but none matches the file.
    #[error("{}: no matching creation rules found for {file}", config.display())]
    NoMatchingRule {
        /// The configuration file.
        config: PathBuf,
        /// The file path as matched against `path_regex`.
        file: String,
    },
    /// An identity file already exists where keygen was asked to write one.
    #[error("{} already exists; not overwriting it", path.display())]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
}

fn no_match_message(recipients: &[String], problems: &[String]) -> String {
    let mut message =
        String::from("failed to get the data key: no identity matched any of the recipients");
    if recipients.is_empty() {
        message.push_str(" (the file lists no master keys)");
    } else {
        message.push_str(": ");
        message.push_str(&recipients.join(", "));
    }
    if !problems.is_empty() {
        message.push_str(". ");
        message.push_str(&problems.join("; "));
    }
    message
}
