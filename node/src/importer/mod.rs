//! The importer: receives batches from import sessions, assigns them to partitions
//! (event ids are partition id + row), and hands each to the archive and index that
//! hold that partition.
//!
//! Every import is a session with its own partitions, error and flush; sessions
//! never affect each other. A session's partitions are sealed (durable but
//! invisible) and then committed: one record in the commit log makes them all
//! visible at once. Across nodes that is two-phase: every participant seals and
//! records `Prepare`, then the importer's node records the decision (`Commit`) and
//! tells the participants; one that misses it asks when it returns. A session that
//! fails or is aborted leaves nothing visible. Long-running sessions (spawned
//! sources, live capture) commit each partition as it seals.

pub mod taps;

use crate::archive::actor::{Append, DiscardPartitions, Seal};
use crate::archive::Archive;
use crate::commit::{CommitLog, Kind, Record};
use crate::data::Batch;
use crate::index::actor::{DiscardIndexes, IndexBatch, Publish, SealIndex};
use crate::index::Index;
use kameo::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A partition's replicas, where each is (`None`: here) and the partition id.
type Replicas = Vec<(Option<String>, Uuid)>;

/// Aborted sessions remembered, so late batches of theirs are dropped.
const ABORTED_KEPT: usize = 1024;

/// An import session: one client import or one spawned source.
pub type SessionId = Uuid;

/// Where the partitions of this importer go. Pipelines are wired sink-first: the
/// importer is built with its downstream handles.
#[derive(Clone)]
pub struct Sinks {
    pub archive: ActorRef<Archive>,
    /// `<node>/<label>` of the archive, recorded in the catalog for fetches.
    pub archive_name: String,
    pub index: ActorRef<Index>,
    /// This node's commit log: records make partitions visible.
    pub commits: Arc<Mutex<CommitLog>>,
    /// Continuous exports subscribed here: every accepted batch is offered to them.
    pub taps: Arc<taps::Taps>,
}

/// Where a partition's archive and index live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// This node's archive and index (the default).
    Local,
    /// Partitions take turns over every member with an archive and an index.
    RoundRobin,
    /// Always the named node.
    Fixed(String),
}

impl std::str::FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" | "prefer-local" => Ok(Placement::Local),
            "round-robin" => Ok(Placement::RoundRobin),
            s if s.starts_with("fixed:") && s.len() > 6 => Ok(Placement::Fixed(s[6..].to_string())),
            _ => Err(format!(
                "import.placement {s:?} is not one of local, round-robin, fixed:<node>"
            )),
        }
    }
}

/// Archives and indexes on other nodes, reached over the data plane. The importer
/// treats them like its local sinks: location transparency.
#[async_trait::async_trait]
pub trait RemoteStore: Send + Sync + 'static {
    /// Appends a batch of partition `id` at `offset` to `node`'s archive and index.
    async fn store(
        &self,
        node: &str,
        id: Uuid,
        offset: u32,
        batch: Arc<Batch>,
    ) -> Result<(), String>;
    /// Makes partition `id` durable on `node`, prepared (invisible) for `txn`.
    async fn seal(&self, node: &str, id: Uuid, txn: Uuid) -> Result<(), String>;
    /// Makes `node`'s partitions of `txn` visible (the decision is already durable).
    async fn commit(&self, node: &str, txn: Uuid, ids: Vec<Uuid>) -> Result<(), String>;
    /// Removes `node`'s partitions of `txn`.
    async fn abort(&self, node: &str, txn: Uuid, ids: Vec<Uuid>) -> Result<(), String>;
    /// Members (other than this node) that run both an archive and an index.
    fn stores(&self) -> Vec<String>;
    /// This node's id.
    fn this_node(&self) -> String;
}

struct ActivePartition {
    /// Where its replicas go, the first chosen by placement: `None` is the local
    /// sinks, `Some(node)` a remote node. Never empty, never twice the same.
    holders: Vec<Option<String>>,
    id: Uuid,
    rows: u32,
    created: Instant,
}

