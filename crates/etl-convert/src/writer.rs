//! The output side: record batches to Parquet, JSON Lines or CSV on any `Write`.
//!
//! Parquet columns are encoded in parallel: each column of the row group in progress
//! queues its arrays, the process's encoder threads (one per CPU, shared by every file
//! being written) take whichever column has a backlog, and
//! the finished column chunks are appended to the file in order once the row group is full
//! (by rows or by bytes) and all are done. Encodings are chosen per column from the first batch: columns of mostly
//! distinct values skip the dictionary (delta encoding for integers), everything else keeps
//! it, and columns the codec would not shrink are stored uncompressed.

use std::collections::HashSet;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::basic::{Compression as ParquetCodec, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use crate::{Compression, ConvertOptions, Error, OutputFormat, Result};

/// A writer for one output file in the chosen format.
pub(crate) enum BatchSink<W: Write + Send> {
    Parquet(Box<ParquetSink<W>>),
    Jsonl(Box<arrow_json::LineDelimitedWriter<Packed<W>>>),
    Csv(Box<arrow_csv::Writer<Packed<W>>>),
}

/// A CSV or JSON Lines file, compressed whole or not.
pub(crate) enum Packed<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Packed<W> {
    fn new(output: W, compression: Compression) -> Result<Self> {
        Ok(match compression {
            Compression::None => Packed::Plain(output),
            Compression::Gzip(level) => Packed::Gzip(flate2::write::GzEncoder::new(
                output,
                flate2::Compression::new(level),
            )),
            Compression::Zstd(level) => {
                Packed::Zstd(zstd::Encoder::new(output, level).map_err(write_error)?)
            }
            Compression::Snappy => {
                return Err(Error::Options(
                    "snappy compresses only Parquet output".into(),
                ));
            }
        })
    }

    /// Ends the compressed stream and flushes.
    fn finish(self) -> std::io::Result<()> {
        let mut output = match self {
            Packed::Plain(output) => output,
            Packed::Gzip(encoder) => encoder.finish()?,
            Packed::Zstd(encoder) => encoder.finish()?,
        };
        output.flush()
    }
}

impl<W: Write> Write for Packed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Packed::Plain(output) => output.write(buf),
            Packed::Gzip(encoder) => encoder.write(buf),
            Packed::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Packed::Plain(output) => output.flush(),
            Packed::Gzip(encoder) => encoder.flush(),
            Packed::Zstd(encoder) => encoder.flush(),
        }
    }
}

fn write_error(error: impl std::fmt::Display) -> Error {
    Error::Write(error.to_string())
}

impl<W: Write + Send> BatchSink<W> {
    /// A sink for `schema`; `first` (the first batch to come) guides the Parquet encodings.
    pub(crate) fn try_new(
        output: W,
        schema: SchemaRef,
        options: &ConvertOptions,
        metadata: &[(String, String)],
        first: Option<&RecordBatch>,
    ) -> Result<Self> {
        options.compression().check(options.format)?;
        Ok(match options.format {
            OutputFormat::Parquet => BatchSink::Parquet(Box::new(ParquetSink::try_new(
                output, schema, options, metadata, first,
            )?)),
            OutputFormat::Jsonl => BatchSink::Jsonl(Box::new(
                arrow_json::LineDelimitedWriter::new(Packed::new(output, options.compression())?),
            )),
            OutputFormat::Csv => BatchSink::Csv(Box::new(
                arrow_csv::WriterBuilder::new()
                    .with_header(true)
                    .build(Packed::new(output, options.compression())?),
            )),
        })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            BatchSink::Parquet(writer) => writer.write(batch),
            BatchSink::Jsonl(writer) => writer.write(batch).map_err(write_error),
            BatchSink::Csv(writer) => writer.write(batch).map_err(write_error),
        }
    }

    /// Writes footers and flushes; the output is complete when this returns `Ok`.
    pub(crate) fn finish(self) -> Result<()> {
        let outcome = match self {
            BatchSink::Parquet(writer) => return writer.finish(),
            BatchSink::Jsonl(mut writer) => writer
                .finish()
                .map_err(|e| e.to_string())
                .and_then(|()| writer.into_inner().finish().map_err(|e| e.to_string())),
            BatchSink::Csv(writer) => (*writer).into_inner().finish().map_err(|e| e.to_string()),
        };
        outcome.map_err(Error::Write)
    }
}

