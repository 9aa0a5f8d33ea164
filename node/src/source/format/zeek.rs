//! Zeek's tab-separated log format (`import zeek`).
//!
//! Header lines (`#separator`, `#fields`, `#types`, ...) define a schema
//! `zeek.<path>`; a new header block (several logs concatenated) starts a new one.
//! Lines are parsed into a reusable row of typed cells first, so a bad value
//! discards the line without touching the builders.

use super::util::{parse_addr, parse_f64, parse_i64, parse_seconds_ns, parse_subnet, parse_u64};
use super::{LineDriven, LineParser, Sink};
use crate::data::{ColumnBuilder, Field, Schema, Subnet, Type};
use crate::source::{ReadError, ReadStats, Reader};
use std::io::BufRead;

/// Reader of Zeek TSV logs.
pub struct ZeekReader(LineDriven<ZeekParser>);

impl ZeekReader {
    pub fn new(input: Box<dyn BufRead + Send>) -> Self {
        ZeekReader(LineDriven::new(input, ZeekParser::default(), "zeek reader"))
    }
}

impl Reader for ZeekReader {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<crate::data::Batch>>, ReadError> {
        self.0.read(batch_size)
    }
    fn stats(&self) -> ReadStats {
        self.0.stats()
    }
}

/// How a column's text is parsed.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Bool,
    Int,
    Count,
    Real,
    Time,
    Duration,
    /// string, enum, pattern and unknown types: text with `\xHH` escapes.
    Str,
    Addr,
    Subnet,
    List(Box<Kind>),
}

/// One parsed value, kept until the whole line is known to be good.
#[derive(Clone, Copy)]
enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Count(u64),
    Real(f64),
    Time(i64),
    Duration(i64),
    /// Byte range of the line, or of the unescape scratch buffer.
    Str {
        scratch: bool,
        a: u32,
        b: u32,
    },
    Addr([u8; 16]),
    Subnet(Subnet),
    /// Range of the element cells.
    List(u32, u32),
}

struct Header {
    sep: u8,
    set_sep: u8,
    empty: Vec<u8>,
    unset: Vec<u8>,
    path: String,
    fields: Vec<String>,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            sep: b'\t',
            set_sep: b',',
            empty: b"(empty)".to_vec(),
            unset: b"-".to_vec(),
            path: String::new(),
            fields: Vec::new(),
        }
    }
}

#[derive(Default)]
pub(crate) struct ZeekParser {
    started: bool,
    header: Header,
    /// Builder and column kinds of the log being read; `None` between logs.
    current: Option<(usize, Vec<Kind>)>,
    cells: Vec<Cell>,
    elems: Vec<Cell>,
    scratch: Vec<u8>,
}

/// Why a line was rejected.
enum Bad {
    Count(usize),
    Value(usize),
}

fn type_of(t: &str) -> Option<(Type, Kind)> {
    Some(match t {
        "bool" => (Type::Bool, Kind::Bool),
        "int" => (Type::Int, Kind::Int),
        "count" | "counter" => (Type::Count, Kind::Count),
        "port" => (Type::port(), Kind::Count),
        "double" => (Type::Real, Kind::Real),
        "time" => (Type::timestamp(), Kind::Time),
        "interval" => (Type::Duration, Kind::Duration),
        "enum" => (Type::Enum(vec![]), Kind::Str),
        "pattern" => (Type::Pattern, Kind::Str),
        "addr" => (Type::Address, Kind::Addr),
        "subnet" => (Type::Subnet, Kind::Subnet),
        "string" | "file" | "func" | "any" => (Type::String, Kind::Str),
        _ => {
            let (outer, inner) = t.strip_suffix(']')?.split_once('[')?;
            let (et, ek) = type_of(inner)?;
            if matches!(ek, Kind::List(_)) {
                return None;
            }
            let ek = Box::new(ek);
            match outer {
                "set" | "table" => (Type::set(et), Kind::List(ek)),
                "vector" => (Type::List(Box::new(et)), Kind::List(ek)),
                _ => return None,
            }
        }
    })
}

