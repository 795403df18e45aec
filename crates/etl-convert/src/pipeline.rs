//! The conversion pipeline: read, parse in parallel, write in order, in bounded memory.
//!
//! ```text
//! caller's thread            worker threads (one per CPU      writer thread
//! (reads, decompresses)      of the cgroup quota)
//! cut chunks at the last  ->  decode a chunk into batches  ->  reorder by sequence number,
//! record boundary             (fast path; quoted records       write (Parquet: a row
//! outside quotes              framed as the csv crate does)    group's columns encoded
//!                                                              in parallel)
//! ```
//!
//! A chunk ends at the last newline outside quoted fields ([`crate::framing`]), so chunks
//! with quoted commas and newlines decode in parallel too; a chunk with an unusual record
//! (bad, misfit, unclosed quote) is decoded again by the `csv` crate for its exact error.
//! Decoding takes one of the process-wide slots of [`crate::pool`], so parallel
//! conversions share the CPUs. A fixed set of buffers circulates between the stages: a
//! buffer goes back to the reader only once its rows are written, so at most that many
//! chunks are in flight, whatever the input's size. Only an input whose quotes never
//! balance over 64 MiB falls back to one sequential decoder for the rest.
//!
//! Errors carry lines of the whole input; the first bad record in input order is the one
//! reported, as a sequential reader would.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;

use crate::fastparse::{Layout, Stop};
use crate::framing;
use crate::reader::{Sniffed, sniff};
use crate::schema::{ColumnSchema, Widening};
use crate::sequential::Sequential;
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
        Tuning {
            chunk_bytes: 2 << 20,
            workers: crate::pool::cpus().clamp(1, 16),
        }
    }
}

/// Bytes read without a record boundary before the rest of the input is decoded
/// sequentially.
const MAX_UNCUT: usize = 64 << 20;

/// A chunk of whole records to decode.
struct Job {
    seq: u64,
    data: Vec<u8>,
    /// Physical line of its first byte.
    first_line: u64,
    /// Its first record is a header to skip.
    skip_header: bool,
    /// It holds a quote: the `csv` crate frames its records.
    quoted: bool,
}

/// A decoded piece of the input, in input order by `seq`.
struct Piece {
    seq: u64,
    outcome: std::result::Result<Vec<RecordBatch>, Stop>,
    /// Goes back to the reader once the rows are written.
    buffer: Vec<u8>,
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
    let sniffed = sniff(&mut input, options)?;
    let workers = tuning.workers.max(1);
    let chunk_bytes = tuning.chunk_bytes.max(1);
    let buffers = 2 * workers + 2;
    let Sniffed {
        sample,
        first_line,
        header,
        schema,
        columns,
        delimiter,
        values,
    } = sniffed;

    let (pool_tx, pool_rx) = channel::<Vec<u8>>();
    for _ in 0..buffers {
        let _ = pool_tx.send(Vec::new());
    }
    let (job_tx, job_rx) = sync_channel::<Job>(buffers);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (piece_tx, piece_rx) = channel::<Piece>();
    let layout = Layout {
        schema: &schema,
        columns: &columns,
        values: &values,
        delimiter,
    };
    let layout = &layout;

