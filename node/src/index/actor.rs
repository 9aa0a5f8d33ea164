//! The index actor: builds partition indexes as batches arrive, seals them into the
//! catalog, and answers lookups with per-partition candidates.

use super::catalog::{Catalog, PartitionHits};
use super::partition::{PartitionBuilder, PartitionIndex};
use crate::data::Batch;
use crate::query::Expr;
use kameo::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

pub struct Index {
    dir: PathBuf,
    /// Shared with the node so lookups do not queue behind batches being indexed.
    catalog: Arc<RwLock<Catalog>>,
    building: HashMap<Uuid, PartitionBuilder>,
    /// Sealed and durable, waiting for their commit to become visible.
    sealed: HashMap<Uuid, PartitionIndex>,
    /// The first failure of each partition being built, reported by its seal.
    failed: HashMap<Uuid, String>,
    /// The most keys each column's table held in the last partition of each schema,
    /// which the next one's key tables expect.
    key_counts: crate::index::partition::KeyCounts,
    retired: bool,
}

/// Schemas whose key counts are kept; past it the counts start over (they
/// only save rehashing).
const KEY_COUNT_SCHEMAS: usize = 1024;

impl Index {
    /// Remembers partitions' key counts for the next partitions' tables; past
    /// `KEY_COUNT_SCHEMAS` schemas they start over.
    fn note_key_counts(&mut self, counts: impl IntoIterator<Item = (u64, Vec<u32>)>) {
        if self.key_counts.len() >= KEY_COUNT_SCHEMAS {
            self.key_counts.clear();
        }
        self.key_counts.extend(counts);
    }

    /// Opens the catalog under `dir` with the committed partitions of `commits`.
    pub fn open(
        dir: PathBuf,
        commits: &crate::commit::State,
    ) -> Result<Self, crate::durable::StoreError> {
        let (catalog, pending) = Catalog::open(&dir, commits)?;
        if !pending.is_empty() {
            tracing::info!(
                partitions = pending.len(),
                "partitions prepared for other nodes' imports wait for their outcome"
            );
        }
        let catalog = Arc::new(RwLock::new(catalog));
        Ok(Index {
            dir,
            catalog,
            building: HashMap::new(),
            sealed: HashMap::new(),
            failed: HashMap::new(),
            key_counts: Default::default(),
            retired: false,
        })
    }
}

impl Index {
    /// The catalog, for lookups that run beside the actor.
    pub fn catalog(&self) -> Arc<RwLock<Catalog>> {
        self.catalog.clone()
    }
}

/// Lookup on a shared catalog, as the `Lookup` message does but without waiting for
/// the index actor's mailbox.
pub fn lookup_catalog(
    catalog: &RwLock<Catalog>,
    expr: &Expr,
) -> Result<Vec<PartitionHits>, String> {
    let catalog = catalog.read().expect("catalog lock poisoned");
    usable(&catalog)?;
    catalog.lookup(expr).map_err(|e| e.to_string())
}

/// Lookup on a shared catalog, each partition's candidates sent on `tx` as they
/// are known (an error, too, ends the stream); stops when the receiver is gone.
pub fn lookup_catalog_each(
    catalog: &RwLock<Catalog>,
    expr: &Expr,
    tx: &tokio::sync::mpsc::UnboundedSender<Result<PartitionHits, String>>,
) {
    let catalog = catalog.read().expect("catalog lock poisoned");
    let res = usable(&catalog).and_then(|()| {
        catalog
            .lookup_each(expr, |h| tx.send(Ok(h)).is_ok())
            .map_err(|e| e.to_string())
    });
    if let Err(e) = res {
        let _ = tx.send(Err(e));
    }
}

/// Queries refuse a catalog with an unusable partition: its answer would
/// silently miss that partition's events.
fn usable(catalog: &Catalog) -> Result<(), String> {
    match catalog.corrupt.first() {
        Some(c) => Err(format!(
            "partition {} is unusable: {}",
            c.dir.display(),
            c.error
        )),
        None => Ok(()),
    }
}

impl Actor for Index {
    type Args = Self;
    type Error = std::convert::Infallible;

