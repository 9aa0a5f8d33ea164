//! Column encodings of the archive's row groups (on-disk format version 2).
//!
//! One column of one row group is encoded on its own into a self-describing byte
//! string ("chunk body"), which the store then compresses with zstd. The encodings
//! are lightweight transforms that leave the entropy coding to zstd:
//!
//! - integers, times, durations, reals' bit patterns and every length: frame of
//!   reference (minus the minimum, divided by the common divisor) or, when it is
//!   narrower, the same on the differences of consecutive values; then the values
//!   are split into byte planes (all lowest bytes, then all second bytes, ...) of
//!   the fewest bytes that hold the largest, so zstd sees runs of similar bytes;
//! - strings, blobs and addresses: a dictionary when few values repeat a lot,
//!   else lengths plus the raw bytes; addresses that are IPv4-mapped keep 4 bytes;
//! - validity and booleans: bitmaps.
//!
//! Decoding trusts nothing: every count, length and offset is checked against the
//! bytes present and the row count, and every allocation is charged against the
//! decoded size the chunk claims, which is capped, so a hostile file yields an
//! error, never a panic or an outsized allocation.

use crate::data::batch::{Column, ColumnData, Validity};
use crate::data::Type;
use rustc_hash::FxHashMap;
use std::ops::Range;

/// Most bytes the decoded form of one column chunk may occupy in memory.
pub const MAX_CHUNK_MEM: u64 = 256 << 20;

// Storage tags: a chunk names its storage so a type mismatch is an error, not a
// misreading.
const T_BOOL: u8 = 1;
const T_INT: u8 = 2;
const T_COUNT: u8 = 3;
const T_REAL: u8 = 4;
const T_DURATION: u8 = 5;
const T_TIME: u8 = 6;
const T_STR: u8 = 7;
const T_ADDR: u8 = 8;
const T_SUBNET: u8 = 9;
const T_LIST: u8 = 10;
const T_MAP: u8 = 11;
const T_RECORD: u8 = 12;
const T_BLOB: u8 = 13;

// Integer block modes.
const INT_FOR: u8 = 0;
const INT_DELTA: u8 = 1;

// String, blob and address modes.
const PLAIN: u8 = 0;
const DICT: u8 = 1;
/// Addresses: every one IPv4-mapped, 4 bytes each.
const ADDR_V4: u8 = 2;
/// Addresses: a v6 flag bitmap, then the v4 ones as 4 bytes, the rest as 16.
const ADDR_MIXED: u8 = 3;

/// The IPv4-mapped prefix `::ffff:0:0/96`.
const V4_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// Measurement knobs: the store fixes them; the measurement test varies them.
#[derive(Clone, Copy, Debug)]
pub struct Knobs {
    /// Try a dictionary for strings and blobs.
    pub str_dict: bool,
    /// Try a dictionary for addresses.
    pub addr_dict: bool,
    /// Try delta encoding for integers.
    pub delta: bool,
    /// Order dictionaries by descending frequency (small indexes for hot values).
    pub dict_by_frequency: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            str_dict: true,
            addr_dict: true,
            delta: true,
            dict_by_frequency: true,
        }
    }
}

/// Encoder state: the bytes written and the memory their decoding will allocate.
#[derive(Default)]
pub struct Encoder {
    pub out: Vec<u8>,
    /// Bytes the decoder allocates for this chunk; written in the chunk so the
    /// decoder can refuse absurd claims before allocating anything.
    pub mem: u64,
    pub knobs: Knobs,
    scratch: Vec<u64>,
    /// Differences of an integer block, and its values normalised (see `planes`).
    deltas: Vec<u64>,
    ks: Vec<u64>,
}

impl Encoder {
    pub fn new(knobs: Knobs) -> Self {
        Encoder {
            knobs,
            ..Default::default()
        }
    }

