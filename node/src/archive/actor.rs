//! The archive actor: appends batches to partitions, seals them durably, and returns
//! the rows a query selects.

use super::store::{ArchiveStore, Selection};
use crate::data::Batch;
use crate::durable::StoreError;
use crate::query::Expr;
use kameo::prelude::*;
use roaring::RoaringBitmap;
use std::sync::Arc;
use uuid::Uuid;

pub struct Archive {
    store: ArchiveStore,
    /// The first failed append; reported by the next `Seal` so no import is
    /// acknowledged over lost data.
    failed: Option<String>,
    /// Refuses new data after `kill`; what it has stays queryable.
    retired: bool,
    pub(crate) stored_bytes: u64,
}

impl Archive {
    pub fn new(store: ArchiveStore) -> Self {
        Archive {
            store,
            failed: None,
            retired: false,
            stored_bytes: 0,
        }
    }
}

impl Actor for Archive {
    type Args = Self;
    type Error = std::convert::Infallible;

    async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Self::Error> {
        Ok(state)
    }
}

/// Append a batch to partition `id` at row `offset` (told, not asked: errors are
/// reported by `Seal`).
pub struct Append {
    pub id: Uuid,
    pub offset: u32,
    pub batch: Arc<Batch>,
    /// The importer's span, parent of the archive's.
    pub span: tracing::Span,
}

impl Message<Append> for Archive {
    type Reply = ();

    async fn handle(&mut self, m: Append, _: &mut Context<Self, ()>) {
        if self.failed.is_some() {
            return;
        }
        if self.retired {
            self.failed = Some("archive was killed and refuses new data".into());
            return;
        }
        let _span = tracing::info_span!(parent: &m.span, "archive.append", partition = %m.id, rows = m.batch.rows, schema = %m.batch.schema.name).entered();
        match self.store.append(m.id, m.offset, &m.batch) {
            Ok(n) => self.stored_bytes += n,
            Err(e) => {
                tracing::error!(error = %e, "archive append failed");
                self.failed = Some(e.to_string());
            }
        }
    }
}

/// Make partition `id` durable; fails if any earlier append failed.
pub struct Seal {
    pub id: Uuid,
}

impl Message<Seal> for Archive {
    type Reply = Result<(), String>;

    async fn handle(&mut self, m: Seal, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.store.seal(m.id).map_err(|e: StoreError| e.to_string())
    }
}

/// Rows of partition `id` among the candidates that match `expr`.
pub struct Fetch {
    pub id: Uuid,
    pub sure: RoaringBitmap,
    pub maybe: RoaringBitmap,
    pub expr: Arc<Expr>,
    pub limit: Option<u64>,
}

impl Message<Fetch> for Archive {
    type Reply = Result<Vec<Selection>, String>;

    async fn handle(&mut self, m: Fetch, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let _span = tracing::debug_span!("archive.fetch", partition = %m.id, candidates = m.sure.len() + m.maybe.len()).entered();
        self.store
            .fetch(m.id, &m.sure, &m.maybe, &m.expr, m.limit)
            .map_err(|e| e.to_string())
    }
}

/// Stop taking new data (`vast kill archive`); stored data stays queryable.
pub struct Retire;

impl Message<Retire> for Archive {
    type Reply = ();

    async fn handle(&mut self, _: Retire, _: &mut Context<Self, ()>) {
        self.retired = true;
    }
}

/// Archive figures for `status`.
#[derive(Debug, Clone, Reply)]
pub struct ArchiveStatus {
    pub disk_bytes: u64,
    pub active_partitions: usize,
    pub retired: bool,
}

pub struct GetStatus;

impl Message<GetStatus> for Archive {
    type Reply = ArchiveStatus;

    async fn handle(
        &mut self,
        _: GetStatus,
        _: &mut Context<Self, ArchiveStatus>,
    ) -> ArchiveStatus {
        ArchiveStatus {
            disk_bytes: self.store.disk_bytes(),
            active_partitions: self.store.active().count(),
            retired: self.retired,
        }
    }
}
