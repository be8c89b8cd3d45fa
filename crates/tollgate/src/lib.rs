//! tollgate: composable tower middleware for backends that stand between browsers and payment APIs.
//!
//! This crate is being built; its layers land in the issue that fills it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
