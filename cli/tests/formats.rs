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

/// Imports `input` in `format` from stdin; returns stderr (the import's report).
fn import_stdin(db: &TempDb, format: &[&str], input: &[u8]) -> String {
    let mut args = vec!["import"];
    args.extend_from_slice(format);
    let out = run(db, &args, Some(input));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

#[test]
fn csv_sample_imports_every_row() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("csv-argus");
    let out = run(
        &db,
        &[
            "import",
            "-r",
            data.join("csv/argus-M57-10k-pkts.csv.gz").to_str().unwrap(),
            "-t",
            "argus",
            "csv",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("imported 2989 events"), "{err}");
    assert!(err.contains(" 0 malformed"), "{err}");
    assert_eq!(count(&db, &["#type == \"argus\""]), 2989);
    // The 1,005 rows with a MAC address as SrcAddr, which an address column
    // inferred from the first row used to drop; the column is text now.
    assert_eq!(count(&db, &["SrcAddr == \"00:22:2d:81:db:10\""]), 1005);
    assert_eq!(count(&db, &["SrcAddr == \"192.168.1.1\""]), 1040);
    assert_eq!(count(&db, &["Dport == 53"]), 92);
    assert_eq!(count(&db, &["Proto == \"arp\""]), 198);
}

#[test]
fn csv_quoted_newlines_and_doubled_quotes() {
    let db = TempDb::new("csv-quotes");
    let text =
        "id,msg,n\r\n1,\"two\nlines\",7\r\n2,\"say \"\"hi\"\"\r\nand, bye\",8\r\n3,plain,9\r\n";
    let err = import_stdin(&db, &["-t", "q", "csv"], text.as_bytes());
    assert!(err.contains("imported 3 events"), "{err}");
    assert!(err.contains(" 0 malformed"), "{err}");
    let rows = export_json(&db, "#type == \"q\"");
    let msgs: Vec<&str> = rows.iter().map(|r| r["msg"].as_str().unwrap()).collect();
    assert_eq!(msgs, ["two\nlines", "say \"hi\"\r\nand, bye", "plain"]);
    assert_eq!(count(&db, &["n == 8"]), 1);
}

#[test]
fn csv_column_widens_after_the_inference_window() {
    // 10,000 rows fill the inference window with counts and addresses; later
    // rows hold a negative number and a host name.
    let mut text = String::from("n,host\n");
    for i in 0..10_000 {
        text.push_str(&format!("{i},10.0.{}.{}\n", i / 256 % 256, i % 256));
    }
    text.push_str("-5,10.1.0.1\n10001,gateway.local\n10002,10.1.0.2\n");
    let db = TempDb::new("csv-widen");
    let err = import_stdin(&db, &["-t", "w", "csv"], text.as_bytes());
    assert!(err.contains("imported 10003 events"), "{err}");
    assert!(err.contains(" 0 malformed"), "{err}");
    assert!(
        err.contains("line 10002") && err.contains("column n") && err.contains("int"),
        "the widening is reported with its line: {err}"
    );
    assert_eq!(count(&db, &["#type == \"w\""]), 10003);
    assert_eq!(count(&db, &["n == -5"]), 1);
    assert_eq!(count(&db, &["host == \"gateway.local\""]), 1);
    // Rows before the change keep their address type.
    assert_eq!(count(&db, &["host == 10.0.0.7"]), 1);
    assert_eq!(count(&db, &["n > 9990"]), 11);
}

#[test]
fn csv_syntax_errors_are_counted_with_line_numbers() {
    let db = TempDb::new("csv-errors");
    let text = "a,b\n1,2\n3,4,5\n6,7\n8,\"open\n9,10\n";
    let err = import_stdin(&db, &["-t", "e", "csv"], text.as_bytes());
    assert!(err.contains("imported 2 events"), "{err}");
    assert!(err.contains("2 malformed"), "{err}");
    assert!(err.contains("line 3: expected 2 fields but got 3"), "{err}");
    assert!(
        err.contains("line 5: unterminated quote") && err.contains("lines 5-6"),
        "{err}"
    );
    assert_eq!(count(&db, &["#type == \"e\""]), 2);
}

/// Year, month and day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[test]
fn syslog_bsd_timestamps_get_the_most_recent_year() {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    let past = civil(today - 3);
    // Three days ahead is in the future this year, so it is last year's; a
    // leap day would move further back, so step past it.
    let mut ahead = civil(today + 3);
    if (ahead.1, ahead.2) == (2, 29) {
        ahead = civil(today + 4);
    }
    let line = |(_, m, d): (i64, u32, u32), msg: &str| {
        format!(
            "{} {d:>2} 12:00:00 host app: {msg}\n",
            MONTHS[m as usize - 1]
        )
    };
    let text = line(past, "past") + &line(ahead, "ahead") + "Feb 30 12:00:00 host app: never\n";
    let db = TempDb::new("syslog-years");
    let err = import_stdin(&db, &["syslog"], text.as_bytes());
    assert!(err.contains("imported 2 events"), "{err}");
    assert!(err.contains("1 malformed"), "{err}");
    assert!(
        err.contains("line 3: timestamp \"Feb 30 12:00:00\" names no date"),
        "{err}"
    );
    let rows = export_json(&db, "#type == \"syslog.rfc3164\"");
    let ts = |msg: &str| {
        let r = rows.iter().find(|r| r["message"] == msg).unwrap();
        r["ts"].as_str().unwrap().to_string()
    };
    let date = |(y, m, d): (i64, u32, u32)| format!("{y:04}-{m:02}-{d:02}T12:00:00");
    assert_eq!(ts("past"), date(past));
    assert_eq!(ts("ahead"), date((ahead.0 - 1, ahead.1, ahead.2)));
}

#[test]
fn json_shapes_lose_nothing() {
    let db = TempDb::new("json-shapes");
    let text = concat!(
        // A field whose type changes between lines.
        "{\"a\": 1, \"tag\": \"first\"}\n",
        "{\"a\": \"one\", \"tag\": \"second\"}\n",
        // A top-level array of objects, with a number among them.
        "[{\"a\": 2, \"tag\": \"third\"}, 3, {\"a\": 4, \"tag\": \"fourth\"}]\n",
        // Lists of mixed kinds, and objects nested in a list.
        "{\"l\": [1, -2, 2.5], \"m\": [null, 1, \"x\", {\"k\": [true]}], \"tag\": \"lists\"}\n",
        "{}\n",
    );
    let err = import_stdin(&db, &["-t", "shapes", "json"], text.as_bytes());
    assert!(err.contains("imported 5 events"), "{err}");
    assert!(err.contains("2 malformed"), "{err}");
    assert!(
        err.contains("line 3: element 2 of the array is not a json object"),
        "{err}"
    );
    assert_eq!(count(&db, &["#type == \"shapes\""]), 5);
    assert_eq!(count(&db, &["a == \"one\""]), 1);
    assert_eq!(count(&db, &["a == 4"]), 1);
    let rows = export_json(&db, "tag == \"lists\"");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["l"], serde_json::json!([1.0, -2.0, 2.5]));
    assert_eq!(
        rows[0]["m"],
        serde_json::json!([null, "1", "x", "{\"k\":[true]}"])
    );
}
