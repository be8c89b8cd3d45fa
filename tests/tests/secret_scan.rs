//! No secret anywhere: every layer's success and refusal paths at TRACE, and the `Debug` of
//! every configuration that holds a secret, scanned for every test secret, key and token in
//! every form (raw, hex, base64 in four spellings, Basic auth, `whsec_` keys decoded; the list
//! and the forms are `tollgate_test_support::secrets`).
//!
//! The whole walkthrough runs here (origin, client IP, IP allowlist, webhooks accepted,
//! tampered, too large, replayed, stale, under a rotated and a wrong key, Tranzila signed,
//! replayed, with a wrong secret, plain http and bad certificates refused, a retry re-signed, a
//! timeout, OneKey's Basic auth accepted and refused, through hyper and reqwest, Transak's
//! token cached and expired, a key file swapped), then the outbound credential layers with
//! this file's own secrets: an API key and a token sent and refused for another host, a token
//! refresh that fails, a payload signed and verified, and refused under a wrong key.
//!
//! A binary of its own: it installs a global subscriber at TRACE (with `log` records of rustls
//! and reqwest), so the servers' tasks on every thread write into one capture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::OnceLock;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tollgate::core::{BoxError, BufferedBody, Key, KeyRing, ManualClock, Secret};
use tollgate::headers::{SecretHeaderLayer, Token, TokenHeaderLayer, Upstream};
use tollgate::signature::{BodyHmac, SignRequestLayer, VerifySignatureLayer};
use tollgate::tranzila::{TranzilaCredentials, TranzilaSigningLayer};
use tollgate_test_support::LogCapture;
use tollgate_test_support::secrets::{Hit, Scanner, forms};
use tower::{ServiceBuilder, ServiceExt as _, service_fn};

const API_KEY: &str = "scan-api-key-6Fw2-SECRET";
const SIGNATURE_SECRET: &str = "scan-signature-Lp3k-SECRET";
const WEBHOOK_OLD: &str = "scan-webhook-old-Ty5e-SECRET";
const WEBHOOK_NEW: &str = "scan-webhook-new-Bq1z-SECRET";
const TRANZILA_SECRET: &str = "scan-tranzila-Mm8d-SECRET";
const ACCESS_TOKEN: &str = "scan-access-token-Hj2w-SECRET";
const REFRESHED_TOKEN: &str = "scan-refreshed-token-Zc9q-SECRET";
const PLANTED: &str = "scan-planted-Qq0o-SECRET";
const HOST: &str = "https://api.provider.test";

/// The capture every thread of this binary logs into (installed once, globally, at TRACE).
fn capture() -> &'static LogCapture {
    static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = LogCapture::default();
        assert!(
            tollgate_test_support::trace_log::install_global(&capture),
            "another global subscriber"
        );
        capture
    })
}

fn scan_text(what: &str, text: &str) -> Vec<String> {
    let (hits, _) = Scanner::for_test_secrets().scan(text.as_bytes());
    hits.into_iter()
        .map(|Hit { line, secret, form }| format!("{what}:{line}: {secret} ({form})"))
        .collect()
}

fn upstream() -> Upstream {
    Upstream::parse(HOST).unwrap()
}

