//! Export cursors: an export's remaining work, pulled chunk by chunk by the client
//! that opened it. Ids are random 128-bit values; a cursor belongs to its opener,
//! is closed when that client disconnects, expires when nobody pulls it, and each
//! client may hold only a few.

use crate::proto::WireHits;
use libp2p::PeerId;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What is left of one export.
pub(super) struct Cursor {
    pub owner: PeerId,
    pub expr: String,
    /// Partitions still to read, in import order.
    pub hits: VecDeque<WireHits>,
    /// Where to go on in the first partition of `hits`.
    pub from_row: u32,
    /// Rows still wanted (`-n`).
    pub left: Option<u64>,
    /// The live part of a continuous or unified export.
    pub live: Option<Box<super::live::Live>>,
    last_used: Instant,
}

impl Cursor {
    pub fn new(owner: PeerId, expr: String, hits: Vec<WireHits>, left: Option<u64>) -> Cursor {
        Cursor {
            owner,
            expr,
            hits: hits.into(),
            from_row: 0,
            left,
            live: None,
            last_used: Instant::now(),
        }
    }
}

/// A cursor at rest, or out for a pull (and whether it was closed meanwhile).
enum Slot {
    Idle(Cursor),
    Taken { owner: PeerId, closed: bool },
}

impl Slot {
    fn owner(&self) -> PeerId {
        match self {
            Slot::Idle(c) => c.owner,
            Slot::Taken { owner, .. } => *owner,
        }
    }
}

pub(super) struct Cursors {
    map: Mutex<HashMap<[u8; 16], Slot>>,
    per_peer: usize,
    idle: Duration,
}

pub(super) fn show(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl Cursors {
    pub fn new(per_peer: usize, idle: Duration) -> Cursors {
        Cursors {
            map: Mutex::new(HashMap::new()),
            per_peer,
            idle,
        }
    }

    /// Registers a cursor under a fresh random id, unless its owner holds too many.
    pub fn open(&self, c: Cursor) -> Result<[u8; 16], String> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| format!("no randomness for a cursor id: {e}"))?;
        let mut map = self.map.lock().expect("lock poisoned");
        let held = map.values().filter(|x| x.owner() == c.owner).count();
        if held >= self.per_peer {
            return Err(format!(
                "too many open exports for this client ({held}, limit cluster.max-cursors-per-peer = {})",
                self.per_peer
            ));
        }
        map.insert(id, Slot::Idle(c));
        Ok(id)
    }

    /// Takes cursor `id` out for one pull; `put` returns it. `check` is the access
    /// policy's verdict on the caller against the owner. A cursor out for a pull
    /// cannot be pulled twice at once.
    pub fn take(
        &self,
        id: &[u8; 16],
        check: impl FnOnce(PeerId) -> Result<(), String>,
    ) -> Result<Cursor, String> {
        let mut map = self.map.lock().expect("lock poisoned");
        let slot = map
            .get_mut(id)
            .ok_or_else(|| format!("unknown export cursor {} (closed or expired)", show(id)))?;
        check(slot.owner())?;
        let owner = slot.owner();
        match std::mem::replace(
            slot,
            Slot::Taken {
                owner,
                closed: false,
            },
        ) {
            Slot::Idle(c) => Ok(c),
            taken => {
                *slot = taken;
                Err(format!(
                    "export cursor {} is busy with another pull",
                    show(id)
                ))
            }
        }
    }

    /// Returns a cursor after a pull, unless it was closed meanwhile (the client
    /// gave up or went away while the pull waited): then it is dropped now.
    pub fn put(&self, id: [u8; 16], mut c: Cursor) {
        c.last_used = Instant::now();
        let mut map = self.map.lock().expect("lock poisoned");
        match map.get(&id) {
            Some(Slot::Taken { closed: false, .. }) => {
                map.insert(id, Slot::Idle(c));
            }
            _ => {
                map.remove(&id);
            }
        }
    }

    /// A pull ended the export (end or failure): the cursor is gone.
    pub fn finish(&self, id: &[u8; 16]) {
        self.map.lock().expect("lock poisoned").remove(id);
    }

    /// Closes cursor `id` if `check` allows; one out for a pull closes when the
    /// pull returns it.
    pub fn close(
        &self,
        id: &[u8; 16],
        check: impl FnOnce(PeerId) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut map = self.map.lock().expect("lock poisoned");
        let slot = map
            .get_mut(id)
            .ok_or_else(|| format!("unknown export cursor {} (closed or expired)", show(id)))?;
        check(slot.owner())?;
        match slot {
            Slot::Taken { closed, .. } => *closed = true,
            Slot::Idle(_) => {
                map.remove(id);
            }
        }
        Ok(())
    }

    /// Closes every cursor of `peer`; returns how many.
    pub fn close_peer(&self, peer: PeerId) -> usize {
        let mut map = self.map.lock().expect("lock poisoned");
        let before = map.len();
        let mut closing = 0;
        map.retain(|_, s| match s {
            Slot::Idle(c) => c.owner != peer,
            Slot::Taken { owner, closed } => {
                if *owner == peer && !*closed {
                    *closed = true;
                    closing += 1;
                }
                true
            }
        });
        before - map.len() + closing
    }

    /// Closes cursors nobody pulled for the idle timeout; returns how many.
    pub fn expire(&self) -> usize {
        let mut map = self.map.lock().expect("lock poisoned");
        let before = map.len();
        let idle = self.idle;
        map.retain(|_, s| match s {
            Slot::Idle(c) => c.last_used.elapsed() < idle,
            Slot::Taken { .. } => true,
        });
        before - map.len()
    }

    pub fn len(&self) -> usize {
        self.map.lock().expect("lock poisoned").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    #[test]
    fn cursors_are_capped_owned_and_expire() {
        let cs = Cursors::new(2, Duration::from_millis(50));
        let (a, b) = (peer(), peer());
        let c1 = cs.open(Cursor::new(a, "x".into(), vec![], None)).unwrap();
        let c2 = cs.open(Cursor::new(a, "x".into(), vec![], None)).unwrap();
        assert_ne!(c1, c2);
        assert!(cs.open(Cursor::new(a, "x".into(), vec![], None)).is_err());
        let cb = cs.open(Cursor::new(b, "x".into(), vec![], None)).unwrap();
        let only = |me: PeerId| {
            move |owner: PeerId| {
                if owner == me {
                    Ok(())
                } else {
                    Err("not yours".to_string())
                }
            }
        };
        assert!(cs.take(&c1, only(b)).is_err());
        let c = cs.take(&c1, only(a)).unwrap();
        // Out for a pull: not twice at once.
        assert!(cs.take(&c1, only(a)).is_err());
        cs.put(c1, c);
        // Closed while out for a pull: gone once the pull returns it.
        let c = cs.take(&c2, only(a)).unwrap();
        cs.close(&c2, only(a)).unwrap();
        cs.put(c2, c);
        assert!(cs.take(&c2, only(a)).is_err());
        let c2 = cs.open(Cursor::new(a, "x".into(), vec![], None)).unwrap();
        // The owner goes away while a pull is out: gone once returned too.
        let c = cs.take(&c2, only(a)).unwrap();
        assert_eq!(cs.close_peer(a), 2);
        cs.put(c2, c);
        assert!(cs.take(&c2, only(a)).is_err());
        assert_eq!(cs.len(), 1);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(cs.expire(), 1);
        assert!(cs.take(&cb, only(b)).is_err());
    }
}
