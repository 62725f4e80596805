//! Starts the real peers the tests need (kube-apiserver, moto, OpenBao, the Bitnami controller) on free loopback ports, and
//! finds the upstream tools (sops, kubeseal, the Sealed Secrets controller, age).
//!
//! Peers come in two flavours:
//! - `Peer::shared()` starts one instance per test process, on first use, and keeps it for the
//!   rest of the process. Tests sharing it must use their own namespaces, key aliases or KV paths
//!   (see [`unique_name`]). The peer goes away with the test process: it watches its standard
//!   input, whose write end only this process holds, and shuts down when that closes.
//! - `Peer::start()` starts a private instance, stopped when the value is dropped.
//!
//! A missing peer is a hard failure, never a skip: the error (a panic under `CI=true`) says which
//! `scripts/bootstrap <peer>` command installs it.
// A library does not print: its caller decides what reaches a terminal or a log (tests may: clippy.toml).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod apiserver;
mod bitnami;
mod error;
mod moto;
mod one_shot;
mod openbao;
mod peers;
mod process;

pub use apiserver::{ApiServer, NAMESPACE_LABEL, NodeOptions};
pub use bitnami::{BITNAMI_ACCOUNT, BitnamiController};
pub use error::Error;
pub use moto::Moto;
pub use one_shot::one_shot_server;
pub use openbao::OpenBao;
pub use peers::{peer_dirs, peer_file, peer_path};

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A name unique within this machine for the life of this process: `prefix-<pid>-<time>-<n>`,
/// lower-case and short enough for a Kubernetes namespace when `prefix` is at most 30 bytes.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() % 1_000_000_000)
        .unwrap_or(0);
    format!("{prefix}-{:x}-{micros:x}-{n}", std::process::id())
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound, then released).
pub fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}
