//! The shuffle: map output lines are partitioned by key, sorted within a memory budget and
//! spilled as sorted runs; a k-way merge of the runs feeds each reducer its keys in order.

mod merge;
mod partition;
mod sort;

pub use merge::{merge_runs, MergeStats, MAX_FAN_IN};
pub use partition::partition_of;
pub use sort::{compare_lines, split_key, Runs, ShuffleCounters, SortConfig, Sorter};

/// Parses sizes such as `256MiB`, `128M`, `1G`, `65536`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (try 256MiB)"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}` (use K, M or G)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(super::parse_size("1g"), Ok(1 << 30));
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert!(super::parse_size("12 parsecs").is_err());
    }
}
