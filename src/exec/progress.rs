//! A progress bar when a person watches stderr; plain log lines otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::report::TaskReport;

pub struct Progress {
    bar: Option<ProgressBar>,
    files: usize,
    bytes: u64,
    records: u64,
    failed: usize,
}

impl Progress {
    pub fn new(phase: &str, tasks: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(tasks as u64);
            let style = ProgressStyle::with_template(
                "{prefix:>6} [{bar:30}] {pos}/{len} tasks {msg} ({elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(phase.to_string());
            b
        });
        Progress {
            bar,
            files: 0,
            bytes: 0,
            records: 0,
            failed: 0,
        }
    }

    /// One attempt ended; `done` is false for an attempt that will be retried or failed.
    pub fn attempt(&mut self, report: &TaskReport, done: bool) {
        if done {
            self.files += report.totals.files;
            self.bytes += report.totals.bytes;
            self.records += report.totals.records;
        } else {
            self.failed += 1;
        }
        let msg = format!(
            "| {} files, {}, {} records, {} failed attempts",
            self.files,
            crate::report::human_bytes(self.bytes),
            self.records,
            self.failed
        );
        match &self.bar {
            Some(b) => {
                if done {
                    b.inc(1);
                }
                b.set_message(msg);
            }
            None => tracing::info!(
                "{} {}: {}",
                report.kind,
                report.attempt_id,
                if done { "done" } else { "failed" }
            ),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

/// The progress bar as a sink of the executor's events: one bar per phase.
#[derive(Default)]
pub struct ProgressSink {
    current: Option<Progress>,
}

impl super::events::EventSink for ProgressSink {
    fn event(&mut self, event: &super::events::Event<'_>) {
        use super::events::Event;
        match event {
            Event::PhaseStarted { phase, tasks } => {
                self.current = Some(Progress::new(phase.label(), *tasks));
            }
            Event::TaskDone { attempts, .. } => {
                if let Some(p) = self.current.as_mut() {
                    for a in attempts.iter() {
                        p.attempt(a, a.status == crate::report::TaskStatus::Succeeded);
                    }
                }
            }
            Event::PhaseDone { .. } => {
                if let Some(p) = self.current.take() {
                    p.finish();
                }
            }
            Event::TaskStarted { .. } | Event::AttemptFailed { .. } => {}
        }
    }
}
