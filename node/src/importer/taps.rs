//! Live taps: the importer offers every batch it accepts to the continuous exports
//! subscribed on this node (`export -c`, `export -u`), before the batch is stored,
//! so a live event reaches its exporter in milliseconds instead of after the
//! partition timeout.
//!
//! A tap keeps its matching rows until its subscriber pulls them, bounded in bytes
//! (`cluster.live-buffer`): a subscriber that does not keep up loses the newest
//! rows, counted and reported, and never slows an import down. Commit and abort
//! markers ride in the same queue, in order with the rows, so a unified export
//! learns when rows it skipped became history and when rows it showed were
//! thrown away. A tap nobody pulls expires.

use crate::data::Batch;
use crate::proto::LiveItem;
use crate::query::resolve::{filter, resolve, Resolved};
use crate::query::Expr;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

/// A tap's id: random, so it cannot be guessed.
pub type TapId = [u8; 16];

/// Taps one subscriber may hold on a node. A continuous export holds one per
/// member, so this bounds what one peer can make a node evaluate per batch.
pub const MAX_TAPS_PER_OWNER: usize = 64;

/// Buffer of a tap until the cluster configures it (`cluster.live-buffer`).
const DEFAULT_MAX_BYTES: usize = 16 << 20;
/// All taps of a node together buffer this many tap buffers at most, so many
/// lagging exports cannot make a node hold `MAX_TAPS_PER_OWNER` full buffers per
/// member.
const NODE_BUFFERS: usize = 8;

/// Largest rows item a tap keeps until the cluster sets it from its frame size.
const DEFAULT_ITEM_BYTES: usize = 8 << 20;

/// Bytes a marker is counted as, so markers are bounded like rows.
fn marker_bytes(ids: usize) -> usize {
    64 + 16 * ids
}

struct Tap {
    owner: String,
    expr: Expr,
    /// The expression bound to each schema seen, by schema fingerprint.
    resolved: HashMap<u64, Resolved>,
    items: VecDeque<LiveItem>,
    bytes: usize,
    /// Rows dropped since the last pull.
    dropped: u64,
    notify: Arc<Notify>,
    last_pull: Instant,
}

impl Tap {
    fn push(&mut self, item: LiveItem, bytes: usize) {
        self.items.push_back(item);
        self.bytes += bytes;
        self.notify.notify_one();
    }
}

/// The live taps of one node, shared by its importer (which feeds them) and its
/// data-plane service (which opens, pulls and closes them for subscribers).
pub struct Taps {
    taps: Mutex<Inner>,
    /// Number of taps, read without the lock on every batch.
    count: AtomicUsize,
    max_bytes: AtomicUsize,
    /// Larger selections are split into items of about this size, so a pull of
    /// one item always fits a frame (a single row larger than it stays whole).
    item_bytes: AtomicUsize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<TapId, Tap>,
    /// Bytes buffered over all taps.
    bytes: usize,
}

impl Inner {
    fn remove_where(&mut self, drop: impl Fn(&Tap) -> bool) -> usize {
        let before = self.map.len();
        let mut freed = 0;
        self.map.retain(|_, t| {
            let d = drop(t);
            if d {
                freed += t.bytes;
            }
            !d
        });
        self.bytes -= freed;
        before - self.map.len()
    }
}

impl Default for Taps {
    fn default() -> Self {
        Taps {
            taps: Mutex::new(Inner::default()),
            count: AtomicUsize::new(0),
            max_bytes: AtomicUsize::new(DEFAULT_MAX_BYTES),
            item_bytes: AtomicUsize::new(DEFAULT_ITEM_BYTES),
        }
    }
}

impl std::fmt::Debug for Taps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Taps({})", self.count.load(Ordering::Relaxed))
    }
}

impl Taps {
    /// Bytes each tap buffers at most.
    pub fn set_max_bytes(&self, n: usize) {
        self.max_bytes.store(n.max(1), Ordering::Relaxed);
    }

    /// Largest rows item: a page of the data plane.
    pub fn set_item_bytes(&self, n: usize) {
        self.item_bytes.store(n.max(1), Ordering::Relaxed);
    }

