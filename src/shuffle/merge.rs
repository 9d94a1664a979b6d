//! The k-way merge of sorted runs into one sorted stream of lines. With more runs than
//! `MAX_FAN_IN`, runs are first merged in groups into longer runs, so open files and
//! read buffers stay bounded whatever the input size.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::compare_lines;

pub const MAX_FAN_IN: usize = 64;
const READ_BUFFER: usize = 128 * 1024;
/// A head's line buffer larger than this is given back after its line.
const KEEP_CAPACITY: usize = 1 << 20;

#[derive(Debug, Default, Clone, Copy)]
pub struct MergeStats {
    pub records: u64,
    pub bytes: u64,
    pub passes: u32,
}

struct Head {
    line: Vec<u8>,
    run: usize,
}

struct Heap<'s> {
    sep: &'s [u8],
}

/// Orders heads so the smallest line is popped first; ties go to the earlier run, so the
/// merge is stable and deterministic.
struct Ordered<'s>(Head, &'s Heap<'s>);

impl PartialEq for Ordered<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ordered<'_> {}
impl PartialOrd for Ordered<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ordered<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_lines(bare(&other.0.line), bare(&self.0.line), self.1.sep)
            .then(other.0.run.cmp(&self.0.run))
    }
}

/// A head's line without its newline. The runs were sorted without it, and with it a line
/// that has no separator (all key) would sort after `key\x05…` here but before it in a run.
fn bare(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Merges `runs` (each sorted) and hands every line, newline included, to `out` in order.
/// Runs are deleted as soon as they are consumed when `delete` is set.
pub fn merge_runs(
    runs: &[PathBuf],
    sep: &[u8],
    scratch: &Path,
    delete: bool,
    mut out: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<MergeStats> {
    let mut stats = MergeStats::default();
    let mut level: Vec<PathBuf> = runs.to_vec();
    let mut owned = delete;
    let mut pass = 0;
    while level.len() > MAX_FAN_IN {
        let mut next = Vec::new();
        for (g, group) in level.chunks(MAX_FAN_IN).enumerate() {
            let path = scratch.join(format!("merge-pass{pass}-{g:05}"));
            let mut w = BufWriter::with_capacity(READ_BUFFER, File::create(&path)?);
            merge_group(group, sep, |l| w.write_all(l))?;
            w.flush()?;
            if owned {
                group.iter().for_each(|p| drop(std::fs::remove_file(p)));
            }
            next.push(path);
        }
        level = next;
        owned = true;
        pass += 1;
    }
    stats.passes = pass + 1;
    let (records, bytes) = merge_group(&level, sep, &mut out)?;
    if owned {
        level.iter().for_each(|p| drop(std::fs::remove_file(p)));
    }
    stats.records = records;
    stats.bytes = bytes;
    Ok(stats)
}

fn merge_group(
    runs: &[PathBuf],
    sep: &[u8],
    mut out: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<(u64, u64)> {
    let ctx = Heap { sep };
    let mut readers = Vec::with_capacity(runs.len());
    for p in runs {
        let f = File::open(p)
            .map_err(|e| io::Error::new(e.kind(), format!("run `{}`: {e}", p.display())))?;
        readers.push(BufReader::with_capacity(READ_BUFFER, f));
    }
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for (run, r) in readers.iter_mut().enumerate() {
        let mut line = Vec::new();
        if read_line(r, &mut line)? {
            heap.push(Ordered(Head { line, run }, &ctx));
        }
    }
    let (mut records, mut bytes) = (0u64, 0u64);
    while let Some(Ordered(mut head, _)) = heap.pop() {
        out(&head.line)?;
        records += 1;
        bytes += head.line.len() as u64;
        if head.line.capacity() > KEEP_CAPACITY {
            // One long line must not keep its buffer for the rest of the run: with up to
            // `MAX_FAN_IN` heads, memory would be that many long lines.
            head.line = Vec::new();
        }
        if read_line(&mut readers[head.run], &mut head.line)? {
            heap.push(Ordered(head, &ctx));
        }
    }
    Ok((records, bytes))
}

/// Reads one line (newline kept, added if the file lacks one) into `line`; false at EOF.
/// Linear in the line's length, however long (`read_until` appends buffer by buffer).
fn read_line(r: &mut BufReader<File>, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    if r.read_until(b'\n', line)? == 0 {
        return Ok(false);
    }
    if line.last() != Some(&b'\n') {
        line.push(b'\n');
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_more_runs_than_the_fan_in() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut runs = Vec::new();
        let mut all = Vec::new();
        for r in 0..150 {
            let mut lines: Vec<String> = (0..20)
                .map(|i| format!("k{:03}\t{r}", (i * 7 + r) % 97))
                .collect();
            lines.sort_by(|a, b| compare_lines(a.as_bytes(), b.as_bytes(), b"\t"));
            let p = d.path().join(format!("run{r}"));
            std::fs::write(&p, lines.join("\n") + "\n").expect("write");
            all.extend(lines);
            runs.push(p);
        }
        all.sort_by(|a, b| compare_lines(a.as_bytes(), b.as_bytes(), b"\t"));
        let mut got = Vec::new();
        let stats = merge_runs(&runs, b"\t", d.path(), true, |l| {
            got.push(String::from_utf8_lossy(l.strip_suffix(b"\n").unwrap_or(l)).into_owned());
            Ok(())
        })
        .expect("merge");
        assert_eq!(got, all);
        assert_eq!(stats.passes, 2);
        assert_eq!(
            std::fs::read_dir(d.path()).expect("dir").count(),
            0,
            "runs and merge files are removed"
        );
    }
}
