//! Kubernetes custom resource types shared by the CLI and the controller.
//!
//! Plain serde structs shaped like the CRDs they mirror: field names are camelCase, maps are ordered
//! (`BTreeMap`, as Go's JSON encoder sorts map keys) so output matches the Go tools byte for byte, and
//! struct fields serialize in the order Kubernetes' own Go types use. No `kube` dependency yet.
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
