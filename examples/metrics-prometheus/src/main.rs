//! `cargo run -p metrics-prometheus`: the receiver on `API_ADDR` (default `127.0.0.1:3005`)
//! and its metrics on `METRICS_ADDR` (default `127.0.0.1:9105`, loopback only), with the
//! secret from `WEBHOOK_SECRET` (required).

use std::net::SocketAddr;

use metrics_prometheus::{app, install_recorder, spawn};
use tollgate::core::{BoxError, Secret};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let api: SocketAddr = var("API_ADDR", "127.0.0.1:3005").parse()?;
    let metrics: SocketAddr = var("METRICS_ADDR", "127.0.0.1:9105").parse()?;
    let secret = Secret::from_env("WEBHOOK_SECRET")?;
    let handle = install_recorder()?;
    let bound = spawn(app(secret)?, handle, api, metrics).await?;
    println!(
        "receiver on http://{}/webhooks, metrics on http://{}/metrics",
        bound.api, bound.metrics
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
