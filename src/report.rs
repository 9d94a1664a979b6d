//! The JSON report every task writes beside its output, and the one-line human summary.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decode::Codec;
use crate::process::{Counters, ExitInfo, InvalidRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Succeeded,
    Failed,
    Interrupted,
}

impl TaskStatus {
    /// For the summary line; a failure is loud.
    pub fn label(self) -> &'static str {
        match self {
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Interrupted => "interrupted",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            TaskStatus::Succeeded => crate::exit::SUCCESS,
            TaskStatus::Failed => crate::exit::JOB_FAILED,
            TaskStatus::Interrupted => {
                crate::exit::interrupted(crate::signals::received().unwrap_or(2))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputStatus {
    Processed,
    Failed,
    /// Never read, with the reason in `error` (the task stopped first).
    Skipped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputReport {
    pub name: String,
    pub status: InputStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub codec: Option<Codec>,
    /// Bytes read from the source (compressed).
    pub bytes_read: u64,
    /// Bytes after decompression.
    pub bytes: u64,
    pub records: u64,
    pub invalid_records: u64,
    /// Download attempts retried (remote inputs).
    #[serde(default)]
    pub retries: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_samples: Vec<InvalidRecord>,
    /// Invalid records counted in `invalid_records` but not described in `invalid_samples`
    /// (only the first few locations of each input are kept).
    #[serde(default)]
    pub invalid_locations_dropped: u64,
    pub duration_ms: u64,
}

/// Invalid records described one by one, per input or output; the rest are only counted.
pub const INVALID_SAMPLES: usize = 10;

impl InputReport {
    /// Counts one invalid record, keeping its location among the first few.
    pub fn add_invalid(&mut self, line: u64, message: String) {
        self.invalid_records += 1;
        if self.invalid_samples.len() < INVALID_SAMPLES {
            self.invalid_samples.push(InvalidRecord { line, message });
        }
    }

    /// Records of an input that failed part way through and still reached the result: those
    /// delivered whole before the failure.
    pub fn used_in_part(&self) -> bool {
        self.status == InputStatus::Failed && self.records > 0
    }

    pub fn new(name: &str) -> Self {
        InputReport {
            name: name.to_string(),
            status: InputStatus::Skipped,
            error: None,
            codec: None,
            bytes_read: 0,
            bytes: 0,
            records: 0,
            invalid_records: 0,
            retries: 0,
            invalid_samples: Vec::new(),
            invalid_locations_dropped: 0,
            duration_ms: 0,
        }
    }
}

/// Lines a child wrote into the shuffle that were not used: longer than
/// `--max-record-size`. Numbered by line of that child's output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InvalidOutput {
    pub records: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<InvalidRecord>,
}

impl InvalidOutput {
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Counts one skipped line, keeping (and logging) the first few.
    pub fn add(&mut self, line: u64, message: String) {
        self.records += 1;
        if self.samples.len() < INVALID_SAMPLES {
            tracing::warn!("invalid record at line {line}: {message}");
            self.samples.push(InvalidRecord { line, message });
        }
    }

    pub fn merge(&mut self, other: &InvalidOutput) {
        self.records += other.records;
        let room = INVALID_SAMPLES.saturating_sub(self.samples.len());
        self.samples
            .extend(other.samples.iter().take(room).cloned());
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    pub files: usize,
    pub files_processed: usize,
    pub files_failed: usize,
    pub files_skipped: usize,
    pub bytes_read: u64,
    pub bytes: u64,
    pub records: u64,
    pub invalid_records: u64,
    #[serde(default)]
    pub download_retries: u64,
    pub output_records: u64,
    pub output_bytes: u64,
}

impl Totals {
    /// Adds every field of `other`.
    pub fn add(&mut self, other: &Totals) {
        let Totals {
            files,
            files_processed,
            files_failed,
            files_skipped,
            bytes_read,
            bytes,
            records,
            invalid_records,
            download_retries,
            output_records,
            output_bytes,
        } = other;
        self.files += files;
        self.files_processed += files_processed;
        self.files_failed += files_failed;
        self.files_skipped += files_skipped;
        self.bytes_read += bytes_read;
        self.bytes += bytes;
        self.records += records;
        self.invalid_records += invalid_records;
        self.download_retries += download_retries;
        self.output_records += output_records;
        self.output_bytes += output_bytes;
    }

    /// What a task read: everything but its output. A map task's share of a job whose
    /// output the reducers make.
    pub fn read(&self) -> Totals {
        Totals {
            output_records: 0,
            output_bytes: 0,
            ..self.clone()
        }
    }

    /// What a task wrote: a reduce task's share of a job (its input is the shuffle, already
    /// counted by the map tasks).
    pub fn written(&self) -> Totals {
        Totals {
            output_records: self.output_records,
            output_bytes: self.output_bytes,
            ..Totals::default()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildReport {
    pub command: String,
    pub exit: Option<ExitInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stderr_tail: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskReport {
    pub polymr_version: String,
    pub kind: String,
    pub job_id: String,
    pub attempt_id: String,
    pub status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub config: PathBuf,
    pub output: PathBuf,
    /// Whether `output` was written by this task (only on success).
    pub published: bool,
    pub child: Option<ChildReport>,
    pub inputs: Vec<InputReport>,
    pub totals: Totals,
    /// Output lines of the mapper or combiner left out of the shuffle (too long).
    #[serde(default, skip_serializing_if = "InvalidOutput::is_empty")]
    pub invalid_output: InvalidOutput,
    pub counters: Counters,
    /// Counter updates ignored because the child had already created the most distinct
    /// counters a task may have ([`crate::process::MAX_COUNTERS`]).
    #[serde(default)]
    pub counters_dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub started_at_unix_ms: u128,
    pub duration_ms: u64,
    /// The driver's own peak resident memory (children not included).
    pub driver_peak_rss_bytes: u64,
    /// Who was told the task ended (`polymr reduce` tells the owner), and how that went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Vec<crate::notify::NotificationReport>>,
}

/// Peak RSS of this process so far. From the kernel's high-water mark of this process image
/// (`VmHWM`): getrusage's `ru_maxrss` survives execve, so a driver started by a large
/// process would report that process's peak as its own.
pub fn driver_peak_rss() -> u64 {
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    if let Some(kib) = hwm {
        return kib * 1024;
    }
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| u64::try_from(u.max_rss()).unwrap_or(0) * 1024)
        .unwrap_or(0)
}

impl TaskReport {
    pub fn compute_totals(&mut self, output_records: u64, output_bytes: u64) {
        let mut t = Totals {
            files: self.inputs.len(),
            output_records,
            output_bytes,
            ..Totals::default()
        };
        for i in &mut self.inputs {
            i.invalid_locations_dropped = i
                .invalid_records
                .saturating_sub(i.invalid_samples.len() as u64);
            match i.status {
                InputStatus::Processed => t.files_processed += 1,
                InputStatus::Failed => t.files_failed += 1,
                InputStatus::Skipped => t.files_skipped += 1,
            }
            t.bytes_read += i.bytes_read;
            t.bytes += i.bytes;
            t.records += i.records;
            t.invalid_records += i.invalid_records;
            t.download_retries += i.retries;
        }
        t.invalid_records += self.invalid_output.records;
        self.totals = t;
    }

    /// Where the report of a task writing `output` goes.
    pub fn path_for(output: &Path) -> PathBuf {
        let mut s = output.as_os_str().to_owned();
        s.push(".report.json");
        PathBuf::from(s)
    }

    /// One line for a person: what happened, how much, where it went.
    pub fn summary_line(&self) -> String {
        let t = &self.totals;
        let status = self.status.label();
        let mut s = format!(
            "polymr {}: {status}: {} files ({} failed, {} skipped), {} records ({} invalid), {} → {} output lines in {:.2}s",
            self.kind,
            t.files,
            t.files_failed,
            t.files_skipped,
            t.records,
            t.invalid_records,
            human_bytes(t.bytes),
            t.output_records,
            self.duration_ms as f64 / 1000.0
        );
        if self.published {
            s.push_str(&format!("; result: {}", self.output.display()));
        }
        s
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Adds `from` into `into`.
pub fn merge_counters(into: &mut crate::process::Counters, from: &crate::process::Counters) {
    for (group, counters) in from {
        let g = into.entry(group.clone()).or_default();
        for (name, v) in counters {
            let slot = g.entry(name.clone()).or_default();
            *slot = slot.saturating_add(*v);
        }
    }
}

/// Adds `from` into `into` while `into` has fewer than `cap` distinct counters; returns the
/// number of updates dropped for want of room.
pub fn merge_counters_capped(
    into: &mut crate::process::Counters,
    from: &crate::process::Counters,
    cap: usize,
) -> u64 {
    let mut distinct: usize = into.values().map(|g| g.len()).sum();
    let mut dropped = 0;
    for (group, counters) in from {
        for (name, v) in counters {
            let known = into.get(group).is_some_and(|g| g.contains_key(name));
            if !known && distinct >= cap {
                dropped += 1;
                continue;
            }
            distinct += usize::from(!known);
            let slot = into
                .entry(group.clone())
                .or_default()
                .entry(name.clone())
                .or_default();
            *slot = slot.saturating_add(*v);
        }
    }
    dropped
}

/// What `polymr run` writes: the whole job, every task attempt, every input's fate.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub polymr_version: &'static str,
    pub kind: &'static str,
    pub job_id: String,
    pub status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub config: PathBuf,
    pub output: Option<PathBuf>,
    pub output_dir: Option<PathBuf>,
    pub published: bool,
    /// Where the job's intermediate files are; kept when the job did not succeed, for `--resume`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<PathBuf>,
    pub map_tasks: usize,
    pub map_tasks_resumed: usize,
    pub reducers: u32,
    /// Inputs the job could not use, and why.
    pub lost_inputs: Vec<LostInput>,
    pub totals: Totals,
    pub shuffle: crate::shuffle::ShuffleCounters,
    pub counters: crate::process::Counters,
    pub timings: JobTimings,
    pub driver_peak_rss_bytes: u64,
    /// Every attempt of every task, in the order they ended.
    pub tasks: Vec<TaskReport>,
    /// Who was told the job ended, and whether it reached them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Vec<crate::notify::NotificationReport>>,
}

/// An input the job did not use whole.
#[derive(Debug, Clone, Serialize)]
pub struct LostInput {
    pub name: String,
    pub task: String,
    pub status: LostStatus,
    /// Its records in the result: those read before it failed, when `partial`.
    pub records: u64,
    pub error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LostStatus {
    /// Read up to a failure (a truncated or corrupt file): its first `records` records are in
    /// the result, the rest is not.
    Partial,
    /// Nothing of it is in the result.
    Unused,
}

impl LostInput {
    /// The fate of an input of a map task that succeeded.
    pub fn of_input(input: &InputReport, task: &str) -> LostInput {
        let partial = input.used_in_part();
        LostInput {
            name: input.name.clone(),
            task: task.to_string(),
            status: if partial {
                LostStatus::Partial
            } else {
                LostStatus::Unused
            },
            records: if partial { input.records } else { 0 },
            error: input.error.clone().unwrap_or_default(),
        }
    }

    /// An input whose task failed: nothing of it was published.
    pub fn unused(name: &str, task: &str, error: String) -> LostInput {
        LostInput {
            name: name.to_string(),
            task: task.to_string(),
            status: LostStatus::Unused,
            records: 0,
            error,
        }
    }

    /// For stderr.
    pub fn describe(&self) -> String {
        match self.status {
            LostStatus::Partial => format!(
                "input partly used: {} ({}): its first {} records are in the result, the rest is not: {}",
                self.name, self.task, self.records, self.error
            ),
            LostStatus::Unused => format!(
                "input not used: {} ({}): {}",
                self.name, self.task, self.error
            ),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct JobTimings {
    pub started_at_unix_ms: u128,
    pub map_ms: u64,
    pub reduce_ms: u64,
    pub total_ms: u64,
}

impl JobReport {
    pub fn summary_line(&self) -> String {
        let t = &self.totals;
        let status = self.status.label();
        let mut s = format!(
            "polymr run: {status}: {} map tasks ({} resumed), {} reducers, {} files ({} failed), {} records ({} invalid), {} → {} output lines in {:.2}s",
            self.map_tasks,
            self.map_tasks_resumed,
            self.reducers,
            t.files,
            t.files_failed,
            t.records,
            t.invalid_records,
            human_bytes(t.bytes),
            t.output_records,
            self.timings.total_ms as f64 / 1000.0
        );
        if self.published {
            if let Some(o) = &self.output {
                s.push_str(&format!("; result: {}", o.display()));
            } else if let Some(d) = &self.output_dir {
                s.push_str(&format!("; results in {}", d.display()));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of `Totals`, set to a distinct value: a field that `add` forgets stays
    /// unchanged and the comparison below names it.
    #[test]
    fn adding_totals_adds_every_field() {
        let one = Totals {
            files: 1,
            files_processed: 2,
            files_failed: 3,
            files_skipped: 4,
            bytes_read: 5,
            bytes: 6,
            records: 7,
            invalid_records: 8,
            download_retries: 9,
            output_records: 10,
            output_bytes: 11,
        };
        let mut sum = one.clone();
        sum.add(&one);
        let one = serde_json::to_value(&one).expect("json");
        let sum = serde_json::to_value(&sum).expect("json");
        let fields = one.as_object().expect("object");
        assert_eq!(fields.len(), 11, "a new field: give it a value above");
        for (name, v) in fields {
            assert_eq!(
                sum[name].as_u64(),
                v.as_u64().map(|v| 2 * v),
                "Totals::add dropped `{name}`"
            );
        }
        let mut split = Totals::default();
        split.add(&Totals::read(
            &serde_json::from_value(one.clone()).expect("totals"),
        ));
        split.add(&Totals::written(
            &serde_json::from_value(one.clone()).expect("totals"),
        ));
        assert_eq!(serde_json::to_value(&split).expect("json"), one);
    }
}
