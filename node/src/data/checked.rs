//! Every decode of untrusted rkyv bytes (peers' messages, files on disk) goes
//! through here: bytecheck validation with a depth limit. rkyv's default
//! validator recurses once per nested pointer without bound, so a message of
//! under 1 MB nesting a type 100,000 deep would overflow the stack; with the
//! limit it is an error like any other malformed input.

use super::batch::with_aligned;
use rkyv::api::high::{HighDeserializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor::Error;
use rkyv::validation::{archive::ArchiveValidator, shared::SharedValidator, Validator};
use rkyv::{Archive, Deserialize, Portable};
use std::num::NonZeroUsize;

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
    rkyv::api::access_with_context::<T, _, Error>(bytes, &mut validator(bytes)).map_err(|e| {
        // rancor shows the innermost error ("Option is None"); the reason is in
        // the trace.
        if format!("{e:?}").contains("ExceededMaximumSubtreeDepth") {
            format!("nested deeper than {MAX_DEPTH} levels (the depth limit)")
        } else {
            e.to_string()
        }
    })
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
        rkyv::api::high::deserialize::<T, Error>(archived).map_err(|e| e.to_string())
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
}
