//! The syntax tree of a query expression.

use crate::data::value::{format_time, NANOS_PER_SEC};
use crate::data::Value;
use std::fmt;

/// A boolean combination of predicates.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// All must hold; an empty conjunction is true.
    And(Vec<Expr>),
    /// One must hold; an empty disjunction is false.
    Or(Vec<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// A single comparison.
    Pred(Predicate),
}

/// `lhs op rhs`; the parser puts the extractor on the left.
#[derive(Clone, Debug, PartialEq)]
pub struct Predicate {
    pub lhs: Operand,
    pub op: Op,
    pub rhs: Operand,
}

/// One side of a predicate.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// Field extractor, matched by dotted suffix (`resp_h`, `id.resp_h`, `zeek.conn.id.resp_h`).
    Field(String),
    /// Type extractor `:name` (without the colon).
    Type(String),
    /// Meta extractor `#type` / `#field`.
    Meta(Meta),
    /// A literal.
    Value(Value),
}

/// Meta extractors: properties of the schema rather than of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Meta {
    /// `#type`: the schema name.
    Type,
    /// `#field`: the field names of the schema.
    Field,
}

/// Relational operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `lhs in rhs`: lhs is contained in rhs.
    In,
    NotIn,
    /// `lhs ni rhs`: lhs contains rhs.
    Ni,
    NotNi,
    /// `~`: regular expression search.
    Match,
    NotMatch,
}

impl Op {
    /// The operator to use when the operands swap sides (`a < b` ⇔ `b > a`).
    pub fn mirror(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            Op::In => Op::Ni,
            Op::Ni => Op::In,
            Op::NotIn => Op::NotNi,
            Op::NotNi => Op::NotIn,
            op => op,
        }
    }

    /// The query syntax of the operator.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
            Op::NotIn => "!in",
            Op::Ni => "ni",
            Op::NotNi => "!ni",
            Op::Match => "~",
            Op::NotMatch => "!~",
        }
    }
}

impl Operand {
    /// Whether this is an extractor rather than a literal.
    pub fn is_extractor(&self) -> bool {
        !matches!(self, Operand::Value(_))
    }
}

impl Predicate {
    pub fn new(lhs: Operand, op: Op, rhs: Operand) -> Self {
        Predicate { lhs, op, rhs }
    }

    /// The same predicate with an extractor on the left where possible.
    pub fn normalized(self) -> Predicate {
        if !self.lhs.is_extractor() && self.rhs.is_extractor() {
            Predicate {
                lhs: self.rhs,
                op: self.op.mirror(),
                rhs: self.lhs,
            }
        } else {
            self
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Meta::Type => "#type",
            Meta::Field => "#field",
        })
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Field(n) => f.write_str(n),
            Operand::Type(n) => write!(f, ":{n}"),
            Operand::Meta(m) => write!(f, "{m}"),
            Operand::Value(v) => write_literal(f, v),
        }
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.lhs, self.op, self.rhs)
    }
}

/// Prints query syntax that parses back to the same expression.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Nested connectives of the same kind are parenthesized so the tree shape survives.
        fn child(f: &mut fmt::Formatter<'_>, e: &Expr, in_and: bool) -> fmt::Result {
            let parens = match e {
                Expr::Or(_) => true,
                Expr::And(_) => in_and,
                _ => false,
            };
            if parens {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        }
        match self {
            Expr::And(xs) | Expr::Or(xs) if xs.is_empty() => {
                // No syntax for constants; a tautology or contradiction on `#type` stands in.
                let op = if matches!(self, Expr::And(_)) {
                    "!="
                } else {
                    "=="
                };
                write!(f, "#type {op} \"\"")
            }
            Expr::And(xs) => {
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" && ")?;
                    }
                    child(f, x, true)?;
                }
                Ok(())
            }
            Expr::Or(xs) => {
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" || ")?;
                    }
                    child(f, x, false)?;
                }
                Ok(())
            }
            Expr::Not(x) => write!(f, "!({x})"),
            Expr::Pred(p) => write!(f, "{p}"),
        }
    }
}

