//! Hand-written recursive-descent parser for the VAST 2021 expression language.
//!
//! ```text
//! expr    := and ('||' and)*
//! and     := unary ('&&' unary)*
//! unary   := '!' unary | '(' expr ')' | pred
//! pred    := operand (op operand)?      -- a lone literal is a value predicate
//! ```

use super::ast::{Expr, Meta, Op, Operand, Predicate};
use crate::data::value::{now_nanos, parse_duration, parse_time};
use crate::data::{Address, Subnet, Value};
use std::fmt;

/// A syntax error with the byte offset of the offending token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the input.
    pub pos: usize,
    /// Lowercase description.
    pub message: String,
    /// The query, kept to point at the error.
    pub input: String,
}

impl ParseError {
    /// 1-based character column of `pos`.
    pub fn column(&self) -> usize {
        let pos = self.pos.min(self.input.len());
        self.input
            .get(..pos)
            .map(|s| s.chars().count())
            .unwrap_or(pos)
            + 1
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let col = self.column();
        write!(
            f,
            "parse error at column {col}: {}\n{}\n{}^",
            self.message,
            self.input,
            " ".repeat(col - 1)
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses a query expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        s: input,
        b: input.as_bytes(),
        pos: 0,
        depth: 0,
    };
    p.ws();
    if p.eof() {
        return Err(p.err(p.pos, "empty query"));
    }
    let e = p.or()?;
    p.ws();
    if !p.eof() {
        let tok = p.token_at(p.pos);
        return Err(p.err(p.pos, format!("unexpected '{tok}' after the expression")));
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    /// Nesting of `(` and `!`, bounded so hostile input cannot overflow the stack.
    depth: usize,
}

const MAX_DEPTH: usize = 128;

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
}

impl<'a> Parser<'a> {
    fn err(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            pos,
            message: message.into(),
            input: self.s.to_string(),
        }
    }

    fn eof(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, lit: &str) -> bool {
        self.b[self.pos..].starts_with(lit.as_bytes())
    }

