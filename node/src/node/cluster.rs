//! A node process in a cluster: membership (full mesh, reconnect with backoff),
//! the data-plane handler (ingest, flush, lookup, fetch, export cursors), the
//! control actor (`<id>/node`, kameo remote), and queries fanned out to members.

use super::Node;
use crate::archive::store::Selection;
use crate::data::Batch;
use crate::index::value_index::Hits;
use crate::net::{Client, Inbound, NetEvent, Network};
use crate::proto::{
    Control, ControlOp, ControlReply, DataRequest, DataResponse, Member, SpawnSpec, WireHits,
};
use crate::query::parse;
use kameo::prelude::*;
use libp2p::{Multiaddr, PeerId};
use roaring::RoaringBitmap;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// How long a member that holds data may take to answer a lookup.
pub const MEMBER_TIMEOUT: Duration = Duration::from_secs(2);

struct MemberState {
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    components: Vec<String>,
    connected: bool,
    next_dial: Instant,
    backoff: Duration,
}

struct ExportCursor {
    expr: String,
    hits: VecDeque<WireHits>,
    left: Option<u64>,
    pending: VecDeque<Vec<u8>>,
}

pub struct Cluster {
    pub node: Arc<Node>,
    pub net: Client,
    pub id: String,
    advertise: Vec<Multiaddr>,
    members: Mutex<BTreeMap<String, MemberState>>,
    cursors: Mutex<HashMap<u64, ExportCursor>>,
    next_cursor: AtomicU64,
    pub stopped: tokio::sync::Notify,
}

fn bitmap_bytes(b: &RoaringBitmap) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.serialized_size());
    b.serialize_into(&mut v)
        .expect("serializing into memory cannot fail");
    v
}

fn bitmap(bytes: &[u8]) -> Result<RoaringBitmap, String> {
    RoaringBitmap::deserialize_from(bytes).map_err(|e| format!("malformed bitmap: {e}"))
}

fn err(e: impl std::fmt::Display) -> DataResponse {
    DataResponse::Error(e.to_string())
}

impl Cluster {
    /// Starts the cluster side of `node` on a running network.
    pub fn start(node: Arc<Node>, net: Network, advertise: Vec<Multiaddr>) -> Arc<Cluster> {
        let Network {
            client,
            inbound,
            events,
        } = net;
        let c = Arc::new(Cluster {
            id: node.id.clone(),
            node,
            net: client,
            advertise,
            members: Mutex::new(BTreeMap::new()),
            cursors: Mutex::new(HashMap::new()),
            next_cursor: AtomicU64::new(1),
            stopped: tokio::sync::Notify::new(),
        });
        tokio::spawn(c.clone().serve(inbound));
        tokio::spawn(c.clone().watch(events));
        tokio::spawn(c.clone().maintain());
        c
    }

    /// Registers the control actor as `<id>/node`.
    pub async fn register(self: &Arc<Self>) -> Result<(), String> {
        let actor = NodeActor::spawn(NodeActor {
            cluster: self.clone(),
        });
        actor
            .register(format!("{}/node", self.id))
            .await
            .map_err(|e| format!("registering the control actor: {e}"))
    }

    /// This node as it describes itself to others.
    pub fn me(&self) -> Member {
        Member {
            id: self.id.clone(),
            peer: self.net.peer_id.to_base58(),
            addrs: self.advertise.iter().map(|a| a.to_string()).collect(),
            components: self.node.labels(),
        }
    }

    /// Dials `addr` and exchanges membership with whoever answers.
    pub async fn join(self: &Arc<Self>, addr: Multiaddr) -> Result<String, String> {
        let peer = self.net.dial(addr.clone()).await?;
        self.hello(peer).await
    }

    async fn hello(self: &Arc<Self>, peer: PeerId) -> Result<String, String> {
        let req = DataRequest::Hello { from: self.me() };
        let bytes = self.net.request(peer, req.encode()).await?;
        match DataResponse::decode(&bytes).map_err(|e| e.to_string())? {
            DataResponse::Hello { me, members } => {
                if me.id == self.id {
                    return Err(format!(
                        "node id {:?} is already used by the member at {}",
                        me.id,
                        me.addrs.join(", ")
                    ));
                }
                self.learn(&me, Some(peer));
                for m in members
                    .iter()
                    .filter(|m| m.id != self.id && !m.id.is_empty())
                {
                    self.learn(m, None);
                }
                Ok(me.id)
            }
            DataResponse::Error(e) => Err(e),
            other => Err(format!("unexpected hello answer: {other:?}")),
        }
    }

