//! Line-delimited JSON: generic (`import json`), Zeek's JSON logs (`zeek-json`)
//! and Suricata EVE (`suricata`).
//!
//! Each line is one object. Nested objects flatten to dotted field names and
//! every leaf gets an inferred type; lines with the same names and types share a
//! schema. The three flavors differ in the schema name and in a few fields whose
//! types follow the producer's conventions (`ts`, `*_h`, `src_port`, ...).

use super::parallel::{BlockParser, ParallelLines};
use super::util::{infer_str, parse_addr, parse_iso_time, parse_seconds_ns, Inferred};
use super::{LineParser, Sink};
use crate::data::{Address, BatchBuilder, ColumnBuilder, Field, Schema, Subnet, Type};
use crate::source::{ReadError, ReadStats, Reader};
use rustc_hash::FxHashMap;
use scan::{JsonError, Num, Scan, J};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::BufRead;

mod scan;

/// Which producer's conventions apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Schema from `-t NAME` (default `json`), all types inferred.
    Generic,
    /// Zeek JSON logs: schema `zeek.<_path>`.
    Zeek,
    /// Suricata EVE: schema `suricata.<event_type>`.
    Suricata,
}

/// Reader of line-delimited JSON in one of the [`Flavor`]s.
/// Lines parse on their own, so several threads parse blocks of the input.
pub struct JsonReader(ParallelLines<JsonParser>);

impl JsonReader {
    /// `schema` names generic events and Zeek events without `_path`.
    pub fn new(input: Box<dyn BufRead + Send>, flavor: Flavor, schema: Option<String>) -> Self {
        let what = match flavor {
            Flavor::Generic => "json reader",
            Flavor::Zeek => "zeek-json reader",
            Flavor::Suricata => "suricata reader",
        };
        JsonReader(ParallelLines::new(
            input,
            JsonParser::new(flavor, schema),
            what,
        ))
    }
}

impl Reader for JsonReader {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<crate::data::Batch>>, ReadError> {
        self.0.read(batch_size)
    }
    fn stats(&self) -> ReadStats {
        self.0.stats()
    }
}

/// The inferred type of a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Count,
    Int,
    Real,
    Str,
    Addr,
    Subnet,
    Time,
    Timestamp,
    Duration,
    Port,
}

impl Kind {
    fn ty(self) -> Type {
        match self {
            Kind::Null | Kind::Str => Type::String,
            Kind::Bool => Type::Bool,
            Kind::Count => Type::Count,
            Kind::Int => Type::Int,
            Kind::Real => Type::Real,
            Kind::Addr => Type::Address,
            Kind::Subnet => Type::Subnet,
            Kind::Time => Type::Time,
            Kind::Timestamp => Type::timestamp(),
            Kind::Duration => Type::Duration,
            Kind::Port => Type::port(),
        }
    }
    fn code(self) -> char {
        (b'a' + self as u8) as char
    }
}

/// A typed leaf value.
#[derive(Debug)]
enum Leaf<'j> {
    Null,
    Bool(bool),
    Count(u64),
    Int(i64),
    Real(f64),
    /// A JSON string, or the text of a nested array or object in an array.
    Str(Cow<'j, str>),
    Addr(Address),
    Subnet(Subnet),
    Time(i64),
    Timestamp(i64),
    Duration(i64),
    Port(u64),
    List(Kind, Vec<Leaf<'j>>),
}

impl Leaf<'_> {
    fn kind(&self) -> Kind {
        match self {
            Leaf::Null => Kind::Null,
            Leaf::Bool(_) => Kind::Bool,
            Leaf::Count(_) => Kind::Count,
            Leaf::Int(_) => Kind::Int,
            Leaf::Real(_) => Kind::Real,
            Leaf::Str(_) => Kind::Str,
            Leaf::Addr(_) => Kind::Addr,
            Leaf::Subnet(_) => Kind::Subnet,
            Leaf::Time(_) => Kind::Time,
            Leaf::Timestamp(_) => Kind::Timestamp,
            Leaf::Duration(_) => Kind::Duration,
            Leaf::Port(_) => Kind::Port,
            Leaf::List(k, _) => *k,
        }
    }

    /// The leaf of `ns` nanoseconds under a time hint (`Timestamp`, `Time`
    /// or `Duration`).
    fn of_time(hint: Hint, ns: i64) -> Self {
        match hint {
            Hint::Timestamp => Leaf::Timestamp(ns),
            Hint::Time => Leaf::Time(ns),
            _ => Leaf::Duration(ns),
        }
    }

    fn push(&self, col: &mut ColumnBuilder) {
        match self {
            Leaf::Null => col.push_null(),
            Leaf::Bool(b) => col.push_bool(*b),
            Leaf::Count(c) => col.push_count(*c),
            Leaf::Int(i) => col.push_int(*i),
            Leaf::Real(r) => col.push_real(*r),
            Leaf::Str(s) => col.push_str(s),
            Leaf::Addr(a) => col.push_address(*a),
            Leaf::Subnet(s) => col.push_subnet(*s),
            Leaf::Time(t) | Leaf::Timestamp(t) => col.push_time(*t),
            Leaf::Duration(d) => col.push_duration(*d),
            Leaf::Port(p) => col.push_count(*p),
            Leaf::List(_, xs) => col.push_list(|c| xs.iter().for_each(|x| x.push(c))),
        }
    }
}

/// A field's convention-given type.
#[derive(Clone, Copy, PartialEq)]
enum Hint {
    None,
    Timestamp,
    Time,
    Addr,
    Port,
    Duration,
}

#[derive(Clone)]
pub(crate) struct JsonParser {
    flavor: Flavor,
    schema: Option<String>,
    started: bool,
    /// Schema key (name, field names and kinds) to builder.
    schemas: FxHashMap<String, usize>,
    key: String,
    /// Flattened names, `\0`-separated, in leaf order.
    names: String,
    leaves: Vec<(Kind, usize)>,
    prefix: String,
    num: String,
    /// Leaves of the last event: the next one likely has as many.
    last_width: usize,
    /// The last event's schema-naming value and builder, and its fields.
    last: Option<(Option<String>, usize)>,
    last_names: String,
    last_leaves: Vec<(Kind, usize)>,
    /// The members of the lines before, their keys and field names.
    shape: Vec<ShapeMember>,
    shape_keys: Vec<u8>,
    shape_names: String,
    /// The member of this line being read, and whether all before it
    /// followed the shape.
    member_no: usize,
    in_shape: bool,
}

