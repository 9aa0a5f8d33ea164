//! Queries over the cluster: candidates from every member with an index, rows
//! fetched page by page from the archive that holds each partition.

use super::cursors::show;
use super::service::bitmap;
use super::{err, Cluster, MEMBER_TIMEOUT};
use crate::archive::store::Selection;
use crate::data::Batch;
use crate::index::value_index::Hits;
use crate::node::access::{self, Caller};
use crate::proto::{DataRequest, DataResponse, WireHits};
use crate::query::parse;
use roaring::RoaringBitmap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

pub(super) fn selection_bytes(s: &Selection) -> Vec<u8> {
    if s.rows.len() == s.batch.rows as usize {
        s.batch.to_bytes()
    } else {
        s.batch.select(&s.rows).to_bytes()
    }
}

pub(super) fn bitmap_bytes(b: &RoaringBitmap) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.serialized_size());
    b.serialize_into(&mut v)
        .expect("serializing into memory cannot fail");
    v
}

/// One page of rows from a partition, and where the next page starts.
pub(super) struct Page {
    pub batches: Vec<Vec<u8>>,
    pub resume: Option<u32>,
}

impl Cluster {
    /// Candidates from every member that holds data; members that do not answer in
    /// time fail the query, or become warnings with `allow_partial`.
    #[tracing::instrument(name = "query.fanout", skip_all, fields(node = %self.id, expr = %expr))]
    pub async fn lookup_all(
        self: &Arc<Self>,
        expr: &str,
        allow_partial: bool,
    ) -> Result<(Vec<WireHits>, Vec<String>), String> {
        let parsed = parse(expr).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        // Partitions of the members that answered, and the members that did not:
        // with replicas, one that did not is fine while its partitions answered.
        let mut answered: std::collections::HashSet<[u8; 16]> = Default::default();
        let mut silent: Vec<(String, String)> = Vec::new();
        // Data that cannot be read fails the query, or is a warning when a partial
        // answer is accepted.
        let mut partial = |e: String| -> Result<(), String> {
            if !allow_partial {
                return Err(format!(
                    "query incomplete: {e} (use --allow-partial to accept a partial answer)"
                ));
            }
            warnings.push(format!("partial answer: {e}"));
            Ok(())
        };
        if self.serves_data() {
            let span = tracing::info_span!("query.lookup", member = %self.id);
            out.extend(
                self.node
                    .lookup(parsed.clone())
                    .instrument(span)
                    .await
                    .map_err(|e| e.to_string())?,
            );
            answered.extend(self.held_here().unwrap_or_default());
        } else if self.node.has_index_data() {
            silent.push((
                self.id.clone(),
                format!("node {}: {}", self.id, super::UNAVAILABLE),
            ));
        }
        // Every member that may hold data is asked, whatever components it last
        // reported: an import acknowledged a moment ago on a member whose new
        // components we have not heard of yet must show.
        let holders: Vec<String> = {
            let members = self.members.lock().expect("lock poisoned");
            members
                .iter()
                .filter(|(_, m)| m.peer.is_some() && (m.connected || m.holds_data))
                .map(|(id, _)| id.clone())
                .collect()
        };
        // What each member holds, beside its candidates: the partitions that
        // answered, for deciding whether a member that did not is missed.
        let asks = holders.iter().map(|id| {
            let this = self.clone();
            let expr = expr.to_string();
            async move {
                let (hits, held) = futures::future::join(
                    this.ask_member(id, DataRequest::Lookup { expr }, MEMBER_TIMEOUT),
                    this.ask_member(id, DataRequest::Held, MEMBER_TIMEOUT),
                )
                .await;
                (id.clone(), hits, held)
            }
        });
        // The schemas of every member, beside the lookups, so a field that no
        // schema anywhere has is reported instead of silently matching nothing.
        let schema_asks = holders.iter().map(|id| {
            let this = self.clone();
            async move {
                match this
                    .ask_member(id, DataRequest::Schemas, MEMBER_TIMEOUT)
                    .await
                {
                    Ok(DataResponse::Schemas(s)) => s,
                    _ => Vec::new(),
                }
            }
        });
        let (answers, schemas) = futures::future::join(
            futures::future::join_all(asks),
            futures::future::join_all(schema_asks),
        )
        .await;
        for (id, r, held) in answers {
            match r {
                Ok(DataResponse::Hits(h)) => {
                    out.extend(h);
                    if let Ok(DataResponse::Held(held)) = held {
                        answered.extend(held.iter().copied());
                        self.note_held(&id, held);
                    }
                }
                Ok(other) => return Err(format!("node {id}: unexpected answer {other:?}")),
                Err(e) => silent.push((id, e)),
            }
        }
        for (id, e) in silent {
            if self.covered(&id, &answered) {
                tracing::debug!(node = %self.id, member = %id, "a member did not answer; replicas of all it holds did");
            } else {
                partial(e)?;
            }
        }
        let mut out = self.read_once(out);
        let mut all_schemas = self.node.known_schemas().await;
        all_schemas.extend(schemas.into_iter().flatten());
        warnings.extend(crate::query::resolve::unknown_extractors(
            &parsed,
            &all_schemas,
        ));
        // Import order: partition ids are time-ordered UUIDs.
        out.sort_by_key(|h| h.partition);
        Ok((out, warnings))
    }

