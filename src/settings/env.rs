//! The environment a command reads, captured once at start-up. Resolution reads this
//! snapshot, never the process environment, so it is a pure function of the arguments and
//! the snapshot (and its tests need no `set_var`).

use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Clone, Default)]
pub struct EnvSnapshot {
    /// `CREDENTIALS`, encrypted: decrypted only by the prepare step.
    pub credentials: Option<OsString>,
    /// `POLYMR_PRIVATE_KEY`.
    pub private_key: Option<PathBuf>,
    /// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`.
    pub s3_endpoint: Option<String>,
    /// `POLYMR_READ_TIMEOUT_MS`, for tests that stall a connection on purpose.
    pub read_timeout_ms: Option<u64>,
    /// `POLYMR_JOB_ID`, when a scheduler names the job.
    pub job_id: Option<String>,
    /// `INPUT_TASK_IDS`: the map tasks a reduce task reads, as the original's reducer did.
    pub input_task_ids: Option<String>,
    pub notify: NotifyEnv,
}

/// What notifications read from the environment (the original image's variables).
#[derive(Debug, Clone, Default)]
pub struct NotifyEnv {
    pub hostname: Option<String>,
    pub owner: Option<String>,
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub reducer_id: Option<String>,
}

impl EnvSnapshot {
    pub fn capture() -> EnvSnapshot {
        let text = |k: &str| std::env::var(k).ok();
        EnvSnapshot {
            credentials: std::env::var_os(crate::credentials::ENV_VAR),
            private_key: std::env::var_os(crate::credentials::KEY_ENV_VAR)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            s3_endpoint: text("AWS_ENDPOINT_URL_S3").or_else(|| text("AWS_ENDPOINT_URL")),
            read_timeout_ms: text("POLYMR_READ_TIMEOUT_MS").and_then(|v| v.parse().ok()),
            job_id: text("POLYMR_JOB_ID"),
            input_task_ids: text("INPUT_TASK_IDS"),
            notify: NotifyEnv {
                hostname: text("HOSTNAME"),
                owner: text("OWNER"),
                smtp_url: text("SMTP_URL"),
                mail_from: text("POLYMR_MAIL_FROM"),
                reducer_id: text("REDUCER_ID"),
            },
        }
    }

    /// Whether `CREDENTIALS` asks for S3 access (set and not blank).
    pub fn has_credentials(&self) -> bool {
        self.credentials
            .as_ref()
            .is_some_and(|c| !c.to_string_lossy().trim().is_empty())
    }
}

/// Never prints the credentials, even encrypted.
impl std::fmt::Debug for EnvSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvSnapshot")
            .field("credentials", &self.credentials.as_ref().map(|_| "<set>"))
            .field("private_key", &self.private_key)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("job_id", &self.job_id)
            .field("input_task_ids", &self.input_task_ids)
            .field("notify", &self.notify)
            .finish()
    }
}
