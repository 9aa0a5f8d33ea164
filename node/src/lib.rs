//! The VAST node runtime: data model, formats, query language, storage and actors.

pub mod data;
pub mod export;
pub mod query;
pub mod source;
