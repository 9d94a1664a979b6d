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
