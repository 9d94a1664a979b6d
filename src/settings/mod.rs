//! Command line + `analysis-tools.yml` + an environment snapshot -> one resolved struct per
//! command. Resolution is pure: it reads the config file and looks up interpreters, but makes
//! no client, lists nothing and writes nothing, so everything that can be wrong with the
//! user's setup is found here, before any work. `crate::prepare` does the I/O.

mod env;
mod remote;

use std::path::PathBuf;

use anyhow::Context;

use crate::config::JobConfig;
use crate::exit::UsageError;
use crate::process::{ChildCommand, TaskEnv};

pub use env::{EnvSnapshot, NotifyEnv};
pub use remote::RemoteSettings;

/// `polymr map`: one map task.
pub struct MapSettings {
    pub job: JobConfig,
    pub inputs: Vec<String>,
    /// `--filter`: the inputs are the files under `inputs` that it allows.
    pub filter: Option<PathBuf>,
    pub output: PathBuf,
    pub remote: RemoteSettings,
    pub fail_fast: bool,
    pub max_record_size: usize,
    pub env: TaskEnv,
}

impl MapSettings {
    pub fn resolve(args: crate::cli::MapArgs, env: &EnvSnapshot) -> anyhow::Result<MapSettings> {
        let path = JobConfig::locate(args.config.config.as_deref())?;
        let mut job = JobConfig::load(&path)?;
        job.task_timeout = task_timeout(&args.limits.task_timeout)?;
        ChildCommand::check(&job.mapper)
            .with_context(|| format!("cannot run the mapper of `{}`", path.display()))?;
        let max_record_size = max_record_size(&args.limits)?;
        let remote = RemoteSettings::resolve(&args.remote, env, &args.inputs, &[&args.output], 3);
        let job_id = job_id(env);
        let task_env = TaskEnv {
            attempt_id: crate::plan::attempt_id(&job_id, crate::plan::TaskKind::Map, 0, 0),
            job_id,
            partition: None,
            input_file: None,
        };
        Ok(MapSettings {
            job,
            inputs: args.inputs,
            filter: args.select.filter,
            output: args.output,
            remote,
            fail_fast: args.fail_fast,
            max_record_size,
            env: task_env,
        })
    }
}

/// `polymr reduce`: one reduce task.
pub struct ReduceSettings {
    pub notify: crate::notify::NotifySettings,
    pub job: JobConfig,
    pub inputs: Vec<String>,
    pub output: PathBuf,
    pub remote: RemoteSettings,
    pub sort_memory: usize,
    pub fail_fast: bool,
    pub max_record_size: usize,
    pub env: TaskEnv,
}

impl ReduceSettings {
    pub fn resolve(
        args: crate::cli::ReduceArgs,
        env: &EnvSnapshot,
    ) -> anyhow::Result<ReduceSettings> {
        let mut job = JobConfig::load(&JobConfig::locate(args.config.config.as_deref())?)?;
        job.task_timeout = task_timeout(&args.limits.task_timeout)?;
        let reducer = job.reducer()?.clone();
        ChildCommand::check(&reducer)
            .with_context(|| format!("cannot run the reducer of `{}`", job.path.display()))?;
        let job_id = job_id(env);
        let task_env = TaskEnv {
            attempt_id: crate::plan::attempt_id(&job_id, crate::plan::TaskKind::Reduce, 0, 0),
            job_id,
            partition: Some(0),
            input_file: None,
        };
        let sort_memory = sort_memory(&args.sort_memory)?;
        let max_record_size = max_record_size(&args.limits)?;
        // Without arguments, the original's way: the artifacts of the map tasks it depends on.
        let inputs = if args.inputs.is_empty() {
            let ids = env
                .input_task_ids
                .as_deref()
                .ok_or_else(|| UsageError("no INPUT given and INPUT_TASK_IDS is not set".into()))?;
            let template = args.artifact_url.as_deref().ok_or_else(|| {
                UsageError("INPUT_TASK_IDS needs --artifact-url (or POLYMR_ARTIFACT_URL), e.g. https://queue/v1/task/{taskId}/artifacts/public/result.txt".into())
            })?;
            crate::input::http::artifact_urls(ids, template)
        } else {
            args.inputs
        };
        let remote = RemoteSettings::resolve(&args.remote, env, &inputs, &[&args.output], 20);
        Ok(ReduceSettings {
            notify: crate::notify::NotifySettings::resolve(
                args.notify.notify_email,
                args.notify.notify_url,
                args.artifact_url.as_deref(),
                &env.notify,
            ),
            inputs,
            sort_memory,
            job,
            output: args.output,
            remote,
            fail_fast: args.fail_fast,
            max_record_size,
            env: task_env,
        })
    }
}

