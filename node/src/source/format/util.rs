//! Shared machinery of the line-based readers: chunked line splitting, batch
//! assembly, rate-limited warnings, and fast value parsers.

use crate::data::{Address, Batch, BatchBuilder, Schema, Subnet};
use crate::source::{ReadError, ReadStats, Reader};
use rustc_hash::FxHashMap;
use std::fmt;
use std::io::{self, BufRead};

const CHUNK: usize = 4 << 20;

/// Splits input into lines, reading big chunks into one reusable buffer.
pub(crate) struct LineReader {
    input: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Number of the line last returned (1-based).
    pub line_no: u64,
    /// A read error, kept so it surfaces after everything decoded before it.
    pub error: Option<io::Error>,
}

impl LineReader {
    pub fn new(input: Box<dyn BufRead + Send>) -> Self {
        LineReader {
            input,
            buf: vec![0; CHUNK],
            pos: 0,
            end: 0,
            eof: false,
            line_no: 0,
            error: None,
        }
    }

    /// The next line number and line without its terminator (`\n` or `\r\n`); `None` at the end.
    pub fn next_line(&mut self) -> Option<(u64, &[u8])> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                let start = self.pos;
                self.pos += i + 1;
                self.line_no += 1;
                return Some((self.line_no, trim_cr(&self.buf[start..start + i])));
            }
            if self.eof {
                if self.pos < self.end {
                    let start = self.pos;
                    self.pos = self.end;
                    self.line_no += 1;
                    return Some((self.line_no, trim_cr(&self.buf[start..self.end])));
                }
                return None;
            }
            self.fill();
        }
    }

    fn fill(&mut self) {
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.end == self.buf.len() {
            // A line longer than the buffer.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(e);
                    self.eof = true;
                }
            }
            return;
        }
    }
}

#[inline]
fn trim_cr(l: &[u8]) -> &[u8] {
    match l.split_last() {
        Some((b'\r', rest)) => rest,
        _ => l,
    }
}

/// Where parsers put rows: one builder per schema, full batches, stats, warnings.
pub(crate) struct Sink {
    builders: Vec<BatchBuilder>,
    by_fingerprint: FxHashMap<u64, usize>,
    out: Vec<Batch>,
    batch_size: usize,
    pub stats: ReadStats,
    what: &'static str,
    /// When set, skips are not logged but kept (up to the limit) for whoever
    /// runs this sink on a block of a larger input to log in order.
    deferred: Option<(usize, Vec<(u64, String)>)>,
}

impl Sink {
    pub(crate) fn new(what: &'static str) -> Self {
        Sink {
            builders: Vec::new(),
            by_fingerprint: FxHashMap::default(),
            out: Vec::new(),
            batch_size: usize::MAX,
            stats: ReadStats::default(),
            what,
            deferred: None,
        }
    }

    /// Keeps up to `limit` skip warnings instead of logging them.
    pub fn defer_warnings(&mut self, limit: usize) {
        self.deferred = Some((limit, Vec::new()));
    }

    /// The skip warnings kept since the last call.
    pub fn take_warnings(&mut self) -> Vec<(u64, String)> {
        self.deferred
            .as_mut()
            .map(|(_, w)| std::mem::take(w))
            .unwrap_or_default()
    }

    /// The builder index for a schema; equal schemas share a builder.
    pub fn builder_for(&mut self, schema: Schema) -> usize {
        let fp = schema.fingerprint();
        if let Some(&i) = self.by_fingerprint.get(&fp) {
            return i;
        }
        self.builders.push(BatchBuilder::new(schema));
        self.by_fingerprint.insert(fp, self.builders.len() - 1);
        self.builders.len() - 1
    }

    #[inline]
    pub fn builder(&mut self, i: usize) -> &mut BatchBuilder {
        &mut self.builders[i]
    }

    /// Completes the row pushed into builder `i`.
    #[inline]
    pub fn commit(&mut self, i: usize) {
        let b = &mut self.builders[i];
        b.finish_row();
        self.stats.events += 1;
        if b.rows() >= self.batch_size {
            self.out.push(b.finish());
        }
    }

    /// The row limit of batches in the current `read` call.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Hands over a batch a parser built itself; `events` counts its rows.
    pub fn emit(&mut self, batch: Batch) {
        self.out.push(batch);
    }

