//! Zeek's tab-separated log format (`import zeek`).
//!
//! Header lines (`#separator`, `#fields`, `#types`, ...) define a schema
//! `zeek.<path>`; a new header block (several logs concatenated) starts a new one.
//! This is the hot ingest path, so it fills its own typed column vectors straight
//! from the line bytes (no per-field dispatch through `ColumnBuilder`, no copies
//! of parsed values); a bad value truncates the columns back to the last row.

use super::util::{parse_addr, parse_f64, parse_i64, parse_seconds_ns, parse_subnet, parse_u64};
use super::{LineDriven, LineParser, Sink};
use crate::data::batch::Validity;
use crate::data::{Address, Batch, Column, ColumnBuilder, ColumnData, Field, Schema, Subnet, Type};
use crate::source::{ReadError, ReadStats, Reader};
use rustc_hash::FxHashMap;
use std::io::BufRead;

/// Reader of Zeek TSV logs.
pub struct ZeekReader(LineDriven<ZeekParser>);

impl ZeekReader {
    /// A reader of one or more concatenated Zeek logs.
    pub fn new(input: Box<dyn BufRead + Send>) -> Self {
        ZeekReader(LineDriven::new(input, ZeekParser::default(), "zeek reader"))
    }
}

impl Reader for ZeekReader {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<Batch>>, ReadError> {
        self.0.read(batch_size)
    }
    fn stats(&self) -> ReadStats {
        self.0.stats()
    }
}

/// How a value's text is parsed.
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

/// A parsed set/vector element, kept until the whole line is known to be good.
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
    Addr(u128),
    Subnet(u128, u8),
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

/// Column storage being filled; the variant decides how text is parsed.
enum Data {
    Bool(Vec<bool>),
    Int(Vec<i64>),
    Count(Vec<u64>),
    Real(Vec<f64>),
    Time(Vec<i64>),
    Duration(Vec<i64>),
    Str(Vec<u32>, Vec<u8>),
    Addr(Vec<[u8; 16]>),
    Subnet(Vec<[u8; 16]>, Vec<u8>),
    /// Lists are pushed only once the row is complete (a builder cannot undo).
    List(ColumnBuilder, Kind),
}

struct Col {
    data: Data,
    valid: Vec<u64>,
    nulls: bool,
    /// Bytes of the last finished string column, to size the next one.
    last_bytes: usize,
}

/// One schema's rows under construction.
struct ZBuilder {
    schema: Schema,
    cols: Vec<Col>,
    rows: usize,
}

impl Col {
    fn new(ty: &Type, kind: &Kind) -> Col {
        let data = match kind {
            Kind::Bool => Data::Bool(Vec::new()),
            Kind::Int => Data::Int(Vec::new()),
            Kind::Count => Data::Count(Vec::new()),
            Kind::Real => Data::Real(Vec::new()),
            Kind::Time => Data::Time(Vec::new()),
            Kind::Duration => Data::Duration(Vec::new()),
            Kind::Str => Data::Str(vec![0], Vec::new()),
            Kind::Addr => Data::Addr(Vec::new()),
            Kind::Subnet => Data::Subnet(Vec::new(), Vec::new()),
            Kind::List(k) => Data::List(ColumnBuilder::new(ty.clone()), (**k).clone()),
        };
        Col {
            data,
            valid: Vec::new(),
            nulls: false,
            last_bytes: 0,
        }
    }

    fn reserve(&mut self, n: usize) {
        match &mut self.data {
            Data::Bool(v) => v.reserve(n),
            Data::Int(v) | Data::Time(v) | Data::Duration(v) => v.reserve(n),
            Data::Count(v) => v.reserve(n),
            Data::Real(v) => v.reserve(n),
            Data::Str(o, b) => {
                o.reserve(n);
                b.reserve(self.last_bytes);
            }
            Data::Addr(v) => v.reserve(n),
            Data::Subnet(a, l) => {
                a.reserve(n);
                l.reserve(n);
            }
            Data::List(..) => {}
        }
        self.valid.reserve(n.div_ceil(64));
    }

