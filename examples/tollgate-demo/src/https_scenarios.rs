//! Calling the providers: HTTPS only, certificates verified, retries signed anew, timeouts as
//! typed errors, OneKey's rules, and Transak's refreshed access token.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use tollgate::client::{CallError, ClientBuilder, ProviderClient, RetryPolicy};
use tollgate::client_ip::{ClientIp, IpOrigin};
use tollgate::core::{BoxError, Secret};
use tollgate::signature::BodyHmac;
use tower::{ServiceBuilder, ServiceExt};
use transak_partner::mock::ACCESS_TOKEN_TTL_SECS;

use crate::net;
use crate::runner::Scenario;
use crate::scenarios::{ClockRestore, describe_response, partner_request, session_request_with};
use crate::world::{
    Demo, FRONTEND_ORIGIN, IDEMPOTENCY_KEY, ONEKEY_API_KEY, ONEKEY_API_PASSPHRASE,
    ONEKEY_API_SIGNATURE, TRANSAK_API_KEY,
};

/// The scenarios of this module, in the order they are played.
pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "plain http to a provider refused",
            request: "TransakClient call to http://127.0.0.1:<port> (a listener counting connections)",
            expected: "NotHttps, 0 connections accepted",
            run: |demo| Box::pin(plain_http_refused(demo)),
        },
        Scenario {
            name: "bad certificate refused",
            request: "client trusting the local CA → mocks serving an expired leaf, a leaf for other.example",
            expected: "Certificate, Certificate, 0 requests received",
            run: |_| Box::pin(bad_certificates_refused()),
        },
        Scenario {
            name: "retry re-signed and accepted",
            request: "TranzilaClient POST with idempotency-key; mock (verify + replay) answers 503 once, then 200; attempt 1 resent",
            expected: "200 on attempt 2, 2 different nonces, resend of attempt 1: 401 replayed",
            run: |demo| Box::pin(retry_re_signed(demo)),
        },
        Scenario {
            name: "timeout answered as a typed error",
            request: "GET to a mock that never answers, attempt timeout 100 ms, no retry",
            expected: "AttemptTimeout after 100ms, within 1 s",
            run: |_| Box::pin(timeout_is_typed()),
        },
        Scenario {
            name: "OneKey cashout accepted",
            request: "POST /api/v3/cashout via OneKeyClient (Basic auth, User-Agent, JSON, Payload-Signature)",
            expected: "200 PENDING, 1 cashout created",
            run: |demo| Box::pin(onekey_accepted(demo)),
        },
        Scenario {
            name: "OneKey cashout through reqwest",
            request: "POST /api/v3/cashout via OneKeyClient::builder(..).build_reqwest() (reqwest-middleware, same layers and settings)",
            expected: "200 PENDING, 1 cashout created",
            run: |demo| Box::pin(onekey_through_reqwest(demo)),
        },
        Scenario {
            name: "OneKey cashout refused",
            request: "wrong API Passphrase; then the right Payload-Signature over a body whose amount changed",
            expected: "401 basic_auth_invalid, 401 signature_invalid, no cashout created",
            run: |demo| Box::pin(onekey_refused(demo)),
        },
        Scenario {
            name: "Transak access token cached",
            request: "two partner calls in a row (TransakClient, token from the refresh-token API)",
            expected: "200, 200, no new access token",
            run: |demo| Box::pin(access_token_cached(demo)),
        },
        Scenario {
            name: "Transak access token expires",
            request: "the partner's cached access token sent 7 days later, straight to the mock",
            expected: "401 1002",
            run: |demo| Box::pin(access_token_expires(demo)),
        },
    ]
}

/// A bare provider client over the HTTPS-only transport, trusting the local CA only.
fn bare_client(
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Result<ProviderClient, BoxError> {
    let tls = example_server::tls::client_tls()?;
    Ok(configure(ClientBuilder::new("demo-provider").tls(tls)).build(ServiceBuilder::new())?)
}

fn empty_get(url: &str) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(Bytes::new()));
    *request.uri_mut() = url.parse().unwrap_or_default();
    request
}

/// The variant name of a call error (`Certificate`, `NotHttps`, ...), or the status.
fn kind<B>(result: &Result<Response<B>, CallError>) -> String {
    match result {
        Ok(response) => response.status().as_u16().to_string(),
        Err(CallError::NotHttps { .. }) => "NotHttps".to_owned(),
        Err(CallError::Certificate { .. }) => "Certificate".to_owned(),
        Err(CallError::AttemptTimeout { after }) => format!("AttemptTimeout after {after:?}"),
        Err(CallError::DeadlineExceeded { after }) => format!("DeadlineExceeded after {after:?}"),
        Err(err) => format!("error {}: {err}", err.kind()),
    }
}

