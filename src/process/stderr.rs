//! Draining a child's stderr concurrently with its other pipes: Hadoop Streaming reporter
//! lines become counters and status, helper lines become invalid-record reports, and every
//! other line is logged and kept in a bounded tail for the error shown if the child fails.

use std::collections::{BTreeMap, HashMap, VecDeque};

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::report::INVALID_SAMPLES;

/// Lines kept for the failure message.
const TAIL_LINES: usize = 20;
/// Longer stderr lines are cut: a child must not make the driver's memory grow.
const MAX_LINE: usize = 16 * 1024;
/// The message of an invalid-record sample is cut to this many bytes: reports stay small.
const INVALID_MESSAGE: usize = 256;
/// Distinct counters one child may create (Hadoop's `mapreduce.job.counters.max` is 120 too).
/// Updates to further counters are dropped and counted: a child must not make the driver's
/// memory, or the report, grow without bound.
pub const MAX_COUNTERS: usize = 120;
/// Distinct inputs with invalid records that one child may report. Far above any real
/// task's count of inputs with bad records; it only stops a child that invents indexes.
const MAX_INVALID_INPUTS: usize = 1 << 16;

/// `GROUP → COUNTER → sum`, ordered so reports are stable.
pub type Counters = BTreeMap<String, BTreeMap<String, i64>>;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InvalidRecord {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct StderrSummary {
    pub counters: Counters,
    pub status: Option<String>,
    /// Per input index: how many invalid records, and the first few.
    pub invalid: HashMap<usize, (u64, Vec<InvalidRecord>)>,
    pub tail: VecDeque<String>,
    pub malformed_reporter_lines: u64,
    /// Counter updates ignored because [`MAX_COUNTERS`] distinct counters already existed.
    pub counters_dropped: u64,
    /// Invalid-record reports ignored because they named too many distinct inputs.
    pub invalid_dropped: u64,
    distinct_counters: usize,
}

impl StderrSummary {
    fn take_line(&mut self, role: &str, raw: &[u8]) {
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(rest) = line.strip_prefix("reporter:counter:") {
            match parse_counter(rest) {
                Some((group, counter, amount)) => self.add_counter(role, group, counter, amount),
                None => {
                    self.malformed_reporter_lines += 1;
                    tracing::warn!(role, "malformed reporter line from the {role}: {line:?} (want reporter:counter:GROUP,COUNTER,AMOUNT)");
                }
            }
        } else if let Some(msg) = line.strip_prefix("reporter:status:") {
            tracing::info!(role, "status: {msg}");
            self.status = Some(msg.to_string());
        } else if let Some(rest) = line.strip_prefix("polymr:invalid:") {
            if let Some((index, rec)) = parse_invalid(rest) {
                if self.invalid.len() >= MAX_INVALID_INPUTS && !self.invalid.contains_key(&index) {
                    if self.invalid_dropped == 0 {
                        tracing::warn!(role, "the {role} reported invalid records in more than {MAX_INVALID_INPUTS} inputs; reports for further inputs are dropped");
                    }
                    self.invalid_dropped += 1;
                    return;
                }
                let entry = self.invalid.entry(index).or_default();
                entry.0 += 1;
                if entry.1.len() < INVALID_SAMPLES {
                    entry.1.push(rec);
                }
            } else {
                self.push_log(role, line);
            }
        } else {
            self.push_log(role, line);
        }
    }

    fn add_counter(&mut self, role: &str, group: &str, counter: &str, amount: i64) {
        let existing = self
            .counters
            .get_mut(group)
            .and_then(|g| g.get_mut(counter));
        if let Some(slot) = existing {
            *slot = slot.saturating_add(amount);
            return;
        }
        if self.distinct_counters >= MAX_COUNTERS {
            if self.counters_dropped == 0 {
                tracing::warn!(role, "the {role} created more than {MAX_COUNTERS} distinct counters; updates to new ones are dropped (first dropped: {group},{counter})");
            }
            self.counters_dropped += 1;
            return;
        }
        self.distinct_counters += 1;
        self.counters
            .entry(group.to_string())
            .or_default()
            .insert(counter.to_string(), amount);
    }

    fn push_log(&mut self, role: &str, line: &str) {
        tracing::info!(target: "polymr::child", role, "{line}");
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
    }

    pub fn tail_text(&self) -> String {
        self.tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

fn parse_counter(rest: &str) -> Option<(&str, &str, i64)> {
    let mut fields = rest.split(',');
    let (group, counter, amount) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || group.is_empty() || counter.is_empty() {
        return None;
    }
    Some((group, counter, amount.trim().parse().ok()?))
}

fn parse_invalid(rest: &str) -> Option<(usize, InvalidRecord)> {
    let mut f = rest.splitn(3, ':');
    let index = f.next()?.parse().ok()?;
    let line = f.next()?.parse().ok()?;
    let mut message = f.next().unwrap_or("");
    if message.len() > INVALID_MESSAGE {
        let mut end = INVALID_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message = &message[..end];
    }
    let message = message.to_string();
    Some((index, InvalidRecord { line, message }))
}

/// Reads `stderr` to its end. Never fails: a read error ends the drain, and what was read so
/// far is kept.
pub async fn drain_stderr<R: AsyncRead + Unpin>(
    mut stderr: R,
    role: &'static str,
) -> StderrSummary {
    let mut summary = StderrSummary::default();
    let mut chunk = vec![0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    let mut cut = false;
    loop {
        let n = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut rest = &chunk[..n];
        while let Some(i) = memchr::memchr(b'\n', rest) {
            if !cut {
                line.extend_from_slice(&rest[..i]);
            }
            summary.take_line(role, &line);
            line.clear();
            cut = false;
            rest = &rest[i + 1..];
        }
        if !cut {
            let room = MAX_LINE.saturating_sub(line.len());
            line.extend_from_slice(&rest[..rest.len().min(room)]);
            cut = rest.len() > room;
        }
    }
    if !line.is_empty() {
        summary.take_line(role, &line);
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_reporter_lines_and_keeps_tail() {
        let input: &[u8] = b"reporter:counter:g,c,2\nreporter:counter:g,c,-5\nreporter:counter:g,c\nreporter:counter:a,b,c,1\nreporter:status:half way\npolymr:invalid:1:7:bad json\nhello\n";
        let s = drain_stderr(input, "mapper").await;
        assert_eq!(s.counters["g"]["c"], -3);
        assert_eq!(s.malformed_reporter_lines, 2);
        assert_eq!(s.status.as_deref(), Some("half way"));
        assert_eq!(s.invalid[&1].0, 1);
        assert_eq!(s.invalid[&1].1[0].line, 7);
        assert_eq!(s.tail_text(), "hello");
    }

    #[tokio::test]
    async fn distinct_counters_are_capped_and_the_excess_counted() {
        let mut input = String::new();
        for i in 0..MAX_COUNTERS + 30 {
            input.push_str(&format!("reporter:counter:g{},c{i},1\n", i % 3));
        }
        // Existing counters still add up once the cap is reached.
        input.push_str("reporter:counter:g0,c0,5\n");
        let s = drain_stderr(input.as_bytes(), "mapper").await;
        let kept: usize = s.counters.values().map(|g| g.len()).sum();
        assert_eq!(kept, MAX_COUNTERS);
        assert_eq!(s.counters_dropped, 30);
        assert_eq!(s.counters["g0"]["c0"], 6);
    }

    #[tokio::test]
    async fn invalid_samples_are_bounded_and_counted_exactly() {
        let mut input = String::new();
        for i in 0..1000 {
            input.push_str(&format!("polymr:invalid:0:{i}:{}\n", "é".repeat(500)));
        }
        let s = drain_stderr(input.as_bytes(), "mapper").await;
        assert_eq!(s.invalid[&0].0, 1000);
        assert_eq!(s.invalid[&0].1.len(), INVALID_SAMPLES);
        assert!(s.invalid[&0].1[0].message.len() <= INVALID_MESSAGE);
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_tail_is_bounded() {
        let mut input = vec![b'x'; MAX_LINE * 3];
        input.push(b'\n');
        for i in 0..100 {
            input.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let s = drain_stderr(&input[..], "mapper").await;
        assert_eq!(s.tail.len(), TAIL_LINES);
        assert_eq!(s.tail.back().map(String::as_str), Some("line 99"));
    }
}
