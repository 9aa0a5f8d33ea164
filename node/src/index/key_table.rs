//! The value-index builder's map from keys to slots.
//!
//! Hand-written instead of a hashbrown map for a measured reason: every value of
//! every indexed column is looked up here while a partition fills, and in
//! columns of many distinct values (times, byte counts, addresses) the map
//! outgrows the core's cache, so each lookup waited on a miss. `perf` put the
//! map probe at 15% of a 2M-line Zeek import's CPU, two thirds of it on the
//! loads of the probed entry. This table is probed a column at a time: the
//! entry of the key a few places ahead is prefetched while the current one is
//! looked up, so the misses overlap instead of following one another.

/// A key the table can spread over its entries.
pub(crate) trait TableKey: Copy + Eq + Default {
    /// 64 well-mixed bits: the table takes the top ones.
    fn spread(self) -> u64;
}

/// Fibonacci hashing: the product's top bits depend on every bit of the key,
/// so runs of near keys (timestamps, counters) land far apart.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl TableKey for u64 {
    #[inline]
    fn spread(self) -> u64 {
        self.wrapping_mul(GOLDEN)
    }
}

impl TableKey for u128 {
    #[inline]
    fn spread(self) -> u64 {
        // IPv4 addresses are IPv4-mapped: their high half never changes.
        let hi = (self >> 64) as u64;
        ((self as u64) ^ hi.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)).wrapping_mul(GOLDEN)
    }
}

/// A vacant entry. Slots are below `u32::MAX` (the builder's `NO_SLOT`).
const VACANT: u32 = u32::MAX;
/// How many keys ahead a column's probe prefetches: enough misses in flight
/// to hide memory latency, few enough that prefetched lines stay cached.
const AHEAD: usize = 16;

#[derive(Clone, Copy)]
struct Entry<K> {
    key: K,
    slot: u32,
}

/// Open addressing with linear probing, at most half full.
pub(crate) struct KeyTable<K> {
    entries: Vec<Entry<K>>,
    /// 64 less log2 of the capacity.
    shift: u32,
    len: usize,
    /// log2 of the capacity the keys are expected to need (0: no guess); see
    /// [`KeyTable::expect`].
    expect_bits: u32,
}

/// Up to this capacity (log2) a table doubles as usual whatever it expects,
/// so a small partition never takes the memory a large one needed.
const EXPECT_FROM_BITS: u32 = 12;

impl<K: TableKey> Default for KeyTable<K> {
    fn default() -> Self {
        Self::with_capacity_log2(4)
    }
}

impl<K: TableKey> KeyTable<K> {
    fn with_capacity_log2(bits: u32) -> Self {
        KeyTable {
            entries: vec![
                Entry {
                    key: K::default(),
                    slot: VACANT
                };
                1 << bits
            ],
            shift: 64 - bits,
            len: 0,
            expect_bits: 0,
        }
    }

