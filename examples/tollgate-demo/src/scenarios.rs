//! The scenario list, defined once for the demo binary and the tests.

use std::net::IpAddr;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::json;
use tollgate::client::CallError;
use tollgate::client_ip::{ClientIp, IpOrigin, MissingClientIp};
use tollgate::core::{Clock, Secret};
use tollgate::headers::HeaderError;
use tollgate::signature::{BodyHmac, StandardWebhooks};
use tower::ServiceExt;

use crate::net::{self, Reply};
use crate::runner::Scenario;
use crate::world::{
    Demo, FRONTEND_ORIGIN, ONEKEY_SECRET, PROXY_IP, ROTATION_NEW_SECRET, ROTATION_OLD_SECRET,
    STANDARD_WEBHOOK_SECRET, TRANSAK_API_KEY, TRANSAK_API_SECRET, WEBHOOK_BODY_LIMIT,
    WEBHOOK_NEW_SECRET, WEBHOOK_OLD_NOT_AFTER, WEBHOOK_OLD_SECRET,
};
use transak_partner::mock::SESSION_TTL_SECS;

/// Every scenario of the walkthrough, in the order they are played.
pub fn scenarios() -> Vec<Scenario> {
    let mut list = partner_scenarios();
    list.extend(provider_scenarios());
    list.extend(crate::https_scenarios::scenarios());
    list.extend(webhook_scenarios());
    list.extend(framework_scenarios());
    // Appended last: the numbers of the scenarios above stay as they were.
    list.extend(rotation_scenarios());
    list
}

/// Keys swapped in a running server (the key-rotation example app), no restart.
fn rotation_scenarios() -> Vec<Scenario> {
    vec![Scenario {
        name: "key swap takes effect without a restart",
        request: "keys file: rotation-1 replaced by rotation-2, reloaded (as on SIGHUP); then POST /webhooks signed with each",
        expected: "rotation-1: 401 signature_invalid; rotation-2: 200 key rotation-2",
        run: |demo| {
            Box::pin(async move {
                // Each post is a delivery of its own: the route accepts a signed body once.
                let post = |secret: &'static str, delivery: u32| async move {
                    let body = format!(r#"{{"event":"key.rotated","delivery":{delivery}}}"#);
                    let signature = BodyHmac::x_webhook_signature()
                        .compute(&Secret::from_string(secret), body.as_bytes());
                    let request = Request::post(format!("http://{}/webhooks", demo.rotation_addr))
                        .header("content-type", "application/json")
                        .header("x-webhook-signature", signature)
                        .body(Full::new(Bytes::from(body)))
                        .unwrap_or_default();
                    match net::send(request).await {
                        Ok(reply) if reply.status.is_success() => format!(
                            "{} key {}",
                            reply.status.as_u16(),
                            String::from_utf8_lossy(&reply.body)
                        ),
                        other => net::describe(other),
                    }
                };
                let before = post(ROTATION_OLD_SECRET, 1).await;
                if before != "200 key rotation-1" {
                    return format!("before the swap: {before}");
                }
                let keys = demo.rotation_dir.0.join("keys");
                if let Err(err) =
                    std::fs::write(&keys, format!("rotation-2 = {ROTATION_NEW_SECRET}\n"))
                {
                    return format!("error: {err}");
                }
                if let Err(err) = demo.rotation.reload().await {
                    return format!("reload refused: {err}");
                }
                format!(
                    "rotation-1: {}; rotation-2: {}",
                    post(ROTATION_OLD_SECRET, 2).await,
                    post(ROTATION_NEW_SECRET, 3).await
                )
            })
        },
    }]
}

