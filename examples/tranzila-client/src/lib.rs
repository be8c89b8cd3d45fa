//! A client calling a Tranzila-style API through tollgate's ready [`TranzilaClient`], and a
//! mock Tranzila endpoint, served over HTTPS, that verifies every call with
//! `TranzilaVerifyLayer` and the in-memory nonce store.
//!
//! Tranzila authenticates each call with an app key, the request time, an 80-hex nonce and
//! `hex(HMAC-SHA256(message = app key, key = secret + time + nonce))`. The secret stays on the
//! server; the client adds the four headers to every attempt with a fresh nonce (a retry is
//! signed anew), and the verifier refuses a wrong token, a stale time and a nonce it has seen.
//! The token is a bearer credential, so the client is pinned to its base URL (the mock here,
//! `https://api.tranzila.com` in production): a request to any other scheme, host or port
//! fails before a token is made or a connection opened. The client speaks HTTPS only and
//! verifies certificates; the mock's comes from a local test CA that the client trusts
//! ([`example_server::tls::client_tls`]), never from a skipped check.
//!
//! ```no_run
//! # async fn run() -> Result<(), tollgate::core::BoxError> {
//! use std::sync::Arc;
//! use tollgate::core::{Secret, SystemClock};
//! use tollgate::tranzila::TranzilaCredentials;
//!
//! let credentials = TranzilaCredentials::new("demo-app-key", Secret::from_string("demo-secret"))?;
//! let mock = tranzila_client::mock::MockTranzila::new(credentials.clone(), Arc::new(SystemClock));
//! let addr = mock.spawn("127.0.0.1:0".parse()?).await?;
//! let base_url = example_server::tls::https_url(addr);
//! let tls = example_server::tls::client_tls()?;
//! let client = tranzila_client::signing_client(credentials, &base_url, tls)?;
//! let reply = tranzila_client::create_transaction(&client).await?;
//! assert_eq!(reply.status(), 200);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod mock;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use tollgate::client::{ClientBuilder, ProviderClient, TlsConfig};
use tollgate::core::{BoxError, Secret, SecretError, SharedClock, Upstream};
use tollgate::tranzila::{TranzilaClient, TranzilaCredentials};
use tower::ServiceExt;

/// The path of the mock's (and Tranzila's) credit card transaction API.
pub const CREATE_TRANSACTION_PATH: &str = "/v1/transaction/credit_card/create";

/// Settings, from the environment with loopback defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TRANZILA_API_URL`: the API base URL (https only); unset means "start the mock and
    /// call it".
    pub api_url: Option<String>,
    /// `TRANZILA_MOCK_ADDR`: where the mock listens, default `127.0.0.1:8090`.
    pub mock_addr: SocketAddr,
    /// `TRANZILA_APP_KEY` and `TRANZILA_SECRET`, default `demo-app-key` / `demo-secret` when
    /// calling the mock. The secret is read with [`Secret::from_env`]: set but empty or only
    /// whitespace (`TRANZILA_SECRET=`) is an error naming the variable, never an empty HMAC
    /// key; with `TRANZILA_API_URL` set it must be set too.
    pub credentials: TranzilaCredentials,
}

/// The variable holding the Tranzila secret.
pub const SECRET_VAR: &str = "TRANZILA_SECRET";

/// The secret the mock accepts when `TRANZILA_SECRET` is unset and no API URL is given.
const DEMO_SECRET: &str = "demo-secret";

impl Config {
    /// Reads the environment.
    ///
    /// # Errors
    ///
    /// `TRANZILA_SECRET` set but empty or only whitespace, or unset while `TRANZILA_API_URL`
    /// names a real API (the error names the variable, never a value); an unparsable
    /// `TRANZILA_MOCK_ADDR`.
    pub fn from_env() -> Result<Self, BoxError> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let api_url = std::env::var("TRANZILA_API_URL").ok();
        let secret = secret_or_demo(Secret::from_env(SECRET_VAR), api_url.is_some())?;
        Ok(Self {
            mock_addr: var("TRANZILA_MOCK_ADDR", "127.0.0.1:8090").parse()?,
            credentials: TranzilaCredentials::new(var("TRANZILA_APP_KEY", "demo-app-key"), secret)?,
            api_url,
        })
    }
}

/// What [`Config::from_env`] makes of [`Secret::from_env`]`("TRANZILA_SECRET")`: the secret
/// when it is set; the demo secret when it is unset and the call goes to the local mock;
/// otherwise the error, which names the variable (set but blank, unset for a real API, not
/// Unicode).
fn secret_or_demo(
    read: Result<Secret, SecretError>,
    real_api: bool,
) -> Result<Secret, SecretError> {
    match read {
        Err(SecretError::Missing { .. }) if !real_api => Ok(Secret::from_string(DEMO_SECRET)),
        other => other,
    }
}

