//! Comma-separated values with a header line (`import csv`).
//!
//! Column types are inferred from the first data row; later rows must parse as
//! those types (empty cells are null). Quoted fields may contain commas and `""`.

use super::util::{
    infer_str, parse_addr, parse_f64, parse_i64, parse_iso_time, parse_subnet, parse_u64, Inferred,
};
use super::{LineDriven, LineParser, Sink};
use crate::data::{BatchBuilder, Field, Schema, Type};
use crate::source::{ReadError, ReadStats, Reader};
use std::io::BufRead;

/// Reader of CSV with a header line.
pub struct CsvReader(LineDriven<CsvParser>);

impl CsvReader {
    /// `schema` names the events (default `csv`).
    pub fn new(input: Box<dyn BufRead + Send>, schema: Option<String>) -> Self {
        let parser = CsvParser {
            name: schema.unwrap_or_else(|| "csv".into()),
            header: None,
            layout: None,
            buf: String::new(),
            ranges: Vec::new(),
        };
        CsvReader(LineDriven::new(input, parser, "csv reader"))
    }
}

impl Reader for CsvReader {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<crate::data::Batch>>, ReadError> {
        self.0.read(batch_size)
    }
    fn stats(&self) -> ReadStats {
        self.0.stats()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Bool,
    Count,
    Int,
    Real,
    Addr,
    Subnet,
    Time,
    Str,
}

pub(crate) struct CsvParser {
    name: String,
    header: Option<Vec<String>>,
    layout: Option<(usize, Vec<Kind>)>,
    /// Unquoted cell text of the current line, and each cell's range in it.
    buf: String,
    ranges: Vec<(usize, usize)>,
}

/// Splits a line into cells; `None` on an unterminated quote.
fn split(line: &str, buf: &mut String, ranges: &mut Vec<(usize, usize)>) -> Option<()> {
    buf.clear();
    ranges.clear();
    let mut rest = line;
    loop {
        let start = buf.len();
        if let Some(q) = rest.strip_prefix('"') {
            let mut s = q;
            loop {
                let i = s.find('"')?;
                buf.push_str(&s[..i]);
                if s[i + 1..].starts_with('"') {
                    buf.push('"');
                    s = &s[i + 2..];
                } else {
                    s = &s[i + 1..];
                    break;
                }
            }
            // Text between the closing quote and the comma is kept.
            let end = s.find(',').unwrap_or(s.len());
            buf.push_str(&s[..end]);
            ranges.push((start, buf.len()));
            if end == s.len() {
                return Some(());
            }
            rest = &s[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            buf.push_str(&rest[..end]);
            ranges.push((start, buf.len()));
            if end == rest.len() {
                return Some(());
            }
            rest = &rest[end + 1..];
        }
    }
}

fn infer(cell: &str) -> Kind {
    let t = cell.trim();
    if t == "true" || t == "false" {
        Kind::Bool
    } else if parse_u64(t.as_bytes()).is_some() {
        Kind::Count
    } else if parse_i64(t.as_bytes()).is_some() {
        Kind::Int
    } else if !t.is_empty()
        && t.bytes()
            .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
        && parse_f64(t.as_bytes()).is_some()
    {
        Kind::Real
    } else {
        match infer_str(t.as_bytes()) {
            Some(Inferred::Address(_)) => Kind::Addr,
            Some(Inferred::Subnet(_)) => Kind::Subnet,
            Some(Inferred::Time(_)) => Kind::Time,
            None => Kind::Str,
        }
    }
}

fn kind_type(k: Kind) -> Type {
    match k {
        Kind::Bool => Type::Bool,
        Kind::Count => Type::Count,
        Kind::Int => Type::Int,
        Kind::Real => Type::Real,
        Kind::Addr => Type::Address,
        Kind::Subnet => Type::Subnet,
        Kind::Time => Type::Time,
        Kind::Str => Type::String,
    }
}

/// Checks that every cell parses before anything is pushed.
fn parses(k: Kind, cell: &str) -> bool {
    let t = cell.trim().as_bytes();
    t.is_empty()
        || match k {
            Kind::Bool => t == b"true" || t == b"false",
            Kind::Count => parse_u64(t).is_some(),
            Kind::Int => parse_i64(t).is_some(),
            Kind::Real => parse_f64(t).is_some(),
            Kind::Addr => parse_addr(t).is_some(),
            Kind::Subnet => parse_subnet(t).is_some(),
            Kind::Time => parse_iso_time(t).is_some(),
            Kind::Str => true,
        }
}

fn push(b: &mut BatchBuilder, i: usize, k: Kind, cell: &str) {
    let c = b.column(i);
    let t = cell.trim().as_bytes();
    if t.is_empty() && k != Kind::Str {
        return c.push_null();
    }
    // `parses` has checked every cell of the row.
    match k {
        Kind::Bool => c.push_bool(t == b"true"),
        Kind::Count => c.push_count(parse_u64(t).unwrap_or_default()),
        Kind::Int => c.push_int(parse_i64(t).unwrap_or_default()),
        Kind::Real => c.push_real(parse_f64(t).unwrap_or_default()),
        Kind::Addr => c.push_address(parse_addr(t).unwrap_or_default()),
        Kind::Subnet => c.push_subnet(parse_subnet(t).unwrap_or_default()),
        Kind::Time => c.push_time(parse_iso_time(t).unwrap_or_default()),
        Kind::Str => c.push_str(cell),
    }
}

impl LineParser for CsvParser {
    fn line(&mut self, line: &[u8], no: u64, sink: &mut Sink) -> Result<(), ReadError> {
        let Ok(line) = std::str::from_utf8(line) else {
            if self.header.is_none() {
                return Err(ReadError::WrongFormat(format!(
                    "input is not csv: line {no} is not utf-8 text"
                )));
            }
            sink.skip(no, format_args!("invalid utf-8"));
            return Ok(());
        };
        if line.trim().is_empty() {
            return Ok(());
        }
        if split(line, &mut self.buf, &mut self.ranges).is_none() {
            if self.header.is_none() {
                return Err(ReadError::WrongFormat(format!(
                    "input is not csv: unterminated quote in header line {no}"
                )));
            }
            sink.skip(no, format_args!("unterminated quote"));
            return Ok(());
        }
        let cells = self.ranges.iter().map(|&(a, b)| &self.buf[a..b]);
        let Some(header) = &self.header else {
            let names: Vec<String> = cells.map(|c| c.trim().to_string()).collect();
            if names.iter().any(|n| n.is_empty() || n.contains('\0')) {
                return Err(ReadError::WrongFormat(format!(
                    "input is not csv: header line {no} has an empty column name"
                )));
            }
            self.header = Some(names);
            return Ok(());
        };
        if self.ranges.len() != header.len() {
            sink.skip(
                no,
                format_args!(
                    "expected {} fields but got {}",
                    header.len(),
                    self.ranges.len()
                ),
            );
            return Ok(());
        }
        let (idx, kinds) = match &self.layout {
            Some(l) => l,
            None => {
                let kinds: Vec<Kind> = cells.map(infer).collect();
                let fields = header
                    .iter()
                    .zip(&kinds)
                    .map(|(n, k)| Field::new(n.clone(), kind_type(*k)))
                    .collect();
                let idx = sink.builder_for(Schema::new(self.name.clone(), fields));
                &*self.layout.insert((idx, kinds))
            }
        };
        let cells = self.ranges.iter().map(|&(a, b)| &self.buf[a..b]);
        if let Some((i, c)) = cells
            .clone()
            .enumerate()
            .find(|(i, c)| !parses(kinds[*i], c))
        {
            sink.skip(
                no,
                format_args!("cannot parse {} ({c:?}) as {:?}", header[i], kinds[i]),
            );
            return Ok(());
        }
        let b = sink.builder(*idx);
        for (i, c) in cells.enumerate() {
            push(b, i, kinds[i], c);
        }
        sink.commit(*idx);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{make_reader, Format, ReaderOptions};
    use crate::data::{Address, Type, Value};
    use std::io::Cursor;

    #[test]
    fn quoting_inference_and_bad_rows() {
        let text = "a,b,c,d,e\n1,-2,\"x, \"\"y\"\"\",10.0.0.1,2020-01-01T00:00:00Z\n\
                    2,3,plain,,\n3,oops,z,1.1.1.1,2020-01-01\n4,5\n5,6,\"open,1.1.1.1,2020-01-01\n";
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
        assert_eq!(r.stats().events, 2);
        assert_eq!(r.stats().skipped, 3);
        let b = &bs[0];
        assert_eq!(b.schema.name, "t.csv");
        let tys: Vec<_> = b.schema.fields.iter().map(|f| f.ty.clone()).collect();
        assert_eq!(
            tys,
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
    fn argus() {
        let Some(mut r) = file_reader(Format::Csv, "csv/argus-M57-10k-pkts.csv.gz") else {
            return;
        };
        let (bs, err) = read_all(r.as_mut(), 1000);
        assert!(err.is_none());
        let b = &bs[0];
        assert_eq!(b.schema.name, "csv");
        assert_eq!(b.schema.fields[0].name, "StartTime");
        assert_eq!(b.schema.fields[0].ty, Type::Time);
        assert_eq!(b.schema.fields[3].ty, Type::Address);
        assert_eq!(
            field(b, 0, "SrcAddr"),
            Value::Address(Address::parse("192.168.1.1").unwrap())
        );
        let s = r.stats();
        eprintln!("argus: {} events, {} skipped", s.events, s.skipped);
        assert!(s.events > 0);
        assert_eq!(total_rows(&bs) as u64, s.events);
    }
}
