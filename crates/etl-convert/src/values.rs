//! The one rule set for values: null tokens, and what spelling is an integer, a float, a
//! boolean, a date or a timestamp. Inference, every decoding path and widening use it.

use arrow_schema::{DataType, TimeUnit};

/// The null tokens used unless `--null-values` replaces them.
/// `\N` is how MySQL and PostgreSQL dumps write NULL.
pub const DEFAULT_NULL_VALUES: [&str; 9] =
    ["", "NA", "N/A", "NULL", "null", "NaN", "nan", "#N/A", "\\N"];

/// The type class of a column, ordered so that widening only goes towards `Text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Only nulls seen so far.
    Null,
    /// `true`/`false` (any of three spellings).
    Boolean,
    /// 64-bit integer without leading zeros.
    Int64,
    /// 64-bit float.
    Float64,
    /// `YYYY-MM-DD`.
    Date,
    /// ISO 8601 timestamp without zone.
    Timestamp,
    /// ISO 8601 timestamp with `Z` or an offset, stored as UTC.
    TimestampUtc,
    /// Time of day `HH:MM[:SS[.fraction]]` (loggers write the date and the time apart).
    Time,
    /// Anything else.
    Text,
}

impl Kind {
    /// The narrowest kind holding both.
    pub fn merge(self, other: Kind) -> Kind {
        use Kind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Null, x) | (x, Null) => x,
            (Int64, Float64) | (Float64, Int64) => Float64,
            (Date, Timestamp) | (Timestamp, Date) => Timestamp,
            _ => Text,
        }
    }

    /// The Arrow type a column of this kind is written as (`Null` becomes text).
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Boolean => DataType::Boolean,
            Kind::Int64 => DataType::Int64,
            Kind::Float64 => DataType::Float64,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampUtc => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
            Kind::Null | Kind::Text => DataType::Utf8,
        }
    }

    /// The kind of an Arrow type this converter writes, if it is one.
    pub fn of(data_type: &DataType) -> Option<Kind> {
        Some(match data_type {
            DataType::Boolean => Kind::Boolean,
            DataType::Int64 => Kind::Int64,
            DataType::Float64 => Kind::Float64,
            DataType::Date32 => Kind::Date,
            DataType::Timestamp(TimeUnit::Microsecond, None) => Kind::Timestamp,
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Kind::TimestampUtc,
            DataType::Time64(TimeUnit::Microsecond) => Kind::Time,
            DataType::Utf8 => Kind::Text,
            _ => return None,
        })
    }

    /// The name used in schema files.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Boolean => "boolean",
            Kind::Int64 => "int64",
            Kind::Float64 => "float64",
            Kind::Date => "date",
            Kind::Timestamp => "timestamp",
            Kind::TimestampUtc => "timestamp_utc",
            Kind::Time => "time",
            Kind::Null | Kind::Text => "text",
        }
    }

    /// Parses a schema file's type name.
    pub fn from_name(name: &str) -> Option<Kind> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "boolean" | "bool" => Kind::Boolean,
            "int64" | "int" | "integer" => Kind::Int64,
            "float64" | "float" | "double" => Kind::Float64,
            "date" | "date32" => Kind::Date,
            "timestamp" => Kind::Timestamp,
            "timestamp_utc" | "timestamptz" => Kind::TimestampUtc,
            "time" | "time64" => Kind::Time,
            "text" | "string" | "utf8" => Kind::Text,
            _ => return None,
        })
    }
}

/// How values are spelled in one input.
#[derive(Debug, Clone)]
pub struct Values {
    nulls: Vec<Vec<u8>>,
    /// Bit per first byte of a non-empty null token: a quick "cannot be null".
    first_bytes: [bool; 256],
    /// Bit `n`: some non-empty null token is `n` bytes long (all of them below 64 bytes).
    null_lengths: u64,
    empty_is_null: bool,
    /// Some null token reads as a float other than NaN (`-999`, `inf`): a float that is
    /// not NaN may still be a null.
    numeric_nulls: bool,
    /// `3,50` is a number too.
    pub(crate) decimal_comma: bool,
}

