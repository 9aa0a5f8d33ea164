//! The CLI as a short-lived cluster peer: it reaches only its endpoint node, which
//! relays to `--node NAME` inside the cluster.

use anyhow::{anyhow, bail, Context, Result};
use std::time::Duration;
use vast_node::net::{self, Client};
use vast_node::node::cluster::lookup_node;
use vast_node::proto::{Control, ControlOp, ControlReply, DataRequest, DataResponse, Member};

/// A connection to the endpoint node.
pub struct Conn {
    pub client: Client,
    pub peer: libp2p::PeerId,
    /// The endpoint's node id.
    pub node: String,
}

/// The cluster secret named by the configuration, if any.
pub fn load_secret(cfg: &vast_config::Config) -> Result<Option<net::Secret>> {
    cfg.cluster
        .secret_file
        .as_deref()
        .map(net::Secret::load)
        .transpose()
        .map_err(|e| anyhow!(e))
}

/// Dials the endpoint and learns its node id.
pub async fn connect(cfg: &vast_config::Config) -> Result<Conn> {
    let endpoint = cfg.endpoint.as_str();
    let addr = net::parse_endpoint(endpoint).map_err(|e| anyhow!(e))?;
    let key = libp2p::identity::Keypair::generate_ed25519();
    let opts = net::NetOptions::client(
        load_secret(cfg)?,
        cfg.cluster.max_frame,
        cfg.cluster.connections,
    );
    let network = net::start(key, None, opts).await.map_err(|e| anyhow!(e))?;
    let client = network.client;
    // Nobody serves requests to a CLI; drop what arrives.
    tokio::spawn(async move {
        let mut inbound = network.inbound;
        while inbound.recv().await.is_some() {}
    });
    let peer = tokio::time::timeout(Duration::from_secs(5), client.dial(addr))
        .await
        .map_err(|_| anyhow!("no node answered at {endpoint} within 5s"))?
        .map_err(|e| anyhow!("cannot reach a node at {endpoint}: {e}"))?;
    // Only the endpoint's own data-plane answers are taken below, and its control
    // actor must be the one registered by this very peer.
    let hello = DataRequest::Hello {
        from: Member {
            id: String::new(),
            peer: client.peer_id.to_base58(),
            addrs: vec![],
            components: vec![],
        },
    };
    let bytes = client
        .request(peer, hello.into_frame())
        .await
        .map_err(|e| anyhow!("node at {endpoint}: {e}"))?;
    match DataResponse::decode(&bytes)? {
        DataResponse::Hello { me, .. } => Ok(Conn {
            client,
            peer,
            node: me.id,
        }),
        DataResponse::Error(e) | DataResponse::NotMember(e) => bail!("node at {endpoint}: {e}"),
        other => bail!("node at {endpoint} answered {other:?}"),
    }
}

impl Conn {
    /// A control request through the endpoint's control actor (kameo remote).
    pub async fn control(&self, node: Option<String>, op: ControlOp) -> Result<ControlReply> {
        let actor = lookup_node(&self.node, self.peer, Duration::from_secs(10))
            .await
            .map_err(|e| anyhow!(e))?;
        actor
            .ask(&Control {
                node,
                op,
                traceparent: vast_node::telemetry::current_traceparent(),
            })
            .await
            .map_err(|e| match e {
                kameo::error::RemoteSendError::HandlerError(s) => anyhow!(s),
                other => anyhow!("node {}: {other}", self.node),
            })
    }

    /// A data-plane request to the endpoint.
    pub async fn data(&self, req: DataRequest) -> Result<DataResponse> {
        self.data_frame(req.into_frame()).await
    }

    /// `data` with the request already framed.
    pub async fn data_frame(&self, frame: vast_node::proto::Frame) -> Result<DataResponse> {
        let bytes = self
            .client
            .request(self.peer, frame)
            .await
            .map_err(|e| anyhow!("node {}: {e}", self.node))?;
        match DataResponse::decode(&bytes).context("answer from the endpoint")? {
            DataResponse::Error(e) | DataResponse::NotMember(e) => Err(anyhow!(e)),
            r => Ok(r),
        }
    }
}
