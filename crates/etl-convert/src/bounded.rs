//! A reader in front of the `csv` crate that keeps every record under `--max-record-bytes`:
//! an over-long record is cut short and closed, and remembered as a bad record.
//!
//! It follows the `csv` crate's framing (RFC 4180 quotes, `\r`, `\n` or `\r\n` ends a
//! record, blank lines skipped) so that it knows where each record starts and ends. Past
//! the limit it passes on only the newlines of the rest of the record (line numbers stay
//! right) and a closing quote if one is open, so the CSV reader never holds more than the
//! limit, however long the record.

use std::collections::VecDeque;
use std::io::Read;

/// Where the framing is, as in `csv_core`'s reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// A quote inside a quoted field: it closes the field unless another quote follows.
    QuoteInQuoted,
}

/// A record cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    /// Offset of its first byte in what this reader passed on.
    pub(crate) start: u64,
    /// Its physical line (1-based, counted in this reader's input).
    pub(crate) line: u64,
}

pub(crate) struct Bounded<R> {
    inner: R,
    input: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    /// Bytes passed on next (what a cut adds when the caller's buffer is full).
    pending: VecDeque<u8>,
    limit: u64,
    delimiter: u8,
    state: State,
    /// Cutting: the rest of the current record is dropped.
    skipping: bool,
    /// Content bytes of the current record so far.
    record_len: u64,
    record_start: u64,
    record_line: u64,
    /// Line of the next byte.
    line: u64,
    /// Bytes passed on so far.
    passed: u64,
    cuts: VecDeque<Cut>,
}

impl<R: Read> Bounded<R> {
    /// Records of `inner` longer than `limit` bytes are cut.
    pub(crate) fn new(inner: R, delimiter: u8, limit: u64) -> Self {
        Bounded {
            inner,
            input: vec![0; 64 * 1024],
            pos: 0,
            len: 0,
            eof: false,
            pending: VecDeque::new(),
            limit: limit.max(1),
            delimiter,
            state: State::StartRecord,
            skipping: false,
            record_len: 0,
            record_start: 0,
            record_line: 1,
            line: 1,
            passed: 0,
            cuts: VecDeque::new(),
        }
    }

    /// The limit in bytes.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether the record passed on in bytes `[start, end)` was cut: its line if so. Records
    /// must be asked about in order; cuts before `start` are forgotten.
    pub(crate) fn take_cut(&mut self, start: u64, end: u64) -> Option<u64> {
        while self.cuts.front().is_some_and(|c| c.start < start) {
            self.cuts.pop_front();
        }
        match self.cuts.front() {
            Some(cut) if cut.start < end => self.cuts.pop_front().map(|c| c.line),
            _ => None,
        }
    }

    /// Passes `byte` on: into `out` while it has room, else kept for the next read.
    fn emit(&mut self, out: &mut [u8], w: &mut usize, byte: u8) {
        if *w < out.len() {
            out[*w] = byte;
            *w += 1;
        } else {
            self.pending.push_back(byte);
        }
        self.passed += 1;
    }

    /// Frames the buffered input into `out` from `w` on, until either runs out.
    fn frame(&mut self, out: &mut [u8], mut w: usize) -> usize {
        while self.pos < self.len && w < out.len() {
            // Runs of plain content are found with memchr.
            if matches!(self.state, State::InField | State::InQuoted) {
                let rest = &self.input[self.pos..self.len];
                let found = if self.state == State::InField {
                    memchr::memchr3(self.delimiter, b'\n', b'\r', rest)
                } else {
                    memchr::memchr2(b'"', b'\n', rest)
                };
                let run = found.unwrap_or(rest.len());
                if self.skipping {
                    self.pos += run;
                } else {
                    let room = usize::try_from(self.limit.saturating_sub(self.record_len))
                        .unwrap_or(usize::MAX);
                    let keep = run.min(room).min(out.len() - w);
                    out[w..w + keep].copy_from_slice(&self.input[self.pos..self.pos + keep]);
                    w += keep;
                    self.pos += keep;
                    self.passed += keep as u64;
                    self.record_len += keep as u64;
                    if keep == room && keep < run {
                        self.cut(out, &mut w);
                    }
                    if keep < run {
                        continue;
                    }
                }
                if self.pos >= self.len {
                    break;
                }
            }
            let byte = self.input[self.pos];
            self.pos += 1;
            if self.state == State::StartRecord && byte != b'\n' && byte != b'\r' {
                self.state = State::StartField;
                self.record_len = 0;
                self.record_start = self.passed;
                self.record_line = self.line;
            }
            let (next, ends) = self.step(byte);
            let content = self.state != State::StartRecord && !ends;
            if content && !self.skipping && self.record_len >= self.limit {
                self.cut(out, &mut w);
            }
            if byte == b'\n' {
                self.line += 1;
            }
            if !self.skipping {
                self.emit(out, &mut w, byte);
            } else if ends {
                // The real end of the record closes the quote the cut opened.
                self.emit(out, &mut w, b'"');
                self.emit(out, &mut w, byte);
                self.skipping = false;
            } else if byte == b'\n' {
                // Inside that quote: line numbers stay those of the input.
                self.emit(out, &mut w, byte);
            }
            if content {
                self.record_len += 1;
            }
            self.state = next;
        }
        w
    }

