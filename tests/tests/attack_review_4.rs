//! Attacker's review of the layer-shape refactor (17bbab6..HEAD).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
