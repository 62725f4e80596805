//! The tokio runtime the network-backed key sources (AWS KMS, Vault transit) run on.
//!
//! Their futures need tokio's reactor and timers, but callers may be plain blocking code using
//! [`crate::block_on`], or another async runtime. So every network call is spawned onto one
//! lazily created, process-wide tokio runtime, and the caller awaits its `JoinHandle`, which
//! any executor can poll.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use crate::Error;

/// How long one call to a remote key service may take before it is abandoned.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("signet-keys-io")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Runs `future` on the shared runtime with a `timeout`; its error message, or the timeout, is
/// turned into an [`Error`] by `fail` (which names the key).
pub(crate) async fn run<T, F>(
    future: F,
    timeout: Duration,
    fail: impl FnOnce(String) -> Error,
) -> Result<T, Error>
where
    T: Send + 'static,
    F: Future<Output = Result<T, String>> + Send + 'static,
{
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(message) => return Err(fail(message)),
    };
    let handle = runtime.spawn(async move { tokio::time::timeout(timeout, future).await });
    match handle.await {
        Ok(Ok(result)) => result.map_err(fail),
        Ok(Err(_elapsed)) => Err(fail(format!(
            "no answer within {} s",
            timeout.as_secs_f32()
        ))),
        Err(join_error) => Err(fail(format!("the request task failed: {join_error}"))),
    }
}

/// An error with its chain of causes, `: `-separated (the SDKs' top-level messages alone, such
/// as "dispatch failure", do not say what went wrong).
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
