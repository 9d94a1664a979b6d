//! Bytes ↔ records: the framing of decoded input into whole lines for a child's stdin, the
//! splitting of a child's output into lines, the helper protocol's control lines
//! (`helpers/PROTOCOL.md`), and key/value splitting.
//!
//! Both directions are linear in the bytes whatever the line lengths, and hold at most
//! `--max-record-size` bytes of one line: a longer line is an invalid record, skipped as it
//! streams past.

use std::io;

use memchr::{memchr, memchr_iter, memrchr};

/// A line buffer that grew past this for one long line is given back once the line is done.
const KEEP_CAPACITY: usize = 1 << 20;

/// Number of complete lines (newlines) in `buf`.
pub fn count_lines(buf: &[u8]) -> u64 {
    memchr_iter(b'\n', buf).count() as u64
}

/// The control line that tells a helper which file the following records come from.
pub fn file_marker(index: usize, name: &str) -> Vec<u8> {
    let dims = serde_json::to_string(&telemetry_dims(name)).unwrap_or_else(|_| "[]".into());
    // TAB and newline would break the framing; a name never needs them to be recognised.
    let safe: String = name
        .chars()
        .map(|c| if c == '\t' || c == '\n' { ' ' } else { c })
        .collect();
    format!("\0F\t{index}\t{dims}\t{safe}\n").into_bytes()
}

/// Appends `lines` to `out`, escaping the lines that begin with NUL as `\0=` + line so that
/// no record can pass for a control line. `at_line_start` is false when `lines` continues a
/// line whose beginning was sent before.
pub fn escape_into(lines: &[u8], out: &mut Vec<u8>, at_line_start: bool) {
    if memchr(0, lines).is_none() {
        out.extend_from_slice(lines);
        return;
    }
    let mut start = 0;
    while start < lines.len() {
        let end = memchr(b'\n', &lines[start..]).map_or(lines.len(), |i| start + i + 1);
        if lines[start] == 0 && (start > 0 || at_line_start) {
            out.extend_from_slice(b"\0=");
        }
        out.extend_from_slice(&lines[start..end]);
        start = end;
    }
}

/// What the framing of input for a child hands out, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// Bytes for the child holding `lines` newlines: whole lines, or one piece of a line
    /// held across reads (`continues`: the piece does not begin a line).
    Bytes {
        bytes: Vec<u8>,
        lines: u64,
        continues: bool,
    },
    /// A line longer than the limit, skipped: its 1-based number and length (no newline).
    Oversize { line: u64, len: u64 },
}

/// Cuts decoded input into chunks of whole lines for a child's stdin. Reads go straight into
/// the chunk after the unfinished line carried from the last read, so a line is copied only
/// when it is cut. A line longer than a chunk is held, as the chunks read, until its newline,
/// so the child gets every line whole or not at all (an input failing mid-line delivers no
/// piece of it); a line longer than `max` is dropped as soon as it is known to be too long
/// and the rest of it is skipped unbuffered. Memory: at most `max` plus one chunk.
pub struct Framer {
    chunk: usize,
    max: usize,
    /// Unsent bytes, without a newline between reads: at a line start unless `held` or
    /// `skipping` says the line began earlier.
    buf: Vec<u8>,
    /// Where the last read went in `buf`.
    read_at: usize,
    held: Vec<Vec<u8>>,
    held_len: usize,
    /// Bytes of an oversize line skipped so far.
    skipping: Option<u64>,
    /// Lines finished so far, sent or skipped.
    lines: u64,
}

impl Framer {
    pub fn new(chunk: usize, max: usize) -> Framer {
        Framer {
            chunk,
            max,
            buf: Vec::with_capacity(chunk),
            read_at: 0,
            held: Vec::new(),
            held_len: 0,
            skipping: None,
            lines: 0,
        }
    }

    /// Room for the next read; hand its length to [`Framer::filled`].
    pub fn spare(&mut self) -> &mut [u8] {
        self.read_at = self.buf.len();
        self.buf.resize(self.chunk.max(self.read_at + 1), 0);
        &mut self.buf[self.read_at..]
    }

    /// Frames the `n` bytes just read into [`Framer::spare`].
    pub fn filled(&mut self, n: usize, out: &mut Vec<Framed>) {
        self.buf.truncate(self.read_at + n);
        self.frame(out);
        self.read_at = self.buf.len();
    }

