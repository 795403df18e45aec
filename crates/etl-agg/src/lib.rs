//! Max-by-column aggregation over Parquet files read sparsely: the footer, one column's
//! chunks, and the pages holding the winning row. Pure: callers fetch the byte ranges this
//! crate asks for (from S3 with range requests) and hand them back as a [`SparseFile`].

mod error;
mod report;
mod row;
mod sparse;
mod winner;

pub use error::{Error, Result};
pub use report::{AggReport, Cell, REPORT_FORMAT, fingerprint, format_series};
pub use row::{RowReader, Step};
pub use sparse::{FooterParse, SparseFile, parse_footer};
pub use winner::{Candidate, Value, column_chunk_ranges, column_max, resolve_column};