impl Values {
    /// The rules for these null tokens.
    pub fn new(null_values: &[String], decimal_comma: bool) -> Values {
        let mut first_bytes = [false; 256];
        let mut nulls = Vec::new();
        let mut empty_is_null = false;
        for token in null_values {
            if token.is_empty() {
                empty_is_null = true;
                continue;
            }
            first_bytes[usize::from(token.as_bytes()[0])] = true;
            nulls.push(token.as_bytes().to_vec());
        }
        let null_lengths = nulls.iter().fold(0u64, |bits, n| {
            bits | 1u64.checked_shl(n.len() as u32).unwrap_or(0)
        });
        let long_nulls = nulls.iter().any(|n| n.len() >= 64);
        let mut values = Values {
            nulls,
            first_bytes,
            null_lengths: if long_nulls { u64::MAX } else { null_lengths },
            empty_is_null,
            decimal_comma,
            numeric_nulls: false,
        };
        values.numeric_nulls = values
            .nulls
            .iter()
            .any(|n| values.parse_f64(n).is_some_and(|v| !v.is_nan()));
        values
    }

    /// Whether a field is a null token.
    #[inline]
    pub fn is_null(&self, field: &[u8]) -> bool {
        match field.first() {
            None => self.empty_is_null,
            Some(first) => {
                // Lengths of 64 and more share the top bit.
                let length_bit = 1u64 << field.len().min(63);
                self.null_lengths & length_bit != 0
                    && self.first_bytes[usize::from(*first)]
                    && self.nulls.iter().any(|n| n == field)
            }
        }
    }

    /// Whether a field that reads as the float `value` may be a null token (most floats
    /// cannot: null tokens are rarely numbers, and the default ones read only as NaN).
    #[inline]
    pub(crate) fn float_may_be_null(&self, value: f64) -> bool {
        self.numeric_nulls || value.is_nan()
    }

    /// The narrowest kind of one field.
    pub fn classify(&self, field: &[u8]) -> Kind {
        if self.is_null(field) {
            return Kind::Null;
        }
        if parse_i64(field).is_some() {
            return Kind::Int64;
        }
        if looks_integer(field) {
            // Leading zeros or beyond i64: kept as written.
            return Kind::Text;
        }
        if self.parse_f64(field).is_some() {
            return Kind::Float64;
        }
        if parse_bool(field).is_some() {
            return Kind::Boolean;
        }
        if parse_date(field).is_some() {
            return Kind::Date;
        }
        if parse_time(field).is_some() {
            return Kind::Time;
        }
        match parse_timestamp(field) {
            Some((_, false)) => Kind::Timestamp,
            Some((_, true)) => Kind::TimestampUtc,
            None => Kind::Text,
        }
    }

    /// A float in decimal (`-1.5`, `.5`, `1e3`, `inf`), with a decimal comma where enabled.
    // Always inlined: LLVM keeps it out of the column fill loops otherwise, and the call
    // costs about a tenth of a float.
    #[inline(always)]
    pub fn parse_f64(&self, field: &[u8]) -> Option<f64> {
        let body = match field.first() {
            Some(b'-' | b'+') => &field[1..],
            _ => field,
        };
        let mut i = 0;
        // The digits as an integer (exact while at most 19 of them), for the fast path.
        let mut mantissa: u64 = 0;
        let int_start = i;
        while i < body.len() && body[i].is_ascii_digit() {
            mantissa = mantissa
                .wrapping_mul(10)
                .wrapping_add(u64::from(body[i] - b'0'));
            i += 1;
        }
        let int_digits = i - int_start;
        if int_digits > 1 && body[int_start] == b'0' {
            return None;
        }
        let mut comma_at = None;
        let mut frac_digits = 0;
        if i < body.len() && (body[i] == b'.' || (self.decimal_comma && body[i] == b',')) {
            if body[i] == b',' {
                comma_at = Some(i);
            }
            i += 1;
            let start = i;
            while i < body.len() && body[i].is_ascii_digit() {
                mantissa = mantissa
                    .wrapping_mul(10)
                    .wrapping_add(u64::from(body[i] - b'0'));
                i += 1;
            }
            frac_digits = i - start;
        }
        if int_digits + frac_digits == 0 {
            return parse_special_float(field);
        }
        if i == body.len()
            && int_digits + frac_digits <= 19
            && let Some(value) = exact_decimal(mantissa, frac_digits)
        {
            return Some(if field[0] == b'-' { -value } else { value });
        }
        if i < body.len() && matches!(body[i], b'e' | b'E') {
            i += 1;
            if i < body.len() && matches!(body[i], b'+' | b'-') {
                i += 1;
            }
            let start = i;
            while i < body.len() && body[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return None;
            }
        }
        if i != body.len() {
            return None;
        }
        let text = std::str::from_utf8(field).ok()?;
        match comma_at {
            None => text.parse().ok(),
            Some(_) => text.replacen(',', ".", 1).parse().ok(),
        }
    }
}

