//! Per-column value indexes. Each maps keys (values, or bins of values) to posting
//! lists of rows. Low-cardinality columns are indexed exactly; past a cardinality
//! limit numbers are binned (keeping order, so ranges still work) and strings are
//! hashed (equality only, pointing at granules of rows). A lookup returns rows that
//! surely match and rows that might (to be checked against the data), so
//! exactness is tracked per row.
//!
//! On disk, keys and their postings are cut into checksummed blocks of about
//! 16 KiB behind a small directory of first keys, so a point lookup reads the
//! header, the directory and one block per column whatever the column's size.

use super::key_table::KeyTable;
use super::postings::{self, Malformed, Reader};
use crate::data::{Column, ColumnData, Type, Value};
use crate::query::Op;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

/// Most distinct keys an exact index keeps before it bins (numbers) or hashes (strings).
pub const KEY_LIMIT: usize = 65_536;

/// Rows that surely match and rows that may match an expression.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hits {
    pub sure: RoaringBitmap,
    pub maybe: RoaringBitmap,
}

impl Hits {
    pub fn all(rows: u32) -> Hits {
        let mut sure = RoaringBitmap::new();
        sure.insert_range(0..rows);
        Hits {
            sure,
            maybe: RoaringBitmap::new(),
        }
    }
    pub fn none() -> Hits {
        Hits::default()
    }
    /// Everything is a candidate, nothing is sure: what an unindexed predicate gives.
    pub fn unknown(rows: u32) -> Hits {
        let mut maybe = RoaringBitmap::new();
        maybe.insert_range(0..rows);
        Hits {
            sure: RoaringBitmap::new(),
            maybe,
        }
    }
    pub fn and(self, o: Hits) -> Hits {
        let sure = &self.sure & &o.sure;
        let maybe = &(&(&self.sure | &self.maybe) & &(&o.sure | &o.maybe)) - &sure;
        Hits { sure, maybe }
    }
    pub fn or(self, o: Hits) -> Hits {
        let sure = &self.sure | &o.sure;
        let maybe = &(&self.maybe | &o.maybe) - &sure;
        Hits { sure, maybe }
    }
    pub fn not(self, rows: u32) -> Hits {
        let mut all = RoaringBitmap::new();
        all.insert_range(0..rows);
        let sure = &all - &(&self.sure | &self.maybe);
        Hits {
            sure,
            maybe: self.maybe,
        }
    }
    pub fn is_exact(&self) -> bool {
        self.maybe.is_empty()
    }
    /// Upper bound of matching rows.
    pub fn estimate(&self) -> u64 {
        self.sure.len() + self.maybe.len()
    }
}

/// How a column's values become keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// Order-preserving 64-bit keys: bool, count, int, real, time, duration.
    U64,
    /// Order-preserving 128-bit keys: addresses.
    U128,
    /// Strings, enums and patterns: the text itself, or its hash once hashed.
    Str,
}

impl KeyKind {
    fn code(self) -> u8 {
        match self {
            KeyKind::U64 => 0,
            KeyKind::U128 => 1,
            KeyKind::Str => 2,
        }
    }
    fn from_code(c: u8) -> Option<KeyKind> {
        Some(match c {
            0 => KeyKind::U64,
            1 => KeyKind::U128,
            2 => KeyKind::Str,
            _ => return None,
        })
    }
}

/// A finished column index in its file form (see the layout at `access`).
pub struct ColumnIndex {
    bytes: Vec<u8>,
}

impl ColumnIndex {
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Order-preserving key of a number: maps i64 and f64 onto u64 so that `<` agrees.
fn i64_key(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}
fn f64_key(v: f64) -> u64 {
    // -0.0 == 0.0, so both get the key of 0.0.
    let b = if v == 0.0 { 0 } else { v.to_bits() };
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// The key kind an index of this type uses, or `None` for unindexed types.
pub fn key_kind(ty: &Type) -> Option<KeyKind> {
    match ty.base() {
        Type::Bool | Type::Int | Type::Count | Type::Real | Type::Duration | Type::Time => {
            Some(KeyKind::U64)
        }
        Type::Address => Some(KeyKind::U128),
        Type::String | Type::Enum(_) | Type::Pattern => Some(KeyKind::Str),
        _ => None,
    }
}

/// A literal's key in a column of `ty`, if it has one.
fn value_key(ty: &Type, v: &Value) -> Option<u128> {
    Some(match (ty.base(), v) {
        (Type::Bool, Value::Bool(b)) => *b as u128,
        (Type::Count, Value::Count(c)) => *c as u128,
        (Type::Int, Value::Int(i)) => i64_key(*i) as u128,
        (Type::Duration, Value::Duration(i)) | (Type::Time, Value::Time(i)) => i64_key(*i) as u128,
        (Type::Real, Value::Real(r)) => f64_key(*r) as u128,
        (Type::Address, Value::Address(a)) => u128::from_be_bytes(a.0),
        _ => return None,
    })
}

fn str_hash(s: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s)
}

/// Raw bytes of keys and postings a block grows to before the next one starts. A
/// point lookup reads, checksums and (if compressed) inflates one block per column,
/// so this bounds its cost whatever the column's size.
const BLOCK_BYTES: usize = 16 << 10;
/// Hash bits kept beyond log2(distinct strings): a lookup of a string that is not
/// there meets another string's truncated hash with probability about 2^-8.
const HASH_SPARE_BITS: u32 = 8;
/// Coarse indexes (hashed strings, binned numbers whose row postings would be
/// large) point at granules of 2^13 rows rather than rows. Their answers are only
/// candidates anyway (a hash is not the string; a bin is not the value), the
/// archive reads whole frames of many granules to check them, and a granule
/// number costs a third of a row number.
const GRANULE_BITS: u32 = 13;
/// Most bins a coarse numeric index keeps.
const GRANULAR_KEY_LIMIT: usize = 1024;
/// A block is stored compressed only when zstd saves at least 1/8 of it.
const ZSTD_LEVEL: i32 = 3;

/// Accumulates one column's index while a partition fills.
///
/// Every value added records only its key's slot, in row order; rows are
/// grouped by slot once, by a counting sort, when the partition seals. A list
/// per key (as before) cost a heap block and a cache miss per value of a
/// high-cardinality column (times, addresses), and merging bins moved rows
/// between lists: value-index building was the largest part of an import's
/// profile. Binning or hashing keys now renames slots instead.
pub struct ColumnIndexBuilder {
    kind: KeyKind,
    /// Ports: looked up by equality so often that they stay exact at any size.
    exact_only: bool,
    shift: u32,
    hashed: bool,
    /// Once hashed, each string row's hash and granule. Hashes of strings
    /// this varied are mostly distinct, so a map from hash to slot held an
    /// entry per row, outgrew the cache and grew again and again: the one
    /// such column of a Zeek conn log (`uid`) was a fifth of its index
    /// building. A sort at the seal groups these instead (`sort_hashed`).
    hashed_rows: Vec<(u64, u32)>,
    /// Keys of every kind but addresses (numbers, bins, string hashes) fit 64
    /// bits: a map of those has half the entry size of a `u128` one, and its
    /// probes were the largest part of index building.
    num: KeyTable<u64>,
    addrs: KeyTable<u128>,
    /// Once an address column passes `KEY_LIMIT` distinct addresses, each
    /// row's address and row, grouped by a sort at the seal: addresses stay
    /// exact, and in a column this varied nearly every row missed the table,
    /// whose probes and growth were half of such a column's index building
    /// (a Zeek JSON log's `id.orig_h`: 80 of 150 ms a million rows).
    addr_rows: Vec<(u128, u32)>,
    sorted: bool,
    /// `KEY_LIMIT`; tests raise it to build the table-only reference.
    sort_after: usize,
    /// Strings by their bytes: batches are validated UTF-8, and checking it
    /// again for every value was up to half of a string column's `add`
    /// (`index_cost_by_column`: `conn_state` 21 ms to 11 ms a million rows).
    strs: FxHashMap<Vec<u8>, u32>,
    /// Distinct slots handed out (keys, or bins and hashes of keys).
    slots: u32,
    /// The slot of each value added, or [`NO_SLOT`] for a null or NaN row.
    values: Vec<u32>,
    /// Where each `add` began: (index into `values`, its partition row). A run
    /// holds consecutive rows, so rows need no storage of their own.
    runs: Vec<(u32, u32)>,
    nulls: Vec<u32>,
    /// Rows holding NaN, which compares neither equal nor unequal nor ordered to
    /// anything, so no key can stand for it: such rows are always candidates.
    nan: Vec<u32>,
    rows: u32,
    /// Keys of one `add`, probed together (see `key_table`): kept to reuse the memory.
    keys: Vec<u64>,
    wide: Vec<u128>,
}

/// A row without a key (null or NaN): kept in `nulls` or `nan` instead.
const NO_SLOT: u32 = u32::MAX;
/// A row whose key is known but not yet its slot, within one `add`.
const PENDING: u32 = u32::MAX - 1;

impl ColumnIndexBuilder {
    /// A builder for a column of type `ty`, or `None` if the type is not indexed.
    pub fn new(ty: &Type) -> Option<Self> {
        Some(ColumnIndexBuilder {
            kind: key_kind(ty)?,
            exact_only: ty.has_name("port"),
            shift: 0,
            hashed: false,
            hashed_rows: Vec::new(),
            num: KeyTable::default(),
            addrs: KeyTable::default(),
            addr_rows: Vec::new(),
            sorted: false,
            sort_after: KEY_LIMIT,
            strs: FxHashMap::default(),
            slots: 0,
            values: Vec::new(),
            runs: Vec::new(),
            nulls: Vec::new(),
            nan: Vec::new(),
            rows: 0,
            keys: Vec::new(),
            wide: Vec::new(),
        })
    }

