//! Resumable downloads: a task per remote input fetches it into a bounded channel that the
//! decoder reads as a stream, so decompression starts with the first bytes. A connection
//! that breaks half-way (reset, 5xx, stall) is resumed with a ranged request from the exact
//! byte where it stopped, with exponential backoff and jitter: no byte is delivered twice
//! and none is skipped. Only bytes actually received are ever passed on.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::decode::ByteStream;

/// Chunks buffered ahead of the decoder per download.
const DOWNLOAD_DEPTH: usize = 16;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Consecutive failed attempts tolerated before the input is reported failed.
    pub retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A body that sends nothing for this long is treated as a broken connection.
    pub read_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform delay in [0, min(max, base * 2^attempt)].
    fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let ms = cap.as_millis().max(1) as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
    }
}

/// Why a fetch failed, and whether trying again can help.
#[derive(Debug)]
pub struct FetchError {
    pub message: String,
    pub retryable: bool,
}

impl FetchError {
    pub fn retryable(message: impl Into<String>) -> Self {
        FetchError {
            message: message.into(),
            retryable: true,
        }
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        FetchError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// An open response body.
pub enum Body {
    S3(aws_sdk_s3::primitives::ByteStream),
    Http(reqwest::Response),
}

impl Body {
    async fn next(&mut self) -> Option<Result<Bytes, String>> {
        match self {
            Body::S3(s) => s.next().await.map(|r| r.map_err(|e| format!("{e}"))),
            Body::Http(r) => r.chunk().await.map_err(|e| format!("{e}")).transpose(),
        }
    }
}

/// A fetched body: the bytes from `offset` on, or from 0 when the server ignored the range.
pub struct Fetched {
    pub body: Body,
    pub starts_at: u64,
    /// A validator that pins the object version across ranged requests (S3 ETag).
    pub etag: Option<String>,
}

/// Something that can be fetched from a byte offset.
pub trait Fetch: Send + Sync + 'static {
    fn fetch(
        &self,
        offset: u64,
        etag: Option<&str>,
    ) -> impl std::future::Future<Output = Result<Fetched, FetchError>> + Send;
    fn describe(&self) -> String;
}

/// Starts downloading `source` now; the returned stream yields its bytes in order. With
/// `keep`, the bytes are also written to that path (via a temporary file, renamed when
/// the download is complete).
/// The counter counts the retries, for the report.
pub fn spawn_download<F: Fetch>(
    source: F,
    policy: RetryPolicy,
    keep: Option<PathBuf>,
) -> (ByteStream, Arc<AtomicU64>) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(DOWNLOAD_DEPTH);
    let stats = Arc::new(AtomicU64::new(0));
    let s = stats.clone();
    tokio::spawn(async move {
        if let Err(e) = download(&source, policy, keep, &tx, &s).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (Box::pin(tokio_util::io::StreamReader::new(stream)), stats)
}

async fn download<F: Fetch>(
    source: &F,
    policy: RetryPolicy,
    keep: Option<PathBuf>,
    tx: &mpsc::Sender<io::Result<Bytes>>,
    retries: &AtomicU64,
) -> io::Result<()> {
    let mut kept = match &keep {
        Some(path) => {
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            let tmp = path.with_extension("polymr-partial");
            Some((
                tokio::io::BufWriter::new(tokio::fs::File::create(&tmp).await?),
                tmp,
                path.clone(),
            ))
        }
        None => None,
    };
    let mut offset = 0u64;
    let mut failures = 0u32;
    let mut etag: Option<String> = None;
    loop {
        let error = match source.fetch(offset, etag.as_deref()).await {
            Err(e) if !e.retryable => {
                return Err(io::Error::other(format!(
                    "{}: {}",
                    source.describe(),
                    e.message
                )))
            }
            Err(e) => e.message,
            Ok(mut fetched) => {
                if etag.is_none() {
                    etag = fetched.etag.clone();
                }
                // A server that ignored the range resends from 0: skip what we already have.
                let mut skip = offset.saturating_sub(fetched.starts_at);
                let mut progressed = false;
                let broken = loop {
                    match tokio::time::timeout(policy.read_timeout, fetched.body.next()).await {
                        Err(_) => break format!("no data for {:?}", policy.read_timeout),
                        Ok(None) => {
                            if let Some((mut w, tmp, path)) = kept.take() {
                                w.flush().await?;
                                drop(w);
                                tokio::fs::rename(&tmp, &path).await?;
                            }
                            return Ok(());
                        }
                        Ok(Some(Err(e))) => break e,
                        Ok(Some(Ok(mut bytes))) => {
                            if skip > 0 {
                                let n = (skip as usize).min(bytes.len());
                                bytes = bytes.slice(n..);
                                skip -= n as u64;
                            }
                            if bytes.is_empty() {
                                continue;
                            }
                            offset += bytes.len() as u64;
                            progressed = true;
                            if let Some((w, _, _)) = kept.as_mut() {
                                w.write_all(&bytes).await?;
                            }
                            if tx.send(Ok(bytes)).await.is_err() {
                                return Ok(()); // the reader is gone: nobody wants the rest
                            }
                        }
                    }
                };
                if progressed {
                    failures = 0;
                }
                broken
            }
        };
        failures += 1;
        if failures > policy.retries {
            return Err(io::Error::other(format!(
                "{}: gave up after {} retries at byte {offset}: {error}",
                source.describe(),
                policy.retries
            )));
        }
        retries.fetch_add(1, Ordering::Relaxed);
        let wait = policy.delay(failures - 1);
        tracing::warn!(
            "{}: {error}; retrying from byte {offset} in {wait:?}",
            source.describe()
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy {
            retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            read_timeout: Duration::from_secs(1),
        };
        for attempt in 0..20 {
            assert!(p.delay(attempt) <= Duration::from_millis(1000));
        }
        assert!(p.delay(0) <= Duration::from_millis(100));
    }
}
