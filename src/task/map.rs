//! One map task: ONE long-lived mapper child fed every input of the task in turn. Its output
//! goes to a file published only if the task succeeds, or into the shuffle as sorted runs.

use std::path::PathBuf;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::drive::{drive, with_tail, Stopped};
use super::feed::{self, FeedOptions, FeedStop};
use super::sink::{copy_to_file, shuffle_sink, ShuffleOut, ShuffleSpec};
use super::types::new_report;
use super::TaskError;
use crate::config::{Feed, JobConfig};
use crate::input::{Input, Sources};
use crate::output::AtomicFile;
use crate::process::{ChildCommand, TaskEnv};
use crate::report::{InputReport, InputStatus, TaskReport, TaskStatus, INVALID_SAMPLES};
use crate::shuffle::Runs;

const INTERRUPTED: &str =
    "interrupted by a signal; the mapper was stopped and nothing was published";

pub enum MapOutput {
    /// The mapper's output, as is, published atomically at this path.
    File(PathBuf),
    /// Partitioned, sorted runs for the reducers.
    Shuffle(ShuffleSpec),
}

pub struct MapTask<'a> {
    pub job: &'a JobConfig,
    pub command: &'a ChildCommand,
    pub inputs: Vec<Input>,
    pub output: MapOutput,
    pub env: TaskEnv,
    pub fail_fast: bool,
    /// Longer records, into the mapper or from it into the shuffle, are invalid: skipped.
    pub max_record_size: usize,
    /// Cancelled on the first SIGINT/SIGTERM.
    pub cancel: CancellationToken,
    pub sources: Sources,
}

pub struct MapTaskOutcome {
    pub report: TaskReport,
    /// The shuffle runs, when the task succeeded and fed the shuffle.
    pub runs: Option<Runs>,
    /// Why it failed, when it did (also in the report, as text).
    pub error: Option<TaskError>,
}

