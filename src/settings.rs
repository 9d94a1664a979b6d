//! Command line + `analysis-tools.yml` + environment → one resolved struct per command.
//! Everything that can be wrong with the user's setup is found here, before any work.

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::MapArgs;
use crate::config::JobConfig;
use crate::exit::UsageError;
use crate::input::{expand, Input, Sources};
use crate::process::{ChildCommand, TaskEnv};
pub use crate::storage::OutputTarget;

pub struct MapSettings {
    pub job: JobConfig,
    pub command: ChildCommand,
    pub inputs: Vec<Input>,
    /// Where the task writes (a staging file when the output is on S3).
    pub output: PathBuf,
    pub target: OutputTarget,
    pub sources: Sources,
    pub fail_fast: bool,
    pub max_record_size: usize,
    pub env: TaskEnv,
}

impl MapSettings {
    pub async fn resolve(args: MapArgs) -> anyhow::Result<MapSettings> {
        let path = JobConfig::locate(args.config.config.as_deref())?;
        let mut job = JobConfig::load(&path)?;
        let max_record_size = max_record_size(&args.limits)?;
        job.task_timeout = task_timeout(&args.limits.task_timeout)?;
        // The mapper is checked before any input is looked at.
        ChildCommand::for_step(&job, &job.mapper, &TaskEnv::default())
            .with_context(|| format!("cannot run the mapper of `{}`", path.display()))?;
        let target = OutputTarget::new(&args.output)?;
        let sources = sources(&args.remote, &args.inputs, &[&args.output], 3).await?;
        let (inputs, _) = crate::plan::choose_inputs(
            args.select.filter.as_deref(),
            &args.inputs,
            &sources,
            &job.key_layout,
        )
        .await?;
        let job_id = job_id();
        let env = TaskEnv {
            attempt_id: crate::plan::attempt_id(&job_id, crate::plan::TaskKind::Map, 0, 0),
            job_id,
            partition: None,
            input_file: match inputs.as_slice() {
                [one] => Some(one.name.clone()),
                _ => None,
            },
        };
        let command = ChildCommand::for_step(&job, &job.mapper, &env)
            .with_context(|| format!("cannot run the mapper of `{}`", path.display()))?;
        Ok(MapSettings {
            job,
            command,
            inputs,
            output: target.local.clone(),
            target,
            sources,
            fail_fast: args.fail_fast,
            max_record_size,
            env,
        })
    }
}

/// `POLYMR_JOB_ID` when a scheduler names the job, else one made from the clock and pid.
fn job_id() -> String {
    std::env::var("POLYMR_JOB_ID").unwrap_or_else(|_| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!("job_{secs}_{:05}", std::process::id())
    })
}

fn sort_memory(s: &str) -> anyhow::Result<usize> {
    let n = crate::shuffle::parse_size(s)
        .map_err(|e| crate::exit::UsageError(format!("--sort-memory: {e}")))?;
    check_sort_memory(s, n, crate::limits::physical_memory())?;
    Ok(n)
}

fn max_record_size(args: &crate::cli::LimitArgs) -> anyhow::Result<usize> {
    let n = crate::shuffle::parse_size(&args.max_record_size)
        .map_err(|e| crate::exit::UsageError(format!("--max-record-size: {e}")))?;
    // The shuffle indexes a line's length in 32 bits.
    if n == 0 || n > u32::MAX as usize {
        return Err(crate::exit::UsageError(
            "--max-record-size must be at least 1 byte and below 4GiB".into(),
        )
        .into());
    }
    Ok(n)
}

/// `--task-timeout`: `90s`, `10m`, `1h`, `500ms`, a bare number of seconds; `0` is off.
fn task_timeout(s: &str) -> anyhow::Result<Option<std::time::Duration>> {
    let bad = || {
        crate::exit::UsageError(format!(
            "--task-timeout {s:?}: want a duration such as 90s, 10m or 1h (0 turns it off)"
        ))
    };
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    }
    .ok_or_else(bad)?;
    Ok((ms > 0).then(|| std::time::Duration::from_millis(ms)))
}

/// A budget the machine cannot hold would fail later, at the first big allocation, with
/// an abort instead of a message.
fn check_sort_memory(text: &str, n: usize, physical: Option<u64>) -> Result<(), UsageError> {
    if n < (1 << 20) {
        return Err(UsageError("--sort-memory must be at least 1MiB".into()));
    }
    match physical {
        Some(total) if n as u64 > total => Err(UsageError(format!(
            "--sort-memory {text} is more than this machine's physical memory ({}); give at most that",
            crate::report::human_bytes(total)
        ))),
        _ => Ok(()),
    }
}

