//! One child process in its own process group: spawn, wait, and stop (SIGTERM to the group,
//! a grace period, SIGKILL, reap). The group is killed even after a clean exit, so that
//! grandchildren a mapper left behind do not outlive the task.

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use super::command::ChildCommand;
use super::registry;

pub struct Spawned {
    child: Child,
    pgid: i32,
    reaped: bool,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

/// How a child ended, for errors and the report.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitInfo {
    fn from_status(s: ExitStatus) -> Self {
        ExitInfo {
            code: s.code(),
            signal: s.signal(),
        }
    }
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(s)) => {
                let name = Signal::try_from(s).map(|s| s.as_str()).unwrap_or("unknown");
                write!(f, "killed by signal {s} ({name})")
            }
            (None, None) => f.write_str("unknown exit status"),
        }
    }
}

impl Spawned {
    pub fn spawn(cmd: &ChildCommand) -> std::io::Result<Spawned> {
        let mut c = tokio::process::Command::new(&cmd.program);
        c.args(&cmd.args)
            .env_clear()
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // The last line of defence if a task future is dropped without `terminate`.
            .kill_on_drop(true);
        if let Some(dir) = &cmd.cwd {
            c.current_dir(dir);
        }
        let mut child = c.spawn()?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| std::io::Error::other("child exited before its pid was known"))?;
        registry::register_group(pgid);
        Ok(Spawned {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            pgid,
            reaped: false,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// Waits for the child, then kills what remains of its group. Cancel-safe.
    pub async fn wait(&mut self) -> std::io::Result<ExitInfo> {
        let status = self.child.wait().await?;
        self.reap();
        Ok(ExitInfo::from_status(status))
    }

    /// SIGTERM to the group, `grace` to exit, then SIGKILL; always reaps.
    pub async fn terminate(&mut self, grace: Duration) -> std::io::Result<ExitInfo> {
        self.kill_group(Signal::SIGTERM);
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                self.kill_group(Signal::SIGKILL);
                self.child.wait().await?
            }
        };
        self.reap();
        Ok(ExitInfo::from_status(status))
    }

    fn reap(&mut self) {
        self.kill_group(Signal::SIGKILL);
        registry::unregister_group(self.pgid);
        self.reaped = true;
    }

    fn kill_group(&self, signal: Signal) {
        // ESRCH (the group is already gone) is the expected, happy case.
        let _ = killpg(Pid::from_raw(self.pgid), signal);
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // Once reaped, the group id may belong to someone else: never signal it again.
        if !self.reaped {
            self.reap();
        }
    }
}
