//! Codec detection from magic bytes and streaming decoders: a byte stream in, the
//! decompressed byte stream out, never holding a whole file in memory. A decoder's error
//! says what is wrong with the file (truncated, corrupt), not what the codec library calls it.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use async_compression::tokio::bufread::{BzDecoder, GzipDecoder, XzDecoder, ZstdDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, BufReader, ReadBuf};

use crate::config::Decompression;

/// Input buffer of the decoders: large enough that a read from disk or a socket is cheap,
/// small enough that several inputs in flight stay well inside the memory budget.
const READ_BUFFER: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Plain,
    Xz,
    Gzip,
    Zstd,
    Bzip2,
}

impl Codec {
    /// The codec whose magic number starts `head`; `Plain` when none does.
    pub fn detect(head: &[u8]) -> Codec {
        if head.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
            Codec::Xz
        } else if head.starts_with(&[0x1F, 0x8B]) {
            Codec::Gzip
        } else if head.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
            Codec::Zstd
        } else if head.starts_with(b"BZh") && head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d))
        {
            Codec::Bzip2
        } else {
            Codec::Plain
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Plain => "plain",
            Codec::Xz => "xz",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::Bzip2 => "bzip2",
        }
    }

    fn forced(setting: Decompression) -> Option<Codec> {
        match setting {
            Decompression::Auto => None,
            Decompression::None => Some(Codec::Plain),
            Decompression::Xz => Some(Codec::Xz),
            Decompression::Gzip => Some(Codec::Gzip),
            Decompression::Zstd => Some(Codec::Zstd),
            Decompression::Bzip2 => Some(Codec::Bzip2),
        }
    }
}

pub type ByteStream = Pin<Box<dyn AsyncRead + Send>>;

/// Wraps `raw` in the decoder for its codec: the configured one, or the one its first bytes
/// announce. The peeked bytes are put back in front of the stream.
pub async fn open(mut raw: ByteStream, setting: Decompression) -> io::Result<(Codec, ByteStream)> {
    let mut head = Vec::with_capacity(6);
    // A socket may hand over fewer than six bytes at a time: keep reading until six or EOF.
    while head.len() < 6 {
        let mut byte = [0u8; 6];
        let want = 6 - head.len();
        let n = raw.read(&mut byte[..want]).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&byte[..n]);
    }
    let codec = Codec::forced(setting).unwrap_or_else(|| Codec::detect(&head));
    let source_failed = Arc::new(AtomicBool::new(false));
    let rejoined: ByteStream = Box::pin(Watched {
        inner: Box::pin(std::io::Cursor::new(head).chain(raw)),
        failed: source_failed.clone(),
    });
    let buffered = BufReader::with_capacity(READ_BUFFER, rejoined);
    let decoded: ByteStream = match codec {
        Codec::Plain => Box::pin(buffered),
        Codec::Xz => {
            let mut d = XzDecoder::new(buffered);
            d.multiple_members(true);
            Box::pin(d)
        }
        Codec::Gzip => {
            let mut d = GzipDecoder::new(buffered);
            d.multiple_members(true);
            Box::pin(d)
        }
        Codec::Zstd => {
            let mut d = ZstdDecoder::new(buffered);
            d.multiple_members(true);
            Box::pin(d)
        }
        Codec::Bzip2 => {
            let mut d = BzDecoder::new(buffered);
            d.multiple_members(true);
            Box::pin(d)
        }
    };
    if codec == Codec::Plain {
        return Ok((codec, decoded));
    }
    let explained: ByteStream = Box::pin(Explained {
        inner: decoded,
        codec,
        source_failed,
    });
    Ok((codec, explained))
}

