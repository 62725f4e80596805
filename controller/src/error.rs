//! The controller library's one error type.

use std::net::SocketAddr;

/// What can stop a reconcile or the controller. Messages never contain secret values or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call failed (retried with back-off by the reconciler).
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Sealing-key generation or a sealing primitive failed.
    #[error(transparent)]
    Seal(#[from] signet_seal::SealError),
    /// An object lacks a field the API server always sets.
    #[error("object without {0}")]
    MissingField(&'static str),
    /// A listener could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, #[source] std::io::Error),
    /// The leader-election Lease could not be set up.
    #[error("leader election: {0}")]
    LeaderElection(String),
    /// A background task panicked or was cancelled.
    #[error("a background task failed")]
    Task,
}

impl Error {
    /// A short machine-readable reason, for metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeApi",
            Error::Seal(_) => "Seal",
            Error::MissingField(_) => "MissingField",
            Error::Listen(..) => "Listen",
            Error::LeaderElection(_) => "LeaderElection",
            Error::Task => "Task",
        }
    }
}
