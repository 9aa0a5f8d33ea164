//! Comma-separated values: a header line per schema, then one line per event.

use super::ascii::{write_ascii, write_real};
use super::{flush_buf, Writer};
use crate::data::value::{format_duration, write_time};
use crate::data::{Batch, Type, ValueRef};
use std::io::{self, Write};

/// Writes CSV (RFC 4180 quoting). A header of the flattened field names precedes
/// the first event and every event whose schema differs from the previous one.
#[derive(Default)]
pub struct CsvWriter {
    buf: Vec<u8>,
    /// Scratch space for a cell that may need quoting.
    cell: Vec<u8>,
    /// Fingerprint of the schema of the last header.
    last: Option<u64>,
}

impl CsvWriter {
    /// A writer that has not written a header yet.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Appends `cell`, quoted and with `"` doubled if it holds a comma, quote or line break.
fn push_field(buf: &mut Vec<u8>, cell: &[u8]) {
    if cell
        .iter()
        .any(|c| matches!(c, b',' | b'"' | b'\n' | b'\r'))
    {
        buf.push(b'"');
        for &c in cell {
            if c == b'"' {
                buf.push(b'"');
            }
            buf.push(c);
        }
        buf.push(b'"');
    } else {
        buf.extend_from_slice(cell);
    }
}

/// Renders one cell unquoted: strings raw, containers in ASCII notation, times and
/// durations as in ASCII, numbers plain, null empty.
fn write_cell(cell: &mut Vec<u8>, v: ValueRef<'_>, ty: &Type) {
    match v {
        ValueRef::Null => {}
        ValueRef::Str(s) => cell.extend_from_slice(s.as_bytes()),
        ValueRef::Int(i) => {
            let _ = write!(cell, "{i}");
        }
        ValueRef::Real(r) => write_real(cell, r),
        ValueRef::Duration(d) => cell.extend_from_slice(format_duration(d).as_bytes()),
        ValueRef::Time(t) => write_time(cell, t),
        other => write_ascii(cell, other, ty),
    }
}

impl Writer for CsvWriter {
    fn write(&mut self, batch: &Batch, rows: &[u32], out: &mut dyn Write) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let fp = batch.schema.fingerprint();
        if self.last != Some(fp) {
            for (i, f) in batch.schema.fields.iter().enumerate() {
                if i > 0 {
                    self.buf.push(b',');
                }
                push_field(&mut self.buf, f.name.as_bytes());
            }
            self.buf.push(b'\n');
            self.last = Some(fp);
        }
        let fields = &batch.schema.fields;
        for &row in rows {
            for (i, (c, f)) in batch.columns.iter().zip(fields).enumerate() {
                if i > 0 {
                    self.buf.push(b',');
                }
                self.cell.clear();
                write_cell(&mut self.cell, c.get(row as usize), &f.ty);
                push_field(&mut self.buf, &self.cell);
            }
            self.buf.push(b'\n');
            flush_buf(&mut self.buf, out, false)?;
        }
        flush_buf(&mut self.buf, out, true)
    }

    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{BatchBuilder, Field, Schema};
    use crate::export::format::test_util;

    const HEADER: &str =
        "ts,uid,id.orig_h,id.orig_p,id.resp_h,id.resp_p,b,i,r,d,p,e,net,tags,v,m,recs";

    #[test]
    fn renders_every_type() {
        let out = test_util::render(&mut CsvWriter::new(), &[test_util::batch()]);
        let expected = format!(
            "{HEADER}\n\
             2009-11-18T08:00:21.486539,Pii6cUUq1v4,192.168.1.102,68,2001:db8::1,67,T,-5,1.5,1.5ms,\
             ab+c,udp,10.0.0.0/8,\"[\"\"a\"\", \"\"b\"\"]\",\"[1, 2]\",\"{{\"\"k\"\" -> 1}}\",\
             \"[<7, \"\"z\"\">]\"\n\
             2009-11-18T08:00:21.486539001,\"tab\there \"\"q\"\" back\\slash\nnl,comma \u{1} é\",\
             ,,,,F,5,NaN,-2s,,,,\"[\"\"x,y\"\", \"\"-\"\"]\",[],{{}},\n\
             ,,,,,,,,,,,,,,,,\n"
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn header_repeats_only_on_schema_change() {
        let mut b = BatchBuilder::new(Schema::new(
            "other",
            vec![Field::new("a,b", Type::Count), Field::new("c", Type::Bool)],
        ));
        b.column(0).push_count(1);
        b.column(1).push_bool(true);
        b.finish_row();
        let other = b.finish();
        let t = test_util::batch();
        let out = test_util::render(&mut CsvWriter::new(), &[t.clone(), t.clone(), other, t]);
        let headers: Vec<&str> = out
            .lines()
            .filter(|l| *l == HEADER || l.starts_with("\"a,b\""))
            .collect();
        assert_eq!(headers, [HEADER, "\"a,b\",c", HEADER]);
        assert!(out.contains("\n\"a,b\",c\n1,T\nts,"));
    }
}
