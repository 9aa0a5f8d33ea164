//! The VAST 2021 expression language: parsing, resolution against schemas, and
//! evaluation on batches; `exec` runs a query over index and archive.

pub mod ast;
pub mod exec;
pub mod parse;
pub mod resolve;

pub use ast::*;
pub use parse::{parse, ParseError};
pub use resolve::{eval_row, filter, resolve, Cmp, Resolved};
