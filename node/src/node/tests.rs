//! In-process tests of the node's actors with local refs: import, index, query,
//! restart, and corruption handling.

use super::*;
use crate::data::{Address, Batch, BatchBuilder, Field, Schema, Type};
use crate::query::parse;
use crate::source::BatchReader;
use std::time::Duration;

fn conn_schema() -> Schema {
    Schema::new(
        "zeek.conn",
        vec![
            Field::new("ts", Type::timestamp()),
            Field::new("uid", Type::String),
            Field::new("id.orig_h", Type::Address),
            Field::new("id.resp_h", Type::Address),
            Field::new("id.resp_p", Type::port()),
            Field::new("duration", Type::Duration),
        ],
    )
}

/// `n` events in batches of `per_batch`; host i%7, port 80 for even rows.
fn batches(n: u32, per_batch: u32) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut b = BatchBuilder::new(conn_schema());
    for i in 0..n {
        b.column(0).push_time(1_000_000_000 * i as i64);
        b.column(1).push_str(&format!("C{i}"));
        b.column(2)
            .push_address(Address::parse(&format!("10.0.0.{}", i % 7)).unwrap());
        b.column(3)
            .push_address(Address::parse(&format!("192.168.1.{}", i % 200)).unwrap());
        if i % 10 == 9 {
            b.column(4).push_null();
        } else {
            b.column(4).push_count(if i % 2 == 0 { 80 } else { 443 });
        }
        b.column(5).push_duration(i as i64 * 1000);
        b.finish_row();
        if b.rows() as u32 == per_batch {
            out.push(b.finish());
        }
    }
    if !b.is_empty() {
        out.push(b.finish());
    }
    out
}

