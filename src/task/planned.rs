//! One attempt of one task of a plan, by id: THE entry point. The local executor calls it
//! in-process; `polymr task` calls it for an outside scheduler (a shell loop, Spark,
//! Taskcluster). It reads its inputs and writes its outcome through the plan's
//! [`ShuffleLayout`], so whoever runs the next task finds them by name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{
    failed_report, run_map_task, run_reduce_task, MapOutput, MapTask, ReduceInput, ReduceTask,
    ShuffleSpec, TaskError,
};
use crate::config::JobConfig;
use crate::input::Sources;
use crate::output::write_atomic;
use crate::plan::{attempt_id, MapOutcome, MapTaskPlan, Plan, ShuffleLayout, TaskKind};
use crate::process::{ChildCommand, Helpers, TaskEnv};
use crate::report::{TaskReport, TaskStatus};
use crate::shuffle::SortConfig;

/// What every task of one job shares while it runs.
pub struct TaskContext<'a> {
    pub plan: &'a Plan,
    pub job: &'a JobConfig,
    pub layout: ShuffleLayout,
    /// Built once per job: it is the same for every map task.
    pub combiner: Option<Arc<ChildCommand>>,
    /// Written once per job, shared by every child.
    pub helpers: Helpers,
    pub sources: Sources,
    pub cancel: CancellationToken,
    /// A reduce task's runs come from this [`crate::plan::RunsManifest`] (Spark's shuffle
    /// delivered them) instead of the map outcomes under the work root.
    pub runs_from: Option<PathBuf>,
}

/// A task of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskRef {
    Map(usize),
    Reduce(u32),
}

/// One attempt's report and what it left, or why it failed.
pub struct Attempted {
    pub report: TaskReport,
    pub result: Result<Finished, TaskError>,
}

pub enum Finished {
    /// Complete in its directory under the layout.
    Map { dir: PathBuf, outcome: MapOutcome },
    /// Published at the layout's reduce output, its report beside it.
    Reduce { output: PathBuf },
}

impl TaskRef {
    /// `map-00003` or `reduce-00001`, as the plan names them.
    pub fn find(plan: &Plan, id: &str) -> Result<TaskRef, TaskError> {
        if let Some(t) = plan.map_tasks.iter().find(|t| t.id == id) {
            return Ok(TaskRef::Map(t.index));
        }
        if let Some(r) = plan.reduce_tasks.iter().find(|r| r.id == id) {
            return Ok(TaskRef::Reduce(r.partition));
        }
        Err(TaskError::BadPlan(format!(
            "the plan has no task `{id}` (it has map-00000..map-{:05} and {} reduce tasks)",
            plan.map_tasks.len().saturating_sub(1),
            plan.reduce_tasks.len()
        )))
    }

    pub fn id(&self, plan: &Plan) -> String {
        match *self {
            TaskRef::Map(i) => plan.map_tasks[i].id.clone(),
            TaskRef::Reduce(p) => crate::plan::reduce_id(p),
        }
    }
}

impl TaskContext<'_> {
    /// The combiner every map task of `job` runs, when it has one.
    pub fn combiner_of(
        plan: &Plan,
        job: &JobConfig,
        helpers: &Helpers,
    ) -> Result<Option<Arc<ChildCommand>>, TaskError> {
        let Some(c) = &job.combiner else {
            return Ok(None);
        };
        let env = TaskEnv {
            job_id: plan.job.id.clone(),
            ..TaskEnv::default()
        };
        ChildCommand::for_step(job, c, &env, helpers)
            .map(|c| Some(Arc::new(c)))
            .map_err(|e| TaskError::BadPlan(format!("cannot run the combiner: {e}")))
    }
}

/// Runs attempt `attempt` of `task`.
/// A failed attempt leaves its report under the layout, so that whoever finishes the job
/// (`polymr finish`, after tasks ran elsewhere) reports every attempt, not only the last.
pub async fn run_attempt(ctx: &TaskContext<'_>, task: TaskRef, attempt: u32) -> Attempted {
    let attempted = match task {
        TaskRef::Map(i) => match ctx.plan.map_tasks.get(i) {
            Some(t) => map_attempt(ctx, t, attempt).await,
            None => return not_in_plan(ctx, "map", format!("map task {i}")),
        },
        TaskRef::Reduce(p) if p < ctx.plan.reducers => reduce_attempt(ctx, p, attempt).await,
        TaskRef::Reduce(p) => return not_in_plan(ctx, "reduce", format!("reduce task {p}")),
    };
    let path = ctx
        .layout
        .failed_attempt_report(&task.id(ctx.plan), attempt);
    if attempted.result.is_ok() {
        // A rerun of the same attempt number replaces its failure.
        let _ = std::fs::remove_file(&path);
    } else {
        let kept = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                let json = serde_json::to_vec_pretty(&attempted.report)?;
                write_atomic(&path, &json)
            });
        if let Err(e) = kept {
            tracing::warn!(path = %path.display(), "failed to keep a failed attempt's report: {e}");
        }
    }
    attempted
}