    /// The end of the input: a last line without its newline is still a record.
    pub fn finish(&mut self, out: &mut Vec<Framed>) {
        self.buf.truncate(self.read_at);
        if self.continuing() {
            self.buf.push(b'\n');
            self.end_continued(self.buf.len() - 1, out);
        } else if !self.buf.is_empty() {
            let mut last = std::mem::take(&mut self.buf);
            last.push(b'\n');
            self.push_lines(last, out);
        }
        self.buf.clear();
        self.read_at = 0;
    }

    fn frame(&mut self, out: &mut Vec<Framed>) {
        // The bytes before `read_at` hold no newline: only the new ones are searched.
        let mut scan = self.read_at;
        let mut start = 0;
        if self.continuing() {
            let Some(i) = memchr(b'\n', &self.buf[scan..]) else {
                self.hold_or_skip();
                return;
            };
            let nl = scan + i;
            self.end_continued(nl, out);
            start = nl + 1;
            scan = start;
        }
        let end = memrchr(b'\n', &self.buf[scan..]).map_or(start, |i| scan + i + 1);
        if end > start {
            let mut rest = Vec::with_capacity(self.chunk);
            rest.extend_from_slice(&self.buf[end..]);
            let mut whole = std::mem::replace(&mut self.buf, rest);
            whole.truncate(end);
            if start > 0 {
                whole.drain(..start);
            }
            self.push_lines(whole, out);
        } else if start > 0 {
            self.buf.drain(..start);
        }
        self.hold_or_skip();
    }

    fn continuing(&self) -> bool {
        self.skipping.is_some() || !self.held.is_empty()
    }

    /// `buf` holds an unfinished line (or its continuation): hold it once it fills a chunk,
    /// drop it once it is longer than `max`.
    fn hold_or_skip(&mut self) {
        let len = self.buf.len();
        if let Some(s) = self.skipping.as_mut() {
            *s += len as u64;
            self.buf.clear();
        } else if self.held_len + len > self.max {
            self.skipping = Some((self.held_len + len) as u64);
            self.held = Vec::new();
            self.held_len = 0;
            self.buf.clear();
        } else if len >= self.chunk {
            self.held_len += len;
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
            self.held.push(full);
        }
    }

    /// The line begun in an earlier read ends at `buf[nl]`: send it whole, or report it.
    fn end_continued(&mut self, nl: usize, out: &mut Vec<Framed>) {
        self.lines += 1;
        let skipped = self.skipping.take();
        let len = skipped.unwrap_or(self.held_len as u64) + nl as u64;
        if skipped.is_some() || len > self.max as u64 {
            out.push(Framed::Oversize {
                line: self.lines,
                len,
            });
        } else {
            for (i, piece) in self.held.drain(..).enumerate() {
                out.push(Framed::Bytes {
                    bytes: piece,
                    lines: 0,
                    continues: i > 0,
                });
            }
            out.push(Framed::Bytes {
                bytes: self.buf[..=nl].to_vec(),
                lines: 1,
                continues: true,
            });
        }
        self.held = Vec::new();
        self.held_len = 0;
    }

    /// Sends whole lines, cutting out any longer than `max`.
    fn push_lines(&mut self, whole: Vec<u8>, out: &mut Vec<Framed>) {
        if whole.len() <= self.max {
            let lines = count_lines(&whole);
            self.lines += lines;
            out.push(Framed::Bytes {
                bytes: whole,
                lines,
                continues: false,
            });
            return;
        }
        let (mut from, mut lines) = (0, 0);
        let mut start = 0;
        for nl in memchr_iter(b'\n', &whole) {
            if nl - start > self.max {
                if start > from {
                    out.push(Framed::Bytes {
                        bytes: whole[from..start].to_vec(),
                        lines,
                        continues: false,
                    });
                }
                out.push(Framed::Oversize {
                    line: self.lines + 1,
                    len: (nl - start) as u64,
                });
                lines = 0;
                from = nl + 1;
            } else {
                lines += 1;
            }
            self.lines += 1;
            start = nl + 1;
        }
        if whole.len() > from {
            out.push(Framed::Bytes {
                bytes: whole[from..].to_vec(),
                lines,
                continues: false,
            });
        }
    }
}

/// One piece of a child's output, as [`LineSplitter`] hands it out.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// One line, without its newline.
    Line(&'a [u8]),
    /// A line longer than the limit, skipped: its 1-based number and length (no newline).
    Oversize { line: u64, len: u64 },
}

