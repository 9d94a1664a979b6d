//! `polymr run`: a whole job on this machine.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::input::Sources;
use crate::notify::NotifySettings;
use crate::page::{LiveServer, LiveState};
use crate::prepare::PreparedRun;
use crate::report::{JobReport, TaskStatus};
use crate::settings::{EnvSnapshot, RunSettings};
use crate::storage::OutputTarget;

pub async fn run(args: RunArgs, cancel: CancellationToken) -> anyhow::Result<u8> {
    let ui = args.ui.clone();
    let s = crate::prepare::run(RunSettings::resolve(args, &EnvSnapshot::capture())?).await?;
    tracing::info!(
        map_tasks = s.plan.map_tasks.len(),
        reducers = s.plan.reducers,
        files = s.plan.total_files,
        "job planned"
    );
    let Some(addr) = ui else {
        let report = crate::exec::run_local(&s, cancel).await?;
        return conclude_run(report, &s).await;
    };
    let live = LiveServer::start(&addr, LiveState::new(&s.plan)).await?;
    eprintln!(
        "polymr: live page: {} (read-only; it stops when the job ends)",
        live.url()
    );
    let sink = std::sync::Mutex::new(live.sink());
    let report = crate::exec::run_local_with(&s, cancel, Some(&sink)).await;
    if let Ok(report) = &report {
        live.job_ended(report);
    }
    let code = match report {
        Ok(report) => conclude_run(report, &s).await,
        Err(e) => Err(e),
    };
    live.stop().await;
    code
}

async fn conclude_run(report: JobReport, s: &PreparedRun) -> anyhow::Result<u8> {
    conclude(
        report,
        &Conclusion {
            output: s.output.as_deref(),
            output_dir: s.plan.output_dir.as_deref(),
            target: s.target.as_ref(),
            sources: &s.sources,
            notify: &s.notify,
        },
    )
    .await
}

/// Where a job's result went, and who hears of it.
pub(super) struct Conclusion<'a> {
    /// The local file the result was published to (a staging file when it goes to S3).
    pub output: Option<&'a Path>,
    pub output_dir: Option<&'a Path>,
    pub target: Option<&'a OutputTarget>,
    pub sources: &'a Sources,
    pub notify: &'a NotifySettings,
}

/// Where `run` and `finish` write a job's report.
pub(super) fn report_path(output: Option<&Path>, output_dir: Option<&Path>) -> PathBuf {
    match (output, output_dir) {
        (Some(o), _) => crate::report::TaskReport::path_for(o),
        (None, Some(d)) => d.join("report.json"),
        (None, None) => PathBuf::from("result.txt.report.json"),
    }
}

/// Tells the person on stderr, uploads the result, notifies the owner, and only then
/// writes (and uploads) the report, so every copy of it holds the notifications.
pub(super) async fn conclude(mut report: JobReport, c: &Conclusion<'_>) -> anyhow::Result<u8> {
    let report_path = report_path(c.output, c.output_dir);
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
    let succeeded = report.status == TaskStatus::Succeeded;
    if let Some(target) = c.target.filter(|_| succeeded) {
        if let Err(e) = target.upload_result(c.sources).await {
            eprintln!("polymr: error: {e:#}");
            code = crate::exit::JOB_FAILED;
        }
    }
    if !c.notify.is_empty() {
        let status = if code == crate::exit::SUCCESS {
            "succeeded"
        } else {
            report.status.label()
        };
        let result = match c.output_dir {
            Some(d) if c.output.is_none() => Some(d.display().to_string()),
            _ => super::result_location(c.target, c.output),
        };
        let json =
            serde_json::to_vec_pretty(&report).context("failed to serialize the job report")?;
        let sent = crate::notify::notify(
            c.notify,
            &crate::notify::Notice {
                job: &report.job_id,
                kind: "job",
                status,
                summary: &report.summary_line(),
                result: (code == crate::exit::SUCCESS).then_some(result).flatten(),
                report_json: &json,
            },
        )
        .await;
        report.notifications = Some(sent);
    }
    crate::storage::write_report(&report_path, &report)?;
    // The page beside the report; the JSON stays the record, so a page that cannot be
    // written is a warning.
    let page = crate::page::html_path_for(&report_path);
    if let Err(e) = crate::page::write_html(&page, &report) {
        eprintln!("polymr: warning: {e:#}");
    }
    if let Some(target) = c.target {
        if let Err(e) = target.upload_report(c.sources, &report_path).await {
            eprintln!("polymr: error: {e:#}");
            code = crate::exit::JOB_FAILED;
        }
    }
    Ok(code)
}