    /// Expects about `keys` distinct keys (as the column's last partition
    /// held): once the table outgrows 2^12 entries it grows straight to the
    /// size they need, and so does the table a `drain` leaves. Varied columns
    /// fill a table to [`super::value_index::KEY_LIMIT`] keys, bin them and
    /// start over, several times a partition: rehashing through the doublings
    /// each time was 2.5% of an import's CPU.
    pub fn expect(&mut self, keys: usize) {
        // At most half full, as `slot_or_insert` keeps it.
        self.expect_bits = (keys
            .saturating_mul(2)
            .max(1)
            .next_power_of_two()
            .trailing_zeros())
        .min(40);
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn home(&self, k: K) -> usize {
        (k.spread() >> self.shift) as usize
    }

    #[inline]
    fn prefetch(&self, k: K) {
        let at = self.entries.as_ptr().wrapping_add(self.home(k));
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults and reads nothing
        // into the program; `at` is inside `entries` anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch(at as *const i8, std::arch::x86_64::_MM_HINT_T0);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = at;
    }

    /// The slot of `k`, or `next` (then counted up) for a key not seen before.
    #[inline(always)]
    pub fn slot_or_insert(&mut self, k: K, next: &mut u32) -> u32 {
        let mask = self.entries.len() - 1;
        let mut i = self.home(k);
        loop {
            let e = &mut self.entries[i];
            if e.slot == VACANT {
                e.key = k;
                e.slot = *next;
                *next += 1;
                self.len += 1;
                let slot = e.slot;
                if self.len * 2 > self.entries.len() {
                    self.grow();
                }
                return slot;
            }
            if e.key == k {
                return e.slot;
            }
            i = (i + 1) & mask;
        }
    }

    /// Each key's slot (new keys numbered from `next` in order), written to
    /// `out` in the keys' order.
    ///
    /// A key equal to the one before takes its slot without a probe: times
    /// arrive in order, so a binned time column repeats its key for long runs.
    pub fn slots_of(&mut self, keys: &[K], next: &mut u32, out: &mut impl FnMut(u32)) {
        let mut last: Option<(K, u32)> = None;
        for (i, &k) in keys.iter().enumerate() {
            if let Some((lk, slot)) = last {
                if lk == k {
                    out(slot);
                    continue;
                }
            }
            if let Some(&ahead) = keys.get(i + AHEAD) {
                self.prefetch(ahead);
            }
            let slot = self.slot_or_insert(k, next);
            last = Some((k, slot));
            out(slot);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let mut bits = 64 - self.shift + 1;
        if bits > EXPECT_FROM_BITS && self.expect_bits > bits {
            bits = self.expect_bits;
        }
        let expect_bits = self.expect_bits;
        let old = std::mem::replace(self, Self::with_capacity_log2(bits));
        self.expect_bits = expect_bits;
        let mask = self.entries.len() - 1;
        for e in old.entries.into_iter().filter(|e| e.slot != VACANT) {
            let mut i = self.home(e.key);
            while self.entries[i].slot != VACANT {
                i = (i + 1) & mask;
            }
            self.entries[i] = e;
        }
        self.len = old.len;
    }

    /// Every key and its slot, emptying the table.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, u32)> {
        let old = std::mem::take(self);
        self.expect_bits = old.expect_bits;
        old.entries
            .into_iter()
            .filter(|e| e.slot != VACANT)
            .map(|e| (e.key, e.slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The table agrees with a std map on slots (first-seen order), on `len`
    /// and on what `drain` returns, through many growths, for runs of near
    /// keys, repeats, zero and the largest key.
    #[test]
    fn slots_agree_with_a_std_map_through_growth() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut keys: Vec<u64> = Vec::new();
        for i in 0..200_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            keys.push(match i % 4 {
                0 => 1_600_000_000_000_000_000 + i * 1_000,
                1 => rng % 5_000,
                2 => rng,
                _ => [0, u64::MAX, 7][(rng % 3) as usize],
            });
        }
        let mut t = KeyTable::<u64>::default();
        let mut next = 0;
        let mut got = Vec::new();
        t.slots_of(&keys[..1000], &mut next, &mut |s| got.push(s));
        for &k in &keys[1000..] {
            got.push(t.slot_or_insert(k, &mut next));
        }
        let mut m: HashMap<u64, u32> = HashMap::new();
        let want: Vec<u32> = keys
            .iter()
            .map(|&k| {
                let n = m.len() as u32;
                *m.entry(k).or_insert(n)
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(t.len(), m.len());
        assert_eq!(next as usize, m.len());
        let mut drained: Vec<(u64, u32)> = t.drain().collect();
        drained.sort_unstable();
        let mut all: Vec<(u64, u32)> = m.into_iter().collect();
        all.sort_unstable();
        assert_eq!(drained, all);
        assert_eq!(t.len(), 0);
        assert_eq!(t.slot_or_insert(5, &mut next), next - 1);
    }

    /// A table that expects many keys grows straight to their size once past
    /// 2^12 entries, also after a drain, and gives the same slots as one that
    /// doubles; a small one never takes the expected size.
    #[test]
    fn expected_keys_skip_the_doublings_past_the_first_ones() {
        let keys: Vec<u64> = (0..300_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let (mut plain, mut sized) = (KeyTable::<u64>::default(), KeyTable::<u64>::default());
        sized.expect(300_000);
        let (mut n1, mut n2) = (0, 0);
        for &k in keys.iter().chain(&keys[..1000]) {
            assert_eq!(
                plain.slot_or_insert(k, &mut n1),
                sized.slot_or_insert(k, &mut n2)
            );
            if sized.entries.len() > 1 << EXPECT_FROM_BITS {
                assert_eq!(
                    sized.entries.len(),
                    1 << 20,
                    "one jump to 2 x 300,000 rounded up"
                );
            }
        }
        assert_eq!(plain.entries.len(), 1 << 20);
        let _ = sized.drain().count();
        let mut n = 0;
        for k in 0..3_000u64 {
            sized.slot_or_insert(k, &mut n);
        }
        assert_eq!(
            sized.entries.len(),
            1 << 20,
            "a drained table still expects"
        );
        let mut small = KeyTable::<u64>::default();
        small.expect(300_000);
        let mut n = 0;
        for k in 0..2_000u64 {
            small.slot_or_insert(k, &mut n);
        }
        assert_eq!(small.entries.len(), 1 << 12);
    }

    #[test]
    fn address_keys_differing_in_either_half_are_distinct() {
        let v4 = |a: u32| (0xffffu128 << 32) | a as u128;
        let keys = [
            v4(1),
            v4(2),
            1u128 << 100,
            (1u128 << 100) | 1,
            v4(1),
            0,
            u128::MAX,
        ];
        let mut t = KeyTable::<u128>::default();
        let mut next = 0;
        let mut got = Vec::new();
        t.slots_of(&keys, &mut next, &mut |s| got.push(s));
        assert_eq!(got, [0, 1, 2, 3, 0, 4, 5]);
    }
}
