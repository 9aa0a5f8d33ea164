//! `vast start`: run a node in the foreground until SIGINT/SIGTERM or `vast stop`.

use anyhow::{anyhow, Context, Result};
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use vast_node::net;
use vast_node::node::cluster::Cluster;
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

pub async fn run(cfg: &vast_config::Config) -> Result<ExitCode> {
    let node = Arc::new(Node::open(NodeOptions::from_config(cfg)).await?);
    let key = net::identity::load_or_create(&cfg.db_directory).map_err(|e| anyhow!(e))?;
    let listen = net::parse_endpoint(&cfg.endpoint).map_err(|e| anyhow!(e))?;
    let network = net::start(key, Some(listen.clone()))
        .await
        .map_err(|e| anyhow!(e))?;
    let advertise = match &cfg.advertise {
        Some(a) => net::parse_endpoint(a).map_err(|e| anyhow!(e))?,
        None => listen.clone(),
    };
    let cluster = Cluster::start(node.clone(), network, vec![advertise]);
    cluster.register().await.map_err(|e| anyhow!(e))?;
    let placement: vast_node::importer::Placement = cfg
        .import
        .placement
        .parse()
        .map_err(|e: String| anyhow!(e))?;
    node.set_placement(
        placement,
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
