//! Import sessions as clients see them: a client names its import with a random
//! id; the node keys it by the client's authenticated PeerId and that id, routes
//! it to its own importer or relays it to the member that imports, and aborts it
//! when the client goes away. A participant also resolves the partitions it
//! prepared for other nodes' imports: it asks their coordinator for the outcome.

use super::{err, Cluster};
use crate::importer::SessionId;
use crate::node::access::Caller;
use crate::node::Outcome;
use crate::proto::{DataRequest, DataResponse};
use libp2p::PeerId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Open imports one client (not a member) may hold at once.
const MAX_SESSIONS_PER_CLIENT: usize = 16;

/// Where a client's session goes.
#[derive(Clone, Debug)]
pub(super) enum Route {
    /// This node's importer, under this session id.
    Local(SessionId),
    /// Relayed to the member with this id.
    Relayed(String),
}

#[derive(Default)]
pub(super) struct Sessions {
    map: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    routes: HashMap<(PeerId, [u8; 16]), Route>,
    /// Clients whose connection closed, and when: a request of theirs still in
    /// flight must not open a session after their sessions were aborted.
    gone: HashMap<PeerId, std::time::Instant>,
}

/// How long a closed client is remembered (its requests in flight end sooner).
const GONE_FOR: Duration = Duration::from_secs(600);

impl Cluster {
    /// The route of a client's session, opened on its first batch. A client that
    /// is not a member may hold only a few open imports (each keeps partitions in
    /// memory); members relay for many clients, each capped where it entered.
    fn route(
        &self,
        peer: PeerId,
        session: [u8; 16],
        target: Option<String>,
    ) -> Result<Route, String> {
        let mut table = self.sessions.map.lock().expect("lock poisoned");
        if table.gone.contains_key(&peer) {
            return Err("this client's connection closed; its imports were aborted".into());
        }
        let map = &mut table.routes;
        if let Some(r) = map.get(&(peer, session)) {
            return Ok(r.clone());
        }
        // Only a session's first batch pays for these checks.
        let member = matches!(self.caller(peer), Caller::Member { .. });
        let open = map.keys().filter(|(p, _)| *p == peer).count();
        if !member && open >= MAX_SESSIONS_PER_CLIENT {
            return Err(format!(
                "too many open imports for this client ({open}, limit {MAX_SESSIONS_PER_CLIENT})"
            ));
        }
        let r = match target {
            Some(t) => Route::Relayed(t),
            None => Route::Local(uuid::Uuid::now_v7()),
        };
        map.insert((peer, session), r.clone());
        Ok(r)
    }

    fn end_route(&self, peer: PeerId, session: [u8; 16]) -> Option<Route> {
        self.sessions
            .map
            .lock()
            .expect("lock poisoned")
            .routes
            .remove(&(peer, session))
    }

    /// A client connected (again): it may open sessions.
    pub(super) fn client_connected(&self, peer: PeerId) {
        self.sessions
            .map
            .lock()
            .expect("lock poisoned")
            .gone
            .remove(&peer);
    }

    /// Where imports to node `node` (empty: this one) go from here: this node's
    /// importer, or the member that imports for it.
    fn import_target(&self, node: &str) -> Result<Option<String>, String> {
        if !node.is_empty() && node != self.id {
            return Ok(Some(node.to_string()));
        }
        if self.node.labels().iter().any(|l| l == "importer") {
            return Ok(None);
        }
        match self.members_with("importer").first() {
            Some(m) => Ok(Some(m.clone())),
            None => Err(format!(
                "node {} has no importer and knows no member with one",
                self.id
            )),
        }
    }

    pub(super) async fn ingest(
        self: &Arc<Self>,
        peer: PeerId,
        node: String,
        session: [u8; 16],
        seq: u64,
        batch: Vec<u8>,
    ) -> DataResponse {
        let target = match self.import_target(&node) {
            Ok(t) => t,
            Err(e) => return err(e),
        };
        // A batch for this node is checked before it may open a session; the
        // member a batch is relayed to checks it there.
        let local = if target.is_none() {
            match crate::data::Batch::from_bytes(&batch) {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!(error = %e, "rejected a malformed batch");
                    return err(e);
                }
            }
        } else {
            None
        };
        let route = match self.route(peer, session, target) {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        match (route, local) {
            (Route::Local(s), Some(decoded)) => {
                // Decoded: the frame's buffer can take the next frame.
                crate::data::pool::Pool::global().put(batch);
                match self.node.ingest(s, decoded).await {
                    Ok(()) => DataResponse::Ack { seq },
                    Err(e) => err(e),
                }
            }
            (Route::Relayed(t), _) => self
                .ask_member(
                    &t,
                    DataRequest::Ingest {
                        node: t.clone(),
                        session,
                        seq,
                        batch,
                        forwarded: true,
                    },
                    Duration::from_secs(60),
                )
                .await
                .unwrap_or_else(err),
            // The session began elsewhere than this batch is headed (the node's
            // importer came or went mid-import): that import cannot go on.
            (Route::Local(_), None) => err(
                "this import began on this node's importer, which is no longer where it goes; start it again",
            ),
        }
    }