    /// A short excerpt of the input at `pos` for messages: a word or one character.
    fn token_at(&self, pos: usize) -> &'a str {
        let rest = &self.s[pos..];
        let n = rest
            .bytes()
            .take_while(|c| is_ident(*c) || *c == b':')
            .count();
        if n > 0 {
            &rest[..n]
        } else {
            rest.chars()
                .next()
                .map(|c| &rest[..c.len_utf8()])
                .unwrap_or("")
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut xs = vec![self.and()?];
        loop {
            self.ws();
            if self.starts_with("||") {
                self.pos += 2;
                xs.push(self.and()?);
            } else {
                break;
            }
        }
        Ok(if xs.len() == 1 {
            xs.pop().expect("one element")
        } else {
            Expr::Or(xs)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut xs = vec![self.unary()?];
        loop {
            self.ws();
            if self.starts_with("&&") {
                self.pos += 2;
                xs.push(self.unary()?);
            } else {
                break;
            }
        }
        Ok(if xs.len() == 1 {
            xs.pop().expect("one element")
        } else {
            Expr::And(xs)
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        if self.depth >= MAX_DEPTH {
            return Err(self.err(self.pos, "expression nested too deeply"));
        }
        self.depth += 1;
        let e = self.unary_inner();
        self.depth -= 1;
        e
    }

    fn unary_inner(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            None => Err(self.err(self.pos, "expected an expression")),
            Some(b'!') if !matches!(self.at(self.pos + 1), Some(b'=' | b'~')) => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(b'(') => {
                let open = self.pos;
                self.pos += 1;
                let e = self.or()?;
                self.ws();
                if self.peek() != Some(b')') {
                    if self.eof() {
                        return Err(self.err(open, "unbalanced parenthesis"));
                    }
                    let tok = self.token_at(self.pos);
                    return Err(self.err(self.pos, format!("expected ')' instead of '{tok}'")));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(_) => self.predicate(),
        }
    }

    fn predicate(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos;
        let lhs = self.operand()?;
        let lhs_text = &self.s[start..self.pos];
        self.ws();
        let op_pos = self.pos;
        let Some(op) = self.op() else {
            return match lhs {
                Operand::Value(v) => value_predicate(v).ok_or_else(|| {
                    self.err(start, format!("'{lhs_text}' is not a predicate on its own"))
                }),
                _ => {
                    let msg = match self.peek() {
                        Some(b'=') if self.at(self.pos + 1) != Some(b'=') => {
                            format!("invalid operator '=' after '{lhs_text}', did you mean '=='?")
                        }
                        _ => format!("expected an operator after '{lhs_text}'"),
                    };
                    Err(self.err(op_pos, msg))
                }
            };
        };
        self.ws();
        let rhs_pos = self.pos;
        if self.eof() {
            return Err(self.err(self.pos, format!("expected an operand after '{op}'")));
        }
        let rhs = self.operand()?;
        match (lhs.is_extractor(), rhs.is_extractor()) {
            (true, false) | (false, true) => {
                Ok(Expr::Pred(Predicate::new(lhs, op, rhs).normalized()))
            }
            (false, false) => Err(self.err(start, "a predicate needs an extractor")),
            (true, true) => Err(self.err(rhs_pos, "cannot compare two extractors")),
        }
    }

    fn op(&mut self) -> Option<Op> {
        const SYMBOLS: [(&str, Op); 8] = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("!~", Op::NotMatch),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("~", Op::Match),
        ];
        const WORDS: [(&str, Op); 4] = [
            ("!in", Op::NotIn),
            ("!ni", Op::NotNi),
            ("in", Op::In),
            ("ni", Op::Ni),
        ];
        for (w, op) in WORDS {
            if self.starts_with(w) && !self.at(self.pos + w.len()).is_some_and(is_ident) {
                self.pos += w.len();
                return Some(op);
            }
        }
        for (sym, op) in SYMBOLS {
            if self.starts_with(sym) {
                self.pos += sym.len();
                return Some(op);
            }
        }
        None
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        let start = self.pos;
        match self.peek() {
            Some(b':') if self.at(start + 1) != Some(b':') => {
                self.pos += 1;
                let n = self.ident_len(self.pos);
                if n == 0 || !is_ident_start(self.b[self.pos]) {
                    return Err(self.err(start, "expected a type name after ':'"));
                }
                let name = &self.s[self.pos..self.pos + n];
                self.pos += n;
                Ok(Operand::Type(name.to_string()))
            }
            Some(b'#') => {
                self.pos += 1;
                let n = self.ident_len(self.pos);
                let name = &self.s[self.pos..self.pos + n];
                let meta = match name {
                    "type" => Meta::Type,
                    "field" => Meta::Field,
                    _ => return Err(self.err(start, format!("unknown meta extractor '#{name}'"))),
                };
                self.pos += n;
                Ok(Operand::Meta(meta))
            }
            Some(c) if is_ident_start(c) => {
                if let Some(v) = self.address()? {
                    return Ok(Operand::Value(v));
                }
                let n = self.ident_len(start);
                let word = &self.s[start..start + n];
                match word {
                    "true" | "false" | "nil" | "now" => self.value().map(Operand::Value),
                    "in" | "ni" => {
                        Err(self.err(start, format!("expected an operand, got '{word}'")))
                    }
                    _ => {
                        self.pos += n;
                        Ok(Operand::Field(word.to_string()))
                    }
                }
            }
            _ => self.value().map(Operand::Value),
        }
    }

    fn ident_len(&self, from: usize) -> usize {
        self.b[from..].iter().take_while(|c| is_ident(**c)).count()
    }

    /// A literal value, including time arithmetic (`now - 1h`).
    fn value(&mut self) -> Result<Value, ParseError> {
        let v = self.atom()?;
        let Value::Time(mut t) = v else {
            return Ok(v);
        };
        loop {
            let save = self.pos;
            self.ws();
            let sign = match self.peek() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => {
                    self.pos = save;
                    return Ok(Value::Time(t));
                }
            };
            self.pos += 1;
            self.ws();
            let dpos = self.pos;
            match self.atom()? {
                Value::Duration(d) => t = t.saturating_add(sign * d),
                _ => return Err(self.err(dpos, "expected a duration in time arithmetic")),
            }
        }
    }

    fn atom(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Err(self.err(start, "expected a value"));
        };
        match c {
            b'"' => self.string(),
            b'/' => self.pattern(),
            b'[' => self.list(),
            b'@' => {
                self.pos += 1;
                let n = self.b[self.pos..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit() || **c == b'.' || **c == b'-')
                    .count();
                let text = &self.s[start..self.pos + n];
                self.pos += n;
                parse_time(text)
                    .map(Value::Time)
                    .ok_or_else(|| self.err(start, format!("invalid time '{text}'")))
            }
            _ if is_ident_start(c) => {
                let n = self.ident_len(start);
                let word = &self.s[start..start + n];
                let v = match word {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "nil" => Value::Null,
                    "now" => Value::Time(now_nanos()),
                    _ => {
                        if let Some(v) = self.address()? {
                            return Ok(v);
                        }
                        return Err(self.err(start, format!("expected a value, got '{word}'")));
                    }
                };
                self.pos += n;
                Ok(v)
            }
            b':' => match self.address()? {
                Some(v) => Ok(v),
                None => Err(self.err(start, "expected a value")),
            },
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if let Some(v) = self.address()? {
                    return Ok(v);
                }
                if let Some(v) = self.time()? {
                    return Ok(v);
                }
                self.number()
            }
            _ => Err(self.err(
                start,
                format!("expected a value, got '{}'", self.token_at(start)),
            )),
        }
    }

    /// An IPv4/IPv6 address or subnet at the cursor, if the text there is one.
    fn address(&mut self) -> Result<Option<Value>, ParseError> {
        let start = self.pos;
        let n = self.b[start..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() || **c == b':' || **c == b'.')
            .count();
        let text = &self.s[start..start + n];
        let dots = text.bytes().filter(|c| *c == b'.').count();
        if !(text.contains(':') || dots == 3) {
            return Ok(None);
        }
        // An identifier continuing past the hex digits (`dead.beef_x`) is not an address.
        if self.at(start + n).is_some_and(|c| is_ident(c) && c != b'.') {
            return Ok(None);
        }
        let Some(addr) = Address::parse(text) else {
            return Ok(None);
        };
        self.pos = start + n;
        if self.peek() == Some(b'/') && self.at(self.pos + 1).is_some_and(|c| c.is_ascii_digit()) {
            let m = self.b[self.pos + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let end = self.pos + 1 + m;
            let text = &self.s[start..end];
            self.pos = end;
            return Subnet::parse(text)
                .map(|s| Some(Value::Subnet(s)))
                .ok_or_else(|| self.err(start, format!("invalid subnet '{text}'")));
        }
        Ok(Some(Value::Address(addr)))
    }

    /// An ISO 8601 date or date-time at the cursor.
    fn time(&mut self) -> Result<Option<Value>, ParseError> {
        let start = self.pos;
        let b = &self.b[start..];
        let digits =
            |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
        if !(digits(0..4)
            && b.get(4) == Some(&b'-')
            && digits(5..7)
            && b.get(7) == Some(&b'-')
            && digits(8..10))
        {
            return Ok(None);
        }
        let mut end = 10;
        if b.get(end) == Some(&b'T') {
            end += 1;
            end += b[end..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == b':' || **c == b'.')
                .count();
            match b.get(end) {
                Some(b'Z') => end += 1,
                Some(b'+' | b'-') => {
                    let m = b[end + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_digit() || **c == b':')
                        .count();
                    // Only an offset if it looks like `hh:mm` or `hhmm`, not `+ 1h`.
                    if m >= 4 {
                        end += 1 + m;
                    }
                }
                _ => {}
            }
        }
        let text = &self.s[start..start + end];
        self.pos = start + end;
        match parse_time(text) {
            Some(t) => Ok(Some(Value::Time(t))),
            None => Err(self.err(start, format!("invalid time '{text}'"))),
        }
    }

    /// Counts, integers, reals, SI-suffixed counts and durations.
    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let signed = matches!(self.peek(), Some(b'+' | b'-'));
        if signed {
            self.pos += 1;
        }
        let int_digits = self.b[self.pos..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        self.pos += int_digits;
        let mut real = false;
        if self.peek() == Some(b'.') && self.at(self.pos + 1).is_some_and(|c| c.is_ascii_digit()) {
            real = true;
            self.pos += 1;
            self.pos += self.b[self.pos..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
        }
        if int_digits == 0 && !real {
            return Err(self.err(
                start,
                format!("expected a value, got '{}'", self.token_at(start)),
            ));
        }
        let num = &self.s[start..self.pos];
        let num_end = self.pos;

        // A unit, optionally after one space, makes a duration.
        let unit_at = if self.peek() == Some(b' ') {
            num_end + 1
        } else {
            num_end
        };
        let ulen = self.b[unit_at..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        let unit = &self.s[unit_at..unit_at + ulen];
        let bounded = !self.at(unit_at + ulen).is_some_and(is_ident);
        if ulen > 0 {
            // Further number-unit pairs written right after: `1h30m`.
            let mut end = unit_at + ulen;
            while self.at(end).is_some_and(|c| c.is_ascii_digit()) {
                let digits = self.b[end..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit() || **c == b'.')
                    .count();
                let letters = self.b[end + digits..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .count();
                if letters == 0 {
                    break;
                }
                end += digits + letters;
            }
            if !self.at(end).is_some_and(is_ident) {
                if let Some(d) = parse_duration(&self.s[start..end]) {
                    self.pos = end;
                    return Ok(Value::Duration(d));
                }
            }
        }
        if ulen > 0 && unit_at == num_end {
            let mult: Option<u64> = match unit {
                "k" => Some(1_000),
                "M" => Some(1_000_000),
                "G" => Some(1_000_000_000),
                "T" => Some(1_000_000_000_000),
                "Ki" => Some(1 << 10),
                "Mi" => Some(1 << 20),
                "Gi" => Some(1 << 30),
                "Ti" => Some(1 << 40),
                _ => None,
            };
            match mult {
                Some(m) if bounded && !real => {
                    self.pos = unit_at + ulen;
                    return self.integer(start, num, signed, m);
                }
                _ => {
                    return Err(self.err(num_end, format!("invalid suffix '{unit}' after '{num}'")))
                }
            }
        }
        if self.peek().is_some_and(|c| is_ident(c) && c != b'.') {
            return Err(self.err(num_end, format!("invalid suffix after '{num}'")));
        }
        if real {
            num.parse::<f64>()
                .map(Value::Real)
                .map_err(|_| self.err(start, format!("invalid number '{num}'")))
        } else {
            self.integer(start, num, signed, 1)
        }
    }

    fn integer(
        &self,
        start: usize,
        num: &str,
        signed: bool,
        mult: u64,
    ) -> Result<Value, ParseError> {
        let overflow = || self.err(start, format!("number out of range: '{num}'"));
        if signed {
            let i: i64 = num.parse().map_err(|_| overflow())?;
            i.checked_mul(mult as i64)
                .map(Value::Int)
                .ok_or_else(overflow)
        } else {
            let c: u64 = num.parse().map_err(|_| overflow())?;
            c.checked_mul(mult).map(Value::Count).ok_or_else(overflow)
        }
    }

    fn string(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.s[self.pos..].chars().next() else {
                return Err(self.err(start, "unterminated string"));
            };
            let here = self.pos;
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(Value::String(out)),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.err(start, "unterminated string"));
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'x' => {
                            let hex = self.s.get(self.pos..self.pos + 2).unwrap_or("");
                            match u8::from_str_radix(hex, 16) {
                                Ok(b) if b < 0x80 && hex.len() == 2 => {
                                    out.push(b as char);
                                    self.pos += 2;
                                }
                                _ => return Err(self.err(here, "invalid \\x escape in string")),
                            }
                        }
                        _ => return Err(self.err(here, "invalid escape in string")),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn pattern(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.s[self.pos..].chars().next() else {
                return Err(self.err(start, "unterminated pattern"));
            };
            self.pos += c.len_utf8();
            match c {
                '/' => break,
                '\\' => match self.s[self.pos..].chars().next() {
                    Some('/') => {
                        out.push('/');
                        self.pos += 1;
                    }
                    Some(n) => {
                        out.push('\\');
                        out.push(n);
                        self.pos += n.len_utf8();
                    }
                    None => return Err(self.err(start, "unterminated pattern")),
                },
                c => out.push(c),
            }
        }
        if let Err(e) = regex::Regex::new(&out) {
            let msg = e.to_string().lines().last().unwrap_or("").to_lowercase();
            return Err(self.err(start, format!("invalid pattern: {msg}")));
        }
        Ok(Value::Pattern(out))
    }

    fn list(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut xs = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::List(xs));
        }
        loop {
            self.ws();
            if self.eof() {
                return Err(self.err(start, "unterminated list"));
            }
            xs.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::List(xs));
                }
                None => return Err(self.err(start, "unterminated list")),
                Some(_) => {
                    let tok = self.token_at(self.pos);
                    return Err(self.err(
                        self.pos,
                        format!("expected ',' or ']' in list, got '{tok}'"),
                    ));
                }
            }
        }
    }
}

