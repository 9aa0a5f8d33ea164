//! Replicas: with `import.replicas: N` every committed partition, archive and
//! index, lives on N members (the importer stores and commits each replica in the
//! same transaction). Members learn which partitions the others hold (`Held`,
//! asked every round and beside every query lookup), so that
//!
//! - a query reads each partition once, from one replica that answered;
//! - a member that does not answer fails a query only when some partition it
//!   held has no replica among the members that answered;
//! - partitions with fewer than N live holders are copied, by their first live
//!   holder in id order, to a member that lacks them: at once when no holder is
//!   away (placed while too few stores were up), after `cluster.replica-timeout`
//!   when a holder is away (it may return with its replicas).
//!
//! A copy is a transaction of the copying node, like an import: the target
//! stores, seals (prepared) and commits the partition under the same id, with the
//! same row numbers, so the replicas of a partition are interchangeable.

use super::store::ClusterStore;
use super::{Cluster, MEMBER_TIMEOUT};
use crate::archive::actor::ReadAll;
use crate::commit::{Kind, Record};
use crate::importer::RemoteStore;
use crate::index::partition::PartitionIndex;
use crate::proto::{DataRequest, DataResponse, WireHits};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The partitions one member holds, as it last told us.
pub(super) type Held = Arc<HashSet<[u8; 16]>>;

/// How often members compare what they hold and copy what is missing.
const ROUND: Duration = Duration::from_secs(2);

/// Partitions one node copies per round at most, so re-replication stays in the
/// background of imports and queries.
const COPIES_PER_ROUND: usize = 4;

/// Where a partition's replicas are, as far as this node knows.
pub(super) struct Placement {
    /// Holders that are connected (this node included).
    pub live: Vec<String>,
    /// Holders that are away, and since when.
    pub away: Vec<(String, Option<Instant>)>,
}

impl Cluster {
    /// The committed partitions this node serves; `None` while its archive or
    /// index is stopped.
    pub(super) fn held_here(&self) -> Option<HashSet<[u8; 16]>> {
        if !self.serves_data() {
            return None;
        }
        let parts = self.node.catalog_partitions()?;
        Some(parts.iter().map(|p| p.meta.id).collect())
    }

    /// Records what member `id` said it holds.
    pub(super) fn note_held(&self, id: &str, held: Vec<[u8; 16]>) {
        let held: Held = Arc::new(held.into_iter().collect());
        if let Some(m) = self.members.lock().expect("lock poisoned").get_mut(id) {
            m.held = Some(held);
        }
    }

    /// Asks every connected member what it holds.
    async fn refresh_held(self: &Arc<Self>) {
        let ids: Vec<String> = {
            let members = self.members.lock().expect("lock poisoned");
            members
                .iter()
                .filter(|(_, m)| m.connected && m.peer.is_some())
                .map(|(id, _)| id.clone())
                .collect()
        };
        let asks = ids.into_iter().map(|id| async move {
            let r = self
                .ask_member(&id, DataRequest::Held, MEMBER_TIMEOUT)
                .await;
            (id, r)
        });
        for (id, r) in futures::future::join_all(asks).await {
            if let Ok(DataResponse::Held(v)) = r {
                self.note_held(&id, v);
            }
        }
        if let Some(h) = self.held_here() {
            *self.held_self.lock().expect("lock poisoned") = Some(Arc::new(h));
        }
    }

    /// Whether every partition member `id` last said it held is among
    /// `answered` (the partitions of the members that answered a query). Only
    /// with replicas: without them, a member's partitions are nowhere else.
    pub(super) fn covered(&self, id: &str, answered: &HashSet<[u8; 16]>) -> bool {
        if self.opts.replicas <= 1 {
            return false;
        }
        let held = if id == self.id {
            self.held_self.lock().expect("lock poisoned").clone()
        } else {
            let members = self.members.lock().expect("lock poisoned");
            members.get(id).and_then(|m| m.held.clone())
        };
        held.is_some_and(|h| h.iter().all(|p| answered.contains(p)))
    }

