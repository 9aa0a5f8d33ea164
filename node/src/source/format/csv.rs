//! Comma-separated values with a header line (`import csv`).
//!
//! Records are split by the `csv` crate (RFC 4180): quoted fields may hold
//! commas, doubled quotes and line breaks. Nothing is dropped for its type:
//!
//! - Column types are inferred over an inference window: the first
//!   [`WINDOW_ROWS`] records or [`WINDOW_BYTES`] of cell text, whichever ends
//!   first. Each column gets the narrowest kind that holds every non-empty
//!   cell of the window, widening along `count → int → real` and from any
//!   other mismatch (address, subnet, time, bool, numbers mixed with them) to
//!   `string`. A column that is empty throughout the window is a string.
//! - After the window, a cell that does not fit its column widens that column
//!   the same way from that record on: the rows already emitted keep their
//!   types, and later rows go into a new schema of the same name with the
//!   widened column (so a schema name may have several layouts, as with JSON).
//!   A column only ever widens, so an input yields a handful of layouts at most.
//! - Empty cells are null in typed columns and empty strings in string columns.
//!   Text cells are stored as written; numbers, addresses and times are parsed
//!   from the cell with surrounding blanks trimmed.
//!
//! A record is skipped only for a real syntax error: a field count that differs
//! from the header's (an unterminated quote shows up as this, swallowing the
//! lines up to the end of input, which the message names), or cells that are
//! not UTF-8. Skips are counted and reported with their line numbers.

use super::util::{
    infer_str, parse_addr, parse_f64, parse_i64, parse_iso_time, parse_subnet, parse_u64, Inferred,
    Sink,
};
use crate::data::{Batch, Field, Schema, Type};
use crate::source::{ReadError, ReadStats, Reader};
use csv::ByteRecord;
use std::io::BufRead;

/// Records in the inference window. Inference costs about one parse per cell
/// more than streaming, and the buffered records are held in memory; 10,000
/// rows of a typical flow log are a few MiB and cover the oddities (MAC
/// addresses among IPs, negative counters) that the first rows rarely show.
pub(crate) const WINDOW_ROWS: usize = 10_000;

/// Cell bytes buffered in the inference window at most, so that very wide
/// records do not make the window unbounded.
pub(crate) const WINDOW_BYTES: usize = 16 << 20;

/// The input, keeping the bytes of the latest records: the csv crate ends a
/// quoted field that is never closed at the end of input without saying so,
/// and only the raw text of the last record tells.
struct Tail {
    input: Box<dyn BufRead + Send>,
    /// Input bytes from offset `start` on.
    kept: Vec<u8>,
    start: u64,
    eof: bool,
}

impl Tail {
    /// Drops kept bytes before offset `at` (lazily, to copy little).
    fn forget_before(&mut self, at: u64) {
        let n = (at.saturating_sub(self.start) as usize).min(self.kept.len());
        if n >= 1 << 20 {
            self.kept.drain(..n);
            self.start += n as u64;
        }
    }

    /// The kept bytes from offset `at` to the end.
    fn since(&self, at: u64) -> &[u8] {
        let i = (at.saturating_sub(self.start) as usize).min(self.kept.len());
        &self.kept[i..]
    }

    fn end(&self) -> u64 {
        self.start + self.kept.len() as u64
    }
}

impl std::io::Read for Tail {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.kept.extend_from_slice(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        Ok(n)
    }
}

/// Whether raw CSV text ends inside a quoted field (RFC 4180 as the csv crate
/// reads it: a quote opens a field only at its start, `""` inside is a quote).
fn ends_in_quote(raw: &[u8]) -> bool {
    let (mut quoted, mut at_start) = (false, true);
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if quoted {
            if c == b'"' {
                if raw.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                }
            }
        } else if c == b'"' && at_start {
            quoted = true;
            at_start = false;
        } else {
            at_start = matches!(c, b',' | b'\n' | b'\r');
        }
        i += 1;
    }
    quoted
}

