//! Per-column value indexes. Each maps keys (values, or bins of values) to roaring
//! bitmaps of rows. Low-cardinality columns are indexed exactly; past a cardinality
//! limit numbers are binned (keeping order, so ranges still work) and strings are
//! hashed (equality only). A lookup returns rows that surely match and rows that
//! might (to be checked against the data), so exactness is tracked per row.

use crate::data::{Column, ColumnData, Type, Value};
use crate::query::Op;
use rkyv::{Archive, Deserialize, Serialize};
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Archive, Serialize, Deserialize)]
pub enum KeyKind {
    /// Order-preserving 64-bit keys: bool, count, int, real, time, duration.
    U64,
    /// Order-preserving 128-bit keys: addresses.
    U128,
    /// Strings, enums and patterns: the text itself, or its hash once hashed.
    Str,
}

/// The stored index of one column of one partition.
#[derive(Archive, Serialize, Deserialize)]
pub struct ColumnIndex {
    pub kind: KeyKind,
    /// Bits dropped from keys to form bins (0: exact keys).
    pub shift: u32,
    /// String keys are xxh3 hashes (U64 keys) rather than the strings.
    pub hashed: bool,
    pub keys_u64: Vec<u64>,
    pub keys_u128: Vec<[u8; 16]>,
    pub str_offsets: Vec<u32>,
    pub str_bytes: Vec<u8>,
    /// `postings[offsets[i]..offsets[i+1]]` is key i's serialized roaring bitmap.
    pub offsets: Vec<u32>,
    pub postings: Vec<u8>,
    /// Serialized roaring bitmap of null rows.
    pub nulls: Vec<u8>,
    pub rows: u32,
}