/// Splits a stream of chunks into lines no longer than `max`. Lines inside a chunk are handed
/// out in place; only a line that spans chunks is copied (once, into a buffer that never
/// exceeds `max`), and a longer one is skipped as it streams past.
pub struct LineSplitter {
    max: usize,
    tail: Vec<u8>,
    skipping: Option<u64>,
    lines: u64,
}

impl LineSplitter {
    pub fn new(max: usize) -> LineSplitter {
        LineSplitter {
            max,
            tail: Vec::new(),
            skipping: None,
            lines: 0,
        }
    }

    pub fn push(
        &mut self,
        chunk: &[u8],
        mut f: impl FnMut(Piece<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut rest = chunk;
        if self.skipping.is_some() || !self.tail.is_empty() {
            let Some(nl) = memchr(b'\n', rest) else {
                self.extend_partial(rest);
                return Ok(());
            };
            self.extend_partial(&rest[..nl]);
            self.end_line(&mut f)?;
            rest = &rest[nl + 1..];
        }
        let mut start = 0;
        for nl in memchr_iter(b'\n', rest) {
            self.lines += 1;
            if nl - start > self.max {
                f(Piece::Oversize {
                    line: self.lines,
                    len: (nl - start) as u64,
                })?;
            } else {
                f(Piece::Line(&rest[start..nl]))?;
            }
            start = nl + 1;
        }
        self.extend_partial(&rest[start..]);
        Ok(())
    }

    /// The end of the stream: a last line without its newline is still a line. Numbering
    /// starts again for the next stream.
    pub fn finish(&mut self, mut f: impl FnMut(Piece<'_>) -> io::Result<()>) -> io::Result<()> {
        if self.skipping.is_some() || !self.tail.is_empty() {
            self.end_line(&mut f)?;
        }
        self.lines = 0;
        Ok(())
    }

    /// Forgets an unfinished line (its stream broke off): it is not a record.
    pub fn abandon(&mut self) {
        self.skipping = None;
        self.tail = Vec::new();
        self.lines = 0;
    }

    fn extend_partial(&mut self, bytes: &[u8]) {
        if let Some(s) = self.skipping.as_mut() {
            *s += bytes.len() as u64;
        } else if self.tail.len() + bytes.len() > self.max {
            self.skipping = Some((self.tail.len() + bytes.len()) as u64);
            self.tail = Vec::new();
        } else {
            self.tail.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self, f: &mut impl FnMut(Piece<'_>) -> io::Result<()>) -> io::Result<()> {
        self.lines += 1;
        let r = match self.skipping.take() {
            Some(len) => f(Piece::Oversize {
                line: self.lines,
                len,
            }),
            None => f(Piece::Line(&self.tail)),
        };
        if self.tail.capacity() > KEEP_CAPACITY {
            self.tail = Vec::new();
        } else {
            self.tail.clear();
        }
        r
    }
}

/// The telemetry dimensions of an input's name, laid out as
/// `reason/appName/appUpdateChannel/appVersion/appBuildID.submissionDate.v2.log…`:
/// the last four directories and the first two dot-separated parts of the file name.
pub fn telemetry_dims(name: &str) -> Vec<String> {
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() < 5 {
        return Vec::new();
    }
    let file = parts[parts.len() - 1];
    let mut pieces = file.split('.');
    let (Some(build), Some(date)) = (pieces.next(), pieces.next()) else {
        return Vec::new();
    };
    if build.is_empty() || date.is_empty() || !file.contains(".v2.") {
        return Vec::new();
    }
    let mut dims: Vec<String> = parts[parts.len() - 5..parts.len() - 1]
        .iter()
        .map(|s| s.to_string())
        .collect();
    dims.push(build.to_string());
    dims.push(date.to_string());
    dims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_from_key_layout() {
        let d = telemetry_dims(
            "saved_session/Firefox/nightly/33.0a1/20140601.20140603.v2.log.abc.lzma",
        );
        assert_eq!(
            d,
            vec![
                "saved_session",
                "Firefox",
                "nightly",
                "33.0a1",
                "20140601",
                "20140603"
            ]
        );
        let d = telemetry_dims("/tmp/x/idle-daily/Fennec/beta/30.0/2014.2015.v2.log.3.xz");
        assert_eq!(d[0], "idle-daily");
        assert!(telemetry_dims("plain.txt").is_empty());
        assert!(telemetry_dims("a/b/c/d/e.txt").is_empty());
    }

    #[test]
    fn escapes_only_lines_starting_with_nul() {
        let mut out = Vec::new();
        escape_into(b"a\0b\n\0c\n\0\nd\n", &mut out, true);
        assert_eq!(out, b"a\0b\n\0=\0c\n\0=\0\nd\n");
        let mut out = Vec::new();
        escape_into(b"plain\n", &mut out, true);
        assert_eq!(out, b"plain\n");
        let mut out = Vec::new();
        escape_into(b"\0rest of a long line\n\0x\n", &mut out, false);
        assert_eq!(out, b"\0rest of a long line\n\0=\0x\n");
    }

    /// The reference: every line (a last one without its newline included), in order, kept
    /// when it is at most `max` bytes long.
    fn expected(input: &[u8], max: usize) -> (Vec<u8>, Vec<(u64, u64)>) {
        let (mut kept, mut oversize) = (Vec::new(), Vec::new());
        let mut lines: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
        if input.last() == Some(&b'\n') || input.is_empty() {
            lines.pop();
        }
        for (i, l) in lines.iter().enumerate() {
            if l.len() > max {
                oversize.push((i as u64 + 1, l.len() as u64));
            } else {
                kept.extend_from_slice(l);
                kept.push(b'\n');
            }
        }
        (kept, oversize)
    }

    fn random_input(rng: &mut impl rand::Rng, max: usize) -> Vec<u8> {
        let mut input = Vec::new();
        for _ in 0..rng.gen_range(0..12) {
            let len = match rng.gen_range(0..4) {
                0 => rng.gen_range(0..3),
                1 => rng.gen_range(0..20),
                2 => rng.gen_range(max - 2..max + 3),
                _ => rng.gen_range(0..3 * max),
            };
            input.extend((0..len).map(|i| b'a' + (i % 26) as u8));
            input.push(b'\n');
        }
        if rng.gen_bool(0.5) {
            input.pop();
        }
        input
    }

    #[test]
    fn framer_sends_whole_lines_and_skips_long_ones_whatever_the_reads() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let (chunk, max) = (16, 40);
        for _ in 0..5000 {
            let input = random_input(&mut rng, max);
            let mut f = Framer::new(chunk, max);
            let mut out = Vec::new();
            let mut rest = &input[..];
            loop {
                let spare = f.spare();
                let n = rng.gen_range(1..=spare.len()).min(rest.len());
                spare[..n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                if n == 0 {
                    f.finish(&mut out);
                    break;
                }
                f.filled(n, &mut out);
                assert!(f.held_len + f.buf.len() <= max + chunk);
            }
            let (mut sent, mut oversize, mut lines) = (Vec::new(), Vec::new(), 0);
            for piece in out {
                match piece {
                    Framed::Bytes {
                        bytes,
                        lines: n,
                        continues,
                    } => {
                        let at_start = sent.is_empty() || sent.last() == Some(&b'\n');
                        assert_eq!(continues, !at_start, "{input:?}");
                        assert!(!bytes.is_empty());
                        sent.extend_from_slice(&bytes);
                        lines += n;
                    }
                    Framed::Oversize { line, len } => {
                        assert!(sent.is_empty() || sent.last() == Some(&b'\n'));
                        oversize.push((line, len));
                    }
                }
            }
            let (kept, skipped) = expected(&input, max);
            assert_eq!(sent, kept, "{input:?}");
            assert_eq!(oversize, skipped, "{input:?}");
            assert_eq!(lines, count_lines(&kept));
        }
    }

    #[test]
    fn splitter_hands_out_lines_and_skips_long_ones_whatever_the_chunks() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let max = 40;
        for _ in 0..5000 {
            let input = random_input(&mut rng, max);
            let mut s = LineSplitter::new(max);
            let (mut kept, mut oversize) = (Vec::new(), Vec::new());
            let mut take = |p: Piece<'_>| {
                match p {
                    Piece::Line(l) => {
                        kept.extend_from_slice(l);
                        kept.push(b'\n');
                    }
                    Piece::Oversize { line, len } => oversize.push((line, len)),
                }
                Ok(())
            };
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = rng.gen_range(1..=rest.len().min(50));
                s.push(&rest[..n], &mut take).expect("push");
                assert!(s.tail.len() <= max);
                rest = &rest[n..];
            }
            s.finish(&mut take).expect("finish");
            assert_eq!((kept, oversize), expected(&input, max), "{input:?}");
        }
    }

    #[test]
    fn marker_is_one_line() {
        let m = file_marker(3, "a\tb");
        assert_eq!(m, b"\0F\t3\t[]\ta b\n");
        assert_eq!(count_lines(&m), 1);
    }
}
