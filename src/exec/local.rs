//! The embedded executor: runs a plan on this machine. Up to N map tasks at once, each
//! through the one retry loop; their sorted runs are merged per partition into the
//! reducers; the partitions are published as one result. Every task runs through the same
//! entry point as `polymr task`, so finished map tasks are complete, named directories of
//! the work directory, and `--resume` skips them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use futures::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

use super::attempts::with_retries;
use super::events::{Event, EventSink, Events, Phase};
use super::job_report::JobReportBuilder;
use super::progress::ProgressSink;
use crate::exit::UsageError;
use crate::output::{write_atomic, AtomicFile};
use crate::plan::{Plan, ShuffleLayout, MARKER};
use crate::report::{JobReport, TaskStatus};
use crate::settings::RunSettings;
use crate::task::{load_map_done, run_attempt, TaskContext, TaskRef};

pub async fn run_local(s: &RunSettings, cancel: CancellationToken) -> anyhow::Result<JobReport> {
    let started = Instant::now();
    let (workdir, temp) = prepare_workdir(s)?;
    // Printed now, not at the end: after a `kill -9` this line is all that says where the
    // finished map tasks are.
    eprintln!(
        "polymr: work directory: {w} (if the job is stopped, rerun with --resume {w} to skip its finished map tasks)",
        w = workdir.display()
    );
    let mut plan = s.plan.clone();
    plan.work = Some(workdir.clone());
    let layout = ShuffleLayout::new(&workdir);
    check_plan(&layout, &plan)?;
    let ctx = TaskContext {
        plan: &plan,
        job: &s.job,
        layout: layout.clone(),
        combiner: TaskContext::combiner_of(&plan, &s.job)?,
        sources: s.sources.clone(),
        cancel: cancel.clone(),
    };
    let builder = Mutex::new(JobReportBuilder::new(&plan, &s.job, s.output.clone()));
    let progress = Mutex::new(ProgressSink::default());
    let events = Events::new(vec![
        &builder as &Mutex<dyn EventSink>,
        &progress as &Mutex<dyn EventSink>,
    ]);

    let maps = plan.map_tasks.iter().map(|t| TaskRef::Map(t.index));
    let failed_maps = run_phase(&ctx, &events, Phase::Map, maps.collect()).await;
    let retries = plan.job.options.retries;
    let (mut status, mut error) = (TaskStatus::Failed, None);
    let mut parts: Vec<PathBuf> = Vec::new();
    if cancel.is_cancelled() {
        status = TaskStatus::Interrupted;
        error = Some("interrupted by a signal; nothing was published".to_string());
    } else if !failed_maps.is_empty() {
        error = Some(format!(
            "{} map task(s) failed after {retries} retries: {}",
            failed_maps.len(),
            failed_maps.join(", ")
        ));
    } else if plan.reducers == 0 {
        parts = plan
            .map_tasks
            .iter()
            .map(|t| ShuffleLayout::map_output_in(&layout.map_done_dir(&t.id)))
            .collect();
        status = TaskStatus::Succeeded;
    } else {
        let reduces = (0..plan.reducers).map(TaskRef::Reduce).collect();
        let failed = run_phase(&ctx, &events, Phase::Reduce, reduces).await;
        if cancel.is_cancelled() {
            status = TaskStatus::Interrupted;
            error = Some("interrupted by a signal; nothing was published".into());
        } else if failed.is_empty() {
            parts = (0..plan.reducers)
                .map(|p| layout.reduce_output(p))
                .collect();
            status = TaskStatus::Succeeded;
        } else {
            error = Some(format!(
                "{} reduce task(s) failed after {retries} retries: {}",
                failed.len(),
                failed.join(", ")
            ));
        }
    }
    drop(events);
    let mut report = builder
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .finish();
    (report.status, report.error) = (status, error);

    if report.status == TaskStatus::Succeeded {
        if let Err(e) = publish(s, &plan, &parts) {
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
        clear_workdir(&layout, &plan);
    }
    report.timings.total_ms = started.elapsed().as_millis() as u64;
    report.driver_peak_rss_bytes = crate::report::driver_peak_rss();
    Ok(report)
}

/// Runs `tasks`, as many at once as the job's mappers, and returns the ids of those that
/// failed, in plan order.
async fn run_phase(
    ctx: &TaskContext<'_>,
    events: &Events<'_>,
    phase: Phase,
    tasks: Vec<TaskRef>,
) -> Vec<String> {
    let started = Instant::now();
    let running = ctx
        .plan
        .job
        .options
        .mappers
        .min(ctx.plan.map_tasks.len())
        .max(1);
    events.emit(&Event::PhaseStarted {
        phase,
        tasks: tasks.len(),
    });
    let mut failed: Vec<TaskRef> = stream::iter(tasks)
        .map(|t| run_task(ctx, events, t))
        .buffer_unordered(running)
        .filter_map(|(t, ok)| async move { (!ok).then_some(t) })
        .collect()
        .await;
    events.emit(&Event::PhaseDone {
        phase,
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    failed.sort_by_key(|t| match *t {
        TaskRef::Map(i) => i,
        TaskRef::Reduce(p) => p as usize,
    });
    failed.iter().map(|t| t.id(ctx.plan)).collect()
}

/// One task to its end: skipped when the work directory holds it complete, else attempted
/// until it succeeds or the retry policy gives up. Whether it succeeded.
async fn run_task(ctx: &TaskContext<'_>, events: &Events<'_>, task: TaskRef) -> (TaskRef, bool) {
    let id = task.id(ctx.plan);
    if let TaskRef::Map(_) = task {
        if let Some((report, outcome)) = load_map_done(&ctx.layout, &id) {
            tracing::info!("{id}: complete in the work directory, skipped");
            events.emit(&Event::TaskDone {
                task,
                id: &id,
                attempts: std::slice::from_ref(&report),
                resumed: true,
                outcome: Some(&outcome),
                succeeded: true,
            });
            return (task, true);
        }
    }
    events.emit(&Event::TaskStarted { id: &id });
    let tried = with_retries(
        &id,
        ctx.plan.job.options.retries,
        &ctx.cancel,
        |n| run_attempt(ctx, task, n),
        |report, error| {
            events.emit(&Event::AttemptFailed {
                id: &id,
                report,
                error,
            })
        },
    )
    .await;
    let outcome = match &tried.finished {
        Some(crate::task::Finished::Map { outcome, .. }) => Some(outcome),
        _ => None,
    };
    let succeeded = tried.finished.is_some();
    events.emit(&Event::TaskDone {
        task,
        id: &id,
        attempts: &tried.attempts,
        resumed: false,
        outcome,
        succeeded,
    });
    (task, succeeded)
}

fn check_plan(layout: &ShuffleLayout, plan: &Plan) -> anyhow::Result<()> {
    let workdir = layout.root();
    let path = layout.plan_file();
    if path.is_file() {
        let old: Plan = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| format!("`{}` is not a polymr plan", path.display()))?;
        if !old.same_work(plan) {
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
        for (flag, out) in [
            ("--output", &s.output),
            ("--output-dir", &s.plan.output_dir),
        ] {
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
        open_resume_dir(&dir, &s.plan.job.id)?;
        return Ok((dir, None));
    }
    let base = s
        .output
        .as_deref()
        .or(s.plan.output_dir.as_deref())
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
    write_marker(&dir, &s.plan.job.id)?;
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
fn clear_workdir(layout: &ShuffleLayout, plan: &Plan) {
    let dir = layout.root();
    let ids: std::collections::HashSet<&str> =
        plan.map_tasks.iter().map(|t| t.id.as_str()).collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name == MARKER || !ShuffleLayout::created_by_polymr(&name, &ids) {
                continue;
            }
            let p = e.path();
            let _ = match e.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
                _ => std::fs::remove_file(&p),
            };
        }
    }
    let _ = std::fs::remove_file(layout.marker());
    let _ = std::fs::remove_dir(dir);
}

/// The single result (partitions concatenated in order) and/or one file per partition.
fn publish(s: &RunSettings, plan: &Plan, parts: &[PathBuf]) -> anyhow::Result<()> {
    if let Some(dir) = &plan.output_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
        let prefix = if plan.reducers == 0 { "part-m" } else { "part" };
        for (i, part) in parts.iter().enumerate() {
            let target = dir.join(format!("{prefix}-{i:05}"));
            copy_atomic(std::slice::from_ref(part), &target)?;
        }
        write_atomic(&ShuffleLayout::success_in(dir), b"")?;
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