/// The same layers on a tonic server and on a plain hyper server.
fn framework_scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "gRPC health, allowed caller",
            request: "grpc.health.v1.Health/Check from 127.0.0.1",
            expected: "Serving",
            run: |demo| {
                Box::pin(async move {
                    match tonic_health_example::check(demo.grpc_addr, IpAddr::from([127, 0, 0, 1]))
                        .await
                    {
                        Ok(status) => format!("{status:?}"),
                        Err(status) => format!("{:?} {}", status.code(), status.message()),
                    }
                })
            },
        },
        Scenario {
            name: "gRPC caller outside the allowlist",
            request: "grpc.health.v1.Health/Check from 127.0.0.2",
            expected: "PermissionDenied ip_not_allowed",
            run: |demo| {
                Box::pin(async move {
                    match tonic_health_example::check(demo.grpc_addr, IpAddr::from(PROXY_IP)).await
                    {
                        Ok(status) => format!("{status:?}"),
                        Err(status) => format!(
                            "{:?} {}",
                            status.code(),
                            status.message().split(':').next().unwrap_or("")
                        ),
                    }
                })
            },
        },
        Scenario {
            name: "plain hyper server, allowed origin",
            request: "GET /api/whoami Origin: http://localhost:5173 (hyper, no axum)",
            expected: "200 clientIp 127.0.0.1",
            run: |demo| {
                Box::pin(async move {
                    let request = Request::builder()
                        .uri(format!("http://{}/api/whoami", demo.hyper_addr))
                        .header("origin", FRONTEND_ORIGIN)
                        .body(Full::new(Bytes::new()))
                        .unwrap_or_default();
                    match net::send(request).await {
                        Ok(reply) if reply.status.is_success() => format!(
                            "{} clientIp {}",
                            reply.status.as_u16(),
                            reply.json()["clientIp"].as_str().unwrap_or("?")
                        ),
                        other => net::describe(other),
                    }
                })
            },
        },
        Scenario {
            name: "plain hyper server, caller outside allowlist",
            request: "GET /api/whoami from 127.0.0.2 (hyper, no axum)",
            expected: "403 ip_not_allowed",
            run: |demo| {
                Box::pin(async move {
                    let request = Request::builder()
                        .uri(format!("http://{}/api/whoami", demo.hyper_addr))
                        .body(Full::new(Bytes::new()))
                        .unwrap_or_default();
                    net::describe(net::send_from(IpAddr::from(PROXY_IP), request).await)
                })
            },
        },
    ]
}

const NOTIFICATION: &[u8] = br#"{"event":"payout.completed","id":"evt_1","amount":"10.50"}"#;

