//! The end user's real IP in, `x-user-ip` out, and an IP allowlist.
//!
//! This crate is being built; its layers land in the issue that fills it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
