//! Feeding a child: inputs are opened and decoded one after another and cut into chunks of
//! whole lines (or, in the "file paths" feed, written out as ready local files), which a
//! bounded channel hands to the writer of the child's stdin. The channel decouples
//! decompression from the child's pace, so both cores stay busy.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

use crate::config::{Decompression, Feed};
use crate::decode::{self, ByteStream};
use crate::input::{open_with_prefetch, Input, Opened, Prefetched, Sources};
use crate::records;
use crate::report::{InputReport, InputStatus};

/// Writes into the child's pipe stay at 64 KiB: larger ones make decompression and the
/// child take turns instead of overlapping (see `../shared/bench/PEERS.md`).
pub const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the decoder and the writer: 1 MiB of slack.
pub const CHANNEL_DEPTH: usize = 16;

pub struct FeedOptions {
    pub decompression: Decompression,
    pub feed: Feed,
    /// Send the helper protocol's control lines and escapes.
    pub helper_framing: bool,
    pub fail_fast: bool,
    /// Longer input lines are invalid records, skipped (`--max-record-size`).
    pub max_record_size: usize,
    /// Where decompressed files go for the "file paths" feed.
    pub scratch: Option<PathBuf>,
    pub sources: Sources,
}

/// Why feeding stopped before the last input.
#[derive(Debug)]
pub enum FeedStop {
    /// The writer is gone: the child closed its stdin or exited.
    ChildGone,
    /// Cancelled from outside (signal, or the child exited while an input was being read).
    Cancelled,
    /// `--fail-fast` and an input failed; `transient` when reading it again may work.
    InputFailed { message: String, transient: bool },
}

pub struct FeedResult {
    pub inputs: Vec<InputReport>,
    pub stop: Option<FeedStop>,
}

/// Reads every input in order, sending framed chunks to `tx`. Never fails as a whole: each
/// input's fate goes into its report.
pub async fn produce(
    inputs: Vec<Input>,
    opts: FeedOptions,
    tx: mpsc::Sender<Vec<u8>>,
    stop: CancellationToken,
) -> FeedResult {
    let mut reports: Vec<InputReport> = inputs.iter().map(|i| InputReport::new(&i.name)).collect();
    let mut stopped = None;
    let mut opened = Prefetched::new();
    for (index, input) in inputs.iter().enumerate() {
        let report = &mut reports[index];
        let started = Instant::now();
        let result = tokio::select! {
            r = async {
                let opened = open_with_prefetch(&inputs, index, &opts.sources, &mut opened).await?;
                feed_one(index, input, opened, &opts, &tx, report).await
            } => r,
            _ = stop.cancelled() => Err(FeedError::Stop(FeedStop::Cancelled)),
        };
        report.duration_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(()) => {
                report.status = InputStatus::Processed;
                tracing::debug!(input = %input.name, records = report.records, "input done");
            }
            Err(FeedError::Input(e)) => {
                report.status = InputStatus::Failed;
                let msg = format!("{e}");
                tracing::error!(
                    "input `{}` failed after {} records: {msg}",
                    input.name,
                    report.records
                );
                report.error = Some(msg.clone());
                if opts.fail_fast {
                    stopped = Some(FeedStop::InputFailed {
                        message: format!("input `{}` failed: {msg}", input.name),
                        transient: super::TaskError::is_transient_io(&e),
                    });
                }
            }
            Err(FeedError::Stop(s)) => {
                report.status = InputStatus::Failed;
                report.error = Some(match s {
                    FeedStop::ChildGone => {
                        "the child stopped reading before this input was delivered".into()
                    }
                    FeedStop::Cancelled => {
                        "the task was stopped while this input was being read".into()
                    }
                    FeedStop::InputFailed { ref message, .. } => message.clone(),
                });
                stopped = Some(s);
            }
        }
        if let Some(s) = &stopped {
            let why = match s {
                FeedStop::ChildGone => "not read: the child stopped reading its input",
                FeedStop::Cancelled => "not read: the task was stopped",
                FeedStop::InputFailed { .. } => {
                    "not read: an earlier input failed and --fail-fast is set"
                }
            };
            for r in reports.iter_mut().skip(index + 1) {
                r.error = Some(why.into());
            }
            break;
        }
    }
    FeedResult {
        inputs: reports,
        stop: stopped,
    }
}

