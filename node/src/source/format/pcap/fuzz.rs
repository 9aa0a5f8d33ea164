//! Bounded fuzzing in the normal test run: a deterministic xorshift mutates real
//! packets and capture files; the decoder and the stream parser must not panic.

use super::decode::{decode, linktype};
use super::stream::PcapStream;
use super::tests::pcap_file;
use super::PacketRows;
use crate::source::format::open_input;
use crate::source::format::testutil::data;
use std::io::Read;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The decompressed bytes of a shared capture.
fn capture_bytes(rel: &str) -> Option<Vec<u8>> {
    let p = data(rel)?;
    let mut bytes = Vec::new();
    open_input(Some(&p))
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    Some(bytes)
}

fn packets_of(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut s = PcapStream::new(bytes);
    let mut out = Vec::new();
    while let Some(p) = s.next_packet().unwrap() {
        out.push((p.linktype, p.data.to_vec()));
    }
    out
}

/// Flips bytes, truncates, or extends with junk.
fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 | 1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            3 => v.truncate(rng.below(v.len() + 1)),
            _ => {
                for _ in 0..rng.below(64) {
                    v.push(rng.next() as u8);
                }
            }
        }
    }
    v
}

#[test]
fn decoder_survives_mutated_packets() {
    let (Some(a), Some(b)) = (
        capture_bytes("pcap/example.pcap.gz"),
        capture_bytes("pcap/vlan.pcap.gz"),
    ) else {
        return;
    };
    let mut corpus = packets_of(&a);
    corpus.extend(packets_of(&b));
    assert_eq!(corpus.len(), 2000);
    let linktypes = [
        linktype::ETHERNET,
        linktype::LINUX_SLL,
        linktype::LINUX_SLL2,
        linktype::RAW,
        linktype::NULL,
        linktype::LOOP,
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut rows = PacketRows::new(Some(1500));
    let mut decoded_ports = 0;
    for i in 0..200_000 {
        let (lt, pkt) = &corpus[rng.below(corpus.len())];
        let m = mutate(&mut rng, pkt);
        // Mostly the packet's own link type; sometimes reinterpret it (and strip
        // the Ethernet header so raw-IP decoders see an IP header).
        let (lt, m) = match rng.below(8) {
            0 => (linktypes[rng.below(linktypes.len())], m),
            1 if m.len() > 14 => (linktype::RAW, m[14..].to_vec()),
            _ => (*lt, m),
        };
        if decode(lt, &m).ports.is_some() {
            decoded_ports += 1;
        }
        // The full row path too (community id, cutoff, builder), in batches.
        rows.push(i, lt, &m);
        if rows.builder.rows() == 4096 {
            rows.builder.finish().validate().unwrap();
        }
    }
    // Most mutations keep the headers intact: a decoder that gives up on
    // everything would fail here.
    assert!(
        decoded_ports > 100_000,
        "{decoded_ports} packets with ports"
    );
}

#[test]
fn stream_parser_survives_mutated_files() {
    let Some(a) = capture_bytes("pcap/example.pcap.gz") else {
        return;
    };
    // The first packets as pcap (both byte orders) keep each parse short.
    let pkts: Vec<(u32, u32, Vec<u8>)> = packets_of(&a)
        .into_iter()
        .take(12)
        .enumerate()
        .map(|(i, (_, d))| (i as u32, 0, d))
        .collect();
    let seeds = [
        a[..a.len().min(4000)].to_vec(),
        pcap_file(true, true, 1, &pkts),
        pcap_file(false, false, 113, &pkts),
    ];
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut complete = 0;
    for _ in 0..20_000 {
        let seed = &seeds[rng.below(seeds.len())];
        let mut m = mutate(&mut rng, seed);
        if rng.below(4) == 0 {
            // Concatenate with another file.
            let other = &seeds[rng.below(seeds.len())];
            m.extend(mutate(&mut rng, other));
        }
        let mut s = PcapStream::new(&m[..]);
        let mut n = 0;
        loop {
            match s.next_packet() {
                Ok(Some(p)) => {
                    let _ = decode(p.linktype, p.data);
                    n += 1;
                }
                Ok(None) => {
                    complete += 1;
                    break;
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    break;
                }
            }
            assert!(n <= m.len() / 16, "more packets than the bytes can hold");
        }
    }
    assert!(
        complete > 1_000,
        "{complete} mutated files parsed to their end"
    );
}
