//! Tests of the pcap readers: stream parsing, malformed input, the shared data
//! files, blobs in batches, live capture on `lo` and through a real node.

use super::decode::tests::{ether, ipv4_packet, tcp, udp};
use super::stream::{PcapStream, StreamError};
use super::*;
use crate::data::{Batch, Value, ValueRef};
use crate::source::format::testutil::{data, field, read_all, total_rows};
use crate::source::format::{make_reader, open_input, Format, ReaderOptions};
use std::io::Cursor;

/// One pcap file: header plus records of (seconds, fraction, bytes).
pub(crate) fn pcap_file(
    big_endian: bool,
    nanos: bool,
    linktype: u32,
    pkts: &[(u32, u32, Vec<u8>)],
) -> Vec<u8> {
    let w32 = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut f = Vec::new();
    f.extend_from_slice(&w32(if nanos { 0xa1b23c4d } else { 0xa1b2c3d4 }));
    f.extend_from_slice(&w16(2));
    f.extend_from_slice(&w16(4));
    f.extend_from_slice(&w32(0));
    f.extend_from_slice(&w32(0));
    f.extend_from_slice(&w32(65535));
    f.extend_from_slice(&w32(linktype));
    for (s, frac, data) in pkts {
        for v in [*s, *frac, data.len() as u32, data.len() as u32] {
            f.extend_from_slice(&w32(v));
        }
        f.extend_from_slice(data);
    }
    f
}

/// A pcapng section: SHB, one IDB (with `tsresol` if given), then EPBs and one SPB.
fn pcapng_section(
    big_endian: bool,
    linktype: u16,
    tsresol: Option<u8>,
    epbs: &[(u64, Vec<u8>)],
    spb: Option<Vec<u8>>,
) -> Vec<u8> {
    let w32 = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let block = |ty: u32, body: &[u8]| {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = 12 + body.len() as u32;
        let mut b = w32(ty).to_vec();
        b.extend_from_slice(&w32(len));
        b.extend_from_slice(&body);
        b.extend_from_slice(&w32(len));
        b
    };
    let mut shb = w32(0x1a2b3c4d).to_vec();
    shb.extend_from_slice(&w16(1));
    shb.extend_from_slice(&w16(0));
    shb.extend_from_slice(&[0xff; 8]);
    let mut out = block(0x0a0d0d0a, &shb);
    let mut idb = w16(linktype).to_vec();
    idb.extend_from_slice(&w16(0));
    idb.extend_from_slice(&w32(0));
    if let Some(r) = tsresol {
        idb.extend_from_slice(&w16(9));
        idb.extend_from_slice(&w16(1));
        idb.extend_from_slice(&[r, 0, 0, 0]);
        idb.extend_from_slice(&[0, 0, 0, 0]);
    }
    out.extend(block(1, &idb));
    // An unknown block (custom) is skipped.
    out.extend(block(0x0bad, &[1, 2, 3, 4]));
    for (ts, data) in epbs {
        let mut epb = w32(0).to_vec();
        epb.extend_from_slice(&w32((ts >> 32) as u32));
        epb.extend_from_slice(&w32(*ts as u32));
        epb.extend_from_slice(&w32(data.len() as u32));
        epb.extend_from_slice(&w32(data.len() as u32));
        epb.extend_from_slice(data);
        out.extend(block(6, &epb));
    }
    if let Some(data) = spb {
        let mut b = w32(data.len() as u32).to_vec();
        b.extend_from_slice(&data);
        out.extend(block(3, &b));
    }
    out
}

fn frame(sport: u16) -> Vec<u8> {
    ether(
        &[],
        0x0800,
        &ipv4_packet([10, 0, 0, 1], [10, 0, 0, 2], 17, &udp(sport, 53, b"q")),
    )
}

/// (time, link type, bytes) of each packet, how the stream ended, records skipped.
type Parsed = (Vec<(i64, u32, Vec<u8>)>, Result<(), StreamError>, u64);

