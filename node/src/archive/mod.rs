//! The archive: durable storage of batches, returning rows by id.

pub mod actor;
pub mod encode;
pub mod store;

pub use actor::Archive;