impl Default for Values {
    fn default() -> Self {
        let nulls: Vec<String> = DEFAULT_NULL_VALUES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        Values::new(&nulls, false)
    }
}

/// `mantissa / 10^frac_digits` when both are exact in an `f64` (Clinger's fast path): one
/// correctly rounded division, the same value `str::parse` gives, at a fraction of its cost.
#[inline]
fn exact_decimal(mantissa: u64, frac_digits: usize) -> Option<f64> {
    const POWERS: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    if mantissa > 1 << 53 {
        return None;
    }
    // Exact: the mantissa has at most 53 bits.
    #[allow(clippy::cast_precision_loss)]
    let value = mantissa as f64;
    Some(value / *POWERS.get(frac_digits)?)
}

fn parse_special_float(field: &[u8]) -> Option<f64> {
    let (negative, body) = match field.first() {
        Some(b'-') => (true, &field[1..]),
        Some(b'+') => (false, &field[1..]),
        _ => (false, field),
    };
    let value = if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        f64::INFINITY
    } else if body.eq_ignore_ascii_case(b"nan") {
        f64::NAN
    } else {
        return None;
    };
    Some(if negative { -value } else { value })
}

/// `[+-]?digits` of any length.
fn looks_integer(field: &[u8]) -> bool {
    let digits = match field.first() {
        Some(b'-' | b'+') => &field[1..],
        _ => field,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// `[+-]?digits` into an `i64`, without leading zeros (`007` stays text) or overflow.
#[inline]
pub fn parse_i64(field: &[u8]) -> Option<i64> {
    let (negative, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, field),
    };
    if digits.is_empty() || digits.len() > 19 || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    if digits.len() == 19 {
        return parse_i64_checked(negative, digits);
    }
    // At most 18 digits: below 10^18, no overflow to check.
    let mut value: i64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + i64::from(digit);
    }
    Some(if negative { -value } else { value })
}

/// 19 digits, near the ends of `i64`: accumulated negatively, where `i64::MIN` fits.
#[cold]
fn parse_i64_checked(negative: bool, digits: &[u8]) -> Option<i64> {
    let mut value: i64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(digit))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// `true`, `TRUE`, `True` and the same for false.
#[inline]
pub fn parse_bool(field: &[u8]) -> Option<bool> {
    match field {
        b"true" | b"TRUE" | b"True" => Some(true),
        b"false" | b"FALSE" | b"False" => Some(false),
        _ => None,
    }
}

fn digits2(b: &[u8]) -> Option<u32> {
    match b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(c - b'0'))
        }
        _ => None,
    }
}

/// Eight ASCII `0`s: subtracted from eight digits, their values.
const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// Whether every byte of `word` is an ASCII digit.
#[inline]
fn all_digits(word: u64) -> bool {
    // High nibble 3, and adding 6 does not carry out of the low nibble (no carry crosses
    // bytes once every byte is 0x30..=0x3f).
    (word & 0xF0F0_F0F0_F0F0_F0F0) == ASCII_ZEROS
        && (word.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) == ASCII_ZEROS
}

/// Byte `i` of the result is `10 d_i + d_(i+1)` for the digit values `d` in the bytes of
/// `digits` (at most 99: no carry between bytes).
#[inline]
fn pairs(digits: u64) -> u64 {
    digits * 10 + (digits >> 8)
}

