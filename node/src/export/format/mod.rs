//! Output formats: writers that render batches of events as text.

pub mod arrow;
pub mod ascii;
pub mod csv;
pub mod json;
pub mod null;
pub mod pcap;
pub mod zeek;

use crate::data::Batch;
use std::fmt;
use std::str::FromStr;

/// An output format, as named on the command line (`export json ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// One JSON object per line with flattened (`id.orig_h`) keys.
    Json,
    /// Comma-separated values with a header per schema.
    Csv,
    /// VAST's ASCII notation, `<v1, v2, ...>` per line.
    Ascii,
    /// Zeek TSV logs that Zeek tools (and `import zeek`) read back.
    Zeek,
    /// Discards everything; for measuring query throughput.
    Null,
    /// The raw packets of `pcap.packet` events as a pcap file.
    Pcap,
    /// Arrow IPC streams, one per schema, one after another.
    Arrow,
}

/// The names [`OutputFormat::from_str`] accepts, for error messages and help texts.
pub const SUPPORTED_FORMATS: &[&str] = &["json", "csv", "ascii", "zeek", "null", "pcap", "arrow"];

impl OutputFormat {
    /// The name the format is selected by.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Json => "json",
            OutputFormat::Csv => "csv",
            OutputFormat::Ascii => "ascii",
            OutputFormat::Zeek => "zeek",
            OutputFormat::Null => "null",
            OutputFormat::Pcap => "pcap",
            OutputFormat::Arrow => "arrow",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that no writer implements.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown output format `{name}`; supported formats: {}", SUPPORTED_FORMATS.join(", "))]
pub struct UnknownFormat {
    /// The name as given.
    pub name: String,
}

impl FromStr for OutputFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(OutputFormat::Json),
            "csv" => Ok(OutputFormat::Csv),
            "ascii" => Ok(OutputFormat::Ascii),
            "zeek" => Ok(OutputFormat::Zeek),
            "null" => Ok(OutputFormat::Null),
            "pcap" => Ok(OutputFormat::Pcap),
            "arrow" => Ok(OutputFormat::Arrow),
            _ => Err(UnknownFormat {
                name: s.to_string(),
            }),
        }
    }
}

