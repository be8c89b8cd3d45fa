//! A Transak partner backend: an axum server behind tollgate's inbound stack that creates
//! widget URLs through tollgate's ready Transak client ([`TransakClient`]), over HTTPS only.
//!
//! `POST /api/widget-url` (called by the partner's front end) goes through
//! [`TransakInbound`]: the origin allowlist (foreign origins get 403 before the handler runs),
//! then the end user's IP from the configured source, then an optional IP allowlist. The
//! handler calls Transak's Create Widget URL API, `POST /api/v2/auth/session`, with
//! `widgetParams` (`apiKey`, `referrerDomain` and the browser's parameters) through
//! [`TransakClient`]: HTTPS only with certificates verified, a deadline, browser headers
//! stripped, `x-api-key` and `access-token` added for the configured upstream only,
//! `x-user-ip` set from the inbound request's client IP. The `access-token` comes from
//! [`RefreshToken`], a `TokenProvider` calling Transak's refresh-token API with the partner
//! API secret; the client caches it until a minute before its `expiresAt` and then fetches a
//! new one. It answers `{"widgetUrl":"..."}`.
//!
//! When Transak refuses a call, the browser gets tollgate's own 502
//! `{"error":{"code":"provider_error","message":"the payment provider refused the request"}}`
//! and the provider's status and error go to the log only: its messages describe the
//! partner's credentials and allowlist, which are none of the browser's business.
//!
//! `TRANSAK_API_URL`, `TRANSAK_API_KEY` and `TRANSAK_API_SECRET` are required
//! ([`REQUIRED_VARS`]); a partner started without one refuses to start and names it. Only
//! `--demo` ([`Secrets::Demo`]) fills them in: the published demo key and secret, and, without
//! `TRANSAK_API_URL`, a [`mock::MockTransak`] (which enforces what Transak enforces) served
//! over HTTPS with a local test CA that the partner's client trusts
//! ([`example_server::tls`]); certificate checks are never turned off.
//!
//! [`serve`] keeps going through accept errors, serves at most [`Limits::max_connections`]
//! connections at once and closes a connection that takes longer than
//! [`Limits::header_read_timeout`] to send its request head.
//!
//! ```sh
//! cargo run -p transak-partner -- --demo
//! curl -i -X POST http://127.0.0.1:3000/api/widget-url \
//!   -H 'origin: http://localhost:5173' -H 'content-type: application/json' \
//!   -d '{"cryptoCurrencyCode":"ETH"}'
//! # 200 {"widgetUrl":"https://127.0.0.1:3001/widget?apiKey=...&sessionId=..."}
//! curl -i -X POST http://127.0.0.1:3000/api/widget-url -H 'origin: https://evil.example'
//! # 403 {"error":{"code":"origin_not_allowed",...}}
//! ```
#![forbid(unsafe_code)]

pub mod mock;

pub use example_server::{Limits, serve as serve_with};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderName, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tollgate::client::{CallError, ClientBuilder, ProviderClient, TlsConfig};
use tollgate::client_ip::{ClientIpSource, IpAllowlistLayer, IpRanges, ResolveClientIpLayer};
use tollgate::core::{BoxError, Clock, Secret, SharedClock, SystemClock};
use tollgate::headers::{
    HeaderHygieneLayer, SecretHeaderLayer, Token, TokenFuture, TokenProvider, Upstream,
};
use tollgate::origin::OriginAllowlistLayer;
use tollgate::transak::{TransakClient, TransakInbound};
use tower::{ServiceBuilder, ServiceExt};

/// The path of Transak's Create Widget URL API.
pub const SESSION_PATH: &str = "/api/v2/auth/session";

/// The variables a real deployment must set, with the values `--demo` gives them when unset
/// (an empty `TRANSAK_API_URL` means "start the mock").
pub const REQUIRED_VARS: [(&str, &str); 3] = [
    ("TRANSAK_API_URL", ""),
    ("TRANSAK_API_KEY", "demo-partner-api-key"),
    ("TRANSAK_API_SECRET", "demo-partner-api-secret"),
];

pub use example_server::Secrets;

/// The [`REQUIRED_VARS`] that `var` finds unset or empty.
pub fn missing_vars(var: impl Fn(&str) -> Option<String>) -> Vec<&'static str> {
    example_server::missing_vars(REQUIRED_VARS.iter().map(|(name, _)| *name), var)
}

