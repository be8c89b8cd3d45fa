use std::net::SocketAddr;

use axum::{Router, http::StatusCode, routing::post};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tollgate::ServiceBuilderExt;
use tollgate::core::{BoxError, Secret};
use tollgate::headers::{HeaderHygieneLayer, Upstream, X_API_KEY};
use tollgate::https::{HttpsConnector, TlsConfig};
use tower::{ServiceBuilder, ServiceExt};

/// Serves the partner API on `listener`: `POST /api/widget-url` asks the provider for a
/// session.
pub async fn serve(listener: tokio::net::TcpListener) -> Result<(), BoxError> {
    // Outbound: the provider's rules over an HTTPS-only hyper_util client (TLS 1.2+,
    // certificates always verified, http:// refused). PROVIDER_CA_PEM adds a private CA to
    // the trusted roots: how the test trusts its local provider mock.
    let base =
        std::env::var("PROVIDER_URL").unwrap_or_else(|_| "https://api-gateway.transak.com".into());
    let mut tls = TlsConfig::new();
    if let Ok(path) = std::env::var("PROVIDER_CA_PEM") {
        tls = tls.add_root_pem(&std::fs::read(path)?)?;
    }
    let provider = ServiceBuilder::new()
        .header_hygiene(HeaderHygieneLayer::server_to_server())
        .secret_header(
            X_API_KEY,
            Secret::from_env("PROVIDER_API_KEY")?,
            Upstream::parse(&base)?,
        )?
        .forward_user_ip()
        .service(HttpsConnector::new(&tls)?.client::<Full<Bytes>>());

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
