//! Sealing scopes and the OAEP label each one binds a value to.

use crate::SealError;
use signet_api::ObjectMeta;
use signet_api::sealed_secret::{CLUSTER_WIDE_ANNOTATION, NAMESPACE_WIDE_ANNOTATION};
use std::fmt;
use std::str::FromStr;

/// Where a sealed value may be unsealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Only as the same name in the same namespace (label `namespace/name`).
    #[default]
    Strict,
    /// Under any name in the same namespace (label `namespace`).
    NamespaceWide,
    /// Under any name in any namespace (empty label).
    ClusterWide,
}

impl Scope {
    /// The OAEP label for an object with this namespace and name. Strict needs both, namespace-wide
    /// needs the namespace.
    pub fn label(self, namespace: Option<&str>, name: Option<&str>) -> Result<Vec<u8>, SealError> {
        fn need<'a>(
            scope: Scope,
            what: Option<&'a str>,
            field: &str,
        ) -> Result<&'a str, SealError> {
            what.filter(|s| !s.is_empty())
                .ok_or_else(|| SealError::Manifest(format!("the {scope} scope needs a {field}")))
        }
        Ok(match self {
            Scope::Strict => format!(
                "{}/{}",
                need(self, namespace, "namespace")?,
                need(self, name, "name")?
            )
            .into_bytes(),
            Scope::NamespaceWide => need(self, namespace, "namespace")?.as_bytes().to_vec(),
            Scope::ClusterWide => Vec::new(),
        })
    }

    /// The scope an object's annotations select: cluster-wide wins over namespace-wide; only the exact
    /// value `"true"` counts; no annotation means strict.
    pub fn from_annotations(meta: &ObjectMeta) -> Scope {
        if meta.annotation(CLUSTER_WIDE_ANNOTATION) == Some("true") {
            Scope::ClusterWide
        } else if meta.annotation(NAMESPACE_WIDE_ANNOTATION) == Some("true") {
            Scope::NamespaceWide
        } else {
            Scope::Strict
        }
    }

    /// Writes this scope's annotation (and removes the other one) on `meta`.
    pub fn annotate(self, meta: &mut ObjectMeta) {
        meta.remove_annotation(CLUSTER_WIDE_ANNOTATION);
        meta.remove_annotation(NAMESPACE_WIDE_ANNOTATION);
        match self {
            Scope::Strict => {}
            Scope::NamespaceWide => meta.set_annotation(NAMESPACE_WIDE_ANNOTATION, "true"),
            Scope::ClusterWide => meta.set_annotation(CLUSTER_WIDE_ANNOTATION, "true"),
        }
    }

    /// The spelling used on the command line and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Strict => "strict",
            Scope::NamespaceWide => "namespace-wide",
            Scope::ClusterWide => "cluster-wide",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = SealError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(Scope::Strict),
            "namespace-wide" => Ok(Scope::NamespaceWide),
            "cluster-wide" => Ok(Scope::ClusterWide),
            other => Err(SealError::Manifest(format!(
                "unknown scope {other:?} (expected strict, namespace-wide or cluster-wide)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_scope() {
        assert_eq!(Scope::Strict.label(Some("ns"), Some("n")).unwrap(), b"ns/n");
        assert_eq!(
            Scope::NamespaceWide.label(Some("ns"), Some("n")).unwrap(),
            b"ns"
        );
        assert_eq!(Scope::ClusterWide.label(None, None).unwrap(), b"");
        assert!(Scope::Strict.label(Some("ns"), None).is_err());
        assert!(Scope::NamespaceWide.label(None, Some("n")).is_err());
    }

    #[test]
    fn annotations_select_scope_cluster_wide_wins() {
        let mut meta = ObjectMeta::default();
        assert_eq!(Scope::from_annotations(&meta), Scope::Strict);
        meta.set_annotation(NAMESPACE_WIDE_ANNOTATION, "true");
        assert_eq!(Scope::from_annotations(&meta), Scope::NamespaceWide);
        meta.set_annotation(CLUSTER_WIDE_ANNOTATION, "True");
        assert_eq!(
            Scope::from_annotations(&meta),
            Scope::NamespaceWide,
            "only exact \"true\" counts"
        );
        meta.set_annotation(CLUSTER_WIDE_ANNOTATION, "true");
        assert_eq!(Scope::from_annotations(&meta), Scope::ClusterWide);
        Scope::Strict.annotate(&mut meta);
        assert_eq!(meta.annotations, None);
    }

    #[test]
    fn parses_cli_spelling() {
        for s in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), s);
        }
        assert!("global".parse::<Scope>().is_err());
    }
}
