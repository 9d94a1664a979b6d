//! One thin file per subcommand: resolve settings, run, report, pick the exit code.

mod map;

pub use map::map;
