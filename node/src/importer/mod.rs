//! The importer: receives batches from sources, assigns them to partitions (event ids
//! are partition id + row), and hands each to the archive and index that hold that
//! partition. An import is acknowledged by `Flush` only once both sealed it durably.

use crate::archive::actor::{Append, Seal};
use crate::archive::Archive;
use crate::data::Batch;
use crate::index::actor::{IndexBatch, SealIndex};
use crate::index::Index;
use kameo::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Where the partitions of this importer go. Pipelines are wired sink-first: the
/// importer is built with its downstream handles.
#[derive(Clone)]
pub struct Sinks {
    pub archive: ActorRef<Archive>,
    /// `<node>/<label>` of the archive, recorded in the catalog for fetches.
    pub archive_name: String,
    pub index: ActorRef<Index>,
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
    /// Makes partition `id` durable on `node`.
    async fn seal(&self, node: &str, id: Uuid) -> Result<(), String>;
    /// Members (other than this node) that run both an archive and an index.
    fn stores(&self) -> Vec<String>;
    /// This node's id.
    fn this_node(&self) -> String;
}

struct ActivePartition {
    /// `None`: the local sinks; `Some(node)`: a remote node.
    node: Option<String>,
    id: Uuid,
    rows: u32,
    created: Instant,
}

pub struct Importer {
    sinks: Sinks,
    placement: Placement,
    remote: Option<Arc<dyn RemoteStore>>,
    turn: usize,
    partition_size: u32,
    partition_timeout: Duration,
    active: HashMap<u64, ActivePartition>,
    events: u64,
    failed: Option<String>,
    sealing: Vec<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Importer {
    pub fn new(sinks: Sinks, partition_size: u32, partition_timeout: Duration) -> Self {
        Importer {
            sinks,
            placement: Placement::Local,
            remote: None,
            turn: 0,
            partition_size,
            partition_timeout,
            active: HashMap::new(),
            events: 0,
            failed: None,
            sealing: Vec::new(),
        }
    }

    /// Seals partition `id` on its archive and index; the returned task ends once
    /// both hold it durably. Callers need not wait for it before ingesting more.
    fn seal(&self, node: Option<String>, id: Uuid) -> tokio::task::JoinHandle<Result<(), String>> {
        if let (Some(node), Some(remote)) = (node, self.remote.clone()) {
            return tokio::spawn(async move { remote.seal(&node, id).await });
        }
        let (archive, index) = (self.sinks.archive.clone(), self.sinks.index.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let (a, i) = tokio::join!(archive.ask(Seal { id }), index.ask(SealIndex { id }));
            tracing::debug!(partition = %id, elapsed_ms = start.elapsed().as_millis() as u64, "sealed");
            a.map_err(|e| format!("archive: {e}"))?;
            i.map_err(|e| format!("index: {e}"))
        })
    }

    /// Picks the node for a new partition (`None` is this node).
    fn place(&mut self) -> Option<String> {
        let remote = self.remote.as_ref()?;
        match &self.placement {
            Placement::Local => None,
            Placement::Fixed(n) if *n == remote.this_node() => None,
            Placement::Fixed(n) => Some(n.clone()),
            Placement::RoundRobin => {
                let mut stores = remote.stores();
                stores.sort();
                self.turn += 1;
                let k = self.turn % (stores.len() + 1);
                (k > 0).then(|| stores[k - 1].clone())
            }
        }
    }

    /// Waits for every seal started so far.
    async fn await_seals(&mut self) -> Result<(), String> {
        let mut result = Ok(());
        for h in std::mem::take(&mut self.sealing) {
            let r = h
                .await
                .map_err(|e| format!("sealing task failed: {e}"))
                .and_then(|r| r);
            if let Err(e) = r {
                result = Err(e);
            }
        }
        result
    }
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

/// A batch from a source (told; failures surface at `Flush`).
pub struct Ingest(pub Batch, pub tracing::Span);

impl Message<Ingest> for Importer {
    type Reply = ();

    async fn handle(&mut self, Ingest(batch, parent): Ingest, _: &mut Context<Self, ()>) {
        if self.failed.is_some() || batch.rows == 0 {
            return;
        }
        let fp = batch.schema.fingerprint();
        let full = self
            .active
            .get(&fp)
            .is_some_and(|a| a.rows > 0 && a.rows + batch.rows > self.partition_size);
        if full {
            let a = self.active.remove(&fp).expect("checked above");
            let h = self.seal(a.node, a.id);
            self.sealing.push(h);
        }
        if !self.active.contains_key(&fp) {
            let node = self.place();
            self.active.insert(
                fp,
                ActivePartition {
                    node,
                    id: Uuid::now_v7(),
                    rows: 0,
                    created: Instant::now(),
                },
            );
        }
        let a = self.active.entry(fp).or_insert_with(|| ActivePartition {
            node: None,
            id: Uuid::now_v7(),
            rows: 0,
            created: Instant::now(),
        });
        let (id, offset, node) = (a.id, a.rows, a.node.clone());
        a.rows += batch.rows;
        self.events += batch.rows as u64;
        let span = tracing::info_span!(parent: &parent, "importer.ingest", partition = %id, rows = batch.rows, schema = %batch.schema.name, placed = node.as_deref().unwrap_or("local"));
        let batch = Arc::new(batch);
        if let (Some(node), Some(remote)) = (node, self.remote.clone()) {
            use tracing::Instrument;
            // Remote stores acknowledge each batch; order within a partition holds
            // because the importer handles one batch at a time.
            if let Err(e) = remote
                .store(&node, id, offset, batch)
                .instrument(span)
                .await
            {
                self.failed = Some(format!("storing on node {node}: {e}"));
            }
            return;
        }
        tracing::trace!(partition = %id, offset, rows = batch.rows, schema = %batch.schema.name, "importer.ingest");
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
            self.failed = Some("archive or index stopped during the import".into());
        }
    }
}

/// Seal every active partition; replies once all are durable.
pub struct Flush;

impl Message<Flush> for Importer {
    type Reply = Result<u64, String>;

    async fn handle(&mut self, _: Flush, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let parts: Vec<ActivePartition> = self.active.drain().map(|(_, a)| a).collect();
        for a in parts {
            let h = self.seal(a.node, a.id);
            self.sealing.push(h);
        }
        let result = self.await_seals().await;
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        result.map(|_| self.events)
    }
}

struct Tick;

impl Message<Tick> for Importer {
    type Reply = ();

    async fn handle(&mut self, _: Tick, _: &mut Context<Self, ()>) {
        let stale: Vec<u64> = self
            .active
            .iter()
            .filter(|(_, a)| a.created.elapsed() >= self.partition_timeout)
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            let a = self.active.remove(&k).expect("listed above");
            let h = self.seal(a.node, a.id);
            self.sealing.push(h);
        }
        // Reap finished seals so errors surface and handles do not pile up.
        let mut keep = Vec::new();
        for h in std::mem::take(&mut self.sealing) {
            if h.is_finished() {
                if let Ok(Err(e)) = h.await {
                    tracing::error!(error = %e, "sealing a partition failed");
                    self.failed = Some(e);
                }
            } else {
                keep.push(h);
            }
        }
        self.sealing = keep;
    }
}

/// Connects the importer to remote stores and sets its placement policy.
pub struct SetPlacement {
    pub placement: Placement,
    pub remote: Arc<dyn RemoteStore>,
}

impl Message<SetPlacement> for Importer {
    type Reply = ();

    async fn handle(&mut self, m: SetPlacement, _: &mut Context<Self, ()>) {
        self.placement = m.placement;
        self.remote = Some(m.remote);
    }
}
