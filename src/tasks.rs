//! Supervised background tasks: the batch writers, the limiter pruner, the
//! PostgreSQL change listener, and (in v2) the outbox worker and retention
//! jobs. Spawned loops are otherwise invisible: a panic in one goes unseen and
//! shutdown can only abort them mid-step. So every task is spawned through
//! one [`Supervisor`], which
//!
//! - hands each task the shared [`CancellationToken`], so a task decides how
//!   to stop (a writer commits what is queued first; a pruner just stops);
//! - logs and counts (`marginalia_background_task_exits_total`) any task that
//!   returns or panics before shutdown asked it to, at the moment it happens;
//! - on [`Supervisor::shutdown`], cancels the token, waits for every task up
//!   to a deadline, and aborts whatever is still running after it.
//!
//! The shape is mini-redis's `shutdown.rs` (a broadcast to stop, then a wait
//! for everyone) with tokio-util's token in place of the broadcast channel.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::task::JoinHandle;
pub use tokio_util::sync::CancellationToken;

use crate::metrics::TaskExits;

/// Owns the background tasks of one app instance.
pub struct Supervisor {
    token: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    exits: TaskExits,
}

impl Supervisor {
    pub fn new(exits: TaskExits) -> Self {
        Self {
            token: CancellationToken::new(),
            tasks: Vec::new(),
            exits,
        }
    }

    /// Spawns `task(token)` under `name` (a short, fixed label: it becomes a
    /// metrics label). The task must return soon after the token is
    /// cancelled; returning earlier is reported as a failure.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let token = self.token.clone();
        let exits = self.exits.clone();
        let running = task(token.clone());
        let handle = tokio::spawn(async move {
            // Caught here rather than at shutdown, so an operator hears of a
            // dead writer when it dies, not when the process stops.
            let panicked = AssertUnwindSafe(running).catch_unwind().await.is_err();
            if panicked {
                tracing::error!(task = name, "background task panicked");
                exits.record(name, true);
            } else if !token.is_cancelled() {
                tracing::error!(task = name, "background task stopped before shutdown");
                exits.record(name, false);
            }
        });
        self.tasks.push((name, handle));
    }

    /// Spawns a task that has nothing to finish: it is simply dropped at its
    /// next await point once shutdown begins.
    pub fn spawn_until_cancelled<Fut>(&mut self, name: &'static str, task: Fut)
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, |token| async move {
            tokio::select! {
                () = token.cancelled() => {}
                () = task => {}
            }
        });
    }

    /// The token every task watches; cancelling it starts their shutdown.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Cancels every task and waits for them, at most `deadline` in all;
    /// aborts the ones still running then. Returns how many had to be aborted.
    pub async fn shutdown(self, deadline: Duration) -> usize {
        self.token.cancel();
        let give_up_at = tokio::time::Instant::now() + deadline;
        let mut aborted = 0;
        for (name, mut handle) in self.tasks {
            if tokio::time::timeout_at(give_up_at, &mut handle).await.is_err() {
                tracing::warn!(task = name, "background task did not stop in time; aborted");
                handle.abort();
                aborted += 1;
            }
        }
        aborted
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::metrics::Metrics;

    #[tokio::test]
    async fn a_task_that_dies_early_is_counted_when_it_dies() {
        let metrics = Metrics::default();
        let mut supervisor = Supervisor::new(metrics.task_exits());
        supervisor.spawn_until_cancelled("doomed", async { panic!("boom") });
        supervisor.spawn_until_cancelled("quitter", async {});
        // No shutdown yet: the report must not wait for one.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = metrics.render(0, &[]);
            if text.contains(r#"task="doomed",how="panicked"} 1"#)
                && text.contains(r#"task="quitter",how="returned"} 1"#)
            {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{text}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(supervisor.shutdown(Duration::from_secs(1)).await, 0);
    }

    #[tokio::test]
    async fn shutdown_lets_tasks_finish_their_work_and_is_not_counted_as_a_failure() {
        let metrics = Metrics::default();
        let mut supervisor = Supervisor::new(metrics.task_exits());
        let drained = Arc::new(AtomicBool::new(false));
        let flag = drained.clone();
        supervisor.spawn("drainer", |token| async move {
            token.cancelled().await;
            // Work after cancellation, as a batch writer committing its queue.
            tokio::time::sleep(Duration::from_millis(20)).await;
            flag.store(true, Ordering::SeqCst);
        });
        supervisor.spawn_until_cancelled("forever", std::future::pending());
        assert_eq!(supervisor.shutdown(Duration::from_secs(5)).await, 0);
        assert!(drained.load(Ordering::SeqCst));
        assert!(!metrics.render(0, &[]).contains("background_task_exits_total{"));
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_token_is_aborted_at_the_deadline() {
        let mut supervisor = Supervisor::new(Metrics::default().task_exits());
        supervisor.spawn("stubborn", |_token| std::future::pending());
        assert_eq!(supervisor.shutdown(Duration::from_millis(50)).await, 1);
    }
}