/// The predicate a lone literal stands for, by the literal's type.
fn value_predicate(v: Value) -> Option<Expr> {
    let pred = |ty: &str, op: Op, v: Value| {
        Expr::Pred(Predicate::new(
            Operand::Type(ty.into()),
            op,
            Operand::Value(v),
        ))
    };
    Some(match v {
        Value::Address(_) => pred("addr", Op::Eq, v),
        Value::Subnet(_) => Expr::Or(vec![
            pred("addr", Op::In, v.clone()),
            pred("subnet", Op::Eq, v),
        ]),
        Value::String(_) => pred("string", Op::Eq, v),
        Value::Count(_) => pred("count", Op::Eq, v),
        Value::Int(_) => pred("int", Op::Eq, v),
        Value::Real(_) => pred("real", Op::Eq, v),
        Value::Bool(_) => pred("bool", Op::Eq, v),
        Value::Time(_) => pred("time", Op::Eq, v),
        Value::Duration(_) => pred("duration", Op::Eq, v),
        Value::Pattern(_) => pred("string", Op::Match, v),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::value::NANOS_PER_SEC;

    fn pred(lhs: Operand, op: Op, v: Value) -> Expr {
        Expr::Pred(Predicate::new(lhs, op, Operand::Value(v)))
    }
    fn field(n: &str) -> Operand {
        Operand::Field(n.into())
    }
    fn ty(n: &str) -> Operand {
        Operand::Type(n.into())
    }
    fn addr(s: &str) -> Value {
        Value::Address(Address::parse(s).unwrap())
    }
    fn net(s: &str) -> Value {
        Value::Subnet(Subnet::parse(s).unwrap())
    }
    /// The literal on the right of a single predicate.
    fn rhs(q: &str) -> Value {
        match parse(q).unwrap_or_else(|e| panic!("{e}")) {
            Expr::Pred(Predicate {
                rhs: Operand::Value(v),
                ..
            }) => v,
            e => panic!("not a predicate: {e:?}"),
        }
    }
    fn err(q: &str) -> ParseError {
        match parse(q) {
            Ok(e) => panic!("{q:?} parsed as {e:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn operators() {
        let cases = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            ("<=", Op::Le),
            (">", Op::Gt),
            (">=", Op::Ge),
            ("in", Op::In),
            ("!in", Op::NotIn),
            ("ni", Op::Ni),
            ("!ni", Op::NotNi),
            ("~", Op::Match),
            ("!~", Op::NotMatch),
        ];
        for (s, op) in cases {
            assert_eq!(
                parse(&format!("x {s} 1")).unwrap(),
                pred(field("x"), op, Value::Count(1)),
                "{s}"
            );
        }
        // No spaces needed around symbols.
        assert_eq!(
            parse("x<=-1").unwrap(),
            pred(field("x"), Op::Le, Value::Int(-1))
        );
        // `in` needs a word boundary: `x inx` is not `x in x`.
        assert!(parse("x inx").is_err());
        assert_eq!(
            parse("x in[1]").unwrap(),
            pred(field("x"), Op::In, Value::List(vec![Value::Count(1)]))
        );
    }

    #[test]
    fn extractors() {
        assert_eq!(
            parse("zeek.conn.id.resp_h == 1.2.3.4").unwrap(),
            pred(field("zeek.conn.id.resp_h"), Op::Eq, addr("1.2.3.4"))
        );
        assert_eq!(
            parse(":addr == ::1").unwrap(),
            pred(ty("addr"), Op::Eq, addr("::1"))
        );
        assert_eq!(
            parse(":port<1024").unwrap(),
            pred(ty("port"), Op::Lt, Value::Count(1024))
        );
        assert_eq!(
            parse("#type == \"zeek.conn\"").unwrap(),
            pred(
                Operand::Meta(Meta::Type),
                Op::Eq,
                Value::String("zeek.conn".into())
            )
        );
        assert_eq!(
            parse("#field == \"uid\"").unwrap(),
            pred(
                Operand::Meta(Meta::Field),
                Op::Eq,
                Value::String("uid".into())
            )
        );
        let e = err("#foo == 1");
        assert_eq!(e.pos, 0);
        assert!(e.message.contains("#foo"), "{e}");
        assert_eq!(err(": == 1").pos, 0);
        // Keywords are not fields.
        assert!(parse("nil == 1").is_err());
        assert_eq!(err("x == in").pos, 5);
        // Field names may start with keywords.
        assert_eq!(
            parse("nowhere == 1").unwrap(),
            pred(field("nowhere"), Op::Eq, Value::Count(1))
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(rhs("x == 42"), Value::Count(42));
        assert_eq!(rhs("x == +5"), Value::Int(5));
        assert_eq!(rhs("x == -5"), Value::Int(-5));
        assert_eq!(rhs("x == 4.2"), Value::Real(4.2));
        assert_eq!(rhs("x == -0.5"), Value::Real(-0.5));
        assert_eq!(rhs("x == 1k"), Value::Count(1000));
        assert_eq!(rhs("x == 2M"), Value::Count(2_000_000));
        assert_eq!(rhs("x == 1G"), Value::Count(1_000_000_000));
        assert_eq!(rhs("x == 1T"), Value::Count(1_000_000_000_000));
        assert_eq!(rhs("x == 1Ki"), Value::Count(1024));
        assert_eq!(rhs("x == 1Mi"), Value::Count(1 << 20));
        assert_eq!(rhs("x == 1Gi"), Value::Count(1 << 30));
        assert_eq!(rhs("x == 1Ti"), Value::Count(1 << 40));
        assert_eq!(rhs("x == -2k"), Value::Int(-2000));
        assert_eq!(rhs("x == 18446744073709551615"), Value::Count(u64::MAX));
        assert_eq!(err("x == 18446744073709551616").pos, 5);
        assert_eq!(err("x == 42foo").pos, 7);
        assert_eq!(err("x == 1.5k").pos, 8);
    }

    #[test]
    fn durations() {
        let s = NANOS_PER_SEC;
        assert_eq!(rhs("x == 10ms"), Value::Duration(10_000_000));
        assert_eq!(rhs("x == 3 hours"), Value::Duration(3 * 3600 * s));
        assert_eq!(rhs("x == 1.5s"), Value::Duration(1_500_000_000));
        assert_eq!(rhs("x == 5 min"), Value::Duration(300 * s));
        assert_eq!(rhs("x == 2d"), Value::Duration(2 * 86400 * s));
        assert_eq!(rhs("x == 1w"), Value::Duration(7 * 86400 * s));
        assert_eq!(rhs("x == 1y"), Value::Duration(365 * 86400 * s));
        assert_eq!(rhs("x == 7ns"), Value::Duration(7));
        assert_eq!(rhs("x == 7us"), Value::Duration(7000));
        assert_eq!(rhs("x > -2d"), Value::Duration(-2 * 86400 * s));
        assert_eq!(rhs("x == 1 sec"), Value::Duration(s));
        assert_eq!(rhs("x > 1h30m"), Value::Duration(5400 * s));
        assert_eq!(rhs("x > 2m30.5s"), Value::Duration(150 * s + s / 2));
        assert_eq!(rhs("x < -1d12h"), Value::Duration(-36 * 3600 * s));
        assert!(parse("x > 1h30").is_err());
        assert!(parse("x > 1h30x").is_err());
        // A word after a space that is not a unit is not part of the number.
        assert!(parse("x == 5 foo").is_err());
    }

    #[test]
    fn times() {
        let t = 1_313_380_080 * NANOS_PER_SEC;
        assert_eq!(rhs("x == 2011-08-15T03:48"), Value::Time(t));
        assert_eq!(
            rhs("x == 2011-08-15"),
            Value::Time(t - (3 * 3600 + 48 * 60) * NANOS_PER_SEC)
        );
        assert_eq!(
            rhs("x == 2011-08-15T03:48:12.123Z"),
            Value::Time(t + 12_123_000_000)
        );
        assert_eq!(rhs("x == 2011-08-15T04:48:00+01:00"), Value::Time(t));
        assert_eq!(rhs("x == @1313380080"), Value::Time(t));
        assert_eq!(
            rhs("x < 2011-08-15T03:48 + 1h"),
            Value::Time(t + 3600 * NANOS_PER_SEC)
        );
        assert_eq!(
            rhs("x < 2011-08-15T03:48+1h"),
            Value::Time(t + 3600 * NANOS_PER_SEC)
        );
        assert_eq!(
            rhs("x < @1313380080 - 10min"),
            Value::Time(t - 600 * NANOS_PER_SEC)
        );
        let before = now_nanos();
        let Value::Time(n) = rhs("x > now") else {
            panic!()
        };
        assert!(n >= before);
        let Value::Time(n) = rhs("x > now - 1h") else {
            panic!()
        };
        assert!(n >= before - 3600 * NANOS_PER_SEC && n < before);
        let Value::Time(n) = rhs("x > now - 1h30m") else {
            panic!()
        };
        assert!(n >= before - 5400 * NANOS_PER_SEC && n < before - 5300 * NANOS_PER_SEC);
        let Value::Time(n) = rhs("x < now + 10min") else {
            panic!()
        };
        assert!(n >= before + 600 * NANOS_PER_SEC);
        assert_eq!(err("x > now - 5").pos, 10);
        assert_eq!(err("x > 2011-13-45").pos, 4);
    }

    #[test]
    fn addresses_and_subnets() {
        assert_eq!(rhs("x == 10.0.0.1"), addr("10.0.0.1"));
        assert_eq!(rhs("x == ::1"), addr("::1"));
        assert_eq!(rhs("x == 2001:db8::1"), addr("2001:db8::1"));
        assert_eq!(rhs("x == fe80::1"), addr("fe80::1"));
        assert_eq!(rhs("x in 10.0.0.0/8"), net("10.0.0.0/8"));
        assert_eq!(rhs("x in 2001:db8::/32"), net("2001:db8::/32"));
        assert_eq!(err("x in 10.0.0.0/33").pos, 5);
        // Hex-looking field names stay fields.
        assert_eq!(
            parse("dead.beef == 1").unwrap(),
            pred(field("dead.beef"), Op::Eq, Value::Count(1))
        );
    }

    #[test]
    fn strings_patterns_lists() {
        assert_eq!(
            rhs(r#"x == "a\"b\\c\nd\te\x41""#),
            Value::String("a\"b\\c\nd\teA".into())
        );
        assert_eq!(rhs("x == \"héllo\""), Value::String("héllo".into()));
        assert_eq!(rhs(r"x ~ /a\/b.*/"), Value::Pattern("a/b.*".into()));
        assert_eq!(rhs(r"x ~ /\d+/"), Value::Pattern(r"\d+".into()));
        assert_eq!(rhs("x in []"), Value::List(vec![]));
        assert_eq!(
            rhs(r#"x in [1, "a", 10.0.0.1, [2]]"#),
            Value::List(vec![
                Value::Count(1),
                Value::String("a".into()),
                addr("10.0.0.1"),
                Value::List(vec![Value::Count(2)])
            ])
        );
        assert_eq!(rhs("x == true"), Value::Bool(true));
        assert_eq!(rhs("x == false"), Value::Bool(false));
        assert_eq!(rhs("x == nil"), Value::Null);
        assert_eq!(err(r#"x == "abc"#).pos, 5);
        assert_eq!(err(r#"x == "a\qb""#).pos, 7);
        assert_eq!(err("x ~ /abc").pos, 4);
        assert_eq!(err("x ~ /a(/").pos, 4);
        assert_eq!(err("x in [1, 2").pos, 5);
        assert_eq!(err("x in [1 2]").pos, 8);
    }

    #[test]
    fn connectives_and_precedence() {
        let a = pred(field("a"), Op::Eq, Value::Count(1));
        let b = pred(field("b"), Op::Eq, Value::Count(2));
        let c = pred(field("c"), Op::Eq, Value::Count(3));
        assert_eq!(
            parse("a == 1 || b == 2 && c == 3").unwrap(),
            Expr::Or(vec![a.clone(), Expr::And(vec![b.clone(), c.clone()])])
        );
        assert_eq!(
            parse("(a == 1 || b == 2) && c == 3").unwrap(),
            Expr::And(vec![Expr::Or(vec![a.clone(), b.clone()]), c.clone()])
        );
        assert_eq!(
            parse("! a == 1 && !(b == 2)").unwrap(),
            Expr::And(vec![
                Expr::Not(Box::new(a.clone())),
                Expr::Not(Box::new(b.clone()))
            ])
        );
        assert_eq!(
            parse("a == 1&&b == 2||c == 3").unwrap(),
            Expr::Or(vec![Expr::And(vec![a, b]), c])
        );
        assert_eq!(err("(a == 1").pos, 0);
        assert_eq!(err("(a == 1 b").pos, 8);
        assert_eq!(err("a == 1 &&").pos, 9);
        assert_eq!(err("a == 1 and b == 2").pos, 7);
    }

    #[test]
    fn flips_values_to_the_right() {
        assert_eq!(
            parse("10.0.0.1 in addrs").unwrap(),
            pred(field("addrs"), Op::Ni, addr("10.0.0.1"))
        );
        assert_eq!(
            parse("5 < x").unwrap(),
            pred(field("x"), Op::Gt, Value::Count(5))
        );
        assert_eq!(
            parse("\"a\" !ni :string").unwrap(),
            pred(ty("string"), Op::NotIn, Value::String("a".into()))
        );
        assert_eq!(err("1 == 1").pos, 0);
        assert_eq!(err("x == y").pos, 5);
    }

    #[test]
    fn value_predicates() {
        let vp = |q: &str, t: &str, op: Op, v: Value| {
            assert_eq!(parse(q).unwrap(), pred(ty(t), op, v), "{q}")
        };
        vp("10.0.0.1", "addr", Op::Eq, addr("10.0.0.1"));
        vp("\"foo\"", "string", Op::Eq, Value::String("foo".into()));
        vp("42", "count", Op::Eq, Value::Count(42));
        vp("-42", "int", Op::Eq, Value::Int(-42));
        vp("4.2", "real", Op::Eq, Value::Real(4.2));
        vp("true", "bool", Op::Eq, Value::Bool(true));
        vp("@0", "time", Op::Eq, Value::Time(0));
        vp("10ms", "duration", Op::Eq, Value::Duration(10_000_000));
        vp("/f.o/", "string", Op::Match, Value::Pattern("f.o".into()));
        assert_eq!(
            parse("10.0.0.0/8").unwrap(),
            Expr::Or(vec![
                pred(ty("addr"), Op::In, net("10.0.0.0/8")),
                pred(ty("subnet"), Op::Eq, net("10.0.0.0/8")),
            ])
        );
        assert_eq!(
            parse("10.0.0.1 && x == 1").unwrap(),
            Expr::And(vec![
                pred(ty("addr"), Op::Eq, addr("10.0.0.1")),
                pred(field("x"), Op::Eq, Value::Count(1)),
            ])
        );
        assert_eq!(err("nil").pos, 0);
        assert_eq!(err("[1]").pos, 0);
        assert_eq!(err("x").pos, 1);
    }

    #[test]
    fn error_positions_and_display() {
        let e = err("yo that is not a query");
        assert_eq!(e.pos, 3);
        assert_eq!(e.message, "expected an operator after 'yo'");
        assert_eq!(
            e.to_string(),
            "parse error at column 4: expected an operator after 'yo'\nyo that is not a query\n   ^"
        );
        let e = err("x = 1");
        assert_eq!(e.pos, 2);
        assert!(e.message.contains("'=='"), "{e}");
        let e = err("x == 1 garbage");
        assert_eq!(e.pos, 7);
        assert!(e.message.contains("garbage"));
        assert_eq!(err("x == 1 )").pos, 7);
        assert_eq!(err("").pos, 0);
        assert_eq!(err("   ").message, "empty query");
        assert_eq!(err("x ==").pos, 4);
        assert_eq!(err("x == ?").pos, 5);
        // Columns count characters, positions count bytes.
        let e = err("\"é\" ?");
        assert_eq!(e.pos, 5);
        assert_eq!(e.column(), 5);
        let _: &dyn std::error::Error = &e;
    }

    #[test]
    fn never_panics_on_prefixes_and_junk() {
        let qs = [
            r#"(a.b == 1 || !(c in [1, "x\x41", 10.0.0.0/8, ::1])) && d ~ /a\/b/ && e > now - 1h"#,
            "x == 2011-08-15T03:48:12.123+01:00 && y < 3 hours && z == 1Ki && w != -0.5",
            "u == \"ü\" && #type ~ /ö/ || ::ffff:1.2.3.4 ni :addr",
        ];
        for q in qs {
            assert!(parse(q).is_ok(), "{q}");
            for (i, _) in q.char_indices() {
                let _ = parse(&q[..i]);
                let _ = parse(&q[i..]);
            }
        }
        for junk in [
            "\\", "\"\\", "/\\", "[", "[,]", "#", ":", "@", "@x", "-", "+.", "1e5", "!", "!!",
            "x !",
        ] {
            assert!(parse(junk).is_err(), "{junk}");
        }
        let deep = "(".repeat(100_000) + "x == 1" + &")".repeat(100_000);
        assert!(parse(&deep).unwrap_err().message.contains("nested"));
        let deep = "!".repeat(100_000) + "x == 1";
        assert!(parse(&deep).is_err());
        assert!(parse(&("(".repeat(50) + "x == 1" + &")".repeat(50))).is_ok());
    }

    #[test]
    fn display_round_trips_literals() {
        for v in [
            Value::Time(1_258_531_221_486_539_123),
            Value::Time(-1_500_000_000),
            Value::Duration(-1_500_000_000),
            Value::Duration(90 * NANOS_PER_SEC),
            Value::Real(1e20),
            Value::Real(-0.25),
            Value::Int(i64::MIN),
            Value::Count(u64::MAX),
            Value::String("\u{7f}\u{0}tab\t/".into()),
            Value::Pattern(r"a\d/\\".into()),
        ] {
            let e = Expr::Pred(Predicate::new(field("x"), Op::Eq, Operand::Value(v)));
            let s = e.to_string();
            assert_eq!(
                parse(&s).unwrap_or_else(|err| panic!("{s}: {err}")),
                e,
                "{s}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for q in [
            "a == 1 || b == +2 && !(c != -3)",
            "(a == 1 || b == 2) && (c == 3 || d == 4)",
            "id.resp_h in 10.0.0.0/8 && :port < 1024",
            "x == 1.5s && y == 3h && z > 2011-08-15T03:48:12.123",
            r#"#type ~ /zeek\/.*/ && #field == "uid" && s == "a\"b\n""#,
            "x in [1, 2.5, nil, true, ::1] && y !ni 2001:db8::/32",
            "10.0.0.0/8 && 1.2.3.4",
            "x !~ /a/ || x ni \"b\" || x !in []",
            "((a == 1 && b == 2) && c == 3)",
        ] {
            let e = parse(q).unwrap_or_else(|e| panic!("{e}"));
            let s = e.to_string();
            assert_eq!(parse(&s).unwrap_or_else(|e| panic!("{e}")), e, "{q} -> {s}");
        }
    }
}