    async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Self::Error> {
        Ok(state)
    }
}

/// Index a batch of partition `id` (whose data lives in `archive`) at row `offset`.
pub struct IndexBatch {
    pub id: Uuid,
    pub archive: String,
    pub offset: u32,
    pub batch: Arc<Batch>,
    /// The importer's span, parent of the index's.
    pub span: tracing::Span,
}

impl Message<IndexBatch> for Index {
    type Reply = ();

    async fn handle(&mut self, m: IndexBatch, _: &mut Context<Self, ()>) {
        if self.failed.contains_key(&m.id) {
            return;
        }
        if self.retired {
            self.failed
                .insert(m.id, "index was killed and refuses new data".into());
            return;
        }
        if !self.building.contains_key(&m.id) && self.dir.join(m.id.to_string()).exists() {
            self.failed.insert(
                m.id,
                format!(
                    "partition {} is sealed; sealed partitions are never rewritten",
                    m.id
                ),
            );
            return;
        }
        let _span = tracing::info_span!(parent: &m.span, "index.add", partition = %m.id, rows = m.batch.rows, schema = %m.batch.schema.name).entered();
        if !self.building.contains_key(&m.id) {
            // The partition before is usually full but not yet sealed: its
            // counts are the freshest.
            let building: Vec<_> = self
                .building
                .values()
                .flat_map(|b| b.key_counts())
                .collect();
            self.note_key_counts(building);
            let b = PartitionBuilder::new(m.id, m.archive).expecting(&self.key_counts);
            self.building.insert(m.id, b);
        }
        let b = self.building.get_mut(&m.id).expect("inserted above");
        // Rows arrive in order, as in the archive: a batch sent twice or out of
        // place would index rows under the wrong numbers.
        if m.offset != b.rows() {
            let e = format!(
                "a batch of partition {} starts at row {}, but the partition holds {} rows",
                m.id,
                m.offset,
                b.rows()
            );
            self.building.remove(&m.id);
            self.failed.insert(m.id, e);
            return;
        }
        b.add(&m.batch, m.offset);
    }
}

/// Seal partition `id`: write its index and add it to the catalog.
pub struct SealIndex {
    pub id: Uuid,
}

impl Message<SealIndex> for Index {
    type Reply = Result<(), String>;

    async fn handle(&mut self, m: SealIndex, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        if let Some(e) = self.failed.remove(&m.id) {
            self.building.remove(&m.id);
            return Err(e);
        }
        let Some(b) = self.building.remove(&m.id) else {
            return Ok(());
        };
        let _span =
            tracing::debug_span!("index.seal", partition = %m.id, rows = b.rows()).entered();
        self.note_key_counts(b.key_counts());
        let p = b.write(&self.dir).map_err(|e| e.to_string())?;
        self.sealed.insert(m.id, p);
        Ok(())
    }
}

/// Make committed partitions visible: sealed ones from memory, ones prepared
/// before a restart from disk.
pub struct Publish {
    pub ids: Vec<Uuid>,
}

impl Message<Publish> for Index {
    type Reply = Result<(), String>;

