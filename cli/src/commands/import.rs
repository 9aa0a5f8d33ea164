//! `vast import`: read events from stdin or a file into a node.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use vast_node::node::Node;
use vast_node::source::actor::SourceOptions;
use vast_node::source::format::{make_reader, open_input, Format, ReaderOptions};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Read this file instead of stdin (gzip is detected).
    #[arg(short = 'r', long = "read")]
    pub read: Option<PathBuf>,
    /// Stop after this many events.
    #[arg(short = 'n', long = "max-events")]
    pub max_events: Option<u64>,
    /// Block until the import is durable (always the case; kept for compatibility).
    #[arg(short = 'b', long = "blocking")]
    pub blocking: bool,
    /// Rows per batch [config: import.batch-size].
    #[arg(long = "batch-size")]
    pub batch_size: Option<usize>,
    /// Schema name for json and csv input.
    #[arg(short = 't', long = "type")]
    pub schema: Option<String>,
    /// Input format: zeek, zeek-json, suricata, json, csv, syslog, test.
    pub format: String,
    /// Keep only events matching this expression.
    pub expr: Option<String>,
}

pub async fn run(a: &ImportArgs, cfg: &vast_config::Config, node: &Node) -> Result<ExitCode> {
    let format: Format = a.format.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let filter = a.expr.as_deref().map(super::parse_query).transpose()?;
    let input = open_input(a.read.as_deref()).with_context(|| match &a.read {
        Some(p) => format!("cannot read {}", p.display()),
        None => "cannot read stdin".to_string(),
    })?;
    let ropts = ReaderOptions {
        schema: a.schema.clone(),
        seed: 0,
    };
    let reader = make_reader(format, input, &ropts)?;
    // The test format is endless; without -n it makes a small demo set.
    let limit = a
        .max_events
        .or(matches!(format, Format::Test).then_some(100));
    let opts = SourceOptions {
        limit,
        filter,
        batch_size: cfg.import.batch_size,
        description: a
            .read
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "stdin".into()),
        format: a.format.clone(),
    };
    let start = Instant::now();
    let s = node.import(reader, opts).await?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "imported {} events in {:.2}s ({:.0} events/s); {} malformed records skipped",
        s.events,
        secs,
        s.events as f64 / secs.max(1e-9),
        s.skipped
    );
    Ok(ExitCode::SUCCESS)
}
