//! The plan: the contract between whoever plans a job and whoever runs it. It holds
//! everything an executor needs (the job's config contents and options, the map tasks, the
//! reduce tasks, the work root and the outputs) and nothing it must invent, so the local
//! executor, `polymr task` in a container, or Spark all run the same plan.
//!
//! `batch` turns inputs into map tasks; `layout` names every file under the work root;
//! `taskcluster` writes a plan as the original's task graph; `filter` and `select` choose the inputs with a `Filter.json`.

mod batch;
pub mod filter;
mod layout;
pub mod select;
pub mod taskcluster;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use batch::{batch, batch_capped, Batches};
pub use filter::{Filter, FilterError, KeyLayout};
pub use layout::{
    attempt_id, combined_run_name, map_id, reduce_id, run_name, ShuffleLayout, TaskKind, MARKER,
    PLAN_FILE, SUCCESS,
};
pub use select::{choose_inputs, NothingMatched, Selection};

use crate::input::{Input, Location};

pub const PLAN_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    pub job: JobSpec,
    pub map_tasks: Vec<MapTaskPlan>,
    /// One per partition, in partition order; none for a map-only job.
    pub reduce_tasks: Vec<ReduceTaskPlan>,
    /// Reduce partitions; 0 for a map-only job.
    pub reducers: u32,
    pub total_bytes: u64,
    pub total_files: usize,
    /// The work root every task reads and writes under (see [`ShuffleLayout`]); fixed by
    /// `plan --work`, or by `run` when it makes its work directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<PathBuf>,
    /// The job's single result (every partition concatenated in order).
    pub output: Option<PathBuf>,
    /// One file per partition, `DIR/part-NNNNN`.
    pub output_dir: Option<PathBuf>,
}

/// What every task of the job shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub id: String,
    /// Where the config was read; relative script paths in it are resolved from its directory.
    pub config: PathBuf,
    /// The config as it was when the job was planned: a task never reads a changed one.
    pub config_contents: String,
    pub config_sha256: String,
    pub options: JobOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOptions {
    /// Map tasks run at once.
    pub mappers: usize,
    /// Sort memory of one map task: the job's `--sort-memory` shared by those at once.
    pub sort_budget: usize,
    /// A child silent this long fails its attempt; 0 is off.
    pub task_timeout_ms: u64,
    /// Times a failed task is retried before the job fails.
    pub retries: u32,
    pub max_record_size: usize,
    pub fail_fast: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedInput {
    pub name: String,
    /// A local path, when the input is a local file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// `s3://…` or `http(s)://…`, when the input is remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Why the input cannot be read, when planning already knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapTaskPlan {
    pub index: usize,
    pub id: String,
    pub bytes: u64,
    pub inputs: Vec<PlannedInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReduceTaskPlan {
    pub partition: u32,
    pub id: String,
}

/// What a finished map task left in its directory, saved there beside its report: the
/// reducers and `--resume` read it, and never find runs again by listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapOutcome {
    /// Run file names, inside the task's directory, per partition in merge order.
    pub runs: Vec<Vec<String>>,
    pub shuffle: crate::shuffle::ShuffleCounters,
}

impl Plan {
    /// Names local inputs and outputs absolutely, so that the plan's tasks and `finish` run
    /// from any directory; an input's name stays as given, for the reports.
    pub fn name_paths_absolutely(&mut self) -> anyhow::Result<()> {
        use anyhow::Context;
        let paths = self.map_tasks.iter_mut().flat_map(|t| &mut t.inputs);
        for path in paths.filter_map(|i| i.path.as_mut()) {
            *path = std::path::absolute(&*path)
                .with_context(|| format!("input `{}`", path.display()))?;
        }
        for out in [&mut self.output, &mut self.output_dir]
            .into_iter()
            .flatten()
        {
            if !out.to_string_lossy().starts_with("s3://") {
                *out = std::path::absolute(&*out)
                    .with_context(|| format!("output `{}`", out.display()))?;
            }
        }
        Ok(())
    }
}

impl MapOutcome {
    /// The outcome of `runs` written into one directory.
    pub fn of_runs(runs: &crate::shuffle::Runs) -> MapOutcome {
        let name = |p: &PathBuf| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        MapOutcome {
            runs: runs
                .by_partition
                .iter()
                .map(|part| part.iter().map(name).collect())
                .collect(),
            shuffle: runs.counters.clone(),
        }
    }
}

/// The runs of one reduce partition gathered by someone else (Spark's shuffle), instead of
/// the map outcomes under the work root: `polymr task --runs-from MANIFEST`. Paths are
/// relative to the manifest's directory, in merge order (map task, then spill), the order
/// in which [`MapOutcome`]s list them, so ties between equal keys break as in `polymr run`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunsManifest {
    pub partition: u32,
    pub runs: Vec<PathBuf>,
}

impl RunsManifest {
    /// Reads a manifest and resolves its runs against its directory.
    pub fn read(path: &std::path::Path) -> Result<(RunsManifest, Vec<PathBuf>), String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("failed to read the runs manifest `{}`: {e}", path.display()))?;
        let m: RunsManifest = serde_json::from_slice(&bytes)
            .map_err(|e| format!("`{}` is not a runs manifest: {e}", path.display()))?;
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        let mut runs = Vec::with_capacity(m.runs.len());
        for r in &m.runs {
            // A manifest names files beside it; anything else is a mistake, not a run.
            if r.is_absolute()
                || r.components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(format!(
                    "`{}`: run `{}` is not a plain path inside the manifest's directory",
                    path.display(),
                    r.display()
                ));
            }
            runs.push(base.join(r));
        }
        Ok((m, runs))
    }
}

