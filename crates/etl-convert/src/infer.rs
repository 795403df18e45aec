//! Reading a sample: framing it into records, sniffing the delimiter and the header, and
//! inferring each column's kind under the rules of [`crate::values`].

use crate::values::{Kind, Values};
use crate::{Error, Result};

/// One record of the sample: its fields unquoted and back to back in one buffer, so that
/// framing allocates per record, not per field.
#[derive(Debug, Clone, Default)]
pub(crate) struct SampleRecord {
    bytes: Vec<u8>,
    /// Where each field ends in `bytes`.
    ends: Vec<usize>,
    /// Whether each field was quoted.
    pub(crate) quoted: Vec<bool>,
}

impl SampleRecord {
    /// Room for a record like `previous`.
    fn like(previous: &SampleRecord) -> SampleRecord {
        SampleRecord {
            bytes: Vec::with_capacity(previous.bytes.len()),
            ends: Vec::with_capacity(previous.ends.len()),
            quoted: Vec::with_capacity(previous.ends.len()),
        }
    }

    /// The number of fields.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `index`, unquoted.
    pub(crate) fn field(&self, index: usize) -> &[u8] {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.bytes[start..self.ends[index]]
    }

    pub(crate) fn fields(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|index| self.field(index))
    }

    /// Ends the field being read.
    fn end_field(&mut self, quoted: bool) {
        self.ends.push(self.bytes.len());
        self.quoted.push(quoted);
    }

    /// Whether the record is one empty unquoted field: a blank line.
    fn is_blank(&self) -> bool {
        self.len() == 1 && self.bytes.is_empty() && !self.quoted[0]
    }
}

/// Records framed for inference at most (memory stays small; more come from offsets).
pub(crate) const MAX_SAMPLE_RECORDS: usize = 20_000;

/// Frames `data` into records (RFC 4180 quoting; a quote opens a field only at its start),
/// at most [`MAX_SAMPLE_RECORDS`] of a part of the input. When `whole` is false the last, possibly cut, record is
/// dropped; when it is true a quote left open is an error naming the line where it opened.
/// Blank lines are skipped.
pub(crate) fn frame(data: &[u8], delimiter: u8, whole: bool) -> Result<Vec<SampleRecord>> {
    frame_up_to(data, delimiter, whole, MAX_SAMPLE_RECORDS)
}

/// Whether `data` begins with a whole record.
pub(crate) fn holds_a_record(data: &[u8], delimiter: u8) -> bool {
    frame_up_to(data, delimiter, false, 1).is_ok_and(|records| !records.is_empty())
}