/// The webhook receiver: body limit, signature verification, replay guard, key rotation.
fn webhook_scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "OneKey webhook accepted",
            request: "POST /webhooks/onekey Payload-Signature: hex HMAC of the body",
            expected: "200 key onekey-1",
            run: |demo| {
                Box::pin(async move {
                    let signature = BodyHmac::onekey()
                        .compute(&Secret::from_string(ONEKEY_SECRET), NOTIFICATION);
                    webhook_outcome(
                        demo,
                        "/webhooks/onekey",
                        &[("payload-signature", &signature)],
                        NOTIFICATION,
                    )
                    .await
                })
            },
        },
        Scenario {
            name: "tampered webhook",
            request: "same Payload-Signature, amount changed in the body",
            expected: "401 signature_invalid",
            run: |demo| {
                Box::pin(async move {
                    let signature = BodyHmac::onekey()
                        .compute(&Secret::from_string(ONEKEY_SECRET), NOTIFICATION);
                    let tampered = String::from_utf8_lossy(NOTIFICATION).replace("10.50", "99.50");
                    webhook_outcome(
                        demo,
                        "/webhooks/onekey",
                        &[("payload-signature", &signature)],
                        tampered.as_bytes(),
                    )
                    .await
                })
            },
        },
        Scenario {
            name: "webhook body too large",
            request: "POST /webhooks/generic with 2 KiB (limit 1 KiB)",
            expected: "413 payload_too_large",
            run: |demo| {
                Box::pin(async move {
                    let body = vec![b'x'; 2 * WEBHOOK_BODY_LIMIT];
                    let signature = BodyHmac::x_webhook_signature()
                        .compute(&Secret::from_string(WEBHOOK_NEW_SECRET), &body);
                    webhook_outcome(
                        demo,
                        "/webhooks/generic",
                        &[("x-webhook-signature", &signature)],
                        &body,
                    )
                    .await
                })
            },
        },
        Scenario {
            name: "key rotation",
            request: "X-Webhook-Signature with old key, new key, old key after its not-after; the first notification again under the new key",
            expected: "200 key generic-2025, 200 key generic-2026, 401 signature_invalid, 401 replayed",
            run: |demo| {
                Box::pin(async move {
                    // Three different notifications: the same one signed under another key is
                    // the same message, refused as a replay (the last call).
                    let send = |secret: &'static str, event: &'static str| async move {
                        let body = String::from_utf8_lossy(NOTIFICATION).replace("evt_1", event);
                        let signature = BodyHmac::x_webhook_signature()
                            .compute(&Secret::from_string(secret), body.as_bytes());
                        webhook_outcome(
                            demo,
                            "/webhooks/generic",
                            &[("x-webhook-signature", &signature)],
                            body.as_bytes(),
                        )
                        .await
                    };
                    let old = send(WEBHOOK_OLD_SECRET, "evt_rot_1").await;
                    let new = send(WEBHOOK_NEW_SECRET, "evt_rot_2").await;
                    let expired = {
                        let _restore = ClockRestore::set(demo, WEBHOOK_OLD_NOT_AFTER + 1);
                        send(WEBHOOK_OLD_SECRET, "evt_rot_3").await
                    };
                    let again = send(WEBHOOK_NEW_SECRET, "evt_rot_1").await;
                    format!("{old}, {new}, {expired}, {again}")
                })
            },
        },
        Scenario {
            name: "Standard Webhooks replay",
            request: "the same webhook-id, timestamp and signature delivered twice",
            expected: "200 key standard-1 then 401 replayed",
            run: |demo| {
                Box::pin(async move {
                    let now = demo.clock.now_unix();
                    let first = standard_webhook(demo, "msg_demo_replay", now).await;
                    let second = standard_webhook(demo, "msg_demo_replay", now).await;
                    format!("{first} then {second}")
                })
            },
        },
        Scenario {
            name: "stale webhook timestamp",
            request: "Standard Webhooks signed 301 s ago",
            expected: "401 timestamp_out_of_window",
            run: |demo| {
                Box::pin(async move {
                    let stale = demo.clock.now_unix() - 301;
                    standard_webhook(demo, "msg_demo_stale", stale).await
                })
            },
        },
    ]
}

/// Posts a raw webhook and describes the answer: `"200 key <id>"` or `"<status> <code>"`.
async fn webhook_outcome(demo: &Demo, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(demo.webhook_url(path))
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap_or_default();
    match net::send(request).await {
        Ok(reply) if reply.status.is_success() => format!(
            "{} key {}",
            reply.status.as_u16(),
            reply.json()["keyId"].as_str().unwrap_or("?")
        ),
        other => net::describe(other),
    }
}

/// A Standard Webhooks delivery signed at `timestamp`.
async fn standard_webhook(demo: &Demo, id: &str, timestamp: u64) -> String {
    let Ok(secret) = StandardWebhooks::secret_from_whsec(STANDARD_WEBHOOK_SECRET) else {
        return "bad demo secret".to_owned();
    };
    let signature = StandardWebhooks::new().compute(&secret, id, timestamp, NOTIFICATION);
    let timestamp = timestamp.to_string();
    webhook_outcome(
        demo,
        "/webhooks/standard",
        &[
            ("webhook-id", id),
            ("webhook-timestamp", &timestamp),
            ("webhook-signature", &signature),
        ],
        NOTIFICATION,
    )
    .await
}

