//! The I/O between resolving settings and running: decrypting credentials and making the
//! S3 and HTTP clients, expanding and listing the inputs, planning, and the staging of
//! outputs bound for S3. The embedded helpers are written later, once per job, by the first
//! command that needs them (`process::Helpers`).

use std::path::PathBuf;

use anyhow::Context;

use crate::config::JobConfig;
use crate::input::{expand, Input, Sources};
use crate::notify::NotifySettings;
use crate::plan::Plan;
use crate::process::{ChildCommand, Helpers, TaskEnv};
use crate::settings::{JobSettings, MapSettings, ReduceSettings, RemoteSettings, RunSettings};
use crate::storage::OutputTarget;

/// Builds how remote inputs and outputs are reached.
pub async fn connect(remote: &RemoteSettings) -> anyhow::Result<Sources> {
    use crate::input::s3;
    let s3 = if remote.wants_s3 {
        let credentials =
            crate::credentials::decrypt_value(remote.credentials.as_deref(), &remote.private_key)?;
        let opts = s3::S3Options {
            path_style: remote.endpoint.is_some(),
            endpoint: remote.endpoint.clone(),
            region: credentials.as_ref().and_then(|c| c.region.clone()),
            credentials: credentials.as_ref().map(|c| {
                (
                    c.access_key_id.clone(),
                    c.secret_access_key.clone(),
                    c.session_token.clone(),
                )
            }),
            attempt_timeout: Some(remote.policy.read_timeout),
        };
        Some(s3::client(&opts).await)
    } else {
        None
    };
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(remote.policy.read_timeout)
        .build()
        .context("failed to set up the HTTP client")?;
    Ok(Sources {
        s3,
        http: Some(http),
        bucket: remote.bucket.clone(),
        policy: remote.policy,
        parallel_downloads: remote.parallel_downloads,
        keep_downloads: remote.keep_downloads.clone(),
    })
}

/// A single task (`map` or `reduce`) ready to run.
pub struct PreparedTask {
    pub command: ChildCommand,
    pub inputs: Vec<Input>,
    pub sources: Sources,
    /// Where the task writes (a staging file when the output is on S3).
    pub output: PathBuf,
    pub target: OutputTarget,
    pub env: TaskEnv,
    /// Keeps the helper scripts for as long as the command may be spawned.
    pub helpers: Helpers,
}

pub async fn map_task(s: &MapSettings) -> anyhow::Result<PreparedTask> {
    let target = OutputTarget::new(&s.output)?;
    let sources = connect(&s.remote).await?;
    let (inputs, _) =
        crate::plan::choose_inputs(s.filter.as_deref(), &s.inputs, &sources, &s.job.key_layout)
            .await?;
    let env = TaskEnv {
        // One long-lived child sees many files: the name is set only when there is one.
        input_file: match inputs.as_slice() {
            [one] => Some(one.name.clone()),
            _ => None,
        },
        ..s.env.clone()
    };
    let helpers = Helpers::default();
    let command = ChildCommand::for_step(&s.job, &s.job.mapper, &env, &helpers)
        .with_context(|| format!("cannot run the mapper of `{}`", s.job.path.display()))?;
    Ok(PreparedTask {
        command,
        inputs,
        sources,
        output: target.local.clone(),
        target,
        env,
        helpers,
    })
}

pub async fn reduce_task(s: &ReduceSettings) -> anyhow::Result<PreparedTask> {
    let target = OutputTarget::new(&s.output)?;
    let sources = connect(&s.remote).await?;
    let inputs = expand(&s.inputs, &sources).await;
    let helpers = Helpers::default();
    let command = ChildCommand::for_step(&s.job, s.job.reducer()?, &s.env, &helpers)
        .with_context(|| format!("cannot run the reducer of `{}`", s.job.path.display()))?;
    Ok(PreparedTask {
        command,
        inputs,
        sources,
        output: target.local.clone(),
        target,
        env: s.env.clone(),
        helpers,
    })
}

/// A planned job, and how its inputs are reached.
pub struct PlannedJob {
    pub plan: Plan,
    pub sources: Sources,
    /// What `--filter` chose, with each file's dimensions.
    pub selection: Option<crate::plan::Selection>,
}

/// Lists the job's inputs and plans it: the map tasks as size-balanced batches, the sort
/// budget shared by the map tasks that run at once.
pub async fn plan_job(s: &JobSettings) -> anyhow::Result<PlannedJob> {
    let sources = connect(&s.remote).await?;
    let (inputs, selection) =
        crate::plan::choose_inputs(s.filter.as_deref(), &s.inputs, &sources, &s.job.key_layout)
            .await?;
    let batches =
        crate::plan::batch_capped(&inputs, s.mappers, s.max_batch_bytes, s.max_files_per_task);
    let running = s.mappers.min(batches.map_tasks.len()).max(1);
    let options = crate::plan::JobOptions {
        sort_budget: (s.sort_memory / running).max(1 << 20),
        ..s.options.clone()
    };
    // Absolute, so that `polymr task` runs from any directory.
    let config = std::path::absolute(&s.job.path)
        .with_context(|| format!("config `{}`", s.job.path.display()))?;
    let spec =
        crate::plan::JobSpec::new(s.job_id.clone(), config, s.config_contents.clone(), options);
    let mut plan = Plan::new(spec, batches, s.reducers);
    plan.output = s.output.clone();
    plan.output_dir = s.output_dir.clone();
    Ok(PlannedJob {
        plan,
        sources,
        selection,
    })
}

/// `polymr run`, planned and connected.
pub struct PreparedRun {
    pub job: JobConfig,
    /// Everything the tasks need; its work root is fixed when the executor makes it.
    pub plan: Plan,
    /// Where the result is written (a staging file when it goes to S3); the plan holds
    /// where it was asked for.
    pub output: Option<PathBuf>,
    pub resume: Option<PathBuf>,
    pub sources: Sources,
    pub target: Option<OutputTarget>,
    pub notify: NotifySettings,
    /// Written once for the whole job, shared by every task's children.
    pub helpers: Helpers,
}

pub async fn run(s: RunSettings) -> anyhow::Result<PreparedRun> {
    let target = s.job.output.as_deref().map(OutputTarget::new).transpose()?;
    let PlannedJob { plan, sources, .. } = plan_job(&s.job).await?;
    if let Some((soft, hard)) = crate::limits::nofile() {
        crate::settings::check_descriptors(
            plan.job.options.mappers,
            &plan,
            sources.parallel_downloads,
            soft,
            hard,
        )?;
    }
    Ok(PreparedRun {
        job: s.job.job,
        plan,
        output: target.as_ref().map(|t| t.local.clone()),
        resume: s.resume,
        sources,
        target,
        notify: s.notify,
        helpers: Helpers::default(),
    })
}
