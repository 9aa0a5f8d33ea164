//! `vast import`: read events from stdin or a file into a node.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use vast_node::node::Node;
use vast_node::source::actor::SourceOptions;
use vast_node::source::format::{make_reader, open_input, Format, ReaderOptions};

/// Input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// Zeek TSV logs.
    Zeek,
    /// Zeek JSON logs.
    ZeekJson,
    /// Suricata EVE JSON.
    Suricata,
    /// Line-delimited JSON (-t names the schema).
    Json,
    /// CSV with a header line (-t names the schema).
    Csv,
    /// RFC 5424 / RFC 3164 syslog.
    Syslog,
    /// pcap or pcapng packet captures.
    Pcap,
    /// Generated events (100 without -n).
    Test,
}

impl InputFormat {
    /// The name on the command line, which is also the node's name for it.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Zeek => "zeek",
            InputFormat::ZeekJson => "zeek-json",
            InputFormat::Suricata => "suricata",
            InputFormat::Json => "json",
            InputFormat::Csv => "csv",
            InputFormat::Syslog => "syslog",
            InputFormat::Pcap => "pcap",
            InputFormat::Test => "test",
        }
    }
}

const EXAMPLES: &str = "\
Examples:
  vast -N import -r conn.log.gz zeek
  gzcat *.log.gz | vast -N import zeek
  vast -N import -r eve.json suricata '#type != \"suricata.stats\"'
  vast -N import -t flows -r flows.csv csv
  vast -N import --cutoff 65536 -r trace.pcap pcap
  vast -e 127.0.0.1:42001 --node n2 import zeek < dns.log";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
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
    /// pcap: keep at most this many payload bytes per connection.
    #[arg(long = "cutoff", value_name = "BYTES")]
    pub cutoff: Option<u64>,
    /// Input format.
    #[arg(value_enum)]
    pub format: InputFormat,
    /// Keep only events matching this expression.
    pub expr: Option<String>,
}

/// The reader, filter and event limit an import runs with, embedded or remote.
struct Prepared {
    reader: Box<dyn vast_node::source::Reader>,
    filter: Option<vast_node::query::Expr>,
    limit: Option<u64>,
}

fn prepare(a: &ImportArgs, progress: &super::term::Counters) -> Result<Prepared> {
    let format: Format = a
        .format
        .name()
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let filter = a.expr.as_deref().map(super::parse_query).transpose()?;
    let input = open_input(a.read.as_deref()).with_context(|| match &a.read {
        Some(p) => format!("cannot read {}", p.display()),
        None => "cannot read stdin".to_string(),
    })?;
    let input = Box::new(super::term::CountingRead {
        inner: input,
        bytes: progress.bytes.clone(),
    });
    let ropts = ReaderOptions {
        schema: a.schema.clone(),
        seed: 0,
        cutoff: a.cutoff,
    };
    let reader = Box::new(super::term::CountingReader {
        inner: make_reader(format, input, &ropts)?,
        events: progress.events.clone(),
    });
    // The test format is endless; without -n it makes a small demo set.
    let limit = a
        .max_events
        .or(matches!(format, Format::Test).then_some(100));
    Ok(Prepared {
        reader,
        filter,
        limit,
    })
}

pub async fn run(a: &ImportArgs, cfg: &vast_config::Config, node: &Node) -> Result<ExitCode> {
    let counters = super::term::Counters::default();
    let Prepared {
        reader,
        filter,
        limit,
    } = prepare(a, &counters)?;
    let opts = SourceOptions {
        autocommit: false,
        limit,
        filter,
        batch_size: cfg.import.batch_size,
        description: a
            .read
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "stdin".into()),
        format: a.format.name().to_string(),
    };
    let start = Instant::now();
    let progress = super::term::Progress::start(&counters, "read");
    let s = node.import(reader, opts).await;
    drop(progress);
    let s = s.context("import failed; nothing of it was kept")?;
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