    /// Ends a client's session: commits it (`commit`) or aborts it.
    pub(super) async fn finish(
        self: &Arc<Self>,
        peer: PeerId,
        node: String,
        session: [u8; 16],
        commit: bool,
    ) -> DataResponse {
        let route = match self.end_route(peer, session) {
            Some(r) => r,
            // A session that sent nothing: relay the end so the importer answers.
            None => match self.import_target(&node) {
                Ok(Some(t)) => Route::Relayed(t),
                Ok(None) => Route::Local(uuid::Uuid::now_v7()),
                Err(e) => return err(e),
            },
        };
        self.end(route, session, commit).await
    }

    /// Commits or aborts a session along its route: here, or at the member it
    /// was relayed to.
    async fn end(&self, route: Route, session: [u8; 16], commit: bool) -> DataResponse {
        match route {
            Route::Relayed(t) => {
                let req = if commit {
                    DataRequest::Flush {
                        node: t.clone(),
                        session,
                        forwarded: true,
                    }
                } else {
                    DataRequest::Abort {
                        node: t.clone(),
                        session,
                        forwarded: true,
                    }
                };
                self.ask_member(&t, req, Duration::from_secs(300))
                    .await
                    .unwrap_or_else(err)
            }
            Route::Local(s) if commit => match self.node.flush(s).await {
                Ok(events) => DataResponse::Flushed { events },
                Err(e) => err(e),
            },
            Route::Local(s) => match self.node.abort(s).await {
                Ok(()) => DataResponse::Flushed { events: 0 },
                Err(e) => err(e),
            },
        }
    }

    /// A client went away: its open imports leave nothing behind.
    pub(super) async fn abort_sessions_of(self: &Arc<Self>, peer: PeerId) {
        let gone: Vec<([u8; 16], Route)> = {
            let mut table = self.sessions.map.lock().expect("lock poisoned");
            let now = std::time::Instant::now();
            table
                .gone
                .retain(|_, at| now.duration_since(*at) < GONE_FOR);
            table.gone.insert(peer, now);
            let map = &mut table.routes;
            let keys: Vec<(PeerId, [u8; 16])> =
                map.keys().filter(|(p, _)| *p == peer).copied().collect();
            keys.into_iter()
                .filter_map(|k| map.remove(&k).map(|r| (k.1, r)))
                .collect()
        };
        for (session, route) in gone {
            tracing::warn!(peer = %peer, "a client went away during an import; aborting it");
            let _ = self.end(route, session, false).await;
        }
    }

    /// Learns the outcome of transactions this node prepared partitions for, from
    /// their coordinators, until none is left open.
    pub(super) async fn resolve_prepared(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            for (txn, coordinator, parts) in self.node.pending_transactions() {
                if coordinator == self.id {
                    continue;
                }
                let ask = DataRequest::Outcome {
                    txn: *txn.as_bytes(),
                };
                let outcome = match self
                    .ask_member(&coordinator, ask, Duration::from_secs(5))
                    .await
                {
                    Ok(DataResponse::TxnOutcome {
                        committed: true, ..
                    }) => Outcome::Committed,
                    Ok(DataResponse::TxnOutcome { pending: true, .. }) => Outcome::Pending,
                    Ok(DataResponse::TxnOutcome { .. }) => Outcome::Aborted,
                    // Not reachable now: ask again later.
                    _ => Outcome::Pending,
                };
                let r = match outcome {
                    Outcome::Committed => self.node.commit_prepared(txn, &coordinator, parts).await,
                    Outcome::Aborted => self.node.abort_prepared(txn, &coordinator, parts).await,
                    Outcome::Pending => Ok(()),
                };
                match (outcome, r) {
                    (Outcome::Pending, _) => {}
                    (o, Ok(())) => {
                        tracing::info!(txn = %txn, coordinator = %coordinator, outcome = ?o, "learned the outcome of an import prepared here")
                    }
                    (_, Err(e)) => {
                        tracing::warn!(txn = %txn, error = %e, "applying an import's outcome failed")
                    }
                }
            }
        }
    }
}
