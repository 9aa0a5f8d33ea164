//! Resolution of an expression against one schema, and its evaluation on batches.
//!
//! Resolution binds extractors to columns, coerces literals to the column types and
//! folds everything decidable from the schema alone (`#type`, unknown fields) into
//! constants. Mismatched types never raise errors; they simply do not match.

use super::ast::{Expr, Meta, Op, Operand, Predicate};
use crate::data::value::parse_time;
use crate::data::{Address, Batch, ColumnData, Schema, Subnet, Type, Value, ValueRef};
use regex::Regex;
use std::cmp::Ordering;
use std::fmt;

/// An expression bound to the columns of one schema.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    True,
    False,
    And(Vec<Resolved>),
    Or(Vec<Resolved>),
    Not(Box<Resolved>),
    Cmp(Cmp),
}

/// One comparison of a column with a literal.
#[derive(Clone)]
pub struct Cmp {
    /// Index into the schema fields and batch columns.
    pub column: usize,
    pub op: Op,
    /// The literal, coerced to the column type where possible.
    pub value: Value,
    /// Compiled once for `~` and `!~`.
    pub regex: Option<Regex>,
}

impl fmt::Debug for Cmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cmp")
            .field("column", &self.column)
            .field("op", &self.op)
            .field("value", &self.value)
            .finish()
    }
}

/// The regex is derived from `value`, so it takes no part in equality.
impl PartialEq for Cmp {
    fn eq(&self, other: &Self) -> bool {
        self.column == other.column && self.op == other.op && self.value == other.value
    }
}

impl Resolved {
    /// Whether the expression is a constant.
    pub fn as_const(&self) -> Option<bool> {
        match self {
            Resolved::True => Some(true),
            Resolved::False => Some(false),
            _ => None,
        }
    }
}

fn constant(b: bool) -> Resolved {
    if b {
        Resolved::True
    } else {
        Resolved::False
    }
}

/// Conjunction with constant folding and flattening.
fn and(xs: Vec<Resolved>) -> Resolved {
    let mut out = Vec::with_capacity(xs.len());
    for x in xs {
        match x {
            Resolved::True => {}
            Resolved::False => return Resolved::False,
            Resolved::And(inner) => out.extend(inner),
            x => out.push(x),
        }
    }
    match out.len() {
        0 => Resolved::True,
        1 => out.pop().expect("one element"),
        _ => Resolved::And(out),
    }
}

/// Disjunction with constant folding and flattening.
fn or(xs: Vec<Resolved>) -> Resolved {
    let mut out = Vec::with_capacity(xs.len());
    for x in xs {
        match x {
            Resolved::False => {}
            Resolved::True => return Resolved::True,
            Resolved::Or(inner) => out.extend(inner),
            x => out.push(x),
        }
    }
    match out.len() {
        0 => Resolved::False,
        1 => out.pop().expect("one element"),
        _ => Resolved::Or(out),
    }
}

fn not(x: Resolved) -> Resolved {
    match x {
        Resolved::True => Resolved::False,
        Resolved::False => Resolved::True,
        Resolved::Not(inner) => *inner,
        x => Resolved::Not(Box::new(x)),
    }
}

/// Binds `expr` to the columns of `schema`, folding constants.
pub fn resolve(expr: &Expr, schema: &Schema) -> Resolved {
    match expr {
        Expr::And(xs) => and(xs.iter().map(|x| resolve(x, schema)).collect()),
        Expr::Or(xs) => or(xs.iter().map(|x| resolve(x, schema)).collect()),
        Expr::Not(x) => not(resolve(x, schema)),
        Expr::Pred(p) => resolve_predicate(&p.clone().normalized(), schema),
    }
}

fn resolve_predicate(p: &Predicate, schema: &Schema) -> Resolved {
    let Operand::Value(value) = &p.rhs else {
        return Resolved::False;
    };
    let columns = |select: &dyn Fn(&crate::data::Field) -> bool| {
        or(schema
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| select(f))
            .map(|(i, f)| compare_column(i, &f.ty, p.op, value))
            .collect())
    };
    match &p.lhs {
        Operand::Value(_) => Resolved::False,
        Operand::Meta(Meta::Type) => constant(meta_type(&schema.name, p.op, value)),
        Operand::Meta(Meta::Field) => constant(meta_field(schema, p.op, value)),
        Operand::Field(name) => columns(&|f| suffix_match(&schema.name, &f.name, name)),
        Operand::Type(name) => columns(&|f| type_match(&f.ty, name)),
    }
}

