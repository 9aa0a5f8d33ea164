//! Live capture through libpcap (the `pcap` crate) as a [`Reader`].

use super::{counter, PacketRows};
use crate::data::Batch;
use crate::source::{ReadError, ReadStats, Reader};
use std::time::{Duration, Instant};

/// How long one `read` waits for packets before returning what it has, so the
/// source loop can notice a stop request.
const READ_SLICE: Duration = Duration::from_millis(250);
/// libpcap's buffering timeout. On Linux (TPACKET_V3) a blocking read does not
/// return on timeout while no packets arrive, so the capture is non-blocking and
/// an idle read sleeps [`IDLE_SLEEP`] between polls.
const PCAP_TIMEOUT_MS: i32 = 100;
const IDLE_SLEEP: Duration = Duration::from_millis(2);

/// Captures packets from a network interface. `read` returns at least every
/// [`READ_SLICE`], with an empty batch list when nothing arrived.
pub struct PcapLiveReader {
    cap: pcap::Capture<pcap::Active>,
    /// The link type as written in files (libpcap reports `DLT_*` values, which
    /// differ for raw IP).
    linktype: u32,
    rows: PacketRows,
    events: u64,
    kernel_drops: u64,
    iface_drops: u64,
    stats_at: Instant,
}

fn open_error(iface: &str, e: pcap::Error) -> ReadError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        ReadError::Other(format!(
            "cannot capture on {iface}: {msg}; run as root or grant the capability: \
             setcap cap_net_raw,cap_net_admin+ep $(which vast)"
        ))
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        ReadError::Other(format!(
            "cannot capture on {iface}: no such interface ({msg}); `ip link` lists the \
             interfaces, `any` captures on all of them"
        ))
    } else {
        ReadError::Other(format!("cannot capture on {iface}: {msg}"))
    }
}

impl PcapLiveReader {
    /// Opens `iface` (non-promiscuous, packets delivered within 100 ms) with an optional BPF
    /// filter, capturing at most `snaplen` bytes per packet and, with `cutoff`,
    /// at most that many payload bytes per connection.
    pub fn open(
        iface: &str,
        bpf: Option<&str>,
        snaplen: u32,
        cutoff: Option<u64>,
    ) -> Result<Self, ReadError> {
        let snaplen = snaplen.clamp(64, i32::MAX as u32) as i32;
        let cap = pcap::Capture::from_device(iface)
            .map_err(|e| open_error(iface, e))?
            .snaplen(snaplen)
            // Not immediate mode: on Linux that means TPACKET_V2 with fixed
            // snaplen-sized slots (a 32 MiB ring holds ~500 full-size frames);
            // TPACKET_V3 packs packets into blocks handed over when full or
            // after the timeout, so the same ring absorbs long bursts.
            .timeout(PCAP_TIMEOUT_MS)
            .buffer_size(32 << 20)
            .open()
            .map_err(|e| open_error(iface, e))?
            .setnonblock()
            .map_err(|e| open_error(iface, e))?;
        let mut cap = cap;
        if let Some(f) = bpf {
            cap.filter(f, true)
                .map_err(|e| ReadError::Other(format!("bad capture filter {f:?}: {e}")))?;
        }
        let linktype = match cap.get_datalink().0 as u32 {
            12 | 14 => super::decode::linktype::RAW,
            l => l,
        };
        Ok(PcapLiveReader {
            cap,
            linktype,
            rows: PacketRows::new(cutoff),
            events: 0,
            kernel_drops: 0,
            iface_drops: 0,
            stats_at: Instant::now(),
        })
    }

    fn refresh_stats(&mut self) {
        if let Ok(s) = self.cap.stats() {
            self.kernel_drops = s.dropped as u64;
            self.iface_drops = s.if_dropped as u64;
        }
        self.stats_at = Instant::now();
    }
}

impl Reader for PcapLiveReader {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<Batch>>, ReadError> {
        let start = Instant::now();
        let batch_size = batch_size.max(1);
        while self.rows.builder.rows() < batch_size && start.elapsed() < READ_SLICE {
            match self.cap.next_packet() {
                Ok(p) => {
                    let ts = p.header.ts;
                    // time_t and suseconds_t are i64 here but not on every target.
                    #[allow(clippy::unnecessary_cast)]
                    let time = ts.tv_sec as i64 * 1_000_000_000 + ts.tv_usec as i64 * 1000;
                    let data = p.data;
                    self.rows.push(time, self.linktype, data);
                }
                // Non-blocking: nothing buffered right now.
                Err(pcap::Error::TimeoutExpired) => {
                    if !self.rows.builder.is_empty() {
                        break;
                    }
                    std::thread::sleep(IDLE_SLEEP);
                }
                Err(e) => return Err(ReadError::Other(format!("capture failed: {e}"))),
            }
        }
        if self.stats_at.elapsed() >= Duration::from_secs(1) {
            self.refresh_stats();
        }
        if self.rows.builder.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let b = self.rows.builder.finish();
        self.events += b.rows as u64;
        Ok(Some(vec![b]))
    }

    fn stats(&self) -> ReadStats {
        let mut counters = self.rows.counters();
        counters.push((counter::DROPPED_KERNEL.to_string(), self.kernel_drops));
        counters.push((counter::DROPPED_INTERFACE.to_string(), self.iface_drops));
        ReadStats {
            events: self.events,
            skipped: 0,
            counters,
        }
    }
}

impl PcapLiveReader {
    /// Current libpcap statistics (received, dropped by the kernel, by the interface).
    pub fn capture_stats(&mut self) -> (u64, u64, u64) {
        self.refresh_stats();
        (self.rows.received, self.kernel_drops, self.iface_drops)
    }
}