    /// Appends a null (not for lists, which go through their builder).
    #[inline]
    fn push_null(&mut self) {
        match &mut self.data {
            Data::Bool(v) => v.push(false),
            Data::Int(v) | Data::Time(v) | Data::Duration(v) => v.push(0),
            Data::Count(v) => v.push(0),
            Data::Real(v) => v.push(0.0),
            Data::Str(o, b) => o.push(b.len() as u32),
            Data::Addr(v) => v.push([0; 16]),
            Data::Subnet(a, l) => {
                a.push([0; 16]);
                l.push(0);
            }
            Data::List(..) => return,
        }
        self.nulls = true;
    }

    /// Drops cells past `rows` after a bad value.
    fn truncate(&mut self, rows: usize) {
        match &mut self.data {
            Data::Bool(v) => v.truncate(rows),
            Data::Int(v) | Data::Time(v) | Data::Duration(v) => v.truncate(rows),
            Data::Count(v) => v.truncate(rows),
            Data::Real(v) => v.truncate(rows),
            Data::Str(o, b) => {
                o.truncate(rows + 1);
                b.truncate(o[rows] as usize);
            }
            Data::Addr(v) => v.truncate(rows),
            Data::Subnet(a, l) => {
                a.truncate(rows);
                l.truncate(rows);
            }
            Data::List(..) => return,
        }
        self.valid.truncate(rows.div_ceil(64));
        if !rows.is_multiple_of(64) {
            if let Some(w) = self.valid.get_mut(rows / 64) {
                *w &= (1u64 << (rows % 64)) - 1;
            }
        }
    }

    fn finish(&mut self) -> Column {
        let data = match &mut self.data {
            Data::Bool(v) => ColumnData::Bool(std::mem::take(v)),
            Data::Int(v) => ColumnData::Int(std::mem::take(v)),
            Data::Count(v) => ColumnData::Count(std::mem::take(v)),
            Data::Real(v) => ColumnData::Real(std::mem::take(v)),
            Data::Time(v) => ColumnData::Time(std::mem::take(v)),
            Data::Duration(v) => ColumnData::Duration(std::mem::take(v)),
            Data::Str(o, b) => {
                self.last_bytes = b.len();
                ColumnData::Str {
                    offsets: std::mem::replace(o, vec![0]),
                    bytes: std::mem::take(b),
                }
            }
            Data::Addr(v) => ColumnData::Address(std::mem::take(v)),
            Data::Subnet(a, l) => ColumnData::Subnet {
                addrs: std::mem::take(a),
                lens: std::mem::take(l),
            },
            Data::List(cb, _) => {
                // The list builder keeps its own validity.
                self.valid.clear();
                return cb.finish();
            }
        };
        let validity = if self.nulls {
            Validity {
                words: std::mem::take(&mut self.valid),
            }
        } else {
            self.valid.clear();
            Validity::default()
        };
        self.nulls = false;
        Column { validity, data }
    }
}

impl ZBuilder {
    fn new(schema: Schema, kinds: &[Kind]) -> Self {
        let cols = schema
            .fields
            .iter()
            .zip(kinds)
            .map(|(f, k)| Col::new(&f.ty, k))
            .collect();
        ZBuilder {
            schema,
            cols,
            rows: 0,
        }
    }

    fn truncate(&mut self) {
        for c in &mut self.cols {
            c.truncate(self.rows);
        }
    }

    fn finish(&mut self) -> Batch {
        let columns = self.cols.iter_mut().map(Col::finish).collect();
        let rows = std::mem::take(&mut self.rows);
        Batch {
            schema: self.schema.clone(),
            rows: rows as u32,
            columns,
        }
    }
}

#[derive(Default)]
pub(crate) struct ZeekParser {
    started: bool,
    header: Header,
    builders: Vec<ZBuilder>,
    by_fingerprint: FxHashMap<u64, usize>,
    /// Builder of the log being read; `None` between logs.
    current: Option<usize>,
    seps: Vec<u32>,
    /// Parsed list cells of the current line: (column, first, end) into `elems`.
    lists: Vec<(usize, u32, u32)>,
    elems: Vec<Cell>,
    scratch: Vec<u8>,
}