/// One column of a row group: its writer and the arrays waiting for it.
struct ColumnSlot {
    /// Away while a thread encodes with it.
    writer: Option<ArrowColumnWriter>,
    pending: Vec<ArrayRef>,
    /// A task for the column is queued or running: one at a time keeps its arrays in order.
    queued: bool,
    /// No more arrays will come: the task that takes the last ones closes the chunk.
    complete: bool,
}

/// A row group whose columns are being encoded.
struct RowGroup {
    index: usize,
    schema: SchemaRef,
    columns: Vec<Mutex<ColumnSlot>>,
}

/// Encode what is pending for one column of a row group, for the file `done` collects.
struct Task {
    group: Arc<RowGroup>,
    column: usize,
    backlog: Arc<Backlog>,
    done: Sender<Encoded>,
}

/// A finished column chunk, or why it could not be.
struct Encoded {
    group: usize,
    column: usize,
    chunk: Result<ArrowColumnChunk>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Arrow bytes handed to the encoders and not yet encoded: the writer thread waits while
/// they are over [`PENDING_BYTES`], so a slow encoder holds the input back instead of
/// letting arrays pile up.
#[derive(Default)]
struct Backlog {
    state: Mutex<BacklogState>,
    changed: Condvar,
}

#[derive(Default)]
struct BacklogState {
    bytes: usize,
    /// An encoder failed: its arrays will never be done, so nobody may wait for them.
    failed: bool,
}

/// Arrow bytes that may wait for the encoders.
const PENDING_BYTES: usize = 8 << 20;

impl Backlog {
    fn add(&self, bytes: usize) -> Result<()> {
        let mut state = lock(&self.state);
        while state.bytes > PENDING_BYTES && !state.failed {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.failed {
            return Err(Error::Write("a column encoder failed".into()));
        }
        state.bytes += bytes;
        Ok(())
    }

    fn done(&self, bytes: usize) {
        let mut state = lock(&self.state);
        state.bytes = state.bytes.saturating_sub(bytes);
        self.changed.notify_all();
    }

    fn fail(&self) {
        lock(&self.state).failed = true;
        self.changed.notify_all();
    }
}

/// The process's encoder threads, as many as it may use CPUs ([`crate::pool::cpus`]),
/// taking the next task of any column of any file from one queue: however many files are
/// written side by side, encoding takes that many threads, and however unequal the columns,
/// no thread idles while one has a backlog.
fn encoder_queue() -> &'static Sender<Task> {
    static QUEUE: OnceLock<Sender<Task>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tasks, queue) = channel::<Task>();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..crate::pool::cpus() {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(ENCODER_THREAD.into())
                .spawn(move || {
                    loop {
                        let next = lock(&queue).recv();
                        let Ok(task) = next else { return };
                        encode(&task);
                    }
                })
                .expect("the encoder threads can be started");
        }
        tasks
    })
}

/// What the encoder threads are called.
const ENCODER_THREAD: &str = "etl-encode";

fn encode(task: &Task) {
    let finished = std::panic::catch_unwind(AssertUnwindSafe(|| run(task)))
        .unwrap_or_else(|_| Some(Err(Error::Write("a column encoder panicked".into()))));
    let Some(chunk) = finished else { return };
    if chunk.is_err() {
        task.backlog.fail();
    }
    // A file that failed elsewhere no longer collects its chunks.
    let _ = task.done.send(Encoded {
        group: task.group.index,
        column: task.column,
        chunk,
    });
}

