//! Exit codes, classified once at the top. Documented in README.md.

use std::process::ExitCode;

/// The job (or task) ran and succeeded.
pub const SUCCESS: u8 = 0;
/// The job ran and failed: a child failed, an input was fatal under `--fail-fast`, or the
/// result could not be published. The report says why.
pub const JOB_FAILED: u8 = 1;
/// Bad usage or configuration, found before any work started.
pub const USAGE: u8 = 2;
/// A bug or an environment failure inside polymr itself.
pub const INTERNAL: u8 = 3;
/// Stopped by SIGINT / SIGTERM: 128 + the signal number, as shells do.
pub fn interrupted(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(130)
}

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}

/// An error that knows its exit code. Commands return `anyhow::Error`s; those carrying a
/// [`UsageError`] anywhere in their chain exit with [`USAGE`], the rest with [`INTERNAL`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn classify(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<UsageError>()
            || cause.is::<crate::config::ConfigError>()
            || cause.is::<crate::process::CommandError>()
        {
            return USAGE;
        }
        if let Some(e) = cause.downcast_ref::<crate::credentials::CredentialsError>() {
            if e.is_usage() {
                return USAGE;
            }
        }
    }
    INTERNAL
}