/// Why a line was rejected.
enum Bad {
    Utf8,
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
    unescape(v, &mut out);
    out
}

/// Appends `v` with `\xHH` decoded.
fn unescape(v: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && i + 3 < v.len() && v[i + 1] == b'x' {
            if let Some(b) = hex2(v[i + 2], v[i + 3]) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
}

#[inline]
fn hex2(h: u8, l: u8) -> Option<u8> {
    let d = |c: u8| (c as char).to_digit(16);
    Some((d(h)? * 16 + d(l)?) as u8)
}

/// Appends a string cell, decoding escapes; if that yields invalid UTF-8 the
/// escaped text is kept as is.
#[inline]
fn push_string(o: &mut Vec<u32>, b: &mut Vec<u8>, v: &[u8], escapes: bool) {
    let start = b.len();
    if !escapes || memchr::memchr(b'\\', v).is_none() {
        b.extend_from_slice(v);
    } else {
        unescape(v, b);
        if std::str::from_utf8(&b[start..]).is_err() {
            b.truncate(start);
            b.extend_from_slice(v);
        }
    }
    o.push(b.len() as u32);
}

impl ZeekParser {
    fn header_line(&mut self, line: &[u8], no: u64, sink: &mut Sink) -> Result<(), ReadError> {
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
                    // Data lines are skipped until the next good header.
                    sink.skip(
                        no,
                        format_args!(
                            "#types has {} entries but #fields has {}",
                            types.len(),
                            h.fields.len()
                        ),
                    );
                    self.current = None;
                    return Ok(());
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
                let schema = Schema::new(format!("zeek.{path}"), fields);
                let fp = schema.fingerprint();
                let idx = match self.by_fingerprint.get(&fp) {
                    Some(&i) => i,
                    None => {
                        self.builders.push(ZBuilder::new(schema, &kinds));
                        self.by_fingerprint.insert(fp, self.builders.len() - 1);
                        self.builders.len() - 1
                    }
                };
                self.current = Some(idx);
            }
            b"#close" => self.current = None,
            _ => {} // #open and comments
        }
        Ok(())
    }

    /// Parses a data line into the columns of builder `idx`, or leaves them as
    /// they were.
    fn parse_line(&mut self, idx: usize, line: &[u8], batch: usize) -> Result<(), Bad> {
        let b = &mut self.builders[idx];
        let n = b.cols.len();
        let scan = find_seps(line, self.header.sep, &mut self.seps);
        if scan.non_ascii && std::str::from_utf8(line).is_err() {
            return Err(Bad::Utf8);
        }
        if self.seps.len() + 1 != n {
            return Err(Bad::Count(self.seps.len() + 1));
        }
        let r = b.rows;
        if r == 0 {
            for c in &mut b.cols {
                c.reserve(batch.min(1 << 16));
            }
        }
        if r.is_multiple_of(64) {
            for c in &mut b.cols {
                c.valid.push(0);
            }
        }
        let (word, bit) = (r / 64, 1u64 << (r % 64));
        self.lists.clear();
        self.elems.clear();
        self.scratch.clear();
        let h = &self.header;
        let mut start = 0usize;
        for (i, col) in b.cols.iter_mut().enumerate() {
            let end = self.seps.get(i).map_or(line.len(), |&e| e as usize);
            let v = &line[start..end];
            if is(v, &h.unset) {
                col.push_null();
                if let Data::List(..) = col.data {
                    self.lists.push((i, u32::MAX, 0));
                }
                start = end + 1;
                continue;
            }
            macro_rules! put {
                ($vec:expr, $e:expr) => {
                    match $e {
                        Some(x) => $vec.push(x),
                        None if is(v, &h.empty) => {
                            col.push_null();
                            start = end + 1;
                            continue;
                        }
                        None => {
                            b.rows = r;
                            truncate(b, r);
                            return Err(Bad::Value(i));
                        }
                    }
                };
            }
            match &mut col.data {
                Data::Count(x) => put!(x, parse_u64(v)),
                Data::Time(x) => put!(x, parse_seconds_ns(v)),
                Data::Duration(x) => put!(x, parse_seconds_ns(v)),
                Data::Int(x) => put!(x, parse_i64(v)),
                Data::Real(x) => put!(x, parse_f64(v)),
                Data::Bool(x) => put!(
                    x,
                    match v {
                        b"T" => Some(true),
                        b"F" => Some(false),
                        _ => None,
                    }
                ),
                Data::Addr(x) => put!(x, parse_addr(v).map(|a| a.0)),
                Data::Subnet(a, l) => match parse_subnet(v) {
                    Some(s) => {
                        a.push(s.addr.0);
                        l.push(s.len);
                    }
                    None if is(v, &h.empty) => {
                        col.push_null();
                        start = end + 1;
                        continue;
                    }
                    None => {
                        truncate(b, r);
                        return Err(Bad::Value(i));
                    }
                },
                Data::Str(o, bytes) => {
                    if is(v, &h.empty) {
                        o.push(bytes.len() as u32);
                    } else {
                        push_string(o, bytes, v, scan.backslash);
                    }
                }
                Data::List(_, ek) => {
                    let first = self.elems.len() as u32;
                    if v != h.empty.as_slice() {
                        let ok =
                            parse_list(line, start, end, ek, h, &mut self.elems, &mut self.scratch);
                        if !ok {
                            truncate(b, r);
                            return Err(Bad::Value(i));
                        }
                    }
                    self.lists.push((i, first, self.elems.len() as u32));
                }
            }
            col.valid[word] |= bit;
            start = end + 1;
        }
        Ok(())
    }
}