/// One file's share of the encoders: its backlog and its finished chunks.
struct Encoders {
    done: Sender<Encoded>,
    encoded: Receiver<Encoded>,
    backlog: Arc<Backlog>,
}

impl Encoders {
    fn new() -> Encoders {
        let (done, encoded) = channel::<Encoded>();
        Encoders {
            done,
            encoded,
            backlog: Arc::default(),
        }
    }

    /// Queues a task for the column unless one is queued or running.
    fn wake(&self, group: &Arc<RowGroup>, column: usize, slot: &mut ColumnSlot) -> Result<()> {
        if slot.queued {
            return Ok(());
        }
        slot.queued = true;
        let task = Task {
            group: Arc::clone(group),
            column,
            backlog: Arc::clone(&self.backlog),
            done: self.done.clone(),
        };
        encoder_queue().send(task).map_err(|_| stopped())
    }
}

/// Encodes the column's pending arrays until none are left; closes the chunk once the row
/// group is complete. `None` when the chunk is not finished yet.
fn run(task: &Task) -> Option<Result<ArrowColumnChunk>> {
    let slot = &task.group.columns[task.column];
    let field = task.group.schema.field(task.column);
    loop {
        let (writer, arrays, complete) = {
            let mut slot = lock(slot);
            (
                slot.writer.take(),
                std::mem::take(&mut slot.pending),
                slot.complete,
            )
        };
        let Some(mut writer) = writer else {
            return Some(Err(Error::Write("a column writer was lost".into())));
        };
        for array in arrays {
            let written = compute_leaves(field, &array)
                .and_then(|leaves| leaves.iter().try_for_each(|leaf| writer.write(leaf)));
            task.backlog.done(array.get_array_memory_size());
            if let Err(error) = written {
                return Some(Err(write_error(error)));
            }
        }
        if complete {
            return Some(writer.close().map_err(write_error));
        }
        let mut slot = lock(slot);
        slot.writer = Some(writer);
        if slot.pending.is_empty() && !slot.complete {
            slot.queued = false;
            return None;
        }
    }
}

/// A complete row group whose chunks are not all written yet.
struct InFlight {
    group: usize,
    chunks: Vec<Option<ArrowColumnChunk>>,
    missing: usize,
}

/// A Parquet file written row group by row group. Each column of the row group in
/// progress has a writer; the arrays of each batch queue up per column, and the encoders
/// take a column's backlog wherever there is one. A complete row group's chunks are
/// appended to the file in order as soon as all are done, while the next one fills.
pub(crate) struct ParquetSink<W: Write + Send> {
    file: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    encoders: Encoders,
    group: Option<Arc<RowGroup>>,
    group_rows: usize,
    /// Arrow bytes handed to the row group in progress.
    group_bytes: usize,
    groups: usize,
    row_group_rows: usize,
    in_flight: Option<InFlight>,
}

/// A row group also ends once this many bytes of Arrow data went into it: its encoded
/// column chunks stay in memory until it ends, so wide or text-heavy rows would otherwise
/// make the peak memory depend on the row width. 32 MiB keeps a 120-column file under
/// 150 MB peak at the cost of about 1% more output; narrower files lose nothing.
const ROW_GROUP_BYTES: usize = 32 << 20;

/// What the columns' page and dictionary buffers may take together (1 MiB each, the
/// writer's default, up to 32 columns).
const PAGE_BUFFERS_BYTES: usize = 32 << 20;