    /// Each partition once: this node's replica when it has one, else one of the
    /// replicas that answered, picked by partition id so reads spread over them.
    pub(super) fn read_once(&self, hits: Vec<WireHits>) -> Vec<WireHits> {
        let mut by: BTreeMap<[u8; 16], Vec<WireHits>> = BTreeMap::new();
        for h in hits {
            by.entry(h.partition).or_default().push(h);
        }
        let here = format!("{}/", self.id);
        by.into_values()
            .map(|mut replicas| {
                if replicas.len() == 1 {
                    return replicas.pop().expect("one");
                }
                if let Some(i) = replicas.iter().position(|h| h.archive.starts_with(&here)) {
                    return replicas.swap_remove(i);
                }
                replicas.sort_by(|a, b| a.archive.cmp(&b.archive));
                let k = spread(&replicas[0].partition, replicas.len());
                replicas.swap_remove(k)
            })
            .collect()
    }

    /// Where partition `p` is, by what members last said they hold.
    fn placement_of(&self, p: &[u8; 16], here: bool) -> Placement {
        let mut live = Vec::new();
        let mut away = Vec::new();
        if here {
            live.push(self.id.clone());
        }
        let members = self.members.lock().expect("lock poisoned");
        for (id, m) in members.iter() {
            if m.held.as_ref().is_some_and(|h| h.contains(p)) {
                if m.connected {
                    live.push(id.clone());
                } else {
                    away.push((id.clone(), m.down_since));
                }
            }
        }
        live.sort();
        Placement { live, away }
    }

    /// Partitions this node holds that have fewer live holders than
    /// `import.replicas`, and where their replicas are.
    fn under_replicated(&self) -> Vec<(Arc<PartitionIndex>, Placement)> {
        let Some(parts) = self.node.catalog_partitions() else {
            return vec![];
        };
        parts
            .into_iter()
            .map(|p| {
                let pl = self.placement_of(&p.meta.id, true);
                (p, pl)
            })
            .filter(|(_, pl)| pl.live.len() < self.opts.replicas)
            .collect()
    }

    /// `status`: the replica count, and what this node holds and lacks.
    pub(super) fn replication_json(&self, detailed: bool) -> serde_json::Value {
        let parts = self.node.catalog_partitions().unwrap_or_default();
        let under = if self.serves_data() {
            self.under_replicated().len()
        } else {
            0
        };
        let mut v = serde_json::json!({
            "replicas": self.opts.replicas,
            "partitions": parts.len(),
            "under-replicated": under,
        });
        if detailed {
            v["placement"] = parts
                .iter()
                .map(|p| {
                    let pl = self.placement_of(&p.meta.id, true);
                    serde_json::json!({
                        "partition": p.meta.uuid().to_string(),
                        "live": pl.live,
                        "away": pl.away.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                    })
                })
                .collect();
        }
        v
    }

