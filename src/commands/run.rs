//! `polymr run`: a whole job on this machine.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::output::write_atomic;
use crate::report::TaskStatus;
use crate::settings::RunSettings;

pub async fn run(args: RunArgs, cancel: CancellationToken) -> anyhow::Result<u8> {
    let s = RunSettings::resolve(args).await?;
    tracing::info!(
        map_tasks = s.plan.map_tasks.len(),
        reducers = s.plan.reducers,
        files = s.plan.total_files,
        "job planned"
    );
    let report = crate::exec::run_local(&s, cancel).await?;
    let report_path = match (&s.output, &s.plan.output_dir) {
        (Some(o), _) => crate::report::TaskReport::path_for(o),
        (None, Some(d)) => d.join("report.json"),
        (None, None) => std::path::PathBuf::from("result.txt.report.json"),
    };
    let json = serde_json::to_vec_pretty(&report).context("failed to serialize the job report")?;
    write_atomic(&report_path, &json)
        .with_context(|| format!("failed to write the report `{}`", report_path.display()))?;
    for t in report
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Succeeded)
    {
        for i in t.inputs.iter().filter(|i| i.invalid_records > 0) {
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
        super::print_invalid_output(t);
    }
    for lost in &report.lost_inputs {
        eprintln!("polymr: {}", lost.describe());
    }
    if let Some(e) = &report.error {
        eprintln!("polymr: error: {e}");
    }
    if let Some(w) = &report.workdir {
        eprintln!(
            "polymr: finished map tasks are kept in {}; rerun with --resume {} to skip them",
            w.display(),
            w.display()
        );
    }
    eprintln!(
        "{}; report: {}",
        report.summary_line(),
        report_path.display()
    );
    let mut code = report.status.exit_code();
    if let Some(target) = &s.target {
        let succeeded = report.status == TaskStatus::Succeeded;
        if let Err(e) = target.upload(&s.sources, &report_path, succeeded).await {
            eprintln!("polymr: error: {e:#}");
            code = crate::exit::JOB_FAILED;
        }
    }
    let status = if code == crate::exit::SUCCESS {
        "succeeded"
    } else {
        report.status.label()
    };
    let result = match &s.plan.output_dir {
        Some(d) if s.output.is_none() => Some(d.display().to_string()),
        _ => super::result_location(s.target.as_ref(), s.output.as_deref()),
    };
    super::notify_and_record(
        &s.notify,
        &report_path,
        super::NoticeParts {
            job: &report.job_id,
            kind: "job",
            status,
            summary: &report.summary_line(),
            result: (code == crate::exit::SUCCESS).then_some(result).flatten(),
        },
    )
    .await;
    Ok(code)
}