    let (read_result, write_result) = std::thread::scope(|scope| {
        for _ in 0..workers {
            let job_rx = job_rx.clone();
            let piece_tx = piece_tx.clone();
            let limits = (options.batch_size, options.max_record_bytes.max(1));
            std::thread::Builder::new()
                .name("etl-parse".into())
                .spawn_scoped(scope, move || work(&job_rx, &piece_tx, layout, limits))
                .expect("the parsing threads can be started");
        }
        drop(job_rx);
        let columns = &columns;
        let writer = scope.spawn(move || {
            let mut out = Output::new(output, columns, options, metadata);
            for Piece {
                outcome, buffer, ..
            } in in_order(piece_rx)
            {
                let taken = out.take(outcome);
                let _ = pool_tx.send(buffer);
                taken?;
            }
            out.finish()
        });
        let reader = Reader {
            input: &mut input,
            pool: pool_rx,
            jobs: job_tx,
            pieces: piece_tx,
            layout,
            batch_size: options.batch_size,
            chunk_bytes,
            max_record_bytes: options.max_record_bytes.max(1),
            seq: 0,
        };
        let read_result = reader.run(sample, header, first_line);
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
    Ok(summary(rows, 0, header, &columns))
}

pub(crate) fn summary(
    rows: u64,
    rejected: u64,
    header: bool,
    columns: &ColumnSchema,
) -> ConvertSummary {
    ConvertSummary {
        rows,
        rejected,
        header,
        columns: columns
            .columns
            .iter()
            .map(|(name, kind)| (name.clone(), kind.name().to_owned()))
            .collect(),
        schema: ColumnSchema {
            strict: false,
            ..columns.clone()
        },
    }
}

/// Pieces in input order.
fn in_order(pieces: Receiver<Piece>) -> impl Iterator<Item = Piece> {
    let mut waiting: BTreeMap<u64, Piece> = BTreeMap::new();
    let mut next = 0u64;
    let mut pieces = pieces.into_iter();
    std::iter::from_fn(move || {
        loop {
            if let Some(piece) = waiting.remove(&next) {
                next += 1;
                return Some(piece);
            }
            let piece = pieces.next()?;
            waiting.insert(piece.seq, piece);
        }
    })
}

/// The output side of every path: batches into the sink in order, the first bad record
/// as the error, and after a misfit only the widening the rest of the input needs.
pub(crate) struct Output<'a, W: Write + Send> {
    output: Option<W>,
    sink: Option<BatchSink<W>>,
    columns: &'a ColumnSchema,
    options: &'a ConvertOptions,
    metadata: Vec<(String, String)>,
    rows: u64,
    widening: Option<(u64, usize, Vec<crate::Kind>)>,
}

impl<'a, W: Write + Send> Output<'a, W> {
    pub(crate) fn new(
        output: W,
        columns: &'a ColumnSchema,
        options: &'a ConvertOptions,
        metadata: &[(String, String)],
    ) -> Self {
        let mut metadata = metadata.to_vec();
        metadata.push(("etl.schema".to_owned(), columns.compact()));
        Output {
            output: Some(output),
            sink: None,
            columns,
            options,
            metadata,
            rows: 0,
            widening: None,
        }
    }

