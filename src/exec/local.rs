//! The embedded executor: runs a plan on this machine. Up to N map tasks at once, each
//! through the one retry loop; their sorted runs are merged per partition into the
//! reducers; the partitions are published as one result. Every task runs through the same
//! entry point as `polymr task`, so finished map tasks are complete, named directories of
//! the work directory, and `--resume` skips them.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

use super::attempts::with_retries;
use super::events::{Event, EventSink, Events, Phase};
use super::job_report::JobReportBuilder;
use super::progress::ProgressSink;
use super::workdir::{check_plan, clear_workdir, prepare_workdir};
use crate::plan::ShuffleLayout;
use crate::prepare::PreparedRun;
use crate::report::{JobReport, TaskStatus};
use crate::storage::{parts_of, publish};
use crate::task::{load_map_done, run_attempt, TaskContext, TaskRef};

pub async fn run_local(s: &PreparedRun, cancel: CancellationToken) -> anyhow::Result<JobReport> {
    run_local_with(s, cancel, None::<&Mutex<ProgressSink>>).await
}

/// The same, with one more sink of its events (the live page of `run --ui`).
pub async fn run_local_with<S: EventSink>(
    s: &PreparedRun,
    cancel: CancellationToken,
    extra_sink: Option<&Mutex<S>>,
) -> anyhow::Result<JobReport> {
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
        combiner: TaskContext::combiner_of(&plan, &s.job, &s.helpers)?,
        helpers: s.helpers.clone(),
        sources: s.sources.clone(),
        cancel: cancel.clone(),
        runs_from: None,
    };
    let builder = Mutex::new(JobReportBuilder::new(&plan, &s.job, s.output.clone()));
    let progress = Mutex::new(ProgressSink::default());
    let mut sinks = vec![
        &builder as &Mutex<dyn EventSink>,
        &progress as &Mutex<dyn EventSink>,
    ];
    if let Some(extra) = extra_sink {
        sinks.push(extra as &Mutex<dyn EventSink>);
    }
    let events = Events::new(sinks);

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
        parts = parts_of(&plan, &layout);
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
        if let Err(e) = publish(&plan, s.output.as_deref(), &parts) {
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
