//! The shuffle layout: the one place that names what a job keeps under its work root (the
//! plan, the marker, map task directories and their attempts, `_SUCCESS`, task reports and
//! outcomes, sorted runs, reduce outputs) and the attempt ids children see. Executors, the
//! work-directory cleanup and `polymr task` all ask it, so the names cannot drift apart.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Marks a map task's directory as complete; written last, inside the attempt directory,
/// which is then renamed into place.
pub const SUCCESS: &str = "_SUCCESS";
/// Written by polymr into every work directory it makes: `--resume` reuses only a directory
/// that holds it (or an empty one), and a successful job deletes only what polymr wrote.
pub const MARKER: &str = ".polymr-workdir";
/// The plan a work directory holds the work of.
pub const PLAN_FILE: &str = "plan.json";
const REDUCE_DIR: &str = "reduce";
/// Reports of failed attempts, kept for the job report when the tasks run elsewhere.
const ATTEMPTS_DIR: &str = "attempts";
const REPORT_SUFFIX: &str = ".report.json";
const TASK_REPORT: &str = "report.json";
const OUTCOME: &str = "outcome.json";
/// The output of a map task of a map-only job, inside its directory.
const MAP_OUTPUT: &str = "output";

/// Whether a task maps or reduces: the letter of its attempt id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Map,
    Reduce,
}

/// Hadoop's attempt id, `attempt_<job>_<m|r>_<task:06>_<attempt>`, that children see as
/// `mapreduce_task_attempt_id`.
pub fn attempt_id(job_id: &str, kind: TaskKind, index: usize, attempt: u32) -> String {
    let letter = match kind {
        TaskKind::Map => 'm',
        TaskKind::Reduce => 'r',
    };
    format!(
        "attempt_{}_{letter}_{index:06}_{attempt}",
        job_id.trim_start_matches("job_")
    )
}

pub fn map_id(index: usize) -> String {
    format!("map-{index:05}")
}

pub fn reduce_id(partition: u32) -> String {
    format!("reduce-{partition:05}")
}

/// The name of a sorted run file: a sorter's prefix (its map task's id), its spill, its
/// partition. Unique per task directory.
pub fn run_name(prefix: &str, spill: u32, partition: u32) -> String {
    format!("{prefix}-spill{spill:04}-part{partition:05}")
}

/// The name of a combiner's output over one run, next to that run.
pub fn combined_run_name(prefix: &str, spill: u32, partition: u32) -> String {
    format!("{prefix}-c{spill:04}p{partition:05}")
}

/// Names under one work root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShuffleLayout {
    root: PathBuf,
}

