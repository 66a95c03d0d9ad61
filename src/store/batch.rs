//! Group commit for submissions. A comment is acknowledged only once its
//! transaction is durable, and a durable commit costs an fsync; so concurrent
//! submissions are gathered and committed together, one fsync for the lot.
//! Nobody waits for a batch to fill: a worker takes whatever is queued the
//! moment it is free, so a lone submission is committed at once.
//!
//! The writers run under the app's [`Supervisor`]: at shutdown each commits
//! what is already queued, then stops.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Admission, Inserted, Store, StoreError};
use crate::domain::NewComment;
use crate::tasks::{CancellationToken, Supervisor};

/// The most submissions committed in one transaction.
const MAX_BATCH: usize = 128;
/// Submissions waiting for a worker before senders wait too (backpressure).
const QUEUE_DEPTH: usize = 4096;

struct Job {
    comment: NewComment,
    admission: Admission,
    answer: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// Hands submissions to the writer workers and waits for their commit.
#[derive(Clone)]
pub struct InsertBatcher {
    jobs: mpsc::Sender<Job>,
}

/// What the writers do besides storing comments, each in the comments'
/// transaction. A plain `bool` means "record events" and nothing else.
#[derive(Debug, Clone, Copy, Default)]
pub struct Writing {
    /// Write each comment's notification event in its transaction.
    pub record_events: bool,
    /// Write an Akismet check (`akismet_checks`) for each pending comment.
    pub check_akismet: bool,
}

impl From<bool> for Writing {
    fn from(record_events: bool) -> Self {
        Writing {
            record_events,
            check_akismet: false,
        }
    }
}

impl InsertBatcher {
    /// Starts `workers` writers under `supervisor`. SQLite wants one (it has
    /// one writer anyway); PostgreSQL gains from a few committing in parallel.
    /// With `record_events`, every comment's notification event is committed
    /// with it (see `store/outbox.rs`); with `check_akismet`, its Akismet check.
    pub fn start(
        store: Store,
        workers: usize,
        writing: impl Into<Writing>,
        supervisor: &mut Supervisor,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let queue = Arc::new(Mutex::new(queue));
        let writing = writing.into();
        for _ in 0..workers.max(1) {
            let (store, queue) = (store.clone(), queue.clone());
            supervisor.spawn("batch writer", move |token| {
                write_batches(store, queue, writing, token)
            });
        }
        Self { jobs }
    }

    /// Stores one comment as the caller decided (status, reasons, whether
    /// a duplicate is refused); returns when it is committed (or failed),
    /// with what became of it (see [`Inserted`]).
    pub async fn insert(&self, comment: NewComment, admission: Admission) -> Result<Inserted, StoreError> {
        let (answer, answered) = oneshot::channel();
        let stopped = || StoreError::Unavailable(sqlx::Error::PoolClosed);
        self.jobs
            .send(Job {
                comment,
                admission,
                answer,
            })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// One writer: take what is queued, commit it, answer everyone, repeat. Once
/// `stop` is cancelled it keeps going only while jobs are queued, so every
/// submission accepted before shutdown is committed (or refused) and answered.
async fn write_batches(
    store: Store,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    writing: Writing,
    stop: CancellationToken,
) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let first = tokio::select! {
                // Queued work first, so a cancelled writer still drains.
                biased;
                job = queue.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                () = stop.cancelled() => match queue.try_recv() {
                    Ok(job) => job,
                    Err(_) => return,
                },
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let comments: Vec<(&NewComment, &Admission)> =
            batch.iter().map(|job| (&job.comment, &job.admission)).collect();
        let started = std::time::Instant::now();
        let outcome = store.insert_admitted(&comments, writing).await;
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
            // The database is away: nothing of the batch was stored, and
            // retrying one by one would make the last submission wait out
            // one pool timeout per neighbour. Everyone gets the 503 now.
            Err(StoreError::Unavailable(error)) => fail_all(batch, error),
            // One bad row must not fail its neighbours: retry them one by one,
            // so each gets its own answer.
            Err(_) if batch.len() > 1 => {
                let mut jobs = batch.into_iter();
                while let Some(job) = jobs.next() {
                    match store
                        .insert_admitted(&[(&job.comment, &job.admission)], writing)
                        .await
                        .map(|mut inserted| inserted.pop().unwrap_or(Inserted::ParentNotApproved))
                    {
                        Err(StoreError::Unavailable(error)) => {
                            // Gone mid-retry: the rest would only time out too.
                            fail_all(std::iter::once(job).chain(jobs), error);
                            break;
                        }
                        result => {
                            let _ = job.answer.send(result);
                        }
                    }
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

/// Answers every job with "unavailable": the first with the error itself, the
/// others with its description (a `sqlx::Error` cannot be cloned). None of
/// them was stored, so none is acknowledged.
fn fail_all(jobs: impl IntoIterator<Item = Job>, error: sqlx::Error) {
    let description = error.to_string();
    let mut error = Some(error);
    for job in jobs {
        let error = error.take().unwrap_or_else(|| {
            sqlx::Error::Io(std::io::Error::other(format!(
                "the batch this submission was in failed: {description}"
            )))
        });
        let _ = job.answer.send(Err(StoreError::Unavailable(error)));
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::domain::{AuthorName, CommentBody, Email, Status, ThreadUri};

    fn submission(n: usize) -> NewComment {
        NewComment {
            uri: ThreadUri::parse("/batch/").unwrap(),
            parent_id: None,
            name: AuthorName::parse("Ada").unwrap(),
            email: Email::parse("ada@example.org").unwrap(),
            website: None,
            body: CommentBody::parse(&format!("comment {n}")).unwrap(),
            ip: None,
            user_agent: None,
            wants_replies: false,
            lang: None,
            referrer: None,
        }
    }

    #[tokio::test]
    async fn when_the_database_is_unavailable_every_waiting_submission_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("batch.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let mut supervisor = Supervisor::new(crate::metrics::Metrics::default().task_exits());
        let batcher = InsertBatcher::start(store.clone(), 1, false, &mut supervisor);
        assert!(
            batcher
                .insert(submission(0), Admission::plain(Status::Pending))
                .await
                .unwrap()
                .stored()
                .is_some()
        );

        // A closed pool is the quickest "database away" there is.
        store.close().await;
        let started = Instant::now();
        let answers = futures_util::future::join_all(
            (1..=64).map(|n| batcher.insert(submission(n), Admission::plain(Status::Pending))),
        )
        .await;
        assert!(
            answers
                .iter()
                .all(|answer| matches!(answer, Err(StoreError::Unavailable(_)))),
            "{answers:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