/// A partition being sealed: where, which, for which transaction, and the task.
struct Sealing {
    node: Option<String>,
    id: Uuid,
    txn: Uuid,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

#[derive(Default)]
struct Session {
    active: HashMap<u64, ActivePartition>,
    sealing: Vec<Sealing>,
    /// Sealed durably, waiting for the session's commit.
    sealed: Vec<(Option<String>, Uuid)>,
    failed: Option<String>,
    events: u64,
    /// Commit each partition as soon as it is sealed (long-running sources).
    autocommit: bool,
}

pub struct Importer {
    sinks: Sinks,
    placement: Placement,
    /// Holders each partition gets (`import.replicas`), as far as stores are up.
    replicas: usize,
    remote: Option<Arc<dyn RemoteStore>>,
    turn: usize,
    /// Rotates the replicas after the first over the other stores.
    spread: usize,
    partition_size: u32,
    partition_timeout: Duration,
    sessions: HashMap<SessionId, Session>,
    /// Recently aborted sessions: a batch of theirs still on its way is dropped
    /// instead of opening the session again.
    aborted: std::collections::VecDeque<SessionId>,
    /// Events committed by this importer since it started.
    events: u64,
}

impl Importer {
    pub fn new(sinks: Sinks, partition_size: u32, partition_timeout: Duration) -> Self {
        Importer {
            sinks,
            placement: Placement::Local,
            replicas: 1,
            remote: None,
            turn: 0,
            spread: 0,
            partition_size,
            partition_timeout,
            sessions: HashMap::new(),
            aborted: std::collections::VecDeque::new(),
            events: 0,
        }
    }

    /// Seals partition `id` on its archive and index for transaction `txn`; the task
    /// ends once both hold it durably (still invisible).
    fn seal(&self, node: Option<String>, id: Uuid, txn: Uuid) -> Sealing {
        let task = if let (Some(n), Some(remote)) = (node.clone(), self.remote.clone()) {
            tokio::spawn(async move {
                remote
                    .seal(&n, id, txn)
                    .await
                    .map_err(|e| format!("node {n}: {e}"))
            })
        } else {
            let (archive, index) = (self.sinks.archive.clone(), self.sinks.index.clone());
            tokio::spawn(async move {
                let start = Instant::now();
                let (a, i) = tokio::join!(archive.ask(Seal { id }), index.ask(SealIndex { id }));
                tracing::debug!(partition = %id, elapsed_ms = start.elapsed().as_millis() as u64, "sealed");
                a.map_err(|e| format!("archive: {e}"))?;
                i.map_err(|e| format!("index: {e}"))
            })
        };
        Sealing {
            node,
            id,
            txn,
            task,
        }
    }

    /// Picks the holders of a new partition (`None` is this node): the first by
    /// placement, then others, up to `replicas` distinct stores.
    /// With fewer stores up, the partition gets fewer replicas; the cluster
    /// copies the missing ones when members return.
    fn place(&mut self) -> Vec<Option<String>> {
        let Some(remote) = self.remote.as_ref() else {
            return vec![None];
        };
        let mut stores = remote.stores();
        stores.sort();
        // Every store, this node first: the ring replicas are taken from.
        let ring: Vec<Option<String>> = std::iter::once(None)
            .chain(stores.into_iter().map(Some))
            .collect();
        let first = match &self.placement {
            Placement::Local => None,
            Placement::Fixed(n) if *n == remote.this_node() => None,
            Placement::Fixed(n) => Some(n.clone()),
            Placement::RoundRobin => {
                self.turn += 1;
                ring[self.turn % ring.len()].clone()
            }
        };
        // The other replicas rotate over the remaining stores, so a node that
        // places every first replica locally still spreads the others.
        let others: Vec<Option<String>> = ring.into_iter().filter(|h| *h != first).collect();
        let mut holders = vec![first];
        if !others.is_empty() {
            self.spread = self.spread.wrapping_add(1);
            for k in 0..others.len().min(self.replicas.saturating_sub(1)) {
                holders.push(others[(self.spread + k) % others.len()].clone());
            }
        }
        holders
    }