impl ShuffleLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ShuffleLayout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn plan_file(&self) -> PathBuf {
        self.root.join(PLAN_FILE)
    }

    pub fn marker(&self) -> PathBuf {
        self.root.join(MARKER)
    }

    /// A map task's directory once it is complete.
    pub fn map_done_dir(&self, task_id: &str) -> PathBuf {
        self.root.join(task_id)
    }

    /// Where one attempt of a map task writes before it is renamed to [`Self::map_done_dir`].
    pub fn map_attempt_dir(&self, task_id: &str, attempt: u32) -> PathBuf {
        self.root.join(format!("{task_id}.attempt-{attempt}"))
    }

    /// The complete marker of a map task directory (done or attempt).
    pub fn success_in(dir: &Path) -> PathBuf {
        dir.join(SUCCESS)
    }

    pub fn report_in(dir: &Path) -> PathBuf {
        dir.join(TASK_REPORT)
    }

    pub fn outcome_in(dir: &Path) -> PathBuf {
        dir.join(OUTCOME)
    }

    /// The output of a map task of a map-only job, inside its (attempt or done) directory.
    pub fn map_output_in(dir: &Path) -> PathBuf {
        dir.join(MAP_OUTPUT)
    }

    pub fn reduce_dir(&self) -> PathBuf {
        self.root.join(REDUCE_DIR)
    }

    /// A reduce task's output, published atomically when it succeeds.
    pub fn reduce_output(&self, partition: u32) -> PathBuf {
        self.reduce_dir().join(format!("part-{partition:05}"))
    }

    /// A finished reduce task's report, beside its output.
    pub fn reduce_report(&self, partition: u32) -> PathBuf {
        crate::report::TaskReport::path_for(&self.reduce_output(partition))
    }

    /// Where `polymr task` keeps the report of a failed attempt, so that `polymr finish` puts
    /// every attempt in the job report, as `polymr run` does.
    pub fn failed_attempt_report(&self, task_id: &str, attempt: u32) -> PathBuf {
        self.root
            .join(ATTEMPTS_DIR)
            .join(format!("{task_id}.attempt-{attempt}{REPORT_SUFFIX}"))
    }

    /// The failed attempts of `task_id` kept under the work root, by attempt number.
    pub fn failed_attempts(&self, task_id: &str) -> Vec<(u32, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(self.root.join(ATTEMPTS_DIR)) else {
            return Vec::new();
        };
        let mut found: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let n = name
                    .strip_prefix(task_id)?
                    .strip_prefix(".attempt-")?
                    .strip_suffix(REPORT_SUFFIX)?;
                Some((n.parse().ok()?, e.path()))
            })
            .collect();
        found.sort();
        found
    }

    /// Whether a work-root entry called `name` is one polymr made for a job whose map tasks
    /// are `ids`: the plan, the marker, the map tasks (complete, or attempts), the reduce
    /// outputs, and `write_atomic`'s leftovers of a kill.
    pub fn created_by_polymr(name: &str, ids: &HashSet<&str>) -> bool {
        let atomic_leftover = |target: &str| {
            name.strip_prefix('.')
                .and_then(|n| n.strip_prefix(target))
                .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
        };
        name == PLAN_FILE
            || name == REDUCE_DIR
            || name == ATTEMPTS_DIR
            || name == MARKER
            || ids.contains(name)
            || name.split_once(".attempt-").is_some_and(|(id, n)| {
                ids.contains(id) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
            })
            || atomic_leftover(PLAN_FILE)
            || atomic_leftover(MARKER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_attempts_are_found_by_task_and_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = ShuffleLayout::new(dir.path());
        for (task, n) in [("map-00001", 10), ("map-00001", 2), ("map-00010", 0)] {
            let p = layout.failed_attempt_report(task, n);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, "{}").expect("write");
        }
        let found: Vec<u32> = layout
            .failed_attempts("map-00001")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(found, [2, 10]);
        assert!(layout.failed_attempts("map-00002").is_empty());
    }

    #[test]
    fn attempt_ids_follow_hadoop() {
        assert_eq!(
            attempt_id("job_17_00042", TaskKind::Map, 3, 1),
            "attempt_17_00042_m_000003_1"
        );
        assert_eq!(
            attempt_id("job_17_00042", TaskKind::Reduce, 0, 0),
            "attempt_17_00042_r_000000_0"
        );
    }

    #[test]
    fn only_polymr_names_are_cleared() {
        let ids: HashSet<&str> = ["map-00000", "map-00001"].into();
        for ours in [
            "plan.json",
            "reduce",
            "attempts",
            MARKER,
            "map-00001",
            "map-00000.attempt-2",
            ".plan.json.a1B2c3.tmp",
            "..polymr-workdir.xyz.tmp",
        ] {
            assert!(ShuffleLayout::created_by_polymr(ours, &ids), "{ours}");
        }
        for theirs in [
            "notes.txt",
            "map-00002",
            "map-00000.attempt-",
            "map-00000.attempt-x",
            ".plan.json",
            "plan.json.bak",
            "result.txt",
        ] {
            assert!(!ShuffleLayout::created_by_polymr(theirs, &ids), "{theirs}");
        }
    }
}