async fn plain_http_refused(demo: &Demo) -> String {
    let Ok(listener) = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await else {
        return "cannot bind".to_owned();
    };
    let Ok(addr) = listener.local_addr() else {
        return "no address".to_owned();
    };
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let mut request = empty_get(&format!("http://{addr}/api/v2/auth/session"));
    *request.method_mut() = Method::POST;
    request.extensions_mut().insert(ClientIp::new(
        IpAddr::from([198, 51, 100, 7]),
        IpOrigin::Peer,
    ));
    let result = demo.partner_client.clone().oneshot(request).await;
    let outcome = format!(
        "{}, {} connections accepted",
        kind(&result),
        accepted.load(Ordering::SeqCst)
    );
    task.abort();
    outcome
}

async fn bad_certificates_refused() -> String {
    use example_server::tls::{HttpsServer, handler, local_pki};
    let answer =
        || handler(|_| async { Response::new(Bytes::from_static(b"should never be read")) });
    let expired = HttpsServer::start(&local_pki().expired, answer()).await;
    let other_name = HttpsServer::start(&local_pki().other_name, answer()).await;
    let client = match bare_client(|c| c.retry(RetryPolicy::none())) {
        Ok(client) => client,
        Err(err) => return format!("error: {err}"),
    };
    let mut outcomes = Vec::new();
    for server in [&expired, &other_name] {
        let url = format!("https://127.0.0.1:{}/v1/ping", server.addr().port());
        outcomes.push(kind(&client.clone().oneshot(empty_get(&url)).await));
    }
    let received = expired.requests() + other_name.requests();
    format!("{}, {received} requests received", outcomes.join(", "))
}

async fn retry_re_signed(demo: &Demo) -> String {
    let before = demo.tranzila_flaky.verified().len();
    let Ok(mut request) = tranzila_client::transaction_request() else {
        return "cannot build the request".to_owned();
    };
    request.headers_mut().insert(
        IDEMPOTENCY_KEY,
        http::HeaderValue::from_static("demo-retry-1"),
    );
    let status = match tranzila_client::send(&demo.tranzila_retrying, request).await {
        Ok(response) => response.status().as_u16().to_string(),
        Err(err) => return format!("error: {err}"),
    };
    let verified = demo.tranzila_flaky.verified();
    let attempts = &verified[before.min(verified.len())..];
    let nonces: HashSet<_> = attempts
        .iter()
        .filter_map(|(headers, _)| headers.get(tollgate::tranzila::NONCE))
        .collect();
    let Some((first_headers, first_body)) = attempts.first() else {
        return format!("{status}, the mock verified no attempt");
    };
    // Attempt 1 again, byte for byte: its four headers and its body.
    let mut resend = Request::new(Full::new(first_body.clone()));
    *resend.method_mut() = Method::POST;
    *resend.uri_mut() = format!(
        "{}{}",
        demo.tranzila_flaky_url,
        tranzila_client::CREATE_TRANSACTION_PATH
    )
    .parse()
    .unwrap_or_default();
    for name in [
        http::header::CONTENT_TYPE,
        tollgate::tranzila::APP_KEY,
        tollgate::tranzila::REQUEST_TIME,
        tollgate::tranzila::NONCE,
        tollgate::tranzila::ACCESS_TOKEN,
    ] {
        if let Some(value) = first_headers.get(&name) {
            resend.headers_mut().insert(name, value.clone());
        }
    }
    let replayed = net::describe(net::send(resend).await);
    let nonces = if nonces.len() == attempts.len() {
        format!("{} different nonces", nonces.len())
    } else {
        format!("{} nonces for {} attempts", nonces.len(), attempts.len())
    };
    format!(
        "{status} on attempt {}, {nonces}, resend of attempt 1: {replayed}",
        attempts.len()
    )
}

async fn timeout_is_typed() -> String {
    use example_server::tls::{HttpsServer, handler, local_pki};
    let silent = HttpsServer::start(
        &local_pki().good,
        handler(|_| std::future::pending::<Response<Bytes>>()),
    )
    .await;
    let client = match bare_client(|c| {
        c.attempt_timeout(Duration::from_millis(100))
            .deadline(Duration::from_secs(5))
            .retry(RetryPolicy::none())
    }) {
        Ok(client) => client,
        Err(err) => return format!("error: {err}"),
    };
    let url = format!("https://127.0.0.1:{}/v1/slow", silent.addr().port());
    let started = Instant::now();
    let result = client.oneshot(empty_get(&url)).await;
    let elapsed = started.elapsed();
    let within = if elapsed < Duration::from_secs(1) {
        "within 1 s".to_owned()
    } else {
        format!("after {elapsed:?}")
    };
    format!("{}, {within}", kind(&result))
}