    pub fn clear(&mut self) {
        self.out.clear();
        self.mem = 0;
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// Encodes rows `range` of `col`.
    pub fn column(&mut self, col: &Column, range: Range<usize>) {
        let n = range.len();
        self.validity(&col.validity, range.clone());
        match &col.data {
            ColumnData::Bool(v) => {
                self.out.push(T_BOOL);
                self.mem += n as u64;
                let bits = &v[range];
                self.bitmap(n, |i| bits[i]);
            }
            ColumnData::Int(v) | ColumnData::Duration(v) | ColumnData::Time(v) => {
                self.out.push(match &col.data {
                    ColumnData::Int(_) => T_INT,
                    ColumnData::Duration(_) => T_DURATION,
                    _ => T_TIME,
                });
                let mut s = std::mem::take(&mut self.scratch);
                s.clear();
                s.extend(v[range].iter().map(|x| flip(*x)));
                self.ints(&s);
                self.scratch = s;
            }
            ColumnData::Count(v) => {
                self.out.push(T_COUNT);
                self.ints(&v[range]);
            }
            ColumnData::Real(v) => {
                self.out.push(T_REAL);
                let mut s = std::mem::take(&mut self.scratch);
                s.clear();
                s.extend(v[range].iter().map(|x| x.to_bits()));
                self.ints(&s);
                self.scratch = s;
            }
            ColumnData::Str { offsets, bytes } => {
                self.out.push(T_STR);
                self.strings(offsets, bytes, range);
            }
            ColumnData::Blob { offsets, bytes } => {
                self.out.push(T_BLOB);
                self.strings(offsets, bytes, range);
            }
            ColumnData::Address(v) => {
                self.out.push(T_ADDR);
                self.addresses(&v[range]);
            }
            ColumnData::Subnet { addrs, lens } => {
                self.out.push(T_SUBNET);
                self.addresses(&addrs[range.clone()]);
                self.mem += n as u64;
                self.out.extend_from_slice(&lens[range]);
            }
            ColumnData::List { offsets, values } => {
                self.out.push(T_LIST);
                let child = self.lengths(offsets, range);
                self.mem += child.len() as u64 * 4;
                self.column(values, child);
            }
            ColumnData::Map {
                offsets,
                keys,
                values,
            } => {
                self.out.push(T_MAP);
                let child = self.lengths(offsets, range);
                self.mem += child.len() as u64 * 4;
                self.column(keys, child.clone());
                self.column(values, child);
            }
            ColumnData::Record(cs) => {
                self.out.push(T_RECORD);
                self.varint(cs.len() as u64);
                for c in cs {
                    self.column(c, range.clone());
                }
            }
        }
    }

    fn validity(&mut self, v: &Validity, range: Range<usize>) {
        let n = range.len();
        if v.words.is_empty() || range.clone().all(|r| v.is_valid(r)) {
            self.out.push(0);
            return;
        }
        self.out.push(1);
        self.mem += n.div_ceil(64) as u64 * 8;
        self.bitmap(n, |i| v.is_valid(range.start + i));
    }

    fn bitmap(&mut self, n: usize, bit: impl Fn(usize) -> bool) {
        for byte in 0..n.div_ceil(8) {
            let mut b = 0u8;
            for k in 0..8 {
                let i = byte * 8 + k;
                if i < n && bit(i) {
                    b |= 1 << k;
                }
            }
            self.out.push(b);
        }
    }

    /// Element lengths of rows `range` of an offsets vector; returns the child range.
    fn lengths(&mut self, offsets: &[u32], range: Range<usize>) -> Range<usize> {
        let n = range.len();
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        s.extend(
            offsets[range.start..=range.end]
                .windows(2)
                .map(|w| (w[1] - w[0]) as u64),
        );
        self.ints(&s);
        self.scratch = s;
        self.mem += (n as u64 + 1) * 4;
        offsets[range.start] as usize..offsets[range.end] as usize
    }

    /// An integer block; the count is known to the decoder from context.
    fn ints(&mut self, v: &[u64]) {
        self.mem += v.len() as u64 * 8;
        let (base, mul, width) = frame_of_reference(v);
        let mut d = std::mem::take(&mut self.deltas);
        d.clear();
        let delta = if self.knobs.delta && v.len() > 2 && width > 0 {
            d.extend(v.windows(2).map(|w| flip(w[1].wrapping_sub(w[0]) as i64)));
            let f = frame_of_reference(&d);
            (f.2 < width).then_some(f)
        } else {
            None
        };
        match delta {
            Some((dbase, dmul, dwidth)) => {
                self.out.push(INT_DELTA);
                self.varint(dbase);
                self.varint(dmul);
                self.out.push(dwidth);
                self.varint(v[0]);
                self.planes(&d, dbase, dmul, dwidth);
            }
            None => {
                self.out.push(INT_FOR);
                self.varint(base);
                self.varint(mul);
                self.out.push(width);
                self.planes(v, base, mul, width);
            }
        }
        self.deltas = d;
    }

    /// The byte planes of `(x - base) / mul` for every `x` of `v`, each a
    /// multiple of `mul` away from `base`. Normalised into a scratch vector
    /// first and then written a plane at a time: computing and scattering
    /// each value's bytes in turn, with a division per value, was most of an
    /// integer column's encoding.
    fn planes(&mut self, v: &[u64], base: u64, mul: u64, width: u8) {
        let n = v.len();
        let start = self.out.len();
        self.out.resize(start + n * width as usize, 0);
        if width == 0 {
            return;
        }
        let mut ks = std::mem::take(&mut self.ks);
        ks.clear();
        if mul == 1 {
            ks.extend(v.iter().map(|x| x.wrapping_sub(base)));
        } else {
            let div = Divisor::new(mul);
            ks.extend(v.iter().map(|x| div.exact(x.wrapping_sub(base))));
        }
        for (b, plane) in self.out[start..].chunks_exact_mut(n).enumerate() {
            let shift = 8 * b as u32;
            for (o, k) in plane.iter_mut().zip(&ks) {
                *o = (k >> shift) as u8;
            }
        }
        self.ks = ks;
    }

    fn strings(&mut self, offsets: &[u32], bytes: &[u8], range: Range<usize>) {
        let n = range.len();
        let cell = |i: usize| &bytes[offsets[i] as usize..offsets[i + 1] as usize];
        if self.knobs.str_dict {
            if let Some((dict, idx)) =
                dictionary(range.clone().map(cell), n, self.knobs.dict_by_frequency)
            {
                self.out.push(DICT);
                self.varint(dict.len() as u64);
                let mut s = std::mem::take(&mut self.scratch);
                s.clear();
                s.extend(dict.iter().map(|d| d.len() as u64));
                self.ints(&s);
                self.mem += (dict.len() as u64 + 1) * 4;
                let total: usize = dict.iter().map(|d| d.len()).sum();
                self.varint(total as u64);
                for d in &dict {
                    self.out.extend_from_slice(d);
                }
                s.clear();
                s.extend(idx.iter().map(|i| *i as u64));
                self.ints(&s);
                self.scratch = s;
                self.mem += (n as u64 + 1) * 4;
                self.mem += (offsets[range.end] - offsets[range.start]) as u64;
                return;
            }
        }
        self.out.push(PLAIN);
        self.lengths(offsets, range.clone());
        let (a, b) = (offsets[range.start] as usize, offsets[range.end] as usize);
        self.varint((b - a) as u64);
        self.mem += (b - a) as u64;
        self.out.extend_from_slice(&bytes[a..b]);
    }

    fn addresses(&mut self, v: &[[u8; 16]]) {
        let n = v.len();
        if self.knobs.addr_dict {
            if let Some((dict, idx)) = dictionary(v.iter(), n, self.knobs.dict_by_frequency) {
                self.out.push(DICT);
                self.varint(dict.len() as u64);
                let dict: Vec<[u8; 16]> = dict.into_iter().copied().collect();
                self.addresses_plain(&dict);
                let mut s = std::mem::take(&mut self.scratch);
                s.clear();
                s.extend(idx.iter().map(|i| *i as u64));
                self.ints(&s);
                self.scratch = s;
                self.mem += n as u64 * 16;
                return;
            }
        }
        self.addresses_plain(v);
    }

    fn addresses_plain(&mut self, v: &[[u8; 16]]) {
        let n = v.len();
        self.mem += n as u64 * 16;
        let is_v4 = |a: &[u8; 16]| a[..12] == V4_PREFIX;
        let v6 = v.iter().filter(|a| !is_v4(a)).count();
        if v6 == 0 {
            self.out.push(ADDR_V4);
        } else {
            self.out.push(ADDR_MIXED);
            self.bitmap(n, |i| !is_v4(&v[i]));
        }
        let v4: Vec<&[u8; 16]> = v.iter().filter(|a| is_v4(a)).collect();
        let start = self.out.len();
        self.out.resize(start + 4 * v4.len(), 0);
        for (i, a) in v4.iter().enumerate() {
            for b in 0..4 {
                self.out[start + b * v4.len() + i] = a[12 + b];
            }
        }
        if v6 > 0 {
            let start = self.out.len();
            self.out.resize(start + 16 * v6, 0);
            for (i, a) in v.iter().filter(|a| !is_v4(a)).enumerate() {
                for (b, byte) in a.iter().enumerate() {
                    self.out[start + b * v6 + i] = *byte;
                }
            }
        }
    }
}

/// Order-preserving map of signed onto unsigned integers.
#[inline]
fn flip(x: i64) -> u64 {
    (x as u64) ^ (1 << 63)
}

#[inline]
fn unflip(x: u64) -> i64 {
    (x ^ (1 << 63)) as i64
}

/// Minimum, common divisor of the distances to it, and bytes per value after both.
fn frame_of_reference(v: &[u64]) -> (u64, u64, u8) {
    // Four running minima and maxima: one pair is a dependency chain through
    // every value, and scalar code is all there is for u64 on baseline x86-64.
    let (mut lo, mut hi) = ([u64::MAX; 4], [0u64; 4]);
    let mut quads = v.chunks_exact(4);
    for q in &mut quads {
        for j in 0..4 {
            lo[j] = lo[j].min(q[j]);
            hi[j] = hi[j].max(q[j]);
        }
    }
    for &x in quads.remainder() {
        lo[0] = lo[0].min(x);
        hi[0] = hi[0].max(x);
    }
    let lo = lo.into_iter().min().unwrap_or(u64::MAX);
    let hi = hi.into_iter().max().unwrap_or(0);
    if lo >= hi {
        // Empty (0 bytes a value, nothing to decode) or constant.
        return (if lo > hi { 0 } else { lo }, 1, 0);
    }
    let mut g = 0u64;
    let mut div = Divisor::new(1);
    for &x in v {
        let d = x - lo;
        // A multiply per value once the divisor is known; gcd only on a miss.
        if d == 0 || (g > 1 && div.divides(d)) {
            continue;
        }
        g = gcd(g, d);
        if g == 1 {
            break;
        }
        div = Divisor::new(g);
    }
    let mul = g.max(1);
    let range = (hi - lo) / mul;
    let width = (64 - range.leading_zeros()).div_ceil(8) as u8;
    (lo, mul, width)
}

/// Divisibility by, and exact division by, a fixed non-zero divisor without a
/// division instruction (a 64-bit `div` is tens of cycles; this is a shift and
/// a multiply): for odd `m`, `x` is a multiple of `m` exactly when
/// `x * m⁻¹ mod 2⁶⁴` is at most `(2⁶⁴ - 1) / m`, and then that product is `x / m`.
#[derive(Clone, Copy)]
struct Divisor {
    /// Trailing zero bits of the divisor.
    shift: u32,
    /// The inverse of its odd part modulo 2⁶⁴.
    inverse: u64,
    /// The largest quotient of its odd part.
    limit: u64,
}

impl Divisor {
    fn new(m: u64) -> Self {
        debug_assert!(m > 0);
        let shift = m.trailing_zeros();
        let odd = m >> shift;
        // Newton's iteration doubles the correct low bits each step: an odd
        // number is its own inverse modulo 8 (3 bits), so 5 steps give 96.
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        Divisor {
            shift,
            inverse,
            limit: u64::MAX / odd,
        }
    }

