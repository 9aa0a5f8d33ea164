//! Large batch buffers kept for reuse. A batch is several MiB; each one
//! read from a peer, serialized by a client or forwarded by a relay used to be
//! a fresh allocation, and the allocator handed back fresh pages for most of
//! them, so every byte cost a page fault and the kernel's zeroing on top of its
//! copy: 16% of a relaying node's CPU and 3% of the receiving one's
//! (BENCHMARKS.md, "Recycled batch buffers"). Buffers go back here once their
//! bytes are written or decoded, and the next frame reads into one.
//!
//! The pool is bounded in count and bytes, so it never holds more than one
//! window of frames (128 MiB, kept while the process runs: the price of an
//! import that does not wait on fresh pages); what does not fit is freed as
//! before. A buffer comes out empty (length 0), so no stale byte from an
//! earlier frame can be read, and only for a need of at least a quarter of its
//! size, so a small batch never pins a large allocation.

use std::sync::{Mutex, OnceLock};

/// Buffers smaller than this are left to the allocator, which reuses them well.
pub const MIN_CAPACITY: usize = 1 << 20;

/// What to reserve for `n` bytes that may end up in the pool: from 1 MiB up,
/// `n` rounded up to a multiple of 2 MiB, so the next batch, a little larger
/// than this one, fits the same buffer.
pub fn rounded(n: usize) -> usize {
    if n < MIN_CAPACITY {
        n
    } else {
        n.next_multiple_of(2 << 20)
    }
}

/// A bounded stack of empty buffers.
#[derive(Debug)]
pub struct Pool {
    bufs: Mutex<Vec<Vec<u8>>>,
    max_count: usize,
    max_bytes: usize,
}

impl Pool {
    /// A pool keeping at most `max_count` buffers and `max_bytes` of capacity.
    pub fn new(max_count: usize, max_bytes: usize) -> Pool {
        Pool {
            bufs: Mutex::new(Vec::with_capacity(max_count)),
            max_count,
            max_bytes,
        }
    }

    /// The process's pool: eight buffers, 128 MiB at most (a client's window
    /// of eight batches of 65,536 conn rows, about 9 MB each, or a relay's).
    pub fn global() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| Pool::new(8, 128 << 20))
    }

    /// An empty kept buffer of at least `need` bytes and at most four times
    /// that, the smallest there is; else an empty `Vec` that has allocated
    /// nothing (the caller reserves as it sees fit: a frame reader only as
    /// bytes arrive).
    pub fn take(&self, need: usize) -> Vec<u8> {
        if need < MIN_CAPACITY {
            return Vec::new();
        }
        let mut bufs = self.bufs.lock().unwrap_or_else(|p| p.into_inner());
        let fit = bufs
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= need && b.capacity() / 4 <= need)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        fit.map(|i| bufs.swap_remove(i)).unwrap_or_default()
    }

    /// Keeps `buf` for reuse if it is large and there is room; frees it if not.
    pub fn put(&self, mut buf: Vec<u8>) {
        if buf.capacity() < MIN_CAPACITY {
            return;
        }
        buf.clear();
        let mut bufs = self.bufs.lock().unwrap_or_else(|p| p.into_inner());
        let held: usize = bufs.iter().map(Vec::capacity).sum();
        if bufs.len() < self.max_count && held + buf.capacity() <= self.max_bytes {
            bufs.push(buf);
        }
    }

    /// Keeps the bytes behind `body` if no one else holds them.
    pub fn put_bytes(&self, body: bytes::Bytes) {
        if let Ok(mut m) = body.try_into_mut() {
            // Emptied first: turning a `BytesMut` into a `Vec` moves its bytes
            // to the allocation's start, which is a copy unless there are none.
            m.clear();
            self.put(m.into());
        }
    }

    /// Buffers held now (for tests).
    pub fn len(&self) -> usize {
        self.bufs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_fitting_and_the_pool_stays_bounded() {
        let pool = Pool::new(3, 7 << 20);
        // Small buffers are not kept.
        pool.put(vec![1u8; 1000]);
        assert!(pool.is_empty());
        // A large one is, and comes out empty with its allocation.
        let big = vec![7u8; 2 << 20];
        let at = big.as_ptr();
        pool.put(big);
        let b = pool.take(2 << 20);
        assert_eq!((b.len(), b.capacity(), b.as_ptr()), (0, 2 << 20, at));
        // Only for a need it covers and that is at least a quarter of it; the
        // smallest that fits.
        pool.put(b);
        pool.put(Vec::with_capacity(4 << 20));
        assert_eq!(pool.take(5 << 20).capacity(), 0);
        assert_eq!(pool.take(300_000).capacity(), 0);
        assert_eq!(pool.take(1 << 20).capacity(), 2 << 20);
        assert_eq!(pool.take(3 << 20).capacity(), 4 << 20);
        assert!(pool.is_empty());
        // Room by bytes: 3 + 3 MiB fit under 7, a third does not.
        for _ in 0..3 {
            pool.put(Vec::with_capacity(3 << 20));
        }
        assert_eq!(pool.len(), 2);
        // Room by count.
        let pool = Pool::new(1, 1 << 30);
        pool.put(Vec::with_capacity(1 << 20));
        pool.put(Vec::with_capacity(1 << 20));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn sizes_round_up_to_two_mebibytes_from_one() {
        assert_eq!(rounded(1000), 1000);
        assert_eq!(rounded((1 << 20) - 1), (1 << 20) - 1);
        assert_eq!(rounded(1 << 20), 2 << 20);
        assert_eq!(rounded(2 << 20), 2 << 20);
        assert_eq!(rounded((8 << 20) + 1), 10 << 20);
    }

    #[test]
    fn shared_bytes_are_left_alone_and_unique_ones_kept_without_a_copy() {
        let pool = Pool::new(4, 1 << 30);
        let body = bytes::Bytes::from(vec![3u8; 1 << 20]);
        let other = body.clone();
        pool.put_bytes(body);
        assert!(pool.is_empty(), "kept bytes another frame still holds");
        assert!(other.iter().all(|&b| b == 3));
        let at = other.as_ptr();
        pool.put_bytes(other);
        let b = pool.take(1 << 20);
        assert_eq!((b.len(), b.as_ptr()), (0, at));
        // A `Vec` with spare capacity becomes a differently shaped `Bytes`.
        let mut v = Vec::with_capacity(2 << 20);
        v.extend_from_slice(&[1u8; 100]);
        let at = v.as_ptr();
        pool.put_bytes(bytes::Bytes::from(v));
        let b = pool.take(2 << 20);
        assert_eq!((b.len(), b.capacity(), b.as_ptr()), (0, 2 << 20, at));
    }
}