    /// Starts sealing the partitions of `session` picked by `which`.
    fn seal_where(&mut self, session: SessionId, which: impl Fn(&ActivePartition) -> bool) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let keys: Vec<u64> = s
            .active
            .iter()
            .filter(|(_, a)| which(a))
            .map(|(k, _)| *k)
            .collect();
        let parts: Vec<ActivePartition> = keys.iter().filter_map(|k| s.active.remove(k)).collect();
        let autocommit = s.autocommit;
        let seals: Vec<Sealing> = parts
            .into_iter()
            .flat_map(|a| {
                // A long-running session commits each partition on its own.
                let txn = if autocommit { a.id } else { session };
                a.holders
                    .into_iter()
                    .map(|h| self.seal(h, a.id, txn))
                    .collect::<Vec<_>>()
            })
            .collect();
        if let Some(s) = self.sessions.get_mut(&session) {
            s.sealing.extend(seals);
        }
    }

    /// Waits for the seals of `session` that `all` or the finished ones; records
    /// the sealed partitions, or the first failure.
    async fn reap(&mut self, session: SessionId, all: bool) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let mut keep = Vec::new();
        let mut done = Vec::new();
        for x in std::mem::take(&mut s.sealing) {
            if all || x.task.is_finished() {
                done.push(x);
            } else {
                keep.push(x);
            }
        }
        s.sealing = keep;
        let mut results = Vec::new();
        for x in done {
            let r = x
                .task
                .await
                .map_err(|e| format!("sealing task failed: {e}"))
                .and_then(|r| r);
            results.push((x.node, x.id, r));
        }
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        for (node, id, r) in results {
            if let Err(e) = r {
                tracing::error!(partition = %id, error = %e, "sealing a partition failed");
                s.failed.get_or_insert(e);
            }
            // A partition that failed to seal is listed too: an abort removes it.
            s.sealed.push((node, id));
        }
        if s.autocommit && s.failed.is_none() {
            // A partition commits once every replica of it sealed.
            let still: Vec<Uuid> = s.sealing.iter().map(|x| x.id).collect();
            let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut s.sealed)
                .into_iter()
                .partition(|(_, id)| !still.contains(id));
            s.sealed = wait;
            let mut by_id: std::collections::BTreeMap<Uuid, Replicas> = Default::default();
            for (node, id) in ready {
                by_id.entry(id).or_default().push((node, id));
            }
            for (id, parts) in by_id {
                if let Err(e) = self.commit(id, parts).await {
                    if let Some(s) = self.sessions.get_mut(&session) {
                        s.failed.get_or_insert(e);
                    }
                }
            }
        }
    }

    /// Commits `parts` as transaction `txn`: the decision goes into this node's
    /// log first, then local partitions are published and participants told.
    async fn commit(
        &mut self,
        txn: Uuid,
        parts: Vec<(Option<String>, Uuid)>,
    ) -> Result<(), String> {
        if parts.is_empty() {
            return Ok(());
        }
        let mut all: Vec<Uuid> = parts.iter().map(|(_, id)| *id).collect();
        all.sort();
        all.dedup();
        // The record lists the partitions held here; participants record theirs,
        // and ask this node about the transaction, not the partitions.
        let here: Vec<Uuid> = parts
            .iter()
            .filter(|(n, _)| n.is_none())
            .map(|(_, id)| *id)
            .collect();
        crate::commit::append(
            &self.sinks.commits,
            Record {
                kind: Kind::Commit,
                txn,
                coordinator: String::new(),
                partitions: here,
                retired: Vec::new(),
            },
        )
        .await
        .map_err(|e| format!("writing the commit record: {e}"))?;
        let (local, remote) = by_node(parts);
        if !local.is_empty() {
            self.sinks
                .index
                .ask(Publish { ids: local })
                .await
                .map_err(|e| format!("publishing committed partitions: {e}"))?;
        }
        if let Some(r) = self.remote.clone() {
            for (node, ids) in remote {
                // Decided: a participant that misses this learns it when it returns.
                if let Err(e) = r.commit(&node, txn, ids).await {
                    tracing::warn!(node = %node, txn = %txn, error = %e, "a participant missed a commit; it learns the outcome when it returns");
                }
            }
        }
        // After the partitions are published, so a unified export that asks for
        // them on this marker finds them.
        self.sinks.taps.committed(&all);
        Ok(())
    }

    /// Removes every uncommitted partition of `session`, here and on participants.
    async fn abort(&mut self, session: SessionId) {
        self.reap(session, true).await;
        if !self.aborted.contains(&session) {
            if self.aborted.len() >= ABORTED_KEPT {
                self.aborted.pop_front();
            }
            self.aborted.push_back(session);
        }
        let Some(s) = self.sessions.remove(&session) else {
            return;
        };
        let mut parts: Vec<(Option<String>, Uuid)> = s.sealed;
        parts.extend(
            s.active
                .into_values()
                .flat_map(|a| a.holders.into_iter().map(move |h| (h, a.id))),
        );
        if parts.is_empty() {
            return;
        }
        let mut ids: Vec<Uuid> = parts.iter().map(|(_, id)| *id).collect();
        ids.sort();
        ids.dedup();
        self.sinks.taps.aborted(&ids);
        let (local, remote) = by_node(parts);
        if !remote.is_empty() {
            // For participants that ask later; presumed abort covers the rest.
            let rec = Record {
                kind: Kind::Abort,
                txn: session,
                coordinator: String::new(),
                partitions: ids,
                retired: Vec::new(),
            };
            if let Err(e) = crate::commit::append(&self.sinks.commits, rec).await {
                tracing::error!(error = %e, "recording an abort failed");
            }
        }
        if !local.is_empty() {
            let _ = self
                .sinks
                .archive
                .tell(DiscardPartitions(local.clone()))
                .await;
            let _ = self.sinks.index.tell(DiscardIndexes(local)).await;
        }
        if let Some(r) = self.remote.clone() {
            for (node, ids) in remote {
                // Long-running sessions prepared each partition as its own txn.
                let txns: Vec<(Uuid, Vec<Uuid>)> = if s.autocommit {
                    ids.iter().map(|id| (*id, vec![*id])).collect()
                } else {
                    vec![(session, ids)]
                };
                for (txn, ids) in txns {
                    if let Err(e) = r.abort(&node, txn, ids).await {
                        tracing::warn!(node = %node, error = %e, "a participant missed an abort; it learns the outcome when it returns");
                    }
                }
            }
        }
        tracing::info!(session = %session, "import aborted; its partitions are removed");
    }

    /// Whether `txn` is still being imported here (participants asking wait).
    fn in_flight(&self, txn: Uuid) -> bool {
        self.sessions.contains_key(&txn)
            || self.sessions.values().any(|s| {
                s.active.values().any(|a| a.id == txn)
                    || s.sealing.iter().any(|x| x.txn == txn)
                    || s.sealed.iter().any(|(_, id)| *id == txn)
            })
    }
}

