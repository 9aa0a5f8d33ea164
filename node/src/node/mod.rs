//! The node: one per process. It owns the database directory, starts and stops
//! components (importer, archive, index, sources), and runs queries over them.
//! `vast -N` runs exactly this inside the CLI process.

pub mod access;
pub mod cluster;
pub mod lock;

use crate::archive::actor::{GetStatus, Retire};
use crate::archive::store::{ArchiveStore, Fetched, Selection};
use crate::archive::Archive;
use crate::commit::{CommitLog, Kind, Record};
use crate::importer::SessionId;
use crate::importer::{Importer, Sinks};
use crate::index::actor::{GetIndexStatus, RetireIndex};
use crate::index::Index;
use crate::query::exec;
use crate::query::Expr;
use crate::source::actor::{
    spawn_source, GetSourceStatus, ImportSummary, Source, SourceOptions, StopSource,
};
use crate::source::Reader;
use kameo::prelude::*;
use lock::DbLock;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Most rows a partition may have; peers' row numbers beyond it are refused.
pub const MAX_PARTITION_ROWS: u32 = 1 << 30;

/// What a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub id: String,
    pub db: PathBuf,
    pub components: Vec<String>,
    pub batch_size: usize,
    pub partition_size: u32,
    pub partition_timeout: Duration,
}

impl NodeOptions {
    pub fn from_config(c: &vast_config::Config) -> Self {
        NodeOptions {
            id: c.node_id.clone(),
            db: c.db_directory.clone(),
            components: c.components.clone(),
            batch_size: c.import.batch_size,
            partition_size: c.import.partition_size,
            partition_timeout: Duration::from_secs(c.import.partition_timeout),
        }
    }
}

/// What an importer is told about placement: the policy, replicas per
/// partition, and the remote stores.
type PlacementSetting = (
    crate::importer::Placement,
    usize,
    std::sync::Arc<dyn crate::importer::RemoteStore>,
);

/// Errors of node operations, as the CLI reports them.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("{0}")]
    Store(#[from] crate::durable::StoreError),
    #[error("node {node} has no {component}; its components are: {have}")]
    Missing {
        node: String,
        component: &'static str,
        have: String,
    },
    #[error("unknown component label {label:?} on node {node}; labels: {known}")]
    UnknownLabel {
        node: String,
        label: String,
        known: String,
    },
    #[error("{component} already runs on node {node}")]
    Duplicate {
        node: String,
        component: &'static str,
    },
    #[error("{0}")]
    Failed(String),
}

pub struct Node {
    pub id: String,
    opts: NodeOptions,
    _lock: DbLock,
    archive: Mutex<Option<ActorRef<Archive>>>,
    index: Mutex<Option<ActorRef<Index>>>,
    catalog: Mutex<Option<std::sync::Arc<std::sync::RwLock<crate::index::catalog::Catalog>>>>,
    /// What makes partitions visible; shared by the importer (which commits) and
    /// the data-plane service (participants of other nodes' imports).
    commits: std::sync::Arc<Mutex<CommitLog>>,
    importer: Mutex<Option<ActorRef<Importer>>>,
    /// Placement, replicas per partition and the remote store, for an importer
    /// spawned again.
    placement: Mutex<Option<PlacementSetting>>,
    sources: Mutex<BTreeMap<String, ActorRef<Source>>>,
    next_source: Mutex<usize>,
    /// Background compaction's figures, for `status`.
    compaction: std::sync::Arc<Mutex<crate::compactor::CompactionStatus>>,
    /// Continuous exports subscribed to this node's importer.
    taps: std::sync::Arc<crate::importer::taps::Taps>,
}

fn failed(e: impl std::fmt::Display) -> NodeError {
    NodeError::Failed(e.to_string())
}

/// Opens the commit log. A database from before commit records existed holds
/// only acknowledged partitions: they are committed once, as they are.
fn open_commits(db: &std::path::Path) -> Result<CommitLog, NodeError> {
    let fresh = !db.join("commits.log").exists();
    let mut log = CommitLog::open(db)?;
    if fresh {
        let existing: Vec<uuid::Uuid> = index_partitions(db).collect();
        if !existing.is_empty() {
            tracing::info!(
                partitions = existing.len(),
                "committing the partitions of a database written before commit records"
            );
            log.append(&Record {
                kind: Kind::Commit,
                txn: uuid::Uuid::nil(),
                coordinator: String::new(),
                partitions: existing,
                retired: Vec::new(),
            })?;
        }
    }
    Ok(log)
}

