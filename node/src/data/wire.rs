//! The wire form of a [`Batch`]: the same columns in rkyv, with integers and
//! lengths narrowed. A relayed import moves every byte of it through three
//! processes (a client's send, the relay's read and write, the importer's read),
//! and those per-byte costs were most of what a relay adds to an import. A Zeek
//! conn import sends 48% fewer bytes narrowed, and the relay spends 40% less
//! CPU (see BENCHMARKS.md, "Narrow wire batches"). The narrowing is exact:
//! [`decode`] rebuilds the very columns
//! [`encode`] was given, which [`Batch::validate`] then checks like any other
//! untrusted batch.
//!
//! What is narrowed:
//! - integers (`int`, `count`, `time`, `duration`) to 1, 2, 4 or 8 bytes each,
//!   as offsets from the column's smallest value, in microseconds where all
//!   are whole ones (see [`Packed`]);
//! - string, blob, list and map offsets to element lengths, narrowed likewise;
//! - address columns holding only IPv4 addresses (and zeroed nulls) to 4 bytes
//!   an address; columns mostly of them to 4 bytes a row, with the few others
//!   sent whole beside them (a Zeek conn log's responders, 1% of them IPv6 in
//!   the benchmarks' logs, kept the whole column at 16 bytes a row: 13% of a
//!   conn import's wire bytes).
//!
//! Nothing decodes to more than 8 times its wire bytes (a 1-byte integer
//! becomes 8 bytes, a 4-byte address 16), so a peer's frame limit still bounds
//! what a batch it sends can make a node allocate.

use super::batch::{Batch, BatchError, Column, ColumnData, Validity};
use super::types::Schema;
use super::value::Address;
use rkyv::with::AsOwned;
use rkyv::{Archive, Serialize};
use std::borrow::Cow;
use std::net::Ipv4Addr;

/// Unsigned integers stored as offsets from `base`, in units of `step`, in
/// the narrowest width that holds them all (signed ones are first mapped to
/// unsigned, keeping order). `step` is 1, or 1,000 where every offset is a
/// multiple of it: Zeek's times and durations have microseconds, so a batch's
/// nanosecond timestamps fit 4 bytes instead of 8.
#[derive(Archive, Serialize)]
pub enum Packed {
    /// Offsets below 256 steps.
    U8 { base: u64, step: u64, v: Vec<u8> },
    /// Offsets below 65,536 steps.
    U16 { base: u64, step: u64, v: Vec<u16> },
    /// Offsets below 2^32 steps.
    U32 { base: u64, step: u64, v: Vec<u32> },
    /// The values themselves.
    U64(Vec<u64>),
}

impl Packed {
    /// No values.
    fn empty() -> Packed {
        Packed::U8 {
            base: 0,
            step: 1,
            v: Vec::new(),
        }
    }
}

/// The step tried for offsets too wide for 2 bytes.
const STEP: u64 = 1_000;

