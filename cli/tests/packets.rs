//! The packet cases of ../shared/acceptance/README.md, plus pcap export read back
//! by tcpdump and Community IDs checked against the `communityid` Python package,
//! through the real `vast -N` binary.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use vast_node::source::format::pcap::stream::PcapStream;

/// `vast -N export pcap EXPR`: the raw output and the process result.
fn export_pcap(db: &TempDb, expr: &str) -> std::process::Output {
    vast_with(
        &[
            "-N",
            "-d",
            db.path().to_str().unwrap(),
            "export",
            "pcap",
            expr,
        ],
        None,
        Duration::from_secs(120),
    )
}

/// Packets in a pcap stream, by our own parser (which must read it to the end).
fn parse_count(bytes: &[u8]) -> usize {
    let mut s = PcapStream::new(bytes);
    let mut n = 0;
    while s.next_packet().expect("exported pcap parses").is_some() {
        n += 1;
    }
    assert_eq!(s.skipped, 0);
    n
}

/// Packets tcpdump reads from `bytes`, or `None` (with a message) without tcpdump.
fn tcpdump_count(name: &str, bytes: &[u8]) -> Option<usize> {
    if Command::new("tcpdump").arg("--version").output().is_err() {
        eprintln!("skipping the tcpdump check: tcpdump is not installed");
        return None;
    }
    let f = std::env::temp_dir().join(format!("vast-export-{name}-{}.pcap", std::process::id()));
    std::fs::write(&f, bytes).unwrap();
    let out = Command::new("tcpdump")
        .args(["-nn", "-r", f.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    std::fs::remove_file(&f).ok();
    assert!(
        out.status.success(),
        "tcpdump rejected the export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).lines().count())
}

#[test]
fn example_pcap() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("pcap-example");
    import(&db, "pcap", &data.join("pcap/example.pcap.gz"));
    assert_eq!(count(&db, &["#type == \"pcap.packet\""]), 1000);
    assert_eq!(export_json(&db, ":addr in 192.168.168.0/24").len(), 1000);

    let out = export_pcap(&db, "sport > 60000 && src !in 192.168.168.0/8");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 24, "a header and no packets");
    assert_eq!(parse_count(&out.stdout), 0);
    if let Some(n) = tcpdump_count("empty", &out.stdout) {
        assert_eq!(n, 0);
    }

    // Some packets: the same number by count, our parser and tcpdump, with the
    // original bytes and timestamps.
    let want = count(&db, &["proto == \"tcp\" && dport == 80"]);
    assert!(want > 10 && want < 1000, "{want} packets");
    let out = export_pcap(&db, "proto == \"tcp\" && dport == 80");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(parse_count(&out.stdout) as u64, want);
    if let Some(n) = tcpdump_count("some", &out.stdout) {
        assert_eq!(n as u64, want);
    }
    let all = export_pcap(&db, "#type == \"pcap.packet\"");
    assert!(all.status.success());
    let original = read_gz(&data.join("pcap/example.pcap.gz"));
    assert_eq!(packets(&all.stdout), packets(&original));
}

#[test]
fn vlan_pcap() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("pcap-vlan");
    import(&db, "pcap", &data.join("pcap/vlan.pcap.gz"));
    assert_eq!(count(&db, &["#type == \"pcap.packet\""]), 1000);
    assert!(count(&db, &["vlan.outer != nil"]) > 0);
}

#[test]
fn non_packets_do_not_export_as_pcap() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("pcap-zeek");
    import(&db, "zeek", &data.join("zeek/conn.log.gz"));
    let out = export_pcap(&db, "resp_p == 80");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "export pcap: zeek.conn events are not packets (only pcap.packet can be written as pcap)"
        ),
        "{err}"
    );
}