fn load_job(config: Option<&std::path::Path>) -> anyhow::Result<JobConfig> {
    let path = JobConfig::locate(config)?;
    Ok(JobConfig::load(&path)?)
}

pub struct ReduceSettings {
    pub notify: crate::notify::NotifySettings,
    pub job: JobConfig,
    pub command: ChildCommand,
    pub inputs: Vec<Input>,
    pub output: PathBuf,
    pub target: OutputTarget,
    pub sources: Sources,
    pub sort_memory: usize,
    pub fail_fast: bool,
    pub max_record_size: usize,
    pub env: TaskEnv,
}

impl ReduceSettings {
    pub async fn resolve(args: crate::cli::ReduceArgs) -> anyhow::Result<ReduceSettings> {
        let mut job = load_job(args.config.config.as_deref())?;
        job.task_timeout = task_timeout(&args.limits.task_timeout)?;
        let reducer = job.reducer()?.clone();
        let job_id = job_id();
        let env = TaskEnv {
            attempt_id: crate::plan::attempt_id(&job_id, crate::plan::TaskKind::Reduce, 0, 0),
            job_id,
            partition: Some(0),
            input_file: None,
        };
        let command = ChildCommand::for_step(&job, &reducer, &env)
            .with_context(|| format!("cannot run the reducer of `{}`", job.path.display()))?;
        let sort_memory = sort_memory(&args.sort_memory)?;
        let max_record_size = max_record_size(&args.limits)?;
        // Without arguments, the original's way: the artifacts of the map tasks it depends on.
        let args_inputs = if args.inputs.is_empty() {
            let ids = std::env::var("INPUT_TASK_IDS").map_err(|_| {
                crate::exit::UsageError("no INPUT given and INPUT_TASK_IDS is not set".into())
            })?;
            let template = args.artifact_url.as_deref().ok_or_else(|| {
                crate::exit::UsageError("INPUT_TASK_IDS needs --artifact-url (or POLYMR_ARTIFACT_URL), e.g. https://queue/v1/task/{taskId}/artifacts/public/result.txt".into())
            })?;
            crate::input::http::artifact_urls(&ids, template)
        } else {
            args.inputs.clone()
        };
        let target = OutputTarget::new(&args.output)?;
        let sources = sources(&args.remote, &args_inputs, &[&args.output], 20).await?;
        let inputs = expand(&args_inputs, &sources).await;
        Ok(ReduceSettings {
            notify: crate::notify::NotifySettings::from_env(
                args.notify.notify_email.clone(),
                args.notify.notify_url.clone(),
                args.artifact_url.as_deref(),
            ),
            inputs,
            sort_memory,
            job,
            command,
            output: target.local.clone(),
            target,
            sources,
            fail_fast: args.fail_fast,
            max_record_size,
            env,
        })
    }
}

pub struct RunSettings {
    pub job: JobConfig,
    /// Everything the tasks need; its work root is fixed when the executor makes it.
    pub plan: crate::plan::Plan,
    /// Where the result is written (a staging file when it goes to S3); the plan holds
    /// where it was asked for.
    pub output: Option<PathBuf>,
    pub resume: Option<PathBuf>,
    pub sources: Sources,
    pub target: Option<OutputTarget>,
    pub notify: crate::notify::NotifySettings,
}

fn shape(shape: &crate::cli::JobShapeArgs) -> anyhow::Result<(usize, u64)> {
    let mappers = shape.mappers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    check_count(
        "--mappers",
        mappers as u64,
        crate::limits::MAX_MAPPERS as u64,
    )?;
    let batch = crate::shuffle::parse_size(&shape.max_batch_size)
        .map_err(|e| crate::exit::UsageError(format!("--max-batch-size: {e}")))?
        as u64;
    Ok((mappers, batch))
}

fn check_count(flag: &str, n: u64, max: u64) -> Result<(), UsageError> {
    if n == 0 {
        return Err(UsageError(format!("{flag} must be at least 1")));
    }
    if n > max {
        return Err(UsageError(format!(
            "{flag} {n} is more than {max}, the most polymr runs on one machine"
        )));
    }
    Ok(())
}

/// A planned job: its config, its plan, and how its inputs are reached.
pub struct PlannedJob {
    pub job: JobConfig,
    pub plan: crate::plan::Plan,
    pub sources: Sources,
    /// What `--filter` chose, with each file's dimensions.
    pub selection: Option<crate::plan::Selection>,
}