/// Partitions split into this node's and each remote node's.
fn by_node(parts: Vec<(Option<String>, Uuid)>) -> (Vec<Uuid>, HashMap<String, Vec<Uuid>>) {
    let mut local = Vec::new();
    let mut remote: HashMap<String, Vec<Uuid>> = HashMap::new();
    for (n, id) in parts {
        match n {
            Some(n) => remote.entry(n).or_default().push(id),
            None => local.push(id),
        }
    }
    (local, remote)
}

impl Actor for Importer {
    type Args = Self;
    type Error = std::convert::Infallible;

    async fn on_start(state: Self, me: ActorRef<Self>) -> Result<Self, Self::Error> {
        // Partitions of long-running streams are sealed once they stop filling.
        let weak = me.downgrade();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(me) = weak.upgrade() else { break };
                if me.tell(Tick).await.is_err() {
                    break;
                }
            }
        });
        Ok(state)
    }
}

/// Opens a session; `autocommit` for long-running sources.
pub struct Open {
    pub session: SessionId,
    pub autocommit: bool,
}

impl Message<Open> for Importer {
    type Reply = ();

    async fn handle(&mut self, m: Open, _: &mut Context<Self, ()>) {
        self.sessions.entry(m.session).or_default().autocommit = m.autocommit;
    }
}

/// A batch of session `session` (told; failures surface at `Flush`). A session
/// that was not opened is opened as an ordinary (atomic) one.
pub struct Ingest {
    pub session: SessionId,
    pub batch: Batch,
    pub span: tracing::Span,
}

impl Message<Ingest> for Importer {
    type Reply = ();

