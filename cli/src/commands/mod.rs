//! Command dispatch: configuration, logging, and the embedded node.

pub mod bench;
pub mod client;
pub mod count;
pub mod export;
pub mod import;
pub mod spawn;
pub mod start;
pub mod term;
pub mod version;

use crate::{Cli, Command};
use anyhow::{bail, Context, Result};
use std::process::ExitCode;
use tracing::Instrument;
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
    if let Some(s) = &cli.secret_file {
        o.push(("cluster.secret-file", s.display().to_string()));
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
            if !a.peer.is_empty() {
                o.push(("peers", format!("{},", a.peer.join(","))));
            }
        }
        _ => {}
    }
    o
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Version => {
            version::print();
            return Ok(ExitCode::SUCCESS);
        }
        Command::Completions { shell } => {
            let mut cmd = visible_command();
            clap_complete::generate(*shell, &mut cmd, "vast", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man => {
            use clap::CommandFactory;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(e).context("writing the man page")
                }
                _ => return Ok(ExitCode::SUCCESS),
            }
        }
        _ => {}
    }
    if let Command::Secret { out } = &cli.command {
        return secret(out.as_deref());
    }
    let cfg = vast_config::load(cli.config.as_deref(), &overrides(&cli))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let is_node = matches!(cli.command, Command::Start(_));
    let telemetry = vast_node::telemetry::init(
        &vast_node::telemetry::TelemetryOptions {
            log_filter: cfg.log_level.clone(),
            endpoint: cfg.telemetry.otlp_endpoint.clone(),
            protocol: cfg.telemetry.otlp_protocol.clone(),
            service: cfg.telemetry.service_name.clone(),
            node: if is_node || cli.embedded {
                cfg.node_id.clone()
            } else {
                "cli".into()
            },
        },
        &rt,
    );
    // One CLI command is one trace; a node's spans hang off the requests it serves.
    let span = if is_node {
        tracing::Span::none()
    } else {
        tracing::info_span!(
            "vast",
            command = command_name(&cli.command),
            node = cli.node.as_deref().unwrap_or("")
        )
    };
    let quick_exit = cli.embedded && read_only(&cli.command);
    let res = rt.block_on(
        async move {
            if let Command::Start(_) = cli.command {
                return start::run(&cfg).await;
            }
            if !cli.embedded {
                return remote(&cli, &cfg).await;
            }
            if cli.node.is_some() {
                bail!("--node names a cluster peer; an embedded node (-N) has none");
            }
            let node = Node::open(NodeOptions::from_config(&cfg)).await?;
            let res = embedded(&cli, &cfg, &node).await;
            if quick_exit && matches!(res, Ok(c) if c == ExitCode::SUCCESS) {
                // Leaves the node standing: see below.
                std::mem::forget(node);
                return res;
            }
            node.shutdown().await;
            res
        }
        .instrument(span),
    );
    telemetry.shutdown();
    if quick_exit && matches!(res, Ok(c) if c == ExitCode::SUCCESS) {
        // A query wrote nothing that needs stopping: its answer is out once stdout
        // is flushed, and the database lock is the kernel's to release. Tearing
        // down the node (unmapping every partition's files, stopping actors,
        // freeing the catalog) grew with the partitions and was a tenth of a
        // rare-host export over 20 partitions.
        use std::io::Write;
        if std::io::stdout().flush().is_ok() {
            std::process::exit(0);
        }
    }
    res
}

/// Embedded commands that only read the database.
fn read_only(c: &Command) -> bool {
    matches!(
        c,
        Command::Export(_) | Command::Count(_) | Command::Status { .. }
    )
}

