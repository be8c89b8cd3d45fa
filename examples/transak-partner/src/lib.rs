//! A Transak partner backend: an axum server behind tollgate's inbound stack that creates
//! widget URLs through a `hyper_util` client with tollgate's outbound stack.
#![forbid(unsafe_code)]

pub mod mock;