/// Writes a value as a query literal.
pub fn write_literal(f: &mut fmt::Formatter<'_>, v: &Value) -> fmt::Result {
    match v {
        Value::Null => f.write_str("nil"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Int(i) => write!(f, "{i:+}"),
        Value::Count(c) => write!(f, "{c}"),
        Value::Real(r) => {
            // `{:?}` keeps the fraction (`1.0`) so the literal stays a real.
            let s = format!("{r:?}");
            if s.contains('e') {
                write!(f, "{r:.1}")
            } else {
                f.write_str(&s)
            }
        }
        Value::Duration(d) => write_duration(f, *d),
        Value::Time(t) => {
            let s = format_time(*t);
            if s.contains('T') {
                f.write_str(&s)
            } else {
                write!(f, "@{}", *t as f64 / NANOS_PER_SEC as f64)
            }
        }
        Value::String(s) | Value::Enum(s) => write_string(f, s),
        // No blob literal exists; the base64 text is what a user would compare to.
        Value::Blob(_) => write_string(f, &v.to_string()),
        Value::Pattern(p) => {
            f.write_str("/")?;
            let mut chars = p.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        f.write_str("\\")?;
                        if let Some(n) = chars.next() {
                            write!(f, "{n}")?;
                        }
                    }
                    '/' => f.write_str("\\/")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("/")
        }
        Value::Address(a) => write!(f, "{a}"),
        Value::Subnet(s) => write!(f, "{s}"),
        Value::List(xs) => {
            f.write_str("[")?;
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_literal(f, x)?;
            }
            f.write_str("]")
        }
        // Maps and records have no literal syntax in the 2021 language.
        v @ (Value::Map(_) | Value::Record(_)) => write!(f, "{v}"),
    }
}

/// The largest unit that represents the duration exactly.
fn write_duration(f: &mut fmt::Formatter<'_>, d: i64) -> fmt::Result {
    if d == 0 {
        return f.write_str("0s");
    }
    for (u, name) in crate::data::value::DURATION_UNITS {
        if d % u == 0 {
            return write!(f, "{}{name}", d / u);
        }
    }
    unreachable!("every duration is a whole number of nanoseconds")
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(lhs: Operand, op: Op, rhs: Operand) -> Expr {
        Expr::Pred(Predicate::new(lhs, op, rhs))
    }

    #[test]
    fn mirror_is_an_involution() {
        for op in [
            Op::Eq,
            Op::Ne,
            Op::Lt,
            Op::Le,
            Op::Gt,
            Op::Ge,
            Op::In,
            Op::NotIn,
            Op::Ni,
            Op::NotNi,
            Op::Match,
            Op::NotMatch,
        ] {
            assert_eq!(op.mirror().mirror(), op);
        }
        assert_eq!(Op::In.mirror(), Op::Ni);
        assert_eq!(Op::Le.mirror(), Op::Ge);
    }

    #[test]
    fn normalization_moves_extractors_left() {
        let p = Predicate::new(
            Operand::Value(Value::Count(1)),
            Op::Lt,
            Operand::Field("x".into()),
        )
        .normalized();
        assert_eq!(p.lhs, Operand::Field("x".into()));
        assert_eq!(p.op, Op::Gt);
    }

    #[test]
    fn display_literals() {
        let e = Expr::And(vec![
            pred(
                Operand::Field("a".into()),
                Op::Eq,
                Operand::Value(Value::String("q\"\\\n\u{1}".into())),
            ),
            Expr::Or(vec![
                pred(
                    Operand::Type("real".into()),
                    Op::Ge,
                    Operand::Value(Value::Real(1.0)),
                ),
                Expr::Not(Box::new(pred(
                    Operand::Meta(Meta::Type),
                    Op::NotMatch,
                    Operand::Value(Value::Pattern("a/b".into())),
                ))),
            ]),
            pred(
                Operand::Field("d".into()),
                Op::NotIn,
                Operand::Value(Value::List(vec![
                    Value::Duration(1_500_000_000),
                    Value::Int(-3),
                    Value::Null,
                    Value::Bool(true),
                ])),
            ),
        ]);
        assert_eq!(
            e.to_string(),
            r#"a == "q\"\\\n\x01" && (:real >= 1.0 || !(#type !~ /a\/b/)) && d !in [1500ms, -3, nil, true]"#
        );
    }
}