/// A decoder's error in words about the file. The codec crates word a file that ends inside
/// a compressed stream in several ways: "unexpected end of file", "… stream did not
/// finish", and for xz a bare "out of memory", because async-compression maps liblzma's
/// LZMA_BUF_ERROR (no progress possible: the input ran out) to `ErrorKind::OutOfMemory`.
/// A real allocation failure comes from liblzma as "can't allocate memory" or "memory
/// limit reached", and is kept.
pub fn explain(codec: Codec, e: io::Error) -> io::Error {
    let name = codec.name();
    let text = e.to_string();
    let bare_oom = e.kind() == io::ErrorKind::OutOfMemory && e.get_ref().is_none();
    if e.kind() == io::ErrorKind::UnexpectedEof
        || text.contains("did not finish")
        || (codec == Codec::Xz && bare_oom)
    {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("truncated or corrupt {name} data: the file ends inside a compressed stream"),
        )
    } else if text.contains("memory") {
        io::Error::new(e.kind(), format!("{name} decoder: {text}"))
    } else {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("corrupt {name} data: {text}"),
        )
    }
}

/// Notes whether the source itself failed, so its errors (a broken download) pass the
/// decoder unexplained.
struct Watched {
    inner: ByteStream,
    failed: Arc<AtomicBool>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let poll = self.inner.as_mut().poll_read(cx, buf);
        if let Poll::Ready(Err(_)) = &poll {
            self.failed.store(true, Ordering::Relaxed);
        }
        poll
    }
}

struct Explained {
    inner: ByteStream,
    codec: Codec,
    source_failed: Arc<AtomicBool>,
}

impl AsyncRead for Explained {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.inner.as_mut().poll_read(cx, buf) {
            Poll::Ready(Err(e)) if !self.source_failed.load(Ordering::Relaxed) => {
                Poll::Ready(Err(explain(self.codec, e)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_magic_numbers() {
        assert_eq!(Codec::detect(b"\xFD7zXZ\x00\x00"), Codec::Xz);
        assert_eq!(Codec::detect(b"\x1F\x8B\x08"), Codec::Gzip);
        assert_eq!(Codec::detect(b"\x28\xB5\x2F\xFD"), Codec::Zstd);
        assert_eq!(Codec::detect(b"BZh91AY"), Codec::Bzip2);
        assert_eq!(Codec::detect(b"BZhx"), Codec::Plain);
        assert_eq!(Codec::detect(b"abc"), Codec::Plain);
        assert_eq!(Codec::detect(b""), Codec::Plain);
    }

    async fn decode_all(bytes: Vec<u8>) -> io::Result<Vec<u8>> {
        let (_, mut r) = open(Box::pin(std::io::Cursor::new(bytes)), Decompression::Auto).await?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).await?;
        Ok(out)
    }

    /// Regression: an xz file cut short was reported as "out of memory".
    #[tokio::test]
    async fn truncated_files_say_truncated_whatever_the_codec_and_cut() {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("record {i} with some payload\n").into_bytes())
            .collect();
        for tool in ["xz", "gzip", "zstd", "bzip2"] {
            let mut child = std::process::Command::new(tool)
                .arg("-c")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("`{tool}` is needed by this test: {e}"));
            let mut stdin = child.stdin.take().expect("stdin");
            let input = text.clone();
            let writer = std::thread::spawn(move || {
                std::io::Write::write_all(&mut stdin, &input).expect("write");
            });
            let full = child.wait_with_output().expect("compress").stdout;
            writer.join().expect("writer");
            assert_eq!(decode_all(full.clone()).await.expect("whole file"), text);
            for cut in [1, 4, 12, 20, 40, 100, full.len() / 2, full.len() - 20] {
                let e = decode_all(full[..full.len() - cut].to_vec())
                    .await
                    .expect_err("a truncated file fails");
                let msg = e.to_string();
                assert!(
                    msg.starts_with(&format!("truncated or corrupt {tool} data"))
                        || msg.starts_with(&format!("corrupt {tool} data")),
                    "{tool} cut by {cut}: {msg}"
                );
                assert!(!msg.contains("out of memory"), "{tool}: {msg}");
            }
        }
    }
}
