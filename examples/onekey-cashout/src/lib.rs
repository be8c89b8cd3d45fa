//! A cashout created through tollgate's ready OneKey client ([`OneKeyClient`]) over HTTPS,
//! against a mock OneKey API ([`mock::MockOneKey`]) that checks every OneKey rule.
//!
//! OneKey Payments' rules for its API, each applied by the client and checked by the mock:
//! `Payload-Signature` = lowercase hex HMAC-SHA256 of the exact JSON body bytes keyed with the
//! API Signature; `Authorization: Basic` with the API Key and API Passphrase; mandatory
//! `User-Agent` and `Content-Type: application/json`; HTTPS only with certificates verified.
//! The caller writes none of it: [`cashout_client`] builds the client from the credentials,
//! and [`create_cashout`] posts `{"external_id":..,"amount":..}`.
//!
//! `ONEKEY_API_URL`, `ONEKEY_API_KEY`, `ONEKEY_API_PASSPHRASE` and `ONEKEY_API_SIGNATURE` are
//! required ([`REQUIRED_VARS`]): a run without one refuses to start and names it. Only
//! `--demo` ([`Secrets::Demo`]) fills them in with the published demo values, and without
//! `ONEKEY_API_URL` starts the mock over HTTPS with a local test CA that the client trusts
//! ([`example_server::tls`]); certificate checks are never turned off.
//!
//! ```no_run
//! # async fn run() -> Result<(), tollgate::core::BoxError> {
//! let config = onekey_cashout::Config::from_vars(onekey_cashout::Secrets::Demo, |_| None)?;
//! let mock = onekey_cashout::mock::MockOneKey::new(config.mock_credentials());
//! let url = example_server::tls::https_url(mock.spawn("127.0.0.1:0".parse()?).await?);
//! let client = onekey_cashout::cashout_client(&config, &url, example_server::tls::client_tls()?)?;
//! let reply = onekey_cashout::create_cashout(&client, "order-1", 2000).await?;
//! assert_eq!(reply.status(), 200);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod mock;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use serde_json::json;
use tollgate::client::{ProviderClient, TlsConfig};
use tollgate::core::{BoxError, Secret};
use tollgate::onekey::{OneKeyClient, OneKeyCredentials};
use tower::ServiceExt;

pub use example_server::Secrets;

/// The path of OneKey's cashout API.
pub const CASHOUT_PATH: &str = "/api/v3/cashout";

/// The `User-Agent` the example sends.
pub const USER_AGENT: &str = "onekey-cashout-example/0.1";

/// The variables a real run must set, with the values `--demo` gives them when unset (an
/// empty `ONEKEY_API_URL` means "start the mock").
pub const REQUIRED_VARS: [(&str, &str); 4] = [
    ("ONEKEY_API_URL", ""),
    ("ONEKEY_API_KEY", "demo-onekey-api-key"),
    ("ONEKEY_API_PASSPHRASE", "demo-onekey-api-passphrase"),
    ("ONEKEY_API_SIGNATURE", "demo-onekey-api-signature"),
];

/// The [`REQUIRED_VARS`] that `var` finds unset or blank.
pub fn missing_vars(var: impl Fn(&str) -> Option<String>) -> Vec<&'static str> {
    example_server::missing_vars(REQUIRED_VARS.iter().map(|(name, _)| *name), var)
}

/// Settings, from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ONEKEY_API_URL`: OneKey's base URL (`https://api-stg.onekeypayments.com` for STG);
    /// required. `None` (with `--demo` only) means "start the mock and call it".
    pub api_url: Option<String>,
    /// `ONEKEY_MOCK_ADDR`, default `127.0.0.1:3003`.
    pub mock_addr: SocketAddr,
    /// `ONEKEY_API_KEY`.
    pub api_key: Secret,
    /// `ONEKEY_API_PASSPHRASE`.
    pub api_passphrase: Secret,
    /// `ONEKEY_API_SIGNATURE`, the `Payload-Signature` key.
    pub api_signature: Secret,
}

impl Config {
    /// Reads the environment; every [`REQUIRED_VARS`] must be set ([`Secrets::Required`]).
    ///
    /// # Errors
    ///
    /// As [`Config::from_vars`].
    pub fn from_env() -> Result<Self, BoxError> {
        Self::from_vars(Secrets::Required, |name| std::env::var(name).ok())
    }

    /// Reads the settings through `var`. With [`Secrets::Required`], an unset or blank
    /// required variable is an error naming every missing one; with [`Secrets::Demo`] they
    /// take the demo values.
    ///
    /// # Errors
    ///
    /// A missing variable (naming it, never a value), an unparsable `ONEKEY_MOCK_ADDR`.
    pub fn from_vars(
        secrets: Secrets,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BoxError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        secrets.check(&missing_vars(var))?;
        let or = |name: &str| {
            let demo = REQUIRED_VARS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, value)| *value);
            var(name).unwrap_or_else(|| demo.to_owned())
        };
        Ok(Self {
            api_url: var("ONEKEY_API_URL"),
            mock_addr: var("ONEKEY_MOCK_ADDR")
                .unwrap_or_else(|| "127.0.0.1:3003".to_owned())
                .parse()?,
            api_key: Secret::from_string(or("ONEKEY_API_KEY")),
            api_passphrase: Secret::from_string(or("ONEKEY_API_PASSPHRASE")),
            api_signature: Secret::from_string(or("ONEKEY_API_SIGNATURE")),
        })
    }

    /// The credentials, for a mock that accepts exactly these.
    pub fn mock_credentials(&self) -> mock::MockCredentials {
        mock::MockCredentials {
            api_key: self.api_key.clone(),
            api_passphrase: self.api_passphrase.clone(),
            api_signature: self.api_signature.clone(),
        }
    }
}

/// Tollgate's [`OneKeyClient`] for `base_url` with `config`'s credentials, [`USER_AGENT`],
/// trusting `tls` ([`TlsConfig::new`] for OneKey itself; the local CA for the mock).
///
/// # Errors
///
/// A base URL that is not `https://host[:port]`, a blank credential, an API Key with `:`, a
/// TLS setting that cannot work.
pub fn cashout_client(
    config: &Config,
    base_url: &str,
    tls: TlsConfig,
) -> Result<ProviderClient, BoxError> {
    let credentials = OneKeyCredentials::new(
        config.api_key.clone(),
        config.api_passphrase.clone(),
        config.api_signature.clone(),
    );
    Ok(OneKeyClient::builder(base_url, credentials)
        .user_agent(USER_AGENT)
        .configure(|client| client.tls(tls))
        .build()?)
}

/// The cashout body: `{"external_id":..,"amount":..}` (amount in minor units).
pub fn cashout_body(external_id: &str, amount: u64) -> Bytes {
    Bytes::from(json!({ "external_id": external_id, "amount": amount }).to_string())
}

/// Creates a cashout through `client` and reads the whole answer.
///
/// # Errors
///
/// The client's [`CallError`](tollgate::client::CallError), or a body that cannot be read.
pub async fn create_cashout(
    client: &ProviderClient,
    external_id: &str,
    amount: u64,
) -> Result<Response<Bytes>, BoxError> {
    // No header to set: the client adds Content-Type, User-Agent, Authorization and
    // Payload-Signature (over these exact bytes).
    let request = Request::post(CASHOUT_PATH).body(Full::new(cashout_body(external_id, amount)))?;
    let response = client.clone().oneshot(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, body))
}
