//! Partition synopses: per-column min/max keys and null counts, kept in the catalog
//! so whole partitions are pruned (or wholly accepted) before any index is read.

use super::value_index::Hits;
use crate::data::{Column, ColumnData, Type, Value};
use crate::query::Op;
use rkyv::{Archive, Deserialize, Serialize};

/// Summary of one column of a partition.
#[derive(Clone, Debug, Default, PartialEq, Archive, Serialize, Deserialize)]
pub struct ColumnSynopsis {
    /// Smallest and largest value as a comparable number (see `num`), if the type is ordered.
    pub min: Option<NumKey>,
    pub max: Option<NumKey>,
    pub nulls: u32,
}

/// A number in one of the comparable domains (ints, counts and reals compare as reals
/// only where exact is not needed; we keep the exact domain).
#[derive(Clone, Copy, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub enum NumKey {
    I(i64),
    U(u64),
    F(f64),
}

impl ColumnSynopsis {
    pub fn add(&mut self, col: &Column) {
        fn upd<T: Copy + PartialOrd>(
            min: &mut Option<NumKey>,
            max: &mut Option<NumKey>,
            v: T,
            wrap: fn(T) -> NumKey,
            get: fn(&NumKey) -> Option<T>,
        ) {
            if min.and_then(|m| get(&m)).is_none_or(|m| v < m) {
                *min = Some(wrap(v));
            }
            if max.and_then(|m| get(&m)).is_none_or(|m| v > m) {
                *max = Some(wrap(v));
            }
        }
        for i in 0..col.len() {
            if !col.is_valid(i) {
                self.nulls += 1;
                continue;
            }
            match &col.data {
                ColumnData::Int(v) | ColumnData::Duration(v) | ColumnData::Time(v) => {
                    upd(&mut self.min, &mut self.max, v[i], NumKey::I, |k| match k {
                        NumKey::I(x) => Some(*x),
                        _ => None,
                    })
                }
                ColumnData::Count(v) => {
                    upd(&mut self.min, &mut self.max, v[i], NumKey::U, |k| match k {
                        NumKey::U(x) => Some(*x),
                        _ => None,
                    })
                }
                ColumnData::Real(v) if !v[i].is_nan() => {
                    upd(&mut self.min, &mut self.max, v[i], NumKey::F, |k| match k {
                        NumKey::F(x) => Some(*x),
                        _ => None,
                    })
                }
                _ => return,
            }
        }
    }

    /// Whether `op value` can hold for none of the rows (`Some(false)`), for all of them
    /// (`Some(true)`), or either (`None`).
    pub fn decide(&self, ty: &Type, op: Op, value: &Value, rows: u32) -> Option<bool> {
        let (min, max) = (self.min?, self.max?);
        let v = match (ty.base(), value) {
            (Type::Int, Value::Int(x)) | (Type::Time, Value::Time(x)) => NumKey::I(*x),
            (Type::Duration, Value::Duration(x)) => NumKey::I(*x),
            (Type::Count, Value::Count(x)) => NumKey::U(*x),
            (Type::Real, Value::Real(x)) => NumKey::F(*x),
            _ => return None,
        };
        let cmp = |a: NumKey, b: NumKey| -> Option<std::cmp::Ordering> {
            match (a, b) {
                (NumKey::I(a), NumKey::I(b)) => Some(a.cmp(&b)),
                (NumKey::U(a), NumKey::U(b)) => Some(a.cmp(&b)),
                (NumKey::F(a), NumKey::F(b)) => a.partial_cmp(&b),
                _ => None,
            }
        };
        use std::cmp::Ordering::*;
        let (lo, hi) = (cmp(min, v)?, cmp(max, v)?);
        let all_valid = self.nulls == 0 && rows > 0;
        let res = match op {
            Op::Eq if lo == Greater || hi == Less => Some(false),
            Op::Lt if lo != Less => Some(false),
            Op::Lt if hi == Less => Some(true),
            Op::Le if lo == Greater => Some(false),
            Op::Le if hi != Greater => Some(true),
            Op::Gt if hi != Greater => Some(false),
            Op::Gt if lo == Greater => Some(true),
            Op::Ge if hi == Less => Some(false),
            Op::Ge if lo != Less => Some(true),
            _ => None,
        };
        // "All rows" only holds when no row is null.
        match res {
            Some(true) if !all_valid => None,
            r => r,
        }
    }

    /// `decide` as hits.
    pub fn hits(&self, ty: &Type, op: Op, value: &Value, rows: u32) -> Option<Hits> {
        self.decide(ty, op, value, rows)
            .map(|all| if all { Hits::all(rows) } else { Hits::none() })
    }
}