/// A column's values in their wire form (see [`ColumnData`] for each kind).
/// What is sent as it is borrows from the batch (`Cow`, archived like a
/// `Vec`): copying a batch's strings only to serialize them cost a client a
/// copy and fresh pages for most of its bytes.
#[derive(Archive, Serialize)]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
pub enum WireData<'a> {
    /// Booleans, a byte each.
    Bool(#[rkyv(with = AsOwned)] Cow<'a, [bool]>),
    /// Signed integers, packed.
    Int(Packed),
    /// Unsigned integers, packed.
    Count(Packed),
    /// Reals as they are.
    Real(#[rkyv(with = AsOwned)] Cow<'a, [f64]>),
    /// Nanoseconds, packed.
    Duration(Packed),
    /// Nanoseconds since the epoch, packed.
    Time(Packed),
    /// Strings: each row's length in bytes, then all bytes.
    Str {
        lens: Packed,
        #[rkyv(with = AsOwned)]
        bytes: Cow<'a, [u8]>,
    },
    /// Addresses of 16 bytes.
    Address(#[rkyv(with = AsOwned)] Cow<'a, [[u8; 16]]>),
    /// IPv4 addresses, 4 bytes each; a null row's address is all zeros.
    Address4(Vec<[u8; 4]>),
    /// As `Address4`, except for the rows marked in `wide` (a bitmap, a word
    /// per 64 rows), whose addresses are in `rest`, 16 bytes each in row order
    /// (their `narrow` entries are zeros).
    AddressMixed {
        narrow: Vec<[u8; 4]>,
        wide: Vec<u64>,
        rest: Vec<[u8; 16]>,
    },
    /// Subnets as they are.
    Subnet {
        #[rkyv(with = AsOwned)]
        addrs: Cow<'a, [[u8; 16]]>,
        #[rkyv(with = AsOwned)]
        lens: Cow<'a, [u8]>,
    },
    /// Lists: each row's element count, then the elements.
    List {
        lens: Packed,
        #[rkyv(omit_bounds)]
        values: Box<WireColumn<'a>>,
    },
    /// Maps: each row's entry count, then keys and values.
    Map {
        lens: Packed,
        #[rkyv(omit_bounds)]
        keys: Box<WireColumn<'a>>,
        #[rkyv(omit_bounds)]
        values: Box<WireColumn<'a>>,
    },
    /// Record fields, a column each.
    Record(#[rkyv(omit_bounds)] Vec<WireColumn<'a>>),
    /// Raw bytes: each row's length, then all bytes.
    Blob {
        lens: Packed,
        #[rkyv(with = AsOwned)]
        bytes: Cow<'a, [u8]>,
    },
}

/// One column in its wire form: validity as in [`Column`], values narrowed.
#[derive(Archive, Serialize)]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
pub struct WireColumn<'a> {
    /// The column's validity bitmap, as it is.
    #[rkyv(with = AsOwned)]
    pub validity: Cow<'a, Validity>,
    /// The column's values, narrowed.
    #[rkyv(omit_bounds)]
    pub data: WireData<'a>,
}

/// A batch as it crosses the wire: schema and row count as in [`Batch`].
#[derive(Archive, Serialize)]
pub struct WireBatch<'a> {
    /// The batch's schema.
    #[rkyv(with = AsOwned)]
    pub schema: Cow<'a, Schema>,
    /// The batch's rows.
    pub rows: u32,
    /// Its columns, narrowed.
    pub columns: Vec<WireColumn<'a>>,
}

const SIGN: u64 = 1 << 63;

/// The smallest and largest key of `vals`, if any. Four lanes are kept apart,
/// so the comparisons (64-bit, scalar on baseline x86-64) do not wait on each
/// other.
fn min_max<T: Copy>(vals: &[T], key: impl Fn(T) -> u64) -> Option<(u64, u64)> {
    let first = key(*vals.first()?);
    let (mut lo, mut hi) = ([first; 4], [first; 4]);
    let chunks = vals.chunks_exact(4);
    for &v in chunks.remainder() {
        lo[0] = lo[0].min(key(v));
        hi[0] = hi[0].max(key(v));
    }
    for c in chunks {
        let k = [key(c[0]), key(c[1]), key(c[2]), key(c[3])];
        for j in 0..4 {
            lo[j] = lo[j].min(k[j]);
            hi[j] = hi[j].max(k[j]);
        }
    }
    Some((lo.into_iter().min()?, hi.into_iter().max()?))
}

/// Packs values mapped to unsigned by `key`, which must keep them distinct.
/// The step is a constant in each loop, never a division by a step read at
/// run time (a `div` per value).
fn pack<T: Copy>(vals: &[T], key: impl Fn(T) -> u64) -> Packed {
    let Some((lo, hi)) = min_max(vals, &key) else {
        return Packed::empty();
    };
    let keys = vals.iter().map(|&v| key(v));
    let base = lo;
    let coarse = hi - lo > u16::MAX as u64 && keys.clone().all(|k| (k - base).is_multiple_of(STEP));
    let (step, span) = if coarse {
        (STEP, (hi - lo) / STEP)
    } else {
        (1, hi - lo)
    };
    // Offsets of every key, in units of the step, as `$t`.
    macro_rules! offsets {
        ($t:ty) => {
            if coarse {
                keys.map(|k| ((k - base) / STEP) as $t).collect()
            } else {
                keys.map(|k| (k - base) as $t).collect()
            }
        };
    }
    if span <= u8::MAX as u64 {
        Packed::U8 {
            base,
            step,
            v: offsets!(u8),
        }
    } else if span <= u16::MAX as u64 {
        Packed::U16 {
            base,
            step,
            v: offsets!(u16),
        }
    } else if span <= u32::MAX as u64 {
        Packed::U32 {
            base,
            step,
            v: offsets!(u32),
        }
    } else {
        Packed::U64(keys.collect())
    }
}

fn pack_i64(vals: &[i64]) -> Packed {
    pack(vals, |v| (v as u64) ^ SIGN)
}

/// Element lengths of `offsets` (which validated columns start at 0), in
/// 32 bits throughout: a string column's lengths pack in one vectorized pass
/// for their range and one for their narrowing.
fn pack_lens(offsets: &[u32]) -> Packed {
    let lens = || {
        offsets
            .iter()
            .zip(offsets.iter().skip(1))
            .map(|(a, b)| b.wrapping_sub(*a))
    };
    if offsets.len() < 2 {
        return Packed::empty();
    }
    let (lo, hi) = lens().fold((u32::MAX, 0), |(lo, hi), l| (lo.min(l), hi.max(l)));
    let base = lo as u64;
    if hi - lo <= u8::MAX as u32 {
        Packed::U8 {
            base,
            step: 1,
            v: lens().map(|l| (l - lo) as u8).collect(),
        }
    } else if hi - lo <= u16::MAX as u32 {
        Packed::U16 {
            base,
            step: 1,
            v: lens().map(|l| (l - lo) as u16).collect(),
        }
    } else {
        Packed::U32 {
            base,
            step: 1,
            v: lens().map(|l| l - lo).collect(),
        }
    }
}

/// The values of a packed vector, each unsigned one mapped by `f`; wrapping,
/// so that a peer's bytes give some values, never a panic. Collected from a
/// slice's map (vectorized, no capacity checks); a step of 1 (most vectors)
/// skips the multiplication.
fn unpack_map<T>(p: &ArchivedPacked, f: impl Fn(u64) -> T) -> Vec<T> {
    macro_rules! each {
        ($base:expr, $step:expr, $v:expr, $get:expr) => {{
            let (b, s) = ($base.to_native(), $step.to_native());
            if s == 1 {
                $v.iter().map(|x| f(b.wrapping_add($get(x)))).collect()
            } else {
                $v.iter()
                    .map(|x| f(b.wrapping_add($get(x).wrapping_mul(s))))
                    .collect()
            }
        }};
    }
    match p {
        ArchivedPacked::U8 { base, step, v } => each!(base, step, v, |x: &u8| *x as u64),
        ArchivedPacked::U16 { base, step, v } => {
            each!(base, step, v, |x: &rkyv::Archived<u16>| x.to_native()
                as u64)
        }
        ArchivedPacked::U32 { base, step, v } => {
            each!(base, step, v, |x: &rkyv::Archived<u32>| x.to_native()
                as u64)
        }
        ArchivedPacked::U64(v) => v.iter().map(|x| f(x.to_native())).collect(),
    }
}

/// The unsigned values of a packed vector.
fn unpack(p: &ArchivedPacked) -> Vec<u64> {
    unpack_map(p, |x| x)
}

fn unpack_i64(p: &ArchivedPacked) -> Vec<i64> {
    unpack_map(p, |x| (x ^ SIGN) as i64)
}

/// Offsets from lengths: the first is 0, each next one the running sum.
fn unpack_offsets(p: &ArchivedPacked) -> Result<Vec<u32>, String> {
    let lens = unpack(p);
    let mut offsets = Vec::with_capacity(lens.len() + 1);
    offsets.push(0u32);
    // Summed in 64 bits and checked once: lengths below 2^32 (else `wide`),
    // fewer than 2^32 of them (a frame holds far fewer), cannot wrap a u64.
    let (mut at, mut wide) = (0u64, false);
    offsets.extend(lens.iter().map(|&l| {
        wide |= l > u32::MAX as u64;
        at = at.wrapping_add(l);
        at as u32
    }));
    if wide || at > u32::MAX as u64 {
        return Err("element lengths sum past 2^32".into());
    }
    Ok(offsets)
}

/// The 4-byte form of a v4-mapped address.
fn narrow(a: &[u8; 16]) -> [u8; 4] {
    [a[12], a[13], a[14], a[15]]
}

/// Row `i`'s address from its 4-byte form: v4-mapped where the row is valid,
/// zeros where it is null. A bitmap too short for the rows is refused by
/// `validate` later; here it only must not panic.
fn widen(validity: &Validity, i: usize, a: [u8; 4]) -> [u8; 16] {
    let covered = validity.words.is_empty() || i / 64 < validity.words.len();
    if covered && validity.is_valid(i) {
        Ipv4Addr::from(a).to_ipv6_mapped().octets()
    } else {
        [0; 16]
    }
}

fn column(c: &Column) -> WireColumn<'_> {
    let data = match &c.data {
        ColumnData::Bool(v) => WireData::Bool(Cow::Borrowed(v)),
        ColumnData::Int(v) => WireData::Int(pack_i64(v)),
        ColumnData::Count(v) => WireData::Count(pack(v, |x| x)),
        ColumnData::Real(v) => WireData::Real(Cow::Borrowed(v)),
        ColumnData::Duration(v) => WireData::Duration(pack_i64(v)),
        ColumnData::Time(v) => WireData::Time(pack_i64(v)),
        ColumnData::Str { offsets, bytes } => WireData::Str {
            lens: pack_lens(offsets),
            bytes: Cow::Borrowed(bytes),
        },
        ColumnData::Blob { offsets, bytes } => WireData::Blob {
            lens: pack_lens(offsets),
            bytes: Cow::Borrowed(bytes),
        },
        ColumnData::Address(v) => {
            // A row narrows where decoding gives back every byte: valid and
            // v4-mapped, or null and all zeros (as builders leave them).
            let fits = |i: usize, a: &[u8; 16]| {
                if c.validity.is_valid(i) {
                    Address(*a).is_v4()
                } else {
                    *a == [0; 16]
                }
            };
            let wide_rows = v.iter().enumerate().filter(|(i, a)| !fits(*i, a)).count();
            if wide_rows == 0 {
                WireData::Address4(v.iter().map(narrow).collect())
            } else if wide_rows * 2 <= v.len() {
                // Smaller than 16 bytes a row while at most half are wide.
                let mut wide = vec![0u64; v.len().div_ceil(64)];
                let mut rest = Vec::with_capacity(wide_rows);
                let narrow = v
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        if fits(i, a) {
                            narrow(a)
                        } else {
                            wide[i / 64] |= 1 << (i % 64);
                            rest.push(*a);
                            [0; 4]
                        }
                    })
                    .collect();
                WireData::AddressMixed { narrow, wide, rest }
            } else {
                WireData::Address(Cow::Borrowed(v))
            }
        }
        ColumnData::Subnet { addrs, lens } => WireData::Subnet {
            addrs: Cow::Borrowed(addrs),
            lens: Cow::Borrowed(lens),
        },
        ColumnData::List { offsets, values } => WireData::List {
            lens: pack_lens(offsets),
            values: Box::new(column(values)),
        },
        ColumnData::Map {
            offsets,
            keys,
            values,
        } => WireData::Map {
            lens: pack_lens(offsets),
            keys: Box::new(column(keys)),
            values: Box::new(column(values)),
        },
        ColumnData::Record(cs) => WireData::Record(cs.iter().map(column).collect()),
    };
    WireColumn {
        validity: Cow::Borrowed(&c.validity),
        data,
    }
}