/// Import through a running node: the source runs here, batches stream to the
/// endpoint (relayed to `--node`) with a window of in-flight batches, and the
/// import is acknowledged once the node made it durable.
pub async fn run_remote(
    a: &ImportArgs,
    cfg: &vast_config::Config,
    conn: &super::client::Conn,
    node: Option<String>,
) -> Result<ExitCode> {
    use futures::stream::{FuturesUnordered, StreamExt};
    use std::collections::HashMap;
    use vast_node::proto::{DataRequest, DataResponse};
    use vast_node::source::actor::apply_filter;
    const WINDOW: usize = 8;
    let counters = super::term::Counters::default();
    let Prepared {
        reader,
        filter,
        limit,
    } = prepare(a, &counters)?;
    let progress = super::term::Progress::start(&counters, "read");
    let mut reader = Some(reader);
    let target = node.unwrap_or_default();
    let batch_size = cfg.import.batch_size.max(1);
    let frame_room = cfg.cluster.max_frame.saturating_sub(64 << 10);
    // This import's session: random, so no other client can guess or join it.
    let mut session = [0u8; 16];
    getrandom::fill(&mut session).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let start = Instant::now();
    let mut cache = HashMap::new();
    let mut in_flight = FuturesUnordered::new();
    let (mut sent, mut seq) = (0u64, 0u64);
    let mut read_error = None;
    let mut failed: Option<anyhow::Error> = None;
    'read: loop {
        if limit.is_some_and(|l| sent >= l) {
            break;
        }
        let mut r = reader.take().expect("reader is put back after every read");
        let read = tokio::task::spawn_blocking(move || {
            let res = r.read(batch_size);
            (r, res)
        });
        tokio::pin!(read);
        // Batches already sent keep moving while the next read blocks: a slow
        // stream (`tail -f conn.log | vast import zeek`) reaches the node, and
        // continuous exports, batch by batch instead of a window at a time.
        let (r, res) = loop {
            tokio::select! {
                r = &mut read => break r?,
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Err(e) = done {
                        failed = Some(e);
                        break 'read;
                    }
                }
            }
        };
        reader = Some(r);
        let batches = match res {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        };
        for b in batches {
            let mut b = apply_filter(b, filter.as_ref(), &mut cache);
            if let Some(l) = limit {
                let left = l.saturating_sub(sent);
                if b.rows as u64 > left {
                    b = b.select(&(0..left as u32).collect::<Vec<_>>());
                }
            }
            if b.rows == 0 {
                continue;
            }
            sent += b.rows as u64;
            // Batches travel whole when they fit a frame, else in row ranges.
            for (_, bytes) in b.to_bytes_fitting(frame_room) {
                seq += 1;
                let req = DataRequest::Ingest {
                    node: target.clone(),
                    session,
                    seq,
                    batch: bytes,
                    forwarded: false,
                };
                in_flight.push(conn.data(req));
                while in_flight.len() >= WINDOW {
                    if let Some(Err(e)) = in_flight.next().await {
                        failed = Some(e);
                        break 'read;
                    }
                }
            }
        }
    }
    while let Some(r) = in_flight.next().await {
        if let Err(e) = r {
            failed.get_or_insert(e);
        }
    }
    // All or nothing: a failed import is aborted, so none of it shows.
    let failure = match (failed, read_error) {
        (Some(e), _) => Some(e.context("import failed; nothing of it was kept")),
        (None, Some(e)) => Some(
            anyhow::anyhow!(e).context("reading input failed; nothing of this import was kept"),
        ),
        (None, None) => None,
    };
    if let Some(e) = failure {
        let abort = DataRequest::Abort {
            node: target.clone(),
            session,
            forwarded: false,
        };
        let _ = conn.data(abort).await;
        return Err(e);
    }
    match conn
        .data(DataRequest::Flush {
            node: target.clone(),
            session,
            forwarded: false,
        })
        .await
        .context("import failed; nothing of it was kept")?
    {
        DataResponse::Flushed { .. } => {}
        other => anyhow::bail!("unexpected answer {other:?}"),
    }
    drop(progress);
    let skipped = reader.as_ref().map(|r| r.stats().skipped).unwrap_or(0);
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "imported {sent} events in {secs:.2}s ({:.0} events/s) into {}; {skipped} malformed records skipped",
        sent as f64 / secs.max(1e-9),
        if target.is_empty() { conn.node.as_str() } else { target.as_str() },
    );
    Ok(ExitCode::SUCCESS)
}
