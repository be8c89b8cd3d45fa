//! A mock of Transak's partner API, served over HTTPS, that enforces what Transak enforces.
//!
//! `POST /partners/api/v2/refresh-token` ([`REFRESH_TOKEN_PATH`]) issues partner access
//! tokens: with the partner's `api-secret` header and `{"apiKey":"..."}` body it answers
//! `{"data":{"accessToken":"...","expiresAt":<unix seconds>}}`, a fresh random token valid for
//! [`MockTransakConfig::token_ttl_secs`] on the mock's clock (Transak's last seven days,
//! [`ACCESS_TOKEN_TTL_SECS`]); a wrong secret or key gets 401.
//!
//! `POST /api/v2/auth/session` answers `{"data":{"widgetUrl":"..."}}` when, in this order:
//!
//! 1. the TCP source IP is in the partner's registered allowlist (else 403);
//! 2. `x-api-key` is present and known (else 401);
//! 3. `access-token` is present and is a token the mock issued that has not expired (else
//!    401);
//! 4. no browser-controlled header (`Origin`, `Referer`, `Cookie`, `Sec-Fetch-*`) is present
//!    (else 400): a backend must not forward them;
//! 5. `x-user-ip` is exactly one valid IPv4 or IPv6 address (else 400 with Transak's message,
//!    "`x-user-ip` must be a valid IPv4 or IPv6 address");
//! 6. the JSON body has `widgetParams.apiKey` (equal to `x-api-key`) and
//!    `widgetParams.referrerDomain` (else 400).
//!
//! Errors have Transak's shape: `{"error":{"statusCode":400,"message":"...","errorCode":1003}}`.
//!
//! The widget URL carries a session id that is single-use and expires five minutes after it is
//! issued, measured on the injected [`Clock`]: `GET /widget?sessionId=<id>` opens it once
//! (200), then answers 410 for a used or expired session and 404 for an unknown one.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use ipnet::IpNet;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tollgate::core::{Clock, SharedClock};

/// Transak's refresh-token API.
pub const REFRESH_TOKEN_PATH: &str = "/partners/api/v2/refresh-token";

/// How long an access token stays valid, as Transak documents: seven days.
pub const ACCESS_TOKEN_TTL_SECS: u64 = 7 * 24 * 3600;

/// How long a widget session stays valid, as Transak documents: five minutes.
pub const SESSION_TTL_SECS: u64 = 300;

/// The exact message Transak answers for a missing or invalid `x-user-ip`.
pub const INVALID_USER_IP_MESSAGE: &str = "`x-user-ip` must be a valid IPv4 or IPv6 address";

/// Error codes of the mock (`errorCode` in the error body).
pub mod error_code {
    /// Missing or unknown `x-api-key`.
    pub const INVALID_API_KEY: u32 = 1001;
    /// Missing, unknown or expired `access-token`.
    pub const INVALID_ACCESS_TOKEN: u32 = 1002;
    /// Wrong `api-secret` (or unknown `apiKey`) on the refresh-token API.
    pub const INVALID_API_SECRET: u32 = 1010;
    /// Missing or invalid `x-user-ip`.
    pub const INVALID_USER_IP: u32 = 1003;
    /// A browser-controlled header reached the API.
    pub const BROWSER_HEADER: u32 = 1004;
    /// The body is not JSON or misses a mandatory widget parameter.
    pub const INVALID_WIDGET_PARAMS: u32 = 1005;
    /// The source IP is not in the partner's allowlist.
    pub const IP_NOT_ALLOWED: u32 = 1006;
    /// Unknown session id.
    pub const SESSION_NOT_FOUND: u32 = 1007;
    /// The session was already used.
    pub const SESSION_USED: u32 = 1008;
    /// The session expired.
    pub const SESSION_EXPIRED: u32 = 1009;
}

/// Settings of the mock.
#[derive(Clone)]
pub struct MockTransakConfig {
    /// Known partner API keys (`x-api-key`).
    pub api_keys: Vec<String>,
    /// The partner API secret (`api-secret` on the refresh-token API).
    pub api_secret: String,
    /// How long an issued access token is accepted, in seconds of [`clock`](Self::clock).
    pub token_ttl_secs: u64,
    /// Source IPs registered by the partner; others get 403.
    pub allowed_sources: Vec<IpNet>,
    /// The mock's clock (session expiry).
    pub clock: SharedClock,
}

