//! The source actor: one generic wrapper that drives any [`Reader`] on a blocking
//! thread and feeds its batches to an importer, applying `-n` and an optional filter.

use super::{ReadError, ReadStats, Reader};
use crate::data::Batch;
use crate::importer::{Abort, Flush, Importer, Ingest, Open};
use crate::query::{filter, resolve, Expr};
use kameo::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type ReadResult = Result<Option<Vec<Batch>>, ReadError>;

/// What a source was asked to do.
#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    /// Stop after this many events.
    pub limit: Option<u64>,
    /// Keep only events matching this expression.
    pub filter: Option<Expr>,
    pub batch_size: usize,
    /// Human description for status (`stdin`, a path, an interface).
    pub description: String,
    pub format: String,
    /// Commit each partition as it seals (spawned, long-running sources) instead
    /// of the whole import at its end (client imports: all or nothing).
    pub autocommit: bool,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Events handed to the importer (after filter and limit).
    pub events: u64,
    /// Events the reader produced.
    pub read: u64,
    /// Malformed records skipped.
    pub skipped: u64,
}

/// Live counters shared between the reading loop and status queries.
#[derive(Default)]
pub struct SourceCounters {
    pub events: AtomicU64,
    pub read: AtomicU64,
    pub skipped: AtomicU64,
    pub stop: AtomicBool,
    pub done: AtomicBool,
    /// When reading began, and how long the import took once it is done
    /// (durable or failed), for `status`.
    pub started: std::sync::OnceLock<std::time::Instant>,
    pub took: std::sync::OnceLock<std::time::Duration>,
    pub error: Mutex<Option<String>>,
    /// Reader-specific counters (e.g. packets dropped by the kernel).
    pub extra: Mutex<Vec<(String, u64)>>,
}

pub struct Source {
    pub options: SourceOptions,
    pub counters: Arc<SourceCounters>,
}

impl Actor for Source {
    type Args = Self;
    type Error = std::convert::Infallible;

    async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Self::Error> {
        Ok(state)
    }
}

/// Starts reading: returns the actor (for status and kill) and the task that ends
/// with the import's summary once everything read is durable.
pub fn spawn_source(
    reader: Box<dyn Reader>,
    options: SourceOptions,
    importer: ActorRef<Importer>,
) -> (
    ActorRef<Source>,
    tokio::task::JoinHandle<Result<ImportSummary, String>>,
) {
    let counters = Arc::new(SourceCounters::default());
    let actor = Source::spawn(Source {
        options: options.clone(),
        counters: counters.clone(),
    });
    let task = tokio::spawn(run(reader, options, importer, counters));
    (actor, task)
}

/// Keeps the rows of `batch` that match `expr` (resolved once per schema).
pub fn apply_filter(
    batch: Batch,
    expr: Option<&Expr>,
    cache: &mut HashMap<u64, crate::query::Resolved>,
) -> Batch {
    let Some(expr) = expr else { return batch };
    let r = cache
        .entry(batch.schema.fingerprint())
        .or_insert_with(|| resolve(expr, &batch.schema));
    let rows = filter(r, &batch);
    if rows.len() == batch.rows as usize {
        batch
    } else {
        batch.select(&rows)
    }
}

