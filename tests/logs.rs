//! Capturing the logs of an in-process controller, so tests can grep them for canaries.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything logged (the Signet crates at debug, the rest at info) by this test process since [`capture`] was first called.
#[derive(Clone)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// The text logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per process) a global subscriber recording the Signet crates' events at debug level, other crates' at info.
pub fn capture() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                "info,signet_controller=debug,signet_keys=debug,signet_providers=debug,signet_seal=debug,signet_sops=debug",
            )
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&writer)))
            .try_init();
        Logs(buffer)
    })
    .clone()
}
