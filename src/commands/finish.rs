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
    let (plan, layout, job) = super::open_plan(&args.plan)?;
    let target = plan.output.as_deref().map(OutputTarget::new).transpose()?;
    let output = target.as_ref().map(|t| t.local.clone());
    let outputs: Vec<&std::path::Path> = plan.output.iter().map(|p| p.as_path()).collect();
    let sources = crate::settings::sources(&args.remote, &[], &outputs, 3).await?;

    let mut builder = JobReportBuilder::new(&plan, &job, output.clone());
    let mut missing = Vec::new();
    for t in &plan.map_tasks {
        match load_map_done(&layout, &t.id) {
            Some((report, outcome)) => builder.event(&Event::TaskDone {
                task: TaskRef::Map(t.index),
                id: &t.id,
                attempts: std::slice::from_ref(&report),
                resumed: false,
                outcome: Some(&outcome),
                succeeded: true,
            }),
            None => missing.push(t.id.as_str()),
        }
    }
    for r in &plan.reduce_tasks {
        let report: Option<TaskReport> = std::fs::read(layout.reduce_report(r.partition))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match report {
            Some(report) if layout.reduce_output(r.partition).is_file() => {
                builder.event(&Event::TaskDone {
                    task: TaskRef::Reduce(r.partition),
                    id: &r.id,
                    attempts: std::slice::from_ref(&report),
                    resumed: false,
                    outcome: None,
                    succeeded: true,
                })
            }
            _ => missing.push(r.id.as_str()),
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
        report.error = Some(format!(
            "{} task(s) of the plan have not finished in `{}`: {}",
            missing.len(),
            layout.root().display(),
            missing.join(", ")
        ));
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
