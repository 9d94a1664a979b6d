//! The work of one task, whoever schedules it (the local executor, a container, Spark).

mod drive;
mod feed;
mod map;
mod reduce;
mod sink;

pub use map::{
    failed_report, report_from_json, run_map_task, unix_ms, MapOutput, MapTask, MapTaskOutcome,
};
pub use reduce::{run_reduce_task, ReduceInput, ReduceTask};
pub use sink::ShuffleSpec;
