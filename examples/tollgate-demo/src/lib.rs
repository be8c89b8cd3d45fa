//! The tollgate walkthrough: starts the example apps and the provider mocks in one process on
//! loopback ports, then plays scripted [`Scenario`]s against them and prints, for each, the
//! request, the expected and the actual outcome.
//!
//! Every provider mock (Transak, Tranzila, OneKey) is served over HTTPS with a certificate
//! from a local test CA made at start ([`example_server::tls`]), and every provider client is
//! one of tollgate's ready clients trusting that CA: the scenarios show plain `http://`
//! refused before connecting, bad certificates refused, a retry signed anew and accepted, a
//! timeout as a typed error, and a OneKey cashout checked against every OneKey rule.
//!
//! The scenario list ([`scenarios`]) is defined once here: the `tollgate-demo` binary prints it
//! as a table, and the workspace's `tests` crate asserts every scenario.
//!
//! ```no_run
//! # async fn run() -> Result<(), tollgate::core::BoxError> {
//! let demo = tollgate_demo::Demo::start().await?;
//! let outcomes = tollgate_demo::run_all(&demo, &tollgate_demo::scenarios()).await;
//! print!("{}", tollgate_demo::render(&outcomes));
//! assert!(outcomes.iter().all(|o| o.passed()));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod https_scenarios;
pub mod net;
mod runner;
mod scenarios;
mod world;

pub use runner::{Outcome, Scenario, ScenarioFuture, render, run_all, summary};
pub use scenarios::scenarios;
pub use world::{
    DEMO_EPOCH, Demo, FRONTEND_ORIGIN, IDEMPOTENCY_KEY, ONEKEY_API_KEY, ONEKEY_API_PASSPHRASE,
    ONEKEY_API_SIGNATURE, ONEKEY_SECRET, PROXY_IP, ROTATION_NEW_SECRET, ROTATION_OLD_SECRET,
    RotationDir, STANDARD_WEBHOOK_SECRET, TRANSAK_API_KEY, TRANSAK_API_SECRET, TRANZILA_APP_KEY,
    WEBHOOK_BODY_LIMIT, WEBHOOK_NEW_SECRET, WEBHOOK_OLD_NOT_AFTER, WEBHOOK_OLD_SECRET,
};
