//! `export arrow` read back by independent implementations: pyarrow reads the
//! concatenated streams, DuckDB queries them. Skips with a message when python3,
//! pyarrow or duckdb are absent (`.ci/run` installs them).

mod common;

use common::*;
use std::process::Command;

fn python_has(modules: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: python3 with {modules} is not installed (pip install pyarrow duckdb)");
    }
    ok
}

const READER: &str = r#"
import sys, json, ipaddress, pyarrow as pa, duckdb
f = open(sys.argv[1], 'rb')
streams = []
while True:
    try:
        r = pa.ipc.open_stream(f)
    except pa.ArrowInvalid:
        break  # end of input: no further stream
    streams.append(r.read_all())
out = {"streams": [[t.schema.metadata[b"vast.schema"].decode(), t.num_rows] for t in streams]}
conn = next(t for t in streams if t.schema.metadata[b"vast.schema"] == b"zeek.conn")
out["types"] = {f.name: str(f.type) for f in conn.schema}
out["vast_types"] = {f.name: f.metadata[b"vast.type"].decode() for f in conn.schema if f.metadata}
row = conn.slice(0, 1).to_pylist()[0]
out["first_orig_h"] = str(ipaddress.IPv6Address(row["id.orig_h"]).ipv4_mapped)
out["first_uid"] = row["uid"]
out["first_duration_ns"] = conn.column("duration")[0].value
out["duckdb_http"] = duckdb.sql('select count(*) from conn where "id.resp_p" = 80').fetchall()[0][0]
out["duckdb_bytes"] = int(duckdb.sql('select sum(orig_bytes) from conn').fetchall()[0][0])
out["duckdb_since"] = duckdb.sql("select count(*) from conn where ts >= TIMESTAMPTZ '2009-11-18 10:00:00+00'").fetchall()[0][0]
print(json.dumps(out))
"#;

#[test]
fn arrow_export_reads_in_pyarrow_and_duckdb() {
    let Some(data) = data_dir() else { return };
    if !python_has("pyarrow, duckdb") {
        return;
    }
    let db = TempDb::new("arrow");
    import(&db, "zeek", &data.join("zeek/conn.log.gz"));
    import(&db, "zeek", &data.join("zeek/dns.log.gz"));
    let out = vast_with(
        &[
            "-N",
            "-d",
            db.path().to_str().unwrap(),
            "export",
            "arrow",
            "#type ~ /zeek.(conn|dns)/",
        ],
        None,
        std::time::Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = db.path().with_extension("arrows");
    std::fs::write(&file, &out.stdout).unwrap();
    let py = Command::new("python3")
        .args(["-c", READER, file.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    // One stream per schema, one after another, every event in one of them.
    let streams = v["streams"].as_array().unwrap();
    let mut names: Vec<&str> = streams.iter().map(|s| s[0].as_str().unwrap()).collect();
    names.dedup();
    assert_eq!(
        names.len(),
        streams.len(),
        "a schema split over streams: {streams:?}"
    );
    let rows = |name: &str| -> u64 {
        streams
            .iter()
            .filter(|s| s[0] == name)
            .map(|s| s[1].as_u64().unwrap())
            .sum()
    };
    assert_eq!(rows("zeek.conn"), 8462);
    assert_eq!(rows("zeek.dns"), 5124);
    // Types as the README documents them.
    let t = &v["types"];
    assert_eq!(t["ts"], "timestamp[ns, tz=UTC]");
    assert_eq!(t["duration"], "duration[ns]");
    assert_eq!(t["id.orig_h"], "fixed_size_binary[16]");
    assert_eq!(t["id.resp_p"], "uint64");
    assert_eq!(t["tunnel_parents"], "list<item: string>");
    assert_eq!(v["vast_types"]["id.orig_h"], "address");
    assert_eq!(v["vast_types"]["id.resp_p"], "port");
    // Values agree with vast's own JSON export and count.
    let first = &export_json(&db, "#type == \"zeek.conn\"")[0];
    assert_eq!(v["first_uid"], first["uid"]);
    assert_eq!(v["first_orig_h"], first["id.orig_h"]);
    let secs = first["duration"]
        .as_f64()
        .expect("json durations are seconds");
    let ns = v["first_duration_ns"].as_i64().unwrap();
    assert!((ns as f64 / 1e9 - secs).abs() < 1e-6, "{ns} vs {secs}");
    assert_eq!(
        v["duckdb_http"].as_u64().unwrap(),
        count(&db, &["#type == \"zeek.conn\" && id.resp_p == 80"])
    );
    assert_eq!(
        v["duckdb_since"].as_u64().unwrap(),
        count(
            &db,
            &["#type == \"zeek.conn\" && ts >= 2009-11-18T10:00:00"]
        )
    );
    assert!(v["duckdb_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn arrow_export_of_nothing_is_empty() {
    let db = TempDb::new("arrow-empty");
    vast_n(&db, &["import", "-n", "10", "test"], None);
    let out = vast_n(&db, &["export", "arrow", "#type == \"nothing.here\""], None);
    assert!(out.is_empty());
}
