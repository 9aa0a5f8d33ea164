//! Background compaction: merges a node's small partitions into full ones.
//!
//! Small partitions come from small imports, from live sources that seal a
//! partition every `partition-timeout`, and from anything short-lived. Each costs
//! a catalog entry, index files and a per-query lookup, so a node that keeps them
//! gets slower and bigger as it ages. The compactor copies the events of several
//! small partitions into one new partition through the node's own archive and
//! index (the same path an import takes), seals it, and then appends one
//! `Replace` record to the commit log that makes the new partition visible and
//! the old ones invisible in the same step. The catalog swaps them under its write
//! lock, so a query sees either the old partitions or the new one, never both and
//! never neither. A node killed before the record restarts with the old
//! partitions and sweeps the half-written new one; killed after it, it restarts
//! with the new one and sweeps the old ones.
//!
//! Policy. A partition is small when it holds under half of `partition-size`
//! events. While partitions keep arriving, merges are tiered: four or more small
//! partitions of about the same size (the same power of four) merge, so an event
//! is rewritten a logarithmic number of times however long a source runs. Once a
//! round finds no new partition (the node is quiet), every run of small
//! partitions merges greedily into partitions of up to `partition-size` events.
//! Merges copy at most `max-rate` events per second.

use crate::archive::actor::{Append, ReadAll, RemoveReplaced, Seal};
use crate::commit::{Kind, Record};
use crate::index::actor::{DiscardIndexes, IndexBatch, SealIndex, Swap};
use crate::index::partition::PartitionIndex;
use crate::node::Node;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Bytes of rows one read of a partition being merged brings back.
const PAGE_BYTES: usize = 64 << 20;
/// Partitions merged in one tiered merge at most (a quiet merge is bounded by
/// `partition-size` only).
const TIER_FANOUT: usize = 16;
/// Longest the files of a replaced partition wait for queries that still hold it.
const RETIRE_MAX_WAIT: Duration = Duration::from_secs(600);

/// How compaction runs (`compaction.*` in the configuration).
#[derive(Clone, Debug)]
pub struct CompactionOptions {
    /// Time between rounds; zero turns compaction off.
    pub interval: Duration,
    /// Events per second a merge copies at most.
    pub max_rate: u64,
    /// How long the files of replaced partitions stay for running queries.
    pub retire_grace: Duration,
}

impl CompactionOptions {
    pub fn from_config(c: &vast_config::Config) -> Self {
        CompactionOptions {
            interval: Duration::from_secs(c.compaction.interval),
            max_rate: c.compaction.max_rate.max(1),
            retire_grace: Duration::from_secs(c.compaction.retire_grace),
        }
    }
}

/// What `status` shows about compaction.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CompactionStatus {
    pub enabled: bool,
    /// A merge is being written now.
    pub running: bool,
    /// Small partitions (under half of `partition-size`) now visible.
    pub small_partitions: usize,
    pub merges: u64,
    pub partitions_merged: u64,
    pub events_rewritten: u64,
    /// Replaced partitions whose files wait for running queries.
    pub retiring: usize,
    pub last_error: Option<String>,
}

/// One planned merge: the partitions, in catalog order.
type Group = Vec<Arc<PartitionIndex>>;

/// The power of four a partition's size falls in.
fn tier(rows: u32) -> u32 {
    (32 - rows.max(1).leading_zeros()) / 2
}

/// Picks the next merge among the visible partitions, or `None`. `quiet`: no
/// partition arrived since the last round.
pub fn plan(partitions: &[Arc<PartitionIndex>], partition_size: u32, quiet: bool) -> Option<Group> {
    let small = |p: &PartitionIndex| p.meta.rows < partition_size / 2;
    let mut tiers: std::collections::BTreeMap<u32, Group> = Default::default();
    for p in partitions.iter().filter(|p| small(p)) {
        tiers.entry(tier(p.meta.rows)).or_default().push(p.clone());
    }
    for group in tiers.into_values() {
        if group.len() < 4 {
            continue;
        }
        let mut take = Vec::new();
        let mut rows = 0u64;
        for p in group {
            if take.len() == TIER_FANOUT || rows + p.meta.rows as u64 > partition_size as u64 {
                break;
            }
            rows += p.meta.rows as u64;
            take.push(p);
        }
        if take.len() >= 2 {
            return Some(take);
        }
    }
    if !quiet {
        return None;
    }
    // Quiet: runs of small partitions, in catalog order, fill partitions greedily.
    let mut run: Group = Vec::new();
    let mut rows = 0u64;
    for p in partitions {
        if !small(p) {
            continue;
        }
        if rows + p.meta.rows as u64 > partition_size as u64 {
            if run.len() >= 2 {
                return Some(run);
            }
            run.clear();
            rows = 0;
        }
        rows += p.meta.rows as u64;
        run.push(p.clone());
    }
    (run.len() >= 2).then_some(run)
}