    /// The slot of key `k`, already shifted.
    fn slot_for(&mut self, k: u128) -> u32 {
        if self.kind == KeyKind::U128 {
            self.addrs.slot_or_insert(k, &mut self.slots)
        } else {
            // Below 2^64 for these kinds (see `num`).
            self.num.slot_or_insert(k as u64, &mut self.slots)
        }
    }

    /// The slot of a string while strings are kept whole (not hashed).
    #[inline]
    fn str_slot(&mut self, s: &[u8]) -> u32 {
        match self.strs.get(s) {
            Some(slot) => *slot,
            None => {
                let n = self.slots;
                self.strs.insert(s.to_vec(), n);
                self.slots += 1;
                n
            }
        }
    }

    /// Coarsens keys until at most `KEY_LIMIT` remain: bins for numbers (4 bits at a
    /// time), hashes for strings. Addresses stay exact: point lookups on them are the
    /// most common query and must not need the data.
    fn rebin(&mut self) {
        if self.kind == KeyKind::U128 {
            return;
        }
        if self.kind == KeyKind::Str && !self.hashed {
            self.hashed = true;
            let strs = std::mem::take(&mut self.strs);
            let mut hash_of = vec![0u64; self.slots as usize];
            for (s, slot) in strs {
                hash_of[slot as usize] = str_hash(&s);
            }
            let values = std::mem::take(&mut self.values);
            let runs = std::mem::take(&mut self.runs);
            self.hashed_rows.reserve(values.len());
            for_each_slotted(&values, &runs, |row, slot| {
                self.hashed_rows
                    .push((hash_of[slot as usize], row >> GRANULE_BITS));
            });
            self.slots = 0;
            return;
        }
        if self.hashed {
            return;
        }
        while self.num.len() > KEY_LIMIT {
            self.shift += 4;
            let num: Vec<(u64, u32)> = self.num.drain().collect();
            // A column this varied fills its table to the limit again.
            self.num.expect(KEY_LIMIT + 1);
            let mut rename = vec![NO_SLOT; self.slots as usize];
            self.slots = 0;
            for (k, slot) in num {
                rename[slot as usize] = self.slot_for((k >> 4) as u128);
            }
            self.rename(&rename);
        }
    }

    /// Switches an address column to keeping each row's address (see
    /// `addr_rows`).
    fn sort_addresses(&mut self) {
        self.sorted = true;
        let mut key_of = vec![0u128; self.slots as usize];
        for (k, slot) in self.addrs.drain() {
            key_of[slot as usize] = k;
        }
        self.addrs = KeyTable::default();
        let values = std::mem::take(&mut self.values);
        let runs = std::mem::take(&mut self.runs);
        self.addr_rows.reserve(values.len());
        for_each_slotted(&values, &runs, |row, slot| {
            self.addr_rows.push((key_of[slot as usize], row));
        });
        self.slots = 0;
    }

    /// Gives every value added so far its slot's new name.
    fn rename(&mut self, rename: &[u32]) {
        for v in &mut self.values {
            if *v != NO_SLOT {
                *v = rename[*v as usize];
            }
        }
    }

    /// Expects about `keys` distinct keys (see [`KeyTable::expect`]).
    pub fn expect_keys(&mut self, keys: u32) {
        self.num.expect(keys as usize);
        self.addrs.expect(keys as usize);
    }

    /// The most keys this builder's table held: what the next partition's
    /// builder of the column may expect. A column that binned its keys held
    /// the limit's worth, however few bins it ends with.
    pub fn peak_keys(&self) -> u32 {
        if self.shift > 0 || self.sorted {
            KEY_LIMIT as u32 + 1
        } else {
            self.distinct()
        }
    }

    /// Distinct keys (or bins and hashes) so far: what adding to and finishing
    /// this index costs, roughly.
    pub fn distinct(&self) -> u32 {
        if self.hashed {
            self.hashed_rows.len() as u32
        } else if self.sorted {
            self.addr_rows.len() as u32
        } else {
            self.slots
        }
    }

    /// Adds a column whose first row is partition row `base`.
    pub fn add(&mut self, col: &Column, base: u32) {
        let n = col.len() as u32;
        if self.hashed {
            self.hashed_rows.reserve(n as usize);
            let strings = matches!(col.data, ColumnData::Str { .. });
            for i in 0..n as usize {
                let row = base + i as u32;
                if !col.is_valid(i) {
                    self.nulls.push(row);
                } else if strings {
                    self.hashed_rows
                        .push((str_hash(col.bytes_at(i)), row >> GRANULE_BITS));
                }
            }
            self.rows = self.rows.max(base + n);
            return;
        }
        if self.sorted {
            if let ColumnData::Address(v) = &col.data {
                self.addr_rows.reserve(n as usize);
                for (i, a) in v.iter().enumerate() {
                    let row = base + i as u32;
                    if col.is_valid(i) {
                        self.addr_rows.push((u128::from_be_bytes(*a), row));
                    } else {
                        self.nulls.push(row);
                    }
                }
            }
            self.rows = self.rows.max(base + n);
            return;
        }
        let start = self.values.len();
        self.runs.push((start as u32, base));
        self.values.reserve(n as usize);
        // Rows with a key get `PENDING` here and their slots below, from one
        // probe of the whole column's keys (see `key_table`).
        let shift = self.shift;
        let bin = |k: u64| k.checked_shr(shift).unwrap_or(0);
        let mut keys = std::mem::take(&mut self.keys);
        let mut wide = std::mem::take(&mut self.wide);
        keys.clear();
        wide.clear();
        // One loop per column type, not a type match per row; a column without
        // nulls (most) takes its keys in one pass.
        let all_valid = col.validity.words.is_empty();
        macro_rules! gather {
            ($out:expr, $key:expr) => {{
                let key = $key;
                if all_valid {
                    $out.extend((0..n as usize).map(key));
                    self.values.resize(start + n as usize, PENDING);
                } else {
                    for i in 0..n as usize {
                        if col.is_valid(i) {
                            $out.push(key(i));
                            self.values.push(PENDING);
                        } else {
                            self.nulls.push(base + i as u32);
                            self.values.push(NO_SLOT);
                        }
                    }
                }
            }};
        }
        match &col.data {
            ColumnData::Bool(v) => gather!(keys, |i: usize| bin(v[i] as u64)),
            ColumnData::Count(v) => gather!(keys, |i: usize| bin(v[i])),
            ColumnData::Int(v) | ColumnData::Duration(v) | ColumnData::Time(v) => {
                gather!(keys, |i: usize| bin(i64_key(v[i])))
            }
            // Reals need a NaN check per value only where one is there.
            ColumnData::Real(v) if !v.iter().any(|x| x.is_nan()) => {
                gather!(keys, |i: usize| bin(f64_key(v[i])))
            }
            // Addresses are never binned.
            ColumnData::Address(v) => gather!(wide, |i: usize| u128::from_be_bytes(v[i])),
            data => {
                for i in 0..n as usize {
                    let row = base + i as u32;
                    if !col.is_valid(i) {
                        self.nulls.push(row);
                        self.values.push(NO_SLOT);
                        continue;
                    }
                    let slot = match data {
                        ColumnData::Real(v) if v[i].is_nan() => {
                            self.nan.push(row);
                            NO_SLOT
                        }
                        ColumnData::Real(v) => {
                            keys.push(bin(f64_key(v[i])));
                            PENDING
                        }
                        ColumnData::Str { .. } => self.str_slot(col.bytes_at(i)),
                        _ => NO_SLOT,
                    };
                    self.values.push(slot);
                }
            }
        }
        let mut pending = self.values[start..].iter_mut().filter(|v| **v == PENDING);
        let mut put = |slot: u32| {
            if let Some(v) = pending.next() {
                *v = slot;
            }
        };
        self.num.slots_of(&keys, &mut self.slots, &mut put);
        self.addrs.slots_of(&wide, &mut self.slots, &mut put);
        self.keys = keys;
        self.wide = wide;
        self.rows = self.rows.max(base + n);
        if self.num.len() > KEY_LIMIT || self.strs.len() > KEY_LIMIT {
            self.rebin();
        }
        if self.addrs.len() > self.sort_after {
            self.sort_addresses();
        }
    }

    /// The rows of every slot, slot after slot, and where each slot's begin
    /// (`slots + 1` offsets): a stable counting sort, so each slot's rows are
    /// ascending as they were added.
    fn postings(&mut self) -> (Vec<u32>, Vec<u32>) {
        let mut at = vec![0u32; self.slots as usize + 1];
        for &v in &self.values {
            if v != NO_SLOT {
                at[v as usize + 1] += 1;
            }
        }
        for i in 1..at.len() {
            at[i] += at[i - 1];
        }
        let offsets = at.clone();
        let mut rows = vec![0u32; *offsets.last().unwrap_or(&0) as usize];
        let values = std::mem::take(&mut self.values);
        let runs = std::mem::take(&mut self.runs);
        for_each_slotted(&values, &runs, |row, slot| {
            rows[at[slot as usize] as usize] = row;
            at[slot as usize] += 1;
        });
        (rows, offsets)
    }

    /// Sorts keys and encodes them with their postings into the file form.
    pub fn finish(self) -> ColumnIndex {
        self.finish_stopping(true)
    }

