//! Columnar batches ("table slices"): up to N rows of one schema, column by column,
//! with null bitmaps. Between processes a batch travels in its wire form
//! ([`super::wire`]: rkyv, the columns narrowed); the archive stores its own
//! encoding.

use super::types::{Schema, Type};
use super::value::{Address, Subnet, Value};
use rkyv::{Archive, Deserialize, Serialize};
use std::fmt;

/// A validity bitmap; bit set means the row has a value. An empty word vector means
/// "all valid" so fully populated columns cost nothing.
#[derive(Clone, Default, PartialEq, Archive, Serialize, Deserialize)]
pub struct Validity {
    pub words: Vec<u64>,
}

impl Validity {
    #[inline]
    pub fn is_valid(&self, row: usize) -> bool {
        self.words.is_empty() || (self.words[row / 64] >> (row % 64)) & 1 == 1
    }
}

/// Column storage by base type. Strings, patterns and enums share the offsets/bytes
/// layout; times and durations are nanoseconds.
#[derive(Clone, PartialEq, Archive, Serialize, Deserialize)]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
pub enum ColumnData {
    Bool(Vec<bool>),
    Int(Vec<i64>),
    Count(Vec<u64>),
    Real(Vec<f64>),
    Duration(Vec<i64>),
    Time(Vec<i64>),
    /// `offsets.len() == rows + 1`; row i is `bytes[offsets[i]..offsets[i+1]]`.
    Str {
        offsets: Vec<u32>,
        bytes: Vec<u8>,
    },
    Address(Vec<[u8; 16]>),
    Subnet {
        addrs: Vec<[u8; 16]>,
        lens: Vec<u8>,
    },
    /// Row i holds elements `offsets[i]..offsets[i+1]` of `values`.
    List {
        offsets: Vec<u32>,
        #[rkyv(omit_bounds)]
        values: Box<Column>,
    },
    Map {
        offsets: Vec<u32>,
        #[rkyv(omit_bounds)]
        keys: Box<Column>,
        #[rkyv(omit_bounds)]
        values: Box<Column>,
    },
    Record(#[rkyv(omit_bounds)] Vec<Column>),
    /// Raw bytes, the `Str` layout without the UTF-8 guarantee. Last so the archived
    /// discriminants of the older variants stay unchanged.
    Blob {
        offsets: Vec<u32>,
        bytes: Vec<u8>,
    },
}

/// One column: values plus validity.
#[derive(Clone, PartialEq, Archive, Serialize, Deserialize)]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
pub struct Column {
    pub validity: Validity,
    #[rkyv(omit_bounds)]
    pub data: ColumnData,
}

/// A batch of events of one schema, as the importer and archive pass it around.
#[derive(Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct Batch {
    pub schema: Schema,
    pub rows: u32,
    pub columns: Vec<Column>,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Batch({}, {} rows)", self.schema.name, self.rows)
    }
}