    async fn handle(&mut self, m: Publish, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let mut cat = self.catalog.write().expect("catalog lock poisoned");
        for id in m.ids {
            if cat.partitions.iter().any(|p| p.meta.uuid() == id) {
                continue;
            }
            match self.sealed.remove(&id) {
                Some(p) => cat.add(p),
                None => {
                    let dir = self.dir.join(id.to_string());
                    if dir.is_dir() {
                        cat.add(PartitionIndex::open(&dir).map_err(|e| e.to_string())?);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Make a merged partition visible in place of the partitions it replaces, in one
/// step under the catalog's write lock (compaction; the `Replace` record is
/// already durable).
pub struct Swap {
    pub add: Uuid,
    pub remove: Vec<Uuid>,
}

impl Message<Swap> for Index {
    type Reply = Result<(), String>;

    async fn handle(&mut self, m: Swap, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let p = match self.sealed.remove(&m.add) {
            Some(p) => p,
            None => PartitionIndex::open(&self.dir.join(m.add.to_string()))
                .map_err(|e| e.to_string())?,
        };
        let mut cat = self.catalog.write().expect("catalog lock poisoned");
        if cat.contains(m.add) {
            return Ok(());
        }
        cat.swap(p, &m.remove);
        Ok(())
    }
}

/// Remove uncommitted partitions (their import failed or was aborted). Committed
/// partitions are never touched.
pub struct DiscardIndexes(pub Vec<Uuid>);

impl Message<DiscardIndexes> for Index {
    type Reply = ();

    async fn handle(&mut self, m: DiscardIndexes, _: &mut Context<Self, ()>) {
        let cat = self.catalog.read().expect("catalog lock poisoned");
        for id in m.0 {
            if cat.partitions.iter().any(|p| p.meta.uuid() == id) {
                tracing::error!(partition = %id, "refusing to discard a committed partition");
                continue;
            }
            self.building.remove(&id);
            self.sealed.remove(&id);
            self.failed.remove(&id);
            let dir = self.dir.join(id.to_string());
            if dir.exists() {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(path = %dir.display(), error = %e, "removing an aborted partition failed; it is swept at the next open");
                }
            }
        }
    }
}

/// Candidates of `expr` in every sealed partition.
pub struct Lookup {
    pub expr: Arc<Expr>,
}

impl Message<Lookup> for Index {
    type Reply = Result<Vec<PartitionHits>, String>;

    async fn handle(&mut self, m: Lookup, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let _span = tracing::debug_span!("index.lookup").entered();
        lookup_catalog(&self.catalog, &m.expr)
    }
}

/// Stop taking new data (`vast kill index`); the catalog stays queryable.
pub struct RetireIndex;

impl Message<RetireIndex> for Index {
    type Reply = ();

    async fn handle(&mut self, _: RetireIndex, _: &mut Context<Self, ()>) {
        self.retired = true;
    }
}

/// Per-schema figures for `status`.
#[derive(Debug, Clone, Default, Reply)]
pub struct IndexStatus {
    pub partitions: usize,
    pub building: usize,
    /// (schema, events, partitions)
    pub schemas: Vec<(String, u64, usize)>,
    pub index_bytes: u64,
    pub corrupt: Vec<(String, String)>,
    pub retired: bool,
}

pub struct GetIndexStatus;

impl Message<GetIndexStatus> for Index {
    type Reply = IndexStatus;

    async fn handle(
        &mut self,
        _: GetIndexStatus,
        _: &mut Context<Self, IndexStatus>,
    ) -> IndexStatus {
        let mut schemas: std::collections::BTreeMap<String, (u64, usize)> = Default::default();
        let mut bytes = 0;
        let catalog = self.catalog.read().expect("catalog lock poisoned");
        for p in &catalog.partitions {
            let mut seen: Vec<&str> = Vec::new();
            for l in &p.meta.layouts {
                let e = schemas.entry(l.schema.name.clone()).or_default();
                e.0 += l.count as u64;
                // A partition counts once for each schema name it holds.
                if !seen.contains(&l.schema.name.as_str()) {
                    e.1 += 1;
                    seen.push(&l.schema.name);
                }
            }
            bytes += p.disk_bytes();
        }
        IndexStatus {
            partitions: catalog.partitions.len(),
            building: self.building.len(),
            schemas: schemas.into_iter().map(|(k, (e, p))| (k, e, p)).collect(),
            index_bytes: bytes,
            corrupt: catalog
                .corrupt
                .iter()
                .map(|c| (c.dir.display().to_string(), c.error.clone()))
                .collect(),
            retired: self.retired,
        }
    }
}

/// The distinct schemas of sealed and building partitions.
#[derive(Debug)]
pub struct KnownSchemas;

impl Message<KnownSchemas> for Index {
    type Reply = Vec<crate::data::Schema>;

    async fn handle(&mut self, _: KnownSchemas, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let catalog = self.catalog.read().expect("catalog lock poisoned");
        let mut out: Vec<crate::data::Schema> = Vec::new();
        let all = catalog
            .partitions
            .iter()
            .flat_map(|p| p.meta.layouts.iter().map(|l| &l.schema))
            .chain(self.building.values().flat_map(|b| b.schemas()));
        for s in all {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }
}