    /// Takes one piece's outcome; an error stops the conversion.
    pub(crate) fn take(
        &mut self,
        outcome: std::result::Result<Vec<RecordBatch>, Stop>,
    ) -> Result<()> {
        match (outcome, &mut self.widening) {
            (Ok(batches), None) => {
                for batch in batches.iter().filter(|b| b.num_rows() > 0) {
                    self.write(batch)?;
                }
                Ok(())
            }
            // Once a column must widen, the output is abandoned: only more widening counts,
            // and the conversion run again meets anything else.
            (Ok(_) | Err(Stop::Bad(_)), Some(_)) => Ok(()),
            (Err(Stop::Bad(error)), None) => Err(error),
            (
                Err(Stop::Misfit {
                    line,
                    column,
                    kinds,
                }),
                None,
            ) => {
                self.widening = Some((line, column, kinds));
                Ok(())
            }
            (Err(Stop::Misfit { kinds, .. }), Some((_, _, widened))) => {
                for (a, b) in widened.iter_mut().zip(kinds) {
                    *a = a.merge(b);
                }
                Ok(())
            }
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let sink = match (&mut self.sink, self.output.take()) {
            (Some(sink), _) => sink,
            (None, Some(output)) => self.sink.insert(BatchSink::try_new(
                output,
                self.columns.arrow(),
                self.options,
                &self.metadata,
                Some(batch),
            )?),
            (None, None) => return Err(Error::Write("no output".into())),
        };
        sink.write(batch)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Completes the output (an empty table when there were no rows); the rows written.
    pub(crate) fn finish(mut self) -> Result<u64> {
        if let Some((line, column, kinds)) = self.widening.take() {
            let (name, from) = self.columns.columns[column].clone();
            let schema = ColumnSchema {
                columns: self
                    .columns
                    .columns
                    .iter()
                    .zip(kinds)
                    .map(|((name, _), kind)| {
                        let kind = if kind == crate::Kind::Null {
                            crate::Kind::Text
                        } else {
                            kind
                        };
                        (name.clone(), kind)
                    })
                    .collect(),
                strict: false,
            };
            let to = schema.columns[column].1;
            return Err(Error::Widened(Box::new(Widening {
                line,
                column: name,
                from,
                to,
                schema,
            })));
        }
        let sink = match (self.sink, self.output.take()) {
            (Some(sink), _) => sink,
            (None, Some(output)) => {
                let empty = RecordBatch::new_empty(self.columns.arrow());
                let mut sink = BatchSink::try_new(
                    output,
                    self.columns.arrow(),
                    self.options,
                    &self.metadata,
                    None,
                )?;
                sink.write(&empty)?;
                sink
            }
            (None, None) => return Err(Error::Write("no output".into())),
        };
        sink.finish()?;
        Ok(self.rows)
    }
}

/// The caller's side: cuts the input into chunks of whole lines.
struct Reader<'a, R: Read> {
    input: &'a mut R,
    pool: Receiver<Vec<u8>>,
    jobs: SyncSender<Job>,
    pieces: Sender<Piece>,
    layout: &'a Layout<'a>,
    batch_size: usize,
    chunk_bytes: usize,
    max_record_bytes: usize,
    seq: u64,
}

impl<R: Read> Reader<'_, R> {
    fn run(mut self, sample: Vec<u8>, header: bool, first_line: u64) -> Result<()> {
        let mut carry = sample;
        let mut skip_header = header;
        let mut line = first_line;
        let mut eof = false;
        loop {
            // Waits until a buffer is free: this bounds the chunks in flight. No buffer
            // means the writer stopped (on an error it reports itself).
            let Ok(mut buffer) = self.pool.recv() else {
                return Ok(());
            };
            buffer.clear();
            buffer.append(&mut carry);
            let end = loop {
                if !eof && buffer.len() < self.chunk_bytes {
                    let want = self.chunk_bytes - buffer.len();
                    eof = self.fill(&mut buffer, want)?;
                }
                if eof {
                    break buffer.len();
                }
                match framing::last_record_end(&buffer, self.layout.delimiter).end {
                    Some(end) => break end,
                    // A record longer than the limit is a bad record: never held whole.
                    None if buffer.len() > self.max_record_bytes => {
                        return Err(crate::options::too_long(line, self.max_record_bytes));
                    }
                    // An unbalanced quote would read to the end of the input: past a bound
                    // the rest goes through one sequential decoder, in bounded memory.
                    None if buffer.len() >= MAX_UNCUT => {
                        return self.sequential(buffer, skip_header, line);
                    }
                    // A record longer than a chunk: read on until it ends.
                    None => {
                        let more = self.chunk_bytes;
                        eof = self.fill(&mut buffer, more)?;
                    }
                }
            };
            if buffer.is_empty() {
                return Ok(());
            }
            let quoted = memchr::memchr(b'"', &buffer[..end]).is_some();
            carry.extend_from_slice(&buffer[end..]);
            buffer.truncate(end);
            // Lines longer than a chunk were checked above; a limit below the chunk size
            // needs a look at each line (at each record in quoted chunks: see `decode`).
            if !quoted
                && self.max_record_bytes < end
                && let Some(index) = over_limit(&buffer, self.max_record_bytes)
            {
                return Err(crate::options::too_long(
                    line + index,
                    self.max_record_bytes,
                ));
            }
            let lines = memchr::memchr_iter(b'\n', &buffer).count() as u64;
            let job = Job {
                seq: self.seq,
                data: buffer,
                first_line: line,
                skip_header,
                quoted,
            };
            line += lines;
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

    /// The rest of the input, from `prefix` on, through one sequential decoder (quoted
    /// fields may hold newlines, so lines are no longer records).
    fn sequential(mut self, prefix: Vec<u8>, skip_header: bool, first_line: u64) -> Result<()> {
        let input = Cursor::new(prefix).chain(&mut *self.input);
        let mut source = Sequential::new(
            input,
            self.layout.delimiter,
            first_line,
            skip_header,
            self.batch_size,
            self.max_record_bytes,
        );
        loop {
            let Ok(token) = self.pool.recv() else {
                return Ok(());
            };
            let (outcome, done) = match source.next_batch(self.layout, None) {
                Ok(Some(batch)) => (Ok(vec![batch]), false),
                Ok(None) => return Ok(()),
                Err(Stop::Bad(Error::Read(error))) => return Err(Error::Read(error)),
                Err(stop) => (Err(stop), true),
            };
            let piece = Piece {
                seq: self.seq,
                outcome,
                buffer: token,
            };
            self.seq += 1;
            if self.pieces.send(piece).is_err() || done {
                return Ok(());
            }
        }
    }
}

/// The index of the first line of `chunk` longer than `limit` bytes (line ending excluded).
fn over_limit(chunk: &[u8], limit: usize) -> Option<u64> {
    let mut start = 0;
    for (index, end) in memchr::memchr_iter(b'\n', chunk)
        .chain(std::iter::once(chunk.len()))
        .enumerate()
    {
        if end - start > limit {
            return Some(index as u64);
        }
        start = end + 1;
    }
    None
}

/// A worker: decodes chunks until the reader is done.
fn work(
    jobs: &Mutex<Receiver<Job>>,
    pieces: &Sender<Piece>,
    layout: &Layout<'_>,
    limits: (usize, usize),
) {
    crate::pool::yield_to_serial_stages();
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let outcome = {
            let _slot = crate::pool::slot();
            decode(&job, layout, limits)
        };
        let piece = Piece {
            seq: job.seq,
            outcome,
            buffer: job.data,
        };
        if pieces.send(piece).is_err() {
            return;
        }
    }
}

/// One chunk into batches: the fast path for unquoted chunks, the `csv` crate's framing
/// for chunks with quotes (which the reader cut at a record boundary).
fn decode(
    job: &Job,
    layout: &Layout<'_>,
    (batch_size, max_record_bytes): (usize, usize),
) -> std::result::Result<Vec<RecordBatch>, Stop> {
    if job.quoted {
        // The fast path does not measure records: a chunk that may hold one over the limit
        // goes through the bounded sequential decoder.
        if !job.skip_header
            && job.data.len() <= max_record_bytes
            && let Some(batch) = crate::fastparse::parse_quoted_chunk(&job.data, layout)
        {
            return Ok(vec![batch]);
        }
        let mut source = Sequential::new(
            &job.data[..],
            layout.delimiter,
            job.first_line,
            job.skip_header,
            batch_size,
            max_record_bytes,
        );
        let mut batches = Vec::new();
        while let Some(batch) = source.next_batch(layout, None)? {
            batches.push(batch);
        }
        return Ok(batches);
    }
    let (records, first_line) = if job.skip_header {
        match memchr::memchr(b'\n', &job.data) {
            Some(i) => (&job.data[i + 1..], job.first_line + 1),
            None => (&job.data[job.data.len()..], job.first_line + 1),
        }
    } else {
        (&job.data[..], job.first_line)
    };
    if let Some(batch) = crate::fastparse::parse_plain_chunk(records, layout) {
        return Ok(vec![batch]);
    }
    // Decoded again for the exact error.
    crate::fastparse::parse_chunk(records, layout, first_line).map(|b| vec![b])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HeaderMode, Kind, OutputFormat};

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

