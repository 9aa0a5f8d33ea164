//! `vast export`: write matching events in an output format.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use vast_node::export::format::{make_writer, OutputFormat};
use vast_node::node::Node;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line (Zeek field names such as id.orig_h).
    Json,
    /// Comma-separated values, a header per schema.
    Csv,
    /// VAST's ASCII notation, <v1, v2, ...> per line.
    Ascii,
    /// Zeek TSV logs (re-import to the same events).
    Zeek,
    /// The packets of pcap.packet events as a pcap file.
    Pcap,
    /// Arrow IPC streams, one per schema, one after another (pyarrow, pandas, polars, DuckDB).
    Arrow,
    /// Discard everything (measures query throughput).
    Null,
}

impl ExportFormat {
    fn writer_format(self) -> OutputFormat {
        match self {
            ExportFormat::Json => OutputFormat::Json,
            ExportFormat::Csv => OutputFormat::Csv,
            ExportFormat::Ascii => OutputFormat::Ascii,
            ExportFormat::Zeek => OutputFormat::Zeek,
            ExportFormat::Pcap => OutputFormat::Pcap,
            ExportFormat::Arrow => OutputFormat::Arrow,
            ExportFormat::Null => OutputFormat::Null,
        }
    }
}

const EXAMPLES: &str = "\
Examples:
  vast -N export json 'resp_h == 192.168.1.104 && :timestamp > 2009-11-18'
  vast -N export -n 10 zeek '#type == \"zeek.dns\" && query ~ /google/'
  vast -N export pcap 'src in 10.0.0.0/8 && dport == 53' > dns.pcap
  vast -N export arrow '#type == \"zeek.conn\"' > conn.arrows
  vast -e 127.0.0.1:42003 export --timeout 30s csv ':addr in 10.0.0.0/8' > out.csv";

/// A progress line when a person watches stderr while the output goes elsewhere.
fn progress(c: &super::term::Counters) -> Option<super::term::Progress> {
    if super::term::stdout_is_terminal() {
        return None;
    }
    super::term::Progress::start(c, "written")
}

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
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
    /// Output format.
    #[arg(value_enum)]
    pub format: ExportFormat,
    /// The query.
    pub expr: String,
}

pub async fn run(a: &ExportArgs, node: &Node) -> Result<ExitCode> {
    let format = a.format.writer_format();
    let expr = super::parse_query(&a.expr)?;
    for w in node.unknown_extractors(&expr).await {
        eprintln!("warning: {w}");
    }
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
    let counters = super::term::Counters::default();
    let mut out = super::term::CountingWrite {
        inner: std::io::BufWriter::with_capacity(1 << 16, stdout.lock()),
        bytes: counters.bytes.clone(),
    };
    let progress = progress(&counters);
    let mut broken = false;
    let fut = node.export(expr, a.max_events, |sel| {
        if broken {
            return Ok(());
        }
        counters
            .events
            .fetch_add(sel.rows.len() as u64, Ordering::Relaxed);
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
    drop(progress);
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
    let format = a.format.writer_format();
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
    let counters = super::term::Counters::default();
    let mut out = super::term::CountingWrite {
        inner: std::io::BufWriter::with_capacity(1 << 16, stdout.lock()),
        bytes: counters.bytes.clone(),
    };
    let progress = progress(&counters);
    loop {
        match conn.data(DataRequest::ExportNext { cursor }).await? {
            DataResponse::Rows(rows) => {
                for r in rows {
                    let b = Batch::from_bytes(&r).context("a batch from the node")?;
                    let all: Vec<u32> = (0..b.rows).collect();
                    counters
                        .events
                        .fetch_add(all.len() as u64, Ordering::Relaxed);
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
    drop(progress);
    let _ = writer.finish(&mut out);
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing output"),
        _ => Ok(ExitCode::SUCCESS),
    }
}
