//! pcap output: the stored bytes of `pcap.packet` events with their original
//! timestamps, as a nanosecond-precision pcap stream tcpdump and Wireshark read.

use super::{flush_buf, Writer};
use crate::data::{Batch, ValueRef};
use std::io::{self, Write};

/// The nanosecond-resolution pcap magic.
const MAGIC_NANO: u32 = 0xa1b23c4d;
/// The snapshot length declared in the header; records carry their own lengths.
const SNAPLEN: u32 = 262_144;
/// The link type of an empty output.
const ETHERNET: u32 = 1;

/// Writes packets as one pcap file. A pcap file has one link type: the first
/// packet's; packets of other link types are skipped with a warning (their count
/// is in [`PcapWriter::skipped`]).
#[derive(Default)]
pub struct PcapWriter {
    buf: Vec<u8>,
    linktype: Option<u32>,
    /// Packets left out because their link type differs from the file's.
    pub skipped: u64,
}

impl PcapWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn header(&mut self, linktype: u32) {
        self.linktype = Some(linktype);
        self.buf.extend_from_slice(&MAGIC_NANO.to_le_bytes());
        self.buf.extend_from_slice(&2u16.to_le_bytes());
        self.buf.extend_from_slice(&4u16.to_le_bytes());
        self.buf.extend_from_slice(&0i32.to_le_bytes());
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.buf.extend_from_slice(&SNAPLEN.to_le_bytes());
        self.buf.extend_from_slice(&linktype.to_le_bytes());
    }
}

fn not_packets(schema: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("export pcap: {schema} events are not packets (only pcap.packet can be written as pcap)"),
    )
}

impl Writer for PcapWriter {
    fn write(&mut self, batch: &Batch, rows: &[u32], out: &mut dyn Write) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let s = &batch.schema;
        let (Some(t), Some(p), Some(l)) = (
            s.field_index("time"),
            s.field_index("payload"),
            s.field_index("linktype"),
        ) else {
            return Err(not_packets(&s.name));
        };
        if s.name != crate::source::format::pcap::PACKET_SCHEMA {
            return Err(not_packets(&s.name));
        }
        let (tc, pc, lc) = (batch.column(t), batch.column(p), batch.column(l));
        for &row in rows {
            let row = row as usize;
            let (ValueRef::Time(ns), ValueRef::Blob(bytes)) = (tc.get(row), pc.get(row)) else {
                continue;
            };
            let linktype = match lc.get(row) {
                ValueRef::Count(c) => c as u32,
                _ => ETHERNET,
            };
            match self.linktype {
                None => self.header(linktype),
                Some(lt) if lt != linktype => {
                    if self.skipped == 0 {
                        tracing::warn!(
                            "export pcap: skipping packets of link type {linktype}: the output's link type is {lt}"
                        );
                    }
                    self.skipped += 1;
                    continue;
                }
                Some(_) => {}
            }
            let secs = ns.div_euclid(1_000_000_000) as u32;
            let frac = ns.rem_euclid(1_000_000_000) as u32;
            let len = bytes.len() as u32;
            for v in [secs, frac, len, len] {
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
            self.buf.extend_from_slice(bytes);
            flush_buf(&mut self.buf, out, false)?;
        }
        flush_buf(&mut self.buf, out, true)
    }

    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        // No packets is still a valid file: a header alone.
        if self.linktype.is_none() {
            self.header(ETHERNET);
        }
        flush_buf(&mut self.buf, out, true)?;
        if self.skipped > 0 {
            tracing::warn!(
                "export pcap: {} packets of other link types were left out",
                self.skipped
            );
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::format::pcap::stream::PcapStream;
    use crate::source::format::pcap::PacketRows;

    fn packets(linktypes: &[u32]) -> Batch {
        let mut rows = PacketRows::new(None);
        for (i, lt) in linktypes.iter().enumerate() {
            let data: Vec<u8> = (0..60 + i as u8).collect();
            rows.push(1_600_000_000_123_456_789 + i as i64, *lt, &data);
        }
        rows.builder.finish()
    }

    #[test]
    fn writes_packets_back_with_nanoseconds() {
        let b = packets(&[1, 1, 101, 1]);
        let mut w = PcapWriter::new();
        let mut out = Vec::new();
        w.write(&b, &[0, 2, 3], &mut out).unwrap();
        w.finish(&mut out).unwrap();
        assert_eq!(w.skipped, 1);
        let mut s = PcapStream::new(&out[..]);
        let mut got = Vec::new();
        while let Some(p) = s.next_packet().unwrap() {
            got.push((p.time, p.linktype, p.data.to_vec()));
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, 1_600_000_000_123_456_789);
        assert_eq!(got[1].0, 1_600_000_000_123_456_792);
        assert_eq!(got[1].2, (0..63).collect::<Vec<u8>>());
        assert!(got.iter().all(|g| g.1 == 1));
    }

    #[test]
    fn empty_output_is_a_header() {
        let mut w = PcapWriter::new();
        let mut out = Vec::new();
        w.write(&packets(&[1]), &[], &mut out).unwrap();
        w.finish(&mut out).unwrap();
        assert_eq!(out.len(), 24);
        assert_eq!(&out[..4], &MAGIC_NANO.to_le_bytes());
        let mut s = PcapStream::new(&out[..]);
        assert!(s.next_packet().unwrap().is_none());
    }

    #[test]
    fn other_events_are_an_error() {
        let b = super::super::test_util::batch();
        let mut w = PcapWriter::new();
        let e = w.write(&b, &[0], &mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            e.to_string(),
            "export pcap: zeek.test events are not packets (only pcap.packet can be written as pcap)"
        );
    }
}