    /// The sequential decoder (csv crate framing) over the whole input, as the reference.
    fn sequential(input: &str, options: &ConvertOptions) -> Result<String> {
        let mut bytes = input.as_bytes();
        let sniffed = sniff(&mut bytes, options)?;
        let layout = Layout {
            schema: &sniffed.schema,
            columns: &sniffed.columns,
            values: &sniffed.values,
            delimiter: sniffed.delimiter,
        };
        let mut source = Sequential::new(
            Cursor::new(sniffed.sample).chain(bytes),
            sniffed.delimiter,
            sniffed.first_line,
            sniffed.header,
            options.batch_size,
            options.max_record_bytes,
        );
        let mut writer = arrow_csv::WriterBuilder::new()
            .with_header(true)
            .build(Vec::new());
        loop {
            match source.next_batch(&layout, None) {
                Ok(Some(batch)) => writer.write(&batch).expect("csv writer"),
                Ok(None) => break,
                Err(Stop::Bad(error)) => return Err(error),
                Err(Stop::Misfit { line, .. }) => {
                    return Err(Error::BadRecord {
                        line,
                        reason: "misfit".into(),
                    });
                }
            }
        }
        Ok(String::from_utf8(writer.into_inner()).expect("utf-8 output"))
    }

    fn same_as_sequential(input: &str, options: &ConvertOptions) -> Result<String> {
        let expected = sequential(input, options).map_err(|e| e.line());
        for chunk_bytes in [1, 7, 64, 1000, 1 << 20] {
            let got = tuned(input, options, chunk_bytes).map_err(|e| e.line());
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
    fn quoted_newlines_in_a_late_chunk_decode_in_chunks() {
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
        let input = format!("{}9x,bad,1\n{}2.5,x,2\n", rows(1000, 1), rows(10, 1002));
        let err = tuned(&input, &small_sample(), 256).unwrap_err();
        assert_eq!(err.line(), Some(1001));
        let Error::Widened(widening) = &err else {
            panic!("{err}")
        };
        assert_eq!((widening.from, widening.to), (Kind::Int64, Kind::Text));
        assert_eq!(widening.schema.compact(), "no:text,name:text,score:int64");
        same_as_sequential(&input, &small_sample()).unwrap_err();
        // Run again with the widened schema, it converts.
        let again = ConvertOptions {
            schema: Some(widening.schema.clone()),
            ..small_sample()
        };
        let out = same_as_sequential(&input, &again).unwrap();
        assert!(out.contains("\n9x,bad,1\n"), "{out}");

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
    fn a_record_over_the_limit_is_a_bad_record_on_every_path() {
        let long = "y".repeat(5000);
        let options = ConvertOptions {
            max_record_bytes: 1000,
            ..ConvertOptions::default()
        };
        let input = format!("{}1001,{long},5\n{}", rows(1000, 1), rows(10, 1002));
        same_as_sequential(&input, &options).unwrap_err();
        let err = tuned(&input, &options, 256).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1001: the record is longer than 1000 bytes (--max-record-bytes)"
        );
        for chunk_bytes in [64, 4096, 1 << 20] {
            let err = tuned(&input, &options, chunk_bytes).unwrap_err();
            assert_eq!(err.line(), Some(1001), "chunk_bytes {chunk_bytes}");
        }
        // After a quote, on the sequential path: a quoted field across lines.
        let quoted = format!(
            "1,\"q\",1\n{}1001,\"{}\",5\n",
            rows(999, 2),
            "z\n".repeat(600)
        );
        for chunk_bytes in [64, 1 << 20] {
            let err = tuned(&quoted, &options, chunk_bytes).unwrap_err();
            assert_eq!(err.line(), Some(1001), "chunk_bytes {chunk_bytes}");
        }
        // A first record over the limit.
        let err = tuned(&format!("{long},1\n1,2\n"), &options, 64).unwrap_err();
        assert_eq!(err.line(), Some(1));
    }

    #[test]
    fn skipped_over_long_records_leave_the_others() {
        let options = ConvertOptions {
            max_record_bytes: 100,
            bad_rows: crate::BadRows::Skip,
            format: OutputFormat::Csv,
            ..ConvertOptions::default()
        };
        let input = format!(
            "{}11,\"{}\",5\n{}",
            rows(10, 1),
            "long\n".repeat(100),
            rows(5, 12)
        );
        let mut out = Vec::new();
        let mut rejected = Vec::new();
        crate::convert_with_rejects(input.as_bytes(), &mut out, &options, &[], &mut |row| {
            rejected.push(row);
            Ok(())
        })
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 16, "{text}");
        assert!(text.ends_with("16,name2,16\n"), "{text}");
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].line, 11);
        assert!(rejected[0].record.is_empty());
    }