    async fn handle(&mut self, m: Ingest, _: &mut Context<Self, ()>) {
        let Ingest {
            session,
            batch,
            span: parent,
        } = m;
        let partition_size = self.partition_size;
        if self.aborted.contains(&session) {
            return;
        }
        let s = self.sessions.entry(session).or_default();
        if s.failed.is_some() || batch.rows == 0 {
            return;
        }
        // One active partition per session holds every schema of the session's
        // stream: partitions hold several layouts.
        let fp = 0u64;
        let full = s
            .active
            .get(&fp)
            .is_some_and(|a| a.rows > 0 && a.rows + batch.rows > partition_size);
        if full {
            let id = s.active[&fp].id;
            self.seal_where(session, |a| a.id == id);
        }
        let needs_new = !self.sessions[&session].active.contains_key(&fp);
        let holders = if needs_new { self.place() } else { vec![] };
        let s = self.sessions.get_mut(&session).expect("opened above");
        let a = s.active.entry(fp).or_insert_with(|| ActivePartition {
            holders,
            id: Uuid::now_v7(),
            rows: 0,
            created: Instant::now(),
        });
        let (id, offset, holders) = (a.id, a.rows, a.holders.clone());
        a.rows += batch.rows;
        s.events += batch.rows as u64;
        let placed = holders
            .iter()
            .map(|h| h.as_deref().unwrap_or("local"))
            .collect::<Vec<_>>()
            .join(",");
        let span = tracing::info_span!(parent: &parent, "importer.ingest", partition = %id, rows = batch.rows, schema = %batch.schema.name, placed = %placed);
        let batch = Arc::new(batch);
        // Live exports see the batch now, before it is stored: they do not wait
        // for the partition to seal. If the import aborts, they get a marker.
        self.sinks.taps.offer(id, &batch);
        let remotes: Vec<String> = holders.iter().flatten().cloned().collect();
        if let (false, Some(remote)) = (remotes.is_empty(), self.remote.clone()) {
            use tracing::Instrument;
            // Remote stores acknowledge each batch, every replica at once; order
            // within a partition holds because the importer handles one batch at
            // a time.
            let stores = remotes.iter().map(|node| {
                let (remote, batch) = (remote.clone(), batch.clone());
                async move {
                    remote
                        .store(node, id, offset, batch)
                        .await
                        .map_err(|e| format!("storing on node {node}: {e}"))
                }
            });
            let results = futures::future::join_all(stores)
                .instrument(span.clone())
                .await;
            if let Some(e) = results.into_iter().find_map(|r| r.err()) {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.failed.get_or_insert(e);
                }
                return;
            }
        }
        if !holders.contains(&None) {
            return;
        }
        let sent_a = self
            .sinks
            .archive
            .tell(Append {
                id,
                offset,
                batch: batch.clone(),
                span: span.clone(),
            })
            .await;
        let sent_i = self
            .sinks
            .index
            .tell(IndexBatch {
                id,
                archive: self.sinks.archive_name.clone(),
                offset,
                batch,
                span,
            })
            .await;
        if sent_a.is_err() || sent_i.is_err() {
            if let Some(s) = self.sessions.get_mut(&session) {
                s.failed
                    .get_or_insert("archive or index stopped during the import".into());
            }
        }
    }
}

/// Ends session `session`: seals what is left, and commits it (atomically unless
/// the session commits as it goes). Replies with the session's events once they
/// are durable and visible; on failure nothing of the session stays visible.
pub struct Flush(pub SessionId);

impl Message<Flush> for Importer {
    type Reply = Result<u64, String>;

    async fn handle(
        &mut self,
        Flush(session): Flush,
        _: &mut Context<Self, Self::Reply>,
    ) -> Self::Reply {
        if !self.sessions.contains_key(&session) {
            return Ok(0);
        }
        self.seal_where(session, |_| true);
        self.reap(session, true).await;
        let s = self.sessions.get_mut(&session).expect("checked above");
        if let Some(e) = s.failed.clone() {
            self.abort(session).await;
            return Err(e);
        }
        // A long-running session's partitions were committed one by one as `reap`
        // collected them, so nothing of it is left here.
        let parts = std::mem::take(&mut s.sealed);
        let events = s.events;
        match self.commit(session, parts).await {
            Ok(()) => {
                self.sessions.remove(&session);
                self.events += events;
                Ok(events)
            }
            Err(e) => {
                self.abort(session).await;
                Err(e)
            }
        }
    }
}