/// How long the partner backend waits for Transak's whole answer: 10 seconds.
pub const PROVIDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The most of Transak's answer the backend reads: 64 KiB.
pub const PROVIDER_BODY_LIMIT: usize = 64 * 1024;

/// Settings, from the environment with loopback defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TRANSAK_PARTNER_ADDR`, default `127.0.0.1:3000`.
    pub addr: SocketAddr,
    /// `TRANSAK_API_URL`: Transak's base URL (`https://api-gateway.transak.com`); required.
    /// `None` (unset, with `--demo` only) means "start the mock on `TRANSAK_MOCK_ADDR` and
    /// call it".
    pub transak_url: Option<String>,
    /// `TRANSAK_MOCK_ADDR`, default `127.0.0.1:3001`.
    pub mock_addr: SocketAddr,
    /// `TRANSAK_API_KEY` (public: it is in widget URLs); required (`demo-partner-api-key`
    /// with `--demo`).
    pub api_key: String,
    /// `TRANSAK_API_SECRET`, what the refresh-token API takes to issue access tokens;
    /// required (`demo-partner-api-secret` with `--demo`).
    pub api_secret: Secret,
    /// The roots the client to Transak trusts: Mozilla's ([`TlsConfig::new`], the default).
    /// `main` trusts the local test CA instead when it starts the mock.
    pub tls: TlsConfig,
    /// The clock Transak's `expiresAt` are read on: the system clock, unless the API is a
    /// mock running on a clock of its own (the walkthrough's manual clock). See
    /// [`RefreshToken`].
    pub transak_clock: SharedClock,
    /// `ALLOWED_ORIGINS`: comma-separated front-end origins, default
    /// `http://localhost:5173`.
    pub allowed_origins: Vec<String>,
    /// `ALLOW_HTTP_ORIGINS`: `true` lets `http://` origins into the list (loopback
    /// development); the default is `true` with `--demo` and `false` otherwise.
    pub allow_http_origins: bool,
    /// `CLIENT_IP_SOURCE` in tollgate's grammar, default `remote-addr`; behind Cloudflare
    /// `cloudflare`, behind nginx `rightmost-trusted-range:x-forwarded-for:<nginx ip>`.
    pub client_ip_source: ClientIpSource,
    /// `IP_ALLOWLIST`: optional client ranges allowed to call (`10.0.0.0/8,203.0.113.7`).
    pub ip_allowlist: Option<IpRanges>,
    /// `REFERRER_DOMAIN`: the `widgetParams.referrerDomain`, default `localhost`.
    pub referrer_domain: String,
}

impl Config {
    /// Reads the environment; every [`REQUIRED_VARS`] must be set ([`Secrets::Required`]).
    pub fn from_env() -> Result<Self, BoxError> {
        Self::from_vars(Secrets::Required, |name| std::env::var(name).ok())
    }

    /// Reads the settings through `var` (the environment in [`Config::from_env`]). With
    /// [`Secrets::Required`], an unset or empty required variable is an error that names every
    /// missing one; with [`Secrets::Demo`] they take the demo values.
    pub fn from_vars(
        secrets: Secrets,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BoxError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let or = |name: &str, default: &str| var(name).unwrap_or_else(|| default.to_owned());
        secrets.check(&missing_vars(var))?;
        Ok(Self {
            addr: or("TRANSAK_PARTNER_ADDR", "127.0.0.1:3000").parse()?,
            transak_url: var("TRANSAK_API_URL"),
            mock_addr: or("TRANSAK_MOCK_ADDR", "127.0.0.1:3001").parse()?,
            api_key: or("TRANSAK_API_KEY", "demo-partner-api-key"),
            api_secret: Secret::from_string(or("TRANSAK_API_SECRET", "demo-partner-api-secret")),
            tls: TlsConfig::new(),
            transak_clock: Arc::new(SystemClock),
            allowed_origins: or("ALLOWED_ORIGINS", "http://localhost:5173")
                .split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            // Plain-http front ends only for local development: on by default with --demo.
            allow_http_origins: or(
                "ALLOW_HTTP_ORIGINS",
                if secrets == Secrets::Demo {
                    "true"
                } else {
                    "false"
                },
            ) == "true",
            client_ip_source: or("CLIENT_IP_SOURCE", "remote-addr").parse()?,
            ip_allowlist: var("IP_ALLOWLIST").map(|v| v.parse()).transpose()?,
            referrer_domain: or("REFERRER_DOMAIN", "localhost"),
        })
    }

