//! Choosing a job's inputs with a `Filter.json`: a walk down a store laid out as the
//! [`KeyLayout`] says, one directory level at a time, descending only into the values the
//! filter allows, so a narrow filter never lists the whole bucket (telemetry-server's
//! `list_partitions`, and its `get_filtered_files` on disk).
//!
//! At each directory level the walk does the cheapest thing that is still exact:
//! - a string or a list of values names the children outright: nothing is listed;
//! - a range (or `"*"` with a pruning level below it) lists the level with a delimiter and
//!   keeps the children the filter allows;
//! - once no directory level below prunes, one flat listing per prefix fetches the files
//!   (as many requests as a plain listing of those keys needs).
//!
//! The file name's dimensions are matched on the files found.

use std::path::{Path, PathBuf};

use aws_sdk_s3::error::DisplayErrorContext;
use futures::{StreamExt, TryStreamExt};

use super::filter::{Allowed, Filter, KeyLayout};
use crate::exit::UsageError;
use crate::input::{Input, Location, Sources};

/// List requests in flight at once: enough to hide a round trip, few enough for any store.
const CONCURRENT_LISTS: usize = 16;
/// Values shown per dimension in the dry-run table; the rest are summed on one line.
const TABLE_VALUES: usize = 25;

/// Where a store laid out by the key layout starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    Local(PathBuf),
    /// `prefix` is empty or ends with `/`.
    S3 {
        bucket: String,
        prefix: String,
    },
}

impl std::fmt::Display for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Root::Local(p) => write!(f, "{}", p.display()),
            Root::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl Root {
    /// A SOURCE argument: `s3://bucket/prefix`, a local directory, or (with a bucket
    /// configured) a prefix in that bucket; no SOURCE at all is the whole bucket.
    pub fn resolve(arg: Option<&str>, bucket: Option<&str>) -> Result<Root, UsageError> {
        let with_slash = |p: &str| {
            let p = p.trim_start_matches('/');
            if p.is_empty() || p.ends_with('/') {
                p.to_string()
            } else {
                format!("{p}/")
            }
        };
        let Some(arg) = arg else {
            return bucket
                .map(|b| Root::S3 {
                    bucket: b.to_string(),
                    prefix: String::new(),
                })
                .ok_or_else(|| {
                    UsageError(
                        "--filter needs a SOURCE: a directory, s3://bucket/prefix/, or a bucket (--bucket)"
                            .into(),
                    )
                });
        };
        if let Some((bucket, prefix)) = crate::input::s3::parse_url(arg) {
            return Ok(Root::S3 {
                prefix: with_slash(&prefix),
                bucket,
            });
        }
        let path = Path::new(arg);
        match (std::fs::metadata(path), bucket) {
            (Ok(m), _) if m.is_dir() => Ok(Root::Local(path.to_path_buf())),
            (Ok(_), _) => Err(UsageError(format!(
                "--filter: SOURCE `{arg}` is a file; give the directory the key layout starts in"
            ))),
            (Err(_), Some(b)) => Ok(Root::S3 {
                bucket: b.to_string(),
                prefix: with_slash(arg),
            }),
            (Err(e), None) => Err(UsageError(format!(
                "--filter: SOURCE `{arg}`: {e} (and no bucket is set for a key prefix)"
            ))),
        }
    }

    fn input(&self, key: &str, size: u64) -> Input {
        match self {
            Root::Local(dir) => {
                let path = dir.join(key);
                Input {
                    name: path.to_string_lossy().into_owned(),
                    location: Location::Local(path),
                    size: Some(size),
                }
            }
            Root::S3 { bucket, prefix } => {
                let url = format!("s3://{bucket}/{prefix}{key}");
                Input::from_url(&url, &url, Some(size))
            }
        }
    }
}

/// What the walk cost: list requests (or directory reads) and the entries they returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListStats {
    pub requests: u64,
    pub entries: u64,
}

impl ListStats {
    fn add(&mut self, other: ListStats) {
        self.requests += other.requests;
        self.entries += other.entries;
    }
}

/// One file the filter chose.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The key below the root.
    pub key: String,
    pub size: u64,
    /// Its dimensions, in key order.
    pub dims: Vec<String>,
    pub input: Input,
}

