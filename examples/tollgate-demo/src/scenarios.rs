//! The scenario list, defined once for the demo binary and the tests.

use std::net::IpAddr;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::json;

use crate::net::{self, Reply};
use crate::runner::Scenario;
use crate::world::{Demo, TRANSAK_ACCESS_TOKEN, TRANSAK_API_KEY};
use transak_partner::mock::SESSION_TTL_SECS;

/// Every scenario of the walkthrough, in the order they are played.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "Transak: invalid x-user-ip",
            request: "POST /api/v2/auth/session x-user-ip: 10.0.0.999",
            expected: "400 `x-user-ip` must be a valid IPv4 or IPv6 address",
            run: |demo| {
                Box::pin(async move {
                    let reply = transak_session(demo, Some("10.0.0.999"), TRANSAK_API_KEY).await;
                    match reply {
                        Ok(reply) => format!(
                            "{} {}",
                            reply.status.as_u16(),
                            reply.json()["error"]["message"].as_str().unwrap_or("")
                        ),
                        Err(err) => format!("error: {err}"),
                    }
                })
            },
        },
        Scenario {
            name: "Transak: unknown x-api-key",
            request: "POST /api/v2/auth/session x-api-key: stolen",
            expected: "401 1001",
            run: |demo| {
                Box::pin(async move {
                    net::describe(transak_session(demo, Some("198.51.100.7"), "stolen").await)
                })
            },
        },
        Scenario {
            name: "Transak: unregistered source IP",
            request: "POST /api/v2/auth/session from 127.0.0.2",
            expected: "403 1006",
            run: |demo| {
                Box::pin(async move {
                    let request = session_request(demo, Some("198.51.100.7"), TRANSAK_API_KEY);
                    net::describe(net::send_from(IpAddr::from([127, 0, 0, 2]), request).await)
                })
            },
        },
        Scenario {
            name: "Transak: widget URL is single-use",
            request: "GET <widgetUrl> twice",
            expected: "200 then 410 1008",
            run: |demo| {
                Box::pin(async move {
                    let url = match widget_url(demo).await {
                        Ok(url) => url,
                        Err(err) => return err,
                    };
                    let first = net::describe(net::send(get(&url)).await);
                    let second = net::describe(net::send(get(&url)).await);
                    format!("{first} then {second}")
                })
            },
        },
        Scenario {
            name: "Transak: widget URL expires",
            request: "GET <widgetUrl> 5 min + 1 s later",
            expected: "410 1009",
            run: |demo| {
                Box::pin(async move {
                    let url = match widget_url(demo).await {
                        Ok(url) => url,
                        Err(err) => return err,
                    };
                    let _restore = ClockRestore::advance(demo, SESSION_TTL_SECS + 1);
                    net::describe(net::send(get(&url)).await)
                })
            },
        },
        Scenario {
            name: "Tranzila: signed call accepted",
            request: "POST /v1/transaction/credit_card/create via TranzilaSigningLayer",
            expected: "200",
            run: |demo| {
                Box::pin(async move {
                    describe_response(
                        tranzila_client::create_transaction(
                            &demo.tranzila_client,
                            &demo.tranzila_url,
                        )
                        .await,
                    )
                })
            },
        },
        Scenario {
            name: "Tranzila: replayed headers",
            request: "the same four Tranzila headers sent again",
            expected: "401 replayed",
            run: |demo| {
                Box::pin(async move {
                    let Some(headers) = demo.tranzila.last_headers() else {
                        return "no accepted call to replay".to_owned();
                    };
                    let mut request = Request::new(Full::new(Bytes::from_static(b"{}")));
                    *request.method_mut() = Method::POST;
                    *request.uri_mut() = format!(
                        "{}{}",
                        demo.tranzila_url,
                        tranzila_client::CREATE_TRANSACTION_PATH
                    )
                    .parse()
                    .unwrap_or_default();
                    for name in [
                        tollgate::tranzila::APP_KEY,
                        tollgate::tranzila::REQUEST_TIME,
                        tollgate::tranzila::NONCE,
                        tollgate::tranzila::ACCESS_TOKEN,
                    ] {
                        if let Some(value) = headers.get(&name) {
                            request.headers_mut().insert(name, value.clone());
                        }
                    }
                    net::describe(net::send(request).await)
                })
            },
        },
        Scenario {
            name: "Tranzila: wrong secret",
            request: "signed with the right app key and a wrong secret",
            expected: "401 signature_invalid",
            run: |demo| {
                Box::pin(async move {
                    describe_response(
                        tranzila_client::create_transaction(
                            &demo.tranzila_wrong_secret,
                            &demo.tranzila_url,
                        )
                        .await,
                    )
                })
            },
        },
        Scenario {
            name: "Tranzila: stale request time",
            request: "signed 301 s behind the server clock",
            expected: "401 timestamp_out_of_window",
            run: |demo| {
                Box::pin(async move {
                    describe_response(
                        tranzila_client::create_transaction(
                            &demo.tranzila_stale,
                            &demo.tranzila_url,
                        )
                        .await,
                    )
                })
            },
        },
    ]
}

/// `"<status> <error code>"` of an already-read response.
fn describe_response(result: Result<http::Response<Bytes>, tollgate::core::BoxError>) -> String {
    match result {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
            .outcome()
        }
        Err(err) => format!("error: {err}"),
    }
}

/// Moves the demo clock forward and puts it back when dropped.
struct ClockRestore<'a> {
    demo: &'a Demo,
    saved: u64,
}

impl<'a> ClockRestore<'a> {
    fn advance(demo: &'a Demo, seconds: u64) -> Self {
        use tollgate::core::Clock;
        let saved = demo.clock.now_unix();
        demo.clock.advance(seconds);
        Self { demo, saved }
    }
}

impl Drop for ClockRestore<'_> {
    fn drop(&mut self) {
        self.demo.clock.set(self.saved);
    }
}

fn get(url: &str) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(Bytes::new()));
    *request.uri_mut() = url.parse().unwrap_or_default();
    request
}

fn session_request(demo: &Demo, user_ip: Option<&str>, api_key: &str) -> Request<Full<Bytes>> {
    let body = json!({
        "widgetParams": { "apiKey": api_key, "referrerDomain": "partner.example" }
    });
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(demo.transak_url("/api/v2/auth/session"))
        .header("content-type", "application/json")
        .header("x-api-key", api_key)
        .header("access-token", TRANSAK_ACCESS_TOKEN);
    if let Some(ip) = user_ip {
        builder = builder.header("x-user-ip", ip);
    }
    builder
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

async fn transak_session(
    demo: &Demo,
    user_ip: Option<&str>,
    api_key: &str,
) -> Result<Reply, tollgate::core::BoxError> {
    net::send(session_request(demo, user_ip, api_key)).await
}

/// Creates a session directly at the mock and returns its widget URL (or the outcome text).
async fn widget_url(demo: &Demo) -> Result<String, String> {
    let reply = transak_session(demo, Some("198.51.100.7"), TRANSAK_API_KEY)
        .await
        .map_err(|err| format!("error: {err}"))?;
    reply.json()["data"]["widgetUrl"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| reply.outcome())
}