/// Decodes a header value such as `\x09`.
fn unescape_header(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && v.get(i + 1) == Some(&b'x') && i + 3 < v.len() {
            if let Some(b) = hex2(v[i + 2], v[i + 3]) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

#[inline]
fn hex2(h: u8, l: u8) -> Option<u8> {
    let d = |c: u8| (c as char).to_digit(16);
    Some((d(h)? * 16 + d(l)?) as u8)
}

impl ZeekParser {
    fn header_line(&mut self, line: &[u8], sink: &mut Sink) -> Result<(), ReadError> {
        if let Some(v) = line.strip_prefix(b"#separator") {
            let v = unescape_header(v.trim_ascii());
            if v.len() != 1 {
                return Err(ReadError::Other(
                    "zeek reader: only single-byte separators are supported".into(),
                ));
            }
            self.header = Header {
                sep: v[0],
                ..Header::default()
            };
            self.current = None;
            return Ok(());
        }
        let h = &mut self.header;
        let mut parts = line.split(|c| *c == h.sep);
        let key = parts.next().unwrap_or_default();
        let rest = match memchr::memchr(h.sep, line) {
            Some(i) => &line[i + 1..],
            None => &[][..],
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match key {
            b"#set_separator" => {
                let v = unescape_header(rest);
                if v.len() != 1 {
                    return Err(ReadError::Other(
                        "zeek reader: only single-byte set separators are supported".into(),
                    ));
                }
                h.set_sep = v[0];
            }
            b"#empty_field" => h.empty = unescape_header(rest),
            b"#unset_field" => h.unset = unescape_header(rest),
            b"#path" => h.path = text(rest),
            b"#fields" => {
                h.fields = parts.map(text).collect();
                self.current = None;
            }
            b"#types" => {
                let types: Vec<&[u8]> = parts.collect();
                if types.len() != h.fields.len() {
                    return Err(ReadError::Other(format!(
                        "zeek reader: #types has {} entries but #fields has {}",
                        types.len(),
                        h.fields.len()
                    )));
                }
                let mut fields = Vec::with_capacity(types.len());
                let mut kinds = Vec::with_capacity(types.len());
                for (name, t) in h.fields.iter().zip(types) {
                    let t = String::from_utf8_lossy(t);
                    let (ty, kind) = type_of(&t).unwrap_or_else(|| {
                        tracing::warn!("zeek reader: unknown type {t} of {name}, using string");
                        (Type::String, Kind::Str)
                    });
                    fields.push(Field::new(name.clone(), ty));
                    kinds.push(kind);
                }
                let path = if h.path.is_empty() {
                    "unknown"
                } else {
                    &h.path
                };
                let idx = sink.builder_for(Schema::new(format!("zeek.{path}"), fields));
                self.current = Some((idx, kinds));
            }
            b"#close" => self.current = None,
            _ => {} // #open and comments
        }
        Ok(())
    }

    /// Parses a data line into `self.cells`.
    fn parse_line(&mut self, line: &[u8], kinds: &[Kind]) -> Result<(), Bad> {
        let sep = self.header.sep;
        self.cells.clear();
        self.elems.clear();
        self.scratch.clear();
        let n = kinds.len();
        let mut start = 0usize;
        for (i, kind) in kinds.iter().enumerate() {
            let end = if i + 1 < n {
                match memchr::memchr(sep, &line[start..]) {
                    Some(j) => start + j,
                    None => return Err(Bad::Count(i + 1)),
                }
            } else {
                if memchr::memchr(sep, &line[start..]).is_some() {
                    let extra = memchr::memchr_iter(sep, &line[start..]).count();
                    return Err(Bad::Count(n + extra));
                }
                line.len()
            };
            let cell = self.field(line, start, end, kind).ok_or(Bad::Value(i))?;
            self.cells.push(cell);
            start = end + 1;
        }
        Ok(())
    }

    #[inline]
    fn field(&mut self, line: &[u8], a: usize, b: usize, kind: &Kind) -> Option<Cell> {
        let v = &line[a..b];
        if v == self.header.unset.as_slice() {
            return Some(Cell::Null);
        }
        if let Kind::List(ek) = kind {
            let first = self.elems.len() as u32;
            if v != self.header.empty.as_slice() {
                let set_sep = self.header.set_sep;
                let mut s = a;
                loop {
                    let e = memchr::memchr(set_sep, &line[s..b]).map_or(b, |j| s + j);
                    let c = if line[s..e] == *self.header.unset {
                        Cell::Null
                    } else {
                        self.scalar(line, s, e, ek)?
                    };
                    self.elems.push(c);
                    if e == b {
                        break;
                    }
                    s = e + 1;
                }
            }
            return Some(Cell::List(first, self.elems.len() as u32));
        }
        if v == self.header.empty.as_slice() {
            return Some(match kind {
                Kind::Str => Cell::Str {
                    scratch: false,
                    a: a as u32,
                    b: a as u32,
                },
                _ => Cell::Null,
            });
        }
        self.scalar(line, a, b, kind)
    }

    #[inline]
    fn scalar(&mut self, line: &[u8], a: usize, b: usize, kind: &Kind) -> Option<Cell> {
        let v = &line[a..b];
        Some(match kind {
            Kind::Count => Cell::Count(parse_u64(v)?),
            Kind::Int => Cell::Int(parse_i64(v)?),
            Kind::Time => Cell::Time(parse_seconds_ns(v)?),
            Kind::Duration => Cell::Duration(parse_seconds_ns(v)?),
            Kind::Real => Cell::Real(parse_f64(v)?),
            Kind::Bool => match v {
                b"T" => Cell::Bool(true),
                b"F" => Cell::Bool(false),
                _ => return None,
            },
            Kind::Addr => Cell::Addr(parse_addr(v)?.0),
            Kind::Subnet => Cell::Subnet(parse_subnet(v)?),
            Kind::Str => self.string(line, a, b),
            Kind::List(_) => return None,
        })
    }

    /// Decodes `\xHH`; when that yields invalid UTF-8 the escaped text is kept.
    fn string(&mut self, line: &[u8], a: usize, b: usize) -> Cell {
        let v = &line[a..b];
        let raw = Cell::Str {
            scratch: false,
            a: a as u32,
            b: b as u32,
        };
        if memchr::memchr(b'\\', v).is_none() {
            return raw;
        }
        let start = self.scratch.len();
        let mut i = 0;
        while i < v.len() {
            if v[i] == b'\\' && i + 3 < v.len() && v[i + 1] == b'x' {
                if let Some(c) = hex2(v[i + 2], v[i + 3]) {
                    self.scratch.push(c);
                    i += 4;
                    continue;
                }
            }
            self.scratch.push(v[i]);
            i += 1;
        }
        if std::str::from_utf8(&self.scratch[start..]).is_err() {
            self.scratch.truncate(start);
            return raw;
        }
        Cell::Str {
            scratch: true,
            a: start as u32,
            b: self.scratch.len() as u32,
        }
    }
}

#[inline]
fn push_cell(col: &mut ColumnBuilder, c: &Cell, line: &str, scratch: &[u8], elems: &[Cell]) {
    match *c {
        Cell::Null => col.push_null(),
        Cell::Bool(x) => col.push_bool(x),
        Cell::Int(x) => col.push_int(x),
        Cell::Count(x) => col.push_count(x),
        Cell::Real(x) => col.push_real(x),
        Cell::Time(x) => col.push_time(x),
        Cell::Duration(x) => col.push_duration(x),
        Cell::Str {
            scratch: false,
            a,
            b,
        } => col.push_str(&line[a as usize..b as usize]),
        Cell::Str {
            scratch: true,
            a,
            b,
        } => {
            // Checked when unescaped.
            col.push_str(std::str::from_utf8(&scratch[a as usize..b as usize]).unwrap_or(""))
        }
        Cell::Addr(x) => col.push_address(crate::data::Address(x)),
        Cell::Subnet(x) => col.push_subnet(x),
        Cell::List(a, b) => col.push_list(|child| {
            for e in &elems[a as usize..b as usize] {
                push_cell(child, e, line, scratch, elems);
            }
        }),
    }
}

impl LineParser for ZeekParser {
    fn line(&mut self, line: &[u8], no: u64, sink: &mut Sink) -> Result<(), ReadError> {
        if !self.started {
            if line.is_empty() {
                return Ok(());
            }
            if !(line.starts_with(b"#separator") || line.starts_with(b"#fields")) {
                return Err(ReadError::WrongFormat(format!(
                    "input is not a zeek tsv log: line {no} does not start with a '#separator' header"
                )));
            }
            self.started = true;
        }
        if line.first() == Some(&b'#') {
            return self.header_line(line, sink);
        }
        if line.is_empty() {
            return Ok(());
        }
        let Some((idx, kinds)) = self.current.take() else {
            sink.skip(
                no,
                format_args!("data line outside of a log (no #types header)"),
            );
            return Ok(());
        };
        let Ok(text) = std::str::from_utf8(line) else {
            self.current = Some((idx, kinds));
            sink.skip(no, format_args!("invalid utf-8"));
            return Ok(());
        };
        match self.parse_line(line, &kinds) {
            Ok(()) => {
                let b = sink.builder(idx);
                for (i, c) in self.cells.iter().enumerate() {
                    push_cell(b.column(i), c, text, &self.scratch, &self.elems);
                }
                sink.commit(idx);
            }
            Err(Bad::Count(got)) => sink.skip(
                no,
                format_args!("expected {} fields but got {got}", kinds.len()),
            ),
            Err(Bad::Value(i)) => sink.skip(
                no,
                format_args!(
                    "cannot parse field {} ({}) as {:?}",
                    self.header.fields[i],
                    field_text(line, self.header.sep, i),
                    kinds[i]
                ),
            ),
        }
        self.current = Some((idx, kinds));
        Ok(())
    }
}

/// The text of field `i`, shortened, for warnings.
fn field_text(line: &[u8], sep: u8, i: usize) -> String {
    let f = line.split(|c| *c == sep).nth(i).unwrap_or_default();
    let mut s = String::from_utf8_lossy(&f[..f.len().min(40)]).into_owned();
    if f.len() > 40 {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Format;
    use crate::data::{Address, Type, Value};
    use crate::source::ReadError;
    use std::io::Read;

    const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tt\n#fields\tts\tn\ts\tv\tp\td\n#types\ttime\tcount\tstring\tset[addr]\tport\tinterval\n";

    fn read_text(text: &[u8], batch: usize) -> (Vec<crate::data::Batch>, crate::source::ReadStats) {
        let mut r = reader_for(Format::Zeek, text.to_vec());
        let (bs, err) = read_all(r.as_mut(), batch);
        assert!(err.is_none(), "{err:?}");
        (bs, r.stats())
    }

    #[test]
    fn conn_log() {
        let Some(mut r) = file_reader(Format::Zeek, "zeek/conn.log.gz") else {
            return;
        };
        let (bs, err) = read_all(r.as_mut(), 1000);
        assert!(err.is_none());
        assert_eq!(total_rows(&bs), 8462);
        assert_eq!(r.stats().events, 8462);
        assert_eq!(r.stats().skipped, 0);
        assert_eq!(bs.len(), 9);
        assert!(bs[..8].iter().all(|b| b.rows == 1000));
        let b = &bs[0];
        assert_eq!(b.schema.name, "zeek.conn");
        assert_eq!(field(b, 0, "uid"), Value::String("Pii6cUUq1v4".into()));
        assert_eq!(field(b, 0, "ts"), Value::Time(1_258_531_221_486_539_000));
        assert_eq!(
            field(b, 0, "id.orig_h"),
            Value::Address(Address::parse("192.168.1.102").unwrap())
        );
        assert_eq!(field(b, 0, "id.resp_p"), Value::Count(67));
        assert_eq!(field(b, 0, "duration"), Value::Duration(163_820_000));
        assert_eq!(field(b, 0, "service"), Value::Null);
        assert_eq!(field(b, 0, "proto"), Value::Enum("udp".into()));
        assert_eq!(field(b, 0, "tunnel_parents"), Value::List(vec![]));
        let f = &b.schema.fields;
        assert_eq!(
            f[b.schema.field_index("id.resp_p").unwrap()].ty,
            Type::port()
        );
        assert_eq!(f[0].ty, Type::timestamp());
        assert_eq!(
            f[b.schema.field_index("tunnel_parents").unwrap()].ty,
            Type::set(Type::String)
        );
        for b in &bs {
            b.validate().unwrap();
        }
    }

    #[test]
    fn dns_and_http_logs() {
        for (file, n, name) in [
            ("zeek/dns.log.gz", 5124, "zeek.dns"),
            ("zeek/http.log.gz", 4896, "zeek.http"),
        ] {
            let Some(mut r) = file_reader(Format::Zeek, file) else {
                return;
            };
            let (bs, err) = read_all(r.as_mut(), 65536);
            assert!(err.is_none());
            assert_eq!(total_rows(&bs), n, "{file}");
            assert_eq!(r.stats().skipped, 0, "{file}");
            assert!(bs.iter().all(|b| b.schema.name == name));
        }
    }

    #[test]
    fn small_logs_parse_cleanly() {
        for f in [
            "zeek/ftp.log",
            "zeek/smtp.log",
            "zeek/ssl.log",
            "zeek/small_conn.log",
            "zeek/snmp.log.gz",
        ] {
            let Some(mut r) = file_reader(Format::Zeek, f) else {
                return;
            };
            let (bs, err) = read_all(r.as_mut(), 100);
            assert!(err.is_none(), "{f}");
            assert!(total_rows(&bs) > 0, "{f}");
            assert_eq!(r.stats().skipped, 0, "{f}");
        }
    }

    #[test]
    fn concatenated_logs() {
        let (Some(c), Some(d)) = (data("zeek/conn.log.gz"), data("zeek/dns.log.gz")) else {
            return;
        };
        let mut bytes = Vec::new();
        for p in [&c, &d, &c] {
            flate2::read::MultiGzDecoder::new(std::fs::File::open(p).unwrap())
                .read_to_end(&mut bytes)
                .unwrap();
        }
        let (bs, stats) = read_text(&bytes, 100_000);
        assert_eq!(stats.skipped, 0);
        assert_eq!(bs.len(), 2);
        assert_eq!(bs[0].schema.name, "zeek.conn");
        assert_eq!(bs[0].rows, 2 * 8462);
        assert_eq!(bs[1].schema.name, "zeek.dns");
        assert_eq!(bs[1].rows, 5124);
    }

    #[test]
    fn empty_unset_escapes_and_close() {
        let mut text = HEADER.to_string();
        text.push_str("1.5\t1\ta\\x09b\t1.2.3.4,::1\t80\t0.25\n");
        text.push_str("2\t2\t(empty)\t(empty)\t-\t-\n");
        text.push_str("3\t3\t-\t-\t81\t1\n");
        text.push_str("#close\t2020-01-01-00-00-00\n");
        text.push_str("4\t4\tafter close\t-\t82\t1\n");
        let (bs, stats) = read_text(text.as_bytes(), 10);
        assert_eq!(stats.events, 3);
        assert_eq!(stats.skipped, 1);
        let b = &bs[0];
        assert_eq!(b.schema.name, "zeek.t");
        assert_eq!(field(b, 0, "ts"), Value::Time(1_500_000_000));
        assert_eq!(field(b, 0, "s"), Value::String("a\tb".into()));
        assert_eq!(
            field(b, 0, "v"),
            Value::List(vec![
                Value::Address(Address::parse("1.2.3.4").unwrap()),
                Value::Address(Address::parse("::1").unwrap())
            ])
        );
        assert_eq!(field(b, 0, "d"), Value::Duration(250_000_000));
        assert_eq!(field(b, 1, "s"), Value::String(String::new()));
        assert_eq!(field(b, 1, "v"), Value::List(vec![]));
        assert_eq!(field(b, 1, "p"), Value::Null);
        assert_eq!(field(b, 2, "s"), Value::Null);
        assert_eq!(field(b, 2, "v"), Value::Null);
        b.validate().unwrap();
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let mut text = HEADER.as_bytes().to_vec();
        text.extend_from_slice(b"1\t1\tok\t-\t80\t1\n");
        text.extend_from_slice(b"2\t2\ttoo few\n");
        text.extend_from_slice(b"3\t3\ttoo\tmany\t1\t1\t1\n");
        text.extend_from_slice(b"4\tnot-a-number\tx\t-\t80\t1\n");
        text.extend_from_slice(b"5\t5\tbad addr\t1.2.3.999\t80\t1\n");
        text.extend_from_slice(b"6\t6\t\xff\xfe invalid utf8\t-\t80\t1\n");
        text.extend_from_slice(b"\x00\x01\x02\xd4\xc3\xb2\xa1 binary\t\t\x89PNG\r\n");
        text.extend_from_slice(b"7\t7\tok again\t-\t80\t1\n");
        text.extend_from_slice(b"8\t8\tno newline at end\t-\t80\t1");
        let (bs, stats) = read_text(&text, 10);
        assert_eq!(stats.events, 3);
        assert_eq!(stats.skipped, 6);
        let b = &bs[0];
        assert_eq!(field(b, 1, "s"), Value::String("ok again".into()));
        assert_eq!(field(b, 2, "n"), Value::Count(8));
    }

    #[test]
    fn wrong_format_fails_fast() {
        let mut r = reader_for(Format::Zeek, b"{\"ts\": 1}\n".to_vec());
        assert!(matches!(r.read(10), Err(ReadError::WrongFormat(_))));
        let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        pcap.extend((0..5000u32).map(|i| (i * 7 % 251) as u8));
        let mut r = reader_for(Format::Zeek, pcap);
        match r.read(10) {
            Err(ReadError::WrongFormat(m)) => assert!(m.contains("not a zeek tsv log"), "{m}"),
            x => panic!("expected wrong format, got {x:?}"),
        }
        if let Some(p) = data("pcap/example.pcap.gz") {
            let mut r = super::super::make_reader(
                Format::Zeek,
                super::super::open_input(Some(&p)).unwrap(),
                &Default::default(),
            )
            .unwrap();
            assert!(matches!(r.read(10), Err(ReadError::WrongFormat(_))));
        }
        // Empty input is just empty.
        let mut r = reader_for(Format::Zeek, Vec::new());
        assert!(matches!(r.read(10), Ok(None)));
    }

    #[test]
    fn truncated_gzip_keeps_good_lines() {
        let Some(p) = data("zeek/conn.log.gz") else {
            return;
        };
        let bytes = std::fs::read(&p).unwrap();
        let cut = std::env::temp_dir().join(format!("vast-zeek-trunc-{}.gz", std::process::id()));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let input = super::super::open_input(Some(&cut)).unwrap();
        let mut r = super::super::make_reader(Format::Zeek, input, &Default::default()).unwrap();
        let (bs, err) = read_all(r.as_mut(), 1000);
        std::fs::remove_file(&cut).ok();
        assert!(matches!(err, Some(ReadError::Io(_))), "{err:?}");
        let n = total_rows(&bs);
        assert!(n > 3000 && n < 8462, "{n}");
        assert!(r.stats().skipped <= 1);
    }

    /// Throughput on a big generated conn log:
    /// `gen-zeek-conn --lines 2000000 > /tmp/conn2m.log`, then
    /// `cargo test --release -p vast-node --lib zeek_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn zeek_throughput() {
        let path = std::env::var("ZEEK_BENCH_LOG").unwrap_or_else(|_| "/tmp/conn2m.log".into());
        let Ok(meta) = std::fs::metadata(&path) else {
            eprintln!("skipping: {path} not found");
            return;
        };
        let input = super::super::open_input(Some(std::path::Path::new(&path))).unwrap();
        let mut r = super::super::make_reader(Format::Zeek, input, &Default::default()).unwrap();
        let t = std::time::Instant::now();
        let mut rows = 0u64;
        while let Some(bs) = r.read(65536).unwrap() {
            rows += bs.iter().map(|b| b.rows as u64).sum::<u64>();
        }
        let secs = t.elapsed().as_secs_f64();
        let mb = meta.len() as f64 / 1e6;
        eprintln!(
            "zeek: {rows} events, {mb:.0} MB in {secs:.2} s = {:.0} MB/s ({} skipped)",
            mb / secs,
            r.stats().skipped
        );
    }
}
