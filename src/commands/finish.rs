//! `polymr finish`: the end of a job whose tasks ran elsewhere (`polymr task`): publishes the
//! result from the reduce outputs (or the map outputs of a map-only job) and writes the job
//! report from the task reports, as `polymr run` would have.

use std::time::Instant;

use crate::cli::FinishArgs;
use crate::exec::events::{Event, EventSink};
use crate::exec::JobReportBuilder;
use crate::report::{TaskReport, TaskStatus};
use crate::storage::OutputTarget;
use crate::task::{load_map_done, TaskRef};

pub async fn finish(args: FinishArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let (plan, layout, job) = super::open_plan(&args.plan, &super::PlanPlace::default())?;
    let target = plan.output.as_deref().map(OutputTarget::new).transpose()?;
    let output = target.as_ref().map(|t| t.local.clone());
    let outputs: Vec<&std::path::Path> = plan.output.iter().map(|p| p.as_path()).collect();
    let sources = crate::settings::sources(&args.remote, &[], &outputs, 3).await?;

    let mut builder = JobReportBuilder::new(&plan, &job, output.clone());
    let mut missing = Vec::new();
    for t in &plan.map_tasks {
        let mut attempts = failed_attempts(&layout, &t.id);
        let done = load_map_done(&layout, &t.id);
        let outcome = done.as_ref().map(|(_, o)| o);
        if let Some((report, _)) = &done {
            attempts.push(report.clone());
        } else {
            missing.push(t.id.as_str());
        }
        if done.is_some() || !attempts.is_empty() {
            builder.event(&Event::TaskDone {
                task: TaskRef::Map(t.index),
                id: &t.id,
                attempts: &attempts,
                resumed: false,
                outcome,
                succeeded: done.is_some(),
            });
        }
    }
    for r in &plan.reduce_tasks {
        let report: Option<TaskReport> = std::fs::read(layout.reduce_report(r.partition))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut attempts = failed_attempts(&layout, &r.id);
        let succeeded = match report {
            Some(report) if layout.reduce_output(r.partition).is_file() => {
                attempts.push(report);
                true
            }
            _ => {
                missing.push(r.id.as_str());
                false
            }
        };
        if !attempts.is_empty() {
            builder.event(&Event::TaskDone {
                task: TaskRef::Reduce(r.partition),
                id: &r.id,
                attempts: &attempts,
                resumed: false,
                outcome: None,
                succeeded,
            });
        }
    }
    let mut report = builder.finish();
    if missing.is_empty() {
        let parts = crate::storage::parts_of(&plan, &layout);
        match crate::storage::publish(&plan, output.as_deref(), &parts) {
            Ok(()) => {
                report.status = TaskStatus::Succeeded;
                report.published = true;
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
    let notify = crate::notify::NotifySettings::from_env(
        args.notify.notify_email.clone(),
        args.notify.notify_url.clone(),
        None,
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
