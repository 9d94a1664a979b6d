//! Where a child's stdout goes: a file (map-only jobs, reducers), or the shuffle (sorted,
//! partitioned runs, through the combiner when the job has one).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::drive::{drive, with_tail};
use super::feed::CHUNK;
use crate::process::{ChildCommand, Counters};
use crate::records::{LineSplitter, Piece};
use crate::report::InvalidOutput;
use crate::shuffle::{Runs, SortConfig, Sorter};

/// Output buffer between a child's stdout and its file.
const OUTPUT_BUFFER: usize = 256 * 1024;

/// Copies the child's stdout to `file`, counting lines. Reads to EOF even after a write
/// error, so the child never blocks on a full pipe.
pub async fn copy_to_file(
    mut stdout: impl AsyncRead + Unpin,
    file: tokio::fs::File,
) -> io::Result<(u64, u64)> {
    let mut w = tokio::io::BufWriter::with_capacity(OUTPUT_BUFFER, file);
    let mut buf = vec![0u8; CHUNK];
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut failure = None;
    loop {
        let n = stdout.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if failure.is_none() {
            if let Err(e) = w.write_all(&buf[..n]).await {
                failure = Some(e);
            }
        }
        lines += crate::records::count_lines(&buf[..n]);
        bytes += n as u64;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    w.flush().await?;
    Ok((lines, bytes))
}

/// The shuffle side of a map task.
#[derive(Clone)]
pub struct ShuffleSpec {
    pub sort: SortConfig,
    pub combiner: Option<Arc<ChildCommand>>,
}

/// What the shuffle sink produced, plus the combiner's counters.
pub struct ShuffleOut {
    pub runs: Runs,
    pub combiner_counters: Counters,
    /// Lines of the mapper and combiner left out: longer than `--max-record-size`.
    pub invalid: InvalidOutput,
}

/// Sorts the child's output lines into runs on a blocking thread; the async side only
/// reads the pipe, so the child is never stalled by a spill longer than the channel.
/// Lines longer than `max_record` are skipped and counted.
pub async fn shuffle_sink(
    mut stdout: impl AsyncRead + Unpin,
    spec: ShuffleSpec,
    max_record: usize,
    cancel: CancellationToken,
) -> io::Result<ShuffleOut> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
    let counters = Arc::new(Mutex::new(Counters::new()));
    let invalid = Arc::new(Mutex::new(InvalidOutput::default()));
    let mut sorter = Sorter::new(spec.sort.clone());
    if let Some(cmd) = spec.combiner.clone() {
        let handle = tokio::runtime::Handle::current();
        let counters = counters.clone();
        let invalid = invalid.clone();
        sorter = sorter.with_combiner(Box::new(move |run: &Path, out: &Path| {
            handle.block_on(run_combiner(
                &cmd,
                run.to_path_buf(),
                out.to_path_buf(),
                max_record,
                &cancel,
                &counters,
                &invalid,
            ))
        }));
    }
    let sorting = tokio::task::spawn_blocking(move || -> io::Result<(Runs, InvalidOutput)> {
        let mut lines = LineSplitter::new(max_record);
        let mut skipped = InvalidOutput::default();
        let mut failure = None;
        while let Some(chunk) = rx.blocking_recv() {
            if failure.is_some() {
                continue; // keep draining so the reader never blocks
            }
            let pushed = lines.push(&chunk, |p| {
                into_sorter(&mut sorter, &mut skipped, "mapper", max_record, p)
            });
            if let Err(e) = pushed {
                failure = Some(e);
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        lines.finish(|p| into_sorter(&mut sorter, &mut skipped, "mapper", max_record, p))?;
        Ok((sorter.finish()?, skipped))
    });
    let mut buf = vec![0u8; CHUNK];
    let mut open = true;
    loop {
        let n = stdout.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if open && tx.send(buf[..n].to_vec()).await.is_err() {
            open = false;
        }
    }
    drop(tx);
    let (runs, mut skipped) = sorting
        .await
        .map_err(|e| io::Error::other(format!("internal error in the sorter: {e}")))??;
    let combiner_counters = counters.lock().map(|c| c.clone()).unwrap_or_default();
    if let Ok(c) = invalid.lock() {
        skipped.merge(&c);
    }
    Ok(ShuffleOut {
        runs,
        combiner_counters,
        invalid: skipped,
    })
}

/// A line of `who`'s output into the sorter, or into `skipped` when it is too long.
fn into_sorter(
    sorter: &mut Sorter,
    skipped: &mut InvalidOutput,
    who: &str,
    max_record: usize,
    piece: Piece<'_>,
) -> io::Result<()> {
    match piece {
        Piece::Line(line) => sorter.push(line),
        Piece::Oversize { line, len } => {
            skipped.add(line, oversize_message(who, len, max_record));
            Ok(())
        }
    }
}

/// Why a line of `who`'s output was skipped, for the report (and the log).
fn oversize_message(who: &str, len: u64, max_record: usize) -> String {
    format!(
        "{who} output: a record of {len} bytes is longer than --max-record-size ({max_record} bytes); skipped"
    )
}

/// One combiner process over one sorted run.
async fn run_combiner(
    cmd: &ChildCommand,
    run: PathBuf,
    out: PathBuf,
    max_record: usize,
    cancel: &CancellationToken,
    counters: &Mutex<Counters>,
    invalid: &Mutex<InvalidOutput>,
) -> io::Result<()> {
    let out_file = tokio::fs::File::create(&out).await?;
    let driven = drive(
        cmd,
        "combiner",
        move |tx, stop| feed_file(run, tx, stop),
        move |stdout| copy_lines_to_file(stdout, out_file, max_record),
        cancel,
        &CancellationToken::new(),
    )
    .await?;
    if let Ok(mut c) = counters.lock() {
        crate::report::merge_counters(&mut c, &driven.stderr.counters);
    }
    if driven.stopped.is_some() {
        return Err(io::Error::other("the combiner was stopped"));
    }
    if let Some(e) = driven.child_failure("combiner") {
        return Err(io::Error::other(e));
    }
    if let Err(e) = &driven.written {
        return Err(io::Error::other(with_tail(
            format!("the combiner exited before reading all its input ({e})"),
            &driven.stderr,
        )));
    }
    driven.produced?;
    let skipped = driven.consumed?;
    if let Ok(mut i) = invalid.lock() {
        i.merge(&skipped);
    }
    Ok(())
}

/// Copies a combiner's output lines to `file`, leaving out those longer than `max_record`
/// (the combiner's output goes into the shuffle as the mapper's does).
async fn copy_lines_to_file(
    mut stdout: impl AsyncRead + Unpin,
    file: tokio::fs::File,
    max_record: usize,
) -> io::Result<InvalidOutput> {
    let mut w = tokio::io::BufWriter::with_capacity(OUTPUT_BUFFER, file);
    let mut buf = vec![0u8; CHUNK];
    let mut lines = LineSplitter::new(max_record);
    let mut kept = Vec::with_capacity(CHUNK + 1);
    let mut skipped = InvalidOutput::default();
    let mut failure = None;
    loop {
        let n = stdout.read(&mut buf).await?;
        kept.clear();
        let take = |p: Piece<'_>| {
            match p {
                Piece::Line(l) => {
                    kept.extend_from_slice(l);
                    kept.push(b'\n');
                }
                Piece::Oversize { line, len } => {
                    skipped.add(line, oversize_message("combiner", len, max_record))
                }
            }
            Ok(())
        };
        if n == 0 {
            lines.finish(take)?;
        } else {
            lines.push(&buf[..n], take)?;
        }
        if failure.is_none() && !kept.is_empty() {
            if let Err(e) = w.write_all(&kept).await {
                failure = Some(e);
            }
        }
        if n == 0 {
            break;
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    w.flush().await?;
    Ok(skipped)
}

/// Sends a file's bytes in chunks.
pub async fn feed_file(
    path: PathBuf,
    tx: mpsc::Sender<Vec<u8>>,
    stop: CancellationToken,
) -> io::Result<()> {
    let mut f = tokio::fs::File::open(&path).await?;
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let n = tokio::select! {
            r = f.read(&mut chunk) => r?,
            // The combiner exited before this file was all sent: its output is incomplete.
            _ = stop.cancelled() => return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the combiner exited before reading all its input")),
        };
        if n == 0 {
            return Ok(());
        }
        chunk.truncate(n);
        if tx.send(chunk).await.is_err() {
            return Ok(());
        }
    }
}
