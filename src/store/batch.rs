//! Group commit for submissions. A comment is acknowledged only once its
//! transaction is durable, and a durable commit costs an fsync; so concurrent
//! submissions are gathered and committed together, one fsync for the lot.
//! Nobody waits for a batch to fill: a worker takes whatever is queued the
//! moment it is free, so a lone submission is committed at once.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Store, StoreError};
use crate::domain::{Comment, NewComment};

/// The most submissions committed in one transaction.
const MAX_BATCH: usize = 128;
/// Submissions waiting for a worker before senders wait too (backpressure).
const QUEUE_DEPTH: usize = 4096;

struct Job {
    comment: NewComment,
    answer: oneshot::Sender<Result<Option<Comment>, StoreError>>,
}

/// Hands submissions to the writer workers and waits for their commit.
#[derive(Clone)]
pub struct InsertBatcher {
    jobs: mpsc::Sender<Job>,
}

impl InsertBatcher {
    /// Starts `workers` writers. SQLite wants one (it has one writer anyway);
    /// PostgreSQL gains from a few committing in parallel.
    pub fn spawn(store: Store, workers: usize) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..workers.max(1) {
            tokio::spawn(write_batches(store.clone(), queue.clone()));
        }
        Self { jobs }
    }

    /// Stores one submission; returns when it is committed (or failed).
    pub async fn insert(&self, comment: NewComment) -> Result<Option<Comment>, StoreError> {
        let (answer, answered) = oneshot::channel();
        let stopped = || StoreError::Unavailable(sqlx::Error::PoolClosed);
        self.jobs
            .send(Job { comment, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// One writer: take what is queued, commit it, answer everyone, repeat.
async fn write_batches(store: Store, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let comments: Vec<&NewComment> = batch.iter().map(|job| &job.comment).collect();
        let started = std::time::Instant::now();
        let outcome = store.insert_comments(&comments).await;
        tracing::debug!(
            size = batch.len(),
            micros = started.elapsed().as_micros() as u64,
            "batch committed"
        );
        match outcome {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.answer.send(Ok(result));
                }
            }
            // One bad row must not fail its neighbours: retry them one by one,
            // so each gets its own answer.
            Err(_) if batch.len() > 1 => {
                for job in batch {
                    let result = store.insert_comment(&job.comment).await;
                    let _ = job.answer.send(result);
                }
            }
            Err(error) => {
                if let Some(job) = batch.into_iter().next() {
                    let _ = job.answer.send(Err(error));
                }
            }
        }
    }
}
