//! The reference answers of ../shared/acceptance/README.md (all but the packet
//! cases), through the real `vast -N` binary.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn conn_log_counting() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("conn-count");
    import(&db, "zeek", &data.join("zeek/conn.log.gz"));
    assert_eq!(count(&db, &[":addr == 192.168.1.104"]), 2821);
    assert_eq!(count(&db, &["-e", ":addr == 192.168.1.104"]), 2821);
    assert_eq!(count(&db, &["resp_p == 80"]), 2730);
    assert_eq!(count(&db, &["resp_p != 80"]), 5732);
    assert_eq!(count(&db, &["861237"]), 0);
}

#[test]
fn several_imports() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("several");
    import(&db, "zeek", &data.join("zeek/conn.log.gz"));
    import(&db, "zeek", &data.join("zeek/dns.log.gz"));
    assert_eq!(count(&db, &[":timestamp >= 1970-01-01"]), 13586);
    assert_eq!(count(&db, &["#type == \"zeek.conn\""]), 8462);
    let rows = export_json(&db, "resp_h == 192.168.1.104");
    assert_eq!(rows.len(), 97);
    let conn = rows
        .iter()
        .filter(|r| r.get("conn_state").is_some())
        .count();
    let dns = rows.iter().filter(|r| r.get("query").is_some()).count();
    assert_eq!((conn, dns), (66, 31));
    assert_eq!(
        export_json(&db, "zeek.conn.id.resp_h == 192.168.1.104").len(),
        66
    );
}

#[test]
fn dns_log() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("dns");
    import(&db, "zeek", &data.join("zeek/dns.log.gz"));
    assert_eq!(count(&db, &[":port == 53"]), 3565);
}

#[test]
fn conn_log_exports() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("conn-export");
    import(&db, "zeek", &data.join("zeek/conn.log.gz"));
    let rows = export_json(&db, "resp_h == 192.168.1.104");
    assert_eq!(rows.len(), 66);
    assert_eq!(rows[0]["uid"], "tS3vjKMCHqj");
    assert_eq!(rows[0]["id.resp_h"], "192.168.1.104");
    assert_eq!(
        export_json(&db, "#type == \"zeek.conn\" && resp_h == 192.168.1.104").len(),
        66
    );
    assert_eq!(export_json(&db, "#type != \"zeek.conn\"").len(), 0);
}

#[test]
fn suricata_beside_zeek() {
    // The reference runs the suricata source inside a running server; embedded, the
    // same events arrive through `import` (the in-node source is the cluster's job).
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("suricata");
    vast_n(
        &db,
        &[
            "import",
            "-r",
            data.join("suricata/eve.json").to_str().unwrap(),
            "suricata",
        ],
        None,
    );
    import(&db, "zeek", &data.join("zeek/conn.log.gz"));
    assert_eq!(count(&db, &["#type ~ /suricata.*/"]), 7);
}

#[test]
fn errors() {
    let db = TempDb::new("errors");
    let out = vast_with(
        &[
            "-N",
            "-d",
            db.path().to_str().unwrap(),
            "export",
            "json",
            "yo that is not a query",
        ],
        None,
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("yo that is not a query") && err.contains('^'),
        "{err}"
    );
    let out = vast_with(
        &["and", "that", "is", "not", "a", "command"],
        None,
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Usage"), "{err}");
}