fn frame_up_to(
    data: &[u8],
    delimiter: u8,
    whole: bool,
    max_records: usize,
) -> Result<Vec<SampleRecord>> {
    let mut records = Vec::new();
    let mut record = SampleRecord::default();
    let mut field_quoted = false;
    let mut in_quotes = false;
    let mut at_field_start = true;
    let mut line = 1u64;
    let mut opened_at = 0u64;
    let mut i = 0;
    while i < data.len() {
        let byte = data[i];
        if in_quotes {
            // Everything up to the next quote is the field's.
            let run = memchr::memchr(b'"', &data[i..]).unwrap_or(data.len() - i);
            let text = &data[i..i + run];
            line += memchr::memchr_iter(b'\n', text).count() as u64;
            record.bytes.extend_from_slice(text);
            i += run;
            if i < data.len() {
                if data.get(i + 1) == Some(&b'"') {
                    record.bytes.push(b'"');
                    i += 1;
                } else {
                    in_quotes = false;
                }
                i += 1;
            }
        } else if byte == b'"' && at_field_start {
            in_quotes = true;
            field_quoted = true;
            opened_at = line;
            at_field_start = false;
            i += 1;
        } else if byte == delimiter {
            record.end_field(std::mem::take(&mut field_quoted));
            at_field_start = true;
            i += 1;
        } else if byte == b'\n' || byte == b'\r' {
            i += if byte == b'\r' && data.get(i + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            line += 1;
            record.end_field(std::mem::take(&mut field_quoted));
            if record.is_blank() {
                record = SampleRecord::default();
            } else {
                let next = SampleRecord::like(&record);
                records.push(std::mem::replace(&mut record, next));
                if !whole && records.len() >= max_records {
                    return Ok(records);
                }
            }
            at_field_start = true;
        } else {
            // A quote inside an unquoted field is text: the field runs to its end.
            let run = data[i..]
                .iter()
                .position(|&b| b == delimiter || b == b'\n' || b == b'\r')
                .unwrap_or(data.len() - i);
            record.bytes.extend_from_slice(&data[i..i + run]);
            at_field_start = false;
            i += run;
        }
    }
    if in_quotes && whole {
        return Err(Error::BadRecord {
            line: opened_at,
            reason: "a quoted field opens here and is never closed".into(),
        });
    }
    if whole && !(record.len() == 0 && record.bytes.is_empty() && !field_quoted) {
        record.end_field(field_quoted);
        records.push(record);
    }
    Ok(records)
}

/// The delimiter among `,` `;` tab `|` that splits the sample's lines most consistently.
pub(crate) fn sniff_delimiter(sample: &[u8]) -> u8 {
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
    let mut best = (b',', 0usize, 0usize);
    for candidate in CANDIDATES {
        let mut counts = Vec::new();
        let mut count = 0usize;
        let mut in_quotes = false;
        for &byte in sample {
            if byte == b'"' {
                in_quotes = !in_quotes;
            } else if !in_quotes && byte == candidate {
                count += 1;
            } else if !in_quotes && byte == b'\n' {
                counts.push(std::mem::take(&mut count));
                if counts.len() >= 200 {
                    break;
                }
            }
        }
        if counts.is_empty() {
            counts.push(count);
        }
        let mut frequency = std::collections::BTreeMap::<usize, usize>::new();
        for c in counts.iter().filter(|c| **c > 0) {
            *frequency.entry(*c).or_default() += 1;
        }
        let Some((&modal, &lines)) = frequency.iter().max_by_key(|(c, n)| (**n, **c)) else {
            continue;
        };
        if (lines, modal) > (best.1, best.2) {
            best = (candidate, lines, modal);
        }
    }
    best.0
}

/// Each column's kind over the data records of the given width.
pub(crate) fn infer_kinds<'a>(
    records: impl Iterator<Item = &'a SampleRecord>,
    width: usize,
    values: &Values,
) -> Vec<Kind> {
    let mut kinds = vec![Kind::Null; width];
    for record in records.filter(|r| r.len() == width) {
        for (kind, field) in kinds.iter_mut().zip(record.fields()) {
            if *kind != Kind::Text {
                *kind = kind.merge(values.classify(field));
            }
        }
    }
    kinds
}

/// Kind by kind, what fits both.
pub(crate) fn merge_kinds(a: &[Kind], b: &[Kind]) -> Vec<Kind> {
    a.iter().zip(b).map(|(a, b)| a.merge(*b)).collect()
}

/// Whether the first record is a header: it repeats the names the file would get anyway,
/// or its values do not fit (or are quoted where the data is not) typed columns; a table
/// of text only has one when the first record's names are distinct, none empty, and none
/// repeated below it; names counting up (`1990,1991,1992`) are a header; a lone record is a
/// header when none of its values is typed.
/// `data_kinds` are the kinds of the records after the first ([`infer_kinds`]).
pub(crate) fn is_header(
    records: &[SampleRecord],
    data_kinds: &[Kind],
    names: &[String],
    values: &Values,
) -> bool {
    let Some(first) = records.first() else {
        return false;
    };
    let width = first.len();
    let repeats_names = width == names.len()
        && first.fields().zip(names).all(|(field, name)| {
            String::from_utf8_lossy(field)
                .trim()
                .eq_ignore_ascii_case(name)
        });
    if repeats_names {
        return true;
    }
    let data: Vec<&SampleRecord> = records[1..].iter().filter(|r| r.len() == width).collect();
    if consecutive_integers(first) && !data.iter().any(|r| consecutive_integers(r)) {
        // Years or indices as names (`country,1990,1991,1992`), quoted like the data or not.
        return true;
    }
    if data.is_empty() {
        // Names only; an empty one is allowed (pandas' index, R's row names).
        return first.fields().any(|f| !values.is_null(f))
            && first
                .fields()
                .all(|f| matches!(values.classify(f), Kind::Null | Kind::Text));
    }
    let (mut for_header, mut for_data) = (0usize, 0usize);
    for (column, kind) in data_kinds.iter().enumerate() {
        if matches!(kind, Kind::Null | Kind::Text) {
            continue;
        }
        let field = first.field(column);
        if values.is_null(field) {
            continue;
        }
        let fits = values.classify(field).merge(*kind) == *kind;
        let data_quoted = data.iter().any(|r| r.quoted[column]);
        if !fits || (first.quoted[column] && !data_quoted) {
            for_header += 1;
        } else {
            for_data += 1;
        }
    }
    if for_header + for_data > 0 {
        return for_header > 0 && for_header >= for_data;
    }
    // Text only.
    let mut seen = std::collections::HashSet::new();
    first.fields().enumerate().all(|(column, field)| {
        !values.is_null(field)
            && seen.insert(field)
            && data.iter().all(|r| r.field(column) != field)
    })
}

