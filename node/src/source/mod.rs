//! Sources: what reads input and turns it into batches. What a source reads is the
//! [`Reader`] trait; the source actor is one generic wrapper around any reader, so a
//! file, stdin, an interface or a test vector look the same to the importer.

pub mod actor;
pub mod format;

use crate::data::Batch;
use std::fmt;

/// Counters every reader keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Events produced.
    pub events: u64,
    /// Malformed records skipped (each also logged, rate-limited).
    pub skipped: u64,
    /// Reader-specific counters by name, e.g. packets dropped by the kernel.
    pub counters: Vec<(String, u64)>,
}

/// Why a reader could not go on at all (as opposed to a skipped record).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The input is not in the expected format at all (e.g. pcap bytes to `import zeek`).
    #[error("{0}")]
    WrongFormat(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// Produces batches from one input in one format. Implementations block on I/O;
/// the source actor drives them from a blocking thread.
pub trait Reader: Send + 'static {
    /// Reads until at least one batch is complete (each batch holds rows of a single
    /// schema and at most `batch_size` rows) or the input ends. Returns `Ok(None)`
    /// once the input is exhausted and everything was returned.
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<Batch>>, ReadError>;

    /// Events produced and records skipped so far.
    fn stats(&self) -> ReadStats;
}

impl fmt::Debug for dyn Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reader({:?})", self.stats())
    }
}

/// A reader over batches already in memory: test vectors and replays.
pub struct BatchReader {
    batches: std::collections::VecDeque<Batch>,
    stats: ReadStats,
}

impl BatchReader {
    pub fn new(batches: Vec<Batch>) -> Self {
        BatchReader {
            batches: batches.into(),
            stats: ReadStats::default(),
        }
    }
}

impl Reader for BatchReader {
    fn read(&mut self, _batch_size: usize) -> Result<Option<Vec<Batch>>, ReadError> {
        Ok(self.batches.pop_front().map(|b| {
            self.stats.events += b.rows as u64;
            vec![b]
        }))
    }

    fn stats(&self) -> ReadStats {
        self.stats.clone()
    }
}