impl PlannedInput {
    pub fn to_input(&self) -> Input {
        let location = match (&self.path, &self.url, &self.missing) {
            (_, _, Some(why)) => Location::Missing(why.clone()),
            (Some(p), _, None) => Location::Local(p.clone()),
            (None, Some(url), None) => return Input::from_url(&self.name, url, Some(self.size)),
            (None, None, None) => Location::Missing(format!("{}: no location", self.name)),
        };
        Input {
            name: self.name.clone(),
            location,
            size: Some(self.size),
        }
    }
}

impl JobSpec {
    pub fn new(id: String, config: PathBuf, contents: String, options: JobOptions) -> JobSpec {
        let config_sha256 = format!("{:x}", Sha256::digest(contents.as_bytes()));
        JobSpec {
            id,
            config,
            config_contents: contents,
            config_sha256,
            options,
        }
    }

    pub fn task_timeout(&self) -> Option<std::time::Duration> {
        (self.options.task_timeout_ms > 0)
            .then(|| std::time::Duration::from_millis(self.options.task_timeout_ms))
    }
}

/// A plan file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("failed to read the plan `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a polymr plan: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{path}` is a version {found} plan; this polymr runs version {PLAN_VERSION}: plan the job again")]
    Version { path: PathBuf, found: u32 },
    #[error("the plan's config does not match its config_sha256: the plan was edited")]
    ConfigChanged,
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl JobSpec {
    /// The job's config, from the contents the plan carries (not the file, which may have
    /// changed since), with the plan's task timeout.
    pub fn load_config(&self) -> Result<crate::config::JobConfig, PlanError> {
        if format!("{:x}", Sha256::digest(self.config_contents.as_bytes())) != self.config_sha256 {
            return Err(PlanError::ConfigChanged);
        }
        let mut job = crate::config::JobConfig::parse(&self.config, &self.config_contents)?;
        job.task_timeout = self.task_timeout();
        Ok(job)
    }
}

impl Plan {
    /// Reads a plan that `polymr plan --format json` wrote.
    pub fn read(path: &std::path::Path) -> Result<Plan, PlanError> {
        let bytes = std::fs::read(path).map_err(|source| PlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let plan: Plan = serde_json::from_slice(&bytes).map_err(|source| PlanError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if plan.version != PLAN_VERSION {
            return Err(PlanError::Version {
                path: path.to_path_buf(),
                found: plan.version,
            });
        }
        Ok(plan)
    }

    /// A job's plan: its map tasks from `batches`, one reduce task per partition.
    pub fn new(job: JobSpec, batches: Batches, reducers: u32) -> Plan {
        Plan {
            version: PLAN_VERSION,
            job,
            map_tasks: batches.map_tasks,
            reduce_tasks: (0..reducers)
                .map(|partition| ReduceTaskPlan {
                    partition,
                    id: reduce_id(partition),
                })
                .collect(),
            reducers,
            total_bytes: batches.total_bytes,
            total_files: batches.total_files,
            work: None,
            output: None,
            output_dir: None,
        }
    }

    /// The names under the work root, once it is fixed.
    pub fn layout(&self) -> Option<ShuffleLayout> {
        self.work.as_ref().map(ShuffleLayout::new)
    }

    /// Whether `other` is the same work: same tasks over the same inputs. A resumed job may
    /// differ in id or options, never in what its finished tasks produced.
    pub fn same_work(&self, other: &Plan) -> bool {
        self.map_tasks == other.map_tasks && self.reducers == other.reducers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_survives_json() {
        let inputs: Vec<Input> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, n)| Input {
                name: n.to_string(),
                location: Location::Local(PathBuf::from(n)),
                size: Some(10 * (i as u64 + 1)),
            })
            .collect();
        let job = JobSpec::new(
            "job_1_00001".into(),
            PathBuf::from("c.yml"),
            "mapper: m.py\n".into(),
            JobOptions {
                mappers: 2,
                sort_budget: 1 << 20,
                task_timeout_ms: 0,
                retries: 2,
                max_record_size: 1 << 26,
                fail_fast: false,
            },
        );
        let mut plan = Plan::new(job, batch(&inputs, 2, 1 << 30), 3);
        plan.work = Some(PathBuf::from("/w"));
        plan.output = Some(PathBuf::from("out.txt"));
        assert_eq!(plan.reduce_tasks.len(), 3);
        assert_eq!(plan.reduce_tasks[2].id, "reduce-00002");
        let json = serde_json::to_string_pretty(&plan).expect("serialize");
        let back: Plan = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, plan);
        assert_eq!(
            serde_json::to_string_pretty(&back).expect("serialize"),
            json
        );
    }

    /// Runs are named in the outcome per partition, in the order the sorter wrote them
    /// (spill order): the reducers merge them in that order and never list a directory.
    #[test]
    fn an_outcome_names_each_partitions_runs_in_spill_order() {
        let dir = PathBuf::from("/w/map-00000.attempt-0");
        let runs = crate::shuffle::Runs {
            by_partition: vec![
                vec![dir.join("map-00000-spill0000-part00000")],
                vec![
                    dir.join("map-00000-spill0000-part00001"),
                    dir.join("map-00000-spill0001-part00001"),
                ],
            ],
            counters: Default::default(),
        };
        let o = MapOutcome::of_runs(&runs);
        assert_eq!(
            o.runs,
            vec![
                vec!["map-00000-spill0000-part00000".to_string()],
                vec![
                    "map-00000-spill0000-part00001".to_string(),
                    "map-00000-spill0001-part00001".to_string()
                ]
            ]
        );
    }
}