impl JsonParser {
    pub(crate) fn new(flavor: Flavor, schema: Option<String>) -> Self {
        JsonParser {
            flavor,
            schema,
            started: false,
            schemas: FxHashMap::default(),
            key: String::new(),
            names: String::new(),
            leaves: Vec::new(),
            prefix: String::new(),
            num: String::new(),
            last_width: 0,
            last: None,
            last_names: String::new(),
            last_leaves: Vec::new(),
            shape: Vec::new(),
            shape_keys: Vec::new(),
            shape_names: String::new(),
            member_no: 0,
            in_shape: false,
        }
    }

    /// The hint for the field at dotted `path`, whose last member key is `key`
    /// (passed in: searching the whole path cost 5% of a Zeek JSON import).
    fn hint(&self, path: &str, key: &str) -> Hint {
        match self.flavor {
            Flavor::Generic => Hint::None,
            Flavor::Zeek => {
                // Zeek writes dotted keys (`id.orig_h`): the name follows the last
                // dot. A byte loop: `rsplit('.')` on these short keys was 6% of a
                // Zeek JSON import.
                let b = key.as_bytes();
                let leaf = match b.iter().rposition(|&c| c == b'.') {
                    Some(i) => &key[i + 1..],
                    None => key,
                };
                if leaf == "ts" || leaf.ends_with("_ts") {
                    Hint::Timestamp
                } else if leaf.ends_with("_h") {
                    Hint::Addr
                } else if leaf.ends_with("_p") {
                    Hint::Port
                } else if matches!(leaf, "duration" | "rtt") || leaf.ends_with("_duration") {
                    Hint::Duration
                } else {
                    Hint::None
                }
            }
            Flavor::Suricata => match path {
                "timestamp" => Hint::Timestamp,
                "flow.start" | "flow.end" | "netflow.start" | "netflow.end" => Hint::Time,
                "src_ip" | "dest_ip" => Hint::Addr,
                "src_port" | "dest_port" => Hint::Port,
                _ => Hint::None,
            },
        }
    }

    /// Exact nanoseconds of a JSON number of seconds: from the number's own
    /// text where it is a plain decimal, else via its shortest decimal form.
    fn seconds(&mut self, n: Num) -> Option<i64> {
        match n {
            Num::U(u) => i64::try_from(u).ok()?.checked_mul(1_000_000_000),
            Num::I(i) => i.checked_mul(1_000_000_000),
            Num::F(_, text) if !text.iter().any(|&c| c == b'e' || c == b'E') => {
                parse_seconds_ns(text)
            }
            Num::F(f, _) => {
                self.num.clear();
                write!(self.num, "{f}").ok()?;
                parse_seconds_ns(self.num.as_bytes())
            }
        }
    }

