//! Child processes: building their command lines, spawning them in their own process
//! group, draining their stderr, and killing the whole group when they must stop.

mod child;
mod command;
mod registry;
mod stderr;

pub use child::{ExitInfo, Spawned, StdinProbe};
pub use command::{ChildCommand, CommandError, Helpers, TaskEnv};
pub use registry::{kill_all_now, register_temp, unregister_temp};
pub(crate) use registry::{register_group, unregister_group};
pub use stderr::{drain_stderr, Counters, InvalidRecord, StderrSummary, MAX_COUNTERS};
