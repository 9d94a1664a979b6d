//! Driving one child: a producer feeds its stdin through a bounded channel, a consumer
//! reads its stdout, its stderr is drained, and one `select!` waits for the exit, a signal,
//! or an abort from the producer. Shared by map, combine and reduce.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::process::ChildStdout;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::feed::{self, CHANNEL_DEPTH};
use crate::process::{drain_stderr, ChildCommand, ExitInfo, Spawned, StderrSummary};

/// How long a child gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// A signal: the whole run is stopping.
    Cancelled,
    /// The producer gave up (e.g. `--fail-fast`).
    Aborted,
}

pub struct Driven<P, C> {
    pub exit: io::Result<ExitInfo>,
    pub produced: P,
    /// Bytes written to the child's stdin, or why writing stopped early.
    pub written: io::Result<u64>,
    pub consumed: io::Result<C>,
    pub stderr: StderrSummary,
    pub stopped: Option<Stopped>,
}

/// Runs `cmd` to its end. Errs only when the child cannot be started.
///
/// `producer` gets the channel to stdin and a token cancelled once the child has exited
/// (so a producer waiting for input does not outlive it); `abort` may be cancelled by the
/// producer to stop the child early.
pub async fn drive<P, C, PF, CF>(
    cmd: &ChildCommand,
    role: &'static str,
    producer: impl FnOnce(mpsc::Sender<Vec<u8>>, CancellationToken) -> PF,
    consumer: impl FnOnce(ChildStdout) -> CF,
    cancel: &CancellationToken,
    abort: &CancellationToken,
) -> io::Result<Driven<P, C>>
where
    P: Send + 'static,
    C: Send + 'static,
    PF: Future<Output = P> + Send + 'static,
    CF: Future<Output = io::Result<C>> + Send + 'static,
{
    let mut child = Spawned::spawn(cmd).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "failed to start the {role} `{}`: {e}",
                cmd.program.display()
            ),
        )
    })?;
    tracing::info!(pid = child.pid(), command = %cmd.program_display(), "{role} started");
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(io::Error::other(format!(
            "the {role}'s pipes were not set up"
        )));
    };
    let child_gone = CancellationToken::new();
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let produced = tokio::spawn(producer(tx, child_gone.clone()));
    let writer = tokio::spawn(feed::write_stdin(stdin, rx));
    let consumed = tokio::spawn(consumer(stdout));
    let drainer = tokio::spawn(drain_stderr(stderr, role));

    let mut stopped = None;
    let exit = tokio::select! {
        r = child.wait() => r,
        _ = cancel.cancelled() => {
            stopped = Some(Stopped::Cancelled);
            child.terminate(GRACE).await
        }
        _ = abort.cancelled() => {
            stopped = Some(Stopped::Aborted);
            child.terminate(GRACE).await
        }
    };
    child_gone.cancel();
    let join = |e: tokio::task::JoinError| {
        io::Error::other(format!("internal error in the {role}'s I/O: {e}"))
    };
    let produced = produced.await.map_err(join)?;
    let written = writer.await.map_err(join)?;
    let consumed = consumed.await.map_err(join)?;
    let stderr = drainer.await.unwrap_or_default();
    Ok(Driven {
        exit,
        produced,
        written,
        consumed,
        stderr,
        stopped,
    })
}

impl<P, C> Driven<P, C> {
    /// The error for a child that did not succeed, with its stderr tail; `None` if it did.
    pub fn child_failure(&self, role: &str) -> Option<String> {
        match &self.exit {
            Err(e) => Some(format!("failed to wait for the {role}: {e}")),
            Ok(exit) if !exit.success() => Some(with_tail(
                format!("the {role} failed with {exit}"),
                &self.stderr,
            )),
            Ok(_) => None,
        }
    }
}

pub fn with_tail(msg: String, stderr: &StderrSummary) -> String {
    if stderr.tail.is_empty() {
        format!("{msg}; it wrote nothing on stderr")
    } else {
        format!("{msg}; last lines of its stderr:\n{}", stderr.tail_text())
    }
}