/// What the filter chose under every root, in key order per root.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub roots: Vec<Root>,
    /// Each dimension's name, in key order (the filter's, else the layout's).
    pub names: Vec<String>,
    pub files: Vec<Selected>,
    pub stats: ListStats,
}

/// A listing failed: the store is unreachable, the bucket missing, access refused. The
/// source is an I/O error, so the command exits as a failure of the machine, not of usage.
#[derive(Debug, thiserror::Error)]
#[error("failed to list {what}")]
pub struct ListError {
    what: String,
    #[source]
    source: std::io::Error,
}

/// The filter chose no file: no job is started (exit code [`crate::exit::NO_INPUT`]).
#[derive(Debug, thiserror::Error)]
#[error("the filter `{}` matches no file under {roots} (list requests: {}, entries seen: {}): no job was started", filter.display(), stats.requests, stats.entries)]
pub struct NothingMatched {
    pub filter: PathBuf,
    pub roots: String,
    pub stats: ListStats,
}

/// One level of a listing: child directory names and files (name, size).
#[derive(Default)]
struct Listing {
    dirs: Vec<String>,
    files: Vec<(String, u64)>,
    stats: ListStats,
}

enum Lister<'a> {
    Local(&'a Path),
    S3 {
        client: &'a aws_sdk_s3::Client,
        bucket: &'a str,
        prefix: &'a str,
    },
}

impl Lister<'_> {
    /// The children of `rel` (empty, or ending with `/`). A directory that does not exist
    /// is empty: a value named by the filter need not be there.
    async fn children(&self, rel: &str) -> Result<Listing, ListError> {
        match self {
            Lister::Local(root) => local_children(&root.join(rel)),
            Lister::S3 {
                client,
                bucket,
                prefix,
            } => s3_list(client, bucket, &format!("{prefix}{rel}"), true).await,
        }
    }

    /// Every file exactly `depth` segments below `rel` (1: the files directly in it), named
    /// relative to `rel`.
    async fn deep(&self, rel: &str, depth: usize) -> Result<Listing, ListError> {
        let mut listing = match self {
            Lister::Local(root) => local_deep(&root.join(rel), depth)?,
            Lister::S3 {
                client,
                bucket,
                prefix,
            } => {
                // Files directly under `rel` are one delimited level: deeper keys, which
                // would be dropped, are not even fetched.
                s3_list(client, bucket, &format!("{prefix}{rel}"), depth == 1).await?
            }
        };
        listing
            .files
            .retain(|(name, _)| name.split('/').count() == depth);
        Ok(listing)
    }
}

fn local_error(dir: &Path, source: std::io::Error) -> ListError {
    ListError {
        what: format!("`{}`", dir.display()),
        source,
    }
}

fn local_children(dir: &Path) -> Result<Listing, ListError> {
    let mut out = Listing {
        stats: ListStats {
            requests: 1,
            entries: 0,
        },
        ..Listing::default()
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(out)
        }
        Err(e) => return Err(local_error(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| local_error(dir, e))?;
        out.stats.entries += 1;
        let Ok(name) = entry.file_name().into_string() else {
            tracing::warn!(
                "`{}`: not UTF-8, cannot be a key: skipped",
                entry.path().display()
            );
            continue;
        };
        // Symlinks are followed, as a listing of the store they stand for would show them.
        match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_dir() => out.dirs.push(name),
            Ok(m) if m.is_file() => out.files.push((name, m.len())),
            Ok(_) => {}
            Err(e) => tracing::warn!("`{}`: {e}: skipped", entry.path().display()),
        }
    }
    out.dirs.sort();
    out.files.sort();
    Ok(out)
}

/// Files exactly `depth` levels down; never deeper, so a symlink loop cannot run away.
fn local_deep(dir: &Path, depth: usize) -> Result<Listing, ListError> {
    let mut here = local_children(dir)?;
    if depth <= 1 {
        return Ok(here);
    }
    let mut out = Listing {
        stats: here.stats,
        ..Listing::default()
    };
    for sub in std::mem::take(&mut here.dirs) {
        let below = local_deep(&dir.join(&sub), depth - 1)?;
        out.stats.add(below.stats);
        out.files.extend(
            below
                .files
                .into_iter()
                .map(|(name, size)| (format!("{sub}/{name}"), size)),
        );
    }
    Ok(out)
}

