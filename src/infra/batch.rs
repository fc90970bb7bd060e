//! Group commit. Requests that arrive while a worker is busy with the database wait for the
//! worker's next turn, which serves all of them at once (one transaction, multi-row
//! statements). There is no timer: a lone request is served at once, and under a crowd the
//! batches grow by themselves to what arrived during the previous one, so the database sees a
//! handful of statements per batch instead of a handful per request.

use std::{future::Future, panic::AssertUnwindSafe, pin::Pin, sync::Arc};

use futures::FutureExt;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::error::{AppError, AppResult};

/// What a flush returns: one result per job, in the jobs' order.
pub type FlushFuture<R> = Pin<Box<dyn Future<Output = Vec<AppResult<R>>> + Send>>;

/// Every job's answer when a batch's database was busy or unreachable (`error` is 503), so each
/// client gets the 503 to retry; `None` for any other error, which the flush handles itself.
pub fn all_unavailable<R>(error: &AppError, jobs: usize) -> Option<Vec<AppResult<R>>> {
    (error.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE).then(|| {
        (0..jobs)
            .map(|_| {
                Err(
                    AppError::unavailable("The database is busy or unreachable; try again.")
                        .with_commit_unknown(error.commit_outcome_unknown()),
                )
            })
            .collect()
    })
}

/// Serves jobs of one kind in batches through `flush`.
pub struct Batcher<J, R> {
    name: &'static str,
    sender: mpsc::Sender<(J, oneshot::Sender<AppResult<R>>)>,
}

impl<J: Send + 'static, R: Send + 'static> Batcher<J, R> {
    /// Starts `workers` tasks that each take up to `max_batch` waiting jobs per turn. They stop
    /// when the batcher is dropped. Call inside the Tokio runtime.
    pub fn spawn(
        name: &'static str,
        max_batch: usize,
        workers: usize,
        flush: fn(Vec<J>) -> FlushFuture<R>,
    ) -> Self {
        // Bounded, so a crowd larger than the database can serve waits here (and times out at
        // the client) instead of growing memory without limit.
        let (sender, receiver) = mpsc::channel(max_batch.max(1) * 64);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..workers.max(1) {
            tokio::spawn(work(name, receiver.clone(), max_batch.max(1), flush));
        }
        Self { name, sender }
    }

    /// Queues one job and waits for its result.
    pub async fn run(&self, job: J) -> AppResult<R> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((job, reply))
            .await
            .map_err(|_| AppError::unavailable("The service is shutting down; try again."))?;
        answer.await.map_err(|_| {
            AppError::internal(anyhow::anyhow!("the {} batch worker stopped", self.name))
        })?
    }
}

type Queue<J, R> = Arc<Mutex<mpsc::Receiver<(J, oneshot::Sender<AppResult<R>>)>>>;

async fn work<J, R>(
    name: &'static str,
    receiver: Queue<J, R>,
    max_batch: usize,
    flush: fn(Vec<J>) -> FlushFuture<R>,
) {
    let mut waiting = Vec::with_capacity(max_batch);
    loop {
        // One worker collects at a time; the others are flushing meanwhile.
        {
            let mut queue = receiver.lock().await;
            if queue.recv_many(&mut waiting, max_batch).await == 0 {
                return;
            }
            // Requests already on their way (runnable tasks about to queue a job) join this
            // batch: one pass of the scheduler, no timer, nothing to wait for when idle.
            if waiting.len() < max_batch {
                tokio::task::yield_now().await;
                while waiting.len() < max_batch {
                    let Ok(job) = queue.try_recv() else { break };
                    waiting.push(job);
                }
            }
        }
        let (jobs, replies): (Vec<J>, Vec<_>) = waiting.drain(..).unzip();
        metrics::histogram!("boxoffice_batch_size", "batch" => name).record(jobs.len() as f64);
        let results = AssertUnwindSafe(flush(jobs)).catch_unwind().await;
        match results {
            Ok(results) if results.len() == replies.len() => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // The requester may have gone (client disconnected): nothing to tell.
                    let _ = reply.send(result);
                }
            }
            outcome => {
                if outcome.is_err() {
                    metrics::counter!("boxoffice_panics_total").increment(1);
                }
                tracing::error!(batch = name, "a batch flush failed without per-job results");
                for reply in replies {
                    let _ = reply.send(Err(AppError::internal(anyhow::anyhow!(
                        "the {name} batch failed"
                    ))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doubled(jobs: Vec<u32>) -> FlushFuture<u32> {
        Box::pin(async move {
            jobs.into_iter()
                .map(|j| {
                    if j == 7 {
                        Err(AppError::conflict("unlucky", "seven"))
                    } else {
                        Ok(j * 2)
                    }
                })
                .collect()
        })
    }

    fn panicking(_: Vec<u32>) -> FlushFuture<u32> {
        Box::pin(async move { panic!("flush bug") })
    }

    #[tokio::test]
    async fn every_job_gets_its_own_result_even_when_a_neighbour_fails() {
        let batcher = Arc::new(Batcher::spawn("test", 8, 2, doubled));
        let runs: Vec<_> = (0..40u32)
            .map(|j| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (j, batcher.run(j).await) })
            })
            .collect();
        for run in runs {
            let (job, result) = run.await.expect("task");
            match result {
                Ok(v) => assert_eq!(v, job * 2),
                Err(e) => {
                    assert_eq!(job, 7);
                    assert_eq!(e.code(), "unlucky");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_panicking_flush_answers_internal_error_and_the_worker_keeps_serving() {
        let batcher = Batcher::spawn("test", 4, 1, panicking);
        for _ in 0..3 {
            let err = batcher.run(1).await.expect_err("a panic is an error");
            assert_eq!(err.code(), "internal_error");
        }
    }
}
