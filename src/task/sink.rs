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
}

/// Sorts the child's output lines into runs on a blocking thread; the async side only
/// reads the pipe, so the child is never stalled by a spill longer than the channel.
pub async fn shuffle_sink(
    mut stdout: impl AsyncRead + Unpin,
    spec: ShuffleSpec,
    cancel: CancellationToken,
) -> io::Result<ShuffleOut> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
    let counters = Arc::new(Mutex::new(Counters::new()));
    let mut sorter = Sorter::new(spec.sort.clone());
    if let Some(cmd) = spec.combiner.clone() {
        let handle = tokio::runtime::Handle::current();
        let counters = counters.clone();
        sorter = sorter.with_combiner(Box::new(move |run: &Path, out: &Path| {
            handle.block_on(run_combiner(
                &cmd,
                run.to_path_buf(),
                out.to_path_buf(),
                &cancel,
                &counters,
            ))
        }));
    }
    let sorting = tokio::task::spawn_blocking(move || -> io::Result<Runs> {
        let mut tail: Vec<u8> = Vec::new();
        let mut failure = None;
        while let Some(chunk) = rx.blocking_recv() {
            if failure.is_some() {
                continue; // keep draining so the reader never blocks
            }
            let result = if tail.is_empty() {
                sorter
                    .push_lines(&chunk)
                    .map(|used| tail.extend_from_slice(&chunk[used..]))
            } else {
                tail.extend_from_slice(&chunk);
                let buf = std::mem::take(&mut tail);
                sorter
                    .push_lines(&buf)
                    .map(|used| tail.extend_from_slice(&buf[used..]))
            };
            if let Err(e) = result {
                failure = Some(e);
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if !tail.is_empty() {
            sorter.push(&tail)?;
        }
        sorter.finish()
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
    let runs = sorting
        .await
        .map_err(|e| io::Error::other(format!("internal error in the sorter: {e}")))??;
    let combiner_counters = counters.lock().map(|c| c.clone()).unwrap_or_default();
    Ok(ShuffleOut {
        runs,
        combiner_counters,
    })
}

/// Pushes the complete lines of `chunk` into the sorter; `tail` carries a line split across
/// chunks, and only that line is copied.
pub fn push_chunk(sorter: &mut Sorter, tail: &mut Vec<u8>, chunk: &[u8]) -> io::Result<()> {
    let mut rest = chunk;
    if !tail.is_empty() {
        let Some(nl) = memchr::memchr(b'\n', chunk) else {
            tail.extend_from_slice(chunk);
            return Ok(());
        };
        tail.extend_from_slice(&chunk[..nl]);
        sorter.push(tail)?;
        tail.clear();
        rest = &chunk[nl + 1..];
    }
    let used = sorter.push_lines(rest)?;
    tail.extend_from_slice(&rest[used..]);
    Ok(())
}

/// One combiner process over one sorted run.
async fn run_combiner(
    cmd: &ChildCommand,
    run: PathBuf,
    out: PathBuf,
    cancel: &CancellationToken,
    counters: &Mutex<Counters>,
) -> io::Result<()> {
    let out_file = tokio::fs::File::create(&out).await?;
    let driven = drive(
        cmd,
        "combiner",
        move |tx, stop| feed_file(run, tx, stop),
        move |stdout| copy_to_file(stdout, out_file),
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
    driven.consumed.map(|_| ())
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
