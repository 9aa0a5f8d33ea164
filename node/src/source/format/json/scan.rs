//! A hand-written JSON scanner for the line readers.
//!
//! Why not serde_json: a profile of a 2M-line Zeek JSON import put about half
//! of all CPU in building serde_json's generic value tree (one vector per
//! object, a drop per node) and flattening it again. This scanner hands the
//! reader one member at a time, so an object's scalars go from the line to the
//! column builders without a tree; only arrays are built as [`J`] values.
//!
//! It accepts what serde_json accepts (RFC 8259, one value, nothing after it,
//! at most [`MAX_DEPTH`] levels), which a differential test checks, and it
//! reports the column of the first bad byte.

use std::borrow::Cow;
use std::fmt;

/// Most levels of arrays and objects accepted: serde_json's limit too. The
/// scanner recurses once per level, so this bounds its stack.
pub(super) const MAX_DEPTH: u32 = 127;

/// A parsed JSON value; strings borrow from the line unless they held escapes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum J<'a> {
    Null,
    Bool(bool),
    /// A non-negative integer.
    U(u64),
    /// A negative integer.
    I(i64),
    /// Any other number, with its text (used to read seconds exactly).
    F(f64, &'a [u8]),
    S(Cow<'a, str>),
    A(Vec<J<'a>>),
    O(Vec<(Cow<'a, str>, J<'a>)>),
}

/// A JSON number, as [`Scan::number`] reads it (a `Copy` type: numbers stay
/// in registers on their way to a column).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num<'a> {
    U(u64),
    I(i64),
    F(f64, &'a [u8]),
}

impl<'a> From<Num<'a>> for J<'a> {
    fn from(n: Num<'a>) -> Self {
        match n {
            Num::U(u) => J::U(u),
            Num::I(i) => J::I(i),
            Num::F(f, text) => J::F(f, text),
        }
    }
}

/// Where a number's parts are in the line (see `Scan::number_parts`).
struct NumParts {
    start: usize,
    neg: bool,
    /// The integer part's digits.
    int: std::ops::Range<usize>,
    /// A fraction or an exponent follows them.
    float: bool,
    exponent: bool,
}

/// Why a line is not JSON, and where.
#[derive(Debug, PartialEq)]
pub(super) struct JsonError {
    what: &'static str,
    /// 1-based byte column of the offending byte.
    column: usize,
}

impl JsonError {
    /// Not an error in the JSON: the line does not have the schema it was
    /// being read into (see `JsonParser::event_into`), and is read again.
    pub(super) fn diverged() -> Self {
        JsonError {
            what: "line does not have the last line's schema",
            column: 0,
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.what, self.column)
    }
}

/// Byte classes inside a string: 0 plain, 1 quote, 2 backslash, 3 control
/// (not allowed unescaped), 4 non-ASCII (needs UTF-8 validation).
static STR_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 0x20 {
            3
        } else if i == b'"' as usize {
            1
        } else if i == b'\\' as usize {
            2
        } else if i >= 0x80 {
            4
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Whether two short byte strings of equal length are equal: a word at a
/// time inline, where a call to `memcmp` cost more than the comparison.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a, mut b) = (a, b);
    while a.len() >= 8 {
        let x = u64::from_le_bytes(a[..8].try_into().expect("eight bytes"));
        let y = u64::from_le_bytes(b[..8].try_into().expect("eight bytes"));
        if x != y {
            return false;
        }
        (a, b) = (&a[8..], &b[8..]);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// A cursor over one line.
pub(super) struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    depth: u32,
}

impl<'a> Scan<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Scan { b, i: 0, depth: 0 }
    }

    pub(super) fn err(&self, what: &'static str) -> JsonError {
        JsonError {
            what,
            column: self.i + 1,
        }
    }

    #[inline]
    pub(super) fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    pub(super) fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline]
    pub(super) fn bump(&mut self) {
        self.i += 1;
    }

    /// Consumes `c` after whitespace.
    #[inline]
    pub(super) fn expect(&mut self, c: u8, what: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// Fails unless only whitespace is left.
    pub(super) fn end(&mut self) -> Result<(), JsonError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.err("trailing characters")),
        }
    }

    /// Enters the array or object whose opening byte is at the cursor.
    #[inline]
    pub(super) fn enter(&mut self) -> Result<(), JsonError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err("nested deeper than 127 levels"));
        }
        self.depth += 1;
        self.i += 1;
        Ok(())
    }

    /// Arrays and objects entered and not yet left.
    pub(super) fn depth(&self) -> u32 {
        self.depth
    }

    #[inline]
    pub(super) fn leave(&mut self) {
        self.depth -= 1;
    }

    /// After a member or element: `true` if another follows (a comma was
    /// consumed), `false` at the closing byte (consumed).
    #[inline]
    pub(super) fn more(&mut self, close: u8) -> Result<bool, JsonError> {
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(self.err(if close == b'}' {
                "expected ',' or '}'"
            } else {
                "expected ',' or ']'"
            })),
        }
    }

    /// A member key and its colon, with the key as written between its quotes.
    #[inline]
    pub(super) fn key(&mut self) -> Result<(Cow<'a, str>, &'a [u8]), JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string key"));
        }
        self.i += 1;
        let start = self.i;
        let k = self.string()?;
        let raw = &self.b[start..self.i - 1];
        self.expect(b':', "expected ':'")?;
        Ok((k, raw))
    }

    /// The key and its colon if the key is written as `raw`, a key read
    /// before without escapes; else nothing is consumed.
    #[inline]
    pub(super) fn known_key(&mut self, raw: &[u8]) -> Option<&'a str> {
        let at = self.i + 1;
        let end = at + raw.len();
        if self.peek() != Some(b'"')
            || !self.b.get(at..end).is_some_and(|w| same(w, raw))
            || self.b.get(end) != Some(&b'"')
        {
            return None;
        }
        let save = self.i;
        self.i = end + 1;
        if self.peek() != Some(b':') {
            self.i = save;
            return None;
        }
        self.i += 1;
        // SAFETY: the bytes equal a key that was checked to be UTF-8 (no
        // escapes: `raw` is only kept for plain keys).
        Some(unsafe { std::str::from_utf8_unchecked(&self.b[at..end]) })
    }

    /// A string whose opening quote was consumed.
    #[inline(always)]
    pub(super) fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        let start = self.i;
        let mut ascii = true;
        loop {
            self.plain_run();
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            match STR_CLASS[c as usize] {
                0 => self.i += 1,
                1 => {
                    let s = &self.b[start..self.i];
                    self.i += 1;
                    return Ok(Cow::Borrowed(self.utf8(s, start, ascii)?));
                }
                2 => return self.escaped(start, ascii).map(Cow::Owned),
                3 => return Err(self.err("control character in string")),
                _ => {
                    ascii = false;
                    self.i += 1;
                }
            }
        }
    }

    /// Skips plain string bytes (printable ASCII but `"` and `\`) eight at a
    /// time: a byte-at-a-time loop was a tenth of a Zeek JSON import. The
    /// lowest flagged byte of each word is exact (borrows run upwards only).
    #[inline(always)]
    fn plain_run(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        while let Some(w) = self.b.get(self.i..self.i + 8) {
            let v = u64::from_le_bytes(w.try_into().expect("eight bytes"));
            let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
            let quote = zero(v ^ (ONES * b'"' as u64));
            let backslash = zero(v ^ (ONES * b'\\' as u64));
            let control = v.wrapping_sub(ONES * 0x20) & !v & HIGH;
            let special = quote | backslash | control | (v & HIGH);
            if special != 0 {
                self.i += (special.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
    }

    fn utf8(&self, s: &'a [u8], start: usize, ascii: bool) -> Result<&'a str, JsonError> {
        if ascii {
            // SAFETY: every byte was checked to be below 0x80.
            return Ok(unsafe { std::str::from_utf8_unchecked(s) });
        }
        std::str::from_utf8(s).map_err(|e| JsonError {
            what: "invalid utf-8 in string",
            column: start + e.valid_up_to() + 1,
        })
    }

    /// The rest of a string that holds escapes: decoded into a new one.
    fn escaped(&mut self, start: usize, ascii: bool) -> Result<String, JsonError> {
        let mut out = String::with_capacity(self.i - start + 16);
        out.push_str(self.utf8(&self.b[start..self.i], start, ascii)?);
        loop {
            let run = self.i;
            let mut ascii = true;
            loop {
                let Some(&c) = self.b.get(self.i) else {
                    return Err(self.err("unterminated string"));
                };
                match STR_CLASS[c as usize] {
                    0 => self.i += 1,
                    4 => {
                        ascii = false;
                        self.i += 1;
                    }
                    3 => return Err(self.err("control character in string")),
                    _ => break,
                }
            }
            out.push_str(self.utf8(&self.b[run..self.i], run, ascii)?);
            if self.b[self.i] == b'"' {
                self.i += 1;
                return Ok(out);
            }
            // A backslash.
            self.i += 1;
            let Some(&e) = self.b.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            let c = match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => self.unicode()?,
                _ => {
                    self.i -= 1;
                    return Err(self.err("invalid escape"));
                }
            };
            out.push(c);
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.b.get(self.i) {
                Some(&c @ b'0'..=b'9') => c - b'0',
                Some(&c @ b'a'..=b'f') => c - b'a' + 10,
                Some(&c @ b'A'..=b'F') => c - b'A' + 10,
                Some(_) => return Err(self.err("invalid \\u escape")),
                None => return Err(self.err("unterminated string")),
            };
            v = v * 16 + d as u32;
            self.i += 1;
        }
        Ok(v)
    }

    /// The character of a `\u` escape (the `\u` consumed), pairing surrogates.
    fn unicode(&mut self) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        let code = match hi {
            0xD800..=0xDBFF => {
                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                    return Err(self.err("lone leading surrogate in \\u escape"));
                }
                self.i += 2;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return Err(self.err("lone leading surrogate in \\u escape"));
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.err("lone trailing surrogate in \\u escape")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.err("invalid \\u escape"))
    }

    fn digits(&mut self) -> usize {
        let s = self.i;
        while matches!(self.b.get(self.i), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - s
    }

    /// A number starting at the cursor (a digit or `-`), as serde_json reads
    /// it: integers that fit are exact, the rest (and `-0`) are floats.
    #[inline(always)]
    pub(super) fn number(&mut self) -> Result<Num<'a>, JsonError> {
        let parts = self.number_parts()?;
        self.convert(parts)
    }

    /// `number`, except that a decimal fraction without an exponent comes
    /// back as its text, unconverted (`Err`): such a number is certainly
    /// finite, times and durations are read from their text, and converting
    /// each to f64 first was 2% of a Zeek JSON import.
    #[inline(always)]
    pub(super) fn number_or_decimal(&mut self) -> Result<Result<Num<'a>, &'a [u8]>, JsonError> {
        let parts = self.number_parts()?;
        // Below 10^300, far from f64's largest.
        if parts.float && !parts.exponent && parts.int.len() <= 300 {
            return Ok(Err(&self.b[parts.start..self.i]));
        }
        self.convert(parts).map(Ok)
    }

    /// Reads a number's text by the JSON grammar.
    #[inline(always)]
    fn number_parts(&mut self) -> Result<NumParts, JsonError> {
        let start = self.i;
        let neg = self.b.get(self.i) == Some(&b'-');
        if neg {
            self.i += 1;
        }
        let int_start = self.i;
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        let int = int_start..self.i;
        let mut float = false;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
            float = true;
        }
        let mut exponent = false;
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
            float = true;
            exponent = true;
        }
        Ok(NumParts {
            start,
            neg,
            int,
            float,
            exponent,
        })
    }

    /// The value of the number whose text ends at the cursor.
    #[inline(always)]
    fn convert(&self, p: NumParts) -> Result<Num<'a>, JsonError> {
        let text = &self.b[p.start..self.i];
        if !p.float {
            if let Some(u) = super::super::util::parse_u64(&self.b[p.int]) {
                if !p.neg {
                    return Ok(Num::U(u));
                }
                if u != 0 && u <= i64::MAX as u64 + 1 {
                    return Ok(Num::I((u as i64).wrapping_neg()));
                }
            }
        }
        // SAFETY: the number grammar admits only ASCII.
        let s = unsafe { std::str::from_utf8_unchecked(text) };
        match s.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Num::F(f, text)),
            _ => Err(JsonError {
                what: "number out of range",
                column: p.start + 1,
            }),
        }
    }

    /// A literal (`true`, `false`, `null`) starting at the cursor.
    fn literal(&mut self, word: &'static [u8], v: J<'a>) -> Result<J<'a>, JsonError> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("expected value"))
        }
    }

    /// Reads the object or array whose opening byte is at the cursor, handing
    /// the cursor to `item` at each member's key or element's value, and
    /// checking the commas and the closing byte (`}` or `]`) between them.
    #[inline(always)]
    pub(super) fn items(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.enter()?;
        if self.peek() == Some(close) {
            self.i += 1;
        } else {
            loop {
                item(self)?;
                if !self.more(close)? {
                    break;
                }
            }
        }
        self.leave();
        Ok(())
    }

    /// Any value after whitespace, built in full.
    pub(super) fn value(&mut self) -> Result<J<'a>, JsonError> {
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                self.string().map(J::S)
            }
            Some(b'{') => {
                let mut members = Vec::new();
                self.items(b'}', |s| {
                    let (k, _) = s.key()?;
                    members.push((k, s.value()?));
                    Ok(())
                })?;
                Ok(J::O(members))
            }
            Some(b'[') => {
                let mut elems = Vec::new();
                self.items(b']', |s| {
                    elems.push(s.value()?);
                    Ok(())
                })?;
                Ok(J::A(elems))
            }
            Some(b'-' | b'0'..=b'9') => self.number().map(J::from),
            Some(b't') => self.literal(b"true", J::Bool(true)),
            Some(b'f') => self.literal(b"false", J::Bool(false)),
            Some(b'n') => self.literal(b"null", J::Null),
            Some(_) => Err(self.err("expected value")),
            None => Err(self.err("unexpected end of line")),
        }
    }
}