    /// Sets the row limit of batches for the current `read` call.
    pub fn set_batch_size(&mut self, n: usize) {
        self.batch_size = n.max(1);
    }

    /// Finishes builder `i`'s partial batch now, so that rows of a schema that
    /// is being replaced come out before rows of its successor.
    pub fn flush_builder(&mut self, i: usize) {
        let b = &mut self.builders[i];
        if !b.is_empty() {
            self.out.push(b.finish());
        }
    }

    /// Takes the batches completed so far.
    pub fn take_out(&mut self) -> Vec<Batch> {
        std::mem::take(&mut self.out)
    }

    /// Takes the completed batches and finishes every partial one (end of input).
    pub fn take_all(&mut self) -> Vec<Batch> {
        let mut out = std::mem::take(&mut self.out);
        for b in &mut self.builders {
            if !b.is_empty() {
                out.push(b.finish());
            }
        }
        out
    }

    /// Counts a skipped record and warns: the first ten, then every 10,000th.
    pub fn skip(&mut self, line: u64, reason: fmt::Arguments<'_>) {
        self.stats.skipped += 1;
        if let Some((limit, kept)) = &mut self.deferred {
            if kept.len() < *limit {
                kept.push((line, reason.to_string()));
            }
            return;
        }
        let n = self.stats.skipped;
        if n <= 10 {
            tracing::warn!("{}: skipping line {line}: {reason}", self.what);
        } else if n.is_multiple_of(10_000) {
            tracing::warn!(
                "{}: skipped {n} malformed lines so far, latest line {line}: {reason}",
                self.what
            );
        }
    }
}

/// A format that consumes its input line by line.
pub(crate) trait LineParser: Send + 'static {
    /// Handles one line (terminator stripped). `Err` aborts the whole input.
    fn line(&mut self, line: &[u8], line_no: u64, sink: &mut Sink) -> Result<(), ReadError>;

    /// At the end of input: emit partial batches the parser keeps itself.
    fn finish(&mut self, _sink: &mut Sink) {}
}

/// A [`Reader`] driving a [`LineParser`].
pub(crate) struct LineDriven<P> {
    lines: LineReader,
    sink: Sink,
    parser: P,
    finished: bool,
}

impl<P: LineParser> LineDriven<P> {
    pub fn new(input: Box<dyn BufRead + Send>, parser: P, what: &'static str) -> Self {
        LineDriven {
            lines: LineReader::new(input),
            sink: Sink::new(what),
            parser,
            finished: false,
        }
    }
}

impl<P: LineParser> Reader for LineDriven<P> {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<Batch>>, ReadError> {
        if self.finished {
            return Ok(None);
        }
        self.sink.batch_size = batch_size.max(1);
        while let Some((no, line)) = self.lines.next_line() {
            if let Err(e) = self.parser.line(line, no, &mut self.sink) {
                self.finished = true;
                return Err(e);
            }
            if !self.sink.out.is_empty() {
                return Ok(Some(std::mem::take(&mut self.sink.out)));
            }
        }
        // End of input: flush partial batches; a read error comes after them.
        self.parser.finish(&mut self.sink);
        let mut out = std::mem::take(&mut self.sink.out);
        for b in &mut self.sink.builders {
            if !b.is_empty() {
                out.push(b.finish());
            }
        }
        if !out.is_empty() {
            return Ok(Some(out));
        }
        self.finished = true;
        match self.lines.error.take() {
            Some(e) => {
                tracing::warn!(
                    "{}: input ended with an error after line {}: {e}",
                    self.sink.what,
                    self.lines.line_no
                );
                Err(ReadError::Io(e))
            }
            None => Ok(None),
        }
    }

    fn stats(&self) -> ReadStats {
        self.sink.stats.clone()
    }
}

// ---- value parsers ----

/// Unsigned decimal.
#[inline]
pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    if b.len() < 20 {
        for &c in b {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + d as u64;
        }
        Some(v)
    } else {
        for &c in b {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v.checked_mul(10)?.checked_add(d as u64)?;
        }
        Some(v)
    }
}

/// Signed decimal with optional `+`/`-`.
#[inline]
pub(crate) fn parse_i64(b: &[u8]) -> Option<i64> {
    match b.first()? {
        b'-' => {
            let m = parse_u64(&b[1..])?;
            if m <= i64::MAX as u64 + 1 {
                Some((m as i64).wrapping_neg())
            } else {
                None
            }
        }
        b'+' => i64::try_from(parse_u64(&b[1..])?).ok(),
        _ => i64::try_from(parse_u64(b)?).ok(),
    }
}