/// `--output`, or `result.txt` when neither output flag is given.
fn requested_output(opts: &crate::cli::JobOptionArgs) -> Option<PathBuf> {
    match (&opts.output, &opts.output_dir) {
        (None, None) => Some(PathBuf::from("result.txt")),
        (o, _) => o.clone(),
    }
}

/// Plans the job behind `run` and `plan`, checking every step's command before any work.
pub async fn plan_job(
    config: Option<&std::path::Path>,
    shape_args: &crate::cli::JobShapeArgs,
    remote: &crate::cli::RemoteArgs,
    opts: &crate::cli::JobOptionArgs,
    select: &crate::cli::SelectArgs,
    inputs: &[String],
) -> anyhow::Result<PlannedJob> {
    let path = JobConfig::locate(config)?;
    let (mut job, contents) = JobConfig::load_with_text(&path)?;
    let timeout = task_timeout(&opts.limits.task_timeout)?;
    job.task_timeout = timeout;
    let (mappers, max_batch_bytes) = shape(shape_args)?;
    check_count(
        "--reducers",
        u64::from(shape_args.reducers),
        u64::from(crate::limits::MAX_REDUCERS),
    )?;
    let env = TaskEnv::default();
    ChildCommand::for_step(&job, &job.mapper, &env)
        .with_context(|| format!("cannot run the mapper of `{}`", job.path.display()))?;
    if let Some(c) = &job.combiner {
        ChildCommand::for_step(&job, c, &env)
            .with_context(|| format!("cannot run the combiner of `{}`", job.path.display()))?;
    }
    // The original form always names a reducer; a job runs it only if its script exists.
    let reducers = match &job.reducer {
        Some(crate::config::StepRef::Ready(r)) => {
            ChildCommand::for_step(&job, r, &env)
                .with_context(|| format!("cannot run the reducer of `{}`", job.path.display()))?;
            shape_args.reducers
        }
        _ => 0,
    };
    let output = requested_output(opts);
    let outputs: Vec<&std::path::Path> = output.iter().map(|p| p.as_path()).collect();
    let sources = sources(remote, inputs, &outputs, 3).await?;
    check_count(
        "--max-files-per-task",
        shape_args.max_files_per_task as u64,
        u64::from(u32::MAX),
    )?;
    let (inputs, selection) =
        crate::plan::choose_inputs(select.filter.as_deref(), inputs, &sources, &job.key_layout)
            .await?;
    let batches = crate::plan::batch_capped(
        &inputs,
        mappers,
        max_batch_bytes,
        shape_args.max_files_per_task,
    );
    let sort_memory = sort_memory(&opts.sort_memory)?;
    let running = mappers.min(batches.map_tasks.len()).max(1);
    let options = crate::plan::JobOptions {
        mappers,
        sort_budget: (sort_memory / running).max(1 << 20),
        task_timeout_ms: timeout.map_or(0, |t| t.as_millis() as u64),
        retries: opts.retries,
        max_record_size: max_record_size(&opts.limits)?,
        fail_fast: opts.fail_fast,
    };
    let spec = crate::plan::JobSpec::new(job_id(), job.path.clone(), contents, options);
    let mut plan = crate::plan::Plan::new(spec, batches, reducers);
    plan.output = output;
    plan.output_dir = opts.output_dir.clone();
    Ok(PlannedJob {
        job,
        plan,
        sources,
        selection,
    })
}

impl RunSettings {
    pub async fn resolve(args: crate::cli::RunArgs) -> anyhow::Result<RunSettings> {
        let target = requested_output(&args.job)
            .as_deref()
            .map(OutputTarget::new)
            .transpose()?;
        let PlannedJob {
            job, plan, sources, ..
        } = plan_job(
            args.config.config.as_deref(),
            &args.shape,
            &args.remote,
            &args.job,
            &args.select,
            &args.inputs,
        )
        .await?;
        let mappers = plan.job.options.mappers;
        if let Some((soft, hard)) = crate::limits::nofile() {
            check_descriptors(mappers, &plan, sources.parallel_downloads, soft, hard)?;
        }
        let output = target.as_ref().map(|t| t.local.clone());
        Ok(RunSettings {
            job,
            plan,
            output,
            resume: args.resume,
            sources,
            target,
            notify: crate::notify::NotifySettings::from_env(
                args.notify.notify_email.clone(),
                args.notify.notify_url.clone(),
                None,
            ),
        })
    }
}

