//! tollgate's span fields through tower-http's `TraceLayer`, over real sockets: the span
//! [`make_span`] declares gets, for each request, exactly the client IP, the key id, the
//! decision, and the refusing layer and code that `tollgate_core::metrics` documents; and no
//! secret, signature or nonce reaches any span field or log line.
//!
//! The subscriber is a registry with a small layer that keeps every value recorded into each
//! span, in order (what JSON or OpenTelemetry subscribers see, without parsing text), and the
//! text format writing into a [`LogCapture`] (everything that would reach a log). It is the
//! test thread's default, and the servers and clients run on a current-thread runtime on
//! that thread, so every span and event of the requests reaches it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metrics_prometheus::{ALLOWED_ORIGIN, KEY_ID, app, make_span};
use tokio::net::TcpListener;
use tollgate::client_ip::{ClientIpSource, IpRangesHandle, ListHeader, ResolveClientIpLayer};
use tollgate::core::{Key, KeyRing, Secret};
use tollgate::origin::OriginAllowlistLayer;
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::signature::{StandardWebhooks, VerifySignatureLayer};
use tollgate_test_support::LogCapture;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// `(field, value)` of one span, in the order recorded.
type Fields = Vec<(String, String)>;

/// Every value recorded into each `request` span, in order of creation.
#[derive(Clone, Default)]
struct SpanValues {
    /// Per span, in order of creation.
    spans: Arc<Mutex<Vec<Fields>>>,
    /// Live span id → index in `spans`.
    ids: Arc<Mutex<HashMap<u64, usize>>>,
}

struct Values<'a>(&'a mut Fields);

impl Visit for Values<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for SpanValues {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() != "request" {
            return;
        }
        let mut values = Vec::new();
        attrs.record(&mut Values(&mut values));
        let mut spans = self.spans.lock().unwrap();
        self.ids.lock().unwrap().insert(id.into_u64(), spans.len());
        spans.push(values);
    }

    fn on_record(&self, id: &Id, record: &Record<'_>, _: Context<'_, S>) {
        let Some(&index) = self.ids.lock().unwrap().get(&id.into_u64()) else {
            return;
        };
        record.record(&mut Values(&mut self.spans.lock().unwrap()[index]));
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        self.ids.lock().unwrap().remove(&id.into_u64());
    }
}

impl SpanValues {
    /// The `tollgate.*` values of each request span, in order.
    fn tollgate_fields(&self) -> Vec<Fields> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .map(|values| {
                values
                    .iter()
                    .filter(|(field, _)| field.starts_with("tollgate."))
                    .cloned()
                    .collect()
            })
            .collect()
    }

    /// Every value of every request span, as text.
    fn all_text(&self) -> String {
        format!("{:?}", self.spans.lock().unwrap())
    }
}

/// Installs the capturing subscriber for this thread.
fn capture() -> (SpanValues, LogCapture, tracing::subscriber::DefaultGuard) {
    let spans = SpanValues::default();
    let logs = LogCapture::new();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::registry().with(spans.clone()).with(
        tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_ansi(false),
    );
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    (spans, logs, guard)
}