/// The Transak partner app: inbound stack (origin, client IP) and outbound stack (hygiene,
/// keys, x-user-ip).
fn partner_scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "allowed origin",
            request: "POST /api/widget-url Origin: http://localhost:5173",
            expected: "200 widgetUrl, ACAO http://localhost:5173",
            run: |demo| {
                Box::pin(async move {
                    match net::send(partner_request(demo, Some(FRONTEND_ORIGIN), &[])).await {
                        Ok(reply) if reply.json()["widgetUrl"].is_string() => format!(
                            "{} widgetUrl, ACAO {}",
                            reply.status.as_u16(),
                            reply.header("access-control-allow-origin")
                        ),
                        other => net::describe(other),
                    }
                })
            },
        },
        Scenario {
            name: "foreign origin",
            request: "POST /api/widget-url Origin: https://evil.example",
            expected: "403 origin_not_allowed, Transak not called",
            run: |demo| {
                Box::pin(async move {
                    let before = demo.transak.calls();
                    let outcome = net::describe(
                        net::send(partner_request(demo, Some("https://evil.example"), &[])).await,
                    );
                    if demo.transak.calls() == before {
                        format!("{outcome}, Transak not called")
                    } else {
                        format!("{outcome}, Transak called")
                    }
                })
            },
        },
        Scenario {
            name: "preflight",
            request: "OPTIONS /api/widget-url Access-Control-Request-Method: POST",
            expected: "204 ACAO http://localhost:5173",
            run: |demo| {
                Box::pin(async move {
                    let request = Request::builder()
                        .method(Method::OPTIONS)
                        .uri(demo.partner_url("/api/widget-url"))
                        .header("origin", FRONTEND_ORIGIN)
                        .header("access-control-request-method", "POST")
                        .header("access-control-request-headers", "content-type")
                        .body(Full::new(Bytes::new()))
                        .unwrap_or_default();
                    match net::send(request).await {
                        Ok(reply) => format!(
                            "{} ACAO {}",
                            reply.status.as_u16(),
                            reply.header("access-control-allow-origin")
                        ),
                        Err(err) => format!("error: {err}"),
                    }
                })
            },
        },
        Scenario {
            name: "preflight, method not allowed",
            request: "OPTIONS /api/widget-url Access-Control-Request-Method: DELETE",
            expected: "403 method_not_allowed",
            run: |demo| {
                Box::pin(async move {
                    let request = Request::builder()
                        .method(Method::OPTIONS)
                        .uri(demo.partner_url("/api/widget-url"))
                        .header("origin", FRONTEND_ORIGIN)
                        .header("access-control-request-method", "DELETE")
                        .body(Full::new(Bytes::new()))
                        .unwrap_or_default();
                    net::describe(net::send(request).await)
                })
            },
        },
        Scenario {
            name: "spoofed X-Forwarded-For",
            request: "X-Forwarded-For: 203.0.113.66 from untrusted peer 127.0.0.1",
            expected: "200, x-user-ip 127.0.0.1",
            run: |demo| {
                Box::pin(async move {
                    let request = partner_request(
                        demo,
                        Some(FRONTEND_ORIGIN),
                        &[("x-forwarded-for", "203.0.113.66")],
                    );
                    forwarded_ip(demo, net::send(request).await)
                })
            },
        },
        Scenario {
            name: "spoofed cf-connecting-ip",
            request: "cf-connecting-ip: 203.0.113.66 sent directly from 127.0.0.1",
            expected: "200, x-user-ip 127.0.0.1",
            run: |demo| {
                Box::pin(async move {
                    let request = partner_request(
                        demo,
                        Some(FRONTEND_ORIGIN),
                        &[("cf-connecting-ip", "203.0.113.66")],
                    );
                    forwarded_ip(demo, net::send(request).await)
                })
            },
        },
        Scenario {
            name: "cf-connecting-ip via trusted proxy",
            request: "cf-connecting-ip: 198.51.100.23 from trusted proxy 127.0.0.2",
            expected: "200, x-user-ip 198.51.100.23",
            run: |demo| {
                Box::pin(async move {
                    let request = partner_request(
                        demo,
                        Some(FRONTEND_ORIGIN),
                        &[("cf-connecting-ip", "198.51.100.23")],
                    );
                    forwarded_ip(demo, net::send_from(IpAddr::from(PROXY_IP), request).await)
                })
            },
        },
        Scenario {
            name: "missing x-user-ip refused client-side",
            request: "outbound call without a ClientIp",
            expected: "MissingClientIp, nothing sent",
            run: |demo| {
                Box::pin(async move {
                    let before = demo.transak.calls();
                    let result = demo
                        .partner_client
                        .clone()
                        .oneshot(outbound_request(demo, &[]))
                        .await;
                    let sent = if demo.transak.calls() == before {
                        "nothing sent"
                    } else {
                        "sent"
                    };
                    match result {
                        Err(CallError::Refused(err))
                            if err.downcast_ref::<MissingClientIp>().is_some() =>
                        {
                            format!("MissingClientIp, {sent}")
                        }
                        Err(err) => format!("error: {err}, {sent}"),
                        Ok(response) => format!("{}, {sent}", response.status().as_u16()),
                    }
                })
            },
        },
        Scenario {
            name: "browser headers stripped",
            request: "outbound call carrying Origin, Referer, Cookie, Sec-Fetch-Site",
            expected: "200, none reached Transak",
            run: |demo| {
                Box::pin(async move {
                    let mut request = outbound_request(
                        demo,
                        &[
                            ("origin", FRONTEND_ORIGIN),
                            ("referer", "http://localhost:5173/buy"),
                            ("cookie", "session=browser"),
                            ("sec-fetch-site", "same-site"),
                        ],
                    );
                    request.extensions_mut().insert(ClientIp::new(
                        IpAddr::from([198, 51, 100, 7]),
                        IpOrigin::Peer,
                    ));
                    match demo.partner_client.clone().oneshot(request).await {
                        Ok(response) => {
                            let leaked = demo.transak.last_call().is_some_and(|call| {
                                ["origin", "referer", "cookie", "sec-fetch-site"]
                                    .iter()
                                    .any(|name| call.headers.contains_key(*name))
                            });
                            format!(
                                "{}, {}",
                                response.status().as_u16(),
                                if leaked {
                                    "some reached Transak"
                                } else {
                                    "none reached Transak"
                                }
                            )
                        }
                        Err(err) => format!("error: {err}"),
                    }
                })
            },
        },
        Scenario {
            name: "API key never sent to another host",
            request: "outbound call to https://127.0.0.1:9 (not the Transak upstream)",
            expected: "UpstreamNotAllowed, nothing sent",
            run: |demo| {
                Box::pin(async move {
                    let mut request = outbound_request(demo, &[]);
                    *request.uri_mut() =
                        http::Uri::from_static("https://127.0.0.1:9/api/v2/auth/session");
                    request.extensions_mut().insert(ClientIp::new(
                        IpAddr::from([198, 51, 100, 7]),
                        IpOrigin::Peer,
                    ));
                    match demo.partner_client.clone().oneshot(request).await {
                        Err(CallError::Refused(err)) => match err.downcast_ref::<HeaderError>() {
                            Some(HeaderError::UpstreamNotAllowed { .. }) => {
                                "UpstreamNotAllowed, nothing sent".to_owned()
                            }
                            _ => format!("error: {err}"),
                        },
                        Err(err) => format!("error: {err}"),
                        Ok(response) => format!("{} (sent!)", response.status().as_u16()),
                    }
                })
            },
        },
    ]
}