async fn run(
    reader: Box<dyn Reader>,
    opts: SourceOptions,
    importer: ActorRef<Importer>,
    c: Arc<SourceCounters>,
) -> Result<ImportSummary, String> {
    let started = *c.started.get_or_init(std::time::Instant::now);
    let mut reader = Some(reader);
    let mut cache = HashMap::new();
    let batch_size = opts.batch_size.max(1);
    let session = uuid::Uuid::now_v7();
    importer
        .tell(Open {
            session,
            autocommit: opts.autocommit,
        })
        .await
        .map_err(|e| format!("importer unavailable: {e}"))?;
    let result: Result<(), String> = async {
        loop {
            if c.stop.load(Ordering::Relaxed) {
                break;
            }
            if opts
                .limit
                .is_some_and(|l| c.events.load(Ordering::Relaxed) >= l)
            {
                break;
            }
            let mut r = reader.take().expect("reader is put back after every read");
            let (r, res): (Box<dyn Reader>, ReadResult) = tokio::task::spawn_blocking(move || {
                let res = r.read(batch_size);
                (r, res)
            })
            .await
            .map_err(|e| format!("reader thread failed: {e}"))?;
            let ReadStats {
                events,
                skipped,
                counters,
            } = r.stats();
            *c.extra.lock().expect("counter lock poisoned") = counters;
            c.read.store(events, Ordering::Relaxed);
            c.skipped.store(skipped, Ordering::Relaxed);
            reader = Some(r);
            let Some(batches) = res.map_err(|e| e.to_string())? else {
                break;
            };
            // Killed while reading: what arrived after the kill is not imported.
            if c.stop.load(Ordering::Relaxed) {
                break;
            }
            for b in batches {
                let mut b = apply_filter(b, opts.filter.as_ref(), &mut cache);
                if let Some(l) = opts.limit {
                    let left = l.saturating_sub(c.events.load(Ordering::Relaxed));
                    if (b.rows as u64) > left {
                        let rows: Vec<u32> = (0..left as u32).collect();
                        b = b.select(&rows);
                    }
                }
                if b.rows == 0 {
                    continue;
                }
                c.events.fetch_add(b.rows as u64, Ordering::Relaxed);
                let span = tracing::info_span!("source.batch", source = %opts.description, rows = b.rows, schema = %b.schema.name);
                importer
                    .tell(Ingest {
                        session,
                        batch: b,
                        span,
                    })
                    .await
                    .map_err(|e| format!("importer unavailable: {e}"))?;
            }
        }
        Ok(())
    }
    .await;
    // All or nothing: a failed read aborts the session, so nothing of it shows
    // (a long-running source keeps the partitions it already committed).
    let flushed = match &result {
        Ok(()) => importer
            .ask(Flush(session))
            .await
            .map_err(|e| format!("import not durable: {e}")),
        Err(_) => {
            let _ = importer.tell(Abort(session)).await;
            Ok(0)
        }
    };
    let _ = c.took.set(started.elapsed());
    c.done.store(true, Ordering::Relaxed);
    let summary = ImportSummary {
        events: c.events.load(Ordering::Relaxed),
        read: c.read.load(Ordering::Relaxed),
        skipped: c.skipped.load(Ordering::Relaxed),
    };
    let out = result.and(flushed.map(|_| summary));
    if let Err(e) = &out {
        *c.error.lock().expect("error lock poisoned") = Some(e.clone());
    }
    out
}

/// Stop reading (`vast kill source-N`).
pub struct StopSource;

impl Message<StopSource> for Source {
    type Reply = ();

    async fn handle(&mut self, _: StopSource, _: &mut Context<Self, ()>) {
        self.counters.stop.store(true, Ordering::Relaxed);
    }
}

/// A source's figures for `status`.
#[derive(Clone, Debug, Reply)]
pub struct SourceStatus {
    pub description: String,
    pub format: String,
    pub events: u64,
    pub skipped: u64,
    pub done: bool,
    /// Seconds since reading began; once done, how long the import took.
    pub seconds: f64,
    pub error: Option<String>,
    pub counters: Vec<(String, u64)>,
}

pub struct GetSourceStatus;

impl Message<GetSourceStatus> for Source {
    type Reply = SourceStatus;

    async fn handle(
        &mut self,
        _: GetSourceStatus,
        _: &mut Context<Self, SourceStatus>,
    ) -> SourceStatus {
        let c = &self.counters;
        SourceStatus {
            description: self.options.description.clone(),
            format: self.options.format.clone(),
            events: c.events.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            done: c.done.load(Ordering::Relaxed),
            seconds: c
                .took
                .get()
                .copied()
                .or_else(|| c.started.get().map(|s| s.elapsed()))
                .unwrap_or_default()
                .as_secs_f64(),
            error: c.error.lock().expect("error lock poisoned").clone(),
            counters: c.extra.lock().expect("counter lock poisoned").clone(),
        }
    }
}
