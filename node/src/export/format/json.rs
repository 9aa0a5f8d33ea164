//! JSON lines: one object per event with the flattened field names as keys.

use super::{flush_buf, Writer};
use crate::data::value::{push_base64, write_time, NANOS_PER_SEC};
use crate::data::{Batch, Schema, Type, ValueRef};
use std::io::{self, Write};

/// Writes one JSON object per line. Keys are the schema's flattened names
/// (`id.orig_h`, as Zeek's JSON logs have them), in schema order.
#[derive(Default)]
pub struct JsonWriter {
    buf: Vec<u8>,
    /// Escaped `"name":` prefixes of the last schema, keyed by its fingerprint.
    keys: Option<(u64, Vec<Vec<u8>>)>,
}

impl JsonWriter {
    /// A writer with no schema seen yet.
    pub fn new() -> Self {
        Self::default()
    }
}

fn keys(schema: &Schema) -> Vec<Vec<u8>> {
    schema
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut k = Vec::with_capacity(f.name.len() + 4);
            if i > 0 {
                k.push(b',');
            }
            write_str(&mut k, &f.name);
            k.push(b':');
            k
        })
        .collect()
}

impl Writer for JsonWriter {
    fn write(&mut self, batch: &Batch, rows: &[u32], out: &mut dyn Write) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let fp = batch.schema.fingerprint();
        if self.keys.as_ref().is_none_or(|(f, _)| *f != fp) {
            self.keys = Some((fp, keys(&batch.schema)));
        }
        let keys = &self.keys.as_ref().expect("keys set above").1;
        for &row in rows {
            self.buf.push(b'{');
            for ((key, col), f) in keys.iter().zip(&batch.columns).zip(&batch.schema.fields) {
                self.buf.extend_from_slice(key);
                write_json(&mut self.buf, col.get(row as usize), &f.ty);
            }
            self.buf.extend_from_slice(b"}\n");
            flush_buf(&mut self.buf, out, false)?;
        }
        flush_buf(&mut self.buf, out, true)
    }

    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.flush()
    }
}

/// Appends a JSON string literal.
fn write_str(buf: &mut Vec<u8>, s: &str) {
    // serde_json's escaper is table driven; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, s);
}

/// Appends exact decimal seconds (`1.5`, `-0.000001`, `3.0`), always with a fraction
/// so consumers read a float as Zeek writes intervals.
fn write_seconds(buf: &mut Vec<u8>, ns: i64) {
    if ns < 0 {
        buf.push(b'-');
    }
    let abs = ns.unsigned_abs();
    let (secs, frac) = (abs / NANOS_PER_SEC as u64, abs % NANOS_PER_SEC as u64);
    let _ = write!(buf, "{secs}.");
    if frac == 0 {
        buf.push(b'0');
    } else {
        let f = format!("{frac:09}");
        buf.extend_from_slice(f.trim_end_matches('0').as_bytes());
    }
}