fn truncate(b: &mut ZBuilder, rows: usize) {
    b.rows = rows;
    b.truncate();
}

/// Parses the elements of a set or vector into `elems`.
fn parse_list(
    line: &[u8],
    a: usize,
    b: usize,
    kind: &Kind,
    h: &Header,
    elems: &mut Vec<Cell>,
    scratch: &mut Vec<u8>,
) -> bool {
    let mut s = a;
    loop {
        let e = memchr::memchr(h.set_sep, &line[s..b]).map_or(b, |j| s + j);
        let v = &line[s..e];
        let c = if v == h.unset.as_slice() {
            Cell::Null
        } else {
            match element(line, s, e, kind, scratch) {
                Some(c) => c,
                None => return false,
            }
        };
        elems.push(c);
        if e == b {
            return true;
        }
        s = e + 1;
    }
}

fn element(line: &[u8], a: usize, b: usize, kind: &Kind, scratch: &mut Vec<u8>) -> Option<Cell> {
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
        Kind::Addr => Cell::Addr(u128::from_ne_bytes(parse_addr(v)?.0)),
        Kind::Subnet => {
            let n = parse_subnet(v)?;
            Cell::Subnet(u128::from_ne_bytes(n.addr.0), n.len)
        }
        Kind::Str => {
            if memchr::memchr(b'\\', v).is_none() {
                Cell::Str {
                    scratch: false,
                    a: a as u32,
                    b: b as u32,
                }
            } else {
                let start = scratch.len();
                unescape(v, scratch);
                if std::str::from_utf8(&scratch[start..]).is_err() {
                    scratch.truncate(start);
                    Cell::Str {
                        scratch: false,
                        a: a as u32,
                        b: b as u32,
                    }
                } else {
                    Cell::Str {
                        scratch: true,
                        a: start as u32,
                        b: scratch.len() as u32,
                    }
                }
            }
        }
        Kind::List(_) => return None,
    })
}

/// What one pass over a line found besides the separators.
struct Scan {
    /// Some byte is >= 0x80, so UTF-8 needs checking.
    non_ascii: bool,
    /// Some byte is a backslash, so strings may need unescaping.
    backslash: bool,
}

