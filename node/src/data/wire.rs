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
//!   an address.
//!
//! Nothing decodes to more than 8 times its wire bytes (a 1-byte integer
//! becomes 8 bytes, a 4-byte address 16), so a peer's frame limit still bounds
//! what a batch it sends can make a node allocate.

use super::batch::{Batch, BatchError, Column, ColumnData, Validity};
use super::types::Schema;
use super::value::Address;
use rkyv::{Archive, Serialize};
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

/// The step tried for offsets too wide for 2 bytes.
const STEP: u64 = 1_000;

/// A column's values in their wire form (see [`ColumnData`] for each kind).
#[derive(Archive, Serialize)]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
pub enum WireData {
    /// Booleans, a byte each.
    Bool(Vec<bool>),
    /// Signed integers, packed.
    Int(Packed),
    /// Unsigned integers, packed.
    Count(Packed),
    /// Reals as they are.
    Real(Vec<f64>),
    /// Nanoseconds, packed.
    Duration(Packed),
    /// Nanoseconds since the epoch, packed.
    Time(Packed),
    /// Strings: each row's length in bytes, then all bytes.
    Str { lens: Packed, bytes: Vec<u8> },
    /// Addresses of 16 bytes.
    Address(Vec<[u8; 16]>),
    /// IPv4 addresses, 4 bytes each; a null row's address is all zeros.
    Address4(Vec<[u8; 4]>),
    /// Subnets as they are.
    Subnet { addrs: Vec<[u8; 16]>, lens: Vec<u8> },
    /// Lists: each row's element count, then the elements.
    List {
        lens: Packed,
        #[rkyv(omit_bounds)]
        values: Box<WireColumn>,
    },
    /// Maps: each row's entry count, then keys and values.
    Map {
        lens: Packed,
        #[rkyv(omit_bounds)]
        keys: Box<WireColumn>,
        #[rkyv(omit_bounds)]
        values: Box<WireColumn>,
    },
    /// Record fields, a column each.
    Record(#[rkyv(omit_bounds)] Vec<WireColumn>),
    /// Raw bytes: each row's length, then all bytes.
    Blob { lens: Packed, bytes: Vec<u8> },
}

/// One column in its wire form: validity as in [`Column`], values narrowed.
#[derive(Archive, Serialize)]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
pub struct WireColumn {
    /// The column's validity bitmap, as it is.
    pub validity: Validity,
    /// The column's values, narrowed.
    #[rkyv(omit_bounds)]
    pub data: WireData,
}

/// A batch as it crosses the wire: schema and row count as in [`Batch`].
#[derive(Archive, Serialize)]
pub struct WireBatch {
    /// The batch's schema.
    pub schema: Schema,
    /// The batch's rows.
    pub rows: u32,
    /// Its columns, narrowed.
    pub columns: Vec<WireColumn>,
}

const SIGN: u64 = 1 << 63;

/// Packs values mapped to unsigned by `key`, which must keep them distinct.
fn pack<T: Copy>(vals: &[T], key: impl Fn(T) -> u64) -> Packed {
    let (mut lo, mut hi) = (u64::MAX, 0);
    for &v in vals {
        let k = key(v);
        lo = lo.min(k);
        hi = hi.max(k);
    }
    if vals.is_empty() {
        return Packed::U8 {
            base: 0,
            step: 1,
            v: Vec::new(),
        };
    }
    let base = lo;
    let mut step = 1;
    if hi - lo > u16::MAX as u64 && vals.iter().all(|&v| (key(v) - base).is_multiple_of(STEP)) {
        step = STEP;
    }
    let span = (hi - lo) / step;
    let off = |v: T| (key(v) - base) / step;
    if span <= u8::MAX as u64 {
        Packed::U8 {
            base,
            step,
            v: vals.iter().map(|&v| off(v) as u8).collect(),
        }
    } else if span <= u16::MAX as u64 {
        Packed::U16 {
            base,
            step,
            v: vals.iter().map(|&v| off(v) as u16).collect(),
        }
    } else if span <= u32::MAX as u64 {
        Packed::U32 {
            base,
            step,
            v: vals.iter().map(|&v| off(v) as u32).collect(),
        }
    } else {
        Packed::U64(vals.iter().map(|&v| key(v)).collect())
    }
}

fn pack_i64(vals: &[i64]) -> Packed {
    pack(vals, |v| (v as u64) ^ SIGN)
}

/// Element lengths of `offsets` (which validated columns start at 0).
fn pack_lens(offsets: &[u32]) -> Packed {
    let lens: Vec<u32> = offsets
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]))
        .collect();
    pack(&lens, u64::from)
}