enum FeedError {
    Input(io::Error),
    Stop(FeedStop),
}

impl From<io::Error> for FeedError {
    fn from(e: io::Error) -> Self {
        FeedError::Input(e)
    }
}

async fn send(tx: &mpsc::Sender<Vec<u8>>, chunk: Vec<u8>) -> Result<(), FeedError> {
    tx.send(chunk)
        .await
        .map_err(|_| FeedError::Stop(FeedStop::ChildGone))
}

async fn feed_one(
    index: usize,
    input: &Input,
    opened: Opened,
    opts: &FeedOptions,
    tx: &mpsc::Sender<Vec<u8>>,
    report: &mut InputReport,
) -> Result<(), FeedError> {
    let retries = opened.retries.clone();
    let counted = Counted::new(opened.stream);
    let read_counter = counted.count.clone();
    let (codec, mut reader) = decode::open(Box::pin(counted), opts.decompression).await?;
    report.codec = Some(codec);
    let result = match opts.feed {
        Feed::Records => feed_records(index, input, opts, tx, report, &mut reader).await,
        Feed::Paths => feed_path(index, input, opts, tx, report, &mut reader, codec).await,
    };
    report.bytes_read = read_counter.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(r) = retries {
        report.retries = r.load(std::sync::atomic::Ordering::Relaxed);
    }
    result
}

async fn feed_records(
    index: usize,
    input: &Input,
    opts: &FeedOptions,
    tx: &mpsc::Sender<Vec<u8>>,
    report: &mut InputReport,
    reader: &mut ByteStream,
) -> Result<(), FeedError> {
    if opts.helper_framing {
        send(tx, records::file_marker(index, &input.name)).await?;
    }
    let mut framer = records::Framer::new(CHUNK, opts.max_record_size);
    let mut framed = Vec::new();
    loop {
        let n = reader.read(framer.spare()).await?;
        if n == 0 {
            framer.finish(&mut framed);
        } else {
            framer.filled(n, &mut framed);
        }
        for piece in framed.drain(..) {
            match piece {
                records::Framed::Bytes {
                    bytes,
                    lines,
                    continues,
                } => emit(tx, opts, report, bytes, lines, continues).await?,
                records::Framed::Oversize { line, len } => {
                    oversize(input, opts.max_record_size, report, line, len);
                    if opts.helper_framing {
                        // An empty record in its place: helpers count it as a line, so the
                        // line numbers they report stay those of the file.
                        send(tx, b"\n".to_vec()).await?;
                    }
                }
            }
        }
        if n == 0 {
            return Ok(());
        }
    }
}

/// A line longer than `--max-record-size` was skipped: an invalid record, not an error.
/// Logged like the report's samples: the first few per input.
fn oversize(input: &Input, max: usize, report: &mut InputReport, line: u64, len: u64) {
    let msg =
        format!("a record of {len} bytes is longer than --max-record-size ({max} bytes); skipped");
    if report.invalid_samples.len() < crate::report::INVALID_SAMPLES {
        tracing::warn!("{} line {line}: {msg}", input.name);
    }
    report.bytes += len;
    report.add_invalid(line, msg);
}

async fn emit(
    tx: &mpsc::Sender<Vec<u8>>,
    opts: &FeedOptions,
    report: &mut InputReport,
    chunk: Vec<u8>,
    lines: u64,
    continues_line: bool,
) -> Result<(), FeedError> {
    report.records += lines;
    report.bytes += chunk.len() as u64;
    let chunk = if opts.helper_framing && memchr::memchr(0, &chunk).is_some() {
        let mut out = Vec::with_capacity(chunk.len() + 16);
        records::escape_into(&chunk, &mut out, !continues_line);
        out
    } else {
        chunk
    };
    send(tx, chunk).await
}

