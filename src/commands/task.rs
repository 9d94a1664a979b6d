//! `polymr task`: one attempt of one task of a plan, the way an outside scheduler (a shell
//! loop, Spark, Taskcluster) runs a job: the same entry point the local executor calls.

use tokio_util::sync::CancellationToken;

use crate::cli::TaskArgs;
use crate::exit::UsageError;
use crate::task::{run_attempt, TaskContext, TaskRef};

pub async fn task(args: TaskArgs, cancel: CancellationToken) -> anyhow::Result<u8> {
    let place = super::PlanPlace {
        work: args.work.clone(),
        job_dir: args.job_dir.clone(),
    };
    let (plan, layout, job) = super::open_plan(&args.plan, &place)?;
    let task = TaskRef::find(&plan, &args.task).map_err(|e| UsageError(e.to_string()))?;
    crate::exec::workdir::open_resume_dir(layout.root(), &plan.job.id)?;
    crate::exec::workdir::check_plan(&layout, &plan)?;
    let remote: Vec<String> = match task {
        TaskRef::Map(i) => plan.map_tasks[i]
            .inputs
            .iter()
            .filter_map(|i| i.url.clone())
            .collect(),
        TaskRef::Reduce(_) => Vec::new(),
    };
    let sources = crate::settings::sources(&args.remote, &remote, &[], 3).await?;
    let ctx = TaskContext {
        combiner: TaskContext::combiner_of(&plan, &job)?,
        plan: &plan,
        job: &job,
        layout,
        sources,
        cancel,
        runs_from: args.runs_from.clone(),
    };
    let attempted = run_attempt(&ctx, task, args.attempt).await;
    if let Err(e) = &attempted.result {
        let again = if e.is_retryable() {
            "another attempt may succeed"
        } else {
            "another attempt would fail the same way"
        };
        eprintln!(
            "polymr: error: {} attempt {}: {e} ({again})",
            args.task, args.attempt
        );
        // `finish` puts it in the job report beside the attempt that succeeded.
        let path = ctx.layout.failed_attempt_report(&args.task, args.attempt);
        let kept = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(anyhow::Error::from)
            .and_then(|()| crate::storage::write_report(&path, &attempted.report));
        if let Err(e) = kept {
            eprintln!("polymr: warning: the failed attempt's report was not kept: {e:#}");
        }
    }
    eprintln!("{}", attempted.report.summary_line());
    Ok(attempted.report.status.exit_code())
}
