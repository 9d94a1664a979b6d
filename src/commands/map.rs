//! `polymr map`: one map task over local inputs.

use tokio_util::sync::CancellationToken;

use super::finish_task;
use crate::cli::MapArgs;
use crate::settings::{EnvSnapshot, MapSettings};
use crate::task::{run_map_task, MapOutput, MapTask};

pub async fn map(args: MapArgs, cancel: CancellationToken) -> anyhow::Result<u8> {
    let s = MapSettings::resolve(args, &EnvSnapshot::capture())?;
    let t = crate::prepare::map_task(&s).await?;
    tracing::info!(config = %s.job.path.display(), inputs = t.inputs.len(), "map task starting");
    let outcome = run_map_task(MapTask {
        job: &s.job,
        command: &t.command,
        inputs: t.inputs,
        output: MapOutput::File(t.output.clone()),
        env: t.env,
        fail_fast: s.fail_fast,
        max_record_size: s.max_record_size,
        cancel,
        sources: t.sources.clone(),
    })
    .await;
    let code = finish_task(&outcome.report, &t.output)?;
    super::upload(&t.target, &t.sources, &t.output, &outcome.report, code).await
}
