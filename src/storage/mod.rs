//! Storage: every write and upload of a job's outputs and reports, local or `s3://`. A
//! result bound for S3 is written to a local staging file, published atomically, and
//! uploaded only when the job succeeded; reports go beside results, in the same place.

use std::path::{Path, PathBuf};

use anyhow::Context;

mod s3;

use crate::output::{write_atomic, AtomicFile};
use crate::plan::{Plan, ShuffleLayout};

/// A result that goes to S3 is written locally first and uploaded only on success.
pub struct OutputTarget {
    /// Where the task writes.
    pub local: PathBuf,
    pub s3: Option<(String, String)>,
    _staging: Option<tempfile::TempDir>,
}

impl OutputTarget {
    pub fn new(output: &std::path::Path) -> anyhow::Result<OutputTarget> {
        let text = output.to_string_lossy();
        match crate::input::s3::parse_url(&text) {
            Some((bucket, key)) if !key.is_empty() && !key.ends_with('/') => {
                let staging = tempfile::Builder::new()
                    .prefix("polymr-upload-")
                    .tempdir()?;
                let name = key.rsplit('/').next().unwrap_or("result.txt").to_string();
                Ok(OutputTarget {
                    local: staging.path().join(name),
                    s3: Some((bucket, key)),
                    _staging: Some(staging),
                })
            }
            Some(_) => Err(crate::exit::UsageError(format!(
                "--output {text}: name an object, not a bucket or prefix"
            ))
            .into()),
            None => Ok(OutputTarget {
                local: output.to_path_buf(),
                s3: None,
                _staging: None,
            }),
        }
    }

    /// Uploads the result (when `succeeded`) and the report (always) beside each other.
    pub async fn upload(
        &self,
        sources: &crate::input::Sources,
        report: &std::path::Path,
        succeeded: bool,
    ) -> anyhow::Result<()> {
        if succeeded {
            self.upload_result(sources).await?;
        }
        self.upload_report(sources, report).await
    }

    /// Uploads the result, when it goes to S3.
    pub async fn upload_result(&self, sources: &crate::input::Sources) -> anyhow::Result<()> {
        let Some((bucket, key)) = &self.s3 else {
            return Ok(());
        };
        let client = sources.s3.as_ref().context("S3 is not configured")?;
        s3::upload(client, bucket, key, &self.local)
            .await
            .map_err(anyhow::Error::msg)
    }

    /// Uploads the report beside the result, when that goes to S3.
    pub async fn upload_report(
        &self,
        sources: &crate::input::Sources,
        report: &std::path::Path,
    ) -> anyhow::Result<()> {
        let Some((bucket, key)) = &self.s3 else {
            return Ok(());
        };
        let client = sources.s3.as_ref().context("S3 is not configured")?;
        s3::upload(client, bucket, &format!("{key}.report.json"), report)
            .await
            .map_err(anyhow::Error::msg)
    }
}

/// Writes a report (a task's or a job's) atomically: a reader sees the old one or the new.
pub fn write_report(path: &Path, report: &impl serde::Serialize) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report).context("failed to serialize the report")?;
    write_atomic(path, &json)
        .with_context(|| format!("failed to write the report `{}`", path.display()))
}

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
