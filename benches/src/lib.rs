//! What tollgate's benchmarks share: a counting global allocator, a minimal executor, echo
//! services and a results file for figures criterion does not record.
//!
//! The benchmarks themselves are in `benches/` (criterion, `harness = false`); `run.sh`
//! runs them with the load script and writes `BENCHMARKS.md`.
#![deny(missing_docs)]

pub mod alloc;
pub mod echo;
pub mod exec;
pub mod handwritten;
pub mod handwritten_verify;
pub mod results;