fn all_packets(bytes: &[u8]) -> Parsed {
    let mut s = PcapStream::new(bytes);
    let mut out = Vec::new();
    loop {
        match s.next_packet() {
            Ok(Some(p)) => out.push((p.time, p.linktype, p.data.to_vec())),
            Ok(None) => return (out, Ok(()), s.skipped),
            Err(e) => return (out, Err(e), s.skipped),
        }
    }
}

#[test]
fn concatenated_files_of_every_flavor() {
    let mut bytes = pcap_file(false, false, 1, &[(10, 5, frame(1)), (11, 6, frame(2))]);
    bytes.extend(pcap_file(
        true,
        true,
        101,
        &[(12, 7, frame(3)[14..].to_vec())],
    ));
    bytes.extend(pcapng_section(
        false,
        1,
        None,
        &[(13_000_008, frame(4))],
        Some(frame(5)),
    ));
    // Nanosecond units (10^-9), big-endian section.
    bytes.extend(pcapng_section(
        true,
        113,
        Some(9),
        &[(14_000_000_009, vec![0; 20])],
        None,
    ));
    // Base-2 units: 2^-10 s.
    bytes.extend(pcapng_section(
        false,
        1,
        Some(0x80 | 10),
        &[(3 << 10 | 512, frame(6))],
        None,
    ));
    bytes.extend(pcap_file(false, false, 1, &[(15, 1, frame(7))]));
    let (pkts, res, skipped) = all_packets(&bytes);
    res.unwrap();
    assert_eq!(skipped, 0);
    let times: Vec<i64> = pkts.iter().map(|p| p.0).collect();
    assert_eq!(
        times,
        vec![
            10_000_005_000,
            11_000_006_000,
            12_000_000_007,
            13_000_008_000,
            0,
            14_000_000_009,
            3_500_000_000,
            15_000_001_000
        ]
    );
    let lts: Vec<u32> = pkts.iter().map(|p| p.1).collect();
    assert_eq!(lts, vec![1, 1, 101, 1, 1, 113, 1, 1]);
    assert_eq!(pkts[4].2, frame(5));
    // Through the reader: every packet decodes to its ports.
    let mut r = PcapReader::new(Cursor::new(bytes), None);
    let (bs, err) = read_all(&mut r, 3);
    assert!(err.is_none());
    assert_eq!(total_rows(&bs), 8);
    let sports: Vec<Value> = bs
        .iter()
        .flat_map(|b| (0..b.rows as usize).map(|i| field(b, i, "sport")))
        .collect();
    assert_eq!(sports[..4], [1, 2, 3, 4].map(Value::Count));
    assert_eq!(sports[5], Value::Null);
}

