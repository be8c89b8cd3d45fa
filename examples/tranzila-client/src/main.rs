//! `cargo run -p tranzila-client`: makes one signed call to `TRANZILA_API_URL` with
//! `TRANZILA_APP_KEY` and `TRANZILA_SECRET` and prints the answer; without one of the three it
//! refuses to start and names it.
//!
//! `cargo run -p tranzila-client -- --demo` fills the unset ones with the published demo
//! credentials (with a warning) and, without `TRANZILA_API_URL`, starts the mock Tranzila
//! endpoint over HTTPS (a certificate from a test CA made at start, which the client trusts;
//! `curl --cacert` it), calls it, and keeps it running for `curl`.
use std::process::ExitCode;
use std::sync::Arc;

use example_server::Secrets;
use tollgate::client::TlsConfig;
use tollgate::core::{BoxError, SystemClock};

/// The variables a real run must set; `--demo` lets the library default them (the mock and
/// its demo credentials).
const REQUIRED_VARS: [&str; 3] = ["TRANZILA_API_URL", "TRANZILA_APP_KEY", "TRANZILA_SECRET"];

/// The configuration from the environment. Without `--demo`, every [`REQUIRED_VARS`] must be
/// set; with it, the library's loopback defaults (the mock and its demo credentials) fill in,
/// with a warning.
fn config(
    secrets: Secrets,
    var: impl Fn(&str) -> Option<String>,
) -> Result<tranzila_client::Config, BoxError> {
    let missing = example_server::missing_vars(REQUIRED_VARS, var);
    secrets.check(&missing)?;
    if let Some(warning) = secrets.demo_warning(
        "tranzila-client",
        &missing,
        "anyone can sign calls with these credentials",
        None,
    ) {
        eprintln!("{warning}");
    }
    tranzila_client::Config::from_env()
}

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

async fn run() -> Result<(), BoxError> {
    let secrets = Secrets::from_args("tranzila-client", std::env::args().skip(1))?;
    let config = config(secrets, |name| std::env::var(name).ok())?;
    let (base_url, tls, serving) = match &config.api_url {
        Some(url) => (url.clone(), TlsConfig::new(), false),
        None => {
            let mock = tranzila_client::mock::MockTranzila::new(
                config.credentials.clone(),
                Arc::new(SystemClock),
            );
            let addr = mock.spawn(config.mock_addr).await?;
            let url = example_server::tls::https_url(addr);
            println!("mock Tranzila endpoint on {url} (certificate from a local test CA)");
            // Trust the local CA (and only it); nothing turns certificate checks off.
            (url, example_server::tls::client_tls()?, true)
        }
    };
    // HTTPS only; the token goes to this base URL's scheme, host and port only.
    let client = tranzila_client::signing_client(config.credentials, &base_url, tls)?;
    let response = tranzila_client::create_transaction(&client).await?;
    println!(
        "signed call: {} {}",
        response.status(),
        String::from_utf8_lossy(response.body())
    );
    if serving {
        let ca = std::env::temp_dir().join(format!("tranzila-mock-ca-{}.pem", std::process::id()));
        std::fs::write(&ca, &example_server::tls::local_pki().ca_pem)?;
        println!(
            "\nan unsigned call is refused:\n  curl -i --cacert {} -X POST {base_url}{}\n\nCtrl-C to stop.",
            ca.display(),
            tranzila_client::CREATE_TRANSACTION_PATH
        );
        std::future::pending::<()>().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn only_the_demo_flag_selects_the_demo_credentials() {
        let from = |list| Secrets::from_args("tranzila-client", args(list));
        assert_eq!(from(&[]).unwrap(), Secrets::Required);
        assert_eq!(from(&["--demo"]).unwrap(), Secrets::Demo);
        assert!(from(&["--dmeo"]).is_err());
    }

    #[test]
    fn refuses_without_credentials_naming_them() {
        let blank_secret = |name: &str| (name == "TRANZILA_SECRET").then(|| " ".to_owned());
        let err = config(Secrets::Required, blank_secret)
            .unwrap_err()
            .to_string();
        for var in ["TRANZILA_API_URL", "TRANZILA_APP_KEY", "TRANZILA_SECRET"] {
            assert!(err.contains(var), "{var} not named: {err}");
        }
        assert!(err.contains("--demo"), "{err}");
    }
}
