//! The archive actor: appends batches to partitions, seals them durably, and returns
//! the rows a query selects.

use super::store::{ArchiveStore, Fetched};
use crate::data::Batch;
use crate::durable::StoreError;
use crate::query::Expr;
use kameo::prelude::*;
use roaring::RoaringBitmap;
use std::sync::Arc;
use uuid::Uuid;

pub struct Archive {
    store: ArchiveStore,
    /// The first failed append of each partition; reported by that partition's
    /// `Seal`, so no import is acknowledged over lost data and one bad partition
    /// (or a peer's refused `Store`) does not fail the others.
    failed: std::collections::HashMap<Uuid, String>,
    /// Refuses new data after `kill`; what it has stays queryable.
    retired: bool,
    /// Partitions compaction replaced and whose files are gone (the latest few),
    /// so a long-running query that still asks for one is told why.
    replaced: std::collections::VecDeque<Uuid>,
    pub(crate) stored_bytes: u64,
    /// Decompressors of finished fetches, reused by the next ones.
    dctxs: Arc<std::sync::Mutex<Vec<crate::archive::store::Dctx>>>,
    /// Fetches decoding at once: one per core, so many concurrent queries (or
    /// a peer sending many) queue instead of each taking a thread and memory.
    decoding: Arc<tokio::sync::Semaphore>,
}

impl Archive {
    pub fn new(store: ArchiveStore) -> Self {
        Archive {
            store,
            failed: Default::default(),
            retired: false,
            replaced: Default::default(),
            stored_bytes: 0,
            dctxs: Default::default(),
            decoding: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)),
            )),
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
        if self.failed.contains_key(&m.id) {
            return;
        }
        if self.retired {
            self.failed
                .insert(m.id, "archive was killed and refuses new data".into());
            return;
        }
        let _span = tracing::info_span!(parent: &m.span, "archive.append", partition = %m.id, rows = m.batch.rows, schema = %m.batch.schema.name).entered();
        match self.store.append(m.id, m.offset, &m.batch) {
            Ok(n) => self.stored_bytes += n,
            Err(e) => {
                tracing::error!(error = %e, "archive append failed");
                self.store.abandon(m.id);
                self.failed.insert(m.id, e.to_string());
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
        if let Some(e) = self.failed.remove(&m.id) {
            self.store.abandon(m.id);
            return Err(e);
        }
        self.store.seal(m.id).map_err(|e: StoreError| e.to_string())
    }
}

/// Rows of partition `id` among the candidates that match `expr`, from row
/// `from_row` on, about `max_bytes` at most (`usize::MAX`: all).
pub struct Fetch {
    pub id: Uuid,
    pub sure: RoaringBitmap,
    pub maybe: RoaringBitmap,
    pub expr: Arc<Expr>,
    pub limit: Option<u64>,
    pub from_row: u32,
    pub max_bytes: usize,
}

/// The archive opens the partition (its table and data file, cached) and hands
/// the decoding to a blocking thread, so fetches of several partitions decode
/// on all cores while the actor goes on serving. An open file stays readable
/// if compaction removes the partition meanwhile.
impl Message<Fetch> for Archive {
    type Reply = DelegatedReply<Result<Fetched, String>>;

    async fn handle(&mut self, m: Fetch, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let span = tracing::debug_span!("archive.fetch", partition = %m.id, candidates = m.sure.len() + m.maybe.len());
        if self.replaced.contains(&m.id) {
            return ctx.reply(Err(format!(
                "partition {} was merged into another by compaction while this query ran; run the query again",
                m.id
            )));
        }
        let reader = match span.in_scope(|| self.store.reader(m.id)) {
            Ok(r) => r,
            Err(e) => return ctx.reply(Err(e.to_string())),
        };
        let (dctxs, decoding) = (self.dctxs.clone(), self.decoding.clone());
        ctx.spawn(async move {
            let Ok(_permit) = decoding.acquire_owned().await else {
                return Err("the archive is shutting down".to_string());
            };
            tokio::task::spawn_blocking(move || {
                let _g = span.enter();
                let pooled = dctxs.lock().expect("lock poisoned").pop();
                let mut dctx = match pooled {
                    Some(d) => d,
                    None => crate::archive::store::Dctx::try_create()
                        .ok_or("creating a zstd decompressor failed")?,
                };
                let res = reader
                    .fetch(
                        &mut dctx,
                        &m.sure,
                        &m.maybe,
                        &m.expr,
                        m.limit,
                        m.from_row,
                        m.max_bytes,
                    )
                    .map_err(|e| e.to_string());
                dctxs.lock().expect("lock poisoned").push(dctx);
                res
            })
            .await
            .unwrap_or_else(|e| Err(format!("fetch task failed: {e}")))
        })
    }
}