    #[test]
    fn header_only_and_empty_chunks() {
        let out = tuned("no,name,score\n", &ConvertOptions::default(), 4).unwrap();
        assert_eq!(out, "no,name,score\n");
    }

    /// A seeded generator of quoted CSV: commas, doubled quotes, LF and CRLF inside
    /// quotes, quotes inside unquoted fields, quoted numbers, empty and `NA` fields.
    fn quoted_file(seed: u64, rows: usize) -> String {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let eol = if next(2) == 0 { "\n" } else { "\r\n" };
        let mut out = String::new();
        if next(2) == 0 {
            out.push_str(&format!("\"id\",\"note\",amount{eol}"));
        }
        for row in 0..rows {
            let id = if next(10) == 0 {
                format!("\"{row}\"")
            } else {
                row.to_string()
            };
            let note = match next(10) {
                8 => format!("\"q\"tail {row}"),
                0 => String::new(),
                1 => "NA".to_owned(),
                2 => format!("\"a, b{row}\""),
                3 => format!("\"say \"\"hi\"\" {row}\""),
                4 => format!("\"two\nlines {row}\""),
                5 => "\"crlf\r\nin quotes\"".to_owned(),
                6 => format!("5\" screen {row}"),
                7 => "\"\"".to_owned(),
                _ => format!("plain{row}"),
            };
            let amount = match next(4) {
                0 => "NA".to_owned(),
                _ => format!("{}.{}", next(1000), next(100)),
            };
            out.push_str(&format!("{id},{note},{amount}{eol}"));
        }
        out
    }

