//! Arrow IPC streams, as VAST 2021's `export arrow` wrote them: one stream per
//! schema, one after another. A reader opens a stream, reads it to its end-of-stream
//! marker, and opens the next one on the same input.
//!
//! Types map as follows (the field metadata key `vast.type` keeps VAST's name where
//! Arrow has no exact equivalent):
//!
//! | VAST | Arrow |
//! |---|---|
//! | bool, int, count, real | Boolean, Int64, UInt64, Float64 |
//! | duration | Duration(ns) |
//! | time | Timestamp(ns, "UTC") |
//! | string | Utf8 |
//! | pattern, enum | Utf8 (`vast.type` = `pattern` / `enum`) |
//! | address | FixedSizeBinary(16): IPv6 bytes, IPv4 as `::ffff:a.b.c.d` (`vast.type` = `address`) |
//! | subnet | Struct{address: FixedSizeBinary(16), length: UInt8} (`vast.type` = `subnet`), length counted on the 128-bit address |
//! | blob | Binary |
//! | list<T> | List<T> |
//! | map<K, V> | Map<K, V> |
//! | record (inside lists and maps) | Struct |
//! | alias (`timestamp`, `port`, ...) | the aliased type, `vast.type` = the alias name |
//!
//! Schemas are flat: nested records are dotted column names (`id.orig_h`), as in
//! every other output format. The schema name is the Arrow schema's metadata
//! `vast.schema`.

use super::Writer;
use crate::data::batch::{Column, ColumnData, Validity};
use crate::data::{Batch, Type};
use arrow_array::types::{
    DurationNanosecondType, Float64Type, Int64Type, TimestampNanosecondType, UInt64Type, UInt8Type,
};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, FixedSizeBinaryArray, ListArray, MapArray, PrimitiveArray,
    RecordBatch, StringArray, StructArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

/// Writes one Arrow IPC stream per run of batches of the same schema.
#[derive(Default)]
pub struct ArrowWriter {
    current: Option<(String, StreamWriter<Vec<u8>>)>,
}

impl ArrowWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends the open stream (its end-of-stream marker) and writes it out.
    fn close(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if let Some((_, mut w)) = self.current.take() {
            w.finish().map_err(arrow_io)?;
            out.write_all(&w.into_inner().map_err(arrow_io)?)?;
        }
        Ok(())
    }
}

fn arrow_io(e: ArrowError) -> io::Error {
    io::Error::other(format!("arrow: {e}"))
}

impl Writer for ArrowWriter {
    fn write(&mut self, batch: &Batch, rows: &[u32], out: &mut dyn Write) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let selected;
        let b = if rows.len() == batch.rows as usize {
            batch
        } else {
            selected = batch.select(rows);
            &selected
        };
        let name = &b.schema.name;
        if self.current.as_ref().is_none_or(|(n, _)| n != name) {
            self.close(out)?;
            let w = StreamWriter::try_new(Vec::new(), &arrow_schema(b)).map_err(arrow_io)?;
            self.current = Some((name.clone(), w));
        }
        let (_, w) = self.current.as_mut().expect("a stream was just opened");
        let rb = record_batch(b).map_err(arrow_io)?;
        w.write(&rb).map_err(arrow_io)?;
        let bytes = std::mem::take(w.get_mut());
        out.write_all(&bytes)
    }

    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.close(out)
    }
}

/// The Arrow schema of a batch's schema.
pub fn arrow_schema(b: &Batch) -> SchemaRef {
    let fields: Vec<Field> = b
        .schema
        .fields
        .iter()
        .map(|f| field(&f.name, &f.ty))
        .collect();
    let meta = HashMap::from([("vast.schema".to_string(), b.schema.name.clone())]);
    Arc::new(Schema::new_with_metadata(fields, meta))
}

/// VAST's name for types Arrow has no exact equivalent of.
fn vast_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Alias(n, _) => Some(n.clone()),
        Type::Pattern => Some("pattern".into()),
        Type::Enum(_) => Some("enum".into()),
        Type::Address => Some("address".into()),
        Type::Subnet => Some("subnet".into()),
        _ => None,
    }
}

