//! The one retry loop: attempts of a task until one succeeds, the retries run out, or an
//! attempt fails in a way another attempt cannot fix ([`TaskError::is_retryable`]).

use std::future::Future;

use tokio_util::sync::CancellationToken;

use crate::report::TaskReport;
use crate::task::{Attempted, Finished, TaskError};

/// Every attempt's report, in order, and what the last one left if it succeeded.
pub struct Tried {
    pub attempts: Vec<TaskReport>,
    pub finished: Option<Finished>,
    /// Why the last attempt failed, when it did.
    pub error: Option<TaskError>,
}

pub async fn with_retries<F, Fut>(
    task_id: &str,
    retries: u32,
    cancel: &CancellationToken,
    mut attempt: F,
    mut on_failure: impl FnMut(&TaskReport, &TaskError),
) -> Tried
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempted>,
{
    let mut tried = Tried {
        attempts: Vec::new(),
        finished: None,
        error: None,
    };
    for n in 0..=retries {
        if cancel.is_cancelled() {
            break;
        }
        let Attempted { report, result } = attempt(n).await;
        if let Err(e) = &result {
            on_failure(&report, e);
        }
        tried.attempts.push(report);
        match result {
            Ok(f) => {
                tried.finished = Some(f);
                tried.error = None;
                break;
            }
            Err(e) => {
                let again = e.is_retryable() && n < retries && !cancel.is_cancelled();
                if !matches!(e, TaskError::Interrupted(_)) {
                    let next = if again {
                        ", retrying"
                    } else if e.is_retryable() {
                        ""
                    } else {
                        " (not retried: another attempt would fail the same way)"
                    };
                    tracing::warn!("{task_id} attempt {n} failed{next}: {e}");
                }
                tried.error = Some(e);
                if !again {
                    break;
                }
            }
        }
    }
    tried
}
