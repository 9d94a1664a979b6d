//! What an executor tells the world while it runs a plan. The executor only emits; the job
//! report and the progress bar are sinks that decide what an event means to them.

use std::sync::Mutex;

use crate::plan::MapOutcome;
use crate::report::TaskReport;
use crate::task::{TaskError, TaskRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Map,
    Reduce,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Map => "map",
            Phase::Reduce => "reduce",
        }
    }
}

pub enum Event<'a> {
    PhaseStarted {
        phase: Phase,
        tasks: usize,
    },
    TaskStarted {
        id: &'a str,
    },
    AttemptFailed {
        id: &'a str,
        report: &'a TaskReport,
        error: &'a TaskError,
    },
    /// A task ended: every attempt's report, in order; `resumed` when it was found complete
    /// in the work directory and not run.
    TaskDone {
        task: TaskRef,
        id: &'a str,
        attempts: &'a [TaskReport],
        resumed: bool,
        /// A map task's outcome, when it succeeded.
        outcome: Option<&'a MapOutcome>,
        succeeded: bool,
    },
    PhaseDone {
        phase: Phase,
        elapsed_ms: u64,
    },
}

pub trait EventSink: Send {
    fn event(&mut self, event: &Event<'_>);
}

/// Hands each event to every sink, in order. Tasks run concurrently, so sinks sit behind
/// locks that are never held across an await.
pub struct Events<'a> {
    sinks: Vec<&'a Mutex<dyn EventSink + 'a>>,
}

impl<'a> Events<'a> {
    pub fn new(sinks: Vec<&'a Mutex<dyn EventSink + 'a>>) -> Self {
        Events { sinks }
    }

    pub fn emit(&self, event: &Event<'_>) {
        for s in &self.sinks {
            match s.lock() {
                Ok(mut s) => s.event(event),
                Err(poisoned) => poisoned.into_inner().event(event),
            }
        }
    }
}
