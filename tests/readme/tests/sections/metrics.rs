use axum::Router;
use axum::routing::{get, post};
use http::Request;
use metrics_exporter_prometheus::PrometheusHandle;
use tollgate::client_ip::ResolveClientIpLayer;
use tollgate::core::{BoxError, KeyRingHandle};
use tollgate::signature::{BodyHmac, VerifySignatureLayer};
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

/// `GET /metrics`, for a listener bound to loopback only. `handle` comes from
/// `PrometheusBuilder::new().install_recorder()?`, called once at start-up.
pub fn metrics_app(handle: PrometheusHandle) -> Router {
    Router::new().route("/metrics", get(move || async move { handle.render() }))
}

/// The request span of tower-http's `TraceLayer`, declaring tollgate's span fields.
pub fn make_span<B>(request: &Request<B>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        tollgate.client_ip = tracing::field::Empty,
        tollgate.key_id = tracing::field::Empty,
        tollgate.decision = tracing::field::Empty,
        tollgate.layer = tracing::field::Empty,
        tollgate.code = tracing::field::Empty,
    )
}

/// Nothing to add for the counters: every tollgate layer records into the recorder.
pub fn api(keys: KeyRingHandle) -> Result<Router, BoxError> {
    let stack = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http().make_span_with(make_span))
        .layer(ResolveClientIpLayer::remote_addr())
        .layer(VerifySignatureLayer::new(
            BodyHmac::x_webhook_signature(),
            keys,
        )?);
    Ok(Router::new()
        .route("/webhooks", post(|| async { "received" }))
        .layer(stack))
}
