//! The in-memory side of the external sort: lines are appended to one arena with a compact
//! index; when arena + index reach the budget, the index is sorted (in parallel) by
//! (partition, key, arrival) and written out as one sorted run file per partition. Equal
//! keys keep the order they were pushed in: reducers that rebuild sequences from their
//! values depend on it, as they did on telemetry-server's job.py.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use rayon::slice::ParallelSliceMut;

use super::partition_of;

/// Write buffer of run files.
const RUN_BUFFER: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct SortConfig {
    /// Bytes of lines + index held before a spill.
    pub budget: usize,
    pub separator: Vec<u8>,
    pub partitions: u32,
    /// Where run files go; the caller owns (and removes) it.
    pub dir: PathBuf,
    /// Prefix of run file names, unique per sorter sharing `dir`.
    pub name: String,
}

/// Sorted run files, per partition.
#[derive(Debug, Default, Clone)]
pub struct Runs {
    pub by_partition: Vec<Vec<PathBuf>>,
    pub counters: ShuffleCounters,
}

/// What went through a shuffle: one map task's, or (added up) a job's.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShuffleCounters {
    /// Lines (and bytes, newlines included) pushed into the sorter: the map output.
    pub map_output_records: u64,
    pub map_output_bytes: u64,
    /// Lines and bytes in the runs that reach the reducers: fewer than pushed when a
    /// combiner ran.
    pub shuffled_records: u64,
    pub shuffled_bytes: u64,
    pub spills: u32,
}

impl ShuffleCounters {
    pub fn add(&mut self, other: &ShuffleCounters) {
        self.map_output_records += other.map_output_records;
        self.map_output_bytes += other.map_output_bytes;
        self.shuffled_records += other.shuffled_records;
        self.shuffled_bytes += other.shuffled_bytes;
        self.spills += other.spills;
    }
}

/// Runs a combiner over one sorted run (first path), writing its output to the second path.
pub type CombineFn = Box<dyn FnMut(&Path, &Path) -> io::Result<()> + Send>;

#[derive(Clone, Copy)]
struct Entry {
    /// First 8 key bytes, big-endian: most comparisons end here.
    prefix: u64,
    partition: u32,
    key_len: u32,
    offset: usize,
    len: u32,
}

pub struct Sorter {
    cfg: SortConfig,
    arena: Vec<u8>,
    entries: Vec<Entry>,
    runs: Runs,
    combine: Option<CombineFn>,
}

/// The key of a line: the bytes before the first separator, or the whole line.
pub fn split_key<'a>(line: &'a [u8], sep: &[u8]) -> &'a [u8] {
    match sep {
        [b] => memchr::memchr(*b, line).map_or(line, |i| &line[..i]),
        _ => memchr::memmem::find(line, sep).map_or(line, |i| &line[..i]),
    }
}

/// Lines order by key alone, bytewise: equal keys end up adjacent whatever bytes the keys
/// hold, and lines with equal keys are left in the order they came (the sort breaks ties by
/// arrival, the merge by run), as `LC_ALL=C sort -s -k1,1` does.
pub fn compare_lines(a: &[u8], b: &[u8], sep: &[u8]) -> Ordering {
    split_key(a, sep).cmp(split_key(b, sep))
}