    /// The inbound stack these settings describe.
    pub fn inbound(&self) -> Result<TransakInbound, BoxError> {
        let origins = OriginAllowlistLayer::builder()
            .allow_origins(self.allowed_origins.iter().cloned())
            .allow_http_origins(self.allow_http_origins)
            .allow_methods([http::Method::POST])
            .allow_headers(["content-type"])
            .max_age(std::time::Duration::from_secs(600))
            .build()?;
        let inbound = TransakInbound::from_layers(
            origins,
            ResolveClientIpLayer::new(self.client_ip_source.clone()),
        );
        Ok(match &self.ip_allowlist {
            Some(ranges) => inbound.ip_allowlist(IpAllowlistLayer::new(ranges.clone())),
            None => inbound,
        })
    }
}

/// The header carrying the partner API secret on Transak's refresh-token API.
pub const API_SECRET_HEADER: HeaderName = HeaderName::from_static("api-secret");

/// A [`TokenProvider`] for Transak's partner `access-token`: `POST
/// /partners/api/v2/refresh-token` with the `api-secret` header and `{"apiKey":"..."}`, read
/// from `{"data":{"accessToken":"...","expiresAt":<unix seconds>}}`.
///
/// The refresh call goes through a client of its own (HTTPS only, the `api-secret` header
/// pinned to Transak's upstream, no `access-token` layer: a refresh never waits for itself).
/// `expiresAt` is read on `transak_clock` and turned into a lifetime from now on the system
/// clock, which is what the client's token cache runs on: identical for the real Transak
/// (both clocks are the system's), and right for a mock on a manual clock.
#[derive(Clone)]
pub struct RefreshToken {
    client: ProviderClient,
    api_key: Arc<str>,
    transak_clock: SharedClock,
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken")
            .field("client", &self.client)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl RefreshToken {
    /// A provider calling `transak_url`'s refresh-token API with `api_key` and `api_secret`,
    /// trusting `tls`.
    ///
    /// # Errors
    ///
    /// A base URL that is not `https://host[:port]`, a blank secret, a TLS setting that
    /// cannot work.
    pub fn new(
        transak_url: &str,
        api_key: &str,
        api_secret: Secret,
        tls: TlsConfig,
        transak_clock: SharedClock,
    ) -> Result<Self, BoxError> {
        let upstream = Upstream::parse(transak_url)?;
        let layers = ServiceBuilder::new()
            .layer(HeaderHygieneLayer::server_to_server())
            .layer(SecretHeaderLayer::new(
                API_SECRET_HEADER,
                api_secret,
                upstream,
            )?)
            .into_inner();
        let client = ClientBuilder::new("transak-auth")
            .base_url(transak_url)
            .tls(tls)
            .deadline(PROVIDER_TIMEOUT)
            .build(layers)?;
        Ok(Self {
            client,
            api_key: api_key.into(),
            transak_clock,
        })
    }

    async fn fetch(self) -> Result<Token, BoxError> {
        let body = json!({ "apiKey": &*self.api_key }).to_string();
        let request = Request::post(mock::REFRESH_TOKEN_PATH)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let response = self.client.oneshot(request).await?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), PROVIDER_BODY_LIMIT)
            .collect()
            .await?
            .to_bytes();
        if !status.is_success() {
            // The provider's words stay out of the error (they may describe our credentials).
            return Err(format!("the refresh-token API answered {status}").into());
        }
        let json: Value = serde_json::from_slice(&body)?;
        let (Some(token), Some(expires_at)) = (
            json["data"]["accessToken"].as_str(),
            json["data"]["expiresAt"].as_u64(),
        ) else {
            return Err("the refresh-token answer has no accessToken and expiresAt".into());
        };
        let lifetime = expires_at.saturating_sub(self.transak_clock.now_unix());
        let local_expiry = SystemClock.now_unix().saturating_add(lifetime);
        Ok(Token::new(Secret::from_string(token)).expires_at(local_expiry))
    }
}

impl TokenProvider for RefreshToken {
    fn fetch_token(&self) -> TokenFuture {
        Box::pin(self.clone().fetch())
    }
}

