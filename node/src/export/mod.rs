//! Export: renders query results in an output format.

pub mod format;