/// Days from March 1 to the first of each month (index 1..=12): years counted from March
/// put the leap day last.
const DAYS_BEFORE_MONTH: [u32; 13] = [0, 306, 337, 0, 31, 61, 92, 122, 153, 184, 214, 245, 275];
/// Days in each month (index 1..=12), February's leap day included.
const MONTH_DAYS: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// `YYYY-MM-DD` into days since the epoch (proleptic Gregorian).
#[inline]
pub fn parse_date(field: &[u8]) -> Option<i32> {
    // `YYYY-MM-` as one word: the dashes are bytes 4 and 7.
    const DASHES: u64 = 0xFF00_00FF_0000_0000;
    let (Some(head), &[d1, d2]) = (field.first_chunk::<8>(), field.get(8..)?) else {
        return None;
    };
    let head = u64::from_le_bytes(*head);
    if head & DASHES != 0x2D00_002D_0000_0000 {
        return None;
    }
    let head = (head & !DASHES) | (ASCII_ZEROS & DASHES);
    if !all_digits(head) || !d1.is_ascii_digit() || !d2.is_ascii_digit() {
        return None;
    }
    let head = pairs(head - ASCII_ZEROS);
    let year = (head & 0xFF) as u32 * 100 + ((head >> 16) & 0xFF) as u32;
    let month = ((head >> 40) & 0xFF) as u32;
    let day = u32::from(d1 - b'0') * 10 + u32::from(d2 - b'0');
    if !(1..=12).contains(&month) || day == 0 || day > MONTH_DAYS[month as usize] {
        return None;
    }
    if month == 2 && day == 29 && !is_leap(year) {
        return None;
    }
    // Howard Hinnant's days_from_civil for years from March, shifted by one 400-year era
    // (146 097 days) so that they stay positive: the divisions become multiplications.
    let year = year + 400 - u32::from(month <= 2);
    let days =
        year * 365 + year / 4 - year / 100 + year / 400 + DAYS_BEFORE_MONTH[month as usize] + day
            - 1;
    // At most 3.8 million: exact in an `i32`.
    Some(days as i32 - (719_468 + 146_097))
}

/// A time of day `HH:MM[:SS[.fraction]]` into microseconds since midnight.
#[inline]
pub fn parse_time(field: &[u8]) -> Option<i64> {
    if field.len() < 5 || field[2] != b':' {
        return None;
    }
    let hour = digits2(&field[0..2])?;
    let minute = digits2(&field[3..5])?;
    let mut second = 0;
    let mut micros: i64 = 0;
    let mut i = 5;
    if field.len() > 5 {
        if field[5] != b':' {
            return None;
        }
        second = digits2(field.get(6..8)?)?;
        i = 8;
        if field.len() > 8 {
            if field[8] != b'.' {
                return None;
            }
            i = 9;
            let mut scale = 100_000;
            while i < field.len() && field[i].is_ascii_digit() {
                micros += i64::from(field[i] - b'0') * scale;
                scale /= 10;
                i += 1;
            }
            if i == 9 {
                return None;
            }
        }
    }
    if i != field.len() || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(i64::from(hour * 3600 + minute * 60 + second) * 1_000_000 + micros)
}