/// Ids of the partitions with an index directory in database `db`, committed or
/// not.
fn index_partitions(db: &std::path::Path) -> impl Iterator<Item = uuid::Uuid> {
    std::fs::read_dir(db.join("index"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
}

/// What a participant learns about a transaction from its coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    Aborted,
    /// Still being imported; ask again later.
    Pending,
}

impl Node {
    /// Locks the database and starts the configured components.
    pub async fn open(opts: NodeOptions) -> Result<Node, NodeError> {
        let holder = format!(
            "pid {} node {} since {}",
            std::process::id(),
            opts.id,
            crate::data::value::format_time(crate::data::value::now_nanos())
        );
        let lock = DbLock::acquire(&opts.db, &holder)?;
        let commits = open_commits(&opts.db)?;
        let node = Node {
            id: opts.id.clone(),
            opts: opts.clone(),
            _lock: lock,
            archive: Mutex::new(None),
            index: Mutex::new(None),
            catalog: Mutex::new(None),
            commits: std::sync::Arc::new(Mutex::new(commits)),
            importer: Mutex::new(None),
            placement: Mutex::new(None),
            sources: Mutex::new(BTreeMap::new()),
            next_source: Mutex::new(0),
            compaction: Default::default(),
            taps: Default::default(),
        };
        // Sink-first: the importer is built with its archive and index.
        for c in ["archive", "index", "importer"] {
            if opts.components.iter().any(|x| x == c) {
                node.spawn_component(c).await?;
            }
        }
        Ok(node)
    }

    pub fn options(&self) -> &NodeOptions {
        &self.opts
    }

    fn archive(&self) -> Option<ActorRef<Archive>> {
        self.archive.lock().expect("lock poisoned").clone()
    }
    fn index(&self) -> Option<ActorRef<Index>> {
        self.index.lock().expect("lock poisoned").clone()
    }
    fn importer(&self) -> Option<ActorRef<Importer>> {
        self.importer.lock().expect("lock poisoned").clone()
    }

    /// The archive and index, when both run here.
    pub(crate) fn storage(&self) -> Option<(ActorRef<Archive>, ActorRef<Index>)> {
        Some((self.archive()?, self.index()?))
    }

    /// The visible partitions of this node's index, when it has one.
    pub(crate) fn catalog_partitions(
        &self,
    ) -> Option<Vec<std::sync::Arc<crate::index::partition::PartitionIndex>>> {
        let catalog = self.catalog.lock().expect("lock poisoned").clone()?;
        let c = catalog.read().expect("catalog lock poisoned");
        Some(c.partitions.clone())
    }

    pub(crate) fn commit_log(&self) -> &std::sync::Arc<Mutex<CommitLog>> {
        &self.commits
    }

    /// Starts background compaction (a long-running node; embedded commands are
    /// too short-lived to compact).
    pub fn start_compaction(
        self: &std::sync::Arc<Self>,
        opts: crate::compactor::CompactionOptions,
    ) {
        crate::compactor::spawn(
            std::sync::Arc::downgrade(self),
            opts,
            self.compaction.clone(),
        );
    }

    /// Labels of running components, e.g. `archive`, `index`, `importer`, `source-0`.
    pub fn labels(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.importer().is_some() {
            v.push("importer".to_string());
        }
        if self.archive().is_some() {
            v.push("archive".to_string());
        }
        if self.index().is_some() {
            v.push("index".to_string());
        }
        v.extend(self.sources.lock().expect("lock poisoned").keys().cloned());
        v
    }

    fn missing(&self, component: &'static str) -> NodeError {
        let have = self.labels();
        NodeError::Missing {
            node: self.id.clone(),
            component,
            have: if have.is_empty() {
                "none (a bare node)".into()
            } else {
                have.join(", ")
            },
        }
    }

    /// Starts an archive, index or importer.
    pub async fn spawn_component(&self, which: &str) -> Result<String, NodeError> {
        match which {
            "archive" => {
                if self.archive().is_some() {
                    return Err(NodeError::Duplicate {
                        node: self.id.clone(),
                        component: "archive",
                    });
                }
                let state = self.commits.lock().expect("lock poisoned").state().clone();
                let store = ArchiveStore::open(&self.opts.db.join("archive"), &state)?;
                let a = Archive::spawn_with_mailbox(Archive::new(store), mailbox::bounded(16));
                *self.archive.lock().expect("lock poisoned") = Some(a);
            }
            "index" => {
                if self.index().is_some() {
                    return Err(NodeError::Duplicate {
                        node: self.id.clone(),
                        component: "index",
                    });
                }
                let state = self.commits.lock().expect("lock poisoned").state().clone();
                let idx = Index::open(self.opts.db.join("index"), &state)?;
                *self.catalog.lock().expect("lock poisoned") = Some(idx.catalog());
                let i = Index::spawn_with_mailbox(idx, mailbox::bounded(16));
                *self.index.lock().expect("lock poisoned") = Some(i);
            }
            "importer" => {
                if self.importer().is_some() {
                    return Err(NodeError::Duplicate {
                        node: self.id.clone(),
                        component: "importer",
                    });
                }
                let archive = self.archive().ok_or_else(|| self.missing("archive"))?;
                let index = self.index().ok_or_else(|| self.missing("index"))?;
                let sinks = Sinks {
                    archive,
                    archive_name: format!("{}/archive", self.id),
                    index,
                    commits: self.commits.clone(),
                    taps: self.taps.clone(),
                };
                let imp = Importer::spawn_with_mailbox(
                    Importer::new(sinks, self.opts.partition_size, self.opts.partition_timeout),
                    mailbox::bounded(4),
                );
                self.apply_placement(&imp).await?;
                *self.importer.lock().expect("lock poisoned") = Some(imp);
            }
            other => {
                return Err(failed(format!(
                    "unknown component {other:?} (known: archive, index, importer, source)"
                )))
            }
        }
        // An importer that outlived a killed archive or index writes to the new one.
        if which != "importer" {
            if let (Some(imp), Some(archive), Some(index)) =
                (self.importer(), self.archive(), self.index())
            {
                imp.ask(crate::importer::Rebind { archive, index })
                    .await
                    .map_err(failed)?;
            }
        }
        Ok(which.to_string())
    }

    /// Starts a source in this node; returns its label and the task that finishes
    /// with the import summary.
    pub fn spawn_source(
        &self,
        reader: Box<dyn Reader>,
        options: SourceOptions,
    ) -> Result<
        (
            String,
            tokio::task::JoinHandle<Result<ImportSummary, String>>,
        ),
        NodeError,
    > {
        let importer = self.importer().ok_or_else(|| self.missing("importer"))?;
        let label = {
            let mut n = self.next_source.lock().expect("lock poisoned");
            let l = format!("source-{n}");
            *n += 1;
            l
        };
        let (actor, task) = spawn_source(reader, options, importer);
        self.sources
            .lock()
            .expect("lock poisoned")
            .insert(label.clone(), actor);
        Ok((label, task))
    }

    /// Imports everything `reader` yields and returns once it is durable.
    pub async fn import(
        &self,
        reader: Box<dyn Reader>,
        options: SourceOptions,
    ) -> Result<ImportSummary, NodeError> {
        let (label, task) = self.spawn_source(reader, options)?;
        let res = task.await.map_err(failed)?;
        if let Some(s) = self.sources.lock().expect("lock poisoned").remove(&label) {
            s.kill();
        }
        res.map_err(NodeError::Failed)
    }

    /// Stops a component: a source stops reading; an archive or index refuses new
    /// data but keeps what it has queryable; an importer stops.
    pub async fn kill(&self, label: &str) -> Result<(), NodeError> {
        let source = self.sources.lock().expect("lock poisoned").remove(label);
        if let Some(s) = source {
            let _ = s.ask(StopSource).await;
            // Return once the source stopped and flushed what it read, so nothing
            // arrives after `kill` returns (bounded: a stuck reader is left behind).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                match s.ask(GetSourceStatus).await {
                    Ok(st) if !st.done => tokio::time::sleep(Duration::from_millis(20)).await,
                    _ => break,
                }
            }
            s.kill();
            return Ok(());
        }
        // Killing an archive, index or importer stops it; what it stored stays on
        // disk and comes back when it is spawned again. Meanwhile queries report
        // this node's data as unavailable.
        match label {
            "archive" => {
                // The guard must be gone before `missing` locks it again.
                let taken = self.archive.lock().expect("lock poisoned").take();
                let a = taken.ok_or_else(|| self.missing("archive"))?;
                a.ask(Retire).await.map_err(failed)?;
                let _ = a.stop_gracefully().await;
                a.wait_for_shutdown().await;
            }
            "index" => {
                // The guard must be gone before `missing` locks it again.
                let taken = self.index.lock().expect("lock poisoned").take();
                let i = taken.ok_or_else(|| self.missing("index"))?;
                *self.catalog.lock().expect("lock poisoned") = None;
                i.ask(RetireIndex).await.map_err(failed)?;
                let _ = i.stop_gracefully().await;
                i.wait_for_shutdown().await;
            }
            "importer" => {
                // The guard must be gone before `missing` locks it again.
                let taken = self.importer.lock().expect("lock poisoned").take();
                let i = taken.ok_or_else(|| self.missing("importer"))?;
                // Open imports fail: nothing of them stays.
                let _ = i.ask(crate::importer::AbortAll).await;
                let _ = i.stop_gracefully().await;
                i.wait_for_shutdown().await;
            }
            _ => {
                return Err(NodeError::UnknownLabel {
                    node: self.id.clone(),
                    label: label.to_string(),
                    known: self.labels().join(", "),
                })
            }
        }
        Ok(())
    }

    /// The index's catalog, for lookups that run beside the index actor.
    fn shared_catalog(
        &self,
    ) -> Result<std::sync::Arc<std::sync::RwLock<crate::index::catalog::Catalog>>, NodeError> {
        self.catalog
            .lock()
            .expect("lock poisoned")
            .clone()
            .ok_or_else(|| self.missing("index"))
    }

    fn query_parts(&self) -> Result<(ActorRef<Index>, ActorRef<Archive>), NodeError> {
        Ok((
            self.index().ok_or_else(|| self.missing("index"))?,
            self.archive().ok_or_else(|| self.missing("archive"))?,
        ))
    }

    /// The distinct schemas of this node's visible data (none without an index).
    pub async fn known_schemas(&self) -> Vec<crate::data::Schema> {
        match self.index() {
            Some(i) => i
                .ask(crate::index::actor::KnownSchemas)
                .await
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Field and type extractors of `expr` that no schema on this node has.
    pub async fn unknown_extractors(&self, expr: &Expr) -> Vec<String> {
        crate::query::resolve::unknown_extractors(expr, &self.known_schemas().await)
    }

    /// Counts matching events; with `estimate`, from the index alone (an upper bound).
    pub async fn count(&self, expr: Expr, estimate: bool) -> Result<u64, NodeError> {
        let (index, archive) = self.query_parts()?;
        exec::count(&index, &archive, expr, estimate)
            .await
            .map_err(NodeError::Failed)
    }

    /// Streams matching events to `sink` in import order; stops after `limit`.
    pub async fn export(
        &self,
        expr: Expr,
        limit: Option<u64>,
        sink: impl FnMut(&Selection) -> Result<(), String>,
    ) -> Result<u64, NodeError> {
        let (_, archive) = self.query_parts()?;
        let catalog = self.shared_catalog()?;
        let expr = std::sync::Arc::new(expr);
        let (tx, hits) = tokio::sync::mpsc::unbounded_channel();
        let (lookup_expr, span) = (expr.clone(), tracing::debug_span!("index.lookup"));
        tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            crate::index::actor::lookup_catalog_each(&catalog, &lookup_expr, &tx);
        });
        exec::export(hits, &archive, expr, limit, sink)
            .await
            .map_err(NodeError::Failed)
    }

    /// The live taps of this node (continuous exports subscribed here).
    pub fn taps(&self) -> &std::sync::Arc<crate::importer::taps::Taps> {
        &self.taps
    }

    /// Opens a live tap for `owner` on this node's importer; answers with the
    /// partitions the importer held open at that moment and their rows so far.
    /// Without an importer the tap still opens: one spawned later feeds it.
    pub async fn live_open(
        &self,
        owner: &str,
        expr: Expr,
    ) -> Result<(crate::importer::taps::TapId, Vec<(uuid::Uuid, u32)>), NodeError> {
        match self.importer() {
            Some(imp) => imp
                .ask(crate::importer::OpenTap {
                    owner: owner.to_string(),
                    expr,
                })
                .await
                .map_err(|e| match e {
                    SendError::HandlerError(e) => NodeError::Failed(e),
                    e => failed(e),
                }),
            None => Ok((
                self.taps.open(owner, expr).map_err(NodeError::Failed)?,
                Vec::new(),
            )),
        }
    }

    /// Hands a batch of import session `session` to this node's importer
    /// (enqueued; durable and visible after `flush`).
    pub async fn ingest(
        &self,
        session: SessionId,
        batch: crate::data::Batch,
    ) -> Result<(), NodeError> {
        let imp = self.importer().ok_or_else(|| self.missing("importer"))?;
        imp.tell(crate::importer::Ingest {
            session,
            batch,
            span: tracing::Span::current(),
        })
        .await
        .map_err(failed)
    }

    /// Drops import session `session`: nothing of it stays.
    pub async fn abort(&self, session: SessionId) -> Result<(), NodeError> {
        let imp = self.importer().ok_or_else(|| self.missing("importer"))?;
        imp.ask(crate::importer::Abort(session))
            .await
            .map_err(failed)
    }

    /// Whether this node holds index partitions on disk (also while its index is
    /// stopped, when they are unavailable).
    pub fn has_index_data(&self) -> bool {
        index_partitions(&self.opts.db).next().is_some()
    }

    /// Records that partition `id` is sealed here for `coordinator`'s transaction
    /// `txn` (a participant's first phase); it stays invisible until committed.
    pub async fn seal_prepared(
        &self,
        id: uuid::Uuid,
        txn: uuid::Uuid,
        coordinator: &str,
    ) -> Result<(), NodeError> {
        let (_, archive) = self.query_parts()?;
        // Whether it is held here is the archive's to say: the log also lists
        // partitions this node coordinated onto other members.
        let known = {
            let log = self.commits.lock().expect("lock poisoned");
            log.state().prepared.contains_key(&id)
        };
        if known
            || archive
                .ask(crate::archive::actor::IsSealed(id))
                .await
                .map_err(failed)?
        {
            return Err(failed(format!(
                "partition {id} is already sealed here; sealed partitions are never sealed again"
            )));
        }
        if let Err(e) = self.seal(id).await {
            // Nothing of a partition that failed to seal stays, in the archive or
            // the index, so the sender may send it again from its first row.
            self.discard(vec![id]).await;
            return Err(e);
        }
        let rec = Record {
            kind: Kind::Prepare,
            txn,
            coordinator: coordinator.to_string(),
            partitions: vec![id],
            retired: Vec::new(),
        };
        crate::commit::append(&self.commits, rec).await?;
        Ok(())
    }

    /// A coordinator's decision reached this participant: make `ids` visible.
    pub async fn commit_prepared(
        &self,
        txn: uuid::Uuid,
        coordinator: &str,
        ids: Vec<uuid::Uuid>,
    ) -> Result<(), NodeError> {
        self.check_prepared(txn, coordinator, &ids, true)?;
        let rec = Record {
            kind: Kind::Commit,
            txn,
            coordinator: coordinator.to_string(),
            partitions: ids.clone(),
            retired: Vec::new(),
        };
        crate::commit::append(&self.commits, rec).await?;
        let index = self.index().ok_or_else(|| self.missing("index"))?;
        index
            .ask(crate::index::actor::Publish { ids })
            .await
            .map_err(failed)
    }

    /// A coordinator's abort reached this participant: remove `ids`.
    pub async fn abort_prepared(
        &self,
        txn: uuid::Uuid,
        coordinator: &str,
        ids: Vec<uuid::Uuid>,
    ) -> Result<(), NodeError> {
        // Committed partitions are refused here: an abort never removes them.
        self.check_prepared(txn, coordinator, &ids, false)?;
        let rec = Record {
            kind: Kind::Abort,
            txn,
            coordinator: coordinator.to_string(),
            partitions: ids.clone(),
            retired: Vec::new(),
        };
        crate::commit::append(&self.commits, rec).await?;
        self.discard(ids).await;
        Ok(())
    }

    /// Removes uncommitted partitions from this node's archive and index, written
    /// or not, sealed or not (the index refuses to drop a committed one).
    pub(crate) async fn discard(&self, ids: Vec<uuid::Uuid>) {
        if let Some(a) = self.archive() {
            let _ = a
                .tell(crate::archive::actor::DiscardPartitions(ids.clone()))
                .await;
        }
        if let Some(i) = self.index() {
            let _ = i.tell(crate::index::actor::DiscardIndexes(ids)).await;
        }
    }

    /// Only the coordinator that prepared a partition for a transaction decides it
    /// (a commit repeated is fine; an abort never reaches a committed partition).
    fn check_prepared(
        &self,
        txn: uuid::Uuid,
        coordinator: &str,
        ids: &[uuid::Uuid],
        committed_ok: bool,
    ) -> Result<(), NodeError> {
        let log = self.commits.lock().expect("lock poisoned");
        for id in ids {
            let ok = (committed_ok && log.state().committed.contains(id))
                || log
                    .state()
                    .prepared
                    .get(id)
                    .is_some_and(|(t, c)| *t == txn && c == coordinator);
            if !ok {
                return Err(failed(format!(
                    "partition {id} is not prepared here for transaction {txn} of node {coordinator}"
                )));
            }
        }
        Ok(())
    }

    /// Partitions sealed here for other nodes' transactions whose outcome is not
    /// known yet: (txn, coordinator) -> partitions.
    pub fn pending_transactions(&self) -> Vec<(uuid::Uuid, String, Vec<uuid::Uuid>)> {
        let log = self.commits.lock().expect("lock poisoned");
        let mut by: BTreeMap<(uuid::Uuid, String), Vec<uuid::Uuid>> = BTreeMap::new();
        for (p, (t, c)) in &log.state().prepared {
            by.entry((*t, c.clone())).or_default().push(*p);
        }
        by.into_iter().map(|((t, c), ps)| (t, c, ps)).collect()
    }

    /// The outcome of transaction `txn` as its coordinator (this node) knows it;
    /// unknown and not in flight means aborted (presumed abort).
    pub async fn outcome(&self, txn: uuid::Uuid) -> Outcome {
        {
            let log = self.commits.lock().expect("lock poisoned");
            if log.state().committed_txns.contains(&txn) {
                return Outcome::Committed;
            }
            if log.state().aborted_txns.contains(&txn) {
                return Outcome::Aborted;
            }
        }
        if let Some(imp) = self.importer() {
            if imp
                .ask(crate::importer::InFlight(txn))
                .await
                .unwrap_or(false)
            {
                return Outcome::Pending;
            }
        }
        Outcome::Aborted
    }

    /// Stores a batch of a partition placed on this node by another node's importer.
    pub async fn store(
        &self,
        id: uuid::Uuid,
        offset: u32,
        batch: crate::data::Batch,
    ) -> Result<(), NodeError> {
        let (index, archive) = self.query_parts()?;
        // Peer-supplied: row numbers stay far from overflow, and a sealed
        // partition is never written again.
        if offset
            .checked_add(batch.rows)
            .is_none_or(|end| end > MAX_PARTITION_ROWS)
        {
            return Err(failed(format!(
                "rows {offset}+{} of partition {id} are out of range (limit {MAX_PARTITION_ROWS})",
                batch.rows
            )));
        }
        if archive
            .ask(crate::archive::actor::IsSealed(id))
            .await
            .map_err(failed)?
        {
            return Err(failed(format!(
                "partition {id} is sealed; sealed partitions are never rewritten"
            )));
        }
        let batch = std::sync::Arc::new(batch);
        archive
            .tell(crate::archive::actor::Append {
                id,
                offset,
                batch: batch.clone(),
                span: tracing::Span::current(),
            })
            .await
            .map_err(failed)?;
        index
            .tell(crate::index::actor::IndexBatch {
                id,
                archive: format!("{}/archive", self.id),
                offset,
                batch,
                span: tracing::Span::current(),
            })
            .await
            .map_err(failed)
    }

    /// Seals a partition placed on this node.
    pub async fn seal(&self, id: uuid::Uuid) -> Result<(), NodeError> {
        let (index, archive) = self.query_parts()?;
        // Both at once: the archive's part is mostly waiting for fsync, the
        // index's mostly CPU, and the last seal of an import is on its critical
        // path. Neither is visible before the prepare record that follows, and
        // a failure of either discards both (`seal_prepared`).
        let (a, i) = tokio::join!(
            archive.ask(crate::archive::actor::Seal { id }),
            index.ask(crate::index::actor::SealIndex { id }),
        );
        a.map_err(failed)?;
        i.map_err(failed)
    }

    /// Sets where this node's importer places partitions.
    pub async fn set_placement(
        &self,
        placement: crate::importer::Placement,
        replicas: usize,
        remote: std::sync::Arc<dyn crate::importer::RemoteStore>,
    ) -> Result<(), NodeError> {
        *self.placement.lock().expect("lock poisoned") = Some((placement, replicas, remote));
        if let Some(imp) = self.importer() {
            self.apply_placement(&imp).await?;
        }
        Ok(())
    }

    /// Tells importer `imp` the placement last set, if any.
    async fn apply_placement(&self, imp: &ActorRef<Importer>) -> Result<(), NodeError> {
        let setting = self.placement.lock().expect("lock poisoned").clone();
        if let Some((placement, replicas, remote)) = setting {
            imp.ask(crate::importer::SetPlacement {
                placement,
                replicas,
                remote,
            })
            .await
            .map_err(failed)?;
        }
        Ok(())
    }

    /// Ends import session `session`: durable and visible, all of it or nothing.
    /// Returns the session's event count.
    pub async fn flush(&self, session: SessionId) -> Result<u64, NodeError> {
        let imp = self.importer().ok_or_else(|| self.missing("importer"))?;
        imp.ask(crate::importer::Flush(session))
            .await
            .map_err(|e| NodeError::Failed(format!("import not durable: {e}")))
    }

    /// Candidates of `expr` in this node's index, in wire form.
    #[tracing::instrument(name = "index.lookup", skip_all, fields(node = %self.id))]
    pub async fn lookup(&self, expr: Expr) -> Result<Vec<crate::proto::WireHits>, NodeError> {
        let catalog = self.shared_catalog()?;
        let span = tracing::Span::current();
        let hits = tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            crate::index::actor::lookup_catalog(&catalog, &expr)
        })
        .await
        .map_err(failed)?
        .map_err(NodeError::Failed)?;
        Ok(hits
            .into_iter()
            .map(|h| {
                let mut sure = Vec::new();
                let mut maybe = Vec::new();
                h.hits
                    .sure
                    .serialize_into(&mut sure)
                    .expect("in-memory write");
                h.hits
                    .maybe
                    .serialize_into(&mut maybe)
                    .expect("in-memory write");
                crate::proto::WireHits {
                    partition: h.partition.meta.id,
                    schema: h.partition.meta.schema_names(),
                    // A partition's archive and index always live on the same node:
                    // name it as it is called now, so a renamed node still serves.
                    archive: format!("{}/archive", self.id),
                    sure,
                    maybe,
                }
            })
            .collect())
    }

    /// Rows of partition `id` in this node's archive, from row `from_row` on, one
    /// page of about `max_bytes` at most.
    #[tracing::instrument(name = "archive.fetch", skip_all, fields(node = %self.id, partition = %id))]
    #[allow(clippy::too_many_arguments)]
    pub async fn fetch(
        &self,
        id: uuid::Uuid,
        sure: roaring::RoaringBitmap,
        maybe: roaring::RoaringBitmap,
        expr: Expr,
        limit: Option<u64>,
        from_row: u32,
        max_bytes: usize,
    ) -> Result<Fetched, NodeError> {
        let archive = self.archive().ok_or_else(|| self.missing("archive"))?;
        archive
            .ask(crate::archive::actor::Fetch {
                id,
                sure,
                maybe,
                expr: std::sync::Arc::new(expr),
                limit,
                from_row,
                max_bytes,
            })
            .await
            .map_err(failed)
    }

    /// The node's status as JSON: schemas with event counts, partitions, bytes.
    pub async fn status(&self, detailed: bool) -> Result<serde_json::Value, NodeError> {
        let mut out = serde_json::Map::new();
        out.insert("node".into(), json!(self.id));
        out.insert(
            "db-directory".into(),
            json!(self.opts.db.display().to_string()),
        );
        out.insert("components".into(), json!(self.labels()));
        let mut total_bytes = 0u64;
        if let Some(i) = self.index() {
            let s = i.ask(GetIndexStatus).await.map_err(failed)?;
            let mut schemas = serde_json::Map::new();
            let mut events = 0;
            for (name, ev, parts) in &s.schemas {
                events += ev;
                schemas.insert(name.clone(), json!({"events": ev, "partitions": parts}));
            }
            total_bytes += s.index_bytes;
            out.insert("events".into(), json!(events));
            out.insert("partitions".into(), json!(s.partitions));
            out.insert("schemas".into(), serde_json::Value::Object(schemas));
            out.insert(
                "index".into(),
                json!({
                    "bytes": s.index_bytes,
                    "building": s.building,
                    "retired": s.retired,
                    "corrupt": s.corrupt.iter().map(|(p, e)| json!({"path": p, "error": e})).collect::<Vec<_>>(),
                }),
            );
        }
        if let Some(a) = self.archive() {
            let s = a.ask(GetStatus).await.map_err(failed)?;
            total_bytes += s.disk_bytes;
            out.insert(
                "archive".into(),
                json!({"bytes": s.disk_bytes, "active-partitions": s.active_partitions, "retired": s.retired}),
            );
        }
        out.insert("bytes-on-disk".into(), json!(total_bytes));
        let compaction = self.compaction.lock().expect("lock poisoned").clone();
        out.insert("compaction".into(), json!(compaction));
        // Continuous exports following this node's importer.
        out.insert("live-taps".into(), json!(self.taps.len()));
        if detailed {
            let sources: Vec<(String, ActorRef<Source>)> = self
                .sources
                .lock()
                .expect("lock poisoned")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut m = serde_json::Map::new();
            for (label, s) in sources {
                if let Ok(st) = s.ask(GetSourceStatus).await {
                    m.insert(
                        label,
                        json!({"input": st.description, "format": st.format, "events": st.events,
                               "skipped": st.skipped, "done": st.done, "seconds": st.seconds, "error": st.error,
                               "counters": st.counters.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>()}),
                    );
                }
            }
            out.insert("sources".into(), serde_json::Value::Object(m));
            out.insert("live".into(), json!(self.taps.describe()));
        }
        Ok(serde_json::Value::Object(out))
    }

    /// Stops every component (flushing the importer first) and releases the database.
    pub async fn shutdown(self) {
        self.stop_components().await;
    }

    /// Stops every component, flushing the importer first.
    pub async fn stop_components(&self) {
        let sources: Vec<ActorRef<Source>> =
            std::mem::take(&mut *self.sources.lock().expect("lock poisoned"))
                .into_values()
                .collect();
        for s in sources {
            let _ = s.ask(StopSource).await;
            s.kill();
        }
        let importer = self.importer.lock().expect("lock poisoned").take();
        if let Some(i) = importer {
            // Imports still open at shutdown never completed: nothing of them stays.
            let _ = i.ask(crate::importer::AbortAll).await;
            let _ = i.stop_gracefully().await;
            i.wait_for_shutdown().await;
        }
        let archive = self.archive.lock().expect("lock poisoned").take();
        if let Some(a) = archive {
            let _ = a.stop_gracefully().await;
            a.wait_for_shutdown().await;
        }
        let index = self.index.lock().expect("lock poisoned").take();
        if let Some(i) = index {
            let _ = i.stop_gracefully().await;
            i.wait_for_shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests;
