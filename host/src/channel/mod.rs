//! The channels a notice can go out through.

pub mod line;
