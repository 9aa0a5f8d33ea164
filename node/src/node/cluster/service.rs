//! The data-plane service: takes requests from the network, bounded in number,
//! checks each against the access policy, and answers it.

use super::cursors::{show, Cursor};
use super::{err, Cluster};
use crate::data::Batch;
use crate::net::Inbound;
use crate::node::access;
use crate::proto::{DataRequest, DataResponse};
use crate::query::parse;
use libp2p::PeerId;
use roaring::RoaringBitmap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// A bitmap from a peer: roaring's own reader checks container counts and sizes
/// against what actually arrives.
pub(super) fn bitmap(bytes: &[u8]) -> Result<RoaringBitmap, String> {
    RoaringBitmap::deserialize_from(bytes).map_err(|e| format!("malformed bitmap: {e}"))
}

impl Cluster {
    pub(super) async fn serve(self: Arc<Self>, mut inbound: tokio::sync::mpsc::Receiver<Inbound>) {
        let slots = Arc::new(Semaphore::new(self.opts.max_inflight_requests));
        while let Some(req) = inbound.recv().await {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(peer = %req.peer, "data-plane request refused: too many in flight");
                self.net
                    .respond(
                        req.channel,
                        err("node is busy: too many requests in flight; retry later").encode(),
                    )
                    .await;
                continue;
            };
            let this = self.clone();
            tokio::spawn(async move {
                let Inbound {
                    peer,
                    bytes,
                    channel,
                    permit,
                } = req;
                let resp = match DataRequest::decode_traced(&bytes) {
                    Ok((r, tp)) => {
                        drop(bytes);
                        let span = tracing::info_span!("data.request", node = %this.id, kind = r.kind());
                        crate::telemetry::set_remote_parent(&span, &tp);
                        this.handle(peer, r).instrument(span).await
                    }
                    Err(e) => {
                        tracing::warn!(peer = %peer, error = %e, "rejected a malformed data-plane message");
                        err(e)
                    }
                };
                let mut out = resp.encode();
                if out.len() > this.opts.max_frame {
                    out = err(format!(
                        "the answer ({} bytes) exceeds cluster.max-frame ({})",
                        out.len(),
                        this.opts.max_frame
                    ))
                    .encode();
                }
                this.net.respond(channel, out).await;
                drop((permit, slot));
            });
        }
    }

    /// Sends a request to member `id` and decodes the answer.
    pub async fn ask_member(
        &self,
        id: &str,
        req: DataRequest,
        timeout: Duration,
    ) -> Result<DataResponse, String> {
        let peer = self.peer_of(id)?;
        let bytes = tokio::time::timeout(timeout, self.net.request(peer, req.encode()))
            .await
            .map_err(|_| format!("node {id} did not answer within {}s", timeout.as_secs_f64()))?
            .map_err(|e| format!("node {id} is unreachable: {e}"))?;
        match DataResponse::decode(&bytes).map_err(|e| format!("node {id}: {e}"))? {
            DataResponse::Error(e) => Err(format!("node {id}: {e}")),
            r => Ok(r),
        }
    }

    fn runs(&self, component: &str) -> bool {
        self.node.labels().iter().any(|l| l == component)
    }

    async fn handle(self: &Arc<Self>, peer: PeerId, req: DataRequest) -> DataResponse {
        let caller = self.caller(peer);
        if let Err(e) = access::data_request(&caller, &req) {
            tracing::warn!(node = %self.id, peer = %peer, kind = req.kind(), "refused: {e}");
            return err(e);
        }
        match req {
            DataRequest::Hello { from } => {
                // A CLI introduces itself without an id; a node's id is checked
                // against the PeerId its connection authenticated.
                if !from.id.is_empty() {
                    if let Err(e) = self.authenticate(&from, peer) {
                        return err(e);
                    }
                }
                DataResponse::Hello {
                    me: self.me(),
                    members: self.member_list(),
                }
            }
            DataRequest::Ingest {
                node, seq, batch, ..
            } if !node.is_empty() && node != self.id => self
                .ask_member(
                    &node,
                    DataRequest::Ingest {
                        node: node.clone(),
                        seq,
                        batch,
                        forwarded: true,
                    },
                    Duration::from_secs(60),
                )
                .await
                .unwrap_or_else(err),
            DataRequest::Ingest { seq, batch, .. } => self.ingest_local(seq, batch).await,
            DataRequest::Flush { node, .. } if !node.is_empty() && node != self.id => self
                .ask_member(
                    &node,
                    DataRequest::Flush {
                        node: node.clone(),
                        forwarded: true,
                    },
                    Duration::from_secs(300),
                )
                .await
                .unwrap_or_else(err),
            DataRequest::Flush { .. } if !self.runs("importer") => {
                match self.members_with("importer").first() {
                    Some(m) => self
                        .ask_member(
                            m,
                            DataRequest::Flush {
                                node: m.clone(),
                                forwarded: true,
                            },
                            Duration::from_secs(300),
                        )
                        .await
                        .unwrap_or_else(err),
                    None => err(format!(
                        "node {} has no importer and knows no member with one",
                        self.id
                    )),
                }
            }
            DataRequest::Flush { .. } => match self.node.flush().await {
                Ok(events) => DataResponse::Flushed { events },
                Err(e) => err(e),
            },
            // An archive-only node's data is indexed elsewhere.
            DataRequest::Lookup { .. } if !self.runs("index") => DataResponse::Hits(vec![]),
            DataRequest::Lookup { expr } => match parse(&expr) {
                Ok(e) => match self.node.lookup(e).await {
                    Ok(hits) => DataResponse::Hits(hits),
                    Err(e) => err(e),
                },
                Err(e) => err(e),
            },
            DataRequest::Fetch {
                partition,
                sure,
                maybe,
                expr,
                limit,
                from_row,
                max_bytes,
            } => {
                let (Ok(sure), Ok(maybe), Ok(e)) = (bitmap(&sure), bitmap(&maybe), parse(&expr))
                else {
                    return err("malformed fetch request");
                };
                let limit = (limit > 0).then_some(limit);
                let max_bytes = usize::try_from(max_bytes)
                    .unwrap_or(usize::MAX)
                    .clamp(1, self.page_bytes());
                match self
                    .node
                    .fetch(
                        uuid::Uuid::from_bytes(partition),
                        sure,
                        maybe,
                        e,
                        limit,
                        from_row,
                        max_bytes,
                    )
                    .await
                {
                    Ok(f) => DataResponse::Page {
                        batches: f.selections.iter().map(super::query::selection_bytes).collect(),
                        resume: f.resume,
                    },
                    Err(e) => err(e),
                }
            }
            DataRequest::ExportOpen {
                expr,
                limit,
                allow_partial,
            } => match self.lookup_all(&expr, allow_partial).await {
                Ok((hits, warnings)) => {
                    let left = (limit > 0).then_some(limit);
                    match self.cursors.open(Cursor::new(peer, expr, hits, left)) {
                        Ok(cursor) => DataResponse::Cursor { cursor, warnings },
                        Err(e) => err(e),
                    }
                }
                Err(e) => err(e),
            },
            DataRequest::ExportNext { cursor } => self.export_next(&caller, cursor).await,
            DataRequest::ExportClose { cursor } => {
                match self.cursors.close(&cursor, |owner| {
                    access::cursor(&caller, owner, &show(&cursor)).map_err(|e| e.to_string())
                }) {
                    Ok(()) => DataResponse::End,
                    Err(e) => err(e),
                }
            }
            DataRequest::Store {
                partition,
                offset,
                batch,
            } => match Batch::from_bytes(&batch) {
                Ok(b) => {
                    drop(batch);
                    match self
                        .node
                        .store(uuid::Uuid::from_bytes(partition), offset, b)
                        .await
                    {
                        Ok(()) => DataResponse::Ack { seq: offset as u64 },
                        Err(e) => err(e),
                    }
                }
                Err(e) => err(e),
            },
            DataRequest::Seal { partition } => {
                match self.node.seal(uuid::Uuid::from_bytes(partition)).await {
                    Ok(()) => DataResponse::Ack { seq: 0 },
                    Err(e) => err(e),
                }
            }
            DataRequest::Discard { seq, batch } => match Batch::check_bytes(&batch) {
                Ok(_) => DataResponse::Ack { seq },
                Err(e) => err(e),
            },
        }
    }

    async fn ingest_local(self: &Arc<Self>, seq: u64, batch: Vec<u8>) -> DataResponse {
        if !self.runs("importer") {
            // A node without an importer forwards to a member that has one.
            return match self.members_with("importer").first() {
                Some(m) => self
                    .ask_member(
                        m,
                        DataRequest::Ingest {
                            node: m.clone(),
                            seq,
                            batch,
                            forwarded: true,
                        },
                        Duration::from_secs(60),
                    )
                    .await
                    .unwrap_or_else(err),
                None => err(format!(
                    "node {} has no importer and knows no member with one",
                    self.id
                )),
            };
        }
        let batch = match Batch::from_bytes(&batch) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "rejected a malformed batch");
                return err(e);
            }
        };
        match self.node.ingest(batch).await {
            Ok(()) => DataResponse::Ack { seq },
            Err(e) => err(e),
        }
    }
}