/// One S3 listing under `prefix`, every page; with `delimited`, one level only.
async fn s3_list(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    delimited: bool,
) -> Result<Listing, ListError> {
    let mut out = Listing::default();
    let mut request = client.list_objects_v2().bucket(bucket).prefix(prefix);
    if delimited {
        request = request.delimiter("/");
    }
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ListError {
            what: format!("s3://{bucket}/{prefix}"),
            source: std::io::Error::other(DisplayErrorContext(&e).to_string()),
        })?;
        out.stats.requests += 1;
        for p in page.common_prefixes() {
            out.stats.entries += 1;
            let child = p
                .prefix()
                .and_then(|p| p.strip_prefix(prefix))
                .and_then(|p| p.strip_suffix('/'));
            if let Some(c) = child.filter(|c| !c.is_empty()) {
                out.dirs.push(c.to_string());
            }
        }
        for o in page.contents() {
            out.stats.entries += 1;
            let name = o.key().and_then(|k| k.strip_prefix(prefix));
            // A key ending in `/` is a folder marker, not a file.
            if let Some(n) = name.filter(|n| !n.is_empty() && !n.ends_with('/')) {
                out.files
                    .push((n.to_string(), o.size().unwrap_or(0).max(0) as u64));
            }
        }
    }
    Ok(out)
}

