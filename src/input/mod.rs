//! Named inputs and the byte streams behind them. Each source — local disk, S3, HTTP —
//! resolves user arguments into [`Input`]s and opens them as streams.

pub mod http;
mod local;
pub mod remote;
pub mod s3;

pub use local::{expand_local, LocalExpander};

use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::decode::ByteStream;

/// One input file of a task.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Input {
    /// What the user and the report call it: the path as given or found, or the URL.
    pub name: String,
    #[serde(skip)]
    pub location: Location,
    /// Size in bytes when known before reading (for planning and progress).
    pub size: Option<u64>,
}

#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    S3 {
        bucket: String,
        key: String,
    },
    Http(String),
    /// An argument that named nothing: kept so that the report says so.
    Missing(String),
}

/// How remote inputs are reached. Built once per command.
#[derive(Clone, Default)]
pub struct Sources {
    pub s3: Option<aws_sdk_s3::Client>,
    pub http: Option<reqwest::Client>,
    /// The bucket of bare keys; `None` when bare arguments are local paths only.
    pub bucket: Option<String>,
    pub policy: remote::RetryPolicy,
    /// Downloads run ahead of the input being read (the original ran 3).
    pub parallel_downloads: usize,
    /// Keep downloaded objects under this directory (`./s3/<key>`).
    pub keep_downloads: Option<PathBuf>,
}

/// An open input: its bytes, and the download's retry counter when remote.
pub struct Opened {
    pub stream: ByteStream,
    pub retries: Option<Arc<AtomicU64>>,
}

impl Input {
    pub fn is_remote(&self) -> bool {
        matches!(self.location, Location::S3 { .. } | Location::Http(_))
    }

    /// The URL of a remote input (`s3://…`, `https://…`), for plans.
    pub fn url(&self) -> Option<String> {
        match &self.location {
            Location::S3 { bucket, key } => Some(format!("s3://{bucket}/{key}")),
            Location::Http(u) => Some(u.clone()),
            _ => None,
        }
    }

    pub fn from_url(name: &str, url: &str, size: Option<u64>) -> Input {
        let location = match s3::parse_url(url) {
            Some((bucket, key)) => Location::S3 { bucket, key },
            None => Location::Http(url.to_string()),
        };
        Input {
            name: name.to_string(),
            location,
            size,
        }
    }

    /// Opens the input. Remote inputs start downloading at once, in the background.
    pub async fn open(&self, sources: &Sources) -> io::Result<Opened> {
        match &self.location {
            Location::Local(path) => {
                let file = tokio::fs::File::open(path).await?;
                Ok(Opened {
                    stream: Box::pin(file),
                    retries: None,
                })
            }
            Location::S3 { bucket, key } => {
                let client = sources
                    .s3
                    .clone()
                    .ok_or_else(|| io::Error::other("S3 is not configured for this command"))?;
                let keep = match &sources.keep_downloads {
                    Some(root) => {
                        Some(s3::safe_download_path(root, key).map_err(io::Error::other)?)
                    }
                    None => None,
                };
                let object = s3::S3Object {
                    client,
                    bucket: bucket.clone(),
                    key: key.clone(),
                };
                Ok(started(remote::spawn_download(
                    object,
                    sources.policy,
                    keep,
                )))
            }
            Location::Http(url) => {
                let client = sources
                    .http
                    .clone()
                    .ok_or_else(|| io::Error::other("HTTP is not configured for this command"))?;
                let object = http::HttpObject {
                    client,
                    url: url.clone(),
                };
                Ok(started(remote::spawn_download(
                    object,
                    sources.policy,
                    None,
                )))
            }
            Location::Missing(why) => Err(io::Error::new(io::ErrorKind::NotFound, why.clone())),
        }
    }

    /// A local path for inputs that are already files on this machine.
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match &self.location {
            Location::Local(p) => Some(p),
            _ => None,
        }
    }
}

/// Inputs opened ahead of their turn, by index.
pub type Prefetched = std::collections::HashMap<usize, io::Result<Opened>>;

/// Opens the remote inputs among the `sources.parallel_downloads` from `from` on that are
/// not open yet, so their downloads run while earlier inputs are read; then hands over
/// input `from`, opening it now if it was not.
pub async fn open_with_prefetch(
    inputs: &[Input],
    from: usize,
    sources: &Sources,
    opened: &mut Prefetched,
) -> io::Result<Opened> {
    let ahead = sources.parallel_downloads.max(1);
    for (j, input) in inputs.iter().enumerate().skip(from).take(ahead) {
        if input.is_remote() && !opened.contains_key(&j) {
            opened.insert(j, input.open(sources).await);
        }
    }
    match opened.remove(&from) {
        Some(o) => o,
        None => inputs[from].open(sources).await,
    }
}

fn started((stream, retries): (ByteStream, Arc<AtomicU64>)) -> Opened {
    Opened {
        stream,
        retries: Some(retries),
    }
}

/// Expands arguments into inputs: `s3://bucket/key`, `s3://bucket/prefix/` (listed),
/// `http(s)://…`, local files, directories and globs, and — when a bucket is configured —
/// bare keys in that bucket (the original's `polymr map saved_session/…/file.xz`).
/// Every input comes out once: local files by (device, inode), remote ones by URL.
pub async fn expand(args: &[String], sources: &Sources) -> Vec<Input> {
    let mut out = Vec::new();
    let mut local = LocalExpander::default();
    for arg in args {
        if let Some((bucket, key)) = s3::parse_url(arg) {
            out.extend(expand_s3(arg, &bucket, &key, sources).await);
        } else if arg.starts_with("http://") || arg.starts_with("https://") {
            out.push(Input::from_url(arg, arg, None));
        } else if std::path::Path::new(arg).exists()
            || arg.contains(['*', '?', '['])
            || sources.bucket.is_none()
        {
            out.extend(local.expand(arg));
        } else if let Some(bucket) = &sources.bucket {
            let url = format!("s3://{bucket}/{arg}");
            out.extend(expand_s3(&url, bucket, arg, sources).await);
        }
    }
    let mut urls = std::collections::HashSet::new();
    out.retain(|i| match i.url() {
        Some(u) => {
            let first = urls.insert(u);
            if !first {
                tracing::warn!("`{}` is named twice: read once", i.name);
            }
            first
        }
        None => true,
    });
    out
}

async fn expand_s3(arg: &str, bucket: &str, key: &str, sources: &Sources) -> Vec<Input> {
    let missing = |why: String| Input {
        name: arg.to_string(),
        location: Location::Missing(why),
        size: None,
    };
    let Some(client) = &sources.s3 else {
        return vec![missing(format!("{arg}: S3 is not configured"))];
    };
    if key.is_empty() || key.ends_with('/') {
        return match s3::list(client, bucket, key).await {
            Ok(objects) if objects.is_empty() => {
                vec![missing(format!("{arg}: no object under this prefix"))]
            }
            Ok(objects) => objects
                .into_iter()
                .map(|(k, size)| {
                    Input::from_url(
                        &format!("s3://{bucket}/{k}"),
                        &format!("s3://{bucket}/{k}"),
                        Some(size),
                    )
                })
                .collect(),
            Err(e) => vec![missing(e)],
        };
    }
    match s3::size_of(client, bucket, key).await {
        Ok(size) => vec![Input::from_url(
            &format!("s3://{bucket}/{key}"),
            &format!("s3://{bucket}/{key}"),
            Some(size),
        )],
        Err(e) => vec![missing(e)],
    }
}