fn field(name: &str, ty: &Type) -> Field {
    let f = Field::new(name, data_type(ty), true);
    match vast_name(ty) {
        Some(n) => f.with_metadata(HashMap::from([("vast.type".to_string(), n)])),
        None => f,
    }
}

fn subnet_fields() -> Fields {
    Fields::from(vec![
        Field::new("address", DataType::FixedSizeBinary(16), true),
        Field::new("length", DataType::UInt8, true),
    ])
}

fn map_entries(k: &Type, v: &Type) -> Arc<Field> {
    Arc::new(Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", data_type(k), false),
            field("value", v),
        ])),
        false,
    ))
}

fn data_type(ty: &Type) -> DataType {
    match ty {
        Type::Bool => DataType::Boolean,
        Type::Int => DataType::Int64,
        Type::Count => DataType::UInt64,
        Type::Real => DataType::Float64,
        Type::Duration => DataType::Duration(TimeUnit::Nanosecond),
        Type::Time => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        Type::String | Type::Pattern | Type::Enum(_) => DataType::Utf8,
        Type::Address => DataType::FixedSizeBinary(16),
        Type::Subnet => DataType::Struct(subnet_fields()),
        Type::Blob => DataType::Binary,
        Type::List(t) => DataType::List(Arc::new(field("item", t))),
        Type::Map(k, v) => DataType::Map(map_entries(k, v), false),
        Type::Record(fs) => DataType::Struct(fs.iter().map(|f| field(&f.name, &f.ty)).collect()),
        Type::Alias(_, t) => data_type(t),
    }
}

fn record_batch(b: &Batch) -> Result<RecordBatch, ArrowError> {
    let schema = arrow_schema(b);
    let columns = b
        .columns
        .iter()
        .zip(&b.schema.fields)
        .map(|(c, f)| array(c, &f.ty))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, columns)
}

fn nulls(v: &Validity, len: usize) -> Option<NullBuffer> {
    if v.words.is_empty() {
        return None;
    }
    let bits = BooleanBuffer::new(Buffer::from_vec(v.words.clone()), 0, len);
    Some(NullBuffer::new(bits))
}

fn offsets(o: &[u32]) -> Result<OffsetBuffer<i32>, ArrowError> {
    let v = o
        .iter()
        .map(|&x| i32::try_from(x))
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|_| ArrowError::ComputeError("a column exceeds 2 GiB".into()))?;
    if v.is_empty() {
        return Ok(OffsetBuffer::new_empty());
    }
    Ok(OffsetBuffer::new(ScalarBuffer::from(v)))
}

fn primitive<T: arrow_array::ArrowPrimitiveType>(
    v: &[T::Native],
    n: Option<NullBuffer>,
) -> PrimitiveArray<T> {
    PrimitiveArray::<T>::new(ScalarBuffer::from(v.to_vec()), n)
}

fn addresses(a: &[[u8; 16]], n: Option<NullBuffer>) -> Result<FixedSizeBinaryArray, ArrowError> {
    let flat: Vec<u8> = a.iter().flatten().copied().collect();
    FixedSizeBinaryArray::try_new(16, Buffer::from_vec(flat), n)
}

