//! The crate's one error type. Every message names the store (its address) and the key, and
//! never holds a secret value, a token, a secret ID or a JWT: messages that come back from a
//! store are passed through [`scrub`] with the credentials the provider holds.

/// Why a provider call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key (or that version of it) does not exist in the store.
    #[error("{store}: {key:?}{} not found", version_suffix(.version))]
    NotFound {
        /// The store, by address.
        store: String,
        /// The key asked for.
        key: String,
        /// The version asked for, if any.
        version: Option<String>,
    },
    /// The store refused the credentials, or they do not allow this read.
    #[error("{store}: not authorized: {message}")]
    Unauthorized {
        /// The store, by address.
        store: String,
        /// What the store said (credentials removed).
        message: String,
    },
    /// The store could not be reached, timed out, or answered with a server error: try again later.
    #[error("{store} is unavailable: {message}")]
    Unavailable {
        /// The store, by address.
        store: String,
        /// What went wrong.
        message: String,
    },
    /// `property` cannot be taken from the value: it is not JSON, or the path is not in it.
    #[error("{store}: {key:?} has no property {property:?}: {message}")]
    InvalidProperty {
        /// The store, by address.
        store: String,
        /// The key read.
        key: String,
        /// The property asked for.
        property: String,
        /// Why (never the value).
        message: String,
    },
    /// The value does not have the shape asked for (`get_all` of something that is not a JSON
    /// object, a value with no content).
    #[error("{store}: {key:?}: {message}")]
    InvalidValue {
        /// The store, by address.
        store: String,
        /// The key read.
        key: String,
        /// Why (never the value).
        message: String,
    },
    /// The provider's configuration or the reference is unusable (bad address, empty key).
    #[error("invalid provider configuration: {0}")]
    InvalidConfig(String),
    /// The store answered with an error this crate has no better name for.
    #[error("{store} answered {status}: {message}")]
    Provider {
        /// The store, by address.
        store: String,
        /// The HTTP status (0 when there was none).
        status: u16,
        /// What the store said (credentials removed).
        message: String,
    },
}

impl Error {
    /// A stable CamelCase reason for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "NotFound",
            Error::Unauthorized { .. } => "Unauthorized",
            Error::Unavailable { .. } => "ProviderUnavailable",
            Error::InvalidProperty { .. } => "InvalidProperty",
            Error::InvalidValue { .. } => "InvalidValue",
            Error::InvalidConfig(_) => "InvalidConfig",
            Error::Provider { .. } => "ProviderError",
        }
    }

    /// Whether the same call may succeed later without any change (the store was unreachable,
    /// slow, overloaded or failing).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable { .. } => true,
            Error::Provider { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

fn version_suffix(version: &Option<String>) -> String {
    match version {
        Some(v) => format!(" (version {v:?})"),
        None => String::new(),
    }
}

/// Replaces every occurrence of a credential in `message` by `[redacted]`, and cuts the message
/// to a sane length. Credentials shorter than 4 bytes are not looked for (they would match
/// ordinary words; no real credential is that short).
pub(crate) fn scrub<'a>(message: &str, credentials: impl IntoIterator<Item = &'a str>) -> String {
    const MAX_LEN: usize = 500;
    let mut text = message.to_owned();
    for credential in credentials {
        if credential.len() >= 4 && text.contains(credential) {
            text = text.replace(credential, "[redacted]");
        }
    }
    if text.len() > MAX_LEN {
        let mut cut = MAX_LEN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// An error with its chain of causes, `: `-separated (transport errors' top-level messages, such
/// as "dispatch failure" or "error sending request", do not say what went wrong).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_stable_and_only_unavailable_or_server_errors_retry() {
        let store = || "vault at http://127.0.0.1:1".to_owned();
        let cases = [
            (
                Error::NotFound {
                    store: store(),
                    key: "a".into(),
                    version: None,
                },
                "NotFound",
                false,
            ),
            (
                Error::Unauthorized {
                    store: store(),
                    message: "permission denied".into(),
                },
                "Unauthorized",
                false,
            ),
            (
                Error::Unavailable {
                    store: store(),
                    message: "connection refused".into(),
                },
                "ProviderUnavailable",
                true,
            ),
            (
                Error::Provider {
                    store: store(),
                    status: 503,
                    message: "sealed".into(),
                },
                "ProviderError",
                true,
            ),
            (
                Error::Provider {
                    store: store(),
                    status: 400,
                    message: "bad".into(),
                },
                "ProviderError",
                false,
            ),
            (Error::InvalidConfig("x".into()), "InvalidConfig", false),
        ];
        for (error, reason, retryable) in cases {
            assert_eq!(error.reason(), reason, "{error}");
            assert_eq!(error.is_retryable(), retryable, "{error}");
        }
    }

    #[test]
    fn not_found_names_key_store_and_version() {
        let error = Error::NotFound {
            store: "vault at http://127.0.0.1:8200, mount \"kv\"".into(),
            key: "app/db".into(),
            version: Some("3".into()),
        };
        assert_eq!(
            error.to_string(),
            "vault at http://127.0.0.1:8200, mount \"kv\": \"app/db\" (version \"3\") not found"
        );
    }

    #[test]
    fn scrub_removes_every_credential_and_bounds_the_length() {
        let text = scrub(
            "login with s.canary-token failed; s.canary-token again, id 1234-canary",
            ["s.canary-token", "1234-canary", "ab"],
        );
        assert!(!text.contains("canary"), "{text}");
        assert_eq!(
            text,
            "login with [redacted] failed; [redacted] again, id [redacted]"
        );
        let long = scrub(&"é".repeat(600), []);
        assert!(long.len() <= 504, "{}", long.len());
        assert!(long.ends_with('…'));
    }
}
