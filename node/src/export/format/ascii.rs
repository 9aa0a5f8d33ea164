//! VAST's ASCII notation, one event per line: `<v1, v2, <nested>, ...>`.

use super::{flush_buf, Writer};
use crate::data::value::{format_duration, push_base64, write_time};
use crate::data::{Batch, Schema, Type, ValueRef};
use std::io::{self, Write};

/// Writes events in VAST's ASCII notation; dotted field names that share a prefix
/// become nested records again (`id.orig_h id.orig_p` → `<..., <h, p>, ...>`).
#[derive(Default)]
pub struct AsciiWriter {
    buf: Vec<u8>,
    /// Render plan of the last schema, keyed by its fingerprint.
    plan: Option<(u64, Vec<Piece>)>,
}

/// A step of rendering one row: literal punctuation or a column's cell.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(&'static str),
    Field(usize),
}

impl AsciiWriter {
    /// A writer with no schema seen yet.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Turns flattened field names back into nested angle brackets. Only consecutive
/// fields with a common prefix are grouped, as flattening keeps records contiguous.
fn plan(schema: &Schema) -> Vec<Piece> {
    let mut out = vec![Piece::Lit("<")];
    let mut stack: Vec<&str> = Vec::new();
    // Whether the next item opens a record or follows `<` (no separator needed).
    let mut at_start = true;
    for (i, f) in schema.fields.iter().enumerate() {
        let parts: Vec<&str> = f.name.split('.').collect();
        let prefix = &parts[..parts.len() - 1];
        let common = stack.iter().zip(prefix).take_while(|(a, b)| a == b).count();
        while stack.len() > common {
            stack.pop();
            out.push(Piece::Lit(">"));
            at_start = false;
        }
        for p in &prefix[common..] {
            if !at_start {
                out.push(Piece::Lit(", "));
            }
            out.push(Piece::Lit("<"));
            stack.push(p);
            at_start = true;
        }
        if !at_start {
            out.push(Piece::Lit(", "));
        }
        out.push(Piece::Field(i));
        at_start = false;
    }
    for _ in stack {
        out.push(Piece::Lit(">"));
    }
    out.push(Piece::Lit(">"));
    out
}

impl Writer for AsciiWriter {
    fn write(&mut self, batch: &Batch, rows: &[u32], out: &mut dyn Write) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let fp = batch.schema.fingerprint();
        if self.plan.as_ref().is_none_or(|(f, _)| *f != fp) {
            self.plan = Some((fp, plan(&batch.schema)));
        }
        let pieces = &self.plan.as_ref().expect("plan set above").1;
        let fields = &batch.schema.fields;
        for &row in rows {
            for p in pieces {
                match p {
                    Piece::Lit(s) => self.buf.extend_from_slice(s.as_bytes()),
                    Piece::Field(i) => write_ascii(
                        &mut self.buf,
                        batch.columns[*i].get(row as usize),
                        &fields[*i].ty,
                    ),
                }
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

/// Appends `s` in double quotes with `"`, `\` and control characters escaped.
pub(crate) fn write_quoted(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\t' => b"\\t",
            b'\r' => b"\\r",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            write_hex_escape(buf, c);
        } else {
            buf.extend_from_slice(esc);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Appends `\xHH`.
pub(crate) fn write_hex_escape(buf: &mut Vec<u8>, c: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.extend_from_slice(&[b'\\', b'x', HEX[(c >> 4) as usize], HEX[(c & 0xf) as usize]]);
}

/// Appends a real so that it reads back as a real (`1.0`, not `1`).
pub(crate) fn write_real(buf: &mut Vec<u8>, r: f64) {
    let _ = write!(buf, "{r:?}");
}

/// Appends one cell in ASCII notation, typed by `ty` (which tells strings from
/// patterns and enums and names the elements of containers).
pub(crate) fn write_ascii(buf: &mut Vec<u8>, v: ValueRef<'_>, ty: &Type) {
    // Writing to a Vec cannot fail, so `write!` results are ignored.
    match v {
        ValueRef::Null => buf.extend_from_slice(b"nil"),
        ValueRef::Bool(b) => buf.push(if b { b'T' } else { b'F' }),
        ValueRef::Int(i) => {
            let _ = write!(buf, "{i:+}");
        }
        ValueRef::Count(c) => {
            let _ = write!(buf, "{c}");
        }
        ValueRef::Real(r) => write_real(buf, r),
        ValueRef::Duration(d) => buf.extend_from_slice(format_duration(d).as_bytes()),
        ValueRef::Time(t) => write_time(buf, t),
        ValueRef::Str(s) => match ty.base() {
            Type::Pattern => {
                buf.push(b'/');
                buf.extend_from_slice(s.as_bytes());
                buf.push(b'/');
            }
            Type::Enum(_) => buf.extend_from_slice(s.as_bytes()),
            _ => write_quoted(buf, s),
        },
        ValueRef::Address(a) => {
            let _ = write!(buf, "{a}");
        }
        ValueRef::Subnet(s) => {
            let _ = write!(buf, "{s}");
        }
        // Base64, as in json and csv: one unambiguous token without quoting rules.
        ValueRef::Blob(b) => push_base64(buf, b),
        ValueRef::List(c, a, b) => {
            let et = ty.list_element();
            buf.push(b'[');
            for i in a..b {
                if i > a {
                    buf.extend_from_slice(b", ");
                }
                write_ascii(buf, c.get(i), et);
            }
            buf.push(b']');
        }
        ValueRef::Map(k, v, a, b) => {
            let (kt, vt) = ty.map_types();
            buf.push(b'{');
            for i in a..b {
                if i > a {
                    buf.extend_from_slice(b", ");
                }
                write_ascii(buf, k.get(i), kt);
                buf.extend_from_slice(b" -> ");
                write_ascii(buf, v.get(i), vt);
            }
            buf.push(b'}');
        }
        ValueRef::Record(cs, row) => {
            let fields = match ty.base() {
                Type::Record(fs) => fs.as_slice(),
                _ => &[],
            };
            buf.push(b'<');
            for (i, (c, f)) in cs.iter().zip(fields).enumerate() {
                if i > 0 {
                    buf.extend_from_slice(b", ");
                }
                write_ascii(buf, c.get(row), &f.ty);
            }
            buf.push(b'>');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{BatchBuilder, Field, Value};
    use crate::export::format::test_util;

    fn names(names: &[&str]) -> Schema {
        Schema::new(
            "t",
            names.iter().map(|n| Field::new(*n, Type::Count)).collect(),
        )
    }

    fn render_plan(s: &Schema) -> String {
        plan(s)
            .iter()
            .map(|p| match p {
                Piece::Lit(l) => l.to_string(),
                Piece::Field(i) => s.fields[*i].name.clone(),
            })
            .collect()
    }

    #[test]
    fn nesting_follows_dotted_prefixes() {
        assert_eq!(render_plan(&names(&["a", "b"])), "<a, b>");
        assert_eq!(
            render_plan(&names(&["ts", "id.oh", "id.op", "proto"])),
            "<ts, <id.oh, id.op>, proto>"
        );
        assert_eq!(
            render_plan(&names(&["a.b.c", "a.b.d", "a.e", "f"])),
            "<<<a.b.c, a.b.d>, a.e>, f>"
        );
        assert_eq!(render_plan(&names(&["x.a", "y.b"])), "<<x.a>, <y.b>>");
        assert_eq!(
            render_plan(&names(&["x.a", "z", "x.b"])),
            "<<x.a>, z, <x.b>>"
        );
        assert_eq!(render_plan(&names(&[])), "<>");
    }

    #[test]
    fn renders_every_type() {
        let out = test_util::render(&mut AsciiWriter::new(), &[test_util::batch()]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "<2009-11-18T08:00:21.486539, \"Pii6cUUq1v4\", <192.168.1.102, 68, 2001:db8::1, 67>, \
             T, -5, 1.5, 1.5ms, /ab+c/, udp, 10.0.0.0/8, [\"a\", \"b\"], [1, 2], {\"k\" -> 1}, \
             [<7, \"z\">]>"
        );
        assert_eq!(
            lines[1],
            "<2009-11-18T08:00:21.486539001, \"tab\\there \\\"q\\\" back\\\\slash\\nnl,comma \\x01 é\", \
             <nil, nil, nil, nil>, F, +5, NaN, -2s, nil, nil, nil, [\"x,y\", \"-\"], [], {}, nil>"
        );
        assert_eq!(
            lines[2],
            "<nil, nil, <nil, nil, nil, nil>, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil>"
        );
    }

    #[test]
    fn reals_and_ints_keep_their_kind() {
        let s = Schema::new(
            "t",
            vec![Field::new("r", Type::Real), Field::new("i", Type::Int)],
        );
        let mut b = BatchBuilder::new(s);
        b.column(0).push_value(&Value::Real(3.0));
        b.column(1).push_value(&Value::Int(0));
        b.finish_row();
        let out = test_util::render(&mut AsciiWriter::new(), &[b.finish()]);
        assert_eq!(out, "<3.0, +0>\n");
    }
}