/// The wire form of `batch`.
pub fn encode(batch: &Batch) -> WireBatch<'_> {
    WireBatch {
        schema: Cow::Borrowed(&batch.schema),
        rows: batch.rows,
        columns: batch.columns.iter().map(column).collect(),
    }
}

fn decode_column(c: &ArchivedWireColumn) -> Result<Column, String> {
    let validity = Validity {
        words: c.validity.words.iter().map(|w| w.to_native()).collect(),
    };
    let data = match &c.data {
        ArchivedWireData::Bool(v) => ColumnData::Bool(v.to_vec()),
        ArchivedWireData::Int(p) => ColumnData::Int(unpack_i64(p)),
        ArchivedWireData::Count(p) => ColumnData::Count(unpack(p)),
        ArchivedWireData::Real(v) => ColumnData::Real(v.iter().map(|x| x.to_native()).collect()),
        ArchivedWireData::Duration(p) => ColumnData::Duration(unpack_i64(p)),
        ArchivedWireData::Time(p) => ColumnData::Time(unpack_i64(p)),
        ArchivedWireData::Str { lens, bytes } => ColumnData::Str {
            offsets: unpack_offsets(lens)?,
            bytes: bytes.to_vec(),
        },
        ArchivedWireData::Blob { lens, bytes } => ColumnData::Blob {
            offsets: unpack_offsets(lens)?,
            bytes: bytes.to_vec(),
        },
        ArchivedWireData::Address(v) => ColumnData::Address(v.to_vec()),
        ArchivedWireData::Address4(v) => ColumnData::Address(
            v.iter()
                .enumerate()
                .map(|(i, a)| widen(&validity, i, *a))
                .collect(),
        ),
        ArchivedWireData::AddressMixed { narrow, wide, rest } => {
            if wide.len() != narrow.len().div_ceil(64) {
                return Err(format!(
                    "a wide-address bitmap of {} words for {} rows",
                    wide.len(),
                    narrow.len()
                ));
            }
            let mut rest = rest.iter();
            let mut out = Vec::with_capacity(narrow.len());
            for (i, a) in narrow.iter().enumerate() {
                out.push(if (wide[i / 64].to_native() >> (i % 64)) & 1 == 1 {
                    *rest
                        .next()
                        .ok_or("fewer wide addresses than rows marked wide")?
                } else {
                    widen(&validity, i, *a)
                });
            }
            if rest.next().is_some() {
                return Err("more wide addresses than rows marked wide".into());
            }
            ColumnData::Address(out)
        }
        ArchivedWireData::Subnet { addrs, lens } => ColumnData::Subnet {
            addrs: addrs.to_vec(),
            lens: lens.to_vec(),
        },
        ArchivedWireData::List { lens, values } => ColumnData::List {
            offsets: unpack_offsets(lens)?,
            values: Box::new(decode_column(values)?),
        },
        ArchivedWireData::Map { lens, keys, values } => ColumnData::Map {
            offsets: unpack_offsets(lens)?,
            keys: Box::new(decode_column(keys)?),
            values: Box::new(decode_column(values)?),
        },
        ArchivedWireData::Record(cs) => {
            ColumnData::Record(cs.iter().map(decode_column).collect::<Result<_, _>>()?)
        }
    };
    Ok(Column { validity, data })
}