/// Order-preserving key of a number: maps i64 and f64 onto u64 so that `<` agrees.
fn i64_key(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}
fn f64_key(v: f64) -> u64 {
    let b = v.to_bits();
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

fn str_hash(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// Accumulates one column's index while a partition fills.
pub struct ColumnIndexBuilder {
    ty: Type,
    kind: KeyKind,
    shift: u32,
    hashed: bool,
    num: FxHashMap<u128, u32>,
    strs: FxHashMap<String, u32>,
    postings: Vec<Vec<u32>>,
    /// Merged bins leave postings unsorted; sorted once at the end.
    unsorted: bool,
    nulls: RoaringBitmap,
    rows: u32,
}

impl ColumnIndexBuilder {
    /// A builder for a column of type `ty`, or `None` if the type is not indexed.
    pub fn new(ty: &Type) -> Option<Self> {
        Some(ColumnIndexBuilder {
            ty: ty.clone(),
            kind: key_kind(ty)?,
            shift: 0,
            hashed: false,
            num: FxHashMap::default(),
            strs: FxHashMap::default(),
            postings: Vec::new(),
            unsorted: false,
            nulls: RoaringBitmap::new(),
            rows: 0,
        })
    }

    #[inline]
    fn add_num(&mut self, key: u128, row: u32) {
        let k = key >> self.shift;
        let n = self.postings.len() as u32;
        let slot = *self.num.entry(k).or_insert(n);
        if slot == n {
            self.postings.push(Vec::new());
        }
        self.postings[slot as usize].push(row);
    }

    #[inline]
    fn add_str(&mut self, s: &str, row: u32) {
        if self.hashed {
            return self.add_num(str_hash(s) as u128, row);
        }
        let slot = match self.strs.get(s) {
            Some(slot) => *slot,
            None => {
                let n = self.postings.len() as u32;
                self.strs.insert(s.to_string(), n);
                self.postings.push(Vec::new());
                n
            }
        };
        self.postings[slot as usize].push(row);
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
            let old = std::mem::take(&mut self.postings);
            for (s, slot) in strs {
                self.merge_into(str_hash(&s) as u128, &old[slot as usize]);
            }
            self.unsorted = true;
            return;
        }
        while self.num.len() > KEY_LIMIT {
            self.shift += 4;
            let num = std::mem::take(&mut self.num);
            let old = std::mem::take(&mut self.postings);
            for (k, slot) in num {
                self.merge_into(k >> 4, &old[slot as usize]);
            }
            self.unsorted = true;
        }
    }

    fn merge_into(&mut self, k: u128, rows: &[u32]) {
        let n = self.postings.len() as u32;
        let slot = *self.num.entry(k).or_insert(n);
        if slot == n {
            self.postings.push(Vec::new());
        }
        self.postings[slot as usize].extend_from_slice(rows);
    }

    /// Adds a column whose first row is partition row `base`.
    pub fn add(&mut self, col: &Column, base: u32) {
        let n = col.len() as u32;
        for i in 0..n {
            let row = base + i;
            if !col.is_valid(i as usize) {
                self.nulls.insert(row);
                continue;
            }
            match &col.data {
                ColumnData::Bool(v) => self.add_num(v[i as usize] as u128, row),
                ColumnData::Count(v) => self.add_num(v[i as usize] as u128, row),
                ColumnData::Int(v) | ColumnData::Duration(v) | ColumnData::Time(v) => {
                    self.add_num(i64_key(v[i as usize]) as u128, row)
                }
                ColumnData::Real(v) => self.add_num(f64_key(v[i as usize]) as u128, row),
                ColumnData::Address(v) => self.add_num(u128::from_be_bytes(v[i as usize]), row),
                ColumnData::Str { .. } => {
                    let s = col.str_at(i as usize);
                    self.add_str(s, row);
                }
                _ => {}
            }
        }
        self.rows = self.rows.max(base + n);
        if self.num.len() > KEY_LIMIT || self.strs.len() > KEY_LIMIT {
            self.rebin();
        }
    }

    /// Sorts keys and serializes postings.
    pub fn finish(mut self) -> ColumnIndex {
        let mut idx = ColumnIndex {
            kind: self.kind,
            shift: self.shift,
            hashed: self.hashed,
            keys_u64: Vec::new(),
            keys_u128: Vec::new(),
            str_offsets: Vec::new(),
            str_bytes: Vec::new(),
            offsets: vec![0],
            postings: Vec::new(),
            nulls: Vec::new(),
            rows: self.rows,
        };
        let mut postings = std::mem::take(&mut self.postings);
        let push = |idx: &mut ColumnIndex, rows: &mut Vec<u32>| {
            if self.unsorted {
                rows.sort_unstable();
                rows.dedup();
            }
            let bm = RoaringBitmap::from_sorted_iter(rows.iter().copied())
                .expect("posting lists are sorted");
            bm.serialize_into(&mut idx.postings)
                .expect("serializing into memory cannot fail");
            idx.offsets.push(idx.postings.len() as u32);
        };
        if self.kind == KeyKind::Str && !self.hashed {
            let mut keys: Vec<(String, u32)> = self.strs.drain().collect();
            keys.sort_unstable();
            idx.str_offsets.push(0);
            for (s, slot) in keys {
                idx.str_bytes.extend_from_slice(s.as_bytes());
                idx.str_offsets.push(idx.str_bytes.len() as u32);
                push(&mut idx, &mut postings[slot as usize]);
            }
        } else {
            let mut keys: Vec<(u128, u32)> = self.num.drain().collect();
            keys.sort_unstable();
            for (k, slot) in keys {
                if self.kind == KeyKind::U128 {
                    idx.keys_u128.push(k.to_be_bytes());
                } else {
                    idx.keys_u64.push(k as u64);
                }
                push(&mut idx, &mut postings[slot as usize]);
            }
        }
        self.nulls
            .serialize_into(&mut idx.nulls)
            .expect("serializing into memory cannot fail");
        let _ = &self.ty;
        idx
    }
}

/// Why an index file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("index is corrupt: {0}")]
pub struct IndexCorrupt(pub String);

impl ArchivedColumnIndex {
    fn key_count(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    fn bitmap(&self, i: usize) -> Result<RoaringBitmap, IndexCorrupt> {
        let a = self.offsets[i].to_native() as usize;
        let b = self.offsets[i + 1].to_native() as usize;
        let bytes = self
            .postings
            .get(a..b)
            .ok_or_else(|| IndexCorrupt(format!("posting {i} out of bounds")))?;
        RoaringBitmap::deserialize_from(bytes).map_err(|e| IndexCorrupt(e.to_string()))
    }

    fn union(&self, range: std::ops::Range<usize>) -> Result<RoaringBitmap, IndexCorrupt> {
        let mut out = RoaringBitmap::new();
        for i in range {
            out |= self.bitmap(i)?;
        }
        Ok(out)
    }

    fn nulls(&self) -> Result<RoaringBitmap, IndexCorrupt> {
        RoaringBitmap::deserialize_from(&self.nulls[..]).map_err(|e| IndexCorrupt(e.to_string()))
    }

    fn num_key(&self, i: usize) -> u128 {
        match self.kind {
            ArchivedKeyKind::U128 => u128::from_be_bytes(self.keys_u128[i]),
            _ => self.keys_u64[i].to_native() as u128,
        }
    }

    fn str_key(&self, i: usize) -> &str {
        let a = self.str_offsets[i].to_native() as usize;
        let b = self.str_offsets[i + 1].to_native() as usize;
        std::str::from_utf8(self.str_bytes.get(a..b).unwrap_or_default()).unwrap_or_default()
    }

    /// First key index whose (binned) key is >= `k`.
    fn lower_bound(&self, k: u128) -> usize {
        let (mut lo, mut hi) = (0, self.key_count());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.num_key(mid) < k {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Rows whose key lies in `[lo, hi]` (inclusive, unbinned keys).
    fn range(&self, lo: u128, hi: u128) -> Result<Hits, IndexCorrupt> {
        if lo > hi {
            return Ok(Hits::none());
        }
        let s = self.shift.to_native();
        let (blo, bhi) = (lo >> s, hi >> s);
        let a = self.lower_bound(blo);
        let b = self.lower_bound(bhi.saturating_add(1)).max(a);
        if s == 0 {
            return Ok(Hits {
                sure: self.union(a..b)?,
                maybe: RoaringBitmap::new(),
            });
        }
        // Bins wholly inside the range are sure; the edge bins only maybe.
        let mut hits = Hits::none();
        for i in a..b {
            let bin = self.num_key(i);
            let bin_lo = bin << s;
            let bin_hi = bin_lo | ((1u128 << s) - 1);
            let bm = self.bitmap(i)?;
            if bin_lo >= lo && bin_hi <= hi {
                hits.sure |= bm;
            } else {
                hits.maybe |= bm;
            }
        }
        Ok(hits)
    }

    fn str_lookup(&self, s: &str) -> Result<Hits, IndexCorrupt> {
        if self.hashed {
            let k = str_hash(s) as u128;
            let mut h = self.range(k, k)?;
            // Hash equality is only a hint.
            h.maybe |= std::mem::take(&mut h.sure);
            return Ok(h);
        }
        let (mut lo, mut hi) = (0, self.key_count());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.str_key(mid) < s {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo < self.key_count() && self.str_key(lo) == s {
            Ok(Hits {
                sure: self.bitmap(lo)?,
                maybe: RoaringBitmap::new(),
            })
        } else {
            Ok(Hits::none())
        }
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
        let rows = self.rows.to_native();
        let eq = |v: &Value| -> Result<Option<Hits>, IndexCorrupt> {
            if v.is_null() {
                return Ok(Some(Hits {
                    sure: self.nulls()?,
                    maybe: RoaringBitmap::new(),
                }));
            }
            match (&self.kind, v) {
                (ArchivedKeyKind::Str, Value::String(s) | Value::Enum(s) | Value::Pattern(s)) => {
                    Ok(Some(self.str_lookup(s)?))
                }
                (ArchivedKeyKind::Str, _) => Ok(Some(Hits::none())),
                _ => match value_key(ty, v) {
                    Some(k) => Ok(Some(self.range(k, k)?)),
                    None => Ok(None),
                },
            }
        };
        let ordered = !matches!(self.kind, ArchivedKeyKind::Str);
        Ok(match op {
            Op::Eq => eq(value)?.unwrap_or_else(|| Hits::unknown(rows)),
            Op::Ne => match eq(value)? {
                Some(h) => h.not(rows),
                None => Hits::unknown(rows),
            },
            Op::Lt | Op::Le | Op::Gt | Op::Ge if ordered => match value_key(ty, value) {
                Some(k) => {
                    let max = match self.kind {
                        ArchivedKeyKind::U128 => u128::MAX,
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
            Op::Match | Op::NotMatch
                if !self.hashed && matches!(self.kind, ArchivedKeyKind::Str) =>
            {
                match regex {
                    Some(re) => {
                        let mut sure = RoaringBitmap::new();
                        for i in 0..self.key_count() {
                            if re.is_match(self.str_key(i)) {
                                sure |= self.bitmap(i)?;
                            }
                        }
                        let h = Hits {
                            sure,
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

/// Validated zero-copy view of a serialized column index.
pub fn access(bytes: &[u8]) -> Result<&ArchivedColumnIndex, IndexCorrupt> {
    let idx = crate::data::checked::access::<ArchivedColumnIndex>(bytes).map_err(IndexCorrupt)?;
    let k = idx.key_count();
    let keys = match idx.kind {
        ArchivedKeyKind::U64 => idx.keys_u64.len(),
        ArchivedKeyKind::U128 => idx.keys_u128.len(),
        ArchivedKeyKind::Str if idx.hashed => idx.keys_u64.len(),
        ArchivedKeyKind::Str => idx.str_offsets.len().saturating_sub(1),
    };
    if keys != k
        || idx
            .offsets
            .iter()
            .any(|o| o.to_native() as usize > idx.postings.len())
        || idx.offsets.windows(2).any(|w| w[0] > w[1])
        || idx
            .str_offsets
            .iter()
            .any(|o| o.to_native() as usize > idx.str_bytes.len())
        || idx.str_offsets.windows(2).any(|w| w[0] > w[1])
    {
        return Err(IndexCorrupt("key and posting tables disagree".into()));
    }
    Ok(idx)
}

pub fn to_bytes(idx: &ColumnIndex) -> Vec<u8> {
    rkyv::to_bytes::<rkyv::rancor::Error>(idx)
        .expect("serializing into memory cannot fail")
        .into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Address, Batch, BatchBuilder, Field, Schema};
    use crate::query::{filter, parse, resolve, Resolved};

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
    }
}
