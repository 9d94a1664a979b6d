//! One reduce task: its input is sorted (an external sort for raw mapper outputs; the map
//! tasks' runs are sorted already), k-way merged, and streamed to ONE reducer child, whose
//! output is published atomically.

use std::io;
use std::path::PathBuf;
use std::time::Instant;

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::drive::{drive, with_tail, Stopped};
use super::feed::CHUNK;
use super::types::new_report;
use super::TaskError;

const INTERRUPTED: &str =
    "interrupted by a signal; the reducer was stopped and nothing was published";

/// A reduce task's report and, when it failed, why.
pub struct ReduceTaskOutcome {
    pub report: TaskReport,
    pub error: Option<TaskError>,
}
use super::sink::copy_to_file;
use crate::config::JobConfig;
use crate::decode;
use crate::input::{open_with_prefetch, Input, Prefetched, Sources};
use crate::output::AtomicFile;
use crate::process::{ChildCommand, TaskEnv};
use crate::records::{LineSplitter, Piece};
use crate::report::{InputReport, InputStatus, InvalidOutput, TaskReport, TaskStatus};
use crate::shuffle::{merge_runs, Runs, SortConfig, Sorter};

pub enum ReduceInput {
    /// Sorted runs of one partition, from the map tasks.
    Runs { label: String, runs: Vec<PathBuf> },
    /// Raw mapper output files, sorted here within `sort`'s budget.
    /// Raw mapper output files (local or remote), sorted here within `sort`'s budget.
    Files {
        inputs: Vec<Input>,
        sort: SortConfig,
        sources: Sources,
        /// Longer lines are invalid records, skipped (`--max-record-size`).
        max_record_size: usize,
    },
}

pub struct ReduceTask<'a> {
    pub job: &'a JobConfig,
    pub command: &'a ChildCommand,
    pub input: ReduceInput,
    pub output: PathBuf,
    pub env: TaskEnv,
    pub fail_fast: bool,
    pub cancel: CancellationToken,
    /// Remove the runs once merged (they belong to this job's work directory).
    pub delete_runs: bool,
}

