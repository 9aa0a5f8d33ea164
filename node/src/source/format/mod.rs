//! Input formats: readers that turn text (or generated data) into batches.

pub mod csv;
pub mod json;
mod parallel;
pub mod pcap;
pub mod syslog;
pub mod test;
pub mod zeek;

mod util;

use super::{ReadError, Reader};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::str::FromStr;

pub(crate) use util::{LineDriven, LineParser, Sink};

const IO_BUFFER: usize = 1 << 20;

/// Opens a file (or stdin when `path` is `None`) for reading, transparently
/// decompressing gzip (detected by its magic bytes, several members allowed).
pub fn open_input(path: Option<&Path>) -> io::Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = match path {
        Some(p) => Box::new(File::open(p)?),
        None => Box::new(io::stdin()),
    };
    buffered(raw)
}

/// `open_input` over a file that is already open (a confined spawned source).
pub fn open_file_input(file: File) -> io::Result<Box<dyn BufRead + Send>> {
    buffered(Box::new(file))
}

fn buffered(raw: Box<dyn Read + Send>) -> io::Result<Box<dyn BufRead + Send>> {
    let mut r = BufReader::with_capacity(IO_BUFFER, raw);
    if is_gzip(&mut r)? {
        let dec = flate2::bufread::MultiGzDecoder::new(r);
        Ok(Box::new(BufReader::with_capacity(IO_BUFFER, dec)))
    } else {
        Ok(Box::new(r))
    }
}

/// Peeks at the first two bytes without consuming them.
fn is_gzip(r: &mut BufReader<Box<dyn Read + Send>>) -> io::Result<bool> {
    loop {
        match r.fill_buf() {
            Ok(b) => return Ok(b.len() >= 2 && b[0] == 0x1f && b[1] == 0x8b),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The input formats `import` understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Zeek TSV logs (`zeek`).
    Zeek,
    /// Zeek JSON logs (`zeek-json`).
    ZeekJson,
    /// Suricata EVE JSON (`suricata`).
    Suricata,
    /// Generic line-delimited JSON (`json`).
    Json,
    /// CSV with a header line (`csv`).
    Csv,
    /// RFC 5424 / RFC 3164 syslog (`syslog`).
    Syslog,
    /// Generated events (`test`).
    Test,
    /// pcap or pcapng packet captures (`pcap`).
    Pcap,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "zeek" => Format::Zeek,
            "zeek-json" => Format::ZeekJson,
            "suricata" => Format::Suricata,
            "json" => Format::Json,
            "csv" => Format::Csv,
            "syslog" => Format::Syslog,
            "test" => Format::Test,
            "pcap" => Format::Pcap,
            _ => return Err(format!("unknown input format: {s}")),
        })
    }
}

/// Options that apply to some readers.
#[derive(Clone, Debug, Default)]
pub struct ReaderOptions {
    /// Schema name (`-t NAME`) for formats that do not name their events (json, csv).
    pub schema: Option<String>,
    /// Seed of the `test` generator.
    pub seed: u64,
    /// For `pcap`: keep at most this many payload bytes per connection.
    pub cutoff: Option<u64>,
}

/// Builds the reader for `format` over `input`.
pub fn make_reader(
    format: Format,
    input: Box<dyn BufRead + Send>,
    opts: &ReaderOptions,
) -> Result<Box<dyn Reader>, ReadError> {
    Ok(match format {
        Format::Zeek => Box::new(zeek::ZeekReader::new(input)),
        Format::ZeekJson => Box::new(json::JsonReader::new(input, json::Flavor::Zeek, None)),
        Format::Suricata => Box::new(json::JsonReader::new(input, json::Flavor::Suricata, None)),
        Format::Json => Box::new(json::JsonReader::new(
            input,
            json::Flavor::Generic,
            opts.schema.clone(),
        )),
        Format::Csv => Box::new(csv::CsvReader::new(input, opts.schema.clone())),
        Format::Syslog => Box::new(syslog::SyslogReader::new(input)),
        Format::Test => Box::new(test::TestReader::new(opts.seed)),
        Format::Pcap => Box::new(pcap::PcapReader::new(input, opts.cutoff)),
    })
}