#[test]
fn malformed_streams_fail_clearly() {
    // Not a pcap at all.
    let mut r = PcapReader::new(Cursor::new(b"hello world\n".to_vec()), None);
    let (bs, err) = read_all(&mut r, 10);
    assert!(bs.is_empty());
    let err = err.unwrap();
    assert!(matches!(err, ReadError::WrongFormat(_)));
    assert_eq!(
        err.to_string(),
        "input is not a pcap or pcapng stream: bad magic 0x68656c6c"
    );
    // Too short for a magic.
    let (_, res, _) = all_packets(b"\xa1\xb2");
    assert!(matches!(res, Err(StreamError::BadMagic(_))));
    // Empty input: no packets, no error.
    let (pkts, res, _) = all_packets(b"");
    assert!(pkts.is_empty() && res.is_ok());
    // A truncated last record is a counted skip; the packets before it stay.
    let full = pcap_file(false, false, 1, &[(1, 0, frame(1)), (2, 0, frame(2))]);
    for cut in [full.len() - 1, full.len() - frame(2).len() - 3] {
        let mut r = PcapReader::new(Cursor::new(full[..cut].to_vec()), None);
        let (bs, err) = read_all(&mut r, 10);
        assert!(err.is_none());
        assert_eq!(total_rows(&bs), 1);
        assert_eq!(r.stats().skipped, 1);
    }
    // An absurd captured length: rows before it, then an error naming it.
    let mut bad = pcap_file(false, false, 1, &[(1, 0, frame(1))]);
    bad.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    let mut r = PcapReader::new(Cursor::new(bad), None);
    let (bs, err) = read_all(&mut r, 10);
    assert_eq!(total_rows(&bs), 1);
    let msg = err.unwrap().to_string();
    assert!(msg.contains("captured length 4294967295 exceeds"), "{msg}");
    // pcapng with a broken byte-order magic and with a bad block length.
    let mut ng = pcapng_section(false, 1, None, &[(1, frame(1))], None);
    ng[8] ^= 0xff;
    assert!(matches!(
        all_packets(&ng).1,
        Err(StreamError::Corrupt { .. })
    ));
    let mut ng = pcapng_section(false, 1, None, &[(1, frame(1))], None);
    let idb = 28;
    ng[idb + 4] = 13;
    let (_, res, _) = all_packets(&ng);
    assert!(res.unwrap_err().to_string().contains("block length 13"));
    // A packet for an interface that was never described is skipped.
    let mut ng = pcapng_section(false, 1, None, &[(1, frame(1))], None);
    let epb = 28 + 20 + 16;
    ng[epb + 8] = 7;
    let (pkts, res, skipped) = all_packets(&ng);
    assert!(res.is_ok() && pkts.is_empty() && skipped == 1);
}

#[test]
fn shared_captures() {
    for (file, vlans) in [("pcap/example.pcap.gz", false), ("pcap/vlan.pcap.gz", true)] {
        let Some(p) = data(file) else { return };
        let input = open_input(Some(&p)).unwrap();
        let mut r = make_reader(Format::Pcap, input, &ReaderOptions::default()).unwrap();
        let (bs, err) = read_all(r.as_mut(), 256);
        assert!(err.is_none(), "{file}: {err:?}");
        assert_eq!(total_rows(&bs), 1000, "{file}");
        let stats = r.stats();
        assert_eq!(stats.events, 1000);
        assert_eq!(stats.counters, vec![(counter::RECEIVED.to_string(), 1000)]);
        let b = &bs[0];
        assert_eq!(b.schema, packet_schema());
        let tagged = bs
            .iter()
            .flat_map(|b| (0..b.rows as usize).map(move |i| field(b, i, "vlan.outer")))
            .filter(|v| *v != Value::Null)
            .count();
        assert_eq!(tagged > 0, vlans, "{file}: {tagged} tagged packets");
        let ids = bs
            .iter()
            .flat_map(|b| (0..b.rows as usize).map(move |i| field(b, i, "community_id")))
            .filter(|v| matches!(v, Value::String(s) if s.starts_with("1:") && s.len() == 30))
            .count();
        assert!(ids > 900, "{file}: {ids} community ids");
    }
}

#[test]
fn cutoff_in_the_file_reader() {
    let payload = vec![7u8; 100];
    let f = |sport| {
        ether(
            &[],
            0x0800,
            &ipv4_packet([10, 0, 0, 1], [10, 0, 0, 2], 6, &tcp(sport, 80, &payload)),
        )
    };
    let pkts: Vec<(u32, u32, Vec<u8>)> =
        (0..10).map(|i| (i, 0, f(1000 + (i % 2) as u16))).collect();
    let bytes = pcap_file(false, false, 1, &pkts);
    let mut r = PcapReader::new(Cursor::new(bytes), Some(250));
    let (bs, err) = read_all(&mut r, 100);
    assert!(err.is_none());
    // Per flow: 0, 100, 200 bytes seen before the packet are under 250: 3 kept of 5.
    assert_eq!(total_rows(&bs), 6);
    let c = r.stats().counters;
    assert!(c.contains(&(counter::RECEIVED.to_string(), 10)), "{c:?}");
    assert!(c.contains(&(counter::CUT_OFF.to_string(), 4)), "{c:?}");
}