/// The outbound credential layers with this file's secrets, to their upstream and elsewhere.
async fn drive_outbound_credentials() {
    let wire =
        service_fn(|_request: Request<Full<Bytes>>| async { Ok::<_, BoxError>(Response::new(())) });
    // An API key: sent to its upstream, refused for another host.
    let api_key = ServiceBuilder::new()
        .layer(SecretHeaderLayer::api_key(Secret::from_string(API_KEY), upstream()).unwrap())
        .service(wire);
    for url in [
        format!("{HOST}/v1/ok"),
        "https://evil.test/v1/steal".to_owned(),
    ] {
        let request = Request::post(url).body(Full::new(Bytes::new())).unwrap();
        let outcome = api_key.clone().oneshot(request).await;
        tracing::info!(target: "secret_scan", ok = outcome.is_ok(), error = ?outcome.err(), "api key");
    }
    // An access token from a provider that works, then one that fails.
    let good = TokenHeaderLayer::access_token(
        || async { Ok::<_, BoxError>(Token::new(Secret::from_string(REFRESHED_TOKEN))) },
        upstream(),
    );
    let failing = TokenHeaderLayer::access_token(
        || async { Err::<Token, BoxError>("refresh-token API answered 401".into()) },
        upstream(),
    );
    for (name, layer) in [("good", good), ("failing", failing)] {
        tracing::debug!(target: "secret_scan", layer = ?layer, "token layer {name}");
        let service = ServiceBuilder::new().layer(layer).service(wire);
        for url in [format!("{HOST}/v1/ok"), "https://evil.test/".to_owned()] {
            let request = Request::get(url).body(Full::new(Bytes::new())).unwrap();
            let outcome = service.clone().oneshot(request).await;
            tracing::info!(target: "secret_scan", ok = outcome.is_ok(), error = ?outcome.err(), "token {name}");
        }
    }
    // Tranzila signing, to its upstream and elsewhere.
    let tranzila = ServiceBuilder::new()
        .layer(
            TranzilaSigningLayer::new(
                TranzilaCredentials::new("scan-app-key", TRANZILA_SECRET).unwrap(),
                upstream(),
            )
            .unwrap()
            .clock(ManualClock::new(1_700_000_000)),
        )
        .service(wire);
    for url in [
        format!("{HOST}/v1/tx"),
        "http://api.provider.test/v1/tx".to_owned(),
    ] {
        let request = Request::post(url).body(Full::new(Bytes::new())).unwrap();
        let outcome = tranzila.clone().oneshot(request).await;
        tracing::info!(target: "secret_scan", ok = outcome.is_ok(), error = ?outcome.err(), "tranzila");
    }
}

