//! One map task: ONE long-lived mapper child fed every input of the task in turn, its output
//! written to a temporary file that is published only if the task succeeds.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::feed::{self, FeedOptions, FeedStop, CHANNEL_DEPTH, CHUNK};
use crate::config::{Feed, JobConfig};
use crate::input::Input;
use crate::output::AtomicFile;
use crate::process::{drain_stderr, ChildCommand, ExitInfo, Spawned, StderrSummary, TaskEnv};
use crate::report::{ChildReport, InputStatus, TaskReport, TaskStatus};

/// How long a child gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// Output buffer between the child's stdout and the result file.
const OUTPUT_BUFFER: usize = 256 * 1024;

pub struct MapTask<'a> {
    pub job: &'a JobConfig,
    pub command: ChildCommand,
    pub inputs: Vec<Input>,
    pub output: PathBuf,
    pub env: TaskEnv,
    pub fail_fast: bool,
    /// Cancelled on the first SIGINT/SIGTERM.
    pub cancel: CancellationToken,
}

pub struct MapTaskOutcome {
    pub report: TaskReport,
}

/// Runs the task to its end. Errors come back inside the report, never as a panic; the
/// output is published only when the report's status is `Succeeded`.
pub async fn run_map_task(task: MapTask<'_>) -> MapTaskOutcome {
    let started = Instant::now();
    let started_at_unix_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut report = TaskReport {
        polymr_version: env!("CARGO_PKG_VERSION"),
        kind: "map",
        job_id: task.env.job_id.clone(),
        attempt_id: task.env.attempt_id.clone(),
        status: TaskStatus::Failed,
        error: None,
        config: task.job.path.clone(),
        output: task.output.clone(),
        published: false,
        child: Some(ChildReport {
            command: task.command.program_display(),
            exit: None,
            stderr_tail: Vec::new(),
        }),
        inputs: Vec::new(),
        totals: Default::default(),
        counters: Default::default(),
        status_message: None,
        started_at_unix_ms,
        duration_ms: 0,
        driver_peak_rss_bytes: 0,
    };
    let names: Vec<String> = task.inputs.iter().map(|i| i.name.clone()).collect();
    match execute(&task, &mut report).await {
        Ok(out) => {
            report.status = TaskStatus::Succeeded;
            match out.publish() {
                Ok(()) => report.published = true,
                Err(e) => {
                    report.status = TaskStatus::Failed;
                    report.error = Some(format!(
                        "failed to publish `{}`: {e}",
                        task.output.display()
                    ));
                }
            }
        }
        Err(TaskFailure::Interrupted) => {
            report.status = TaskStatus::Interrupted;
            report.error = Some(
                "interrupted by a signal; the mapper was stopped and nothing was published".into(),
            );
        }
        Err(TaskFailure::Failed(msg)) => {
            report.status = TaskStatus::Failed;
            report.error = Some(msg);
        }
    }
    if report.inputs.is_empty() {
        // The task failed before feeding: every input is reported, none is lost silently.
        report.inputs = names
            .iter()
            .map(|n| crate::report::InputReport::new(n))
            .collect();
        for i in &mut report.inputs {
            i.error = Some("not read: the task failed before reading its inputs".into());
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.driver_peak_rss_bytes = crate::report::driver_peak_rss();
    MapTaskOutcome { report }
}

enum TaskFailure {
    Interrupted,
    Failed(String),
}

async fn execute(task: &MapTask<'_>, report: &mut TaskReport) -> Result<AtomicFile, TaskFailure> {
    let out = AtomicFile::create(&task.output).map_err(|e| {
        TaskFailure::Failed(format!(
            "failed to create the output beside `{}`: {e}",
            task.output.display()
        ))
    })?;
    let out_file = out
        .reopen()
        .map_err(|e| TaskFailure::Failed(format!("failed to open the temporary output: {e}")))?;
    let scratch = match task.job.feed {
        Feed::Paths => Some(
            tempfile::Builder::new()
                .prefix("polymr-scratch-")
                .tempdir()
                .map_err(|e| {
                    TaskFailure::Failed(format!("failed to create a scratch directory: {e}"))
                })?,
        ),
        Feed::Records => None,
    };
    if let Some(s) = &scratch {
        crate::process::register_temp(s.path());
    }

    let mut child = Spawned::spawn(&task.command).map_err(|e| {
        TaskFailure::Failed(format!(
            "failed to start the mapper `{}`: {e}",
            task.command.program.display()
        ))
    })?;
    tracing::info!(pid = child.pid(), command = %task.command.program_display(), "mapper started");
    let (stdin, stdout, stderr) =
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => {
                return Err(TaskFailure::Failed(
                    "the mapper's pipes were not set up".into(),
                ))
            }
        };

    let stop_feeding = CancellationToken::new();
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let opts = FeedOptions {
        decompression: task.job.decompression,
        feed: task.job.feed,
        helper_framing: task.command.is_helper() && task.job.feed == Feed::Records,
        fail_fast: task.fail_fast,
        scratch: scratch.as_ref().map(|s| s.path().to_path_buf()),
    };
    let fail_fast_hit = CancellationToken::new();
    let producer = {
        let inputs = task.inputs.clone();
        let stop = stop_feeding.clone();
        let hit = fail_fast_hit.clone();
        tokio::spawn(async move {
            let r = feed::produce(inputs, opts, tx, stop).await;
            if matches!(r.stop, Some(FeedStop::InputFailed(_))) {
                hit.cancel();
            }
            r
        })
    };
    let writer = tokio::spawn(feed::write_stdin(stdin, rx));
    let copier = tokio::spawn(copy_output(stdout, tokio::fs::File::from_std(out_file)));
    let drainer = tokio::spawn(drain_stderr(stderr, "mapper"));

    let mut stopped_by_us = None;
    let exit: std::io::Result<ExitInfo> = tokio::select! {
        r = child.wait() => r,
        _ = task.cancel.cancelled() => {
            stopped_by_us = Some(TaskFailure::Interrupted);
            child.terminate(GRACE).await
        }
        _ = fail_fast_hit.cancelled() => {
            stopped_by_us = Some(TaskFailure::Failed(String::new()));
            child.terminate(GRACE).await
        }
    };
    stop_feeding.cancel();

    let fed = producer
        .await
        .map_err(|e| TaskFailure::Failed(format!("internal error in the input feeder: {e}")))?;
    let written = writer
        .await
        .map_err(|e| TaskFailure::Failed(format!("internal error in the stdin writer: {e}")))?;
    let copied = copier
        .await
        .map_err(|e| TaskFailure::Failed(format!("internal error in the output copier: {e}")))?;
    let stderr: StderrSummary = drainer.await.unwrap_or_default();
    scratch.inspect(|s| crate::process::unregister_temp(s.path()));

    report.inputs = fed.inputs;
    for (index, (count, samples)) in &stderr.invalid {
        if let Some(r) = report.inputs.get_mut(*index) {
            r.invalid_records = *count;
            r.invalid_samples = samples.clone();
        }
    }
    report.counters = stderr.counters.clone();
    report.status_message = stderr.status.clone();
    let (out_records, out_bytes) = copied.as_ref().map(|c| *c).unwrap_or((0, 0));
    report.compute_totals(out_records, out_bytes);
    if let Some(c) = report.child.as_mut() {
        c.exit = exit.as_ref().ok().copied();
        c.stderr_tail = stderr.tail.iter().cloned().collect();
    }

    match stopped_by_us {
        Some(TaskFailure::Interrupted) => return Err(TaskFailure::Interrupted),
        Some(TaskFailure::Failed(_)) => {
            let msg = match fed.stop {
                Some(FeedStop::InputFailed(m)) => m,
                _ => "an input failed".into(),
            };
            return Err(TaskFailure::Failed(format!(
                "{msg} (--fail-fast: the mapper was stopped)"
            )));
        }
        None => {}
    }
    let exit =
        exit.map_err(|e| TaskFailure::Failed(format!("failed to wait for the mapper: {e}")))?;
    if !exit.success() {
        return Err(TaskFailure::Failed(with_tail(
            format!("the mapper failed with {exit}"),
            &stderr,
        )));
    }
    // The mapper exited cleanly but did not take all its input: records would be lost.
    let not_delivered = matches!(
        fed.stop,
        Some(FeedStop::ChildGone) | Some(FeedStop::Cancelled)
    ) || written.is_err();
    if not_delivered {
        let delivered = report
            .inputs
            .iter()
            .filter(|i| i.status == InputStatus::Processed)
            .count();
        let why = written.err().map(|e| format!(" ({e})")).unwrap_or_default();
        return Err(TaskFailure::Failed(with_tail(
            format!(
                "the mapper exited ({exit}) before reading all its input{why}: {delivered} of {} inputs were delivered whole",
                report.inputs.len()
            ),
            &stderr,
        )));
    }
    if let Err(e) = copied {
        return Err(TaskFailure::Failed(format!(
            "failed to write the output `{}`: {e}",
            task.output.display()
        )));
    }
    Ok(out)
}

fn with_tail(msg: String, stderr: &StderrSummary) -> String {
    if stderr.tail.is_empty() {
        format!("{msg}; it wrote nothing on stderr")
    } else {
        format!("{msg}; last lines of its stderr:\n{}", stderr.tail_text())
    }
}

/// Copies the child's stdout to the output file, counting lines. Reads until EOF even after
/// a write error, so the child never blocks on a full pipe.
async fn copy_output(
    mut stdout: tokio::process::ChildStdout,
    file: tokio::fs::File,
) -> std::io::Result<(u64, u64)> {
    let mut w = tokio::io::BufWriter::with_capacity(OUTPUT_BUFFER, file);
    let mut buf = vec![0u8; CHUNK];
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut failure = None;
    loop {
        let n = stdout.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if failure.is_none() {
            if let Err(e) = w.write_all(&buf[..n]).await {
                failure = Some(e);
            }
        }
        lines += crate::records::count_lines(&buf[..n]);
        bytes += n as u64;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    w.flush().await?;
    Ok((lines, bytes))
}
