//! `cargo run -p reqwest-onekey`: creates one cashout at `ONEKEY_API_URL` through reqwest,
//! with `ONEKEY_API_KEY`, `ONEKEY_API_PASSPHRASE` and `ONEKEY_API_SIGNATURE`, and prints the
//! answer; without one of the four it refuses to start and names it.
//!
//! `cargo run -p reqwest-onekey -- --demo` fills the unset ones with the published demo
//! credentials (with a warning) and, without `ONEKEY_API_URL`, starts `onekey-cashout`'s mock
//! OneKey API over HTTPS on `ONEKEY_MOCK_ADDR` (default `127.0.0.1:3003`; a certificate from a
//! test CA made at start, which the client trusts), calls it once and exits.

use std::process::ExitCode;

use reqwest_onekey::{Config, Secrets};
use tollgate::client::TlsConfig;
use tollgate::core::BoxError;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("reqwest-onekey: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let secrets = Secrets::from_args("reqwest-onekey", std::env::args().skip(1))?;
    let env = |name: &str| std::env::var(name).ok();
    let config = Config::from_vars(secrets, env)?;
    let demo = reqwest_onekey::missing_vars(env);
    let what = if config.api_url.is_none() {
        "anyone can sign cashouts with these credentials (and the OneKey API is a mock)"
    } else {
        "anyone can sign cashouts with these credentials"
    };
    if let Some(warning) = secrets.demo_warning("reqwest-onekey", &demo, what, None) {
        eprintln!("{warning}");
    }
    let (base_url, tls) = match &config.api_url {
        Some(url) => (url.clone(), TlsConfig::new()),
        None => {
            let mock = onekey_cashout::mock::MockOneKey::new(config.mock_credentials());
            let url = example_server::tls::https_url(mock.spawn(config.mock_addr).await?);
            println!("mock OneKey API on {url} (certificate from a local test CA)");
            // Trust the local CA (and only it); nothing turns certificate checks off.
            (url, example_server::tls::client_tls()?)
        }
    };
    let client = reqwest_onekey::cashout_client(&config, &base_url, tls)?;
    let response = reqwest_onekey::create_cashout(&client, &base_url, "demo-order-1", 2000).await?;
    println!(
        "signed cashout through reqwest: {} {}",
        response.status(),
        String::from_utf8_lossy(response.body())
    );
    Ok(())
}
