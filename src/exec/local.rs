//! The embedded executor: runs a plan on this machine. Up to N map tasks at once, each
//! retried on failure; their sorted runs are merged per partition into the reducers; the
//! partitions are published as one result. Finished map tasks are marked atomically in the
//! work directory, so `--resume` skips them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use futures::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use crate::config::JobConfig;
use crate::exit::UsageError;
use crate::output::{write_atomic, AtomicFile};
use crate::plan::{reduce_id, MapTaskPlan, Plan};
use crate::process::{ChildCommand, TaskEnv};
use crate::report::{
    merge_counters, InputStatus, JobReport, JobTimings, LostInput, ShuffleTotals, TaskReport,
    TaskStatus, Totals,
};
use crate::settings::RunSettings;
use crate::shuffle::{Runs, SortConfig};
use crate::task::{
    run_map_task, run_reduce_task, MapOutput, MapTask, ReduceInput, ReduceTask, ShuffleSpec,
};

/// Marks a map task's directory as complete; written last, inside the attempt directory,
/// which is then renamed into place.
const SUCCESS: &str = "_SUCCESS";
/// Written by polymr into every work directory it makes: `--resume` reuses only a directory
/// that holds it (or an empty one), and a successful job deletes only what polymr wrote.
const MARKER: &str = ".polymr-workdir";

/// One task's attempts and, if it succeeded, where its output is.
struct TaskResult {
    attempts: Vec<TaskReport>,
    dir: Option<PathBuf>,
    resumed: bool,
    shuffle: ShuffleTotals,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct SavedShuffle {
    records: u64,
    bytes: u64,
    shuffled_records: u64,
    shuffled_bytes: u64,
    spills: u32,
}

pub async fn run_local(s: &RunSettings, cancel: CancellationToken) -> anyhow::Result<JobReport> {
    let started = Instant::now();
    let started_at = crate::task::unix_ms();
    let (workdir, temp) = prepare_workdir(s)?;
    // Printed now, not at the end: after a `kill -9` this line is all that says where the
    // finished map tasks are.
    eprintln!(
        "polymr: work directory: {w} (if the job is stopped, rerun with --resume {w} to skip its finished map tasks)",
        w = workdir.display()
    );
    check_plan(&workdir, &s.plan)?;

    let job = &s.job;
    let mut report = JobReport {
        polymr_version: env!("CARGO_PKG_VERSION"),
        kind: "run",
        job_id: s.job_id.clone(),
        status: TaskStatus::Failed,
        error: None,
        config: job.path.clone(),
        output: s.output.clone(),
        output_dir: s.output_dir.clone(),
        published: false,
        workdir: None,
        map_tasks: s.plan.map_tasks.len(),
        map_tasks_resumed: 0,
        reducers: s.plan.reducers,
        lost_inputs: Vec::new(),
        totals: Totals::default(),
        shuffle: ShuffleTotals::default(),
        counters: Default::default(),
        timings: JobTimings {
            started_at_unix_ms: started_at,
            ..JobTimings::default()
        },
        driver_peak_rss_bytes: 0,
        tasks: Vec::new(),
    };

    // Map phase.
    let running = s.mappers.min(s.plan.map_tasks.len()).max(1);
    let budget = (s.sort_memory / running).max(1 << 20);
    let mut progress = Progress::new("map", s.plan.map_tasks.len());
    let combiner = match &job.combiner {
        Some(c) => Some(Arc::new(
            ChildCommand::for_step(
                job,
                c,
                &TaskEnv {
                    job_id: s.job_id.clone(),
                    ..TaskEnv::default()
                },
            )
            .context("cannot run the combiner")?,
        )),
        None => None,
    };
    let ctx = MapContext {
        s,
        job,
        workdir: &workdir,
        budget,
        combiner,
        cancel: &cancel,
    };
    let mut results: Vec<(usize, TaskResult)> = Vec::new();
    let mut stream = stream::iter(s.plan.map_tasks.iter())
        .map(|t| async { (t.index, run_map_with_retries(&ctx, t).await) })
        .buffer_unordered(running);
    while let Some((index, r)) = stream.next().await {
        for a in &r.attempts {
            let ok = a.status == TaskStatus::Succeeded;
            progress.attempt(a, ok);
        }
        results.push((index, r));
    }
    drop(stream);
    progress.finish();
    results.sort_by_key(|(i, _)| *i);
    report.timings.map_ms = started.elapsed().as_millis() as u64;

    let mut totals = Totals::default();
    for (index, r) in &results {
        let plan = &s.plan.map_tasks[*index];
        report.map_tasks_resumed += usize::from(r.resumed);
        report.shuffle.map_output_records += r.shuffle.map_output_records;
        report.shuffle.map_output_bytes += r.shuffle.map_output_bytes;
        report.shuffle.shuffled_records += r.shuffle.shuffled_records;
        report.shuffle.shuffled_bytes += r.shuffle.shuffled_bytes;
        report.shuffle.spills += r.shuffle.spills;
        match (&r.dir, r.attempts.last()) {
            (Some(_), Some(last)) => {
                add_totals(&mut totals, &last.totals);
                merge_counters(&mut report.counters, &last.counters);
                for i in last
                    .inputs
                    .iter()
                    .filter(|i| i.status != InputStatus::Processed)
                {
                    report.lost_inputs.push(LostInput::of_input(i, &plan.id));
                }
            }
            _ => {
                let why = r
                    .attempts
                    .last()
                    .and_then(|a| a.error.clone())
                    .unwrap_or_else(|| "the task did not run".into());
                for i in &plan.inputs {
                    report.lost_inputs.push(LostInput::unused(
                        &i.name,
                        &plan.id,
                        format!("its map task failed {} times: {why}", r.attempts.len()),
                    ));
                }
            }
        }
    }
    report.tasks = results
        .iter()
        .flat_map(|(_, r)| r.attempts.iter().cloned())
        .collect();
    let interrupted = cancel.is_cancelled();
    let failed_maps: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.dir.is_none())
        .map(|(i, _)| s.plan.map_tasks[*i].id.as_str())
        .collect();