/// Runs compaction rounds for `node` until it is dropped.
pub fn spawn(node: Weak<Node>, opts: CompactionOptions, status: Arc<Mutex<CompactionStatus>>) {
    if opts.interval.is_zero() {
        return;
    }
    status.lock().expect("lock poisoned").enabled = true;
    tokio::spawn(async move {
        let mut seen: Vec<Uuid> = Vec::new();
        loop {
            tokio::time::sleep(opts.interval).await;
            let Some(node) = node.upgrade() else { break };
            // The commit log is compacted too: rewritten to what it holds once it
            // has doubled.
            let log = node.commit_log().clone();
            let rewritten = tokio::task::spawn_blocking(move || {
                log.lock()
                    .expect("commit log lock poisoned")
                    .rewrite_if_grown()
            })
            .await;
            if let Ok(Err(e)) = rewritten {
                tracing::warn!(error = %e, "rewriting the commit log failed; it keeps growing");
            }
            loop {
                let Some(parts) = node.catalog_partitions() else {
                    break;
                };
                let ids: Vec<Uuid> = parts.iter().map(|p| p.meta.uuid()).collect();
                let quiet = ids == seen;
                seen = ids;
                let size = node.options().partition_size;
                status.lock().expect("lock poisoned").small_partitions =
                    parts.iter().filter(|p| p.meta.rows < size / 2).count();
                let Some(group) = plan(&parts, size, quiet) else {
                    break;
                };
                drop(parts);
                status.lock().expect("lock poisoned").running = true;
                let r = merge(&node, group, &opts, &status).await;
                let mut st = status.lock().expect("lock poisoned");
                st.running = false;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "compaction failed; the partitions stay as they were");
                    st.last_error = Some(e);
                    break;
                }
            }
        }
    });
}

/// Copies `group` into one new partition and swaps it in.
async fn merge(
    node: &Arc<Node>,
    group: Group,
    opts: &CompactionOptions,
    status: &Arc<Mutex<CompactionStatus>>,
) -> Result<(), String> {
    let (archive, index) = node
        .storage()
        .ok_or("the node's archive or index stopped")?;
    let olds: Vec<Uuid> = group.iter().map(|p| p.meta.uuid()).collect();
    // The new id carries the first old partition's time, so the merged data keeps
    // its place in partition order across restarts.
    let new = group[0]
        .meta
        .uuid()
        .get_timestamp()
        .map(Uuid::new_v7)
        .unwrap_or_else(Uuid::now_v7);
    let span = tracing::info_span!("compaction.merge", partition = %new, merged = olds.len());
    let _g = span.enter();
    let start = Instant::now();
    let copied = copy(&archive, &index, &group, new, node, opts).await;
    let sealed = match copied {
        Ok(rows) => {
            let (a, i) = tokio::join!(
                archive.ask(Seal { id: new }),
                index.ask(SealIndex { id: new })
            );
            a.map_err(|e| format!("archive: {e}"))
                .and_then(|_| i.map_err(|e| format!("index: {e}")))
                .map(|_| rows)
        }
        Err(e) => Err(e),
    };
    let rows = match sealed {
        Ok(rows) => rows,
        Err(e) => {
            node.discard(vec![new]).await;
            return Err(format!("merging {} partitions: {e}", olds.len()));
        }
    };
    crate::commit::append(
        node.commit_log(),
        Record {
            kind: Kind::Replace,
            txn: new,
            coordinator: String::new(),
            partitions: vec![new],
            retired: olds.clone(),
        },
    )
    .await
    .map_err(|e| format!("writing the replace record: {e}"))?;
    index
        .ask(Swap {
            add: new,
            remove: olds.clone(),
        })
        .await
        .map_err(|e| format!("swapping in the merged partition: {e}"))?;
    tracing::info!(
        partition = %new,
        merged = olds.len(),
        events = rows,
        elapsed_ms = start.elapsed().as_millis() as u64,
        "compacted"
    );
    {
        let mut st = status.lock().expect("lock poisoned");
        st.merges += 1;
        st.partitions_merged += olds.len() as u64;
        st.events_rewritten += rows;
        st.retiring += olds.len();
    }
    retire(node, group, opts.retire_grace, status.clone());
    Ok(())
}

