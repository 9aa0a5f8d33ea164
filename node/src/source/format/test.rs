//! Generated connection events (`import test`) for demos and benchmarks.
//! Deterministic per seed and unbounded; the caller decides when to stop.

use crate::data::{Address, Batch, BatchBuilder, Field, Schema, Type};
use crate::source::{ReadError, ReadStats, Reader};

/// SplitMix64: tiny, fast, and good enough for synthetic data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform-ish in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

const PROTOS: [&str; 3] = ["tcp", "udp", "icmp"];
const SERVICES: [&str; 6] = ["http", "ssl", "dns", "ssh", "smtp", "ntp"];
const STATES: [&str; 6] = ["SF", "S0", "REJ", "RSTO", "RSTR", "SH"];
const PORTS: [u64; 6] = [80, 443, 53, 22, 25, 123];
const UID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// 2020-01-01T00:00:00Z.
const START_NS: i64 = 1_577_836_800_000_000_000;

/// Generates `test.conn` events: a Zeek-like connection log.
pub struct TestReader {
    rng: SplitMix64,
    builder: BatchBuilder,
    ts: i64,
    stats: ReadStats,
}

/// The schema of generated events.
pub fn schema() -> Schema {
    Schema::new(
        "test.conn",
        vec![
            Field::new("ts", Type::timestamp()),
            Field::new("uid", Type::String),
            Field::new("id.orig_h", Type::Address),
            Field::new("id.orig_p", Type::port()),
            Field::new("id.resp_h", Type::Address),
            Field::new("id.resp_p", Type::port()),
            Field::new("proto", Type::Enum(vec![])),
            Field::new("service", Type::String),
            Field::new("duration", Type::Duration),
            Field::new("orig_bytes", Type::Count),
            Field::new("resp_bytes", Type::Count),
            Field::new("conn_state", Type::String),
            Field::new("local_orig", Type::Bool),
            Field::new("orig_pkts", Type::Count),
            Field::new("resp_pkts", Type::Count),
        ],
    )
}

impl TestReader {
    /// A generator; equal seeds give equal events.
    pub fn new(seed: u64) -> Self {
        TestReader {
            rng: SplitMix64(seed),
            builder: BatchBuilder::new(schema()),
            ts: START_NS,
            stats: ReadStats::default(),
        }
    }

    fn row(&mut self) {
        let r = &mut self.rng;
        self.ts += r.below(10_000_000) as i64;
        let b = &mut self.builder;
        b.column(0).push_time(self.ts);
        let mut uid = [b'C'; 18];
        for c in &mut uid[1..] {
            *c = UID_CHARS[r.below(UID_CHARS.len() as u64) as usize];
        }
        b.column(1)
            .push_str(std::str::from_utf8(&uid).unwrap_or("C"));
        let orig =
            Address::from_ip([10, r.below(4) as u8, r.below(256) as u8, r.below(256) as u8].into());
        b.column(2).push_address(orig);
        b.column(3).push_count(1024 + r.below(64_512));
        let resp = Address::from_ip(std::net::Ipv4Addr::from(r.next() as u32).into());
        b.column(4).push_address(resp);
        let svc = r.below(SERVICES.len() as u64) as usize;
        b.column(5).push_count(PORTS[svc]);
        let proto = match svc {
            2 | 5 => 1,
            _ if r.below(50) == 0 => 2,
            _ => 0,
        };
        b.column(6).push_str(PROTOS[proto]);
        if r.below(5) == 0 {
            b.column(7).push_null();
        } else {
            b.column(7).push_str(SERVICES[svc]);
        }
        let state = r.below(STATES.len() as u64) as usize;
        if state == 1 {
            // Attempts without an answer have no duration or payload.
            b.column(8).push_null();
            b.column(9).push_null();
            b.column(10).push_null();
        } else {
            b.column(8).push_duration(r.below(30_000_000_000) as i64);
            let (ob, rb) = (1 << (r.below(20) + 1), 1 << (r.below(24) + 1));
            b.column(9).push_count(r.below(ob));
            b.column(10).push_count(r.below(rb));
        }
        b.column(11).push_str(STATES[state]);
        b.column(12).push_bool(r.below(4) != 0);
        b.column(13).push_count(1 + r.below(100));
        b.column(14).push_count(r.below(100));
        b.finish_row();
        self.stats.events += 1;
    }
}

impl Reader for TestReader {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<Batch>>, ReadError> {
        for _ in 0..batch_size.max(1) {
            self.row();
        }
        Ok(Some(vec![self.builder.finish()]))
    }

    fn stats(&self) -> ReadStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_seed() {
        let a = TestReader::new(7).read(100).unwrap().unwrap();
        let b = TestReader::new(7).read(100).unwrap().unwrap();
        let c = TestReader::new(8).read(100).unwrap().unwrap();
        assert_eq!(a[0].rows, 100);
        assert!(a == b);
        assert!(a != c);
        a[0].validate().unwrap();
        let mut r = TestReader::new(1);
        for _ in 0..3 {
            assert_eq!(r.read(10).unwrap().unwrap()[0].rows, 10);
        }
        assert_eq!(r.stats().events, 30);
    }
}