    /// The typed leaf of a number.
    #[inline(always)]
    fn num_leaf<'a>(&mut self, hint: Hint, n: Num<'a>) -> Leaf<'a> {
        match (hint, n) {
            (Hint::Timestamp | Hint::Time | Hint::Duration, _) => {
                if let Some(ns) = self.seconds(n) {
                    return Leaf::of_time(hint, ns);
                }
            }
            (Hint::Port, Num::U(p)) => return Leaf::Port(p),
            _ => {}
        }
        match n {
            Num::U(u) => Leaf::Count(u),
            Num::I(i) => Leaf::Int(i),
            Num::F(f, _) => Leaf::Real(f),
        }
    }

    /// The typed leaf of a string.
    #[inline(always)]
    fn str_leaf<'a>(&mut self, hint: Hint, s: Cow<'a, str>) -> Leaf<'a> {
        if matches!(hint, Hint::Timestamp | Hint::Time) {
            if let Some(ns) = parse_iso_time(s.as_bytes()) {
                return Leaf::of_time(hint, ns);
            }
        }
        // An address where the producer says one is: `infer_str` without its
        // search for a subnet's '/', which an address never holds.
        if hint == Hint::Addr {
            if let Some(a) = parse_addr(s.as_bytes()) {
                return Leaf::Addr(a);
            }
        }
        match infer_str(s.as_bytes()) {
            Some(Inferred::Address(a)) => Leaf::Addr(a),
            Some(Inferred::Subnet(n)) => Leaf::Subnet(n),
            Some(Inferred::Time(t)) => Leaf::Time(t),
            None => Leaf::Str(s),
        }
    }

    /// The typed leaf of a value that is not an object. Inlined, as are the
    /// scanner's `string` and `number`: returned through memory, their values
    /// cost store-forwarding stalls worth a tenth of a Zeek JSON import.
    #[inline(always)]
    fn leaf<'a>(&mut self, hint: Hint, j: J<'a>) -> Leaf<'a> {
        match j {
            J::Null => Leaf::Null,
            J::Bool(b) => Leaf::Bool(b),
            J::U(u) => self.num_leaf(hint, Num::U(u)),
            J::I(i) => self.num_leaf(hint, Num::I(i)),
            J::F(f, text) => self.num_leaf(hint, Num::F(f, text)),
            J::S(s) => self.str_leaf(hint, s),
            J::A(xs) => self.list_leaf(hint, xs),
            o @ J::O(_) => Leaf::Str(Cow::Owned(to_json(&o))),
        }
    }

    /// The leaf of an array: a list of one element kind.
    #[inline(never)]
    fn list_leaf<'a>(&mut self, hint: Hint, xs: Vec<J<'a>>) -> Leaf<'a> {
        let mut elems: Vec<Leaf> = xs
            .iter()
            .map(|x| match x {
                J::A(_) | J::O(_) => Leaf::Str(Cow::Owned(to_json(x))),
                _ => self.leaf(hint, x.clone()),
            })
            .collect();
        // A list column has one element type: the elements' kinds are
        // joined (nulls say nothing), and elements are converted to the
        // joined kind, since a cell of another kind would become null.
        let k = elems.iter().map(Leaf::kind).fold(Kind::Null, list_join);
        let beyond_int = |e: &Leaf| matches!(e, Leaf::Count(c) if *c > i64::MAX as u64);
        let k = if k == Kind::Int && elems.iter().any(beyond_int) {
            Kind::Real
        } else {
            k
        };
        match k {
            Kind::Null => Leaf::List(Kind::Str, elems),
            Kind::Real => {
                for e in &mut elems {
                    match *e {
                        Leaf::Count(c) => *e = Leaf::Real(c as f64),
                        Leaf::Int(i) => *e = Leaf::Real(i as f64),
                        _ => {}
                    }
                }
                Leaf::List(k, elems)
            }
            // Other kinds but text hold as they are written.
            Kind::Str
                if elems
                    .iter()
                    .any(|e| !matches!(e.kind(), Kind::Str | Kind::Null)) =>
            {
                let elems = xs
                    .into_iter()
                    .map(|x| match x {
                        J::Null => Leaf::Null,
                        J::S(s) => Leaf::Str(s),
                        x => Leaf::Str(Cow::Owned(to_json(&x))),
                    })
                    .collect();
                Leaf::List(Kind::Str, elems)
            }
            _ => Leaf::List(k, elems),
        }
    }

    /// Reads the object at the cursor, flattening its members into `names`,
    /// `leaves` and `out` in document order. At the top level it also notes
    /// the member that names the schema (`event`).
    fn members<'a>(
        &mut self,
        sc: &mut Scan<'a>,
        prefix: &mut String,
        top: bool,
        out: &mut Out<'a, '_>,
        event: &mut Option<Cow<'a, str>>,
    ) -> Result<(), JsonError> {
        sc.items(b'}', |sc| {
            let m = self.member_no;
            self.member_no += 1;
            // The member as the last lines had it, if the line follows them.
            let known = if self.in_shape {
                let depth = sc.depth();
                let shape = self.shape.get(m);
                shape.filter(|e| e.plain && e.depth == depth).and_then(|e| {
                    let raw = &self.shape_keys[e.raw.0..e.raw.1];
                    sc.known_key(raw).map(|k| (k, e.nested, e.hint))
                })
            } else {
                None
            };
            let (k, hint) = match known {
                Some((k, nested, hint)) if nested == (sc.peek() == Some(b'{')) => {
                    (Cow::Borrowed(k), hint)
                }
                known => {
                    if let Out::Builder { .. } = out {
                        // Leaves the shape as it was, for the line's second reading.
                        return Err(JsonError::diverged());
                    }
                    if self.in_shape {
                        self.break_shape(m);
                    }
                    let (k, raw) = match known {
                        Some((k, ..)) => (Cow::Borrowed(k), k.as_bytes()),
                        None => sc.key()?,
                    };
                    let nested = sc.peek() == Some(b'{');
                    let hint = if nested {
                        Hint::None
                    } else {
                        let len = prefix.len();
                        if !prefix.is_empty() {
                            prefix.push('.');
                        }
                        prefix.push_str(&k);
                        let hint = self.hint(prefix, &k);
                        prefix.truncate(len);
                        hint
                    };
                    let start = self.shape_keys.len();
                    self.shape_keys.extend_from_slice(raw);
                    self.shape.push(ShapeMember {
                        raw: (start, self.shape_keys.len()),
                        plain: matches!(k, Cow::Borrowed(_)),
                        nested,
                        depth: sc.depth(),
                        hint,
                        names_before: self.names.len(),
                    });
                    (k, hint)
                }
            };
            let names_event = top
                && match self.flavor {
                    Flavor::Generic => false,
                    Flavor::Zeek => k == "_path",
                    Flavor::Suricata => k == "event_type",
                };
            let nested = sc.peek() == Some(b'{');
            if names_event && self.flavor == Flavor::Zeek {
                // `_path` names the schema and is no field of it.
                if let J::S(p) = sc.value()? {
                    event.get_or_insert(p);
                }
            } else if nested {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(&k);
                self.members(sc, prefix, false, out, event)?;
                prefix.truncate(len);
            } else {
                // Scalars are read straight into leaves (see `leaf`).
                let leaf = match sc.peek() {
                    Some(b'"') => {
                        sc.bump();
                        let s = sc.string()?;
                        if names_event && event.is_none() {
                            *event = Some(s.clone());
                        }
                        self.str_leaf(hint, s)
                    }
                    Some(b'-' | b'0'..=b'9')
                        if matches!(hint, Hint::Timestamp | Hint::Time | Hint::Duration) =>
                    {
                        match sc.number_or_decimal()? {
                            Ok(n) => self.num_leaf(hint, n),
                            Err(text) => decimal_leaf(hint, text),
                        }
                    }
                    Some(b'-' | b'0'..=b'9') => {
                        let n = sc.number()?;
                        self.num_leaf(hint, n)
                    }
                    _ => {
                        let v = sc.value()?;
                        self.leaf(hint, v)
                    }
                };
                let kind = (leaf.kind(), matches!(leaf, Leaf::List(..)) as usize);
                match out {
                    Out::Leaves(values) => {
                        if !self.in_shape {
                            self.names.push_str(prefix);
                            if !prefix.is_empty() {
                                self.names.push('.');
                            }
                            self.names.push_str(&k);
                            self.names.push('\0');
                        }
                        self.leaves.push(kind);
                        values.push(leaf);
                    }
                    Out::Builder { b, kinds, next } => {
                        if kinds.get(*next) != Some(&kind) {
                            return Err(JsonError::diverged());
                        }
                        leaf.push(b.column(*next));
                        *next += 1;
                    }
                }
            }
            Ok(())
        })
    }

    /// The line stops following the last lines' members at member `m`: the
    /// names so far are the shape's, and the members from `m` on are
    /// recorded anew.
    fn break_shape(&mut self, m: usize) {
        self.in_shape = false;
        let before = self
            .shape
            .get(m)
            .map_or(self.shape_names.len(), |e| e.names_before);
        self.names.clear();
        self.names.push_str(&self.shape_names[..before]);
        if let Some(e) = self.shape.get(m) {
            self.shape_keys.truncate(e.raw.0);
            self.shape.truncate(m);
        }
    }

    /// Appends the schema name of an event to `out`; `event` is the value of
    /// the member that names it (`_path`, `event_type`).
    fn schema_name(&self, event: Option<&str>, out: &mut String) {
        match self.flavor {
            Flavor::Generic => out.push_str(self.schema.as_deref().unwrap_or("json")),
            Flavor::Zeek => match event {
                Some(p) => {
                    out.push_str("zeek.");
                    out.push_str(p);
                }
                None => out.push_str(self.schema.as_deref().unwrap_or("zeek.unknown")),
            },
            Flavor::Suricata => {
                out.push_str("suricata.");
                out.push_str(event.unwrap_or("unknown"));
            }
        }
    }
}

/// The leaf of a decimal fraction without an exponent under a time hint: what
/// `num_leaf` makes of it, without converting the text to f64 unless the
/// seconds do not fit.
fn decimal_leaf(hint: Hint, text: &[u8]) -> Leaf<'_> {
    match parse_seconds_ns(text) {
        Some(ns) => Leaf::of_time(hint, ns),
        None => Leaf::Real(
            std::str::from_utf8(text)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN),
        ),
    }
}

