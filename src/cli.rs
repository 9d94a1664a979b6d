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
    /// Run one reduce task over mapper output files: sort, group, reduce.
    Reduce(ReduceArgs),
    /// Run a whole job on this machine: parallel map tasks, shuffle, reducers, one result.
    Run(RunArgs),
    /// Print the job's plan (map tasks as size-balanced batches of files) without running it.
    Plan(PlanArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ReduceArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Where the reducer's output goes; the report is written beside it.
    #[arg(short, long, value_name = "PATH", default_value = "result.txt")]
    pub output: PathBuf,
    /// Memory for sorting before spilling to temporary files (e.g. 256MiB, 1G).
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    pub sort_memory: String,
    /// Stop at the first input that cannot be read.
    #[arg(long)]
    pub fail_fast: bool,
    /// Mapper output files or directories (the original downloaded them into ./mapperOutput/).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct JobShapeArgs {
    /// Map tasks run at once [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub mappers: Option<usize>,
    /// Reduce partitions (keys are split by a stable hash).
    #[arg(long, value_name = "R", default_value_t = 1)]
    pub reducers: u32,
    /// Largest batch of input bytes (compressed) for one map task.
    #[arg(long, value_name = "SIZE", default_value = "1GiB")]
    pub max_batch_size: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub shape: JobShapeArgs,
    /// The job's single result: every partition's output, concatenated in partition order.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Also publish each partition as DIR/part-00000, DIR/part-00001, …
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Memory for the shuffle's sorting, shared by the map tasks running at once.
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    pub sort_memory: String,
    /// Times a failed task is retried before the job fails.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
    /// Keep the job's work in WORKDIR, and skip the map tasks already complete there.
    #[arg(long, value_name = "WORKDIR")]
    pub resume: Option<PathBuf>,
    /// Stop a map task at the first input that cannot be read.
    #[arg(long)]
    pub fail_fast: bool,
    /// Input files, directories (read recursively) or glob patterns.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub shape: JobShapeArgs,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
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