/// Lists each of `prefixes` with `list`, a bounded number at once, in order.
async fn list_all<'a, F, Fut>(
    prefixes: &'a [String],
    list: F,
) -> Result<Vec<(&'a String, Listing)>, ListError>
where
    F: Fn(&'a String) -> Fut,
    Fut: std::future::Future<Output = Result<Listing, ListError>> + 'a,
{
    futures::stream::iter(prefixes.iter().map(|p| {
        let listed = list(p);
        async move { listed.await.map(|l| (p, l)) }
    }))
    .buffered(CONCURRENT_LISTS)
    .try_collect()
    .await
}

/// The walk: every file (key below the root, size) that the directory levels allow.
async fn walk(
    lister: &Lister<'_>,
    filter: &Filter,
    layout: &KeyLayout,
) -> Result<(Vec<(String, u64)>, ListStats), ListError> {
    let depth = layout.directories.len();
    let mut stats = ListStats::default();
    let mut frontier = vec![String::new()];
    let mut found = Vec::new();
    for level in 0..=depth {
        if (level..depth).all(|l| *filter.allowed(l) == Allowed::Any) {
            // Nothing left to prune among the directories: the files, flat.
            let listed = list_all(&frontier, |p| lister.deep(p, depth - level + 1)).await?;
            for (prefix, listing) in listed {
                stats.add(listing.stats);
                found.extend(
                    listing
                        .files
                        .into_iter()
                        .map(|(name, size)| (format!("{prefix}{name}"), size)),
                );
            }
            break;
        }
        let allowed = filter.allowed(level);
        if let Some(values) = allowed.exact_values() {
            frontier = frontier
                .iter()
                .flat_map(|p| values.iter().map(move |v| format!("{p}{v}/")))
                .collect();
            continue;
        }
        let listed = list_all(&frontier, |p| lister.children(p)).await?;
        let mut next = Vec::new();
        for (prefix, listing) in listed {
            stats.add(listing.stats);
            next.extend(
                listing
                    .dirs
                    .into_iter()
                    .filter(|d| allowed.allows(d))
                    .map(|d| format!("{prefix}{d}/")),
            );
        }
        frontier = next;
    }
    found.sort();
    Ok((found, stats))
}

/// The files under `root` that `filter` chooses.
pub async fn select(
    root: &Root,
    filter: &Filter,
    layout: &KeyLayout,
    sources: &Sources,
) -> Result<Selection, anyhow::Error> {
    let lister = match root {
        Root::Local(dir) => Lister::Local(dir),
        Root::S3 { bucket, prefix } => Lister::S3 {
            client: sources
                .s3
                .as_ref()
                .ok_or_else(|| UsageError(format!("{root}: S3 is not configured")))?,
            bucket,
            prefix,
        },
    };
    let (found, stats) = walk(&lister, filter, layout).await?;
    let mut outside = 0usize;
    let files = found
        .into_iter()
        .filter_map(|(key, size)| {
            let Some(dims) = layout.dimensions_of(&key) else {
                outside += 1;
                return None;
            };
            let chosen = dims
                .iter()
                .enumerate()
                .all(|(i, v)| filter.allowed(i).allows(v));
            chosen.then(|| Selected {
                input: root.input(&key, size),
                key,
                size,
                dims,
            })
        })
        .collect();
    if outside > 0 {
        tracing::warn!("{root}: {outside} files do not fit the key layout: skipped");
    }
    tracing::info!(
        root = %root,
        list_requests = stats.requests,
        entries = stats.entries,
        "listed the filter's inputs"
    );
    Ok(Selection {
        roots: vec![root.clone()],
        names: Vec::new(),
        files,
        stats,
    })
}

/// The inputs a job reads: the filter's choice under each SOURCE when `--filter` is given,
/// else the arguments expanded as files, directories, globs and URLs.
pub async fn choose_inputs(
    filter: Option<&Path>,
    args: &[String],
    sources: &Sources,
    layout: &KeyLayout,
) -> anyhow::Result<(Vec<Input>, Option<Selection>)> {
    let Some(filter_path) = filter else {
        return Ok((crate::input::expand(args, sources).await, None));
    };
    let filter = Filter::load(filter_path)?;
    filter.check_layout(layout)?;
    let roots = if args.is_empty() {
        vec![Root::resolve(None, sources.bucket.as_deref())?]
    } else {
        args.iter()
            .map(|a| Root::resolve(Some(a), sources.bucket.as_deref()))
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut all = Selection::default();
    for root in &roots {
        let s = select(root, &filter, layout, sources).await?;
        all.roots.extend(s.roots);
        all.files.extend(s.files);
        all.stats.add(s.stats);
    }
    if all.files.is_empty() {
        return Err(NothingMatched {
            filter: filter_path.to_path_buf(),
            roots: roots
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", "),
            stats: all.stats,
        }
        .into());
    }
    let inputs = all.files.iter().map(|f| f.input.clone()).collect();
    all.dims_named(&filter, layout);
    Ok((inputs, Some(all)))
}

/// Per dimension value: how many files and bytes the filter chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimensionRow {
    pub dimension: String,
    pub value: String,
    pub files: u64,
    pub bytes: u64,
}

impl Selection {
    /// Dimension names for the table: the filter's where it names them, else the layout's.
    fn dims_named(&mut self, filter: &Filter, layout: &KeyLayout) {
        self.names = (0..layout.len())
            .map(|i| filter.name_of(i, layout).to_string())
            .collect();
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The table of `--dry-run`: per dimension, its values in order, with files and bytes.
    pub fn table(&self) -> Vec<DimensionRow> {
        let mut rows = Vec::new();
        for (i, name) in self.names.iter().enumerate() {
            let mut by_value = std::collections::BTreeMap::<&str, (u64, u64)>::new();
            for f in &self.files {
                if let Some(v) = f.dims.get(i) {
                    let e = by_value.entry(v).or_default();
                    e.0 += 1;
                    e.1 += f.size;
                }
            }
            rows.extend(
                by_value
                    .into_iter()
                    .map(|(v, (files, bytes))| DimensionRow {
                        dimension: name.clone(),
                        value: v.to_string(),
                        files,
                        bytes,
                    }),
            );
        }
        rows
    }
}

/// The `--dry-run` text: totals, the dimension table, and the map tasks' spread.
pub fn render_dry_run(selection: Option<&Selection>, plan: &super::Plan) -> String {
    use crate::report::human_bytes;
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} files, {} ({} bytes)",
        plan.total_files,
        human_bytes(plan.total_bytes),
        plan.total_bytes
    );
    if let Some(s) = selection {
        let roots: Vec<String> = s.roots.iter().map(|r| r.to_string()).collect();
        let _ = writeln!(
            out,
            "listed {}: list requests: {}, entries seen: {}",
            roots.join(", "),
            s.stats.requests,
            s.stats.entries
        );
        let _ = writeln!(out);
        render_table(&mut out, &s.table());
    }
    let _ = writeln!(out);
    render_spread(&mut out, plan);
    out
}

