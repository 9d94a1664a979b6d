//! What must not outlive the driver: live child process groups and temporary files. A
//! second Ctrl-C exits at once, without unwinding, so it cleans up from this registry.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

static GROUPS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn groups() -> MutexGuard<'static, Option<HashSet<i32>>> {
    GROUPS.lock().unwrap_or_else(|p| p.into_inner())
}

fn temps() -> MutexGuard<'static, Vec<PathBuf>> {
    TEMPS.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn register_group(pgid: i32) {
    groups().get_or_insert_with(HashSet::new).insert(pgid);
}

pub(crate) fn unregister_group(pgid: i32) {
    if let Some(g) = groups().as_mut() {
        g.remove(&pgid);
    }
}

pub fn register_temp(path: &Path) {
    temps().push(path.to_path_buf());
}

pub fn unregister_temp(path: &Path) {
    temps().retain(|p| p != path);
}

/// SIGKILLs every live child group and removes every registered temporary path. For the
/// second signal, right before `exit`.
pub fn kill_all_now() {
    if let Some(g) = groups().as_ref() {
        for pgid in g {
            let _ = killpg(Pid::from_raw(*pgid), Signal::SIGKILL);
        }
    }
    for p in temps().iter() {
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(p);
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}