/// Refuses, before any work, a job whose tasks at once cannot all hold their pipes and
/// files open under the descriptor limit (`soft`, already raised to the hard limit).
fn check_descriptors(
    mappers: usize,
    plan: &crate::plan::Plan,
    parallel_downloads: usize,
    soft: u64,
    hard: u64,
) -> Result<(), UsageError> {
    let remote = plan
        .map_tasks
        .iter()
        .flat_map(|t| &t.inputs)
        .any(|i| i.url.is_some());
    let slots = mappers.min(plan.map_tasks.len()).max(1);
    let need = crate::limits::DescriptorNeed::of(
        slots,
        if remote { parallel_downloads } else { 0 },
        plan.map_tasks.len(),
        plan.reducers,
    );
    if need.total <= soft {
        return Ok(());
    }
    let fit = need.max_slots(soft);
    let advice = if fit >= 1 {
        format!("use --mappers {fit} or raise the limit (ulimit -n)")
    } else {
        "raise the limit (ulimit -n)".to_string()
    };
    Err(UsageError(format!(
        "--mappers {mappers}: {} map tasks at once and {} reduce tasks at once need about {} file descriptors ({} per map task, {} per reduce task, {} for polymr itself), but the limit is {soft} (hard limit {hard}); {advice}",
        need.slots, need.reduce_slots, need.total, need.per_map, need.per_reduce, need.base,
    )))
}

/// Builds how remote inputs and outputs are reached. S3 is set up only when something
/// asks for it (an `s3://` argument, a bucket, an endpoint, or CREDENTIALS), so a purely
/// local job never touches the network.
pub async fn sources(
    remote: &crate::cli::RemoteArgs,
    args: &[String],
    outputs: &[&std::path::Path],
    default_parallel: usize,
) -> anyhow::Result<crate::input::Sources> {
    use crate::input::{remote::RetryPolicy, s3, Sources};
    let credentials = crate::credentials::from_env(remote.private_key.as_deref())?;
    let endpoint = remote
        .s3_endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    let bucket = remote
        .bucket
        .clone()
        .or_else(|| credentials.as_ref().map(|_| s3::DEFAULT_BUCKET.to_string()));
    let wants_s3 = bucket.is_some()
        || endpoint.is_some()
        || args.iter().any(|a| a.starts_with("s3://"))
        || outputs
            .iter()
            .any(|o| o.to_string_lossy().starts_with("s3://"));
    let mut policy = RetryPolicy {
        retries: remote.download_retries,
        ..RetryPolicy::default()
    };
    if let Some(ms) = std::env::var("POLYMR_READ_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        // For tests that stall a connection on purpose.
        policy.read_timeout = std::time::Duration::from_millis(ms);
    }
    let s3 = if wants_s3 {
        let opts = s3::S3Options {
            path_style: endpoint.is_some(),
            endpoint,
            region: credentials.as_ref().and_then(|c| c.region.clone()),
            credentials: credentials.as_ref().map(|c| {
                (
                    c.access_key_id.clone(),
                    c.secret_access_key.clone(),
                    c.session_token.clone(),
                )
            }),
            attempt_timeout: Some(policy.read_timeout),
        };
        Some(s3::client(&opts).await)
    } else {
        None
    };
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(policy.read_timeout)
        .build()
        .context("failed to set up the HTTP client")?;
    Ok(Sources {
        s3,
        http: Some(http),
        bucket,
        policy,
        parallel_downloads: remote.parallel_downloads.unwrap_or(default_parallel).max(1),
        keep_downloads: remote.keep_downloads.then(|| PathBuf::from("s3")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_memory_is_bounded_by_the_machine() {
        let gib = 1u64 << 30;
        assert!(check_sort_memory("1G", 1 << 30, Some(8 * gib)).is_ok());
        let e = check_sort_memory("16G", 16 << 30, Some(8 * gib)).expect_err("too big");
        assert!(e.0.contains("16G") && e.0.contains("8.0 GiB"), "{}", e.0);
        assert!(check_sort_memory("512K", 512 << 10, Some(8 * gib)).is_err());
        assert!(check_sort_memory("16G", 16 << 30, None).is_ok());
    }

    #[test]
    fn counts_are_bounded() {
        assert!(check_count("--reducers", 0, 10).is_err());
        assert!(check_count("--reducers", 10, 10).is_ok());
        let e = check_count("--reducers", 4_000_000_000, 10).expect_err("too many");
        assert!(e.0.contains("4000000000"), "{}", e.0);
    }
}
