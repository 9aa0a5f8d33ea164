//! `vast count`: print the number of matching events.

use anyhow::{Context, Result};
use clap::Args;
use std::process::ExitCode;
use vast_node::node::Node;

#[derive(Args, Debug)]
pub struct CountArgs {
    /// Estimate from the index alone (an upper bound; exact for exact indexes).
    #[arg(short = 'e', long = "estimate")]
    pub estimate: bool,
    /// Accept an answer that misses members which did not respond (with a warning).
    #[arg(long = "allow-partial")]
    pub allow_partial: bool,
    /// The query.
    pub expr: String,
}

pub async fn run_remote(a: &CountArgs, conn: &super::client::Conn) -> Result<ExitCode> {
    use vast_node::proto::{ControlOp, ControlReply};
    super::parse_query(&a.expr)?;
    let op = ControlOp::Count {
        expr: a.expr.clone(),
        estimate: a.estimate,
        allow_partial: a.allow_partial,
    };
    match conn.control(None, op).await? {
        ControlReply::Count { count, warnings } => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            print_count(count)
        }
        other => anyhow::bail!("unexpected answer {other:?}"),
    }
}

pub async fn run(a: &CountArgs, node: &Node) -> Result<ExitCode> {
    let expr = super::parse_query(&a.expr)?;
    for w in node.unknown_extractors(&expr).await {
        eprintln!("warning: {w}");
    }
    let n = node.count(expr, a.estimate).await?;
    print_count(n)
}

/// Prints the count; a closed or full stdout is an error, not a panic.
fn print_count(n: u64) -> Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{n}")
        .and_then(|_| out.flush())
        .context("writing the count to stdout")?;
    Ok(ExitCode::SUCCESS)
}
