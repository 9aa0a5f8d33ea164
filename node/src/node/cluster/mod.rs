//! A node process in a cluster, one file per concern:
//!
//! - `membership`: who the members are (authenticated PeerIds, node ids pinned to
//!   them), the full mesh, reconnects with backoff;
//! - `service`: the data-plane handler, every request checked by
//!   [`crate::node::access`] first;
//! - `query`: queries fanned out to members, paged row fetches;
//! - `cursors`: export cursors, bound to their client, capped and expiring;
//! - `live`: continuous and unified exports, fed by live taps on every member;
//! - `control`: the control actor (`<id>/node`, kameo remote) and relays;
//! - `spawn`: components and confined sources started on request;
//! - `store`: partitions placed on other members;
//! - `replicas`: what members hold, reading each partition once, and copying
//!   partitions that lack replicas.

mod control;
mod cursors;
mod live;
mod membership;
mod query;
mod replicas;
mod service;
mod sessions;
mod spawn;
mod store;

pub use control::{lookup_node, NodeActor};
pub use store::ClusterStore;

use super::access::SourcePolicy;
use super::Node;
use crate::net::{Client, Network};
use crate::proto::DataResponse;
use cursors::Cursors;
use libp2p::Multiaddr;
use membership::{MemberState, Pins};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a node that holds data cannot answer for it.
const UNAVAILABLE: &str =
    "its archive or index is stopped, so its data is unavailable (spawn them again)";

/// How long a member that holds data may take to answer a lookup.
pub const MEMBER_TIMEOUT: Duration = Duration::from_secs(2);

/// What the cluster side of a node needs besides the node and the network.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Addresses other members dial to reach this node.
    pub advertise: Vec<Multiaddr>,
    /// Largest data-plane frame; answers are paged to fit.
    pub max_frame: usize,
    /// Inbound requests handled at once.
    pub max_inflight_requests: usize,
    /// Open export cursors per client.
    pub max_cursors_per_peer: usize,
    /// Idle time after which an export cursor (and a live tap) is closed.
    pub cursor_idle: Duration,
    /// Bytes of live rows a tap buffers for a continuous export that lags.
    pub live_buffer: usize,
    /// What spawned sources may read and capture on.
    pub sources: SourcePolicy,
    /// Holders each committed partition should have (`import.replicas`).
    pub replicas: usize,
    /// How long a holder may be away before its partitions are copied elsewhere.
    pub replica_timeout: Duration,
}

pub struct Cluster {
    pub node: Arc<Node>,
    pub net: Client,
    pub id: String,
    opts: ClusterOptions,
    members: Mutex<BTreeMap<String, MemberState>>,
    pins: Mutex<Pins>,
    cursors: Cursors,
    sessions: sessions::Sessions,
    /// What this node held at the last round (for queries while it cannot answer).
    held_self: Mutex<Option<replicas::Held>>,
    /// Partitions that lacked replicas at the last round.
    lacking: Mutex<std::collections::HashSet<[u8; 16]>>,
    /// Copy transactions this node is making now.
    copying: Mutex<std::collections::HashSet<uuid::Uuid>>,
    pub stopped: tokio::sync::Notify,
}

fn err(e: impl std::fmt::Display) -> DataResponse {
    DataResponse::Error(e.to_string())
}

impl Cluster {
    /// Starts the cluster side of `node` on a running network.
    pub fn start(
        node: Arc<Node>,
        net: Network,
        opts: ClusterOptions,
    ) -> Result<Arc<Cluster>, String> {
        let Network {
            client,
            inbound,
            events,
        } = net;
        let pins = Pins::load(&node.options().db)?;
        node.taps().set_max_bytes(opts.live_buffer);
        node.taps().set_item_bytes((opts.max_frame / 4).max(1));
        let c = Arc::new(Cluster {
            id: node.id.clone(),
            node,
            net: client,
            cursors: Cursors::new(opts.max_cursors_per_peer, opts.cursor_idle),
            opts,
            members: Mutex::new(BTreeMap::new()),
            pins: Mutex::new(pins),
            sessions: Default::default(),
            held_self: Mutex::new(None),
            lacking: Mutex::new(Default::default()),
            copying: Mutex::new(Default::default()),
            stopped: tokio::sync::Notify::new(),
        });
        tokio::spawn(c.clone().serve(inbound));
        tokio::spawn(c.clone().watch(events));
        tokio::spawn(c.clone().maintain());
        tokio::spawn(c.clone().expire_cursors());
        tokio::spawn(c.clone().resolve_prepared());
        tokio::spawn(c.clone().replicate());
        Ok(c)
    }

    /// Bytes of rows one answer carries at most: well under the frame limit, since
    /// page sizes are estimated from the stored batches.
    fn page_bytes(&self) -> usize {
        (self.opts.max_frame / 4).max(1)
    }

    async fn expire_cursors(self: Arc<Self>) {
        let every = (self.opts.cursor_idle / 4).max(Duration::from_millis(250));
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let n = self.cursors.expire();
            if n > 0 {
                tracing::info!(node = %self.id, cursors = n, "closed idle export cursors");
            }
            let n = self.node.taps().expire(self.opts.cursor_idle);
            if n > 0 {
                tracing::info!(node = %self.id, taps = n, "closed idle live taps");
            }
        }
    }
}
