//! The OneKey cashout of `onekey-cashout`, through reqwest: tollgate's ready OneKey client
//! built as a `reqwest_middleware::ClientWithMiddleware`
//! ([`OneKeyClientBuilder::build_reqwest`](tollgate::onekey::OneKeyClientBuilder::build_reqwest)),
//! against the same mock OneKey API, which checks every OneKey rule.
//!
//! The same builder, the same layers and the same settings as the hyper client: `Payload-Signature`
//! over the exact JSON bytes sent, `Authorization: Basic`, `User-Agent`, `Content-Type:
//! application/json`, HTTPS only with certificates verified, no redirects followed, retries
//! signed anew, the deadline, the audit event per attempt. The caller writes none of it:
//! [`cashout_client`] builds the client from [`Config`]'s credentials and [`create_cashout`]
//! posts `{"external_id":..,"amount":..}`.
//!
//! The configuration is `onekey-cashout`'s ([`Config`], the same variables, `--demo` the same
//! way).
//!
//! ```no_run
//! # async fn run() -> Result<(), tollgate::core::BoxError> {
//! use reqwest_onekey::{Config, Secrets};
//! let config = Config::from_vars(Secrets::Demo, |_| None)?;
//! let mock = onekey_cashout::mock::MockOneKey::new(config.mock_credentials());
//! let url = example_server::tls::https_url(mock.spawn("127.0.0.1:0".parse()?).await?);
//! let client = reqwest_onekey::cashout_client(&config, &url, example_server::tls::client_tls()?)?;
//! let reply = reqwest_onekey::create_cashout(&client, &url, "order-1", 2000).await?;
//! assert_eq!(reply.status(), 200);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use bytes::Bytes;
use http::Response;
use tollgate::client::TlsConfig;
use tollgate::core::BoxError;
use tollgate::onekey::{OneKeyClient, OneKeyCredentials};
use tollgate::reqwest::reqwest_middleware::ClientWithMiddleware;

pub use onekey_cashout::{CASHOUT_PATH, Config, REQUIRED_VARS, Secrets, missing_vars};

/// The `User-Agent` the example sends.
pub const USER_AGENT: &str = "reqwest-onekey-example/0.1";

/// Tollgate's OneKey client for `base_url` with `config`'s credentials, [`USER_AGENT`],
/// trusting `tls`, as a reqwest client.
///
/// # Errors
///
/// A base URL that is not `https://host[:port]`, a blank credential, an API Key with `:`, a
/// TLS setting that cannot work (`tollgate::ProviderConfigError`).
pub fn cashout_client(
    config: &Config,
    base_url: &str,
    tls: TlsConfig,
) -> Result<ClientWithMiddleware, BoxError> {
    let credentials = OneKeyCredentials::new(
        config.api_key.clone(),
        config.api_passphrase.clone(),
        config.api_signature.clone(),
    );
    Ok(OneKeyClient::builder(base_url, credentials)
        .user_agent(USER_AGENT)
        .configure(|client| client.tls(tls))
        .build_reqwest()?)
}

/// Creates a cashout at `base_url` through `client` and reads the whole answer. reqwest has
/// no relative URLs: the request goes to `base_url` + [`CASHOUT_PATH`] (the client refuses
/// any other host).
///
/// # Errors
///
/// The client's error (`tollgate::reqwest::find_error` finds a typed refusal in it), or a
/// body that cannot be read.
pub async fn create_cashout(
    client: &ClientWithMiddleware,
    base_url: &str,
    external_id: &str,
    amount: u64,
) -> Result<Response<Bytes>, BoxError> {
    // No header to set: the client adds Content-Type, User-Agent, Authorization and
    // Payload-Signature (over these exact bytes).
    let response = client
        .post(format!("{}{CASHOUT_PATH}", base_url.trim_end_matches('/')))
        .body(onekey_cashout::cashout_body(external_id, amount))
        .send()
        .await?;
    let mut reply = Response::builder().status(response.status());
    if let Some(headers) = reply.headers_mut() {
        *headers = response.headers().clone();
    }
    let body = response.bytes().await?;
    Ok(reply.body(body)?)
}