    /// Registers a tap for `owner` (a PeerId, or `local`). Call it where no batch
    /// can be offered concurrently (the importer's handler) when the caller needs
    /// to know exactly which rows came before the tap.
    pub fn open(&self, owner: &str, expr: Expr) -> Result<TapId, String> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| format!("no randomness for a tap id: {e}"))?;
        let mut taps = self.taps.lock().expect("lock poisoned");
        let held = taps.map.values().filter(|t| t.owner == owner).count();
        if held >= MAX_TAPS_PER_OWNER {
            return Err(format!(
                "too many live taps for this subscriber ({held}, limit {MAX_TAPS_PER_OWNER})"
            ));
        }
        taps.map.insert(
            id,
            Tap {
                owner: owner.to_string(),
                expr,
                resolved: HashMap::new(),
                items: VecDeque::new(),
                bytes: 0,
                dropped: 0,
                notify: Arc::new(Notify::new()),
                last_pull: Instant::now(),
            },
        );
        self.count.store(taps.map.len(), Ordering::Relaxed);
        Ok(id)
    }

    /// Offers a batch of partition `partition` to every tap; each keeps its
    /// matching rows if its buffer has room.
    pub fn offer(&self, partition: Uuid, batch: &Batch) {
        if self.count.load(Ordering::Relaxed) == 0 || batch.rows == 0 {
            return;
        }
        let max = self.max_bytes.load(Ordering::Relaxed);
        let item = self.item_bytes.load(Ordering::Relaxed);
        let fp = batch.schema.fingerprint();
        let mut guard = self.taps.lock().expect("lock poisoned");
        let Inner { map, bytes: total } = &mut *guard;
        for tap in map.values_mut() {
            let expr = &tap.expr;
            let r = tap
                .resolved
                .entry(fp)
                .or_insert_with(|| resolve(expr, &batch.schema));
            let rows = filter(r, batch);
            if rows.is_empty() {
                continue;
            }
            let n = rows.len() as u64;
            let selected;
            let b = if rows.len() == batch.rows as usize {
                batch
            } else {
                selected = batch.select(&rows);
                &selected
            };
            // Items small enough that a pull of one always fits a frame.
            let parts = b.to_bytes_fitting(item);
            let size: usize = parts.iter().map(|(_, p)| p.len()).sum();
            if tap.bytes + size > max || *total + size > max * NODE_BUFFERS {
                tap.dropped += n;
                tap.notify.notify_one();
                continue;
            }
            for (_, bytes) in parts {
                let size = bytes.len();
                *total += size;
                tap.push(
                    LiveItem::Rows {
                        partition: *partition.as_bytes(),
                        batch: bytes,
                    },
                    size,
                );
            }
        }
    }

    fn mark(&self, ids: &[Uuid], item: impl Fn(Vec<[u8; 16]>) -> LiveItem) {
        if self.count.load(Ordering::Relaxed) == 0 || ids.is_empty() {
            return;
        }
        let ids: Vec<[u8; 16]> = ids.iter().map(|id| *id.as_bytes()).collect();
        let mut guard = self.taps.lock().expect("lock poisoned");
        let Inner { map, bytes: total } = &mut *guard;
        for tap in map.values_mut() {
            // Markers are never dropped: a unified export needs every one. A tap
            // whose subscriber stopped pulling expires instead.
            *total += marker_bytes(ids.len());
            tap.push(item(ids.clone()), marker_bytes(ids.len()));
        }
    }

    /// These partitions were committed.
    pub fn committed(&self, ids: &[Uuid]) {
        self.mark(ids, |partitions| LiveItem::Committed { partitions });
    }

    /// These partitions were aborted.
    pub fn aborted(&self, ids: &[Uuid]) {
        self.mark(ids, |partitions| LiveItem::Aborted { partitions });
    }

    /// The items of tap `id` (about `max_bytes` at most, at least one), and the
    /// rows it dropped since the last pull; waits up to `wait` for the first.
    pub async fn next(
        &self,
        owner: &str,
        id: &TapId,
        wait: Duration,
        max_bytes: usize,
    ) -> Result<(Vec<LiveItem>, u64), String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notify = {
                let mut guard = self.taps.lock().expect("lock poisoned");
                let Inner { map, bytes: total } = &mut *guard;
                let tap = owned(map, owner, id)?;
                tap.last_pull = Instant::now();
                if !tap.items.is_empty() || tap.dropped > 0 {
                    let mut out = Vec::new();
                    let mut size = 0;
                    while let Some(item) = tap.items.front() {
                        let b = match item {
                            LiveItem::Rows { batch, .. } => batch.len(),
                            LiveItem::Committed { partitions }
                            | LiveItem::Aborted { partitions } => marker_bytes(partitions.len()),
                        };
                        if !out.is_empty() && size + b > max_bytes {
                            break;
                        }
                        size += b;
                        out.push(tap.items.pop_front().expect("front exists"));
                    }
                    tap.bytes -= size;
                    *total -= size;
                    return Ok((out, std::mem::take(&mut tap.dropped)));
                }
                tap.notify.clone()
            };
            if tokio::time::timeout_at(deadline, notify.notified())
                .await
                .is_err()
            {
                return Ok((Vec::new(), 0));
            }
        }
    }

    /// Closes tap `id` of `owner`.
    pub fn close(&self, owner: &str, id: &TapId) -> Result<(), String> {
        let mut taps = self.taps.lock().expect("lock poisoned");
        owned(&mut taps.map, owner, id)?;
        if let Some(t) = taps.map.remove(id) {
            taps.bytes -= t.bytes;
        }
        self.count.store(taps.map.len(), Ordering::Relaxed);
        Ok(())
    }

    /// Closes every tap of `owner` (it disconnected); returns how many.
    pub fn close_owner(&self, owner: &str) -> usize {
        let mut taps = self.taps.lock().expect("lock poisoned");
        let n = taps.remove_where(|t| t.owner == owner);
        self.count.store(taps.map.len(), Ordering::Relaxed);
        n
    }

    /// Closes taps nobody pulled for `idle`; returns how many.
    pub fn expire(&self, idle: Duration) -> usize {
        let mut taps = self.taps.lock().expect("lock poisoned");
        let n = taps.remove_where(|t| t.last_pull.elapsed() >= idle);
        self.count.store(taps.map.len(), Ordering::Relaxed);
        n
    }

    /// Each tap's owner (a PeerId, or `local`), query, buffered bytes and rows
    /// dropped since its last pull, for `status --detailed`.
    pub fn describe(&self) -> Vec<serde_json::Value> {
        let taps = self.taps.lock().expect("lock poisoned");
        let mut out: Vec<serde_json::Value> = taps
            .map
            .values()
            .map(|t| {
                serde_json::json!({
                    "subscriber": t.owner,
                    "query": t.expr.to_string(),
                    "buffered-bytes": t.bytes,
                    "dropped": t.dropped,
                    "idle-ms": t.last_pull.elapsed().as_millis() as u64,
                })
            })
            .collect();
        out.sort_by_key(|v| v.to_string());
        out
    }

    /// Bytes buffered over all taps.
    pub fn buffered(&self) -> usize {
        self.taps.lock().expect("lock poisoned").bytes
    }

    /// Open taps (for `status`).
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn owned<'a>(
    taps: &'a mut HashMap<TapId, Tap>,
    owner: &str,
    id: &TapId,
) -> Result<&'a mut Tap, String> {
    match taps.get_mut(id) {
        Some(t) if t.owner == owner => Ok(t),
        // The same answer for someone else's tap: ids are not confirmed to guessers.
        _ => Err("unknown live tap (closed or expired)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Field, Schema, Type, Value};

    fn batch(vals: &[u64]) -> Batch {
        let schema = Schema::new("t.x", vec![Field::new("n", Type::Count)]);
        let mut b = crate::data::builder::BatchBuilder::new(schema);
        for v in vals {
            b.column(0).push_count(*v);
            b.finish_row();
        }
        b.finish()
    }

    fn rows(items: &[LiveItem]) -> Vec<u64> {
        let mut out = Vec::new();
        for i in items {
            if let LiveItem::Rows { batch, .. } = i {
                let b = Batch::from_bytes(batch).unwrap();
                for r in 0..b.rows as usize {
                    match b.column(0).get(r).to_value(&Type::Count) {
                        Value::Count(v) => out.push(v),
                        other => panic!("{other:?}"),
                    }
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn taps_filter_bound_order_and_belong_to_their_owner() {
        let taps = Taps::default();
        let p = Uuid::now_v7();
        // Nothing is kept before a tap exists.
        taps.offer(p, &batch(&[1, 2, 3]));
        let t = taps
            .open("a", crate::query::parse("n > 1").unwrap())
            .unwrap();
        taps.offer(p, &batch(&[1, 2, 3]));
        taps.committed(&[p]);
        taps.offer(p, &batch(&[0, 9]));
        let wait = Duration::from_millis(100);
        assert!(taps.next("b", &t, wait, 1 << 20).await.is_err());
        let (items, dropped) =
            tokio::time::timeout(Duration::from_secs(5), taps.next("a", &t, wait, 1 << 20))
                .await
                .unwrap()
                .unwrap();
        assert_eq!(dropped, 0);
        assert_eq!(rows(&items), vec![2, 3, 9]);
        assert!(matches!(items[1], LiveItem::Committed { .. }), "{items:?}");
        // Empty: the pull waits, then answers nothing.
        let start = Instant::now();
        let (items, _) = taps.next("a", &t, wait, 1 << 20).await.unwrap();
        assert!(items.is_empty() && start.elapsed() >= wait);
        // A pull that waits wakes as soon as rows arrive.
        let taps = Arc::new(taps);
        let t2 = taps.clone();
        let waiter =
            tokio::spawn(async move { t2.next("a", &t, Duration::from_secs(10), 1 << 20).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        taps.offer(p, &batch(&[7]));
        let (items, _) = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(rows(&items), vec![7]);
        // A big selection arrives in items that fit, all rows in order.
        let big: Vec<u64> = (2..100_000).collect();
        taps.set_item_bytes(256 << 10);
        taps.offer(p, &batch(&big));
        let (items, _) = taps.next("a", &t, wait, 1 << 30).await.unwrap();
        assert!(items.len() > 1, "{} items", items.len());
        assert!(items
            .iter()
            .all(|i| matches!(i, LiveItem::Rows { batch, .. } if batch.len() <= 256 << 10)));
        assert_eq!(rows(&items), big);
        // A full buffer drops rows and counts them; markers still arrive.
        taps.set_max_bytes(1);
        taps.offer(p, &batch(&[5, 6]));
        taps.aborted(&[p]);
        let (items, dropped) = taps.next("a", &t, wait, 1 << 20).await.unwrap();
        assert_eq!(dropped, 2);
        assert!(matches!(items[..], [LiveItem::Aborted { .. }]), "{items:?}");
        // Every tap together is bounded too: many lagging taps cannot add up.
        taps.set_max_bytes(4096);
        let others: Vec<TapId> = (0..NODE_BUFFERS + 2)
            .map(|_| {
                taps.open("z", crate::query::parse("n > 1").unwrap())
                    .unwrap()
            })
            .collect();
        for _ in 0..100 {
            taps.offer(p, &batch(&[2; 50]));
        }
        assert!(
            taps.buffered() <= 4096 * NODE_BUFFERS,
            "{}",
            taps.buffered()
        );
        let mut total_dropped = 0;
        for o in &others {
            total_dropped += taps.next("z", o, wait, 1 << 20).await.unwrap().1;
        }
        assert!(total_dropped > 0);
        taps.next("a", &t, wait, 1 << 30).await.unwrap();
        assert_eq!(taps.buffered(), 0);
        assert_eq!(taps.close_owner("z"), NODE_BUFFERS + 2);
        // Owners are capped, taps close, and idle ones expire.
        for _ in 1..MAX_TAPS_PER_OWNER {
            taps.open("a", crate::query::parse("n > 1").unwrap())
                .unwrap();
        }
        assert!(taps
            .open("a", crate::query::parse("n > 1").unwrap())
            .is_err());
        taps.close("a", &t).unwrap();
        assert!(taps.next("a", &t, wait, 1).await.is_err());
        assert_eq!(taps.close_owner("a"), MAX_TAPS_PER_OWNER - 1);
        taps.open("c", crate::query::parse("n > 1").unwrap())
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(taps.expire(Duration::from_millis(10)), 1);
        assert!(taps.is_empty());
    }
}