#[test]
fn blobs_roundtrip_and_match_only_nil() {
    let mut rows = PacketRows::new(None);
    // Not UTF-8, and a packet nothing decodes.
    let junk = vec![0xff, 0xfe, 0x00, 0x80, 0xc3];
    rows.push(5, 1, &frame(9));
    rows.push(6, 9999, &junk);
    rows.builder.column(col::TIME).push_time(7);
    rows.builder.finish_row();
    let b = rows.builder.finish();
    let back = Batch::from_bytes(&b.to_bytes()).unwrap();
    assert_eq!(back, b);
    assert_eq!(field(&back, 1, "payload"), Value::Blob(junk.clone()));
    assert_eq!(field(&back, 1, "src"), Value::Null);
    assert_eq!(field(&back, 2, "payload"), Value::Null);
    assert_eq!(field(&back, 0, "sport"), Value::Count(9));
    // A blob column whose offsets run past its bytes is rejected.
    let mut broken = b.clone();
    if let crate::data::ColumnData::Blob { offsets, .. } = &mut broken.columns[col::PAYLOAD].data {
        offsets[1] += 1_000;
    }
    assert!(Batch::from_bytes(&broken.to_bytes()).is_err());
    // Queries: a blob is only ever `!= nil`.
    use crate::query::resolve::cmp_cell;
    use crate::query::Op;
    let ty = crate::data::Type::Blob;
    let cell = ValueRef::Blob(&junk);
    assert!(cmp_cell(Op::Ne, cell, &ty, &Value::Null));
    assert!(!cmp_cell(Op::Eq, cell, &ty, &Value::Null));
    assert!(!cmp_cell(Op::Eq, cell, &ty, &Value::String("x".into())));
    assert!(!cmp_cell(Op::Ne, cell, &ty, &Value::String("x".into())));
    assert!(!cmp_cell(
        Op::Match,
        cell,
        &ty,
        &Value::Pattern(".*".into())
    ));
    assert!(!cmp_cell(Op::In, cell, &ty, &Value::List(vec![])));
    let q = crate::query::parse("payload != nil && payload == \"abc\"").unwrap();
    let r = crate::query::resolve(&q, &back.schema);
    assert!(crate::query::filter(&r, &back).is_empty());
    let q = crate::query::parse("payload != nil").unwrap();
    let r = crate::query::resolve(&q, &back.schema);
    assert_eq!(crate::query::filter(&r, &back), vec![0, 1]);
}

