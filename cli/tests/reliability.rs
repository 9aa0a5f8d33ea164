//! Nothing acknowledged is lost, nothing unacknowledged half-appears: SIGKILLs
//! during imports, failing and concurrent imports, lost nodes, renames, killed
//! components, read-your-writes. Real processes throughout.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn count_at(ep: &str, q: &str) -> u64 {
    vast_ok(ep, &["count", q], None).trim().parse().unwrap()
}

/// Partition ids with files in the archive and the index of database `db`.
fn stored(db: &Path) -> (Vec<String>, Vec<String>) {
    let names = |d: &Path, ext: Option<&str>| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .map(|r| {
                r.filter_map(|e| {
                    let p = e.ok()?.path();
                    match ext {
                        Some(x) if p.extension()? != x => None,
                        _ => Some(p.file_stem()?.to_str()?.to_string()),
                    }
                })
                .collect()
            })
            .unwrap_or_default();
        v.sort();
        v.dedup();
        v
    };
    (
        names(&db.join("archive"), None),
        names(&db.join("index"), None),
    )
}

/// The database holds exactly the partitions `status` reports, in both archive
/// and index, and nothing else (no leftovers of aborted or killed imports).
fn no_leftovers(db: &Path, partitions: u64) {
    let (a, i) = stored(db);
    assert_eq!(a, i, "archive and index disagree in {}", db.display());
    assert_eq!(
        a.len() as u64,
        partitions,
        "files in {}: {a:?}",
        db.display()
    );
    assert!(a.iter().all(|n| n.parse::<uuid::Uuid>().is_ok()), "{a:?}");
}

fn status_n(db: &TempDb) -> serde_json::Value {
    serde_json::from_str(&vast_n(db, &["status"], None)).unwrap()
}

