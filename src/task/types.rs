//! What every task shares, map or reduce: the report it starts from, and the clock.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::config::JobConfig;
use crate::process::{ChildCommand, TaskEnv};
use crate::report::{ChildReport, TaskReport, TaskStatus};

pub fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

pub fn new_report(
    kind: &str,
    job: &JobConfig,
    env: &TaskEnv,
    output: PathBuf,
    command: &ChildCommand,
) -> TaskReport {
    TaskReport {
        child: Some(ChildReport {
            command: command.program_display(),
            exit: None,
            stderr_tail: Vec::new(),
        }),
        ..new_report_without_child(kind, job, env, output)
    }
}

/// The report of an attempt that could not start.
pub fn failed_report(
    kind: &str,
    job: &JobConfig,
    env: &TaskEnv,
    output: PathBuf,
    error: String,
) -> TaskReport {
    let mut r = TaskReport {
        child: None,
        ..new_report_without_child(kind, job, env, output)
    };
    r.error = Some(error);
    r
}

pub fn new_report_without_child(
    kind: &str,
    job: &JobConfig,
    env: &TaskEnv,
    output: PathBuf,
) -> TaskReport {
    TaskReport {
        polymr_version: env!("CARGO_PKG_VERSION").to_string(),
        kind: kind.to_string(),
        job_id: env.job_id.clone(),
        attempt_id: env.attempt_id.clone(),
        status: TaskStatus::Failed,
        error: None,
        config: job.path.clone(),
        output,
        published: false,
        child: None,
        inputs: Vec::new(),
        totals: Default::default(),
        invalid_output: Default::default(),
        counters: Default::default(),
        counters_dropped: 0,
        status_message: None,
        started_at_unix_ms: unix_ms(),
        duration_ms: 0,
        driver_peak_rss_bytes: 0,
        notifications: None,
    }
}

/// A task report saved in a work directory.
pub fn report_from_json(v: &serde_json::Value) -> Option<TaskReport> {
    serde_json::from_value(v.clone()).ok()
}
