use std::process::ExitCode;

use clap::Parser;

use polymr::cli::{Cli, Command};
use polymr::{commands, exit, limits, logging, signals};

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.log_format);
    // Before any descriptor is opened: a job's pipes, runs and downloads count against it.
    if let Some(n) = limits::raise_nofile() {
        tracing::debug!("file descriptor limit: {n}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("polymr: error: failed to start the async runtime: {e}");
            return exit::code(exit::INTERNAL);
        }
    };
    let result = runtime.block_on(async {
        let cancel = signals::install()?;
        match cli.command {
            Command::Map(args) => commands::map(args, cancel).await,
            Command::Reduce(args) => commands::reduce(args, cancel).await,
            Command::Run(args) => commands::run(args, cancel).await,
            Command::Plan(args) => commands::plan(args).await,
            Command::Task(args) => commands::task(args, cancel).await,
            Command::Finish(args) => commands::finish(args).await,
            Command::Credentials(args) => commands::credentials(args),
            Command::Report(args) => commands::report(args),
            Command::SparkSubmit(args) => commands::spark_submit(args, cancel).await,
        }
    });
    // Children and temp files are owned by the tasks, which have finished by now; the
    // runtime is dropped without waiting on stray blocking reads.
    runtime.shutdown_background();
    match result {
        Ok(code) => exit::code(code),
        Err(err) => {
            eprintln!("polymr: error: {err:#}");
            exit::code(exit::classify(&err))
        }
    }
}
