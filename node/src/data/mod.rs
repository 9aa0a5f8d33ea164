//! The data model: types, values, and columnar batches.

pub mod batch;
pub mod builder;
pub mod checked;
pub mod pool;
pub mod types;
pub mod value;
pub mod wire;

pub use batch::{Batch, BatchError, Column, ColumnData, ValueRef};
pub use builder::{BatchBuilder, ColumnBuilder};
pub use types::{Field, Schema, Type};
pub use value::{Address, Subnet, Value};
