//! Which leaves get encrypted: the six `(un)encrypted_(suffix|regex|comment_regex)` rules of sops.

/// The one encryption rule a file carries in its metadata (sops allows at most one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncryptionRule {
    /// `unencrypted_suffix`: keys ending in it stay plain (sops' default is `_unencrypted`).
    UnencryptedSuffix(String),
    /// `encrypted_suffix`: only keys ending in it are encrypted.
    EncryptedSuffix(String),
    /// `unencrypted_regex`: keys matching it stay plain.
    UnencryptedRegex(String),
    /// `encrypted_regex`: only keys matching it are encrypted.
    EncryptedRegex(String),
    /// `unencrypted_comment_regex`: values under a comment matching it stay plain.
    UnencryptedCommentRegex(String),
    /// `encrypted_comment_regex`: only values under a comment matching it are encrypted.
    EncryptedCommentRegex(String),
}

impl Default for EncryptionRule {
    fn default() -> Self {
        EncryptionRule::UnencryptedSuffix("_unencrypted".to_owned())
    }
}
