//! Where a chunk of CSV may end: the last newline outside quoted fields, found by jumping
//! from quote to quote under the `csv` crate's quoting rules, so chunks parse in parallel.

/// The end of the last whole record in `data`, which starts at a record boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    /// One past the newline ending the last record outside quotes, if any.
    pub(crate) end: Option<usize>,
    /// Position of the first quote that opens a quoted field, if any.
    pub(crate) first_open: Option<usize>,
}

/// Scans `data` for the last record boundary. A quote opens a field only at a field's
/// start (after the delimiter, a line end or at the start); inside a field `""` is a quote
/// and any other quote closes it, as the `csv` crate reads. A quote at the very end of
/// `data` may be the first half of `""`: the field counts as still open.
pub(crate) fn last_record_end(data: &[u8], delimiter: u8) -> Cut {
    let mut cut = Cut {
        end: None,
        first_open: None,
    };
    let mut quoted = false;
    // Start of the stretch outside quotes being scanned.
    let mut outside = 0;
    let mut pos = 0;
    while let Some(found) = memchr::memchr(b'"', &data[pos..]) {
        let quote = pos + found;
        if quoted {
            match data.get(quote + 1) {
                Some(b'"') => pos = quote + 2,
                Some(_) => {
                    quoted = false;
                    outside = quote + 1;
                    pos = quote + 1;
                }
                None => return cut,
            }
        } else {
            let starts_field = quote == 0 || {
                let before = data[quote - 1];
                before == b'\n' || before == b'\r' || before == delimiter
            };
            if starts_field {
                if let Some(newline) = memchr::memrchr(b'\n', &data[outside..quote]) {
                    cut.end = Some(outside + newline + 1);
                }
                cut.first_open.get_or_insert(quote);
                quoted = true;
            }
            pos = quote + 1;
        }
    }
    if !quoted && let Some(newline) = memchr::memrchr(b'\n', &data[outside..]) {
        cut.end = Some(outside + newline + 1);
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(text: &str) -> Option<usize> {
        last_record_end(text.as_bytes(), b',').end
    }

    #[test]
    fn plain_lines_end_at_the_last_newline() {
        assert_eq!(end("a,b\nc,d\ne"), Some(8));
        assert_eq!(end("a,b"), None);
        assert_eq!(last_record_end(b"a,b\n", b',').first_open, None);
    }

    #[test]
    fn newlines_inside_quotes_are_not_ends() {
        assert_eq!(end("1,\"x\ny\"\n2,\"p\nq"), Some(8));
        assert_eq!(end("1,\"x\ny\""), None);
        assert_eq!(end("1,\"a\"\"\nb\"\n"), Some(10));
        let cut = last_record_end(b"1,2\n3,\"x\"\n", b',');
        assert_eq!((cut.end, cut.first_open), (Some(10), Some(6)));
    }

    #[test]
    fn quotes_inside_unquoted_fields_are_text() {
        assert_eq!(end("5\" screen,a\nb,c\n"), Some(16));
        // After a closing quote the field goes on unquoted: its quotes are text.
        assert_eq!(end("\"a\"b\"\nc\n"), Some(8));
        assert_eq!(last_record_end(b"5\" x\n", b',').first_open, None);
    }

    #[test]
    fn a_quote_at_the_end_may_be_half_of_an_escape() {
        assert_eq!(end("1,2\n3,\"ab\""), Some(4));
        assert_eq!(end("1,2\n3;\"ab\"\n"), Some(11));
        assert_eq!(last_record_end(b"1,2\n3;\"ab\"", b';').end, Some(4));
        assert_eq!(last_record_end(b"1,2\n3;\"ab\"\n", b';').end, Some(11));
    }
}
