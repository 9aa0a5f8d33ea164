//! Import and export formats through the real binary: every reader, malformed
//! input, filters and limits, and a Zeek export that re-imports to the same events.

mod common;

use common::*;
use std::time::Duration;

fn run(db: &TempDb, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut full = vec!["-N", "-d", db.path().to_str().unwrap()];
    full.extend_from_slice(args);
    vast_with(&full, stdin, Duration::from_secs(60))
}

#[test]
fn every_reader_imports_real_data() {
    let Some(data) = data_dir() else { return };
    let cases: &[(&str, &str, &[&str], &str)] = &[
        ("zeek-json", "zeek/zeek.json", &[], "#type ~ /zeek.*/"),
        (
            "json",
            "json/conn.log.json.gz",
            &["-t", "zeek.conn"],
            "#type == \"zeek.conn\"",
        ),
        (
            "csv",
            "csv/argus-M57-10k-pkts.csv.gz",
            &["-t", "argus"],
            "#type == \"argus\"",
        ),
        ("syslog", "syslog/syslog.log", &[], "#type ~ /syslog/"),
        ("suricata", "suricata/eve.json", &[], "#type ~ /suricata/"),
    ];
    for (format, file, extra, query) in cases {
        let db = TempDb::new(&format!("reader-{format}"));
        let path = data.join(file);
        let mut args = vec!["import", "-r", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(format);
        vast_n(&db, &args, None);
        let n = count(&db, &[query]);
        assert!(n > 0, "{format}: nothing imported from {file}");
        let json = export_json(&db, query);
        assert_eq!(json.len() as u64, n, "{format}: export and count disagree");
    }
}

#[test]
fn limit_and_filter_on_import() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("limit");
    let conn = std::fs::read(data.join("zeek/conn.log.gz")).unwrap();
    let out = run(&db, &["import", "-n", "100", "zeek"], Some(&conn));
    assert!(out.status.success());
    assert_eq!(count(&db, &["#type == \"zeek.conn\""]), 100);
    let db = TempDb::new("filter");
    let eve = data.join("suricata/eve.json");
    vast_n(
        &db,
        &[
            "import",
            "-r",
            eve.to_str().unwrap(),
            "suricata",
            "#type != \"suricata.stats\"",
        ],
        None,
    );
    assert_eq!(count(&db, &["#type ~ /suricata/"]), 6);
    assert_eq!(count(&db, &["#type == \"suricata.stats\""]), 0);
}

#[test]
fn malformed_lines_are_skipped_and_counted() {
    let Some(data) = data_dir() else { return };
    let small = std::fs::read_to_string(data.join("zeek/small_conn.log")).unwrap();
    let mut lines: Vec<String> = small.lines().map(String::from).collect();
    let first_data = lines.iter().position(|l| !l.starts_with('#')).unwrap();
    let good = lines.iter().filter(|l| !l.starts_with('#')).count();
    // A short line and a line with an unparsable count, in the middle.
    lines.insert(first_data + 1, "1258531221.486539\tshort".to_string());
    lines.insert(
        first_data + 2,
        lines[first_data].replace('\t', "\tx\t").to_string(),
    );
    let db = TempDb::new("malformed");
    let out = run(&db, &["import", "zeek"], Some(lines.join("\n").as_bytes()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("2 malformed"), "{err}");
    assert!(err.contains("line"), "warning names the line: {err}");
    assert_eq!(count(&db, &["#type == \"zeek.conn\""]), good as u64);
}

#[test]
fn wrong_format_fails_fast() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("wrongformat");
    let pcap = std::fs::read(data.join("pcap/nmap_vsn.pcap")).unwrap();
    let out = run(&db, &["import", "zeek"], Some(&pcap));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("zeek"), "{err}");
    let out = run(&db, &["import", "json"], Some(&pcap));
    assert!(!out.status.success());
    let out = run(&db, &["import", "bogus"], Some(b""));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

#[test]
fn zeek_export_reimports_to_the_same_events() {
    let Some(data) = data_dir() else { return };
    let a = TempDb::new("roundtrip-a");
    import(&a, "zeek", &data.join("zeek/conn.log.gz"));
    import(&a, "zeek", &data.join("zeek/dns.log.gz"));
    let zeek = vast_n(&a, &["export", "zeek", ":timestamp >= 1970-01-01"], None);
    let b = TempDb::new("roundtrip-b");
    vast_n(&b, &["import", "zeek"], Some(zeek.as_bytes()));
    for q in [
        "#type == \"zeek.conn\"",
        "#type == \"zeek.dns\"",
        "resp_h == 192.168.1.104",
    ] {
        assert_eq!(export_json(&a, q), export_json(&b, q), "{q}");
    }
}

#[test]
fn export_formats_and_limits() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("exports");
    import(&db, "zeek", &data.join("zeek/conn.log.gz"));
    let q = "resp_h == 192.168.1.104";
    assert_eq!(
        vast_n(&db, &["export", "-n", "5", "json", q], None)
            .lines()
            .count(),
        5
    );
    let csv = vast_n(&db, &["export", "csv", q], None);
    assert_eq!(csv.lines().count(), 67, "a header and 66 rows");
    assert!(csv.lines().next().unwrap().contains("id.orig_h"));
    let ascii = vast_n(&db, &["export", "ascii", q], None);
    assert_eq!(ascii.lines().count(), 66);
    assert!(ascii.starts_with('<'), "{ascii}");
    assert_eq!(vast_n(&db, &["export", "null", q], None), "");
    let out = run(&db, &["export", "yaml", q], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("yaml"));
}

#[test]
fn status_reports_schemas_and_sizes() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("status");
    import(&db, "zeek", &data.join("zeek/conn.log.gz"));
    let s: serde_json::Value = serde_json::from_str(&vast_n(&db, &["status"], None)).unwrap();
    assert_eq!(s["schemas"]["zeek.conn"]["events"], 8462);
    assert_eq!(s["events"], 8462);
    assert!(s["bytes-on-disk"].as_u64().unwrap() > 0);
    assert!(s["index"]["bytes"].as_u64().unwrap() > 0);
}

#[test]
fn a_second_process_on_the_same_database_is_refused() {
    let db = TempDb::new("locked");
    // A slow import holds the database while a count tries to open it.
    let dbp = db.path().to_str().unwrap().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vast"))
        .args(["-N", "-d", &dbp, "import", "zeek"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !db.path().join("LOCK").exists()
        || std::fs::read_to_string(db.path().join("LOCK"))
            .unwrap_or_default()
            .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "import never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run(&db, &["count", "10.0.0.1"], None);
    let _ = child.kill();
    let _ = child.wait();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another process") && err.contains("pid"),
        "{err}"
    );
}
