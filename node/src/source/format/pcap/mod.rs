//! Packets: pcap and pcapng streams (files, stdin, concatenations) and live
//! capture, decoded into `pcap.packet` events with a Community ID.
//!
//! Decisions worth knowing:
//! - Streams are parsed by hand ([`stream`]) because libpcap reads only from a
//!   `FILE*`; live capture goes through libpcap (the `pcap` crate, [`live`]).
//! - Every packet keeps its bytes (`payload`, a blob) and its link type
//!   (`linktype`), so `export pcap` writes them back unchanged. A pcap file has
//!   one link type: the export uses the first packet's and skips (and counts)
//!   packets of other link types.
//! - Blobs render as base64 in json, csv and ascii, and as a Zeek `string` with
//!   `\xHH` escapes in zeek output; queries match them only with `!= nil`.
//! - The cutoff ([`cutoff`]) counts transport payload per connection (both
//!   directions together); once a connection reached the cutoff, its further
//!   packets are dropped and counted, not stored.

pub mod community_id;
pub mod cutoff;
pub mod decode;
#[cfg(feature = "pcap")]
pub mod live;
/// Without the `pcap` feature there is no libpcap: opening a capture fails.
#[cfg(not(feature = "pcap"))]
pub mod live {
    use crate::source::{ReadError, ReadStats, Reader};

    /// Stands in for the libpcap reader in builds without the `pcap` feature.
    pub enum PcapLiveReader {}

    impl PcapLiveReader {
        /// Always fails: this build has no live capture.
        pub fn open(
            iface: &str,
            _bpf: Option<&str>,
            _snaplen: u32,
            _cutoff: Option<u64>,
        ) -> Result<Self, ReadError> {
            Err(ReadError::Other(format!(
                "cannot capture on {iface}: this vast was built without the `pcap` feature (live capture); rebuild with default features"
            )))
        }
    }

    impl Reader for PcapLiveReader {
        fn read(&mut self, _: usize) -> Result<Option<Vec<crate::data::Batch>>, ReadError> {
            match *self {}
        }
        fn stats(&self) -> ReadStats {
            match *self {}
        }
    }
}
pub mod stream;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use crate::data::{BatchBuilder, Field, Schema, Type};
use crate::source::{ReadError, ReadStats, Reader};
use cutoff::FlowTable;
use decode::{decode, Decoded, IpBytes};
use std::io::BufRead;
use stream::{PcapStream, StreamError};

pub use live::PcapLiveReader;

/// The schema name of packet events.
pub const PACKET_SCHEMA: &str = "pcap.packet";

/// Column positions in [`packet_schema`].
pub mod col {
    pub const TIME: usize = 0;
    pub const SRC: usize = 1;
    pub const DST: usize = 2;
    pub const SPORT: usize = 3;
    pub const DPORT: usize = 4;
    pub const PROTO: usize = 5;
    pub const VLAN_OUTER: usize = 6;
    pub const VLAN_INNER: usize = 7;
    pub const COMMUNITY_ID: usize = 8;
    pub const LINKTYPE: usize = 9;
    pub const PAYLOAD: usize = 10;
}

/// `pcap.packet`: VAST's packet fields plus `proto` and the `linktype` that
/// `export pcap` needs to write the bytes back. For ICMP, `sport` and `dport` hold
/// the message type and code, as Zeek's conn.log does.
pub fn packet_schema() -> Schema {
    Schema::new(
        PACKET_SCHEMA,
        vec![
            Field::new("time", Type::timestamp()),
            Field::new("src", Type::Address),
            Field::new("dst", Type::Address),
            Field::new("sport", Type::port()),
            Field::new("dport", Type::port()),
            Field::new("proto", Type::String),
            Field::new("vlan.outer", Type::Count),
            Field::new("vlan.inner", Type::Count),
            Field::new("community_id", Type::String),
            Field::new("linktype", Type::Count),
            Field::new("payload", Type::Blob),
        ],
    )
}

/// The name of an IP protocol as the `proto` field shows it.
pub fn proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        58 => "icmp6",
        132 => "sctp",
        _ => return None,
    })
}

/// Counter names in [`ReadStats::counters`].
pub mod counter {
    pub const RECEIVED: &str = "packets-received";
    pub const DROPPED_KERNEL: &str = "packets-dropped-kernel";
    pub const DROPPED_INTERFACE: &str = "packets-dropped-interface";
    pub const CUT_OFF: &str = "packets-cut-off";
}

/// Turns raw packets into rows of `pcap.packet`, applying the flow cutoff.
pub(crate) struct PacketRows {
    pub builder: BatchBuilder,
    pub flows: Option<FlowTable>,
    pub received: u64,
    scratch: Vec<u8>,
}

impl PacketRows {
    pub fn new(cutoff: Option<u64>) -> Self {
        PacketRows {
            builder: BatchBuilder::new(packet_schema()),
            flows: cutoff.map(FlowTable::new),
            received: 0,
            scratch: Vec::with_capacity(64),
        }
    }