/// Field and type extractors of `expr` that no schema in `schemas` has, as
/// warnings (`no schema has field `x``). Such a predicate never matches, which
/// is almost always a typo. Nothing is reported when there are no schemas.
pub fn unknown_extractors(expr: &Expr, schemas: &[Schema]) -> Vec<String> {
    fn walk(e: &Expr, schemas: &[Schema], out: &mut Vec<String>) {
        match e {
            Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| walk(x, schemas, out)),
            Expr::Not(x) => walk(x, schemas, out),
            Expr::Pred(p) => {
                for side in [&p.lhs, &p.rhs] {
                    let msg = match side {
                        Operand::Field(name)
                            if !schemas.iter().any(|s| {
                                s.fields
                                    .iter()
                                    .any(|f| suffix_match(&s.name, &f.name, name))
                            }) =>
                        {
                            format!("no schema has field `{name}`")
                        }
                        Operand::Type(name)
                            if !schemas
                                .iter()
                                .any(|s| s.fields.iter().any(|f| type_match(&f.ty, name))) =>
                        {
                            format!("no schema has a field of type `:{name}`")
                        }
                        _ => continue,
                    };
                    if !out.contains(&msg) {
                        out.push(msg);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    if !schemas.is_empty() {
        walk(expr, schemas, &mut out);
    }
    out
}

/// Whether `schema_name.field_name` equals `ext` or ends with `.ext`.
pub fn suffix_match(schema_name: &str, field_name: &str, ext: &str) -> bool {
    if ext.is_empty() {
        return false;
    }
    let q = format!("{schema_name}.{field_name}");
    q == ext || (q.ends_with(ext) && q.as_bytes()[q.len() - ext.len() - 1] == b'.')
}

/// Whether a type extractor `:name` selects a field of type `ty`.
pub fn type_match(ty: &Type, name: &str) -> bool {
    ty.has_name(name) || (name == "timestamp" && matches!(ty.base(), Type::Time))
}

fn regex_of(v: &Value) -> Option<Regex> {
    match v {
        Value::Pattern(p) | Value::String(p) => Regex::new(p).ok(),
        _ => None,
    }
}

fn meta_type(name: &str, op: Op, value: &Value) -> bool {
    let eq = |v: &Value| matches!(v, Value::String(s) if s == name);
    match op {
        Op::Eq => eq(value),
        Op::Ne => matches!(value, Value::String(_)) && !eq(value),
        Op::Match | Op::NotMatch => match regex_of(value) {
            Some(re) => re.is_match(name) == (op == Op::Match),
            None => false,
        },
        Op::In | Op::NotIn => match value {
            Value::List(xs) => xs.iter().any(eq) == (op == Op::In),
            _ => false,
        },
        _ => false,
    }
}

fn meta_field(schema: &Schema, op: Op, value: &Value) -> bool {
    let any = |f: &dyn Fn(&str) -> bool| schema.fields.iter().any(|fl| f(&fl.name));
    match (op, value) {
        (Op::Eq | Op::Ne, Value::String(s)) => {
            any(&|n| suffix_match(&schema.name, n, s)) == (op == Op::Eq)
        }
        (Op::Match | Op::NotMatch, _) => match regex_of(value) {
            Some(re) => any(&|n| re.is_match(n)) == (op == Op::Match),
            None => false,
        },
        _ => false,
    }
}

/// A `Cmp` of one column, or `False` if the literal cannot apply to the column type.
fn compare_column(column: usize, ty: &Type, op: Op, value: &Value) -> Resolved {
    let stringy = matches!(ty.base(), Type::String | Type::Enum(_) | Type::Pattern);
    // As in VAST, equality with a pattern means a match.
    let op = match (op, value) {
        (Op::Eq, Value::Pattern(_)) if stringy => Op::Match,
        (Op::Ne, Value::Pattern(_)) if stringy => Op::NotMatch,
        _ => op,
    };
    let (value, regex) = match op {
        Op::Match | Op::NotMatch if stringy => match regex_of(value) {
            Some(re) => (value.clone(), Some(re)),
            None => return Resolved::False,
        },
        Op::Match | Op::NotMatch => return Resolved::False,
        _ => match coerce(op, ty, value) {
            Some(v) => (v, None),
            None => return Resolved::False,
        },
    };
    Resolved::Cmp(Cmp {
        column,
        op,
        value,
        regex,
    })
}

/// The literal as the column wants it for `op`, or `None` if they cannot be compared.
fn coerce(op: Op, ty: &Type, value: &Value) -> Option<Value> {
    if value.is_null() {
        return matches!(op, Op::Eq | Op::Ne).then_some(Value::Null);
    }
    match op {
        Op::Eq | Op::Ne => coerce_scalar(ty, value),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => match ty.base() {
            Type::Bool | Type::List(_) | Type::Map(_, _) | Type::Record(_) => None,
            _ => coerce_scalar(ty, value),
        },
        Op::In | Op::NotIn => match (ty.base(), value) {
            (_, Value::List(xs)) => Some(Value::List(
                xs.iter().filter_map(|x| coerce_scalar(ty, x)).collect(),
            )),
            (Type::Address | Type::Subnet, Value::Subnet(_)) => Some(value.clone()),
            (Type::Address | Type::Subnet, Value::String(s)) => Subnet::parse(s).map(Value::Subnet),
            (Type::String | Type::Enum(_) | Type::Pattern, Value::String(s)) => {
                Some(Value::String(s.clone()))
            }
            _ => None,
        },
        Op::Ni | Op::NotNi => match (ty.base(), value) {
            (Type::List(elem), _) => coerce_scalar(elem, value),
            (Type::Subnet, Value::Address(_) | Value::Subnet(_)) => Some(value.clone()),
            (Type::Subnet, Value::String(s)) => Address::parse(s)
                .map(Value::Address)
                .or_else(|| Subnet::parse(s).map(Value::Subnet)),
            (Type::String | Type::Enum(_) | Type::Pattern, Value::String(s)) => {
                Some(Value::String(s.clone()))
            }
            _ => None,
        },
        Op::Match | Op::NotMatch => None,
    }
}

/// Converts a literal to the representation of `ty`; mixed numbers stay as they are
/// when not representable, since cells compare with them numerically.
fn coerce_scalar(ty: &Type, value: &Value) -> Option<Value> {
    use Value as V;
    Some(match (ty.base(), value) {
        (_, V::Null) => V::Null,
        (Type::Bool, V::Bool(b)) => V::Bool(*b),
        (Type::Count, V::Count(c)) => V::Count(*c),
        (Type::Count, V::Int(i)) => u64::try_from(*i).map(V::Count).unwrap_or(V::Int(*i)),
        (Type::Int, V::Int(i)) => V::Int(*i),
        (Type::Int, V::Count(c)) => i64::try_from(*c).map(V::Int).unwrap_or(V::Count(*c)),
        (Type::Count | Type::Int, V::Real(r)) => V::Real(*r),
        (Type::Real, V::Real(r)) => V::Real(*r),
        (Type::Real, V::Count(c)) => V::Real(*c as f64),
        (Type::Real, V::Int(i)) => V::Real(*i as f64),
        (Type::Duration, V::Duration(d)) => V::Duration(*d),
        (Type::Time, V::Time(t)) => V::Time(*t),
        (Type::Time, V::String(s)) => V::Time(parse_time(s)?),
        (Type::Address, V::Address(a)) => V::Address(*a),
        (Type::Address, V::String(s)) => V::Address(Address::parse(s)?),
        (Type::Subnet, V::Subnet(n)) => V::Subnet(*n),
        (Type::Subnet, V::String(s)) => V::Subnet(Subnet::parse(s)?),
        (
            Type::String | Type::Enum(_) | Type::Pattern,
            V::String(s) | V::Enum(s) | V::Pattern(s),
        ) => V::String(s.clone()),
        (Type::List(elem), V::List(xs)) => V::List(
            xs.iter()
                .map(|x| coerce_scalar(elem, x))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// Evaluates one predicate on one cell of type `ty`. `value` should already be
/// coerced (see [`resolve`]); a regex for `~` is compiled on each call.
pub fn cmp_cell(op: Op, cell: ValueRef<'_>, ty: &Type, value: &Value) -> bool {
    eval_cell(op, cell, ty, value, None)
}

fn eval_cell(op: Op, cell: ValueRef<'_>, ty: &Type, value: &Value, re: Option<&Regex>) -> bool {
    if cell.is_null() {
        return null_result(op, value);
    }
    // Raw bytes have no literal: a blob only ever satisfies `!= nil`.
    if matches!(cell, ValueRef::Blob(_)) {
        return op == Op::Ne && matches!(value, Value::Null);
    }
    match op {
        Op::Eq => equal(cell, ty, value),
        Op::Ne => !equal(cell, ty, value),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => order(cell, value).is_some_and(|o| ord_holds(op, o)),
        Op::In => contained(cell, ty, value),
        Op::NotIn => !contained(cell, ty, value),
        Op::Ni => contains(cell, ty, value),
        Op::NotNi => !contains(cell, ty, value),
        Op::Match | Op::NotMatch => {
            let ValueRef::Str(s) = cell else {
                return false;
            };
            let hit = match re {
                Some(re) => re.is_match(s),
                None => regex_of(value).is_some_and(|re| re.is_match(s)),
            };
            hit == (op == Op::Match)
        }
    }
}

/// What a predicate yields on a null cell: only `== nil` and the negated forms hold.
fn null_result(op: Op, value: &Value) -> bool {
    match op {
        Op::Eq => value.is_null(),
        Op::Ne => !value.is_null(),
        Op::NotIn | Op::NotNi | Op::NotMatch => true,
        _ => false,
    }
}

fn ord_holds(op: Op, o: Ordering) -> bool {
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
        _ => false,
    }
}

enum Num {
    U(u64),
    I(i64),
    F(f64),
}

fn num_of_cell(c: &ValueRef<'_>) -> Option<Num> {
    match *c {
        ValueRef::Count(x) => Some(Num::U(x)),
        ValueRef::Int(x) => Some(Num::I(x)),
        ValueRef::Real(x) => Some(Num::F(x)),
        _ => None,
    }
}

fn num_of_value(v: &Value) -> Option<Num> {
    match *v {
        Value::Count(x) => Some(Num::U(x)),
        Value::Int(x) => Some(Num::I(x)),
        Value::Real(x) => Some(Num::F(x)),
        _ => None,
    }
}

fn num_cmp(a: Num, b: Num) -> Option<Ordering> {
    let int = |n: &Num| match *n {
        Num::U(x) => Some(x as i128),
        Num::I(x) => Some(x as i128),
        Num::F(_) => None,
    };
    let float = |n: &Num| match *n {
        Num::U(x) => x as f64,
        Num::I(x) => x as f64,
        Num::F(x) => x,
    };
    match (int(&a), int(&b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => float(&a).partial_cmp(&float(&b)),
    }
}

/// Ordering of a cell against a literal of a comparable type.
fn order(cell: ValueRef<'_>, value: &Value) -> Option<Ordering> {
    match (cell, value) {
        (ValueRef::Duration(a), Value::Duration(b)) | (ValueRef::Time(a), Value::Time(b)) => {
            Some(a.cmp(b))
        }
        (ValueRef::Str(a), Value::String(b) | Value::Enum(b) | Value::Pattern(b)) => {
            Some(a.cmp(b.as_str()))
        }
        (ValueRef::Address(a), Value::Address(b)) => Some(a.cmp(b)),
        (ValueRef::Subnet(a), Value::Subnet(b)) => Some(a.cmp(b)),
        (ValueRef::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (c, v) => num_cmp(num_of_cell(&c)?, num_of_value(v)?),
    }
}

fn equal(cell: ValueRef<'_>, ty: &Type, value: &Value) -> bool {
    match (cell, value) {
        (ValueRef::List(..) | ValueRef::Map(..) | ValueRef::Record(..), _) => {
            !value.is_null() && cell.to_value(ty) == *value
        }
        (c, v) => order(c, v) == Some(Ordering::Equal),
    }
}

/// `cell in value`.
fn contained(cell: ValueRef<'_>, ty: &Type, value: &Value) -> bool {
    match (cell, value) {
        (c, Value::List(xs)) => xs.iter().any(|x| equal(c, ty, x)),
        (ValueRef::Address(a), Value::Subnet(n)) => n.contains(&a),
        (ValueRef::Subnet(s), Value::Subnet(n)) => n.contains_subnet(&s),
        (ValueRef::Str(s), Value::String(v)) => v.contains(s),
        _ => false,
    }
}

/// `cell ni value`.
fn contains(cell: ValueRef<'_>, ty: &Type, value: &Value) -> bool {
    match (cell, value) {
        (ValueRef::List(col, a, b), v) => {
            let elem = match ty.base() {
                Type::List(t) => t.as_ref(),
                _ => return false,
            };
            (a..b).any(|i| equal(col.get(i), elem, v))
        }
        (ValueRef::Subnet(s), Value::Address(a)) => s.contains(a),
        (ValueRef::Subnet(s), Value::Subnet(n)) => s.contains_subnet(n),
        (ValueRef::Str(s), Value::String(v)) => s.contains(v.as_str()),
        _ => false,
    }
}

/// Evaluates a resolved expression on one row of a batch of the resolved schema.
pub fn eval_row(r: &Resolved, batch: &Batch, row: usize) -> bool {
    match r {
        Resolved::True => true,
        Resolved::False => false,
        Resolved::And(xs) => xs.iter().all(|x| eval_row(x, batch, row)),
        Resolved::Or(xs) => xs.iter().any(|x| eval_row(x, batch, row)),
        Resolved::Not(x) => !eval_row(x, batch, row),
        Resolved::Cmp(c) => eval_cell(
            c.op,
            batch.column(c.column).get(row),
            &batch.schema.fields[c.column].ty,
            &c.value,
            c.regex.as_ref(),
        ),
    }
}

/// The rows of `batch` (of the resolved schema) that match, ascending.
pub fn filter(r: &Resolved, batch: &Batch) -> Vec<u32> {
    match r {
        Resolved::True => return (0..batch.rows).collect(),
        Resolved::False => return Vec::new(),
        _ => {}
    }
    let mask = eval_mask(r, batch);
    mask.iter()
        .enumerate()
        .filter(|(_, m)| **m)
        .map(|(i, _)| i as u32)
        .collect()
}

/// Column-at-a-time evaluation into one flag per row.
fn eval_mask(r: &Resolved, batch: &Batch) -> Vec<bool> {
    let n = batch.rows as usize;
    match r {
        Resolved::True => vec![true; n],
        Resolved::False => vec![false; n],
        Resolved::And(xs) | Resolved::Or(xs) => {
            let is_and = matches!(r, Resolved::And(_));
            let mut acc = match xs.first() {
                Some(x) => eval_mask(x, batch),
                None => return vec![is_and; n],
            };
            for x in &xs[1..] {
                // Stop once the result cannot change.
                if acc.iter().all(|b| *b != is_and) {
                    break;
                }
                let m = eval_mask(x, batch);
                for (a, b) in acc.iter_mut().zip(m) {
                    if is_and {
                        *a &= b;
                    } else {
                        *a |= b;
                    }
                }
            }
            acc
        }
        Resolved::Not(x) => {
            let mut m = eval_mask(x, batch);
            m.iter_mut().for_each(|b| *b = !*b);
            m
        }
        Resolved::Cmp(c) => cmp_mask(c, batch),
    }
}

fn ord_mask<T>(out: &mut [bool], xs: &[T], op: Op, f: impl Fn(&T) -> Option<Ordering>) {
    for (o, x) in out.iter_mut().zip(xs) {
        *o = f(x).is_some_and(|ord| ord_holds(op, ord));
    }
}

fn cmp_mask(c: &Cmp, batch: &Batch) -> Vec<bool> {
    let n = batch.rows as usize;
    let col = batch.column(c.column);
    let ty = &batch.schema.fields[c.column].ty;
    let mut out = vec![false; n];
    let ordering = matches!(c.op, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge);
    let fast = match (&col.data, &c.value) {
        (ColumnData::Count(xs), Value::Count(v)) if ordering => {
            ord_mask(&mut out, xs, c.op, |x| Some(x.cmp(v)));
            true
        }
        (ColumnData::Int(xs), Value::Int(v))
        | (ColumnData::Time(xs), Value::Time(v))
        | (ColumnData::Duration(xs), Value::Duration(v))
            if ordering =>
        {
            ord_mask(&mut out, xs, c.op, |x| Some(x.cmp(v)));
            true
        }
        (ColumnData::Real(xs), Value::Real(v)) if ordering => {
            ord_mask(&mut out, xs, c.op, |x| x.partial_cmp(v));
            true
        }
        (ColumnData::Address(xs), Value::Address(v)) if ordering => {
            ord_mask(&mut out, xs, c.op, |x| Some(x.cmp(&v.0)));
            true
        }
        (ColumnData::Address(xs), Value::Subnet(net)) if matches!(c.op, Op::In | Op::NotIn) => {
            let want = c.op == Op::In;
            for (o, x) in out.iter_mut().zip(xs) {
                *o = net.contains(&Address(*x)) == want;
            }
            true
        }
        (ColumnData::Str { .. }, Value::String(_)) if matches!(c.op, Op::Eq | Op::Ne) => {
            let Value::String(v) = &c.value else {
                unreachable!()
            };
            let want = c.op == Op::Eq;
            for (i, o) in out.iter_mut().enumerate() {
                *o = (col.str_at(i) == v) == want;
            }
            true
        }
        (ColumnData::Str { .. }, _) if c.regex.is_some() => {
            let re = c.regex.as_ref().expect("checked");
            let want = c.op == Op::Match;
            for (i, o) in out.iter_mut().enumerate() {
                *o = re.is_match(col.str_at(i)) == want;
            }
            true
        }
        _ => false,
    };
    if fast {
        if !col.validity.words.is_empty() {
            let on_null = null_result(c.op, &c.value);
            for (i, o) in out.iter_mut().enumerate() {
                if !col.is_valid(i) {
                    *o = on_null;
                }
            }
        }
    } else {
        for (i, o) in out.iter_mut().enumerate() {
            *o = eval_cell(c.op, col.get(i), ty, &c.value, c.regex.as_ref());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::value::NANOS_PER_SEC;
    use crate::data::{BatchBuilder, Field};
    use crate::query::parse;

    fn schema() -> Schema {
        Schema::new(
            "zeek.conn",
            vec![
                Field::new("ts", Type::timestamp()),
                Field::new("uid", Type::String),
                Field::new("id.orig_h", Type::Address),
                Field::new("id.orig_p", Type::port()),
                Field::new("id.resp_h", Type::Address),
                Field::new("id.resp_p", Type::port()),
                Field::new("proto", Type::Enum(vec![])),
                Field::new("duration", Type::Duration),
                Field::new("orig_bytes", Type::Count),
                Field::new("tunnel_parents", Type::set(Type::String)),
                Field::new("local_orig", Type::Bool),
                Field::new("score", Type::Real),
                Field::new("delta", Type::Int),
                Field::new("net", Type::Subnet),
                Field::new("hosts", Type::List(Box::new(Type::Address))),
            ],
        )
    }

    fn a(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    fn batch() -> Batch {
        let mut b = BatchBuilder::new(schema());
        let s = NANOS_PER_SEC;
        // Row 0.
        b.column(0).push_time(100 * s);
        b.column(1).push_str("CHhAvVGS1DHFjwGM9");
        b.column(2).push_address(a("10.0.0.1"));
        b.column(3).push_count(49152);
        b.column(4).push_address(a("192.168.1.1"));
        b.column(5).push_count(80);
        b.column(6).push_str("tcp");
        b.column(7).push_duration(1_500_000_000);
        b.column(8).push_count(100);
        b.column(9).push_value(&Value::List(vec![
            Value::String("a".into()),
            Value::String("b".into()),
        ]));
        b.column(10).push_bool(true);
        b.column(11).push_real(0.5);
        b.column(12).push_int(-3);
        b.column(13)
            .push_subnet(Subnet::parse("10.0.0.0/8").unwrap());
        b.column(14).push_list(|c| {
            c.push_address(a("10.0.0.1"));
            c.push_address(a("::1"));
        });
        b.finish_row();
        // Row 1.
        b.column(0).push_time(200 * s);
        b.column(1).push_str("Cabc");
        b.column(2).push_address(a("::1"));
        b.column(3).push_count(53);
        b.column(4).push_address(a("8.8.8.8"));
        b.column(5).push_count(53);
        b.column(6).push_str("udp");
        b.column(7).push_duration(10_000_000);
        b.column(8).push_count(5000);
        b.column(9).push_value(&Value::List(vec![]));
        b.column(10).push_bool(false);
        b.column(11).push_real(2.0);
        b.column(12).push_int(7);
        b.column(13)
            .push_subnet(Subnet::parse("2001:db8::/32").unwrap());
        b.column(14).push_list(|_| {});
        b.finish_row();
        // Row 2: mostly nulls.
        b.column(0).push_time(300 * s);
        b.column(4).push_address(a("10.1.2.3"));
        b.column(5).push_count(443);
        b.finish_row();
        b.finish()
    }

    /// Rows matching `q`; also checks that row-wise and column-wise evaluation agree.
    fn rows(q: &str) -> Vec<u32> {
        let b = batch();
        let r = resolve(&parse(q).unwrap_or_else(|e| panic!("{e}")), &b.schema);
        let fast = filter(&r, &b);
        let slow: Vec<u32> = (0..b.rows)
            .filter(|i| eval_row(&r, &b, *i as usize))
            .collect();
        assert_eq!(fast, slow, "{q}: filter and eval_row disagree");
        fast
    }

    fn res(q: &str) -> Resolved {
        resolve(&parse(q).unwrap(), &schema())
    }

    fn col(r: &Resolved) -> Vec<usize> {
        match r {
            Resolved::Cmp(c) => vec![c.column],
            Resolved::Or(xs) => xs.iter().flat_map(col).collect(),
            r => panic!("not a column selection: {r:?}"),
        }
    }

    #[test]
    fn field_suffix_matching() {
        for q in [
            "resp_h == 8.8.8.8",
            "id.resp_h == 8.8.8.8",
            "conn.id.resp_h == 8.8.8.8",
            "zeek.conn.id.resp_h == 8.8.8.8",
        ] {
            assert_eq!(col(&res(q)), vec![4], "{q}");
            assert_eq!(rows(q), vec![1], "{q}");
        }
        assert_eq!(res("esp_h == 8.8.8.8"), Resolved::False);
        assert_eq!(res("id == 8.8.8.8"), Resolved::False);
        assert_eq!(res("nope == 1"), Resolved::False);
        assert!(suffix_match(
            "zeek.conn",
            "id.resp_h",
            "zeek.conn.id.resp_h"
        ));
        assert!(!suffix_match("zeek.conn", "id.resp_h", ""));
        assert!(!suffix_match("zeek.conn", "id.resp_h", "n.id.resp_h"));
    }

    #[test]
    fn type_extractors() {
        assert_eq!(col(&res(":addr == 10.0.0.1")), vec![2, 4]);
        assert_eq!(rows(":addr == 10.0.0.1"), vec![0]);
        assert_eq!(col(&res(":port == 53")), vec![3, 5]);
        assert_eq!(col(&res(":count == 53")), vec![3, 5, 8]);
        assert_eq!(rows(":count == 5000"), vec![1]);
        assert_eq!(rows(":port == 5000"), Vec::<u32>::new());
        assert_eq!(col(&res(":timestamp > @150")), vec![0]);
        assert_eq!(rows(":time > @150"), vec![1, 2]);
        assert_eq!(col(&res(":subnet == 10.0.0.0/8")), vec![13]);
        assert_eq!(col(&res(":string == \"a\"")), vec![1]);
        assert_eq!(col(&res(":enum == \"tcp\"")), vec![6]);
        assert_eq!(col(&res(":set ni \"a\"")), vec![9]);
        assert_eq!(res(":pattern == \"a\""), Resolved::False);
    }

    #[test]
    fn meta_extractors() {
        assert_eq!(res("#type == \"zeek.conn\""), Resolved::True);
        assert_eq!(res("#type == \"zeek\""), Resolved::False);
        assert_eq!(res("#type != \"zeek.conn\""), Resolved::False);
        assert_eq!(res("#type != \"suricata.alert\""), Resolved::True);
        assert_eq!(res("#type ~ /conn/"), Resolved::True);
        assert_eq!(res("#type ~ /suricata.*/"), Resolved::False);
        assert_eq!(res("#type !~ /suricata.*/"), Resolved::True);
        assert_eq!(res("#type in [\"a\", \"zeek.conn\"]"), Resolved::True);
        assert_eq!(res("#type !in [\"a\", \"zeek.conn\"]"), Resolved::False);
        assert_eq!(res("#type == 1"), Resolved::False);
        assert_eq!(res("#type < \"z\""), Resolved::False);
        assert_eq!(res("#field == \"resp_h\""), Resolved::True);
        assert_eq!(res("#field == \"zeek.conn.uid\""), Resolved::True);
        assert_eq!(res("#field == \"esp_h\""), Resolved::False);
        assert_eq!(res("#field != \"esp_h\""), Resolved::True);
        assert_eq!(res("#field ~ /^id\\./"), Resolved::True);
        assert_eq!(rows("#type == \"zeek.conn\""), vec![0, 1, 2]);
    }

    #[test]
    fn constant_folding() {
        assert_eq!(res("#type == \"x\" && uid == \"a\""), Resolved::False);
        assert_eq!(col(&res("#type == \"zeek.conn\" && uid == \"a\"")), vec![1]);
        assert_eq!(res("!(#type == \"x\")"), Resolved::True);
        assert_eq!(col(&res("esp_h == 1 || uid == \"a\"")), vec![1]);
        assert_eq!(res("esp_h == 1 || #type == \"zeek.conn\""), Resolved::True);
        assert!(matches!(res("!!(uid == \"a\")"), Resolved::Cmp(_)));
        assert_eq!(rows("#type == \"x\""), Vec::<u32>::new());
    }

    #[test]
    fn subnets_and_lists() {
        assert_eq!(rows("id.orig_h in 10.0.0.0/8"), vec![0]);
        assert_eq!(rows("id.resp_h !in 10.0.0.0/8"), vec![0, 1]);
        assert_eq!(rows("id.orig_h !in 10.0.0.0/8"), vec![1, 2]);
        assert_eq!(rows("net ni 10.1.1.1"), vec![0]);
        assert_eq!(rows("net in 10.0.0.0/7"), vec![0]);
        assert_eq!(rows("2001:db8::1 in net"), vec![1]);
        assert_eq!(rows("net ni 2001:db8:1::/48"), vec![1]);
        assert_eq!(rows("10.0.0.1 in hosts"), vec![0]);
        assert_eq!(rows("hosts ni ::1"), vec![0]);
        assert_eq!(rows("hosts !ni ::1"), vec![1, 2]);
        assert_eq!(rows("id.resp_p in [80, 443]"), vec![0, 2]);
        assert_eq!(rows("id.resp_p !in [80, 443]"), vec![1]);
        assert_eq!(rows("proto in [\"udp\", \"icmp\"]"), vec![1]);
        assert_eq!(rows("id.orig_h in [::1, 1.2.3.4]"), vec![1]);
        assert_eq!(rows("tunnel_parents ni \"a\""), vec![0]);
        assert_eq!(rows("\"b\" in tunnel_parents"), vec![0]);
        assert_eq!(rows("tunnel_parents == [\"a\", \"b\"]"), vec![0]);
        assert_eq!(rows("tunnel_parents == []"), vec![1]);
        assert_eq!(
            rows(":addr == 10.0.0.1"),
            vec![0],
            "list<addr> is not :addr"
        );
    }

    #[test]
    fn strings_and_patterns() {
        assert_eq!(rows("uid == \"Cabc\""), vec![1]);
        assert_eq!(rows("uid != \"Cabc\""), vec![0, 2]);
        assert_eq!(rows("uid in \"xxCabcxx\""), vec![1]);
        assert_eq!(rows("uid ni \"GS1\""), vec![0]);
        assert_eq!(rows("uid !ni \"GS1\""), vec![1, 2]);
        assert_eq!(rows("\"abc\" in uid"), vec![1]);
        assert_eq!(rows("uid ~ /^C[a-z]+$/"), vec![1]);
        assert_eq!(rows("uid ~ /abc/"), vec![1]);
        assert_eq!(rows("uid !~ /abc/"), vec![0, 2]);
        assert_eq!(rows("uid == /abc/"), vec![1]);
        assert_eq!(rows("uid ~ \"V.S\""), vec![0]);
        assert_eq!(rows("proto ~ /t.p/"), vec![0]);
        assert_eq!(rows("uid > \"C\""), vec![0, 1]);
        assert_eq!(res("orig_bytes ~ /1/"), Resolved::False);
    }

    #[test]
    fn nil_handling() {
        assert_eq!(rows("uid == nil"), vec![2]);
        assert_eq!(rows("uid != nil"), vec![0, 1]);
        assert_eq!(rows("hosts == nil"), vec![2]);
        assert_eq!(rows("hosts != nil"), vec![0, 1]);
        assert_eq!(res("orig_bytes < nil"), Resolved::False);
        assert_eq!(rows("orig_bytes < 1M"), vec![0, 1]);
        assert_eq!(rows("!(orig_bytes > 100)"), vec![0, 2]);
    }

    #[test]
    fn numbers_and_coercion() {
        assert_eq!(rows("orig_bytes > 100"), vec![1]);
        assert_eq!(rows("orig_bytes >= 100"), vec![0, 1]);
        assert_eq!(rows("orig_bytes <= 100"), vec![0]);
        assert_eq!(rows("orig_bytes < 100"), Vec::<u32>::new());
        assert_eq!(rows("orig_bytes != 100"), vec![1, 2]);
        assert_eq!(rows("orig_bytes > -1"), vec![0, 1]);
        assert_eq!(rows("orig_bytes == +100"), vec![0]);
        assert_eq!(rows("orig_bytes < 1000.5"), vec![0]);
        assert_eq!(rows("orig_bytes > 1k"), vec![1]);
        assert_eq!(rows("delta < 0"), vec![0]);
        assert_eq!(rows("delta == 7"), vec![1]);
        assert_eq!(rows("score > 1"), vec![1]);
        assert_eq!(rows("score == 0.5"), vec![0]);
        assert_eq!(rows("score >= -1"), vec![0, 1]);
        match res("delta == 7") {
            Resolved::Cmp(c) => assert_eq!(c.value, Value::Int(7)),
            r => panic!("{r:?}"),
        }
        match res("score == 2") {
            Resolved::Cmp(c) => assert_eq!(c.value, Value::Real(2.0)),
            r => panic!("{r:?}"),
        }
        assert_eq!(res("uid == 42"), Resolved::False);
        assert_eq!(res("uid != 42"), Resolved::False);
        assert_eq!(res("local_orig < true"), Resolved::False);
    }

    #[test]
    fn times_durations_bools_addresses() {
        assert_eq!(rows("duration > 1s"), vec![0]);
        assert_eq!(rows("duration < 1s"), vec![1]);
        assert_eq!(rows("duration == 10ms"), vec![1]);
        assert_eq!(res("duration > 5"), Resolved::False);
        assert_eq!(rows("ts == @200"), vec![1]);
        assert_eq!(rows("ts < \"1970-01-01T00:03:00\""), vec![0]);
        assert_eq!(rows("ts >= @100 + 100s"), vec![1, 2]);
        assert_eq!(rows("ts > now"), Vec::<u32>::new());
        assert_eq!(rows("ts < now - 1d"), vec![0, 1, 2]);
        assert_eq!(rows("local_orig == true"), vec![0]);
        assert_eq!(rows("local_orig != true"), vec![1, 2]);
        assert_eq!(rows("id.resp_h > 9.0.0.0"), vec![0, 2]);
        assert_eq!(rows("id.resp_h == \"8.8.8.8\""), vec![1]);
        assert_eq!(res("id.resp_h == \"not an address\""), Resolved::False);
    }

    #[test]
    fn value_predicates_and_connectives() {
        assert_eq!(rows("10.0.0.1"), vec![0]);
        assert_eq!(rows("\"Cabc\""), vec![1]);
        assert_eq!(rows("10.0.0.0/8"), vec![0, 2]);
        assert_eq!(rows("53"), vec![1]);
        assert_eq!(rows("1.5s"), vec![0]);
        assert_eq!(rows("-3"), vec![0]);
        assert_eq!(rows("2.0"), vec![1]);
        assert_eq!(rows("false"), vec![1]);
        assert_eq!(rows("@300"), vec![2]);
        assert_eq!(rows("/^Ca/"), vec![1]);
        assert_eq!(rows("uid == \"Cabc\" || id.resp_p == 443"), vec![1, 2]);
        assert_eq!(rows("uid != \"Cabc\" && id.resp_p == 443"), vec![2]);
        assert_eq!(rows("!(uid == \"Cabc\" || id.resp_p == 443)"), vec![0]);
        assert_eq!(rows("(53 || 80) && :addr in 8.0.0.0/8"), vec![1]);
    }

    #[test]
    fn cmp_cell_directly() {
        assert!(cmp_cell(
            Op::Eq,
            ValueRef::Count(3),
            &Type::Count,
            &Value::Int(3)
        ));
        assert!(cmp_cell(
            Op::Lt,
            ValueRef::Int(-1),
            &Type::Int,
            &Value::Count(0)
        ));
        assert!(cmp_cell(
            Op::Ge,
            ValueRef::Real(2.0),
            &Type::Real,
            &Value::Count(2)
        ));
        assert!(!cmp_cell(
            Op::Eq,
            ValueRef::Null,
            &Type::Count,
            &Value::Count(1)
        ));
        assert!(cmp_cell(
            Op::Ne,
            ValueRef::Null,
            &Type::Count,
            &Value::Count(1)
        ));
        assert!(cmp_cell(Op::Eq, ValueRef::Null, &Type::Count, &Value::Null));
        assert!(!cmp_cell(
            Op::Ne,
            ValueRef::Null,
            &Type::Count,
            &Value::Null
        ));
        assert!(!cmp_cell(
            Op::In,
            ValueRef::Null,
            &Type::Address,
            &Value::Null
        ));
        assert!(cmp_cell(
            Op::NotIn,
            ValueRef::Null,
            &Type::Address,
            &Value::Null
        ));
        assert!(cmp_cell(
            Op::Match,
            ValueRef::Str("hello"),
            &Type::String,
            &Value::Pattern("l+".into())
        ));
        assert!(cmp_cell(
            Op::In,
            ValueRef::Address(a("1.2.3.4")),
            &Type::Address,
            &Value::Subnet(Subnet::parse("1.2.0.0/16").unwrap())
        ));
    }

    #[test]
    fn filter_on_a_large_batch_with_nulls() {
        let s = Schema::new(
            "test",
            vec![
                Field::new("n", Type::Count),
                Field::new("s", Type::String),
                Field::new("t", Type::Time),
            ],
        );
        let mut b = BatchBuilder::new(s.clone());
        for i in 0..200u64 {
            if i % 3 == 0 {
                b.column(0).push_null();
                b.column(1).push_null();
            } else {
                b.column(0).push_count(i);
                b.column(1).push_str(&format!("row{i}"));
            }
            b.column(2).push_time(i as i64);
            b.finish_row();
        }
        let batch = b.finish();
        for (q, expected) in [
            ("n > 100", (101..200).filter(|i| i % 3 != 0).count()),
            ("n != 5", 199),
            ("n == nil", 67),
            ("s == \"row7\"", 1),
            ("s != \"row7\"", 199),
            ("s ~ /row1.$/", (10..20).filter(|i| i % 3 != 0).count()),
            ("s !~ /row/", 67),
            ("t >= @0.000000150", 50),
            (
                "n > 100 && t < @0.000000150 || s == \"row4\"",
                (101..150).filter(|i| i % 3 != 0).count() + 1,
            ),
        ] {
            let r = resolve(&parse(q).unwrap(), &s);
            let fast = filter(&r, &batch);
            let slow: Vec<u32> = (0..200)
                .filter(|i| eval_row(&r, &batch, *i as usize))
                .collect();
            assert_eq!(fast, slow, "{q}");
            assert_eq!(fast.len(), expected, "{q}");
        }
    }
}
