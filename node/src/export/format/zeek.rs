//! Zeek TSV logs: a header block per schema, tab-separated values, `#close` at the end,
//! in the form Zeek's ASCII writer produces and `import zeek` reads back.

use super::ascii::{write_ascii, write_hex_escape, write_real};
use super::{flush_buf, Writer};
use crate::data::value::now_nanos;
use crate::data::{Batch, Schema, Type, ValueRef};
use std::io::{self, Write};

const UNSET: &[u8] = b"-";
const EMPTY: &[u8] = b"(empty)";

/// Writes Zeek TSV. Each schema change closes the current log (`#close`) and starts
/// a new header block; [`Writer::finish`] closes the last one.
pub struct ZeekWriter {
    buf: Vec<u8>,
    /// Scratch space for containers rendered as strings.
    scratch: Vec<u8>,
    /// Fingerprint of the schema whose header was written last and not yet closed.
    open: Option<u64>,
    /// Clock for `#open`/`#close`, replaceable in tests.
    now: fn() -> i64,
}

impl Default for ZeekWriter {
    fn default() -> Self {
        ZeekWriter {
            buf: Vec::new(),
            scratch: Vec::new(),
            open: None,
            now: now_nanos,
        }
    }
}

impl ZeekWriter {
    /// A writer with no log open yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn write_close(&mut self) {
        let ts = header_time((self.now)());
        self.buf.extend_from_slice(b"#close\t");
        self.buf.extend_from_slice(ts.as_bytes());
        self.buf.push(b'\n');
    }

    fn write_header(&mut self, schema: &Schema) {
        let b = &mut self.buf;
        b.extend_from_slice(b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n");
        b.extend_from_slice(b"#unset_field\t-\n#path\t");
        let path = schema.name.strip_prefix("zeek.").unwrap_or(&schema.name);
        write_string(b, path, false);
        b.extend_from_slice(b"\n#open\t");
        b.extend_from_slice(header_time((self.now)()).as_bytes());
        b.extend_from_slice(b"\n#fields");
        for f in &schema.fields {
            b.push(b'\t');
            write_string(b, &f.name, false);
        }
        b.extend_from_slice(b"\n#types");
        for f in &schema.fields {
            b.push(b'\t');
            b.extend_from_slice(zeek_type(&f.ty, false).as_bytes());
        }
        b.push(b'\n');
    }
}

/// `#open`/`#close` timestamps: UTC, `YYYY-MM-DD-HH-MM-SS`.
fn header_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(dt) => dt.format("%Y-%m-%d-%H-%M-%S").to_string(),
        None => secs.to_string(),
    }
}

/// The Zeek type name. Containers inside containers, maps and records have no Zeek
/// equivalent and become `string` holding their ASCII rendering.
pub fn zeek_type(ty: &Type, nested: bool) -> String {
    match ty {
        Type::Alias(name, inner) => match (name.as_str(), inner.base()) {
            ("port", Type::Count) => "port".into(),
            ("set", Type::List(elem)) if !nested => format!("set[{}]", zeek_type(elem, true)),
            _ => zeek_type(inner, nested),
        },
        Type::Bool => "bool".into(),
        Type::Int => "int".into(),
        Type::Count => "count".into(),
        Type::Real => "double".into(),
        Type::Duration => "interval".into(),
        Type::Time => "time".into(),
        Type::String => "string".into(),
        Type::Pattern => "pattern".into(),
        Type::Enum(_) => "enum".into(),
        Type::Address => "addr".into(),
        Type::Subnet => "subnet".into(),
        Type::List(elem) if !nested => format!("vector[{}]", zeek_type(elem, true)),
        Type::List(_) | Type::Map(_, _) | Type::Record(_) | Type::Blob => "string".into(),
    }
}

/// Appends a string with Zeek's escaping: `\\` for backslash, `\xHH` for tabs and
/// other control bytes, and for commas inside set/vector elements. UTF-8 stays raw
/// (Zeek's `enable_utf_8`). Values that would read as unset or empty are escaped too.
fn write_string(buf: &mut Vec<u8>, s: &str, in_set: bool) {
    write_escaped(buf, s.as_bytes(), in_set, false);
}

/// Appends raw bytes as a Zeek string: printable ASCII stays, everything else
/// (control bytes, bytes >= 0x80, which need not form UTF-8) becomes `\xHH`.
fn write_blob(buf: &mut Vec<u8>, bytes: &[u8], in_set: bool) {
    write_escaped(buf, bytes, in_set, true);
}

