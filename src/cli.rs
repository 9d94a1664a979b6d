//! The command line as clap sees it: raw arguments only. Resolution into settings happens in
//! `settings.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "polymr", version, about = "A language-agnostic MapReduce driver", long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one map task: feed every input to one mapper process, write its output.
    Map(MapArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The job's analysis-tools.yml [default: ./analysis-tools.yml, then /etc/analysis-tools.yml]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MapArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Where the mapper's output goes; the report is written beside it as `<PATH>.report.json`.
    #[arg(short, long, value_name = "PATH", default_value = "result.txt")]
    pub output: PathBuf,
    /// Stop the task at the first input that cannot be read or decoded.
    #[arg(long)]
    pub fail_fast: bool,
    /// Input files, directories (read recursively) or glob patterns.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
}
