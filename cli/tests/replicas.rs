//! Replicated partitions (`import.replicas`), with real `vast` processes: answers
//! stay whole while a holder is down, replicas come back with their node, and the
//! cluster copies what lacks replicas.

mod common;

use common::*;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

/// Multi-node tests start several debug-build processes each; one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const Q: &str = "#type == \"zeek.conn\"";

fn status(ep: &str, detailed: bool) -> serde_json::Value {
    let args: &[&str] = if detailed {
        &["status", "--detailed"]
    } else {
        &["status"]
    };
    serde_json::from_str(&vast_ok(ep, args, None)).unwrap()
}

/// (partitions held, partitions under-replicated) as `status` reports them.
fn replication(ep: &str) -> (u64, u64) {
    let s = status(ep, false);
    let r = &s["replication"];
    (
        r["partitions"].as_u64().unwrap(),
        r["under-replicated"].as_u64().unwrap(),
    )
}

fn count(ep: &str) -> u64 {
    vast_ok(ep, &["count", Q], None).trim().parse().unwrap()
}

/// Every uid an export through `ep` returns, with how often.
fn export_uids(ep: &str) -> HashMap<String, usize> {
    let out = vast_ok(ep, &["export", "json", Q], None);
    let mut uids = HashMap::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        *uids
            .entry(v["uid"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    uids
}

/// Counts and exports through `ep` have exactly `n` events, each once, without
/// `--allow-partial`.
fn whole(ep: &str, n: usize, when: &str) {
    assert_eq!(count(ep), n as u64, "count through {ep} {when}");
    let uids = export_uids(ep);
    let twice: Vec<_> = uids.iter().filter(|(_, k)| **k != 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "exported more than once {when}: {twice:?}"
    );
    assert_eq!(uids.len(), n, "export through {ep} {when}");
}

/// Imports `n` events with uids `<prefix>0..` into `ep`, 200 per import: each
/// import is one partition (one client batch), so placement spreads them.
fn import(ep: &str, prefix: &str, n: u32) {
    for first in (0..n).step_by(200) {
        let log = format!(
            "{CONN_HEADER}{}",
            conn_lines(prefix, first..(first + 200).min(n))
        );
        vast_ok(ep, &["import", "zeek"], Some(log.as_bytes()));
    }
}

const ENV: [(&str, &str); 3] = [
    ("VAST_IMPORT__REPLICAS", "2"),
    ("VAST_IMPORT__PLACEMENT", "round-robin"),
    ("VAST_IMPORT__PARTITION_SIZE", "200"),
];

fn start(id: &str, root: &Path, port: u16, peers: &[&str], timeout: &str) -> NodeProc {
    let mut env = ENV.to_vec();
    env.push(("VAST_CLUSTER__REPLICA_TIMEOUT", timeout));
    NodeProc::start_env(id, &root.join(id), port, peers, None, &env)
}

/// Waits until every node at `eps` sees every other.
fn mesh(nodes: &[&NodeProc]) {
    for a in nodes {
        for b in nodes {
            if a.id != b.id {
                wait_member(&a.endpoint, &b.id, 3);
            }
        }
    }
}

/// Waits until no node at `eps` reports a partition with too few replicas.
fn replicated(eps: &[&str], what: &str) {
    eventually(60, what, || eps.iter().all(|ep| replication(ep).1 == 0));
}

/// Three nodes with two replicas: kill each node in turn; counts and exports
/// through the others stay whole, and the node returns with its replicas.
#[test]
fn answers_stay_whole_while_any_one_node_is_down() {
    let _serial = serial();
    let root = TempDb::new("replicas-down");
    std::fs::create_dir_all(root.path()).unwrap();
    let ports = [free_port(), free_port(), free_port()];
    // Away members are waited for: nothing is copied while a node is down here.
    let n1 = start("n1", root.path(), ports[0], &[], "600");
    let ep1 = n1.endpoint.clone();
    let n2 = start("n2", root.path(), ports[1], &[&ep1], "600");
    let n3 = start("n3", root.path(), ports[2], &[&ep1], "600");
    mesh(&[&n1, &n2, &n3]);
    import(&n1.endpoint, "A", 1000);
    import(&n2.endpoint, "B", 600);
    import(&n3.endpoint, "C", 400);
    let total = 2000;
    let mut nodes = [Some(n1), Some(n2), Some(n3)];
    let eps: Vec<String> = nodes
        .iter()
        .map(|n| n.as_ref().unwrap().endpoint.clone())
        .collect();
    let all: Vec<&str> = eps.iter().map(String::as_str).collect();
    replicated(&all, "every partition on two nodes");

    // Every partition is on exactly two nodes, and each is read once.
    let d = status(&eps[0], true);
    let placement = d["replication"]["placement"].as_array().unwrap().clone();
    assert!(!placement.is_empty());
    for p in &placement {
        assert_eq!(p["live"].as_array().unwrap().len(), 2, "{p}");
    }
    let held: Vec<u64> = eps.iter().map(|ep| replication(ep).0).collect();
    assert_eq!(
        held.iter().sum::<u64>(),
        2 * 10,
        "2000 events in partitions of 200, twice: {held:?}"
    );
    // `peers` shows what each member holds, as the members' own status says.
    let peers: serde_json::Value =
        serde_json::from_str(&vast_ok(&eps[0], &["peers", "--json"], None)).unwrap();
    for (i, ep) in eps.iter().enumerate() {
        let id = format!("n{}", i + 1);
        let m = peers
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id.as_str())
            .unwrap();
        assert_eq!(m["partitions"].as_u64(), Some(replication(ep).0), "{m}");
    }
    for ep in &eps {
        whole(ep, total, "with every node up");
    }
    // A member whose index is stopped cannot answer for its data either; the
    // other replicas do, through any node, that one included.
    vast_ok(&eps[0], &["--node", "n2", "kill", "index"], None);
    whole(&eps[0], total, "while n2's index is stopped");
    whole(&eps[1], total, "through n2 while its index is stopped");
    vast_ok(&eps[0], &["--node", "n2", "spawn", "index"], None);
    replicated(&all, "n2's index back");

    for k in 0..3 {
        let id = format!("n{}", k + 1);
        nodes[k].take().unwrap().sigkill();
        let others: Vec<&str> = (0..3)
            .filter(|i| *i != k)
            .map(|i| eps[i].as_str())
            .collect();
        for ep in &others {
            whole(ep, total, &format!("while {id} is down"));
        }
        // The survivors know the partitions that lost a replica.
        eventually(
            20,
            "survivors report partitions with too few replicas",
            || others.iter().any(|ep| replication(ep).1 > 0),
        );
        let peer = others[0].to_string();
        let back = start(&id, root.path(), ports[k], &[&peer], "600");
        assert_eq!(
            replication(&back.endpoint).0,
            held[k],
            "{id} returns with its replicas"
        );
        nodes[k] = Some(back);
        let live: Vec<&NodeProc> = nodes.iter().flatten().collect();
        mesh(&live);
        replicated(&all, &format!("{id} back with its replicas"));
        whole(&eps[k], total, &format!("through {id} after it returned"));
    }
    // Nothing was copied while nodes were away: every node holds what it held.
    let again: Vec<u64> = eps.iter().map(|ep| replication(ep).0).collect();
    assert_eq!(again, held);
}

/// A node that stays away past `cluster.replica-timeout` has its partitions
/// copied to the others; partitions imported while too few stores are up are
/// copied when a member returns.
#[test]
fn missing_replicas_are_copied() {
    let _serial = serial();
    let root = TempDb::new("replicas-copy");
    std::fs::create_dir_all(root.path()).unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let n1 = start("n1", root.path(), ports[0], &[], "2");
    let ep1 = n1.endpoint.clone();
    let mut n2 = start("n2", root.path(), ports[1], &[&ep1], "2");
    let mut n3 = start("n3", root.path(), ports[2], &[&ep1], "2");
    mesh(&[&n1, &n2, &n3]);
    import(&ep1, "A", 1600);
    let (ep2, ep3) = (n2.endpoint.clone(), n3.endpoint.clone());
    replicated(&[&ep1, &ep2, &ep3], "every partition on two nodes");
    let parts = 8;
    let sum = replication(&ep1).0 + replication(&ep2).0 + replication(&ep3).0;
    assert_eq!(sum, 2 * parts);
    assert!(replication(&ep3).0 > 0, "round-robin put replicas on n3");

    // n3 is gone for good: after the timeout, n1 and n2 each hold everything.
    n3.sigkill();
    eventually(60, "n3's partitions copied to n1 and n2", || {
        replication(&ep1) == (parts, 0) && replication(&ep2) == (parts, 0)
    });
    // So n1 answers alone.
    n2.sigkill();
    whole(&ep1, 1600, "with n2 and n3 down");

    // Imported with one store up: one replica, reported, and copied once n2 returns.
    import(&ep1, "B", 400);
    // With n2 and n3 away, every partition has one live holder.
    eventually(20, "n1 reports every partition under-replicated", || {
        replication(&ep1) == (parts + 2, parts + 2)
    });
    let n2 = start("n2", root.path(), ports[1], &[&ep1], "2");
    mesh(&[&n1, &n2]);
    eventually(60, "the new partitions copied to the returned n2", || {
        replication(&ep1) == (parts + 2, 0) && replication(&ep2) == (parts + 2, 0)
    });
    let ep2 = n2.endpoint.clone();
    drop(n1);
    whole(&ep2, 2000, "through n2 alone after the copies");
}
