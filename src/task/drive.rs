//! Driving one child: a producer feeds its stdin through a bounded channel, a consumer
//! reads its stdout, its stderr is drained, and one `select!` waits for the exit, a signal,
//! an abort from the producer, or the task timeout. Shared by map, combine and reduce.
//!
//! Once the child has exited, the bytes still unread in its stdin pipe are counted: a child
//! that exits 0 without reading all its input fails its task, whatever the input's size.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::process::ChildStdout;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::feed::{self, StdinProgress, CHANNEL_DEPTH};
use super::TaskError;
use crate::process::{drain_stderr, ChildCommand, ExitInfo, Spawned, StderrSummary, StdinProbe};

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
    /// Bytes written to the child's stdin that it had not read when it exited.
    pub unread: u64,
    /// The child made no progress for this long (`--task-timeout`) and was killed.
    pub timed_out: Option<Duration>,
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
    consumer: impl FnOnce(ChildOutput<ChildStdout>) -> CF,
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
    let (Some(stdin), Some(probe), Some(stdout), Some(stderr)) = (
        child.stdin.take(),
        child.stdin_probe.take(),
        child.stdout.take(),
        child.stderr.take(),
    ) else {
        return Err(io::Error::other(format!(
            "the {role}'s pipes were not set up"
        )));
    };
    let child_gone = CancellationToken::new();
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let stdin_progress = Arc::new(StdinProgress::default());
    let (stdout, stdout_meter) = ChildOutput::new(stdout);
    let (stderr, stderr_meter) = ChildOutput::new(stderr);
    let produced = tokio::spawn(producer(tx, child_gone.clone()));
    let writer = tokio::spawn(feed::write_stdin(
        stdin,
        rx,
        child_gone.clone(),
        stdin_progress.clone(),
    ));
    let consumed = tokio::spawn(consumer(stdout));
    let drainer = tokio::spawn(drain_stderr(stderr, role));

    let watch = Watch {
        probe: &probe,
        stdin: &stdin_progress,
        stdout: &stdout_meter,
        stderr: &stderr_meter,
    };
    let mut stopped = None;
    let mut timed_out = None;
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
        _ = watch.stalled(cmd.timeout) => {
            timed_out = cmd.timeout;
            tracing::warn!("the {role} made no progress for {}: killing it", cmd.timeout.map(human_duration).unwrap_or_default());
            child.terminate(GRACE).await
        }
    };
    child_gone.cancel();
    let join = |e: tokio::task::JoinError| {
        io::Error::other(format!("internal error in the {role}'s I/O: {e}"))
    };
    // The writer stops at once now (see `write_stdin`); only then is the pipe's content final.
    let written = writer.await.map_err(join)?;
    let unread = probe.unread().unwrap_or(0);
    drop(probe);
    let produced = produced.await.map_err(join)?;
    let consumed = consumed.await.map_err(join)?;
    let stderr = drainer.await.unwrap_or_default();
    Ok(Driven {
        exit,
        produced,
        written,
        consumed,
        stderr,
        stopped,
        unread,
        timed_out,
    })
}

/// A child's stdout or stderr, metered for the progress watchdog.
pub struct ChildOutput<R> {
    inner: R,
    meter: Arc<OutputMeter>,
}

#[derive(Default)]
struct OutputMeter {
    bytes: AtomicU64,
    state: AtomicU8,
}

/// The reader is elsewhere: busy with what it read, or held up downstream (a spill, a full
/// disk). The child may be blocked writing to us, and that is not its fault.
const BUSY: u8 = 0;
/// The reader waits for the child.
const WAITING: u8 = 1;
/// End of file, a read error, or the reader is gone.
const DONE: u8 = 2;

impl<R> ChildOutput<R> {
    fn new(inner: R) -> (Self, Arc<OutputMeter>) {
        let meter = Arc::new(OutputMeter::default());
        (
            ChildOutput {
                inner,
                meter: meter.clone(),
            },
            meter,
        )
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ChildOutput<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let had_room = buf.remaining() > 0;
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let state = match &poll {
            Poll::Pending => WAITING,
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as u64;
                self.meter.bytes.fetch_add(n, Ordering::Relaxed);
                if n == 0 && had_room {
                    DONE
                } else {
                    BUSY
                }
            }
            Poll::Ready(Err(_)) => DONE,
        };
        self.meter.state.store(state, Ordering::Relaxed);
        poll
    }
}

