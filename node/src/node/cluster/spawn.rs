//! `spawn` on request: components, and sources confined by the node's source
//! policy. Opening a file or an interface runs on a blocking thread under a
//! timeout, so no input (a FIFO, a hung mount, a slow device) can stall the node.

use super::Cluster;
use crate::proto::SpawnSpec;
use crate::source::format::{make_reader, open_file_input, Format, ReaderOptions};
use crate::source::Reader;
use std::sync::Arc;
use std::time::Duration;

/// How long opening an input may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `f` on a blocking thread; gives up waiting after [`OPEN_TIMEOUT`].
async fn off_runtime<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    match tokio::time::timeout(OPEN_TIMEOUT, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(format!("opening {what} failed: {e}")),
        Err(_) => Err(format!(
            "opening {what} did not finish within {}s",
            OPEN_TIMEOUT.as_secs()
        )),
    }
}

impl Cluster {
    pub(super) async fn spawn(self: &Arc<Self>, spec: SpawnSpec) -> Result<String, String> {
        let (path, interface, bpf, snaplen, cutoff, format, schema) = match spec {
            SpawnSpec::Component(c) => {
                return self
                    .node
                    .spawn_component(&c)
                    .await
                    .map_err(|e| e.to_string())
            }
            SpawnSpec::Source {
                path,
                interface,
                bpf,
                snaplen,
                cutoff,
                format,
                schema,
            } => (path, interface, bpf, snaplen, cutoff, format, schema),
        };
        let id = self.id.clone();
        let f: Format = format.parse()?;
        let (reader, description): (Box<dyn Reader>, String) =
            match (interface, path) {
                (Some(_), Some(_)) => {
                    return Err("spawn source takes -r FILE or -i IFACE, not both".into())
                }
                (Some(iface), None) => {
                    if f != Format::Pcap {
                        return Err(format!(
                            "capturing from an interface needs the pcap format, not {format}"
                        ));
                    }
                    self.opts
                        .sources
                        .capture(&iface)
                        .map_err(|e| format!("node {id}: {e}"))?;
                    let i = iface.clone();
                    let r = off_runtime(&format!("interface {iface}"), move || {
                        crate::source::format::pcap::live::PcapLiveReader::open(
                            &i,
                            bpf.as_deref(),
                            snaplen.unwrap_or(65535),
                            cutoff,
                        )
                        .map_err(|e| format!("node {id}: {e}"))
                    })
                    .await?;
                    (Box::new(r), format!("interface {iface}"))
                }
                (None, Some(path)) => {
                    let policy = self.opts.sources.clone();
                    let p = path.clone();
                    let r = off_runtime(&path, move || {
                        let file = policy
                            .open_file(&p)
                            .map_err(|e| format!("node {id}: {e}"))?;
                        let input = open_file_input(file)
                            .map_err(|e| format!("node {id}: cannot read {p}: {e}"))?;
                        make_reader(
                            f,
                            input,
                            &ReaderOptions {
                                schema,
                                cutoff,
                                ..Default::default()
                            },
                        )
                        .map_err(|e| format!("node {id}: {e}"))
                    })
                    .await?;
                    (r, path)
                }
                (None, None) => return Err(
                    "spawn source needs -r FILE or -i IFACE (stdin belongs to the node process)"
                        .into(),
                ),
            };
        let opts = crate::source::actor::SourceOptions {
            limit: None,
            filter: None,
            batch_size: self.node.options().batch_size,
            description,
            format,
            // Spawned sources run long: each partition is visible once sealed.
            autocommit: true,
        };
        let (label, _task) = self
            .node
            .spawn_source(reader, opts)
            .map_err(|e| e.to_string())?;
        Ok(label)
    }
}