/// Reader of CSV with a header line.
pub struct CsvReader {
    input: csv::Reader<Tail>,
    sink: Sink,
    name: String,
    header: Option<Vec<String>>,
    /// Records of the inference window, with their first line numbers.
    window: Vec<(u64, ByteRecord)>,
    window_bytes: usize,
    /// Column kinds and their builder, once the window is over.
    layout: Option<(Vec<Kind>, usize)>,
    record: ByteRecord,
    /// A read error, kept so it surfaces after everything decoded before it.
    error: Option<ReadError>,
    eof: bool,
    finished: bool,
    window_rows: usize,
    window_max_bytes: usize,
}

impl CsvReader {
    /// `schema` names the events (default `csv`).
    pub fn new(input: Box<dyn BufRead + Send>, schema: Option<String>) -> Self {
        Self::with_window(input, schema, WINDOW_ROWS, WINDOW_BYTES)
    }

    /// A reader with an inference window of `rows` records or `bytes` of cell text.
    pub(crate) fn with_window(
        input: Box<dyn BufRead + Send>,
        schema: Option<String>,
        rows: usize,
        bytes: usize,
    ) -> Self {
        let input = csv::ReaderBuilder::new()
            .has_headers(false)
            // Field counts are checked here, so that a bad record is skipped
            // and reported instead of ending the input.
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(Tail {
                input,
                kept: Vec::new(),
                start: 0,
                eof: false,
            });
        CsvReader {
            input,
            sink: Sink::new("csv reader"),
            name: schema.unwrap_or_else(|| "csv".into()),
            header: None,
            window: Vec::new(),
            window_bytes: 0,
            layout: None,
            record: ByteRecord::new(),
            error: None,
            eof: false,
            finished: false,
            window_rows: rows.max(1),
            window_max_bytes: bytes,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Only empty cells so far.
    Null,
    Bool,
    Count,
    Int,
    Real,
    Addr,
    Subnet,
    Time,
    Str,
}

impl Kind {
    fn ty(self) -> Type {
        match self {
            Kind::Bool => Type::Bool,
            Kind::Count => Type::Count,
            Kind::Int => Type::Int,
            Kind::Real => Type::Real,
            Kind::Addr => Type::Address,
            Kind::Subnet => Type::Subnet,
            Kind::Time => Type::Time,
            Kind::Null | Kind::Str => Type::String,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "bool",
            Kind::Count => "count",
            Kind::Int => "int",
            Kind::Real => "real",
            Kind::Addr => "address",
            Kind::Subnet => "subnet",
            Kind::Time => "time",
            Kind::Str => "string",
        }
    }

    /// The narrowest kind holding values of both.
    fn join(self, other: Kind) -> Kind {
        use Kind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Null, k) | (k, Null) => k,
            (Count, Int) | (Int, Count) => Int,
            (Count | Int, Real) | (Real, Count | Int) => Real,
            _ => Str,
        }
    }

    /// One step wider, for a value that its joined kind still cannot hold
    /// (a count above the int range).
    fn wider(self) -> Kind {
        match self {
            Kind::Count => Kind::Int,
            Kind::Int => Kind::Real,
            _ => Kind::Str,
        }
    }
}