/// Runs `f` on `bytes` aligned for rkyv, copying only when they are not already.
pub fn with_aligned<R>(bytes: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    if (bytes.as_ptr() as usize).is_multiple_of(16) {
        return f(bytes);
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    f(&aligned)
}

/// A borrowed view of one cell.
#[derive(Clone, Copy)]
pub enum ValueRef<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Count(u64),
    Real(f64),
    Duration(i64),
    Time(i64),
    Str(&'a str),
    Address(Address),
    Subnet(Subnet),
    /// Elements `start..end` of a child column.
    List(&'a Column, usize, usize),
    Map(&'a Column, &'a Column, usize, usize),
    Record(&'a [Column], usize),
    /// Raw bytes.
    Blob(&'a [u8]),
}

/// Why bytes from disk or a peer do not form a valid batch.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("batch bytes failed validation: {0}")]
    Archive(String),
    #[error("column {column} is inconsistent: {reason}")]
    Inconsistent { column: usize, reason: String },
}

impl Column {
    /// About the rkyv bytes of the values of rows `range` (not the headers
    /// around them): what the archive's row groups and serialization budget on.
    pub fn rows_bytes(&self, range: std::ops::Range<usize>) -> usize {
        let n = range.len();
        // Offsets of validated columns cover every row; a hint never panics.
        let span = |o: &[u32]| {
            let at = |i: usize| o.get(i).copied().unwrap_or(0) as usize;
            at(range.start)..at(range.end).max(at(range.start))
        };
        let validity = if self.validity.words.is_empty() {
            0
        } else {
            n / 8
        };
        validity
            + match &self.data {
                ColumnData::Bool(_) => n,
                ColumnData::Int(_)
                | ColumnData::Count(_)
                | ColumnData::Real(_)
                | ColumnData::Duration(_)
                | ColumnData::Time(_) => 8 * n,
                ColumnData::Str { offsets, .. } | ColumnData::Blob { offsets, .. } => {
                    4 * n + span(offsets).len()
                }
                ColumnData::Address(_) => 16 * n,
                ColumnData::Subnet { .. } => 17 * n,
                ColumnData::List { offsets, values } => 4 * n + values.rows_bytes(span(offsets)),
                ColumnData::Map {
                    offsets,
                    keys,
                    values,
                } => 4 * n + keys.rows_bytes(span(offsets)) + values.rows_bytes(span(offsets)),
                ColumnData::Record(cs) => cs.iter().map(|c| c.rows_bytes(range.clone())).sum(),
            }
    }

    /// Whether [`Column::append`] can take `other`: the same storage variant all
    /// the way down, and offsets that stay within 32 bits.
    pub fn can_append(&self, other: &Column) -> bool {
        use ColumnData as D;
        let fits = |a: &[u32], b: &[u32]| {
            let (x, y) = (
                a.last().copied().unwrap_or(0),
                b.last().copied().unwrap_or(0),
            );
            x.checked_add(y).is_some()
        };
        match (&self.data, &other.data) {
            (D::Bool(_), D::Bool(_))
            | (D::Int(_), D::Int(_))
            | (D::Count(_), D::Count(_))
            | (D::Real(_), D::Real(_))
            | (D::Duration(_), D::Duration(_))
            | (D::Time(_), D::Time(_))
            | (D::Address(_), D::Address(_))
            | (D::Subnet { .. }, D::Subnet { .. }) => true,
            (D::Str { offsets: a, .. }, D::Str { offsets: b, .. })
            | (D::Blob { offsets: a, .. }, D::Blob { offsets: b, .. }) => fits(a, b),
            (
                D::List {
                    offsets: a,
                    values: x,
                },
                D::List {
                    offsets: b,
                    values: y,
                },
            ) => fits(a, b) && x.can_append(y),
            (
                D::Map {
                    offsets: a,
                    keys: k1,
                    values: v1,
                },
                D::Map {
                    offsets: b,
                    keys: k2,
                    values: v2,
                },
            ) => fits(a, b) && k1.can_append(k2) && v1.can_append(v2),
            (D::Record(a), D::Record(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.can_append(y))
            }
            _ => false,
        }
    }

    /// Appends the rows of `other` after this column's rows; the caller checked
    /// [`Column::can_append`].
    pub fn append(&mut self, other: Column) {
        use ColumnData as D;
        let (n, m) = (self.len(), other.len());
        if !(self.validity.words.is_empty() && other.validity.words.is_empty()) {
            let w = &mut self.validity.words;
            if w.is_empty() {
                // "All valid" made explicit for the rows already here.
                w.resize(n.div_ceil(64), 0);
                for i in 0..n {
                    w[i / 64] |= 1 << (i % 64);
                }
            }
            w.resize((n + m).div_ceil(64), 0);
            for j in 0..m {
                if other.validity.is_valid(j) {
                    let i = n + j;
                    w[i / 64] |= 1 << (i % 64);
                }
            }
        }
        // Offsets of `b` continued after the last of `a`.
        fn join(a: &mut Vec<u32>, b: Vec<u32>) {
            let base = a.last().copied().unwrap_or(0);
            if a.is_empty() {
                a.push(0);
            }
            a.extend(b.into_iter().skip(1).map(|o| base + o));
        }
        match (&mut self.data, other.data) {
            (D::Bool(a), D::Bool(b)) => a.extend(b),
            (D::Int(a), D::Int(b))
            | (D::Duration(a), D::Duration(b))
            | (D::Time(a), D::Time(b)) => a.extend(b),
            (D::Count(a), D::Count(b)) => a.extend(b),
            (D::Real(a), D::Real(b)) => a.extend(b),
            (D::Address(a), D::Address(b)) => a.extend(b),
            (D::Subnet { addrs: a, lens: l }, D::Subnet { addrs: b, lens: k }) => {
                a.extend(b);
                l.extend(k);
            }
            (
                D::Str {
                    offsets: a,
                    bytes: x,
                },
                D::Str {
                    offsets: b,
                    bytes: y,
                },
            )
            | (
                D::Blob {
                    offsets: a,
                    bytes: x,
                },
                D::Blob {
                    offsets: b,
                    bytes: y,
                },
            ) => {
                join(a, b);
                x.extend(y);
            }
            (
                D::List {
                    offsets: a,
                    values: x,
                },
                D::List {
                    offsets: b,
                    values: y,
                },
            ) => {
                join(a, b);
                x.append(*y);
            }
            (
                D::Map {
                    offsets: a,
                    keys: k1,
                    values: v1,
                },
                D::Map {
                    offsets: b,
                    keys: k2,
                    values: v2,
                },
            ) => {
                join(a, b);
                k1.append(*k2);
                v1.append(*v2);
            }
            (D::Record(a), D::Record(b)) => {
                for (x, y) in a.iter_mut().zip(b) {
                    x.append(y);
                }
            }
            _ => unreachable!("the caller checked can_append"),
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            ColumnData::Bool(v) => v.len(),
            ColumnData::Int(v) | ColumnData::Duration(v) | ColumnData::Time(v) => v.len(),
            ColumnData::Count(v) => v.len(),
            ColumnData::Real(v) => v.len(),
            ColumnData::Str { offsets, .. } | ColumnData::Blob { offsets, .. } => {
                offsets.len().saturating_sub(1)
            }
            ColumnData::Address(v) => v.len(),
            ColumnData::Subnet { addrs, .. } => addrs.len(),
            ColumnData::List { offsets, .. } | ColumnData::Map { offsets, .. } => {
                offsets.len().saturating_sub(1)
            }
            ColumnData::Record(cs) => cs.first().map(|c| c.len()).unwrap_or(0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn is_valid(&self, row: usize) -> bool {
        self.validity.is_valid(row)
    }

    /// The bytes of a string cell (empty for other columns): for callers that
    /// hash or compare them, which need no UTF-8 check.
    #[inline]
    pub fn bytes_at(&self, row: usize) -> &[u8] {
        match &self.data {
            ColumnData::Str { offsets, bytes } => {
                &bytes[offsets[row] as usize..offsets[row + 1] as usize]
            }
            _ => &[],
        }
    }

    /// String cell without validity check; callers check validity first.
    #[inline]
    pub fn str_at(&self, row: usize) -> &str {
        match &self.data {
            ColumnData::Str { offsets, bytes } => {
                let (a, b) = (offsets[row] as usize, offsets[row + 1] as usize);
                // Batches are validated (offsets on char boundaries of UTF-8 bytes)
                // when built and when decoded, so this slice is UTF-8.
                std::str::from_utf8(&bytes[a..b]).unwrap_or_default()
            }
            _ => "",
        }
    }

    /// The cell at `row`.
    pub fn get(&self, row: usize) -> ValueRef<'_> {
        if !self.is_valid(row) {
            return ValueRef::Null;
        }
        match &self.data {
            ColumnData::Bool(v) => ValueRef::Bool(v[row]),
            ColumnData::Int(v) => ValueRef::Int(v[row]),
            ColumnData::Count(v) => ValueRef::Count(v[row]),
            ColumnData::Real(v) => ValueRef::Real(v[row]),
            ColumnData::Duration(v) => ValueRef::Duration(v[row]),
            ColumnData::Time(v) => ValueRef::Time(v[row]),
            ColumnData::Str { .. } => ValueRef::Str(self.str_at(row)),
            ColumnData::Address(v) => ValueRef::Address(Address(v[row])),
            ColumnData::Subnet { addrs, lens } => ValueRef::Subnet(Subnet {
                addr: Address(addrs[row]),
                len: lens[row],
            }),
            ColumnData::List { offsets, values } => {
                ValueRef::List(values, offsets[row] as usize, offsets[row + 1] as usize)
            }
            ColumnData::Map {
                offsets,
                keys,
                values,
            } => ValueRef::Map(
                keys,
                values,
                offsets[row] as usize,
                offsets[row + 1] as usize,
            ),
            ColumnData::Record(cs) => ValueRef::Record(cs, row),
            ColumnData::Blob { offsets, bytes } => {
                ValueRef::Blob(&bytes[offsets[row] as usize..offsets[row + 1] as usize])
            }
        }
    }

    /// The cell at `row` as an owned value, typed by `ty` (which tells strings from
    /// patterns and enums, and names record fields).
    pub fn value(&self, row: usize, ty: &Type) -> Value {
        self.get(row).to_value(ty)
    }

    /// Checks internal consistency (lengths, offsets, UTF-8) of a column decoded
    /// from untrusted bytes against its type and expected row count.
    pub fn validate(&self, ty: &Type, rows: usize) -> Result<(), String> {
        if self.len() != rows {
            return Err(format!("has {} rows, expected {rows}", self.len()));
        }
        if !self.validity.words.is_empty() && self.validity.words.len() * 64 < rows {
            return Err("validity bitmap too short".into());
        }
        fn check_offsets(offsets: &[u32], limit: usize) -> Result<(), String> {
            if offsets.first().copied().unwrap_or(0) != 0 {
                return Err("offsets do not start at 0".into());
            }
            // Folded without an early exit, so the pass vectorizes: a
            // batch's offsets are almost always in order.
            let decrease = offsets
                .iter()
                .zip(offsets.iter().skip(1))
                .fold(false, |d, (a, b)| d | (a > b));
            if decrease {
                return Err("offsets decrease".into());
            }
            if offsets.last().copied().unwrap_or(0) as usize != limit {
                return Err("offsets do not end at the child length".into());
            }
            Ok(())
        }
        match (&self.data, ty.base()) {
            (ColumnData::Bool(_), Type::Bool)
            | (ColumnData::Int(_), Type::Int)
            | (ColumnData::Count(_), Type::Count)
            | (ColumnData::Real(_), Type::Real)
            | (ColumnData::Duration(_), Type::Duration)
            | (ColumnData::Time(_), Type::Time)
            | (ColumnData::Address(_), Type::Address) => Ok(()),
            (ColumnData::Subnet { addrs, lens }, Type::Subnet) => {
                if addrs.len() != lens.len() || lens.iter().any(|l| *l > 128) {
                    return Err("bad subnet lengths".into());
                }
                Ok(())
            }
            (ColumnData::Str { offsets, bytes }, Type::String | Type::Pattern | Type::Enum(_)) => {
                check_offsets(offsets, bytes.len())?;
                // ASCII (most logs' strings, checked 32 bytes at a time) is
                // UTF-8 with a character boundary at every offset.
                if bytes.is_ascii() {
                    return Ok(());
                }
                let s = std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
                if offsets.iter().any(|o| !s.is_char_boundary(*o as usize)) {
                    return Err("offset inside a UTF-8 sequence".into());
                }
                Ok(())
            }
            (ColumnData::Blob { offsets, bytes }, Type::Blob) => {
                check_offsets(offsets, bytes.len())
            }
            (ColumnData::List { offsets, values }, Type::List(t)) => {
                check_offsets(offsets, values.len())?;
                values.validate(t, values.len())
            }
            (
                ColumnData::Map {
                    offsets,
                    keys,
                    values,
                },
                Type::Map(k, v),
            ) => {
                check_offsets(offsets, keys.len())?;
                keys.validate(k, keys.len())?;
                values.validate(v, keys.len())
            }
            (ColumnData::Record(cs), Type::Record(fs)) => {
                if cs.len() != fs.len() {
                    return Err("record column count differs from type".into());
                }
                for (c, f) in cs.iter().zip(fs) {
                    c.validate(&f.ty, rows)?;
                }
                Ok(())
            }
            (_, t) => Err(format!("storage does not match type {t}")),
        }
    }
}

impl<'a> ValueRef<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, ValueRef::Null)
    }

    pub fn to_value(&self, ty: &Type) -> Value {
        match *self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Count(c) => Value::Count(c),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Duration(d) => Value::Duration(d),
            ValueRef::Time(t) => Value::Time(t),
            ValueRef::Str(s) => match ty.base() {
                Type::Pattern => Value::Pattern(s.to_string()),
                Type::Enum(_) => Value::Enum(s.to_string()),
                _ => Value::String(s.to_string()),
            },
            ValueRef::Address(a) => Value::Address(a),
            ValueRef::Subnet(s) => Value::Subnet(s),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            ValueRef::List(c, a, b) => {
                let et = ty.list_element();
                Value::List((a..b).map(|i| c.value(i, et)).collect())
            }
            ValueRef::Map(k, v, a, b) => {
                let (kt, vt) = ty.map_types();
                Value::Map((a..b).map(|i| (k.value(i, kt), v.value(i, vt))).collect())
            }
            ValueRef::Record(cs, row) => {
                let fields = match ty.base() {
                    Type::Record(fs) => fs.as_slice(),
                    _ => &[],
                };
                Value::Record(
                    cs.iter()
                        .zip(fields)
                        .map(|(c, f)| (f.name.clone(), c.value(row, &f.ty)))
                        .collect(),
                )
            }
        }
    }
}

impl Batch {
    pub fn column(&self, i: usize) -> &Column {
        &self.columns[i]
    }

    /// About the rkyv bytes of rows `range` (see [`Column::rows_bytes`]).
    pub fn rows_bytes(&self, range: std::ops::Range<usize>) -> usize {
        self.columns
            .iter()
            .map(|c| c.rows_bytes(range.clone()))
            .sum()
    }

    /// About the bytes this batch takes serialized: its values plus headers,
    /// padding and the schema.
    pub fn encoded_len_hint(&self) -> usize {
        let schema: usize = self
            .schema
            .fields
            .iter()
            .map(|f| f.name.len() + 64)
            .sum::<usize>()
            + self.schema.name.len();
        self.rows_bytes(0..self.rows as usize) + 64 * self.columns.len() + 2 * schema + 256
    }

    /// Serializes to the wire form (rkyv of [`super::wire::WireBatch`], the
    /// columns narrowed), into one allocation of about the right size: growing
    /// the buffer from empty copied a batch's bytes several times over, and
    /// then once more out of rkyv's aligned buffer. (rkyv positions are
    /// relative to the start, so any buffer works; readers align it.)
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = super::wire::encode(self);
        // A kept buffer when there is one (`pool`): a fresh one of a batch's
        // size is fresh pages, faulted in as rkyv writes them. The hint is that
        // of the unnarrowed batch, an upper bound.
        let hint = self.encoded_len_hint();
        let mut buf = super::pool::Pool::global().take(hint);
        buf.reserve_exact(super::pool::rounded(hint));
        rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(&wire, buf)
            .expect("serializing a batch into memory cannot fail")
    }

    /// Validates wire bytes (bytecheck), decodes them and validates the column
    /// structure. Bytes from peers are untrusted and always come through here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Batch, BatchError> {
        let batch = with_aligned(bytes, |b| {
            let wire = super::checked::access::<super::wire::ArchivedWireBatch>(b)
                .map_err(BatchError::Archive)?;
            super::wire::decode(wire)
        })?;
        batch.validate()?;
        Ok(batch)
    }

    /// Validates wire bytes (bytecheck) without decoding: enough for a hop
    /// that only forwards or drops the batch.
    pub fn check_bytes(bytes: &[u8]) -> Result<u32, BatchError> {
        with_aligned(bytes, |b| {
            super::checked::access::<super::wire::ArchivedWireBatch>(b)
                .map(|a| a.rows.to_native())
                .map_err(BatchError::Archive)
        })
    }

    /// Structural validation of every column against the schema.
    pub fn validate(&self) -> Result<(), BatchError> {
        if self.schema.fields.is_empty() || self.schema.name.is_empty() {
            return Err(BatchError::Inconsistent {
                column: 0,
                reason: format!(
                    "schema {:?} is empty: a batch needs a named schema with at least one field",
                    self.schema.name
                ),
            });
        }
        if self.columns.len() != self.schema.fields.len() {
            return Err(BatchError::Inconsistent {
                column: self.columns.len(),
                reason: format!(
                    "{} columns for {} fields",
                    self.columns.len(),
                    self.schema.fields.len()
                ),
            });
        }
        for (i, (c, f)) in self.columns.iter().zip(&self.schema.fields).enumerate() {
            c.validate(&f.ty, self.rows as usize)
                .map_err(|reason| BatchError::Inconsistent { column: i, reason })?;
        }
        Ok(())
    }

    /// The row as (field name, value) pairs.
    pub fn row(&self, row: usize) -> Vec<(&str, Value)> {
        self.schema
            .fields
            .iter()
            .zip(&self.columns)
            .map(|(f, c)| (f.name.as_str(), c.value(row, &f.ty)))
            .collect()
    }

    /// rkyv bytes of this batch, split into row ranges whose bytes each fit in
    /// `max` (a frame limit): `(first row, bytes)` pairs, one when it fits. A
    /// single row larger than `max` stays one part; the frame limit refuses it.
    pub fn to_bytes_fitting(&self, max: usize) -> Vec<(u32, Vec<u8>)> {
        let bytes = self.to_bytes();
        if bytes.len() <= max || self.rows <= 1 {
            return vec![(0, bytes)];
        }
        let parts = bytes.len().div_ceil((max / 2).max(1)).max(2) as u32;
        let step = self.rows.div_ceil(parts).max(1);
        let mut out = Vec::new();
        let mut at = 0;
        while at < self.rows {
            let end = (at + step).min(self.rows);
            let part = self.select(&(at..end).collect::<Vec<_>>());
            for (off, b) in part.to_bytes_fitting(max) {
                out.push((at + off, b));
            }
            at = end;
        }
        out
    }

    /// Appends `other`'s rows when it has this batch's schema and its columns
    /// fit; otherwise hands it back untouched.
    pub fn append(&mut self, other: Batch) -> Result<(), Batch> {
        let fits = self.schema == other.schema
            && self.columns.len() == other.columns.len()
            && self.rows.checked_add(other.rows).is_some()
            && self
                .columns
                .iter()
                .zip(&other.columns)
                .all(|(a, b)| a.can_append(b));
        if !fits {
            return Err(other);
        }
        self.rows += other.rows;
        for (a, b) in self.columns.iter_mut().zip(other.columns) {
            a.append(b);
        }
        Ok(())
    }

    /// A new batch with only the selected rows (ascending), same schema.
    pub fn select(&self, rows: &[u32]) -> Batch {
        let mut b = super::builder::BatchBuilder::new(self.schema.clone());
        for &r in rows {
            for (i, (c, f)) in self.columns.iter().zip(&self.schema.fields).enumerate() {
                b.column(i).push_value(&c.value(r as usize, &f.ty));
            }
            b.finish_row();
        }
        b.finish()
    }
}
