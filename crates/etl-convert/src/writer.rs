//! The output side: record batches to Parquet, JSON Lines or CSV on any `Write`.

use std::io::Write;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCodec, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::{Compression, ConvertOptions, Error, OutputFormat, Result};

/// A writer for one output file in the chosen format.
pub(crate) enum BatchSink<W: Write + Send> {
    Parquet(Box<ArrowWriter<W>>),
    Jsonl(arrow_json::LineDelimitedWriter<W>),
    Csv(Box<arrow_csv::Writer<W>>),
}

impl<W: Write + Send> BatchSink<W> {
    pub(crate) fn try_new(
        output: W,
        schema: SchemaRef,
        options: &ConvertOptions,
        metadata: &[(String, String)],
    ) -> Result<Self> {
        Ok(match options.format {
            OutputFormat::Parquet => {
                let codec = match options.compression {
                    Compression::Zstd(level) => ParquetCodec::ZSTD(
                        ZstdLevel::try_new(level).map_err(|e| Error::Options(e.to_string()))?,
                    ),
                    Compression::Snappy => ParquetCodec::SNAPPY,
                    Compression::None => ParquetCodec::UNCOMPRESSED,
                };
                let key_values = metadata
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                    .collect();
                let properties = WriterProperties::builder()
                    .set_compression(codec)
                    .set_max_row_group_row_count(Some(options.row_group_rows))
                    .set_key_value_metadata(Some(key_values))
                    .build();
                let writer = ArrowWriter::try_new(output, schema, Some(properties))
                    .map_err(|e| Error::Write(e.to_string()))?;
                BatchSink::Parquet(Box::new(writer))
            }
            OutputFormat::Jsonl => BatchSink::Jsonl(arrow_json::LineDelimitedWriter::new(output)),
            OutputFormat::Csv => BatchSink::Csv(Box::new(
                arrow_csv::WriterBuilder::new()
                    .with_header(true)
                    .build(output),
            )),
        })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let outcome = match self {
            BatchSink::Parquet(writer) => writer.write(batch).map_err(|e| e.to_string()),
            BatchSink::Jsonl(writer) => writer.write(batch).map_err(|e| e.to_string()),
            BatchSink::Csv(writer) => writer.write(batch).map_err(|e| e.to_string()),
        };
        outcome.map_err(Error::Write)
    }

    /// Writes footers and flushes; the output is complete when this returns `Ok`.
    pub(crate) fn finish(self) -> Result<()> {
        let outcome = match self {
            BatchSink::Parquet(writer) => writer
                .into_inner()
                .map_err(|e| e.to_string())
                .and_then(|mut w| w.flush().map_err(|e| e.to_string())),
            BatchSink::Jsonl(mut writer) => writer
                .finish()
                .map_err(|e| e.to_string())
                .and_then(|()| writer.into_inner().flush().map_err(|e| e.to_string())),
            BatchSink::Csv(writer) => (*writer).into_inner().flush().map_err(|e| e.to_string()),
        };
        outcome.map_err(Error::Write)
    }
}
