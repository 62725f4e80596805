//! Shared helpers for the end-to-end suites.

pub mod image;
pub mod logs;
pub mod poll;
pub mod sandbox;
