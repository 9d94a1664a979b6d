//! `polymr reduce`: one reduce task over mapper output files.

use tokio_util::sync::CancellationToken;

use super::finish_task;
use crate::cli::ReduceArgs;
use crate::settings::ReduceSettings;
use crate::shuffle::SortConfig;
use crate::task::{run_reduce_task, ReduceInput, ReduceTask};

pub async fn reduce(args: ReduceArgs, cancel: CancellationToken) -> anyhow::Result<u8> {
    let s = ReduceSettings::resolve(args).await?;
    let spill_dir = tempfile::Builder::new().prefix("polymr-sort-").tempdir()?;
    crate::process::register_temp(spill_dir.path());
    let report = run_reduce_task(ReduceTask {
        job: &s.job,
        command: &s.command,
        input: ReduceInput::Files {
            inputs: s.inputs,
            sort: SortConfig {
                budget: s.sort_memory,
                separator: s.job.key_separator.clone(),
                partitions: 1,
                dir: spill_dir.path().to_path_buf(),
                name: "reduce".into(),
            },
            sources: s.sources.clone(),
            max_record_size: s.max_record_size,
        },
        output: s.output.clone(),
        env: s.env,
        fail_fast: s.fail_fast,
        cancel,
        delete_runs: true,
    })
    .await
    .report;
    crate::process::unregister_temp(spill_dir.path());
    drop(spill_dir);
    let code = finish_task(&report, &s.output)?;
    let code = super::upload(&s.target, &s.sources, &s.output, &report, code).await?;
    let status = if code == crate::exit::SUCCESS {
        "succeeded"
    } else {
        report.status.label()
    };
    super::notify_and_record(
        &s.notify,
        &crate::report::TaskReport::path_for(&s.output),
        super::NoticeParts {
            job: &report.job_id,
            kind: "reduce",
            status,
            summary: &report.summary_line(),
            result: (code == crate::exit::SUCCESS)
                .then(|| super::result_location(Some(&s.target), Some(&s.output)))
                .flatten(),
        },
    )
    .await;
    Ok(code)
}