#[inline]
pub(crate) fn parse_f64(b: &[u8]) -> Option<f64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Seconds with an optional fraction (`1258531221.486539`, `-0.5`) as exact
/// nanoseconds; exponent forms fall back to floating point.
#[inline]
pub(crate) fn parse_seconds_ns(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let mut i = 0;
    let mut secs: u64 = 0;
    while i < digits.len() && i < 18 {
        let d = digits[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        secs = secs * 10 + d as u64;
        i += 1;
    }
    let int_digits = i;
    let mut ns: u64 = 0;
    let mut frac_digits = 0;
    if digits.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 1_000_000_000u64;
        while i < digits.len() {
            let d = digits[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if scale > 1 {
                scale /= 10;
                ns += d as u64 * scale;
            }
            frac_digits += 1;
            i += 1;
        }
    }
    if i == digits.len() && int_digits + frac_digits > 0 {
        let total = i64::try_from(secs).ok()?.checked_mul(1_000_000_000)?;
        let total = total.checked_add(ns as i64)?;
        return Some(if neg { -total } else { total });
    }
    // Exponents, more than 18 integer digits, or garbage.
    let f = parse_f64(b)?;
    let ns = (f * 1e9).round();
    (ns.is_finite() && ns.abs() < 9.2e18).then_some(ns as i64)
}

/// Dotted-quad IPv4 by hand; anything with a `:` goes to the IPv6 parser.
#[inline(always)]
pub(crate) fn parse_addr(b: &[u8]) -> Option<Address> {
    if let Some(a) = parse_ipv4(b) {
        return Some(a);
    }
    if b.len() < 2 || b.len() > 45 || memchr::memchr(b':', b).is_none() {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    s.parse::<std::net::Ipv6Addr>()
        .ok()
        .map(|v6| Address::from_ip(std::net::IpAddr::V6(v6)))
}

#[inline(always)]
fn parse_ipv4(b: &[u8]) -> Option<Address> {
    if b.len() < 7 || b.len() > 15 {
        return None;
    }
    let digit = |i: usize| b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9);
    let mut out = [0u8; 16];
    out[10] = 0xff;
    out[11] = 0xff;
    let mut i = 0;
    for k in 0..4 {
        let mut v = digit(i)? as u32;
        i += 1;
        if let Some(d) = digit(i) {
            v = v * 10 + d as u32;
            i += 1;
            if let Some(d) = digit(i) {
                v = v * 10 + d as u32;
                i += 1;
            }
        }
        if v > 255 {
            return None;
        }
        out[12 + k] = v as u8;
        if k < 3 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    (i == b.len()).then_some(Address(out))
}

/// `addr/len`.
pub(crate) fn parse_subnet(b: &[u8]) -> Option<Subnet> {
    let i = memchr::memrchr(b'/', b)?;
    let addr = parse_addr(&b[..i])?;
    let l = parse_u64(&b[i + 1..])?;
    let len = if addr.is_v4() {
        (l <= 32).then_some(l as u8 + 96)?
    } else {
        (l <= 128).then_some(l as u8)?
    };
    Some(Subnet::new(addr, len))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days of month `m` (1-12) in year `y` of the proleptic Gregorian calendar.
pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn num(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    s.iter().try_fold(0u32, |acc, &c| {
        let d = c.wrapping_sub(b'0');
        (d <= 9).then_some(acc * 10 + d as u32)
    })
}

/// ISO 8601 date or date-time: `YYYY-MM-DD`, then `T`, space or `+` and
/// `hh:mm[:ss[.frac]]`, then optional `Z` or `±hh[:mm]`/`±hhmm`. Nanoseconds UTC.
pub(crate) fn parse_iso_time(b: &[u8]) -> Option<i64> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(b, 0, 4)?, num(b, 5, 2)?, num(b, 8, 2)?);
    // `2017-02-30` is no date; without this check it would become March 2nd.
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y as i64, mo) {
        return None;
    }
    let days = days_from_civil(y as i64, mo, d);
    let mut secs = days * 86_400;
    if b.len() == 10 {
        return secs.checked_mul(1_000_000_000);
    }
    if !matches!(b[10], b'T' | b' ' | b'+') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let (h, mi) = (num(b, 11, 2)?, num(b, 14, 2)?);
    if h > 23 || mi > 59 {
        return None;
    }
    secs += h as i64 * 3600 + mi as i64 * 60;
    let mut i = 16;
    let mut ns = 0i64;
    if b.get(i) == Some(&b':') {
        let s = num(b, i + 1, 2)?;
        if s > 60 {
            return None;
        }
        secs += s as i64;
        i += 3;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let mut scale = 1_000_000_000i64;
            let start = i;
            while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                if scale > 1 {
                    scale /= 10;
                    ns += (c - b'0') as i64 * scale;
                }
                i += 1;
            }
            if i == start {
                return None;
            }
        }
    }
    match b.get(i) {
        None => {}
        Some(b'Z') if i + 1 == b.len() => {}
        Some(&c @ (b'+' | b'-')) => {
            let rest = &b[i + 1..];
            let (oh, om) = match rest.len() {
                2 => (num(rest, 0, 2)?, 0),
                4 => (num(rest, 0, 2)?, num(rest, 2, 2)?),
                5 if rest[2] == b':' => (num(rest, 0, 2)?, num(rest, 3, 2)?),
                _ => return None,
            };
            let off = oh as i64 * 3600 + om as i64 * 60;
            secs -= if c == b'+' { off } else { -off };
        }
        _ => return None,
    }
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// A string inferred as a richer type, as the JSON and CSV readers do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Inferred {
    Address(Address),
    Subnet(Subnet),
    Time(i64),
}

