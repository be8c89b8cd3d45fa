//! Timestamp window and nonce store against replayed requests.
//!
//! This crate is being built; the [`NonceStore`] trait is its shared interface.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod store;

pub use store::{Claim, ClaimFuture, NonceStore, StoreError};
