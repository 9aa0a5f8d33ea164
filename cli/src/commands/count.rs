//! `vast count`: print the number of matching events.

use anyhow::Result;
use clap::Args;
use std::process::ExitCode;
use vast_node::node::Node;

#[derive(Args, Debug)]
pub struct CountArgs {
    /// Estimate from the index alone (an upper bound; exact for exact indexes).
    #[arg(short = 'e', long = "estimate")]
    pub estimate: bool,
    /// The query.
    pub expr: String,
}

pub async fn run(a: &CountArgs, node: &Node) -> Result<ExitCode> {
    let expr = super::parse_query(&a.expr)?;
    let n = node.count(expr, a.estimate).await?;
    println!("{n}");
    Ok(ExitCode::SUCCESS)
}