/// Numeric text only: `parse_f64` alone would take `inf` or `NaN`, which are
/// words here, as in the column's other cells.
fn is_real(t: &[u8]) -> bool {
    !t.is_empty()
        && t.iter().any(u8::is_ascii_digit)
        && t.iter().all(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
        && parse_f64(t).is_some()
}

/// The narrowest kind of a trimmed cell.
fn infer(t: &[u8]) -> Kind {
    if t.is_empty() {
        Kind::Null
    } else if t == b"true" || t == b"false" {
        Kind::Bool
    } else if parse_u64(t).is_some() {
        Kind::Count
    } else if parse_i64(t).is_some() {
        Kind::Int
    } else if is_real(t) {
        Kind::Real
    } else {
        match infer_str(t) {
            Some(Inferred::Address(_)) => Kind::Addr,
            Some(Inferred::Subnet(_)) => Kind::Subnet,
            Some(Inferred::Time(_)) => Kind::Time,
            None => Kind::Str,
        }
    }
}

/// Whether a column of kind `k` holds the trimmed cell `t`.
fn fits(k: Kind, t: &[u8]) -> bool {
    if t.is_empty() {
        return true;
    }
    match k {
        Kind::Null => false,
        Kind::Bool => t == b"true" || t == b"false",
        Kind::Count => parse_u64(t).is_some(),
        Kind::Int => parse_i64(t).is_some(),
        Kind::Real => is_real(t),
        Kind::Addr => parse_addr(t).is_some(),
        Kind::Subnet => parse_subnet(t).is_some(),
        Kind::Time => parse_iso_time(t).is_some(),
        Kind::Str => true,
    }
}

/// The kind a column of kind `k` becomes to hold the trimmed cell `t`.
fn widen(k: Kind, t: &[u8]) -> Kind {
    let mut k = k.join(infer(t));
    while !fits(k, t) {
        k = k.wider();
    }
    k
}

/// A cell as UTF-8 (checked for the whole record before anything is pushed).
fn text(cell: &[u8]) -> &str {
    std::str::from_utf8(cell).unwrap_or_default()
}

fn push(b: &mut crate::data::BatchBuilder, i: usize, k: Kind, cell: &[u8]) {
    let c = b.column(i);
    let t = cell.trim_ascii();
    if k == Kind::Str || k == Kind::Null {
        return c.push_str(text(cell));
    }
    if t.is_empty() {
        return c.push_null();
    }
    // The layout was widened until every cell of the record fits.
    match k {
        Kind::Bool => c.push_bool(t == b"true"),
        Kind::Count => c.push_count(parse_u64(t).unwrap_or_default()),
        Kind::Int => c.push_int(parse_i64(t).unwrap_or_default()),
        Kind::Real => c.push_real(parse_f64(t).unwrap_or_default()),
        Kind::Addr => c.push_address(parse_addr(t).unwrap_or_default()),
        Kind::Subnet => c.push_subnet(parse_subnet(t).unwrap_or_default()),
        Kind::Time => c.push_time(parse_iso_time(t).unwrap_or_default()),
        Kind::Null | Kind::Str => unreachable!("handled above"),
    }
}

impl CsvReader {
    /// Reads the next record into `self.record`; `false` at the end of input
    /// or on a read error (kept in `self.error`).
    fn next_record(&mut self) -> bool {
        if self.eof {
            return false;
        }
        match self.input.read_byte_record(&mut self.record) {
            Ok(true) => true,
            Ok(false) => {
                self.eof = true;
                false
            }
            Err(e) => {
                self.eof = true;
                let line = self.input.position().line();
                tracing::warn!("csv reader: input ended with an error at line {line}: {e}");
                self.error = Some(match e.into_kind() {
                    csv::ErrorKind::Io(e) => ReadError::Io(e),
                    k => ReadError::Other(format!("csv input error at line {line}: {k:?}")),
                });
                false
            }
        }
    }

    /// First and last line of the record just read.
    fn lines(&self) -> (u64, u64) {
        let (start, line) = self
            .record
            .position()
            .map_or((0, 0), |p| (p.byte(), p.line()));
        let tail = self.input.get_ref();
        // The csv crate places a record at the end of the previous one, before
        // any blank lines it skipped.
        let blank = tail
            .since(start)
            .iter()
            .take_while(|c| matches!(c, b'\r' | b'\n'));
        let first = line + blank.filter(|c| **c == b'\n').count() as u64;
        // The reader stands on the line after the record's terminator, or on
        // the record's last line where the input ends without one.
        let next = self.input.position().line();
        let end = self.input.position().byte();
        let unterminated =
            tail.eof && end == tail.end() && tail.kept.last().is_some_and(|c| *c != b'\n');
        let last = if unterminated {
            next
        } else {
            next.saturating_sub(1)
        };
        (first, last.max(first))
    }

    /// Takes the header from `self.record`.
    fn header(&mut self, line: u64) -> Result<(), ReadError> {
        let mut names = Vec::with_capacity(self.record.len());
        for (i, cell) in self.record.iter().enumerate() {
            // A UTF-8 byte order mark is not part of the first name.
            let cell = if i == 0 {
                cell.strip_prefix(b"\xef\xbb\xbf").unwrap_or(cell)
            } else {
                cell
            };
            let Ok(name) = std::str::from_utf8(cell) else {
                return Err(ReadError::WrongFormat(format!(
                    "input is not csv: header line {line} is not utf-8 text"
                )));
            };
            let name = name.trim();
            if name.is_empty() || name.contains(['\0', '\n', '\r']) {
                return Err(ReadError::WrongFormat(format!(
                    "input is not csv: header line {line} has an empty or multi-line column name (column {})",
                    i + 1
                )));
            }
            if names.iter().any(|n| n == name) {
                return Err(ReadError::WrongFormat(format!(
                    "csv header line {line} names column {name:?} twice"
                )));
            }
            names.push(name.to_string());
        }
        self.header = Some(names);
        Ok(())
    }

    /// Checks the record just read; `false` (after counting and reporting it)
    /// when it must be skipped.
    fn valid(&mut self, expected: usize) -> bool {
        let (first, last) = self.lines();
        let at = Span(first, last);
        let start = self.record.position().map_or(0, |p| p.byte());
        let end = self.input.position().byte();
        let tail = self.input.get_ref();
        // Only a record that runs to the end of input can hold an open quote.
        if tail.eof && end == tail.end() && ends_in_quote(tail.since(start)) {
            self.sink.skip(
                first,
                format_args!("unterminated quote runs to the end of input{at}"),
            );
            return false;
        }
        self.input.get_mut().forget_before(end);
        if self.record.len() != expected {
            let got = self.record.len();
            self.sink.skip(
                first,
                format_args!("expected {expected} fields but got {got}{at}"),
            );
            return false;
        }
        if let Some(i) = self
            .record
            .iter()
            .position(|c| std::str::from_utf8(c).is_err())
        {
            let name = &self.header.as_ref().expect("header read")[i];
            self.sink
                .skip(first, format_args!("field {name} is not valid utf-8{at}"));
            return false;
        }
        true
    }

    fn schema(&self, kinds: &[Kind]) -> Schema {
        let header = self.header.as_ref().expect("header read");
        let fields = header
            .iter()
            .zip(kinds)
            .map(|(n, k)| Field::new(n.clone(), k.ty()))
            .collect();
        Schema::new(self.name.clone(), fields)
    }

    /// Ends the window: infers the layout and emits the buffered records.
    fn close_window(&mut self) {
        let n = self.header.as_ref().map_or(0, Vec::len);
        let mut kinds = vec![Kind::Null; n];
        for (_, rec) in &self.window {
            for (k, cell) in kinds.iter_mut().zip(rec.iter()) {
                let t = cell.trim_ascii();
                if !fits(*k, t) {
                    *k = widen(*k, t);
                }
            }
        }
        // A column with no value in the window is text until shown otherwise.
        for k in &mut kinds {
            if *k == Kind::Null {
                *k = Kind::Str;
            }
        }
        let idx = self.sink.builder_for(self.schema(&kinds));
        for (_, rec) in std::mem::take(&mut self.window) {
            let b = self.sink.builder(idx);
            for (i, cell) in rec.iter().enumerate() {
                push(b, i, kinds[i], cell);
            }
            self.sink.commit(idx);
        }
        self.window_bytes = 0;
        self.layout = Some((kinds, idx));
    }

    /// Emits `self.record` after the window, widening the layout if a cell
    /// does not fit it.
    fn stream(&mut self, line: u64) {
        let (mut kinds, mut idx) = self.layout.take().expect("window closed");
        if let Some(first) = self
            .record
            .iter()
            .zip(&kinds)
            .position(|(c, k)| !fits(*k, c.trim_ascii()))
        {
            let header = self.header.as_ref().expect("header read");
            for (i, cell) in self.record.iter().enumerate().skip(first) {
                let t = cell.trim_ascii();
                if fits(kinds[i], t) {
                    continue;
                }
                let to = widen(kinds[i], t);
                tracing::warn!(
                    "csv reader: line {line}: column {} holds {:?}, which is not a {}; \
                     it is a {} from here on (earlier rows keep their type)",
                    header[i],
                    text(t),
                    kinds[i].name(),
                    to.name()
                );
                kinds[i] = to;
            }
            // Rows of the old layout come out before those of the new one.
            self.sink.flush_builder(idx);
            idx = self.sink.builder_for(self.schema(&kinds));
        }
        let b = self.sink.builder(idx);
        for (i, cell) in self.record.iter().enumerate() {
            push(b, i, kinds[i], cell);
        }
        self.sink.commit(idx);
        self.layout = Some((kinds, idx));
    }

    /// Handles the record just read.
    fn record(&mut self) -> Result<(), ReadError> {
        let (line, _) = self.lines();
        // A blank line (or one of blanks only) is no record.
        if self.record.len() == 1 && self.record[0].trim_ascii().is_empty() {
            return Ok(());
        }
        let Some(header) = &self.header else {
            return self.header(line);
        };
        if !self.valid(header.len()) {
            return Ok(());
        }
        if self.layout.is_some() {
            self.stream(line);
            return Ok(());
        }
        self.window_bytes += self.record.as_slice().len();
        self.window.push((line, self.record.clone()));
        if self.window.len() >= self.window_rows || self.window_bytes >= self.window_max_bytes {
            self.close_window();
        }
        Ok(())
    }
}

/// ` (record spans lines a-b)` for a record of several lines, for messages.
struct Span(u64, u64);

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.1 > self.0 {
            write!(f, " (record spans lines {}-{})", self.0, self.1)
        } else {
            Ok(())
        }
    }
}