impl fmt::Debug for MockTransakConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockTransakConfig")
            .field("api_keys", &self.api_keys.len())
            .field("api_secret", &"[REDACTED]")
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("allowed_sources", &self.allowed_sources)
            .field("clock", &self.clock)
            .finish()
    }
}

/// What the mock saw on the last accepted `POST /api/v2/auth/session`.
#[derive(Debug, Clone)]
pub struct SessionCall {
    /// The `x-user-ip` it received.
    pub user_ip: IpAddr,
    /// The request headers it received (names lower-case).
    pub headers: HeaderMap,
    /// The JSON body it received.
    pub body: Value,
    /// The session id it issued.
    pub session_id: String,
}

#[derive(Debug)]
struct Session {
    issued_at: u64,
    used: bool,
}

#[derive(Default)]
struct Shared {
    sessions: HashMap<String, Session>,
    /// Issued access tokens and when they expire.
    tokens: HashMap<String, u64>,
    tokens_issued: u64,
    last_call: Option<SessionCall>,
    calls: u64,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("sessions", &self.sessions.len())
            .field("tokens", &self.tokens.len())
            .field("tokens_issued", &self.tokens_issued)
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

/// A handle on a running (or routable) mock: its recorded calls and sessions.
#[derive(Debug, Clone)]
pub struct MockTransak {
    config: Arc<MockTransakConfig>,
    shared: Arc<Mutex<Shared>>,
    base_url: Arc<Mutex<String>>,
}

impl MockTransak {
    /// A mock with `config`; [`MockTransak::router`] serves it.
    pub fn new(config: MockTransakConfig) -> Self {
        Self {
            config: Arc::new(config),
            shared: Arc::default(),
            base_url: Arc::new(Mutex::new(String::from("https://127.0.0.1"))),
        }
    }

    /// Binds `addr` and serves the mock over HTTPS (the local PKI of
    /// [`example_server::tls`]) in a spawned task. Returns the bound address; the mock's base
    /// URL is `https://<addr>`, and a client trusts it with
    /// [`example_server::tls::client_tls`].
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        *lock(&self.base_url) = example_server::tls::https_url(local);
        tokio::spawn(example_server::tls::serve_tls(
            listener,
            self.router(),
            crate::Limits::default(),
        ));
        Ok(local)
    }

    /// The routes (needs `ConnectInfo<SocketAddr>`: serve with
    /// `into_make_service_with_connect_info`).
    pub fn router(&self) -> Router {
        Router::new()
            .route(REFRESH_TOKEN_PATH, post(refresh_token))
            .route("/api/v2/auth/session", post(create_session))
            .route("/widget", get(open_widget))
            .with_state(self.clone())
    }

    /// Number of accepted session calls.
    pub fn calls(&self) -> u64 {
        lock(&self.shared).calls
    }

    /// Number of access tokens issued.
    pub fn tokens_issued(&self) -> u64 {
        lock(&self.shared).tokens_issued
    }

    /// The last accepted session call.
    pub fn last_call(&self) -> Option<SessionCall> {
        lock(&self.shared).last_call.clone()
    }