fn not_in_plan(ctx: &TaskContext<'_>, kind: &str, what: String) -> Attempted {
    let e = TaskError::BadPlan(format!("the plan has no {what}"));
    let env = TaskEnv {
        job_id: ctx.plan.job.id.clone(),
        ..TaskEnv::default()
    };
    Attempted {
        report: failed_report(kind, ctx.job, &env, PathBuf::new(), e.to_string()),
        result: Err(e),
    }
}

async fn map_attempt(ctx: &TaskContext<'_>, t: &MapTaskPlan, attempt: u32) -> Attempted {
    let opts = &ctx.plan.job.options;
    let dir = ctx.layout.map_attempt_dir(&t.id, attempt);
    let done_dir = ctx.layout.map_done_dir(&t.id);
    let _ = std::fs::remove_dir_all(&dir);
    let env = TaskEnv {
        job_id: ctx.plan.job.id.clone(),
        attempt_id: attempt_id(&ctx.plan.job.id, TaskKind::Map, t.index, attempt),
        partition: None,
        input_file: match t.inputs.as_slice() {
            [one] => Some(one.name.clone()),
            _ => None,
        },
    };
    let command = match ChildCommand::for_step(ctx.job, &ctx.job.mapper, &env, &ctx.helpers) {
        Ok(c) => c,
        Err(e) => {
            let e = TaskError::BadPlan(e.to_string());
            return Attempted {
                report: failed_report("map", ctx.job, &env, dir, e.to_string()),
                result: Err(e),
            };
        }
    };
    let output = if ctx.plan.reducers == 0 {
        MapOutput::File(ShuffleLayout::map_output_in(&dir))
    } else {
        MapOutput::Shuffle(ShuffleSpec {
            sort: SortConfig {
                budget: opts.sort_budget,
                separator: ctx.job.key_separator.clone(),
                partitions: ctx.plan.reducers,
                dir: dir.clone(),
                name: t.id.clone(),
            },
            combiner: ctx.combiner.clone(),
        })
    };
    let outcome = run_map_task(MapTask {
        job: ctx.job,
        command: &command,
        inputs: t.inputs.iter().map(|i| i.to_input()).collect(),
        output,
        env,
        fail_fast: opts.fail_fast,
        max_record_size: opts.max_record_size,
        cancel: ctx.cancel.clone(),
        sources: ctx.sources.clone(),
    })
    .await;
    let mut report = outcome.report;
    let result = match outcome.error {
        Some(e) => Err(e),
        None => {
            let saved = outcome
                .runs
                .as_ref()
                .map(MapOutcome::of_runs)
                .unwrap_or_default();
            match mark_done(&dir, &done_dir, &report, &saved) {
                Ok(()) => Ok(Finished::Map {
                    dir: done_dir,
                    outcome: saved,
                }),
                Err(e) => {
                    let e = TaskError::PublishFailed(format!(
                        "failed to mark the task complete: {e:#}"
                    ));
                    report.status = TaskStatus::Failed;
                    report.error = Some(e.to_string());
                    Err(e)
                }
            }
        }
    };
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Attempted { report, result }
}

/// Writes the report, the outcome and the marker into the attempt directory, then renames
/// it into place: a task directory either is complete or does not exist.
fn mark_done(
    dir: &Path,
    done: &Path,
    report: &TaskReport,
    outcome: &MapOutcome,
) -> anyhow::Result<()> {
    use anyhow::Context;
    write_atomic(
        &ShuffleLayout::report_in(dir),
        &serde_json::to_vec_pretty(report)?,
    )?;
    write_atomic(
        &ShuffleLayout::outcome_in(dir),
        &serde_json::to_vec(outcome)?,
    )?;
    write_atomic(&ShuffleLayout::success_in(dir), b"")?;
    if done.exists() {
        std::fs::remove_dir_all(done)
            .with_context(|| format!("failed to remove a stale `{}`", done.display()))?;
    }
    std::fs::rename(dir, done).with_context(|| {
        format!(
            "failed to rename `{}` to `{}`",
            dir.display(),
            done.display()
        )
    })?;
    Ok(())
}

