//! Multi-node behaviour with real `vast start` processes on loopback.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn count_at(ep: &str, q: &str) -> u64 {
    vast_ok(ep, &["count", q], None).trim().parse().unwrap()
}

/// A count that may fail while the cluster settles (inside `eventually`).
fn try_count(ep: &str, q: &str) -> Option<u64> {
    let out = vast_at(ep, &["count", q], None);
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The exit status of `child`, which must exit within `secs` (else fails with `what`).
fn exit_within(child: &mut std::process::Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Multi-node tests start several debug-build processes each; one at a time keeps
/// a two-core machine from starving them past the 2 s member timeout.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn three_node_cluster() {
    let _serial = serial();
    let Some(data) = data_dir() else { return };
    let root = TempDb::new("cluster");
    std::fs::create_dir_all(root.path()).unwrap();
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let n1 = NodeProc::start("n1", &root.path().join("n1"), p1, &[], None);
    // n2 may read the sample data for a spawned source; nothing else.
    let mut n2 = NodeProc::start_env(
        "n2",
        &root.path().join("n2"),
        p2,
        &[&n1.endpoint],
        None,
        &[("VAST_SOURCE__READ_DIRS", data.to_str().unwrap())],
    );
    let n3 = NodeProc::start("n3", &root.path().join("n3"), p3, &[&n2.endpoint], Some(""));
    let (e1, e3) = (n1.endpoint.clone(), n3.endpoint.clone());

    // Full mesh: n3 learned n1 through n2.
    eventually(20, "n3 sees n1 and n2 reachable", || {
        let peers: serde_json::Value =
            serde_json::from_str(&vast_ok(&e3, &["peers"], None)).unwrap();
        peers
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["reachable"] == true)
            .count()
            == 3
    });

    // Import via n1, and via n1 into n2; queries from the bare n3 see both.
    let conn = std::fs::read(data.join("zeek/conn.log.gz")).unwrap();
    let dns = std::fs::read(data.join("zeek/dns.log.gz")).unwrap();
    vast_ok(&e1, &["import", "zeek"], Some(&conn));
    vast_ok(&e1, &["--node", "n2", "import", "zeek"], Some(&dns));
    assert_eq!(count_at(&e3, ":timestamp >= 1970-01-01"), 13586);
    assert_eq!(count_at(&e3, "#type == \"zeek.conn\""), 8462);
    assert_eq!(
        count_at(&e3, ":addr == 192.168.1.104"),
        2821 + count_at(&e3, "#type == \"zeek.dns\" && :addr == 192.168.1.104")
    );
    let json = vast_ok(&e3, &["export", "json", "resp_h == 192.168.1.104"], None);
    assert_eq!(json.lines().count(), 97);
    assert_eq!(
        vast_ok(
            &e3,
            &["export", "-n", "10", "json", "resp_h == 192.168.1.104"],
            None
        )
        .lines()
        .count(),
        10
    );
    let n2_status: serde_json::Value =
        serde_json::from_str(&vast_ok(&e3, &["--node", "n2", "status"], None)).unwrap();
    assert_eq!(
        n2_status["schemas"]["zeek.dns"]["events"], 5124,
        "{n2_status}"
    );
    let n2_peer = n2_status["peer"].as_str().unwrap().to_string();

    // The bare n3 has no importer: it forwards imports to a member that has one.
    let small = std::fs::read(data.join("zeek/small_conn.log")).unwrap();
    let before = count_at(&e3, "#type == \"zeek.conn\"");
    let out = vast_ok(&e3, &["import", "zeek"], Some(&small));
    let _ = out;
    let added = count_at(&e3, "#type == \"zeek.conn\"") - before;
    assert!(added > 0, "forwarded import stored nothing");
    // Keep the later totals as the reference answers expect them.
    assert_eq!(count_at(&e3, "#type == \"zeek.conn\""), 8462 + added);
    let conn_total = 8462 + added;

    // A source inside n2's process, spawned and killed from n3.
    let eve = data.join("suricata/eve.json");
    let label = vast_ok(
        &e3,
        &[
            "--node",
            "n2",
            "spawn",
            "source",
            "-r",
            eve.to_str().unwrap(),
            "suricata",
        ],
        None,
    );
    assert_eq!(label.trim(), "source-0");
    eventually(20, "the in-node source's events are queryable", || {
        try_count(&e1, "#type ~ /suricata.*/") == Some(7)
    });
    let st: serde_json::Value = serde_json::from_str(&vast_ok(
        &e3,
        &["--node", "n2", "status", "--detailed"],
        None,
    ))
    .unwrap();
    assert!(
        st["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "source-0"),
        "{st}"
    );
    // Once done, the source says how long its import took, and that stays put.
    let source = || -> serde_json::Value {
        let st: serde_json::Value = serde_json::from_str(&vast_ok(
            &e3,
            &["--node", "n2", "status", "--detailed"],
            None,
        ))
        .unwrap();
        st["sources"]["source-0"].clone()
    };
    eventually(20, "the in-node source is done", || {
        source()["done"] == true
    });
    let took = source()["seconds"]
        .as_f64()
        .expect("a source reports seconds");
    assert!(took > 0.0 && took < 20.0, "{took}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(source()["seconds"].as_f64(), Some(took));
    vast_ok(&e3, &["--node", "n2", "kill", "source-0"], None);
    let out = vast_at(&e3, &["--node", "n2", "kill", "source-0"], None);
    assert!(!out.status.success(), "killing a gone label must fail");

    // A CLI that reaches only n1 drives n3.
    assert_eq!(
        vast_ok(&e1, &["--node", "n3", "spawn", "archive"], None).trim(),
        "archive"
    );
    let st: serde_json::Value =
        serde_json::from_str(&vast_ok(&e1, &["--node", "n3", "status"], None)).unwrap();
    assert_eq!(st["node"], "n3");
    assert!(
        st["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "archive"),
        "{st}"
    );

    // Unknown nodes are named with the known ones.
    let out = vast_at(&e1, &["--node", "n9", "status"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("n9") && err.contains("n1") && err.contains("n2") && err.contains("n3"),
        "{err}"
    );

    // A second node with an id already in the cluster is refused.
    let dup = std::process::Command::new(env!("CARGO_BIN_EXE_vast"))
        .args([
            "-i",
            "n1",
            "-d",
            root.path().join("dup").to_str().unwrap(),
            "-e",
            &format!("127.0.0.1:{}", free_port()),
            "start",
            "--peer",
            &e3,
        ])
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("already"),
        "{}",
        String::from_utf8_lossy(&dup.stderr)
    );

    // SIGKILL n2: queries fail fast naming it, or warn with --allow-partial.
    n2.sigkill();
    let start = Instant::now();
    let out = vast_at(&e1, &["count", "#type == \"zeek.dns\""], None);
    assert!(!out.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("n2"), "{err}");
    let out = vast_at(
        &e1,
        &["count", "--allow-partial", ":timestamp >= 1970-01-01"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // n2 holds the dns log and the suricata events; what the rest holds remains.
    let partial: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(
        partial >= 8462 && partial < 13593 + conn_total - 8462,
        "{partial}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("n2"));

    // Restart n2 on its database: full answers again, same PeerId.
    let n2 = NodeProc::start("n2", &root.path().join("n2"), p2, &[&e1], None);
    eventually(30, "n2 is back in n1's answers", || {
        let out = vast_at(&e1, &["count", ":timestamp >= 1970-01-01"], None);
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).trim()
                == (13593 + conn_total - 8462).to_string()
    });
    let st: serde_json::Value =
        serde_json::from_str(&vast_ok(&n2.endpoint, &["status"], None)).unwrap();
    assert_eq!(st["peer"].as_str().unwrap(), n2_peer);

    // Stop is graceful and the process exits.
    vast_ok(&e3, &["stop"], None);
    let mut n3 = n3;
    let mut child = n3.child.take().unwrap();
    assert!(exit_within(&mut child, 15, "n3 did not stop").success());
}

/// n1 and n2 under `root`, n1 placing every partition on n2, meshed.
fn placed_on_n2(root: &TempDb) -> (NodeProc, NodeProc) {
    let n2 = NodeProc::start("n2", &root.path().join("n2"), free_port(), &[], None);
    let n1 = NodeProc::start_env(
        "n1",
        &root.path().join("n1"),
        free_port(),
        &[&n2.endpoint],
        Some("importer,archive,index"),
        &[("VAST_IMPORT__PLACEMENT", "fixed:n2")],
    );
    wait_member(&n1.endpoint, "n2", 3);
    (n1, n2)
}

#[test]
fn placement_puts_partitions_on_another_node() {
    let _serial = serial();
    let Some(data) = data_dir() else { return };
    let root = TempDb::new("placement");
    std::fs::create_dir_all(root.path()).unwrap();
    let (n1, n2) = placed_on_n2(&root);
    let conn = std::fs::read(data.join("zeek/conn.log.gz")).unwrap();
    vast_ok(&n1.endpoint, &["import", "zeek"], Some(&conn));
    let s1: serde_json::Value =
        serde_json::from_str(&vast_ok(&n1.endpoint, &["status"], None)).unwrap();
    let s2: serde_json::Value =
        serde_json::from_str(&vast_ok(&n2.endpoint, &["status"], None)).unwrap();
    assert_eq!(s1["events"], 0, "{s1}");
    assert_eq!(s2["events"], 8462, "{s2}");
    // Queries through either node find the data, exact checks included.
    assert_eq!(count_at(&n1.endpoint, ":addr == 192.168.1.104"), 2821);
    assert_eq!(count_at(&n1.endpoint, "resp_p != 80"), 5732);
    let rows = vast_ok(
        &n1.endpoint,
        &["export", "json", "resp_h == 192.168.1.104"],
        None,
    );
    assert_eq!(rows.lines().count(), 66);
    assert!(rows.lines().next().unwrap().contains("tS3vjKMCHqj"));
}

#[test]
fn a_peer_vanishing_mid_import_fails_the_import() {
    let _serial = serial();
    let root = TempDb::new("vanish");
    std::fs::create_dir_all(root.path()).unwrap();
    let n1 = NodeProc::start("n1", &root.path().join("n1"), free_port(), &[], None);
    let mut n2 = NodeProc::start(
        "n2",
        &root.path().join("n2"),
        free_port(),
        &[&n1.endpoint],
        None,
    );
    eventually(20, "n1 sees n2", || {
        vast_ok(&n1.endpoint, &["peers"], None)
            .matches("\"reachable\": true")
            .count()
            == 2
    });
    // An endless generated stream into n2 through n1; n2 dies underneath it.
    let mut import = std::process::Command::new(env!("CARGO_BIN_EXE_vast"))
        .args([
            "-e",
            &n1.endpoint,
            "--node",
            "n2",
            "import",
            "-n",
            "100000000",
            "test",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually(30, "events reach n2", || {
        let s = vast_at(&n2.endpoint, &["status", "--detailed"], None);
        s.status.success()
            && String::from_utf8_lossy(&s.stdout).contains("archive")
            && !String::from_utf8_lossy(&s.stdout).contains("\"active-partitions\": 0")
    });
    n2.sigkill();
    let status = exit_within(&mut import, 60, "import did not notice that n2 vanished");
    let mut err = String::new();
    std::io::Read::read_to_string(import.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        !status.success(),
        "import succeeded although n2 died: {err}"
    );
    assert!(err.contains("n2"), "{err}");
    // n1 is unharmed.
    vast_ok(&n1.endpoint, &["status"], None);
}

#[cfg(feature = "pcap")]
#[test]
fn live_capture_on_another_node() {
    let _serial = serial();
    let root = TempDb::new("capture");
    std::fs::create_dir_all(root.path()).unwrap();
    let env = [("VAST_IMPORT__PARTITION_TIMEOUT", "1")];
    let n1 = NodeProc::start_env("n1", &root.path().join("n1"), free_port(), &[], None, &env);
    let _n2 = NodeProc::start_env(
        "n2",
        &root.path().join("n2"),
        free_port(),
        &[&n1.endpoint],
        None,
        &env,
    );
    eventually(20, "n1 sees n2", || {
        vast_ok(&n1.endpoint, &["peers"], None)
            .matches("\"reachable\": true")
            .count()
            == 2
    });
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let filter = format!("udp port {port}");
    let out = vast_at(
        &n1.endpoint,
        &[
            "--node", "n2", "spawn", "source", "-i", "lo", "-f", &filter, "pcap",
        ],
        None,
    );
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("lo")
                && (err.contains("permission")
                    || err.contains("CAP_NET_RAW")
                    || err.contains("setcap")),
            "{err}"
        );
        eprintln!("skipping: cannot capture here: {err}");
        return;
    }
    let label = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // A bad filter fails the spawn with libpcap's message.
    let bad = vast_at(
        &n1.endpoint,
        &[
            "--node",
            "n2",
            "spawn",
            "source",
            "-i",
            "lo",
            "-f",
            "udp port nonsense",
            "pcap",
        ],
        None,
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("filter"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..50u32 {
        sender
            .send_to(&i.to_be_bytes(), ("127.0.0.1", port))
            .unwrap();
    }
    let q = format!("dport == {port}");
    eventually(30, "the 50 datagrams are queryable through n1", || {
        try_count(&n1.endpoint, &q) == Some(50)
    });
    let st: serde_json::Value = serde_json::from_str(&vast_ok(
        &n1.endpoint,
        &["--node", "n2", "status", "--detailed"],
        None,
    ))
    .unwrap();
    assert!(st["sources"][&label]["counters"].is_object(), "{st}");
    vast_ok(&n1.endpoint, &["--node", "n2", "kill", &label], None);
    // Stopped: later datagrams are not captured.
    for i in 0..10u32 {
        sender
            .send_to(&i.to_be_bytes(), ("127.0.0.1", port))
            .unwrap();
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count_at(&n1.endpoint, &q), 50);
}

/// Without the `pcap` feature there is no libpcap: a capture fails with a reason.
#[cfg(not(feature = "pcap"))]
#[test]
fn live_capture_needs_the_pcap_feature() {
    let _serial = serial();
    let db = TempDb::new("no-pcap");
    let n = NodeProc::start("n1", db.path(), free_port(), &[], None);
    let out = vast_at(&n.endpoint, &["spawn", "source", "-i", "lo", "pcap"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without the `pcap` feature"), "{err}");
}

#[test]
fn fields_no_schema_has_are_reported_across_the_cluster() {
    let _serial = serial();
    let Some(data) = data_dir() else { return };
    let root = TempDb::new("unknown-fields");
    std::fs::create_dir_all(root.path()).unwrap();
    // n1 holds nothing itself: every schema lives on n2.
    let (n1, _n2) = placed_on_n2(&root);
    let conn = std::fs::read(data.join("zeek/conn.log.gz")).unwrap();
    vast_ok(&n1.endpoint, &["import", "zeek"], Some(&conn));
    let out = vast_at(&n1.endpoint, &["count", "no_such_field == 1"], None);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("no schema has field `no_such_field`"), "{e}");
    let out = vast_at(&n1.endpoint, &["export", "json", ":nosuchtype == 1"], None);
    assert!(out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("no schema has a field of type `:nosuchtype`"),
        "{e}"
    );
    // A field that only n2's schemas have is no typo.
    let out = vast_at(&n1.endpoint, &["count", "resp_h == 192.168.1.104"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "66");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("no schema"));
}

/// Established TCP sockets whose local port is `port` (IPv4, /proc/net/tcp).
fn established_at(port: u16) -> usize {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    tcp.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "01"
                && f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

/// A member joining and a CLI each open `cluster.connections` connections to the
/// node they dial (2 by default), and an import over several connections arrives
/// whole.
#[test]
fn peers_open_the_configured_connections_and_imports_cross_them() {
    let _serial = serial();
    let root = TempDb::new("conns");
    std::fs::create_dir_all(root.path()).unwrap();
    let (p1, p2) = (free_port(), free_port());
    let n1 = NodeProc::start("n1", &root.path().join("n1"), p1, &[], None);
    let _n2 = NodeProc::start("n2", &root.path().join("n2"), p2, &[&n1.endpoint], Some(""));
    eventually(20, "n2's two connections to n1", || established_at(p1) == 2);

    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_vast"))
        .args(["-e", &n1.endpoint, "import", "--batch-size", "500", "zeek"])
        .env("VAST_CLUSTER__CONNECTIONS", "3")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually(20, "the CLI's three connections to n1", || {
        established_at(p1) == 5
    });
    // Many small batches, so that requests take turns over the connections.
    {
        use std::io::Write;
        let mut stdin = cli.stdin.take().unwrap();
        stdin.write_all(conn_log("c", 20_000).as_bytes()).unwrap();
    }
    let status = exit_within(&mut cli, 60, "the import did not finish");
    let mut err = String::new();
    std::io::Read::read_to_string(cli.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert_eq!(count_at(&n1.endpoint, "#type == \"zeek.conn\""), 20_000);
    eventually(20, "the CLI's connections closed", || {
        established_at(p1) == 2
    });

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vast"))
        .args(["-e", &n1.endpoint, "status"])
        .env("VAST_CLUSTER__CONNECTIONS", "9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cluster.connections 9 must be between 1 and 8"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
