//! Test support for tollgate's cross-crate integration tests (in `tests/`): loopback servers,
//! clients and the external programs (redis-server, chromium, php) the tests start.
#![forbid(unsafe_code)]