    #[inline]
    fn divides(self, x: u64) -> bool {
        x.trailing_zeros() >= self.shift
            && (x >> self.shift).wrapping_mul(self.inverse) <= self.limit
    }

    /// `x / m`, where `m` divides `x`.
    #[inline]
    fn exact(self, x: u64) -> u64 {
        (x >> self.shift).wrapping_mul(self.inverse)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A dictionary of the values and each row's index, when the values repeat enough
/// for it to pay; `None` otherwise. A sample of the first rows decides cheaply for
/// columns of mostly distinct values. With `by_frequency` the most frequent value
/// gets index 0 and so on, so skewed columns' indexes mostly fit one byte plane.
fn dictionary<T: std::hash::Hash + Eq + Copy>(
    values: impl Iterator<Item = T>,
    n: usize,
    by_frequency: bool,
) -> Option<(Vec<T>, Vec<u32>)> {
    const SAMPLE: usize = 256;
    let limit = (n / 4).max(1);
    // Sized for the most values it holds before giving up: growing from empty
    // rehashed it several times for every string and address column of every
    // row group.
    let mut map: FxHashMap<T, u32> =
        FxHashMap::with_capacity_and_hasher((limit + 1).min(SAMPLE / 2 + 1), Default::default());
    let mut dict = Vec::new();
    let mut idx = Vec::with_capacity(n);
    for (i, v) in values.enumerate() {
        let next = dict.len() as u32;
        let k = *map.entry(v).or_insert(next);
        if k == next {
            dict.push(v);
            if dict.len() > limit || (i < SAMPLE && dict.len() > SAMPLE / 2) {
                return None;
            }
        }
        idx.push(k);
    }
    if by_frequency && dict.len() > 1 {
        let mut count = vec![0u32; dict.len()];
        for &i in &idx {
            count[i as usize] += 1;
        }
        let mut order: Vec<u32> = (0..dict.len() as u32).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(count[i as usize]));
        let mut rank = vec![0u32; dict.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        dict = order.iter().map(|&i| dict[i as usize]).collect();
        for i in idx.iter_mut() {
            *i = rank[*i as usize];
        }
    }
    Some((dict, idx))
}

/// Reads a chunk body, charging every allocation against the claimed size.
pub struct Decoder<'a> {
    b: &'a [u8],
    pos: usize,
    budget: u64,
}

type Res<T> = Result<T, String>;

impl<'a> Decoder<'a> {
    /// A decoder over `b` that may allocate `mem` bytes (capped).
    pub fn new(b: &'a [u8], mem: u64) -> Res<Self> {
        if mem > MAX_CHUNK_MEM {
            return Err(format!(
                "chunk claims {mem} bytes decoded, more than the limit of {MAX_CHUNK_MEM}"
            ));
        }
        Ok(Decoder {
            b,
            pos: 0,
            budget: mem,
        })
    }

    /// What is left of the claim (zero after decoding a well-formed chunk).
    pub fn unspent(&self) -> u64 {
        self.budget
    }

    pub fn finished(&self) -> bool {
        self.pos == self.b.len()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.b[self.pos..]
    }

    pub fn read_u8(&mut self) -> Res<u8> {
        self.u8()
    }

    pub fn read_varint(&mut self) -> Res<u64> {
        self.varint()
    }

    fn charge(&mut self, count: usize, size: usize) -> Res<()> {
        let bytes = (count as u64).saturating_mul(size as u64);
        if bytes > self.budget {
            return Err("chunk decodes to more than it claims".into());
        }
        self.budget -= bytes;
        Ok(())
    }

    fn u8(&mut self) -> Res<u8> {
        let v = *self.b.get(self.pos).ok_or("chunk truncated")?;
        self.pos += 1;
        Ok(v)
    }

    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or("length overflows")?;
        let s = self.b.get(self.pos..end).ok_or("chunk truncated")?;
        self.pos = end;
        Ok(s)
    }