fn prefix_of(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

impl Sorter {
    pub fn new(cfg: SortConfig) -> Sorter {
        let partitions = cfg.partitions.max(1) as usize;
        Sorter {
            runs: Runs {
                by_partition: vec![Vec::new(); partitions],
                ..Runs::default()
            },
            cfg,
            arena: Vec::new(),
            entries: Vec::new(),
            combine: None,
        }
    }

    /// Every spill goes through `combine` before it becomes a run.
    pub fn with_combiner(mut self, combine: CombineFn) -> Sorter {
        self.combine = Some(combine);
        self
    }

    /// Memory in use: the arena's bytes and the index's entries. (The arena's reserved,
    /// untouched pages cost nothing; the index only grows when `reserve_index` allows it.)
    fn used(&self) -> usize {
        self.arena.len() + self.entries.len() * std::mem::size_of::<Entry>()
    }

    /// Makes room for one more index entry without letting the index's doubling carry
    /// the sorter past its budget: when the doubled index would not fit, spill first.
    fn reserve_index(&mut self) -> io::Result<()> {
        if self.entries.len() < self.entries.capacity() {
            return Ok(());
        }
        let entry = std::mem::size_of::<Entry>();
        let grown = (self.entries.capacity() * 2).max(1024);
        if !self.entries.is_empty() && self.arena.len() + grown * entry > self.cfg.budget {
            self.spill()?;
            if self.entries.len() < self.entries.capacity() {
                return Ok(());
            }
        }
        self.entries.reserve_exact(grown - self.entries.len());
        Ok(())
    }

    /// Adds one line (without its newline). Empty lines are dropped, as the original did.
    pub fn push(&mut self, line: &[u8]) -> io::Result<()> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(line.len())
            .map_err(|_| io::Error::other("a shuffled line is longer than 4 GiB"))?;
        if self.arena.capacity() - self.arena.len() < line.len() {
            // Doubling, capped at the budget: memory is taken as lines come (a huge budget
            // is not allocated up front), with amortised O(1) copying per byte.
            let want = (self.arena.capacity() * 2)
                .max(self.arena.len() + line.len())
                .max(64 << 10)
                .min(self.cfg.budget.max(self.arena.len() + line.len()));
            self.arena.reserve_exact(want - self.arena.len());
        }
        self.reserve_index()?;
        let key = split_key(line, &self.cfg.separator);
        self.entries.push(Entry {
            prefix: prefix_of(key),
            partition: partition_of(key, self.cfg.partitions),
            key_len: key.len() as u32,
            offset: self.arena.len(),
            len,
        });
        self.arena.extend_from_slice(line);
        self.runs.counters.map_output_records += 1;
        self.runs.counters.map_output_bytes += line.len() as u64 + 1;
        if self.used() >= self.cfg.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Adds every complete line of `buf` and returns the unfinished tail's start.
    pub fn push_lines(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', buf) {
            self.push(&buf[start..nl])?;
            start = nl + 1;
        }
        Ok(start)
    }

    fn sort(&mut self) {
        let arena = &self.arena;
        self.entries.par_sort_unstable_by(|a, b| {
            a.partition
                .cmp(&b.partition)
                .then(a.prefix.cmp(&b.prefix))
                .then_with(|| {
                    let ka = &arena[a.offset..a.offset + a.key_len as usize];
                    let kb = &arena[b.offset..b.offset + b.key_len as usize];
                    // The order of `compare_lines`, which the merge uses; the arena offset
                    // is the arrival order, so equal keys stay in input order (a stable sort
                    // without the stable sort's buffer).
                    ka.cmp(kb).then(a.offset.cmp(&b.offset))
                })
        });
    }

    /// Sorts what is in memory and writes it as one run per non-empty partition.
    pub fn spill(&mut self) -> io::Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        self.sort();
        let spill = self.runs.counters.spills;
        let mut i = 0;
        while i < self.entries.len() {
            let part = self.entries[i].partition;
            let path = self
                .cfg
                .dir
                .join(crate::plan::run_name(&self.cfg.name, spill, part));
            let mut w = BufWriter::with_capacity(RUN_BUFFER, File::create(&path)?);
            let (mut records, mut bytes) = (0u64, 0u64);
            while i < self.entries.len() && self.entries[i].partition == part {
                let e = self.entries[i];
                w.write_all(&self.arena[e.offset..e.offset + e.len as usize])?;
                w.write_all(b"\n")?;
                records += 1;
                bytes += u64::from(e.len) + 1;
                i += 1;
            }
            w.flush()?;
            drop(w);
            if self.combine.is_some() {
                self.combine_run(&path, spill, part)?;
            } else {
                self.runs.counters.shuffled_records += records;
                self.runs.counters.shuffled_bytes += bytes;
                self.runs.by_partition[part as usize].push(path);
            }
        }
        self.runs.counters.spills += 1;
        // The memory is kept for the next fill: the budget is held for the sorter's life.
        self.entries.clear();
        self.arena.clear();
        Ok(())
    }

    /// Replaces a run by the combiner's output over it, re-sorted (and re-partitioned: a
    /// combiner may emit other keys than it got).
    fn combine_run(&mut self, run: &Path, spill: u32, part: u32) -> io::Result<()> {
        let combined = run.with_extension("combined");
        if let Some(combine) = self.combine.as_mut() {
            combine(run, &combined)?;
        }
        std::fs::remove_file(run)?;
        let mut again = Sorter::new(SortConfig {
            budget: (self.cfg.budget / 4).max(1 << 20),
            name: crate::plan::combined_run_name(&self.cfg.name, spill, part),
            ..self.cfg.clone()
        });
        let mut r = io::BufReader::with_capacity(RUN_BUFFER, File::open(&combined)?);
        let mut line = Vec::new();
        while io::BufRead::read_until(&mut r, b'\n', &mut line)? > 0 {
            again.push(line.strip_suffix(b"\n").unwrap_or(&line))?;
            line.clear();
        }
        std::fs::remove_file(&combined)?;
        let runs = again.finish()?;
        self.runs.counters.shuffled_records += runs.counters.shuffled_records;
        self.runs.counters.shuffled_bytes += runs.counters.shuffled_bytes;
        for (p, list) in runs.by_partition.into_iter().enumerate() {
            self.runs.by_partition[p].extend(list);
        }
        Ok(())
    }

    /// Spills the rest and returns every run.
    pub fn finish(mut self) -> io::Result<Runs> {
        self.spill()?;
        Ok(self.runs)
    }

    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_low_bytes_still_group() {
        let sep = b"\t";
        let mut v: Vec<&[u8]> = vec![b"a\x01\tz", b"a\tz", b"a\ta", b"b\t"];
        v.sort_by(|a, b| compare_lines(a, b, sep));
        assert_eq!(v, vec![&b"a\tz"[..], b"a\ta", b"a\x01\tz", b"b\t"]);
    }

    /// Regression: ties were broken by the value's bytes ("10" before "9"), so a reducer
    /// that rebuilt a sequence from its values got it shuffled. Many equal keys over many
    /// spills and partitions, merged in run order: every key's values in push order.
    #[test]
    fn equal_keys_keep_push_order_across_spills() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut s = Sorter::new(SortConfig {
            budget: 4096,
            separator: b"\t".to_vec(),
            partitions: 3,
            dir: d.path().to_path_buf(),
            name: "t".into(),
        });
        // Values descend bytewise within a key ("z…" first), so a value tie-break reorders them.
        let n = 5000u32;
        for i in 0..n {
            s.push(format!("k{}\t{}-{i}", i % 5, (b'z' - (i % 26) as u8) as char).as_bytes())
                .expect("push");
        }
        let runs = s.finish().expect("finish");
        assert!(runs.counters.spills > 10, "{} spills", runs.counters.spills);
        let mut seen = 0;
        for part in &runs.by_partition {
            let mut last: std::collections::HashMap<String, u32> = Default::default();
            super::super::merge_runs(part, b"\t", d.path(), false, |l| {
                let l = String::from_utf8_lossy(l);
                let (k, v) = l.trim_end().split_once('\t').expect("a TAB");
                let i: u32 = v[2..].parse().expect("a number");
                if let Some(prev) = last.insert(k.to_string(), i) {
                    assert!(prev < i, "key {k}: value {i} after {prev}");
                }
                seen += 1;
                Ok(())
            })
            .expect("merge");
        }
        assert_eq!(seen, n);
    }

    /// Regression: the arena was reserved to the whole budget on the first line, so a
    /// budget larger than the machine aborted the driver ("memory allocation failed").
    #[test]
    fn arena_grows_with_the_lines_not_the_budget() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut s = Sorter::new(SortConfig {
            budget: 1 << 40,
            separator: b"\t".to_vec(),
            partitions: 1,
            dir: d.path().to_path_buf(),
            name: "t".into(),
        });
        s.push(b"k\tv").expect("push");
        assert!(s.arena.capacity() <= 1 << 20, "{}", s.arena.capacity());
        for i in 0..100_000u32 {
            s.push(format!("k{i}\t{i}").as_bytes()).expect("push");
        }
        let (len, cap) = (s.arena.len(), s.arena.capacity());
        assert!(cap < 4 * len, "len {len} capacity {cap}");
        assert_eq!(
            s.finish().expect("finish").counters.map_output_records,
            100_001
        );
    }

    /// Regression: once the index had grown, its kept capacity counted as used, and every
    /// later line spilled a run of its own (thousands of spill files for short lines).
    #[test]
    fn short_lines_spill_in_few_runs() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut s = Sorter::new(SortConfig {
            budget: 8 << 20,
            separator: b"\t".to_vec(),
            partitions: 1,
            dir: d.path().to_path_buf(),
            name: "t".into(),
        });
        for i in 0..400_000u32 {
            s.push(format!("k{}\t{i}", i % 1000).as_bytes())
                .expect("push");
        }
        let runs = s.finish().expect("finish");
        assert_eq!(runs.counters.map_output_records, 400_000);
        // 400k entries of 32 bytes plus ~5 MB of text: about 18 MB, so a few runs of 8 MiB.
        assert!(
            (2..=6).contains(&runs.counters.spills),
            "{} spills",
            runs.counters.spills
        );
    }

    #[test]
    fn spills_sorted_runs_per_partition() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut s = Sorter::new(SortConfig {
            budget: 200,
            separator: b"\t".to_vec(),
            partitions: 2,
            dir: d.path().to_path_buf(),
            name: "t".into(),
        });
        for i in (0..50).rev() {
            s.push(format!("k{}\t{i}", i % 7).as_bytes()).expect("push");
        }
        s.push(b"").expect("push");
        let runs = s.finish().expect("finish");
        assert!(runs.counters.spills > 1);
        assert_eq!(runs.counters.map_output_records, 50);
        for part in &runs.by_partition {
            for run in part {
                let text = std::fs::read(run).expect("read");
                let lines: Vec<&[u8]> = text
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .collect();
                assert!(lines
                    .windows(2)
                    .all(|w| compare_lines(w[0], w[1], b"\t") != Ordering::Greater));
            }
        }
    }
}