/// A OneKey payload signed with one ring and verified with another: accepted under the right
/// key, refused under a wrong key, refused when tampered.
async fn drive_signature_paths() {
    let clock = ManualClock::new(1_700_000_000);
    let verify_ring = KeyRing::new(Key::new("scan-old", Secret::from_string(WEBHOOK_OLD)))
        .rotate(Key::new("scan-new", Secret::from_string(WEBHOOK_NEW)));
    let verifier = ServiceBuilder::new()
        .layer(VerifySignatureLayer::new(BodyHmac::onekey(), verify_ring).unwrap())
        .service(service_fn(|request: Request<_>| async move {
            let _ = request;
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }));
    for (name, secret, tamper) in [
        ("right key", WEBHOOK_NEW, false),
        ("old key", WEBHOOK_OLD, false),
        ("wrong key", SIGNATURE_SECRET, false),
        ("tampered", WEBHOOK_NEW, true),
    ] {
        let verifier = verifier.clone();
        let wire = service_fn(move |request: Request<BufferedBody>| {
            let verifier = verifier.clone();
            async move {
                let (mut parts, body) = request.into_parts();
                let mut bytes = body.collect().await?.to_bytes();
                if tamper {
                    bytes = Bytes::from_static(br#"{"amount":"1000000.00"}"#);
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                }
                let response = verifier
                    .oneshot(Request::from_parts(parts, Full::new(bytes)))
                    .await?;
                Ok::<_, BoxError>(response.status())
            }
        });
        let signer = ServiceBuilder::new()
            .layer(
                SignRequestLayer::new(
                    BodyHmac::onekey(),
                    KeyRing::single(Secret::from_string(secret)),
                    upstream(),
                )
                .unwrap()
                .clock(clock.clone()),
            )
            .service(wire);
        let request = Request::post(format!("{HOST}/webhooks"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(br#"{"amount":"100.00"}"#)))
            .unwrap();
        let status = signer.oneshot(request).await.unwrap();
        let expected = if name == "right key" || name == "old key" {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(status, expected, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_layer_at_trace_logs_no_secret() {
    let logs = capture();
    let demo = tollgate_demo::Demo::start()
        .await
        .expect("start the demo apps");
    let outcomes = tollgate_demo::run_all(&demo, &tollgate_demo::scenarios()).await;
    assert!(
        outcomes.iter().all(tollgate_demo::Outcome::passed),
        "{}",
        tollgate_demo::render(&outcomes)
    );
    tracing::debug!(target: "secret_scan", demo = ?demo, "the demo's apps and mocks");
    drive_outbound_credentials().await;
    drive_signature_paths().await;
    drop(demo);

    let text = logs.text();
    // The capture saw the layers' own events, rustls's `log` records and h2's spans.
    for expected in [
        "tollgate",
        "rustls::",
        "signature_invalid",
        "replayed",
        "secret_scan",
    ] {
        assert!(
            text.contains(expected),
            "no `{expected}` in the TRACE capture"
        );
    }
    let hits = scan_text("trace", &text);
    assert!(
        hits.is_empty(),
        "{} secret(s) in {} lines of TRACE logs:\n{}",
        hits.len(),
        text.lines().count(),
        hits.join("\n")
    );
}

#[test]
fn debug_of_every_secret_holder_shows_no_secret() {
    // First in every test: the global capture goes in before any helper could install the
    // `TOLLGATE_TRACE_LOG` file subscriber (CI's run sets it).
    let _ = capture();
    let upstream = upstream();
    let ring = KeyRing::new(Key::new("scan-old", Secret::from_string(WEBHOOK_OLD)))
        .rotate(Key::new("scan-new", Secret::from_string(WEBHOOK_NEW)));
    let outputs = [
        format!("{:?}", Secret::from_string(API_KEY)),
        format!("{:?}", Secret::from_bytes(PLANTED.as_bytes().to_vec())),
        format!("{ring:?}"),
        format!("{:?}", Token::new(Secret::from_string(ACCESS_TOKEN))),
        format!(
            "{:?}",
            SecretHeaderLayer::api_key(Secret::from_string(API_KEY), upstream.clone()).unwrap()
        ),
        format!(
            "{:?}",
            TokenHeaderLayer::access_token(
                || async { Ok::<_, BoxError>(Token::new(Secret::from_string(ACCESS_TOKEN))) },
                upstream.clone()
            )
        ),
        format!(
            "{:?}",
            SignRequestLayer::new(BodyHmac::onekey(), ring.clone(), upstream.clone()).unwrap()
        ),
        format!(
            "{:?}",
            VerifySignatureLayer::new(BodyHmac::x_webhook_signature(), ring).unwrap()
        ),
        format!(
            "{:?}",
            TranzilaCredentials::new("scan-app-key", TRANZILA_SECRET).unwrap()
        ),
        format!(
            "{:?}",
            TranzilaSigningLayer::new(
                TranzilaCredentials::new("scan-app-key", TRANZILA_SECRET).unwrap(),
                upstream.clone()
            )
            .unwrap()
        ),
        format!(
            "{:?}",
            tollgate::transak::TransakOutbound::new(
                upstream,
                Secret::from_string(API_KEY),
                Secret::from_string(ACCESS_TOKEN)
            )
            .unwrap()
        ),
    ];
    let mut hits = Vec::new();
    for (index, output) in outputs.iter().enumerate() {
        hits.extend(scan_text(&format!("debug #{index}"), output));
    }
    assert!(hits.is_empty(), "{}", hits.join("\n"));
}

/// The control: the same pipeline finds a secret that is logged, in each of its forms.
#[test]
fn a_logged_secret_is_found_in_every_form() {
    let _ = capture();
    let needles = forms("secret_scan::PLANTED", PLANTED.as_bytes());
    let logs = LogCapture::new();
    {
        let _guard = logs.install();
        for needle in &needles {
            let value = String::from_utf8_lossy(needle.as_bytes());
            tracing::trace!(target: "secret_scan", "planted {value} as {}", needle.form);
        }
    }
    let hits = scan_text("planted", &logs.text());
    for (line, needle) in needles.iter().enumerate() {
        let expected = format!(
            "planted:{}: secret_scan::PLANTED ({})",
            line + 1,
            needle.form
        );
        assert!(hits.contains(&expected), "{expected} not in {hits:#?}");
    }
    assert!(needles.len() >= 5, "{needles:?}");
}