    let mut parts: Vec<PathBuf> = Vec::new();
    if interrupted {
        report.status = TaskStatus::Interrupted;
        report.error = Some("interrupted by a signal; nothing was published".into());
    } else if !failed_maps.is_empty() {
        report.error = Some(format!(
            "{} map task(s) failed after {} retries: {}",
            failed_maps.len(),
            s.retries,
            failed_maps.join(", ")
        ));
    } else if s.plan.reducers == 0 {
        parts = results
            .iter()
            .filter_map(|(_, r)| r.dir.as_ref().map(|d| d.join("output")))
            .collect();
        report.status = TaskStatus::Succeeded;
    } else {
        // Reduce phase.
        let reduce_started = Instant::now();
        let dirs: Vec<PathBuf> = results.iter().filter_map(|(_, r)| r.dir.clone()).collect();
        let runs_of = runs_by_partition(&dirs, s.plan.reducers);
        let reduce_dir = workdir.join("reduce");
        std::fs::create_dir_all(&reduce_dir)
            .with_context(|| format!("failed to create `{}`", reduce_dir.display()))?;
        let reducer = job.reducer()?.clone();
        let mut progress = Progress::new("reduce", s.plan.reducers as usize);
        let mut reduced: Vec<(u32, Vec<TaskReport>, Option<PathBuf>)> = Vec::new();
        let mut stream = stream::iter(0..s.plan.reducers)
            .map(|p| {
                let runs = runs_of[p as usize].clone();
                let out = reduce_dir.join(format!("part-{p:05}"));
                let reducer = &reducer;
                let cancel = &cancel;
                async move {
                    let mut attempts = Vec::new();
                    for attempt in 0..=s.retries {
                        if cancel.is_cancelled() {
                            break;
                        }
                        let env = TaskEnv {
                            job_id: s.job_id.clone(),
                            attempt_id: format!(
                                "attempt_{}_r_{p:06}_{attempt}",
                                s.job_id.trim_start_matches("job_")
                            ),
                            partition: Some(p as usize),
                            input_file: None,
                        };
                        let command = match ChildCommand::for_step(job, reducer, &env) {
                            Ok(c) => c,
                            Err(e) => {
                                let mut r = crate::task::failed_report(
                                    "reduce",
                                    job,
                                    &env,
                                    out.clone(),
                                    e.to_string(),
                                );
                                r.attempt_id = env.attempt_id.clone();
                                attempts.push(r);
                                break;
                            }
                        };
                        let r = run_reduce_task(ReduceTask {
                            job,
                            command: &command,
                            input: ReduceInput::Runs {
                                label: format!("{} ({} runs)", reduce_id(p), runs.len()),
                                runs: runs.clone(),
                            },
                            output: out.clone(),
                            env,
                            fail_fast: s.fail_fast,
                            cancel: cancel.clone(),
                            delete_runs: false,
                        })
                        .await;
                        let status = r.status;
                        if status == TaskStatus::Failed {
                            tracing::warn!(
                                "{} attempt {attempt} failed: {}",
                                reduce_id(p),
                                r.error.as_deref().unwrap_or("")
                            );
                        }
                        attempts.push(r);
                        if status != TaskStatus::Failed {
                            break;
                        }
                    }
                    let ok = attempts
                        .last()
                        .is_some_and(|a| a.status == TaskStatus::Succeeded);
                    (p, attempts, ok.then_some(out))
                }
            })
            .buffer_unordered(running);
        while let Some((p, attempts, out)) = stream.next().await {
            for a in &attempts {
                progress.attempt(a, a.status == TaskStatus::Succeeded);
            }
            reduced.push((p, attempts, out));
        }
        drop(stream);
        progress.finish();
        reduced.sort_by_key(|(p, _, _)| *p);
        report.timings.reduce_ms = reduce_started.elapsed().as_millis() as u64;
        let mut failed = Vec::new();
        for (p, attempts, out) in reduced {
            if let Some(last) = attempts.last() {
                merge_counters(&mut report.counters, &last.counters);
                if out.is_some() {
                    totals.output_records += last.totals.output_records;
                    totals.output_bytes += last.totals.output_bytes;
                }
            }
            report.tasks.extend(attempts);
            match out {
                Some(o) => parts.push(o),
                None => failed.push(reduce_id(p)),
            }
        }
        if cancel.is_cancelled() {
            report.status = TaskStatus::Interrupted;
            report.error = Some("interrupted by a signal; nothing was published".into());
        } else if failed.is_empty() {
            report.status = TaskStatus::Succeeded;
        } else {
            report.error = Some(format!(
                "{} reduce task(s) failed after {} retries: {}",
                failed.len(),
                s.retries,
                failed.join(", ")
            ));
        }
    }
    if s.plan.reducers == 0 {
        for (_, r) in &results {
            if let Some(last) = r.attempts.last() {
                totals.output_records += last.totals.output_records;
                totals.output_bytes += last.totals.output_bytes;
            }
        }
    }
    report.totals = totals;

