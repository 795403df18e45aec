//! The conversion pipeline: read, parse in parallel, write in order, in bounded memory.
//!
//! ```text
//! caller's thread          worker threads (one per core)       writer thread
//! read chunks of whole  ->  decode a chunk into a batch     ->  reorder by sequence number,
//! lines (no quotes)         (fast path, else arrow-csv)         encode (Parquet: a thread
//!   ... or, from the first quote on, decode sequentially ----->  per column), write
//! ```
//!
//! A chunk ends at a newline, which is a record boundary as long as no quote character
//! has been seen: the first chunk holding a `"` switches the rest of the input to one
//! sequential arrow-csv decoder on the caller's thread, so quoted fields with newlines
//! stay correct. A fixed set of buffers circulates between the stages: a buffer goes back
//! to the reader only once its rows are written, so at most that many chunks are in
//! flight, whatever the input's size.
//!
//! Errors carry line numbers relative to their chunk; the writer, which sees chunks in
//! order and counts rows, turns them into lines of the whole input. The first bad record
//! in input order is the one reported, as a sequential reader would.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_csv::reader::{Format, ReaderBuilder};
use arrow_schema::SchemaRef;

use crate::reader::{CsvSource, Sniffed, map_arrow_error, sniff};
use crate::writer::BatchSink;
use crate::{ConvertOptions, ConvertSummary, Error, Result};

/// Sizes of the pipeline; the defaults suit the machine it runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Bytes per chunk handed to a worker.
    pub(crate) chunk_bytes: usize,
    /// Parsing threads.
    pub(crate) workers: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Tuning {
            chunk_bytes: 2 << 20,
            workers: cores.clamp(1, 16),
        }
    }
}

/// A chunk of whole records to decode.
struct Job {
    seq: u64,
    data: Vec<u8>,
    /// Its first record is a header to skip (the header's line holds no quote).
    skip_header: bool,
}

/// A decoded piece of the input, in input order by `seq`.
struct Piece {
    seq: u64,
    outcome: Result<Vec<RecordBatch>>,
    /// Goes back to the reader once the rows are written.
    buffer: Vec<u8>,
    /// Rows of earlier pieces that the error's line number already counts (sequential
    /// decoding numbers lines from where it started, not from its current batch).
    counted: u64,
}

/// Converts with the default tuning.
pub(crate) fn convert<R: Read, W: Write + Send>(
    input: R,
    output: W,
    options: &ConvertOptions,
    metadata: &[(String, String)],
) -> Result<ConvertSummary> {
    convert_tuned(input, output, options, metadata, Tuning::default())
}

pub(crate) fn convert_tuned<R: Read, W: Write + Send>(
    mut input: R,
    output: W,
    options: &ConvertOptions,
    metadata: &[(String, String)],
    tuning: Tuning,
) -> Result<ConvertSummary> {
    let Sniffed {
        sample,
        header,
        schema,
        format,
    } = sniff(&mut input, options)?;
    let workers = tuning.workers.max(1);
    let chunk_bytes = tuning.chunk_bytes.max(1);
    let buffers = 2 * workers + 2;

    let (pool_tx, pool_rx) = channel::<Vec<u8>>();
    for _ in 0..buffers {
        let _ = pool_tx.send(Vec::new());
    }
    let (job_tx, job_rx) = sync_channel::<Job>(buffers);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (piece_tx, piece_rx) = channel::<Piece>();

    let (read_result, write_result) = std::thread::scope(|scope| {
        for _ in 0..workers {
            let job_rx = job_rx.clone();
            let piece_tx = piece_tx.clone();
            let schema = schema.clone();
            let format = format.clone();
            let delimiter = options.delimiter;
            scope.spawn(move || work(&job_rx, &piece_tx, &schema, &format, delimiter));
        }
        drop(job_rx);
        let writer_schema = schema.clone();
        let writer = scope.spawn(move || {
            write_in_order(
                piece_rx,
                pool_tx,
                output,
                writer_schema,
                options,
                metadata,
                u64::from(header),
            )
        });
        let reader = Reader {
            input: &mut input,
            pool: pool_rx,
            jobs: job_tx,
            pieces: piece_tx,
            schema: schema.clone(),
            format: format.clone(),
            options,
            chunk_bytes,
            seq: 0,
        };
        let read_result = reader.run(sample, header);
        let write_result = writer
            .join()
            .unwrap_or_else(|_| Err(Error::Write("the writer thread panicked".into())));
        (read_result, write_result)
    });
    // A bad record found before the read failed is what the user needs to see first.
    let rows = match (write_result, read_result) {
        (Err(error), _) | (Ok(_), Err(error)) => return Err(error),
        (Ok(rows), Ok(())) => rows,
    };
    Ok(ConvertSummary {
        rows,
        rejected: 0,
        header,
        columns: schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect(),
    })
}

