//! A child's stderr (src/process/stderr.rs): reporter lines, helper lines, log lines, in any
//! bytes, read in any chunks. Never a panic, a bounded tail, and the same summary whatever
//! the chunking.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use polymr::process::{drain_stderr, StderrSummary};

#[derive(Debug, Arbitrary)]
struct Input {
    sizes: Vec<u8>,
    data: Vec<u8>,
}

struct Chunked<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    turn: usize,
}

impl tokio::io::AsyncRead for Chunked<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let want = match this.sizes {
            [] => usize::MAX,
            s => usize::from(s[this.turn % s.len()]).max(1),
        };
        this.turn += 1;
        let n = want.min(this.data.len()).min(buf.remaining());
        buf.put_slice(&this.data[..n]);
        this.data = &this.data[n..];
        Poll::Ready(Ok(()))
    }
}

fn drain(data: &[u8], sizes: &[u8]) -> StderrSummary {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(drain_stderr(
            Chunked {
                data,
                sizes,
                turn: 0,
            },
            "mapper",
        ))
}

fn seen(s: &StderrSummary) -> String {
    let mut invalid: Vec<_> = s
        .invalid
        .iter()
        .map(|(i, (n, v))| {
            (
                *i,
                *n,
                v.iter()
                    .map(|r| (r.line, r.message.clone()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    invalid.sort();
    format!(
        "{:?} {:?} {:?} {:?} {}",
        s.counters, s.status, invalid, s.tail, s.malformed_reporter_lines
    )
}

fuzz_target!(|input: Input| {
    let s = drain(&input.data, &input.sizes);
    assert!(s.tail.len() <= 20);
    assert!(s.tail.iter().all(|l| l.len() <= 3 * 16 * 1024));
    assert!(s
        .invalid
        .values()
        .all(|(n, v)| v.len() as u64 <= *n && !v.is_empty()));
    assert_eq!(seen(&s), seen(&drain(&input.data, &[])));
});