    if report.status == TaskStatus::Succeeded {
        if let Err(e) = publish(s, &parts) {
            report.status = TaskStatus::Failed;
            report.error = Some(format!("failed to publish the result: {e:#}"));
        } else {
            report.published = true;
        }
    }
    if report.status != TaskStatus::Succeeded {
        // Keep the finished map tasks for `--resume`.
        if let Some(t) = temp {
            let _kept = t.keep();
        }
        report.workdir = Some(workdir.clone());
    } else if s.resume.is_some() {
        clear_workdir(&workdir, &s.plan);
    }
    report.timings.total_ms = started.elapsed().as_millis() as u64;
    report.driver_peak_rss_bytes = crate::report::driver_peak_rss();
    Ok(report)
}

struct MapContext<'a> {
    s: &'a RunSettings,
    job: &'a JobConfig,
    workdir: &'a Path,
    budget: usize,
    combiner: Option<Arc<ChildCommand>>,
    cancel: &'a CancellationToken,
}

async fn run_map_with_retries(ctx: &MapContext<'_>, t: &MapTaskPlan) -> TaskResult {
    let s = ctx.s;
    let done_dir = ctx.workdir.join(&t.id);
    if done_dir.join(SUCCESS).is_file() {
        if let Some(r) = load_done(&done_dir) {
            tracing::info!("{}: complete in the work directory, skipped", t.id);
            return r;
        }
    }
    let mut attempts = Vec::new();
    for attempt in 0..=s.retries {
        if ctx.cancel.is_cancelled() {
            break;
        }
        let dir = ctx.workdir.join(format!("{}.attempt-{attempt}", t.id));
        let _ = std::fs::remove_dir_all(&dir);
        let env = TaskEnv {
            job_id: s.job_id.clone(),
            attempt_id: format!(
                "attempt_{}_m_{:06}_{attempt}",
                s.job_id.trim_start_matches("job_"),
                t.index
            ),
            partition: None,
            input_file: match t.inputs.as_slice() {
                [one] => Some(one.name.clone()),
                _ => None,
            },
        };
        let command = match ChildCommand::for_step(ctx.job, &ctx.job.mapper, &env) {
            Ok(c) => c,
            Err(e) => {
                attempts.push(crate::task::failed_report(
                    "map",
                    ctx.job,
                    &env,
                    dir.clone(),
                    e.to_string(),
                ));
                break;
            }
        };
        let output = if s.plan.reducers == 0 {
            MapOutput::File(dir.join("output"))
        } else {
            MapOutput::Shuffle(ShuffleSpec {
                sort: SortConfig {
                    budget: ctx.budget,
                    separator: ctx.job.key_separator.clone(),
                    partitions: s.plan.reducers,
                    dir: dir.clone(),
                    name: t.id.clone(),
                },
                combiner: ctx.combiner.clone(),
            })
        };
        let outcome = run_map_task(MapTask {
            job: ctx.job,
            command: &command,
            inputs: t.inputs.iter().map(|i| i.to_input()).collect(),
            output,
            env,
            fail_fast: s.fail_fast,
            max_record_size: s.max_record_size,
            cancel: ctx.cancel.clone(),
            sources: s.sources.clone(),
        })
        .await;
        let status = outcome.report.status;
        let saved = outcome.runs.as_ref().map(saved_shuffle).unwrap_or_default();
        if status == TaskStatus::Succeeded {
            match mark_done(&dir, &done_dir, &outcome.report, &saved) {
                Ok(()) => {
                    attempts.push(outcome.report);
                    return TaskResult {
                        attempts,
                        dir: Some(done_dir),
                        resumed: false,
                        shuffle: totals_of(&saved),
                    };
                }
                Err(e) => {
                    let mut r = outcome.report;
                    r.status = TaskStatus::Failed;
                    r.error = Some(format!("failed to mark the task complete: {e:#}"));
                    attempts.push(r);
                }
            }
        } else {
            if status == TaskStatus::Failed {
                tracing::warn!(
                    "{} attempt {attempt} failed{}: {}",
                    t.id,
                    if attempt < s.retries {
                        ", retrying"
                    } else {
                        ""
                    },
                    outcome.report.error.as_deref().unwrap_or("")
                );
            }
            attempts.push(outcome.report);
        }
        let _ = std::fs::remove_dir_all(&dir);
        if status == TaskStatus::Interrupted {
            break;
        }
    }
    TaskResult {
        attempts,
        dir: None,
        resumed: false,
        shuffle: ShuffleTotals::default(),
    }
}

