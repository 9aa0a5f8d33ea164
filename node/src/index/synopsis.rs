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
    /// Adds the rows of `col`. NaN counts with the nulls: it compares true to
    /// nothing, so a partition holding one is not "all rows" of any
    /// comparison, and it sits outside every range. (Before, the first NaN
    /// ended the batch's rows here, so the values after it were missing from
    /// the range, and `r == 5.0` missed a 5.0 that followed a NaN.)
    pub fn add(&mut self, col: &Column) {
        let n = col.len();
        let all_valid = col.validity.words.is_empty();
        let valid = |i: usize| all_valid || col.is_valid(i);
        let invalid = if all_valid {
            0
        } else {
            (0..n).filter(|&i| !col.is_valid(i)).count() as u32
        };
        self.nulls += invalid;
        match &col.data {
            ColumnData::Int(v) | ColumnData::Duration(v) | ColumnData::Time(v) => {
                let r = range(v, |i, _| valid(i));
                self.widen(r, NumKey::I, |k| match k {
                    NumKey::I(x) => Some(*x),
                    _ => None,
                });
            }
            ColumnData::Count(v) => {
                let r = range(v, |i, _| valid(i));
                self.widen(r, NumKey::U, |k| match k {
                    NumKey::U(x) => Some(*x),
                    _ => None,
                });
            }
            ColumnData::Real(v) => {
                self.nulls += (0..n).filter(|&i| valid(i) && v[i].is_nan()).count() as u32;
                let r = range(v, |i, x: f64| valid(i) && !x.is_nan());
                self.widen(r, NumKey::F, |k| match k {
                    NumKey::F(x) => Some(*x),
                    _ => None,
                });
            }
            _ => {}
        }
    }

    /// Widens the range to hold `r`, the smallest and largest of a batch.
    fn widen<T: Copy + PartialOrd>(
        &mut self,
        r: Option<(T, T)>,
        wrap: fn(T) -> NumKey,
        get: fn(&NumKey) -> Option<T>,
    ) {
        let Some((lo, hi)) = r else {
            return;
        };
        if self.min.and_then(|m| get(&m)).is_none_or(|m| lo < m) {
            self.min = Some(wrap(lo));
        }
        if self.max.and_then(|m| get(&m)).is_none_or(|m| hi > m) {
            self.max = Some(wrap(hi));
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

/// The smallest and largest of the values `keep` keeps (the first of equals).
fn range<T: Copy + PartialOrd>(v: &[T], keep: impl Fn(usize, T) -> bool) -> Option<(T, T)> {
    let mut kept = v
        .iter()
        .enumerate()
        .filter(|&(i, &x)| keep(i, x))
        .map(|(_, &x)| x);
    let first = kept.next()?;
    Some(kept.fold((first, first), |(lo, hi), x| {
        (if x < lo { x } else { lo }, if x > hi { x } else { hi })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{BatchBuilder, Field, Schema};

    fn column(ty: Type, cells: &[Option<f64>]) -> Column {
        let mut b = BatchBuilder::new(Schema::new("t", vec![Field::new("x", ty.clone())]));
        for c in cells {
            let col = b.column(0);
            match (c, &ty) {
                (None, _) => col.push_null(),
                (Some(x), Type::Real) => col.push_real(*x),
                (Some(x), Type::Count) => col.push_count(*x as u64),
                (Some(x), _) => col.push_int(*x as i64),
            }
            b.finish_row();
        }
        b.finish().columns.remove(0)
    }

    /// Whatever the synopsis decides holds for the rows: "none" means no row
    /// matches, "all" means every row does. Over several batches of ints,
    /// counts and reals with nulls and NaN, for every operator.
    #[test]
    fn decisions_hold_for_every_row() {
        let mut x = 99u64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut decided = 0;
        for round in 0..400 {
            let ty = [Type::Real, Type::Int, Type::Count][round % 3].clone();
            let mut syn = ColumnSynopsis::default();
            let mut cells = Vec::new();
            for _ in 0..1 + next(3) {
                let batch: Vec<Option<f64>> = (0..1 + next(6))
                    .map(|_| match next(10) {
                        0 if round % 2 == 0 => None,
                        1 if ty == Type::Real && round % 4 == 0 => Some(f64::NAN),
                        _ => Some(next(8) as f64),
                    })
                    .collect();
                syn.add(&column(ty.clone(), &batch));
                cells.extend(batch);
            }
            for op in [Op::Eq, Op::Lt, Op::Le, Op::Gt, Op::Ge] {
                let v = next(10) as f64 - 1.0;
                let value = match ty {
                    Type::Real => Value::Real(v),
                    Type::Count if v < 0.0 => continue,
                    Type::Count => Value::Count(v as u64),
                    _ => Value::Int(v as i64),
                };
                let holds = |c: &Option<f64>| match c {
                    Some(c) => match op {
                        Op::Eq => *c == v,
                        Op::Lt => *c < v,
                        Op::Le => *c <= v,
                        Op::Gt => *c > v,
                        _ => *c >= v,
                    },
                    None => false,
                };
                match syn.decide(&ty, op, &value, cells.len() as u32) {
                    Some(true) => assert!(cells.iter().all(holds), "{op:?} {v} on {cells:?}"),
                    Some(false) => assert!(!cells.iter().any(holds), "{op:?} {v} on {cells:?}"),
                    None => continue,
                }
                decided += 1;
            }
        }
        assert!(decided > 500, "{decided}");
    }
}
