//! The index actor: builds partition indexes as batches arrive, seals them into the
//! catalog, and answers lookups with per-partition candidates.

use super::catalog::{Catalog, PartitionHits};
use super::partition::PartitionBuilder;
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
    /// The first failure of each partition being built, reported by its seal.
    failed: HashMap<Uuid, String>,
    retired: bool,
}

impl Index {
    /// Opens the catalog under `dir`.
    pub fn open(dir: PathBuf) -> Result<Self, crate::durable::StoreError> {
        let catalog = Arc::new(RwLock::new(Catalog::open(&dir)?));
        Ok(Index {
            dir,
            catalog,
            building: HashMap::new(),
            failed: HashMap::new(),
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
    if let Some(c) = catalog.corrupt.first() {
        return Err(format!(
            "partition {} is unusable: {}",
            c.dir.display(),
            c.error
        ));
    }
    catalog.lookup(expr).map_err(|e| e.to_string())
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
                format!("partition {} is sealed; sealed partitions are never rewritten", m.id),
            );
            return;
        }
        let _span = tracing::info_span!(parent: &m.span, "index.add", partition = %m.id, rows = m.batch.rows, schema = %m.batch.schema.name).entered();
        self.building
            .entry(m.id)
            .or_insert_with(|| PartitionBuilder::new(m.id, m.batch.schema.clone(), m.archive))
            .add(&m.batch, m.offset);
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
        let p = b.write(&self.dir).map_err(|e| e.to_string())?;
        self.catalog.write().expect("catalog lock poisoned").add(p);
        Ok(())
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
            let e = schemas.entry(p.meta.schema.name.clone()).or_default();
            e.0 += p.meta.rows as u64;
            e.1 += 1;
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

    async fn handle(
        &mut self,
        _: KnownSchemas,
        _: &mut Context<Self, Self::Reply>,
    ) -> Self::Reply {
        let catalog = self.catalog.read().expect("catalog lock poisoned");
        let mut out: Vec<crate::data::Schema> = Vec::new();
        let all = catalog
            .partitions
            .iter()
            .map(|p| &p.meta.schema)
            .chain(self.building.values().map(|b| b.schema()));
        for s in all {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }
}
