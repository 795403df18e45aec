//! Compressed inputs: gzip, zstd and bzip2 recognised by their magic bytes and
//! decompressed as a stream; anything else passes through untouched.

use std::io::{Cursor, Read};

use crate::{Error, Result};

/// The compression of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Plain bytes.
    None,
    /// gzip (`1f 8b`), multi-member.
    Gzip,
    /// Zstandard (`28 b5 2f fd`), multi-frame.
    Zstd,
    /// bzip2 (`BZh`), multi-stream.
    Bzip2,
}

impl Codec {
    /// The codec whose magic bytes start `head`.
    pub fn detect(head: &[u8]) -> Codec {
        if head.starts_with(&[0x1f, 0x8b]) {
            Codec::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Codec::Zstd
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Codec::Bzip2
        } else {
            Codec::None
        }
    }
}

type Whole<R> = std::io::Chain<Cursor<Vec<u8>>, R>;

/// An input, decompressed as it is read.
pub enum Decoded<R: Read> {
    /// Plain bytes.
    Plain(Whole<R>),
    /// gzip.
    Gzip(Box<flate2::read::MultiGzDecoder<Whole<R>>>),
    /// Zstandard.
    Zstd(Box<zstd::stream::read::Decoder<'static, std::io::BufReader<Whole<R>>>>),
    /// bzip2.
    Bzip2(Box<bzip2::read::MultiBzDecoder<Whole<R>>>),
}

/// `input`, decompressed if its first bytes say it is compressed.
pub fn open<R: Read>(mut input: R) -> Result<(Decoded<R>, Codec)> {
    let mut head = Vec::with_capacity(4);
    (&mut input)
        .take(4)
        .read_to_end(&mut head)
        .map_err(Error::Read)?;
    let codec = Codec::detect(&head);
    let whole = Cursor::new(head).chain(input);
    let reader = match codec {
        Codec::None => Decoded::Plain(whole),
        Codec::Gzip => Decoded::Gzip(Box::new(flate2::read::MultiGzDecoder::new(whole))),
        Codec::Zstd => Decoded::Zstd(Box::new(
            zstd::stream::read::Decoder::new(whole).map_err(Error::Read)?,
        )),
        Codec::Bzip2 => Decoded::Bzip2(Box::new(bzip2::read::MultiBzDecoder::new(whole))),
    };
    Ok((reader, codec))
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let outcome = match self {
            Decoded::Plain(r) => return r.read(buf),
            Decoded::Gzip(r) => r.read(buf),
            Decoded::Zstd(r) => r.read(buf),
            Decoded::Bzip2(r) => r.read(buf),
        };
        // Corrupt compressed data is bad input, not a retryable read failure.
        outcome.map_err(|error| match error.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    CorruptInput(error.to_string()),
                )
            }
            std::io::ErrorKind::UnexpectedEof => std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                CorruptInput("the compressed stream is truncated".into()),
            ),
            _ => error,
        })
    }
}

/// Marks a decompression failure inside an `io::Error` so that it classifies as bad input.
#[derive(Debug, thiserror::Error)]
#[error("the compressed input is corrupt: {0}")]
pub(crate) struct CorruptInput(pub(crate) String);

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(codec: Codec, compressed: Vec<u8>) {
        let (mut reader, found) = open(&compressed[..]).unwrap();
        assert_eq!(found, codec);
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        assert_eq!(out, "1,aaa,100\n2,bbb,80\n");
    }

    #[test]
    fn every_codec_by_its_magic() {
        let text = b"1,aaa,100\n2,bbb,80\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).unwrap();
        roundtrip(Codec::Gzip, gz.finish().unwrap());
        roundtrip(Codec::Zstd, zstd::encode_all(&text[..], 3).unwrap());
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(text).unwrap();
        roundtrip(Codec::Bzip2, bz.finish().unwrap());
        roundtrip(Codec::None, text.to_vec());
        let (mut reader, _) = open(&[0x1f, 0x8b, 0, 0][..]).unwrap();
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
}