    /// Every round: learn what members hold, and copy partitions that lack
    /// replicas.
    pub(super) async fn replicate(self: Arc<Self>) {
        let mut tick = tokio::time::interval(ROUND);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.refresh_held().await;
            if self.opts.replicas > 1 && self.serves_data() {
                self.replicate_round().await;
            }
        }
    }

    async fn replicate_round(self: &Arc<Self>) {
        let mut copies = 0;
        let under = self.under_replicated();
        // Only what lacked replicas in the last round too: a partition that was
        // just committed may not be in its other holders' lists yet.
        let now: HashSet<[u8; 16]> = under.iter().map(|(p, _)| p.meta.id).collect();
        let before = std::mem::replace(&mut *self.lacking.lock().expect("lock poisoned"), now);
        for (p, pl) in under {
            if !before.contains(&p.meta.id) {
                continue;
            }
            // A holder that is away may return with its replica: wait for it.
            let waiting = pl
                .away
                .iter()
                .any(|(_, since)| since.is_none_or(|s| s.elapsed() < self.opts.replica_timeout));
            // The first live holder copies; the others leave it to that one.
            if waiting || pl.live.first() != Some(&self.id) {
                continue;
            }
            let mut targets: Vec<String> = {
                let stores = ClusterStore(Arc::downgrade(self)).stores();
                let members = self.members.lock().expect("lock poisoned");
                stores
                    .into_iter()
                    .filter(|id| {
                        members.get(id).is_some_and(|m| {
                            m.held.as_ref().is_some_and(|h| !h.contains(&p.meta.id))
                        })
                    })
                    .collect()
            };
            if targets.is_empty() {
                continue;
            }
            targets.sort();
            let target = targets[spread(&p.meta.id, targets.len())].clone();
            let id = p.meta.uuid();
            let started = Instant::now();
            match self.copy_partition(&p, &target).await {
                Ok(()) => {
                    tracing::info!(node = %self.id, partition = %id, target = %target, rows = p.meta.rows, elapsed_ms = started.elapsed().as_millis() as u64, "copied a partition that lacked replicas");
                    let mut members = self.members.lock().expect("lock poisoned");
                    if let Some(m) = members.get_mut(&target) {
                        let mut held: HashSet<[u8; 16]> =
                            m.held.as_deref().cloned().unwrap_or_default();
                        held.insert(p.meta.id);
                        m.held = Some(Arc::new(held));
                    }
                }
                Err(e) => {
                    tracing::warn!(node = %self.id, partition = %id, target = %target, error = %e, "copying a partition that lacks replicas failed; trying again next round");
                }
            }
            copies += 1;
            if copies >= COPIES_PER_ROUND {
                break;
            }
        }
    }

    /// Copies partition `p` to `target` under the same id and row numbers, as a
    /// transaction of this node: nothing of it is visible there unless all is.
    async fn copy_partition(
        self: &Arc<Self>,
        p: &PartitionIndex,
        target: &str,
    ) -> Result<(), String> {
        let id = p.meta.uuid();
        let txn = uuid::Uuid::now_v7();
        let store = ClusterStore(Arc::downgrade(self));
        self.copying.lock().expect("lock poisoned").insert(txn);
        let sent = async {
            let (archive, _) = self
                .node
                .storage()
                .ok_or("this node's archive or index stopped")?;
            let mut pages = ReadAll::new(archive, id, p.meta.rows, self.page_bytes());
            let mut offset: u32 = 0;
            while let Some(batches) = pages.next_page().await? {
                for batch in batches {
                    let n = batch.rows;
                    store.store(target, id, offset, Arc::new(batch)).await?;
                    offset += n;
                }
            }
            if offset != p.meta.rows {
                return Err(format!(
                    "read {offset} rows of partition {id}, which holds {}",
                    p.meta.rows
                ));
            }
            store.seal(target, id, txn).await?;
            // The decision, durable here before the target hears it: a target
            // that misses the commit asks this node for the outcome.
            crate::commit::append(
                self.node.commit_log(),
                // Only the transaction: the partition is already held here.
                Record {
                    kind: Kind::Commit,
                    txn,
                    coordinator: String::new(),
                    partitions: Vec::new(),
                    retired: Vec::new(),
                },
            )
            .await
            .map_err(|e| format!("recording the copy: {e}"))
        }
        .await;
        self.copying.lock().expect("lock poisoned").remove(&txn);
        match sent {
            Ok(()) => {
                if let Err(e) = store.commit(target, txn, vec![id]).await {
                    tracing::warn!(node = %self.id, target = %target, txn = %txn, error = %e, "a copy's target missed the commit; it learns the outcome when it asks");
                }
                Ok(())
            }
            Err(e) => {
                // Whatever reached the target goes: sealing what arrived makes it
                // a prepared partition of this transaction, which the abort
                // removes (a seal that fails drops it already).
                let _ = store.seal(target, id, txn).await;
                let _ = store.abort(target, txn, vec![id]).await;
                Err(e)
            }
        }
    }

    /// Whether `txn` is a copy this node is still making (a target asking for its
    /// outcome waits).
    pub(super) fn copy_in_flight(&self, txn: &uuid::Uuid) -> bool {
        self.copying.lock().expect("lock poisoned").contains(txn)
    }
}

/// A stable pick among `n` for partition `p`: UUID v7 ids end in random bits.
fn spread(p: &[u8; 16], n: usize) -> usize {
    let tail = u64::from_le_bytes(p[8..16].try_into().expect("eight bytes"));
    (tail % n.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_stays_in_range_and_spreads() {
        let mut seen = [0usize; 3];
        for _ in 0..300 {
            let id = *uuid::Uuid::now_v7().as_bytes();
            let k = spread(&id, 3);
            assert!(k < 3);
            seen[k] += 1;
        }
        assert!(seen.iter().all(|n| *n > 0), "{seen:?}");
        assert_eq!(spread(&[0; 16], 0), 0);
    }
}