/// Zeek escaping shared by strings and blobs; `escape_high` also escapes bytes
/// >= 0x80 (blobs need not be UTF-8).
fn write_escaped(buf: &mut Vec<u8>, bytes: &[u8], in_set: bool, escape_high: bool) {
    if bytes.is_empty() {
        buf.extend_from_slice(EMPTY);
        return;
    }
    let mut rest = bytes;
    if bytes == UNSET || bytes == EMPTY {
        write_hex_escape(buf, bytes[0]);
        rest = &bytes[1..];
    }
    for &c in rest {
        match c {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            0..=0x1f | 0x7f => write_hex_escape(buf, c),
            b',' if in_set => write_hex_escape(buf, c),
            0x80..=0xff if escape_high => write_hex_escape(buf, c),
            _ => buf.push(c),
        }
    }
}

/// Appends nanoseconds as seconds with exactly six decimals, rounded to the nearest
/// microsecond in integer arithmetic so no precision is lost to floats.
fn write_secs6(buf: &mut Vec<u8>, ns: i64) {
    let us = (ns.unsigned_abs() + 500) / 1000;
    if ns < 0 && us > 0 {
        buf.push(b'-');
    }
    let _ = write!(buf, "{}.{:06}", us / 1_000_000, us % 1_000_000);
}

/// Appends one cell; `in_set` for elements of a set or vector.
fn write_value(buf: &mut Vec<u8>, scratch: &mut Vec<u8>, v: ValueRef<'_>, ty: &Type, in_set: bool) {
    match v {
        ValueRef::Null => buf.extend_from_slice(UNSET),
        ValueRef::Bool(b) => buf.push(if b { b'T' } else { b'F' }),
        ValueRef::Int(i) => {
            let _ = write!(buf, "{i}");
        }
        ValueRef::Count(c) => {
            let _ = write!(buf, "{c}");
        }
        ValueRef::Real(r) => write_real(buf, r),
        ValueRef::Duration(ns) | ValueRef::Time(ns) => write_secs6(buf, ns),
        ValueRef::Str(s) => write_string(buf, s, in_set),
        ValueRef::Blob(b) => write_blob(buf, b, in_set),
        ValueRef::Address(a) => {
            let _ = write!(buf, "{a}");
        }
        ValueRef::Subnet(s) => {
            let _ = write!(buf, "{s}");
        }
        ValueRef::List(c, a, b) if !in_set => {
            if a == b {
                buf.extend_from_slice(EMPTY);
                return;
            }
            let et = ty.list_element();
            for i in a..b {
                if i > a {
                    buf.push(b',');
                }
                write_value(buf, scratch, c.get(i), et, true);
            }
        }
        // Types without a Zeek equivalent: their ASCII rendering as a string.
        other => {
            scratch.clear();
            write_ascii(scratch, other, ty);
            let s = std::str::from_utf8(scratch).unwrap_or_default();
            write_string(buf, s, in_set);
        }
    }
}

