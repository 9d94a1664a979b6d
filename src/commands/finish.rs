//! `polymr finish`: the end of a job whose tasks ran elsewhere (`polymr task`): publishes the
//! result from the reduce outputs (or the map outputs of a map-only job) and writes the job
//! report from the task reports, as `polymr run` would have.

use std::time::Instant;

use crate::cli::FinishArgs;
use crate::exec::events::{Event, EventSink};
use crate::exec::JobReportBuilder;
use crate::exit::UsageError;
use crate::plan::{MapOutcome, ShuffleLayout};
use crate::report::{TaskReport, TaskStatus};
use crate::storage::OutputTarget;
use crate::task::{load_map_done, TaskRef};

pub async fn finish(args: FinishArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let (plan, layout, job) = super::open_plan(&args.plan, &super::PlanPlace::default())?;
    if !has_work(&layout, &plan) {
        return Err(UsageError(format!(
            "no task of this plan has run in `{}` (or the job was finished already, which removes it): nothing to finish",
            layout.root().display()
        ))
        .into());
    }
    let target = plan.output.as_deref().map(OutputTarget::new).transpose()?;
    let output = target.as_ref().map(|t| t.local.clone());
    let outputs: Vec<&std::path::Path> = plan.output.iter().map(|p| p.as_path()).collect();
    let env = crate::settings::EnvSnapshot::capture();
    let remote = crate::settings::RemoteSettings::resolve(&args.remote, &env, &[], &outputs, 3);
    let sources = crate::prepare::connect(&remote).await?;

    let mut builder = JobReportBuilder::new(&plan, &job, output.clone());
    let mut missing = Vec::new();
    for t in &plan.map_tasks {
        let done = load_map_done(&layout, &t.id);
        let (report, outcome) = done.map_or((None, None), |(r, o)| (Some(r), Some(o)));
        if !ended(
            &mut builder,
            &layout,
            TaskRef::Map(t.index),
            &t.id,
            report,
            outcome.as_ref(),
        ) {
            missing.push(t.id.as_str());
        }
    }
    for r in &plan.reduce_tasks {
        let report: Option<TaskReport> = layout
            .reduce_output(r.partition)
            .is_file()
            .then(|| std::fs::read(layout.reduce_report(r.partition)).ok())
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if !ended(
            &mut builder,
            &layout,
            TaskRef::Reduce(r.partition),
            &r.id,
            report,
            None,
        ) {
            missing.push(r.id.as_str());
        }
    }
    let mut report = builder.finish();
    if missing.is_empty() {
        let parts = crate::storage::parts_of(&plan, &layout);
        match crate::storage::publish(&plan, output.as_deref(), &parts) {
            Ok(()) => {
                report.status = TaskStatus::Succeeded;
                report.published = true;
                // As `run` does: only what polymr made under the work root is removed.
                crate::exec::workdir::clear_workdir(&layout, &plan);
            }
            Err(e) => report.error = Some(format!("failed to publish the result: {e:#}")),
        }
    } else {
        let first_error = report
            .tasks
            .iter()
            .rev()
            .find_map(|t| t.error.as_deref())
            .map(|e| format!("; the last failed attempt: {e}"))
            .unwrap_or_default();
        report.error = Some(
            format!(
                "{} task(s) of the plan have not finished in `{}`: {}",
                missing.len(),
                layout.root().display(),
                missing.join(", "),
            ) + &first_error,
        );
    }
    report.timings.total_ms = started.elapsed().as_millis() as u64;
    report.driver_peak_rss_bytes = crate::report::driver_peak_rss();
    let notify = crate::notify::NotifySettings::resolve(
        args.notify.notify_email.clone(),
        args.notify.notify_url.clone(),
        None,
        &env.notify,
    );
    super::run::conclude(
        report,
        &super::run::Conclusion {
            output: output.as_deref(),
            output_dir: plan.output_dir.as_deref(),
            target: target.as_ref(),
            sources: &sources,
            notify: &notify,
        },
    )
    .await
}

/// Reports task `id`'s attempts: its failed ones, then its successful one (`report`), if any.
/// Whether it succeeded.
fn ended(
    builder: &mut JobReportBuilder,
    layout: &ShuffleLayout,
    task: TaskRef,
    id: &str,
    report: Option<TaskReport>,
    outcome: Option<&MapOutcome>,
) -> bool {
    let mut attempts = failed_attempts(layout, id);
    let succeeded = report.is_some();
    attempts.extend(report);
    if !attempts.is_empty() {
        builder.event(&Event::TaskDone {
            task,
            id,
            attempts: &attempts,
            resumed: false,
            outcome,
            succeeded,
        });
    }
    succeeded
}

/// The reports `polymr task` kept of a task's failed attempts, in attempt order: in the job
/// report they come before the attempt that succeeded, and add nothing to its counters.
fn failed_attempts(layout: &crate::plan::ShuffleLayout, id: &str) -> Vec<TaskReport> {
    layout
        .failed_attempts(id)
        .into_iter()
        .filter_map(|(_, path)| {
            let read = std::fs::read(&path).ok()?;
            match serde_json::from_slice(&read) {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!(
                        "polymr: warning: `{}` is not a task report: {e}",
                        path.display()
                    );
                    None
                }
            }
        })
        .collect()
}

/// Whether anything of the plan's work is under its work root: its marker (`polymr task`
/// ran), a map task's directory or the reduce outputs (an executor laid them out).
fn has_work(layout: &ShuffleLayout, plan: &crate::plan::Plan) -> bool {
    layout.marker().is_file()
        || layout.reduce_dir().is_dir()
        || plan
            .map_tasks
            .iter()
            .any(|t| layout.map_done_dir(&t.id).is_dir())
}
