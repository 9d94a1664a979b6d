//! Executors: who runs a plan's tasks. `local` runs them on this machine through the one
//! retry loop (`attempts`), emitting `events` that the job report and the progress bar
//! consume.

mod attempts;
pub mod events;
pub mod job_report;
mod local;
mod progress;
pub mod workdir;

pub use job_report::JobReportBuilder;
pub use local::{run_local, run_local_with};
