//! How a command reaches remote inputs and outputs, resolved but not connected: the prepare
//! step turns it into clients (`crate::prepare::connect`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::input::remote::RetryPolicy;

use super::EnvSnapshot;

#[derive(Clone)]
pub struct RemoteSettings {
    /// Whether S3 is needed at all: a purely local job never touches the network.
    pub wants_s3: bool,
    pub endpoint: Option<String>,
    /// The bucket of bare keys.
    pub bucket: Option<String>,
    /// `CREDENTIALS` as captured, still encrypted.
    pub credentials: Option<OsString>,
    /// The key that decrypts them.
    pub private_key: PathBuf,
    pub policy: RetryPolicy,
    pub parallel_downloads: usize,
    pub keep_downloads: Option<PathBuf>,
}

impl RemoteSettings {
    /// S3 is set up only when something asks for it: an `s3://` argument or output, a
    /// bucket, an endpoint, or CREDENTIALS.
    pub fn resolve(
        remote: &crate::cli::RemoteArgs,
        env: &EnvSnapshot,
        args: &[String],
        outputs: &[&Path],
        default_parallel: usize,
    ) -> RemoteSettings {
        let endpoint = remote
            .s3_endpoint
            .clone()
            .or_else(|| env.s3_endpoint.clone());
        let bucket = remote.bucket.clone().or_else(|| {
            env.has_credentials()
                .then(|| crate::input::s3::DEFAULT_BUCKET.to_string())
        });
        let wants_s3 = bucket.is_some()
            || endpoint.is_some()
            || args.iter().any(|a| a.starts_with("s3://"))
            || outputs
                .iter()
                .any(|o| o.to_string_lossy().starts_with("s3://"));
        let mut policy = RetryPolicy {
            retries: remote.download_retries,
            ..RetryPolicy::default()
        };
        if let Some(ms) = env.read_timeout_ms {
            policy.read_timeout = std::time::Duration::from_millis(ms);
        }
        let private_key = remote
            .private_key
            .clone()
            .or_else(|| env.private_key.clone())
            .unwrap_or_else(|| PathBuf::from(crate::credentials::DEFAULT_KEY_PATH));
        RemoteSettings {
            wants_s3,
            endpoint,
            bucket,
            credentials: env.credentials.clone(),
            private_key,
            policy,
            parallel_downloads: remote.parallel_downloads.unwrap_or(default_parallel).max(1),
            keep_downloads: remote.keep_downloads.then(|| PathBuf::from("s3")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> crate::cli::RemoteArgs {
        crate::cli::RemoteArgs {
            bucket: None,
            s3_endpoint: None,
            parallel_downloads: None,
            keep_downloads: false,
            download_retries: 5,
            private_key: None,
        }
    }

    #[test]
    fn a_local_job_never_asks_for_s3() {
        let r = RemoteSettings::resolve(
            &args(),
            &EnvSnapshot::default(),
            &["data".into()],
            &[Path::new("out.txt")],
            3,
        );
        assert!(!r.wants_s3);
        assert_eq!(r.bucket, None);
        assert_eq!(r.parallel_downloads, 3);
    }

    #[test]
    fn credentials_endpoint_or_an_s3_url_ask_for_s3() {
        let env = EnvSnapshot {
            credentials: Some("blob".into()),
            private_key: Some("/k.pem".into()),
            ..EnvSnapshot::default()
        };
        let r = RemoteSettings::resolve(&args(), &env, &[], &[], 3);
        assert!(r.wants_s3);
        assert_eq!(r.bucket.as_deref(), Some(crate::input::s3::DEFAULT_BUCKET));
        assert_eq!(r.private_key, PathBuf::from("/k.pem"));

        let env = EnvSnapshot {
            s3_endpoint: Some("http://127.0.0.1:9".into()),
            read_timeout_ms: Some(50),
            ..EnvSnapshot::default()
        };
        let r = RemoteSettings::resolve(&args(), &env, &[], &[], 3);
        assert!(r.wants_s3 && r.bucket.is_none());
        assert_eq!(r.policy.read_timeout, std::time::Duration::from_millis(50));

        let r = RemoteSettings::resolve(
            &args(),
            &EnvSnapshot::default(),
            &[],
            &[Path::new("s3://b/k")],
            3,
        );
        assert!(r.wants_s3);
    }

    #[test]
    fn blank_credentials_do_not_pick_the_default_bucket() {
        let env = EnvSnapshot {
            credentials: Some("  ".into()),
            ..EnvSnapshot::default()
        };
        let r = RemoteSettings::resolve(&args(), &env, &[], &[], 3);
        assert!(!r.wants_s3 && r.bucket.is_none());
    }
}