pub async fn run_reduce_task(task: ReduceTask<'_>) -> ReduceTaskOutcome {
    let started = Instant::now();
    let mut report = new_report(
        "reduce",
        task.job,
        &task.env,
        task.output.clone(),
        task.command,
    );
    let mut error = None;
    match execute(&task, &mut report).await {
        Ok(out) => match out.publish() {
            Ok(()) => {
                report.status = TaskStatus::Succeeded;
                report.published = true;
            }
            Err(e) => {
                error = Some(TaskError::PublishFailed(format!(
                    "failed to publish `{}`: {e}",
                    task.output.display()
                )))
            }
        },
        Err(e) => error = Some(e),
    }
    if let Some(e) = &error {
        report.status = e.status();
        report.error = Some(e.to_string());
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.driver_peak_rss_bytes = crate::report::driver_peak_rss();
    ReduceTaskOutcome { report, error }
}

/// A local write of the task's own that failed: its sorted input, its output.
fn fail(msg: impl Into<String>) -> TaskError {
    TaskError::PublishFailed(msg.into())
}

async fn execute(task: &ReduceTask<'_>, report: &mut TaskReport) -> Result<AtomicFile, TaskError> {
    let sep = task.job.key_separator.clone();
    let (runs, scratch, owned) = match &task.input {
        ReduceInput::Runs { label, runs } => {
            let mut r = InputReport::new(label);
            r.status = InputStatus::Processed;
            report.inputs.push(r);
            (runs.clone(), None, task.delete_runs)
        }
        ReduceInput::Files {
            inputs,
            sort,
            sources,
            max_record_size,
        } => {
            let (runs, reports) = sort_inputs(
                inputs,
                sort.clone(),
                sources,
                *max_record_size,
                &task.cancel,
            )
            .await
            .map_err(|e| fail(format!("failed to sort the reducer's input: {e}")))?;
            report.inputs = reports;
            if task.cancel.is_cancelled() {
                return Err(TaskError::Interrupted(INTERRUPTED.into()));
            }
            if task.fail_fast {
                if let Some(bad) = report
                    .inputs
                    .iter()
                    .find(|i| i.status == InputStatus::Failed)
                {
                    return Err(TaskError::InputUnreadable {
                        transient: false,
                        message: format!(
                            "input `{}` failed: {} (--fail-fast)",
                            bad.name,
                            bad.error.as_deref().unwrap_or("unknown error")
                        ),
                    });
                }
            }
            (
                runs.by_partition.into_iter().flatten().collect(),
                Some(sort.dir.clone()),
                true,
            )
        }
    };
    let out = AtomicFile::create(&task.output).map_err(|e| {
        fail(format!(
            "failed to create the output beside `{}`: {e}",
            task.output.display()
        ))
    })?;
    let file = out
        .reopen()
        .map_err(|e| fail(format!("failed to open the temporary output: {e}")))?;
    let merge_dir = match &scratch {
        Some(d) => d.clone(),
        None => runs
            .first()
            .and_then(|r| r.parent())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(std::env::temp_dir),
    };
    // Hadoop Streaming gives native reducers `key<TAB>value`, whatever the job's separator.
    let retab = sep != b"\t" && !task.command.is_helper();
    let producer = move |tx: mpsc::Sender<Vec<u8>>, _stop| async move {
        tokio::task::spawn_blocking(move || merge_into(&runs, &sep, &merge_dir, owned, retab, tx))
            .await
            .map_err(|e| io::Error::other(format!("internal error in the merge: {e}")))?
    };
    let consumer = move |stdout| copy_to_file(stdout, tokio::fs::File::from_std(file));
    let driven = drive(
        task.command,
        "reducer",
        producer,
        consumer,
        &task.cancel,
        &CancellationToken::new(),
    )
    .await
    .map_err(|e| TaskError::child(None, e.to_string()))?;

    report.counters = driven.stderr.counters.clone();
    report.counters_dropped = driven.stderr.counters_dropped;
    report.status_message = driven.stderr.status.clone();
    let merged = driven.produced.as_ref().ok().copied().unwrap_or_default();
    if let ReduceInput::Runs { .. } = task.input {
        if let Some(r) = report.inputs.first_mut() {
            r.records = merged.records;
            r.bytes = merged.bytes;
        }
    }
    let (out_records, out_bytes) = driven.consumed.as_ref().map(|c| *c).unwrap_or((0, 0));
    report.compute_totals(out_records, out_bytes);
    if let Some(c) = report.child.as_mut() {
        c.exit = driven.exit.as_ref().ok().copied();
        c.stderr_tail = driven.stderr.tail.iter().cloned().collect();
    }
    if driven.stopped == Some(Stopped::Cancelled) {
        return Err(TaskError::Interrupted(INTERRUPTED.into()));
    }
    if let Some(e) = driven.child_failure("reducer") {
        return Err(e);
    }
    if let Err(e) = &driven.written {
        return Err(TaskError::child(
            driven.exit.as_ref().ok().copied(),
            with_tail(
                format!("the reducer exited before reading all its input ({e})"),
                &driven.stderr,
            ),
        ));
    }
    if let Err(e) = &driven.produced {
        return Err(fail(format!("failed to merge the reducer's input: {e}")));
    }
    if let Err(e) = driven.consumed {
        return Err(fail(format!(
            "failed to write the output `{}`: {e}",
            task.output.display()
        )));
    }
    Ok(out)
}

/// Merges `runs` into 64 KiB chunks for the reducer's stdin (blocking thread). A line
/// longer than a chunk goes out in chunks of its own, so no buffer grows with it.
fn merge_into(
    runs: &[PathBuf],
    sep: &[u8],
    scratch: &std::path::Path,
    owned: bool,
    retab: bool,
    tx: mpsc::Sender<Vec<u8>>,
) -> io::Result<crate::shuffle::MergeStats> {
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
    let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the reducer stopped reading");
    let stats = merge_runs(runs, sep, scratch, owned, |line| {
        let tab = match retab {
            true => memchr::memmem::find(line, sep),
            false => None,
        };
        if line.len() >= CHUNK {
            if !chunk.is_empty() {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK + 4096));
                tx.blocking_send(full).map_err(|_| gone())?;
            }
            let pieces: [&[u8]; 3] = match tab {
                Some(i) => [&line[..i], b"\t", &line[i + sep.len()..]],
                None => [line, b"", b""],
            };
            for piece in pieces {
                for part in piece.chunks(CHUNK) {
                    tx.blocking_send(part.to_vec()).map_err(|_| gone())?;
                }
            }
            return Ok(());
        }
        match tab {
            Some(i) => {
                chunk.extend_from_slice(&line[..i]);
                chunk.push(b'\t');
                chunk.extend_from_slice(&line[i + sep.len()..]);
            }
            None => chunk.extend_from_slice(line),
        }
        if chunk.len() >= CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK + 4096));
            tx.blocking_send(full).map_err(|_| gone())?;
        }
        Ok(())
    })?;
    if !chunk.is_empty() {
        tx.blocking_send(chunk).map_err(|_| gone())?;
    }
    Ok(stats)
}

