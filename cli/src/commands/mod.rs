//! Command dispatch: configuration, logging, and the embedded node.

pub mod count;
pub mod export;
pub mod import;
pub mod spawn;
pub mod start;

use crate::{Cli, Command};
use anyhow::{bail, Context, Result};
use std::process::ExitCode;
use vast_node::node::{Node, NodeOptions};

/// Flags that override configuration keys.
fn overrides(cli: &Cli) -> Vec<(&'static str, String)> {
    let mut o = Vec::new();
    if let Some(d) = &cli.db_directory {
        o.push(("db-directory", d.display().to_string()));
    }
    if let Some(e) = &cli.endpoint {
        o.push(("endpoint", e.clone()));
    }
    if let Some(i) = &cli.node_id {
        o.push(("node-id", i.clone()));
    }
    match &cli.command {
        Command::Import(a) => {
            if let Some(b) = a.batch_size {
                o.push(("import.batch-size", b.to_string()));
            }
        }
        Command::Start(a) => {
            if let Some(c) = &a.components {
                o.push(("components", c.clone()));
            }
        }
        _ => {}
    }
    o
}

fn init_logging(filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Version = cli.command {
        println!("vast {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = vast_config::load(cli.config.as_deref(), &overrides(&cli))?;
    init_logging(&cfg.log_level);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        if !cli.embedded {
            bail!(
                "no node to talk to: this build runs only embedded nodes; pass -N to run one inside this process on {}",
                cfg.db_directory.display()
            );
        }
        if cli.node.is_some() {
            bail!("--node names a cluster peer; an embedded node (-N) has none");
        }
        let node = Node::open(NodeOptions::from_config(&cfg)).await?;
        let res = embedded(&cli, &cfg, &node).await;
        node.shutdown().await;
        res
    })
}

async fn embedded(cli: &Cli, cfg: &vast_config::Config, node: &Node) -> Result<ExitCode> {
    match &cli.command {
        Command::Import(a) => import::run(a, cfg, node).await,
        Command::Export(a) => export::run(a, node).await,
        Command::Count(a) => count::run(a, node).await,
        Command::Status { detailed } => {
            let s = node.status(*detailed).await?;
            println!("{}", serde_json::to_string_pretty(&s)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Spawn(_)
        | Command::Kill { .. }
        | Command::Stop
        | Command::Peers
        | Command::Start(_) => {
            bail!(
                "`{}` needs a running node; an embedded node (-N) exits when the command is done",
                command_name(&cli.command)
            )
        }
        Command::Version => unreachable!("handled before the node starts"),
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Start(_) => "start",
        Command::Stop => "stop",
        Command::Status { .. } => "status",
        Command::Peers => "peers",
        Command::Version => "version",
        Command::Import(_) => "import",
        Command::Export(_) => "export",
        Command::Count(_) => "count",
        Command::Spawn(_) => "spawn",
        Command::Kill { .. } => "kill",
    }
}

/// Parses a query, reporting the position of the problem.
pub fn parse_query(q: &str) -> Result<vast_node::query::Expr> {
    vast_node::query::parse(q).map_err(|e| anyhow::anyhow!("invalid query: {e}"))
}