fn pairs(values: &[(&str, &str)]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|(field, value)| ((*field).to_owned(), (*value).to_owned()))
        .collect()
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn send(client: &HttpClient, request: http::request::Builder, body: &str) -> StatusCode {
    let response = client
        .request(
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

const BODY_SECRET: &str = "whsec-body-hmac-9f2c7d41e0";

fn hex_hmac(body: &str, secret: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The example's own receiver (`app`): its spans say what its docs show.
#[tokio::test]
async fn the_example_app_records_client_ip_key_id_and_decision() {
    let (spans, logs, _guard) = capture();
    let api = serve(app(Secret::from_string(BODY_SECRET)).unwrap()).await;
    let client = client();
    let post = || {
        Request::post(format!("http://{api}/webhooks")).header("content-type", "application/json")
    };

    let body = r#"{"event":"payout.completed","id":"evt_1"}"#;
    let good = hex_hmac(body, BODY_SECRET);
    let status = send(&client, post().header("x-webhook-signature", &good), body).await;
    assert_eq!(status, StatusCode::OK);
    let bad = hex_hmac(body, "not-the-secret");
    let status = send(&client, post().header("x-webhook-signature", &bad), body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    assert_eq!(
        spans.tollgate_fields(),
        [
            pairs(&[
                ("tollgate.decision", "allowed"),
                ("tollgate.client_ip", "127.0.0.1"),
                ("tollgate.key_id", KEY_ID),
            ]),
            pairs(&[
                ("tollgate.decision", "allowed"),
                ("tollgate.client_ip", "127.0.0.1"),
                ("tollgate.decision", "refused"),
                ("tollgate.layer", "signature"),
                ("tollgate.code", "signature_invalid"),
            ]),
        ]
    );
    let text = logs.text();
    // The `finished processing request` line carries the fields, as the crate docs show.
    let finished: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("finished processing request"))
        .collect();
    assert_eq!(finished.len(), 2, "{text}");
    assert!(
        finished[0].contains(
            "tollgate.decision=\"allowed\" tollgate.client_ip=127.0.0.1 \
             tollgate.key_id=\"partner-1\"}"
        ),
        "{text}"
    );
    assert!(
        finished[1].contains(
            "tollgate.decision=\"allowed\" tollgate.client_ip=127.0.0.1 \
             tollgate.decision=\"refused\" tollgate.layer=\"signature\" \
             tollgate.code=\"signature_invalid\"}"
        ),
        "{text}"
    );
    for secret in [BODY_SECRET, good.as_str(), bad.as_str()] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
        assert!(!spans.all_text().contains(secret), "{secret} in a span");
    }
}

const OLD_SECRET: &str = "sw-old-secret-5c1e0a77d3";
const NEW_SECRET: &str = "sw-new-secret-b84f2e9160";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A stack in the order the README gives (client IP behind a trusted proxy, origin, signature
/// with a rotated ring, replay guard on the message id): the forwarded client IP, the id of
/// the key that verified (the old one, still accepted), and each refusal's layer and code.
#[tokio::test]
async fn a_forwarded_ip_a_rotated_key_and_each_refusal_are_recorded() {
    let (spans, logs, _guard) = capture();
    let ring = KeyRing::new(Key::new("sender-2026-01", Secret::from_string(OLD_SECRET)))
        .rotate(Key::new("sender-2026-07", Secret::from_string(NEW_SECRET)));
    let proxies = IpRangesHandle::new("127.0.0.1".parse().unwrap());
    let stack = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http().make_span_with(make_span))
        .layer(ResolveClientIpLayer::new(
            ClientIpSource::rightmost_trusted_range(ListHeader::XForwardedFor, proxies),
        ))
        .layer(OriginAllowlistLayer::new([ALLOWED_ORIGIN]).unwrap())
        .layer(VerifySignatureLayer::new(StandardWebhooks::new(), ring).unwrap())
        .layer(
            ReplayGuardLayer::standard_webhooks(MemoryNonceStore::new(1_000)).namespace("sender"),
        );
    let router = Router::new()
        .route("/webhooks", post(|| async { "received" }))
        .layer(stack);
    let api = serve(router).await;
    let client = client();

    let body = r#"{"type":"payout.completed","data":{"id":"po_81"}}"#;
    let nonce = "msg_2mQk7Zr0XvT4aLp9";
    let timestamp = now();
    let scheme = StandardWebhooks::new();
    let good = scheme.compute(
        &Secret::from_string(OLD_SECRET),
        nonce,
        timestamp,
        body.as_bytes(),
    );
    let bad = scheme.compute(
        &Secret::from_string("sw-wrong-secret"),
        nonce,
        timestamp,
        body.as_bytes(),
    );
    let post = |signature: &str| {
        Request::post(format!("http://{api}/webhooks"))
            .header("content-type", "application/json")
            .header("origin", ALLOWED_ORIGIN)
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
            .header("webhook-id", nonce)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
    };

    // Refused first (a refused signature claims no nonce), then allowed, then replayed.
    assert_eq!(
        send(&client, post(&bad), body).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(send(&client, post(&good), body).await, StatusCode::OK);
    assert_eq!(
        send(&client, post(&good), body).await,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        spans.tollgate_fields(),
        [
            pairs(&[
                ("tollgate.client_ip", "203.0.113.7"),
                ("tollgate.decision", "allowed"),
                ("tollgate.decision", "refused"),
                ("tollgate.layer", "signature"),
                ("tollgate.code", "signature_invalid"),
            ]),
            pairs(&[
                ("tollgate.client_ip", "203.0.113.7"),
                ("tollgate.decision", "allowed"),
                ("tollgate.key_id", "sender-2026-01"),
            ]),
            pairs(&[
                ("tollgate.client_ip", "203.0.113.7"),
                ("tollgate.decision", "allowed"),
                ("tollgate.key_id", "sender-2026-01"),
                ("tollgate.decision", "refused"),
                ("tollgate.layer", "replay"),
                ("tollgate.code", "replayed"),
            ]),
        ]
    );
    // No secret, signature or nonce anywhere: not in a span, not in a log line.
    let text = logs.text();
    assert!(text.contains("finished processing request"), "{text}");
    let signature_b64 = |signature: &str| signature.trim_start_matches("v1,").to_owned();
    for secret in [
        OLD_SECRET.to_owned(),
        NEW_SECRET.to_owned(),
        "sw-wrong-secret".to_owned(),
        signature_b64(&good),
        signature_b64(&bad),
        nonce.to_owned(),
    ] {
        assert!(!text.contains(&secret), "{secret} logged:\n{text}");
        assert!(!spans.all_text().contains(&secret), "{secret} in a span");
    }
}
