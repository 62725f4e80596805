//! The two small traits everything else rests on, in the spirit of age's `Recipient`/`Identity`:
//! a [`MasterKey`] wraps a data key (or a Shamir share of it) into a [`MasterKeyEntry`] of the
//! file's metadata, and a [`KeySource`] tries to unwrap an entry, answering `Ok(None)` when the
//! entry is not for it.
//!
//! Both return boxed futures so that network-backed keys (AWS KMS, Vault transit) fit without a
//! redesign; local keys (age) return ready futures, and [`block_on`] drives them for callers that
//! are not async. Network keys do their I/O on the crate's own lazily started tokio runtime and
//! only await its task handle, so [`block_on`] (or any other executor) can drive them too.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use signet_sops::metadata::MasterKeyEntry;
use zeroize::Zeroizing;

use crate::Error;

/// A boxed, sendable future returned by master keys and key sources.
pub type KeyFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// The kinds of master keys sops knows, named as in `--decryption-order` (`age`, `kms`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// age (X25519, ssh, plugins, post-quantum hybrid).
    Age,
    /// AWS KMS.
    Kms,
    /// HashiCorp Vault / OpenBao transit.
    HcVault,
    /// PGP (key files in pure Rust, or the `gpg` binary).
    Pgp,
    /// GCP KMS / Azure Key Vault and others Signet only carries.
    Other,
}

impl KeyType {
    /// The identifier sops uses (`age`, `kms`, `hc_vault`, `pgp`).
    pub fn identifier(self) -> &'static str {
        match self {
            KeyType::Age => "age",
            KeyType::Kms => "kms",
            KeyType::HcVault => "hc_vault",
            KeyType::Pgp => "pgp",
            KeyType::Other => "other",
        }
    }

    /// The type of a metadata entry.
    pub fn of_entry(entry: &MasterKeyEntry) -> KeyType {
        match entry {
            MasterKeyEntry::Age(_) => KeyType::Age,
            MasterKeyEntry::Kms(_) => KeyType::Kms,
            MasterKeyEntry::HcVault(_) => KeyType::HcVault,
            MasterKeyEntry::Pgp(_) => KeyType::Pgp,
            _ => KeyType::Other,
        }
    }
}

/// One master key that can wrap a secret (the data key, or one Shamir share of it).
pub trait MasterKey: Send + Sync {
    /// The kind of key.
    fn key_type(&self) -> KeyType;

    /// What the user calls this key: the recipient, ARN or transit URI. Public, safe to print.
    fn name(&self) -> String;

    /// Wraps `secret` for this key, producing the metadata entry to store in the file.
    fn wrap<'a>(&'a self, secret: &'a [u8]) -> KeyFuture<'a, MasterKeyEntry>;
}

impl<T: MasterKey + ?Sized> MasterKey for Box<T> {
    fn key_type(&self) -> KeyType {
        (**self).key_type()
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn wrap<'a>(&'a self, secret: &'a [u8]) -> KeyFuture<'a, MasterKeyEntry> {
        (**self).wrap(secret)
    }
}

impl<T: MasterKey + ?Sized> MasterKey for Arc<T> {
    fn key_type(&self) -> KeyType {
        (**self).key_type()
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn wrap<'a>(&'a self, secret: &'a [u8]) -> KeyFuture<'a, MasterKeyEntry> {
        (**self).wrap(secret)
    }
}

/// Something holding private keys or credentials that can unwrap metadata entries.
pub trait KeySource: Send + Sync {
    /// Tries to unwrap `entry`. `Ok(None)`: the entry is not for this source (wrong type, no
    /// matching identity). `Err`: it was for this source and failed.
    fn unwrap<'a>(&'a self, entry: &'a MasterKeyEntry)
    -> KeyFuture<'a, Option<Zeroizing<Vec<u8>>>>;
}

/// How library code asks the user for things (passphrases, plugin prompts). The CLI implements
/// it on a terminal; the default answers nothing, so encrypted keys simply fail to open.
pub trait Interaction: Send + Sync {
    /// Shows a message (e.g. "touch your YubiKey").
    fn display_message(&self, _message: &str) {}
    /// Asks a yes/no question; `None` when it cannot be asked.
    fn confirm(&self, _message: &str, _yes: &str, _no: Option<&str>) -> Option<bool> {
        None
    }
    /// Asks for a public value; `None` when it cannot be asked.
    fn request_public_string(&self, _description: &str) -> Option<String> {
        None
    }
    /// Asks for a passphrase; `None` when it cannot be asked.
    fn request_passphrase(&self, _description: &str) -> Option<Zeroizing<String>> {
        None
    }
}

/// An [`Interaction`] that never prompts (CI, the controller).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoInteraction;

impl Interaction for NoInteraction {}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the current thread. Enough for the ready futures of local
/// keys, and for KMS and Vault transit, whose I/O runs on the crate's own tokio runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_drives_a_future_woken_from_another_thread() {
        struct Delayed(
            Option<std::thread::JoinHandle<()>>,
            Arc<std::sync::atomic::AtomicBool>,
        );
        impl Future for Delayed {
            type Output = u32;
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
                if self.1.load(std::sync::atomic::Ordering::SeqCst) {
                    return Poll::Ready(7);
                }
                if self.0.is_none() {
                    let flag = self.1.clone();
                    let waker = cx.waker().clone();
                    self.0 = Some(std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        flag.store(true, std::sync::atomic::Ordering::SeqCst);
                        waker.wake();
                    }));
                }
                Poll::Pending
            }
        }
        let value = block_on(Delayed(
            None,
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        ));
        assert_eq!(value, 7);
    }
}
