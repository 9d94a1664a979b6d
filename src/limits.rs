//! What this machine allows, and the bounds polymr puts on its arguments: physical memory
//! for the sort budget, the file-descriptor limit for the tasks that run at once. Checked
//! before any work starts, so a job that cannot fit is refused with the numbers instead of
//! aborting or failing half-way.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// More reducers than this is a mistake, not a job: each is a child process and a run
/// file per spill of every map task.
pub const MAX_REDUCERS: u32 = 10_000;
/// More map tasks at once than this does not fit one machine.
pub const MAX_MAPPERS: usize = 1024;
/// Runs merged at once by a reducer.
const MERGE_FAN_IN: u64 = crate::shuffle::MAX_FAN_IN as u64;
/// The driver's own descriptors: stdio, the async runtime, signal handling, logs, the work
/// directory, an HTTP or S3 client. (Measured: about 12 for a local job.)
const DRIVER_BASE: u64 = 16;
/// A child: the three pipe ends polymr keeps, and the child's ends while it is spawned.
const CHILD: u64 = 6;

/// The soft RLIMIT_NOFILE polymr started with, when it raised it; 0 when it did not.
static ORIGINAL_SOFT_NOFILE: AtomicU64 = AtomicU64::new(0);

/// Raises the soft RLIMIT_NOFILE to the hard limit, as most servers do, and returns the
/// limit now in force. A failure leaves the limit as it was.
pub fn raise_nofile() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        ORIGINAL_SOFT_NOFILE.store(soft, Ordering::Relaxed);
        return Some(hard);
    }
    Some(soft)
}

/// Gives a child the soft descriptor limit polymr was started with: user code may use
/// `select()`, which breaks on descriptors above 1024 (systemd restores it the same way).
/// Called between fork and exec, so it only reads an atomic and calls setrlimit(2).
pub fn restore_nofile_for_child() {
    let soft = ORIGINAL_SOFT_NOFILE.load(Ordering::Relaxed);
    if soft == 0 {
        return;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit are async-signal-safe and only touch `lim`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && soft < lim.rlim_cur {
            lim.rlim_cur = soft as libc::rlim_t;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The soft and hard RLIMIT_NOFILE in force.
pub fn nofile() -> Option<(u64, u64)> {
    getrlimit(Resource::RLIMIT_NOFILE).ok()
}

/// Physical memory in bytes (`MemTotal` of /proc/meminfo); `None` where it cannot be read.
pub fn physical_memory() -> Option<u64> {
    meminfo_total(&std::fs::read_to_string(Path::new("/proc/meminfo")).ok()?)
}

fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The descriptors a `run` job needs at its worst moment, itemised for the error message.
/// An estimate from above: every task at once at its peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorNeed {
    /// Map tasks that run at once.
    pub slots: u64,
    /// Reduce tasks that run at once (no more than there are reducers).
    pub reduce_slots: u64,
    /// Per running map task.
    pub per_map: u64,
    /// Per running reduce task.
    pub per_reduce: u64,
    pub reducers: u64,
    pub base: u64,
    pub total: u64,
}

impl DescriptorNeed {
    /// `downloads`: remote inputs opened ahead of the one being read; `map_tasks`: bounds
    /// the runs a reducer merges at once (one per map task at least, `MERGE_FAN_IN` at most).
    pub fn of(slots: usize, downloads: usize, map_tasks: usize, reducers: u32) -> Self {
        let slots = slots as u64;
        // The mapper; its input file and each download's socket and kept copy; the run or
        // output being written and its atomic twin; a combiner with its run in and out.
        let per_map = CHILD + 1 + 2 * downloads as u64 + 2 + CHILD + 2;
        // The reducer; the runs merged at once; its output, atomic twin and a merge pass.
        let per_reduce = if reducers == 0 {
            0
        } else {
            CHILD + MERGE_FAN_IN.min(map_tasks.max(1) as u64) + 3
        };
        let reduce_slots = slots.min(u64::from(reducers));
        DescriptorNeed {
            slots,
            reduce_slots,
            per_map,
            per_reduce,
            reducers: u64::from(reducers),
            base: DRIVER_BASE,
            total: DRIVER_BASE + (slots * per_map).max(reduce_slots * per_reduce),
        }
    }

    /// The most tasks at once that fit `limit` descriptors (0: not even one).
    pub fn max_slots(&self, limit: u64) -> u64 {
        let room = limit.saturating_sub(self.base);
        let maps = room / self.per_map.max(1);
        if self.per_reduce == 0 {
            return maps;
        }
        let reduces = room / self.per_reduce;
        if reduces >= self.reducers {
            maps
        } else {
            maps.min(reduces)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_is_read_in_kib() {
        let text = "MemTotal:       24576000 kB\nMemFree:         1000 kB\n";
        assert_eq!(meminfo_total(text), Some(24_576_000 * 1024));
        assert_eq!(meminfo_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn descriptor_need_grows_with_slots_and_downloads() {
        let one = DescriptorNeed::of(1, 3, 10, 1);
        let many = DescriptorNeed::of(100, 3, 1000, 1);
        assert!(many.total > 50 * one.total / 2, "{one:?} {many:?}");
        assert!(DescriptorNeed::of(1, 20, 1, 0).per_map > one.per_map);
        assert!(one.total <= 1024);
        // A reducer merging 64 runs does not fit 64 descriptors, whatever --mappers says.
        assert_eq!(many.max_slots(64), 0);
        let fits = many.max_slots(4096);
        assert!(fits >= 1, "{fits}");
        assert!(DescriptorNeed::of(fits as usize, 3, 1000, 1).total <= 4096);
        assert!(DescriptorNeed::of(fits as usize + 1, 3, 1000, 1).total > 4096);
    }

    #[test]
    fn raising_nofile_reaches_the_hard_limit() {
        let Some((_, hard)) = nofile() else { return };
        assert_eq!(raise_nofile(), Some(hard));
        assert_eq!(nofile().map(|(s, _)| s), Some(hard));
    }
}