/// Whether text is really an address, subnet or ISO time.
pub(crate) fn infer_str(b: &[u8]) -> Option<Inferred> {
    let first = *b.first()?;
    if !(first.is_ascii_hexdigit() || first == b':') {
        return None;
    }
    if memchr::memchr(b'/', b).is_some() {
        return parse_subnet(b).map(Inferred::Subnet);
    }
    if let Some(a) = parse_addr(b) {
        return Some(Inferred::Address(a));
    }
    if first.is_ascii_digit() {
        return parse_iso_time(b).map(Inferred::Time);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::value::parse_time;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"1x"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"-9223372036854775809"), None);
        assert_eq!(parse_i64(b"+5"), Some(5));
        assert_eq!(
            parse_seconds_ns(b"1258531221.486539"),
            Some(1_258_531_221_486_539_000)
        );
        assert_eq!(parse_seconds_ns(b"-0.5"), Some(-500_000_000));
        assert_eq!(parse_seconds_ns(b"3"), Some(3_000_000_000));
        assert_eq!(parse_seconds_ns(b"1.5e3"), Some(1_500_000_000_000));
        assert_eq!(parse_seconds_ns(b"."), None);
        assert_eq!(parse_seconds_ns(b"abc"), None);
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_addr(b"192.168.1.1"), Address::parse("192.168.1.1"));
        assert_eq!(parse_addr(b"fe80::1"), Address::parse("fe80::1"));
        assert_eq!(parse_addr(b"256.1.1.1"), None);
        assert_eq!(parse_addr(b"1.2.3"), None);
        assert_eq!(parse_addr(b"1.2.3.4.5"), None);
        assert_eq!(parse_addr(b"00:22:2d:81:db:10"), None);
        assert_eq!(parse_subnet(b"10.0.0.0/8"), Subnet::parse("10.0.0.0/8"));
        assert_eq!(parse_subnet(b"10.0.0.0/33"), None);
    }

    #[test]
    fn iso_times() {
        for s in [
            "2011-08-12T14:52:57.716360+0200",
            "2009-11-18T08:00:21.486539Z",
            "2020-03-02T19:37:57.819303+01:00",
            "2017-08-13",
            "2011-08-15T03:48",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_iso_time(s.as_bytes()), parse_time(s), "{s}");
        }
        assert_eq!(
            parse_iso_time(b"2017-08-13+21:10:42"),
            parse_time("2017-08-13T21:10:42")
        );
        assert_eq!(parse_iso_time(b"2017-13-01"), None);
        assert_eq!(parse_iso_time(b"2017-02-29"), None);
        assert_eq!(parse_iso_time(b"2017-04-31T00:00:00Z"), None);
        assert_eq!(parse_iso_time(b"2016-02-29"), parse_time("2016-02-29"));
        assert_eq!(parse_iso_time(b"now"), None);
    }
}