/// Renders events; one writer serves one output stream and keeps per-stream state
/// such as the last schema (for CSV and Zeek headers).
pub trait Writer: Send {
    /// Writes the given rows (ascending indices) of a batch.
    fn write(
        &mut self,
        batch: &Batch,
        rows: &[u32],
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()>;
    /// Called once at the end (e.g. zeek `#close`).
    fn finish(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<()>;
}

/// A fresh writer for the format.
pub fn make_writer(f: OutputFormat) -> Box<dyn Writer> {
    match f {
        OutputFormat::Json => Box::new(json::JsonWriter::new()),
        OutputFormat::Csv => Box::new(csv::CsvWriter::new()),
        OutputFormat::Ascii => Box::new(ascii::AsciiWriter::new()),
        OutputFormat::Zeek => Box::new(zeek::ZeekWriter::new()),
        OutputFormat::Null => Box::new(null::NullWriter),
        OutputFormat::Pcap => Box::new(pcap::PcapWriter::new()),
        OutputFormat::Arrow => Box::new(arrow::ArrowWriter::new()),
    }
}

/// Flush the row buffer to the output once it grows past this, so memory stays
/// bounded on large batches while writes stay large.
const FLUSH_AT: usize = 1 << 16;

/// Writes `buf` out if it is large (or `force`), then clears it.
fn flush_buf(buf: &mut Vec<u8>, out: &mut dyn std::io::Write, force: bool) -> std::io::Result<()> {
    if force || buf.len() >= FLUSH_AT {
        if !buf.is_empty() {
            out.write_all(buf)?;
        }
        buf.clear();
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Batches covering every type, shared by the writers' tests.

    use crate::data::value::{parse_time, Address, Subnet};
    use crate::data::{Batch, BatchBuilder, Field, Schema, Type, Value};

    /// `zeek.conn`-like schema with one field of every type.
    pub fn schema() -> Schema {
        Schema::new(
            "zeek.test",
            vec![
                Field::new("ts", Type::timestamp()),
                Field::new("uid", Type::String),
                Field::new("id.orig_h", Type::Address),
                Field::new("id.orig_p", Type::port()),
                Field::new("id.resp_h", Type::Address),
                Field::new("id.resp_p", Type::port()),
                Field::new("b", Type::Bool),
                Field::new("i", Type::Int),
                Field::new("r", Type::Real),
                Field::new("d", Type::Duration),
                Field::new("p", Type::Pattern),
                Field::new("e", Type::Enum(vec![])),
                Field::new("net", Type::Subnet),
                Field::new("tags", Type::set(Type::String)),
                Field::new("v", Type::List(Box::new(Type::Count))),
                Field::new(
                    "m",
                    Type::Map(Box::new(Type::String), Box::new(Type::Count)),
                ),
                Field::new(
                    "recs",
                    Type::List(Box::new(Type::Record(vec![
                        Field::new("x", Type::Count),
                        Field::new("y", Type::String),
                    ]))),
                ),
            ],
        )
    }

    pub const TS: i64 = 1_258_531_221_486_539_000;

    /// Row 0: every field set; row 1: escaping-heavy strings and empty containers;
    /// row 2: all null.
    pub fn batch() -> Batch {
        let mut b = BatchBuilder::new(schema());
        let row0 = vec![
            Value::Time(parse_time("2009-11-18T08:00:21.486539Z").unwrap()),
            Value::String("Pii6cUUq1v4".into()),
            Value::Address(Address::parse("192.168.1.102").unwrap()),
            Value::Count(68),
            Value::Address(Address::parse("2001:db8::1").unwrap()),
            Value::Count(67),
            Value::Bool(true),
            Value::Int(-5),
            Value::Real(1.5),
            Value::Duration(1_500_000),
            Value::Pattern("ab+c".into()),
            Value::Enum("udp".into()),
            Value::Subnet(Subnet::parse("10.0.0.0/8").unwrap()),
            Value::List(vec![Value::String("a".into()), Value::String("b".into())]),
            Value::List(vec![Value::Count(1), Value::Count(2)]),
            Value::Map(vec![(Value::String("k".into()), Value::Count(1))]),
            Value::List(vec![Value::Record(vec![
                ("x".into(), Value::Count(7)),
                ("y".into(), Value::String("z".into())),
            ])]),
        ];
        let row1 = vec![
            Value::Time(TS + 1),
            Value::String("tab\there \"q\" back\\slash\nnl,comma \u{1} é".into()),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Bool(false),
            Value::Int(5),
            Value::Real(f64::NAN),
            Value::Duration(-2_000_000_000),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::List(vec![Value::String("x,y".into()), Value::String("-".into())]),
            Value::List(vec![]),
            Value::Map(vec![]),
            Value::Null,
        ];
        for row in [row0, row1] {
            for (i, v) in row.iter().enumerate() {
                assert!(b.column(i).push_value(v), "field {i}: {v:?}");
            }
            b.finish_row();
        }
        b.finish_row();
        let batch = b.finish();
        batch.validate().unwrap();
        batch
    }

    /// Runs a writer over all rows of `batches` and returns the output.
    pub fn render(w: &mut dyn super::Writer, batches: &[Batch]) -> String {
        let mut out = Vec::new();
        for b in batches {
            let rows: Vec<u32> = (0..b.rows).collect();
            w.write(b, &rows, &mut out).unwrap();
        }
        w.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_roundtrip() {
        for name in SUPPORTED_FORMATS {
            let f: OutputFormat = name.parse().unwrap();
            assert_eq!(f.name(), *name);
            assert_eq!(f.to_string(), *name);
        }
        assert_eq!("JSON".parse::<OutputFormat>().unwrap(), OutputFormat::Json);
        let err = "parquet".parse::<OutputFormat>().unwrap_err().to_string();
        assert!(err.contains("`parquet`"), "{err}");
        assert!(
            err.contains("json, csv, ascii, zeek, null, pcap, arrow"),
            "{err}"
        );
    }

    #[test]
    fn every_format_writes_a_selection() {
        let b = test_util::batch();
        // pcap writes packets only; its own tests cover the refusal of other events.
        // arrow is binary; its own tests read it back.
        for name in SUPPORTED_FORMATS
            .iter()
            .filter(|n| **n != "pcap" && **n != "arrow")
        {
            let mut w = make_writer(name.parse().unwrap());
            let mut all = Vec::new();
            w.write(&b, &[0, 2], &mut all).unwrap();
            w.write(&b, &[], &mut all).unwrap();
            w.finish(&mut all).unwrap();
            let text = String::from_utf8(all).unwrap();
            if *name != "null" {
                assert!(text.contains("192.168.1.102"), "{name}: {text}");
                assert!(!text.contains("slash"), "{name}: row 1 not selected");
            }
        }
    }
}
