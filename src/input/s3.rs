//! S3 inputs and outputs with `aws-sdk-s3`: objects by URL, prefixes listed page by page,
//! bare keys in the default bucket (as the original took them), endpoint override and
//! path-style addressing for any S3-compatible store, multipart upload of large results.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::Client;

use super::remote::{Body, Fetch, FetchError, Fetched};

/// The original system's bucket.
pub const DEFAULT_BUCKET: &str = "telemetry-published-v1";

#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub region: Option<String>,
    /// Decrypted `CREDENTIALS`; without them the standard AWS provider chain applies.
    pub credentials: Option<(String, String, Option<String>)>,
    pub attempt_timeout: Option<Duration>,
}

pub async fn client(opts: &S3Options) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = &opts.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some((id, secret, token)) = &opts.credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id.clone(),
            secret.clone(),
            token.clone(),
            None,
            "polymr-CREDENTIALS",
        ));
    }
    let shared = loader.load().await;
    let mut b = aws_sdk_s3::config::Builder::from(&shared).force_path_style(opts.path_style);
    if shared.region().is_none() {
        b = b.region(aws_config::Region::new("us-east-1"));
    }
    if let Some(e) = &opts.endpoint {
        b = b.endpoint_url(e.clone());
    }
    if let Some(t) = opts.attempt_timeout {
        b = b.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(t)
                .build(),
        );
    }
    Client::from_conf(b.build())
}

/// `s3://bucket/key` → (bucket, key).
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), key.to_string()))
}

/// Where `key` is kept under `root` (the original's `./s3/<key>`). Keys are not trusted as
/// paths: `..`, NUL and empty keys are refused, and leading slashes stay inside `root`.
pub fn safe_download_path(root: &Path, key: &str) -> Result<PathBuf, String> {
    if key.contains('\0') {
        return Err(format!("object key {key:?} holds a NUL byte"));
    }
    let mut path = root.to_path_buf();
    let mut parts = 0;
    for part in key.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "object key {key:?} climbs out of the download directory"
                ))
            }
            p => {
                path.push(p);
                parts += 1;
            }
        }
    }
    if parts == 0 {
        return Err(format!("object key {key:?} names no file"));
    }
    Ok(path)
}

pub struct S3Object {
    pub client: Client,
    pub bucket: String,
    pub key: String,
}

fn classify<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
    status: Option<u16>,
) -> FetchError {
    let message = format!("{}", DisplayErrorContext(&e));
    match (&e, status) {
        (SdkError::ServiceError(_), Some(s)) if s == 429 || s >= 500 => {
            FetchError::retryable(message)
        }
        (SdkError::ServiceError(_), Some(412)) => {
            FetchError::fatal(format!("the object changed during the download: {message}"))
        }
        (SdkError::ServiceError(_), _) | (SdkError::ConstructionFailure(_), _) => {
            FetchError::fatal(message)
        }
        _ => FetchError::retryable(message),
    }
}

impl Fetch for S3Object {
    async fn fetch(&self, offset: u64, etag: Option<&str>) -> Result<Fetched, FetchError> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(&self.key);
        if offset > 0 {
            req = req.range(format!("bytes={offset}-"));
        }
        if let Some(e) = etag {
            req = req.if_match(e);
        }
        match req.send().await {
            Ok(out) => Ok(Fetched {
                starts_at: if out.content_range().is_some() {
                    offset
                } else {
                    0
                },
                etag: out.e_tag().map(str::to_string),
                body: Body::S3(out.body),
            }),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                Err(classify(e, status))
            }
        }
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// Every object under `prefix`, with its size, page by page.
pub async fn list(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<(String, u64)>, String> {
    let mut out = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            format!(
                "listing s3://{bucket}/{prefix}: {}",
                DisplayErrorContext(&e)
            )
        })?;
        for o in page.contents() {
            if let Some(k) = o.key() {
                if !k.ends_with('/') {
                    out.push((k.to_string(), o.size().unwrap_or(0).max(0) as u64));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The size of one object (for planning), or why it cannot be read.
pub async fn size_of(client: &Client, bucket: &str, key: &str) -> Result<u64, String> {
    client
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map(|h| h.content_length().unwrap_or(0).max(0) as u64)
        .map_err(|e| format!("s3://{bucket}/{key}: {}", DisplayErrorContext(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_escape_the_download_directory() {
        let root = Path::new("/work/s3");
        assert_eq!(
            safe_download_path(root, "a/b.xz"),
            Ok(PathBuf::from("/work/s3/a/b.xz"))
        );
        assert_eq!(
            safe_download_path(root, "/etc/passwd"),
            Ok(PathBuf::from("/work/s3/etc/passwd"))
        );
        assert!(safe_download_path(root, "a/../../x").is_err());
        assert!(safe_download_path(root, "..").is_err());
        assert!(safe_download_path(root, "a\0b").is_err());
        assert!(safe_download_path(root, "//").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(parse_url("s3://b/k/x"), Some(("b".into(), "k/x".into())));
        assert_eq!(parse_url("s3://b"), Some(("b".into(), "".into())));
        assert_eq!(parse_url("s3:///k"), None);
        assert_eq!(parse_url("/local"), None);
    }
}
