//! Live-capture throughput through an embedded node: captures UDP on `lo` while a
//! thread sends a bounded number of datagrams to 127.0.0.1, imports everything
//! into a fresh database, and reports packets/s and libpcap's drop counters.
//!
//!   cargo run --release -p vast-node --example pcap_live_bench -- [COUNT] [RATE]
//!
//! COUNT datagrams (default 500000) of 64 bytes; RATE per second (0 = as fast as
//! possible). Needs CAP_NET_RAW (root).

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vast_node::data::Batch;
use vast_node::node::{Node, NodeOptions};
use vast_node::source::actor::SourceOptions;
use vast_node::source::format::pcap::PcapLiveReader;
use vast_node::source::{ReadError, ReadStats, Reader};

/// Passes reads through and keeps the latest statistics where main can see them
/// after the node has taken the reader.
struct Tap {
    inner: PcapLiveReader,
    stats: Arc<Mutex<ReadStats>>,
}

impl Reader for Tap {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<Batch>>, ReadError> {
        let r = self.inner.read(batch_size);
        *self.stats.lock().unwrap() = self.inner.stats();
        r
    }
    fn stats(&self) -> ReadStats {
        self.inner.stats()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("COUNT and RATE are numbers"))
        .collect();
    let count = args.first().copied().unwrap_or(500_000);
    let rate = args.get(1).copied().unwrap_or(0);
    // A bound receiver (never read) so the kernel answers no datagram with an
    // ICMP port-unreachable that would double the traffic on `lo`.
    let sink = UdpSocket::bind("127.0.0.1:0")?;
    let port = sink.local_addr()?.port();
    let mut reader =
        PcapLiveReader::open("lo", Some(&format!("udp dst port {port}")), 65535, None)?;
    let stats = Arc::new(Mutex::new(ReadStats::default()));
    let db = std::env::temp_dir().join(format!("vast-live-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&db);
    let node = Node::open(NodeOptions {
        id: "bench".into(),
        db: db.clone(),
        components: vec!["importer".into(), "archive".into(), "index".into()],
        batch_size: 65536,
        partition_size: 1 << 20,
        partition_timeout: Duration::from_secs(60),
    })
    .await?;
    // Drain what arrived before the node (nothing: the port is fresh).
    let _ = reader.read(1);
    let (_, task) = node.spawn_source(
        Box::new(Tap {
            inner: reader,
            stats: stats.clone(),
        }),
        SourceOptions {
            batch_size: 65536,
            description: "lo".into(),
            format: "pcap".into(),
            ..Default::default()
        },
    )?;
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let payload = [0x5au8; 64];
        for i in 0..count {
            if rate > 0 {
                let due = Duration::from_secs_f64(i as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            let _ = s.send_to(&payload, ("127.0.0.1", port));
        }
        start.elapsed()
    });
    let send_time = tokio::task::spawn_blocking(move || sender.join().unwrap()).await?;
    // Wait until the capture has caught up (no new packets for 1 s).
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = stats.lock().unwrap().events;
        if now == last || now >= count {
            break;
        }
        last = now;
    }
    let captured_at = start.elapsed();
    node.kill("source-0").await?;
    let summary = tokio::time::timeout(Duration::from_secs(60), task).await??;
    let total = start.elapsed();
    let s = stats.lock().unwrap().clone();
    let counter = |n: &str| {
        s.counters
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    };
    println!(
        "sent {count} datagrams in {:.2}s ({:.0}/s, rate limit {})",
        send_time.as_secs_f64(),
        count as f64 / send_time.as_secs_f64(),
        if rate > 0 {
            rate.to_string()
        } else {
            "none".into()
        }
    );
    println!(
        "captured {} packets ({:.0}/s over the send time), imported {} durable in {:.2}s total",
        counter("packets-received"),
        counter("packets-received") as f64 / send_time.as_secs_f64(),
        summary.map_err(|e| e.to_string())?.events,
        total.as_secs_f64()
    );
    println!(
        "dropped by kernel {}, by interface {}; missing {}; caught up after {:.2}s",
        counter("packets-dropped-kernel"),
        counter("packets-dropped-interface"),
        count.saturating_sub(counter("packets-received")),
        captured_at.as_secs_f64()
    );
    node.shutdown().await;
    drop(sink);
    let _ = std::fs::remove_dir_all(&db);
    Ok(())
}