fn opts(db: &std::path::Path, partition_size: u32) -> NodeOptions {
    NodeOptions {
        id: "test".into(),
        db: db.to_path_buf(),
        components: vec!["importer".into(), "archive".into(), "index".into()],
        batch_size: 100,
        partition_size,
        partition_timeout: Duration::from_secs(60),
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vast-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn count(node: &Node, q: &str) -> u64 {
    tokio::time::timeout(
        Duration::from_secs(10),
        node.count(parse(q).unwrap(), false),
    )
    .await
    .expect("count timed out")
    .unwrap()
}

async fn import(node: &Node, n: u32) -> ImportSummary {
    tokio::time::timeout(
        Duration::from_secs(20),
        node.import(
            Box::new(BatchReader::new(batches(n, 100))),
            SourceOptions {
                batch_size: 100,
                ..Default::default()
            },
        ),
    )
    .await
    .expect("import timed out")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_query_restart() {
    let db = tempdir("restart");
    {
        let node = Node::open(opts(&db, 400)).await.unwrap();
        let s = import(&node, 1000).await;
        assert_eq!(s.events, 1000);
        assert_eq!(
            count(&node, "10.0.0.3").await,
            (0..1000).filter(|i| i % 7 == 3).count() as u64
        );
        assert_eq!(
            count(&node, "resp_p == 80").await,
            (0..1000).filter(|i| i % 2 == 0 && i % 10 != 9).count() as u64
        );
        assert_eq!(
            count(&node, "resp_p != 80").await,
            (0..1000).filter(|i| !(i % 2 == 0 && i % 10 != 9)).count() as u64
        );
        assert_eq!(count(&node, "resp_p == nil").await, 100);
        assert_eq!(
            count(&node, ":addr in 192.168.1.0/28").await,
            (0..1000).filter(|i| i % 200 < 16).count() as u64
        );
        assert_eq!(count(&node, "uid == \"C17\"").await, 1);
        assert_eq!(
            count(&node, "duration > 500us").await,
            (0..1000).filter(|i| i * 1000 > 500_000).count() as u64
        );
        assert_eq!(
            count(&node, "#type == \"zeek.conn\" && !(10.0.0.3)").await,
            1000 - 143
        );
        let st = node.status(false).await.unwrap();
        assert_eq!(st["events"], 1000);
        assert_eq!(st["partitions"], 3, "{st}");
        node.shutdown().await;
    }
    // Everything acknowledged is found again after a restart.
    let node = Node::open(opts(&db, 400)).await.unwrap();
    assert_eq!(count(&node, "10.0.0.3").await, 143);
    let mut rows = Vec::new();
    let n = node
        .export(
            parse("uid == \"C17\" || uid == \"C999\"").unwrap(),
            None,
            |s| {
                for r in &s.rows {
                    rows.push(s.batch.row(*r as usize)[1].1.clone());
                }
                Ok(())
            },
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        rows,
        vec![
            crate::data::Value::String("C17".into()),
            crate::data::Value::String("C999".into())
        ]
    );
    // -n stops early.
    let n = node
        .export(parse("10.0.0.1").unwrap(), Some(5), |_| Ok(()))
        .await
        .unwrap();
    assert_eq!(n, 5);
    node.shutdown().await;
    std::fs::remove_dir_all(&db).unwrap();
}

/// Exports fetch several partitions at once; limits still cut at exactly the
/// limit, in import order, wherever the limit falls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_over_many_partitions_keeps_order_and_limits() {
    let db = tempdir("window");
    let node = Node::open(opts(&db, 100)).await.unwrap();
    import(&node, 1000).await;
    let st = node.status(false).await.unwrap();
    assert_eq!(st["partitions"], 10, "{st}");
    // 10.0.0.3: rows 3, 10, 17, ... across every partition.
    let all: Vec<String> = (0..1000)
        .filter(|i| i % 7 == 3)
        .map(|i| format!("C{i}"))
        .collect();
    for limit in [
        None,
        Some(1),
        Some(14),
        Some(15),
        Some(100),
        Some(142),
        Some(143),
        Some(500),
    ] {
        let mut uids = Vec::new();
        let n = tokio::time::timeout(
            Duration::from_secs(10),
            node.export(parse("10.0.0.3").unwrap(), limit, |s| {
                for r in &s.rows {
                    match &s.batch.row(*r as usize)[1].1 {
                        crate::data::Value::String(u) => uids.push(u.clone()),
                        v => panic!("uid {v:?}"),
                    }
                }
                Ok(())
            }),
        )
        .await
        .expect("export timed out")
        .unwrap();
        let want = &all[..limit.map_or(all.len(), |l| (l as usize).min(all.len()))];
        assert_eq!(n as usize, want.len(), "limit {limit:?}");
        assert_eq!(uids, want, "limit {limit:?}");
    }
    node.shutdown().await;
    std::fs::remove_dir_all(&db).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_process_gets_a_clear_lock_error() {
    let db = tempdir("lock");
    let node = Node::open(opts(&db, 400)).await.unwrap();
    // flock is per open file description, so a second open in-process conflicts too.
    let err = Node::open(opts(&db, 400))
        .await
        .err()
        .expect("second open must fail")
        .to_string();
    assert!(err.contains("in use by another process"), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    node.shutdown().await;
    std::fs::remove_dir_all(&db).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_is_detected_and_reported() {
    let db = tempdir("corrupt");
    {
        let node = Node::open(opts(&db, 10_000)).await.unwrap();
        import(&node, 300).await;
        node.shutdown().await;
    }
    // Flip a byte in the archive data: fetching it must fail with a checksum error.
    let data = std::fs::read_dir(db.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "data"))
        .unwrap();
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let node = Node::open(opts(&db, 10_000)).await.unwrap();
    // The index alone still answers exact counts.
    assert_eq!(count(&node, "10.0.0.3").await, 43);
    let err = node
        .export(parse("10.0.0.3").unwrap(), None, |_| Ok(()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    node.shutdown().await;
    // A corrupt index entry makes queries fail naming it, and status lists it.
    let meta = std::fs::read_dir(db.join("index"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("entry");
    let mut bytes = std::fs::read(&meta).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&meta, &bytes).unwrap();
    let node = Node::open(opts(&db, 10_000)).await.unwrap();
    let err = node
        .count(parse("10.0.0.3").unwrap(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("checksum mismatch") && err.contains("unusable"),
        "{err}"
    );
    let st = node.status(false).await.unwrap();
    assert_eq!(st["index"]["corrupt"].as_array().unwrap().len(), 1, "{st}");
    node.shutdown().await;
    std::fs::remove_dir_all(&db).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_writes_are_discarded() {
    let db = tempdir("interrupted");
    {
        let node = Node::open(opts(&db, 10_000)).await.unwrap();
        import(&node, 50).await;
        node.shutdown().await;
    }
    // What a SIGKILL mid-import leaves: unsealed data and a half-written index dir.
    let id = uuid::Uuid::now_v7();
    std::fs::write(db.join("archive").join(format!("{id}.data")), b"partial").unwrap();
    std::fs::create_dir_all(db.join("index").join(format!("{id}.tmp"))).unwrap();
    let node = Node::open(opts(&db, 10_000)).await.unwrap();
    assert_eq!(count(&node, "#type == \"zeek.conn\"").await, 50);
    assert!(!db.join("archive").join(format!("{id}.data")).exists());
    assert!(!db.join("index").join(format!("{id}.tmp")).exists());
    node.shutdown().await;
    std::fs::remove_dir_all(&db).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_packed_column_index_is_named_when_read() {
    let db = tempdir("corrupt-packed");
    {
        let node = Node::open(opts(&db, 10_000)).await.unwrap();
        import(&node, 300).await;
        node.shutdown().await;
    }
    let part = std::fs::read_dir(db.join("index"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let packed = part.join("columns");
    let mut bytes = std::fs::read(&packed).unwrap();
    // Damage the middle of the index of `id.orig_h` (layout 0, column 2), found
    // through the directory after the 32-byte file header.
    let payload = &bytes[32..];
    let n = u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize;
    let (off, len) = (0..n)
        .map(|k| &payload[16 + k * 24..16 + (k + 1) * 24])
        .find(|e| e[..8] == [0, 0, 0, 0, 2, 0, 0, 0])
        .map(|e| {
            let u = |r: std::ops::Range<usize>| u64::from_le_bytes(e[r].try_into().unwrap());
            (u(8..16) as usize, u(16..24) as usize)
        })
        .expect("an index of column 2");
    bytes[32 + off + len / 2] ^= 0xff;
    std::fs::write(&packed, &bytes).unwrap();
    let node = Node::open(opts(&db, 10_000)).await.unwrap();
    // Opening the partition does not read the indexes; a query of the damaged
    // column fails naming the file, one of another column still answers.
    // The damaged block is one some lookup of the column reads.
    let mut errors = Vec::new();
    for k in 0..7 {
        let q = format!("id.orig_h == 10.0.0.{k}");
        if let Err(e) = node.count(parse(&q).unwrap(), false).await {
            errors.push(e.to_string());
        }
    }
    assert!(!errors.is_empty(), "no lookup noticed the damage");
    for e in &errors {
        assert!(
            e.contains("checksum mismatch") && e.contains("columns"),
            "{e}"
        );
    }
    assert_eq!(count(&node, "id.resp_h == 192.168.1.3").await, 2);
    node.shutdown().await;
    std::fs::remove_dir_all(&db).unwrap();
}
