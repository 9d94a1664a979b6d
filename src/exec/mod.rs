//! Executors: who runs a plan's tasks. `local` runs them on this machine.

mod local;
mod progress;

pub use local::run_local;