fn array(c: &Column, ty: &Type) -> Result<ArrayRef, ArrowError> {
    let len = c.len();
    let n = nulls(&c.validity, len);
    let ty = match ty {
        Type::Alias(_, t) => t.as_ref(),
        t => t,
    };
    Ok(match (&c.data, ty) {
        (ColumnData::Bool(v), _) => {
            Arc::new(BooleanArray::new(BooleanBuffer::from(v.as_slice()), n))
        }
        (ColumnData::Int(v), _) => Arc::new(primitive::<Int64Type>(v, n)),
        (ColumnData::Count(v), _) => Arc::new(primitive::<UInt64Type>(v, n)),
        (ColumnData::Real(v), _) => Arc::new(primitive::<Float64Type>(v, n)),
        (ColumnData::Duration(v), _) => Arc::new(primitive::<DurationNanosecondType>(v, n)),
        (ColumnData::Time(v), _) => {
            Arc::new(primitive::<TimestampNanosecondType>(v, n).with_timezone("UTC"))
        }
        (ColumnData::Str { offsets: o, bytes }, _) => Arc::new(StringArray::try_new(
            offsets(o)?,
            Buffer::from_vec(bytes.clone()),
            n,
        )?),
        (ColumnData::Blob { offsets: o, bytes }, _) => Arc::new(BinaryArray::try_new(
            offsets(o)?,
            Buffer::from_vec(bytes.clone()),
            n,
        )?),
        (ColumnData::Address(a), _) => Arc::new(addresses(a, n)?),
        (ColumnData::Subnet { addrs, lens }, _) => Arc::new(StructArray::try_new(
            subnet_fields(),
            vec![
                Arc::new(addresses(addrs, None)?),
                Arc::new(primitive::<UInt8Type>(lens, None)),
            ],
            n,
        )?),
        (ColumnData::List { offsets: o, values }, Type::List(t)) => Arc::new(ListArray::try_new(
            Arc::new(field("item", t)),
            offsets(o)?,
            array(values, t)?,
            n,
        )?),
        (
            ColumnData::Map {
                offsets: o,
                keys,
                values,
            },
            Type::Map(k, v),
        ) => {
            let entries = map_entries(k, v);
            let DataType::Struct(fs) = entries.data_type().clone() else {
                unreachable!("map entries are a struct")
            };
            let kv = StructArray::try_new(fs, vec![array(keys, k)?, array(values, v)?], None)?;
            Arc::new(MapArray::try_new(entries, offsets(o)?, kv, n, false)?)
        }
        (ColumnData::Record(cs), Type::Record(fs)) => {
            let fields: Fields = fs.iter().map(|f| field(&f.name, &f.ty)).collect();
            let children = cs
                .iter()
                .zip(fs)
                .map(|(c, f)| array(c, &f.ty))
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(StructArray::try_new(fields, children, n)?)
        }
        (_, t) => {
            return Err(ArrowError::InvalidArgumentError(format!(
                "a column does not hold values of its type {t:?}"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::format::test_util;
    use arrow_array::Array;
    use arrow_ipc::reader::StreamReader;

    /// Reads the concatenated streams back.
    fn read_all(mut bytes: &[u8]) -> Vec<Vec<RecordBatch>> {
        let mut streams = Vec::new();
        while !bytes.is_empty() {
            let mut cursor = std::io::Cursor::new(bytes);
            let r = StreamReader::try_new(&mut cursor, None).unwrap();
            streams.push(r.collect::<Result<Vec<_>, _>>().unwrap());
            let used = cursor.position() as usize;
            bytes = &bytes[used..];
        }
        streams
    }

    #[test]
    fn one_stream_per_schema_and_every_type_converts() {
        let b = test_util::batch();
        let mut w = ArrowWriter::new();
        let mut out = Vec::new();
        let all: Vec<u32> = (0..b.rows).collect();
        w.write(&b, &all, &mut out).unwrap();
        w.write(&b, &[0], &mut out).unwrap();
        // Another schema starts a second stream.
        let mut other = b.clone();
        other.schema.name = "zeek.other".into();
        w.write(&other, &all, &mut out).unwrap();
        w.finish(&mut out).unwrap();
        let streams = read_all(&out);
        assert_eq!(streams.len(), 2);
        assert_eq!(streams[0].len(), 2);
        assert_eq!(streams[0][0].num_rows(), b.rows as usize);
        assert_eq!(streams[0][1].num_rows(), 1);
        let s = streams[1][0].schema();
        assert_eq!(s.metadata()["vast.schema"], "zeek.other");
        let f = s.field_with_name("id.orig_h").unwrap();
        assert_eq!(f.data_type(), &DataType::FixedSizeBinary(16));
        assert_eq!(f.metadata()["vast.type"], "address");
        let ts = streams[0][0].column_by_name("ts").unwrap();
        assert!(matches!(
            ts.data_type(),
            DataType::Timestamp(TimeUnit::Nanosecond, _)
        ));
        assert_eq!(streams[0][0].num_columns(), b.schema.fields.len());
    }
}