/// Runs the task to its end. Errors come back inside the report, never as a panic; the
/// output is published only when the report's status is `Succeeded`.
pub async fn run_map_task(task: MapTask<'_>) -> MapTaskOutcome {
    let started = Instant::now();
    let out_path = match &task.output {
        MapOutput::File(p) => p.clone(),
        MapOutput::Shuffle(s) => s.sort.dir.clone(),
    };
    let mut report = new_report("map", task.job, &task.env, out_path, task.command);
    let names: Vec<String> = task.inputs.iter().map(|i| i.name.clone()).collect();
    let mut runs = None;
    let mut error = None;
    match execute(&task, &mut report).await {
        Ok(Done::File(out)) => match out.publish() {
            Ok(()) => {
                report.status = TaskStatus::Succeeded;
                report.published = true;
            }
            Err(e) => {
                error = Some(TaskError::PublishFailed(format!(
                    "failed to publish `{}`: {e}",
                    report.output.display()
                )))
            }
        },
        Ok(Done::Shuffle(r)) => {
            report.status = TaskStatus::Succeeded;
            runs = Some(r);
        }
        Err(e) => error = Some(e),
    }
    if let Some(e) = &error {
        report.status = e.status();
        report.error = Some(e.to_string());
    }
    if report.inputs.is_empty() {
        // The task failed before feeding: every input is reported, none is lost silently.
        report.inputs = names.iter().map(|n| InputReport::new(n)).collect();
        for i in &mut report.inputs {
            i.error = Some("not read: the task failed before reading its inputs".into());
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.driver_peak_rss_bytes = crate::report::driver_peak_rss();
    MapTaskOutcome {
        report,
        runs,
        error,
    }
}

enum Done {
    File(AtomicFile),
    Shuffle(Runs),
}

enum Sunk {
    File((u64, u64)),
    Shuffle(ShuffleOut),
}

/// A local write of the task's own that failed: its output, its scratch space.
fn fail(msg: impl Into<String>) -> TaskError {
    TaskError::PublishFailed(msg.into())
}

async fn execute(task: &MapTask<'_>, report: &mut TaskReport) -> Result<Done, TaskError> {
    let file_out = match &task.output {
        MapOutput::File(path) => {
            let out = AtomicFile::create(path).map_err(|e| {
                fail(format!(
                    "failed to create the output beside `{}`: {e}",
                    path.display()
                ))
            })?;
            let file = out
                .reopen()
                .map_err(|e| fail(format!("failed to open the temporary output: {e}")))?;
            Some((out, tokio::fs::File::from_std(file)))
        }
        MapOutput::Shuffle(spec) => {
            std::fs::create_dir_all(&spec.sort.dir).map_err(|e| {
                fail(format!(
                    "failed to create `{}`: {e}",
                    spec.sort.dir.display()
                ))
            })?;
            None
        }
    };
    let scratch = match task.job.feed {
        Feed::Paths => Some(
            tempfile::Builder::new()
                .prefix("polymr-scratch-")
                .tempdir()
                .map_err(|e| fail(format!("failed to create a scratch directory: {e}")))?,
        ),
        Feed::Records => None,
    };
    if let Some(s) = &scratch {
        crate::process::register_temp(s.path());
    }
    let opts = FeedOptions {
        decompression: task.job.decompression,
        feed: task.job.feed,
        helper_framing: task.command.is_helper() && task.job.feed == Feed::Records,
        fail_fast: task.fail_fast,
        max_record_size: task.max_record_size,
        scratch: scratch.as_ref().map(|s| s.path().to_path_buf()),
        sources: task.sources.clone(),
    };
    let abort = CancellationToken::new();
    let inputs = task.inputs.clone();
    let trip = abort.clone();
    let producer = move |tx, stop| async move {
        let r = feed::produce(inputs, opts, tx, stop).await;
        if matches!(r.stop, Some(FeedStop::InputFailed { .. })) {
            trip.cancel();
        }
        r
    };
    let (file_out, sink_file) = match file_out {
        Some((out, f)) => (Some(out), Some(f)),
        None => (None, None),
    };
    let shuffle = match &task.output {
        MapOutput::Shuffle(spec) => Some(spec.clone()),
        MapOutput::File(_) => None,
    };
    let cancel = task.cancel.clone();
    let max_record = task.max_record_size;
    let consumer = move |stdout| async move {
        match (sink_file, shuffle) {
            (Some(f), _) => copy_to_file(stdout, f).await.map(Sunk::File),
            (None, Some(spec)) => shuffle_sink(stdout, spec, max_record, cancel)
                .await
                .map(Sunk::Shuffle),
            (None, None) => Err(std::io::Error::other("no output configured")),
        }
    };
    let driven = drive(
        task.command,
        "mapper",
        producer,
        consumer,
        &task.cancel,
        &abort,
    )
    .await
    .map_err(|e| TaskError::child(None, e.to_string()))?;
    if let Some(s) = &scratch {
        crate::process::unregister_temp(s.path());
    }

    let child_failure = driven.child_failure("mapper");
    let fed = driven.produced;
    report.inputs = fed.inputs;
    for (index, (count, samples)) in &driven.stderr.invalid {
        if let Some(r) = report.inputs.get_mut(*index) {
            // Added to the records the feed skipped as too long.
            r.invalid_records += *count;
            let room = INVALID_SAMPLES.saturating_sub(r.invalid_samples.len());
            r.invalid_samples.extend(samples.iter().take(room).cloned());
        }
    }
    report.counters = driven.stderr.counters.clone();
    report.counters_dropped = driven.stderr.counters_dropped;
    report.status_message = driven.stderr.status.clone();
    if let Ok(Sunk::Shuffle(s)) = &driven.consumed {
        report.invalid_output = s.invalid.clone();
    }
    let (out_records, out_bytes) = match &driven.consumed {
        Ok(Sunk::File(c)) => *c,
        Ok(Sunk::Shuffle(s)) => (
            s.runs.counters.map_output_records,
            s.runs.counters.map_output_bytes,
        ),
        Err(_) => (0, 0),
    };
    report.compute_totals(out_records, out_bytes);
    if let Ok(Sunk::Shuffle(s)) = &driven.consumed {
        report.counters_dropped += crate::report::merge_counters_capped(
            &mut report.counters,
            &s.combiner_counters,
            crate::process::MAX_COUNTERS,
        );
    }
    if let Some(c) = report.child.as_mut() {
        c.exit = driven.exit.as_ref().ok().copied();
        c.stderr_tail = driven.stderr.tail.iter().cloned().collect();
    }

    match driven.stopped {
        Some(Stopped::Cancelled) => return Err(TaskError::Interrupted(INTERRUPTED.into())),
        Some(Stopped::Aborted) => {
            let (msg, transient) = match fed.stop {
                Some(FeedStop::InputFailed { message, transient }) => (message, transient),
                _ => ("an input failed".into(), true),
            };
            return Err(TaskError::InputUnreadable {
                transient,
                message: format!("{msg} (--fail-fast: the mapper was stopped)"),
            });
        }
        None => {}
    }
    // The child may have ended before the abort reached it; --fail-fast still fails the task.
    if let Some(FeedStop::InputFailed { message, transient }) = &fed.stop {
        return Err(TaskError::InputUnreadable {
            transient: *transient,
            message: format!("{message} (--fail-fast)"),
        });
    }
    if let Some(e) = child_failure {
        return Err(e);
    }
    // The mapper exited cleanly but did not take all its input: records would be lost.
    let not_delivered = matches!(
        fed.stop,
        Some(FeedStop::ChildGone) | Some(FeedStop::Cancelled)
    ) || driven.written.is_err();
    if not_delivered {
        let delivered = report
            .inputs
            .iter()
            .filter(|i| i.status == InputStatus::Processed)
            .count();
        let why = driven
            .written
            .err()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        let exit = driven
            .exit
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default();
        return Err(TaskError::child(driven.exit.as_ref().ok().copied(), with_tail(
            format!(
                "the mapper exited ({exit}) before reading all its input{why}: {delivered} of {} inputs were delivered whole",
                report.inputs.len()
            ),
            &driven.stderr,
        )));
    }
    match (driven.consumed, file_out) {
        (Ok(Sunk::File(_)), Some(out)) => Ok(Done::File(out)),
        (Ok(Sunk::Shuffle(s)), _) => Ok(Done::Shuffle(s.runs)),
        (Ok(Sunk::File(_)), None) => Err(fail("internal error: no output file")),
        (Err(e), _) => Err(fail(format!(
            "failed to write the map output `{}`: {e}",
            report.output.display()
        ))),
    }
}