/// Every row of one partition, in row order, a page at a time: how a partition
/// is copied (merged by compaction, or sent to another replica). Row `k` of the
/// pages, counted from the first, is row `k` of the partition.
pub struct ReadAll {
    archive: ActorRef<Archive>,
    id: Uuid,
    all: RoaringBitmap,
    everything: Arc<Expr>,
    /// The row the next page starts at; `None` once the last page was read.
    next: Option<u32>,
    max_bytes: usize,
}

impl ReadAll {
    /// Reads the `rows` rows of partition `id`, pages of about `max_bytes`.
    pub fn new(archive: ActorRef<Archive>, id: Uuid, rows: u32, max_bytes: usize) -> ReadAll {
        let mut all = RoaringBitmap::new();
        all.insert_range(0..rows);
        ReadAll {
            archive,
            id,
            all,
            everything: Arc::new(Expr::And(Vec::new())),
            next: Some(0),
            max_bytes,
        }
    }

    /// The batches of the next page; `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Batch>>, String> {
        let (id, Some(from_row)) = (self.id, self.next) else {
            return Ok(None);
        };
        let page = self
            .archive
            .ask(Fetch {
                id,
                sure: self.all.clone(),
                maybe: RoaringBitmap::new(),
                expr: self.everything.clone(),
                limit: None,
                from_row,
                max_bytes: self.max_bytes,
            })
            .await
            .map_err(|e| format!("reading partition {id}: {e}"))?;
        self.next = match page.resume {
            Some(r) if r > from_row => Some(r),
            Some(_) => return Err(format!("reading partition {id}: paging made no progress")),
            None => None,
        };
        Ok(Some(
            page.selections
                .into_iter()
                .map(|sel| {
                    if sel.rows.len() == sel.batch.rows as usize {
                        sel.batch
                    } else {
                        sel.batch.select(&sel.rows)
                    }
                })
                .collect(),
        ))
    }
}

/// Remove the files of uncommitted partitions (their import failed or was
/// aborted). The caller guarantees none of them is committed.
pub struct DiscardPartitions(pub Vec<Uuid>);

impl Message<DiscardPartitions> for Archive {
    type Reply = ();

    async fn handle(&mut self, m: DiscardPartitions, _: &mut Context<Self, ()>) {
        for id in m.0 {
            self.failed.remove(&id);
            self.store.discard(id);
        }
    }
}

/// Remove the files of partitions compaction replaced (their `Replace` record is
/// durable and no query holds them any more).
pub struct RemoveReplaced(pub Vec<Uuid>);

impl Message<RemoveReplaced> for Archive {
    type Reply = ();

    async fn handle(&mut self, m: RemoveReplaced, _: &mut Context<Self, ()>) {
        for id in m.0 {
            self.store.discard(id);
            if self.replaced.len() >= 4096 {
                self.replaced.pop_front();
            }
            self.replaced.push_back(id);
        }
    }
}

/// Whether partition `id` is sealed here (such ids are never written again).
pub struct IsSealed(pub Uuid);

impl Message<IsSealed> for Archive {
    type Reply = bool;

    async fn handle(&mut self, m: IsSealed, _: &mut Context<Self, bool>) -> bool {
        self.store.is_sealed(m.0)
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