    /// Decodes and appends one packet unless the cutoff drops it; returns whether
    /// a row was added.
    pub fn push(&mut self, time: i64, linktype: u32, data: &[u8]) -> bool {
        self.received += 1;
        let d = decode(linktype, data);
        if let Some(flows) = &mut self.flows {
            if !flows.admit(time, &d) {
                return false;
            }
        }
        self.push_decoded(time, linktype, data, &d);
        true
    }

    fn push_decoded(&mut self, time: i64, linktype: u32, data: &[u8], d: &Decoded) {
        let b = &mut self.builder;
        b.column(col::TIME).push_time(time);
        match d.addrs {
            Some((s, t)) => {
                b.column(col::SRC).push_address(s.to_address());
                b.column(col::DST).push_address(t.to_address());
            }
            None => {
                b.column(col::SRC).push_null();
                b.column(col::DST).push_null();
            }
        }
        match d.ports {
            Some((s, t)) => {
                b.column(col::SPORT).push_count(s as u64);
                b.column(col::DPORT).push_count(t as u64);
            }
            None => {
                b.column(col::SPORT).push_null();
                b.column(col::DPORT).push_null();
            }
        }
        match d.proto {
            Some(p) => match proto_name(p) {
                Some(n) => b.column(col::PROTO).push_str(n),
                None => b.column(col::PROTO).push_str(&p.to_string()),
            },
            None => b.column(col::PROTO).push_null(),
        }
        match d.vlan_outer {
            Some(v) => b.column(col::VLAN_OUTER).push_count(v as u64),
            None => b.column(col::VLAN_OUTER).push_null(),
        }
        match d.vlan_inner {
            Some(v) => b.column(col::VLAN_INNER).push_count(v as u64),
            None => b.column(col::VLAN_INNER).push_null(),
        }
        match (d.addrs, d.proto) {
            (Some((s, t)), Some(p)) if same_family(s, t) => {
                self.scratch.clear();
                community_id::community_id_v1(
                    &mut self.scratch,
                    0,
                    s.as_slice(),
                    t.as_slice(),
                    p,
                    d.ports,
                );
                // The id is ASCII (a prefix and base64).
                let id = std::str::from_utf8(&self.scratch).unwrap_or_default();
                b.column(col::COMMUNITY_ID).push_str(id);
            }
            _ => b.column(col::COMMUNITY_ID).push_null(),
        }
        b.column(col::LINKTYPE).push_count(linktype as u64);
        b.column(col::PAYLOAD).push_blob(data);
        b.finish_row();
    }

    /// Counters for [`ReadStats::counters`].
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut c = vec![(counter::RECEIVED.to_string(), self.received)];
        if let Some(f) = &self.flows {
            c.push((counter::CUT_OFF.to_string(), f.cut_off));
        }
        c
    }
}

fn same_family(a: IpBytes, b: IpBytes) -> bool {
    matches!(
        (a, b),
        (IpBytes::V4(_), IpBytes::V4(_)) | (IpBytes::V6(_), IpBytes::V6(_))
    )
}

impl From<StreamError> for ReadError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::BadMagic(_) => ReadError::WrongFormat(e.to_string()),
            StreamError::Io(e) => ReadError::Io(e),
            e => ReadError::Other(e.to_string()),
        }
    }
}

/// Reads pcap and pcapng streams (several concatenated files allowed) from any
/// `BufRead`: stdin, a (gunzipped) file.
pub struct PcapReader<R> {
    stream: PcapStream<R>,
    rows: PacketRows,
    events: u64,
    /// An error met after rows were collected: returned on the next call.
    pending: Option<ReadError>,
    done: bool,
}

impl<R: BufRead> PcapReader<R> {
    /// A reader that keeps at most `cutoff` payload bytes per connection, if given.
    pub fn new(input: R, cutoff: Option<u64>) -> Self {
        PcapReader {
            stream: PcapStream::new(input),
            rows: PacketRows::new(cutoff),
            events: 0,
            pending: None,
            done: false,
        }
    }
}

impl<R: BufRead + Send + 'static> Reader for PcapReader<R> {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<crate::data::Batch>>, ReadError> {
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Err(e);
        }
        if self.done {
            return Ok(None);
        }
        let batch_size = batch_size.max(1);
        while self.rows.builder.rows() < batch_size {
            match self.stream.next_packet() {
                Ok(Some(p)) => {
                    let (time, linktype) = (p.time, p.linktype);
                    // `p` borrows the stream's buffer, the rows the builder: disjoint.
                    let data = p.data;
                    self.rows.push(time, linktype, data);
                }
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    if self.rows.builder.is_empty() {
                        self.done = true;
                        return Err(e.into());
                    }
                    self.pending = Some(e.into());
                    break;
                }
            }
        }
        if self.rows.builder.is_empty() {
            return Ok(None);
        }
        let batch = self.rows.builder.finish();
        self.events += batch.rows as u64;
        Ok(Some(vec![batch]))
    }

    fn stats(&self) -> ReadStats {
        ReadStats {
            events: self.events,
            skipped: self.stream.skipped,
            counters: self.rows.counters(),
        }
    }
}
