//! The index: per-partition synopses (the catalog) and value indexes that turn an
//! expression into candidate rows without touching the data.

pub mod actor;
pub mod catalog;
mod key_table;
pub mod partition;
pub mod postings;
pub mod synopsis;
pub mod value_index;

pub use actor::Index;
