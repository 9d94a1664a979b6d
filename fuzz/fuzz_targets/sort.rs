//! The shuffle's sort and merge (src/shuffle): the real Sorter, spilling at a tiny budget into
//! many runs, and merge_runs, against a stable sort by key bytewise (`LC_ALL=C sort -s -k1,1`).
//!
//! POLYMR_FUZZ_SORT_TIES=any checks everything but the order of equal keys (for a sorter
//! that breaks ties some other way than input order).
#![no_main]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use polymr::shuffle::{merge_runs, partition_of, split_key, SortConfig, Sorter};

#[derive(Debug, Arbitrary)]
struct Input {
    budget: u16,
    partitions: u8,
    sep: u8,
    data: Vec<u8>,
}

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().to_path_buf();
        (d, p)
    })
    .1
}

fuzz_target!(|input: Input| {
    static CASE: AtomicU64 = AtomicU64::new(0);
    let seps: [&[u8]; 3] = [b"\t", b" ", b"::"];
    let sep = seps[usize::from(input.sep) % seps.len()];
    let partitions = u32::from(input.partitions % 4) + 1;
    let budget = usize::from(input.budget % 4096) + 1;
    let lines: Vec<&[u8]> = input.data.split(|b| *b == b'\n').take(300).collect();
    let case = CASE.fetch_add(1, Ordering::Relaxed);
    let dir = scratch().join(format!("c{case}"));
    std::fs::create_dir(&dir).expect("case dir");

    let mut sorter = Sorter::new(SortConfig {
        budget,
        separator: sep.to_vec(),
        partitions,
        dir: dir.clone(),
        name: "f".into(),
    });
    for l in &lines {
        sorter.push(l).expect("push");
    }
    let runs = sorter.finish().expect("finish");
    // What the sorter sorts: a trailing CR dropped, empty lines skipped.
    let input_lines: Vec<&[u8]> = lines
        .iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(runs.records, input_lines.len() as u64);
    let any_ties = std::env::var_os("POLYMR_FUZZ_SORT_TIES").is_some_and(|v| v == "any");
    for (p, part) in runs.by_partition.iter().enumerate() {
        let mut got: Vec<Vec<u8>> = Vec::new();
        merge_runs(part, sep, &dir, true, |l| {
            got.push(l.strip_suffix(b"\n").unwrap_or(l).to_vec());
            Ok(())
        })
        .expect("merge");
        let mut want: Vec<Vec<u8>> = input_lines
            .iter()
            .filter(|l| partition_of(split_key(l, sep), partitions) == p as u32)
            .map(|l| l.to_vec())
            .collect();
        want.sort_by(|a, b| split_key(a, sep).cmp(split_key(b, sep)));
        if any_ties {
            let keys = |v: &[Vec<u8>]| {
                v.iter()
                    .map(|l| split_key(l, sep).to_vec())
                    .collect::<Vec<_>>()
            };
            assert_eq!(keys(&got), keys(&want), "partition {p}: keys out of order");
            got.sort();
            want.sort();
        }
        assert_eq!(got, want, "partition {p}");
    }
    std::fs::remove_dir_all(&dir).expect("clean up");
});