fn saved_shuffle(r: &Runs) -> SavedShuffle {
    SavedShuffle {
        records: r.records,
        bytes: r.bytes,
        shuffled_records: r.shuffled_records,
        shuffled_bytes: r.shuffled_bytes,
        spills: r.spills,
    }
}

fn totals_of(s: &SavedShuffle) -> ShuffleTotals {
    ShuffleTotals {
        map_output_records: s.records,
        map_output_bytes: s.bytes,
        shuffled_records: s.shuffled_records,
        shuffled_bytes: s.shuffled_bytes,
        spills: s.spills,
    }
}

/// Writes the report and the marker into the attempt directory, then renames it into place:
/// a task directory either is complete or does not exist.
fn mark_done(
    dir: &Path,
    done: &Path,
    report: &TaskReport,
    shuffle: &SavedShuffle,
) -> anyhow::Result<()> {
    write_atomic(
        &dir.join("report.json"),
        &serde_json::to_vec_pretty(report)?,
    )?;
    write_atomic(&dir.join("shuffle.json"), &serde_json::to_vec(shuffle)?)?;
    write_atomic(&dir.join(SUCCESS), b"")?;
    if done.exists() {
        std::fs::remove_dir_all(done)
            .with_context(|| format!("failed to remove a stale `{}`", done.display()))?;
    }
    std::fs::rename(dir, done).with_context(|| {
        format!(
            "failed to rename `{}` to `{}`",
            dir.display(),
            done.display()
        )
    })?;
    Ok(())
}

