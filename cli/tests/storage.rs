//! Storage at scale: partitions that hold many schemas, and background compaction
//! racing queries and imports, and killed in the middle. Real processes throughout.

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn count_at(ep: &str, q: &str) -> u64 {
    vast_ok(ep, &["count", q], None).trim().parse().unwrap()
}

fn status_at(ep: &str) -> serde_json::Value {
    serde_json::from_str(&vast_ok(ep, &["status", "--json"], None)).unwrap()
}

/// Partition ids with files in `<db>/archive` and `<db>/index`.
fn stored(db: &Path) -> (Vec<String>, Vec<String>) {
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .map(|r| {
                r.filter_map(|e| Some(e.ok()?.path().file_stem()?.to_str()?.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v.dedup();
        v
    };
    (names(&db.join("archive")), names(&db.join("index")))
}

/// JSON events `first..first+n` of import `batch`: every `id` is unique, `host`
/// repeats.
fn events(batch: usize, first: usize, n: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in first..first + n {
        out.push_str(&format!(
            "{{\"id\": {i}, \"batch\": {batch}, \"host\": \"10.0.{}.{}\", \"note\": \"event {i}\"}}\n",
            i % 7,
            i % 5
        ));
    }
    out.into_bytes()
}

#[test]
fn one_import_of_many_shapes_fills_few_partitions() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("sysmon-parts");
    import(&db, "json", &data.join("json/sysmon.json"));
    let st: serde_json::Value = serde_json::from_str(&vast_n(&db, &["status"], None)).unwrap();
    let parts = st["partitions"].as_u64().unwrap();
    assert!(parts <= 3, "sysmon.json took {parts} partitions: {st}");
    let schemas = st["schemas"].as_object().unwrap();
    let events: u64 = schemas
        .values()
        .map(|s| s["events"].as_u64().unwrap())
        .sum();
    assert_eq!(events, 2500, "{st}");
    // Every layout answers for its own rows only: the whole count, a field only
    // some layouts have, and its negation, add up.
    assert_eq!(count(&db, &["#type != \"nothing\""]), 2500);
}

#[test]
fn lookups_stay_inside_each_layout() {
    let db = TempDb::new("layouts");
    let mut input = Vec::new();
    // Two shapes, interleaved in one import: `a` has `x`, `b` has `y`.
    for i in 0..300 {
        if i % 3 == 0 {
            input.extend(format!("{{\"y\": {i}, \"t\": \"b\"}}\n").bytes());
        } else {
            input.extend(format!("{{\"x\": {i}, \"t\": \"a\"}}\n").bytes());
        }
    }
    vast_n(&db, &["import", "--batch-size", "7", "json"], Some(&input));
    let st: serde_json::Value = serde_json::from_str(&vast_n(&db, &["status"], None)).unwrap();
    assert_eq!(st["partitions"], 1, "{st}");
    assert_eq!(count(&db, &["x >= 0"]), 200);
    assert_eq!(count(&db, &["y >= 0"]), 100);
    assert_eq!(count(&db, &["x != 3"]), 200);
    assert_eq!(count(&db, &["! (x == 4)"]), 299);
    assert_eq!(count(&db, &["t == \"b\""]), 100);
    assert_eq!(count(&db, &["t != \"b\""]), 200);
    assert_eq!(count(&db, &["x == 3 || y == 3"]), 1);
    assert_eq!(count(&db, &["x == 3"]), 0);
    let rows = export_json(&db, "y == 3 || x == 4");
    assert_eq!(rows.len(), 2, "{rows:?}");
}

/// A NaN among a partition's reals (Zeek writes `nan` in double columns)
/// neither hides the values after it from a lookup nor matches a comparison.
#[test]
fn reals_after_a_nan_are_found() {
    let db = TempDb::new("nan");
    let log = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n\
               #path\tt\n#fields\tn\tr\n#types\tcount\tdouble\n\
               1\t1.0\n2\tnan\n3\t5.0\n4\t-\n";
    vast_n(&db, &["import", "zeek"], Some(log.as_bytes()));
    let ns = |q: &str| -> Vec<u64> {
        export_json(&db, q)
            .iter()
            .map(|e| e["n"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ns("r == 5.0"), [3]);
    assert_eq!(ns("r > 0.5"), [1, 3]);
    assert_eq!(ns("r < 10.0"), [1, 3]);
    assert_eq!(ns("r >= 1.0"), [1, 3]);
    assert_eq!(ns("r <= 5.0"), [1, 3]);
    assert_eq!(count(&db, &["r == 1.0"]), 1);
}

/// Starts a node that compacts every second, keeping replaced files `grace`
/// seconds.
fn compacting_node(db: &Path, rate: &str, grace: &str) -> NodeProc {
    NodeProc::start_env(
        "n1",
        db,
        free_port(),
        &[],
        None,
        &[
            ("VAST_COMPACTION__INTERVAL", "1"),
            ("VAST_COMPACTION__MAX_RATE", rate),
            ("VAST_COMPACTION__RETIRE_GRACE", grace),
        ],
    )
}

#[test]
fn compaction_merges_small_imports_without_changing_answers() {
    let _g = serial();
    let db = TempDb::new("compact");
    let node = compacting_node(db.path(), "1000000", "1");
    let ep = node.endpoint.clone();
    for b in 0..24 {
        vast_ok(&ep, &["import", "json"], Some(&events(b, b * 100, 100)));
    }
    let before = export_ids(&ep, "host == 10.0.1.1");
    assert_eq!(count_at(&ep, "id >= 0"), 2400);
    eventually(60, "compaction merges the small partitions", || {
        let st = status_at(&ep);
        st["partitions"].as_u64() == Some(1) && st["compaction"]["retiring"] == 0
    });
    let st = status_at(&ep);
    assert!(st["compaction"]["merges"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(count_at(&ep, "id >= 0"), 2400);
    assert_eq!(export_ids(&ep, "host == 10.0.1.1"), before);
    // The replaced partitions' files are gone; the merged one is whole.
    eventually(20, "replaced files removed", || {
        let (a, i) = stored(db.path());
        a.len() == 1 && i.len() == 1
    });
    let (a, i) = stored(db.path());
    assert_eq!(a, i);
    // And it all survives a restart.
    drop(node);
    let node = compacting_node(db.path(), "1000000", "1");
    assert_eq!(count_at(&node.endpoint, "id >= 0"), 2400);
    assert_eq!(stored(db.path()).0.len(), 1);
}

/// Sorted `id`s of the events matching `q`.
fn export_ids(ep: &str, q: &str) -> Vec<u64> {
    let out = vast_ok(ep, &["export", "json", q], None);
    let mut ids: Vec<u64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn compaction_racing_queries_and_imports_never_shows_an_event_twice_or_loses_one() {
    let _g = serial();
    let db = TempDb::new("compact-race");
    // Slow merges (2,000 events/s) so that queries run while they are written
    // and while they swap; replaced files stay 5 s for queries under way.
    let node = compacting_node(db.path(), "2000", "5");
    let ep = node.endpoint.clone();
    for b in 0..16 {
        vast_ok(&ep, &["import", "json"], Some(&events(b, b * 250, 250)));
    }
    let base = 16 * 250;
    let importer = {
        let ep = ep.clone();
        std::thread::spawn(move || {
            for b in 16..40 {
                vast_ok(&ep, &["import", "json"], Some(&events(b, b * 250, 250)));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = 0;
    let mut saw_running = false;
    let mut queries = 0;
    while Instant::now() < deadline {
        let st = status_at(&ep);
        saw_running |= st["compaction"]["running"] == true;
        // Each id exists once: a query during a swap sees the old partitions or
        // the new one, never both, never neither.
        for probe in [7, 1234, 3999] {
            assert_eq!(
                count_at(&ep, &format!("id == {probe}")),
                1,
                "id {probe}: {st}"
            );
        }
        let n = count_at(&ep, "id >= 0");
        assert!(n >= base as u64 && n <= 40 * 250, "count {n}");
        assert!(n >= last, "count went back from {last} to {n}");
        last = n;
        queries += 1;
        if importer.is_finished() && n == 40 * 250 && st["compaction"]["merges"].as_u64() >= Some(2)
        {
            break;
        }
    }
    importer.join().unwrap();
    assert!(
        saw_running,
        "no query ran while a merge was written ({queries} rounds)"
    );
    assert_eq!(count_at(&ep, "id >= 0"), 40 * 250);
    assert_eq!(
        export_ids(&ep, "id >= 0"),
        (0..40 * 250).collect::<Vec<u64>>()
    );
}

#[test]
fn a_node_killed_during_compaction_keeps_every_event_once() {
    let _g = serial();
    let db = TempDb::new("compact-kill");
    for round in 0..3u64 {
        // 1,000 events/s: a merge of these 12 partitions takes seconds, so the
        // kill lands inside it.
        let mut node = compacting_node(db.path(), "1000", "0");
        let ep = node.endpoint.clone();
        let first = (round * 12) as usize;
        for b in first..first + 12 {
            vast_ok(&ep, &["import", "json"], Some(&events(b, b * 200, 200)));
        }
        let expected = (first + 12) as u64 * 200;
        eventually(30, "a merge starts", || {
            status_at(&ep)["compaction"]["running"] == true
        });
        std::thread::sleep(Duration::from_millis(300 + 700 * round));
        node.sigkill();
        let node = compacting_node(db.path(), "1000000", "0");
        let ep = node.endpoint.clone();
        assert_eq!(count_at(&ep, "id >= 0"), expected, "round {round}");
        for probe in [0, expected - 1, expected / 2] {
            assert_eq!(count_at(&ep, &format!("id == {probe}")), 1, "id {probe}");
        }
        // No half-written merge and no replaced partition stays on disk.
        let st = status_at(&ep);
        let (a, i) = stored(db.path());
        assert_eq!(a, i, "archive and index disagree");
        assert_eq!(
            a.len() as u64,
            st["partitions"].as_u64().unwrap(),
            "{a:?} {st}"
        );
        drop(node);
    }
}
