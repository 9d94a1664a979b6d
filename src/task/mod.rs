//! The work of one task, whoever schedules it (the local executor, a container, Spark):
//! `run_map_task` and `run_reduce_task` end in a report and, on failure, a classified
//! [`TaskError`].

mod drive;
mod error;
mod feed;
mod map;
mod planned;
mod reduce;
mod sink;
mod types;

pub use error::TaskError;
pub use map::{run_map_task, MapOutput, MapTask, MapTaskOutcome};
pub use planned::{load_map_done, run_attempt, Attempted, Finished, TaskContext, TaskRef};
pub use reduce::{run_reduce_task, ReduceInput, ReduceTask, ReduceTaskOutcome};
pub use sink::ShuffleSpec;
pub use types::{failed_report, new_report, report_from_json, unix_ms};
