//! `polymr map`: one map task over local inputs.

use tokio_util::sync::CancellationToken;

use super::finish_task;
use crate::cli::MapArgs;
use crate::settings::MapSettings;
use crate::task::{run_map_task, MapOutput, MapTask};

pub async fn map(args: MapArgs, cancel: CancellationToken) -> anyhow::Result<u8> {
    let s = MapSettings::resolve(args).await?;
    tracing::info!(config = %s.job.path.display(), inputs = s.inputs.len(), "map task starting");
    let outcome = run_map_task(MapTask {
        job: &s.job,
        command: &s.command,
        inputs: s.inputs,
        output: MapOutput::File(s.output.clone()),
        env: s.env,
        fail_fast: s.fail_fast,
        max_record_size: s.max_record_size,
        cancel,
        sources: s.sources.clone(),
    })
    .await;
    let code = finish_task(&outcome.report, &s.output)?;
    super::upload(&s.target, &s.sources, &s.output, &outcome.report, code).await
}
