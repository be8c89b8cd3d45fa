//! The tollgate walkthrough: starts the example apps and the provider mocks in one process on
//! loopback ports, then plays scripted [`Scenario`]s against them and prints, for each, the
//! request, the expected and the actual outcome.
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

pub mod net;
mod runner;
mod scenarios;
mod world;

pub use runner::{Outcome, Scenario, ScenarioFuture, render, run_all, summary};
pub use scenarios::scenarios;
pub use world::{
    DEMO_EPOCH, Demo, FRONTEND_ORIGIN, ONEKEY_SECRET, PROXY_IP, STANDARD_WEBHOOK_SECRET,
    TRANSAK_ACCESS_TOKEN, TRANSAK_API_KEY, TRANZILA_APP_KEY, WEBHOOK_BODY_LIMIT,
    WEBHOOK_NEW_SECRET, WEBHOOK_OLD_NOT_AFTER, WEBHOOK_OLD_SECRET,
};
