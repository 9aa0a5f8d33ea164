//! Builders that readers fill row by row and turn into a columnar [`Batch`].

use super::batch::{Batch, Column, ColumnData, Validity};
use super::types::{Schema, Type};
use super::value::{Address, Subnet, Value};

/// Appends cells of one type to a column.
pub struct ColumnBuilder {
    ty: Type,
    valid: Vec<u64>,
    nulls: bool,
    len: usize,
    data: ColumnData,
    nested: Nested,
    /// Cells and string bytes of the last batch finished: what the next one
    /// reserves once it has a row (see `reserve_last`).
    last: (usize, usize),
}

fn empty_data(ty: &Type) -> ColumnData {
    match ty.base() {
        Type::Bool => ColumnData::Bool(Vec::new()),
        Type::Int => ColumnData::Int(Vec::new()),
        Type::Count => ColumnData::Count(Vec::new()),
        Type::Real => ColumnData::Real(Vec::new()),
        Type::Duration => ColumnData::Duration(Vec::new()),
        Type::Time => ColumnData::Time(Vec::new()),
        Type::String | Type::Pattern | Type::Enum(_) => ColumnData::Str {
            offsets: vec![0],
            bytes: Vec::new(),
        },
        Type::Address => ColumnData::Address(Vec::new()),
        Type::Subnet => ColumnData::Subnet {
            addrs: Vec::new(),
            lens: Vec::new(),
        },
        Type::Blob => ColumnData::Blob {
            offsets: vec![0],
            bytes: Vec::new(),
        },
        Type::List(_) | Type::Map(_, _) | Type::Record(_) => ColumnData::Record(Vec::new()),
        Type::Alias(_, _) => unreachable!("base() strips aliases"),
    }
}

/// Nested columns are built by child builders and assembled in `finish`.
enum Nested {
    None,
    List(Box<ColumnBuilder>, Vec<u32>),
    Map(Box<ColumnBuilder>, Box<ColumnBuilder>, Vec<u32>),
    Record(Vec<ColumnBuilder>),
}

impl ColumnBuilder {
    pub fn new(ty: Type) -> Self {
        let data = empty_data(&ty);
        let nested = Nested::for_type(&ty);
        ColumnBuilder {
            ty,
            valid: Vec::new(),
            nulls: false,
            len: 0,
            data,
            nested,
            last: (0, 0),
        }
    }