impl<W: Write + Send> ParquetSink<W> {
    fn try_new(
        output: W,
        schema: SchemaRef,
        options: &ConvertOptions,
        metadata: &[(String, String)],
        first: Option<&RecordBatch>,
    ) -> Result<Self> {
        let codec = match options.compression() {
            Compression::Zstd(level) => ParquetCodec::ZSTD(
                ZstdLevel::try_new(level).map_err(|e| Error::Options(e.to_string()))?,
            ),
            Compression::Snappy => ParquetCodec::SNAPPY,
            Compression::None => ParquetCodec::UNCOMPRESSED,
            Compression::Gzip(_) => {
                return Err(Error::Options(
                    "gzip compresses only CSV and JSON Lines output".into(),
                ));
            }
        };
        let key_values = metadata
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        // Every column buffers a page and a dictionary: on wide tables smaller ones keep
        // the total of those buffers bounded.
        let page_bytes =
            (PAGE_BUFFERS_BYTES / schema.fields().len().max(1)).clamp(64 << 10, 1 << 20);
        let mut properties = WriterProperties::builder()
            .set_compression(codec)
            .set_data_page_size_limit(page_bytes)
            .set_dictionary_page_size_limit(page_bytes)
            .set_max_row_group_row_count(Some(options.row_group_rows))
            .set_key_value_metadata(Some(key_values));
        if let Some(first) = first {
            properties = choose_encodings(properties, first);
            if codec != ParquetCodec::UNCOMPRESSED {
                properties = skip_incompressible(properties, &schema, first)?;
            }
        }
        // ArrowWriter sets up the file (magic, Arrow schema in the footer); the row groups
        // are then written through the lower-level API, column by column.
        let writer = ArrowWriter::try_new(output, schema.clone(), Some(properties.build()))
            .map_err(write_error)?;
        let (file, factory) = writer.into_serialized_writer().map_err(write_error)?;
        Ok(ParquetSink {
            file,
            factory,
            schema,
            encoders: Encoders::new(),
            group: None,
            group_rows: 0,
            group_bytes: 0,
            groups: 0,
            row_group_rows: options.row_group_rows.max(1),
            in_flight: None,
        })
    }

    fn start_group(&mut self) -> Result<Arc<RowGroup>> {
        let writers = self
            .factory
            .create_column_writers(self.groups)
            .map_err(write_error)?;
        if writers.len() != self.schema.fields().len() {
            return Err(Error::Write("nested columns cannot be written".into()));
        }
        let columns = writers
            .into_iter()
            .map(|writer| {
                Mutex::new(ColumnSlot {
                    writer: Some(writer),
                    pending: Vec::new(),
                    queued: false,
                    complete: false,
                })
            })
            .collect();
        let group = Arc::new(RowGroup {
            index: self.groups,
            schema: Arc::clone(&self.schema),
            columns,
        });
        self.groups += 1;
        Ok(Arc::clone(self.group.insert(group)))
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.collect(false)?;
        let mut offset = 0;
        let row_bytes = batch.get_array_memory_size() / batch.num_rows().max(1);
        while offset < batch.num_rows() {
            let room = ROW_GROUP_BYTES.saturating_sub(self.group_bytes) / row_bytes.max(1);
            let take = (batch.num_rows() - offset)
                .min(self.row_group_rows - self.group_rows)
                .min(room.max(1));
            let slice = batch.slice(offset, take);
            let bytes = slice
                .columns()
                .iter()
                .map(|array| array.get_array_memory_size())
                .sum();
            if let Err(error) = self.encoders.backlog.add(bytes) {
                return Err(self.failure().unwrap_or(error));
            }
            let group = match &self.group {
                Some(group) => Arc::clone(group),
                None => self.start_group()?,
            };
            for (column, array) in slice.columns().iter().enumerate() {
                let mut slot = lock(&group.columns[column]);
                slot.pending.push(Arc::clone(array));
                self.encoders.wake(&group, column, &mut slot)?;
            }
            self.group_rows += take;
            self.group_bytes += take * row_bytes;
            offset += take;
            if self.group_rows == self.row_group_rows || self.group_bytes >= ROW_GROUP_BYTES {
                self.end_group()?;
            }
        }
        Ok(())
    }