#[test]
fn blobs_render_in_every_text_format() {
    use crate::export::format::{make_writer, OutputFormat};
    let mut rows = PacketRows::new(None);
    rows.push(0, 1, &[0x00, b'-', b'\\', 0xff, b'A']);
    let b = rows.builder.finish();
    let render = |f: OutputFormat| {
        let mut w = make_writer(f);
        let mut out = Vec::new();
        w.write(&b, &[0], &mut out).unwrap();
        w.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    // base64 of 00 2d 5c ff 41.
    assert!(render(OutputFormat::Json).contains("\"payload\":\"AC1c/0E=\""));
    assert!(render(OutputFormat::Csv).ends_with(",AC1c/0E=\n"));
    assert!(render(OutputFormat::Ascii).contains(", AC1c/0E=>"));
    let zeek = render(OutputFormat::Zeek);
    assert!(zeek.contains("\\x00-\\\\\\xffA"), "{zeek}");
    assert!(
        zeek.contains(
            "#types\ttime\taddr\taddr\tport\tport\tstring\tcount\tcount\tstring\tcount\tstring"
        ),
        "{zeek}"
    );
}

#[cfg(all(target_os = "linux", feature = "pcap"))]
mod live {
    use super::*;
    use crate::node::{Node, NodeOptions};
    use crate::source::actor::SourceOptions;
    use crate::source::Reader;
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};

    const N: usize = 50;

    /// Opens a capture of UDP to a fresh port on `lo`, or `None` (with a message)
    /// without the privileges to capture.
    fn capture() -> Option<(PcapLiveReader, u16)> {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        match PcapLiveReader::open("lo", Some(&format!("udp dst port {port}")), 65535, None) {
            Ok(r) => Some((r, port)),
            Err(e) if e.to_string().contains("setcap") => {
                eprintln!("skipping live capture: {e}");
                None
            }
            Err(e) => panic!("opening lo: {e}"),
        }
    }

    fn send(port: u16, n: usize) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..n {
            s.send_to(format!("datagram {i}").as_bytes(), ("127.0.0.1", port))
                .unwrap();
        }
    }

    #[test]
    fn captures_exactly_what_was_sent() {
        let Some((mut r, port)) = capture() else {
            return;
        };
        send(port, N);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < N && Instant::now() < deadline {
            for b in r.read(1000).unwrap().expect("a live capture does not end") {
                got.extend((0..b.rows as usize).map(|i| field(&b, i, "dport")));
            }
        }
        // Nothing more arrives: a read returns empty within its time slice.
        let t = Instant::now();
        assert!(r.read(1000).unwrap().unwrap().is_empty());
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(got.len(), N);
        assert!(got.iter().all(|p| *p == Value::Count(port as u64)));
        let c = r.stats().counters;
        assert!(
            c.contains(&(counter::RECEIVED.to_string(), N as u64)),
            "{c:?}"
        );
        assert!(c.iter().any(|(n, _)| n == counter::DROPPED_KERNEL));
    }

    #[test]
    fn bad_filter_and_missing_interface() {
        let Some(_) = capture() else { return };
        let e = PcapLiveReader::open("lo", Some("udp port banana"), 65535, None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("bad capture filter \"udp port banana\": "),
            "{e}"
        );
        let e = PcapLiveReader::open("nosuchif0", None, 65535, None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("nosuchif0") && e.contains("no such interface"),
            "{e}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn through_a_node() {
        let Some((reader, port)) = capture() else {
            return;
        };
        let db = std::env::temp_dir().join(format!("vast-pcap-live-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&db);
        let node = Node::open(NodeOptions {
            id: "test".into(),
            db: db.clone(),
            components: vec!["importer".into(), "archive".into(), "index".into()],
            batch_size: 100,
            partition_size: 10_000,
            partition_timeout: Duration::from_secs(60),
        })
        .await
        .unwrap();
        let (label, task) = node
            .spawn_source(
                Box::new(reader),
                SourceOptions {
                    batch_size: 100,
                    description: "lo".into(),
                    format: "pcap".into(),
                    autocommit: true,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(label, "source-0");
        tokio::task::spawn_blocking(move || send(port, N))
            .await
            .unwrap();
        // Let the capture deliver before stopping the source.
        tokio::time::sleep(Duration::from_millis(800)).await;
        tokio::time::timeout(Duration::from_secs(10), node.kill("source-0"))
            .await
            .expect("kill timed out")
            .unwrap();
        let summary = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("source did not stop")
            .unwrap()
            .unwrap();
        assert_eq!(summary.events, N as u64);
        let q = crate::query::parse(&format!("dport == {port}")).unwrap();
        let n = tokio::time::timeout(Duration::from_secs(10), node.count(q, false))
            .await
            .expect("count timed out")
            .unwrap();
        assert_eq!(n, N as u64);
        tokio::time::timeout(Duration::from_secs(10), node.shutdown())
            .await
            .expect("shutdown timed out");
        let _ = std::fs::remove_dir_all(&db);
    }
}