/// The element kind of a list holding elements of kinds `a` and `b`: numbers
/// widen to int, then real; any other mix is text.
fn list_join(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (a, b) if a == b => a,
        (Kind::Null, k) | (k, Kind::Null) => k,
        (Kind::Count, Kind::Int) | (Kind::Int, Kind::Count) => Kind::Int,
        (Kind::Count | Kind::Int | Kind::Real, Kind::Count | Kind::Int | Kind::Real) => Kind::Real,
        _ => Kind::Str,
    }
}

fn to_json(j: &J) -> String {
    fn go(j: &J, out: &mut String) {
        match j {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::U(u) => out.push_str(&u.to_string()),
            J::I(i) => out.push_str(&i.to_string()),
            J::F(f, _) => out.push_str(&f.to_string()),
            J::S(s) => out.push_str(&serde_json::to_string(s.as_ref()).unwrap_or_default()),
            J::A(xs) => {
                out.push('[');
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    go(x, out);
                }
                out.push(']');
            }
            J::O(kv) => {
                out.push('{');
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k.as_ref()).unwrap_or_default());
                    out.push(':');
                    go(v, out);
                }
                out.push('}');
            }
        }
    }
    let mut s = String::new();
    go(j, &mut s);
    s
}

impl BlockParser for JsonParser {
    fn mid_stream(&mut self) {
        self.started = true;
    }
}

impl LineParser for JsonParser {
    fn line(&mut self, line: &[u8], no: u64, sink: &mut Sink) -> Result<(), ReadError> {
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            return Ok(());
        }
        if !self.started {
            if trimmed[0] != b'{' && trimmed[0] != b'[' {
                return Err(ReadError::WrongFormat(format!(
                    "input is not line-delimited json: line {no} does not start with '{{' or '['"
                )));
            }
            self.started = true;
        }
        let mut sc = Scan::new(trimmed);
        if sc.peek() == Some(b'{') {
            if let Some(idx) = self.last.as_ref().map(|l| l.1) {
                let b = sink.builder(idx);
                if self.event_into(&mut sc, b).is_ok() {
                    sink.commit(idx);
                    return Ok(());
                }
                b.discard_partial_row();
                sc = Scan::new(trimmed);
            }
        }
        match sc.peek() {
            Some(b'{') => match self.event(&mut sc) {
                Ok(ev) => self.emit(ev, no, sink),
                Err(e) => sink.skip(no, format_args!("invalid json: {e}")),
            },
            // A line holding an array of objects (as some tools write a batch
            // of events) is one event per object. The whole line is checked
            // first, so a bad line emits none of its events.
            Some(b'[') => {
                let mut check = Scan::new(trimmed);
                match check.value().and_then(|_| check.end()) {
                    Ok(()) => self.array_events(&mut sc, no, sink),
                    Err(e) => sink.skip(no, format_args!("invalid json: {e}")),
                }
            }
            _ => match sc.value().and_then(|_| sc.end()) {
                Ok(()) => sink.skip(no, format_args!("not a json object")),
                Err(e) => sink.skip(no, format_args!("invalid json: {e}")),
            },
        }
        Ok(())
    }
}

/// One event read from a line: its leaves (names and kinds are in the
/// parser's `names` and `leaves`) and the value naming its schema.
struct Event<'a> {
    values: Vec<Leaf<'a>>,
    event: Option<Cow<'a, str>>,
    /// The field names are the shape's (`shape_names`), not built in `names`.
    names_held: bool,
}