    /// The row group in progress is complete: its columns close once their arrays are
    /// encoded. The one before it is written first, so that only chunks of the row group
    /// in flight ever arrive.
    fn end_group(&mut self) -> Result<()> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        self.collect(true)?;
        for (column, slot) in group.columns.iter().enumerate() {
            let mut slot = lock(slot);
            slot.complete = true;
            self.encoders.wake(&group, column, &mut slot)?;
        }
        self.in_flight = Some(InFlight {
            group: group.index,
            chunks: group.columns.iter().map(|_| None).collect(),
            missing: group.columns.len(),
        });
        self.group_rows = 0;
        self.group_bytes = 0;
        Ok(())
    }

    /// Takes the chunks encoded so far and appends the row group in flight once all are
    /// (waiting for them with `wait`).
    fn collect(&mut self, wait: bool) -> Result<()> {
        let Some(in_flight) = self.in_flight.as_mut() else {
            return Ok(());
        };
        while in_flight.missing > 0 {
            let encoded = if wait {
                self.encoders.encoded.recv().map_err(|_| stopped())?
            } else {
                match self.encoders.encoded.try_recv() {
                    Ok(encoded) => encoded,
                    Err(TryRecvError::Empty) => return Ok(()),
                    Err(TryRecvError::Disconnected) => return Err(stopped()),
                }
            };
            let chunk = encoded.chunk?;
            let place = in_flight
                .chunks
                .get_mut(encoded.column)
                .filter(|_| encoded.group == in_flight.group)
                .ok_or_else(|| Error::Write("a column chunk of another row group".into()))?;
            if place.replace(chunk).is_none() {
                in_flight.missing -= 1;
            }
        }
        let chunks = std::mem::take(&mut in_flight.chunks);
        self.in_flight = None;
        let mut group = self.file.next_row_group().map_err(write_error)?;
        for chunk in chunks.into_iter().flatten() {
            chunk.append_to_row_group(&mut group).map_err(write_error)?;
        }
        group.close().map_err(write_error)?;
        Ok(())
    }

    /// The error an encoder stopped on, if one did.
    fn failure(&self) -> Option<Error> {
        self.encoders
            .encoded
            .try_iter()
            .find_map(|encoded| encoded.chunk.err())
    }

    fn finish(mut self) -> Result<()> {
        self.end_group()?;
        self.collect(true)?;
        let mut output = self.file.into_inner().map_err(write_error)?;
        output.flush().map_err(write_error)
    }
}

fn stopped() -> Error {
    Error::Write("the column encoders stopped".into())
}

/// Rows of the first batch looked at to judge how repetitive a column is.
const PROBE_ROWS: usize = 64 * 1024;
/// Below this many rows the writer's defaults are as good as any choice.
const MIN_PROBE_ROWS: usize = 1024;

