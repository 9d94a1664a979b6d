//! Why a task attempt failed, classified once where it is known, so that the one retry loop
//! can tell a download that broke (worth another attempt) from a plan that cannot run.

use crate::process::ExitInfo;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TaskError {
    /// Stopped by SIGINT/SIGTERM: the job is ending, nothing is retried.
    #[error("{0}")]
    Interrupted(String),
    /// The child exited badly (or could not be waited for). A mapper that crashes on its
    /// input may crash again, but a child can also die of the machine (OOM killer), so
    /// `--retries` decides.
    #[error("{message}")]
    ChildFailed {
        exit: Option<ExitInfo>,
        message: String,
    },
    /// The child made no progress for `--task-timeout` and was killed.
    #[error("{0}")]
    ChildTimedOut(String),
    /// An input could not be read under `--fail-fast`. `transient` when another attempt may
    /// read it (a network error); not when it is missing, forbidden or corrupt.
    #[error("{message}")]
    InputUnreadable { transient: bool, message: String },
    /// The task's output could not be written, published or marked complete.
    #[error("{0}")]
    PublishFailed(String),
    /// The plan asks for something that cannot run (a step that cannot be started, a task
    /// the plan does not have): every attempt would fail the same way.
    #[error("{0}")]
    BadPlan(String),
}

impl TaskError {
    pub fn is_retryable(&self) -> bool {
        match self {
            TaskError::Interrupted(_) | TaskError::BadPlan(_) => false,
            TaskError::InputUnreadable { transient, .. } => *transient,
            TaskError::ChildFailed { .. }
            | TaskError::ChildTimedOut(_)
            | TaskError::PublishFailed(_) => true,
        }
    }

    pub fn status(&self) -> crate::report::TaskStatus {
        match self {
            TaskError::Interrupted(_) => crate::report::TaskStatus::Interrupted,
            _ => crate::report::TaskStatus::Failed,
        }
    }

    pub fn child(exit: Option<ExitInfo>, message: String) -> TaskError {
        TaskError::ChildFailed { exit, message }
    }

    /// An input read that failed with `e`: permanent when reading again cannot help.
    pub fn is_transient_io(e: &std::io::Error) -> bool {
        use std::io::ErrorKind::*;
        !matches!(
            e.kind(),
            NotFound | PermissionDenied | InvalidData | InvalidInput | IsADirectory | Unsupported
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_another_attempt_may_fix_is_retried() {
        assert!(TaskError::child(None, "exit 3".into()).is_retryable());
        assert!(TaskError::ChildTimedOut("silent".into()).is_retryable());
        assert!(TaskError::PublishFailed("disk".into()).is_retryable());
        let input = |transient| TaskError::InputUnreadable {
            transient,
            message: "x".into(),
        };
        assert!(input(true).is_retryable());
        assert!(!input(false).is_retryable());
        assert!(!TaskError::BadPlan("no reducer".into()).is_retryable());
        assert!(!TaskError::Interrupted("signal".into()).is_retryable());
        let gone = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert!(!TaskError::is_transient_io(&gone));
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(TaskError::is_transient_io(&reset));
    }
}