    /// `finish`; `stop_early` false writes every candidate index in full (the
    /// reference the early stop must agree with).
    fn finish_stopping(mut self, stop_early: bool) -> ColumnIndex {
        let (all, offsets) = self.postings();
        // Partitions add their batches in row order, so each slot's rows are
        // ascending and distinct; sorted anyway if a caller ever did not.
        let tidy = |slot: u32| -> std::borrow::Cow<'_, [u32]> {
            let rows = &all[offsets[slot as usize] as usize..offsets[slot as usize + 1] as usize];
            if rows.is_sorted_by(|a, b| a < b) {
                return rows.into();
            }
            let mut rows = rows.to_vec();
            rows.sort_unstable();
            rows.dedup();
            rows.into()
        };
        let mut special = [
            std::mem::take(&mut self.nulls),
            std::mem::take(&mut self.nan),
        ];
        for s in &mut special {
            s.sort_unstable();
            s.dedup();
        }
        let rows = self.rows;
        if self.kind == KeyKind::Str && !self.hashed {
            let mut keys: Vec<(Vec<u8>, u32)> = self.strs.drain().collect();
            keys.sort_unstable();
            let mut w = Writer::new(self.kind, false, 0, 0, rows);
            for (s, slot) in keys {
                w.push(Key::Str(&s), &tidy(slot));
            }
            return w.finish(&special);
        }
        if self.sorted {
            let mut pairs = std::mem::take(&mut self.addr_rows);
            // Stable: each address's rows stay in the order they were added.
            radix_sort(&mut pairs);
            let mut w = Writer::new(self.kind, false, 0, 0, rows);
            let mut rows_of = Vec::new();
            for chunk in pairs.chunk_by(|a, b| a.0 == b.0) {
                rows_of.clear();
                rows_of.extend(chunk.iter().map(|p| p.1));
                if !rows_of.is_sorted_by(|a, b| a < b) {
                    rows_of.sort_unstable();
                    rows_of.dedup();
                }
                w.push(Key::Num(chunk[0].0), &rows_of);
            }
            return w.finish(&special);
        }
        if self.hashed {
            // Truncate hashes to what the number of strings needs and point at
            // granules; colliding hashes merge.
            let pairs = sort_hashed(std::mem::take(&mut self.hashed_rows));
            let distinct = pairs.chunk_by(|a, b| a.0 == b.0).count().max(1) as u64;
            let bits = (64 - distinct.leading_zeros() + HASH_SPARE_BITS).min(64);
            let shift = 64 - bits;
            let key = |k: u64| k.checked_shr(shift).unwrap_or(0);
            let mut w = Writer::new(self.kind, true, shift, GRANULE_BITS, rows);
            let mut granules = Vec::new();
            for chunk in pairs.chunk_by(|a, b| key(a.0) == key(b.0)) {
                granules.clear();
                granules.extend(chunk.iter().map(|p| p.1));
                // Hashes that differ only below the cut interleave their granules.
                granules.sort_unstable();
                granules.dedup();
                w.push(Key::Num(key(chunk[0].0) as u128), &granules);
            }
            return w.finish(&special);
        }
        let mut pairs: Vec<(u128, u32)> = if self.kind == KeyKind::U128 {
            self.addrs.drain().collect()
        } else {
            self.num.drain().map(|(k, s)| (k as u128, s)).collect()
        };
        radix_sort(&mut pairs);
        let keys: Vec<(u128, std::borrow::Cow<'_, [u32]>)> =
            pairs.into_iter().map(|(k, s)| (k, tidy(s))).collect();
        // The exact index, or `None` once its stored blocks pass `limit` bytes.
        let write_exact = |limit: usize| -> Option<ColumnIndex> {
            let mut w = Writer::new(self.kind, false, self.shift, 0, rows);
            for (k, rows) in &keys {
                w.push(Key::Num(*k), rows);
                if w.data.len() > limit {
                    return None;
                }
            }
            Some(w.finish(&special))
        };
        if self.kind != KeyKind::U64 || self.exact_only {
            return write_exact(usize::MAX).expect("no limit");
        }
        // A varied column's exact index is usually dropped for the coarse one
        // below: it is written only until it is sure to lose (encoding and
        // compressing the rest was a tenth of an import's CPU).
        let limit = if stop_early {
            rows as usize
        } else {
            usize::MAX
        };
        let exact = match write_exact(limit) {
            Some(e) if e.len() as u64 <= rows as u64 => return e,
            e => e,
        };
        // Row postings cost more than a byte a row: values this varied are rarely
        // looked up exactly, and a range over them has edge bins to check against
        // the data anyway. Bins of granules answer such queries as candidates for a
        // small fraction of the size.
        let mut extra = 0;
        while extra < 64
            && keys.chunk_by(|a, b| a.0 >> extra == b.0 >> extra).count() > GRANULAR_KEY_LIMIT
        {
            extra += 1;
        }
        let mut w = Writer::new(self.kind, false, self.shift + extra, GRANULE_BITS, rows);
        let mut granules = Vec::new();
        for bin in keys.chunk_by(|a, b| a.0 >> extra == b.0 >> extra) {
            granules.clear();
            for (_, rows) in bin {
                granules.extend(rows.iter().map(|r| r >> GRANULE_BITS));
            }
            granules.sort_unstable();
            granules.dedup();
            w.push(Key::Num(bin[0].0 >> extra), &granules);
        }
        let coarse = w.finish(&special);
        // Stopped early, the exact index is already longer than `rows`.
        let exact = match exact {
            Some(e) => e,
            None if coarse.len() as u64 <= rows as u64 => return coarse,
            None => write_exact(usize::MAX).expect("no limit"),
        };
        if coarse.len() < exact.len() {
            coarse
        } else {
            exact
        }
    }
}

/// Why an index file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("index is corrupt: {0}")]
pub struct IndexCorrupt(pub String);

impl From<Malformed> for IndexCorrupt {
    fn from(m: Malformed) -> Self {
        IndexCorrupt(m.0.to_string())
    }
}

// File layout (all numbers little-endian), built for lookups that touch only what
// they need: the fixed header and the directory are checked on open, each block
// when it is read.
//
//   header   magic "VIX2", kind u8, flags u8 (1: hashed), shift u8, granule bits u8,
//            rows u32, keys u32, blocks u32, directory bytes u32, data bytes u32,
//            4 zero bytes, xxh3 of the header's first 32 bytes and the directory: u64
//   directory  blocks + 2 entries of 32 bytes (entry 0 holds the null rows, entry 1
//            the NaN rows, then one per block):
//            offset u32 and length u32 in the data area, xxh3 of the stored block
//            u64, first key 16 bytes (numbers: u128; strings: offset u32 and
//            length u32 in the string area that follows the entries)
//   data     blocks: codec u8 (0 raw, 1 zstd with the raw length as a varint
//            before the frame), then the raw block: key count, keys (numbers: the
//            first, then gaps less one, as varints; strings: bytes shared with the
//            previous key and the suffix), then each key's posting (`postings`).
const MAGIC: &[u8; 4] = b"VIX2";
const HEADER_BYTES: usize = 40;
const ENTRY_BYTES: usize = 32;
/// Directory entries before the blocks': null rows, NaN rows.
const SPECIAL: usize = 2;
const FLAG_HASHED: u8 = 1;
const RAW: u8 = 0;
const ZSTD: u8 = 1;

enum Key<'a> {
    Num(u128),
    Str(&'a [u8]),
}

/// Calls `f(row, slot)` for every value added with a slot, in the order added:
/// `values` holds the slots, `runs` where each `add` began and its first row.
#[inline]
fn for_each_slotted(values: &[u32], runs: &[(u32, u32)], mut f: impl FnMut(u32, u32)) {
    for (r, &(first, row)) in runs.iter().enumerate() {
        let last = runs.get(r + 1).map_or(values.len(), |n| n.0 as usize);
        for (j, &v) in values[first as usize..last].iter().enumerate() {
            if v != NO_SLOT {
                f(row + j as u32, v);
            }
        }
    }
}

/// `pairs` sorted by key, stably: a byte at a time from the lowest, skipping
/// the bytes that no two keys differ in (numbers use few of a u128's sixteen,
/// v4-mapped addresses four). The comparison sort it replaces was 3% of a Zeek
/// JSON import's samples.
fn radix_sort(pairs: &mut Vec<(u128, u32)>) {
    if pairs.len() < 1 << 8 {
        pairs.sort_unstable_by_key(|p| p.0);
        return;
    }
    let (mut or, mut and) = (0u128, !0u128);
    for p in pairs.iter() {
        or |= p.0;
        and &= p.0;
    }
    let varies = or ^ and;
    let mut out = vec![(0u128, 0u32); pairs.len()];
    for byte in 0..16 {
        let shift = 8 * byte;
        if (varies >> shift) as u8 == 0 {
            continue;
        }
        let digit = |p: &(u128, u32)| ((p.0 >> shift) as u8) as usize;
        let mut at = [0usize; 256];
        for p in pairs.iter() {
            at[digit(p)] += 1;
        }
        let mut sum = 0;
        for a in &mut at {
            (*a, sum) = (sum, sum + *a);
        }
        for p in pairs.iter() {
            let d = digit(p);
            out[at[d]] = *p;
            at[d] += 1;
        }
        std::mem::swap(pairs, &mut out);
    }
}

/// `pairs` sorted: a counting sort on the top bits of the hashes (spread
/// evenly, being hashes), then each small bucket sorted. A comparison sort of
/// a million pairs cost several times this.
fn sort_hashed(pairs: Vec<(u64, u32)>) -> Vec<(u64, u32)> {
    let n = pairs.len();
    if n < 1 << 12 {
        let mut pairs = pairs;
        pairs.sort_unstable();
        return pairs;
    }
    // About eight pairs a bucket.
    let bits = (usize::BITS - n.leading_zeros() - 3).min(20);
    let shift = 64 - bits;
    let mut at = vec![0u32; (1 << bits) + 1];
    for &(h, _) in &pairs {
        at[(h >> shift) as usize + 1] += 1;
    }
    for i in 1..at.len() {
        at[i] += at[i - 1];
    }
    let bounds = at.clone();
    let mut out = vec![(0u64, 0u32); n];
    for &p in &pairs {
        let b = (p.0 >> shift) as usize;
        out[at[b] as usize] = p;
        at[b] += 1;
    }
    for b in bounds.windows(2) {
        out[b[0] as usize..b[1] as usize].sort_unstable();
    }
    out
}

/// zstd of one index block, with a compressor kept per thread: a fresh one per
/// block (`zstd::bulk::compress`) allocated and cleared its tables every time:
/// 1.5% of a Zeek import's CPU (`ZSTD_createCCtx`, memset, page clearing).
fn compress_block(raw: &[u8]) -> Option<Vec<u8>> {
    thread_local! {
        static CCTX: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    CCTX.with_borrow_mut(|c| {
        if c.is_none() {
            *c = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
        }
        c.as_mut()?.compress(raw).ok()
    })
}

struct Writer {
    kind: KeyKind,
    hashed: bool,
    shift: u32,
    granule: u32,
    rows: u32,
    keys: u32,
    entries: Vec<u8>,
    strings: Vec<u8>,
    data: Vec<u8>,
    /// The block being filled: its keys, its postings, its first key.
    block_keys: Vec<u8>,
    block_postings: Vec<u8>,
    block_len: u64,
    first: [u8; 16],
    prev_num: u128,
    prev_str: Vec<u8>,
}

impl Writer {
    fn new(kind: KeyKind, hashed: bool, shift: u32, granule: u32, rows: u32) -> Self {
        Writer {
            kind,
            hashed,
            shift,
            granule,
            rows,
            keys: 0,
            entries: Vec::new(),
            strings: Vec::new(),
            data: Vec::new(),
            block_keys: Vec::new(),
            block_postings: Vec::new(),
            block_len: 0,
            first: [0; 16],
            prev_num: 0,
            prev_str: Vec::new(),
        }
    }

    /// Stores one block and its directory entry.
    fn store(&mut self, raw: &[u8], first: [u8; 16]) {
        let offset = self.data.len();
        let packed = if raw.len() >= 64 {
            compress_block(raw).filter(|z| z.len() + 8 < raw.len() - raw.len() / 8)
        } else {
            None
        };
        match packed {
            Some(z) => {
                self.data.push(ZSTD);
                postings::put_varint(&mut self.data, raw.len() as u64);
                self.data.extend_from_slice(&z);
            }
            None => {
                self.data.push(RAW);
                self.data.extend_from_slice(raw);
            }
        }
        let stored = &self.data[offset..];
        self.entries
            .extend_from_slice(&(offset as u32).to_le_bytes());
        self.entries
            .extend_from_slice(&(stored.len() as u32).to_le_bytes());
        self.entries
            .extend_from_slice(&crate::durable::checksum(stored).to_le_bytes());
        self.entries.extend_from_slice(&first);
    }

    fn push(&mut self, key: Key<'_>, rows: &[u32]) {
        debug_assert!(!rows.is_empty());
        let first = self.block_len == 0;
        if first {
            self.first = match key {
                Key::Num(k) => k.to_le_bytes(),
                Key::Str(s) => {
                    let mut f = [0u8; 16];
                    f[..4].copy_from_slice(&(self.strings.len() as u32).to_le_bytes());
                    f[4..8].copy_from_slice(&(s.len() as u32).to_le_bytes());
                    self.strings.extend_from_slice(s);
                    f
                }
            };
        }
        match key {
            Key::Num(k) => {
                let v = if first { k } else { k - self.prev_num - 1 };
                postings::put_varint128(&mut self.block_keys, v);
                self.prev_num = k;
            }
            Key::Str(s) => {
                let shared = if first {
                    0
                } else {
                    s.iter()
                        .zip(&self.prev_str)
                        .take_while(|(a, b)| a == b)
                        .count()
                };
                postings::put_varint(&mut self.block_keys, shared as u64);
                postings::put_varint(&mut self.block_keys, (s.len() - shared) as u64);
                self.block_keys.extend_from_slice(&s[shared..]);
                self.prev_str.clear();
                self.prev_str.extend_from_slice(s);
            }
        }
        let universe = ((self.rows as u64 + (1u64 << self.granule) - 1) >> self.granule) as u32;
        postings::encode(&mut self.block_postings, rows, universe);
        self.block_len += 1;
        self.keys += 1;
        if self.block_keys.len() + self.block_postings.len() >= BLOCK_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.block_len == 0 {
            return;
        }
        let mut raw = Vec::with_capacity(self.block_keys.len() + self.block_postings.len() + 5);
        postings::put_varint(&mut raw, self.block_len);
        raw.extend_from_slice(&self.block_keys);
        raw.extend_from_slice(&self.block_postings);
        let first = self.first;
        self.store(&raw, first);
        self.block_keys.clear();
        self.block_postings.clear();
        self.block_len = 0;
    }

    /// `special` are the null rows and the NaN rows.
    fn finish(mut self, special: &[Vec<u32>; SPECIAL]) -> ColumnIndex {
        // The special entries lead the directory; written last, moved first.
        self.flush();
        let blocks = self.entries.len() / ENTRY_BYTES;
        let key_entries = std::mem::take(&mut self.entries);
        for rows in special {
            let mut raw = Vec::new();
            if !rows.is_empty() {
                postings::encode(&mut raw, rows, self.rows);
            }
            self.store(&raw, [0; 16]);
        }
        let mut dir = std::mem::take(&mut self.entries);
        dir.extend_from_slice(&key_entries);
        dir.extend_from_slice(&self.strings);
        let mut out = Vec::with_capacity(HEADER_BYTES + dir.len() + self.data.len());
        out.extend_from_slice(MAGIC);
        out.push(self.kind.code());
        out.push(if self.hashed { FLAG_HASHED } else { 0 });
        out.push(self.shift as u8);
        out.push(self.granule as u8);
        out.extend_from_slice(&self.rows.to_le_bytes());
        out.extend_from_slice(&self.keys.to_le_bytes());
        out.extend_from_slice(&(blocks as u32).to_le_bytes());
        out.extend_from_slice(&(dir.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&out[..32]);
        h.update(&dir);
        out.extend_from_slice(&h.digest().to_le_bytes());
        out.extend_from_slice(&dir);
        out.extend_from_slice(&self.data);
        ColumnIndex { bytes: out }
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A checked view of a column index file. Opening it checks the header and the
/// directory; each block is checked when a lookup reads it.
pub struct ColumnIndexView<'a> {
    /// Rows of the partition, in the stored (little-endian) form callers compare.
    pub rows: rkyv::Archived<u32>,
    kind: KeyKind,
    hashed: bool,
    shift: u32,
    granule: u32,
    keys: u32,
    blocks: usize,
    /// Directory entries: null rows, NaN rows, then the blocks.
    entries: &'a [u8],
    strings: &'a [u8],
    data: &'a [u8],
}

/// One decoded block: its keys and where its postings start in `raw`.
struct Block<'a> {
    raw: std::borrow::Cow<'a, [u8]>,
    nums: Vec<u128>,
    strs: Vec<(usize, usize)>,
    str_bytes: Vec<u8>,
    postings_at: usize,
}

impl Block<'_> {
    fn len(&self) -> usize {
        self.nums.len().max(self.strs.len())
    }
    fn str_key(&self, i: usize) -> &[u8] {
        let (a, b) = self.strs[i];
        &self.str_bytes[a..b]
    }
}

impl<'a> ColumnIndexView<'a> {
    /// Distinct keys (or bins, or hashes) in the index.
    pub fn keys(&self) -> u32 {
        self.keys
    }

    fn nrows(&self) -> u32 {
        self.rows.to_native()
    }

    /// Values a posting may hold: rows, or granules of rows.
    fn universe(&self) -> u32 {
        ((self.nrows() as u64 + (1u64 << self.granule) - 1) >> self.granule) as u32
    }

    fn entry(&self, j: usize) -> (usize, usize, u64, &'a [u8]) {
        let e = &self.entries[j * ENTRY_BYTES..(j + 1) * ENTRY_BYTES];
        (
            le32(e, 0) as usize,
            le32(e, 4) as usize,
            le64(e, 8),
            &e[16..32],
        )
    }

    /// First key of block `b`.
    fn entry_num(&self, b: usize) -> u128 {
        u128::from_le_bytes(self.entry(b + SPECIAL).3.try_into().expect("16 bytes"))
    }

    /// First string key of block `b` (checked in `access`).
    fn entry_str(&self, b: usize) -> &'a [u8] {
        let k = self.entry(b + SPECIAL).3;
        let (a, n) = (le32(k, 0) as usize, le32(k, 4) as usize);
        &self.strings[a..a + n]
    }

    /// The verified, inflated bytes of directory entry `j`.
    fn stored(&self, j: usize) -> Result<std::borrow::Cow<'a, [u8]>, IndexCorrupt> {
        let (off, len, sum, _) = self.entry(j);
        let stored = off
            .checked_add(len)
            .and_then(|end| self.data.get(off..end))
            .ok_or_else(|| IndexCorrupt(format!("block {j} lies past the end of the file")))?;
        let computed = crate::durable::checksum(stored);
        if computed != sum {
            return Err(IndexCorrupt(format!(
                "block {j} checksum mismatch (stored {sum:016x}, computed {computed:016x})"
            )));
        }
        let mut r = Reader::new(stored);
        let bad = |m: Malformed| IndexCorrupt(format!("block {j}: {}", m.0));
        match r.byte().map_err(bad)? {
            RAW => Ok(std::borrow::Cow::Borrowed(&stored[1..])),
            ZSTD => {
                let raw_len = r.varint().map_err(bad)?;
                // A block never holds more than a few bytes per row; a larger
                // claim is corruption, not something to allocate for.
                let cap = 16 * self.nrows() as u64 + (1 << 20);
                if raw_len > cap {
                    return Err(IndexCorrupt(format!(
                        "block {j} claims {raw_len} bytes, more than its rows allow"
                    )));
                }
                let out = zstd::bulk::decompress(r.rest(), raw_len as usize)
                    .map_err(|e| IndexCorrupt(format!("block {j} does not inflate: {e}")))?;
                if out.len() as u64 != raw_len {
                    return Err(IndexCorrupt(format!(
                        "block {j} inflates to {} bytes, not {raw_len}",
                        out.len()
                    )));
                }
                Ok(std::borrow::Cow::Owned(out))
            }
            c => Err(IndexCorrupt(format!("block {j} has unknown codec {c}"))),
        }
    }

