//! `polymr plan`: the plan of a job, printed, not run.

use std::io::Write;

use anyhow::Context;

use crate::cli::{PlanArgs, PlanFormat};
use crate::report::human_bytes;
use crate::settings::{EnvSnapshot, JobSettings};

pub async fn plan(args: PlanArgs) -> anyhow::Result<u8> {
    let settings = JobSettings::resolve(
        args.config.config.as_deref(),
        &args.shape,
        &args.remote,
        &args.job,
        &args.select,
        &args.inputs,
        &EnvSnapshot::capture(),
    )?;
    let planned = crate::prepare::plan_job(&settings).await?;
    let mut plan = planned.plan;
    if args.dry_run {
        let text = crate::plan::select::render_dry_run(planned.selection.as_ref(), &plan);
        super::write_stdout(text.as_bytes())?;
        return Ok(crate::exit::SUCCESS);
    }
    if let Some(work) = &args.work {
        // Tasks may run from anywhere: the plan names the work root absolutely.
        plan.work = Some(
            std::path::absolute(work).with_context(|| format!("--work `{}`", work.display()))?,
        );
    }
    plan.name_paths_absolutely()?;
    if let Some(scheduler) = args.emit {
        return super::emit::emit(scheduler, &plan, &args);
    }
    let mappers = plan.job.options.mappers;
    let mut out = Vec::new();
    match args.format {
        PlanFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &plan)?;
            out.push(b'\n');
        }
        PlanFormat::Text => {
            writeln!(
                out,
                "{} files, {} in {} map tasks ({} at once), {} reducers",
                plan.total_files,
                human_bytes(plan.total_bytes),
                plan.map_tasks.len(),
                mappers,
                plan.reducers
            )?;
            for t in &plan.map_tasks {
                writeln!(
                    out,
                    "{}  {} files  {}",
                    t.id,
                    t.inputs.len(),
                    human_bytes(t.bytes)
                )?;
                for i in &t.inputs {
                    writeln!(out, "    {}", i.name)?;
                }
            }
        }
    }
    super::write_stdout(&out)?;
    Ok(crate::exit::SUCCESS)
}