    /// One page of matching rows of `h` from row `from_row` on, from whichever
    /// archive holds the partition. Without `sure`, only the maybe rows are checked.
    #[tracing::instrument(name = "query.fetch", skip_all, fields(archive = %h.archive, schema = %h.schema))]
    pub(super) async fn fetch_page(
        &self,
        h: &WireHits,
        expr: &str,
        limit: Option<u64>,
        from_row: u32,
        sure: bool,
    ) -> Result<Page, String> {
        let owner = h.archive.split('/').next().unwrap_or_default().to_string();
        let sure_bytes = if sure {
            h.sure.clone()
        } else {
            bitmap_bytes(&RoaringBitmap::new())
        };
        if owner == self.id {
            let s = bitmap(&sure_bytes)?;
            let m = bitmap(&h.maybe)?;
            let e = parse(expr).map_err(|e| e.to_string())?;
            let f = self
                .node
                .fetch(
                    uuid::Uuid::from_bytes(h.partition),
                    s,
                    m,
                    e,
                    limit,
                    from_row,
                    self.page_bytes(),
                )
                .await
                .map_err(|e| e.to_string())?;
            return Ok(Page {
                batches: f.selections.iter().map(selection_bytes).collect(),
                resume: f.resume,
            });
        }
        let req = DataRequest::Fetch {
            partition: h.partition,
            sure: sure_bytes,
            maybe: h.maybe.clone(),
            expr: expr.to_string(),
            limit: limit.unwrap_or(0),
            from_row,
            max_bytes: self.page_bytes() as u64,
        };
        match self
            .ask_member(&owner, req, Duration::from_secs(60))
            .await?
        {
            DataResponse::Page { batches, resume } => {
                if resume.is_some_and(|r| r <= from_row) {
                    return Err(format!("node {owner}: a fetch page did not advance"));
                }
                Ok(Page { batches, resume })
            }
            other => Err(format!("node {owner}: unexpected answer {other:?}")),
        }
    }

    /// Counts over the whole cluster.
    #[tracing::instrument(name = "query.count", skip_all, fields(node = %self.id, expr = %expr))]
    pub async fn count(
        self: &Arc<Self>,
        expr: &str,
        estimate: bool,
        allow_partial: bool,
    ) -> Result<(u64, Vec<String>), String> {
        let (hits, warnings) = self.lookup_all(expr, allow_partial).await?;
        let mut n = 0;
        for h in hits {
            let sure = bitmap(&h.sure)?;
            let maybe = bitmap(&h.maybe)?;
            let hits = Hits { sure, maybe };
            if estimate || hits.is_exact() {
                n += hits.estimate();
                continue;
            }
            n += hits.sure.len();
            let mut from_row = 0;
            loop {
                let page = self.fetch_page(&h, expr, None, from_row, false).await?;
                for b in &page.batches {
                    n += Batch::check_bytes(b).map_err(|e| e.to_string())? as u64;
                }
                match page.resume {
                    Some(r) => from_row = r,
                    None => break,
                }
            }
        }
        Ok((n, warnings))
    }

    /// The next rows of export `id`, for the client that opened it.
    #[tracing::instrument(name = "query.stream", skip_all, fields(node = %self.id))]
    pub(super) async fn export_next(
        self: &Arc<Self>,
        caller: &Caller,
        id: [u8; 16],
    ) -> DataResponse {
        let mut c = match self.cursors.take(&id, |owner| {
            access::cursor(caller, owner, &show(&id)).map_err(|e| e.to_string())
        }) {
            Ok(c) => c,
            Err(e) => return err(e),
        };
        let resp = if c.live.is_some() {
            self.live_next(&mut c).await
        } else {
            loop {
                if c.left == Some(0) {
                    break DataResponse::End;
                }
                match self.history_page(&mut c).await {
                    Ok(Some(batches)) => break DataResponse::Rows(batches),
                    Ok(None) if c.hits.is_empty() => break DataResponse::End,
                    Ok(None) => continue,
                    Err(e) => break err(e),
                }
            }
        };
        // The cursor is gone once the export ended or failed.
        if matches!(resp, DataResponse::Rows(_) | DataResponse::Live { .. }) {
            self.cursors.put(id, c);
        } else {
            self.cursors.finish(&id);
        }
        resp
    }

    /// One page of the cursor's next partition, advancing it: `None` when the page
    /// had no rows (or no partition is left).
    pub(super) async fn history_page(
        &self,
        c: &mut super::cursors::Cursor,
    ) -> Result<Option<Vec<Vec<u8>>>, String> {
        let Some(h) = c.hits.front() else {
            return Ok(None);
        };
        let page = self
            .fetch_page(h, &c.expr, c.left, c.from_row, true)
            .await?;
        match page.resume {
            Some(r) => c.from_row = r,
            None => {
                c.hits.pop_front();
                c.from_row = 0;
            }
        }
        if page.batches.is_empty() {
            return Ok(None);
        }
        if let Some(l) = c.left.as_mut() {
            // Pages already respect the limit we passed.
            let n: u64 = page
                .batches
                .iter()
                .map(|b| Batch::check_bytes(b).map(u64::from).unwrap_or(0))
                .sum();
            *l = l.saturating_sub(n);
        }
        Ok(Some(page.batches))
    }
}