/// Drops session `session`: nothing of it that is not committed stays.
pub struct Abort(pub SessionId);

impl Message<Abort> for Importer {
    type Reply = ();

    async fn handle(&mut self, Abort(session): Abort, _: &mut Context<Self, ()>) {
        self.abort(session).await;
    }
}

/// Aborts every session (the importer is being killed).
pub struct AbortAll;

impl Message<AbortAll> for Importer {
    type Reply = usize;

    async fn handle(&mut self, _: AbortAll, _: &mut Context<Self, usize>) -> usize {
        let all: Vec<SessionId> = self.sessions.keys().copied().collect();
        for s in &all {
            self.abort(*s).await;
        }
        all.len()
    }
}

/// Whether transaction `txn` is still in flight here.
pub struct InFlight(pub Uuid);

impl Message<InFlight> for Importer {
    type Reply = bool;

    async fn handle(&mut self, m: InFlight, _: &mut Context<Self, bool>) -> bool {
        self.in_flight(m.0)
    }
}

struct Tick;

impl Message<Tick> for Importer {
    type Reply = ();

    async fn handle(&mut self, _: Tick, _: &mut Context<Self, ()>) {
        let timeout = self.partition_timeout;
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for session in ids {
            let autocommit = self.sessions[&session].autocommit;
            // Long-running sessions seal (and so commit) partitions that stopped
            // filling; atomic sessions keep theirs open until their flush.
            if autocommit {
                self.seal_where(session, |a| a.created.elapsed() >= timeout);
            }
            self.reap(session, false).await;
        }
    }
}

/// Opens a live tap (`export -c`/`-u`) between two batches, and answers with the
/// partitions this importer holds open: the rows they had before the tap are the
/// ones a unified export reads from history once those partitions commit.
pub struct OpenTap {
    pub owner: String,
    pub expr: crate::query::Expr,
}

impl Message<OpenTap> for Importer {
    type Reply = Result<(taps::TapId, Vec<(Uuid, u32)>), String>;

    async fn handle(&mut self, m: OpenTap, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let id = self.sinks.taps.open(&m.owner, m.expr)?;
        let mut open = Vec::new();
        for s in self.sessions.values() {
            open.extend(s.active.values().map(|a| (a.id, a.rows)));
            open.extend(s.sealing.iter().map(|x| (x.id, u32::MAX)));
            open.extend(s.sealed.iter().map(|(_, id)| (*id, u32::MAX)));
        }
        // Replicas list a partition once per holder.
        open.sort();
        open.dedup();
        Ok((id, open))
    }
}

/// Connects the importer to remote stores and sets its placement policy.
pub struct SetPlacement {
    pub placement: Placement,
    /// Holders per partition (`import.replicas`).
    pub replicas: usize,
    pub remote: Arc<dyn RemoteStore>,
}

impl Message<SetPlacement> for Importer {
    type Reply = ();

    async fn handle(&mut self, m: SetPlacement, _: &mut Context<Self, ()>) {
        self.placement = m.placement;
        self.replicas = m.replicas.max(1);
        self.remote = Some(m.remote);
    }
}

/// New archive and index actors (one was killed and spawned again).
pub struct Rebind {
    pub archive: ActorRef<Archive>,
    pub index: ActorRef<Index>,
}

impl Message<Rebind> for Importer {
    type Reply = ();

    async fn handle(&mut self, m: Rebind, _: &mut Context<Self, ()>) {
        self.sinks.archive = m.archive;
        self.sinks.index = m.index;
    }
}

/// Events committed by this importer, and sessions open, for `status`.
pub struct GetImporterStatus;

impl Message<GetImporterStatus> for Importer {
    type Reply = (u64, usize);

    async fn handle(
        &mut self,
        _: GetImporterStatus,
        _: &mut Context<Self, (u64, usize)>,
    ) -> (u64, usize) {
        (self.events, self.sessions.len())
    }
}