async fn onekey_accepted(demo: &Demo) -> String {
    let before = demo.onekey.accepted();
    match onekey_cashout::create_cashout(&demo.onekey_client, "demo-order-1", 2000).await {
        Ok(response) if response.status().is_success() => {
            let json: serde_json::Value =
                serde_json::from_slice(response.body()).unwrap_or_default();
            format!(
                "{} {}, {} cashout created",
                response.status().as_u16(),
                json["status"].as_str().unwrap_or("?"),
                demo.onekey.accepted() - before
            )
        }
        other => describe_response(other),
    }
}

/// The same cashout as "OneKey cashout accepted", through reqwest (`reqwest-onekey`).
async fn onekey_through_reqwest(demo: &Demo) -> String {
    let before = demo.onekey.accepted();
    let config =
        reqwest_onekey::Config::from_vars(reqwest_onekey::Secrets::Required, |name| match name {
            "ONEKEY_API_URL" => Some(demo.onekey_url.clone()),
            "ONEKEY_API_KEY" => Some(ONEKEY_API_KEY.to_owned()),
            "ONEKEY_API_PASSPHRASE" => Some(ONEKEY_API_PASSPHRASE.to_owned()),
            "ONEKEY_API_SIGNATURE" => Some(ONEKEY_API_SIGNATURE.to_owned()),
            _ => None,
        });
    let client = config.and_then(|config| {
        let tls = example_server::tls::client_tls()?;
        reqwest_onekey::cashout_client(&config, &demo.onekey_url, tls)
    });
    let client = match client {
        Ok(client) => client,
        Err(err) => return format!("error: {err}"),
    };
    match reqwest_onekey::create_cashout(&client, &demo.onekey_url, "demo-order-reqwest", 2000)
        .await
    {
        Ok(response) if response.status().is_success() => {
            let json: serde_json::Value =
                serde_json::from_slice(response.body()).unwrap_or_default();
            format!(
                "{} {}, {} cashout created",
                response.status().as_u16(),
                json["status"].as_str().unwrap_or("?"),
                demo.onekey.accepted() - before
            )
        }
        other => describe_response(other),
    }
}

async fn onekey_refused(demo: &Demo) -> String {
    let before = demo.onekey.accepted();
    let wrong_passphrase = describe_response(
        onekey_cashout::create_cashout(&demo.onekey_wrong_passphrase, "demo-order-2", 2000).await,
    );
    // Every header right, the signature over the original body, the amount changed.
    let signed = onekey_cashout::cashout_body("demo-order-3", 2000);
    let signature = BodyHmac::onekey().compute(&Secret::from_string(ONEKEY_API_SIGNATURE), &signed);
    let tampered = onekey_cashout::cashout_body("demo-order-3", 9000);
    let authorization = onekey_cashout::mock::basic_authorization(
        &Secret::from_string(ONEKEY_API_KEY),
        &Secret::from_string(ONEKEY_API_PASSPHRASE),
    );
    let request = Request::post(format!(
        "{}{}",
        demo.onekey_url,
        onekey_cashout::CASHOUT_PATH
    ))
    .header("content-type", "application/json")
    .header("user-agent", "tollgate-demo")
    .header(
        "authorization",
        String::from_utf8_lossy(authorization.expose_secret()).as_ref(),
    )
    .header("payload-signature", signature)
    .body(Full::new(tampered))
    .unwrap_or_default();
    let tampered = net::describe(net::send(request).await);
    let created = match demo.onekey.accepted() - before {
        0 => "no cashout created".to_owned(),
        n => format!("{n} cashouts created"),
    };
    format!("{wrong_passphrase}, {tampered}, {created}")
}

async fn access_token_cached(demo: &Demo) -> String {
    let before = demo.transak.tokens_issued();
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        outcomes.push(net::describe(
            net::send(partner_request(demo, Some(FRONTEND_ORIGIN), &[])).await,
        ));
    }
    let issued = demo.transak.tokens_issued() - before;
    let tokens = match issued {
        0 => "no new access token".to_owned(),
        n => format!("{n} new access tokens"),
    };
    format!("{}, {tokens}", outcomes.join(", "))
}

async fn access_token_expires(demo: &Demo) -> String {
    let Some(token) = demo
        .transak
        .last_call()
        .and_then(|call| call.headers.get("access-token").cloned())
        .and_then(|token| token.to_str().ok().map(str::to_owned))
    else {
        return "no partner call to take the token from".to_owned();
    };
    let _later = ClockRestore::advance(demo, ACCESS_TOKEN_TTL_SECS);
    let request = session_request_with(demo, Some("198.51.100.7"), TRANSAK_API_KEY, &token);
    net::describe(net::send(request).await)
}