/// Copies every event of `group`, in order, into partition `new`. Returns the
/// events copied.
async fn copy(
    archive: &kameo::actor::ActorRef<crate::archive::Archive>,
    index: &kameo::actor::ActorRef<crate::index::Index>,
    group: &Group,
    new: Uuid,
    node: &Arc<Node>,
    opts: &CompactionOptions,
) -> Result<u64, String> {
    let archive_name = format!("{}/archive", node.id);
    let mut offset: u32 = 0;
    for p in group {
        let mut pages = ReadAll::new(archive.clone(), p.meta.uuid(), p.meta.rows, PAGE_BYTES);
        loop {
            let started = Instant::now();
            let Some(batches) = pages.next_page().await? else {
                break;
            };
            let mut rows = 0u64;
            for batch in batches {
                let n = batch.rows;
                let batch = Arc::new(batch);
                archive
                    .tell(Append {
                        id: new,
                        offset,
                        batch: batch.clone(),
                        span: tracing::Span::current(),
                    })
                    .await
                    .map_err(|e| format!("archive: {e}"))?;
                index
                    .tell(IndexBatch {
                        id: new,
                        archive: archive_name.clone(),
                        offset,
                        batch,
                        span: tracing::Span::current(),
                    })
                    .await
                    .map_err(|e| format!("index: {e}"))?;
                offset += n;
                rows += n as u64;
            }
            // The throttle: a page of `rows` events takes at least rows / max-rate.
            let due = Duration::from_secs_f64(rows as f64 / opts.max_rate as f64);
            if let Some(rest) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }
    let expected: u64 = group.iter().map(|p| p.meta.rows as u64).sum();
    if offset as u64 != expected {
        return Err(format!(
            "copied {offset} events, the merged partitions hold {expected}"
        ));
    }
    Ok(expected)
}

/// Removes the files of replaced partitions once no query holds them and the
/// grace period is over. Until then, fetches of queries that looked them up
/// before the swap still find their data. A restart sweeps them anyway: the
/// commit log says they are retired.
fn retire(node: &Arc<Node>, group: Group, grace: Duration, status: Arc<Mutex<CompactionStatus>>) {
    let node = Arc::downgrade(node);
    tokio::spawn(async move {
        let start = Instant::now();
        tokio::time::sleep(grace).await;
        // `group` holds one reference to each; a running query holds another.
        while group.iter().any(|p| Arc::strong_count(p) > 1) && start.elapsed() < RETIRE_MAX_WAIT {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let ids: Vec<Uuid> = group.iter().map(|p| p.meta.uuid()).collect();
        drop(group);
        if let Some((archive, index)) = node.upgrade().and_then(|n| n.storage()) {
            let _ = archive.tell(RemoveReplaced(ids.clone())).await;
            let _ = index.tell(DiscardIndexes(ids.clone())).await;
        }
        let mut st = status.lock().expect("lock poisoned");
        st.retiring = st.retiring.saturating_sub(ids.len());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_powers_of_four() {
        assert_eq!(tier(1), 0);
        assert_eq!(tier(3), 1);
        assert_eq!(tier(4), 1);
        assert_eq!(tier(16), 2);
        assert_eq!(tier(2000), tier(1500));
        assert_ne!(tier(2000), tier(8000 * 2));
    }

    fn parts(rows: &[u32]) -> Vec<Arc<PartitionIndex>> {
        rows.iter()
            .map(|r| Arc::new(PartitionIndex::for_test(*r)))
            .collect()
    }

    fn rows(g: &Group) -> Vec<u32> {
        g.iter().map(|p| p.meta.rows).collect()
    }

    #[test]
    fn busy_nodes_merge_tiers_of_four() {
        // Three small ones of a tier wait while data keeps arriving...
        assert!(plan(&parts(&[2000, 2100, 1900, 900_000]), 1_000_000, false).is_none());
        // ...four merge, and a full partition never takes part.
        let p = parts(&[2000, 600_000, 1500, 1900, 1800, 100, 2100]);
        assert_eq!(
            rows(&plan(&p, 1_000_000, false).unwrap()),
            vec![2000, 1500, 1900, 1800]
        );
        // A tier merge stays within the partition size.
        let p = parts(&[300_000, 300_000, 300_000, 300_000]);
        assert_eq!(rows(&plan(&p, 1_000_000, false).unwrap()), vec![300_000; 3]);
    }

    #[test]
    fn quiet_nodes_fill_partitions_greedily() {
        let p = parts(&[100, 400_000, 20_000, 300_000, 450_000, 10]);
        assert!(plan(&p, 1_000_000, false).is_none());
        let g = plan(&p, 1_000_000, true).unwrap();
        assert_eq!(rows(&g), vec![100, 400_000, 20_000, 300_000]);
        // Nothing to merge: one small partition, or only full ones.
        assert!(plan(&parts(&[10, 900_000]), 1_000_000, true).is_none());
        assert!(plan(&parts(&[600_000, 700_000]), 1_000_000, true).is_none());
    }
}