impl Reader for CsvReader {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<Batch>>, ReadError> {
        if self.finished {
            return Ok(None);
        }
        self.sink.set_batch_size(batch_size);
        while self.next_record() {
            if let Err(e) = self.record() {
                self.finished = true;
                return Err(e);
            }
            let out = self.sink.take_out();
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
        // End of input (or a read error): a short input never fills the window.
        if self.layout.is_none() && !self.window.is_empty() {
            self.close_window();
        }
        let out = self.sink.take_all();
        if !out.is_empty() {
            return Ok(Some(out));
        }
        self.finished = true;
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    fn stats(&self) -> ReadStats {
        self.sink.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{make_reader, Format, ReaderOptions};
    use super::*;
    use crate::data::{Address, Type, Value};
    use crate::source::ReadError;
    use std::io::Cursor;

    fn csv_reader(text: &str, rows: usize) -> CsvReader {
        CsvReader::with_window(
            Box::new(Cursor::new(text.as_bytes().to_vec())),
            Some("t.csv".into()),
            rows,
            WINDOW_BYTES,
        )
    }

    fn types(b: &Batch) -> Vec<Type> {
        b.schema.fields.iter().map(|f| f.ty.clone()).collect()
    }

    #[test]
    fn quoting_inference_and_bad_rows() {
        let text = "a,b,c,d,e\n1,-2,\"x, \"\"y\"\"\",10.0.0.1,2020-01-01T00:00:00Z\n\
                    2,3,plain,,\n3,4,z,1.1.1.1,2020-01-01\n4,5\n5,6,\"open,1.1.1.1,2020-01-01\n";
        let opts = ReaderOptions {
            schema: Some("t.csv".into()),
            ..Default::default()
        };
        let mut r = make_reader(
            Format::Csv,
            Box::new(Cursor::new(text.as_bytes().to_vec())),
            &opts,
        )
        .unwrap();
        let (bs, err) = read_all(r.as_mut(), 10);
        assert!(err.is_none());
        assert_eq!(r.stats().events, 3);
        // The short row, and the unterminated quote that runs to the end.
        assert_eq!(r.stats().skipped, 2);
        let b = &bs[0];
        assert_eq!(b.schema.name, "t.csv");
        assert_eq!(
            types(b),
            [
                Type::Count,
                Type::Int,
                Type::String,
                Type::Address,
                Type::Time
            ]
        );
        assert_eq!(field(b, 0, "c"), Value::String("x, \"y\"".into()));
        assert_eq!(
            field(b, 0, "d"),
            Value::Address(Address::parse("10.0.0.1").unwrap())
        );
        assert_eq!(field(b, 1, "b"), Value::Int(3));
        assert_eq!(field(b, 1, "d"), Value::Null);
    }

    #[test]
    fn quoted_newlines_and_doubled_quotes() {
        let text = "id,msg,n\r\n1,\"two\nlines\",7\r\n2,\"say \"\"hi\"\"\r\nand, bye\",8\r\n\n3,plain,9\r\n";
        let mut r = csv_reader(text, 100);
        let (bs, err) = read_all(&mut r, 10);
        assert!(err.is_none());
        assert_eq!(r.stats().events, 3);
        assert_eq!(r.stats().skipped, 0);
        let b = &bs[0];
        assert_eq!(types(b), [Type::Count, Type::String, Type::Count]);
        assert_eq!(field(b, 0, "msg"), Value::String("two\nlines".into()));
        assert_eq!(
            field(b, 1, "msg"),
            Value::String("say \"hi\"\r\nand, bye".into())
        );
        assert_eq!(field(b, 2, "n"), Value::Count(9));
    }

    #[test]
    fn window_widens_columns() {
        // Within the window: counts, then a negative, then a fraction; an
        // address column meets a MAC address; a time column meets a word.
        let text = "n,a,t,e\n1,10.0.0.1,2020-01-01,\n-2,00:22:2d:81:db:10,2020-01-02,\n\
                    2.5,::1,later,\n18446744073709551615,1.1.1.1,2020-01-03,\n";
        let mut r = csv_reader(text, 100);
        let (bs, err) = read_all(&mut r, 10);
        assert!(err.is_none());
        assert_eq!(bs.len(), 1, "one layout for the whole window");
        let b = &bs[0];
        assert_eq!(
            types(b),
            [Type::Real, Type::String, Type::String, Type::String]
        );
        assert_eq!(field(b, 1, "n"), Value::Real(-2.0));
        assert_eq!(field(b, 2, "n"), Value::Real(2.5));
        assert_eq!(field(b, 1, "a"), Value::String("00:22:2d:81:db:10".into()));
        assert_eq!(field(b, 0, "t"), Value::String("2020-01-01".into()));
        assert_eq!(field(b, 0, "e"), Value::String("".into()));
    }

    #[test]
    fn widening_after_the_window_starts_a_new_layout() {
        let mut text = String::from("n,a\n");
        for i in 0..5 {
            text.push_str(&format!("{i},10.0.0.{i}\n"));
        }
        text.push_str("-1,10.0.0.9\n7,fe80::1\n8,not-an-address\n9,10.0.0.10\n");
        let mut r = csv_reader(&text, 3);
        let (bs, err) = read_all(&mut r, 100);
        assert!(err.is_none());
        assert_eq!(r.stats().events, 9);
        assert_eq!(r.stats().skipped, 0);
        assert_eq!(total_rows(&bs), 9);
        let layouts: Vec<(Vec<Type>, u32)> = bs.iter().map(|b| (types(b), b.rows)).collect();
        assert_eq!(
            layouts,
            [
                (vec![Type::Count, Type::Address], 5),
                (vec![Type::Int, Type::Address], 2),
                (vec![Type::Int, Type::String], 2),
            ]
        );
        assert!(bs.iter().all(|b| b.schema.name == "t.csv"));
        assert_eq!(field(&bs[1], 0, "n"), Value::Int(-1));
        assert_eq!(
            field(&bs[1], 1, "a"),
            Value::Address(Address::parse("fe80::1").unwrap())
        );
        assert_eq!(
            field(&bs[2], 0, "a"),
            Value::String("not-an-address".into())
        );
        assert_eq!(field(&bs[2], 1, "a"), Value::String("10.0.0.10".into()));
    }

    #[test]
    fn skipped_records_name_their_lines() {
        // Too many fields on line 3; a quote opened on line 5 and never closed
        // swallows the rest of the input into one record of the right width.
        let text = "a,b\n1,2\n3,4,5\n\n6,7\n8,\"open\n9,10\n11,12\n";
        let mut r = csv_reader(text, 100);
        let (bs, err) = read_all(&mut r, 10);
        assert!(err.is_none());
        assert_eq!(total_rows(&bs), 2);
        assert_eq!(r.stats().skipped, 2);
        let mut r = csv_reader(text, 100);
        let mut lines = Vec::new();
        while r.next_record() {
            lines.push(r.lines());
        }
        assert_eq!(lines, [(1, 1), (2, 2), (3, 3), (5, 5), (6, 8)]);
        let mut r = csv_reader("a,b\n\"x\ny\",1\n\n\n\"p\nq", 100);
        let mut lines = Vec::new();
        while r.next_record() {
            lines.push(r.lines());
        }
        assert_eq!(
            lines,
            [(1, 1), (2, 3), (6, 7)],
            "blank lines and no final newline"
        );
        // Cells that are not UTF-8 cannot be stored as text.
        let mut r = CsvReader::new(Box::new(Cursor::new(b"a,b\n1,\xff\n2,3\n".to_vec())), None);
        let (bs, _) = read_all(&mut r, 10);
        assert_eq!((total_rows(&bs), r.stats().skipped), (1, 1));
        assert!(ends_in_quote(b"8,\"open\n9,10\n"));
        assert!(!ends_in_quote(b"8,\"closed\"\"\n9\",10\n"));
        assert!(!ends_in_quote(b"8,in\"side\n"));
    }

    #[test]
    fn headers_that_are_not_csv() {
        for (text, what) in [
            ("a,,c\n1,2,3\n", "empty"),
            ("a,b,a\n1,2,3\n", "twice"),
            ("\u{0}\u{ff}\n", "empty"),
        ] {
            let mut r = csv_reader(text, 100);
            match r.read(10) {
                Err(ReadError::WrongFormat(m)) => assert!(m.contains(what), "{m}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let mut r = csv_reader("\u{feff}a,b\n1,2\n", 100);
        let (bs, _) = read_all(&mut r, 10);
        assert_eq!(
            bs[0].schema.fields[0].name, "a",
            "the byte order mark is dropped"
        );
        let mut bytes = b"a,b\n1,2\n".to_vec();
        bytes[0] = 0xff;
        let mut r = CsvReader::new(Box::new(Cursor::new(bytes)), None);
        assert!(matches!(r.read(10), Err(ReadError::WrongFormat(_))));
    }

    #[test]
    fn argus() {
        let Some(mut r) = file_reader(Format::Csv, "csv/argus-M57-10k-pkts.csv.gz") else {
            return;
        };
        let (bs, err) = read_all(r.as_mut(), 1000);
        assert!(err.is_none());
        let s = r.stats();
        assert_eq!((s.events, s.skipped), (2989, 0), "every row is kept");
        assert_eq!(total_rows(&bs), 2989);
        let b = &bs[0];
        assert!(bs.iter().all(|x| x.schema == b.schema), "one layout");
        assert_eq!(b.schema.name, "csv");
        assert_eq!(b.schema.fields[0].name, "StartTime");
        let tys = types(b);
        assert_eq!(tys[0], Type::Time);
        // SrcAddr and DstAddr hold MAC addresses among the IPs.
        assert_eq!(tys[3], Type::String);
        assert_eq!(tys[6], Type::String);
        assert_eq!(tys[4], Type::Count, "Sport");
        assert_eq!(tys[11], Type::Real, "Dur");
        assert_eq!(field(b, 0, "SrcAddr"), Value::String("192.168.1.1".into()));
        assert_eq!(
            field(b, 1, "SrcAddr"),
            Value::String("00:22:2d:81:db:10".into())
        );
        assert_eq!(field(b, 2, "Sport"), Value::Null);
        for b in &bs {
            b.validate().unwrap();
        }
    }
}