impl Writer for ZeekWriter {
    fn write(&mut self, batch: &Batch, rows: &[u32], out: &mut dyn Write) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let fp = batch.schema.fingerprint();
        if self.open != Some(fp) {
            if self.open.is_some() {
                self.write_close();
            }
            self.write_header(&batch.schema);
            self.open = Some(fp);
        }
        let fields = &batch.schema.fields;
        let mut scratch = std::mem::take(&mut self.scratch);
        for &row in rows {
            for (i, (c, f)) in batch.columns.iter().zip(fields).enumerate() {
                if i > 0 {
                    self.buf.push(b'\t');
                }
                write_value(
                    &mut self.buf,
                    &mut scratch,
                    c.get(row as usize),
                    &f.ty,
                    false,
                );
            }
            self.buf.push(b'\n');
            if let Err(e) = flush_buf(&mut self.buf, out, false) {
                self.scratch = scratch;
                return Err(e);
            }
        }
        self.scratch = scratch;
        flush_buf(&mut self.buf, out, true)
    }

    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.open.take().is_some() {
            self.write_close();
        }
        flush_buf(&mut self.buf, out, true)?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{BatchBuilder, Field};
    use crate::export::format::test_util;

    /// 2009-11-18T08:00:21Z.
    fn fixed_now() -> i64 {
        1_258_531_221_000_000_000
    }

    fn writer() -> ZeekWriter {
        ZeekWriter {
            now: fixed_now,
            ..ZeekWriter::new()
        }
    }

    const HEADER: &str = "#separator \\x09\n\
        #set_separator\t,\n\
        #empty_field\t(empty)\n\
        #unset_field\t-\n\
        #path\ttest\n\
        #open\t2009-11-18-08-00-21\n\
        #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tb\ti\tr\td\tp\te\tnet\ttags\tv\tm\trecs\n\
        #types\ttime\tstring\taddr\tport\taddr\tport\tbool\tint\tdouble\tinterval\tpattern\tenum\tsubnet\tset[string]\tvector[count]\tstring\tvector[string]\n";

    #[test]
    fn renders_every_type() {
        let out = test_util::render(&mut writer(), &[test_util::batch()]);
        let expected = format!(
            "{HEADER}\
             1258531221.486539\tPii6cUUq1v4\t192.168.1.102\t68\t2001:db8::1\t67\tT\t-5\t1.5\t0.001500\t\
             ab+c\tudp\t10.0.0.0/8\ta,b\t1,2\t{{\"k\" -> 1}}\t<7\\x2c \"z\">\n\
             1258531221.486539\ttab\\x09here \"q\" back\\\\slash\\x0anl,comma \\x01 é\t-\t-\t-\t-\tF\t5\tNaN\t\
             -2.000000\t-\t-\t-\tx\\x2cy,\\x2d\t(empty)\t{{}}\t-\n\
             -\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n\
             #close\t2009-11-18-08-00-21\n"
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn schema_changes_close_and_reopen() {
        let mut b = BatchBuilder::new(Schema::new(
            "suricata.alert",
            vec![Field::new("s", Type::String)],
        ));
        b.column(0).push_str("-");
        b.finish_row();
        b.column(0).push_str("");
        b.finish_row();
        b.column(0).push_str("(empty)");
        b.finish_row();
        let t = test_util::batch();
        let out = test_util::render(&mut writer(), &[t.clone(), t.clone(), b.finish(), t]);
        let heads: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("#path") || l.starts_with("#close"))
            .collect();
        assert_eq!(
            heads,
            [
                "#path\ttest",
                "#close\t2009-11-18-08-00-21",
                "#path\tsuricata.alert",
                "#close\t2009-11-18-08-00-21",
                "#path\ttest",
                "#close\t2009-11-18-08-00-21",
            ]
        );
        assert!(out.contains("#types\tstring\n\\x2d\n(empty)\n\\x28empty)\n#close"));
        assert_eq!(
            out.lines()
                .filter(|l| l.starts_with("1258531221.486539\tPii6"))
                .count(),
            3
        );
    }

    #[test]
    fn nothing_written_nothing_closed() {
        let mut w = writer();
        let mut out = Vec::new();
        w.write(&test_util::batch(), &[], &mut out).unwrap();
        w.finish(&mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn times_are_exact_to_the_microsecond() {
        let s = |ns| {
            let mut b = Vec::new();
            write_secs6(&mut b, ns);
            String::from_utf8(b).unwrap()
        };
        assert_eq!(s(test_util::TS), "1258531221.486539");
        assert_eq!(s(0), "0.000000");
        assert_eq!(s(1_499), "0.000001");
        assert_eq!(s(999_999_999_600), "1000.000000");
        assert_eq!(s(-1_500_000_000), "-1.500000");
        assert_eq!(s(-1), "0.000000");
        assert_eq!(s(i64::MAX), "9223372036.854776");
        assert_eq!(s(i64::MIN), "-9223372036.854776");
        // Every microsecond of a real timestamp survives, unlike through f64 division.
        for us in 0..2000 {
            let ns = 1_700_000_000_000_000_000 + us * 1000;
            assert_eq!(s(ns), format!("1700000000.{:06}", us));
        }
    }

    #[test]
    fn types_map_to_zeek_names() {
        assert_eq!(zeek_type(&Type::timestamp(), false), "time");
        assert_eq!(zeek_type(&Type::port(), false), "port");
        assert_eq!(zeek_type(&Type::set(Type::Address), false), "set[addr]");
        assert_eq!(
            zeek_type(&Type::List(Box::new(Type::Subnet)), false),
            "vector[subnet]"
        );
        assert_eq!(
            zeek_type(&Type::List(Box::new(Type::set(Type::Count))), false),
            "vector[string]"
        );
        assert_eq!(
            zeek_type(&Type::Alias("myalias".into(), Box::new(Type::Real)), false),
            "double"
        );
        assert_eq!(
            zeek_type(
                &Type::Map(Box::new(Type::String), Box::new(Type::Int)),
                false
            ),
            "string"
        );
    }
}
