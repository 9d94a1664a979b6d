//! `polymr reduce`: one reduce task over mapper output files.

use tokio_util::sync::CancellationToken;

use crate::cli::ReduceArgs;
use crate::settings::ReduceSettings;
use crate::shuffle::SortConfig;
use crate::task::{run_reduce_task, ReduceInput, ReduceTask};

pub async fn reduce(args: ReduceArgs, cancel: CancellationToken) -> anyhow::Result<u8> {
    let s = ReduceSettings::resolve(args).await?;
    let spill_dir = tempfile::Builder::new().prefix("polymr-sort-").tempdir()?;
    crate::process::register_temp(spill_dir.path());
    let mut report = run_reduce_task(ReduceTask {
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
    let report_path = crate::report::TaskReport::path_for(&s.output);
    let mut code = super::tell(&report, &report_path);
    if report.status == crate::report::TaskStatus::Succeeded {
        if let Err(e) = s.target.upload_result(&s.sources).await {
            eprintln!("polymr: error: {e:#}");
            code = crate::exit::JOB_FAILED;
        }
    }
    if !s.notify.is_empty() {
        let status = if code == crate::exit::SUCCESS {
            "succeeded"
        } else {
            report.status.label()
        };
        let json = serde_json::to_vec_pretty(&report)?;
        let sent = crate::notify::notify(
            &s.notify,
            &crate::notify::Notice {
                job: &report.job_id,
                kind: "reduce",
                status,
                summary: &report.summary_line(),
                result: (code == crate::exit::SUCCESS)
                    .then(|| super::result_location(Some(&s.target), Some(&s.output)))
                    .flatten(),
                report_json: &json,
            },
        )
        .await;
        report.notifications = Some(sent);
    }
    // Written, and uploaded, once: with the notifications.
    crate::storage::write_report(&report_path, &report)?;
    if let Err(e) = s.target.upload_report(&s.sources, &report_path).await {
        eprintln!("polymr: error: {e:#}");
        code = crate::exit::JOB_FAILED;
    }
    Ok(code)
}
