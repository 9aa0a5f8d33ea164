//! Compact encodings of posting lists (strictly increasing row or granule numbers)
//! and the varints around them. The encoder picks, per list, the smallest of:
//! one value, a varint gap list, runs, a bitmap, or Elias-Fano over the list's
//! own span or over the whole universe (no first value or span to store). Decoders treat
//! their input as hostile: every length is checked against the bytes present and
//! every value against the universe, so corrupt input is an error, not a panic or
//! an allocation the file asked for.

use roaring::RoaringBitmap;

/// Why encoded bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Encoding tags of lists of two or more values.
const LIST: u8 = 0;
const RUNS: u8 = 1;
const BITMAP: u8 = 2;
const EF: u8 = 3;
const EF_FULL: u8 = 4;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_varint128(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// A cursor over untrusted bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// The bytes not yet read.
    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos.min(self.bytes.len())..]
    }

    pub fn varint(&mut self) -> Result<u64, Malformed> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .bytes
                .get(self.pos)
                .ok_or(Malformed("varint past the end"))?;
            self.pos += 1;
            let bits = (b & 0x7f) as u64;
            if shift == 63 && bits > 1 {
                return Err(Malformed("varint overflows 64 bits"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed("varint longer than 10 bytes"))
    }

    pub fn varint128(&mut self) -> Result<u128, Malformed> {
        let mut v = 0u128;
        for shift in (0..128).step_by(7) {
            let b = *self
                .bytes
                .get(self.pos)
                .ok_or(Malformed("varint past the end"))?;
            self.pos += 1;
            let bits = (b & 0x7f) as u128;
            if shift == 126 && bits > 3 {
                return Err(Malformed("varint overflows 128 bits"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed("varint longer than 19 bytes"))
    }

    /// A varint that must fit in u32.
    pub fn varint32(&mut self) -> Result<u32, Malformed> {
        u32::try_from(self.varint()?).map_err(|_| Malformed("value exceeds 32 bits"))
    }

    pub fn byte(&mut self) -> Result<u8, Malformed> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or(Malformed("byte past the end"))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(Malformed("field past the end"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

/// Bits of the Elias-Fano low part for `m` values below `universe`.
fn ef_low_bits(m: u64, universe: u64) -> u32 {
    if universe <= m {
        0
    } else {
        63 - (universe / m).leading_zeros()
    }
}

/// Bytes of an Elias-Fano encoding of `m` values below `universe`.
fn ef_bytes(m: u64, universe: u64) -> u64 {
    let l = ef_low_bits(m, universe) as u64;
    (m * l + m + (universe >> l) + 1).div_ceil(8)
}

/// Appends the Elias-Fano bits of `vals`, all in `base..base + universe`.
///
/// The bits are set in place in zeroed bytes of the final length: writing the
/// high part's unary zeros bit group by bit group, a byte push at a time, was
/// most of this function's cost when sealing an index (4% of an import).
fn put_ef(out: &mut Vec<u8>, vals: &[u32], base: u32, universe: u64) {
    let m = vals.len() as u64;
    let l = ef_low_bits(m, universe);
    let at = out.len();
    out.resize(at + ef_bytes(m, universe) as usize, 0);
    let bits = &mut out[at..];
    if l > 0 {
        let mask = (1u64 << l) - 1;
        for (i, &v) in vals.iter().enumerate() {
            let p = i as u64 * l as u64;
            // At most 32 + 7 bits: five bytes, all inside the low part.
            let mut x = ((v - base) as u64 & mask) << (p % 8);
            let mut b = (p / 8) as usize;
            while x != 0 {
                bits[b] |= x as u8;
                x >>= 8;
                b += 1;
            }
        }
    }
    // High parts in unary: value i sets bit (high_i + i) of the high part.
    let high = m * l as u64;
    for (i, &v) in vals.iter().enumerate() {
        let p = high + ((v - base) as u64 >> l) + i as u64;
        bits[(p / 8) as usize] |= 1 << (p % 8);
    }
}

/// Reads `m` Elias-Fano coded values below `universe`, adding `base` to each.
fn get_ef(
    r: &mut Reader<'_>,
    m: u64,
    base: u32,
    universe: u64,
    out: &mut RoaringBitmap,
) -> Result<(), Malformed> {
    let l = ef_low_bits(m, universe);
    let bytes = r.take(
        usize::try_from(ef_bytes(m, universe))
            .map_err(|_| Malformed("Elias-Fano list too long"))?,
    )?;
    let mut low = BitReader::new(bytes, 0);
    let high_len = m + (universe >> l) + 1;
    let mut high = BitReader::new(bytes, m * l as u64);
    let mut prev: Option<u64> = None;
    let (mut zeros, mut seen, mut pos) = (0u64, 0u64, 0u64);
    while seen < m {
        if pos >= high_len {
            return Err(Malformed("Elias-Fano high bits end early"));
        }
        let (bit, n) = high.run(high_len - pos);
        pos += n;
        if bit == 0 {
            zeros += n;
            continue;
        }
        for _ in 0..n {
            if seen == m {
                return Err(Malformed(
                    "Elias-Fano list holds more values than its count",
                ));
            }
            let v = (zeros << l) | low.get(l);
            if v >= universe || prev.is_some_and(|p| v <= p) {
                return Err(Malformed("Elias-Fano values out of order or range"));
            }
            out.push(base + v as u32);
            prev = Some(v);
            seen += 1;
        }
    }
    Ok(())
}

/// The runs of consecutive values of a strictly increasing list, as the runs
/// encoding writes them: the gap after the previous run less one (0 for the
/// first run), and the run's length less one.
struct Runs<'a> {
    vals: &'a [u32],
    at: usize,
    prev_end: Option<u32>,
}

impl<'a> Runs<'a> {
    fn new(vals: &'a [u32]) -> Self {
        Runs {
            vals,
            at: 0,
            prev_end: None,
        }
    }
}

impl Iterator for Runs<'_> {
    type Item = (u32, u32);

    #[inline]
    fn next(&mut self) -> Option<(u32, u32)> {
        let start = *self.vals.get(self.at)?;
        let mut end = start;
        self.at += 1;
        while let Some(&v) = self.vals.get(self.at) {
            if v != end + 1 {
                break;
            }
            end = v;
            self.at += 1;
        }
        let gap = self.prev_end.map_or(0, |p| start - p - 2);
        self.prev_end = Some(end);
        Some((gap, end - start))
    }
}

/// Appends the encoding of `vals` (strictly increasing, non-empty, all below
/// `universe`). The count leads, so a reader knows how many values follow.
pub fn encode(out: &mut Vec<u8>, vals: &[u32], universe: u32) {
    debug_assert!(!vals.is_empty());
    debug_assert!(vals.windows(2).all(|w| w[0] < w[1]));
    debug_assert!(*vals.last().unwrap() < universe);
    let m = vals.len() as u64;
    put_varint(out, m);
    let first = vals[0];
    if m == 1 {
        put_varint(out, first as u64);
        return;
    }
    let last = *vals.last().unwrap();
    let span = (last - first) as u64; // offsets from `first` lie in 0..=span
    let head = varint_len(first as u64) as u64;
    let bitmap = head + varint_len(span) as u64 + (span + 1).div_ceil(8);
    let ef = head + varint_len(span) as u64 + ef_bytes(m, span + 1);
    // Elias-Fano over the whole universe needs neither first value nor span.
    let ef_full = ef_bytes(m, universe as u64);
    // The list and the runs encodings are sized exactly only when a bound
    // does not already put them above a cheaper candidate: summing a varint
    // length per value was most of this function's cost on the long lists of
    // columns with few distinct values. A skipped candidate is strictly larger
    // than another, so the choice below is the one the exact sizes make.
    let cheap = bitmap.min(ef).min(ef_full);
    let n_runs = 1 + vals.windows(2).filter(|w| w[1] != w[0] + 1).count() as u64;
    let runs_len = if head + varint_len(n_runs) as u64 + 2 * n_runs > cheap {
        u64::MAX
    } else {
        // Sizes without collecting the runs: sealing a partition encodes a
        // list per key, most of them short, and a vector of runs per list was
        // a visible part of an import. `Runs` is the one definition of the
        // runs, sized here and written below.
        let body: u64 = Runs::new(vals)
            .map(|(gap, len)| (varint_len(gap as u64) + varint_len(len as u64)) as u64)
            .sum();
        head + varint_len(n_runs) as u64 + body
    };
    let list = if head + (m - 1) > cheap.min(runs_len) {
        u64::MAX
    } else {
        head + vals
            .windows(2)
            .map(|w| varint_len((w[1] - w[0] - 1) as u64) as u64)
            .sum::<u64>()
    };
    let best = list.min(runs_len).min(bitmap).min(ef).min(ef_full);
    if best == ef_full {
        out.push(EF_FULL);
        put_ef(out, vals, 0, universe as u64);
    } else if best == runs_len {
        out.push(RUNS);
        put_varint(out, first as u64);
        put_varint(out, n_runs);
        for (gap, len) in Runs::new(vals) {
            put_varint(out, gap as u64);
            put_varint(out, len as u64);
        }
    } else if best == list {
        out.push(LIST);
        put_varint(out, first as u64);
        for w in vals.windows(2) {
            put_varint(out, (w[1] - w[0] - 1) as u64);
        }
    } else if best == bitmap {
        out.push(BITMAP);
        put_varint(out, first as u64);
        put_varint(out, span);
        let start = out.len();
        out.resize(start + (span + 1).div_ceil(8) as usize, 0);
        for &v in vals {
            let o = (v - first) as usize;
            out[start + o / 8] |= 1 << (o % 8);
        }
    } else {
        out.push(EF);
        put_varint(out, first as u64);
        put_varint(out, span);
        put_ef(out, vals, first, span + 1);
    }
}

/// Decodes one list written by `encode`, checking every value is below `universe`.
pub fn decode(r: &mut Reader<'_>, universe: u32) -> Result<RoaringBitmap, Malformed> {
    let mut out = RoaringBitmap::new();
    let m = r.varint()?;
    if m == 0 || m > universe as u64 {
        return Err(Malformed("posting count out of range"));
    }
    let first_value = |r: &mut Reader<'_>| -> Result<u32, Malformed> {
        let first = r.varint32()?;
        if first >= universe {
            return Err(Malformed("posting value out of range"));
        }
        Ok(first)
    };
    if m == 1 {
        out.push(first_value(r)?);
        return Ok(out);
    }
    match r.byte()? {
        LIST => {
            let first = first_value(r)?;
            let mut v = first as u64;
            out.push(first);
            for _ in 1..m {
                v = v
                    .checked_add(r.varint()? + 1)
                    .filter(|&x| x < universe as u64)
                    .ok_or(Malformed("posting value out of range"))?;
                out.push(v as u32);
            }
        }
        RUNS => {
            let first = first_value(r)?;
            let n = r.varint()?;
            if n == 0 || n > m {
                return Err(Malformed("run count out of range"));
            }
            let mut seen = 0u64;
            let mut next = first as u64; // one past the previous run
            for i in 0..n {
                let gap = r.varint()?;
                let len = r.varint()? + 1;
                let s = if i == 0 {
                    if gap != 0 {
                        return Err(Malformed("first run does not start at the first value"));
                    }
                    next
                } else {
                    next.checked_add(gap + 1)
                        .ok_or(Malformed("run overflows"))?
                };
                let e = s.checked_add(len).ok_or(Malformed("run overflows"))?;
                if e > universe as u64 {
                    return Err(Malformed("posting value out of range"));
                }
                seen += len;
                if seen > m {
                    return Err(Malformed("runs hold more values than the count"));
                }
                out.insert_range(s as u32..e as u32);
                next = e;
            }
            if seen != m {
                return Err(Malformed("runs hold fewer values than the count"));
            }
        }
        BITMAP => {
            let first = first_value(r)?;
            let span = r.varint()?;
            if span >= (universe - first) as u64 {
                return Err(Malformed("posting bitmap out of range"));
            }
            let bytes = r.take((span + 1).div_ceil(8) as usize)?;
            let ones: u64 = bytes.iter().map(|b| b.count_ones() as u64).sum();
            let last_bits = ((span + 1) % 8) as u32;
            if last_bits != 0 && bytes[bytes.len() - 1] >> last_bits != 0 {
                return Err(Malformed("posting bitmap has bits past its span"));
            }
            if ones != m || bytes[0] & 1 == 0 {
                return Err(Malformed("posting bitmap disagrees with its count"));
            }
            if first as u64 + bytes.len() as u64 * 8 > 1 << 32 {
                return Err(Malformed("posting bitmap out of range"));
            }
            out = RoaringBitmap::from_lsb0_bytes(first, bytes);
        }
        EF => {
            let first = first_value(r)?;
            let span = r.varint()?;
            if span >= (universe - first) as u64 || span + 1 < m {
                return Err(Malformed("Elias-Fano list out of range"));
            }
            get_ef(r, m, first, span + 1, &mut out)?;
        }
        EF_FULL => get_ef(r, m, 0, universe as u64, &mut out)?,
        _ => return Err(Malformed("unknown posting encoding")),
    }
    Ok(out)
}

/// Skips one list written by `encode` for a posting of `universe`.
pub fn skip(r: &mut Reader<'_>, universe: u32) -> Result<(), Malformed> {
    let m = r.varint()?;
    if m == 0 || m > universe as u64 {
        return Err(Malformed("posting count out of range"));
    }
    if m == 1 {
        r.varint()?;
        return Ok(());
    }
    let ef = |r: &mut Reader<'_>, u: u64| -> Result<(), Malformed> {
        let n =
            usize::try_from(ef_bytes(m, u)).map_err(|_| Malformed("Elias-Fano list too long"))?;
        r.take(n).map(|_| ())
    };
    match r.byte()? {
        LIST => {
            for _ in 0..m {
                r.varint()?;
            }
        }
        RUNS => {
            r.varint()?;
            let n = r.varint()?;
            if n > m {
                return Err(Malformed("run count out of range"));
            }
            for _ in 0..2 * n {
                r.varint()?;
            }
        }
        BITMAP => {
            r.varint()?;
            let span = r.varint()?;
            let n = usize::try_from((span + 1).div_ceil(8))
                .map_err(|_| Malformed("posting bitmap out of range"))?;
            r.take(n)?;
        }
        EF => {
            r.varint()?;
            let span = r.varint()?;
            if span.checked_add(1).is_none_or(|u| u < m) {
                return Err(Malformed("Elias-Fano list out of range"));
            }
            ef(r, span + 1)?;
        }
        EF_FULL => ef(r, universe as u64)?,
        _ => return Err(Malformed("unknown posting encoding")),
    }
    Ok(())
}

/// Reads bits least significant first; reads past the end yield zeros (callers
/// size their input so a valid list never reads past it).
struct BitReader<'a> {
    bytes: &'a [u8],
    pos: u64,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8], pos: u64) -> Self {
        BitReader { bytes, pos }
    }

    fn bit(&self, p: u64) -> u64 {
        self.bytes
            .get((p / 8) as usize)
            .map_or(0, |b| ((b >> (p % 8)) & 1) as u64)
    }

    /// Next `n` (< 64) bits as a number.
    fn get(&mut self, n: u32) -> u64 {
        let mut v = 0;
        let mut i = 0;
        while i < n {
            let byte = (self.pos / 8) as usize;
            let off = (self.pos % 8) as u32;
            let take = (8 - off).min(n - i);
            let b = self.bytes.get(byte).copied().unwrap_or(0) as u64;
            v |= ((b >> off) & ((1 << take) - 1)) << i;
            i += take;
            self.pos += take as u64;
        }
        v
    }

    /// The next bit and how many equal bits follow it (itself included), at most `max`.
    fn run(&mut self, max: u64) -> (u64, u64) {
        let bit = self.bit(self.pos);
        let mut n = 0;
        while n < max {
            let p = self.pos + n;
            let byte = (p / 8) as usize;
            let off = (p % 8) as u32;
            let b = self.bytes.get(byte).copied().unwrap_or(0);
            // Bits of this byte from `off`, inverted for a run of ones.
            let rest = if bit == 1 { !b } else { b } >> off;
            let same = if rest == 0 {
                8 - off
            } else {
                rest.trailing_zeros().min(8 - off)
            } as u64;
            n += same;
            if same < (8 - off) as u64 {
                break;
            }
        }
        let n = n.min(max);
        self.pos += n;
        (bit, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of pseudo-random numbers from `seed` (an LCG;
    /// its high bits are the random ones).
    fn lcg(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x
        }
    }

    fn roundtrip(vals: &[u32], universe: u32) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(&mut buf, vals, universe);
        let mut r = Reader::new(&buf);
        let bm = decode(&mut r, universe).unwrap();
        assert!(r.is_empty(), "decoder left bytes behind");
        assert_eq!(bm.iter().collect::<Vec<_>>(), vals);
        let mut r = Reader::new(&buf);
        skip(&mut r, universe).unwrap();
        assert!(r.is_empty(), "skip disagrees with decode");
        buf
    }

    fn tag(buf: &[u8]) -> u8 {
        let mut r = Reader::new(buf);
        r.varint().unwrap();
        r.byte().unwrap()
    }

    #[test]
    fn every_encoding_roundtrips() {
        let single = roundtrip(&[77], 100);
        assert_eq!(single.len(), 2);
        let sparse: Vec<u32> = (0..50).map(|i| i * 20_011 + 3).collect();
        assert_eq!(tag(&roundtrip(&sparse, 1 << 20)), EF_FULL);
        let clustered: Vec<u32> = (0..50).map(|i| 500_000 + i * 211).collect();
        assert_eq!(tag(&roundtrip(&clustered, 1 << 20)), EF);
        let few = [5, 9, 200];
        assert_eq!(tag(&roundtrip(&few, 1 << 20)), LIST);
        let runs: Vec<u32> = (1000..5000).chain(9000..9100).collect();
        assert_eq!(tag(&roundtrip(&runs, 10_000)), RUNS);
        let dense: Vec<u32> = (0..5000).filter(|i| i % 3 != 0 && i % 7 != 0).collect();
        assert_eq!(tag(&roundtrip(&dense, 5000)), BITMAP);
        // Edge values: the largest row, and Elias-Fano with a zero-bit low part.
        roundtrip(&[0, u32::MAX - 1], u32::MAX);
        roundtrip(&[3, 4], 5);
        let packed: Vec<u32> = (0..64).map(|i| i * 2).collect();
        roundtrip(&packed, 128);
        let mut next = lcg(7);
        for m in [2usize, 3, 10, 100, 1000] {
            let mut v: Vec<u32> = (0..m).map(|_| (next() >> 40) as u32 % 100_000).collect();
            v.sort_unstable();
            v.dedup();
            if v.len() > 1 {
                roundtrip(&v, 100_000);
            }
        }
    }

    /// The Elias-Fano writer `put_ef` replaced, bit group by bit group: the
    /// file form must not change.
    fn put_ef_by_groups(out: &mut Vec<u8>, vals: &[u32], base: u32, universe: u64) {
        let m = vals.len() as u64;
        let l = ef_low_bits(m, universe);
        let mut w = BitWriter::new(out);
        for &v in vals {
            w.put((v - base) as u64 & ((1u64 << l) - 1), l);
        }
        let mut pos = 0u64;
        for (i, &v) in vals.iter().enumerate() {
            let target = ((v - base) as u64 >> l) + i as u64;
            while pos < target {
                let n = (target - pos).min(32) as u32;
                w.put(0, n);
                pos += n as u64;
            }
            w.put(1, 1);
            pos += 1;
        }
        let total = m + (universe >> l) + 1;
        while pos < total {
            let n = (total - pos).min(32) as u32;
            w.put(0, n);
            pos += n as u64;
        }
        w.finish();
    }

    struct BitWriter<'a> {
        out: &'a mut Vec<u8>,
        acc: u64,
        bits: u32,
    }

    impl<'a> BitWriter<'a> {
        fn new(out: &'a mut Vec<u8>) -> Self {
            BitWriter {
                out,
                acc: 0,
                bits: 0,
            }
        }

        /// Appends the low `n` (<= 32) bits of `v`, least significant first.
        fn put(&mut self, v: u64, n: u32) {
            if n == 0 {
                return;
            }
            self.acc |= (v & ((1u64 << n) - 1)) << self.bits;
            self.bits += n;
            while self.bits >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.bits -= 8;
            }
        }

        fn finish(self) {
            if self.bits > 0 {
                self.out.push(self.acc as u8);
            }
        }
    }

    /// Setting bits in place writes the bytes the bit-group writer wrote, for
    /// zero-bit and 32-bit low parts, bases, and lists dense and sparse.
    #[test]
    fn elias_fano_bytes_are_those_of_the_bit_group_writer() {
        let mut next = {
            let mut next = lcg(11);
            move || next() >> 32
        };
        let mut cases: Vec<(Vec<u32>, u32, u64)> = vec![
            (vec![0, u32::MAX - 1], 0, u32::MAX as u64),
            (vec![3, 4], 0, 5),
            ((0..64).map(|i| i * 2).collect(), 0, 128),
            (vec![7], 7, 1),
        ];
        for m in [1usize, 2, 3, 9, 64, 1000, 5000] {
            for universe in [m as u64 + 1, 1000, 1 << 20, u32::MAX as u64] {
                let base = (next() % 1000) as u32;
                let universe = universe.min((u32::MAX - base) as u64);
                let mut v: Vec<u32> = (0..m).map(|_| base + (next() % universe) as u32).collect();
                v.sort_unstable();
                v.dedup();
                cases.push((v, base, universe));
            }
        }
        for (vals, base, universe) in cases {
            let (mut a, mut b) = (vec![0xAB], vec![0xAB]);
            put_ef(&mut a, &vals, base, universe);
            put_ef_by_groups(&mut b, &vals, base, universe);
            assert_eq!(a, b, "{} values from {base} in {universe}", vals.len());
        }
    }

    /// The encoding the exact sizes of all five choose, in `encode`'s order
    /// of precedence: what skipping the sizes a bound rules out must keep.
    fn tag_by_exact_sizes(vals: &[u32], universe: u32) -> u8 {
        let m = vals.len() as u64;
        let (first, last) = (vals[0], *vals.last().unwrap());
        let span = (last - first) as u64;
        let head = varint_len(first as u64) as u64;
        let list = head
            + vals
                .windows(2)
                .map(|w| varint_len((w[1] - w[0] - 1) as u64) as u64)
                .sum::<u64>();
        let runs: Vec<(u32, u32)> = Runs::new(vals).collect();
        let runs = head
            + varint_len(runs.len() as u64) as u64
            + runs
                .iter()
                .map(|&(g, l)| (varint_len(g as u64) + varint_len(l as u64)) as u64)
                .sum::<u64>();
        let bitmap = head + varint_len(span) as u64 + (span + 1).div_ceil(8);
        let ef = head + varint_len(span) as u64 + ef_bytes(m, span + 1);
        let ef_full = ef_bytes(m, universe as u64);
        let best = list.min(runs).min(bitmap).min(ef).min(ef_full);
        [
            (ef_full, EF_FULL),
            (runs, RUNS),
            (list, LIST),
            (bitmap, BITMAP),
            (ef, EF),
        ]
        .into_iter()
        .find(|&(size, _)| size == best)
        .unwrap()
        .1
    }

    /// Lists of every density and run structure get the encoding their exact
    /// sizes choose.
    #[test]
    fn bounds_choose_what_exact_sizes_choose() {
        let mut next = {
            let mut next = lcg(5);
            move || next() >> 33
        };
        let mut cases: Vec<(Vec<u32>, u32)> = vec![
            ((0..50).map(|i| i * 20_011 + 3).collect(), 1 << 20),
            ((0..50).map(|i| 500_000 + i * 211).collect(), 1 << 20),
            (vec![5, 9, 200], 1 << 20),
            ((1000..5000).chain(9000..9100).collect(), 10_000),
            (
                (0..5000).filter(|i| i % 3 != 0 && i % 7 != 0).collect(),
                5000,
            ),
            ((0..1 << 20).collect(), 1 << 20),
        ];
        for universe in [16u32, 300, 5000, 1 << 20] {
            for permille in [1u64, 20, 200, 500, 900, 999, 1000] {
                for run in [1u64, 3, 50] {
                    let mut vals = Vec::new();
                    let mut v = 0u64;
                    while v < universe as u64 {
                        if next() % 1000 < permille {
                            let end = (v + 1 + next() % run).min(universe as u64);
                            vals.extend(v as u32..end as u32);
                            v = end;
                        }
                        v += 1;
                    }
                    if vals.len() >= 2 {
                        cases.push((vals, universe));
                    }
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (vals, universe) in cases {
            let mut buf = Vec::new();
            encode(&mut buf, &vals, universe);
            let want = tag_by_exact_sizes(&vals, universe);
            assert_eq!(tag(&buf), want, "{} values in {universe}", vals.len());
            seen.insert(want);
        }
        assert_eq!(seen.len(), 5, "every encoding chosen somewhere: {seen:?}");
    }

    #[test]
    fn values_past_the_universe_are_rejected() {
        let mut buf = Vec::new();
        encode(&mut buf, &[10, 20, 30], 100);
        assert!(decode(&mut Reader::new(&buf), 25).is_err());
    }

    #[test]
    fn flipped_and_truncated_bytes_never_panic() {
        let lists: Vec<Vec<u32>> = vec![
            (0..50).map(|i| i * 20_011 + 3).collect(),
            (0..50).map(|i| 500_000 + i * 211).collect(),
            vec![5, 9, 200],
            (1000..5000).chain(9000..9100).collect(),
            (0..5000).filter(|i| i % 3 != 0).collect(),
        ];
        for vals in lists {
            let mut buf = Vec::new();
            encode(&mut buf, &vals, 1 << 21);
            for cut in 0..buf.len() {
                assert!(decode(&mut Reader::new(&buf[..cut]), 1 << 21).is_err());
            }
            for i in 0..buf.len().min(64) {
                for bit in 0..8 {
                    let mut b = buf.clone();
                    b[i] ^= 1 << bit;
                    // Either an error or some list inside the universe.
                    if let Ok(bm) = decode(&mut Reader::new(&b), 1 << 21) {
                        assert!(bm.max().unwrap() < 1 << 21);
                    }
                    let _ = skip(&mut Reader::new(&b), 1 << 21);
                }
            }
        }
    }
}