/// What one 64-byte block holds: separator positions as bits, and whether any
/// byte is a backslash or non-ASCII.
struct Block {
    seps: u64,
    backslash: bool,
    high: bool,
}

/// Portable block scan, eight bytes at a time (SWAR).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn block_swar(blk: &[u8], sep: u8) -> Block {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HI: u64 = 0x8080_8080_8080_8080;
    // 0x80 in each byte of `x` that is zero (exact, no false positives).
    let zeros = |x: u64| !(((x & LO7) + LO7) | x | LO7);
    // Those 0x80 bits gathered into 8 bits, byte i to bit i.
    let gather = |m: u64| ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
    let pat = u64::from_le_bytes([sep; 8]);
    let bs = u64::from_le_bytes([b'\\'; 8]);
    let (mut seps, mut slash, mut high) = (0u64, 0u64, 0u64);
    for (k, c) in blk.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(c.try_into().unwrap_or_default());
        high |= w;
        slash |= zeros(w ^ bs);
        seps |= gather(zeros(w ^ pat)) << (8 * k);
    }
    Block {
        seps,
        backslash: slash != 0,
        high: high & HI != 0,
    }
}

/// Block scan with SSE2, part of the x86_64 baseline.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn block_sse2(blk: &[u8], sep: u8) -> Block {
    use std::arch::x86_64::*;
    let (mut seps, mut slash, mut high) = (0u64, 0i32, 0i32);
    // SAFETY: SSE2 is always available on x86_64, and each unaligned load reads
    // exactly the 16 bytes of chunk `c`.
    unsafe {
        let vs = _mm_set1_epi8(sep as i8);
        let vb = _mm_set1_epi8(b'\\' as i8);
        for (k, c) in blk.chunks_exact(16).enumerate() {
            let x = _mm_loadu_si128(c.as_ptr().cast::<__m128i>());
            seps |= (_mm_movemask_epi8(_mm_cmpeq_epi8(x, vs)) as u32 as u64) << (16 * k);
            slash |= _mm_movemask_epi8(_mm_cmpeq_epi8(x, vb));
            high |= _mm_movemask_epi8(x);
        }
    }
    Block {
        seps,
        backslash: slash != 0,
        high: high != 0,
    }
}

/// Positions of `sep` in `line`, found 64 bytes at a time as a bitmask so the
/// bit loop mispredicts once per block rather than once per byte or word.
fn find_seps(line: &[u8], sep: u8, out: &mut Vec<u32>) -> Scan {
    #[cfg(target_arch = "x86_64")]
    return find_seps_with(line, sep, out, block_sse2);
    #[cfg(not(target_arch = "x86_64"))]
    return find_seps_with(line, sep, out, block_swar);
}

#[inline(always)]
fn find_seps_with(
    line: &[u8],
    sep: u8,
    out: &mut Vec<u32>,
    block: impl Fn(&[u8], u8) -> Block,
) -> Scan {
    out.clear();
    let mut scan = Scan {
        non_ascii: false,
        backslash: false,
    };
    let mut add = |b: Block, base: u32| {
        let mut m = b.seps;
        while m != 0 {
            out.push(base + m.trailing_zeros());
            m &= m - 1;
        }
        scan.non_ascii |= b.high;
        scan.backslash |= b.backslash;
    };
    let mut blocks = line.chunks_exact(64);
    let mut base = 0u32;
    for blk in &mut blocks {
        add(block(blk, sep), base);
        base += 64;
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // Padding that is ASCII, no backslash, and not the separator.
        let mut pad = [if sep == 0 { 1 } else { 0 }; 64];
        pad[..rest.len()].copy_from_slice(rest);
        add(block(&pad, sep), base);
    }
    scan
}

/// Slice equality, quick for the usual one-byte `-`.
#[inline(always)]
fn is(v: &[u8], pat: &[u8]) -> bool {
    v.len() == pat.len() && (v.len() == 1 && v[0] == pat[0] || v == pat)
}