    pub fn ty(&self) -> &Type {
        &self.ty
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn mark(&mut self, valid: bool) {
        let (w, b) = (self.len / 64, self.len % 64);
        if w == self.valid.len() {
            self.valid.push(0);
        }
        if valid {
            self.valid[w] |= 1 << b;
        } else {
            self.nulls = true;
        }
        self.len += 1;
    }

    /// Appends a null cell.
    pub fn push_null(&mut self) {
        match &mut self.data {
            ColumnData::Bool(v) => v.push(false),
            ColumnData::Int(v) | ColumnData::Duration(v) | ColumnData::Time(v) => v.push(0),
            ColumnData::Count(v) => v.push(0),
            ColumnData::Real(v) => v.push(0.0),
            ColumnData::Str { offsets, bytes } | ColumnData::Blob { offsets, bytes } => {
                offsets.push(bytes.len() as u32)
            }
            ColumnData::Address(v) => v.push([0; 16]),
            ColumnData::Subnet { addrs, lens } => {
                addrs.push([0; 16]);
                lens.push(0);
            }
            _ => {}
        }
        self.nested.push_null_nested();
        self.mark(false);
    }

    #[inline]
    pub fn push_bool(&mut self, x: bool) {
        if let ColumnData::Bool(v) = &mut self.data {
            v.push(x);
            self.mark(true);
        } else {
            self.push_null();
        }
    }
    #[inline]
    pub fn push_int(&mut self, x: i64) {
        match &mut self.data {
            ColumnData::Int(v) => v.push(x),
            ColumnData::Count(v) if x >= 0 => v.push(x as u64),
            ColumnData::Real(v) => v.push(x as f64),
            _ => return self.push_null(),
        }
        self.mark(true);
    }
    #[inline]
    pub fn push_count(&mut self, x: u64) {
        match &mut self.data {
            ColumnData::Count(v) => v.push(x),
            ColumnData::Int(v) if x <= i64::MAX as u64 => v.push(x as i64),
            ColumnData::Real(v) => v.push(x as f64),
            _ => return self.push_null(),
        }
        self.mark(true);
    }
    #[inline]
    pub fn push_real(&mut self, x: f64) {
        if let ColumnData::Real(v) = &mut self.data {
            v.push(x);
            self.mark(true);
        } else {
            self.push_null();
        }
    }
    #[inline]
    pub fn push_duration(&mut self, ns: i64) {
        if let ColumnData::Duration(v) = &mut self.data {
            v.push(ns);
            self.mark(true);
        } else {
            self.push_null();
        }
    }
    #[inline]
    pub fn push_time(&mut self, ns: i64) {
        if let ColumnData::Time(v) = &mut self.data {
            v.push(ns);
            self.mark(true);
        } else {
            self.push_null();
        }
    }
    #[inline]
    pub fn push_str(&mut self, s: &str) {
        if let ColumnData::Str { offsets, bytes } = &mut self.data {
            bytes.extend_from_slice(s.as_bytes());
            offsets.push(bytes.len() as u32);
            self.mark(true);
        } else {
            self.push_null();
        }
    }
    /// Appends raw bytes to a blob column (null in any other column).
    #[inline]
    pub fn push_blob(&mut self, b: &[u8]) {
        if let ColumnData::Blob { offsets, bytes } = &mut self.data {
            bytes.extend_from_slice(b);
            offsets.push(bytes.len() as u32);
            self.mark(true);
        } else {
            self.push_null();
        }
    }
    #[inline]
    pub fn push_address(&mut self, a: Address) {
        if let ColumnData::Address(v) = &mut self.data {
            v.push(a.0);
            self.mark(true);
        } else {
            self.push_null();
        }
    }
    #[inline]
    pub fn push_subnet(&mut self, s: Subnet) {
        if let ColumnData::Subnet { addrs, lens } = &mut self.data {
            addrs.push(s.addr.0);
            lens.push(s.len);
            self.mark(true);
        } else {
            self.push_null();
        }
    }

    /// Appends a list cell: `fill` pushes the elements into the element builder.
    pub fn push_list(&mut self, fill: impl FnOnce(&mut ColumnBuilder)) {
        let Nested::List(child, offsets) = &mut self.nested else {
            return self.push_null();
        };
        fill(child);
        offsets.push(child.len() as u32);
        self.mark(true);
    }

    /// Makes room for as many cells and string bytes as the last batch held:
    /// a reader's batches are mostly alike, and growing every column from
    /// empty again copied each one about once more (2% of a JSON import's
    /// CPU, in `realloc`). Called once a batch has its first row, so a
    /// builder whose schema does not come back holds no memory.
    fn reserve_last(&mut self) {
        let (cells, bytes) = self.last;
        match &mut self.data {
            ColumnData::Bool(v) => v.reserve(cells),
            ColumnData::Int(v) | ColumnData::Duration(v) | ColumnData::Time(v) => v.reserve(cells),
            ColumnData::Count(v) => v.reserve(cells),
            ColumnData::Real(v) => v.reserve(cells),
            ColumnData::Str { offsets, bytes: b } | ColumnData::Blob { offsets, bytes: b } => {
                offsets.reserve(cells);
                b.reserve(bytes);
            }
            ColumnData::Address(v) => v.reserve(cells),
            ColumnData::Subnet { addrs, lens } => {
                addrs.reserve(cells);
                lens.reserve(cells);
            }
            _ => {}
        }
        self.valid.reserve(cells.div_ceil(64));
        match &mut self.nested {
            Nested::None => {}
            Nested::List(child, offsets) => {
                offsets.reserve(cells);
                child.reserve_last();
            }
            Nested::Map(k, v, offsets) => {
                offsets.reserve(cells);
                k.reserve_last();
                v.reserve_last();
            }
            Nested::Record(children) => children.iter_mut().for_each(|c| c.reserve_last()),
        }
    }

    /// Removes the last cell, leaving the builder as it was before that
    /// cell's push.
    pub fn pop(&mut self) {
        if self.len == 0 {
            return;
        }
        self.len -= 1;
        let (w, b) = (self.len / 64, self.len % 64);
        let was_valid = self.valid[w] >> b & 1 == 1;
        self.valid[w] &= !(1 << b);
        if b == 0 {
            // `mark` added this word for this cell.
            self.valid.pop();
        }
        match &mut self.data {
            ColumnData::Bool(v) => drop(v.pop()),
            ColumnData::Int(v) | ColumnData::Duration(v) | ColumnData::Time(v) => drop(v.pop()),
            ColumnData::Count(v) => drop(v.pop()),
            ColumnData::Real(v) => drop(v.pop()),
            ColumnData::Str { offsets, bytes } | ColumnData::Blob { offsets, bytes } => {
                offsets.pop();
                bytes.truncate(*offsets.last().unwrap_or(&0) as usize);
            }
            ColumnData::Address(v) => drop(v.pop()),
            ColumnData::Subnet { addrs, lens } => {
                addrs.pop();
                lens.pop();
            }
            _ => {}
        }
        match &mut self.nested {
            Nested::None => {}
            Nested::List(child, offsets) => {
                offsets.pop();
                child.truncate(*offsets.last().unwrap_or(&0) as usize);
            }
            Nested::Map(k, v, offsets) => {
                offsets.pop();
                let n = *offsets.last().unwrap_or(&0) as usize;
                k.truncate(n);
                v.truncate(n);
            }
            Nested::Record(children) => children.iter_mut().for_each(|c| c.pop()),
        }
        if !was_valid {
            // Whether a null is left decides if the column gets a bitmap.
            let (full, rest) = (self.len / 64, self.len % 64);
            let mask = (1u64 << rest) - 1;
            self.nulls = self.valid[..full].iter().any(|&w| w != u64::MAX)
                || (rest > 0 && self.valid[full] & mask != mask);
        }
    }

    /// Removes cells from the end until `len` are left.
    pub fn truncate(&mut self, len: usize) {
        while self.len > len {
            self.pop();
        }
    }

    /// Appends any value, converting where VAST would (a count into an int column,
    /// a string into an enum). A value that does not fit the type becomes null and
    /// `false` is returned.
    pub fn push_value(&mut self, v: &Value) -> bool {
        match (v, self.ty.base().clone()) {
            (Value::Null, _) => {
                self.push_null();
                return true;
            }
            (Value::Bool(b), Type::Bool) => self.push_bool(*b),
            (Value::Int(i), Type::Int | Type::Real) => self.push_int(*i),
            (Value::Int(i), Type::Count) if *i >= 0 => self.push_int(*i),
            (Value::Count(c), Type::Count | Type::Real) => self.push_count(*c),
            (Value::Count(c), Type::Int) if *c <= i64::MAX as u64 => self.push_count(*c),
            (Value::Real(r), Type::Real) => self.push_real(*r),
            (Value::Duration(d), Type::Duration) => self.push_duration(*d),
            (Value::Time(t), Type::Time) => self.push_time(*t),
            (
                Value::String(s) | Value::Pattern(s) | Value::Enum(s),
                Type::String | Type::Pattern | Type::Enum(_),
            ) => self.push_str(s),
            (Value::Address(a), Type::Address) => self.push_address(*a),
            (Value::Subnet(s), Type::Subnet) => self.push_subnet(*s),
            (Value::Blob(b), Type::Blob) => self.push_blob(b),
            (Value::List(xs), Type::List(_)) => {
                let mut ok = true;
                self.push_list(|c| {
                    for x in xs {
                        ok &= c.push_value(x);
                    }
                });
                return ok;
            }
            (Value::Map(kvs), Type::Map(_, _)) => {
                let Nested::Map(k, val, offsets) = &mut self.nested else {
                    self.push_null();
                    return false;
                };
                let mut ok = true;
                for (kk, vv) in kvs {
                    ok &= k.push_value(kk);
                    ok &= val.push_value(vv);
                }
                offsets.push(k.len() as u32);
                self.mark(true);
                return ok;
            }
            (Value::Record(fs), Type::Record(tys)) => {
                let Nested::Record(children) = &mut self.nested else {
                    self.push_null();
                    return false;
                };
                let mut ok = true;
                for (child, t) in children.iter_mut().zip(&tys) {
                    match fs.iter().find(|(n, _)| *n == t.name) {
                        Some((_, v)) => ok &= child.push_value(v),
                        None => child.push_null(),
                    }
                }
                self.mark(true);
                return ok;
            }
            _ => {
                self.push_null();
                return false;
            }
        }
        true
    }

    /// Finishes the column and resets the builder.
    pub fn finish(&mut self) -> Column {
        self.last = (
            self.len,
            match &self.data {
                ColumnData::Str { bytes, .. } | ColumnData::Blob { bytes, .. } => bytes.len(),
                _ => 0,
            },
        );
        let validity = if self.nulls {
            Validity {
                words: std::mem::take(&mut self.valid),
            }
        } else {
            self.valid.clear();
            Validity::default()
        };
        self.nulls = false;
        self.len = 0;
        let data = match &mut self.nested {
            Nested::None => std::mem::replace(&mut self.data, empty_data(&self.ty)),
            Nested::List(child, offsets) => ColumnData::List {
                offsets: std::mem::replace(offsets, vec![0]),
                values: Box::new(child.finish()),
            },
            Nested::Map(k, v, offsets) => ColumnData::Map {
                offsets: std::mem::replace(offsets, vec![0]),
                keys: Box::new(k.finish()),
                values: Box::new(v.finish()),
            },
            Nested::Record(children) => {
                ColumnData::Record(children.iter_mut().map(|c| c.finish()).collect())
            }
        };
        Column { validity, data }
    }
}

impl Nested {
    fn for_type(ty: &Type) -> Nested {
        match ty.base() {
            Type::List(t) => Nested::List(Box::new(ColumnBuilder::new((**t).clone())), vec![0]),
            Type::Map(k, v) => Nested::Map(
                Box::new(ColumnBuilder::new((**k).clone())),
                Box::new(ColumnBuilder::new((**v).clone())),
                vec![0],
            ),
            Type::Record(fs) => Nested::Record(
                fs.iter()
                    .map(|f| ColumnBuilder::new(f.ty.clone()))
                    .collect(),
            ),
            _ => Nested::None,
        }
    }

