//! The commit log: what makes stored partitions visible. Partitions are written and
//! sealed (durable, but invisible) first; an import becomes visible to queries
//! only when one commit record naming its partitions is appended here, last, and
//! fsynced. A record is checksummed, so a torn append (a crash mid-write) is
//! detected at open and cut off: the import it would have committed stays
//! invisible and its files are swept. Across nodes the same log carries the two
//! phases: a participant appends `Prepare` (the partitions it sealed for a
//! coordinator's transaction) and later `Commit` or `Abort`; the coordinator's own
//! `Commit` is the decision that participants which missed it ask for when they
//! return.
//!
//! File: `<db>/commits.log`, records of `[len u32][xxh3 u64][payload]`, payload =
//! version byte, kind byte, txn (16), coordinator (u16 length + utf-8), then the
//! partition ids (u32 count + 16 bytes each). `Replace` records (compaction)
//! are version 2 and add the retired ids (u32 count + 16 bytes each); a build that
//! knows only version 1 stops at them instead of cutting them off as torn.

use crate::durable::{self, StoreError};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

const VERSION: u8 = 1;
/// Version of `Replace` records.
const VERSION_REPLACE: u8 = 2;
/// Largest record read back; larger claims mean a corrupt tail.
const MAX_RECORD: usize = 64 << 20;

/// What a record says about a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The partitions are visible from now on.
    Commit = 1,
    /// The partitions are sealed here for `coordinator`'s transaction; visible
    /// only once it commits.
    Prepare = 2,
    /// The transaction failed; its partitions are to be removed.
    Abort = 3,
    /// Compaction: the partitions become visible and the retired ones invisible,
    /// in one step, so a query never sees both versions of an event or neither.
    Replace = 4,
}

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    /// The import (session) the record belongs to.
    pub txn: Uuid,
    /// The node that decides the transaction (empty: this node).
    pub coordinator: String,
    pub partitions: Vec<Uuid>,
    /// Partitions this record makes invisible (only `Replace`).
    pub retired: Vec<Uuid>,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let version = if self.kind == Kind::Replace {
            VERSION_REPLACE
        } else {
            VERSION
        };
        let mut p = vec![version, self.kind as u8];
        p.extend_from_slice(self.txn.as_bytes());
        let c = self.coordinator.as_bytes();
        p.extend_from_slice(&(c.len().min(u16::MAX as usize) as u16).to_le_bytes());
        p.extend_from_slice(&c[..c.len().min(u16::MAX as usize)]);
        p.extend_from_slice(&(self.partitions.len() as u32).to_le_bytes());
        for id in &self.partitions {
            p.extend_from_slice(id.as_bytes());
        }
        if self.kind == Kind::Replace {
            p.extend_from_slice(&(self.retired.len() as u32).to_le_bytes());
            for id in &self.retired {
                p.extend_from_slice(id.as_bytes());
            }
        }
        p
    }

    fn decode(p: &[u8]) -> Result<Record, String> {
        let take = |p: &mut &[u8], n: usize| -> Result<Vec<u8>, String> {
            if p.len() < n {
                return Err("record too short".into());
            }
            let (a, b) = p.split_at(n);
            *p = b;
            Ok(a.to_vec())
        };
        let mut p = p;
        let head = take(&mut p, 2)?;
        let kind = match (head[0], head[1]) {
            (VERSION, 1) => Kind::Commit,
            (VERSION, 2) => Kind::Prepare,
            (VERSION, 3) => Kind::Abort,
            (VERSION_REPLACE, 4) => Kind::Replace,
            (VERSION | VERSION_REPLACE, k) => return Err(format!("unknown record kind {k}")),
            (v, _) => {
                return Err(format!(
                    "record version {v} (this build reads versions {VERSION}-{VERSION_REPLACE})"
                ))
            }
        };
        let txn = Uuid::from_slice(&take(&mut p, 16)?).expect("16 bytes");
        let clen = u16::from_le_bytes(take(&mut p, 2)?.try_into().expect("2 bytes")) as usize;
        let coordinator =
            String::from_utf8(take(&mut p, clen)?).map_err(|_| "coordinator is not utf-8")?;
        let ids = |p: &mut &[u8]| -> Result<Vec<Uuid>, String> {
            let n = u32::from_le_bytes(take(p, 4)?.try_into().expect("4 bytes")) as usize;
            let bytes = take(p, n.checked_mul(16).ok_or("partition list too long")?)?;
            Ok(bytes
                .chunks_exact(16)
                .map(|c| Uuid::from_slice(c).expect("16 bytes"))
                .collect())
        };
        let partitions = ids(&mut p)?;
        let retired = if kind == Kind::Replace {
            ids(&mut p)?
        } else {
            Vec::new()
        };
        if !p.is_empty() {
            return Err("partition list does not match the record length".into());
        }
        Ok(Record {
            kind,
            txn,
            coordinator,
            partitions,
            retired,
        })
    }
}

