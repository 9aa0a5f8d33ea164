//! The control plane: one kameo remote actor per node, `<id>/node`, taking status,
//! spawn, kill, stop, peers and count, and relaying to the member a request names.

use super::Cluster;
use crate::proto::{Control, ControlOp, ControlReply};
use futures::StreamExt;
use kameo::prelude::*;
use libp2p::PeerId;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

impl Cluster {
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

    /// Runs a control operation here, or relays it to the member it names.
    pub async fn control(self: &Arc<Self>, c: Control) -> Result<ControlReply, String> {
        if let Some(target) = c.node.as_deref().filter(|t| *t != self.id) {
            let peer = self.peer_of(target)?;
            let remote = lookup_node(target, peer, Duration::from_secs(5)).await?;
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
                s["replication"] = self.replication_json(detailed);
                if detailed {
                    s["export-cursors"] = serde_json::json!(self.cursors.len());
                }
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

/// Finds the control actor of node `id` that `peer` (the member's authenticated
/// PeerId) registered, retrying while the registry catches up. Registry entries
/// are claims: one of the same name from any other peer is ignored.
pub async fn lookup_node(
    id: &str,
    peer: PeerId,
    wait: Duration,
) -> Result<RemoteActorRef<NodeActor>, String> {
    let deadline = Instant::now() + wait;
    let name = format!("{id}/node");
    let mut impostors = Vec::new();
    loop {
        let mut found = RemoteActorRef::<NodeActor>::lookup_all(name.clone());
        while let Some(r) = found.next().await {
            match r {
                Ok(r) if r.id().peer_id() == Some(&peer) => return Ok(r),
                Ok(r) => {
                    let from = r.id().peer_id().map(|p| p.to_string()).unwrap_or_default();
                    if !impostors.contains(&from) {
                        tracing::warn!(name = %name, registered_by = %from, expected = %peer, "ignoring a registry entry registered by another peer");
                        impostors.push(from);
                    }
                }
                Err(e) => {
                    tracing::debug!(name = %name, error = %e, "registry lookup failed");
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "node {id} is not reachable (no control actor {name} registered by its peer {peer})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn remote_error(node: &str, e: kameo::error::RemoteSendError<String>) -> String {
    match e {
        kameo::error::RemoteSendError::HandlerError(s) => s,
        other => format!("node {node}: {other}"),
    }
}