fn load_done(dir: &Path) -> Option<TaskResult> {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).ok()?).ok()?;
    let shuffle: SavedShuffle =
        serde_json::from_slice(&std::fs::read(dir.join("shuffle.json")).ok()?).ok()?;
    let report = crate::task::report_from_json(&report)?;
    Some(TaskResult {
        attempts: vec![report],
        dir: Some(dir.to_path_buf()),
        resumed: true,
        shuffle: totals_of(&shuffle),
    })
}

/// The runs of every partition in the map task directories, each partition's in task
/// order, then name order. Each directory is listed once, not once per reducer.
fn runs_by_partition(dirs: &[PathBuf], reducers: u32) -> Vec<Vec<PathBuf>> {
    let mut runs = vec![Vec::new(); reducers as usize];
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        let mut found: Vec<(u32, PathBuf)> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                let (_, part) = name.rsplit_once("-part")?;
                let part: u32 = part.parse().ok().filter(|_| part.len() == 5)?;
                Some((part, p))
            })
            .filter(|(part, _)| *part < reducers)
            .collect();
        found.sort();
        for (part, p) in found {
            runs[part as usize].push(p);
        }
    }
    runs
}

fn check_plan(workdir: &Path, plan: &Plan) -> anyhow::Result<()> {
    let path = workdir.join("plan.json");
    if path.is_file() {
        let old: Plan = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| format!("`{}` is not a polymr plan", path.display()))?;
        if old.map_tasks != plan.map_tasks || old.reducers != plan.reducers {
            return Err(crate::exit::UsageError(format!(
                "--resume: `{}` holds the work of another plan (different inputs, --mappers, --reducers or batch size); use a new directory or the same arguments",
                workdir.display()
            ))
            .into());
        }
        return Ok(());
    }
    write_atomic(&path, &serde_json::to_vec_pretty(plan)?)
        .with_context(|| format!("failed to write `{}`", path.display()))
}

