//! Publishing a job's result: the partitions, concatenated into `--output` and/or copied to
//! `--output-dir/part-NNNNN`, each file replaced atomically.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::output::{write_atomic, AtomicFile};
use crate::plan::{Plan, ShuffleLayout};

/// Where a job's result comes from: every reduce task's output, in partition order, or every
/// map task's output for a map-only job.
pub fn parts_of(plan: &Plan, layout: &ShuffleLayout) -> Vec<PathBuf> {
    if plan.reducers == 0 {
        plan.map_tasks
            .iter()
            .map(|t| ShuffleLayout::map_output_in(&layout.map_done_dir(&t.id)))
            .collect()
    } else {
        (0..plan.reducers)
            .map(|p| layout.reduce_output(p))
            .collect()
    }
}

/// The single result (partitions concatenated in order) and/or one file per partition.
pub fn publish(plan: &Plan, output: Option<&Path>, parts: &[PathBuf]) -> anyhow::Result<()> {
    if let Some(dir) = &plan.output_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
        let prefix = if plan.reducers == 0 { "part-m" } else { "part" };
        for (i, part) in parts.iter().enumerate() {
            let target = dir.join(format!("{prefix}-{i:05}"));
            copy_atomic(std::slice::from_ref(part), &target)?;
        }
        write_atomic(&ShuffleLayout::success_in(dir), b"")?;
    }
    if let Some(out) = output {
        copy_atomic(parts, out)?;
    }
    Ok(())
}

fn copy_atomic(parts: &[PathBuf], target: &Path) -> anyhow::Result<()> {
    let out = AtomicFile::create(target)
        .with_context(|| format!("failed to create the output beside `{}`", target.display()))?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, out.reopen()?);
        for p in parts {
            let mut f = std::fs::File::open(p)
                .with_context(|| format!("failed to open `{}`", p.display()))?;
            std::io::copy(&mut f, &mut w)
                .with_context(|| format!("failed to copy `{}`", p.display()))?;
        }
        std::io::Write::flush(&mut w)?;
    }
    out.publish()
        .with_context(|| format!("failed to publish `{}`", target.display()))
}
