//! The testkit's one error type.

use std::path::PathBuf;

/// Why a peer could not be found, started or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer's program is not installed where the testkit looks.
    #[error(
        "peer `{name}` not found (looked in: {searched}); install it with `scripts/bootstrap {bootstrap}` \
         (or point SIGNET_PEER_BIN at a directory holding it)"
    )]
    PeerMissing {
        /// Program name looked for.
        name: String,
        /// Directories searched, `:`-separated.
        searched: String,
        /// The `scripts/bootstrap` argument that installs it.
        bootstrap: String,
    },
    /// The peer's process could not be spawned.
    #[error("could not start {peer} ({program}): {source}")]
    Spawn {
        /// Which peer.
        peer: &'static str,
        /// The program run.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An administrative call to a running peer (creating a key, a mount) failed.
    #[error("{peer}: {message}")]
    PeerCall {
        /// Which peer.
        peer: &'static str,
        /// What failed.
        message: String,
    },
    /// The peer exited before it was ready.
    #[error("{peer} exited before it was ready ({status}); its last output:\n{log}")]
    ExitedEarly {
        /// Which peer.
        peer: &'static str,
        /// Its exit status.
        status: String,
        /// The tail of its stdout/stderr.
        log: String,
    },
    /// The peer did not become ready in time.
    #[error("{peer} not ready after {seconds}s; its last output:\n{log}")]
    NotReady {
        /// Which peer.
        peer: &'static str,
        /// How long the testkit waited.
        seconds: u64,
        /// The tail of its stdout/stderr.
        log: String,
    },
    /// The shared instance of a peer failed to start earlier in this process.
    #[error("the shared {peer} failed to start earlier in this process: {message}")]
    SharedFailed {
        /// Which peer.
        peer: &'static str,
        /// The original error, as text.
        message: String,
    },
    /// A call to the Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The kubeconfig written by the API server harness could not be loaded.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// The API server refused to mint a ServiceAccount token.
    #[error("TokenRequest for {namespace}/{name} returned no token")]
    NoToken {
        /// ServiceAccount namespace.
        namespace: String,
        /// ServiceAccount name.
        name: String,
    },
    /// Local I/O (ports, pipes, files).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
