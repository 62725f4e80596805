//! CPU-bound work (unsealing, sops decryption, template rendering, key generation) runs off the
//! async runtime, at most one task per core at a time.
//!
//! `spawn_blocking` alone starts a thread for every waiting task (tokio allows 512): a catch-up
//! with 64 reconciles in flight on two cores ran 64 threads unsealing at once, each with its own
//! stack and malloc arena, none finishing sooner. The gate hands out one permit per core, in
//! arrival order; a permit is held by the blocking task itself, so a reconcile cancelled while its
//! work runs does not let another start beside it.

use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// A first-come, first-served limit on CPU-bound tasks running at once.
#[derive(Debug, Clone)]
pub struct Gate(Arc<Semaphore>);

impl Gate {
    /// A gate letting `permits` tasks (at least one) run at once.
    pub fn new(permits: usize) -> Gate {
        Gate(Arc::new(Semaphore::new(permits.max(1))))
    }

    /// Runs `work` on the blocking pool once a permit is free; `None` when it panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let permit = Arc::clone(&self.0).acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .ok()
    }
}

/// The process's gate: one permit per core the process may use.
pub fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        Gate::new(std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
    })
}

/// Runs `work` through the process's [`gate`].
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    gate().run(work).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_tasks_run_at_once_than_the_gate_has_permits() {
        let gate = Gate::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let (gate, running, most) = (gate.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    gate.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                        i * 2
                    })
                    .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap().unwrap());
        }
        assert_eq!(results, (0..12).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_cancelled_caller_keeps_its_permit_until_the_work_ends() {
        let gate = Gate::new(1);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let gate = gate.clone();
            async move {
                gate.run(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().ok();
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        first.abort();
        let _ = first.await;
        // The first task's work still runs: the second waits.
        let second = gate.run(|| ());
        assert!(
            tokio::time::timeout(Duration::from_millis(100), second)
                .await
                .is_err()
        );
        release_tx.send(()).unwrap();
        let third = gate.run(|| 7);
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), third).await,
            Ok(Some(7))
        );
    }

    #[tokio::test]
    async fn a_panicking_task_gives_none_and_frees_its_permit() {
        let gate = Gate::new(1);
        assert_eq!(gate.run(|| -> u8 { panic!("boom") }).await, None);
        assert_eq!(gate.run(|| 1).await, Some(1));
    }
}