/// The signed client: tollgate's [`TranzilaClient`] (HTTPS only, timeouts, retries that sign
/// each attempt anew, an audit event per attempt).
pub type SigningClient = ProviderClient;

/// The body [`create_transaction`] sends.
pub const TRANSACTION_BODY: &[u8] =
    br#"{"terminal_name":"demo","txn_type":"debit","sum":10.5,"currency_code":"ILS"}"#;

/// Tollgate's [`TranzilaClient`] for `base_url` with `credentials`, trusting `tls`
/// ([`TlsConfig::new`] for the real Tranzila; the local CA for the mock).
///
/// # Errors
///
/// A base URL that is not `https://host[:port][/path]`, a TLS setting that cannot work.
pub fn signing_client(
    credentials: TranzilaCredentials,
    base_url: &str,
    tls: TlsConfig,
) -> Result<SigningClient, BoxError> {
    signing_client_with(credentials, base_url, |client| client.tls(tls))
}

/// As [`signing_client`], with the call stack changed by `configure` (TLS roots, timeouts,
/// retry policy, limits).
///
/// # Errors
///
/// As [`signing_client`].
pub fn signing_client_with(
    credentials: TranzilaCredentials,
    base_url: &str,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Result<SigningClient, BoxError> {
    Ok(TranzilaClient::builder(credentials)
        .base_url(base_url)
        .configure(configure)
        .build()?)
}

/// [`signing_client`] with the request time read from `clock`: for the walkthrough, whose
/// stale-clock scenario signs 301 seconds in the past.
///
/// # Errors
///
/// As [`signing_client`].
pub fn signing_client_with_clock(
    credentials: TranzilaCredentials,
    clock: SharedClock,
    base_url: &str,
    tls: TlsConfig,
) -> Result<SigningClient, BoxError> {
    Ok(TranzilaClient::builder(credentials)
        .base_url(base_url)
        .clock(clock)
        .configure(|client| client.tls(tls))
        .build()?)
}

/// The upstream (scheme, host and port) of an API base URL such as `https://api.tranzila.com`
/// or `https://127.0.0.1:8090/prefix`: the one place the signed client may send its token.
/// A base URL with user info is refused (and the error does not repeat it).
pub fn upstream_of(base_url: &str) -> Result<Upstream, BoxError> {
    let uri: http::Uri = base_url.parse()?;
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => Ok(Upstream::parse(&format!("{scheme}://{authority}"))?),
        _ => Err("the API base URL needs a scheme and a host".into()),
    }
}

/// The request [`create_transaction`] sends: `POST /v1/transaction/credit_card/create`
/// (relative: the client joins it to its base URL) with [`TRANSACTION_BODY`].
pub fn transaction_request() -> Result<Request<Full<Bytes>>, http::Error> {
    Request::post(CREATE_TRANSACTION_PATH)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(TRANSACTION_BODY)))
}

/// Calls `POST <base>/v1/transaction/credit_card/create` with a small JSON body through
/// `client` and reads the whole response.
pub async fn create_transaction(client: &SigningClient) -> Result<Response<Bytes>, BoxError> {
    send(client, transaction_request()?).await
}

/// Sends `request` through `client` and reads the whole response.
pub async fn send(
    client: &SigningClient,
    request: Request<Full<Bytes>>,
) -> Result<Response<Bytes>, BoxError> {
    let response = client.clone().oneshot(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    /// `TRANZILA_SECRET=` (or only whitespace) never becomes an empty key: the env helper
    /// refuses it naming the variable, and the demo default does not replace it.
    #[test]
    fn a_blank_secret_variable_is_an_error_naming_it() {
        let blank = || {
            Err(SecretError::Empty {
                variable: SECRET_VAR.to_owned(),
            })
        };
        for real_api in [false, true] {
            let err = secret_or_demo(blank(), real_api).unwrap_err();
            assert_eq!(
                err.to_string(),
                "environment variable `TRANZILA_SECRET` is set but empty or only whitespace"
            );
        }
        // The helper itself reads the real environment; a variable no one sets is missing.
        assert!(matches!(
            Secret::from_env("TRANZILA_CLIENT_TEST_SURELY_UNSET_7c2e"),
            Err(SecretError::Missing { .. })
        ));
    }

    #[test]
    fn unset_means_the_demo_secret_for_the_mock_only() {
        let missing = || {
            Err(SecretError::Missing {
                variable: SECRET_VAR.to_owned(),
            })
        };
        let demo = secret_or_demo(missing(), false).unwrap();
        assert_eq!(demo.expose_secret(), DEMO_SECRET.as_bytes());
        let err = secret_or_demo(missing(), true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable `TRANZILA_SECRET` is not set"
        );
        let set = secret_or_demo(Ok(Secret::from_string("real")), true).unwrap();
        assert_eq!(set.expose_secret(), b"real");
    }
}