    /// The next state after `byte`, and whether `byte` ends the record.
    fn step(&self, byte: u8) -> (State, bool) {
        let terminator = byte == b'\n' || byte == b'\r';
        match self.state {
            State::StartRecord => (State::StartRecord, false),
            State::StartField | State::InField | State::QuoteInQuoted if terminator => {
                (State::StartRecord, true)
            }
            State::StartField | State::InField | State::QuoteInQuoted if byte == self.delimiter => {
                (State::StartField, false)
            }
            State::StartField if byte == b'"' => (State::InQuoted, false),
            State::QuoteInQuoted if byte == b'"' => (State::InQuoted, false),
            State::StartField | State::InField | State::QuoteInQuoted => (State::InField, false),
            State::InQuoted if byte == b'"' => (State::QuoteInQuoted, false),
            State::InQuoted => (State::InQuoted, false),
        }
    }

    /// Cuts the current record at the content byte being read: the CSV reader is put
    /// inside a quoted field (a new one after a delimiter if need be), where the newlines
    /// of the rest of the record go, closed when the record really ends.
    fn cut(&mut self, out: &mut [u8], w: &mut usize) {
        match self.state {
            State::InQuoted => {}
            State::StartField | State::QuoteInQuoted => self.emit(out, w, b'"'),
            State::InField | State::StartRecord => {
                let delimiter = self.delimiter;
                self.emit(out, w, delimiter);
                self.emit(out, w, b'"');
            }
        }
        self.skipping = true;
        self.cuts.push_back(Cut {
            start: self.record_start,
            line: self.record_line,
        });
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut w = 0;
        while w < out.len() {
            if let Some(byte) = self.pending.pop_front() {
                out[w] = byte;
                w += 1;
                continue;
            }
            if self.pos == self.len {
                // Never wait for more input while something can be handed over.
                if self.eof || w > 0 {
                    break;
                }
                self.len = self.inner.read(&mut self.input)?;
                self.pos = 0;
                if self.len == 0 {
                    self.eof = true;
                    if std::mem::take(&mut self.skipping) {
                        self.emit(out, &mut w, b'"');
                    }
                }
                continue;
            }
            w = self.frame(out, w);
        }
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What passes, and the lines of the cut records.
    pub(super) fn pass(input: &[u8], limit: u64, read_size: usize) -> (String, Vec<u64>) {
        let mut bounded = Bounded::new(input, b',', limit);
        let mut out = Vec::new();
        let mut buf = vec![0u8; read_size];
        loop {
            let n = bounded.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let lines = bounded.cuts.iter().map(|c| c.line).collect();
        (String::from_utf8(out).unwrap(), lines)
    }

    /// Records as the csv crate reads what passes, with the cut lines it is told of.
    pub(super) fn records(input: &[u8], limit: u64) -> Vec<(u64, Option<u64>, Vec<String>)> {
        let bounded = Bounded::new(input, b',', limit);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(4)
            .from_reader(bounded);
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        while reader.read_byte_record(&mut record).unwrap() {
            let start = record.position().unwrap().byte();
            let end = reader.position().byte();
            let line = record.position().unwrap().line();
            let cut = reader.get_mut().take_cut(start, end);
            let fields = record
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            out.push((line, cut, fields));
        }
        out
    }

    #[test]
    fn short_records_pass_unchanged_whatever_the_read_size() {
        let input = b"a,b\r\n\"x\ny\",\"q\"\"\"\n\n3,TV 55\" set\r4,5";
        for size in [1, 2, 3, 7, 100] {
            let (out, cuts) = pass(input, 100, size);
            assert_eq!(out.as_bytes(), input);
            assert!(cuts.is_empty());
        }
    }

    #[test]
    fn a_long_unquoted_line_is_cut_and_named() {
        let long = "y".repeat(1000);
        let input = format!("1,a\n2,{long}\n3,c\n");
        for size in [1, 5, 64, 4096] {
            let (out, cuts) = pass(input.as_bytes(), 10, size);
            assert_eq!(out, "1,a\n2,yyyyyyyy,\"\"\n3,c\n", "read size {size}");
            assert_eq!(cuts, [2]);
        }
        let got = records(input.as_bytes(), 10);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].1, Some(2));
        assert_eq!(got[0].1, None);
        assert_eq!(got[2], (3, None, vec!["3".into(), "c".into()]));
    }

    #[test]
    fn a_long_quoted_field_across_lines_keeps_the_line_numbers() {
        let long = "z\n".repeat(500);
        let input = format!("1,a\n2,\"{long}\",x\n3,\"c\"\n");
        for size in [1, 3, 64, 4096] {
            let (out, cuts) = pass(input.as_bytes(), 20, size);
            assert_eq!(cuts, [2], "read size {size}");
            assert_eq!(out.matches('\n').count(), input.matches('\n').count());
        }
        let got = records(input.as_bytes(), 20);
        let cut: Vec<_> = got.iter().filter_map(|r| r.1).collect();
        assert_eq!(cut, [2]);
        let last = got.last().unwrap();
        assert_eq!(last.2, ["3", "c"]);
        assert_eq!(last.0, 503);
    }

    #[test]
    fn a_cut_at_a_quote_or_an_escaped_quote_stays_in_step() {
        for body in ["\"\"\"\"\"\"\"\"\"\"\"\"", "ab\"\"cd\"\"ef\"\"gh", "\"\"x"] {
            let input = format!("\"{body}\",1\nnext,2\n");
            for limit in 6..input.find('\n').unwrap() as u64 {
                let got = records(input.as_bytes(), limit);
                let last = got.last().unwrap();
                assert_eq!(last.2, ["next", "2"], "{body} limit {limit}");
                assert_eq!(last.1, None);
                assert_eq!(got.iter().filter(|r| r.1.is_some()).count(), 1);
            }
        }
    }

    #[test]
    fn an_unterminated_long_record_at_the_end() {
        let input = format!("1,a\n2,\"{}", "q".repeat(100));
        let got = records(input.as_bytes(), 10);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1, Some(2));
    }
}
