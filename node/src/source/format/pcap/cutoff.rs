//! The flow cutoff: keep at most N bytes of transport payload per connection, as
//! VAST's `-c` did, so long bulk transfers do not flood the store.

use super::decode::{Decoded, IpBytes};
use std::collections::{HashMap, VecDeque};

/// Flows idle this long (in packet time) are forgotten.
pub const DEFAULT_IDLE_NS: i64 = 60 * 1_000_000_000;
/// At most this many flows are tracked; the least recently seen go first.
pub const DEFAULT_MAX_FLOWS: usize = 1 << 20;

/// A connection regardless of direction: the smaller endpoint first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct FlowKey {
    a: (IpBytes, u16),
    b: (IpBytes, u16),
    proto: u8,
}

impl FlowKey {
    fn of(d: &Decoded) -> Option<FlowKey> {
        let (src, dst) = d.addrs?;
        let proto = d.proto?;
        let (sp, dp) = d.ports.unwrap_or((0, 0));
        let (a, b) = if (src, sp) <= (dst, dp) {
            ((src, sp), (dst, dp))
        } else {
            ((dst, dp), (src, sp))
        };
        Some(FlowKey { a, b, proto })
    }
}

struct Flow {
    bytes: u64,
    last_seen: i64,
}

/// Per-connection payload accounting with idle expiry and a size bound.
pub struct FlowTable {
    cutoff: u64,
    idle_ns: i64,
    max_flows: usize,
    flows: HashMap<FlowKey, Flow>,
    /// Flows in the order they were (re)queued with the time then; an entry is
    /// stale when the flow was seen since, and is requeued instead of evicted.
    queue: VecDeque<(FlowKey, i64)>,
    /// Packets dropped because their flow had reached the cutoff.
    pub cut_off: u64,
    /// Flows forgotten because of the size bound (not idleness).
    pub evicted: u64,
}

impl FlowTable {
    /// A table that keeps `cutoff` payload bytes per flow.
    pub fn new(cutoff: u64) -> Self {
        Self::with_limits(cutoff, DEFAULT_IDLE_NS, DEFAULT_MAX_FLOWS)
    }

    pub fn with_limits(cutoff: u64, idle_ns: i64, max_flows: usize) -> Self {
        FlowTable {
            cutoff,
            idle_ns,
            max_flows: max_flows.max(1),
            flows: HashMap::new(),
            queue: VecDeque::new(),
            cut_off: 0,
            evicted: 0,
        }
    }

    /// Flows currently tracked.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Whether to keep a packet seen at `time`: packets of a flow that already
    /// carried `cutoff` payload bytes are dropped (and counted); packets that are
    /// not IP are always kept.
    pub fn admit(&mut self, time: i64, d: &Decoded) -> bool {
        let Some(key) = FlowKey::of(d) else {
            return true;
        };
        self.expire(time);
        if !self.flows.contains_key(&key) {
            while self.flows.len() >= self.max_flows {
                if !self.evict_oldest() {
                    break;
                }
                self.evicted += 1;
            }
            self.queue.push_back((key, time));
        }
        let f = self.flows.entry(key).or_insert(Flow {
            bytes: 0,
            last_seen: time,
        });
        f.last_seen = f.last_seen.max(time);
        if f.bytes >= self.cutoff {
            self.cut_off += 1;
            return false;
        }
        f.bytes = f.bytes.saturating_add(d.payload_len as u64);
        true
    }

    /// Drops flows idle longer than the idle timeout at `now`.
    fn expire(&mut self, now: i64) {
        while let Some(&(key, queued)) = self.queue.front() {
            if now.saturating_sub(queued) <= self.idle_ns {
                break;
            }
            self.queue.pop_front();
            match self.flows.get(&key) {
                Some(f) if now.saturating_sub(f.last_seen) <= self.idle_ns => {
                    self.queue.push_back((key, f.last_seen));
                }
                Some(_) => {
                    self.flows.remove(&key);
                }
                None => {}
            }
        }
    }

    /// Forgets the least recently seen flow; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((key, queued)) = self.queue.pop_front() {
            match self.flows.get(&key) {
                Some(f) if f.last_seen > queued => self.queue.push_back((key, f.last_seen)),
                Some(_) => {
                    self.flows.remove(&key);
                    return true;
                }
                None => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(src: u8, sport: u16, dst: u8, dport: u16, payload: usize) -> Decoded {
        Decoded {
            addrs: Some((IpBytes::V4([10, 0, 0, src]), IpBytes::V4([10, 0, 0, dst]))),
            proto: Some(6),
            ports: Some((sport, dport)),
            payload_len: payload,
            ..Default::default()
        }
    }

    const S: i64 = 1_000_000_000;

    #[test]
    fn both_directions_share_one_budget() {
        let mut t = FlowTable::new(1000);
        assert!(t.admit(0, &pkt(1, 5000, 2, 80, 600)));
        assert!(t.admit(1, &pkt(2, 80, 1, 5000, 600)));
        // 1200 bytes seen: the budget is spent, everything else of the flow goes.
        assert!(!t.admit(2, &pkt(1, 5000, 2, 80, 0)));
        assert!(!t.admit(3, &pkt(2, 80, 1, 5000, 10)));
        assert_eq!(t.cut_off, 2);
        // Another flow is unaffected; non-IP packets are always kept.
        assert!(t.admit(4, &pkt(1, 5001, 2, 80, 10)));
        assert!(t.admit(5, &Decoded::default()));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn zero_cutoff_drops_all_ip_packets() {
        let mut t = FlowTable::new(0);
        assert!(!t.admit(0, &pkt(1, 1, 2, 2, 0)));
        assert!(t.admit(0, &Decoded::default()));
        assert_eq!(t.cut_off, 1);
    }

    #[test]
    fn idle_flows_expire_and_start_over() {
        let mut t = FlowTable::with_limits(100, 60 * S, 10);
        assert!(t.admit(0, &pkt(1, 1, 2, 2, 100)));
        assert!(!t.admit(30 * S, &pkt(1, 1, 2, 2, 1)));
        // Seen at 30 s, so still alive at 80 s.
        assert!(!t.admit(80 * S, &pkt(1, 1, 2, 2, 1)));
        // Idle for more than 60 s: forgotten, the budget starts again.
        assert!(t.admit(141 * S, &pkt(1, 1, 2, 2, 1)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn size_bound_evicts_least_recently_seen() {
        let mut t = FlowTable::with_limits(10, 3600 * S, 3);
        for p in 1..=3 {
            assert!(t.admit(p as i64, &pkt(1, p, 2, 80, 10)));
        }
        // Flow 1 is touched again, so flow 2 is the oldest.
        assert!(!t.admit(10, &pkt(1, 1, 2, 80, 1)));
        assert!(t.admit(11, &pkt(1, 4, 2, 80, 10)));
        assert_eq!((t.len(), t.evicted), (3, 1));
        // Flow 2 was forgotten (fresh budget), flow 1 was not.
        assert!(t.admit(12, &pkt(1, 2, 2, 80, 1)));
        assert!(!t.admit(13, &pkt(1, 1, 2, 80, 1)));
    }
}
