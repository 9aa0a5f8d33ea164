//! Membership: a full mesh of authenticated members. A member is who its
//! connection authenticated as; a node id is pinned to the PeerId first seen with
//! it (persisted in the database directory), and a different PeerId claiming a
//! pinned id is refused. What members say about third parties is hearsay: it
//! gives addresses to dial, never an identity or a component list.

use super::Cluster;
use crate::node::access::Caller;
use crate::proto::{DataRequest, DataResponse, Member};
use libp2p::{Multiaddr, PeerId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) struct MemberState {
    /// The PeerId this member authenticated as; `None` while only heard of.
    pub peer: Option<PeerId>,
    pub addrs: Vec<Multiaddr>,
    pub components: Vec<String>,
    pub connected: bool,
    /// Ever ran an archive or index: its data counts even while it is away.
    pub holds_data: bool,
    pub next_dial: Instant,
    pub backoff: Duration,
    /// The committed partitions it said it holds, last time it was asked.
    pub held: Option<super::replicas::Held>,
    /// When its connection went away (while it is away).
    pub down_since: Option<Instant>,
}

impl MemberState {
    /// A member known by name only: not authenticated, not connected, due for a dial.
    fn heard_of() -> MemberState {
        MemberState {
            peer: None,
            addrs: vec![],
            components: vec![],
            connected: false,
            holds_data: false,
            next_dial: Instant::now(),
            backoff: Duration::from_millis(500),
            held: None,
            down_since: None,
        }
    }
}

/// Node ids pinned to PeerIds, one `id peer` line each in `<db>/members.pins`.
pub(super) struct Pins {
    path: PathBuf,
    map: BTreeMap<String, PeerId>,
}

impl Pins {
    pub fn load(db: &Path) -> Result<Pins, String> {
        let path = db.join("members.pins");
        let mut map = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate() {
                    let bad = || {
                        format!(
                            "{}:{}: expected `<node-id> <peer-id>`",
                            path.display(),
                            i + 1
                        )
                    };
                    let (id, peer) = line.trim().split_once(' ').ok_or_else(bad)?;
                    let peer: PeerId = peer.trim().parse().map_err(|_| bad())?;
                    map.insert(id.to_string(), peer);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        Ok(Pins { path, map })
    }

    /// Pins `id` to `peer` on first contact; refuses another PeerId later.
    fn check(&mut self, id: &str, peer: PeerId) -> Result<(), String> {
        match self.map.get(id) {
            Some(p) if *p == peer => Ok(()),
            Some(p) => Err(format!(
                "node id {id:?} is already pinned to peer {p}; refusing peer {peer}, a different identity claiming it (remove the line from {} if {id} was rebuilt)",
                self.path.display()
            )),
            None => {
                self.map.insert(id.to_string(), peer);
                let text: String = self
                    .map
                    .iter()
                    .map(|(i, p)| format!("{i} {p}\n"))
                    .collect();
                crate::durable::write_raw_atomic(&self.path, text.as_bytes())
                    .map_err(|e| format!("pinning node {id}: {e}"))
            }
        }
    }
}

impl Cluster {
    /// This node as it describes itself to others.
    pub fn me(&self) -> Member {
        Member {
            id: self.id.clone(),
            peer: self.net.peer_id.to_base58(),
            addrs: self.opts.advertise.iter().map(|a| a.to_string()).collect(),
            components: self.node.labels(),
        }
    }

    /// Dials `addr` and exchanges membership with whoever answers.
    pub async fn join(self: &Arc<Self>, addr: Multiaddr) -> Result<String, String> {
        let peer = self.net.dial(addr.clone()).await?;
        self.hello(peer).await
    }

    pub(super) async fn hello(&self, peer: PeerId) -> Result<String, String> {
        let req = DataRequest::Hello { from: self.me() };
        let bytes = self.net.request(peer, req.into_frame()).await?;
        match DataResponse::decode(&bytes).map_err(|e| e.to_string())? {
            DataResponse::Hello { me, members } => {
                self.authenticate(&me, peer)?;
                for m in &members {
                    self.hearsay(m);
                }
                Ok(me.id)
            }
            DataResponse::Error(e) => Err(e),
            other => Err(format!("unexpected hello answer: {other:?}")),
        }
    }

    /// Records `m` as the member behind the connection from `peer`: the id must be
    /// free or pinned to that very PeerId. The claimed PeerId inside `m` is ignored.
    pub(super) fn authenticate(&self, m: &Member, peer: PeerId) -> Result<(), String> {
        if m.id.is_empty() || m.id.contains('/') {
            return Err(format!("malformed node id {:?}", m.id));
        }
        if m.id == self.id {
            return Err(format!(
                "node id {:?} is already taken by this node (peer {})",
                self.id, self.net.peer_id
            ));
        }
        if let Err(e) = self.pins.lock().expect("lock poisoned").check(&m.id, peer) {
            tracing::warn!(node = %self.id, claimed = %m.id, peer = %peer, "refused a peer claiming a node id pinned to another identity");
            return Err(e);
        }
        let addrs: Vec<Multiaddr> = m.addrs.iter().filter_map(|a| a.parse().ok()).collect();
        let mut members = self.members.lock().expect("lock poisoned");
        let e = members
            .entry(m.id.clone())
            .or_insert_with(MemberState::heard_of);
        e.peer = Some(peer);
        if !addrs.is_empty() {
            e.addrs = addrs;
        }
        e.components = m.components.clone();
        e.holds_data |= m.components.iter().any(|c| c == "archive" || c == "index");
        e.connected = true;
        e.down_since = None;
        e.backoff = Duration::from_millis(500);
        Ok(())
    }

