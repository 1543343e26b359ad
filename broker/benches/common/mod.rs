//! Helpers shared by the benches.

pub mod ceiling;
