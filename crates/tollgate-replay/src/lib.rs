//! Timestamp window and nonce store against replayed requests.
//!
//! This crate is being built; its layers land in the issue that fills it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