/// What the reading side tells the sorting side.
enum Sorting {
    Bytes(Vec<u8>),
    /// The input ended: its last line, even without a newline, is a record.
    End,
    /// The input failed: its unfinished last line is not a record.
    Broken,
}

/// Per input, what the sorting side used of it.
#[derive(Default)]
struct Used {
    records: u64,
    skipped: InvalidOutput,
}

/// Reads raw mapper outputs (any codec) into sorted runs within the budget. Lines longer
/// than `max_record` are skipped, counted against their input.
async fn sort_inputs(
    inputs: &[Input],
    sort: SortConfig,
    sources: &Sources,
    max_record: usize,
    cancel: &CancellationToken,
) -> io::Result<(Runs, Vec<InputReport>)> {
    std::fs::create_dir_all(&sort.dir)?;
    let (tx, mut rx) = mpsc::channel::<Sorting>(16);
    let sorting = tokio::task::spawn_blocking(move || -> io::Result<(Runs, Vec<Used>)> {
        let mut sorter = Sorter::new(sort);
        let mut lines = LineSplitter::new(max_record);
        let (mut used, mut current) = (Vec::new(), Used::default());
        let take = |sorter: &mut Sorter, used: &mut Used, p: Piece<'_>| match p {
            Piece::Line(l) => {
                used.records += 1;
                sorter.push(l)
            }
            Piece::Oversize { line, len } => {
                used.skipped.add(
                    line,
                    format!("a record of {len} bytes is longer than --max-record-size ({max_record} bytes); skipped"),
                );
                Ok(())
            }
        };
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                Sorting::Bytes(chunk) => {
                    lines.push(&chunk, |p| take(&mut sorter, &mut current, p))?;
                    continue;
                }
                Sorting::End => lines.finish(|p| take(&mut sorter, &mut current, p))?,
                Sorting::Broken => lines.abandon(),
            }
            used.push(std::mem::take(&mut current));
        }
        Ok((sorter.finish()?, used))
    });
    let mut reports = Vec::new();
    let mut opened = Prefetched::new();
    for (index, input) in inputs.iter().enumerate() {
        let mut r = InputReport::new(&input.name);
        let started = Instant::now();
        let mut retries = None;
        let result: io::Result<()> = async {
            let opened = open_with_prefetch(inputs, index, sources, &mut opened).await?;
            retries = opened.retries.clone();
            let (codec, mut reader) =
                decode::open(opened.stream, crate::config::Decompression::Auto).await?;
            r.codec = Some(codec);
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = tokio::select! {
                    n = reader.read(&mut buf) => n?,
                    _ = cancel.cancelled() => return Err(io::Error::other("interrupted")),
                };
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                r.bytes += n as u64;
                if tx.send(Sorting::Bytes(buf)).await.is_err() {
                    return Err(io::Error::other("the sorter stopped"));
                }
            }
            Ok(())
        }
        .await;
        let end = match result {
            Ok(()) => Sorting::End,
            Err(_) => Sorting::Broken,
        };
        let _ = tx.send(end).await;
        r.duration_ms = started.elapsed().as_millis() as u64;
        if let Some(n) = retries {
            r.retries = n.load(std::sync::atomic::Ordering::Relaxed);
        }
        match result {
            Ok(()) => r.status = InputStatus::Processed,
            Err(e) => {
                tracing::error!("input `{}` failed: {e}", input.name);
                r.status = InputStatus::Failed;
                r.error = Some(e.to_string());
            }
        }
        reports.push(r);
    }
    drop(tx);
    let (runs, used) = sorting
        .await
        .map_err(|e| io::Error::other(format!("internal error in the sorter: {e}")))??;
    for (r, u) in reports.iter_mut().zip(used) {
        r.records = u.records;
        r.invalid_records = u.skipped.records;
        r.invalid_samples = u.skipped.samples;
    }
    Ok((runs, reports))
}
