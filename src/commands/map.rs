//! `polymr map`: one map task over local inputs.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::MapArgs;
use crate::exit;
use crate::output::write_atomic;
use crate::report::{TaskReport, TaskStatus};
use crate::settings::MapSettings;
use crate::task::{run_map_task, MapOutput, MapTask};

pub async fn map(args: MapArgs, cancel: CancellationToken) -> anyhow::Result<u8> {
    let s = MapSettings::resolve(args)?;
    tracing::info!(config = %s.job.path.display(), inputs = s.inputs.len(), "map task starting");
    let outcome = run_map_task(MapTask {
        job: &s.job,
        command: &s.command,
        inputs: s.inputs,
        output: MapOutput::File(s.output.clone()),
        env: s.env,
        fail_fast: s.fail_fast,
        cancel,
    })
    .await;
    let report = outcome.report;
    let report_path = TaskReport::path_for(&s.output);
    let json = serde_json::to_vec_pretty(&report).context("failed to serialize the report")?;
    write_atomic(&report_path, &json)
        .with_context(|| format!("failed to write the report `{}`", report_path.display()))?;

    for i in report
        .inputs
        .iter()
        .filter(|i| i.status == crate::report::InputStatus::Failed)
    {
        eprintln!(
            "polymr: input failed: {}: {}",
            i.name,
            i.error.as_deref().unwrap_or("unknown error")
        );
    }
    for i in report.inputs.iter().filter(|i| i.invalid_records > 0) {
        let first = i
            .invalid_samples
            .first()
            .map(|s| format!(" (first at line {}: {})", s.line, s.message))
            .unwrap_or_default();
        eprintln!(
            "polymr: {} invalid records in {}{first}",
            i.invalid_records, i.name
        );
    }
    if let Some(e) = &report.error {
        eprintln!("polymr: error: {e}");
    }
    eprintln!(
        "{}; report: {}",
        report.summary_line(),
        report_path.display()
    );
    Ok(match report.status {
        TaskStatus::Succeeded => exit::SUCCESS,
        TaskStatus::Failed => exit::JOB_FAILED,
        TaskStatus::Interrupted => exit::interrupted(crate::signals::received().unwrap_or(2)),
    })
}