/// The provider mocks called directly: what Transak and Tranzila enforce.
fn provider_scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "Transak: browser headers forwarded",
            request: "POST /api/v2/auth/session with Origin, straight to the mock",
            expected: "400 1004",
            run: |demo| {
                Box::pin(async move {
                    let mut request =
                        session_request(demo, Some("198.51.100.7"), TRANSAK_API_KEY).await;
                    request
                        .headers_mut()
                        .insert("origin", http::HeaderValue::from_static(FRONTEND_ORIGIN));
                    net::describe(net::send(request).await)
                })
            },
        },
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
                    let request =
                        session_request(demo, Some("198.51.100.7"), TRANSAK_API_KEY).await;
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
            request: "POST /v1/transaction/credit_card/create via TranzilaClient (HTTPS)",
            expected: "200",
            run: |demo| {
                Box::pin(async move {
                    describe_response(
                        tranzila_client::create_transaction(&demo.tranzila_client).await,
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
                        tranzila_client::create_transaction(&demo.tranzila_wrong_secret).await,
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
                        tranzila_client::create_transaction(&demo.tranzila_stale).await,
                    )
                })
            },
        },
    ]
}

/// `"<status> <error code>"` of an already-read response.
pub(crate) fn describe_response(
    result: Result<http::Response<Bytes>, tollgate::core::BoxError>,
) -> String {
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

pub(crate) fn partner_request(
    demo: &Demo,
    origin: Option<&str>,
    headers: &[(&str, &str)],
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(demo.partner_url("/api/widget-url"))
        .header("content-type", "application/json");
    if let Some(origin) = origin {
        builder = builder.header("origin", origin);
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(Bytes::from_static(
            br#"{"cryptoCurrencyCode":"ETH"}"#,
        )))
        .unwrap_or_default()
}

/// `"200, x-user-ip <ip>"`: the status and the `x-user-ip` the mock Transak received.
fn forwarded_ip(demo: &Demo, result: Result<Reply, tollgate::core::BoxError>) -> String {
    match result {
        Ok(reply) if reply.status.is_success() => match demo.transak.last_call() {
            Some(call) => format!("{}, x-user-ip {}", reply.status.as_u16(), call.user_ip),
            None => format!("{}, Transak not called", reply.status.as_u16()),
        },
        other => net::describe(other),
    }
}

/// A Create Widget URL request as the partner's handler builds it.
fn outbound_request(demo: &Demo, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let body = json!({
        "widgetParams": { "apiKey": TRANSAK_API_KEY, "referrerDomain": "partner.example" }
    });
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(demo.transak_url("/api/v2/auth/session"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

/// Moves the demo clock forward and puts it back when dropped.
pub(crate) struct ClockRestore<'a> {
    demo: &'a Demo,
    saved: u64,
}

impl<'a> ClockRestore<'a> {
    pub(crate) fn advance(demo: &'a Demo, seconds: u64) -> Self {
        let saved = demo.clock.now_unix();
        demo.clock.advance(seconds);
        Self { demo, saved }
    }

    fn set(demo: &'a Demo, now: u64) -> Self {
        let saved = demo.clock.now_unix();
        demo.clock.set(now);
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

/// A fresh access token from the mock's refresh-token API (empty when refused).
pub(crate) async fn access_token(demo: &Demo) -> String {
    let request = Request::post(demo.transak_url(transak_partner::mock::REFRESH_TOKEN_PATH))
        .header("content-type", "application/json")
        .header("api-secret", TRANSAK_API_SECRET)
        .body(Full::new(Bytes::from(
            json!({ "apiKey": TRANSAK_API_KEY }).to_string(),
        )))
        .unwrap_or_default();
    match net::send(request).await {
        Ok(reply) => reply.json()["data"]["accessToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        Err(_) => String::new(),
    }
}

/// A Create Widget URL request straight to the mock, with a fresh access token.
async fn session_request(
    demo: &Demo,
    user_ip: Option<&str>,
    api_key: &str,
) -> Request<Full<Bytes>> {
    let token = access_token(demo).await;
    session_request_with(demo, user_ip, api_key, &token)
}

/// A Create Widget URL request straight to the mock with `token`.
pub(crate) fn session_request_with(
    demo: &Demo,
    user_ip: Option<&str>,
    api_key: &str,
    token: &str,
) -> Request<Full<Bytes>> {
    let body = json!({
        "widgetParams": { "apiKey": api_key, "referrerDomain": "partner.example" }
    });
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(demo.transak_url("/api/v2/auth/session"))
        .header("content-type", "application/json")
        .header("x-api-key", api_key)
        .header("access-token", token);
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
    net::send(session_request(demo, user_ip, api_key).await).await
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
