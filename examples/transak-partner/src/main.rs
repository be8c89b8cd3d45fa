//! `cargo run -p transak-partner`: the partner backend on `TRANSAK_PARTNER_ADDR`
//! (default `127.0.0.1:3000`), calling `TRANSAK_API_URL` (https only) with `TRANSAK_API_KEY`
//! and access tokens refreshed with `TRANSAK_API_SECRET`; without one of the three it refuses
//! to start and names it.
//!
//! `cargo run -p transak-partner -- --demo` fills the unset ones with the published demo
//! credentials (with a warning) and, without `TRANSAK_API_URL`, starts the mock Transak API
//! over HTTPS on `TRANSAK_MOCK_ADDR` (default `127.0.0.1:3001`), with a test CA made at start
//! that the partner's client trusts, and calls it.
use std::process::ExitCode;
use std::sync::Arc;

use tollgate::core::SystemClock;
use transak_partner::mock::{ACCESS_TOKEN_TTL_SECS, MockTransak, MockTransakConfig};

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
    use transak_partner::Secrets;
    let secrets = Secrets::from_args("transak-partner", std::env::args().skip(1))?;
    let env = |name: &str| std::env::var(name).ok();
    let mut config = transak_partner::Config::from_vars(secrets, env)?;
    let demo = transak_partner::missing_vars(env);
    let what = if config.transak_url.is_none() {
        "anyone can use these credentials (and the Transak API is a mock)"
    } else {
        "anyone can use these credentials"
    };
    if let Some(warning) = secrets.demo_warning("transak-partner", &demo, what, Some(config.addr)) {
        eprintln!("{warning}");
    }
    let transak_url = match &config.transak_url {
        Some(url) => url.clone(),
        None => {
            let mock = MockTransak::new(MockTransakConfig {
                api_keys: vec![config.api_key.clone()],
                api_secret: String::from_utf8_lossy(config.api_secret.expose_secret()).into_owned(),
                token_ttl_secs: ACCESS_TOKEN_TTL_SECS,
                allowed_sources: vec!["127.0.0.0/8".parse()?],
                clock: Arc::new(SystemClock),
            });
            let addr = mock.spawn(config.mock_addr).await?;
            let url = example_server::tls::https_url(addr);
            // The mock's certificate is signed by the local test CA: trust it (and only it).
            config.tls = example_server::tls::client_tls()?;
            println!("mock Transak API on {url} (certificate from a local test CA)");
            url
        }
    };
    let app = transak_partner::app(&config, &transak_url)?;
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    println!(
        "transak-partner on http://{} (origins: {})\n\ntry:\n  curl -i -X POST http://{}/api/widget-url -H 'origin: {}' -H 'content-type: application/json' -d '{{\"cryptoCurrencyCode\":\"ETH\"}}'",
        addr,
        config.allowed_origins.join(", "),
        addr,
        config
            .allowed_origins
            .first()
            .map_or("http://localhost:5173", String::as_str),
    );
    transak_partner::serve(listener, app).await?;
    Ok(())
}