/// Where each partition stands according to the log.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Visible partitions.
    pub committed: HashSet<Uuid>,
    /// Sealed here for another node's transaction, outcome not known yet:
    /// partition -> (txn, coordinator).
    pub prepared: HashMap<Uuid, (Uuid, String)>,
    /// Transactions this node committed (as coordinator or participant).
    pub committed_txns: HashSet<Uuid>,
    /// Transactions known to have failed.
    pub aborted_txns: HashSet<Uuid>,
    /// Partitions compaction replaced: their files are swept.
    pub retired: HashSet<Uuid>,
}

impl State {
    fn apply(&mut self, r: &Record) {
        match r.kind {
            Kind::Commit => {
                // The nil txn commits partitions no import owns (migration, rewrite).
                if !r.txn.is_nil() {
                    self.committed_txns.insert(r.txn);
                }
                for p in &r.partitions {
                    self.prepared.remove(p);
                    self.committed.insert(*p);
                }
            }
            Kind::Prepare => {
                // A participant prepares only what it does not hold (it checks its
                // archive first); a partition listed as committed here was one
                // this node coordinated onto others (logs before replicas listed
                // those), so the prepared copy replaces that entry.
                for p in &r.partitions {
                    self.committed.remove(p);
                    self.prepared.insert(*p, (r.txn, r.coordinator.clone()));
                }
            }
            Kind::Abort => {
                self.aborted_txns.insert(r.txn);
                for p in &r.partitions {
                    self.prepared.remove(p);
                }
                self.prepared.retain(|_, (t, _)| *t != r.txn);
            }
            Kind::Replace => {
                for p in &r.partitions {
                    self.committed.insert(*p);
                }
                for p in &r.retired {
                    self.committed.remove(p);
                    self.retired.insert(*p);
                }
            }
        }
    }
}

pub struct CommitLog {
    path: PathBuf,
    file: File,
    state: State,
    /// Bytes in the file now, and right after the last rewrite.
    bytes: u64,
    rewritten_bytes: u64,
}

impl std::fmt::Debug for CommitLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CommitLog({}, {} committed, {} prepared)",
            self.path.display(),
            self.state.committed.len(),
            self.state.prepared.len()
        )
    }
}

