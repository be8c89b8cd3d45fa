//! The README's stacked example, built with exactly the dependencies its "Add to Cargo.toml"
//! section shows (see `Cargo.toml`) and run over TCP by `tests/readme.rs`.
//!
//! `example.rs` is a verbatim copy of the README's code block (`tests/readme.rs` fails when
//! they differ): its `main` is what a user's binary would hold, compiled here but not run.

#[allow(dead_code)]
mod example;

pub use example::serve;
