//! `cargo run -p transak-partner`: the partner backend on `TRANSAK_PARTNER_ADDR`
//! (default `127.0.0.1:3000`), calling `TRANSAK_API_URL` or, when unset, the mock Transak API
//! it starts on `TRANSAK_MOCK_ADDR` (default `127.0.0.1:3001`).
use std::process::ExitCode;
use std::sync::Arc;

use tollgate::core::SystemClock;
use transak_partner::mock::{MockTransak, MockTransakConfig};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("transak-partner: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), tollgate::core::BoxError> {
    let config = transak_partner::Config::from_env()?;
    let transak_url = match &config.transak_url {
        Some(url) => url.clone(),
        None => {
            let mock = MockTransak::new(MockTransakConfig {
                api_keys: vec![config.api_key.clone()],
                access_token: String::from_utf8_lossy(config.access_token.expose_secret())
                    .into_owned(),
                allowed_sources: vec!["127.0.0.0/8".parse()?],
                clock: Arc::new(SystemClock),
            });
            let addr = mock.spawn(config.mock_addr).await?;
            println!("mock Transak API on http://{addr}");
            format!("http://{addr}")
        }
    };
    let app = transak_partner::app(&config, &transak_url)?;
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    println!(
        "transak-partner on http://{} (origins: {})\n\ntry:\n  curl -i -X POST http://{}/api/widget-url -H 'origin: {}' -H 'content-type: application/json' -d '{{\"cryptoCurrencyCode\":\"ETH\"}}'",
        config.addr,
        config.allowed_origins.join(", "),
        config.addr,
        config
            .allowed_origins
            .first()
            .map_or("http://localhost:5173", String::as_str),
    );
    transak_partner::serve(listener, app).await?;
    Ok(())
}