    #[test]
    fn generated_quoted_files_parse_in_chunks_as_sequentially() {
        for seed in 1..=40 {
            let input = quoted_file(seed, 150);
            let out = same_as_sequential(&input, &ConvertOptions::default())
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert!(out.lines().count() > 150, "seed {seed}");
        }
    }

    /// The chunks of generated files take the quote-aware fast path, not the csv crate.
    #[test]
    fn generated_quoted_chunks_take_the_fast_path() {
        let mut fast = 0;
        for seed in 1..=40 {
            let input = quoted_file(seed, 150);
            let mut bytes = input.as_bytes();
            let sniffed = sniff(&mut bytes, &ConvertOptions::default()).unwrap();
            let layout = Layout {
                schema: &sniffed.schema,
                columns: &sniffed.columns,
                values: &sniffed.values,
                delimiter: sniffed.delimiter,
            };
            let body = if sniffed.header {
                let cut = crate::framing::last_record_end(input.as_bytes(), b',');
                let header_end = input.find("amount").unwrap() + "amount".len();
                assert!(cut.end.is_some());
                &input.as_bytes()[header_end..]
            } else {
                input.as_bytes()
            };
            if let Some(batch) = crate::fastparse::parse_quoted_chunk(body, &layout) {
                assert_eq!(batch.num_rows(), 150, "seed {seed}");
                fast += 1;
            }
        }
        assert_eq!(fast, 40);
    }

    /// Plain chunks (no quotes) on the fast path: blank lines, CRLF, empty and `NA` fields,
    /// a missing final newline, as the sequential decoder reads them.
    #[test]
    fn generated_plain_files_parse_in_chunks_as_sequentially() {
        for seed in 1..=20u64 {
            let eol = if seed % 2 == 0 { "\n" } else { "\r\n" };
            let mut input = String::from("id,note,amount,day\n");
            for row in 0..200u64 {
                let note = match (row * seed) % 5 {
                    0 => String::new(),
                    1 => "NA".to_owned(),
                    _ => format!("n{row}"),
                };
                let amount = if (row + seed) % 7 == 0 {
                    "NA".to_owned()
                } else {
                    format!("{}.{}", row, seed)
                };
                input.push_str(&format!(
                    "{row},{note},{amount},2024-01-{:02}{eol}",
                    row % 28 + 1
                ));
                if (row + seed) % 50 == 0 {
                    input.push_str(eol);
                }
            }
            let input = if seed % 3 == 0 {
                input.trim_end()
            } else {
                &input
            };
            let out = same_as_sequential(input, &ConvertOptions::default())
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert_eq!(out.lines().count(), 201, "seed {seed}");
        }
    }

    #[test]
    fn an_unbalanced_quote_decodes_as_sequentially() {
        let input = format!("{}7,\"open,1\n{}", rows(50, 1), rows(50, 60));
        let expected = sequential(&input, &ConvertOptions::default()).map_err(|e| e.line());
        for chunk_bytes in [1, 64, 1 << 20] {
            let got = tuned(&input, &ConvertOptions::default(), chunk_bytes).map_err(|e| e.line());
            assert_eq!(got, expected, "chunk_bytes {chunk_bytes}");
        }
    }

    #[test]
    fn dates_floats_and_booleans_in_parallel() {
        let input: String = (0..300)
            .map(|i| format!("{i},2024-01-{:02},{}.5,{}\n", i % 28 + 1, i, i % 2 == 0))
            .collect();
        let out = same_as_sequential(&input, &ConvertOptions::default()).unwrap();
        assert_eq!(out.lines().count(), 301);
    }
}