/// Whether a record holds at least three integers, and its integers read left to right count
/// up by one (`1990,1991,1992`): names of years or positions, hardly ever a data record.
fn consecutive_integers(record: &SampleRecord) -> bool {
    let numbers: Vec<i64> = record
        .fields()
        .filter_map(crate::values::parse_i64)
        .collect();
    numbers.len() >= 3
        && numbers
            .windows(2)
            .all(|w| w[0].checked_add(1) == Some(w[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> bool {
        let delimiter = sniff_delimiter(text.as_bytes());
        let records = frame(text.as_bytes(), delimiter, true).unwrap();
        let names: Vec<String> = ["no", "name", "score"].map(String::from).into();
        let values = Values::default();
        let width = records.first().map_or(0, SampleRecord::len);
        let data_kinds = infer_kinds(records.iter().skip(1), width, &values);
        is_header(&records, &data_kinds, &names, &values)
    }

    #[test]
    fn headers_of_every_shape() {
        assert!(!header("1,aaa,100\n2,bbb,80\n"));
        assert!(!header("1,aaa,100\n"));
        assert!(header("no,name,score\n"));
        assert!(header("id,label,points\n1,a,5\n"));
        assert!(header("city,country\nParis,France\nRome,Italy\n"));
        assert!(!header("Paris,France\nRome,Italy\nParis,Spain\n"));
        assert!(header("\"2019\",\"2020\"\n1,2\n3,4\n"));
        assert!(header("x,y\nNA,1\n2,NA\n3,4\n"));
        assert!(header("\"id\",\"name\"\n\"1\",\"a\"\n"));
        assert!(header("a;b\n1,5;x\n"));
        // Quoted years like the quoted data below them; a lone header of years.
        assert!(header(
            "\"country\",\"2004\",\"2005\",\"2006\"\n\"Berlin\",\"8142\",\"34.95\",\"7\"\n\"Rome\",\"1\",\"2.5\",\"8\"\n"
        ));
        assert!(header("country,1990,1991,1992\n"));
        assert!(!header("1,2,3\n2,3,4\n"));
        // Header-only files of pandas (empty index name) and R (empty row-names name).
        assert!(header(",city,temp\n"));
        assert!(header("\"\",\"id\",\"name\"\n"));
        assert!(!header(",,\n1,2,3\n"));
    }

    #[test]
    fn delimiters() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1,5;2,5;x\n3;4;y\n"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\n1\t2\n"), b'\t');
        assert_eq!(sniff_delimiter(b"a|b\n1|\"x,y\"\n"), b'|');
        assert_eq!(sniff_delimiter(b"1,aaa,100\n"), b',');
        assert_eq!(sniff_delimiter(b"single\ncolumn\n"), b',');
    }

    #[test]
    fn framing_quotes_and_cut_tails() {
        let records = frame(b"1,\"a\"\"b\nc\",x\"y\n\n2,3", b',', false).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].field(1), b"a\"b\nc");
        assert_eq!(records[0].field(2), b"x\"y");
        let err = frame(b"1,2\n3,\"open\n4,5\n", b',', true).unwrap_err();
        assert_eq!(err.line(), Some(2));
        assert!(frame(b"1,TV 55\" screen,100\n", b',', true).is_ok());
        // Lines inside quotes count towards the line an open quote is reported at.
        let err = frame(b"1,\"a\nb\"\r\n\n2,\"open\n", b',', true).unwrap_err();
        assert_eq!(err.line(), Some(4));
        assert!(!holds_a_record(b"1,\"a\nb", b','));
        assert!(holds_a_record(b"1,\"a\nb\"\n2", b','));
    }
}