/// Test helpers shared by the readers' unit tests.
#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::data::{Batch, Value};
    use std::path::PathBuf;

    /// The shared test data directory, or `None` (with a message) when absent.
    pub fn data(rel: &str) -> Option<PathBuf> {
        let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")).join(rel);
        if p.exists() {
            Some(p)
        } else {
            eprintln!("skipping: test data {} not found", p.display());
            None
        }
    }

    /// Reads all batches (and the final error, if any) from a reader.
    pub fn read_all(r: &mut dyn Reader, batch_size: usize) -> (Vec<Batch>, Option<ReadError>) {
        let mut out = Vec::new();
        loop {
            match r.read(batch_size) {
                Ok(Some(bs)) => out.extend(bs),
                Ok(None) => return (out, None),
                Err(e) => {
                    // Readers surface an error once, then end.
                    assert!(matches!(r.read(batch_size), Ok(None)));
                    return (out, Some(e));
                }
            }
        }
    }

    pub fn reader_for(format: Format, bytes: Vec<u8>) -> Box<dyn Reader> {
        make_reader(
            format,
            Box::new(io::Cursor::new(bytes)),
            &ReaderOptions::default(),
        )
        .unwrap()
    }

    pub fn file_reader(format: Format, rel: &str) -> Option<Box<dyn Reader>> {
        let p = data(rel)?;
        let input = open_input(Some(&p)).unwrap();
        Some(make_reader(format, input, &ReaderOptions::default()).unwrap())
    }

    pub fn total_rows(bs: &[Batch]) -> usize {
        bs.iter().map(|b| b.rows as usize).sum()
    }

    /// Value of field `name` in row `row` of batch `b`.
    pub fn field(b: &Batch, row: usize, name: &str) -> Value {
        let i = b
            .schema
            .field_index(name)
            .unwrap_or_else(|| panic!("no field {name} in {}", b.schema.name));
        b.columns[i].value(row, &b.schema.fields[i].ty)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn tmpfile(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("vast-fmt-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn format_names() {
        for (n, f) in [
            ("zeek", Format::Zeek),
            ("zeek-json", Format::ZeekJson),
            ("suricata", Format::Suricata),
            ("json", Format::Json),
            ("csv", Format::Csv),
            ("syslog", Format::Syslog),
            ("test", Format::Test),
            ("pcap", Format::Pcap),
        ] {
            assert_eq!(n.parse::<Format>().unwrap(), f);
        }
        assert!("pcapng".parse::<Format>().is_err());
    }

    #[test]
    fn gzip_members_are_concatenated() {
        let mut bytes = gz(b"hello\n");
        bytes.extend(gz(b"world\n"));
        let p = tmpfile("multi.gz", &bytes);
        let mut s = String::new();
        open_input(Some(&p))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        std::fs::remove_file(&p).ok();
        assert_eq!(s, "hello\nworld\n");
        let p = tmpfile("plain", b"plain\n");
        let mut s = String::new();
        open_input(Some(&p))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        std::fs::remove_file(&p).ok();
        assert_eq!(s, "plain\n");
    }

    #[test]
    fn truncated_gzip_keeps_decoded_lines() {
        let mut text = String::from("{\"a\": 1}\n");
        for i in 0..20000 {
            text.push_str(&format!(
                "{{\"a\": {i}, \"b\": \"x{}\"}}\n",
                i * 7919 % 10007
            ));
        }
        let bytes = gz(text.as_bytes());
        let p = tmpfile("trunc.gz", &bytes[..bytes.len() * 2 / 3]);
        let input = open_input(Some(&p)).unwrap();
        let mut r = make_reader(Format::Json, input, &ReaderOptions::default()).unwrap();
        let (bs, err) = read_all(r.as_mut(), 1000);
        std::fs::remove_file(&p).ok();
        assert!(err.is_some(), "truncation must surface as an error");
        let n = total_rows(&bs);
        assert!(n > 1000 && n < 20001, "kept {n} rows");
        assert_eq!(r.stats().events as usize, n);
    }
}
