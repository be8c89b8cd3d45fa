//! `cargo run -p tranzila-client`: starts the mock Tranzila endpoint (unless
//! `TRANZILA_API_URL` is set), makes one signed call, prints the answer, and keeps the mock
//! running for `curl`.
use std::process::ExitCode;
use std::sync::Arc;

use tollgate::core::SystemClock;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tranzila-client: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), tollgate::core::BoxError> {
    let config = tranzila_client::Config::from_env()?;
    let clock = Arc::new(SystemClock);
    let (base_url, serving) = match &config.api_url {
        Some(url) => (url.clone(), false),
        None => {
            let mock =
                tranzila_client::mock::MockTranzila::new(config.credentials.clone(), clock.clone());
            let addr = mock.spawn(config.mock_addr).await?;
            println!("mock Tranzila endpoint on http://{addr}");
            (format!("http://{addr}"), true)
        }
    };
    // The token goes to this base URL's scheme, host and port only.
    let upstream = tranzila_client::upstream_of(&base_url)?;
    let client = tranzila_client::signing_client(config.credentials, clock, upstream)?;
    let response = tranzila_client::create_transaction(&client, &base_url).await?;
    println!(
        "signed call: {} {}",
        response.status(),
        String::from_utf8_lossy(response.body())
    );
    if serving {
        println!(
            "\nan unsigned call is refused:\n  curl -i -X POST {base_url}{}\n\nCtrl-C to stop.",
            tranzila_client::CREATE_TRANSACTION_PATH
        );
        std::future::pending::<()>().await;
    }
    Ok(())
}