    /// Key block `b` (0-based, not counting the null entry), decoded up to its postings.
    fn block(&self, b: usize) -> Result<Block<'a>, IndexCorrupt> {
        let j = b + SPECIAL;
        let raw = self.stored(j)?;
        let bad = |m: Malformed| IndexCorrupt(format!("block {j}: {}", m.0));
        let mut r = Reader::new(&raw);
        let n = r.varint().map_err(bad)?;
        // Every key has a posting of at least two bytes.
        if n == 0 || n > raw.len() as u64 / 2 {
            return Err(IndexCorrupt(format!("block {j}: key count out of range")));
        }
        let mut nums = Vec::new();
        let mut strs = Vec::new();
        let mut str_bytes: Vec<u8> = Vec::new();
        let max = match self.kind {
            KeyKind::U128 => u128::MAX >> self.shift,
            _ => (u64::MAX >> self.shift) as u128,
        };
        if self.kind == KeyKind::Str && !self.hashed {
            let mut prev = (0, 0);
            for i in 0..n {
                let shared = r.varint().map_err(bad)? as usize;
                let suffix = r.varint().map_err(bad)? as usize;
                if i == 0 && shared != 0 || shared > prev.1 - prev.0 {
                    return Err(IndexCorrupt(format!("block {j}: bad key prefix")));
                }
                let start = str_bytes.len();
                str_bytes.extend_from_within(prev.0..prev.0 + shared);
                str_bytes.extend_from_slice(r.take(suffix).map_err(bad)?);
                let key = (start, str_bytes.len());
                if i > 0 && str_bytes[key.0..key.1] <= str_bytes[prev.0..prev.1] {
                    return Err(IndexCorrupt(format!("block {j}: keys out of order")));
                }
                strs.push(key);
                prev = key;
            }
            if str_bytes[strs[0].0..strs[0].1] != *self.entry_str(b) {
                return Err(IndexCorrupt(format!(
                    "block {j}: first key disagrees with the directory"
                )));
            }
        } else {
            let mut prev = 0u128;
            for i in 0..n {
                let v = r.varint128().map_err(bad)?;
                let k = if i == 0 {
                    v
                } else {
                    prev.checked_add(v)
                        .and_then(|k| k.checked_add(1))
                        .ok_or_else(|| IndexCorrupt(format!("block {j}: key overflows")))?
                };
                if k > max {
                    return Err(IndexCorrupt(format!("block {j}: key out of range")));
                }
                nums.push(k);
                prev = k;
            }
            if nums[0] != self.entry_num(b) {
                return Err(IndexCorrupt(format!(
                    "block {j}: first key disagrees with the directory"
                )));
            }
        }
        let postings_at = raw.len() - r.rest().len();
        Ok(Block {
            raw,
            nums,
            strs,
            str_bytes,
            postings_at,
        })
    }

    /// Rows of each posting of `block` for which `want(i)` holds, passed to `f`.
    /// Postings after the first `end` are not read.
    fn postings(
        &self,
        b: usize,
        block: &Block<'_>,
        end: usize,
        mut want: impl FnMut(usize) -> bool,
        mut f: impl FnMut(usize, RoaringBitmap),
    ) -> Result<(), IndexCorrupt> {
        let bad = |m: Malformed| IndexCorrupt(format!("block {}: {}", b + SPECIAL, m.0));
        let mut r = Reader::new(&block.raw[block.postings_at..]);
        let universe = self.universe();
        for i in 0..end.min(block.len()) {
            if want(i) {
                let bm = postings::decode(&mut r, universe).map_err(bad)?;
                f(i, self.expand(bm));
            } else {
                postings::skip(&mut r, universe).map_err(bad)?;
            }
        }
        Ok(())
    }

    /// Granules as the rows they cover.
    fn expand(&self, bm: RoaringBitmap) -> RoaringBitmap {
        if self.granule == 0 {
            return bm;
        }
        let mut rows = RoaringBitmap::new();
        let n = self.nrows();
        for g in bm {
            let lo = g << self.granule;
            let hi = ((g as u64 + 1) << self.granule).min(n as u64) as u32;
            rows.insert_range(lo..hi);
        }
        rows
    }

    /// Rows of special entry `j`: 0 null, 1 NaN.
    fn special(&self, j: usize) -> Result<RoaringBitmap, IndexCorrupt> {
        let raw = self.stored(j)?;
        if raw.is_empty() {
            return Ok(RoaringBitmap::new());
        }
        let mut r = Reader::new(&raw);
        let rows = postings::decode(&mut r, self.nrows())
            .map_err(|m| IndexCorrupt(format!("block {j}: {}", m.0)))?;
        if !r.is_empty() {
            return Err(IndexCorrupt(format!("block {j}: bytes after the rows")));
        }
        Ok(rows)
    }

    fn nulls(&self) -> Result<RoaringBitmap, IndexCorrupt> {
        self.special(0)
    }

    /// The block that would hold numeric key `k`: the last whose first key is <= k.
    fn block_for_num(&self, k: u128) -> usize {
        self.last_block_where(|b| self.entry_num(b) <= k)
    }

    fn block_for_str(&self, s: &[u8]) -> usize {
        self.last_block_where(|b| self.entry_str(b) <= s)
    }

    /// The last block for which `starts_at_or_before` holds (blocks are sorted by
    /// their first key), or 0.
    fn last_block_where(&self, starts_at_or_before: impl Fn(usize) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.blocks);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if starts_at_or_before(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.saturating_sub(1)
    }

    /// Rows whose key lies in `[lo, hi]` (inclusive, unbinned keys).
    fn range(&self, lo: u128, hi: u128) -> Result<Hits, IndexCorrupt> {
        let mut hits = Hits::none();
        if lo > hi || self.blocks == 0 {
            return Ok(hits);
        }
        let s = self.shift;
        let (blo, bhi) = (lo >> s, hi >> s);
        let inexact = self.hashed || self.granule > 0;
        for b in self.block_for_num(blo)..self.blocks {
            if self.entry_num(b) > bhi {
                break;
            }
            let block = self.block(b)?;
            let end = block.nums.partition_point(|&k| k <= bhi);
            self.postings(
                b,
                &block,
                end,
                |i| (blo..=bhi).contains(&block.nums[i]),
                |i, bm| {
                    // Bins wholly inside the range are sure; the edge bins only maybe.
                    let bin_lo = block.nums[i] << s;
                    let bin_hi = bin_lo | ((1u128 << s) - 1);
                    if !inexact && bin_lo >= lo && bin_hi <= hi {
                        hits.sure |= bm;
                    } else {
                        hits.maybe |= bm;
                    }
                },
            )?;
        }
        // Postings of different keys never share a row, so nothing is both.
        Ok(hits)
    }

    fn str_lookup(&self, s: &str) -> Result<Hits, IndexCorrupt> {
        if self.hashed {
            let k = str_hash(s.as_bytes()) as u128;
            let mut h = self.range(k, k)?;
            // Hash equality is only a hint.
            h.maybe |= std::mem::take(&mut h.sure);
            return Ok(h);
        }
        if self.blocks == 0 {
            return Ok(Hits::none());
        }
        let b = self.block_for_str(s.as_bytes());
        let block = self.block(b)?;
        let Some(i) = (0..block.len()).find(|&i| block.str_key(i) == s.as_bytes()) else {
            return Ok(Hits::none());
        };
        let mut sure = RoaringBitmap::new();
        self.postings(b, &block, i + 1, |x| x == i, |_, bm| sure = bm)?;
        Ok(Hits {
            sure,
            maybe: RoaringBitmap::new(),
        })
    }

    /// Rows whose string key matches `re`; every block is read.
    fn regex_rows(&self, re: &regex::Regex) -> Result<RoaringBitmap, IndexCorrupt> {
        let mut sure = RoaringBitmap::new();
        for b in 0..self.blocks {
            let block = self.block(b)?;
            let matching: Vec<bool> = (0..block.len())
                .map(|i| std::str::from_utf8(block.str_key(i)).is_ok_and(|k| re.is_match(k)))
                .collect();
            self.postings(b, &block, usize::MAX, |i| matching[i], |_, bm| sure |= bm)?;
        }
        Ok(sure)
    }

    /// Rows of this column matching `op value`. `regex` is the compiled pattern for
    /// `~`/`!~`. Predicates the index cannot decide return every row as `maybe`.
    pub fn lookup(
        &self,
        ty: &Type,
        op: Op,
        value: &Value,
        regex: Option<&regex::Regex>,
    ) -> Result<Hits, IndexCorrupt> {
        let mut h = self.lookup_keys(ty, op, value, regex)?;
        // NaN rows have no key: whatever the keys said of them, only the data knows.
        let nan = self.special(1)?;
        if !nan.is_empty() {
            h.sure -= &nan;
            h.maybe |= nan;
        }
        Ok(h)
    }

    fn lookup_keys(
        &self,
        ty: &Type,
        op: Op,
        value: &Value,
        regex: Option<&regex::Regex>,
    ) -> Result<Hits, IndexCorrupt> {
        let rows = self.nrows();
        let eq = |v: &Value| -> Result<Option<Hits>, IndexCorrupt> {
            if v.is_null() {
                return Ok(Some(Hits {
                    sure: self.nulls()?,
                    maybe: RoaringBitmap::new(),
                }));
            }
            match (&self.kind, v) {
                (KeyKind::Str, Value::String(s) | Value::Enum(s) | Value::Pattern(s)) => {
                    Ok(Some(self.str_lookup(s)?))
                }
                (KeyKind::Str, _) => Ok(Some(Hits::none())),
                _ => match value_key(ty, v) {
                    Some(k) => Ok(Some(self.range(k, k)?)),
                    None => Ok(None),
                },
            }
        };
        let ordered = !matches!(self.kind, KeyKind::Str);
        Ok(match op {
            Op::Eq => eq(value)?.unwrap_or_else(|| Hits::unknown(rows)),
            Op::Ne => match eq(value)? {
                Some(h) => h.not(rows),
                None => Hits::unknown(rows),
            },
            Op::Lt | Op::Le | Op::Gt | Op::Ge if ordered => match value_key(ty, value) {
                Some(k) => {
                    let max = match self.kind {
                        KeyKind::U128 => u128::MAX,
                        _ => u64::MAX as u128,
                    };
                    let (lo, hi) = match op {
                        Op::Lt if k == 0 => return Ok(Hits::none()),
                        Op::Lt => (0, k - 1),
                        Op::Le => (0, k),
                        Op::Gt if k == max => return Ok(Hits::none()),
                        Op::Gt => (k + 1, max),
                        _ => (k, max),
                    };
                    self.range(lo, hi)?
                }
                None => Hits::unknown(rows),
            },
            Op::In | Op::NotIn => {
                let h = match (ty.base(), value) {
                    (Type::Address, Value::Subnet(net)) => {
                        let lo = u128::from_be_bytes(net.addr.0);
                        let span = if net.len >= 128 {
                            0
                        } else {
                            u128::MAX >> net.len
                        };
                        Some(self.range(lo, lo | span)?)
                    }
                    (_, Value::List(xs)) => {
                        let mut acc = Some(Hits::none());
                        for x in xs {
                            match (acc.take(), eq(x)?) {
                                (Some(a), Some(h)) if !x.is_null() => acc = Some(a.or(h)),
                                _ => {
                                    acc = None;
                                    break;
                                }
                            }
                        }
                        acc
                    }
                    _ => None,
                };
                match (h, op) {
                    (Some(h), Op::In) => h,
                    (Some(h), _) => h.not(rows),
                    (None, _) => Hits::unknown(rows),
                }
            }
            Op::Match | Op::NotMatch if !self.hashed && matches!(self.kind, KeyKind::Str) => {
                match regex {
                    Some(re) => {
                        let h = Hits {
                            sure: self.regex_rows(re)?,
                            maybe: RoaringBitmap::new(),
                        };
                        // Like the evaluator, null cells satisfy `!~`.
                        if op == Op::Match {
                            h
                        } else {
                            h.not(rows)
                        }
                    }
                    None => Hits::unknown(rows),
                }
            }
            _ => Hits::unknown(rows),
        })
    }
}