    /// Records a member; `peer` is set when we are connected to it right now.
    fn learn(&self, m: &Member, connected: Option<PeerId>) {
        let Ok(peer) = m.peer.parse::<PeerId>() else {
            tracing::warn!(member = %m.id, "ignoring a member with a malformed peer id");
            return;
        };
        let addrs: Vec<Multiaddr> = m.addrs.iter().filter_map(|a| a.parse().ok()).collect();
        let mut members = self.members.lock().expect("lock poisoned");
        let e = members.entry(m.id.clone()).or_insert_with(|| MemberState {
            peer,
            addrs: addrs.clone(),
            components: m.components.clone(),
            connected: false,
            next_dial: Instant::now(),
            backoff: Duration::from_millis(500),
        });
        e.peer = peer;
        if !addrs.is_empty() {
            e.addrs = addrs;
        }
        e.components = m.components.clone();
        if connected.is_some() {
            e.connected = true;
            e.backoff = Duration::from_millis(500);
        }
    }

    fn member_list(&self) -> Vec<Member> {
        let members = self.members.lock().expect("lock poisoned");
        members
            .iter()
            .map(|(id, m)| Member {
                id: id.clone(),
                peer: m.peer.to_base58(),
                addrs: m.addrs.iter().map(|a| a.to_string()).collect(),
                components: m.components.clone(),
            })
            .collect()
    }

    /// Ids of all members, self included.
    pub fn known_ids(&self) -> Vec<String> {
        let mut v = vec![self.id.clone()];
        v.extend(self.members.lock().expect("lock poisoned").keys().cloned());
        v.sort();
        v
    }

    fn peer_of(&self, id: &str) -> Result<PeerId, String> {
        let peer = self
            .members
            .lock()
            .expect("lock poisoned")
            .get(id)
            .map(|m| m.peer);
        match peer {
            Some(p) => Ok(p),
            None => Err(format!(
                "unknown node {id:?}; known nodes: {}",
                self.known_ids().join(", ")
            )),
        }
    }

    async fn watch(self: Arc<Self>, mut events: tokio::sync::mpsc::UnboundedReceiver<NetEvent>) {
        while let Some(ev) = events.recv().await {
            if let NetEvent::Disconnected(peer) = ev {
                let mut members = self.members.lock().expect("lock poisoned");
                for (id, m) in members.iter_mut() {
                    if m.peer == peer && m.connected {
                        tracing::warn!(member = %id, "member disconnected");
                        m.connected = false;
                        m.next_dial = Instant::now() + m.backoff;
                    }
                }
            }
        }
    }

