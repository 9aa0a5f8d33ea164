//! `vast export`: write matching events in an output format.

use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;
use vast_node::export::format::{make_writer, OutputFormat};
use vast_node::node::Node;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Stop after this many events.
    #[arg(short = 'n', long = "max-events")]
    pub max_events: Option<u64>,
    /// Keep running and export new matches (needs a running node).
    #[arg(short = 'c', long = "continuous")]
    pub continuous: bool,
    /// Give up after this long, e.g. 10s.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Accept an answer that misses members which did not respond (with a warning).
    #[arg(long = "allow-partial")]
    pub allow_partial: bool,
    /// Output format: json, csv, ascii, zeek, null.
    pub format: String,
    /// The query.
    pub expr: String,
}

pub async fn run(a: &ExportArgs, node: &Node) -> Result<ExitCode> {
    let format: OutputFormat = a.format.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let expr = super::parse_query(&a.expr)?;
    if a.continuous {
        anyhow::bail!(
            "export -c needs a running node; an embedded node (-N) exits when the command is done"
        );
    }
    let timeout = match &a.timeout {
        Some(t) => Some(std::time::Duration::from_nanos(
            vast_node::data::value::parse_duration(t)
                .filter(|d| *d > 0)
                .with_context(|| format!("--timeout {t:?} is not a duration like 10s"))?
                as u64,
        )),
        None => None,
    };
    let mut writer = make_writer(format);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut broken = false;
    let fut = node.export(expr, a.max_events, |sel| {
        if broken {
            return Ok(());
        }
        match writer.write(&sel.batch, &sel.rows, &mut out) {
            Ok(()) => Ok(()),
            // A closed pipe (`| head`) ends the export quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                broken = true;
                Ok(())
            }
            Err(e) => Err(format!("writing output: {e}")),
        }
    });
    match timeout {
        Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| {
            anyhow::anyhow!(
                "export timed out after {}",
                a.timeout.as_deref().unwrap_or("")
            )
        })??,
        None => fut.await?,
    };
    if !broken {
        let _ = writer.finish(&mut out);
        match out.flush() {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(e).context("writing output")
            }
            _ => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Export through a running node: open a cursor on the endpoint and pull chunks,
/// so a slow consumer slows the query down instead of buffering it.
pub async fn run_remote(a: &ExportArgs, conn: &super::client::Conn) -> Result<ExitCode> {
    use vast_node::data::Batch;
    use vast_node::proto::{DataRequest, DataResponse};
    let format: OutputFormat = a.format.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    super::parse_query(&a.expr)?;
    if a.continuous {
        anyhow::bail!("export -c is not supported yet");
    }
    let open = DataRequest::ExportOpen {
        expr: a.expr.clone(),
        limit: a.max_events.unwrap_or(0),
        allow_partial: a.allow_partial,
    };
    let cursor = match conn.data(open).await? {
        DataResponse::Cursor { cursor, warnings } => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            cursor
        }
        other => anyhow::bail!("unexpected answer {other:?}"),
    };
    let mut writer = make_writer(format);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    loop {
        match conn.data(DataRequest::ExportNext { cursor }).await? {
            DataResponse::Rows(rows) => {
                for r in rows {
                    let b = Batch::from_bytes(&r).context("a batch from the node")?;
                    let all: Vec<u32> = (0..b.rows).collect();
                    match writer.write(&b, &all, &mut out) {
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                            // Nobody reads on: release the node's cursor now.
                            let _ = conn.data(DataRequest::ExportClose { cursor }).await;
                            return Ok(ExitCode::SUCCESS);
                        }
                        r => r.context("writing output")?,
                    }
                }
            }
            DataResponse::End => break,
            other => anyhow::bail!("unexpected answer {other:?}"),
        }
    }
    let _ = writer.finish(&mut out);
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing output"),
        _ => Ok(ExitCode::SUCCESS),
    }
}
