//! The null format: discards all events, e.g. to measure query throughput.

use super::Writer;
use crate::data::Batch;
use std::io::{self, Write};

/// Writes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullWriter;

impl Writer for NullWriter {
    fn write(&mut self, _: &Batch, _: &[u32], _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::format::test_util;

    #[test]
    fn writes_nothing() {
        let out = test_util::render(&mut NullWriter, &[test_util::batch()]);
        assert!(out.is_empty());
    }
}
