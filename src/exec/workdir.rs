//! The work directory of a job: made (or reopened by `--resume`, only when polymr marked
//! it), checked against the plan it holds, and cleared of what polymr wrote there. The
//! names inside come from the plan's [`ShuffleLayout`].

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::exit::UsageError;
use crate::output::write_atomic;
use crate::plan::{Plan, ShuffleLayout, MARKER};
use crate::prepare::PreparedRun;

/// Writes the plan into a new work directory, or checks that the one there is the same
/// work, so a resumed job never mixes two plans' tasks.
pub fn check_plan(layout: &ShuffleLayout, plan: &Plan) -> anyhow::Result<()> {
    let workdir = layout.root();
    let path = layout.plan_file();
    if path.is_file() {
        let old: Plan = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| format!("`{}` is not a polymr plan", path.display()))?;
        if !old.same_work(plan) {
            return Err(crate::exit::UsageError(format!(
                "--resume: `{}` holds the work of another plan (different inputs, --mappers, --reducers or batch size); use a new directory or the same arguments",
                workdir.display()
            ))
            .into());
        }
        return Ok(());
    }
    write_atomic(&path, &serde_json::to_vec_pretty(plan)?)
        .with_context(|| format!("failed to write `{}`", path.display()))
}

/// The work directory (absolute), and the guard that removes it when polymr made it for
/// this run alone. A `--resume` directory must be new, empty, or one polymr marked.
pub fn prepare_workdir(s: &PreparedRun) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(d) = &s.resume {
        let dir = resolve_path(d);
        for (flag, out) in [
            ("--output", &s.output),
            ("--output-dir", &s.plan.output_dir),
        ] {
            if let Some(out) = out {
                if resolve_path(out).starts_with(&dir) {
                    return Err(UsageError(format!(
                        "{flag} `{}` is inside the work directory `{}`, which polymr clears after the job; put it elsewhere",
                        out.display(),
                        d.display()
                    ))
                    .into());
                }
            }
        }
        open_resume_dir(&dir, &s.plan.job.id)?;
        return Ok((dir, None));
    }
    let base = s
        .output
        .as_deref()
        .or(s.plan.output_dir.as_deref())
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&base)
        .with_context(|| format!("failed to create `{}`", base.display()))?;
    let t = tempfile::Builder::new()
        .prefix(".polymr-work-")
        .tempdir_in(&base)
        .with_context(|| format!("failed to create a work directory in `{}`", base.display()))?;
    let dir = resolve_path(t.path());
    write_marker(&dir, &s.plan.job.id)?;
    Ok((dir, Some(t)))
}

/// Accepts a directory polymr marked (resuming it), or a new or empty one (marking it).
pub fn open_resume_dir(dir: &Path, job_id: &str) -> anyhow::Result<()> {
    if dir.join(MARKER).is_file() {
        return Ok(());
    }
    if dir.exists() {
        if !dir.is_dir() {
            return Err(
                UsageError(format!("--resume `{}` is not a directory", dir.display())).into(),
            );
        }
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("failed to list the work directory `{}`", dir.display()))?;
        if entries.next().is_some() {
            return Err(UsageError(format!(
                "--resume `{}`: the directory is not empty and holds no `{MARKER}`, so polymr did not make it; give a new or empty directory, or the work directory a polymr job printed",
                dir.display()
            ))
            .into());
        }
    } else {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create the work directory `{}`", dir.display()))?;
    }
    write_marker(dir, job_id)
}

pub fn write_marker(dir: &Path, job_id: &str) -> anyhow::Result<()> {
    let marker = serde_json::json!({
        "polymr_version": env!("CARGO_PKG_VERSION"),
        "job_id": job_id,
        "created_at_unix_ms": crate::task::unix_ms(),
    });
    let path = dir.join(MARKER);
    write_atomic(&path, &serde_json::to_vec_pretty(&marker)?)
        .with_context(|| format!("failed to write `{}`", path.display()))
}

/// An absolute path with `.`/`..` folded and the longest existing prefix canonicalised, so
/// that a path through a symlink and one that does not exist yet still compare.
pub fn resolve_path(p: &Path) -> PathBuf {
    use std::path::Component;
    let joined = match std::env::current_dir() {
        Ok(cwd) if p.is_relative() => cwd.join(p),
        _ => p.to_path_buf(),
    };
    let mut lexical = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                lexical.pop();
            }
            c => lexical.push(c),
        }
    }
    let mut rest = Vec::new();
    let mut existing = lexical.as_path();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |acc, name| acc.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

/// Removes from a `--resume` directory what this job's runs wrote there, the marker last,
/// then the directory itself if nothing else is left: a user's own files stay.
pub fn clear_workdir(layout: &ShuffleLayout, plan: &Plan) {
    let dir = layout.root();
    let ids: std::collections::HashSet<&str> =
        plan.map_tasks.iter().map(|t| t.id.as_str()).collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name == MARKER || !ShuffleLayout::created_by_polymr(&name, &ids) {
                continue;
            }
            let p = e.path();
            let _ = match e.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
                _ => std::fs::remove_file(&p),
            };
        }
    }
    let _ = std::fs::remove_file(layout.marker());
    let _ = std::fs::remove_dir(dir);
}
