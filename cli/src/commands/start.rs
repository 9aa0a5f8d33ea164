//! `vast start`: run a node in the foreground until SIGINT/SIGTERM or `vast stop`.

use anyhow::{anyhow, Context, Result};
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use vast_node::net;
use vast_node::node::access::SourcePolicy;
use vast_node::node::cluster::{Cluster, ClusterOptions};
use vast_node::node::{Node, NodeOptions};

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Peers to join (host:port or multiaddr); repeatable.
    #[arg(long = "peer")]
    pub peer: Vec<String>,
    /// Components to start, comma-separated (importer,archive,index); empty for a bare node.
    #[arg(long)]
    pub components: Option<String>,
}

/// Whether `addr` only accepts connections from this machine.
fn is_loopback(addr: &libp2p::Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => ip.is_loopback(),
        Some(Protocol::Ip6(ip)) => ip.is_loopback(),
        Some(Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h)) => h == "localhost",
        _ => false,
    }
}

pub async fn run(cfg: &vast_config::Config) -> Result<ExitCode> {
    let listen = net::parse_endpoint(&cfg.endpoint).map_err(|e| anyhow!(e))?;
    let secret = super::client::load_secret(cfg)?;
    // Protected mode, as Redis has it: without a secret anyone who reaches the
    // port owns the node, so only this machine may reach it.
    if secret.is_none() {
        if !is_loopback(&listen) {
            return Err(anyhow!(
                "refusing to listen on {} without a cluster secret: anyone who reaches it could control this node. Make one with `vast secret > FILE` (chmod 600) and pass --secret-file FILE (config cluster.secret-file, env VAST_CLUSTER__SECRET_FILE) to every node and CLI, or listen on a loopback address",
                cfg.endpoint
            ));
        }
        eprintln!("warning: no cluster secret (--secret-file): listening on loopback only, and any local process can control this node");
    }
    let node = Arc::new(Node::open(NodeOptions::from_config(cfg)).await?);
    // Replicas of a partition are the same partition by id on several members;
    // merging it into another on one holder would make the copies differ.
    if cfg.import.replicas > 1 {
        tracing::info!(
            replicas = cfg.import.replicas,
            "compaction is off: partitions are replicated"
        );
    } else {
        node.start_compaction(vast_node::compactor::CompactionOptions::from_config(cfg));
    }
    let key = net::identity::load_or_create(&cfg.db_directory).map_err(|e| anyhow!(e))?;
    let mut protected = vec![cfg.db_directory.clone()];
    if let Some(s) = &cfg.cluster.secret_file {
        protected.push(s.clone());
    }
    let network = net::start(
        key,
        Some(listen.clone()),
        net::NetOptions {
            secret,
            max_frame: cfg.cluster.max_frame,
            max_inflight_bytes: Some(cfg.cluster.max_inflight_bytes),
            max_connections: cfg.cluster.max_connections,
            handshake_timeout: std::time::Duration::from_secs(cfg.cluster.handshake_timeout),
            connections: cfg.cluster.connections,
        },
    )
    .await
    .map_err(|e| anyhow!(e))?;
    let advertise = match &cfg.advertise {
        Some(a) => net::parse_endpoint(a).map_err(|e| anyhow!(e))?,
        None => listen.clone(),
    };
    let cluster = Cluster::start(
        node.clone(),
        network,
        ClusterOptions {
            advertise: vec![advertise],
            max_frame: cfg.cluster.max_frame,
            max_inflight_requests: cfg.cluster.max_inflight_requests,
            max_cursors_per_peer: cfg.cluster.max_cursors_per_peer,
            cursor_idle: Duration::from_secs(cfg.cluster.cursor_idle_timeout.max(1)),
            live_buffer: cfg.cluster.live_buffer,
            replicas: cfg.import.replicas as usize,
            replica_timeout: Duration::from_secs(cfg.cluster.replica_timeout),
            sources: SourcePolicy::new(
                &cfg.node_id,
                &cfg.source.read_dirs,
                &protected,
                &cfg.source.interfaces,
            ),
        },
    )
    .map_err(|e| anyhow!(e))?;
    cluster.register().await.map_err(|e| anyhow!(e))?;
    let placement: vast_node::importer::Placement = cfg
        .import
        .placement
        .parse()
        .map_err(|e: String| anyhow!(e))?;
    node.set_placement(
        placement,
        cfg.import.replicas as usize,
        Arc::new(vast_node::node::cluster::ClusterStore(Arc::downgrade(
            &cluster,
        ))),
    )
    .await?;
    for p in &cfg.peers {
        let addr = net::parse_endpoint(p)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("--peer {p}"))?;
        let mut delay = Duration::from_millis(200);
        let mut tries = 0;
        loop {
            match cluster.join(addr.clone()).await {
                Ok(id) => {
                    tracing::info!(peer = %p, member = %id, "joined");
                    break;
                }
                Err(e) if e.contains("already") => {
                    node.stop_components().await;
                    return Err(anyhow!("cannot join the cluster at {p}: {e}"));
                }
                Err(e) if tries < 8 => {
                    tracing::debug!(peer = %p, error = %e, "peer not reachable yet");
                    tries += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    eprintln!("warning: peer {p} is not reachable ({e}); it joins when it comes up and dials us");
                    break;
                }
            }
        }
    }
    eprintln!(
        "node {} listening on {} (peer id {}), components: {}",
        cluster.id,
        cfg.endpoint,
        cluster.net.peer_id,
        node.labels().join(", ")
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => eprintln!("interrupted: stopping"),
        _ = term.recv() => eprintln!("terminated: stopping"),
        _ = cluster.stopped.notified() => eprintln!("stop requested: stopping"),
    }
    // Let the reply to `vast stop` leave before the process goes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    node.stop_components().await;
    Ok(ExitCode::SUCCESS)
}