    fn varint(&mut self) -> Res<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err("varint overflows".into());
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn count(&mut self) -> Res<usize> {
        usize::try_from(self.varint()?).map_err(|_| "count overflows".to_string())
    }

    /// Decodes a column of type `ty` with `n` rows.
    pub fn column(&mut self, ty: &Type, n: usize) -> Res<Column> {
        self.column_sel(ty, Sel::All(n))
    }

    /// Decodes the rows `sel` picks of a column of type `ty`; the result holds
    /// just those rows. Every step charges what decoding all rows would, so the
    /// claim bounds a partial decode as well.
    pub fn column_sel(&mut self, ty: &Type, sel: Sel<'_>) -> Res<Column> {
        let n = sel.n();
        let validity = self.validity(sel)?;
        let tag = self.u8()?;
        let expect = match ty.base() {
            Type::Bool => T_BOOL,
            Type::Int => T_INT,
            Type::Count => T_COUNT,
            Type::Real => T_REAL,
            Type::Duration => T_DURATION,
            Type::Time => T_TIME,
            Type::String | Type::Pattern | Type::Enum(_) => T_STR,
            Type::Address => T_ADDR,
            Type::Subnet => T_SUBNET,
            Type::List(_) => T_LIST,
            Type::Map(_, _) => T_MAP,
            Type::Record(_) => T_RECORD,
            Type::Blob => T_BLOB,
            Type::Alias(_, _) => unreachable!("base() strips aliases"),
        };
        if tag != expect {
            return Err(format!("storage tag {tag} does not match type {ty}"));
        }
        let data = match ty.base() {
            Type::Bool => {
                self.charge(n, 1)?;
                let bits = self.take(n.div_ceil(8))?;
                ColumnData::Bool(sel.positions().map(|i| bit(bits, i)).collect())
            }
            Type::Int => ColumnData::Int(self.ints(sel)?.into_iter().map(unflip).collect()),
            Type::Duration => {
                ColumnData::Duration(self.ints(sel)?.into_iter().map(unflip).collect())
            }
            Type::Time => ColumnData::Time(self.ints(sel)?.into_iter().map(unflip).collect()),
            Type::Count => ColumnData::Count(self.ints(sel)?),
            Type::Real => {
                ColumnData::Real(self.ints(sel)?.into_iter().map(f64::from_bits).collect())
            }
            Type::String | Type::Pattern | Type::Enum(_) => {
                let (offsets, bytes) = self.strings(sel)?;
                ColumnData::Str { offsets, bytes }
            }
            Type::Blob => {
                let (offsets, bytes) = self.strings(sel)?;
                ColumnData::Blob { offsets, bytes }
            }
            Type::Address => ColumnData::Address(self.addresses(sel)?),
            Type::Subnet => {
                let addrs = self.addresses(sel)?;
                self.charge(n, 1)?;
                let lens = self.take(n)?;
                ColumnData::Subnet {
                    addrs,
                    lens: sel.positions().map(|i| lens[i]).collect(),
                }
            }
            Type::List(t) => {
                let (offsets, child) = self.nested(sel)?;
                let values = self.column_sel(t, child.as_sel())?;
                ColumnData::List {
                    offsets,
                    values: Box::new(values),
                }
            }
            Type::Map(k, v) => {
                let (offsets, child) = self.nested(sel)?;
                let keys = self.column_sel(k, child.as_sel())?;
                let values = self.column_sel(v, child.as_sel())?;
                ColumnData::Map {
                    offsets,
                    keys: Box::new(keys),
                    values: Box::new(values),
                }
            }
            Type::Record(fs) => {
                let count = self.count()?;
                if count != fs.len() {
                    return Err(format!("record has {count} fields, its type {}", fs.len()));
                }
                let mut cs = Vec::with_capacity(fs.len());
                for f in fs {
                    cs.push(self.column_sel(&f.ty, sel)?);
                }
                ColumnData::Record(cs)
            }
            Type::Alias(_, _) => unreachable!("base() strips aliases"),
        };
        Ok(Column { validity, data })
    }

    fn validity(&mut self, sel: Sel<'_>) -> Res<Validity> {
        match self.u8()? {
            0 => Ok(Validity::default()),
            1 => {
                let n = sel.n();
                self.charge(n.div_ceil(64), 8)?;
                let bits = self.take(n.div_ceil(8))?;
                let mut w = vec![0u64; sel.len().div_ceil(64)];
                match sel {
                    Sel::All(_) => {
                        for (i, b) in bits.iter().enumerate() {
                            w[i / 8] |= (*b as u64) << (8 * (i % 8));
                        }
                    }
                    Sel::Rows(_, rows) => {
                        for (j, &r) in rows.iter().enumerate() {
                            w[j / 64] |= (bit(bits, r as usize) as u64) << (j % 64);
                        }
                    }
                }
                Ok(Validity { words: w })
            }
            t => Err(format!("unknown validity tag {t}")),
        }
    }

    /// The values `sel` picks of an integer block of `sel.n()` values.
    fn ints(&mut self, sel: Sel<'_>) -> Res<Vec<u64>> {
        let n = sel.n();
        self.charge(n, 8)?;
        let mode = self.u8()?;
        let base = self.varint()?;
        let mul = self.varint()?;
        let width = self.u8()? as usize;
        if width > 8 || mul == 0 {
            return Err(format!(
                "bad integer block (width {width}, multiplier {mul})"
            ));
        }
        match mode {
            INT_FOR => {
                let planes = self.take(n.checked_mul(width).ok_or("length overflows")?)?;
                let mut out = match sel {
                    Sel::All(_) => {
                        let mut out = vec![0u64; n];
                        gather(&mut out, planes, width);
                        out
                    }
                    Sel::Rows(_, rows) => rows
                        .iter()
                        .map(|&r| {
                            (0..width).fold(0u64, |k, b| {
                                k | (planes[b * n + r as usize] as u64) << (8 * b)
                            })
                        })
                        .collect(),
                };
                for o in out.iter_mut() {
                    *o = base.wrapping_add(o.wrapping_mul(mul));
                }
                Ok(out)
            }
            INT_DELTA => {
                let first = self.varint()?;
                let m = n.checked_sub(1).ok_or("delta block without values")?;
                let planes = self.take(m.checked_mul(width).ok_or("length overflows")?)?;
                // Every value depends on all before it: decode up to the last
                // wanted one.
                let upto = match sel {
                    Sel::All(_) => n,
                    Sel::Rows(_, rows) => rows.last().map_or(0, |r| *r as usize + 1),
                };
                let mut out = vec![0u64; n];
                gather(&mut out[1..], planes, width);
                out[0] = first;
                for i in 1..upto {
                    let d = unflip(base.wrapping_add(out[i].wrapping_mul(mul)));
                    out[i] = out[i - 1].wrapping_add(d as u64);
                }
                Ok(match sel {
                    Sel::All(_) => out,
                    Sel::Rows(_, rows) => rows.iter().map(|&r| out[r as usize]).collect(),
                })
            }
            m => Err(format!("unknown integer mode {m}")),
        }
    }

