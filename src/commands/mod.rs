//! One thin file per subcommand: resolve settings, run, report, pick the exit code.

mod credentials;
mod emit;
mod finish;
mod map;
mod plan;
mod reduce;
mod report;
mod run;
mod spark;
mod task;

use std::io::Write;
use std::path::Path;

use anyhow::Context;

pub use credentials::credentials;
pub use finish::finish;
pub use map::map;
pub use plan::plan;
pub use reduce::reduce;
pub use report::report;
pub use run::run;
pub use spark::spark_submit;
pub use task::task;

use crate::report::{InputReport, InputStatus, TaskReport};

/// Writes a task's report beside its output, tells the person on stderr, picks the exit code.
fn finish_task(report: &TaskReport, output: &Path) -> anyhow::Result<u8> {
    let report_path = TaskReport::path_for(output);
    crate::storage::write_report(&report_path, report)?;
    Ok(tell(report, &report_path))
}

/// Tells the person on stderr what a task did; its exit code.
fn tell(report: &TaskReport, report_path: &Path) -> u8 {
    let succeeded = report.status == crate::report::TaskStatus::Succeeded;
    for i in report
        .inputs
        .iter()
        .filter(|i| i.status == InputStatus::Failed)
    {
        let error = i.error.as_deref().unwrap_or("unknown error");
        if succeeded && i.used_in_part() {
            eprintln!(
                "polymr: input partly used: {}: its first {} records are in the result, the rest is not: {error}",
                i.name, i.records
            );
        } else {
            eprintln!("polymr: input failed: {}: {error}", i.name);
        }
    }
    print_invalid(&report.inputs);
    print_invalid_output(report);
    if let Some(e) = &report.error {
        eprintln!("polymr: error: {e}");
    }
    eprintln!(
        "{}; report: {}",
        report.summary_line(),
        report_path.display()
    );
    report.status.exit_code()
}

/// One stderr line per input that held invalid records, with the first one's line.
fn print_invalid(inputs: &[InputReport]) {
    for i in inputs.iter().filter(|i| i.invalid_records > 0) {
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
}

/// One stderr line for the output lines a task left out of the shuffle.
fn print_invalid_output(report: &TaskReport) {
    let out = &report.invalid_output;
    if out.is_empty() {
        return;
    }
    let first = out
        .samples
        .first()
        .map(|s| format!(" (first at line {}: {})", s.line, s.message))
        .unwrap_or_default();
    eprintln!(
        "polymr: {} invalid records in the output of {}{first}",
        out.records, report.attempt_id
    );
}

/// Sends a task's result and report to S3 when that is where they go. A failed upload
/// fails the task: the result is not where the user asked for it.
async fn upload(
    target: &crate::storage::OutputTarget,
    sources: &crate::input::Sources,
    output: &Path,
    report: &TaskReport,
    code: u8,
) -> anyhow::Result<u8> {
    let succeeded = report.status == crate::report::TaskStatus::Succeeded;
    match target
        .upload(sources, &TaskReport::path_for(output), succeeded)
        .await
    {
        Ok(()) => Ok(code),
        Err(e) => {
            eprintln!("polymr: error: {e:#}");
            Ok(crate::exit::JOB_FAILED)
        }
    }
}

/// Where a published result is, for a person: the S3 URL, or the local path.
fn result_location(
    target: Option<&crate::storage::OutputTarget>,
    local: Option<&Path>,
) -> Option<String> {
    match target.and_then(|t| t.s3.as_ref()) {
        Some((bucket, key)) => Some(format!("s3://{bucket}/{key}")),
        None => local.map(|p| p.display().to_string()),
    }
}

/// stdout carries data only; a closed pipe (`polymr plan | head`) is a clean exit.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("failed to write to stdout"),
    }
}

/// Where a plan's job is on this machine, when that is not where it was planned.
#[derive(Debug, Default)]
struct PlanPlace {
    /// The work root here (`task --work`).
    work: Option<std::path::PathBuf>,
    /// The job's directory here (`task --job-dir`): the config is taken to be in it.
    job_dir: Option<std::path::PathBuf>,
}

impl PlanPlace {
    fn apply(&self, plan: &mut crate::plan::Plan) -> anyhow::Result<()> {
        if let Some(work) = &self.work {
            plan.work = Some(
                std::path::absolute(work)
                    .with_context(|| format!("--work `{}`", work.display()))?,
            );
        }
        if let Some(dir) = &self.job_dir {
            let name = plan.job.config.file_name().ok_or_else(|| {
                crate::exit::UsageError(format!(
                    "the plan's config `{}` has no file name",
                    plan.job.config.display()
                ))
            })?;
            let dir = std::path::absolute(dir)
                .with_context(|| format!("--job-dir `{}`", dir.display()))?;
            plan.job.config = dir.join(name);
        }
        Ok(())
    }
}

/// Reads a plan made with a work root (`polymr plan --work DIR`), its layout, and the job's
/// config from the contents it carries: what `task` and `finish` start from.
fn open_plan(
    path: &Path,
    place: &PlanPlace,
) -> anyhow::Result<(
    crate::plan::Plan,
    crate::plan::ShuffleLayout,
    crate::config::JobConfig,
)> {
    let mut plan =
        crate::plan::Plan::read(path).map_err(|e| crate::exit::UsageError(e.to_string()))?;
    place.apply(&mut plan)?;
    let layout = plan.layout().ok_or_else(|| {
        crate::exit::UsageError(format!(
            "`{}` has no work root: make the plan with `polymr plan --work DIR`",
            path.display()
        ))
    })?;
    let job = plan
        .job
        .load_config()
        .map_err(|e| crate::exit::UsageError(format!("`{}`: {e}", path.display())))?;
    Ok((plan, layout, job))
}
