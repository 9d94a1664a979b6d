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
    /// Run one attempt of one task of a plan (`polymr plan --work DIR --format json`), reading
    /// and writing under the plan's work root: what an outside scheduler runs per task.
    Task(TaskArgs),
    /// Publish a plan's result from its finished tasks, and write the job report.
    Finish(FinishArgs),
    /// Make a key pair, and encrypt the AWS credentials a task receives in CREDENTIALS.
    Credentials(CredentialsArgs),
    /// Show a report (a job's, a map task's or a reduce task's): a short summary on stdout,
    /// or with --html one self-contained page (timeline, every input's fate, failures).
    Report(ReportArgs),
    /// Run a job on Apache Spark: `polymr spark-submit [SPARK-SUBMIT OPTIONS] -- [RUN
    /// OPTIONS] INPUT...`. Before `--`: spark-submit's options, and --master (default
    /// local[*]), --no-bundle, --executor-polymr PATH, --spark-submit PATH; after it: `run`'s.
    #[command(name = "spark-submit")]
    SparkSubmit(SparkSubmitArgs),
}

#[derive(Debug, Args)]
pub struct SparkSubmitArgs {
    /// [SPARK-SUBMIT OPTIONS] -- [RUN OPTIONS] INPUT...
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 1..,
        required = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The JSON report `polymr run`, `map`, `reduce` or `finish` wrote.
    #[arg(value_name = "REPORT.json")]
    pub report: PathBuf,
    /// Write the page here (one HTML file that opens from disk, no network).
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    #[command(subcommand)]
    pub command: CredentialsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Generate an RSA key pair: DIR/key.pem (private, mode 0600) and DIR/key.pub.pem.
    Keygen(KeygenArgs),
    /// Encrypt AWS credentials for a task and print the CREDENTIALS value on stdout.
    Encrypt(EncryptArgs),
    /// Debugging aid: decrypt CREDENTIALS from the environment and print only its format,
    /// access key id and region (never a secret).
    DecryptCheck(DecryptCheckArgs),
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Directory for key.pem and key.pub.pem (created if missing; existing keys are kept).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out_dir: PathBuf,
    /// RSA modulus size.
    #[arg(long, value_name = "BITS", default_value_t = 2048)]
    pub bits: usize,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The recipient's RSA public key (PEM: `PUBLIC KEY` or `RSA PUBLIC KEY`).
    #[arg(long, value_name = "PATH")]
    pub public_key: PathBuf,
    /// Credentials JSON ({accessKeyId, secretAccessKey, sessionToken, region}, or the output of
    /// `aws sts get-federation-token`), `-` for stdin [default: AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION from the environment]
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DecryptCheckArgs {
    /// RSA private key [default: $POLYMR_PRIVATE_KEY, then /opt/analysis-tools/key.pem]
    #[arg(long, value_name = "PATH")]
    pub private_key: Option<PathBuf>,
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
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
    /// URL template of map task artifacts, `{taskId}` replaced by each id of INPUT_TASK_IDS.
    #[arg(long, value_name = "URL", env = "POLYMR_ARTIFACT_URL")]
    pub artifact_url: Option<String>,
    /// Where the reducer's output goes; the report is written beside it.
    #[arg(short, long, value_name = "PATH", default_value = "result.txt")]
    pub output: PathBuf,
    /// Memory for sorting before spilling to temporary files (e.g. 256MiB, 1G).
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    pub sort_memory: String,
    /// Stop at the first input that cannot be read.
    #[arg(long)]
    pub fail_fast: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Mapper output files, directories, s3:// or http(s):// URLs (the original downloaded
    /// them into ./mapperOutput/); with none, the artifacts of INPUT_TASK_IDS.
    #[arg(value_name = "INPUT")]
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
    /// Most input files in one map task (the original planner's cap).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub max_files_per_task: usize,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub shape: JobShapeArgs,
    #[command(flatten)]
    pub job: JobOptionArgs,
    /// Keep the job's work in WORKDIR, and skip the map tasks already complete there.
    #[arg(long, value_name = "WORKDIR")]
    pub resume: Option<PathBuf>,
    /// Serve the job's page live while it runs, read-only, on ADDR (HOST:PORT, or a port)
    /// [default: 127.0.0.1:0, any free port]; the URL is printed on stderr.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, require_equals = true, default_missing_value = "127.0.0.1:0")]
    pub ui: Option<String>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Input files, directories (read recursively) or glob patterns; with --filter, the
    /// SOURCE roots the filter is applied under.
    #[arg(required_unless_present = "filter", value_name = "INPUT")]
    pub inputs: Vec<String>,
}

/// What a planned job is fixed to: where it publishes, and how its tasks run.
#[derive(Debug, Args)]
pub struct JobOptionArgs {
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
    /// Stop a map task at the first input that cannot be read.
    #[arg(long)]
    pub fail_fast: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub shape: JobShapeArgs,
    #[command(flatten)]
    pub job: JobOptionArgs,
    /// The work root the plan's tasks read and write under (a directory); `polymr task`
    /// and `polymr finish` need it.
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Print the plan as a scheduler's task graph (JSON on stdout) instead of --format.
    #[arg(long, value_enum, value_name = "SCHEDULER")]
    pub emit: Option<Emit>,
    /// Boxed: these options would make `plan` the largest command by far.
    #[command(flatten)]
    pub taskcluster: Box<TaskclusterArgs>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Print what would run (files and bytes, per dimension value, map tasks and their
    /// spread) instead of the plan.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(required_unless_present = "filter", value_name = "INPUT")]
    pub inputs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TaskArgs {
    /// The plan, as `polymr plan --work DIR --format json` printed it.
    #[arg(long, value_name = "PLAN.json")]
    pub plan: PathBuf,
    /// The task's id in the plan: map-00003, reduce-00001, …
    #[arg(long, value_name = "ID")]
    pub task: String,
    /// Which attempt this is (it names the attempt's directory and `mapreduce_task_attempt_id`).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub attempt: u32,
    /// Read and write under DIR instead of the plan's work root (an executor's local disk).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Where the job's directory is on this machine, when not where it was planned (an
    /// unpacked bundle): the config's scripts are found under DIR by their paths relative to
    /// the config; the config itself is the text the plan carries.
    #[arg(long, value_name = "DIR", env = "POLYMR_JOB_DIR")]
    pub job_dir: Option<PathBuf>,
    /// A reduce task's runs are the files this runs manifest names (`{"partition": P,
    /// "runs": [paths relative to it, in merge order]}`), not the map outcomes under the work
    /// root: how Spark's shuffle hands a partition over.
    #[arg(long, value_name = "MANIFEST")]
    pub runs_from: Option<PathBuf>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub struct FinishArgs {
    /// The plan whose tasks have all run.
    #[arg(long, value_name = "PLAN.json")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// What a task may cost: the longest record, and the longest silence of a child.
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Longest record (an input line into the mapper, an output line of the mapper or combiner
    /// into the shuffle, a line into `reduce`); a longer one is an invalid record, reported with
    /// its file and line and skipped.
    #[arg(long, value_name = "SIZE", default_value = "64MiB")]
    pub max_record_size: String,
    /// Fail a task attempt whose child makes no progress (reads no input, writes nothing on
    /// stdout or stderr) for this long, e.g. 90s, 10m, 1h; 0 turns it off.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub task_timeout: String,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The job's analysis-tools.yml [default: ./analysis-tools.yml, then /etc/analysis-tools.yml]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// Who is told when a job or reduce task ends.
#[derive(Debug, Args, Default, Clone)]
pub struct NotifyArgs {
    /// Email the owner when done [default: $OWNER]; over SMTP_URL, else the local sendmail.
    #[arg(long, value_name = "ADDRESS")]
    pub notify_email: Option<String>,
    /// POST the JSON report to this URL when done.
    #[arg(long, value_name = "URL")]
    pub notify_url: Option<String>,
}

/// Where remote inputs and outputs are, and how to reach them.
#[derive(Debug, Args, Default, Clone)]
pub struct RemoteArgs {
    /// Bucket of bare S3 keys given as inputs [default: telemetry-published-v1 when CREDENTIALS is set]
    #[arg(long, value_name = "NAME", env = "POLYMR_BUCKET")]
    pub bucket: Option<String>,
    /// S3-compatible endpoint (also AWS_ENDPOINT_URL); implies path-style addressing.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Downloads running ahead of the input being read [default: 3 for map tasks, 20 for reduce tasks]
    #[arg(long, value_name = "K")]
    pub parallel_downloads: Option<usize>,
    /// Keep downloaded S3 objects under `./s3/KEY`, as the original did.
    #[arg(long)]
    pub keep_downloads: bool,
    /// Retries of a broken or refused download before the input is reported failed.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub download_retries: u32,
    /// RSA private key that decrypts CREDENTIALS [default: $POLYMR_PRIVATE_KEY, then /opt/analysis-tools/key.pem]
    #[arg(long, value_name = "PATH")]
    pub private_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MapArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Where the mapper's output goes; the report is written beside it as `<PATH>.report.json`.
    #[arg(short, long, value_name = "PATH", default_value = "result.txt")]
    pub output: PathBuf,
    /// Stop the task at the first input that cannot be read or decoded.
    #[arg(long)]
    pub fail_fast: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Input files, directories (read recursively) or glob patterns; with --filter, the
    /// SOURCE roots the filter is applied under.
    #[arg(required_unless_present = "filter", value_name = "INPUT")]
    pub inputs: Vec<String>,
}

/// The schedulers `polymr plan --emit` writes a task graph for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// One docker-worker task per map task and a reduce task that depends on them all.
    Taskcluster,
}

/// The task graph for a Taskcluster queue (`polymr plan --emit taskcluster`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Taskcluster (--emit taskcluster)")]
pub struct TaskclusterArgs {
    /// The deployment's root URL: task artifacts and the task group's page are under it.
    #[arg(
        long,
        value_name = "URL",
        env = "TASKCLUSTER_ROOT_URL",
        default_value = "https://community-tc.services.mozilla.com"
    )]
    pub root_url: String,
    /// The tasks' provisionerId (with --worker-type, their task queue).
    #[arg(long, value_name = "ID", default_value = "polymr")]
    pub provisioner_id: String,
    /// The tasks' workerType: a docker-worker (or d2g generic-worker) pool.
    #[arg(long, value_name = "TYPE", default_value = "docker-worker")]
    pub worker_type: String,
    /// The image every task runs (`make publish` pushes it to a registry a worker can reach).
    #[arg(long, value_name = "IMAGE", default_value = "polymr:latest")]
    pub image: String,
    /// Who owns the job: the tasks' metadata.owner and the reduce task's OWNER, emailed when
    /// it is done. Required with --emit taskcluster.
    #[arg(long, value_name = "EMAIL")]
    pub owner: Option<String>,
    /// How long from now the tasks may take in all (the queue allows up to 5 days).
    #[arg(long, value_name = "DURATION", default_value = "1d")]
    pub deadline: String,
    /// How long one task may run (payload maxRunTime, 1s to 24h).
    #[arg(long, value_name = "DURATION", default_value = "4h")]
    pub max_run_time: String,
    /// How long from now the tasks and their artifacts (results, reports) are kept.
    #[arg(long, value_name = "DURATION", default_value = "28d")]
    pub expires: String,
    /// The tasks' name (metadata.name), followed by the task's plan id [default: polymr JOB_ID]
    #[arg(long, value_name = "TEXT")]
    pub name: Option<String>,
    /// The tasks' description (metadata.description) [default: the job's inputs in numbers]
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// A link to where the job comes from (metadata.source) [default: the task group's page]
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,
    /// A file holding an encrypted CREDENTIALS value (`polymr credentials encrypt`), `-` for
    /// stdin, handed to the map tasks; clear credentials are refused.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
}

/// Choosing inputs with a `Filter.json` instead of naming them.
#[derive(Debug, Args, Default, Clone)]
pub struct SelectArgs {
    /// Read the files under each SOURCE (a directory, s3://bucket/prefix/, or with --bucket a
    /// key prefix; none: the whole bucket) that this Filter.json allows; the key layout is
    /// analysis-tools.yml's `key_layout` (telemetry's by default).
    #[arg(long, value_name = "Filter.json")]
    pub filter: Option<PathBuf>,
}