/// ISO 8601 `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]]` with an optional `Z` or `±HH[:MM]`, into
/// microseconds since the epoch (UTC when zoned) and whether a zone was given.
#[inline]
pub fn parse_timestamp(field: &[u8]) -> Option<(i64, bool)> {
    if field.len() < 16 || !matches!(field[10], b'T' | b't' | b' ') {
        return None;
    }
    let days = i64::from(parse_date(&field[..10])?);
    let (hour, minute, second, mut i) = match field.get(11..19) {
        Some(&[h1, h2, b':', m1, m2, b':', s1, s2]) => {
            let clock = u64::from_le_bytes([h1, h2, b'0', m1, m2, b'0', s1, s2]);
            if !all_digits(clock) {
                return None;
            }
            let clock = pairs(clock - ASCII_ZEROS);
            (
                (clock & 0xFF) as u32,
                ((clock >> 24) & 0xFF) as u32,
                ((clock >> 48) & 0xFF) as u32,
                19,
            )
        }
        _ => {
            let hour = digits2(&field[11..13])?;
            if field[13] != b':' {
                return None;
            }
            let minute = digits2(&field[14..16])?;
            // `HH:MM:S` or shorter seconds.
            if field.get(16) == Some(&b':') {
                return None;
            }
            (hour, minute, 0, 16)
        }
    };
    let mut micros: i64 = 0;
    if i == 19 && matches!(field.get(i), Some(b'.' | b',')) {
        i += 1;
        let start = i;
        while i < field.len() && field[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(field[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        // Digits beyond the sixth are dropped.
        micros *= [100_000, 10_000, 1_000, 100, 10, 1][(i - start).min(6) - 1];
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &field[i..];
    if let Some(stripped) = rest.strip_prefix(b" ") {
        rest = stripped;
    }
    let offset_seconds: Option<i64> = match rest {
        [] => None,
        b"Z" | b"z" | b"UTC" => Some(0),
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (h, m) = match tail {
                [h1, h2] => (digits2(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits2(&[*h1, *h2])?, digits2(&[*m1, *m2])?)
                }
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = i64::from(h * 3600 + m * 60);
            Some(if *sign == b'-' { -seconds } else { seconds })
        }
        _ => return None,
    };
    let seconds =
        days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_seconds.unwrap_or(0);
    Some((seconds * 1_000_000 + micros, offset_seconds.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_values() {
        let v = Values::default();
        let cases: [(&[u8], Kind); 27] = [
            (b"1", Kind::Int64),
            (b"-42", Kind::Int64),
            (b"0", Kind::Int64),
            (b"007", Kind::Text),
            (b"02134", Kind::Text),
            (b"99999999999999999999", Kind::Text),
            (b"1.5", Kind::Float64),
            (b"1e3", Kind::Float64),
            (b"-inf", Kind::Float64),
            (b"3,50", Kind::Text),
            (b"true", Kind::Boolean),
            (b"FALSE", Kind::Boolean),
            (b"True", Kind::Boolean),
            (b"tRUE", Kind::Text),
            (b"2024-02-29", Kind::Date),
            (b"2023-02-29", Kind::Text),
            (b"2013-01-01T10:00:00Z", Kind::TimestampUtc),
            (b"2013-01-01 10:00:00.123+02:00", Kind::TimestampUtc),
            (b"2013-01-01 10:00:00.5", Kind::Timestamp),
            (b"NA", Kind::Null),
            (b"#N/A", Kind::Null),
            (b"\\N", Kind::Null),
            (b"10:30:00", Kind::Time),
            (b"23:59", Kind::Time),
            (b"07:05:09.25", Kind::Time),
            (b"24:00:00", Kind::Text),
            (b"", Kind::Null),
        ];
        for (field, kind) in cases {
            assert_eq!(
                v.classify(field),
                kind,
                "{}",
                String::from_utf8_lossy(field)
            );
        }
        let comma = Values::new(&[String::new()], true);
        assert_eq!(comma.parse_f64(b"3,50"), Some(3.5));
        assert_eq!(comma.classify(b"NA"), Kind::Text);
    }

    #[test]
    fn floats_match_the_standard_parser() {
        let v = Values::default();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut cases: Vec<String> = [
            "0.1",
            "-0.0",
            "0.0",
            ".5",
            "5.",
            "-.5",
            "+1.25",
            "9007199254740993.0",
            "9007199254740992",
            "123456789012345678.9",
            "1234567890123456789.0",
            "0.30000000000000004",
            "1e22",
            "1.5e-7",
            "12345.678901234567890",
            "0.0000000000000000000001",
            "1.7976931348623157",
            "4.9406564584124654",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for _ in 0..200_000 {
            let int = next() % 10u64.pow((next() % 12) as u32 + 1);
            let frac_len = (next() % 20) as usize;
            let frac: String = (0..frac_len)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect();
            let sign = ["", "-", "+"][(next() % 3) as usize];
            cases.push(format!("{sign}{int}.{frac}"));
        }
        for case in cases {
            let ours = v.parse_f64(case.as_bytes()).map(f64::to_bits);
            let std = case.parse::<f64>().ok().map(f64::to_bits);
            assert_eq!(ours, std, "{case}");
        }
    }

    #[test]
    fn timestamps_to_micros() {
        assert_eq!(parse_date(b"1970-01-02"), Some(1));
        assert_eq!(parse_date(b"1969-12-31"), Some(-1));
        assert_eq!(
            parse_timestamp(b"2013-01-01T10:00:00Z"),
            Some((1_357_034_400_000_000, true))
        );
        assert_eq!(
            parse_timestamp(b"2013-01-01T12:00:00.25+02:00"),
            Some((1_357_034_400_250_000, true))
        );
        assert_eq!(
            parse_timestamp(b"2013-01-01 10:00"),
            Some((1_357_034_400_000_000, false))
        );
        assert_eq!(parse_timestamp(b"2013-01-01 25:00"), None);
        assert_eq!(parse_time(b"01:02:03.5"), Some(3_723_500_000));
        assert_eq!(parse_time(b"00:00"), Some(0));
        assert_eq!(parse_time(b"1:02:03"), None);
        assert_eq!(parse_time(b"10:30:0"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
    }

    #[test]
    fn integers_at_the_edges() {
        let cases: [(&str, Option<i64>); 22] = [
            ("999999999999999999", Some(999_999_999_999_999_999)),
            ("-999999999999999999", Some(-999_999_999_999_999_999)),
            ("+999999999999999999", Some(999_999_999_999_999_999)),
            ("1000000000000000000", Some(1_000_000_000_000_000_000)),
            ("-1000000000000000000", Some(-1_000_000_000_000_000_000)),
            ("9223372036854775807", Some(i64::MAX)),
            ("+9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("9999999999999999999", None),
            ("12345678901234567890", None),
            ("922337203685477580x", None),
            ("12345678901234567x", None),
            ("0", Some(0)),
            ("-0", Some(0)),
            ("+0", Some(0)),
            ("+", None),
            ("-", None),
            ("+-1", None),
            ("01", None),
            ("-01", None),
        ];
        for (text, value) in cases {
            assert_eq!(parse_i64(text.as_bytes()), value, "{text}");
        }
    }

    #[test]
    fn dates_at_the_edges() {
        let cases: [(&str, Option<i32>); 24] = [
            ("1970-01-01", Some(0)),
            ("2000-02-29", Some(11_016)),
            ("2024-02-29", Some(19_782)),
            ("2023-02-29", None),
            ("1900-02-29", None),
            ("2023-02-28", Some(19_416)),
            ("2023-03-01", Some(19_417)),
            ("2023-04-31", None),
            ("2023-12-31", Some(19_722)),
            ("0000-01-01", Some(-719_528)),
            ("0000-02-29", Some(-719_469)),
            ("0000-03-01", Some(-719_468)),
            ("9999-12-31", Some(2_932_896)),
            ("2023-00-10", None),
            ("2023-13-10", None),
            ("2023-01-00", None),
            ("2023-01-32", None),
            ("2023/01/01", None),
            ("2023-1-01", None),
            ("2023-01-1", None),
            ("2023-01-011", None),
            ("+023-01-01", None),
            ("2023-0a-01", None),
            ("2023-01-0:", None),
        ];
        for (text, days) in cases {
            assert_eq!(parse_date(text.as_bytes()), days, "{text}");
        }
        assert_eq!(
            parse_timestamp(b"9999-12-31T23:59:60.9999999+23:59"),
            Some((253_402_214_460_999_999, true))
        );
        assert_eq!(
            parse_timestamp(b"0000-01-01 00:00:00,5"),
            Some((-62_167_219_199_500_000, false))
        );
        assert_eq!(parse_timestamp(b"2024-02-29T12:00:0"), None);
        assert_eq!(parse_timestamp(b"2023-02-29T12:00:00"), None);
        assert_eq!(parse_timestamp(b"2024-01-01T12:60:00"), None);
        assert_eq!(parse_timestamp(b"2024-01-01T12:00:61"), None);
        assert_eq!(parse_timestamp(b"2024-01-01T1a:00:00"), None);
        assert_eq!(parse_timestamp(b"2024-01-01T12:00:00."), None);
    }

    #[test]
    fn merging_widens() {
        assert_eq!(Kind::Int64.merge(Kind::Float64), Kind::Float64);
        assert_eq!(Kind::Null.merge(Kind::Date), Kind::Date);
        assert_eq!(Kind::Date.merge(Kind::Timestamp), Kind::Timestamp);
        assert_eq!(Kind::Date.merge(Kind::TimestampUtc), Kind::Text);
        assert_eq!(Kind::Int64.merge(Kind::Boolean), Kind::Text);
        assert_eq!(Kind::Time.merge(Kind::Null), Kind::Time);
        assert_eq!(Kind::Time.merge(Kind::Timestamp), Kind::Text);
    }
}
