//! Exit codes, classified once at the top. Documented in README.md.

use std::process::ExitCode;

/// The job (or task) ran and succeeded.
pub const SUCCESS: u8 = 0;
/// The job ran and failed: a child failed, an input was fatal under `--fail-fast`, or the
/// result could not be published. The report says why. Also a failure of the machine rather
/// than of the arguments: a full or unwritable TMPDIR, work or output directory.
pub const JOB_FAILED: u8 = 1;
/// Bad usage or configuration, found before any work started.
pub const USAGE: u8 = 2;
/// A bug inside polymr itself.
pub const INTERNAL: u8 = 3;
/// `--filter` chose no input file: nothing was started.
pub const NO_INPUT: u8 = 4;
/// Stopped by SIGINT / SIGTERM: 128 + the signal number, as shells do.
pub fn interrupted(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(130)
}

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}

/// An error that knows its exit code. Commands return `anyhow::Error`s; those carrying a
/// [`UsageError`] (or a config, command or credentials error of the user's making) anywhere
/// in their chain exit with [`USAGE`]; those caused by an I/O error with [`JOB_FAILED`],
/// since the machine failed, not the arguments; the rest with [`INTERNAL`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn classify(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.is::<crate::plan::NothingMatched>()) {
        NO_INPUT
    } else if err.chain().any(is_usage) {
        USAGE
    } else if err.chain().any(|c| c.is::<std::io::Error>()) {
        JOB_FAILED
    } else {
        INTERNAL
    }
}

fn is_usage(cause: &(dyn std::error::Error + 'static)) -> bool {
    use crate::process::CommandError;
    if let Some(e) = cause.downcast_ref::<CommandError>() {
        // An unwritable TMPDIR is the machine's fault, not the job's configuration.
        return !matches!(e, CommandError::HelperDir(_));
    }
    if let Some(e) = cause.downcast_ref::<crate::credentials::CredentialsError>() {
        return e.is_usage();
    }
    cause.is::<UsageError>()
        || cause.is::<crate::config::ConfigError>()
        || cause.is::<crate::plan::FilterError>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn io_failures_are_runtime_not_usage() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left");
        let e = Err::<(), _>(io)
            .context("failed to create `out`")
            .expect_err("err");
        assert_eq!(classify(&e), JOB_FAILED);
        let helpers = crate::process::CommandError::HelperDir(std::io::Error::other("ro"));
        assert_eq!(classify(&anyhow::Error::new(helpers)), JOB_FAILED);
        let usage = anyhow::Error::new(UsageError("--mappers".into()));
        assert_eq!(classify(&usage.context("x")), USAGE);
        assert_eq!(classify(&anyhow::anyhow!("a bug")), INTERNAL);
    }
}
