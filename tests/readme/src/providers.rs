use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tollgate::core::{BoxError, KeyRing, Secret};
use tollgate::headers::TokenProvider;
use tollgate::{hmac::HmacClient, onekey, transak, tranzila};
use tower::ServiceExt;

/// Builds the four ready clients from the environment and calls Tranzila once.
pub async fn call_providers(access_token: impl TokenProvider) -> Result<(), BoxError> {
    // OneKey: Payload-Signature over the exact JSON bytes, Basic auth with the API Key and
    // Passphrase, User-Agent, Content-Type: application/json. No x-user-ip (OneKey
    // allowlists your server's IP).
    let credentials = onekey::OneKeyCredentials::new(
        Secret::from_env("ONEKEY_API_KEY")?,
        Secret::from_env("ONEKEY_API_PASSPHRASE")?,
        Secret::from_env("ONEKEY_API_SIGNATURE")?,
    );
    let onekey = onekey::OneKeyClient::builder(onekey::STAGING, credentials)
        .user_agent("acme-cashouts/1.4")
        .build()?;

    // Tranzila: the four headers, a new nonce and time on every attempt, to
    // https://api.tranzila.com only.
    let credentials = tranzila::TranzilaCredentials::new(
        std::env::var("TRANZILA_APP_KEY")?,
        Secret::from_env("TRANZILA_SECRET")?,
    )?;
    let tranzila = tranzila::TranzilaClient::builder(credentials).build()?;

    // Transak: x-api-key, an access-token kept fresh by your TokenProvider, and x-user-ip
    // from the inbound request's ClientIp.
    let api_key = Secret::from_env("TRANSAK_API_KEY")?;
    let transak =
        transak::TransakClient::builder(transak::PRODUCTION, api_key, access_token).build()?;

    // Any API signed with HMAC over Method + Path + Body + Timestamp (±5 min). Every client
    // takes the same call-stack settings through `configure`.
    let ring = KeyRing::single(Secret::from_env("PAYMENTS_SIGNING_KEY")?);
    let payments = HmacClient::builder("payments", "https://api.payments.example", ring)
        .configure(|client| {
            client
                .attempt_timeout(Duration::from_secs(5))
                .rate_limit(20, Duration::from_secs(1))
                .concurrency_limit(8)
        })
        .build()?;

    let body = Full::new(Bytes::from_static(br#"{"amount":100}"#));
    let response = tranzila
        .oneshot(Request::post("/v1/transactions").body(body)?)
        .await?;
    println!("Tranzila answered {}", response.status());
    drop((onekey, transak, payments));
    Ok(())
}
