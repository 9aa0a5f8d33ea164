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
  vast -e 127.0.0.1:42003 export --timeout 30s csv ':addr in 10.0.0.0/8' > out.csv
  vast export -c json ':addr == 10.0.0.1'            # live matches from every importer, until Ctrl-C
  vast export -u -n 100 json 'dport == 53'           # stored matches, then live ones";

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
    /// Export matching events as importers anywhere in the cluster accept them,
    /// until interrupted, -n or --timeout (needs a running node).
    #[arg(short = 'c', long = "continuous", conflicts_with = "unified")]
    pub continuous: bool,
    /// Export what is stored, then go on as with -c: no event missed or repeated
    /// between the two (needs a running node).
    #[arg(short = 'u', long = "unified")]
    pub unified: bool,
    /// Give up after this long, e.g. 10s; with -c or -u, stop after this long
    /// (exit 0).
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
    if a.continuous || a.unified {
        anyhow::bail!(
            "export -{} needs a running node; an embedded node (-N) exits when the command is done",
            if a.continuous { "c" } else { "u" }
        );
    }
    let timeout = parse_timeout(a)?;
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

fn parse_timeout(a: &ExportArgs) -> Result<Option<std::time::Duration>> {
    Ok(match &a.timeout {
        Some(t) => Some(std::time::Duration::from_nanos(
            vast_node::data::value::parse_duration(t)
                .filter(|d| *d > 0)
                .with_context(|| format!("--timeout {t:?} is not a duration like 10s"))?
                as u64,
        )),
        None => None,
    })
}

/// Export through a running node: open a cursor on the endpoint and pull chunks,
/// so a slow consumer slows the query down instead of buffering it. A live export
/// (`-c`, `-u`) runs until interrupted, `-n` or `--timeout`, writes each chunk out
/// as it arrives, and ends its output properly however it stops.
pub async fn run_remote(a: &ExportArgs, conn: &super::client::Conn) -> Result<ExitCode> {
    use vast_node::data::Batch;
    use vast_node::proto::{DataRequest, DataResponse, ExportMode};
    super::parse_query(&a.expr)?;
    let timeout = parse_timeout(a)?;
    let mode = if a.unified {
        ExportMode::Unified
    } else if a.continuous {
        ExportMode::Continuous
    } else {
        ExportMode::History
    };
    let live = mode != ExportMode::History;
    // Resolves when the export is to stop early: its timeout, or (live) Ctrl-C.
    let stop = async {
        let deadline = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let interrupt = async {
            if live {
                let _ = tokio::signal::ctrl_c().await;
            } else {
                std::future::pending::<()>().await
            }
        };
        tokio::select! {
            _ = deadline => {}
            _ = interrupt => {}
        }
    };
    tokio::pin!(stop);
    let timed_out = || {
        anyhow::anyhow!(
            "export timed out after {}",
            a.timeout.as_deref().unwrap_or("")
        )
    };
    let open = DataRequest::ExportOpen {
        expr: a.expr.clone(),
        limit: a.max_events.unwrap_or(0),
        allow_partial: a.allow_partial,
        mode,
    };
    let opened = tokio::select! {
        r = conn.data(open) => r?,
        _ = &mut stop => {
            if live {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(timed_out());
        }
    };
    let cursor = match opened {
        DataResponse::Cursor { cursor, warnings } => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            cursor
        }
        other => anyhow::bail!("unexpected answer {other:?}"),
    };
    let mut writer = make_writer(a.format.writer_format());
    let stdout = std::io::stdout();
    let counters = super::term::Counters::default();
    let mut out = super::term::CountingWrite {
        inner: std::io::BufWriter::with_capacity(1 << 16, stdout.lock()),
        bytes: counters.bytes.clone(),
    };
    let progress = progress(&counters);
    loop {
        let next = tokio::select! {
            r = conn.data(DataRequest::ExportNext { cursor }) => r?,
            _ = &mut stop => {
                if !live {
                    return Err(timed_out());
                }
                // The watch is over: what was written stays, the output is ended.
                let _ = conn.data(DataRequest::ExportClose { cursor }).await;
                break;
            }
        };
        let rows = match next {
            DataResponse::Rows(rows) => rows,
            DataResponse::Live { batches, warnings } => {
                for w in warnings {
                    eprintln!("warning: {w}");
                }
                batches
            }
            DataResponse::End => break,
            other => anyhow::bail!("unexpected answer {other:?}"),
        };
        for r in &rows {
            let b = Batch::from_bytes(r).context("a batch from the node")?;
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
        // Live rows are shown as they come, not when a buffer fills.
        if live && !rows.is_empty() {
            match out.flush() {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    let _ = conn.data(DataRequest::ExportClose { cursor }).await;
                    return Ok(ExitCode::SUCCESS);
                }
                r => r.context("writing output")?,
            }
        }
    }
    drop(progress);
    let _ = writer.finish(&mut out);
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing output"),
        _ => Ok(ExitCode::SUCCESS),
    }
}