    /// Keeps the mesh full: dials members we are not connected to, with backoff,
    /// and refreshes what connected members run.
    async fn maintain(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut refresh = Instant::now();
        loop {
            tick.tick().await;
            let due: Vec<(String, Vec<Multiaddr>)> = {
                let mut members = self.members.lock().expect("lock poisoned");
                let now = Instant::now();
                members
                    .iter_mut()
                    .filter(|(_, m)| !m.connected && m.next_dial <= now)
                    .map(|(id, m)| {
                        m.next_dial = now + m.backoff;
                        m.backoff = (m.backoff * 2).min(Duration::from_secs(10));
                        (id.clone(), m.addrs.clone())
                    })
                    .collect()
            };
            for (id, addrs) in due {
                let this = self.clone();
                tokio::spawn(async move {
                    for a in addrs {
                        if let Ok(Ok(_)) =
                            tokio::time::timeout(Duration::from_secs(3), this.join(a.clone())).await
                        {
                            tracing::info!(member = %id, addr = %a, "member reachable");
                            return;
                        }
                    }
                });
            }
            if refresh.elapsed() >= Duration::from_secs(3) {
                refresh = Instant::now();
                let peers: Vec<PeerId> = {
                    let members = self.members.lock().expect("lock poisoned");
                    members
                        .values()
                        .filter(|m| m.connected)
                        .map(|m| m.peer)
                        .collect()
                };
                for p in peers {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(3), this.hello(p)).await;
                    });
                }
            }
        }
    }

    async fn serve(self: Arc<Self>, mut inbound: tokio::sync::mpsc::Receiver<Inbound>) {
        while let Some(req) = inbound.recv().await {
            let this = self.clone();
            tokio::spawn(async move {
                let Inbound {
                    peer,
                    bytes,
                    channel,
                } = req;
                let resp = match DataRequest::decode_traced(&bytes) {
                    Ok((r, tp)) => {
                        let span = tracing::info_span!("data.request", node = %this.id, kind = r.kind(), bytes = bytes.len());
                        crate::telemetry::set_remote_parent(&span, &tp);
                        this.handle(peer, r).instrument(span).await
                    }
                    Err(e) => {
                        tracing::warn!(peer = %peer, error = %e, "rejected a malformed data-plane message");
                        err(e)
                    }
                };
                this.net.respond(channel, resp.encode()).await;
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

    /// The member that runs an importer, for nodes without one.
    fn importer_member(&self) -> Option<String> {
        let members = self.members.lock().expect("lock poisoned");
        members
            .iter()
            .find(|(_, m)| m.connected && m.components.iter().any(|c| c == "importer"))
            .map(|(id, _)| id.clone())
    }

    async fn handle(self: &Arc<Self>, peer: PeerId, req: DataRequest) -> DataResponse {
        match req {
            DataRequest::Hello { from } => {
                if !from.id.is_empty() {
                    if from.id == self.id {
                        return err(format!(
                            "node id {:?} is already taken by this node",
                            self.id
                        ));
                    }
                    let clash = {
                        let members = self.members.lock().expect("lock poisoned");
                        members
                            .get(&from.id)
                            .is_some_and(|m| m.connected && m.peer.to_base58() != from.peer)
                    };
                    if clash {
                        return err(format!(
                            "node id {:?} is already taken by another member",
                            from.id
                        ));
                    }
                    self.learn(&from, Some(peer));
                }
                DataResponse::Hello {
                    me: self.me(),
                    members: self.member_list(),
                }
            }
            DataRequest::Ingest { node, seq, batch } => {
                let target = if node.is_empty() || node == self.id {
                    None
                } else {
                    Some(node)
                };
                match target {
                    Some(t) => self
                        .ask_member(
                            &t,
                            DataRequest::Ingest {
                                node: t.clone(),
                                seq,
                                batch,
                            },
                            Duration::from_secs(60),
                        )
                        .await
                        .unwrap_or_else(err),
                    None => self.ingest_local(seq, batch).await,
                }
            }
            DataRequest::Flush { node } => {
                if !node.is_empty() && node != self.id {
                    return self
                        .ask_member(
                            &node,
                            DataRequest::Flush { node: node.clone() },
                            Duration::from_secs(300),
                        )
                        .await
                        .unwrap_or_else(err);
                }
                if !self.node.labels().iter().any(|l| l == "importer") {
                    return match self.importer_member() {
                        Some(m) => self
                            .ask_member(
                                &m,
                                DataRequest::Flush { node: m.clone() },
                                Duration::from_secs(300),
                            )
                            .await
                            .unwrap_or_else(err),
                        None => err(format!(
                            "node {} has no importer and knows no member with one",
                            self.id
                        )),
                    };
                }
                match self.node.flush().await {
                    Ok(events) => DataResponse::Flushed { events },
                    Err(e) => err(e),
                }
            }
            // An archive-only node's data is indexed elsewhere.
            DataRequest::Lookup { .. } if !self.node.labels().iter().any(|l| l == "index") => {
                DataResponse::Hits(vec![])
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
            } => {
                let (Ok(sure), Ok(maybe), Ok(e)) = (bitmap(&sure), bitmap(&maybe), parse(&expr))
                else {
                    return err("malformed fetch request");
                };
                let limit = (limit > 0).then_some(limit);
                match self
                    .node
                    .fetch(uuid::Uuid::from_bytes(partition), sure, maybe, e, limit)
                    .await
                {
                    Ok(sel) => DataResponse::Rows(sel.iter().map(selection_bytes).collect()),
                    Err(e) => err(e),
                }
            }
            DataRequest::ExportOpen {
                expr,
                limit,
                allow_partial,
            } => match self.lookup_all(&expr, allow_partial).await {
                Ok((hits, warnings)) => {
                    let id = self.next_cursor.fetch_add(1, Ordering::Relaxed);
                    self.cursors.lock().expect("lock poisoned").insert(
                        id,
                        ExportCursor {
                            expr,
                            hits: hits.into(),
                            left: (limit > 0).then_some(limit),
                            pending: VecDeque::new(),
                        },
                    );
                    DataResponse::Cursor {
                        cursor: id,
                        warnings,
                    }
                }
                Err(e) => err(e),
            },
            DataRequest::ExportNext { cursor } => self.export_next(cursor).await,
            DataRequest::Store {
                partition,
                offset,
                batch,
            } => match Batch::from_bytes(&batch) {
                Ok(b) => match self
                    .node
                    .store(uuid::Uuid::from_bytes(partition), offset, b)
                    .await
                {
                    Ok(()) => DataResponse::Ack { seq: offset as u64 },
                    Err(e) => err(e),
                },
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
        if !self.node.labels().iter().any(|l| l == "importer") {
            // A node without an importer forwards to a member that has one.
            return match self.importer_member() {
                Some(m) => self
                    .ask_member(
                        &m,
                        DataRequest::Ingest {
                            node: m.clone(),
                            seq,
                            batch,
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
        if self.node.labels().iter().any(|l| l == "index") {
            let span = tracing::info_span!("query.lookup", member = %self.id);
            out.extend(
                self.node
                    .lookup(parsed)
                    .instrument(span)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        let holders: Vec<String> = {
            let members = self.members.lock().expect("lock poisoned");
            members
                .iter()
                .filter(|(_, m)| m.components.iter().any(|c| c == "index"))
                .map(|(id, _)| id.clone())
                .collect()
        };
        let asks = holders.iter().map(|id| {
            let this = self.clone();
            let expr = expr.to_string();
            async move {
                (
                    id.clone(),
                    this.ask_member(id, DataRequest::Lookup { expr }, MEMBER_TIMEOUT)
                        .await,
                )
            }
        });
        for (id, r) in futures::future::join_all(asks).await {
            match r {
                Ok(DataResponse::Hits(h)) => out.extend(h),
                Ok(other) => return Err(format!("node {id}: unexpected answer {other:?}")),
                Err(e) if allow_partial => warnings.push(format!("partial answer: {e}")),
                Err(e) => {
                    return Err(format!(
                        "query incomplete: {e} (use --allow-partial to accept a partial answer)"
                    ))
                }
            }
        }
        // Import order: partition ids are time-ordered UUIDs.
        out.sort_by_key(|h| h.partition);
        Ok((out, warnings))
    }

    #[tracing::instrument(name = "query.fetch", skip_all, fields(archive = %h.archive, schema = %h.schema))]
    async fn fetch_from(
        &self,
        h: &WireHits,
        expr: &str,
        limit: Option<u64>,
        sure: bool,
    ) -> Result<Vec<Vec<u8>>, String> {
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
            let sel = self
                .node
                .fetch(uuid::Uuid::from_bytes(h.partition), s, m, e, limit)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(sel.iter().map(selection_bytes).collect());
        }
        let req = DataRequest::Fetch {
            partition: h.partition,
            sure: sure_bytes,
            maybe: h.maybe.clone(),
            expr: expr.to_string(),
            limit: limit.unwrap_or(0),
        };
        match self
            .ask_member(&owner, req, Duration::from_secs(60))
            .await?
        {
            DataResponse::Rows(r) => Ok(r),
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
            for b in self.fetch_from(&h, expr, None, false).await? {
                n += Batch::from_bytes(&b).map_err(|e| e.to_string())?.rows as u64;
            }
        }
        Ok((n, warnings))
    }

    #[tracing::instrument(name = "query.stream", skip_all, fields(node = %self.id, cursor = id))]
    async fn export_next(self: &Arc<Self>, id: u64) -> DataResponse {
        loop {
            let next = {
                let mut cursors = self.cursors.lock().expect("lock poisoned");
                let Some(c) = cursors.get_mut(&id) else {
                    return err(format!("unknown export cursor {id}"));
                };
                if let Some(rows) = c.pending.pop_front() {
                    return DataResponse::Rows(vec![rows]);
                }
                if c.left == Some(0) {
                    cursors.remove(&id);
                    return DataResponse::End;
                }
                match c.hits.pop_front() {
                    Some(h) => (h, c.expr.clone(), c.left),
                    None => {
                        cursors.remove(&id);
                        return DataResponse::End;
                    }
                }
            };
            let (h, expr, left) = next;
            match self.fetch_from(&h, &expr, left, true).await {
                Ok(rows) => {
                    let mut cursors = self.cursors.lock().expect("lock poisoned");
                    if let Some(c) = cursors.get_mut(&id) {
                        for r in rows {
                            if let Some(l) = c.left.as_mut() {
                                // Rows of a fetch already respect the limit we passed.
                                let n = Batch::from_bytes(&r).map(|b| b.rows as u64).unwrap_or(0);
                                *l = l.saturating_sub(n);
                            }
                            c.pending.push_back(r);
                        }
                    }
                }
                Err(e) => {
                    self.cursors.lock().expect("lock poisoned").remove(&id);
                    return err(e);
                }
            }
        }
    }

    /// Membership as JSON for `vast peers`.
    pub fn peers_json(&self) -> serde_json::Value {
        let members = self.members.lock().expect("lock poisoned");
        let mut v = vec![serde_json::json!({
            "id": self.id, "peer": self.net.peer_id.to_base58(),
            "addrs": self.advertise.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "components": self.node.labels(), "reachable": true, "self": true,
        })];
        for (id, m) in members.iter() {
            v.push(serde_json::json!({
                "id": id, "peer": m.peer.to_base58(),
                "addrs": m.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "components": m.components, "reachable": m.connected,
            }));
        }
        serde_json::Value::Array(v)
    }

    /// Runs a control operation here, or relays it to the member it names.
    pub async fn control(self: &Arc<Self>, c: Control) -> Result<ControlReply, String> {
        if let Some(target) = c.node.as_deref().filter(|t| *t != self.id) {
            self.peer_of(target)?;
            let remote = lookup_node(target, Duration::from_secs(5)).await?;
            return remote
                .ask(&Control {
                    node: None,
                    op: c.op,
                    traceparent: crate::telemetry::current_traceparent(),
                })
                .await
                .map_err(|e| remote_error(target, e));
        }
        match c.op {
            ControlOp::Status { detailed } => {
                let mut s = self
                    .node
                    .status(detailed)
                    .await
                    .map_err(|e| e.to_string())?;
                s["peer"] = serde_json::json!(self.net.peer_id.to_base58());
                Ok(ControlReply::Json(s.to_string()))
            }
            ControlOp::Peers => Ok(ControlReply::Json(self.peers_json().to_string())),
            ControlOp::Stop => {
                self.stopped.notify_one();
                Ok(ControlReply::Done)
            }
            ControlOp::Kill { label } => {
                self.node.kill(&label).await.map_err(|e| e.to_string())?;
                Ok(ControlReply::Done)
            }
            ControlOp::Spawn(spec) => self.spawn(spec).await.map(ControlReply::Label),
            ControlOp::Count {
                expr,
                estimate,
                allow_partial,
            } => {
                let (count, warnings) = self.count(&expr, estimate, allow_partial).await?;
                Ok(ControlReply::Count { count, warnings })
            }
        }
    }

    async fn spawn(self: &Arc<Self>, spec: SpawnSpec) -> Result<String, String> {
        match spec {
            SpawnSpec::Component(c) => self
                .node
                .spawn_component(&c)
                .await
                .map_err(|e| e.to_string()),
            SpawnSpec::Source {
                path,
                interface,
                bpf,
                snaplen,
                cutoff,
                format,
                schema,
            } => {
                use crate::source::format::{make_reader, open_input, Format, ReaderOptions};
                let f: Format = format.parse()?;
                let (reader, description): (Box<dyn crate::source::Reader>, String) =
                    match (interface, path) {
                        (Some(_), Some(_)) => {
                            return Err("spawn source takes -r FILE or -i IFACE, not both".into())
                        }
                        (Some(iface), None) => {
                            if f != Format::Pcap {
                                return Err(format!(
                                    "capturing from an interface needs the pcap format, not {format}"
                                ));
                            }
                            let id = self.id.clone();
                            let i = iface.clone();
                            let r = tokio::task::spawn_blocking(move || {
                                crate::source::format::pcap::live::PcapLiveReader::open(
                                    &i,
                                    bpf.as_deref(),
                                    snaplen.unwrap_or(65535),
                                    cutoff,
                                )
                            })
                            .await
                            .map_err(|e| e.to_string())?
                            .map_err(|e| format!("node {id}: {e}"))?;
                            (Box::new(r), format!("interface {iface}"))
                        }
                        (None, Some(path)) => {
                            let input = open_input(Some(std::path::Path::new(&path)))
                                .map_err(|e| format!("node {}: cannot read {path}: {e}", self.id))?;
                            let r = make_reader(
                                f,
                                input,
                                &ReaderOptions {
                                    schema,
                                    cutoff,
                                    ..Default::default()
                                },
                            )
                            .map_err(|e| format!("node {}: {e}", self.id))?;
                            (r, path)
                        }
                        (None, None) => {
                            return Err(
                                "spawn source needs -r FILE or -i IFACE (stdin belongs to the node process)"
                                    .into(),
                            )
                        }
                    };
                let opts = crate::source::actor::SourceOptions {
                    limit: None,
                    filter: None,
                    batch_size: self.node.options().batch_size,
                    description,
                    format,
                };
                let (label, _task) = self
                    .node
                    .spawn_source(reader, opts)
                    .map_err(|e| e.to_string())?;
                Ok(label)
            }
        }
    }
}

fn selection_bytes(s: &Selection) -> Vec<u8> {
    if s.rows.len() == s.batch.rows as usize {
        s.batch.to_bytes()
    } else {
        s.batch.select(&s.rows).to_bytes()
    }
}

/// The control actor of a node, registered as `<id>/node`.
#[derive(RemoteActor)]
pub struct NodeActor {
    cluster: Arc<Cluster>,
}

impl Actor for NodeActor {
    type Args = Self;
    type Error = std::convert::Infallible;

    async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Self::Error> {
        Ok(state)
    }
}

#[kameo::remote_message]
impl Message<Control> for NodeActor {
    type Reply = DelegatedReply<Result<ControlReply, String>>;

    async fn handle(&mut self, c: Control, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        // Relays and queries may take a while: answer from a task so this actor
        // keeps taking control messages.
        let cluster = self.cluster.clone();
        let (delegated, reply) = ctx.reply_sender();
        let span = tracing::info_span!("node.control", node = %cluster.id, op = ?c.op, target = c.node.as_deref().unwrap_or(""));
        crate::telemetry::set_remote_parent(&span, &c.traceparent);
        if let Some(reply) = reply {
            tokio::spawn(
                async move {
                    reply.send(cluster.control(c).await);
                }
                .instrument(span),
            );
        }
        delegated
    }
}

/// Finds the control actor of node `id`, retrying while the registry catches up.
pub async fn lookup_node(id: &str, wait: Duration) -> Result<RemoteActorRef<NodeActor>, String> {
    let deadline = Instant::now() + wait;
    let name = format!("{id}/node");
    loop {
        match RemoteActorRef::<NodeActor>::lookup(name.clone()).await {
            Ok(Some(r)) => return Ok(r),
            Ok(None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Ok(None) => {
                return Err(format!(
                    "node {id} is not reachable (no control actor {name} found)"
                ))
            }
            Err(e) => return Err(format!("looking up node {id}: {e}")),
        }
    }
}

fn remote_error(node: &str, e: kameo::error::RemoteSendError<String>) -> String {
    match e {
        kameo::error::RemoteSendError::HandlerError(s) => s,
        other => format!("node {node}: {other}"),
    }
}

/// The cluster as the importer's remote store: partitions placed on other nodes
/// travel over the data plane.
pub struct ClusterStore(pub std::sync::Weak<Cluster>);

#[async_trait::async_trait]
impl crate::importer::RemoteStore for ClusterStore {
    async fn store(
        &self,
        node: &str,
        id: uuid::Uuid,
        offset: u32,
        batch: Arc<Batch>,
    ) -> Result<(), String> {
        let c = self.0.upgrade().ok_or("node is shutting down")?;
        let req = DataRequest::Store {
            partition: *id.as_bytes(),
            offset,
            batch: batch.to_bytes(),
        };
        c.ask_member(node, req, Duration::from_secs(60))
            .await
            .map(|_| ())
    }

    async fn seal(&self, node: &str, id: uuid::Uuid) -> Result<(), String> {
        let c = self.0.upgrade().ok_or("node is shutting down")?;
        let req = DataRequest::Seal {
            partition: *id.as_bytes(),
        };
        c.ask_member(node, req, Duration::from_secs(300))
            .await
            .map(|_| ())
    }

    fn stores(&self) -> Vec<String> {
        let Some(c) = self.0.upgrade() else {
            return vec![];
        };
        let members = c.members.lock().expect("lock poisoned");
        members
            .iter()
            .filter(|(_, m)| {
                m.connected
                    && m.components.iter().any(|x| x == "archive")
                    && m.components.iter().any(|x| x == "index")
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn this_node(&self) -> String {
        self.0.upgrade().map(|c| c.id.clone()).unwrap_or_default()
    }
}