impl CommitLog {
    /// Opens (or creates) `<db>/commits.log`, replays it, and cuts off a torn tail.
    pub fn open(db: &Path) -> Result<CommitLog, StoreError> {
        std::fs::create_dir_all(db).map_err(|e| StoreError::io(db, e))?;
        let path = db.join("commits.log");
        let existed = path.exists();
        let bytes = if existed {
            std::fs::read(&path).map_err(|e| StoreError::io(&path, e))?
        } else {
            Vec::new()
        };
        let mut state = State::default();
        let mut at = 0usize;
        while at < bytes.len() {
            let Some(rec) = read_record(&bytes[at..]) else {
                break;
            };
            let (len, payload) = rec;
            match Record::decode(payload) {
                Ok(r) => state.apply(&r),
                Err(e) if e.contains("version") => {
                    return Err(StoreError::corrupt(&path, e));
                }
                Err(_) => break,
            }
            at += len;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        if at < bytes.len() {
            tracing::warn!(path = %path.display(), kept = at, dropped = bytes.len() - at, "cutting off a torn commit record; the import it belonged to stays invisible");
            file.set_len(at as u64)
                .and_then(|_| file.sync_all())
                .map_err(|e| StoreError::io(&path, e))?;
        }
        if !existed {
            durable::sync_dir(db)?;
        }
        Ok(CommitLog {
            path,
            file,
            state,
            bytes: at as u64,
            rewritten_bytes: at as u64,
        })
    }

    /// The records that say what the state says, fewest first: one commit of every
    /// visible partition, the prepared ones by transaction, and the outcome of every
    /// transaction a participant may still ask about.
    fn snapshot(&self) -> Vec<Record> {
        let st = &self.state;
        let mut committed: Vec<Uuid> = st.committed.iter().copied().collect();
        committed.sort();
        let mut out = vec![Record {
            kind: Kind::Commit,
            txn: Uuid::nil(),
            coordinator: String::new(),
            partitions: committed,
            retired: Vec::new(),
        }];
        let mut prepared: HashMap<(Uuid, String), Vec<Uuid>> = HashMap::new();
        for (p, (txn, coord)) in &st.prepared {
            prepared.entry((*txn, coord.clone())).or_default().push(*p);
        }
        for ((txn, coordinator), partitions) in prepared {
            out.push(Record {
                kind: Kind::Prepare,
                txn,
                coordinator,
                partitions,
                retired: Vec::new(),
            });
        }
        for txn in &st.committed_txns {
            out.push(Record {
                kind: Kind::Commit,
                txn: *txn,
                coordinator: String::new(),
                partitions: Vec::new(),
                retired: Vec::new(),
            });
        }
        for txn in &st.aborted_txns {
            out.push(Record {
                kind: Kind::Abort,
                txn: *txn,
                coordinator: String::new(),
                partitions: Vec::new(),
                retired: Vec::new(),
            });
        }
        out
    }

    /// Rewrites the log from its state once it has grown to twice its size after
    /// the last rewrite (and past 1 MiB): a node that imports and compacts for
    /// months keeps a log the size of what it holds, not of its history. The new
    /// log is written beside the old one and renamed over it, so a crash leaves
    /// one or the other, whole.
    pub fn rewrite_if_grown(&mut self) -> Result<bool, StoreError> {
        if self.bytes < (1 << 20) || self.bytes < 2 * self.rewritten_bytes {
            return Ok(false);
        }
        let mut buf = Vec::new();
        for r in self.snapshot() {
            buf.extend(encode_record(&r));
        }
        durable::write_raw_atomic(&self.path, &buf)?;
        if let Some(dir) = self.path.parent() {
            durable::sync_dir(dir)?;
        }
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| StoreError::io(&self.path, e))?;
        tracing::info!(path = %self.path.display(), before = self.bytes, after = buf.len(), "rewrote the commit log");
        self.bytes = buf.len() as u64;
        self.rewritten_bytes = self.bytes;
        Ok(true)
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Appends `r` and makes it durable before returning.
    pub fn append(&mut self, r: &Record) -> Result<(), StoreError> {
        let rec = encode_record(r);
        self.file
            .write_all(&rec)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.bytes += rec.len() as u64;
        self.state.apply(r);
        Ok(())
    }
}

/// A record as it is stored: `[len u32][xxh3 u64][payload]`.
fn encode_record(r: &Record) -> Vec<u8> {
    let payload = r.encode();
    let mut rec = Vec::with_capacity(12 + payload.len());
    rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    rec.extend_from_slice(&durable::checksum(&payload).to_le_bytes());
    rec.extend_from_slice(&payload);
    rec
}

/// Appends `r` to a shared log on a blocking thread: the fsync never holds up
/// the async runtime.
pub async fn append(
    log: &std::sync::Arc<std::sync::Mutex<CommitLog>>,
    r: Record,
) -> Result<(), StoreError> {
    let log = log.clone();
    tokio::task::spawn_blocking(move || log.lock().expect("commit log lock poisoned").append(&r))
        .await
        .map_err(|e| {
            StoreError::corrupt(
                Path::new("commits.log"),
                format!("commit writer failed: {e}"),
            )
        })?
}

/// One record at the start of `b`: its total length and payload, or `None` when
/// the bytes do not hold a whole, intact record.
fn read_record(b: &[u8]) -> Option<(usize, &[u8])> {
    if b.len() < 12 {
        return None;
    }
    let len = u32::from_le_bytes(b[..4].try_into().ok()?) as usize;
    if len > MAX_RECORD || b.len() < 12 + len {
        return None;
    }
    let sum = u64::from_le_bytes(b[4..12].try_into().ok()?);
    let payload = &b[12..12 + len];
    (durable::checksum(payload) == sum).then_some((12 + len, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vast-commit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn records_replay_and_torn_tails_are_cut() {
        let d = dir("replay");
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let t1 = Uuid::now_v7();
        {
            let mut log = CommitLog::open(&d).unwrap();
            log.append(&Record {
                kind: Kind::Commit,
                txn: t1,
                coordinator: String::new(),
                partitions: vec![a],
                retired: Vec::new(),
            })
            .unwrap();
            log.append(&Record {
                kind: Kind::Prepare,
                txn: Uuid::now_v7(),
                coordinator: "n1".into(),
                partitions: vec![b],
                retired: Vec::new(),
            })
            .unwrap();
        }
        let log = CommitLog::open(&d).unwrap();
        assert!(log.state().committed.contains(&a));
        assert_eq!(log.state().prepared[&b].1, "n1");
        drop(log);
        // A torn append: the record for c never counts, and the tail is cut.
        let path = d.join("commits.log");
        let good = std::fs::metadata(&path).unwrap().len();
        let rec = Record {
            kind: Kind::Commit,
            txn: Uuid::now_v7(),
            coordinator: String::new(),
            partitions: vec![c],
            retired: Vec::new(),
        }
        .encode();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&(rec.len() as u32).to_le_bytes()).unwrap();
        f.write_all(&[0; 8]).unwrap();
        f.write_all(&rec[..rec.len() / 2]).unwrap();
        drop(f);
        let log = CommitLog::open(&d).unwrap();
        assert!(!log.state().committed.contains(&c));
        assert!(log.state().committed.contains(&a));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn aborts_drop_prepared_partitions() {
        let d = dir("abort");
        let t = Uuid::now_v7();
        let p = Uuid::now_v7();
        let mut log = CommitLog::open(&d).unwrap();
        log.append(&Record {
            kind: Kind::Prepare,
            txn: t,
            coordinator: "n1".into(),
            partitions: vec![p],
            retired: Vec::new(),
        })
        .unwrap();
        log.append(&Record {
            kind: Kind::Abort,
            txn: t,
            coordinator: "n1".into(),
            partitions: vec![],
            retired: Vec::new(),
        })
        .unwrap();
        assert!(log.state().prepared.is_empty());
        assert!(log.state().aborted_txns.contains(&t));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn replace_swaps_partitions_in_one_record() {
        let d = dir("replace");
        let (a, b, m) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        {
            let mut log = CommitLog::open(&d).unwrap();
            log.append(&Record {
                kind: Kind::Commit,
                txn: Uuid::now_v7(),
                coordinator: String::new(),
                partitions: vec![a, b],
                retired: Vec::new(),
            })
            .unwrap();
            log.append(&Record {
                kind: Kind::Replace,
                txn: m,
                coordinator: String::new(),
                partitions: vec![m],
                retired: vec![a, b],
            })
            .unwrap();
        }
        let log = CommitLog::open(&d).unwrap();
        let st = log.state();
        assert!(st.committed.contains(&m));
        assert!(!st.committed.contains(&a) && !st.committed.contains(&b));
        assert!(st.retired.contains(&a) && st.retired.contains(&b));
        drop(log);
        // A record of a future version stops the open with a message naming it,
        // rather than being cut off as a torn tail.
        let mut rec = Record {
            kind: Kind::Commit,
            txn: Uuid::now_v7(),
            coordinator: String::new(),
            partitions: vec![],
            retired: Vec::new(),
        }
        .encode();
        rec[0] = 9;
        let mut f = OpenOptions::new()
            .append(true)
            .open(d.join("commits.log"))
            .unwrap();
        f.write_all(&(rec.len() as u32).to_le_bytes()).unwrap();
        f.write_all(&durable::checksum(&rec).to_le_bytes()).unwrap();
        f.write_all(&rec).unwrap();
        drop(f);
        let err = CommitLog::open(&d).unwrap_err().to_string();
        assert!(
            err.contains("record version 9") && err.contains("1-2"),
            "{err}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_grown_log_is_rewritten_to_what_it_holds() {
        let d = dir("rewrite");
        let keep = Uuid::now_v7();
        let pending = (Uuid::now_v7(), Uuid::now_v7());
        let mut log = CommitLog::open(&d).unwrap();
        log.append(&Record {
            kind: Kind::Prepare,
            txn: pending.0,
            coordinator: "n2".into(),
            partitions: vec![pending.1],
            retired: Vec::new(),
        })
        .unwrap();
        // Many merges of partitions that end up replaced.
        let mut last = Uuid::now_v7();
        log.append(&Record {
            kind: Kind::Commit,
            txn: Uuid::now_v7(),
            coordinator: String::new(),
            partitions: vec![last, keep],
            retired: Vec::new(),
        })
        .unwrap();
        while !log.rewrite_if_grown().unwrap() {
            let next = Uuid::now_v7();
            let parts: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
            log.append(&Record {
                kind: Kind::Replace,
                txn: next,
                coordinator: String::new(),
                partitions: vec![next],
                retired: [vec![last], parts].concat(),
            })
            .unwrap();
            last = next;
        }
        let size = std::fs::metadata(d.join("commits.log")).unwrap().len();
        assert!(size < 4096, "rewritten log is {size} bytes");
        let before = log.state().clone();
        drop(log);
        let log = CommitLog::open(&d).unwrap();
        let st = log.state();
        assert_eq!(st.committed, before.committed);
        assert!(st.committed.contains(&keep) && st.committed.contains(&last));
        assert_eq!(st.prepared[&pending.1], (pending.0, "n2".to_string()));
        assert_eq!(st.committed_txns, before.committed_txns);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