/// A complete map task's report and outcome, or `None` when it is not complete.
pub fn load_map_done(layout: &ShuffleLayout, id: &str) -> Option<(TaskReport, MapOutcome)> {
    let dir = layout.map_done_dir(id);
    if !ShuffleLayout::success_in(&dir).is_file() {
        return None;
    }
    let report =
        serde_json::from_slice(&std::fs::read(ShuffleLayout::report_in(&dir)).ok()?).ok()?;
    let outcome =
        serde_json::from_slice(&std::fs::read(ShuffleLayout::outcome_in(&dir)).ok()?).ok()?;
    Some((report, outcome))
}

/// The runs of partition `p` of every map task, in task order, as their outcomes say.
fn runs_of(ctx: &TaskContext<'_>, p: u32) -> Result<Vec<PathBuf>, TaskError> {
    let mut runs = Vec::new();
    for t in &ctx.plan.map_tasks {
        let Some((_, outcome)) = load_map_done(&ctx.layout, &t.id) else {
            return Err(TaskError::BadPlan(format!(
                "{} is not complete in `{}`: run it before the reduce tasks",
                t.id,
                ctx.layout.root().display()
            )));
        };
        let dir = ctx.layout.map_done_dir(&t.id);
        if let Some(names) = outcome.runs.get(p as usize) {
            runs.extend(names.iter().map(|n| dir.join(n)));
        }
    }
    Ok(runs)
}

/// The runs a manifest names for partition `p`.
fn runs_in_manifest(manifest: &Path, p: u32) -> Result<Vec<PathBuf>, TaskError> {
    let (m, runs) = crate::plan::RunsManifest::read(manifest).map_err(TaskError::BadPlan)?;
    if m.partition != p {
        return Err(TaskError::BadPlan(format!(
            "`{}` holds the runs of partition {}, not of {}",
            manifest.display(),
            m.partition,
            crate::plan::reduce_id(p)
        )));
    }
    Ok(runs)
}

async fn reduce_attempt(ctx: &TaskContext<'_>, p: u32, attempt: u32) -> Attempted {
    let out = ctx.layout.reduce_output(p);
    let env = TaskEnv {
        job_id: ctx.plan.job.id.clone(),
        attempt_id: attempt_id(&ctx.plan.job.id, TaskKind::Reduce, p as usize, attempt),
        partition: Some(p as usize),
        input_file: None,
    };
    let runs = match &ctx.runs_from {
        Some(manifest) => runs_in_manifest(manifest, p),
        None => runs_of(ctx, p),
    };
    let prepared = runs.and_then(|runs| {
        let reducer = ctx
            .job
            .reducer()
            .map_err(|e| TaskError::BadPlan(e.to_string()))?;
        let command = ChildCommand::for_step(ctx.job, reducer, &env, &ctx.helpers)
            .map_err(|e| TaskError::BadPlan(e.to_string()))?;
        let dir = ctx.layout.reduce_dir();
        std::fs::create_dir_all(&dir).map_err(|e| {
            TaskError::PublishFailed(format!("failed to create `{}`: {e}", dir.display()))
        })?;
        Ok((runs, command))
    });
    let (runs, command) = match prepared {
        Ok(r) => r,
        Err(e) => {
            return Attempted {
                report: failed_report("reduce", ctx.job, &env, out, e.to_string()),
                result: Err(e),
            }
        }
    };
    let outcome = run_reduce_task(ReduceTask {
        job: ctx.job,
        command: &command,
        input: ReduceInput::Runs {
            label: format!("{} ({} runs)", crate::plan::reduce_id(p), runs.len()),
            runs,
        },
        output: out.clone(),
        env,
        fail_fast: ctx.plan.job.options.fail_fast,
        cancel: ctx.cancel.clone(),
        delete_runs: false,
    })
    .await;
    let mut report = outcome.report;
    let result = match outcome.error {
        Some(e) => Err(e),
        None => {
            let path = ctx.layout.reduce_report(p);
            let written = serde_json::to_vec_pretty(&report)
                .map_err(std::io::Error::other)
                .and_then(|json| write_atomic(&path, &json));
            match written {
                Ok(()) => Ok(Finished::Reduce { output: out }),
                Err(e) => {
                    let e = TaskError::PublishFailed(format!(
                        "failed to write `{}`: {e}",
                        path.display()
                    ));
                    report.status = TaskStatus::Failed;
                    report.error = Some(e.to_string());
                    Err(e)
                }
            }
        }
    };
    Attempted { report, result }
}
