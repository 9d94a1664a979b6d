//! The job report as a sink of the executor's events: it collects every task's attempts as
//! they end, and adds them up, in plan order, when the job is over.

use std::path::PathBuf;

use super::events::{Event, EventSink, Phase};
use crate::config::JobConfig;
use crate::plan::Plan;
use crate::report::{
    merge_counters, InputStatus, JobReport, JobTimings, LostInput, TaskReport, TaskStatus, Totals,
};
use crate::shuffle::ShuffleCounters;

struct Ended {
    attempts: Vec<TaskReport>,
    resumed: bool,
    shuffle: ShuffleCounters,
    succeeded: bool,
}

pub struct JobReportBuilder {
    report: JobReport,
    /// The plan's inputs of each map task, for the inputs a failed task lost.
    map_inputs: Vec<(String, Vec<String>)>,
    maps: Vec<Option<Ended>>,
    reduces: Vec<Option<Ended>>,
}

impl JobReportBuilder {
    pub fn new(plan: &Plan, job: &JobConfig, output: Option<PathBuf>) -> Self {
        JobReportBuilder {
            report: JobReport {
                polymr_version: env!("CARGO_PKG_VERSION"),
                kind: "run",
                job_id: plan.job.id.clone(),
                status: TaskStatus::Failed,
                error: None,
                config: job.path.clone(),
                output,
                output_dir: plan.output_dir.clone(),
                published: false,
                workdir: None,
                map_tasks: plan.map_tasks.len(),
                map_tasks_resumed: 0,
                reducers: plan.reducers,
                lost_inputs: Vec::new(),
                totals: Totals::default(),
                shuffle: ShuffleCounters::default(),
                counters: Default::default(),
                timings: JobTimings {
                    started_at_unix_ms: crate::task::unix_ms(),
                    ..JobTimings::default()
                },
                driver_peak_rss_bytes: 0,
                tasks: Vec::new(),
                notifications: None,
            },
            map_inputs: plan
                .map_tasks
                .iter()
                .map(|t| {
                    (
                        t.id.clone(),
                        t.inputs.iter().map(|i| i.name.clone()).collect(),
                    )
                })
                .collect(),
            maps: (0..plan.map_tasks.len()).map(|_| None).collect(),
            reduces: (0..plan.reducers).map(|_| None).collect(),
        }
    }

    /// The report of what ended, in plan order: map tasks, then reduce tasks.
    pub fn finish(self) -> JobReport {
        let mut report = self.report;
        let map_only = report.reducers == 0;
        for (ended, (id, inputs)) in self.maps.into_iter().zip(&self.map_inputs) {
            let Some(e) = ended else { continue };
            report.map_tasks_resumed += usize::from(e.resumed);
            report.shuffle.add(&e.shuffle);
            match (e.succeeded, e.attempts.last()) {
                (true, Some(last)) => {
                    report.totals.add(&last.totals.read());
                    if map_only {
                        report.totals.add(&last.totals.written());
                    }
                    merge_counters(&mut report.counters, &last.counters);
                    for i in last
                        .inputs
                        .iter()
                        .filter(|i| i.status != InputStatus::Processed)
                    {
                        report.lost_inputs.push(LostInput::of_input(i, id));
                    }
                }
                _ => {
                    let why = e
                        .attempts
                        .last()
                        .and_then(|a| a.error.clone())
                        .unwrap_or_else(|| "the task did not run".into());
                    for name in inputs {
                        report.lost_inputs.push(LostInput::unused(
                            name,
                            id,
                            format!("its map task failed {} times: {why}", e.attempts.len()),
                        ));
                    }
                }
            }
            report.tasks.extend(e.attempts);
        }
        for e in self.reduces.into_iter().flatten() {
            if let Some(last) = e.attempts.last() {
                merge_counters(&mut report.counters, &last.counters);
                if e.succeeded {
                    report.totals.add(&last.totals.written());
                }
            }
            report.tasks.extend(e.attempts);
        }
        report
    }
}

impl EventSink for JobReportBuilder {
    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::TaskDone {
                task,
                attempts,
                resumed,
                outcome,
                succeeded,
                ..
            } => {
                let ended = Ended {
                    attempts: attempts.to_vec(),
                    resumed: *resumed,
                    shuffle: outcome.map(|o| o.shuffle.clone()).unwrap_or_default(),
                    succeeded: *succeeded,
                };
                let slot = match *task {
                    crate::task::TaskRef::Map(i) => self.maps.get_mut(i),
                    crate::task::TaskRef::Reduce(p) => self.reduces.get_mut(p as usize),
                };
                if let Some(slot) = slot {
                    *slot = Some(ended);
                }
            }
            Event::PhaseDone { phase, elapsed_ms } => match phase {
                Phase::Map => self.report.timings.map_ms = *elapsed_ms,
                Phase::Reduce => self.report.timings.reduce_ms = *elapsed_ms,
            },
            Event::PhaseStarted { .. }
            | Event::TaskStarted { .. }
            | Event::AttemptFailed { .. } => {}
        }
    }
}