    fn now(&self) -> u64 {
        self.config.clock.now_unix()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Transak's error shape.
pub fn transak_error(status: StatusCode, message: &str, error_code: u32) -> Response {
    (
        status,
        axum::Json(json!({
            "error": {
                "statusCode": status.as_u16(),
                "message": message,
                "errorCode": error_code,
            }
        })),
    )
        .into_response()
}

const BROWSER_HEADERS: [&str; 3] = ["origin", "referer", "cookie"];

/// Parses `x-user-ip` as Transak does: exactly one header holding exactly one IP address.
fn user_ip(headers: &HeaderMap) -> Option<IpAddr> {
    let mut values = headers.get_all("x-user-ip").iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()?.parse().ok()
}

async fn create_session(
    State(mock): State<MockTransak>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let source = canonical(peer.ip());
    if !mock
        .config
        .allowed_sources
        .iter()
        .any(|net| net.contains(&source))
    {
        return transak_error(
            StatusCode::FORBIDDEN,
            "Requests from this IP address are not allowed",
            error_code::IP_NOT_ALLOWED,
        );
    }
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let Some(api_key) = api_key.filter(|key| mock.config.api_keys.iter().any(|k| k == key)) else {
        return transak_error(
            StatusCode::UNAUTHORIZED,
            "Invalid or missing x-api-key",
            error_code::INVALID_API_KEY,
        );
    };
    let now = mock.now();
    let token_ok = headers
        .get("access-token")
        .and_then(|v| v.to_str().ok())
        .and_then(|token| lock(&mock.shared).tokens.get(token).copied())
        .is_some_and(|expires_at| now < expires_at);
    if !token_ok {
        return transak_error(
            StatusCode::UNAUTHORIZED,
            "Invalid or missing access-token",
            error_code::INVALID_ACCESS_TOKEN,
        );
    }
    let browser_header = headers.keys().any(|name| {
        BROWSER_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("sec-fetch-")
    });
    if browser_header {
        return transak_error(
            StatusCode::BAD_REQUEST,
            "Browser headers (Origin, Referer, Cookie, Sec-Fetch-*) must not be forwarded by the partner backend",
            error_code::BROWSER_HEADER,
        );
    }
    let Some(user_ip) = user_ip(&headers) else {
        return transak_error(
            StatusCode::BAD_REQUEST,
            INVALID_USER_IP_MESSAGE,
            error_code::INVALID_USER_IP,
        );
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return transak_error(
            StatusCode::BAD_REQUEST,
            "The body must be JSON",
            error_code::INVALID_WIDGET_PARAMS,
        );
    };
    let params = &body["widgetParams"];
    if params["apiKey"].as_str() != Some(api_key) {
        return transak_error(
            StatusCode::BAD_REQUEST,
            "widgetParams.apiKey is mandatory and must match x-api-key",
            error_code::INVALID_WIDGET_PARAMS,
        );
    }
    if params["referrerDomain"].as_str().is_none_or(str::is_empty) {
        return transak_error(
            StatusCode::BAD_REQUEST,
            "widgetParams.referrerDomain is mandatory",
            error_code::INVALID_WIDGET_PARAMS,
        );
    }
    let Some(session_id) = new_session_id() else {
        return transak_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again later",
            error_code::SESSION_NOT_FOUND,
        );
    };
    let base = lock(&mock.base_url).clone();
    let widget_url = format!("{base}/widget?apiKey={api_key}&sessionId={session_id}");
    {
        let mut shared = lock(&mock.shared);
        shared.sessions.insert(
            session_id.clone(),
            Session {
                issued_at: now,
                used: false,
            },
        );
        shared.calls += 1;
        shared.last_call = Some(SessionCall {
            user_ip,
            headers,
            body,
            session_id,
        });
    }
    axum::Json(json!({ "data": { "widgetUrl": widget_url } })).into_response()
}

/// `POST /partners/api/v2/refresh-token`: `api-secret` and `{"apiKey"}` in, a fresh access
/// token out.
async fn refresh_token(
    State(mock): State<MockTransak>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let secret_ok = headers
        .get("api-secret")
        .is_some_and(|v| constant_time_eq(v.as_bytes(), mock.config.api_secret.as_bytes()));
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let key_ok = body["apiKey"]
        .as_str()
        .is_some_and(|key| mock.config.api_keys.iter().any(|k| k == key));
    if !secret_ok || !key_ok {
        return transak_error(
            StatusCode::UNAUTHORIZED,
            "Invalid api-secret or apiKey",
            error_code::INVALID_API_SECRET,
        );
    }
    let Some(token) = new_session_id() else {
        return transak_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again later",
            error_code::INVALID_API_SECRET,
        );
    };
    let expires_at = mock.now().saturating_add(mock.config.token_ttl_secs);
    {
        let mut shared = lock(&mock.shared);
        shared.tokens.insert(token.clone(), expires_at);
        shared.tokens_issued += 1;
    }
    axum::Json(json!({ "data": { "accessToken": token, "expiresAt": expires_at } })).into_response()
}

/// Compares two secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn open_widget(
    State(mock): State<MockTransak>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let now = mock.now();
    let mut shared = lock(&mock.shared);
    let Some(session) = query
        .get("sessionId")
        .and_then(|id| shared.sessions.get_mut(id))
    else {
        return transak_error(
            StatusCode::NOT_FOUND,
            "Unknown session",
            error_code::SESSION_NOT_FOUND,
        );
    };
    if now > session.issued_at.saturating_add(SESSION_TTL_SECS) {
        return transak_error(
            StatusCode::GONE,
            "The widget session expired",
            error_code::SESSION_EXPIRED,
        );
    }
    if session.used {
        return transak_error(
            StatusCode::GONE,
            "The widget session was already used",
            error_code::SESSION_USED,
        );
    }
    session.used = true;
    axum::Json(json!({ "data": { "status": "opened" } })).into_response()
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn new_session_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