/// The work directory (absolute), and the guard that removes it when polymr made it for
/// this run alone. A `--resume` directory must be new, empty, or one polymr marked.
fn prepare_workdir(s: &RunSettings) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(d) = &s.resume {
        let dir = resolve_path(d);
        for (flag, out) in [("--output", &s.output), ("--output-dir", &s.output_dir)] {
            if let Some(out) = out {
                if resolve_path(out).starts_with(&dir) {
                    return Err(UsageError(format!(
                        "{flag} `{}` is inside the work directory `{}`, which polymr clears after the job; put it elsewhere",
                        out.display(),
                        d.display()
                    ))
                    .into());
                }
            }
        }
        open_resume_dir(&dir, &s.job_id)?;
        return Ok((dir, None));
    }
    let base = s
        .output
        .as_deref()
        .or(s.output_dir.as_deref())
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&base)
        .with_context(|| format!("failed to create `{}`", base.display()))?;
    let t = tempfile::Builder::new()
        .prefix(".polymr-work-")
        .tempdir_in(&base)
        .with_context(|| format!("failed to create a work directory in `{}`", base.display()))?;
    let dir = resolve_path(t.path());
    write_marker(&dir, &s.job_id)?;
    Ok((dir, Some(t)))
}

/// Accepts a directory polymr marked (resuming it), or a new or empty one (marking it).
fn open_resume_dir(dir: &Path, job_id: &str) -> anyhow::Result<()> {
    if dir.join(MARKER).is_file() {
        return Ok(());
    }
    if dir.exists() {
        if !dir.is_dir() {
            return Err(
                UsageError(format!("--resume `{}` is not a directory", dir.display())).into(),
            );
        }
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("failed to list the work directory `{}`", dir.display()))?;
        if entries.next().is_some() {
            return Err(UsageError(format!(
                "--resume `{}`: the directory is not empty and holds no `{MARKER}`, so polymr did not make it; give a new or empty directory, or the work directory a polymr job printed",
                dir.display()
            ))
            .into());
        }
    } else {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create the work directory `{}`", dir.display()))?;
    }
    write_marker(dir, job_id)
}

fn write_marker(dir: &Path, job_id: &str) -> anyhow::Result<()> {
    let marker = serde_json::json!({
        "polymr_version": env!("CARGO_PKG_VERSION"),
        "job_id": job_id,
        "created_at_unix_ms": crate::task::unix_ms(),
    });
    let path = dir.join(MARKER);
    write_atomic(&path, &serde_json::to_vec_pretty(&marker)?)
        .with_context(|| format!("failed to write `{}`", path.display()))
}

/// An absolute path with `.`/`..` folded and the longest existing prefix canonicalised, so
/// that a path through a symlink and one that does not exist yet still compare.
fn resolve_path(p: &Path) -> PathBuf {
    use std::path::Component;
    let joined = match std::env::current_dir() {
        Ok(cwd) if p.is_relative() => cwd.join(p),
        _ => p.to_path_buf(),
    };
    let mut lexical = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                lexical.pop();
            }
            c => lexical.push(c),
        }
    }
    let mut rest = Vec::new();
    let mut existing = lexical.as_path();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |acc, name| acc.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

/// Removes from a `--resume` directory what this job's runs wrote there, the marker last,
/// then the directory itself if nothing else is left: a user's own files stay.
fn clear_workdir(dir: &Path, plan: &Plan) {
    let ids: std::collections::HashSet<&str> =
        plan.map_tasks.iter().map(|t| t.id.as_str()).collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name == MARKER || !created_by_polymr(&name, &ids) {
                continue;
            }
            let p = e.path();
            let _ = match e.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
                _ => std::fs::remove_file(&p),
            };
        }
    }
    let _ = std::fs::remove_file(dir.join(MARKER));
    let _ = std::fs::remove_dir(dir);
}

/// The names polymr gives entries of a work directory: the plan, the marker, the map tasks
/// (complete, or attempts), the reduce outputs, and `write_atomic`'s leftovers of a kill.
fn created_by_polymr(name: &str, ids: &std::collections::HashSet<&str>) -> bool {
    let atomic_leftover = |target: &str| {
        name.strip_prefix('.')
            .and_then(|n| n.strip_prefix(target))
            .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
    };
    name == "plan.json"
        || name == "reduce"
        || name == MARKER
        || ids.contains(name)
        || name.split_once(".attempt-").is_some_and(|(id, n)| {
            ids.contains(id) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        })
        || atomic_leftover("plan.json")
        || atomic_leftover(MARKER)
}