/// `vast secret [--out FILE]`.
fn secret(out: Option<&std::path::Path>) -> Result<ExitCode> {
    let Some(path) = out else {
        println!(
            "{}",
            vast_node::net::secret::generate().map_err(|e| anyhow::anyhow!(e))?
        );
        return Ok(ExitCode::SUCCESS);
    };
    if path.exists() {
        vast_node::net::Secret::load(path)?;
        eprintln!("keeping the existing cluster secret in {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let s = vast_node::net::secret::generate().map_err(|e| anyhow::anyhow!(e))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{s}").with_context(|| format!("writing {}", path.display()))?;
    f.sync_all()?;
    eprintln!("wrote a new cluster secret to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

async fn embedded(cli: &Cli, cfg: &vast_config::Config, node: &Node) -> Result<ExitCode> {
    match &cli.command {
        Command::Import(a) => import::run(a, cfg, node).await,
        Command::Export(a) => export::run(a, node).await,
        Command::Count(a) => count::run(a, node).await,
        Command::Status { detailed, json } => {
            let s = node.status(*detailed).await?;
            term::print_json_or(&s, *json, term::render_status)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Spawn(_)
        | Command::Kill { .. }
        | Command::Stop
        | Command::Peers { .. }
        | Command::BenchDataplane { .. } => {
            bail!(
                "`{}` needs a running node; an embedded node (-N) exits when the command is done",
                command_name(&cli.command)
            )
        }
        Command::Version
        | Command::Secret { .. }
        | Command::Start(_)
        | Command::Completions { .. }
        | Command::Man => {
            unreachable!("handled before the node starts")
        }
    }
}

/// Commands against a running node at the endpoint.
async fn remote(cli: &Cli, cfg: &vast_config::Config) -> Result<ExitCode> {
    use vast_node::proto::{ControlOp, ControlReply, SpawnSpec};
    let conn = client::connect(cfg).await?;
    let node = cli.node.clone();
    let json = |r: ControlReply, as_json: bool, human: fn(&serde_json::Value) -> String| match r {
        ControlReply::Json(s) => {
            let v: serde_json::Value = serde_json::from_str(&s)?;
            term::print_json_or(&v, as_json, human)?;
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unexpected answer {other:?}"),
    };
    match &cli.command {
        Command::Status { detailed, json: j } => json(
            conn.control(
                node,
                ControlOp::Status {
                    detailed: *detailed,
                },
            )
            .await?,
            *j,
            term::render_status,
        ),
        Command::Peers { json: j } => json(
            conn.control(node, ControlOp::Peers).await?,
            *j,
            term::render_peers,
        ),
        Command::Stop => {
            conn.control(node, ControlOp::Stop).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Kill { label } => {
            conn.control(
                node,
                ControlOp::Kill {
                    label: label.clone(),
                },
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Spawn(a) => {
            let spec = match &a.what {
                spawn::SpawnWhat::Source {
                    read,
                    interface,
                    bpf,
                    snaplen,
                    cutoff,
                    format,
                } => SpawnSpec::Source {
                    path: read.as_ref().map(|p| {
                        std::path::absolute(p)
                            .unwrap_or_else(|_| p.clone())
                            .display()
                            .to_string()
                    }),
                    interface: interface.clone(),
                    bpf: bpf.clone(),
                    snaplen: *snaplen,
                    cutoff: *cutoff,
                    format: format.name().to_string(),
                    schema: None,
                },
                spawn::SpawnWhat::Archive => SpawnSpec::Component("archive".into()),
                spawn::SpawnWhat::Index => SpawnSpec::Component("index".into()),
                spawn::SpawnWhat::Importer => SpawnSpec::Component("importer".into()),
            };
            match conn.control(node, ControlOp::Spawn(spec)).await? {
                ControlReply::Label(l) => {
                    println!("{l}");
                    Ok(ExitCode::SUCCESS)
                }
                other => bail!("unexpected answer {other:?}"),
            }
        }
        Command::Count(a) => count::run_remote(a, &conn).await,
        Command::BenchDataplane { mib } => bench::dataplane(&conn, *mib).await,
        Command::Export(a) => export::run_remote(a, &conn).await,
        Command::Import(a) => import::run_remote(a, cfg, &conn, node).await,
        Command::Start(_)
        | Command::Version
        | Command::Secret { .. }
        | Command::Completions { .. }
        | Command::Man => {
            unreachable!("handled before connecting")
        }
    }
}

/// The command tree without hidden subcommands, which clap_complete would
/// otherwise offer.
fn visible_command() -> clap::Command {
    use clap::CommandFactory;
    let full = Cli::command();
    let visible: Vec<clap::Command> = full
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .cloned()
        .collect();
    clap::Command::new("vast")
        .args(full.get_arguments().cloned())
        .subcommands(visible)
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Start(_) => "start",
        Command::Stop => "stop",
        Command::Status { .. } => "status",
        Command::Peers { .. } => "peers",
        Command::Completions { .. } => "completions",
        Command::Man => "man",
        Command::Version => "version",
        Command::Secret { .. } => "secret",
        Command::Import(_) => "import",
        Command::Export(_) => "export",
        Command::Count(_) => "count",
        Command::Spawn(_) => "spawn",
        Command::Kill { .. } => "kill",
        Command::BenchDataplane { .. } => "bench-dataplane",
    }
}

/// Parses a query, reporting the position of the problem.
pub fn parse_query(q: &str) -> Result<vast_node::query::Expr> {
    vast_node::query::parse(q).map_err(|e| anyhow::anyhow!("invalid query: {e}"))
}