    /// Offsets of all `n` rows from their lengths; the total must fit the u32
    /// offsets of a column.
    fn offsets(&mut self, n: usize) -> Res<Vec<u32>> {
        let lens = self.ints(Sel::All(n))?;
        self.charge(n + 1, 4)?;
        let mut offsets = Vec::with_capacity(n + 1);
        let mut at = 0u32;
        offsets.push(0);
        for l in lens {
            at = u32::try_from(l)
                .ok()
                .and_then(|l| at.checked_add(l))
                .ok_or("lengths overflow 32-bit offsets")?;
            offsets.push(at);
        }
        Ok(offsets)
    }

    /// Offsets of the rows `sel` picks of a list or map, and which child
    /// elements they hold.
    fn nested(&mut self, sel: Sel<'_>) -> Res<(Vec<u32>, Child)> {
        let all = self.offsets(sel.n())?;
        let len = *all.last().unwrap_or(&0) as usize;
        // Charged whether or not the positions are materialized (the encoder
        // claims it), so a partial decode stays inside the claim.
        self.charge(len, 4)?;
        Ok(match sel {
            Sel::All(_) => (all, Child::All(len)),
            Sel::Rows(_, rows) => {
                let mut offsets = Vec::with_capacity(rows.len() + 1);
                let mut positions = Vec::new();
                offsets.push(0u32);
                for &r in rows {
                    let (a, b) = (all[r as usize], all[r as usize + 1]);
                    positions.extend(a..b);
                    offsets.push(positions.len() as u32);
                }
                (offsets, Child::Rows(len, positions))
            }
        })
    }

    fn strings(&mut self, sel: Sel<'_>) -> Res<(Vec<u32>, Vec<u8>)> {
        let n = sel.n();
        match self.u8()? {
            PLAIN => {
                let all = self.offsets(n)?;
                let total = self.count()?;
                if total != *all.last().unwrap_or(&0) as usize {
                    return Err("string bytes do not match their lengths".into());
                }
                self.charge(total, 1)?;
                let bytes = self.take(total)?;
                Ok(match sel {
                    Sel::All(_) => (all, bytes.to_vec()),
                    Sel::Rows(_, rows) => {
                        let mut offsets = Vec::with_capacity(rows.len() + 1);
                        let mut out = Vec::new();
                        offsets.push(0u32);
                        for &r in rows {
                            let (a, b) = (all[r as usize] as usize, all[r as usize + 1] as usize);
                            out.extend_from_slice(&bytes[a..b]);
                            offsets.push(out.len() as u32);
                        }
                        (offsets, out)
                    }
                })
            }
            DICT => {
                let d = self.count()?;
                let doff = self.offsets(d)?;
                let total = self.count()?;
                if total != *doff.last().unwrap_or(&0) as usize {
                    return Err("dictionary bytes do not match their lengths".into());
                }
                let dbytes = self.take(total)?;
                let idx = self.ints(sel)?;
                self.charge(n + 1, 4)?;
                let mut offsets = Vec::with_capacity(idx.len() + 1);
                offsets.push(0u32);
                let mut at = 0u32;
                for &i in &idx {
                    let i = usize::try_from(i)
                        .ok()
                        .filter(|i| *i < d)
                        .ok_or("dictionary index out of range")?;
                    at = at
                        .checked_add(doff[i + 1] - doff[i])
                        .ok_or("strings overflow 32-bit offsets")?;
                    offsets.push(at);
                }
                self.charge(at as usize, 1)?;
                let mut bytes = Vec::with_capacity(at as usize);
                for &i in &idx {
                    let i = i as usize;
                    bytes.extend_from_slice(&dbytes[doff[i] as usize..doff[i + 1] as usize]);
                }
                Ok((offsets, bytes))
            }
            m => Err(format!("unknown string mode {m}")),
        }
    }

    fn addresses(&mut self, sel: Sel<'_>) -> Res<Vec<[u8; 16]>> {
        let mode = *self.b.get(self.pos).ok_or("chunk truncated")?;
        if mode != DICT {
            return self.addresses_plain(sel);
        }
        self.pos += 1;
        let d = self.count()?;
        let dict = self.addresses_plain(Sel::All(d))?;
        let idx = self.ints(sel)?;
        self.charge(sel.n(), 16)?;
        idx.into_iter()
            .map(|i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| dict.get(i).copied())
                    .ok_or_else(|| "address dictionary index out of range".to_string())
            })
            .collect()
    }

    fn addresses_plain(&mut self, sel: Sel<'_>) -> Res<Vec<[u8; 16]>> {
        let n = sel.n();
        self.charge(n, 16)?;
        let v6: Option<&[u8]> = match self.u8()? {
            ADDR_V4 => None,
            ADDR_MIXED => Some(self.take(n.div_ceil(8))?),
            m => return Err(format!("unknown address mode {m}")),
        };
        let is_v6 = |i: usize| v6.is_some_and(|bits| bit(bits, i));
        let n6 = v6.map_or(0, |bits| {
            // Bits past `n` in the last byte are not rows.
            let full: usize = bits[..n / 8].iter().map(|b| b.count_ones() as usize).sum();
            full + (n / 8 * 8..n).filter(|i| is_v6(*i)).count()
        });
        let n4 = n - n6;
        let p4 = self.take(4 * n4)?;
        let p6 = self.take(16 * n6)?;
        let mut out = Vec::with_capacity(sel.len());
        // Row i is the (number of v6 rows before it)-th v6 address or the
        // (number of v4 rows before it)-th v4 one: count while walking the rows.
        let (mut i4, mut i6) = (0, 0);
        let mut wanted = sel.positions().peekable();
        for i in 0..n {
            let Some(&w) = wanted.peek() else { break };
            let v6 = is_v6(i);
            if w == i {
                let mut a = [0u8; 16];
                if v6 {
                    for (b, x) in a.iter_mut().enumerate() {
                        *x = p6[b * n6 + i6];
                    }
                } else {
                    a[..12].copy_from_slice(&V4_PREFIX);
                    for b in 0..4 {
                        a[12 + b] = p4[b * n4 + i4];
                    }
                }
                out.push(a);
                wanted.next();
            }
            if v6 {
                i6 += 1;
            } else {
                i4 += 1;
            }
        }
        Ok(out)
    }
}

