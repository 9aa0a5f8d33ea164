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
}

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
            rest.chars().next().map(|c| &rest[..c.len_utf8()]).unwrap_or("")
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
                    "in" | "ni" => Err(self.err(start, format!("expected an operand, got '{word}'"))),
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
        let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
        if !(digits(0..4) && b.get(4) == Some(&b'-') && digits(5..7) && b.get(7) == Some(&b'-') && digits(8..10)) {
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
        if ulen > 0 && bounded {
            if let Some(d) = parse_duration(&format!("{num}{unit}")) {
                self.pos = unit_at + ulen;
                return Ok(Value::Duration(d));
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

    fn integer(&self, start: usize, num: &str, signed: bool, mult: u64) -> Result<Value, ParseError> {
        let overflow = || self.err(start, format!("number out of range: '{num}'"));
        if signed {
            let i: i64 = num.parse().map_err(|_| overflow())?;
            i.checked_mul(mult as i64).map(Value::Int).ok_or_else(overflow)
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
                    return Err(self.err(self.pos, format!("expected ',' or ']' in list, got '{tok}'")));
                }
            }
        }
    }
}

/// The predicate a lone literal stands for, by the literal's type.
fn value_predicate(v: Value) -> Option<Expr> {
    let pred = |ty: &str, op: Op, v: Value| {
        Expr::Pred(Predicate::new(Operand::Type(ty.into()), op, Operand::Value(v)))
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