fn add_totals(into: &mut Totals, t: &Totals) {
    into.files += t.files;
    into.files_processed += t.files_processed;
    into.files_failed += t.files_failed;
    into.files_skipped += t.files_skipped;
    into.bytes_read += t.bytes_read;
    into.bytes += t.bytes;
    into.records += t.records;
    into.invalid_records += t.invalid_records;
}

/// The single result (partitions concatenated in order) and/or one file per partition.
fn publish(s: &RunSettings, parts: &[PathBuf]) -> anyhow::Result<()> {
    if let Some(dir) = &s.output_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
        let prefix = if s.plan.reducers == 0 {
            "part-m"
        } else {
            "part"
        };
        for (i, part) in parts.iter().enumerate() {
            let target = dir.join(format!("{prefix}-{i:05}"));
            copy_atomic(std::slice::from_ref(part), &target)?;
        }
        write_atomic(&dir.join(SUCCESS), b"")?;
    }
    if let Some(out) = &s.output {
        copy_atomic(parts, out)?;
    }
    Ok(())
}

fn copy_atomic(parts: &[PathBuf], target: &Path) -> anyhow::Result<()> {
    let out = AtomicFile::create(target)
        .with_context(|| format!("failed to create the output beside `{}`", target.display()))?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, out.reopen()?);
        for p in parts {
            let mut f = std::fs::File::open(p)
                .with_context(|| format!("failed to open `{}`", p.display()))?;
            std::io::copy(&mut f, &mut w)
                .with_context(|| format!("failed to copy `{}`", p.display()))?;
        }
        std::io::Write::flush(&mut w)?;
    }
    out.publish()
        .with_context(|| format!("failed to publish `{}`", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_polymr_names_are_cleared() {
        let ids: std::collections::HashSet<&str> = ["map-00000", "map-00001"].into();
        for ours in [
            "plan.json",
            "reduce",
            MARKER,
            "map-00001",
            "map-00000.attempt-2",
            ".plan.json.a1B2c3.tmp",
            "..polymr-workdir.xyz.tmp",
        ] {
            assert!(created_by_polymr(ours, &ids), "{ours}");
        }
        for theirs in [
            "notes.txt",
            "map-00002",
            "map-00000.attempt-",
            "map-00000.attempt-x",
            ".plan.json",
            "plan.json.bak",
            "result.txt",
        ] {
            assert!(!created_by_polymr(theirs, &ids), "{theirs}");
        }
    }

    #[test]
    fn runs_are_listed_once_in_task_then_name_order() {
        let d = tempfile::tempdir().expect("tempdir");
        let dirs: Vec<PathBuf> = ["map-00000", "map-00001"]
            .iter()
            .map(|n| d.path().join(n))
            .collect();
        for (dir, names) in dirs.iter().zip([
            &[
                "t-spill0001-part00001",
                "t-spill0000-part00001",
                "t-spill0000-part00000",
            ][..],
            &[
                "u-spill0000-part00001",
                "report.json",
                "u-spill0000-part00007",
            ][..],
        ]) {
            std::fs::create_dir_all(dir).expect("mkdir");
            for n in names {
                std::fs::write(dir.join(n), "").expect("write");
            }
        }
        let runs = runs_by_partition(&dirs, 2);
        let names = |p: usize| -> Vec<String> {
            runs[p]
                .iter()
                .map(|r| r.file_name().unwrap_or_default().to_string_lossy().into())
                .collect()
        };
        assert_eq!(names(0), vec!["t-spill0000-part00000"]);
        assert_eq!(
            names(1),
            vec![
                "t-spill0000-part00001",
                "t-spill0001-part00001",
                "u-spill0000-part00001"
            ]
        );
    }
}
