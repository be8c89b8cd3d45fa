//! `cargo run -p onekey-cashout`: creates one cashout at `ONEKEY_API_URL` with
//! `ONEKEY_API_KEY`, `ONEKEY_API_PASSPHRASE` and `ONEKEY_API_SIGNATURE` and prints the answer;
//! without one of the four it refuses to start and names it.
//!
//! `cargo run -p onekey-cashout -- --demo` fills the unset ones with the published demo
//! credentials (with a warning) and, without `ONEKEY_API_URL`, starts the mock OneKey API over
//! HTTPS on `ONEKEY_MOCK_ADDR` (default `127.0.0.1:3003`; a certificate from a test CA made at
//! start, which the client trusts), calls it, and keeps it running for `curl`.
use std::process::ExitCode;

use onekey_cashout::Secrets;
use tollgate::client::TlsConfig;
use tollgate::core::BoxError;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("onekey-cashout: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let secrets = Secrets::from_args("onekey-cashout", std::env::args().skip(1))?;
    let env = |name: &str| std::env::var(name).ok();
    let config = onekey_cashout::Config::from_vars(secrets, env)?;
    let demo = onekey_cashout::missing_vars(env);
    let what = if config.api_url.is_none() {
        "anyone can sign cashouts with these credentials (and the OneKey API is a mock)"
    } else {
        "anyone can sign cashouts with these credentials"
    };
    if let Some(warning) = secrets.demo_warning("onekey-cashout", &demo, what, None) {
        eprintln!("{warning}");
    }
    let (base_url, tls, serving) = match &config.api_url {
        Some(url) => (url.clone(), TlsConfig::new(), false),
        None => {
            let mock = onekey_cashout::mock::MockOneKey::new(config.mock_credentials());
            let url = example_server::tls::https_url(mock.spawn(config.mock_addr).await?);
            println!("mock OneKey API on {url} (certificate from a local test CA)");
            // Trust the local CA (and only it); nothing turns certificate checks off.
            (url, example_server::tls::client_tls()?, true)
        }
    };
    let client = onekey_cashout::cashout_client(&config, &base_url, tls)?;
    let response = onekey_cashout::create_cashout(&client, "demo-order-1", 2000).await?;
    println!(
        "signed cashout: {} {}",
        response.status(),
        String::from_utf8_lossy(response.body())
    );
    if serving {
        let ca = std::env::temp_dir().join(format!("onekey-mock-ca-{}.pem", std::process::id()));
        std::fs::write(&ca, &example_server::tls::local_pki().ca_pem)?;
        println!(
            "\nwithout Basic auth and a Payload-Signature, a cashout is refused:\n  curl -i --cacert {} -X POST {base_url}{} -H 'content-type: application/json' -H 'user-agent: curl' -d '{{\"external_id\":\"x\",\"amount\":1}}'\n\nCtrl-C to stop.",
            ca.display(),
            onekey_cashout::CASHOUT_PATH
        );
        std::future::pending::<()>().await;
    }
    Ok(())
}
