//! One child process in its own process group: spawn, wait, and stop (SIGTERM to the group,
//! a grace period, SIGKILL, reap). The group is killed even after a clean exit, so that
//! grandchildren a mapper left behind do not outlive the task. A child also dies with the
//! driver (PR_SET_PDEATHSIG), and the driver keeps a probe on its stdin pipe to see how much
//! of its input it has read.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdout};

use super::command::ChildCommand;
use super::registry;

pub struct Spawned {
    child: Child,
    pgid: i32,
    reaped: bool,
    pub stdin: Option<pipe::Sender>,
    pub stdin_probe: Option<StdinProbe>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

/// A second read end of the child's stdin pipe, held by the driver. FIONREAD on it counts the
/// bytes written into the pipe that the child has not read, even after the child has exited:
/// that is how a child that stopped reading early is caught whatever the input's size.
///
/// While it is open the pipe always has a reader, so a write into it never fails with EPIPE:
/// the driver must stop its writer itself once the child has exited, then drop the probe.
/// It is never read from: it shares the child's open file description.
pub struct StdinProbe(OwnedFd);

impl StdinProbe {
    /// Bytes in the pipe that nobody has read.
    pub fn unread(&self) -> io::Result<u64> {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int through the pointer; the fd is owned and open.
        let r = unsafe { libc::ioctl(self.0.as_raw_fd(), libc::FIONREAD, &mut n) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(u64::try_from(n).unwrap_or(0))
    }
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
    /// Spawns `cmd`. Must be called inside a tokio runtime.
    pub fn spawn(cmd: &ChildCommand) -> std::io::Result<Spawned> {
        let (read, write) = stdin_pipe()?;
        let probe = StdinProbe(read.try_clone()?);
        let stdin = pipe::Sender::from_owned_fd(write)?;
        let mut c = tokio::process::Command::new(&cmd.program);
        c.args(&cmd.args)
            .env_clear()
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(read))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // The last line of defence if a task future is dropped without `terminate`.
            .kill_on_drop(true);
        if let Some(dir) = &cmd.cwd {
            c.current_dir(dir);
        }
        let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
        // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid, get/setrlimit), and no
        // allocation: the error is a raw OS error.
        unsafe {
            c.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The driver died between fork and prctl: nobody would ever signal us.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                crate::limits::restore_nofile_for_child();
                Ok(())
            });
        }
        let mut child = spawn_from_spawner_thread(c)?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| std::io::Error::other("child exited before its pid was known"))?;
        registry::register_group(pgid);
        Ok(Spawned {
            stdin: Some(stdin),
            stdin_probe: Some(probe),
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

/// The child's stdin pipe, both ends close-on-exec (the child gets its end as fd 0).
fn stdin_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [libc::c_int; 2] = [-1; 2];
    // SAFETY: pipe2 fills the two fds on success; they are ours alone from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just opened and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

struct SpawnRequest {
    command: tokio::process::Command,
    runtime: tokio::runtime::Handle,
    reply: mpsc::SyncSender<io::Result<Child>>,
}

static SPAWNER: Mutex<Option<mpsc::Sender<SpawnRequest>>> = Mutex::new(None);

/// Every child is forked from one dedicated thread that lives as long as the process.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process.
/// Tokio's threads come and go: a blocking-pool thread exits after 10 s idle, and a worker
/// that ran `block_in_place` may end as one. A child forked from such a thread would be
/// SIGKILLed in the middle of its task. This thread never returns (its channel's sender is
/// held in a static), so the signal comes exactly when the driver process dies, `kill -9`
/// included. The fork takes a few milliseconds per task, so one thread is no bottleneck.
fn spawn_from_spawner_thread(command: tokio::process::Command) -> io::Result<Child> {
    let sender = {
        let mut slot = SPAWNER.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(s) => s.clone(),
            None => {
                let (tx, rx) = mpsc::channel::<SpawnRequest>();
                std::thread::Builder::new()
                    .name("polymr-spawner".into())
                    .spawn(move || {
                        for req in rx {
                            // tokio registers the child with the runtime that will reap it.
                            let _guard = req.runtime.enter();
                            let mut command = req.command;
                            let child = command.spawn();
                            // The parent's copy of the child's stdin goes now, not later.
                            drop(command);
                            let _ = req.reply.send(child);
                        }
                    })?;
                *slot = Some(tx.clone());
                tx
            }
        }
    };
    let (reply, answer) = mpsc::sync_channel(1);
    let request = SpawnRequest {
        command,
        runtime: tokio::runtime::Handle::try_current().map_err(io::Error::other)?,
        reply,
    };
    sender
        .send(request)
        .map_err(|_| io::Error::other("the process spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the process spawner thread is gone"))?
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // Once reaped, the group id may belong to someone else: never signal it again.
        if !self.reaped {
            self.reap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PR_SET_PDEATHSIG follows the thread that forked: a child asked for by a short-lived
    /// thread (a tokio blocking thread that idles out) must not die with that thread.
    #[test]
    fn a_child_outlives_the_thread_that_asked_for_it() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let handle = rt.handle().clone();
        let cmd = ChildCommand::for_test("/bin/sleep", &["30"]);
        let mut child = std::thread::spawn(move || {
            let _guard = handle.enter();
            Spawned::spawn(&cmd)
        })
        .join()
        .expect("thread")
        .expect("spawn");
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            child.child.try_wait().expect("try_wait").is_none(),
            "the child died with the thread that spawned it"
        );
        let exit = rt
            .block_on(child.terminate(Duration::from_secs(1)))
            .expect("terminate");
        assert_eq!(exit.signal, Some(libc::SIGTERM));
    }
}