/// The batch of validated wire bytes, itself not yet validated (the caller
/// runs [`Batch::validate`]).
pub fn decode(b: &ArchivedWireBatch) -> Result<Batch, BatchError> {
    let schema = rkyv::deserialize::<Schema, rkyv::rancor::Error>(&b.schema)
        .map_err(|e| BatchError::Archive(e.to_string()))?;
    let columns = b
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            decode_column(c).map_err(|reason| BatchError::Inconsistent { column: i, reason })
        })
        .collect::<Result<_, _>>()?;
    Ok(Batch {
        schema,
        rows: b.rows.to_native(),
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::types::{Field, Type};

    fn col(data: ColumnData) -> Column {
        Column {
            validity: Validity::default(),
            data,
        }
    }

    fn offsets(lens: &[u32]) -> Vec<u32> {
        let mut o = vec![0];
        for l in lens {
            o.push(o.last().unwrap() + l);
        }
        o
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        Ipv4Addr::from(a).to_ipv6_mapped().octets()
    }

    fn roundtrip(b: &Batch) -> Batch {
        b.validate().expect("the test batch is valid");
        let back = Batch::from_bytes(&b.to_bytes()).expect("decodes");
        assert_eq!(&back, b);
        back
    }

    /// The range is found in every lane and in the tail past the last four
    /// values, whatever the count.
    #[test]
    fn extremes_are_found_wherever_they_sit() {
        for n in 1..=11usize {
            for at_lo in 0..n {
                for at_hi in 0..n {
                    let mut vals = vec![1_000u64; n];
                    vals[at_hi] = 70_000;
                    vals[at_lo] = 3;
                    let (lo, hi) = if at_lo == at_hi {
                        (3, 1_000)
                    } else {
                        (3, 70_000)
                    };
                    let (lo, hi) = if n == 1 { (3, 3) } else { (lo, hi) };
                    assert_eq!(min_max(&vals, |x| x), Some((lo, hi)), "{vals:?}");
                    let b = Batch {
                        schema: Schema::new("t", vec![Field::new("c", Type::Count)]),
                        rows: n as u32,
                        columns: vec![col(ColumnData::Count(vals))],
                    };
                    roundtrip(&b);
                }
            }
        }
        assert_eq!(min_max(&[] as &[u64], |x| x), None);
    }

    /// String lengths narrowed to each width (the longest 70,000 bytes), from
    /// a smallest length above zero, come back as the same offsets.
    #[test]
    fn string_lengths_come_back_at_every_width() {
        for longest in [7usize, 255 + 7, 256 + 7, 65_535 + 7, 65_536 + 7, 70_000] {
            let texts = [
                "abcdefg".to_string(),
                "x".repeat(longest),
                "abcdefgh".into(),
            ];
            let lens: Vec<u32> = texts.iter().map(|t| t.len() as u32).collect();
            let b = Batch {
                schema: Schema::new("t", vec![Field::new("s", Type::String)]),
                rows: 3,
                columns: vec![col(ColumnData::Str {
                    offsets: offsets(&lens),
                    bytes: texts.concat().into_bytes(),
                })],
            };
            let wire = encode(&b);
            let WireData::Str { lens: packed, .. } = &wire.columns[0].data else {
                panic!("a string column")
            };
            let (base, width) = match packed {
                Packed::U8 { base, .. } => (*base, 1),
                Packed::U16 { base, .. } => (*base, 2),
                Packed::U32 { base, .. } => (*base, 4),
                Packed::U64(_) => (0, 8),
            };
            let span = longest - 7;
            let want = if span <= 255 {
                1
            } else if span <= 65_535 {
                2
            } else {
                4
            };
            assert_eq!((base, width), (7, want), "longest {longest}");
            roundtrip(&b);
        }
    }

    /// Integer columns at every width and its edges, signed and unsigned.
    #[test]
    fn integers_come_back_exactly_at_every_width() {
        let spans: [u64; 9] = [
            0,
            255,
            256,
            65_535,
            65_536,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX / 2,
            u64::MAX,
        ];
        for span in spans {
            for base in [0u64, 1, 1 << 40, u64::MAX - span] {
                let counts = vec![
                    base,
                    base.wrapping_add(span),
                    base,
                    base.wrapping_add(span / 2),
                ];
                let ints: Vec<i64> = counts.iter().map(|&c| (c ^ SIGN) as i64).collect();
                let b = Batch {
                    schema: Schema::new(
                        "t",
                        vec![
                            Field::new("c", Type::Count),
                            Field::new("i", Type::Int),
                            Field::new("t", Type::Time),
                            Field::new("d", Type::Duration),
                        ],
                    ),
                    rows: 4,
                    columns: vec![
                        col(ColumnData::Count(counts.clone())),
                        col(ColumnData::Int(ints.clone())),
                        col(ColumnData::Time(ints.clone())),
                        col(ColumnData::Duration(ints)),
                    ],
                };
                roundtrip(&b);
                let expect = match span {
                    s if s <= 255 => "U8",
                    s if s <= 65_535 => "U16",
                    s if s <= u32::MAX as u64 => "U32",
                    _ => "U64",
                };
                let got = match pack(&counts, |x| x) {
                    Packed::U8 { .. } => "U8",
                    Packed::U16 { .. } => "U16",
                    Packed::U32 { .. } => "U32",
                    Packed::U64(_) => "U64",
                };
                assert_eq!(got, expect, "span {span}");
            }
        }
        // Whole microseconds past 2 bytes' worth of nanoseconds pack in steps of
        // 1,000; one value off the step keeps steps of 1.
        let base = 1_700_000_000_000_000_000i64;
        let mut us: Vec<i64> = (0..1000).map(|i| base + i * 3_700_123_000).collect();
        let b = |v: &[i64]| Batch {
            schema: Schema::new("t", vec![Field::new("t", Type::Time)]),
            rows: v.len() as u32,
            columns: vec![col(ColumnData::Time(v.to_vec()))],
        };
        roundtrip(&b(&us));
        assert!(matches!(pack_i64(&us), Packed::U32 { step: 1000, .. }));
        us[500] += 1;
        roundtrip(&b(&us));
        assert!(matches!(pack_i64(&us), Packed::U64(_)));
        let small: Vec<i64> = (0..1000).map(|i| -5_000 + i * 7).collect();
        roundtrip(&b(&small));
        assert!(matches!(pack_i64(&small), Packed::U16 { step: 1, .. }));
    }

    /// Every other kind, nested ones included, with nulls and empty values.
    #[test]
    fn every_kind_comes_back_exactly() {
        let elem = Type::Record(vec![
            Field::new("x", Type::Count),
            Field::new("y", Type::String),
        ]);
        let schema = Schema::new(
            "t.all",
            vec![
                Field::new("b", Type::Bool),
                Field::new("r", Type::Real),
                Field::new("s", Type::String),
                Field::new("p", Type::Pattern),
                Field::new("e", Type::Enum(vec![])),
                Field::new("blob", Type::Blob),
                Field::new("a4", Type::Address),
                Field::new("a6", Type::Address),
                Field::new("net", Type::Subnet),
                Field::new("l", Type::List(Box::new(elem.clone()))),
                Field::new("m", Type::Map(Box::new(Type::String), Box::new(Type::Int))),
            ],
        );
        let nulls = Validity { words: vec![0b101] };
        let record = Column {
            validity: Validity::default(),
            data: ColumnData::Record(vec![
                col(ColumnData::Count(vec![1, 2, 3])),
                col(ColumnData::Str {
                    offsets: offsets(&[1, 0, 2]),
                    bytes: b"abc".to_vec(),
                }),
            ]),
        };
        let b = Batch {
            schema,
            rows: 3,
            columns: vec![
                col(ColumnData::Bool(vec![true, false, true])),
                col(ColumnData::Real(vec![1.5, -f64::NAN, -0.0])),
                col(ColumnData::Str {
                    offsets: offsets(&[0, 7, 300]),
                    bytes: "héllo!"
                        .bytes()
                        .chain(std::iter::repeat_n(b'x', 300))
                        .collect(),
                }),
                col(ColumnData::Str {
                    offsets: offsets(&[2, 0, 0]),
                    bytes: b".*".to_vec(),
                }),
                col(ColumnData::Str {
                    offsets: offsets(&[3, 3, 3]),
                    bytes: b"tcpudptcp".to_vec(),
                }),
                col(ColumnData::Blob {
                    offsets: offsets(&[2, 0, 1]),
                    bytes: vec![0xff, 0x00, 0xfe],
                }),
                Column {
                    validity: nulls.clone(),
                    data: ColumnData::Address(vec![v4([10, 0, 0, 1]), [0; 16], v4([0; 4])]),
                },
                col(ColumnData::Address(vec![v4([1, 2, 3, 4]), [0; 16], {
                    let mut a = [0x20; 16];
                    a[15] = 1;
                    a
                }])),
                col(ColumnData::Subnet {
                    addrs: vec![v4([10, 0, 0, 0]), [0; 16], [1; 16]],
                    lens: vec![104, 0, 128],
                }),
                col(ColumnData::List {
                    offsets: offsets(&[2, 0, 1]),
                    values: Box::new(record),
                }),
                Column {
                    validity: nulls,
                    data: ColumnData::Map {
                        offsets: offsets(&[1, 0, 1]),
                        keys: Box::new(col(ColumnData::Str {
                            offsets: offsets(&[1, 1]),
                            bytes: b"kq".to_vec(),
                        })),
                        values: Box::new(col(ColumnData::Int(vec![i64::MIN, i64::MAX]))),
                    },
                },
            ],
        };
        // NaN equals nothing and -0.0 equals 0.0: reals are compared by bits,
        // the rest as they are.
        let mut back = Batch::from_bytes(&b.to_bytes()).expect("decodes");
        let bits = |c: &Column| match &c.data {
            ColumnData::Real(x) => x.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
            _ => unreachable!(),
        };
        assert_eq!(bits(&back.columns[1]), bits(&b.columns[1]));
        let mut b = b;
        for c in [&mut back.columns[1], &mut b.columns[1]] {
            c.data = ColumnData::Real(vec![0.0; 3]);
        }
        roundtrip(&b);
        assert_eq!(back, b);
        let wire = encode(&b);
        assert!(
            matches!(wire.columns[6].data, WireData::Address4(_)),
            "v4 with zeroed nulls narrows"
        );
        assert!(
            matches!(wire.columns[7].data, WireData::Address(_)),
            "v6 and zeros stay wide"
        );
    }

    /// A null row whose address bytes are not zeros is sent whole, so
    /// decoding never invents bytes; so are the few IPv6 rows of a column of
    /// IPv4 ones, at every place in the bitmap; past half the rows the column
    /// goes whole.
    #[test]
    fn addresses_narrow_only_when_decoding_gives_every_byte_back() {
        let b = Batch {
            schema: Schema::new("t", vec![Field::new("a", Type::Address)]),
            rows: 2,
            columns: vec![Column {
                validity: Validity { words: vec![0b01] },
                data: ColumnData::Address(vec![v4([1, 2, 3, 4]), v4([5, 6, 7, 8])]),
            }],
        };
        let w = encode(&b);
        let WireData::AddressMixed { narrow, wide, rest } = &w.columns[0].data else {
            panic!("one of two rows is wide: mixed")
        };
        assert_eq!((narrow.len(), wide.as_slice()), (2, &[0b10][..]));
        assert_eq!(rest, &[v4([5, 6, 7, 8])]);
        roundtrip(&b);

        let v6 = |x: u8| {
            let mut a = [0x20; 16];
            a[15] = x;
            a
        };
        let rows = 130usize;
        let wide_at = [0usize, 63, 64, 100, 129];
        let mut addrs: Vec<[u8; 16]> = (0..rows).map(|i| v4([10, 0, 0, i as u8])).collect();
        for &i in &wide_at {
            addrs[i] = v6(i as u8);
        }
        // Row 5 null and zero (narrow), row 6 null with bytes (wide).
        addrs[5] = [0; 16];
        let mut words = vec![u64::MAX; 3];
        words[0] &= !(1 << 5 | 1 << 6);
        let b = Batch {
            schema: Schema::new("t", vec![Field::new("a", Type::Address)]),
            rows: rows as u32,
            columns: vec![Column {
                validity: Validity { words },
                data: ColumnData::Address(addrs.clone()),
            }],
        };
        let w = encode(&b);
        let WireData::AddressMixed { wide, rest, .. } = &w.columns[0].data else {
            panic!("6 of 130 rows are wide: mixed")
        };
        let marked: Vec<usize> = (0..rows)
            .filter(|i| wide[i / 64] >> (i % 64) & 1 == 1)
            .collect();
        assert_eq!(marked, [0, 6, 63, 64, 100, 129]);
        assert_eq!(rest.len(), 6);
        assert!(b.to_bytes().len() < rows * 8, "about 4 bytes a row, not 16");
        roundtrip(&b);

        // More than half the rows wide: the column goes whole.
        let mut half = addrs[..10].to_vec();
        for a in half.iter_mut().take(6) {
            *a = v6(1);
        }
        let b = Batch {
            schema: Schema::new("t", vec![Field::new("a", Type::Address)]),
            rows: 10,
            columns: vec![col(ColumnData::Address(half))],
        };
        assert!(matches!(encode(&b).columns[0].data, WireData::Address(_)));
        roundtrip(&b);
    }

    /// Empty batches and columns.
    #[test]
    fn empty_columns_come_back() {
        let b = Batch {
            schema: Schema::new(
                "t",
                vec![Field::new("c", Type::Count), Field::new("s", Type::String)],
            ),
            rows: 0,
            columns: vec![
                col(ColumnData::Count(vec![])),
                col(ColumnData::Str {
                    offsets: vec![0],
                    bytes: vec![],
                }),
            ],
        };
        roundtrip(&b);
    }

    /// A Zeek conn batch (the benchmarks' shape) is much smaller on the wire
    /// than the rkyv form of the batch itself.
    #[test]
    fn a_conn_batch_narrows() {
        let text = (0..4096u64)
            .map(|i| {
                format!(
                    "{}.{:06}\tC{i:017}\t10.0.{}.{}\t{}\t192.168.1.{}\t53\tudp\tdns\t0.{:06}\t{}\t{}\tSF\tT\t0\tDd\t1\t{}\t1\t{}\t(empty)\n",
                    1_700_000_000 + i / 100,
                    (i * 7919) % 1_000_000,
                    i % 256,
                    (i * 13) % 256,
                    1024 + (i * 31) % 60_000,
                    i % 250,
                    (i * 104_729) % 1_000_000,
                    40 + i % 1000,
                    60 + (i * 3) % 5000,
                    68 + i % 1000,
                    88 + (i * 3) % 5000,
                )
            })
            .collect::<String>();
        let log = format!(
            "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n\
             #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n\
             #types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n{text}"
        );
        let mut reader = crate::source::format::zeek::ZeekReader::new(Box::new(
            std::io::Cursor::new(log.into_bytes()),
        ));
        let (batches, err) = crate::source::format::testutil::read_all(&mut reader, 8192);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!(b.rows, 4096);
        let plain = rkyv::to_bytes::<rkyv::rancor::Error>(b).unwrap().len();
        let wire = b.to_bytes().len();
        assert!(
            (wire as f64) < 0.7 * plain as f64,
            "wire {wire} bytes against {plain} unnarrowed"
        );
        assert_eq!(&Batch::from_bytes(&b.to_bytes()).unwrap(), b);
    }

    fn small() -> Batch {
        Batch {
            schema: Schema::new(
                "t",
                vec![
                    Field::new("s", Type::String),
                    Field::new("l", Type::List(Box::new(Type::Count))),
                    Field::new("a", Type::Address),
                    Field::new("m", Type::Address),
                ],
            ),
            rows: 2,
            columns: vec![
                col(ColumnData::Str {
                    offsets: offsets(&[2, 1]),
                    bytes: b"abc".to_vec(),
                }),
                col(ColumnData::List {
                    offsets: offsets(&[1, 2]),
                    values: Box::new(col(ColumnData::Count(vec![5, 6, 700]))),
                }),
                col(ColumnData::Address(vec![
                    v4([1, 1, 1, 1]),
                    v4([2, 2, 2, 2]),
                ])),
                col(ColumnData::Address(vec![v4([3, 3, 3, 3]), [0x20; 16]])),
            ],
        }
    }

    /// Lengths a peer made up (too long for the bytes, summing past 2^32, too
    /// few for the rows) are errors naming the column, never a panic.
    #[test]
    fn made_up_lengths_are_errors() {
        let b = small();
        let mut w = encode(&b);
        w.columns[0].data = WireData::Str {
            lens: Packed::U32 {
                base: 0,
                step: 1,
                v: vec![2, 7],
            },
            bytes: b"abc".to_vec().into(),
        };
        let e = decode_wire(&w).unwrap_err().to_string();
        assert!(e.contains("column 0") && e.contains("offsets"), "{e}");
        w.columns[0].data = WireData::Str {
            lens: Packed::U64(vec![u32::MAX as u64, 2]),
            bytes: b"abc".to_vec().into(),
        };
        let e = decode_wire(&w).unwrap_err().to_string();
        assert!(e.contains("column 0") && e.contains("2^32"), "{e}");
        let mut w = encode(&b);
        w.columns[2].data = WireData::Address4(vec![[1, 1, 1, 1]]);
        let e = decode_wire(&w).unwrap_err().to_string();
        assert!(e.contains("column 2") && e.contains("rows"), "{e}");
        // Wide addresses that do not match the rows marked wide, or a bitmap
        // of the wrong size.
        let mut w = encode(&b);
        assert!(matches!(w.columns[3].data, WireData::AddressMixed { .. }));
        for (wide, rest, want) in [
            (vec![0b11], vec![[0x20; 16]], "fewer wide addresses"),
            (vec![0b00], vec![[0x20; 16]], "more wide addresses"),
            (
                vec![0b10, 0],
                vec![[0x20; 16]],
                "bitmap of 2 words for 2 rows",
            ),
            (vec![], vec![], "bitmap of 0 words for 2 rows"),
        ] {
            w.columns[3].data = WireData::AddressMixed {
                narrow: vec![[3; 4], [0; 4]],
                wide,
                rest,
            };
            let e = decode_wire(&w).unwrap_err().to_string();
            assert!(e.contains("column 3") && e.contains(want), "{e}");
        }
    }

    /// Strings a peer made up: bytes that are not UTF-8, or lengths that cut
    /// a character, are refused whole; ASCII passes on its fast path, other
    /// UTF-8 on the full check. Offsets out of order (which lengths cannot
    /// make, but a column may carry) are refused wherever they sit.
    #[test]
    fn made_up_strings_are_errors() {
        let b = small();
        let strings = |lens: &[u32], bytes: &[u8]| {
            let mut w = encode(&b);
            w.columns[0].data = WireData::Str {
                lens: Packed::U8 {
                    base: 0,
                    step: 1,
                    v: lens.iter().map(|&l| l as u8).collect(),
                },
                bytes: bytes.to_vec().into(),
            };
            decode_wire(&w).map(|b| b.columns[0].clone())
        };
        let e = strings(&[1, 1], b"a\xff").err().unwrap().to_string();
        assert!(e.contains("column 0") && e.contains("invalid UTF-8"), "{e}");
        let e = strings(&[1, 1], "é".as_bytes()).err().unwrap().to_string();
        assert!(
            e.contains("column 0") && e.contains("inside a UTF-8"),
            "{e}"
        );
        let c = strings(&[2, 1], "éa".as_bytes()).unwrap();
        assert_eq!((c.str_at(0), c.str_at(1)), ("é", "a"));
        let c = strings(&[2, 1], b"xya").unwrap();
        assert_eq!((c.str_at(0), c.str_at(1)), ("xy", "a"));
        for at in 1..40 {
            let mut offsets: Vec<u32> = (0..=40).collect();
            offsets[at] = offsets[at + 1] + 1;
            let c = col(ColumnData::Str {
                offsets,
                bytes: vec![b'x'; 40],
            });
            assert_eq!(
                c.validate(&Type::String, 40).unwrap_err(),
                "offsets decrease",
                "at {at}"
            );
        }
    }

    fn decode_wire(w: &WireBatch) -> Result<Batch, BatchError> {
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(w).unwrap();
        Batch::from_bytes(&bytes)
    }

    /// Every one-byte change of a batch's wire bytes decodes to an error or to
    /// a batch that validates: never a panic.
    #[test]
    fn changed_bytes_never_panic() {
        let bytes = small().to_bytes();
        for i in 0..bytes.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.to_vec();
                b[i] ^= x;
                if let Ok(batch) = Batch::from_bytes(&b) {
                    batch.validate().unwrap();
                }
            }
        }
    }
}