fn render_table(out: &mut String, rows: &[DimensionRow]) {
    use crate::report::human_bytes;
    use std::fmt::Write;
    let dim_w = rows
        .iter()
        .map(|r| r.dimension.len())
        .max()
        .unwrap_or(0)
        .max(9);
    let val_w = rows
        .iter()
        .map(|r| r.value.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(5, 40);
    let _ = writeln!(
        out,
        "{:dim_w$}  {:val_w$}  {:>8}  {:>10}",
        "dimension", "value", "files", "bytes"
    );
    let mut i = 0;
    while i < rows.len() {
        let dim = &rows[i].dimension;
        let same: Vec<&DimensionRow> = rows[i..]
            .iter()
            .take_while(|r| &r.dimension == dim)
            .collect();
        for r in same.iter().take(TABLE_VALUES) {
            let _ = writeln!(
                out,
                "{:dim_w$}  {:val_w$}  {:>8}  {:>10}",
                r.dimension,
                r.value,
                r.files,
                human_bytes(r.bytes)
            );
        }
        if same.len() > TABLE_VALUES {
            let rest = &same[TABLE_VALUES..];
            let _ = writeln!(
                out,
                "{:dim_w$}  {:val_w$}  {:>8}  {:>10}",
                dim,
                format!("({} more)", rest.len()),
                rest.iter().map(|r| r.files).sum::<u64>(),
                human_bytes(rest.iter().map(|r| r.bytes).sum())
            );
        }
        i += same.len();
    }
}

fn render_spread(out: &mut String, plan: &super::Plan) {
    use crate::report::human_bytes;
    use std::fmt::Write;
    let mut bytes: Vec<u64> = plan.map_tasks.iter().map(|t| t.bytes).collect();
    let mut files: Vec<usize> = plan.map_tasks.iter().map(|t| t.inputs.len()).collect();
    bytes.sort_unstable();
    files.sort_unstable();
    let _ = writeln!(
        out,
        "{} map tasks, {} reducers",
        plan.map_tasks.len(),
        plan.reducers
    );
    if let (Some(lo), Some(hi)) = (bytes.first(), bytes.last()) {
        let _ = writeln!(
            out,
            "bytes per task: min {}, median {}, max {}",
            human_bytes(*lo),
            human_bytes(bytes[bytes.len() / 2]),
            human_bytes(*hi)
        );
    }
    if let (Some(lo), Some(hi)) = (files.first(), files.last()) {
        let _ = writeln!(
            out,
            "files per task: min {lo}, median {}, max {hi}",
            files[files.len() / 2]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, prefix: &str) -> Root {
        Root::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn sources_resolve_to_roots() {
        assert_eq!(Root::resolve(Some("s3://b"), None).ok(), Some(s3("b", "")));
        assert_eq!(
            Root::resolve(Some("s3://b/data"), None).ok(),
            Some(s3("b", "data/"))
        );
        assert_eq!(
            Root::resolve(Some("s3://b/data/"), None).ok(),
            Some(s3("b", "data/"))
        );
        // No SOURCE: the whole configured bucket; none configured is a usage error.
        assert_eq!(Root::resolve(None, Some("b")).ok(), Some(s3("b", "")));
        assert!(Root::resolve(None, None).is_err());
        // A bare prefix is in the bucket unless it exists on disk.
        assert_eq!(
            Root::resolve(Some("no/such/dir"), Some("b")).ok(),
            Some(s3("b", "no/such/dir/"))
        );
        let dir = std::env::temp_dir();
        let arg = dir.to_string_lossy().into_owned();
        assert_eq!(
            Root::resolve(Some(&arg), Some("b")).ok(),
            Some(Root::Local(dir))
        );
        let e = Root::resolve(Some("no/such/dir"), None).expect_err("missing");
        assert!(e.0.contains("no/such/dir"), "{}", e.0);
    }
}