/// Which rows of a chunk to decode: all `n`, or the listed ones (ascending,
/// distinct, each below `n`; the caller guarantees it).
#[derive(Clone, Copy, Debug)]
pub enum Sel<'s> {
    All(usize),
    Rows(usize, &'s [u32]),
}

impl<'s> Sel<'s> {
    /// Rows in the chunk.
    pub fn n(&self) -> usize {
        match self {
            Sel::All(n) | Sel::Rows(n, _) => *n,
        }
    }

    /// Rows decoded.
    pub fn len(&self) -> usize {
        match self {
            Sel::All(n) => *n,
            Sel::Rows(_, r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position of each decoded row.
    fn positions(self) -> impl Iterator<Item = usize> + 's {
        let (n, rows) = match self {
            Sel::All(n) => (n, None),
            Sel::Rows(_, r) => (0, Some(r)),
        };
        (0..n).chain(rows.into_iter().flatten().map(|r| *r as usize))
    }
}

/// The child elements of the decoded rows of a list or map.
enum Child {
    All(usize),
    Rows(usize, Vec<u32>),
}

impl Child {
    fn as_sel(&self) -> Sel<'_> {
        match self {
            Child::All(n) => Sel::All(*n),
            Child::Rows(n, p) => Sel::Rows(*n, p),
        }
    }
}

#[inline]
fn bit(bits: &[u8], i: usize) -> bool {
    (bits[i / 8] >> (i % 8)) & 1 == 1
}

/// Adds `width` byte planes of `out.len()` bytes each into `out`.
fn gather(out: &mut [u64], planes: &[u8], width: usize) {
    let n = out.len();
    for b in 0..width {
        let plane = &planes[b * n..(b + 1) * n];
        for (k, x) in out.iter_mut().zip(plane) {
            *k |= (*x as u64) << (8 * b);
        }
    }
}

/// Random batches over every type, shared by these tests and the store's.
#[cfg(test)]
pub(crate) mod testgen {
    use crate::data::{Address, Batch, BatchBuilder, Field, Schema, Subnet, Type, Value};

    /// xorshift64*: deterministic, no dependency.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        pub fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    pub fn gen_type(r: &mut Rng, depth: u32) -> Type {
        let leaves = 14;
        let k = if depth == 0 {
            r.below(leaves)
        } else {
            r.below(leaves + 4)
        };
        match k {
            0 => Type::Bool,
            1 => Type::Int,
            2 => Type::Count,
            3 => Type::Real,
            4 => Type::Duration,
            5 => Type::Time,
            6 => Type::String,
            7 => Type::Pattern,
            8 => Type::Address,
            9 => Type::Subnet,
            10 => Type::Enum(vec!["a".into(), "b".into()]),
            11 => Type::Blob,
            12 => Type::port(),
            13 => Type::timestamp(),
            14 => Type::List(Box::new(gen_type(r, depth - 1))),
            15 => Type::set(gen_type(r, depth - 1)),
            16 => Type::Map(
                Box::new(gen_type(r, depth - 1)),
                Box::new(gen_type(r, depth - 1)),
            ),
            _ => Type::Record(
                (0..1 + r.below(3))
                    .map(|i| Field::new(format!("f{i}"), gen_type(r, depth - 1)))
                    .collect(),
            ),
        }
    }

    /// How a column's values are drawn: each stresses another encoding.
    #[derive(Clone, Copy)]
    pub enum Shape {
        Random,
        Sorted,
        FewDistinct,
        Constant,
        Extreme,
    }

    pub fn gen_value(r: &mut Rng, ty: &Type, shape: Shape, row: u64, nulls: u64) -> Value {
        if r.chance(nulls) {
            return Value::Null;
        }
        let pick = |r: &mut Rng| -> u64 {
            match shape {
                Shape::Random => r.next() >> r.below(64),
                Shape::Sorted => 1_000_000 + row * 1000 + r.below(3) * 1000,
                Shape::FewDistinct => r.below(5) * 7919,
                Shape::Constant => 42,
                Shape::Extreme => [0, 1, u64::MAX, u64::MAX / 2, 1 << 63][r.below(5) as usize],
            }
        };
        match ty.base() {
            Type::Bool => Value::Bool(r.chance(50)),
            Type::Int => Value::Int(pick(r) as i64),
            Type::Count => Value::Count(pick(r)),
            Type::Real => Value::Real(match r.below(6) {
                0 => f64::NAN,
                1 => -0.0,
                2 => f64::INFINITY,
                _ => f64::from_bits(pick(r)),
            }),
            Type::Duration => Value::Duration(pick(r) as i64),
            Type::Time => Value::Time(pick(r) as i64),
            Type::String | Type::Pattern | Type::Enum(_) => {
                let alphabet = ["a", "Z", "0", "é", "日本", "🦀", " ", "\t"];
                let len = match shape {
                    Shape::Constant => 3,
                    _ => r.below(12),
                };
                let seed = pick(r);
                let s: String = (0..len)
                    .map(|i| alphabet[((seed >> (i % 60)) as usize + i as usize) % alphabet.len()])
                    .collect();
                match ty.base() {
                    Type::Pattern => Value::Pattern(s),
                    Type::Enum(_) => Value::Enum(s),
                    _ => Value::String(s),
                }
            }
            Type::Blob => {
                let seed = pick(r);
                Value::Blob(
                    (0..r.below(10))
                        .map(|i| (seed >> (i * 3)) as u8 ^ 0xc3)
                        .collect(),
                )
            }
            Type::Address => {
                let seed = pick(r);
                Value::Address(gen_addr(r, seed))
            }
            Type::Subnet => {
                let seed = pick(r);
                let a = gen_addr(r, seed);
                Value::Subnet(Subnet::new(a, r.below(129) as u8))
            }
            Type::List(t) => Value::List(
                (0..r.below(4))
                    .map(|i| gen_value(r, t, shape, row * 4 + i, nulls))
                    .collect(),
            ),
            Type::Map(k, v) => Value::Map(
                (0..r.below(4))
                    .map(|i| {
                        (
                            gen_value(r, k, shape, row * 4 + i, nulls),
                            gen_value(r, v, shape, row * 4 + i, nulls),
                        )
                    })
                    .collect(),
            ),
            Type::Record(fs) => Value::Record(
                fs.iter()
                    .map(|f| (f.name.clone(), gen_value(r, &f.ty, shape, row, nulls)))
                    .collect(),
            ),
            Type::Alias(_, _) => unreachable!("base() strips aliases"),
        }
    }