/// The client that calls Transak: tollgate's [`TransakClient`] for `config`'s API key, API
/// secret (through [`RefreshToken`]), TLS roots and a [`PROVIDER_TIMEOUT`] deadline.
///
/// # Errors
///
/// A base URL that is not `https://host[:port]`, a blank secret, a TLS setting that cannot
/// work.
pub fn transak_client(config: &Config, transak_url: &str) -> Result<ProviderClient, BoxError> {
    let tokens = RefreshToken::new(
        transak_url,
        &config.api_key,
        config.api_secret.clone(),
        config.tls.clone(),
        config.transak_clock.clone(),
    )?;
    let tls = config.tls.clone();
    Ok(
        TransakClient::builder(transak_url, Secret::from_string(&config.api_key), tokens)
            .configure(|client| client.tls(tls).deadline(PROVIDER_TIMEOUT))
            .build()?,
    )
}

#[derive(Clone)]
struct AppState {
    client: ProviderClient,
    api_key: Arc<str>,
    referrer_domain: Arc<str>,
}

/// The partner app calling Transak at `transak_url`.
pub fn app(config: &Config, transak_url: &str) -> Result<Router, BoxError> {
    let state = AppState {
        client: transak_client(config, transak_url)?,
        api_key: config.api_key.as_str().into(),
        referrer_domain: config.referrer_domain.as_str().into(),
    };
    Ok(Router::new()
        .route("/api/widget-url", post(create_widget_url))
        .with_state(state)
        .layer(config.inbound()?))
}

/// Serves `app` on `listener` with the default [`Limits`], forever (with the socket peer
/// available to the client-IP layer). See [`serve_with`].
pub async fn serve(listener: TcpListener, app: Router) -> std::io::Result<()> {
    serve_with(listener, app, Limits::default()).await;
    Ok(())
}

/// Binds `addr` and serves `app` in a spawned task; returns the bound address.
pub async fn spawn(addr: SocketAddr, app: Router) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(serve_with(listener, app, Limits::default()));
    Ok(local)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// `POST /api/widget-url`: the browser's widget parameters in, a widget URL out.
async fn create_widget_url(State(state): State<AppState>, body: Bytes) -> Response {
    let mut params = if body.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(params)) => params,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "the body must be a JSON object of widget parameters",
                );
            }
        }
    };
    // The backend owns these two, whatever the browser sent.
    params.insert("apiKey".to_owned(), Value::from(&*state.api_key));
    params.insert(
        "referrerDomain".to_owned(),
        Value::from(&*state.referrer_domain),
    );
    let payload = json!({ "widgetParams": params }).to_string();
    let Ok(request) = Request::post(SESSION_PATH)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(payload)))
    else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "cannot build the request",
        );
    };
    // `x-user-ip` comes from the ClientIp the inbound layer put in this task's scope. The
    // provider gets PROVIDER_TIMEOUT for its answer, body included (the client's deadline
    // covers the head), and at most PROVIDER_BODY_LIMIT bytes of it are read.
    let call = async {
        let response = state.client.clone().oneshot(request).await?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), PROVIDER_BODY_LIMIT)
            .collect()
            .await?
            .to_bytes();
        Ok::<_, BoxError>((status, body))
    };
    let timed_out = |err: &BoxError| {
        err.downcast_ref::<CallError>()
            .is_some_and(CallError::is_timeout)
    };
    let (status, body) = match tokio::time::timeout(PROVIDER_TIMEOUT, call).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) if !timed_out(&err) => {
            tracing::error!(%err, "Transak call failed");
            return error(
                StatusCode::BAD_GATEWAY,
                "provider_call_failed",
                "the call to Transak could not be made",
            );
        }
        Ok(Err(_)) | Err(_) => {
            tracing::error!(timeout = ?PROVIDER_TIMEOUT, "Transak did not answer in time");
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                "provider_timeout",
                "the payment provider did not answer in time",
            );
        }
    };
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match json["data"]["widgetUrl"].as_str() {
        Some(url) if status.is_success() => axum::Json(json!({ "widgetUrl": url })).into_response(),
        _ => {
            // The provider's words (about our credentials, our allowlist, ...) go to the log,
            // never to the browser: it gets a stable code of ours.
            tracing::warn!(
                %status,
                provider_error = %json["error"],
                "Transak refused the widget URL call"
            );
            error(
                StatusCode::BAD_GATEWAY,
                "provider_error",
                "the payment provider refused the request",
            )
        }
    }
}
