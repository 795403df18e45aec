//! Compressed inputs: gzip, zstd and bzip2 recognised by their magic bytes and
//! decompressed as a stream, on a thread of their own while the input is parsed;
//! anything else passes through untouched.

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

/// Decompressed bytes travel between the threads in buffers of this size...
const PIPE_BUFFER: usize = 512 * 1024;
/// ...at most this many at once: bounded memory, however fast one side is.
const PIPE_DEPTH: usize = 4;

/// What the decompressing thread hands over.
enum Piece {
    /// The first `.1` bytes of the buffer.
    Data(Vec<u8>, usize),
    /// The input ended.
    End,
    /// Reading or decompressing failed (the error as the reader gave it).
    Failed(std::io::Error),
}

/// Runs `consume` on the decompressed bytes of `input` while a thread of its own
/// decompresses them, so that decompression overlaps with parsing and writing.
///
/// The raw reads happen on that thread too. When `consume` returns before the end (a bad
/// record), the thread stops at its next hand-over.
pub(crate) fn overlapped<R: Read + Send, T>(
    input: Decoded<R>,
    consume: impl FnOnce(&mut Piped) -> Result<T>,
) -> Result<T> {
    std::thread::scope(|scope| {
        let (pieces, received) = std::sync::mpsc::sync_channel(PIPE_DEPTH);
        let (recycle, recycled) = std::sync::mpsc::channel();
        let producer = std::thread::Builder::new()
            .name("etl-decompress".into())
            .spawn_scoped(scope, move || pump(input, &pieces, &recycled))
            .map_err(Error::Read)?;
        let mut piped = Piped {
            pieces: received,
            recycle,
            current: Vec::new(),
            len: 0,
            at: 0,
            ended: false,
        };
        let outcome = consume(&mut piped);
        drop(piped);
        // A panic there already showed as a read error.
        let _ = producer.join();
        outcome
    })
}

fn pump<R: Read>(
    mut input: Decoded<R>,
    pieces: &std::sync::mpsc::SyncSender<Piece>,
    recycled: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let mut buffer = recycled.try_recv().unwrap_or_else(|_| vec![0; PIPE_BUFFER]);
        let mut len = 0;
        let mut end = false;
        while len < buffer.len() {
            match input.read(&mut buffer[len..]) {
                Ok(0) => {
                    end = true;
                    break;
                }
                Ok(n) => len += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    // Bytes read before the failure go first: the parser may find a bad
                    // record there, which the user needs to see before a read error.
                    if len > 0 && pieces.send(Piece::Data(buffer, len)).is_err() {
                        return;
                    }
                    let _ = pieces.send(Piece::Failed(error));
                    return;
                }
            }
        }
        if len > 0 && pieces.send(Piece::Data(buffer, len)).is_err() {
            return;
        }
        if end {
            let _ = pieces.send(Piece::End);
            return;
        }
    }
}

/// The consuming end of [`overlapped`]: reads what the decompressing thread hands over.
pub(crate) struct Piped {
    pieces: std::sync::mpsc::Receiver<Piece>,
    recycle: std::sync::mpsc::Sender<Vec<u8>>,
    current: Vec<u8>,
    len: usize,
    at: usize,
    ended: bool,
}

impl Read for Piped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.at < self.len {
                let n = (self.len - self.at).min(buf.len());
                buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if self.ended || buf.is_empty() {
                return Ok(0);
            }
            if !self.current.is_empty() {
                let _ = self.recycle.send(std::mem::take(&mut self.current));
            }
            match self.pieces.recv() {
                Ok(Piece::Data(buffer, len)) => {
                    self.current = buffer;
                    self.len = len;
                    self.at = 0;
                }
                Ok(Piece::End) => {
                    self.ended = true;
                    return Ok(0);
                }
                Ok(Piece::Failed(error)) => return Err(error),
                Err(_) => {
                    return Err(std::io::Error::other(
                        "the decompressing thread stopped before the end of the input",
                    ));
                }
            }
        }
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

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    fn lines(count: usize) -> Vec<u8> {
        (0..count)
            .flat_map(|i| format!("{i},name {i},{}\n", i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn overlapped_decompression_hands_over_every_byte_in_order() {
        let text = lines(400_000);
        assert!(text.len() > 4 * PIPE_DEPTH * PIPE_BUFFER, "{}", text.len());
        for compressed in [gzip(&text), zstd::encode_all(&text[..], 3).unwrap()] {
            let (decoded, _) = open(&compressed[..]).unwrap();
            let out = overlapped(decoded, |piped| {
                let mut out = Vec::new();
                // Small reads cross every buffer boundary.
                let mut buf = [0u8; 7_777];
                loop {
                    let n = piped.read(&mut buf).map_err(Error::Read)?;
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                }
                Ok(out)
            })
            .unwrap();
            assert!(out == text, "{} of {} bytes", out.len(), text.len());
        }
    }

    #[test]
    fn overlapped_corruption_comes_after_the_bytes_before_it_and_stays_bad_input() {
        let text = lines(200_000);
        let mut compressed = gzip(&text);
        let middle = compressed.len() / 2;
        compressed[middle..middle + 64].fill(0xAA);
        let (decoded, _) = open(&compressed[..]).unwrap();
        let (out, error) = overlapped(decoded, |piped| {
            let mut out = Vec::new();
            let error = piped.read_to_end(&mut out).unwrap_err();
            Ok((out, error))
        })
        .unwrap();
        // What decompressed before the damage arrived intact.
        let before = text.len() / 4;
        assert!(out.len() > before && out[..before] == text[..before]);
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        let error = Error::Read(error);
        assert_eq!(
            etl_error::Classify::class(&error),
            etl_error::ErrorClass::BadInput
        );
    }

    /// A network body cut after `limit` bytes.
    struct Cut<'a> {
        data: &'a [u8],
        limit: usize,
    }

    impl Read for Cut<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.limit == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset",
                ));
            }
            let n = buf.len().min(self.limit).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.limit -= n;
            Ok(n)
        }
    }

    #[test]
    fn overlapped_a_cut_input_stays_a_retryable_read_error() {
        let compressed = gzip(&lines(200_000));
        let cut = Cut {
            data: &compressed,
            limit: compressed.len() / 3,
        };
        let (decoded, codec) = open(cut).unwrap();
        assert_eq!(codec, Codec::Gzip);
        let error = overlapped(decoded, |piped| {
            piped.read_to_end(&mut Vec::new()).map_err(Error::Read)
        })
        .unwrap_err();
        match &error {
            Error::Read(io) => assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            etl_error::Classify::class(&error),
            etl_error::ErrorClass::Retryable
        );
    }

    #[test]
    fn overlapped_stops_the_thread_when_the_consumer_stops_early() {
        let compressed = gzip(&lines(400_000));
        let (decoded, _) = open(&compressed[..]).unwrap();
        let first = overlapped(decoded, |piped| {
            let mut line = [0u8; 8];
            piped.read_exact(&mut line).map_err(Error::Read)?;
            Ok(line)
        })
        .unwrap();
        assert_eq!(&first, b"0,name 0");
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
