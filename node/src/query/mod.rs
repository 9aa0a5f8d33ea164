//! The VAST 2021 expression language: parsing, resolution against schemas, and
//! evaluation on batches.
