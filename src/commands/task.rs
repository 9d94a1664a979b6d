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
    let env = crate::settings::EnvSnapshot::capture();
    let remote = crate::settings::RemoteSettings::resolve(&args.remote, &env, &remote, &[], 3);
    let sources = crate::prepare::connect(&remote).await?;
    let helpers = crate::process::Helpers::default();
    let ctx = TaskContext {
        combiner: TaskContext::combiner_of(&plan, &job, &helpers)?,
        helpers,
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
    }
    eprintln!("{}", attempted.report.summary_line());
    Ok(attempted.report.status.exit_code())
}