/// Where `members` puts the leaves it reads.
enum Out<'a, 'b> {
    /// Collected, for `emit` to find their schema.
    Leaves(Vec<Leaf<'a>>),
    /// Pushed into column `next` of a builder whose columns have `kinds`
    /// (see `event_into`).
    Builder {
        b: &'b mut BatchBuilder,
        kinds: &'b [(Kind, usize)],
        next: usize,
    },
}

/// One member of the lines read before, in document order: a line whose
/// members have the same keys skips scanning them, computing their hints and
/// building its field names (together an eighth of the CPU of a Zeek JSON
/// import).
#[derive(Clone)]
struct ShapeMember {
    /// The key as written between its quotes, in `shape_keys`.
    raw: (usize, usize),
    /// Whether the key held no escapes, so the written bytes are the key.
    plain: bool,
    /// Whether its value was an object.
    nested: bool,
    /// Objects it was in, the line's own included. With the keys and
    /// `nested`, the depths fix every member's path: a member's parent is
    /// the nearest member before it one level up.
    depth: u32,
    hint: Hint,
    /// Length of the field names of the members before it.
    names_before: usize,
}

impl JsonParser {
    /// Reads the object at the cursor as one event; for a whole line, nothing
    /// may follow it.
    fn event<'a>(&mut self, sc: &mut Scan<'a>) -> Result<Event<'a>, JsonError> {
        self.names.clear();
        self.leaves.clear();
        let mut ev = Event {
            values: Vec::new(),
            event: None,
            names_held: false,
        };
        let mut out = Out::Leaves(Vec::with_capacity(self.last_width));
        let r = self.line_members(sc, &mut out, &mut ev.event);
        if let Out::Leaves(values) = out {
            ev.values = values;
        }
        if let Err(e) = r {
            // The shape may hold part of this line: the next one starts over.
            self.shape.clear();
            self.shape_keys.clear();
            self.shape_names.clear();
            return Err(e);
        }
        if self.in_shape && self.member_no < self.shape.len() {
            self.break_shape(self.member_no);
        }
        if self.in_shape {
            ev.names_held = true;
        } else {
            self.shape_names.clone_from(&self.names);
        }
        self.last_width = ev.values.len();
        Ok(ev)
    }

    /// Reads the members of the object at the cursor into `out`, from the
    /// first member of the shape on; for a whole line, nothing may follow it.
    fn line_members<'a>(
        &mut self,
        sc: &mut Scan<'a>,
        out: &mut Out<'a, '_>,
        event: &mut Option<Cow<'a, str>>,
    ) -> Result<(), JsonError> {
        self.member_no = 0;
        self.in_shape = true;
        let mut prefix = std::mem::take(&mut self.prefix);
        prefix.clear();
        let r = self.members(sc, &mut prefix, true, out, event);
        self.prefix = prefix;
        r?;
        if sc.depth() == 0 {
            sc.end()?;
        }
        Ok(())
    }

    /// Reads the object at the cursor, a whole line, straight into `b`, the
    /// builder of the last line's schema, as long as the line has that
    /// schema: the same members in the same order (the shape), leaves of the
    /// same kinds and the same schema-naming value. Most lines do, and
    /// collecting their leaves first to find their schema, then moving them
    /// into it, was a tenth of a Zeek JSON import's CPU.
    ///
    /// An error means the line is read again by `event`: it was not valid,
    /// or it has another schema. Its cells pushed so far are left in `b`; the
    /// parser's shape is as before.
    fn event_into<'a>(&mut self, sc: &mut Scan<'a>, b: &mut BatchBuilder) -> Result<(), JsonError> {
        let kinds = std::mem::take(&mut self.last_leaves);
        let mut out = Out::Builder {
            b,
            kinds: &kinds,
            next: 0,
        };
        let mut event = None;
        let r = self.line_members(sc, &mut out, &mut event);
        let complete = match out {
            Out::Builder { next, .. } => next == kinds.len(),
            Out::Leaves(_) => false,
        };
        self.last_leaves = kinds;
        r?;
        let same_event = self.last.as_ref().map(|l| l.0.as_deref()) == Some(event.as_deref());
        if complete && self.member_no == self.shape.len() && same_event {
            Ok(())
        } else {
            Err(JsonError::diverged())
        }
    }

    /// The events of a valid top-level array, its `[` at the cursor.
    fn array_events(&mut self, sc: &mut Scan<'_>, no: u64, sink: &mut Sink) {
        // Checked by the caller: no step below can fail.
        let mut i = 0;
        let _ = sc.items(b']', |sc| {
            i += 1;
            if sc.peek() == Some(b'{') {
                let ev = self.event(sc)?;
                self.emit(ev, no, sink);
            } else {
                sc.value()?;
                sink.skip(
                    no,
                    format_args!("element {i} of the array is not a json object"),
                );
            }
            Ok(())
        });
    }

    /// Appends one event of line `no` to the builder of its schema.
    fn emit(&mut self, ev: Event<'_>, no: u64, sink: &mut Sink) {
        if self.leaves.is_empty() {
            // A batch needs at least one column; an empty object has nothing to
            // store, so it is counted and reported like a malformed line.
            sink.skip(
                no,
                format_args!("an object without fields carries no event"),
            );
            return;
        }
        // Lines mostly repeat the layout of the line before: then the schema
        // is known without building and hashing its key.
        let event = ev.event.as_deref();
        // A line that held the shape has the names of the line before it,
        // which was the last one emitted (a line with no fields has no
        // successor that holds the shape with fields; a failed one clears it).
        debug_assert!(!ev.names_held || self.shape_names == self.last_names);
        let idx = if self
            .last
            .as_ref()
            .is_some_and(|(e, _)| e.as_deref() == event)
            && (ev.names_held || self.names == self.last_names)
            && self.leaves == self.last_leaves
        {
            self.last.as_ref().map_or(0, |(_, i)| *i)
        } else {
            if ev.names_held {
                self.names.clone_from(&self.shape_names);
            }
            let idx = self.schema_index(event, sink);
            self.last = Some((event.map(str::to_owned), idx));
            self.last_names.clone_from(&self.names);
            self.last_leaves.clone_from(&self.leaves);
            idx
        };
        let b = sink.builder(idx);
        for (i, v) in ev.values.iter().enumerate() {
            v.push(b.column(i));
        }
        sink.commit(idx);
    }

    /// The builder of the schema of the event whose fields are in `names` and
    /// `leaves`, made on first use.
    fn schema_index(&mut self, event: Option<&str>, sink: &mut Sink) -> usize {
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        self.schema_name(event, &mut key);
        let name_len = key.len();
        key.push('\u{1}');
        key.push_str(&self.names);
        for (k, list) in &self.leaves {
            key.push(k.code());
            key.push(if *list == 1 { 'l' } else { 's' });
        }
        let idx = match self.schemas.get(key.as_str()) {
            Some(&i) => i,
            None => {
                let fields = self
                    .names
                    .split_terminator('\0')
                    .zip(&self.leaves)
                    .map(|(n, (k, list))| {
                        let ty = if *list == 1 {
                            Type::List(Box::new(k.ty()))
                        } else {
                            k.ty()
                        };
                        Field::new(n, ty)
                    })
                    .collect();
                let i = sink.builder_for(Schema::new(&key[..name_len], fields));
                self.schemas.insert(key.clone(), i);
                i
            }
        };
        self.key = key;
        idx
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{make_reader, Format, ReaderOptions};
    use crate::data::{Address, Subnet, Type, Value};
    use crate::source::ReadError;
    use std::fmt::Write as _;
    use std::io::Cursor;

    fn read_json(text: &str) -> (Vec<crate::data::Batch>, crate::source::ReadStats) {
        let mut r = reader_for(Format::Json, text.as_bytes().to_vec());
        let (bs, err) = read_all(r.as_mut(), 100);
        assert!(err.is_none(), "{err:?}");
        (bs, r.stats())
    }

    #[test]
    fn suricata_eve() {
        let Some(mut r) = file_reader(Format::Suricata, "suricata/eve.json") else {
            return;
        };
        let (bs, err) = read_all(r.as_mut(), 100);
        assert!(err.is_none());
        assert_eq!(r.stats().events, 7);
        assert_eq!(r.stats().skipped, 0);
        let mut names: Vec<_> = bs.iter().map(|b| b.schema.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "suricata.alert",
                "suricata.dns",
                "suricata.fileinfo",
                "suricata.flow",
                "suricata.http",
                "suricata.netflow",
                "suricata.stats"
            ]
        );
        let alert = bs
            .iter()
            .find(|b| b.schema.name == "suricata.alert")
            .unwrap();
        assert_eq!(
            field(alert, 0, "timestamp"),
            Value::Time(crate::data::value::parse_time("2011-08-12T12:52:57.716360Z").unwrap())
        );
        assert_eq!(
            field(alert, 0, "src_ip"),
            Value::Address(Address::parse("147.32.84.165").unwrap())
        );
        assert_eq!(field(alert, 0, "dest_port"), Value::Count(6667));
        assert_eq!(field(alert, 0, "flow.bytes_toserver"), Value::Count(2302));
        assert!(
            matches!(field(alert, 0, "alert.signature"), Value::String(s) if s.starts_with("ET CURRENT_EVENTS"))
        );
        let s = &alert.schema;
        assert_eq!(
            s.fields[s.field_index("dest_port").unwrap()].ty,
            Type::port()
        );
        assert_eq!(
            s.fields[s.field_index("timestamp").unwrap()].ty,
            Type::timestamp()
        );
        assert_eq!(
            s.fields[s.field_index("flow.start").unwrap()].ty,
            Type::Time
        );
        for b in &bs {
            b.validate().unwrap();
        }
    }

    #[test]
    fn zeek_json() {
        let Some(mut r) = file_reader(Format::ZeekJson, "zeek/zeek.json") else {
            return;
        };
        let (bs, err) = read_all(r.as_mut(), 100);
        assert!(err.is_none());
        assert_eq!(r.stats().skipped, 0);
        assert_eq!(r.stats().events, 34);
        let conn = bs.iter().find(|b| b.schema.name == "zeek.conn").unwrap();
        assert!(conn.schema.field_index("_path").is_none());
        assert_eq!(
            field(conn, 0, "id.orig_h"),
            Value::Address(Address::parse("45.231.152.1").unwrap())
        );
        // The first line has no `_path`.
        let conn = bs.iter().find(|b| b.schema.name == "zeek.unknown").unwrap();
        assert_eq!(field(conn, 0, "id.resp_p"), Value::Count(21));
        assert_eq!(
            field(conn, 0, "id.orig_h"),
            Value::Address(Address::parse("193.10.255.99").unwrap())
        );
        assert_eq!(
            field(conn, 0, "duration"),
            Value::Duration(1_196_975_041_000)
        );
        let s = &conn.schema;
        assert_eq!(s.fields[s.field_index("ts").unwrap()].ty, Type::timestamp());
        assert_eq!(
            s.fields[s.field_index("id.resp_p").unwrap()].ty,
            Type::port()
        );
        assert_eq!(s.fields[0].name, "__name", "document order is kept");

        let Some(mut r) = file_reader(Format::ZeekJson, "json/dns.log.json.gz") else {
            return;
        };
        let (bs, err) = read_all(r.as_mut(), 1000);
        assert!(err.is_none());
        assert!(total_rows(&bs) > 0);
        let with_rtt = bs
            .iter()
            .find(|b| b.schema.field_index("rtt").is_some())
            .unwrap();
        let s = &with_rtt.schema;
        assert_eq!(s.fields[s.field_index("rtt").unwrap()].ty, Type::Duration);
    }

    #[test]
    fn zeek_json_conventions() {
        let text = r#"{"_path":"conn","ts":1258531221.486539,"id.orig_h":"1.2.3.4","id.orig_p":80,"duration":0.5,"n":3}
{"_path":"conn","ts":1258531222,"id.orig_h":"::1","id.orig_p":81,"duration":2,"n":4}"#;
        let mut r = reader_for(Format::ZeekJson, text.as_bytes().to_vec());
        let (bs, err) = read_all(r.as_mut(), 10);
        assert!(err.is_none());
        let b = &bs[0];
        assert_eq!(
            bs.len(),
            1,
            "integral and fractional seconds share a schema"
        );
        assert_eq!(b.schema.name, "zeek.conn");
        assert_eq!(field(b, 0, "ts"), Value::Time(1_258_531_221_486_539_000));
        assert_eq!(field(b, 1, "ts"), Value::Time(1_258_531_222_000_000_000));
        assert_eq!(field(b, 0, "duration"), Value::Duration(500_000_000));
        assert_eq!(
            field(b, 1, "id.orig_h"),
            Value::Address(Address::parse("::1").unwrap())
        );
        let tys: Vec<_> = b.schema.fields.iter().map(|f| f.ty.clone()).collect();
        assert_eq!(
            tys,
            [
                Type::timestamp(),
                Type::Address,
                Type::port(),
                Type::Duration,
                Type::Count
            ]
        );
    }

    /// Times and durations read from a decimal's text give the leaf that
    /// reading the number first gives, where the seconds fit and where not.
    #[test]
    fn time_decimals_read_as_their_numbers() {
        use super::scan::Scan;
        use super::{decimal_leaf, Flavor, Hint, JsonParser};
        let mut p = JsonParser::new(Flavor::Zeek, None);
        let texts = [
            "0.5",
            "-0.5",
            "-0.0",
            "1258531221.486539",
            "1258531221.4865391234",
            "12345678901234567890.5",
            "9223372036.854775807",
            "9223372036.854775808",
            "-9223372036.854775808",
            "3",
            "1.5e3",
            "6e-06",
        ];
        let mut decimals = 0;
        for text in texts {
            for hint in [Hint::Timestamp, Hint::Time, Hint::Duration] {
                let n = Scan::new(text.as_bytes()).number().unwrap();
                let want = format!("{:?}", p.num_leaf(hint, n));
                let got = match Scan::new(text.as_bytes()).number_or_decimal().unwrap() {
                    Ok(n) => format!("{:?}", p.num_leaf(hint, n)),
                    Err(t) => {
                        decimals += 1;
                        format!("{:?}", decimal_leaf(hint, t))
                    }
                };
                assert_eq!(got, want, "{text}");
            }
        }
        assert_eq!(decimals, 3 * 9);
    }

    /// A Zeek `*_h` field takes an address straight, and otherwise the type
    /// any other field would infer for its text: a subnet, a time, a string.
    #[test]
    fn address_fields_infer_like_any_other() {
        let ty = |key: &str, text: &str| {
            let line = format!("{{\"{key}\":{}}}\n", serde_json::to_string(text).unwrap());
            let mut r = reader_for(Format::ZeekJson, line.into_bytes());
            let (bs, err) = read_all(r.as_mut(), 10);
            assert!(err.is_none(), "{err:?}");
            (bs[0].schema.fields[0].ty.clone(), field(&bs[0], 0, key))
        };
        for text in [
            "1.2.3.4",
            "::1",
            "::ffff:1.2.3.4",
            "10.0.0.0/8",
            "fe80::/10",
            "1.2.3",
            "1.2.3.4.5",
            "C1234",
            "x",
            "2011-08-12T14:52:57Z",
            "",
        ] {
            let (hinted, value) = ty("id.orig_h", text);
            let (plain, plain_value) = ty("orig", text);
            assert_eq!(hinted, plain, "{text:?}");
            assert_eq!(value, plain_value, "{text:?}");
        }
    }

    #[test]
    fn generic_inference() {
        let (bs, stats) = read_json(
            r#"{ "a": null, "b": true, "c": false, "d": 0, "e": -0, "f": -42, "g": 4.2, "h": 42.0, "i": 42}
{"a": "foo", "b": "1.2.3.4", "c": "10.0.0.0/8", "d": "2 secs", "f": "2017-08-13+21:10:42", "g": "2017-08-13"}
{ "a": { "b": { "c": 42 }, "d": true, "e": false }, "f": { "g": "" } }
{"a": [], "b": [0], "c": [-1, 0, 1], "d": [[], []], "g": [{"x": true}]}
{"x": 1, "y": "z"}
{"x": 2, "y": "w"}
{}
"#,
        );
        assert_eq!(stats.events, 6);
        assert_eq!(stats.skipped, 1, "the empty object is reported, not stored");
        assert_eq!(bs.len(), 5);
        let b = &bs[0];
        assert_eq!(b.schema.name, "json");
        assert_eq!(field(b, 0, "a"), Value::Null);
        assert_eq!(field(b, 0, "d"), Value::Count(0));
        assert_eq!(field(b, 0, "f"), Value::Int(-42));
        assert_eq!(field(b, 0, "g"), Value::Real(4.2));
        assert_eq!(field(b, 0, "h"), Value::Real(42.0));
        let b = &bs[1];
        assert_eq!(
            field(b, 0, "b"),
            Value::Address(Address::parse("1.2.3.4").unwrap())
        );
        assert_eq!(
            field(b, 0, "c"),
            Value::Subnet(Subnet::parse("10.0.0.0/8").unwrap())
        );
        assert_eq!(field(b, 0, "d"), Value::String("2 secs".into()));
        assert!(matches!(field(b, 0, "f"), Value::Time(_)));
        let b = &bs[2];
        let names: Vec<_> = b.schema.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.b.c", "a.d", "a.e", "f.g"]);
        let b = &bs[3];
        assert_eq!(
            field(b, 0, "c"),
            Value::List(vec![Value::Int(-1), Value::Int(0), Value::Int(1)])
        );
        assert_eq!(
            field(b, 0, "d"),
            Value::List(vec![Value::String("[]".into()); 2])
        );
        assert_eq!(
            field(b, 0, "g"),
            Value::List(vec![Value::String(r#"{"x":true}"#.into())])
        );
        assert_eq!(bs[4].rows, 2, "same fields and types share a schema");
        for b in &bs {
            b.validate().unwrap();
        }
    }

    #[test]
    fn schema_name_option_and_malformed_lines() {
        let text = "{\"a\": 1}\n{\"a\": \n[1,2]\n\n{\"a\": 2}\n\u{0}\u{1}garbage\n{\"a\": 3}";
        let opts = ReaderOptions {
            schema: Some("my.events".into()),
            ..Default::default()
        };
        let mut r = make_reader(
            Format::Json,
            Box::new(Cursor::new(text.as_bytes().to_vec())),
            &opts,
        )
        .unwrap();
        let (bs, err) = read_all(r.as_mut(), 10);
        assert!(err.is_none());
        assert_eq!(bs.len(), 1);
        assert_eq!(bs[0].schema.name, "my.events");
        assert_eq!(bs[0].rows, 3);
        // The broken object, both numbers of the array, and the garbage.
        assert_eq!(r.stats().skipped, 4);
    }

    #[test]
    fn mixed_lists_keep_every_element() {
        let (bs, stats) = read_json(
            r#"{"a": [1, -2], "b": [1, 2.5], "c": [null, 1], "d": [1, "x", true, null, {"k": [2]}], "e": ["1.2.3.4", "name"], "f": [18446744073709551615, -1]}"#,
        );
        assert_eq!((stats.events, stats.skipped), (1, 0));
        let b = &bs[0];
        let tys: Vec<_> = b.schema.fields.iter().map(|f| f.ty.clone()).collect();
        let list = |t: Type| Type::List(Box::new(t));
        assert_eq!(
            tys,
            [
                list(Type::Int),
                list(Type::Real),
                list(Type::Count),
                list(Type::String),
                list(Type::String),
                list(Type::Real)
            ]
        );
        assert_eq!(
            field(b, 0, "a"),
            Value::List(vec![Value::Int(1), Value::Int(-2)])
        );
        assert_eq!(
            field(b, 0, "b"),
            Value::List(vec![Value::Real(1.0), Value::Real(2.5)])
        );
        assert_eq!(
            field(b, 0, "c"),
            Value::List(vec![Value::Null, Value::Count(1)])
        );
        let s = |x: &str| Value::String(x.into());
        assert_eq!(
            field(b, 0, "d"),
            Value::List(vec![
                s("1"),
                s("x"),
                s("true"),
                Value::Null,
                s(r#"{"k":[2]}"#)
            ])
        );
        assert_eq!(field(b, 0, "e"), Value::List(vec![s("1.2.3.4"), s("name")]));
        assert_eq!(
            field(b, 0, "f"),
            Value::List(vec![Value::Real(18446744073709551615.0), Value::Real(-1.0)])
        );
        b.validate().unwrap();
    }

    #[test]
    fn top_level_arrays_hold_events() {
        let (bs, stats) =
            read_json("[{\"a\": 1}, {\"a\": 2}, 3, {}]\n{\"a\": 4}\n[]\n[[{\"a\": 5}]]\n");
        // The number, the empty object and the nested array are reported.
        assert_eq!((stats.events, stats.skipped), (3, 3));
        assert_eq!(bs.len(), 1);
        assert_eq!(field(&bs[0], 1, "a"), Value::Count(2));
        assert_eq!(field(&bs[0], 2, "a"), Value::Count(4));
    }

    #[test]
    fn a_field_that_changes_type_gets_a_layout_per_type() {
        let (bs, stats) = read_json(
            "{\"a\": 1, \"b\": \"x\"}\n{\"a\": \"one\", \"b\": \"y\"}\n{\"a\": 2, \"b\": \"z\"}\n{\"a\": {\"n\": 3}, \"b\": \"w\"}\n",
        );
        assert_eq!((stats.events, stats.skipped), (4, 0));
        let mut layouts: Vec<(String, u32)> = bs
            .iter()
            .map(|b| (format!("{:?}", b.schema.fields), b.rows))
            .collect();
        layouts.sort();
        assert_eq!(layouts.len(), 3, "{layouts:?}");
        assert_eq!(total_rows(&bs), 4);
        assert!(bs.iter().all(|b| b.schema.name == "json"));
        let one = bs
            .iter()
            .find(|b| b.rows == 1 && b.schema.fields[0].ty == Type::String)
            .unwrap();
        assert_eq!(field(one, 0, "a"), Value::String("one".into()));
        let nested = bs
            .iter()
            .find(|b| b.schema.field_index("a.n").is_some())
            .unwrap();
        assert_eq!(field(nested, 0, "a.n"), Value::Count(3));
    }

    #[test]
    fn wrong_format_fails_fast() {
        let mut r = reader_for(Format::Json, b"#separator \\x09\n{}\n".to_vec());
        assert!(matches!(r.read(10), Err(ReadError::WrongFormat(_))));
        let mut r = reader_for(
            Format::Suricata,
            vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0],
        );
        assert!(matches!(r.read(10), Err(ReadError::WrongFormat(_))));
        if let Some(p) = data("pcap/example.pcap.gz") {
            for f in [Format::Json, Format::ZeekJson] {
                let input = super::super::open_input(Some(&p)).unwrap();
                let mut r = make_reader(f, input, &Default::default()).unwrap();
                assert!(matches!(r.read(10), Err(ReadError::WrongFormat(_))));
            }
        }
    }

    #[test]
    fn data_files() {
        for f in [
            "json/conn.log.json.gz",
            "json/sysmon.json",
            "json/rdp.log.json.gz",
            "json/files.log.json.gz",
        ] {
            let Some(mut r) = file_reader(Format::ZeekJson, f) else {
                return;
            };
            let (bs, err) = read_all(r.as_mut(), 512);
            assert!(err.is_none(), "{f}");
            assert!(total_rows(&bs) > 0, "{f}");
            assert_eq!(r.stats().skipped, 0, "{f}");
            for b in &bs {
                b.validate().unwrap();
            }
        }
    }

    /// Every event of `text` as (schema, fields with types and values),
    /// sorted, with the reader's counts.
    fn events(format: Format, text: &str) -> (Vec<String>, (u64, u64)) {
        let mut r = reader_for(format, text.as_bytes().to_vec());
        let (bs, err) = read_all(r.as_mut(), 7);
        assert!(err.is_none(), "{err:?}");
        let mut rows = Vec::new();
        for b in &bs {
            for row in 0..b.rows as usize {
                let mut out = b.schema.name.clone();
                for (i, f) in b.schema.fields.iter().enumerate() {
                    write!(
                        out,
                        " {}:{:?}={:?}",
                        f.name,
                        f.ty,
                        b.columns[i].value(row, &f.ty)
                    )
                    .unwrap();
                }
                rows.push(out);
            }
        }
        rows.sort();
        let st = r.stats();
        (rows, (st.events, st.skipped))
    }

    /// Lines read one after another, where each may reuse what the lines
    /// before it were (keys, hints, names, schemas), give the events each
    /// line gives when read alone.
    #[test]
    fn lines_read_together_give_the_events_of_lines_read_alone() {
        let members = [
            r#""a":1"#,
            r#""a":"x""#,
            r#""a":{"x":1}"#,
            r#""a":{"x":"10.0.0.1","y":[1,2]}"#,
            r#""a\u0062":2"#,
            r#""a\u0062":{"x":1,"\u0079":2}"#,
            r#""ab":3"#,
            r#""abc":-4"#,
            r#""b":{"x":1}"#,
            r#""b" : { "x" : 1.5 }"#,
            r#""_path":"conn""#,
            r#""_path":"dns""#,
            r#""event_type":"flow""#,
            r#""ts":"2011-08-12T14:52:57.000000Z""#,
            r#""ts":1258531221.123456789"#,
            r#""id.orig_h":"10.0.0.1""#,
            r#""id.orig_p":80"#,
            r#""duration":3.5"#,
            r#""duration":6e-06"#,
            r#""x":"10.0.0.1""#,
            r#""y":[1,2]"#,
            r#""c":null"#,
            r#""c":[]"#,
            r#""c":true"#,
            r#""h\u00e9":"é""#,
        ];
        let mut seed = 7u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        // Lines mostly change the line before a little, so that they share
        // leading members with it, as a log's lines do.
        let mut lines = vec![
            r#"{"a":{"x":"10.0.0.1","y":[1,2]}}"#.to_string(),
            r#"{"a":{"x":1},"y":[1,2]}"#.to_string(),
            r#"{"a":{"x":1},"y":[1,2]}"#.to_string(),
            r#"{"a":1,"x":1}"#.to_string(),
            r#"{"a":{"x":1}}"#.to_string(),
        ];
        // Pairs that differ only in what names the schema, in a leaf's kind,
        // or in having fewer or more members, or that break off after many
        // members: a line read straight into the last line's schema must
        // notice each (see `event_into`).
        for pair in [
            [r#"{"_path":"conn","a":1}"#, r#"{"_path":"dns","a":1}"#],
            [r#"{"a":1,"_path":"conn"}"#, r#"{"a":1}"#],
            [
                r#"{"event_type":"flow","a":1}"#,
                r#"{"event_type":"dns","a":1}"#,
            ],
            [r#"{"a":1,"b":2}"#, r#"{"a":1,"b":-2}"#],
            [r#"{"a":1,"b":[1]}"#, r#"{"a":1,"b":[]}"#],
            [r#"{"a":1,"b":[1]}"#, r#"{"a":1,"b":[1.5]}"#],
            [r#"{"a":1,"b":[1]}"#, r#"{"a":1,"b":1}"#],
            [r#"{"a":1,"b":null}"#, r#"{"a":1,"b":"x"}"#],
            [r#"{"a":{"x":1},"b":2}"#, r#"{"a":{"x":1}}"#],
            [r#"{"a":{"x":1},"b":2}"#, r#"{"a":{"x":1},"b":2,"c":3}"#],
            [r#"{"a":{"x":1},"b":2}"#, r#"{"a":{"x":1,"y":2},"b":2}"#],
            [r#"{"a":1,"b":2,"c":3}"#, r#"{"a":1,"b":2,"c":"#],
            [r#"{"a":1,"b":2}"#, r#"{"a":1,"b":2}x"#],
        ] {
            lines.extend([pair[0], pair[1], pair[1], pair[0]].map(String::from));
        }
        let mut line: Vec<&str> = Vec::new();
        for _ in 0..600 {
            match next(8) {
                0 => line = (0..next(6)).map(|_| members[next(members.len())]).collect(),
                1 | 2 if !line.is_empty() => {
                    let i = next(line.len());
                    line[i] = members[next(members.len())];
                }
                3 => line.push(members[next(members.len())]),
                4 => line.truncate(next(line.len() + 1)),
                _ => {}
            }
            let text = format!("{{{}}}", line.join(","));
            if next(10) == 0 {
                // Cut short: invalid, or empty.
                lines.push(text.get(..next(text.len())).unwrap_or(&text).to_string());
            } else {
                lines.push(text);
            }
        }
        for format in [Format::ZeekJson, Format::Suricata, Format::Json] {
            let together = events(format, &(lines.join("\n") + "\n"));
            let mut alone = (Vec::new(), (0, 0));
            for l in &lines {
                let (rows, (ev, sk)) = events(format, &format!("{l}\n"));
                alone.0.extend(rows);
                alone.1 .0 += ev;
                alone.1 .1 += sk;
            }
            alone.0.sort();
            assert_eq!(together.1, alone.1, "{format:?}");
            assert!(alone.1 .1 > 0 && alone.1 .0 > 200, "{:?}", alone.1);
            assert_eq!(together.0, alone.0, "{format:?}");
        }
    }
}
