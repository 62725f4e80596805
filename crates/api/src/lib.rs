//! The Kubernetes objects the CLI and the controller both read and write: the `bitnami.com/v1alpha1`
//! [`SealedSecret`], the core `v1` [`Secret`] and their [`ObjectMeta`], and the [`sops_secret`]
//! binding (the SopsSecret and ExternalSecret resource types themselves live in the controller).
//!
//! Plain serde structs, without `kube` or `k8s-openapi`: field names are camelCase, maps are ordered
//! (`BTreeMap`, as Go's JSON encoder sorts map keys) so output matches the Go tools byte for byte, and
//! struct fields serialize in the order Kubernetes' own Go types use.
// A library does not print: its caller decides what reaches a terminal or a log (tests may: clippy.toml).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod meta;
pub mod sealed_secret;
pub mod secret;
pub mod sops_secret;

pub use meta::ObjectMeta;
pub use sealed_secret::{
    SealedSecret, SealedSecretCondition, SealedSecretSpec, SealedSecretStatus, SecretTemplateSpec,
};
pub use secret::Secret;
