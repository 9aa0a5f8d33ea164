//! VAST's type system: the types a field can have and the schemas (layouts) that
//! name a record of them.

use rkyv::{Archive, Deserialize, Serialize};
use std::fmt;

/// A VAST type. `Alias` names a type without changing its representation:
/// `port` is an alias of `count`, `timestamp` of `time`, Zeek's `set` of `list`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Archive, Serialize, Deserialize)]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
pub enum Type {
    /// `true` or `false`.
    Bool,
    /// Signed 64-bit integer.
    Int,
    /// Unsigned 64-bit integer.
    Count,
    /// 64-bit float.
    Real,
    /// Signed span of nanoseconds.
    Duration,
    /// Nanoseconds since the UNIX epoch.
    Time,
    /// UTF-8 text.
    String,
    /// A regular expression, stored as its source text.
    Pattern,
    /// IPv4 or IPv6 address (v4 stored v4-mapped).
    Address,
    /// Address plus prefix length.
    Subnet,
    /// One of a set of names; Zeek enums do not list their names, so the list may be empty.
    Enum(Vec<String>),
    /// Homogeneous list.
    List(#[rkyv(omit_bounds)] Box<Type>),
    /// Key/value pairs.
    Map(
        #[rkyv(omit_bounds)] Box<Type>,
        #[rkyv(omit_bounds)] Box<Type>,
    ),
    /// Named fields; at the top level of a schema records are flattened to dotted names,
    /// so this only appears nested in lists and maps.
    Record(#[rkyv(omit_bounds)] Vec<Field>),
    /// A named alias of another type.
    Alias(String, #[rkyv(omit_bounds)] Box<Type>),
    /// Raw bytes (e.g. a captured packet); not UTF-8, so kept apart from `String`.
    /// Last so the archived discriminants of the older variants stay unchanged.
    Blob,
}

/// A named field of a record or schema.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Archive, Serialize, Deserialize)]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
pub struct Field {
    /// Field name; in a schema, the dotted path of the flattened record (`id.orig_h`).
    pub name: String,
    /// Field type.
    #[rkyv(omit_bounds)]
    pub ty: Type,
}

impl Field {
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Field {
            name: name.into(),
            ty,
        }
    }
}

impl Type {
    /// The `port` alias of `count`.
    pub fn port() -> Type {
        Type::Alias("port".into(), Box::new(Type::Count))
    }
    /// The `timestamp` alias of `time`.
    pub fn timestamp() -> Type {
        Type::Alias("timestamp".into(), Box::new(Type::Time))
    }
    /// Zeek's `set[T]`: a list with the `set` alias, kept so Zeek export writes it back.
    pub fn set(elem: Type) -> Type {
        Type::Alias("set".into(), Box::new(Type::List(Box::new(elem))))
    }

    /// The type behind all aliases: this decides the representation.
    pub fn base(&self) -> &Type {
        match self {
            Type::Alias(_, t) => t.base(),
            t => t,
        }
    }

    /// Whether a type extractor `:name` selects this type: either an alias on the way
    /// down carries that name, or the base type's name matches.
    pub fn has_name(&self, name: &str) -> bool {
        match self {
            Type::Alias(n, t) => n == name || t.has_name(name),
            t => t.kind_name() == name || (name == "addr" && matches!(t, Type::Address)),
        }
    }

    /// The canonical name of the base kind, as written in type extractors.
    pub fn kind_name(&self) -> &'static str {
        match self.base() {
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Count => "count",
            Type::Real => "real",
            Type::Duration => "duration",
            Type::Time => "time",
            Type::String => "string",
            Type::Pattern => "pattern",
            Type::Address => "address",
            Type::Subnet => "subnet",
            Type::Enum(_) => "enum",
            Type::List(_) => "list",
            Type::Map(_, _) => "map",
            Type::Record(_) => "record",
            Type::Blob => "blob",
            Type::Alias(_, _) => unreachable!("base() strips aliases"),
        }
    }

    /// The element type of a list (strings for anything else, so callers that walk
    /// mistyped cells still render them).
    pub fn list_element(&self) -> &Type {
        match self.base() {
            Type::List(t) => t,
            _ => &Type::String,
        }
    }

    /// Key and value types of a map (strings for anything else).
    pub fn map_types(&self) -> (&Type, &Type) {
        match self.base() {
            Type::Map(k, v) => (k, v),
            _ => (&Type::String, &Type::String),
        }
    }

    /// The alias name closest to the surface, if any (`port`, `timestamp`, `set`).
    pub fn alias_name(&self) -> Option<&str> {
        match self {
            Type::Alias(n, _) => Some(n),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Alias(n, _) => write!(f, "{n}"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::Map(k, v) => write!(f, "map<{k}, {v}>"),
            Type::Record(fs) => {
                write!(f, "record{{")?;
                for (i, fl) in fs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{}: {}", fl.name, fl.ty)?;
                }
                write!(f, "}}")
            }
            t => write!(f, "{}", t.kind_name()),
        }
    }
}

/// A named layout: the flattened fields of one kind of event, e.g. `zeek.conn`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Archive, Serialize, Deserialize)]
pub struct Schema {
    /// Qualified name such as `zeek.conn` or `suricata.alert`.
    pub name: String,
    /// Leaf fields in order; nested records appear as dotted names.
    pub fields: Vec<Field>,
}

impl Schema {
    pub fn new(name: impl Into<String>, fields: Vec<Field>) -> Self {
        Schema {
            name: name.into(),
            fields,
        }
    }

    /// A stable fingerprint: equal schemas share partitions and Zeek headers.
    pub fn fingerprint(&self) -> u64 {
        use std::fmt::Write;
        // Types are written into the one buffer: a `format!` per field made a
        // query's lookup pay an allocation per field per partition.
        let mut s = String::with_capacity(256);
        s.push_str(&self.name);
        for f in &self.fields {
            s.push('\u{1}');
            s.push_str(&f.name);
            s.push('\u{2}');
            let _ = write!(s, "{:?}", f.ty);
        }
        xxhash_rust::xxh3::xxh3_64(s.as_bytes())
    }

    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_keep_their_base() {
        let p = Type::port();
        assert_eq!(p.base(), &Type::Count);
        assert!(p.has_name("port"));
        assert!(p.has_name("count"));
        assert!(!Type::Count.has_name("port"));
        assert!(Type::Address.has_name("addr"));
        assert_eq!(Type::set(Type::String).to_string(), "set");
    }

    #[test]
    fn fingerprint_depends_on_types() {
        let a = Schema::new("x", vec![Field::new("a", Type::Count)]);
        let b = Schema::new("x", vec![Field::new("a", Type::Int)]);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
    }
}