/// Numeric columns of mostly distinct values (sequence numbers, timestamps, amounts) skip
/// the dictionary, which would only be built to be thrown away: delta encoding for
/// integers, timestamps and dates, plain for floats. Text of nearly all distinct values
/// is written plain; other text keeps the writer's dictionary, which falls back to plain by
/// itself once it outgrows its page: a vocabulary of tens of thousands of names over
/// millions of rows is still worth one.
fn choose_encodings(
    mut properties: WriterPropertiesBuilder,
    first: &RecordBatch,
) -> WriterPropertiesBuilder {
    let rows = first.num_rows().min(PROBE_ROWS);
    if rows < MIN_PROBE_ROWS {
        return properties;
    }
    let limit = rows / 2;
    for (field, column) in first.schema().fields().iter().zip(first.columns()) {
        let column = column.slice(0, rows);
        let path = ColumnPath::from(field.name().as_str());
        let integers = match field.data_type() {
            DataType::Int64 => {
                distinct_over(column.as_primitive::<Int64Type>().iter().flatten(), limit)
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => distinct_over(
                column
                    .as_primitive::<TimestampMicrosecondType>()
                    .iter()
                    .flatten(),
                limit,
            ),
            DataType::Date32 => {
                distinct_over(column.as_primitive::<Date32Type>().iter().flatten(), limit)
            }
            _ => false,
        };
        if integers {
            properties = properties
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
            continue;
        }
        match field.data_type() {
            DataType::Utf8 if mostly_distinct_text(column.as_ref()) => {
                properties = properties.set_column_dictionary_enabled(path, false);
            }
            DataType::Float64
                if distinct_over(
                    column
                        .as_primitive::<Float64Type>()
                        .iter()
                        .flatten()
                        .map(f64::to_bits),
                    limit,
                ) =>
            {
                properties = properties.set_column_dictionary_enabled(path, false);
            }
            _ => {}
        }
    }
    properties
}

/// A column whose compressed sample keeps at least this share of its encoded size is
/// stored uncompressed.
const INCOMPRESSIBLE: usize = 90;

/// Writes the sample as the file will be written and stores uncompressed the columns the
/// codec shrinks by less than a tenth (random floats, delta-packed identifiers and times,
/// dictionary indexes): compressing them is a large part of the encoding work for nothing.
/// A column is judged by the start of the file, as its encoding is.
fn skip_incompressible(
    properties: WriterPropertiesBuilder,
    schema: &SchemaRef,
    first: &RecordBatch,
) -> Result<WriterPropertiesBuilder> {
    let rows = first.num_rows().min(PROBE_ROWS);
    if rows < MIN_PROBE_ROWS {
        return Ok(properties);
    }
    let mut trial = ArrowWriter::try_new(
        std::io::sink(),
        schema.clone(),
        Some(properties.clone().build()),
    )
    .map_err(write_error)?;
    trial.write(&first.slice(0, rows)).map_err(write_error)?;
    let metadata = trial.close().map_err(write_error)?;
    let Some(group) = metadata.row_groups().first() else {
        return Ok(properties);
    };
    Ok(schema
        .fields()
        .iter()
        .zip(group.columns())
        .filter(|(_, chunk)| {
            let plain = usize::try_from(chunk.uncompressed_size()).unwrap_or(0);
            let packed = usize::try_from(chunk.compressed_size()).unwrap_or(0);
            plain > 0 && packed * 100 >= plain * INCOMPRESSIBLE
        })
        .fold(properties, |properties, (field, _)| {
            properties.set_column_compression(
                ColumnPath::from(field.name().as_str()),
                ParquetCodec::UNCOMPRESSED,
            )
        }))
}

/// Whether nearly every text value of the sample is distinct (codes, identifiers, free
/// text): a dictionary would overflow its page and be abandoned. Names of a vocabulary
/// repeat within the sample unless it is several times larger, and then keep one.
fn mostly_distinct_text(column: &dyn Array) -> bool {
    let present = column.len() - column.null_count();
    present >= MIN_PROBE_ROWS
        && distinct_over(column.as_string::<i32>().iter().flatten(), present / 10 * 9)
}

/// Whether `values` holds more than `limit` distinct values (stops counting there).
fn distinct_over<T: std::hash::Hash + Eq>(values: impl Iterator<Item = T>, limit: usize) -> bool {
    let mut seen = HashSet::with_capacity(limit + 1);
    for value in values {
        seen.insert(value);
        if seen.len() > limit {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    /// Writes `batch` as a Parquet file with the default options; its footer.
    fn written(batch: &RecordBatch) -> ParquetMetaData {
        let mut out = Vec::new();
        let mut sink = BatchSink::try_new(
            &mut out,
            batch.schema(),
            &ConvertOptions::default(),
            &[],
            Some(batch),
        )
        .unwrap();
        sink.write(batch).unwrap();
        sink.finish().unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(out)).unwrap();
        reader.metadata().clone()
    }

    fn chunk<'a>(metadata: &'a ParquetMetaData, name: &str) -> &'a ColumnChunkMetaData {
        let group = metadata.row_group(0);
        group
            .columns()
            .iter()
            .find(|c| c.column_path().string() == name)
            .unwrap()
    }

    fn dictionary(chunk: &ColumnChunkMetaData) -> bool {
        chunk
            .encodings()
            .any(|e| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY))
    }

    /// Pseudo-random 64-bit values (xorshift), the same on every run.
    fn noise(n: usize) -> Vec<u64> {
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect()
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|(_, array)| array).collect(),
        )
        .unwrap()
    }

    #[test]
    fn mostly_distinct_text_is_written_without_a_dictionary() {
        let rows = 20_000;
        let codes: StringArray = noise(rows).iter().map(|x| Some(format!("C{x}"))).collect();
        // A vocabulary of 2 000 names: each name repeats about ten times in the sample.
        let names: StringArray = noise(rows)
            .iter()
            .map(|x| Some(format!("name-{}", x % 2_000)))
            .collect();
        let metadata = written(&batch(vec![
            ("code", Arc::new(codes)),
            ("name", Arc::new(names)),
        ]));
        assert!(!dictionary(chunk(&metadata, "code")));
        assert!(dictionary(chunk(&metadata, "name")));
    }

    #[test]
    fn incompressible_columns_are_stored_uncompressed() {
        let rows = 20_000;
        // Random bits compress by nothing; amounts of two decimals repeat their patterns.
        let noise: Float64Array = noise(rows)
            .iter()
            .map(|x| Some(f64::from_bits(x >> 2)))
            .collect();
        let amounts: Float64Array = (0..rows)
            .map(|i| Some((i * 7919 % 100_000) as f64 / 100.0))
            .collect();
        let metadata = written(&batch(vec![
            ("noise", Arc::new(noise)),
            ("amount", Arc::new(amounts)),
        ]));
        let noise = chunk(&metadata, "noise");
        assert_eq!(noise.compression(), ParquetCodec::UNCOMPRESSED);
        assert_eq!(noise.compressed_size(), noise.uncompressed_size());
        let amount = chunk(&metadata, "amount");
        assert!(matches!(amount.compression(), ParquetCodec::ZSTD(_)));
        assert!(amount.compressed_size() < amount.uncompressed_size());
    }

    #[test]
    fn many_row_groups_keep_their_rows_and_columns_in_order() {
        let rows = 50_000;
        let ids: Int64Array = (0..rows as i64).map(Some).collect();
        let words: StringArray = (0..rows)
            .map(|i| (i % 7 != 0).then(|| format!("w{}", i % 300)))
            .collect();
        let amounts: Float64Array = noise(rows)
            .iter()
            .map(|x| Some((x % 10_000) as f64 / 100.0))
            .collect();
        let batch = batch(vec![
            ("id", Arc::new(ids)),
            ("word", Arc::new(words)),
            ("amount", Arc::new(amounts)),
        ]);
        let options = ConvertOptions {
            row_group_rows: 1_000,
            ..ConvertOptions::default()
        };
        let mut out = Vec::new();
        let mut sink =
            BatchSink::try_new(&mut out, batch.schema(), &options, &[], Some(&batch)).unwrap();
        // Batches that straddle row groups, as decoded chunks do.
        let mut offset = 0;
        for len in [1, 999, 2_500, 7_000].into_iter().cycle() {
            if offset == rows {
                break;
            }
            let len = len.min(rows - offset);
            sink.write(&batch.slice(offset, len)).unwrap();
            offset += len;
        }
        sink.finish().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out)).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 50);
        let mut offset = 0;
        for read in reader.build().unwrap() {
            let read = read.unwrap();
            let expected = batch.slice(offset, read.num_rows());
            assert_eq!(read.columns(), expected.columns());
            offset += read.num_rows();
        }
        assert_eq!(offset, rows);
    }

    #[test]
    fn a_failing_column_encoder_fails_the_file_instead_of_hanging() {
        // A batch whose column is not of the schema's type makes that column's encoder fail
        // in its thread, after the writer has handed it more than the backlog holds (cut into
        // many row groups): the writer must return the encoder's error, not wait for it.
        let ids: Int64Array = (0..20_000).map(Some).collect();
        let good = batch(vec![("id", Arc::new(ids))]);
        let words: StringArray = (0..2_000_000).map(|i| Some(format!("w{i}"))).collect();
        let bad = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)])),
            vec![Arc::new(words)],
        )
        .unwrap();
        assert!(bad.get_array_memory_size() > 2 * PENDING_BYTES);
        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let options = ConvertOptions {
                row_group_rows: 1_000,
                ..ConvertOptions::default()
            };
            let mut sink =
                BatchSink::try_new(&mut out, good.schema(), &options, &[], Some(&good)).unwrap();
            let result = sink
                .write(&good)
                .and_then(|()| sink.write(&bad))
                .and_then(|()| sink.finish());
            let _ = done.send(result.map_err(|e| e.to_string()));
        });
        let outcome = outcome
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the writer hung after an encoder failed");
        let message = outcome.expect_err("a file with a failed column was written");
        assert!(message.contains("Field 'id' has type Int64"), "{message}");
    }

    #[test]
    fn files_written_side_by_side_share_the_encoder_threads() {
        let rows = 30_000;
        let files: Vec<_> = (0..6)
            .map(|file| {
                std::thread::spawn(move || {
                    let ids: Int64Array = (0..rows).map(|i| Some(i * 7 + file)).collect();
                    let words: StringArray = (0..rows)
                        .map(|i| Some(format!("f{file}w{}", i % 50)))
                        .collect();
                    let batch = batch(vec![("id", Arc::new(ids)), ("word", Arc::new(words))]);
                    let options = ConvertOptions {
                        row_group_rows: 2_000,
                        ..ConvertOptions::default()
                    };
                    let mut out = Vec::new();
                    let mut sink =
                        BatchSink::try_new(&mut out, batch.schema(), &options, &[], Some(&batch))
                            .unwrap();
                    let mut most = 0;
                    for offset in (0..rows as usize).step_by(1_500) {
                        sink.write(&batch.slice(offset, 1_500)).unwrap();
                        most = most.max(encoder_threads());
                    }
                    sink.finish().unwrap();
                    (batch, out, most)
                })
            })
            .collect();
        for file in files {
            let (batch, out, most) = file.join().unwrap();
            assert!(most <= crate::pool::cpus(), "{most} encoder threads");
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out)).unwrap();
            let mut offset = 0;
            for read in reader.build().unwrap() {
                let read = read.unwrap();
                assert_eq!(
                    read.columns(),
                    batch.slice(offset, read.num_rows()).columns()
                );
                offset += read.num_rows();
            }
            assert_eq!(offset, batch.num_rows());
        }
        assert_eq!(encoder_threads(), crate::pool::cpus());
    }

    /// The encoder threads of this process.
    fn encoder_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter(|task| {
                let comm = task.as_ref().unwrap().path().join("comm");
                std::fs::read_to_string(comm).is_ok_and(|name| name.trim() == ENCODER_THREAD)
            })
            .count()
    }

    #[test]
    fn uncompressed_output_stays_uncompressed() {
        let rows = 20_000;
        let amounts: Float64Array = (0..rows).map(|i| Some((i % 100) as f64)).collect();
        let batch = batch(vec![("amount", Arc::new(amounts))]);
        let mut out = Vec::new();
        let options = ConvertOptions {
            compression: Some(Compression::None),
            ..ConvertOptions::default()
        };
        let mut sink =
            BatchSink::try_new(&mut out, batch.schema(), &options, &[], Some(&batch)).unwrap();
        sink.write(&batch).unwrap();
        sink.finish().unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(out)).unwrap();
        let group = reader.metadata().row_group(0);
        assert_eq!(group.column(0).compression(), ParquetCodec::UNCOMPRESSED);
        assert_eq!(group.num_rows(), 20_000);
    }
}