/// A view of a column index file's payload, after checking its header and
/// directory (cost: the directory's size, a small fraction of the file's).
pub fn access(bytes: &[u8]) -> Result<ColumnIndexView<'_>, IndexCorrupt> {
    let bad = |why: &str| IndexCorrupt(why.to_string());
    if bytes.len() < HEADER_BYTES || &bytes[..4] != MAGIC {
        return Err(bad("not a column index (bad magic or truncated header)"));
    }
    let kind = KeyKind::from_code(bytes[4]).ok_or_else(|| bad("unknown key kind"))?;
    let flags = bytes[5];
    if flags & !FLAG_HASHED != 0 {
        return Err(bad("unknown flags"));
    }
    let hashed = flags & FLAG_HASHED != 0;
    let (shift, granule) = (bytes[6] as u32, bytes[7] as u32);
    let rows = le32(bytes, 8);
    let keys = le32(bytes, 12);
    let blocks = le32(bytes, 16) as usize;
    let dir_len = le32(bytes, 20) as usize;
    let data_len = le32(bytes, 24) as usize;
    let sum = le64(bytes, 32);
    let key_bits = if kind == KeyKind::U128 { 128 } else { 64 };
    if shift >= key_bits || granule > 31 || (hashed && kind != KeyKind::Str) {
        return Err(bad("key shift or granule out of range"));
    }
    if HEADER_BYTES + dir_len + data_len != bytes.len() {
        return Err(bad("section lengths disagree with the file's"));
    }
    let dir = &bytes[HEADER_BYTES..HEADER_BYTES + dir_len];
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&bytes[..32]);
    h.update(dir);
    if h.digest() != sum {
        return Err(bad("header or directory checksum mismatch"));
    }
    let entries_len = (blocks + SPECIAL)
        .checked_mul(ENTRY_BYTES)
        .filter(|&n| n <= dir_len)
        .ok_or_else(|| bad("directory shorter than its entries"))?;
    let view = ColumnIndexView {
        rows: rkyv::rend::u32_le::from_native(rows),
        kind,
        hashed,
        shift,
        granule,
        keys,
        blocks,
        entries: &dir[..entries_len],
        strings: &dir[entries_len..],
        data: &bytes[HEADER_BYTES + dir_len..],
    };
    if (keys as usize) < blocks {
        return Err(bad("fewer keys than blocks"));
    }
    // Binary searches need first keys in order; strings must lie in the string area.
    for b in 0..blocks {
        if kind == KeyKind::Str && !hashed {
            let k = view.entry(b + SPECIAL).3;
            let (a, n) = (le32(k, 0) as usize, le32(k, 4) as usize);
            if a.checked_add(n).is_none_or(|end| end > view.strings.len()) {
                return Err(bad("directory key outside the string area"));
            }
            if b > 0 && view.entry_str(b) <= view.entry_str(b - 1) {
                return Err(bad("directory keys out of order"));
            }
        } else if b > 0 && view.entry_num(b) <= view.entry_num(b - 1) {
            return Err(bad("directory keys out of order"));
        }
    }
    Ok(view)
}