/// The caller's side: cuts the input into chunks of whole lines.
struct Reader<'a, R: Read> {
    input: &'a mut R,
    pool: Receiver<Vec<u8>>,
    jobs: SyncSender<Job>,
    pieces: Sender<Piece>,
    schema: SchemaRef,
    format: Format,
    options: &'a ConvertOptions,
    chunk_bytes: usize,
    seq: u64,
}

impl<R: Read> Reader<'_, R> {
    fn run(mut self, sample: Vec<u8>, header: bool) -> Result<()> {
        let mut carry = sample;
        let mut skip_header = header;
        let mut eof = false;
        loop {
            // Waits until a buffer is free: this bounds the chunks in flight. No buffer
            // means the writer stopped (on an error it reports itself).
            let Ok(mut buffer) = self.pool.recv() else {
                return Ok(());
            };
            buffer.clear();
            buffer.append(&mut carry);
            let mut searched = 0;
            let end = loop {
                if !eof && buffer.len() < self.chunk_bytes {
                    let want = self.chunk_bytes - buffer.len();
                    eof = self.fill(&mut buffer, want)?;
                }
                if eof {
                    break buffer.len();
                }
                match memchr::memrchr(b'\n', &buffer[searched..]) {
                    Some(i) => break searched + i + 1,
                    // A line longer than a chunk: read on until it ends.
                    None => {
                        searched = buffer.len();
                        let more = self.chunk_bytes;
                        eof = self.fill(&mut buffer, more)?;
                    }
                }
            };
            if buffer.is_empty() {
                return Ok(());
            }
            let header_has_quote = skip_header
                && memchr::memchr(b'\n', &buffer)
                    .map_or(&buffer[..], |i| &buffer[..i])
                    .contains(&b'"');
            if header_has_quote || memchr::memchr(b'"', &buffer[..end]).is_some() {
                return self.sequential(buffer, skip_header);
            }
            carry.extend_from_slice(&buffer[end..]);
            buffer.truncate(end);
            let job = Job {
                seq: self.seq,
                data: buffer,
                skip_header,
            };
            skip_header = false;
            self.seq += 1;
            if self.jobs.send(job).is_err() {
                return Ok(());
            }
            if eof && carry.is_empty() {
                return Ok(());
            }
        }
    }

    /// Appends up to `want` bytes; `true` at the end of the input.
    fn fill(&mut self, buffer: &mut Vec<u8>, want: usize) -> Result<bool> {
        let got = (&mut *self.input)
            .take(want as u64)
            .read_to_end(buffer)
            .map_err(Error::Read)?;
        Ok(got < want)
    }

    /// The rest of the input, from `prefix` on, through one arrow-csv decoder (quoted
    /// fields may hold newlines, so lines are no longer records).
    fn sequential(mut self, prefix: Vec<u8>, skip_header: bool) -> Result<()> {
        let mut source = CsvSource::from_parts(
            prefix,
            &mut *self.input,
            self.schema.clone(),
            self.format.clone().with_header(skip_header),
            skip_header,
            self.options.batch_size,
        );
        // The decoder counts the header among its lines; the writer adds it too.
        let mut counted = u64::from(skip_header);
        loop {
            let Ok(token) = self.pool.recv() else {
                return Ok(());
            };
            let outcome = source.next_batch();
            let (outcome, done) = match outcome {
                Ok(Some(batch)) => {
                    let rows = batch.num_rows() as u64;
                    let piece = Piece {
                        seq: self.seq,
                        outcome: Ok(vec![batch]),
                        buffer: token,
                        counted,
                    };
                    counted += rows;
                    (piece, false)
                }
                Ok(None) => return Ok(()),
                Err(Error::Read(error)) => return Err(Error::Read(error)),
                Err(error) => (
                    Piece {
                        seq: self.seq,
                        outcome: Err(error),
                        buffer: token,
                        counted,
                    },
                    true,
                ),
            };
            self.seq += 1;
            if self.pieces.send(outcome).is_err() || done {
                return Ok(());
            }
        }
    }
}

/// A worker: decodes chunks until the reader is done.
fn work(
    jobs: &Mutex<Receiver<Job>>,
    pieces: &Sender<Piece>,
    schema: &SchemaRef,
    format: &Format,
    delimiter: u8,
) {
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let records = if job.skip_header {
            memchr::memchr(b'\n', &job.data)
                .map_or(&job.data[job.data.len()..], |i| &job.data[i + 1..])
        } else {
            &job.data[..]
        };
        let outcome = match crate::fastparse::parse_chunk(records, schema, delimiter) {
            Some(batch) => Ok(vec![batch]),
            None => decode_chunk(records, schema, format),
        };
        let piece = Piece {
            seq: job.seq,
            outcome,
            buffer: job.data,
            counted: 0,
        };
        if pieces.send(piece).is_err() {
            return;
        }
    }
}