/// A job (`run` and `plan`): everything its plan is made from, before any input is listed.
pub struct JobSettings {
    pub job: JobConfig,
    /// The config's text, as the plan carries it.
    pub config_contents: String,
    pub inputs: Vec<String>,
    /// `--filter`: the inputs are the files under `inputs` that it allows.
    pub filter: Option<PathBuf>,
    pub remote: RemoteSettings,
    pub mappers: usize,
    pub max_batch_bytes: u64,
    pub max_files_per_task: usize,
    /// Reduce partitions; 0 when the job has no reducer to run.
    pub reducers: u32,
    pub job_id: String,
    pub options: crate::plan::JobOptions,
    /// The whole job's sort memory, shared by the map tasks at once when planned.
    pub sort_memory: usize,
    pub output: Option<PathBuf>,
    pub output_dir: Option<PathBuf>,
}

impl JobSettings {
    pub fn resolve(
        config: Option<&std::path::Path>,
        shape_args: &crate::cli::JobShapeArgs,
        remote: &crate::cli::RemoteArgs,
        opts: &crate::cli::JobOptionArgs,
        select: &crate::cli::SelectArgs,
        inputs: &[String],
        env: &EnvSnapshot,
    ) -> anyhow::Result<JobSettings> {
        let path = JobConfig::locate(config)?;
        let (mut job, config_contents) = JobConfig::load_with_text(&path)?;
        let timeout = task_timeout(&opts.limits.task_timeout)?;
        job.task_timeout = timeout;
        let (mappers, max_batch_bytes) = shape(shape_args)?;
        check_count(
            "--reducers",
            u64::from(shape_args.reducers),
            u64::from(crate::limits::MAX_REDUCERS),
        )?;
        check_count(
            "--max-files-per-task",
            shape_args.max_files_per_task as u64,
            u64::from(u32::MAX),
        )?;
        let reducers = if check_steps(&job)? {
            shape_args.reducers
        } else {
            0
        };
        let output = requested_output(opts);
        let outputs: Vec<&std::path::Path> = output.iter().map(|p| p.as_path()).collect();
        let options = crate::plan::JobOptions {
            mappers,
            // Shared by the map tasks at once, once the plan knows how many run.
            sort_budget: 0,
            task_timeout_ms: timeout.map_or(0, |t| t.as_millis() as u64),
            retries: opts.retries,
            max_record_size: max_record_size(&opts.limits)?,
            fail_fast: opts.fail_fast,
        };
        Ok(JobSettings {
            remote: RemoteSettings::resolve(remote, env, inputs, &outputs, 3),
            job,
            config_contents,
            inputs: inputs.to_vec(),
            filter: select.filter.clone(),
            mappers,
            max_batch_bytes,
            max_files_per_task: shape_args.max_files_per_task,
            reducers,
            job_id: job_id(env),
            options,
            sort_memory: sort_memory(&opts.sort_memory)?,
            output,
            output_dir: opts.output_dir.clone(),
        })
    }
}

/// Checks every step's command before any work; whether the job has a reducer to run.
fn check_steps(job: &JobConfig) -> anyhow::Result<bool> {
    let at = || job.path.display();
    ChildCommand::check(&job.mapper)
        .with_context(|| format!("cannot run the mapper of `{}`", at()))?;
    if let Some(c) = &job.combiner {
        ChildCommand::check(c).with_context(|| format!("cannot run the combiner of `{}`", at()))?;
    }
    // The original form always names a reducer; a job runs it only if its script exists.
    match &job.reducer {
        Some(crate::config::StepRef::Ready(r)) => {
            ChildCommand::check(r)
                .with_context(|| format!("cannot run the reducer of `{}`", at()))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// `polymr run`: a job, and how this machine runs it.
pub struct RunSettings {
    pub job: JobSettings,
    pub resume: Option<PathBuf>,
    pub notify: crate::notify::NotifySettings,
}

impl RunSettings {
    pub fn resolve(args: crate::cli::RunArgs, env: &EnvSnapshot) -> anyhow::Result<RunSettings> {
        let job = JobSettings::resolve(
            args.config.config.as_deref(),
            &args.shape,
            &args.remote,
            &args.job,
            &args.select,
            &args.inputs,
            env,
        )?;
        Ok(RunSettings {
            job,
            resume: args.resume,
            notify: crate::notify::NotifySettings::resolve(
                args.notify.notify_email,
                args.notify.notify_url,
                None,
                &env.notify,
            ),
        })
    }
}

/// `POLYMR_JOB_ID` when a scheduler names the job, else one made from the clock and pid.
fn job_id(env: &EnvSnapshot) -> String {
    env.job_id.clone().unwrap_or_else(|| {
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
pub fn task_timeout(s: &str) -> anyhow::Result<Option<std::time::Duration>> {
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

/// `--output`, or `result.txt` when neither output flag is given.
pub fn requested_output(opts: &crate::cli::JobOptionArgs) -> Option<PathBuf> {
    match (&opts.output, &opts.output_dir) {
        (None, None) => Some(PathBuf::from("result.txt")),
        (o, _) => o.clone(),
    }
}

/// Refuses, before any work, a job whose tasks at once cannot all hold their pipes and
/// files open under the descriptor limit (`soft`, already raised to the hard limit).
pub fn check_descriptors(
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
