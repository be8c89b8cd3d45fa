//! The README's stacked example, built with exactly the dependencies its "Add to Cargo.toml"
//! section shows (see `Cargo.toml`) and run over TCP by `tests/readme.rs`.
//!
//! `example.rs` and `providers.rs` are verbatim copies of the README's code blocks under "A
//! stacked example" and "Calling a provider" (`tests/readme.rs` fails when they differ).
//! `example.rs` is a verbatim copy of the README's code block (`tests/readme.rs` fails when
//! they differ): its `main` is what a user's binary would hold, compiled here but not run.

#[allow(dead_code)]
mod example;
/// The README's "Calling a provider" block, verbatim: compiled, not run (it calls the real
/// providers).
mod providers;

pub use example::serve;
pub use providers::call_providers;