/// Appends one cell as JSON, typed by `ty`.
fn write_json(buf: &mut Vec<u8>, v: ValueRef<'_>, ty: &Type) {
    match v {
        ValueRef::Null => buf.extend_from_slice(b"null"),
        ValueRef::Bool(b) => buf.extend_from_slice(if b { b"true" } else { b"false" }),
        ValueRef::Int(i) => {
            let _ = write!(buf, "{i}");
        }
        ValueRef::Count(c) => {
            let _ = write!(buf, "{c}");
        }
        ValueRef::Real(r) => {
            if r.is_finite() {
                let _ = serde_json::to_writer(&mut *buf, &r);
            } else {
                buf.extend_from_slice(b"null");
            }
        }
        ValueRef::Duration(d) => write_seconds(buf, d),
        ValueRef::Time(t) => {
            // format_time output needs no escaping.
            buf.push(b'"');
            write_time(buf, t);
            buf.push(b'"');
        }
        ValueRef::Str(s) => write_str(buf, s),
        // Raw bytes are not UTF-8: base64 keeps them lossless in a JSON string.
        ValueRef::Blob(b) => {
            buf.push(b'"');
            push_base64(buf, b);
            buf.push(b'"');
        }
        ValueRef::Address(a) => {
            let _ = write!(buf, "\"{a}\"");
        }
        ValueRef::Subnet(s) => {
            let _ = write!(buf, "\"{s}\"");
        }
        ValueRef::List(c, a, b) => {
            let et = ty.list_element();
            buf.push(b'[');
            for i in a..b {
                if i > a {
                    buf.push(b',');
                }
                write_json(buf, c.get(i), et);
            }
            buf.push(b']');
        }
        ValueRef::Map(k, v, a, b) => {
            let (kt, vt) = ty.map_types();
            buf.push(b'[');
            for i in a..b {
                if i > a {
                    buf.push(b',');
                }
                buf.extend_from_slice(b"{\"key\":");
                write_json(buf, k.get(i), kt);
                buf.extend_from_slice(b",\"value\":");
                write_json(buf, v.get(i), vt);
                buf.push(b'}');
            }
            buf.push(b']');
        }
        ValueRef::Record(cs, row) => {
            let fields = match ty.base() {
                Type::Record(fs) => fs.as_slice(),
                _ => &[],
            };
            buf.push(b'{');
            for (i, (c, f)) in cs.iter().zip(fields).enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_str(buf, &f.name);
                buf.push(b':');
                write_json(buf, c.get(row), &f.ty);
            }
            buf.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{BatchBuilder, Field};
    use crate::export::format::test_util;
    use serde_json::{json, Value as J};

    fn lines(out: &str) -> Vec<J> {
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn renders_every_type() {
        let out = test_util::render(&mut JsonWriter::new(), &[test_util::batch()]);
        let rows = lines(&out);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            json!({
                "ts": "2009-11-18T08:00:21.486539",
                "uid": "Pii6cUUq1v4",
                "id.orig_h": "192.168.1.102",
                "id.orig_p": 68,
                "id.resp_h": "2001:db8::1",
                "id.resp_p": 67,
                "b": true,
                "i": -5,
                "r": 1.5,
                "d": 0.0015,
                "p": "ab+c",
                "e": "udp",
                "net": "10.0.0.0/8",
                "tags": ["a", "b"],
                "v": [1, 2],
                "m": [{"key": "k", "value": 1}],
                "recs": [{"x": 7, "y": "z"}],
            })
        );
        assert_eq!(
            rows[1]["uid"],
            "tab\there \"q\" back\\slash\nnl,comma \u{1} é"
        );
        assert_eq!(rows[1]["ts"], "2009-11-18T08:00:21.486539001");
        assert_eq!(rows[1]["r"], J::Null);
        assert_eq!(rows[1]["d"], -2.0);
        assert_eq!(rows[1]["v"], json!([]));
        assert_eq!(rows[1]["m"], json!([]));
        assert_eq!(rows[1]["id.orig_h"], J::Null);
        let obj = rows[2].as_object().unwrap();
        assert_eq!(obj.len(), 17);
        assert!(obj.values().all(J::is_null));
    }

    #[test]
    fn keys_are_flat_and_in_schema_order() {
        let out = test_util::render(&mut JsonWriter::new(), &[test_util::batch()]);
        let first = out.lines().next().unwrap();
        assert!(
            first.starts_with(r#"{"ts":"2009-11-18T08:00:21.486539","uid":"Pii6cUUq1v4","id.orig_h":"192.168.1.102","id.orig_p":68,"#),
            "{first}"
        );
        assert!(!first.contains("\"id\":"));
    }

    #[test]
    fn schema_changes_switch_keys() {
        let mut b = BatchBuilder::new(Schema::new(
            "other",
            vec![Field::new("we\"ird", Type::Duration)],
        ));
        b.column(0).push_duration(1);
        b.finish_row();
        let out = test_util::render(
            &mut JsonWriter::new(),
            &[test_util::batch(), b.finish(), test_util::batch()],
        );
        let rows = lines(&out);
        assert_eq!(rows.len(), 7);
        assert_eq!(rows[3], json!({"we\"ird": 0.000000001}));
        assert_eq!(rows[4]["uid"], "Pii6cUUq1v4");
    }

    #[test]
    fn seconds_are_exact() {
        let s = |ns| {
            let mut b = Vec::new();
            write_seconds(&mut b, ns);
            String::from_utf8(b).unwrap()
        };
        assert_eq!(s(0), "0.0");
        assert_eq!(s(1_500_000_000), "1.5");
        assert_eq!(s(-1_000), "-0.000001");
        assert_eq!(s(i64::MIN), "-9223372036.854775808");
    }
}