/// arrow-csv over one chunk of whole records: exact semantics and error messages, with
/// line numbers counted from the chunk's first record.
fn decode_chunk(records: &[u8], schema: &SchemaRef, format: &Format) -> Result<Vec<RecordBatch>> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_format(format.clone().with_header(false))
        .with_batch_size(records.len().max(1))
        .build_decoder();
    let mut rest = records;
    let mut batches = Vec::new();
    let fix = map_arrow_error;
    while !rest.is_empty() {
        let used = decoder.decode(rest).map_err(fix)?;
        rest = &rest[used..];
        if let Some(batch) = decoder.flush().map_err(fix)? {
            batches.push(batch);
        }
        if used == 0 {
            break;
        }
    }
    // Completes a last record without a final newline.
    decoder.decode(&[]).map_err(fix)?;
    if let Some(batch) = decoder.flush().map_err(fix)? {
        batches.push(batch);
    }
    Ok(batches)
}

/// Moves a bad record's line number by `add - subtract`.
fn shift_line(error: Error, subtract: u64, add: u64) -> Error {
    match error {
        Error::BadRecord { line, reason } => Error::BadRecord {
            line: (line + add).saturating_sub(subtract),
            reason,
        },
        other => other,
    }
}

/// The writer thread: pieces in input order into the sink. Returns the rows written.
fn write_in_order<W: Write + Send>(
    pieces: Receiver<Piece>,
    pool: Sender<Vec<u8>>,
    output: W,
    schema: SchemaRef,
    options: &ConvertOptions,
    metadata: &[(String, String)],
    header_lines: u64,
) -> Result<u64> {
    let mut output = Some(output);
    let mut sink: Option<BatchSink<W>> = None;
    let mut waiting: BTreeMap<u64, Piece> = BTreeMap::new();
    let mut next = 0u64;
    let mut rows = 0u64;
    for piece in pieces {
        waiting.insert(piece.seq, piece);
        while let Some(piece) = waiting.remove(&next) {
            let batches = piece
                .outcome
                .map_err(|error| shift_line(error, piece.counted, rows + header_lines))?;
            for batch in batches.iter().filter(|b| b.num_rows() > 0) {
                let sink = match (&mut sink, output.take()) {
                    (Some(sink), _) => sink,
                    (None, Some(output)) => sink.insert(BatchSink::try_new(
                        output,
                        schema.clone(),
                        options,
                        metadata,
                        Some(batch),
                    )?),
                    (None, None) => return Err(Error::Write("no output".into())),
                };
                sink.write(batch)?;
                rows += batch.num_rows() as u64;
            }
            let _ = pool.send(piece.buffer);
            next += 1;
        }
    }
    if !waiting.is_empty() {
        // The reader stopped early (a read error, which it reports).
        return Ok(rows);
    }
    match sink {
        Some(sink) if rows > 0 => {
            sink.finish()?;
            Ok(rows)
        }
        _ => Err(Error::NoRows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HeaderMode, OutputFormat};

    /// Small chunks and several workers: every input spans many chunks.
    fn tuned(input: &str, options: &ConvertOptions, chunk_bytes: usize) -> Result<String> {
        let options = ConvertOptions {
            format: OutputFormat::Csv,
            ..options.clone()
        };
        let mut out = Vec::new();
        let tuning = Tuning {
            chunk_bytes,
            workers: 3,
        };
        convert_tuned(input.as_bytes(), &mut out, &options, &[], tuning)?;
        Ok(String::from_utf8(out).expect("utf-8 output"))
    }

    /// The single-threaded arrow-csv reading, as the reference.
    fn sequential(input: &str, options: &ConvertOptions) -> Result<String> {
        let mut source = CsvSource::open(input.as_bytes(), options)?;
        let mut writer = arrow_csv::WriterBuilder::new()
            .with_header(true)
            .build(Vec::new());
        let mut rows = 0;
        while let Some(batch) = source.next_batch()? {
            rows += batch.num_rows();
            writer.write(&batch).expect("csv writer");
        }
        if rows == 0 {
            return Err(Error::NoRows);
        }
        Ok(String::from_utf8(writer.into_inner()).expect("utf-8 output"))
    }

    fn same_as_sequential(input: &str, options: &ConvertOptions) -> Result<String> {
        let expected = sequential(input, options).map_err(|e| e.to_string());
        for chunk_bytes in [1, 7, 64, 1000, 1 << 20] {
            let got = tuned(input, options, chunk_bytes).map_err(|e| e.to_string());
            assert_eq!(got, expected, "chunk_bytes {chunk_bytes}");
        }
        tuned(input, options, 64)
    }

    fn rows(n: usize, from: usize) -> String {
        (from..from + n)
            .map(|i| format!("{i},name{},{}\n", i % 7, i % 101))
            .collect()
    }

    #[test]
    fn many_chunks_give_the_sequential_result() {
        let input = rows(500, 1);
        let out = same_as_sequential(&input, &ConvertOptions::default()).unwrap();
        assert!(out.starts_with("no,name,score\n1,name1,1\n"));
        assert_eq!(out.lines().count(), 501);
        let with_header = format!("id,label,points\n{input}");
        let out = same_as_sequential(&with_header, &ConvertOptions::default()).unwrap();
        assert!(out.starts_with("id,label,points\n1,name1,1\n"));
    }

    #[test]
    fn crlf_and_missing_final_newline() {
        let input = rows(300, 1).replace('\n', "\r\n");
        let input = input.trim_end();
        let out = same_as_sequential(input, &ConvertOptions::default()).unwrap();
        assert_eq!(out.lines().count(), 301);
        assert!(out.ends_with("300,name6,98\n"));
    }

    #[test]
    fn quoted_newlines_in_a_late_chunk_switch_to_sequential() {
        let input = format!(
            "{}401,\"two\nlines\",5\n402,\"with \"\"quotes\"\", and comma\",6\n{}",
            rows(400, 1),
            rows(100, 403)
        );
        let out = same_as_sequential(&input, &ConvertOptions::default()).unwrap();
        assert!(out.contains("401,\"two\nlines\",5\n"));
        assert_eq!(out.matches('\n').count(), 504);
    }

    #[test]
    fn a_quoted_header_is_decoded_sequentially() {
        let input = format!("\"id\",\"label\",\"points\"\n{}", rows(200, 1));
        let out = same_as_sequential(&input, &ConvertOptions::default()).unwrap();
        assert!(out.starts_with("id,label,points\n"));
    }

    /// Types are inferred from the first 200 bytes: later bad values are errors.
    fn small_sample() -> ConvertOptions {
        ConvertOptions {
            sample_bytes: 200,
            ..ConvertOptions::default()
        }
    }

    #[test]
    fn a_bad_value_in_a_late_chunk_names_its_line() {
        let input = format!("{}9x,bad,1\n{}", rows(1000, 1), rows(10, 1002));
        let err = tuned(&input, &small_sample(), 256).unwrap_err();
        assert_eq!(err.line(), Some(1001));
        same_as_sequential(&input, &small_sample()).unwrap_err();

        // With a header the line counts it, as in the file.
        let input = format!("no,name,score\n{input}");
        let err = tuned(&input, &small_sample(), 256).unwrap_err();
        assert_eq!(err.line(), Some(1002));
        assert!(err.to_string().starts_with("line 1002: "), "{err}");
        same_as_sequential(&input, &small_sample()).unwrap_err();
    }

    #[test]
    fn a_short_record_late_and_after_quotes_names_its_line() {
        let input = format!("{}1000,short\n", rows(999, 1));
        let err = tuned(&input, &small_sample(), 300).unwrap_err();
        assert_eq!(err.line(), Some(1000));
        same_as_sequential(&input, &small_sample()).unwrap_err();

        // Past the switch to sequential decoding, across its batches.
        let options = ConvertOptions {
            batch_size: 16,
            ..small_sample()
        };
        let input = format!("{}101,\"q\",1\n{}x,y,z\n", rows(100, 1), rows(100, 102));
        let options = ConvertOptions {
            header: HeaderMode::Absent,
            ..options
        };
        let err = tuned(&input, &options, 128).unwrap_err();
        assert_eq!(err.line(), Some(202), "{err}");
        same_as_sequential(&input, &options).unwrap_err();
    }

    #[test]
    fn header_only_and_empty_chunks() {
        let err = tuned("no,name,score\n", &ConvertOptions::default(), 4).unwrap_err();
        assert!(matches!(err, Error::NoRows), "{err}");
    }

    #[test]
    fn other_types_take_the_arrow_path_in_parallel() {
        let input: String = (0..300)
            .map(|i| format!("{i},2024-01-{:02},{}.5,{}\n", i % 28 + 1, i, i % 2 == 0))
            .collect();
        let out = same_as_sequential(&input, &ConvertOptions::default()).unwrap();
        assert_eq!(out.lines().count(), 301);
    }
}