    /// A member another member told us about: an address to dial, nothing more.
    fn hearsay(&self, m: &Member) {
        if m.id.is_empty() || m.id == self.id || m.id.contains('/') {
            return;
        }
        let addrs: Vec<Multiaddr> = m.addrs.iter().filter_map(|a| a.parse().ok()).collect();
        let mut members = self.members.lock().expect("lock poisoned");
        let e = members
            .entry(m.id.clone())
            .or_insert_with(MemberState::heard_of);
        if e.addrs.is_empty() {
            e.addrs = addrs;
        }
    }

    /// Members we authenticated ourselves, as we vouch for them to others.
    pub(super) fn member_list(&self) -> Vec<Member> {
        let members = self.members.lock().expect("lock poisoned");
        members
            .iter()
            .filter_map(|(id, m)| {
                Some(Member {
                    id: id.clone(),
                    peer: m.peer?.to_base58(),
                    addrs: m.addrs.iter().map(|a| a.to_string()).collect(),
                    components: m.components.clone(),
                })
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

    /// The authenticated PeerId of member `id`.
    pub(super) fn peer_of(&self, id: &str) -> Result<PeerId, String> {
        let peer = self
            .members
            .lock()
            .expect("lock poisoned")
            .get(id)
            .map(|m| m.peer);
        match peer {
            Some(Some(p)) => Ok(p),
            Some(None) => Err(format!("node {id} is not reachable yet (never connected)")),
            None => Err(format!(
                "unknown node {id:?}; known nodes: {}",
                self.known_ids().join(", ")
            )),
        }
    }

    /// Who `peer` is: a member if a node id is pinned to it, else an operator.
    pub(super) fn caller(&self, peer: PeerId) -> Caller {
        let members = self.members.lock().expect("lock poisoned");
        match members.iter().find(|(_, m)| m.peer == Some(peer)) {
            Some((id, _)) => Caller::Member {
                id: id.clone(),
                peer,
            },
            None => Caller::Operator(peer),
        }
    }

    /// Connected members that run `component`.
    pub(super) fn members_with(&self, component: &str) -> Vec<String> {
        let members = self.members.lock().expect("lock poisoned");
        members
            .iter()
            .filter(|(_, m)| {
                m.connected && m.peer.is_some() && m.components.iter().any(|c| c == component)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub(super) async fn watch(
        self: Arc<Self>,
        mut events: tokio::sync::mpsc::UnboundedReceiver<crate::net::NetEvent>,
    ) {
        while let Some(ev) = events.recv().await {
            if let crate::net::NetEvent::Connected(peer) = ev {
                self.client_connected(peer);
            }
            if let crate::net::NetEvent::Disconnected(peer) = ev {
                let this = self.clone();
                tokio::spawn(async move { this.abort_sessions_of(peer).await });
                self.node.taps().close_owner(&peer.to_string());
                let closed = self.cursors.close_peer(peer);
                if closed > 0 {
                    tracing::info!(peer = %peer, cursors = closed, "closed the export cursors of a client that went away");
                }
                let mut members = self.members.lock().expect("lock poisoned");
                for (id, m) in members.iter_mut() {
                    if m.peer == Some(peer) && m.connected {
                        tracing::warn!(member = %id, "member disconnected");
                        m.connected = false;
                        m.down_since = Some(Instant::now());
                        m.next_dial = Instant::now() + m.backoff;
                    }
                }
            }
        }
    }

    /// Keeps the mesh full: dials members we are not connected to, with backoff,
    /// and refreshes what connected members run.
    pub(super) async fn maintain(self: Arc<Self>) {
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
                        match tokio::time::timeout(Duration::from_secs(3), this.join(a.clone()))
                            .await
                        {
                            Ok(Ok(_)) => {
                                tracing::info!(member = %id, addr = %a, "member reachable");
                                return;
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(member = %id, addr = %a, error = %e, "member not reachable")
                            }
                            Err(_) => {}
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
                        .filter_map(|m| m.peer)
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

    /// Membership as JSON for `vast peers`.
    pub fn peers_json(&self) -> serde_json::Value {
        // Before the members lock: it takes that lock itself.
        let replication = self.replication_json(false);
        let members = self.members.lock().expect("lock poisoned");
        let mut v = vec![serde_json::json!({
            "id": self.id, "peer": self.net.peer_id.to_base58(),
            "addrs": self.opts.advertise.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "components": self.node.labels(), "reachable": true, "self": true,
            "partitions": replication["partitions"],
            "under-replicated": replication["under-replicated"],
        })];
        for (id, m) in members.iter() {
            v.push(serde_json::json!({
                "id": id, "peer": m.peer.map(|p| p.to_base58()),
                "addrs": m.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "components": m.components, "reachable": m.connected,
                "partitions": m.held.as_ref().map(|h| h.len()),
            }));
        }
        serde_json::Value::Array(v)
    }
}