pub fn to_bytes(idx: &ColumnIndex) -> Vec<u8> {
    idx.bytes.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Address, Batch, BatchBuilder, Field, Schema};
    use crate::query::{filter, parse, resolve, Resolved};

    /// The radix sort of keys sorts as a comparison sort does, below and above
    /// its cutoff, for numbers, v4-mapped addresses and keys that differ only
    /// in their high half or low bytes.
    #[test]
    fn radix_sort_sorts_like_a_comparison_sort() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let v4 = |a: u64| (0xffffu128 << 32) | (a & 0xffff_ffff) as u128;
        for n in [0usize, 1, 255, 256, 5_000, 70_000] {
            let kinds: [&dyn Fn(u64) -> u128; 5] = [
                &|r| r as u128,
                &|r| (r % 1_000) as u128 * 1_000_000,
                &|r| v4(r),
                &|r| ((r as u128) << 64) | (r.rotate_left(17) as u128),
                &|r| u128::MAX - (r % 300) as u128,
            ];
            for kind in kinds {
                let mut seen = std::collections::HashSet::new();
                let mut pairs: Vec<(u128, u32)> = (0..n as u32)
                    .map(|i| (kind(next()), i))
                    .filter(|p| seen.insert(p.0))
                    .collect();
                let mut want = pairs.clone();
                want.sort_unstable_by_key(|p| p.0);
                radix_sort(&mut pairs);
                assert_eq!(pairs, want, "n {n}");
            }
        }
    }

    /// The bucket sort of hashed rows sorts as a comparison sort does, for
    /// sizes below and above its cutoff, with repeated hashes and hashes that
    /// share their top bits.
    #[test]
    fn hashed_rows_sort_like_a_comparison_sort() {
        let mut x = 3u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [0usize, 1, 100, 4095, 4096, 50_000, 300_000] {
            let pairs: Vec<(u64, u32)> = (0..n)
                .map(|i| match i % 5 {
                    0 => (42, (next() % 50) as u32),
                    1 => (next() >> 40, i as u32),
                    _ => (next(), (next() % 128) as u32),
                })
                .collect();
            let mut want = pairs.clone();
            want.sort_unstable();
            assert_eq!(sort_hashed(pairs), want, "{n} pairs");
        }
    }

    /// Where a partition's index building goes, column by column: `add` and
    /// `finish` times of each indexed column of the first million rows of a
    /// Zeek log. A profiling aid, not a check; run with
    /// `VAST_INDEX_PROBE=LOG [VAST_INDEX_FORMAT=zeek-json] cargo test --release -p vast-node --lib index_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn index_cost_by_column() {
        use crate::source::format::{make_reader, open_input, Format, ReaderOptions};
        let path = std::env::var_os("VAST_INDEX_PROBE")
            .expect("set VAST_INDEX_PROBE to the path of a log (VAST_INDEX_FORMAT, default zeek)");
        let format: Format = std::env::var("VAST_INDEX_FORMAT")
            .unwrap_or_else(|_| "zeek".into())
            .parse()
            .unwrap();
        let input = open_input(Some(std::path::Path::new(&path))).unwrap();
        let mut r = make_reader(format, input, &ReaderOptions::default()).unwrap();
        let mut batches = Vec::new();
        let mut rows = 0;
        while rows < 1 << 20 {
            let Some(bs) = r.read(4096).unwrap() else {
                break;
            };
            rows += bs.iter().map(|b| b.rows as usize).sum::<usize>();
            batches.extend(bs);
        }
        let schema = &batches[0].schema;
        let mut total = std::time::Duration::ZERO;
        for (i, f) in schema.fields.iter().enumerate() {
            if ColumnIndexBuilder::new(&f.ty).is_none() {
                continue;
            }
            // The fastest of five: the machine is noisy.
            let (mut added, mut all, mut distinct, mut len) =
                (std::time::Duration::MAX, std::time::Duration::MAX, 0, 0);
            for _ in 0..5 {
                let mut b = ColumnIndexBuilder::new(&f.ty).unwrap();
                let t = std::time::Instant::now();
                let mut base = 0;
                for batch in batches.iter().filter(|b| &b.schema == schema) {
                    b.add(&batch.columns[i], base);
                    base += batch.rows;
                }
                let a = t.elapsed();
                distinct = b.distinct();
                len = b.finish().len();
                if t.elapsed() < all {
                    (added, all) = (a, t.elapsed());
                }
            }
            total += all;
            eprintln!(
                "{:<16} add {:>7.1} ms  finish {:>7.1} ms  slots {distinct:>8}  {:>9} bytes",
                f.name,
                added.as_secs_f64() * 1e3,
                (all - added).as_secs_f64() * 1e3,
                len
            );
        }
        eprintln!("total {:.1} ms", total.as_secs_f64() * 1e3);
    }

    /// Sure rows must match and matching rows must be sure or maybe: checked against
    /// the evaluator on the data for many predicates, on exact and binned columns.
    fn check(batch: &Batch, queries: &[&str]) {
        let mut builders: Vec<Option<ColumnIndexBuilder>> = batch
            .schema
            .fields
            .iter()
            .map(|f| ColumnIndexBuilder::new(&f.ty))
            .collect();
        // Two halves, as two batches of one partition.
        let half = batch.rows / 2;
        let first = batch.select(&(0..half).collect::<Vec<_>>());
        let second = batch.select(&(half..batch.rows).collect::<Vec<_>>());
        for (b, off) in [(&first, 0), (&second, half)] {
            for (i, c) in b.columns.iter().enumerate() {
                if let Some(ib) = &mut builders[i] {
                    ib.add(c, off);
                }
            }
        }
        let files: Vec<Option<Vec<u8>>> = builders
            .into_iter()
            .map(|b| b.map(|b| to_bytes(&b.finish())))
            .collect();
        let aligned: Vec<Option<rkyv::util::AlignedVec<16>>> = files
            .iter()
            .map(|f| {
                f.as_ref().map(|f| {
                    let mut a = rkyv::util::AlignedVec::<16>::new();
                    a.extend_from_slice(f);
                    a
                })
            })
            .collect();
        fn hits(r: &Resolved, b: &Batch, idx: &[Option<rkyv::util::AlignedVec<16>>]) -> Hits {
            match r {
                Resolved::True => Hits::all(b.rows),
                Resolved::False => Hits::none(),
                Resolved::And(xs) => xs
                    .iter()
                    .fold(Hits::all(b.rows), |a, x| a.and(hits(x, b, idx))),
                Resolved::Or(xs) => xs.iter().fold(Hits::none(), |a, x| a.or(hits(x, b, idx))),
                Resolved::Not(x) => hits(x, b, idx).not(b.rows),
                Resolved::Cmp(c) => match &idx[c.column] {
                    Some(bytes) => access(bytes)
                        .unwrap()
                        .lookup(
                            &b.schema.fields[c.column].ty,
                            c.op,
                            &c.value,
                            c.regex.as_ref(),
                        )
                        .unwrap(),
                    None => Hits::unknown(b.rows),
                },
            }
        }
        for q in queries {
            let r = resolve(&parse(q).unwrap(), &batch.schema);
            let truth: RoaringBitmap = filter(&r, batch).into_iter().collect();
            let h = hits(&r, batch, &aligned);
            assert!(h.sure.is_subset(&truth), "{q}: a sure row does not match");
            assert!(
                truth.is_subset(&(&h.sure | &h.maybe)),
                "{q}: a matching row was missed"
            );
            assert!(
                (&h.sure & &h.maybe).is_empty(),
                "{q}: sure and maybe overlap"
            );
        }
    }

    fn batch(rows: u32, distinct: u32) -> Batch {
        let schema = Schema::new(
            "t.x",
            vec![
                Field::new("c", Type::Count),
                Field::new("i", Type::Int),
                Field::new("r", Type::Real),
                Field::new("t", Type::Time),
                Field::new("s", Type::String),
                Field::new("a", Type::Address),
                Field::new("b", Type::Bool),
            ],
        );
        let mut b = BatchBuilder::new(schema);
        let mut x: u64 = 42;
        for row in 0..rows {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = x % distinct as u64;
            if row % 13 == 5 {
                for c in 0..7 {
                    b.column(c).push_null();
                }
            } else {
                b.column(0).push_count(v);
                b.column(1).push_int(v as i64 - (distinct / 2) as i64);
                b.column(2).push_real(v as f64 / 7.0);
                b.column(3).push_time(v as i64 * 1_000_000_000);
                b.column(4).push_str(&format!("s{v}"));
                b.column(5).push_address(
                    Address::parse(&format!("10.{}.{}.{}", v >> 16, (v >> 8) & 255, v & 255))
                        .unwrap(),
                );
                b.column(6).push_bool(v.is_multiple_of(2));
            }
            b.finish_row();
        }
        b.finish()
    }

    const QUERIES: &[&str] = &[
        "c == 17",
        "c != 17",
        "c < 100",
        "c <= 100",
        "c > 5000",
        "c >= 5000",
        "c == nil",
        "c != nil",
        "i < -3",
        "i >= 0",
        "r > 3.5",
        "r == 2.0",
        "t < @1000",
        "t >= @50",
        "s == \"s17\"",
        "s != \"s17\"",
        "s ~ /s1.*/",
        "s !~ /s1.*/",
        "s in [\"s1\", \"s2\"]",
        "a == 10.0.0.17",
        "a in 10.0.1.0/24",
        "a !in 10.0.0.0/16",
        "b == true",
        "b != false",
        "c in [1, 2, 3]",
        "c !in [1, 2, 3]",
        "!(c < 100) && s != \"s3\"",
        "c < 10 || a == 10.0.0.200",
    ];

    /// Writing a varied column's exact index only until it is sure to lose to
    /// the coarse one gives the bytes of writing both in full: for columns
    /// where the exact index wins, where it loses, and where it passes `rows`
    /// bytes and still wins (a tie with the coarse one, in tiny partitions).
    #[test]
    fn stopping_the_exact_index_early_keeps_the_choice() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut kinds = [0usize; 3];
        for rows in [3u32, 40, 200, 1_000, 20_000, 150_000] {
            for distinct in [1u64, 7, 300, 5_000, u64::MAX] {
                let vals: Vec<u64> = (0..rows)
                    .map(|_| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng % distinct.max(1)
                    })
                    .collect();
                let mut bb =
                    BatchBuilder::new(Schema::new("t.w", vec![Field::new("w", Type::Count)]));
                for &v in &vals {
                    bb.column(0).push_count(v);
                    bb.finish_row();
                }
                let col = bb.finish().columns.remove(0);
                let build = || {
                    let mut b = ColumnIndexBuilder::new(&Type::Count).unwrap();
                    b.add(&col, 0);
                    b
                };
                let fast = to_bytes(&build().finish());
                let full = to_bytes(&build().finish_stopping(false));
                assert_eq!(fast, full, "rows {rows}, distinct {distinct}");
                let v = access(&fast).unwrap();
                kinds[match (v.granule > 0, fast.len() as u64 > rows as u64) {
                    (true, _) => 1,
                    (false, false) => 0,
                    (false, true) => 2,
                }] += 1;
            }
        }
        // All three cases were met.
        assert!(kinds.iter().all(|&k| k > 0), "{kinds:?}");
    }

    /// An address column that switches to sorting its rows writes the bytes
    /// the table alone writes: with nulls, repeats, IPv6 addresses, and the
    /// switch in the middle of a batch's adds.
    #[test]
    fn sorted_addresses_write_what_the_table_writes() {
        let mut x = 5u64;
        let mut batches = Vec::new();
        for (rows, distinct) in [(30_000u32, 20_000u64), (90_000, 1_000_000), (50_000, 7)] {
            let mut bb =
                BatchBuilder::new(Schema::new("t.a", vec![Field::new("a", Type::Address)]));
            for r in 0..rows {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = x % distinct;
                match r % 11 {
                    3 => bb.column(0).push_null(),
                    7 => bb.column(0).push_address(
                        Address::parse(&format!("2001:db8::{:x}", v & 0xffff)).unwrap(),
                    ),
                    _ => bb.column(0).push_address(
                        Address::parse(&format!(
                            "10.{}.{}.{}",
                            (v >> 16) & 255,
                            (v >> 8) & 255,
                            v & 255
                        ))
                        .unwrap(),
                    ),
                }
                bb.finish_row();
            }
            batches.push(bb.finish().columns.remove(0));
        }
        let build = |sort_after: usize| {
            let mut b = ColumnIndexBuilder::new(&Type::Address).unwrap();
            b.sort_after = sort_after;
            let mut base = 0;
            for c in &batches {
                b.add(c, base);
                base += c.len() as u32;
            }
            assert_eq!(b.sorted, sort_after < usize::MAX);
            to_bytes(&b.finish())
        };
        let table = build(usize::MAX);
        assert_eq!(build(KEY_LIMIT), table);
        // Switched at the first batch's add, where every row so far is in the table.
        assert_eq!(build(100), table);
    }

    #[test]
    fn exact_indexes_agree_with_the_data() {
        check(&batch(3000, 300), QUERIES);
    }

    #[test]
    fn binned_and_hashed_indexes_stay_sound() {
        // More distinct values than KEY_LIMIT forces bins and string hashes.
        check(&batch(150_000, 140_000), QUERIES);
    }

    #[test]
    fn hits_logic() {
        let mut a = Hits::none();
        a.sure.insert(1);
        a.maybe.insert(2);
        let mut b = Hits::none();
        b.sure.insert(2);
        b.maybe.insert(3);
        let and = a.clone().and(b.clone());
        assert!(and.sure.is_empty());
        assert_eq!(and.maybe.iter().collect::<Vec<_>>(), vec![2]);
        let or = a.clone().or(b);
        assert_eq!(or.sure.iter().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(or.maybe.iter().collect::<Vec<_>>(), vec![3]);
        let not = a.not(4);
        assert_eq!(not.sure.iter().collect::<Vec<_>>(), vec![0, 3]);
        assert_eq!(not.maybe.iter().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn corrupt_index_bytes_are_rejected() {
        assert!(access(b"garbage garbage garbage garbage").is_err());
        assert!(access(&[0u8; 100]).is_err());
    }

    /// Columns that take every encoding: ports (exact at any cardinality), wide
    /// counts (coarse: bins of granules), reals with NaN and -0.0, strings numerous
    /// enough for many blocks yet exact, and sparse addresses.
    fn varied(rows: u32) -> Batch {
        let schema = Schema::new(
            "t.v",
            vec![
                Field::new("p", Type::port()),
                Field::new("w", Type::Count),
                Field::new("r", Type::Real),
                Field::new("s", Type::String),
                Field::new("a", Type::Address),
                Field::new("t", Type::timestamp()),
            ],
        );
        let mut b = BatchBuilder::new(schema);
        let mut x: u64 = 9;
        for row in 0..rows {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if row % 17 == 3 {
                for c in 0..6 {
                    b.column(c).push_null();
                }
            } else {
                b.column(0).push_count(x % 60_000);
                b.column(1).push_count(x >> (x % 50));
                b.column(2).push_real(match row % 11 {
                    0 => f64::NAN,
                    1 => -0.0,
                    2 => 0.0,
                    _ => (x % 1000) as f64 / 8.0 - 60.0,
                });
                b.column(3).push_str(&format!("name-{:05}", x % 20_000));
                b.column(4).push_address(
                    Address::parse(&format!(
                        "10.{}.{}.{}",
                        x % 7,
                        (x >> 8) % 256,
                        (x >> 16) % 256
                    ))
                    .unwrap(),
                );
                b.column(5)
                    .push_time(1_700_000_000_000_000_000 + row as i64 * 1_000_000);
            }
            b.finish_row();
        }
        b.finish()
    }

    fn index_of(batch: &Batch, col: usize) -> Vec<u8> {
        let mut b = ColumnIndexBuilder::new(&batch.schema.fields[col].ty).unwrap();
        b.add(&batch.columns[col], 0);
        to_bytes(&b.finish())
    }

    #[test]
    fn every_encoding_agrees_with_the_data() {
        let batch = varied(120_000);
        let ports = index_of(&batch, 0);
        let ports = access(&ports).unwrap();
        assert!(ports.granule == 0 && ports.shift == 0, "ports stay exact");
        let wide = index_of(&batch, 1);
        let wide = access(&wide).unwrap();
        assert!(wide.granule > 0, "wide counts become bins of granules");
        let strs = index_of(&batch, 3);
        let strs = access(&strs).unwrap();
        assert!(
            !strs.hashed && strs.blocks > 3,
            "strings exact, in many blocks"
        );
        let addrs = index_of(&batch, 4);
        assert!(access(&addrs).unwrap().blocks > 3);
        check(
            &batch,
            &[
                "p == 80",
                "p == 59999",
                "p != 443",
                "p < 1024",
                "p >= 50000",
                "p in [22, 80, 443]",
                "p == nil",
                "w == 0",
                "w < 100",
                "w > 1000000000",
                "w >= 18446744073709551615",
                "w != 5",
                "w == nil",
                "r == 0.0",
                "r == -0.0",
                "r != 0.0",
                "r < -10.5",
                "r >= 3.25",
                "r > 1000.0",
                "r == nil",
                "r != nil",
                "s == \"name-00017\"",
                "s == \"name-19999\"",
                "s == \"name-20000\"",
                "s == \"\"",
                "s != \"name-00500\"",
                "s ~ /name-0001.$/",
                "s !~ /7$/",
                "s in [\"name-00001\", \"name-12345\", \"nope\"]",
                "a == 10.3.7.9",
                "a in 10.2.0.0/16",
                "a !in 10.0.0.0/15",
                "a > 10.5.0.0",
                "t < 2023-11-14T22:13:30",
                "t >= 2023-11-14T22:13:50",
                "p == 80 || s == \"name-00003\"",
                "!(w < 1000) && r > 0.0",
            ],
        );
    }

    #[test]
    fn hashed_strings_point_at_granules() {
        // More distinct strings than KEY_LIMIT: hashed, answers only candidates.
        let batch = batch(150_000, 140_000);
        let bytes = index_of(&batch, 4);
        let idx = access(&bytes).unwrap();
        assert!(idx.hashed && idx.granule > 0);
        let present = batch.columns[4].str_at(0).to_string();
        let h = idx
            .lookup(&Type::String, Op::Eq, &Value::String(present), None)
            .unwrap();
        assert!(h.sure.is_empty() && !h.maybe.is_empty());
        // Whole granules, each a candidate for the row that has the string.
        assert_eq!(h.maybe.len() % (1 << GRANULE_BITS), 0);
    }

    /// Every block (header, directory, key blocks raw and compressed, null and NaN
    /// rows) is covered by a checksum: flipping any bit anywhere is caught when the
    /// file is opened or when a lookup that reads every block runs.
    #[test]
    fn every_flipped_bit_is_detected() {
        let batch = varied(2_000);
        let mut codecs = std::collections::HashSet::new();
        for (col, ty, q) in [
            (2, Type::Real, "r > -1000.0"),
            (3, Type::String, "s ~ /./"),
            (4, Type::Address, "a in 0.0.0.0/0"),
        ] {
            let bytes = index_of(&batch, col);
            let r = resolve(&parse(q).unwrap(), &batch.schema);
            let Resolved::Cmp(c) = r else { panic!("{q}") };
            let scan = |b: &[u8]| -> Result<(), IndexCorrupt> {
                let idx = access(b)?;
                idx.lookup(&ty, c.op, &c.value, c.regex.as_ref())?;
                idx.lookup(&ty, Op::Eq, &Value::Null, None)?;
                Ok(())
            };
            scan(&bytes).unwrap();
            let idx = access(&bytes).unwrap();
            for j in 0..idx.blocks + SPECIAL {
                codecs.insert(idx.data[idx.entry(j).0]);
            }
            // One bit per byte, rotating through the bit positions.
            for i in 0..bytes.len() {
                let mut b = bytes.clone();
                b[i] ^= 1 << (i % 8);
                assert!(scan(&b).is_err(), "column {col}: flip at byte {i} missed");
            }
            for cut in [0, 10, HEADER_BYTES, bytes.len() / 2, bytes.len() - 1] {
                assert!(scan(&bytes[..cut]).is_err(), "column {col}: cut at {cut}");
            }
        }
        assert!(
            codecs.contains(&RAW) && codecs.contains(&ZSTD),
            "both codecs covered"
        );
    }

    /// Opening checks the header and directory only: a damaged block fails the
    /// lookups that read it, with its number, and no other.
    #[test]
    fn blocks_are_checked_when_read() {
        let batch = varied(60_000);
        let mut bytes = index_of(&batch, 4);
        let idx = access(&bytes).unwrap();
        assert!(idx.blocks > 3);
        let (off, _, _, _) = idx.entry(SPECIAL + 1);
        let data_at = bytes.len() - idx.data.len();
        let first_in_block = idx.entry_num(1);
        let first_in_last = idx.entry_num(idx.blocks - 1);
        bytes[data_at + off + 5] ^= 0x10;
        let idx = access(&bytes).expect("opening does not read blocks");
        let addr = |k: u128| Value::Address(Address(k.to_be_bytes()));
        let err = idx
            .lookup(&Type::Address, Op::Eq, &addr(first_in_block), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("block {}", SPECIAL + 1)) && err.contains("checksum"),
            "{err}"
        );
        let h = idx
            .lookup(&Type::Address, Op::Eq, &addr(first_in_last), None)
            .unwrap();
        assert!(!h.sure.is_empty());
    }

    /// The file as written by `durable` and mapped without a whole-file checksum
    /// still reports a damaged block.
    #[test]
    fn mapped_without_whole_file_checksum() {
        let dir = std::env::temp_dir().join(format!("vast-vi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c0");
        let batch = varied(20_000);
        let bytes = index_of(&batch, 3);
        crate::durable::write_file(&path, &bytes).unwrap();
        let m = crate::durable::MappedFile::open_unverified(&path).unwrap();
        assert_eq!(m.payload(), &bytes[..]);
        let mut raw = std::fs::read(&path).unwrap();
        let n = raw.len();
        let data_at = bytes.len() - access(&bytes).unwrap().data.len();
        raw[crate::durable::HEADER + data_at + 3] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        let m = crate::durable::MappedFile::open_unverified(&path).unwrap();
        let err = access(m.payload())
            .and_then(|v| {
                v.lookup(
                    &Type::String,
                    Op::Match,
                    &Value::Null,
                    Some(&regex::Regex::new(".").unwrap()),
                )
            })
            .unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        raw.truncate(n - 1);
        std::fs::write(&path, &raw).unwrap();
        let err = crate::durable::MappedFile::open_unverified(&path)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