/// The unsigned values of a packed vector; wrapping, so that a peer's bytes
/// give some values, never a panic.
fn unpack(p: &ArchivedPacked) -> Vec<u64> {
    match p {
        ArchivedPacked::U8 { base, step, v } => {
            let (b, s) = (base.to_native(), step.to_native());
            v.iter()
                .map(|&x| b.wrapping_add((x as u64).wrapping_mul(s)))
                .collect()
        }
        ArchivedPacked::U16 { base, step, v } => {
            let (b, s) = (base.to_native(), step.to_native());
            v.iter()
                .map(|x| b.wrapping_add((x.to_native() as u64).wrapping_mul(s)))
                .collect()
        }
        ArchivedPacked::U32 { base, step, v } => {
            let (b, s) = (base.to_native(), step.to_native());
            v.iter()
                .map(|x| b.wrapping_add((x.to_native() as u64).wrapping_mul(s)))
                .collect()
        }
        ArchivedPacked::U64(v) => v.iter().map(|x| x.to_native()).collect(),
    }
}

fn unpack_i64(p: &ArchivedPacked) -> Vec<i64> {
    unpack(p).into_iter().map(|x| (x ^ SIGN) as i64).collect()
}

/// Offsets from lengths: the first is 0, each next one the running sum.
fn unpack_offsets(p: &ArchivedPacked) -> Result<Vec<u32>, String> {
    let lens = unpack(p);
    let mut offsets = Vec::with_capacity(lens.len() + 1);
    let mut at = 0u32;
    offsets.push(at);
    for l in lens {
        at = u32::try_from(l)
            .ok()
            .and_then(|l| at.checked_add(l))
            .ok_or("element lengths sum past 2^32")?;
        offsets.push(at);
    }
    Ok(offsets)
}

fn column(c: &Column) -> WireColumn {
    let data = match &c.data {
        ColumnData::Bool(v) => WireData::Bool(v.clone()),
        ColumnData::Int(v) => WireData::Int(pack_i64(v)),
        ColumnData::Count(v) => WireData::Count(pack(v, |x| x)),
        ColumnData::Real(v) => WireData::Real(v.clone()),
        ColumnData::Duration(v) => WireData::Duration(pack_i64(v)),
        ColumnData::Time(v) => WireData::Time(pack_i64(v)),
        ColumnData::Str { offsets, bytes } => WireData::Str {
            lens: pack_lens(offsets),
            bytes: bytes.clone(),
        },
        ColumnData::Blob { offsets, bytes } => WireData::Blob {
            lens: pack_lens(offsets),
            bytes: bytes.clone(),
        },
        ColumnData::Address(v) => {
            // Narrowed only where decoding gives back every byte: valid rows
            // v4-mapped, null rows all zeros (as builders leave them).
            let narrow = v.iter().enumerate().all(|(i, a)| {
                if c.validity.is_valid(i) {
                    Address(*a).is_v4()
                } else {
                    *a == [0; 16]
                }
            });
            if narrow {
                WireData::Address4(v.iter().map(|a| [a[12], a[13], a[14], a[15]]).collect())
            } else {
                WireData::Address(v.clone())
            }
        }
        ColumnData::Subnet { addrs, lens } => WireData::Subnet {
            addrs: addrs.clone(),
            lens: lens.clone(),
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
        validity: c.validity.clone(),
        data,
    }
}

/// The wire form of `batch`.
pub fn encode(batch: &Batch) -> WireBatch {
    WireBatch {
        schema: batch.schema.clone(),
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
        ArchivedWireData::Address4(v) => {
            // A bitmap too short for the rows is refused by `validate` later;
            // here it only must not panic.
            let covered = |i: usize| validity.words.is_empty() || i / 64 < validity.words.len();
            ColumnData::Address(
                v.iter()
                    .enumerate()
                    .map(|(i, a)| {
                        if covered(i) && validity.is_valid(i) {
                            Ipv4Addr::from(*a).to_ipv6_mapped().octets()
                        } else {
                            [0; 16]
                        }
                    })
                    .collect(),
            )
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

    /// A null row whose address bytes are not zeros keeps the column wide,
    /// so decoding never invents bytes.
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
            ],
        }
    }

    /// Lengths a peer made up (too long for the bytes, summing past 2^32, too
    /// few for the rows) are errors naming the column, never a panic.
    #[test]
    fn made_up_lengths_are_errors() {
        let mut w = encode(&small());
        w.columns[0].data = WireData::Str {
            lens: Packed::U32 {
                base: 0,
                step: 1,
                v: vec![2, 7],
            },
            bytes: b"abc".to_vec(),
        };
        let e = decode_wire(&w).unwrap_err().to_string();
        assert!(e.contains("column 0") && e.contains("offsets"), "{e}");
        w.columns[0].data = WireData::Str {
            lens: Packed::U64(vec![u32::MAX as u64, 2]),
            bytes: b"abc".to_vec(),
        };
        let e = decode_wire(&w).unwrap_err().to_string();
        assert!(e.contains("column 0") && e.contains("2^32"), "{e}");
        let mut w = encode(&small());
        w.columns[2].data = WireData::Address4(vec![[1, 1, 1, 1]]);
        let e = decode_wire(&w).unwrap_err().to_string();
        assert!(e.contains("column 2") && e.contains("rows"), "{e}");
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