/// One whole value with nothing after it.
#[cfg(test)]
pub(super) fn parse(b: &[u8]) -> Result<J<'_>, JsonError> {
    let mut s = Scan::new(b);
    let v = s.value()?;
    s.end()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn to_value(j: &J) -> Value {
        match j {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::U(u) => Value::from(*u),
            J::I(i) => Value::from(*i),
            J::F(f, _) => Value::from(*f),
            J::S(s) => Value::String(s.to_string()),
            J::A(xs) => Value::Array(xs.iter().map(to_value).collect()),
            J::O(kv) => Value::Object(
                kv.iter()
                    .map(|(k, v)| (k.to_string(), to_value(v)))
                    .collect(),
            ),
        }
    }

    /// Equal values, but floats may differ in the last bit: serde_json (without
    /// its `float_roundtrip` feature) rounds some long or extreme decimals
    /// one unit off, where the scanner uses the standard library's correctly
    /// rounded parse.
    fn close(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                x == y || x.to_bits().abs_diff(y.to_bits()) <= 1
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|((k, x), (l, y))| k == l && close(x, y))
            }
            _ => a == b,
        }
    }

    /// Both parsers accept the same lines and read the same values.
    fn same(b: &[u8]) {
        let ours = parse(b);
        let theirs = serde_json::from_slice::<Value>(b);
        match (&ours, &theirs) {
            (Ok(o), Ok(t)) => assert!(
                close(&to_value(o), t),
                "{:?}: ours {o:?}, serde_json {t:?}",
                String::from_utf8_lossy(b)
            ),
            (Err(_), Err(_)) => {}
            _ => panic!(
                "{:?}: ours {ours:?}, serde_json {theirs:?}",
                String::from_utf8_lossy(b)
            ),
        }
    }

    const CASES: &[&str] = &[
        r#"{"ts":"2011-08-12T14:52:57.000000Z","uid":"C0","id.orig_h":"10.0.0.1","id.orig_p":1024,"duration":3.006088,"tunnel_parents":[]}"#,
        r#"{"a":{"b":{"c":[1,-2,3.5,"x",null,true,false,{"d":[]}]}},"e":"\u00e9\n\t\"\\\/\b\f\r","f":"\ud83d\ude00"}"#,
        r#"[{"a":1},{"a":2}]"#,
        r#"  { "a" : 1 , "b" : [ 1 , 2 ] }  "#,
        "{\"a\":\"h\u{e9}llo \u{1F600}\"}",
        r#"{"a":0,"b":-0,"c":-0.0,"d":1e5,"e":1E+5,"f":1e-5,"g":-1.5e-300,"h":0.1}"#,
        r#"{"a":18446744073709551615,"b":18446744073709551616,"c":-9223372036854775808,"d":-9223372036854775809}"#,
        r#"{"a":123456789012345678901234567890,"b":1e308,"c":1e-400,"d":6e-06}"#,
        r#"{"a":{},"b":[],"c":[[]],"d":{"e":{}}}"#,
        r#"{"a":1,"a":2}"#,
        "\"just a string\"",
        "42",
        "null",
        // Invalid lines.
        r#"{"a":1e400}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":1e}"#,
        r#"{"a":-}"#,
        r#"{"a":+1}"#,
        r#"{"a":1,}"#,
        r#"{"a":1"#,
        r#"{"a":"x"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        r#"{"a":tru}"#,
        r#"{"a":nul}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\u12"}"#,
        r#"{"a":"\ud800"}"#,
        r#"{"a":"\ud800\u0041"}"#,
        r#"{"a":"\udc00"}"#,
        r#"{"a":1} x"#,
        r#"{"a":1}{"b":2}"#,
        r#"[1,2,]"#,
        r#"[1 2]"#,
        "{\"a\":\"tab\there\"}",
        "",
        "   ",
        "{",
        "}",
        "[",
        r#"{"a":NaN}"#,
        r#"{"a":Infinity}"#,
    ];

    #[test]
    fn agrees_with_serde_json() {
        for c in CASES {
            same(c.as_bytes());
        }
        same(b"{\"a\":\"\xff\"}");
        same(b"{\"a\":\"\xc3\"}");
        same(b"{\"a\":\"ok\\n\xe2\x82\"}");
    }

    /// Every single-byte change of valid lines: accepted and rejected alike.
    #[test]
    fn agrees_with_serde_json_on_mutations() {
        let mut seen_err = 0;
        for c in CASES.iter().take(9) {
            let b = c.as_bytes();
            for i in 0..b.len() {
                for r in [
                    b'"', b'\\', b',', b':', b'{', b'}', b'[', b']', b'0', b'-', b'.', b'e', b' ',
                    b'u', 0x01, 0xc3, 0xff,
                ] {
                    let mut m = b.to_vec();
                    m[i] = r;
                    same(&m);
                    seen_err += parse(&m).is_err() as usize;
                    let mut ins = b.to_vec();
                    ins.insert(i, r);
                    same(&ins);
                }
                let mut del = b.to_vec();
                del.remove(i);
                same(&del);
                same(&b[..i]);
            }
        }
        assert!(seen_err > 1000, "mutations must reach the error paths");
    }

    #[test]
    fn depth_is_bounded_without_recursing_past_it() {
        let ok = format!("{}{}", "[".repeat(127), "]".repeat(127));
        assert!(parse(ok.as_bytes()).is_ok());
        same(ok.as_bytes());
        let deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().to_string(),
            "nested deeper than 127 levels at column 128"
        );
        same(deep.as_bytes());
        // Far deeper than any stack would take: an error, not a crash.
        let hostile = "[{\"a\":".repeat(1_000_000);
        assert!(parse(hostile.as_bytes()).is_err());
    }

    #[test]
    fn numbers_keep_their_text_and_errors_their_column() {
        assert_eq!(
            parse(b"[1.50,2e3]").unwrap(),
            J::A(vec![J::F(1.5, b"1.50"), J::F(2000.0, b"2e3")])
        );
        assert_eq!(parse(b"-0").unwrap(), J::F(-0.0, b"-0"));
        // Correctly rounded, where serde_json is one unit off.
        assert_eq!(parse(b"10e24").unwrap(), J::F(1e25, b"10e24"));
        assert_eq!(parse(b"-1.5e-300").unwrap(), J::F(-1.5e-300, b"-1.5e-300"));
        assert_eq!(
            parse(br#"{"a":1,"b":x}"#).unwrap_err().to_string(),
            "expected value at column 12"
        );
        assert_eq!(
            parse(br#"{"a":1e999}"#).unwrap_err().to_string(),
            "number out of range at column 6"
        );
    }
}