#[test]
fn not_a_pcap_fails_fast() {
    let db = TempDb::new("pcap-bad");
    let out = vast_with(
        &["-N", "-d", db.path().to_str().unwrap(), "import", "pcap"],
        Some(b"#separator \\x09\n#fields\tts\n"),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("input is not a pcap or pcapng stream: bad magic 0x23736570"),
        "{err}"
    );
}

fn read_gz(p: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut v = Vec::new();
    vast_node::source::format::open_input(Some(p))
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    v
}

/// (time, bytes) of every packet.
fn packets(bytes: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut s = PcapStream::new(bytes);
    let mut out = Vec::new();
    while let Some(p) = s.next_packet().unwrap() {
        out.push((p.time, p.data.to_vec()));
    }
    out
}

/// Reads a (gzipped) pcap with the standard library and prints one Community ID
/// per packet (`-` when it has no IP header), computed by the `communityid` package.
const COMMUNITY_ID_PY: &str = r#"
import gzip, socket, struct, sys
import communityid

data = gzip.open(sys.argv[1]).read()
e = '<' if struct.unpack('<I', data[:4])[0] in (0xa1b2c3d4, 0xa1b23c4d) else '>'
cid = communityid.CommunityID(0)

def flow(p):
    et, at = struct.unpack('!H', p[12:14])[0], 14
    while et in (0x8100, 0x88a8, 0x9100):
        et, at = struct.unpack('!H', p[at + 2:at + 4])[0], at + 4
    ip = p[at:]
    if et == 0x0800 and len(ip) >= 20:
        ihl = (ip[0] & 15) * 4
        proto, frag = ip[9], struct.unpack('!H', ip[6:8])[0] & 0x1fff
        src, dst = socket.inet_ntop(socket.AF_INET, ip[12:16]), socket.inet_ntop(socket.AF_INET, ip[16:20])
        l4 = ip[ihl:] if frag == 0 else b''
    elif et == 0x86dd and len(ip) >= 40:
        proto, at = ip[6], 40
        src, dst = socket.inet_ntop(socket.AF_INET6, ip[8:24]), socket.inet_ntop(socket.AF_INET6, ip[24:40])
        while proto in (0, 43, 60) and at + 2 <= len(ip):
            proto, at = ip[at], at + (ip[at + 1] + 1) * 8
        l4 = ip[at:]
    else:
        return None
    if proto in (6, 17, 132) and len(l4) >= 4:
        sp, dp = struct.unpack('!HH', l4[:4])
        return communityid.FlowTuple(proto, src, dst, sp, dp)
    if proto in (1, 58) and len(l4) >= 2:
        return communityid.FlowTuple(proto, src, dst, l4[0], l4[1])
    return communityid.FlowTuple(proto, src, dst)

at = 24
while at + 16 <= len(data):
    incl = struct.unpack(e + 'I', data[at + 8:at + 12])[0]
    tpl = flow(data[at + 16:at + 16 + incl])
    at += 16 + incl
    print(cid.calc(tpl) if tpl else '-')
"#;

#[test]
fn community_ids_match_the_python_package() {
    let Some(data) = data_dir() else { return };
    let probe = Command::new("python3")
        .args(["-c", "import communityid"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => {
            eprintln!(
                "skipping: python3 with the communityid module is not available \
                 (pip install communityid)"
            );
            return;
        }
    }
    let file = data.join("pcap/example.pcap.gz");
    let out = Command::new("python3")
        .args(["-c", COMMUNITY_ID_PY, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(want.len(), 1000);
    let db = TempDb::new("pcap-cid");
    import(&db, "pcap", &file);
    let got: Vec<String> = export_json(&db, "#type == \"pcap.packet\"")
        .iter()
        .map(|r| r["community_id"].as_str().unwrap_or("-").to_string())
        .collect();
    assert_eq!(got.len(), 1000);
    let with_ids = want.iter().filter(|w| *w != "-").count();
    assert!(with_ids > 900, "{with_ids} packets with an id");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "packet {i}");
    }
}