    fn gen_addr(r: &mut Rng, seed: u64) -> Address {
        let mut a = [0u8; 16];
        if r.chance(70) {
            a[10] = 0xff;
            a[11] = 0xff;
            a[12..].copy_from_slice(&(seed as u32).to_be_bytes());
        } else {
            a[..8].copy_from_slice(&seed.to_be_bytes());
            a[8..].copy_from_slice(&seed.rotate_left(17).to_le_bytes());
        }
        Address(a)
    }

    /// A batch of `rows` rows over `fields` random columns of random types.
    pub fn gen_batch(r: &mut Rng, fields: usize, rows: u64) -> Batch {
        let fields: Vec<Field> = (0..fields)
            .map(|i| Field::new(format!("c{i}"), gen_type(r, 2)))
            .collect();
        let schema = Schema::new("test.random", fields);
        gen_rows(r, &schema, rows)
    }

    pub fn gen_rows(r: &mut Rng, schema: &Schema, rows: u64) -> Batch {
        let shapes: Vec<(Shape, u64)> = schema
            .fields
            .iter()
            .map(|_| {
                let shape = [
                    Shape::Random,
                    Shape::Sorted,
                    Shape::FewDistinct,
                    Shape::Constant,
                    Shape::Extreme,
                ][r.below(5) as usize];
                (shape, [0, 0, 10, 50, 100][r.below(5) as usize])
            })
            .collect();
        let mut b = BatchBuilder::new(schema.clone());
        for row in 0..rows {
            for (i, f) in schema.fields.iter().enumerate() {
                let (shape, nulls) = shapes[i];
                let v = gen_value(r, &f.ty, shape, row, nulls);
                b.column(i).push_value(&v);
            }
            b.finish_row();
        }
        b.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::testgen::*;
    use super::*;
    use crate::data::{Batch, Schema};

    fn encode(col: &Column, range: Range<usize>, knobs: Knobs) -> (Vec<u8>, u64) {
        let mut e = Encoder::new(knobs);
        e.column(col, range);
        (e.out, e.mem)
    }

    /// Cells as text: `Debug` tells NaN, -0.0 and every other value apart.
    fn cells(col: &Column, ty: &Type, rows: Range<usize>) -> Vec<String> {
        rows.map(|r| format!("{:?}", col.value(r, ty))).collect()
    }

    fn check_roundtrip(batch: &Batch, range: Range<usize>, knobs: Knobs) {
        for (c, f) in batch.columns.iter().zip(&batch.schema.fields) {
            let (bytes, mem) = encode(c, range.clone(), knobs);
            let mut d = Decoder::new(&bytes, mem).unwrap();
            let got = d
                .column(&f.ty, range.len())
                .unwrap_or_else(|e| panic!("{} ({}): {e}", f.name, f.ty));
            assert!(d.finished(), "{}: trailing bytes", f.name);
            // The claim is exact, so a decoder that allocates more is caught.
            assert_eq!(
                d.unspent(),
                0,
                "{} ({}): claim differs from use",
                f.name,
                f.ty
            );
            got.validate(&f.ty, range.len()).unwrap();
            assert_eq!(
                cells(&got, &f.ty, 0..range.len()),
                cells(c, &f.ty, range.clone()),
                "{} ({}) rows {range:?}",
                f.name,
                f.ty
            );
            // Decoding some rows gives exactly those, inside the same claim.
            for rows in picks(range.len()) {
                let mut d = Decoder::new(&bytes, mem).unwrap();
                let got = d
                    .column_sel(&f.ty, Sel::Rows(range.len(), &rows))
                    .unwrap_or_else(|e| panic!("{} ({}) rows {rows:?}: {e}", f.name, f.ty));
                got.validate(&f.ty, rows.len()).unwrap();
                let want: Vec<String> = rows
                    .iter()
                    .map(|r| format!("{:?}", c.value(range.start + *r as usize, &f.ty)))
                    .collect();
                assert_eq!(
                    cells(&got, &f.ty, 0..rows.len()),
                    want,
                    "{} ({})",
                    f.name,
                    f.ty
                );
            }
        }
    }

    /// Row selections of a chunk of `n` rows: none, first, last, every third, a run.
    fn picks(n: usize) -> Vec<Vec<u32>> {
        let n = n as u32;
        let mut v = vec![vec![]];
        if n > 0 {
            v.push(vec![0]);
            v.push(vec![n - 1]);
            v.push((0..n).step_by(3).collect());
            v.push((n / 3..n / 2 + 1).collect());
        }
        v
    }

    #[test]
    fn every_type_round_trips_over_random_batches_and_ranges() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let rows = [0, 1, 2, 3, 64, 65, 200, 1000][round % 8];
            let fields = 1 + r.below(5) as usize;
            let b = gen_batch(&mut r, fields, rows);
            let knobs = Knobs {
                str_dict: r.chance(80),
                addr_dict: r.chance(80),
                delta: r.chance(80),
                dict_by_frequency: r.chance(50),
            };
            check_roundtrip(&b, 0..rows as usize, knobs);
            if rows > 2 {
                let a = r.below(rows) as usize;
                let z = a + 1 + r.below(rows - a as u64) as usize;
                check_roundtrip(&b, a..z.min(rows as usize), knobs);
            }
        }
    }

    /// A fetch appends the rows it decodes from several groups into one batch:
    /// pieces of a random batch (decoded selections, and rebuilt ones whose
    /// columns may be all valid) appended in order are the batch again.
    #[test]
    fn appended_pieces_of_a_batch_are_the_batch() {
        let mut r = Rng(0x5eed_0fa9_9e4d);
        for round in 0..200 {
            let rows = [1, 2, 3, 64, 65, 200][round % 6];
            let fields = 1 + r.below(5) as usize;
            let b = gen_batch(&mut r, fields, rows);
            let mut at = 0usize;
            let mut whole: Option<Batch> = None;
            while at < rows as usize {
                let n = 1 + r.below(rows.min(70)) as usize;
                let piece_rows: Vec<u32> =
                    (at as u32..(at + n).min(rows as usize) as u32).collect();
                at += piece_rows.len();
                let piece = if r.chance(50) {
                    b.select(&piece_rows)
                } else {
                    let sel = Sel::Rows(rows as usize, &piece_rows);
                    let columns = b
                        .columns
                        .iter()
                        .zip(&b.schema.fields)
                        .map(|(c, f)| {
                            let (bytes, mem) = encode(c, 0..rows as usize, Knobs::default());
                            Decoder::new(&bytes, mem)
                                .unwrap()
                                .column_sel(&f.ty, sel)
                                .unwrap()
                        })
                        .collect();
                    Batch {
                        schema: b.schema.clone(),
                        rows: piece_rows.len() as u32,
                        columns,
                    }
                };
                match &mut whole {
                    None => whole = Some(piece),
                    Some(w) => w.append(piece).expect("same schema"),
                }
            }
            let whole = whole.unwrap();
            assert_eq!(whole.rows, b.rows);
            whole.validate().unwrap();
            for (i, f) in b.schema.fields.iter().enumerate() {
                assert_eq!(
                    cells(&whole.columns[i], &f.ty, 0..rows as usize),
                    cells(&b.columns[i], &f.ty, 0..rows as usize),
                    "{} ({})",
                    f.name,
                    f.ty
                );
            }
        }
        // Another schema is handed back untouched.
        let mut a = gen_batch(&mut r, 2, 3);
        let other = Batch {
            schema: Schema::new("other", a.schema.fields.clone()),
            ..a.clone()
        };
        let before = a.clone();
        assert!(a.append(other).is_err());
        assert!(a == before);
    }

    #[test]
    fn divisor_agrees_with_division() {
        let mut r = Rng(11);
        let mut divisors: Vec<u64> = (1..=130).collect();
        divisors.extend([
            1_000,
            1_000_000,
            1_000_000_000,
            3 << 40,
            u64::MAX,
            u64::MAX - 1,
            1 << 63,
        ]);
        divisors.extend(
            (0..50)
                .map(|_| r.next() >> (r.next() % 64))
                .filter(|&m| m > 0),
        );
        for m in divisors {
            let div = Divisor::new(m);
            let mut xs = vec![0, 1, m - 1, m, u64::MAX, u64::MAX - m + 1];
            xs.extend((0..200).map(|_| r.next() >> (r.next() % 64)));
            // Multiples, including the largest.
            xs.extend((0..50).map(|_| (r.next() % (u64::MAX / m)) * m));
            xs.push(u64::MAX / m * m);
            for x in xs {
                assert_eq!(div.divides(x), x % m == 0, "{x} by {m}");
                if x % m == 0 {
                    assert_eq!(div.exact(x), x / m, "{x} by {m}");
                }
            }
        }
    }

    #[test]
    fn integer_blocks_pick_narrow_encodings_and_keep_extremes() {
        let cases: Vec<Vec<u64>> = vec![
            vec![],
            vec![7],
            vec![u64::MAX, 0, u64::MAX, 1],
            (0..1000)
                .map(|i| 1_767_225_600_000_000_000 + i * 5_000_000)
                .collect(),
            (0..1000).map(|i| 1000 - i).collect(),
            vec![5; 100],
            (0..100).map(|i| (i % 3) * 1000).collect(),
        ];
        for v in cases {
            let mut e = Encoder::new(Knobs::default());
            e.ints(&v);
            let mut d = Decoder::new(&e.out, e.mem).unwrap();
            assert_eq!(d.ints(Sel::All(v.len())).unwrap(), v);
            assert!(d.finished());
        }
        // A regular time series: the differences, divided by their common
        // divisor, fit one byte each.
        let ts: Vec<u64> = (0..1000)
            .map(|i| 1_767_225_600_000_000_000 + i * 5_000_000)
            .collect();
        let mut e = Encoder::new(Knobs::default());
        e.ints(&ts);
        assert!(e.out.len() < 30, "{} bytes", e.out.len());
        let mut e = Encoder::new(Knobs::default());
        e.ints(&[9; 4096]);
        assert!(e.out.len() < 8, "{} bytes for a constant", e.out.len());
    }

    #[test]
    fn hostile_chunks_are_errors_not_panics() {
        let mut r = Rng(7);
        for _ in 0..40 {
            let rows = 1 + r.below(80);
            let b = gen_batch(&mut r, 3, rows);
            for (c, f) in b.columns.iter().zip(&b.schema.fields) {
                let (bytes, mem) = encode(c, 0..b.rows as usize, Knobs::default());
                let n = b.rows as usize;
                // Every truncation and many single-byte corruptions.
                for cut in 0..bytes.len() {
                    if let Ok(mut d) = Decoder::new(&bytes[..cut], mem) {
                        if let Ok(col) = d.column(&f.ty, n) {
                            let _ = col.validate(&f.ty, n);
                        }
                    }
                }
                for _ in 0..200 {
                    let mut bad = bytes.clone();
                    if bad.is_empty() {
                        break;
                    }
                    let i = r.below(bad.len() as u64) as usize;
                    bad[i] = r.next() as u8;
                    let mut d = Decoder::new(&bad, mem).unwrap();
                    if let Ok(col) = d.column(&f.ty, n) {
                        let _ = col.validate(&f.ty, n);
                    }
                    for rows in picks(n) {
                        let mut d = Decoder::new(&bad, mem).unwrap();
                        if let Ok(col) = d.column_sel(&f.ty, Sel::Rows(n, &rows)) {
                            let _ = col.validate(&f.ty, rows.len());
                        }
                    }
                }
                // Claims below the truth are caught before the allocation.
                if mem > 0 {
                    let mut d = Decoder::new(&bytes, mem - 1).unwrap();
                    assert!(d.column(&f.ty, n).is_err(), "{}", f.ty);
                }
                // A different type is refused, not misread.
                let other = if matches!(f.ty.base(), Type::Count) {
                    Type::Real
                } else {
                    Type::Count
                };
                assert!(Decoder::new(&bytes, mem)
                    .unwrap()
                    .column(&other, n)
                    .is_err());
            }
        }
        assert!(Decoder::new(&[], MAX_CHUNK_MEM + 1).is_err());
        // Width-0 blocks cost no bytes, so huge counts are stopped by the claim.
        let mut e = Encoder::new(Knobs::default());
        e.ints(&[0; 16]);
        let mut d = Decoder::new(&e.out, MAX_CHUNK_MEM).unwrap();
        assert!(d.ints(Sel::All(usize::MAX / 2)).is_err());
        // A list whose lengths claim 2^32 elements.
        let mut e = Encoder::new(Knobs::default());
        e.out.push(0); // all valid
        e.out.push(T_LIST);
        e.ints(&[u32::MAX as u64, u32::MAX as u64]);
        let mut d = Decoder::new(&e.out, MAX_CHUNK_MEM).unwrap();
        let list = Type::List(Box::new(Type::Count));
        assert!(d.column(&list, 2).is_err());
    }
}