    fn push_null_nested(&mut self) {
        match self {
            Nested::None => {}
            Nested::List(child, offsets) => offsets.push(child.len() as u32),
            Nested::Map(k, _, offsets) => offsets.push(k.len() as u32),
            Nested::Record(children) => children.iter_mut().for_each(|c| c.push_null()),
        }
    }
}

/// Builds a batch of one schema row by row: push one cell into every column, then
/// `finish_row`.
pub struct BatchBuilder {
    schema: Schema,
    columns: Vec<ColumnBuilder>,
    rows: u32,
}

impl BatchBuilder {
    pub fn new(schema: Schema) -> Self {
        let columns = schema
            .fields
            .iter()
            .map(|f| ColumnBuilder::new(f.ty.clone()))
            .collect();
        BatchBuilder {
            schema,
            columns,
            rows: 0,
        }
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    #[inline]
    pub fn column(&mut self, i: usize) -> &mut ColumnBuilder {
        &mut self.columns[i]
    }

    pub fn columns_mut(&mut self) -> &mut [ColumnBuilder] {
        &mut self.columns
    }

    /// Completes a row: columns left short (a reader that skipped a field) get a null.
    #[inline]
    pub fn finish_row(&mut self) {
        self.rows += 1;
        for c in &mut self.columns {
            if c.len() < self.rows as usize {
                c.push_null();
            }
        }
        if self.rows == 1 {
            self.columns
                .iter_mut()
                .for_each(ColumnBuilder::reserve_last);
        }
    }

    /// Drops a partially pushed row, e.g. after a parse error in the middle of
    /// a line, or a line that turned out not to fit the schema it was being
    /// read into.
    pub fn discard_partial_row(&mut self) {
        let rows = self.rows as usize;
        for c in &mut self.columns {
            c.truncate(rows);
        }
    }

    pub fn rows(&self) -> usize {
        self.rows as usize
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Finishes the batch and resets the builder for the next one.
    pub fn finish(&mut self) -> Batch {
        // Every column then holds `rows` cells: `finish_row` fills short ones.
        self.discard_partial_row();
        let b = Batch {
            schema: self.schema.clone(),
            rows: self.rows,
            columns: self.columns.iter_mut().map(ColumnBuilder::finish).collect(),
        };
        self.rows = 0;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::types::Field;

    fn schema() -> Schema {
        Schema::new(
            "t.x",
            vec![
                Field::new("a", Type::Count),
                Field::new("s", Type::String),
                Field::new("l", Type::set(Type::Address)),
            ],
        )
    }

    #[test]
    fn builds_and_roundtrips_through_rkyv() {
        let mut b = BatchBuilder::new(schema());
        b.column(0).push_count(7);
        b.column(1).push_str("héllo");
        b.column(2).push_list(|c| {
            c.push_address(Address::parse("1.2.3.4").unwrap());
            c.push_address(Address::parse("::1").unwrap());
        });
        b.finish_row();
        b.column(0).push_null();
        b.column(1).push_str("");
        b.finish_row();
        let batch = b.finish();
        assert_eq!(batch.rows, 2);
        assert!(batch.columns[0].validity.words.len() == 1);
        assert!(batch.columns[1].validity.words.is_empty());
        let bytes = batch.to_bytes();
        let back = Batch::from_bytes(&bytes).unwrap();
        assert_eq!(back, batch);
        assert_eq!(back.row(0)[1].1, Value::String("héllo".into()));
        assert_eq!(back.row(1)[0].1, Value::Null);
        assert_eq!(back.row(1)[2].1, Value::Null);
        match &back.row(0)[2].1 {
            Value::List(xs) => assert_eq!(xs.len(), 2),
            v => panic!("not a list: {v:?}"),
        }
    }

    #[test]
    fn partial_rows_are_dropped() {
        let mut b = BatchBuilder::new(schema());
        b.column(0).push_count(1);
        b.column(1).push_str("x");
        b.finish_row();
        b.column(0).push_count(2);
        b.column(1).push_str("broken");
        b.discard_partial_row();
        assert_eq!(b.rows(), 1);
        let batch = b.finish();
        assert_eq!(batch.rows, 1);
        batch.validate().unwrap();
    }

    /// Cells pushed and then given up, in any columns of any types (nested
    /// ones included), leave the batch the rows alone would have built.
    #[test]
    fn given_up_cells_leave_no_trace() {
        use crate::archive::encode::testgen::{gen_batch, gen_rows, Rng};
        let mut r = Rng(21);
        for round in 0..60 {
            let (fields, rows) = (1 + r.below(8) as usize, r.below(300));
            let want = gen_batch(&mut r, fields, rows);
            let junk = gen_rows(&mut r, &want.schema, 50);
            let mut b = BatchBuilder::new(want.schema.clone());
            let cell = |c: &Column, row: usize, f: usize| c.value(row, &want.schema.fields[f].ty);
            for row in 0..want.rows as usize {
                if r.chance(30) {
                    // A partial row of junk: some columns, some more than once.
                    let j = r.below(50) as usize;
                    for _ in 0..1 + r.below(2 * want.schema.fields.len() as u64) {
                        let f = r.below(want.schema.fields.len() as u64) as usize;
                        b.column(f).push_value(&cell(&junk.columns[f], j, f));
                    }
                    b.discard_partial_row();
                }
                for (f, c) in want.columns.iter().enumerate() {
                    assert!(b.column(f).push_value(&cell(c, row, f)));
                }
                b.finish_row();
            }
            let got = b.finish();
            got.validate().unwrap();
            // Bytes, not `==`: NaN cells are never equal.
            assert!(got.to_bytes() == want.to_bytes(), "round {round}");
        }
    }

    /// A finished builder holds no memory until its schema comes back; then
    /// it makes room for a batch like its last at once.
    #[test]
    fn room_for_the_last_batch_once_the_next_has_a_row() {
        fn held(c: &ColumnBuilder) -> usize {
            let own = match &c.data {
                ColumnData::Count(v) => v.capacity(),
                ColumnData::Str { offsets, bytes } => offsets.capacity() + bytes.capacity(),
                _ => 0,
            };
            own + match &c.nested {
                Nested::List(child, offsets) => offsets.capacity() + held(child),
                _ => 0,
            }
        }
        let mut b = BatchBuilder::new(schema());
        let row = |b: &mut BatchBuilder, i: u64| {
            b.column(0).push_count(i);
            b.column(1).push_str("some text");
            b.column(2)
                .push_list(|c| c.push_address(Address::parse("::1").unwrap()));
            b.finish_row();
        };
        for i in 0..3000 {
            row(&mut b, i);
        }
        assert_eq!(b.finish().rows, 3000);
        // `[0]` offsets aside, nothing is held.
        assert!(
            b.columns.iter().all(|c| held(c) <= 8),
            "memory held while idle"
        );
        row(&mut b, 0);
        assert!(b.columns[0].len() == 1 && held(&b.columns[0]) >= 3000);
        assert!(held(&b.columns[1]) >= 3000 + 9 * 3000);
        assert!(held(&b.columns[2]) >= 3000);
    }

    #[test]
    fn garbage_bytes_are_rejected() {
        assert!(Batch::from_bytes(b"definitely not a batch").is_err());
        let mut b = BatchBuilder::new(schema());
        b.column(0).push_count(1);
        b.finish_row();
        let mut bytes = b.finish().to_bytes();
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        bytes.truncate(n - 3);
        assert!(Batch::from_bytes(&bytes).is_err());
    }
}
