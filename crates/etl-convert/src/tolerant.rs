//! `--bad-rows skip|quarantine`: the sequential decoder over the whole input, handing bad
//! records (line, reason, text) to the caller instead of failing.

use std::io::{Cursor, Read, Write};

use crate::fastparse::{Layout, Stop};
use crate::pipeline::{Output, summary};
use crate::reader::{Sniffed, sniff};
use crate::sequential::Sequential;
use crate::{ConvertOptions, ConvertSummary, Result};

/// A record set aside.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RejectedRow {
    /// 1-based physical line where the record starts.
    pub line: u64,
    /// Why it was rejected (never the record's values: reasons are logged).
    pub reason: String,
    /// The record as CSV text (invalid UTF-8 replaced); kept only in the quarantine file.
    pub record: String,
}

pub(crate) fn convert<R: Read, W: Write + Send>(
    mut input: R,
    output: W,
    options: &ConvertOptions,
    metadata: &[(String, String)],
    rejects: &mut dyn FnMut(RejectedRow) -> Result<()>,
) -> Result<ConvertSummary> {
    let Sniffed {
        sample,
        first_line,
        header,
        schema,
        columns,
        delimiter,
        values,
    } = sniff(&mut input, options)?;
    let layout = Layout {
        schema: &schema,
        columns: &columns,
        values: &values,
        delimiter,
    };
    let mut rejected = 0u64;
    let mut counted = |row: RejectedRow| {
        rejected += 1;
        rejects(row)
    };
    let mut source = Sequential::new(
        Cursor::new(sample).chain(input),
        delimiter,
        first_line,
        header,
        options.batch_size.min(8192),
        options.max_record_bytes,
    );
    let mut out = Output::new(output, &columns, options, metadata);
    loop {
        match source.next_batch(&layout, Some(&mut counted)) {
            Ok(Some(batch)) => out.take(Ok(vec![batch]))?,
            Ok(None) => break,
            Err(stop @ Stop::Misfit { .. }) => {
                out.take(Err(stop))?;
                break;
            }
            Err(Stop::Bad(error)) => return Err(error),
        }
    }
    let rows = out.finish()?;
    Ok(summary(rows, rejected, header, &columns))
}
