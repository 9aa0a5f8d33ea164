//! Input formats.
