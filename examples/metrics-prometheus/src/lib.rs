//! tollgate's metrics on a Prometheus endpoint, and its span fields in tower-http's
//! `TraceLayer`.
//!
//! An axum webhook receiver with the inbound stack (origin allowlist, client IP, signature
//! verification, replay guard), and `metrics-exporter-prometheus` installed as the `metrics`
//! recorder. The scrape endpoint `GET /metrics` is served by a **second listener that only
//! binds a loopback address** ([`spawn`] refuses any other): metrics say how many requests
//! were refused and why, which is for the operator's Prometheus, not for the internet. The
//! exporter is built without its own HTTP listener; the app renders it from an axum route.
//!
//! Every request runs inside a `TraceLayer` span that declares tollgate's span fields
//! ([`make_span`]), so the `finished processing request` line of each request says which
//! client IP it came from, which key verified it, and which layer refused it with which
//! code:
//!
//! ```text
//! INFO request{method=POST path=/webhooks tollgate.decision="allowed" tollgate.client_ip=127.0.0.1 tollgate.key_id="partner-1"}: tower_http::trace::on_response: finished processing request latency=0 ms status=200
//! INFO request{method=POST path=/webhooks tollgate.decision="allowed" tollgate.client_ip=127.0.0.1 tollgate.decision="refused" tollgate.layer="signature" tollgate.code="signature_invalid"}: tower_http::trace::on_response: finished processing request latency=0 ms status=401
//! ```
//!
//! ```sh
//! WEBHOOK_SECRET=s3cr3t cargo run -p metrics-prometheus
//! body='{"event":"payout.completed","id":"evt_1"}'
//! sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac s3cr3t -hex | sed 's/^.* //')
//! curl -i http://127.0.0.1:3005/webhooks -H "x-webhook-signature: $sig" -d "$body"
//! curl -s http://127.0.0.1:9105/metrics | grep tollgate_
//! # tollgate_requests_allowed_total{layer="signature"} 1
//! # ...
//! ```
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use http::Request;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tollgate::client_ip::ResolveClientIpLayer;
use tollgate::core::{BoxError, Key, KeyRing, Secret};
use tollgate::origin::OriginAllowlistLayer;
use tollgate::replay::{MemoryNonceStore, ReplayGuardLayer};
use tollgate::signature::{BodyHmac, VerifySignatureLayer};
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

/// The front-end origin the receiver's CORS allowlist admits.
pub const ALLOWED_ORIGIN: &str = "https://app.example.com";

/// The id of the one key of the receiver's ring.
pub const KEY_ID: &str = "partner-1";

/// How long a signed body is remembered: `X-Webhook-Signature` signs no time.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Installs the Prometheus recorder as the process's `metrics` recorder and returns the
/// handle that renders it. Once per process: a second call fails.
///
/// # Errors
///
/// When a recorder is installed already.
pub fn install_recorder() -> Result<PrometheusHandle, BoxError> {
    Ok(PrometheusBuilder::new().install_recorder()?)
}

/// The span of each request, declaring tollgate's span fields
/// (`tollgate_core::metrics::span_field`) so that the layers can fill them in: give it to
/// `TraceLayer::make_span_with`.
pub fn make_span<B>(request: &Request<B>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        tollgate.client_ip = tracing::field::Empty,
        tollgate.key_id = tracing::field::Empty,
        tollgate.decision = tracing::field::Empty,
        tollgate.layer = tracing::field::Empty,
        tollgate.code = tracing::field::Empty,
    )
}

/// The receiver: `POST /webhooks`, `X-Webhook-Signature` (hex HMAC-SHA256 of the body) with
/// `secret` under key id [`KEY_ID`], behind the origin allowlist and the client-IP layer,
/// with the replay guard inside the verifier, all inside a `TraceLayer`.
///
/// # Errors
///
/// A blank secret, or an origin that does not parse.
pub fn app(secret: Secret) -> Result<Router, BoxError> {
    let ring = KeyRing::new(Key::new(KEY_ID, secret));
    let store = MemoryNonceStore::new(10_000);
    let stack = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http().make_span_with(make_span))
        .layer(OriginAllowlistLayer::new([ALLOWED_ORIGIN])?)
        .layer(ResolveClientIpLayer::remote_addr())
        .layer(VerifySignatureLayer::new(
            BodyHmac::x_webhook_signature(),
            ring,
        )?)
        .layer(ReplayGuardLayer::new(store).untimed_retention(RETENTION));
    Ok(Router::new()
        .route("/webhooks", post(|| async { "received" }))
        .layer(stack))
}

/// The scrape endpoint: `GET /metrics`, the exporter's text format.
pub fn metrics_app(handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(handle)
}

async fn render(State(handle): State<PrometheusHandle>) -> String {
    // Histograms are summarised on upkeep; the scrape is a good time for it.
    handle.run_upkeep();
    handle.render()
}

/// The two servers' addresses.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The receiver.
    pub api: SocketAddr,
    /// The scrape endpoint (loopback).
    pub metrics: SocketAddr,
}

/// Binds `api` for [`app`] and `metrics` for [`metrics_app`] and serves both in spawned
/// tasks.
///
/// # Errors
///
/// `metrics` is not a loopback address (the scrape endpoint is never exposed), or a bind
/// failed.
pub async fn spawn(
    app: Router,
    handle: PrometheusHandle,
    api: SocketAddr,
    metrics: SocketAddr,
) -> Result<Bound, BoxError> {
    if !metrics.ip().is_loopback() {
        return Err(format!("the metrics endpoint binds loopback only, not {metrics}").into());
    }
    let api = TcpListener::bind(api).await?;
    let metrics = TcpListener::bind(metrics).await?;
    let bound = Bound {
        api: api.local_addr()?,
        metrics: metrics.local_addr()?,
    };
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(err) = axum::serve(api, app).await {
            tracing::error!("receiver stopped: {err}");
        }
    });
    tokio::spawn(async move {
        if let Err(err) = axum::serve(metrics, metrics_app(handle)).await {
            tracing::error!("metrics endpoint stopped: {err}");
        }
    });
    Ok(bound)
}
