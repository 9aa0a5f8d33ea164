//! Every decode of untrusted rkyv bytes (peers' messages, files on disk) goes
//! through here: bytecheck validation with a depth limit. rkyv's default
//! validator recurses once per nested pointer without bound, so a message of
//! under 1 MB nesting a type 100,000 deep would overflow the stack; with the
//! limit it is an error like any other malformed input.

use super::batch::with_aligned;
use rkyv::api::high::{HighDeserializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::validation::{archive::ArchiveValidator, shared::SharedValidator, Validator};
use rkyv::{Archive, Deserialize, Portable};
use std::num::NonZeroUsize;

/// The error type of every validation and deserialization of untrusted bytes.
/// rancor's `Error` keeps what went wrong only in builds with debug
/// assertions: a release node answered a malformed message with "failed
/// without error information". A boxed error keeps it in every build, and
/// costs an allocation only when the bytes are bad.
pub type Error = rkyv::rancor::BoxedError;

/// Deepest nesting of pointers (boxes, vectors, strings) accepted. Real schemas
/// nest a few levels; each level costs two or three pointers.
pub const MAX_DEPTH: usize = 128;

fn validator(bytes: &[u8]) -> Validator<ArchiveValidator<'_>, SharedValidator> {
    Validator::new(
        ArchiveValidator::with_max_depth(bytes, NonZeroUsize::new(MAX_DEPTH)),
        SharedValidator::new(),
    )
}

/// Validates `bytes` (already aligned) and returns the archived root.
pub fn access<T>(bytes: &[u8]) -> Result<&T, String>
where
    T: Portable + for<'a> CheckBytes<HighValidator<'a, Error>>,
{
    rkyv::api::access_with_context::<T, _, Error>(bytes, &mut validator(bytes)).map_err(reason)
}

/// What is wrong with the bytes, for the log and the peer that sent them.
fn reason(e: Error) -> String {
    // rancor shows the innermost error ("Option is None"); the reason is in
    // the trace.
    if format!("{e:?}").contains("ExceededMaximumSubtreeDepth") {
        format!("nested deeper than {MAX_DEPTH} levels (the depth limit)")
    } else {
        without_addresses(&e.to_string())
    }
}

/// `msg` with memory addresses (`0x` and 8 or more hex digits) replaced:
/// bytecheck names the pointers it refused, and these messages go back to the
/// peer that sent the bytes, which should learn what was wrong, not where this
/// process keeps its heap.
fn without_addresses(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find("0x") {
        let digits = rest[i + 2..]
            .bytes()
            .take_while(u8::is_ascii_hexdigit)
            .count();
        out.push_str(&rest[..i]);
        if digits >= 8 {
            out.push_str("<address>");
        } else {
            out.push_str(&rest[i..i + 2 + digits]);
        }
        rest = &rest[i + 2 + digits..];
    }
    out.push_str(rest);
    out
}

/// Validates and deserializes `bytes`, copying them first only when misaligned.
pub fn from_bytes<T>(bytes: &[u8]) -> Result<T, String>
where
    T: Archive,
    T::Archived:
        for<'a> CheckBytes<HighValidator<'a, Error>> + Deserialize<T, HighDeserializer<Error>>,
{
    with_aligned(bytes, |b| {
        let archived = access::<T::Archived>(b)?;
        rkyv::api::high::deserialize::<T, Error>(archived).map_err(reason)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::types::{Field, Schema, Type};

    /// A schema nested `depth` records deep, as a hostile peer would send it.
    fn nested(depth: usize) -> Schema {
        let mut t = Type::Count;
        for _ in 0..depth {
            t = Type::Record(vec![Field {
                name: "x".into(),
                ty: t,
            }]);
        }
        Schema {
            name: "deep".into(),
            fields: vec![Field {
                name: "root".into(),
                ty: t,
            }],
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        // Serializing a deep value recurses too: do it on a thread with a big stack,
        // as an attacker would with their own tooling.
        let bytes = std::thread::Builder::new()
            .stack_size(1 << 30)
            .spawn(|| {
                let s = nested(100_000);
                let b = rkyv::to_bytes::<Error>(&s).unwrap().into_vec();
                std::mem::forget(s); // dropping recurses as deep as building did
                b
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(bytes.len() < 4 << 20, "{} bytes", bytes.len());
        // On a small stack: an error, not an overflow.
        let e = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || from_bytes::<Schema>(&bytes).unwrap_err())
            .unwrap()
            .join()
            .unwrap();
        assert!(e.contains("depth"), "{e}");
        // Ordinary nesting still decodes.
        let s = nested(10);
        let b = rkyv::to_bytes::<Error>(&s).unwrap().into_vec();
        assert_eq!(from_bytes::<Schema>(&b).unwrap(), s);
    }

    /// Bad bytes say what is wrong in every build, release ones included
    /// (rancor's own error type said nothing without debug assertions).
    #[test]
    fn errors_say_what_is_wrong() {
        let s = Schema::new("t", vec![Field::new("c", Type::Count)]);
        let mut b = rkyv::to_bytes::<Error>(&s).unwrap().into_vec();
        // The root's relative pointer, last in the buffer, now points past it.
        let n = b.len();
        b[n - 8..n - 4].copy_from_slice(&0x7fff_0000i32.to_le_bytes());
        let e = from_bytes::<Schema>(&b).unwrap_err();
        assert!(!e.contains("without error information"), "{e}");
        assert!(e.contains("range"), "{e}");
        assert!(e.contains("<address>") && !e.contains("0x0"), "{e}");
        assert_eq!(
            without_addresses("at 0x00007ffc2fff0c60, 0x1f and 0xdeadbeef0"),
            "at <address>, 0x1f and <address>"
        );
    }
}