impl<R> Drop for ChildOutput<R> {
    fn drop(&mut self) {
        self.meter.state.store(DONE, Ordering::Relaxed);
    }
}

/// What the watchdog looks at: Hadoop's `mapreduce.task.timeout`, where progress is a byte
/// read by the child from its stdin or written by it to its stdout or stderr. Time the child
/// spends waiting for us (its stdin pipe is empty while we still have input to give, or we
/// are not reading its stdout) is not held against it, so a slow download or a long spill
/// never times out a healthy child.
struct Watch<'a> {
    probe: &'a StdinProbe,
    stdin: &'a StdinProgress,
    stdout: &'a OutputMeter,
    stderr: &'a OutputMeter,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Sample {
    consumed: u64,
    out: u64,
    err: u64,
}

impl Watch<'_> {
    fn sample(&self) -> (Sample, bool) {
        let written = self.stdin.written.load(Ordering::Relaxed);
        let unread = self.probe.unread().ok();
        let sample = Sample {
            // Bytes the child took out of the pipe: written minus what is still in it.
            consumed: written.saturating_sub(unread.unwrap_or(0)),
            out: self.stdout.bytes.load(Ordering::Relaxed),
            err: self.stderr.bytes.load(Ordering::Relaxed),
        };
        let starved = unread == Some(0) && !self.stdin.closed.load(Ordering::Relaxed);
        let held_up = self.stdout.state.load(Ordering::Relaxed) == BUSY;
        (sample, starved || held_up)
    }

    /// Returns once the child has made no progress for `limit`; never without a limit.
    async fn stalled(&self, limit: Option<Duration>) {
        let Some(limit) = limit else {
            return std::future::pending().await;
        };
        let tick = (limit / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let (mut best, _) = self.sample();
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(tick).await;
            let (now, our_fault) = self.sample();
            // `consumed` may read low for an instant (a write counted after FIONREAD saw it),
            // so progress is measured against the best seen, never against the last sample.
            let moved = now.consumed > best.consumed || now.out > best.out || now.err > best.err;
            if moved || our_fault {
                since = Instant::now();
            }
            best = Sample {
                consumed: best.consumed.max(now.consumed),
                out: now.out,
                err: now.err,
            };
            if since.elapsed() >= limit {
                return;
            }
        }
    }
}

/// `90s` → `90s`, `600s` → `10m`, `1500ms` → `1500ms`: as a user would type it.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        format!("{ms}ms")
    } else if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

impl<P, C> Driven<P, C> {
    /// The error for a child that did not succeed, with its stderr tail; `None` if it did.
    ///
    /// A child that exits 0 with bytes still unread in its stdin fails: those records would
    /// be lost. A child that exits 0 while its input was still being written, with nothing
    /// left in the pipe, is caught by the caller from `written`.
    pub fn child_failure(&self, role: &str) -> Option<TaskError> {
        if let Some(limit) = self.timed_out {
            let limit = human_duration(limit);
            return Some(TaskError::ChildTimedOut(with_tail(
                format!("the {role} made no progress for {limit} (--task-timeout {limit}): it read no input and wrote no output, and was killed"),
                &self.stderr,
            )));
        }
        let exit = self.exit.as_ref().ok().copied();
        let message = match &self.exit {
            Err(e) => Some(format!("failed to wait for the {role}: {e}")),
            Ok(exit) if !exit.success() => Some(with_tail(
                format!("the {role} failed with {exit}"),
                &self.stderr,
            )),
            Ok(exit) if self.unread > 0 => {
                let more = if self.written.is_err() {
                    ", and more was still to be written"
                } else {
                    ""
                };
                Some(with_tail(
                    format!(
                        "the {role} exited ({exit}) before reading all its input: {} bytes were left unread in its stdin{more}; its records would be lost",
                        self.unread
                    ),
                    &self.stderr,
                ))
            }
            Ok(_) => None,
        };
        message.map(|m| TaskError::child(exit, m))
    }
}

pub fn with_tail(msg: String, stderr: &StderrSummary) -> String {
    if stderr.tail.is_empty() {
        format!("{msg}; it wrote nothing on stderr")
    } else {
        format!("{msg}; last lines of its stderr:\n{}", stderr.tail_text())
    }
}
