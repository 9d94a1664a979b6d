//! Command line + `analysis-tools.yml` + environment → one resolved struct per command.
//! Everything that can be wrong with the user's setup is found here, before any work.

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::MapArgs;
use crate::config::JobConfig;
use crate::input::{expand_local, Input};
use crate::process::{ChildCommand, TaskEnv};

pub struct MapSettings {
    pub job: JobConfig,
    pub command: ChildCommand,
    pub inputs: Vec<Input>,
    pub output: PathBuf,
    pub fail_fast: bool,
    pub env: TaskEnv,
}

impl MapSettings {
    pub fn resolve(args: MapArgs) -> anyhow::Result<MapSettings> {
        let path = JobConfig::locate(args.config.config.as_deref())?;
        let job = JobConfig::load(&path)?;
        let inputs = expand_local(&args.inputs);
        let job_id = job_id();
        let env = TaskEnv {
            attempt_id: format!("attempt_{}_m_000000_0", job_id.trim_start_matches("job_")),
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
            output: args.output,
            fail_fast: args.fail_fast,
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
    if n < (1 << 20) {
        return Err(crate::exit::UsageError("--sort-memory must be at least 1MiB".into()).into());
    }
    Ok(n)
}

fn load_job(config: Option<&std::path::Path>) -> anyhow::Result<JobConfig> {
    let path = JobConfig::locate(config)?;
    Ok(JobConfig::load(&path)?)
}

pub struct ReduceSettings {
    pub job: JobConfig,
    pub command: ChildCommand,
    pub inputs: Vec<Input>,
    pub output: PathBuf,
    pub sort_memory: usize,
    pub fail_fast: bool,
    pub env: TaskEnv,
}

impl ReduceSettings {
    pub fn resolve(args: crate::cli::ReduceArgs) -> anyhow::Result<ReduceSettings> {
        let job = load_job(args.config.config.as_deref())?;
        let reducer = job.reducer()?.clone();
        let job_id = job_id();
        let env = TaskEnv {
            attempt_id: format!("attempt_{}_r_000000_0", job_id.trim_start_matches("job_")),
            job_id,
            partition: Some(0),
            input_file: None,
        };
        let command = ChildCommand::for_step(&job, &reducer, &env)
            .with_context(|| format!("cannot run the reducer of `{}`", job.path.display()))?;
        Ok(ReduceSettings {
            inputs: expand_local(&args.inputs),
            sort_memory: sort_memory(&args.sort_memory)?,
            job,
            command,
            output: args.output,
            fail_fast: args.fail_fast,
            env,
        })
    }
}

pub struct RunSettings {
    pub job: JobConfig,
    pub plan: crate::plan::Plan,
    pub mappers: usize,
    pub output: Option<PathBuf>,
    pub output_dir: Option<PathBuf>,
    pub sort_memory: usize,
    pub retries: u32,
    pub resume: Option<PathBuf>,
    pub fail_fast: bool,
    pub job_id: String,
}

fn shape(shape: &crate::cli::JobShapeArgs) -> anyhow::Result<(usize, u64)> {
    let mappers = shape.mappers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    if mappers == 0 {
        return Err(crate::exit::UsageError("--mappers must be at least 1".into()).into());
    }
    let batch = crate::shuffle::parse_size(&shape.max_batch_size)
        .map_err(|e| crate::exit::UsageError(format!("--max-batch-size: {e}")))?
        as u64;
    Ok((mappers, batch))
}

/// Plans the job behind `run` and `plan`, checking every step's command before any work.
pub fn plan_job(
    config: Option<&std::path::Path>,
    shape_args: &crate::cli::JobShapeArgs,
    inputs: &[String],
) -> anyhow::Result<(JobConfig, crate::plan::Plan, usize)> {
    let job = load_job(config)?;
    let (mappers, max_batch_bytes) = shape(shape_args)?;
    if shape_args.reducers == 0 {
        return Err(crate::exit::UsageError("--reducers must be at least 1".into()).into());
    }
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
    let inputs = expand_local(inputs);
    let plan = crate::plan::plan(
        job.path.clone(),
        &inputs,
        crate::plan::PlanOptions {
            mappers,
            max_batch_bytes,
            reducers,
        },
    );
    Ok((job, plan, mappers))
}

impl RunSettings {
    pub fn resolve(args: crate::cli::RunArgs) -> anyhow::Result<RunSettings> {
        let (job, plan, mappers) =
            plan_job(args.config.config.as_deref(), &args.shape, &args.inputs)?;
        let output = match (&args.output, &args.output_dir) {
            (None, None) => Some(PathBuf::from("result.txt")),
            (o, _) => o.clone(),
        };
        Ok(RunSettings {
            job,
            plan,
            mappers,
            output,
            output_dir: args.output_dir,
            sort_memory: sort_memory(&args.sort_memory)?,
            retries: args.retries,
            resume: args.resume,
            fail_fast: args.fail_fast,
            job_id: job_id(),
        })
    }
}
