//! The work of one task, whoever schedules it (the local executor, a container, Spark).

mod feed;
mod map;

pub use map::{run_map_task, MapTask, MapTaskOutcome};