fn push_cell(col: &mut ColumnBuilder, c: &Cell, line: &str, scratch: &[u8]) {
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
        Cell::Addr(x) => col.push_address(Address(x.to_ne_bytes())),
        Cell::Subnet(a, len) => col.push_subnet(Subnet {
            addr: Address(a.to_ne_bytes()),
            len,
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
            return self.header_line(line, no, sink);
        }
        if line.is_empty() {
            return Ok(());
        }
        let Some(idx) = self.current else {
            sink.skip(
                no,
                format_args!("data line outside of a log (no #types header)"),
            );
            return Ok(());
        };
        match self.parse_line(idx, line, sink.batch_size()) {
            Ok(()) => {
                // Checked by `parse_line`; only list elements need it as text.
                let text = match self.elems.is_empty() {
                    true => "",
                    false => std::str::from_utf8(line).unwrap_or_default(),
                };
                let b = &mut self.builders[idx];
                for &(i, first, end) in &self.lists {
                    let Data::List(cb, _) = &mut b.cols[i].data else {
                        continue;
                    };
                    if first == u32::MAX {
                        cb.push_null();
                    } else {
                        cb.push_list(|child| {
                            for e in &self.elems[first as usize..end as usize] {
                                push_cell(child, e, text, &self.scratch);
                            }
                        });
                    }
                }
                b.rows += 1;
                sink.stats.events += 1;
                if b.rows >= sink.batch_size() {
                    sink.emit(b.finish());
                }
            }
            Err(Bad::Utf8) => sink.skip(no, format_args!("invalid utf-8")),
            Err(Bad::Count(got)) => sink.skip(
                no,
                format_args!("expected {} fields but got {got}", self.header.fields.len()),
            ),
            Err(Bad::Value(i)) => sink.skip(
                no,
                format_args!(
                    "cannot parse field {} ({}) as {}",
                    self.header.fields[i],
                    field_text(line, self.header.sep, i),
                    self.builders[idx].schema.fields[i].ty
                ),
            ),
        }
        Ok(())
    }

    fn finish(&mut self, sink: &mut Sink) {
        for b in &mut self.builders {
            if b.rows > 0 {
                sink.emit(b.finish());
            }
        }
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
    fn separator_scan_swar() {
        let mut seps = Vec::new();
        for len in [0usize, 5, 63, 64, 65, 130, 200] {
            let mut l: Vec<u8> = (0..len)
                .map(|i| [b'\t', b'x', b'\\', 0xc3, b'-'][i * 7 % 5])
                .collect();
            let want: Vec<u32> = (0..len as u32)
                .filter(|&i| l[i as usize] == b'\t')
                .collect();
            let scan = super::find_seps_with(&l, b'\t', &mut seps, super::block_swar);
            assert_eq!(seps, want);
            assert_eq!(scan.non_ascii, l.contains(&0xc3));
            assert_eq!(scan.backslash, l.contains(&b'\\'));
            l.retain(|c| c.is_ascii() && *c != b'\\');
            let scan = super::find_seps_with(&l, b'\t', &mut seps, super::block_swar);
            assert!(!scan.non_ascii && !scan.backslash);
        }
    }

    #[test]
    fn separator_scan() {
        let line = b"a\tbb\t\tccccccccccc\td\t\teeeeeeeeeeeeeeeeeeee\t";
        let mut seps = Vec::new();
        super::find_seps(line, b'\t', &mut seps);
        let want: Vec<u32> = (0..line.len() as u32)
            .filter(|&i| line[i as usize] == b'\t')
            .collect();
        assert_eq!(seps, want);
        let scan = super::find_seps(b"\x80\xff\x09\x7f\x08\x0a\x19\x89\x09", b'\t', &mut seps);
        assert_eq!(seps, [2, 8]);
        assert!(scan.non_ascii && !scan.backslash);
        let scan = super::find_seps(b"abcdefgh\\x", b'\t', &mut seps);
        assert!(!scan.non_ascii && scan.backslash);
        let scan = super::find_seps(b"abcdefghijklmnop\xc3\xa4", b'\t', &mut seps);
        assert!(scan.non_ascii && !scan.backslash);
        // Long lines cross 64-byte blocks; high bytes and backslashes anywhere.
        for len in [63usize, 64, 65, 127, 128, 200] {
            for at in [0, len / 2, len - 1] {
                let mut l: Vec<u8> = (0..len)
                    .map(|i| if i % 7 == 3 { b'\t' } else { b'a' })
                    .collect();
                let want: Vec<u32> = (0..len as u32)
                    .filter(|&i| l[i as usize] == b'\t')
                    .collect();
                let scan = super::find_seps(&l, b'\t', &mut seps);
                assert_eq!(seps, want);
                assert!(!scan.non_ascii && !scan.backslash);
                l[at] = 0xc3;
                assert!(
                    super::find_seps(&l, b'\t', &mut seps).non_ascii,
                    "{len} {at}"
                );
                l[at] = b'\\';
                assert!(
                    super::find_seps(&l, b'\t', &mut seps).backslash,
                    "{len} {at}"
                );
            }
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
    fn bad_values_anywhere_keep_columns_aligned() {
        let mut text = HEADER.as_bytes().to_vec();
        let mut want = Vec::new();
        for i in 0..1000u64 {
            let line = match i % 9 {
                // A bad value in the first, a middle, and the last column.
                2 => format!("x{i}\t{i}\ts{i}\t-\t1\t1\n"),
                4 => format!("{i}\t{i}\ts{i}\t1.2.3.4,bad\t1\t1\n"),
                6 => format!("{i}\t{i}\ts{i}\t-\t1\tnope\n"),
                _ => {
                    want.push(i);
                    let s = if i % 5 == 0 {
                        "-".to_string()
                    } else {
                        format!("s{i}")
                    };
                    format!("{i}\t{i}\t{s}\t::{i:x}\t{}\t1\n", i % 65536)
                }
            };
            text.extend_from_slice(line.as_bytes());
        }
        let (bs, stats) = read_text(&text, 64);
        assert_eq!(stats.events as usize, want.len());
        assert_eq!(stats.skipped as usize, 1000 - want.len());
        let mut got = Vec::new();
        for b in &bs {
            assert!(b.rows <= 64);
            b.validate().unwrap();
            for r in 0..b.rows as usize {
                let Value::Count(n) = field(b, r, "n") else {
                    panic!("n is null")
                };
                assert_eq!(field(b, r, "ts"), Value::Time(n as i64 * 1_000_000_000));
                let s = if n % 5 == 0 {
                    Value::Null
                } else {
                    Value::String(format!("s{n}"))
                };
                assert_eq!(field(b, r, "s"), s);
                assert_eq!(
                    field(b, r, "v"),
                    Value::List(vec![Value::Address(
                        Address::parse(&format!("::{n:x}")).unwrap()
                    )])
                );
                got.push(n);
            }
        }
        assert_eq!(got, want);
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
        // On-CPU time of this thread, so a busy machine does not skew the figure.
        let cpu = || {
            std::fs::read_to_string("/proc/thread-self/schedstat")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .map(|ns| ns as f64 / 1e9)
        };
        let cpu0 = cpu();
        let t = std::time::Instant::now();
        let mut rows = 0u64;
        while let Some(bs) = r.read(65536).unwrap() {
            rows += bs.iter().map(|b| b.rows as u64).sum::<u64>();
        }
        let secs = t.elapsed().as_secs_f64();
        let mb = meta.len() as f64 / 1e6;
        eprintln!(
            "zeek: {rows} events, {mb:.0} MB in {secs:.2} s = {:.0} MB/s wall ({} skipped)",
            mb / secs,
            r.stats().skipped
        );
        if let (Some(a), Some(b)) = (cpu0, cpu()) {
            eprintln!("zeek: {:.2} s on cpu = {:.0} MB/s cpu", b - a, mb / (b - a));
        }
    }
}
