use std::net::SocketAddr;

use axum::{Router, http::StatusCode, routing::post};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tollgate::ServiceBuilderExt;
use tollgate::core::{BoxError, Secret};
use tollgate::headers::{HeaderHygieneLayer, Upstream, X_API_KEY};
use tower::{ServiceBuilder, ServiceExt};

/// Serves the partner API on `listener`: `POST /api/widget-url` asks the provider for a
/// session.
pub async fn serve(listener: tokio::net::TcpListener) -> Result<(), BoxError> {
    // Outbound: a hyper_util client with the provider's rules. `build_http` speaks plain
    // HTTP only, and tollgate ships no HTTPS connector yet: with Transak's own
    // `https://api-gateway.transak.com` every call fails ("invalid URL, scheme is not http",
    // answered 502 below). Until then PROVIDER_URL is an http:// base URL: a mock, or a
    // proxy on your host that opens the TLS connection to the provider.
    let base = std::env::var("PROVIDER_URL").unwrap_or_else(|_| "http://127.0.0.1:8081".into());
    let provider = ServiceBuilder::new()
        .header_hygiene(HeaderHygieneLayer::server_to_server())
        .secret_header(
            X_API_KEY,
            Secret::from_env("PROVIDER_API_KEY")?,
            Upstream::parse(&base)?,
        )?
        .forward_user_ip()
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());

    let url = format!("{}/api/v2/auth/session", base.trim_end_matches('/'));
    let create = move || {
        let (provider, url) = (provider.clone(), url.clone());
        async move {
            let request = Request::post(url)
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap_or_default();
            match provider.oneshot(request).await {
                Ok(response) => response.status(),
                Err(_) => StatusCode::BAD_GATEWAY,
            }
        }
    };

    // Inbound: origin allowlist first, then the client IP from the socket peer (read from
    // axum's `ConnectInfo`: tollgate's `axum` feature).
    let inbound = ServiceBuilder::new()
        .origin_allowlist(["https://app.example.com"])?
        .resolve_client_ip("remote-addr".parse()?);
    let app = Router::new()
        .route("/api/widget-url", post(create))
        .layer(inbound);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

// PROVIDER_API_KEY=... cargo run, then POST http://127.0.0.1:3000/api/widget-url with
// `Origin: https://app.example.com`.
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?).await
}
