//! Where a SopsSecret may be opened: its binding.
//!
//! A SopsSecret carries `spec.binding`, a value encrypted like the Secret's values (the file's
//! `encrypted_regex` is [`ENCRYPTED_REGEX`] and `mac_only_encrypted` is on), so the MAC covers it and
//! AES-GCM binds it to its key path: nobody without the data key can write, change or move it, and
//! removing it breaks the MAC. Its plaintext names where the object may become a Secret, with the
//! scopes of Sealed Secrets:
//!
//! | scope | plaintext | opens as |
//! |---|---|---|
//! | strict (the default) | `namespace/name` | that name in that namespace only |
//! | namespace-wide | `namespace/*` | any name in that namespace |
//! | cluster-wide | `*` | any name in any namespace |
//!
//! `*` is never part of a Kubernetes name, so the three forms cannot be confused.

use std::fmt;

/// The key of `spec` that holds the binding.
pub const BINDING_FIELD: &str = "binding";

/// The `encrypted_regex` of a SopsSecret: the Secret's values and the binding.
pub const ENCRYPTED_REGEX: &str = "^(data|stringData|binding)$";

/// Where a SopsSecret may be opened (the plaintext of `spec.binding`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// Only as `name` in `namespace` (`namespace/name`).
    Strict {
        /// The namespace.
        namespace: String,
        /// The object's name.
        name: String,
    },
    /// Under any name in `namespace` (`namespace/*`).
    NamespaceWide {
        /// The namespace.
        namespace: String,
    },
    /// Under any name in any namespace (`*`).
    ClusterWide,
}

/// What a binding must look like; errors never repeat the text they refuse (it was encrypted).
pub const BINDING_FORMAT: &str = "`<namespace>/<name>` (strict), `<namespace>/*` (namespace-wide) or `*` (cluster-wide), with a namespace that is a DNS label and a name that is a DNS subdomain";

impl Binding {
    /// Reads a binding's plaintext.
    pub fn parse(text: &str) -> Result<Binding, String> {
        let invalid = || format!("a binding must be {BINDING_FORMAT}");
        if text == "*" {
            return Ok(Binding::ClusterWide);
        }
        let (namespace, name) = text.split_once('/').ok_or_else(invalid)?;
        let binding = if name == "*" {
            Binding::NamespaceWide {
                namespace: namespace.to_owned(),
            }
        } else {
            Binding::Strict {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            }
        };
        binding.validate().map_err(|_| invalid())?;
        Ok(binding)
    }

    /// Checks the namespace (a DNS label) and the name (a DNS subdomain); the message names which
    /// is wrong and repeats it (for bindings made from a manifest, where neither is secret).
    pub fn validate(&self) -> Result<(), String> {
        let namespace = match self {
            Binding::Strict { namespace, .. } | Binding::NamespaceWide { namespace } => namespace,
            Binding::ClusterWide => return Ok(()),
        };
        if !is_dns_label(namespace) {
            return Err(format!(
                "namespace {namespace:?} is not a DNS label (lowercase letters, digits and '-', at most 63)"
            ));
        }
        if let Binding::Strict { name, .. } = self
            && !is_dns_subdomain(name)
        {
            return Err(format!(
                "name {name:?} is not a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253)"
            ));
        }
        Ok(())
    }

    /// Whether an object named `name` in `namespace` may be opened under this binding.
    pub fn allows(&self, namespace: &str, name: &str) -> bool {
        match self {
            Binding::Strict {
                namespace: n,
                name: m,
            } => n == namespace && m == name,
            Binding::NamespaceWide { namespace: n } => n == namespace,
            Binding::ClusterWide => true,
        }
    }

    /// The scope's name, as `signet seal --scope` spells it.
    pub fn scope(&self) -> &'static str {
        match self {
            Binding::Strict { .. } => "strict",
            Binding::NamespaceWide { .. } => "namespace-wide",
            Binding::ClusterWide => "cluster-wide",
        }
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Binding::Strict { namespace, name } => write!(f, "{namespace}/{name}"),
            Binding::NamespaceWide { namespace } => write!(f, "{namespace}/*"),
            Binding::ClusterWide => f.write_str("*"),
        }
    }
}

/// RFC 1123 label: what a namespace name must be.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: what a Secret's (and a SopsSecret's) name must be.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_round_trip() {
        for text in ["team-a/db", "team-a/db.v2", "team-a/*", "*"] {
            assert_eq!(Binding::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Binding::parse("team-a/db").unwrap().scope(), "strict");
        assert_eq!(
            Binding::parse("team-a/*").unwrap().scope(),
            "namespace-wide"
        );
        assert_eq!(Binding::parse("*").unwrap().scope(), "cluster-wide");
    }

    #[test]
    fn anything_else_is_refused_without_repeating_it() {
        for text in [
            "",
            "team-a",
            "/db",
            "team-a/",
            "*/db",
            "*/*",
            "team-a/db/x",
            "Team-A/db",
            "team-a/DB",
            " team-a/db",
            "team-a/db\n",
            "team-a/-db",
            "team-a/a..b",
            "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]",
        ] {
            let err = Binding::parse(text).unwrap_err();
            assert!(err.contains("<namespace>/<name>"), "{text:?}: {err}");
            assert!(text.is_empty() || !err.contains(text), "{text:?}: {err}");
        }
        let long = format!("{}/db", "a".repeat(64));
        assert!(Binding::parse(&long).is_err());
        let long = format!("ns/{}", "a".repeat(254));
        assert!(Binding::parse(&long).is_err());
    }

    #[test]
    fn each_scope_allows_what_it_names() {
        let strict = Binding::parse("a/db").unwrap();
        assert!(strict.allows("a", "db"));
        assert!(!strict.allows("b", "db"));
        assert!(!strict.allows("a", "other"));
        let wide = Binding::parse("a/*").unwrap();
        assert!(wide.allows("a", "db"));
        assert!(wide.allows("a", "other"));
        assert!(!wide.allows("b", "db"));
        assert!(Binding::ClusterWide.allows("b", "other"));
    }
}
