//! `polymr reduce`: one reduce task over mapper output files.

use tokio_util::sync::CancellationToken;

use crate::cli::ReduceArgs;
use crate::settings::{EnvSnapshot, ReduceSettings};
use crate::shuffle::SortConfig;
use crate::task::{run_reduce_task, ReduceInput, ReduceTask};

pub async fn reduce(args: ReduceArgs, cancel: CancellationToken) -> anyhow::Result<u8> {
    let s = ReduceSettings::resolve(args, &EnvSnapshot::capture())?;
    let t = crate::prepare::reduce_task(&s).await?;
    let spill_dir = tempfile::Builder::new().prefix("polymr-sort-").tempdir()?;
    crate::process::register_temp(spill_dir.path());
    let mut report = run_reduce_task(ReduceTask {
        job: &s.job,
        command: &t.command,
        input: ReduceInput::Files {
            inputs: t.inputs,
            sort: SortConfig {
                budget: s.sort_memory,
                separator: s.job.key_separator.clone(),
                partitions: 1,
                dir: spill_dir.path().to_path_buf(),
                name: "reduce".into(),
            },
            sources: t.sources.clone(),
            max_record_size: s.max_record_size,
        },
        output: t.output.clone(),
        env: t.env.clone(),
        fail_fast: s.fail_fast,
        cancel,
        delete_runs: true,
    })
    .await
    .report;
    crate::process::unregister_temp(spill_dir.path());
    drop(spill_dir);
    let report_path = crate::report::TaskReport::path_for(&t.output);
    let mut code = super::tell(&report, &report_path);
    if report.status == crate::report::TaskStatus::Succeeded {
        if let Err(e) = t.target.upload_result(&t.sources).await {
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
                    .then(|| super::result_location(Some(&t.target), Some(&t.output)))
                    .flatten(),
                report_json: &json,
            },
        )
        .await;
        report.notifications = Some(sent);
    }
    // Written, and uploaded, once: with the notifications.
    crate::storage::write_report(&report_path, &report)?;
    if let Err(e) = t.target.upload_report(&t.sources, &report_path).await {
        eprintln!("polymr: error: {e:#}");
        code = crate::exit::JOB_FAILED;
    }
    Ok(code)
}