/// A deterministic delay for the k-th kill, printed so a failure can be replayed.
fn delay(k: u64) -> Duration {
    let seed = std::env::var("VAST_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(k * 1442695040888963407);
    let ms = 100 + (x >> 33) % 2400;
    eprintln!("kill {k}: after {ms} ms (VAST_KILL_SEED={seed})");
    Duration::from_millis(ms)
}

#[test]
fn sigkill_during_embedded_imports_leaves_all_or_nothing() {
    let _s = serial();
    let db = TempDb::new("kill-embedded");
    let per = 200_000u64;
    let mut committed = 0u64;
    for k in 0..5u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vast"))
            .args([
                "-N",
                "-d",
                db.path().to_str().unwrap(),
                "import",
                "-n",
                &per.to_string(),
                "test",
            ])
            .env("VAST_IMPORT__PARTITION_SIZE", "30000")
            .env("VAST_IMPORT__BATCH_SIZE", "5000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The last round runs to the end.
        let finished = if k < 4 {
            std::thread::sleep(delay(k));
            let done = child.try_wait().unwrap().is_some_and(|s| s.success());
            let _ = child.kill();
            let _ = child.wait();
            done
        } else {
            child.wait().unwrap().success()
        };
        // All or nothing: a killed import may have committed just before the
        // kill (before its process could report it), but never in part; one that
        // reported success is there.
        let st = status_n(&db);
        let events = st["events"].as_u64().unwrap();
        if finished {
            assert_eq!(events, committed + per, "after kill {k}: {st}");
        } else {
            assert!(
                events == committed || events == committed + per,
                "after kill {k}: {events} events, {committed} before: {st}"
            );
        }
        committed = events;
        assert_eq!(
            vast_n(&db, &["count", ":count >= 0"], None).trim(),
            committed.to_string()
        );
        no_leftovers(db.path(), st["partitions"].as_u64().unwrap());
    }
    assert!(committed >= per, "the last import always completes");
}

#[test]
fn concurrent_client_imports_one_failing() {
    let _s = serial();
    let Some(data) = data_dir() else { return };
    let root = TempDb::new("concurrent");
    std::fs::create_dir_all(root.path()).unwrap();
    let n1 = NodeProc::start("n1", &root.path().join("n1"), free_port(), &[], None);
    let ep = n1.endpoint.clone();
    let conn = std::fs::read(data.join("zeek/conn.log.gz")).unwrap();
    let dns = std::fs::read(data.join("zeek/dns.log.gz")).unwrap();
    // A gzip stream cut short: the reader fails part way through.
    let truncated = conn[..conn.len() * 2 / 3].to_vec();
    let run = |bytes: Vec<u8>| {
        let ep = ep.clone();
        std::thread::spawn(move || vast_at(&ep, &["import", "zeek"], Some(&bytes)))
    };
    let jobs = [
        run(conn.clone()),
        run(truncated),
        run(dns.clone()),
        run(conn.clone()),
    ];
    let outs: Vec<_> = jobs.into_iter().map(|j| j.join().unwrap()).collect();
    assert!(outs[0].status.success() && outs[2].status.success() && outs[3].status.success());
    assert!(!outs[1].status.success(), "the truncated import succeeded");
    let e = String::from_utf8_lossy(&outs[1].stderr);
    assert!(e.contains("nothing of this import was kept"), "{e}");
    assert_eq!(count_at(&ep, "#type == \"zeek.conn\""), 2 * 8462);
    assert_eq!(count_at(&ep, "#type == \"zeek.dns\""), 5124);
    let st: serde_json::Value = serde_json::from_str(&vast_ok(&ep, &["status"], None)).unwrap();
    assert_eq!(st["events"], 2 * 8462 + 5124, "{st}");
    no_leftovers(&root.path().join("n1"), st["partitions"].as_u64().unwrap());
}

#[test]
fn a_client_or_node_killed_mid_import_leaves_nothing() {
    let _s = serial();
    let root = TempDb::new("client-kill");
    std::fs::create_dir_all(root.path()).unwrap();
    let db = root.path().join("n1");
    let env = [("VAST_IMPORT__PARTITION_SIZE", "20000")];
    let mut n1 = NodeProc::start_env("n1", &db, free_port(), &[], None, &env);
    let ep = n1.endpoint.clone();
    vast_ok(&ep, &["import", "-n", "50000", "test"], None);
    // The client dies mid-import: the node aborts its session.
    let mut client = Command::new(env!("CARGO_BIN_EXE_vast"))
        .args([
            "-e",
            &ep,
            "import",
            "-n",
            "5000000",
            "--batch-size",
            "5000",
            "test",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay(1).max(Duration::from_millis(800)));
    let _ = client.kill();
    let _ = client.wait();
    eventually(40, "the node aborted the dead client's import", || {
        let st: serde_json::Value = serde_json::from_str(&vast_ok(&ep, &["status"], None)).unwrap();
        st["events"] == 50000 && {
            let (a, _) = stored(&db);
            a.len() as u64 == st["partitions"].as_u64().unwrap()
        }
    });
    assert_eq!(count_at(&ep, ":count >= 0"), 50000);
    // The node itself dies mid-import: it restarts with what was acknowledged.
    let client = std::thread::spawn({
        let ep = ep.clone();
        move || {
            vast_at(
                &ep,
                &["import", "-n", "5000000", "--batch-size", "5000", "test"],
                None,
            )
        }
    });
    std::thread::sleep(delay(2).max(Duration::from_millis(800)));
    n1.sigkill();
    let out = client.join().unwrap();
    assert!(
        !out.status.success(),
        "the import of a killed node succeeded"
    );
    let n1 = NodeProc::start_env("n1", &db, free_port(), &[], None, &env);
    let st: serde_json::Value =
        serde_json::from_str(&vast_ok(&n1.endpoint, &["status"], None)).unwrap();
    assert_eq!(st["events"], 50000, "{st}");
    no_leftovers(&db, st["partitions"].as_u64().unwrap());
}

#[test]
fn a_node_lost_mid_import_aborts_it_everywhere() {
    let _s = serial();
    let root = TempDb::new("rr-lost");
    std::fs::create_dir_all(root.path()).unwrap();
    let env = [
        ("VAST_IMPORT__PARTITION_SIZE", "20000"),
        ("VAST_IMPORT__PLACEMENT", "round-robin"),
    ];
    let (d1, d2) = (root.path().join("n1"), root.path().join("n2"));
    let p2 = free_port();
    let n1 = NodeProc::start_env("n1", &d1, free_port(), &[], None, &env);
    let mut n2 = NodeProc::start_env("n2", &d2, p2, &[&n1.endpoint], None, &env);
    let ep = n1.endpoint.clone();
    wait_member(&ep, "n2", 3);
    // A whole import spread over both nodes, committed on both.
    vast_ok(&ep, &["import", "-n", "100000", "test"], None);
    let s2: serde_json::Value =
        serde_json::from_str(&vast_ok(&n2.endpoint, &["status"], None)).unwrap();
    assert!(
        s2["events"].as_u64().unwrap() > 0,
        "round-robin put nothing on n2: {s2}"
    );
    assert_eq!(count_at(&ep, ":count >= 0"), 100000);
    // n2 dies during the next one: the import fails naming n2 and leaves nothing.
    let client = std::thread::spawn({
        let ep = ep.clone();
        move || {
            vast_at(
                &ep,
                &["import", "-n", "3000000", "--batch-size", "5000", "test"],
                None,
            )
        }
    });
    std::thread::sleep(delay(3).max(Duration::from_millis(1500)));
    n2.sigkill();
    let out = client.join().unwrap();
    assert!(!out.status.success(), "an import that lost n2 succeeded");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("n2"), "{e}");
    let out = vast_at(&ep, &["count", "--allow-partial", ":count >= 0"], None);
    let partial: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(partial, 100000 - s2["events"].as_u64().unwrap());
    let s1: serde_json::Value = serde_json::from_str(&vast_ok(&ep, &["status"], None)).unwrap();
    no_leftovers(&d1, s1["partitions"].as_u64().unwrap());
    // n2 returns: what it prepared for the aborted import is removed; the
    // committed import is whole again.
    let n2 = NodeProc::start_env("n2", &d2, p2, &[&n1.endpoint], None, &env);
    eventually(
        30,
        "n2 is back and resolved its prepared partitions",
        || {
            let st: serde_json::Value =
                serde_json::from_str(&vast_ok(&n2.endpoint, &["status"], None)).unwrap();
            let (a, _) = stored(&d2);
            a.len() as u64 == st["partitions"].as_u64().unwrap()
        },
    );
    eventually(30, "whole answers through n1", || {
        let out = vast_at(&ep, &["count", ":count >= 0"], None);
        String::from_utf8_lossy(&out.stdout).trim() == "100000"
    });
}

#[test]
fn a_renamed_node_still_serves_its_data() {
    let _s = serial();
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("rename");
    import(&db, "zeek", &data.join("zeek/conn.log.gz"));
    let n = NodeProc::start("n7", db.path(), free_port(), &[], None);
    assert_eq!(count_at(&n.endpoint, "resp_h == 192.168.1.104"), 66);
    let rows = vast_ok(
        &n.endpoint,
        &["export", "json", "resp_h == 192.168.1.104"],
        None,
    );
    assert_eq!(rows.lines().count(), 66);
}

#[test]
fn read_your_writes_through_another_node() {
    let _s = serial();
    let Some(data) = data_dir() else { return };
    let root = TempDb::new("ryw");
    std::fs::create_dir_all(root.path()).unwrap();
    let n1 = NodeProc::start("n1", &root.path().join("n1"), free_port(), &[], None);
    let n2 = NodeProc::start(
        "n2",
        &root.path().join("n2"),
        free_port(),
        &[&n1.endpoint],
        Some(""),
    );
    let ep = n1.endpoint.clone();
    wait_member(&ep, "n2", 0);
    for c in ["archive", "index", "importer"] {
        vast_ok(&ep, &["--node", "n2", "spawn", c], None);
    }
    let conn = std::fs::read(data.join("zeek/conn.log.gz")).unwrap();
    vast_ok(&ep, &["--node", "n2", "import", "zeek"], Some(&conn));
    // Straight after the acknowledgement, through n1, without waiting.
    assert_eq!(count_at(&ep, "#type == \"zeek.conn\""), 8462);
    assert_eq!(
        vast_ok(&ep, &["export", "json", "resp_h == 192.168.1.104"], None)
            .lines()
            .count(),
        66
    );
    drop(n2);
}

#[test]
fn killed_components_come_back_with_their_data() {
    let _s = serial();
    let Some(data) = data_dir() else { return };
    let root = TempDb::new("kill-components");
    std::fs::create_dir_all(root.path()).unwrap();
    let n1 = NodeProc::start("n1", &root.path().join("n1"), free_port(), &[], None);
    let _n2 = NodeProc::start(
        "n2",
        &root.path().join("n2"),
        free_port(),
        &[&n1.endpoint],
        None,
    );
    let ep = n1.endpoint.clone();
    wait_member(&ep, "n2", 0);
    let dns = std::fs::read(data.join("zeek/dns.log.gz")).unwrap();
    vast_ok(&ep, &["--node", "n2", "import", "zeek"], Some(&dns));
    assert_eq!(count_at(&ep, "#type == \"zeek.dns\""), 5124);
    let components = |node: &str| -> Vec<String> {
        let st: serde_json::Value =
            serde_json::from_str(&vast_ok(&ep, &["--node", node, "status"], None)).unwrap();
        st["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    for c in ["index", "archive"] {
        vast_ok(&ep, &["--node", "n2", "kill", c], None);
        assert!(
            !components("n2").contains(&c.to_string()),
            "{c} still listed"
        );
        // n2's data is unavailable: the query says so, or warns with --allow-partial.
        let out = vast_at(&ep, &["count", "#type == \"zeek.dns\""], None);
        assert!(!out.status.success(), "count succeeded without n2's {c}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains("n2") && e.contains("unavailable"), "{e}");
        let out = vast_at(
            &ep,
            &["count", "--allow-partial", "#type == \"zeek.dns\""],
            None,
        );
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
        assert!(String::from_utf8_lossy(&out.stderr).contains("n2"));
        // Spawned again, it has its data back.
        assert_eq!(vast_ok(&ep, &["--node", "n2", "spawn", c], None).trim(), c);
        assert_eq!(count_at(&ep, "#type == \"zeek.dns\""), 5124);
        assert_eq!(
            vast_ok(
                &ep,
                &[
                    "export",
                    "json",
                    "#type == \"zeek.dns\" && query == \"www.google.com\""
                ],
                None
            )
            .lines()
            .count() as u64,
            count_at(&ep, "#type == \"zeek.dns\" && query == \"www.google.com\"")
        );
    }
    // Without its importer n2 forwards imports to a member that has one (n1);
    // spawned again, it imports itself.
    let events = |node: &str| -> u64 {
        let st: serde_json::Value =
            serde_json::from_str(&vast_ok(&ep, &["--node", node, "status"], None)).unwrap();
        st["events"].as_u64().unwrap()
    };
    vast_ok(&ep, &["--node", "n2", "kill", "importer"], None);
    assert!(!components("n2").contains(&"importer".to_string()));
    let out = vast_at(&ep, &["--node", "n2", "kill", "importer"], None);
    assert!(!out.status.success(), "killing a killed importer succeeded");
    vast_ok(&ep, &["--node", "n2", "import", "zeek"], Some(&dns));
    assert_eq!((events("n1"), events("n2")), (5124, 5124));
    let out = vast_at(&ep, &["--node", "n2", "spawn", "index"], None);
    assert!(!out.status.success(), "a second index spawned");
    vast_ok(&ep, &["--node", "n2", "spawn", "importer"], None);
    vast_ok(&ep, &["--node", "n2", "import", "zeek"], Some(&dns));
    assert_eq!((events("n1"), events("n2")), (5124, 2 * 5124));
    assert_eq!(count_at(&ep, "#type == \"zeek.dns\""), 3 * 5124);
}

#[test]
fn csv_with_quoted_newlines_through_a_node() {
    let _s = serial();
    let root = TempDb::new("csv-node");
    std::fs::create_dir_all(root.path()).unwrap();
    let n1 = NodeProc::start("n1", &root.path().join("n1"), free_port(), &[], None);
    let csv = b"a,b\n1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n";
    vast_ok(&n1.endpoint, &["import", "-t", "quoted", "csv"], Some(csv));
    let rows = vast_ok(
        &n1.endpoint,
        &["export", "json", "#type == \"quoted\""],
        None,
    );
    assert_eq!(rows.lines().count(), 2, "{rows}");
    assert!(
        rows.contains("two\\nlines") && rows.contains("say \\\"hi\\\""),
        "{rows}"
    );
}

/// A participant learns a decision it missed: this test plays the coordinator of
/// two transactions, each with a partition stored and sealed (prepared) on n1.
/// n1 is killed before any decision reaches it; after its restart it asks, and
/// publishes the committed partition and removes the aborted one.
#[test]
fn a_participant_learns_a_missed_outcome_when_it_returns() {
    use vast_node::data::{BatchBuilder, Field, Schema, Type, Value};
    use vast_node::proto::{DataRequest, DataResponse, Member};
    let _s = serial();
    let root = TempDb::new("learn");
    std::fs::create_dir_all(root.path()).unwrap();
    let db = root.path().join("n1");
    let port = free_port();
    let mut n1 = NodeProc::start("n1", &db, port, &[], None);
    let ep = n1.endpoint.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let key = libp2p::identity::Keypair::generate_ed25519();
    let net = rt
        .block_on(vast_node::net::start(
            key,
            None,
            vast_node::net::NetOptions::client(None, 32 << 20, 1),
        ))
        .unwrap();
    let client = net.client.clone();
    let me = Member {
        id: "cx".into(),
        peer: client.peer_id.to_base58(),
        addrs: vec![],
        components: vec![],
    };
    let ask = |peer: libp2p::PeerId, r: DataRequest| -> DataResponse {
        rt.block_on(async {
            let b = tokio::time::timeout(Duration::from_secs(20), client.request(peer, r.encode()))
                .await
                .expect("no answer in time")
                .unwrap();
            DataResponse::decode(&b).unwrap()
        })
    };
    let join = || -> libp2p::PeerId {
        let addr = vast_node::net::parse_endpoint(&ep).unwrap();
        let peer = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(10), client.dial(addr)).await
            })
            .unwrap()
            .unwrap();
        match ask(peer, DataRequest::Hello { from: me.clone() }) {
            DataResponse::Hello { .. } => peer,
            other => panic!("hello: {other:?}"),
        }
    };
    // Serve what n1 asks its member "cx": lookups (we hold nothing) and, once
    // `decide` is set, the outcome of our two transactions.
    let (commit_txn, abort_txn) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let decide = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (client, decide, answered) = (client.clone(), decide.clone(), answered.clone());
        let mut inbound = net.inbound;
        rt.spawn(async move {
            use std::sync::atomic::Ordering;
            while let Some(req) = inbound.recv().await {
                let resp = match DataRequest::decode(&req.bytes) {
                    Ok(DataRequest::Lookup { .. }) => DataResponse::Hits(vec![]),
                    Ok(DataRequest::Hello { .. }) => DataResponse::Error("a test peer".into()),
                    Ok(DataRequest::Outcome { .. }) if !decide.load(Ordering::SeqCst) => {
                        DataResponse::TxnOutcome {
                            committed: false,
                            pending: true,
                        }
                    }
                    Ok(DataRequest::Outcome { txn }) => {
                        answered.fetch_add(1, Ordering::SeqCst);
                        DataResponse::TxnOutcome {
                            committed: txn == *commit_txn.as_bytes(),
                            pending: false,
                        }
                    }
                    other => DataResponse::Error(format!("unexpected {other:?}")),
                };
                client.respond(req.channel, resp.encode()).await;
            }
        });
    }
    let peer = join();
    let mut b = BatchBuilder::new(Schema {
        name: "learned".into(),
        fields: vec![Field::new("n", Type::Count)],
    });
    for i in 0..10u64 {
        b.column(0).push_value(&Value::Count(i));
        b.finish_row();
    }
    let batch = b.finish().to_bytes();
    let (p_commit, p_abort) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for (p, t) in [(p_commit, commit_txn), (p_abort, abort_txn)] {
        let store = DataRequest::Store {
            partition: *p.as_bytes(),
            offset: 0,
            batch: batch.clone(),
        };
        assert!(matches!(ask(peer, store), DataResponse::Ack { .. }));
        let seal = DataRequest::Seal {
            partition: *p.as_bytes(),
            txn: *t.as_bytes(),
        };
        let r = ask(peer, seal);
        assert!(matches!(r, DataResponse::Ack { .. }), "{r:?}");
    }
    // Prepared is invisible.
    assert_eq!(count_at(&ep, "#type == \"learned\""), 0);
    n1.sigkill();
    let n1 = NodeProc::start("n1", &db, port, &[], None);
    assert_eq!(count_at(&n1.endpoint, "#type == \"learned\""), 0);
    let (a, _) = stored(&db);
    assert_eq!(
        a.len(),
        2,
        "prepared partitions kept while the outcome is unknown: {a:?}"
    );
    // While the coordinator says "pending", nothing changes; then it decides.
    join();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count_at(&n1.endpoint, "#type == \"learned\""), 0);
    assert_eq!(stored(&db).0.len(), 2);
    decide.store(true, std::sync::atomic::Ordering::SeqCst);
    eventually(
        20,
        "the committed partition shows, the aborted one is gone",
        || count_at(&n1.endpoint, "#type == \"learned\"") == 10 && stored(&db).0.len() == 1,
    );
    let (a, i) = stored(&db);
    assert_eq!(
        (a, i),
        (vec![p_commit.to_string()], vec![p_commit.to_string()])
    );
    assert!(answered.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}
