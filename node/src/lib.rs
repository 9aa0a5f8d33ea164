//! The VAST node runtime: data model, formats, query language, storage and actors.
//! Folders follow the data path: source, importer, archive, index, query, export.

pub mod archive;
pub mod commit;
pub mod compactor;
pub mod data;
pub mod durable;
pub mod export;
pub mod importer;
pub mod index;
pub mod net;
pub mod node;
pub mod proto;
pub mod query;
pub mod source;
pub mod telemetry;
