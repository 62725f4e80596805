//! Supervision of the reconcilers: which ones run in this leadership term (for `/healthz` and
//! `/readyz`), containment of a panicking reconcile to its object, and the failure that ends the
//! process when a reconciler task stops on its own.
//!
//! A reconciler task that ends while this process leads is a bug (every reconcile runs under
//! `contained`, so no object can end it): the controller records the failure, the health
//! endpoints answer 503, and [`crate::RunningController::failed`] resolves so that the binary
//! releases the Lease and exits non-zero. Kubernetes restarts the pod with back-off and a standby
//! takes over at once — visible to the operator, instead of an in-process restart loop hiding it.

use crate::Error;
use futures::FutureExt;
use kube::runtime::controller::Action;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// The reconciler tasks of the current leadership term and the first unexpected failure.
#[derive(Debug)]
pub struct Reconcilers {
    term: Mutex<Vec<(&'static str, AbortHandle)>>,
    failure: watch::Sender<Option<String>>,
}

impl Default for Reconcilers {
    fn default() -> Self {
        Reconcilers {
            term: Mutex::new(Vec::new()),
            failure: watch::channel(None).0,
        }
    }
}

impl Reconcilers {
    /// Registers the tasks of a new leadership term.
    pub(crate) fn start_term(&self, tasks: Vec<(&'static str, AbortHandle)>) {
        *self.term.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
    }

    /// Forgets the tasks of a term that ended as it should (leadership lost, shutdown).
    pub(crate) fn end_term(&self) {
        self.term.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Records that `what` stopped unexpectedly (only the first failure is kept).
    pub(crate) fn fail(&self, what: String) {
        self.failure.send_if_modified(|failure| {
            if failure.is_some() {
                return false;
            }
            *failure = Some(what);
            true
        });
    }

    /// Why the controller is unhealthy: a recorded failure, or a task of this term that is no
    /// longer running. `None` when every enabled reconciler runs (or this replica is a standby).
    pub fn problem(&self) -> Option<String> {
        if let Some(failure) = self.failure.borrow().clone() {
            return Some(failure);
        }
        let term = self.term.lock().unwrap_or_else(|e| e.into_inner());
        let stopped: Vec<&str> = term
            .iter()
            .filter(|(_, task)| task.is_finished())
            .map(|(name, _)| *name)
            .collect();
        (!stopped.is_empty()).then(|| format!("not running: {}", stopped.join(", ")))
    }

    /// Resolves with the first unexpected failure.
    pub async fn failed(&self) -> String {
        let mut rx = self.failure.subscribe();
        let failure = rx
            .wait_for(Option::is_some)
            .await
            .map(|failure| failure.clone().unwrap_or_default());
        match failure {
            Ok(failure) => failure,
            // The sender lives in `self`: unreachable while `self` is borrowed.
            Err(_) => std::future::pending().await,
        }
    }

    /// Test hook: aborts the running task `name` of this term, as a bug ending it would. Reachable
    /// only from code linked with the library (no HTTP or cluster path leads here).
    #[doc(hidden)]
    pub fn end_task_for_test(&self, name: &str) -> bool {
        let term = self.term.lock().unwrap_or_else(|e| e.into_inner());
        term.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, task)| task.abort())
            .is_some()
    }
}

/// Runs one reconcile so that a panic fails that reconcile only ([`Error::Task`]: retried by the
/// error policy with back-off) instead of ending the reconciler for every object.
pub(crate) fn contained<K, C, Fut>(
    reconcile: impl Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
) -> impl Fn(Arc<K>, Arc<C>) -> futures::future::BoxFuture<'static, Result<Action, Error>>
where
    K: Send + Sync + 'static,
    C: Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    move |object, ctx| {
        AssertUnwindSafe(reconcile(object, ctx))
            .catch_unwind()
            .map(|outcome| outcome.unwrap_or(Err(Error::Task)))
            .boxed()
    }
}

/// A panic hook that logs where a panic happened but not its message: messages of slicing and
/// parsing panics quote the text they were given, which may be a secret value.
pub fn install_quiet_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(%location, "panic (message withheld: it may quote secret input)");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_reconcile_fails_alone() {
        let reconcile = contained(|n: Arc<u32>, _: Arc<()>| async move {
            if *n == 0 {
                panic!("boom");
            }
            Ok::<_, Error>(Action::await_change())
        });
        assert!(matches!(
            reconcile(Arc::new(0), Arc::new(())).await,
            Err(Error::Task)
        ));
        assert!(reconcile(Arc::new(1), Arc::new(())).await.is_ok());
    }

    #[tokio::test]
    async fn a_finished_task_of_the_term_is_a_problem() {
        let reconcilers = Reconcilers::default();
        assert_eq!(reconcilers.problem(), None);
        let running = tokio::spawn(std::future::pending::<()>());
        let ended = tokio::spawn(async {});
        reconcilers.start_term(vec![
            ("Running", running.abort_handle()),
            ("Ended", ended.abort_handle()),
        ]);
        let _ = ended.await;
        assert_eq!(reconcilers.problem().as_deref(), Some("not running: Ended"));
        reconcilers.end_term();
        assert_eq!(reconcilers.problem(), None);
        reconcilers.fail("SopsSecret reconciler ended".into());
        reconcilers.fail("second".into());
        assert_eq!(reconcilers.failed().await, "SopsSecret reconciler ended");
        assert!(reconcilers.problem().is_some());
        running.abort();
    }
}
