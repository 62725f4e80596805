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

impl EncryptionRule {
    /// The metadata key naming this rule and its pattern (`("unencrypted_suffix", "_unencrypted")`).
    pub fn key_and_value(&self) -> (&'static str, &str) {
        match self {
            EncryptionRule::UnencryptedSuffix(v) => ("unencrypted_suffix", v),
            EncryptionRule::EncryptedSuffix(v) => ("encrypted_suffix", v),
            EncryptionRule::UnencryptedRegex(v) => ("unencrypted_regex", v),
            EncryptionRule::EncryptedRegex(v) => ("encrypted_regex", v),
            EncryptionRule::UnencryptedCommentRegex(v) => ("unencrypted_comment_regex", v),
            EncryptionRule::EncryptedCommentRegex(v) => ("encrypted_comment_regex", v),
        }
    }

    /// Compiles the rule for use while walking a tree.
    pub fn compile(&self) -> Result<RuleMatcher, crate::Error> {
        let (name, pattern) = self.key_and_value();
        if pattern.is_empty() {
            // sops skips a rule whose pattern is empty: everything is encrypted.
            return Ok(RuleMatcher {
                kind: MatchKind::All,
            });
        }
        let regex = || {
            regex::Regex::new(pattern).map_err(|e| crate::Error::InvalidRegex {
                rule: name,
                message: e.to_string(),
            })
        };
        let kind = match self {
            EncryptionRule::UnencryptedSuffix(s) => MatchKind::KeySuffix {
                suffix: s.clone(),
                encrypt_on_match: false,
            },
            EncryptionRule::EncryptedSuffix(s) => MatchKind::KeySuffix {
                suffix: s.clone(),
                encrypt_on_match: true,
            },
            EncryptionRule::UnencryptedRegex(_) => MatchKind::KeyRegex {
                regex: regex()?,
                encrypt_on_match: false,
            },
            EncryptionRule::EncryptedRegex(_) => MatchKind::KeyRegex {
                regex: regex()?,
                encrypt_on_match: true,
            },
            EncryptionRule::UnencryptedCommentRegex(_) => MatchKind::CommentRegex {
                regex: regex()?,
                encrypt_on_match: false,
            },
            EncryptionRule::EncryptedCommentRegex(_) => MatchKind::CommentRegex {
                regex: regex()?,
                encrypt_on_match: true,
            },
        };
        Ok(RuleMatcher { kind })
    }
}

/// A compiled [`EncryptionRule`]. The decision follows sops' `Tree.shouldBeEncrypted`:
///
/// - suffix and key-regex rules look at **every map key on the path** of a leaf (so a matching key
///   covers its whole subtree); `unencrypted_*`: plain if any key matches; `encrypted_*`: encrypted
///   only if some key matches. Comments use the path of the map they stand in.
/// - comment rules look at the comments standing directly before the leaf **or before any of its
///   enclosing entries** (a comment before `a:` covers all of `a`'s subtree); a run of comments is
///   forgotten after the next non-comment entry of the same map or sequence.
///   `unencrypted_comment_regex`: plain if any of these comments matches (a matching comment itself
///   stays plain). `encrypted_comment_regex`: encrypted only if one of them matches (a matching
///   comment itself stays plain, as sops skips the comment being decided).
/// - regexes are unanchored searches (Go `regexp.Match`); an empty pattern encrypts everything.
#[derive(Debug, Clone)]
pub struct RuleMatcher {
    kind: MatchKind,
}

#[derive(Debug, Clone)]
enum MatchKind {
    All,
    KeySuffix {
        suffix: String,
        encrypt_on_match: bool,
    },
    KeyRegex {
        regex: regex::Regex,
        encrypt_on_match: bool,
    },
    CommentRegex {
        regex: regex::Regex,
        encrypt_on_match: bool,
    },
}

impl RuleMatcher {
    /// Whether the rule looks at map keys (suffix and regex rules).
    pub fn uses_keys(&self) -> bool {
        matches!(
            self.kind,
            MatchKind::KeySuffix { .. } | MatchKind::KeyRegex { .. }
        )
    }

    /// Whether the rule looks at comments.
    pub fn uses_comments(&self) -> bool {
        matches!(self.kind, MatchKind::CommentRegex { .. })
    }

    /// Is this `unencrypted_comment_regex` (whose regex must never match an encrypted comment)?
    pub fn is_unencrypted_comment_rule(&self) -> bool {
        matches!(
            self.kind,
            MatchKind::CommentRegex {
                encrypt_on_match: false,
                ..
            }
        )
    }

    /// Does map key `key` match a key rule?
    pub fn key_matches(&self, key: &str) -> bool {
        match &self.kind {
            MatchKind::KeySuffix { suffix, .. } => key.ends_with(suffix.as_str()),
            MatchKind::KeyRegex { regex, .. } => regex.is_match(key),
            _ => false,
        }
    }

    /// Does comment text `text` match a comment rule?
    pub fn comment_matches(&self, text: &str) -> bool {
        match &self.kind {
            MatchKind::CommentRegex { regex, .. } => regex.is_match(text),
            _ => false,
        }
    }

    /// The decision for one leaf. `keys_matching`: how many keys on its path match;
    /// `comments_matching`: how many comments in scope match, the leaf itself excluded when it is a
    /// comment; `self_matches`: the leaf is a comment that matches.
    pub fn should_encrypt(
        &self,
        keys_matching: usize,
        comments_matching: usize,
        self_matches: bool,
    ) -> bool {
        match &self.kind {
            MatchKind::All => true,
            MatchKind::KeySuffix {
                encrypt_on_match, ..
            }
            | MatchKind::KeyRegex {
                encrypt_on_match, ..
            } => (keys_matching > 0) == *encrypt_on_match,
            MatchKind::CommentRegex {
                encrypt_on_match: false,
                ..
            } => comments_matching == 0 && !self_matches,
            MatchKind::CommentRegex {
                encrypt_on_match: true,
                ..
            } => comments_matching > 0,
        }
    }
}