/// The original binary mode: the child gets one ready local path per line. Compressed inputs
/// are decompressed into the task's scratch directory first.
async fn feed_path(
    index: usize,
    input: &Input,
    opts: &FeedOptions,
    tx: &mpsc::Sender<Vec<u8>>,
    report: &mut InputReport,
    reader: &mut ByteStream,
    codec: decode::Codec,
) -> Result<(), FeedError> {
    let local = match (input.local_path(), codec) {
        (Some(p), decode::Codec::Plain) => {
            // Read once anyway, for the report's counts.
            let p = std::fs::canonicalize(p)?;
            count_into(reader, report, None).await?;
            p
        }
        _ => {
            let scratch = opts
                .scratch
                .as_ref()
                .ok_or_else(|| io::Error::other("no scratch directory for decompressed files"))?;
            let base = input.name.rsplit('/').next().unwrap_or("input");
            let stem = base
                .strip_suffix(".xz")
                .or_else(|| base.strip_suffix(".gz"))
                .or_else(|| base.strip_suffix(".zst"))
                .or_else(|| base.strip_suffix(".bz2"))
                .or_else(|| base.strip_suffix(".lzma"))
                .unwrap_or(base);
            let path = scratch.join(format!("{index:05}-{stem}"));
            let mut file =
                tokio::io::BufWriter::with_capacity(CHUNK, tokio::fs::File::create(&path).await?);
            count_into(reader, report, Some(&mut file)).await?;
            file.flush().await?;
            path
        }
    };
    let mut line = local.to_string_lossy().into_owned().into_bytes();
    line.push(b'\n');
    send(tx, line).await
}

/// Reads `reader` to its end, counting lines and bytes into the report, copying to `copy`.
async fn count_into(
    reader: &mut ByteStream,
    report: &mut InputReport,
    mut copy: Option<&mut tokio::io::BufWriter<tokio::fs::File>>,
) -> io::Result<()> {
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        report.records += records::count_lines(&chunk[..n]);
        report.bytes += n as u64;
        if let Some(w) = copy.as_mut() {
            w.write_all(&chunk[..n]).await?;
        }
    }
}

/// What the writer of a child's stdin has done so far, for the progress watchdog.
#[derive(Default)]
pub struct StdinProgress {
    /// Bytes written into the pipe (not necessarily read by the child yet).
    pub written: AtomicU64,
    /// The writer closed the pipe: the child has all its input, EOF included.
    pub closed: AtomicBool,
}

/// Writes chunks to the child's stdin until the channel closes, then closes stdin so the
/// child sees EOF. The driver holds a probe on the pipe, so writes never fail with EPIPE:
/// `child_gone` (cancelled once the child has exited) stops the writer instead, and it then
/// errs, because a child that exits before its EOF was written did not read all its input.
/// Writes are cancel-safe, so `progress.written` is exact when the writer returns.
pub async fn write_stdin(
    mut stdin: pipe::Sender,
    mut rx: mpsc::Receiver<Vec<u8>>,
    child_gone: CancellationToken,
    progress: Arc<StdinProgress>,
) -> io::Result<u64> {
    let cut_short = || {
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            "it exited while its input was still being written",
        )
    };
    let mut written = 0u64;
    loop {
        let chunk = tokio::select! {
            biased;
            _ = child_gone.cancelled() => match rx.try_recv() {
                // The producer had finished and everything was written: only the EOF was
                // not seen, and a child may stop at its last record without waiting for it.
                Err(TryRecvError::Disconnected) => None,
                _ => return Err(cut_short()),
            },
            c = rx.recv() => c,
        };
        let Some(chunk) = chunk else { break };
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let n = tokio::select! {
                biased;
                _ = child_gone.cancelled() => return Err(cut_short()),
                n = stdin.write(rest) => n?,
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            rest = &rest[n..];
            written += n as u64;
            progress.written.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    drop(stdin);
    progress.closed.store(true, Ordering::Relaxed);
    Ok(written)
}

/// Counts the bytes read through it (compressed bytes, for the report).
struct Counted {
    inner: ByteStream,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl Counted {
    fn new(inner: ByteStream) -> Self {
        Counted {
            inner,
            count: Arc::default(),
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = self.inner.as_mut().poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.count
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        poll
    }
}
