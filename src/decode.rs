//! Codec detection from magic bytes and streaming decoders: a byte stream in, the
//! decompressed byte stream out, never holding a whole file in memory.

use std::io;
use std::pin::Pin;

use async_compression::tokio::bufread::{BzDecoder, GzipDecoder, XzDecoder, ZstdDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

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
    let rejoined: ByteStream = Box::pin(std::io::Cursor::new(head).chain(raw));
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
    Ok((codec, decoded))
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
}
