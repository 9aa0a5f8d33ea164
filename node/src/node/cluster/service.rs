//! The data-plane service: takes requests from the network, bounded in number,
//! checks each against the access policy, and answers it.

use super::cursors::{show, Cursor};
use super::{err, Cluster};
use crate::data::Batch;
use crate::net::Inbound;
use crate::node::access::{self, Caller};
use crate::proto::{DataRequest, DataResponse, ExportMode};
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
                let resp = match DataRequest::decode_frame(bytes) {
                    Ok((r, tp)) => {
                        let span =
                            tracing::info_span!("data.request", node = %this.id, kind = r.kind());
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
        let deadline = tokio::time::Instant::now() + timeout;
        let ask = |frame: crate::proto::Frame| async move {
            let bytes = tokio::time::timeout_at(deadline, self.net.request(peer, frame))
                .await
                .map_err(|_| format!("node {id} did not answer within {}s", timeout.as_secs_f64()))?
                .map_err(|e| format!("node {id} is unreachable: {e}"))?;
            DataResponse::decode(&bytes).map_err(|e| format!("node {id}: {e}"))
        };
        // The second ask shares the first one's payload.
        let frame = req.into_frame();
        let mut answer = ask(frame.share()).await?;
        if let DataResponse::NotMember(e) = &answer {
            // A member that has just joined may not have taken our `Hello` in
            // yet (it pins our id first); introduce ourselves and ask once more.
            // Refused requests were not run, so asking again is safe.
            tracing::debug!(node = %self.id, member = %id, "not known as a member yet; saying hello: {e}");
            tokio::time::timeout_at(deadline, self.hello(peer))
                .await
                .map_err(|_| format!("node {id}: {e}"))?
                .map_err(|h| format!("node {id}: {e} (saying hello failed: {h})"))?;
            answer = ask(frame).await?;
        } else {
            // Answered, so the written copy is gone and this one holds the
            // payload alone: its buffer can take the next frame.
            crate::data::pool::Pool::global().put_bytes(frame.body);
        }
        match answer {
            DataResponse::Error(e) | DataResponse::NotMember(e) => Err(format!("node {id}: {e}")),
            r => Ok(r),
        }
    }

    /// Whether this node's data can be read: its archive and index both run.
    pub(super) fn serves_data(&self) -> bool {
        let l = self.node.labels();
        l.iter().any(|c| c == "index") && l.iter().any(|c| c == "archive")
    }

    /// A coordinator's decision on its transaction `txn` for these partitions.
    async fn decide(
        &self,
        caller: &Caller,
        txn: [u8; 16],
        partitions: Vec<[u8; 16]>,
        commit: bool,
    ) -> DataResponse {
        let Caller::Member {
            id: coordinator, ..
        } = caller
        else {
            return err("transactions are decided only by cluster members");
        };
        let ids: Vec<uuid::Uuid> = partitions
            .iter()
            .map(|p| uuid::Uuid::from_bytes(*p))
            .collect();
        let txn = uuid::Uuid::from_bytes(txn);
        let r = if commit {
            self.node.commit_prepared(txn, coordinator, ids).await
        } else {
            self.node.abort_prepared(txn, coordinator, ids).await
        };
        match r {
            Ok(()) => DataResponse::Ack { seq: 0 },
            Err(e) => err(e),
        }
    }

    async fn handle(self: &Arc<Self>, peer: PeerId, req: DataRequest) -> DataResponse {
        let caller = self.caller(peer);
        if let Err(e) = access::data_request(&caller, &req) {
            tracing::warn!(node = %self.id, peer = %peer, kind = req.kind(), "refused: {e}");
            return DataResponse::NotMember(e.to_string());
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
                node,
                session,
                seq,
                batch,
                ..
            } => self.ingest(peer, node, session, seq, batch).await,
            DataRequest::Flush { node, session, .. } => {
                self.finish(peer, node, session, true).await
            }
            DataRequest::Abort { node, session, .. } => {
                self.finish(peer, node, session, false).await
            }
            DataRequest::Schemas => DataResponse::Schemas(self.node.known_schemas().await),
            DataRequest::Held => match self.held_here() {
                Some(h) => DataResponse::Held(h.into_iter().collect()),
                None if self.node.has_index_data() => err(super::UNAVAILABLE),
                None => DataResponse::Held(vec![]),
            },
            DataRequest::Lookup { .. } if !self.serves_data() => {
                if self.node.has_index_data() {
                    err(super::UNAVAILABLE)
                } else {
                    DataResponse::Hits(vec![])
                }
            }
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
                        batches: f
                            .selections
                            .iter()
                            .map(super::query::selection_bytes)
                            .collect(),
                        resume: f.resume,
                    },
                    Err(e) => err(e),
                }
            }
            DataRequest::ExportOpen {
                expr,
                limit,
                allow_partial,
                mode: mode @ (ExportMode::Continuous | ExportMode::Unified),
            } => {
                match self
                    .open_live(
                        peer,
                        expr,
                        (limit > 0).then_some(limit),
                        allow_partial,
                        mode,
                    )
                    .await
                {
                    Ok((cursor, warnings)) => DataResponse::Cursor { cursor, warnings },
                    Err(e) => err(e),
                }
            }
            DataRequest::ExportOpen {
                expr,
                limit,
                allow_partial,
                mode: ExportMode::History,
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
            DataRequest::Seal { partition, txn } => {
                let Caller::Member {
                    id: coordinator, ..
                } = &caller
                else {
                    return err("seal is accepted only from cluster members");
                };
                match self
                    .node
                    .seal_prepared(
                        uuid::Uuid::from_bytes(partition),
                        uuid::Uuid::from_bytes(txn),
                        coordinator,
                    )
                    .await
                {
                    Ok(()) => DataResponse::Ack { seq: 0 },
                    Err(e) => err(e),
                }
            }
            DataRequest::Commit { txn, partitions } => {
                self.decide(&caller, txn, partitions, true).await
            }
            DataRequest::AbortTxn { txn, partitions } => {
                self.decide(&caller, txn, partitions, false).await
            }
            DataRequest::Outcome { txn } if self.copy_in_flight(&uuid::Uuid::from_bytes(txn)) => {
                DataResponse::TxnOutcome {
                    committed: false,
                    pending: true,
                }
            }
            DataRequest::Outcome { txn } => {
                match self.node.outcome(uuid::Uuid::from_bytes(txn)).await {
                    crate::node::Outcome::Committed => DataResponse::TxnOutcome {
                        committed: true,
                        pending: false,
                    },
                    crate::node::Outcome::Pending => DataResponse::TxnOutcome {
                        committed: false,
                        pending: true,
                    },
                    crate::node::Outcome::Aborted => DataResponse::TxnOutcome {
                        committed: false,
                        pending: false,
                    },
                }
            }
            DataRequest::Discard { seq, batch } => {
                let checked = Batch::check_bytes(&batch);
                crate::data::pool::Pool::global().put(batch);
                match checked {
                    Ok(_) => DataResponse::Ack { seq },
                    Err(e) => err(e),
                }
            }
            r @ (DataRequest::LiveOpen { .. }
            | DataRequest::LiveNext { .. }
            | DataRequest::LiveClose { .. }) => self.serve_tap(&peer.to_string(), r).await,
        }
    }
}
