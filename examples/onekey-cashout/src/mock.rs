//! A mock of OneKey Payments' cashout API, served over HTTPS, that checks every OneKey rule.
//!
//! `POST /api/v3/cashout` ([`crate::CASHOUT_PATH`]) is answered
//! `200 {"status":"PENDING","cashout_id":<n>,"external_id":"..."}` only when, in this order:
//!
//! 1. `Authorization` is exactly `Basic base64(<API Key>:<API Passphrase>)`, compared in
//!    constant time (else 401 [`code::BASIC_AUTH_INVALID`]);
//! 2. a non-blank `User-Agent` is present (else 400 [`code::USER_AGENT_MISSING`]);
//! 3. `Content-Type` is `application/json` (else 400 [`code::CONTENT_TYPE_NOT_JSON`]);
//! 4. `Payload-Signature` is the lowercase hex HMAC-SHA256 of the exact body bytes with the API
//!    Signature (tollgate's `VerifySignatureLayer` with `BodyHmac::onekey()`: 401
//!    `signature_missing` or `signature_invalid`, 413 past its body limit);
//! 5. the body is UTF-8 JSON with a string `external_id` and a positive integer `amount` (else
//!    400 [`code::INVALID_CASHOUT`]).
//!
//! Refusals are `{"error":{"code":"<rule>","message":"..."}}`, naming the failed rule. The
//! handler only runs (and [`MockOneKey::accepted`] only moves) when every rule holds.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;
use tollgate::core::{KeyRing, Secret};
use tollgate::signature::{BodyHmac, VerifySignatureLayer};

use crate::CASHOUT_PATH;

/// The codes of the mock's own refusals (the signature ones are tollgate's).
pub mod code {
    /// `Authorization` is not Basic with the API Key and API Passphrase.
    pub const BASIC_AUTH_INVALID: &str = "basic_auth_invalid";
    /// No `User-Agent`, or a blank one.
    pub const USER_AGENT_MISSING: &str = "user_agent_missing";
    /// `Content-Type` is not `application/json`.
    pub const CONTENT_TYPE_NOT_JSON: &str = "content_type_not_json";
    /// The body is not a cashout: no string `external_id` or no positive integer `amount`.
    pub const INVALID_CASHOUT: &str = "invalid_cashout";
}

/// The credentials the mock accepts: OneKey's API Key, API Passphrase and API Signature.
#[derive(Clone, Debug)]
pub struct MockCredentials {
    /// The API Key (the Basic auth user).
    pub api_key: Secret,
    /// The API Passphrase (the Basic auth password).
    pub api_passphrase: Secret,
    /// The API Signature (the `Payload-Signature` HMAC key).
    pub api_signature: Secret,
}

#[derive(Debug, Default)]
struct Shared {
    cashouts: Mutex<Vec<Value>>,
}

/// The mock: its credentials and the cashouts it accepted.
#[derive(Debug, Clone)]
pub struct MockOneKey {
    credentials: MockCredentials,
    shared: Arc<Shared>,
}

#[derive(Clone)]
struct Rules {
    /// `Basic base64(key:passphrase)`.
    authorization: Secret,
}

impl MockOneKey {
    /// A mock accepting `credentials`.
    pub fn new(credentials: MockCredentials) -> Self {
        Self {
            credentials,
            shared: Arc::default(),
        }
    }

    /// The routes: the rule checks, then the signature verification, then the handler.
    ///
    /// # Errors
    ///
    /// A blank API Signature (the verify layer refuses it).
    pub fn router(&self) -> Result<Router, tollgate::signature::ConfigError> {
        let rules = Rules {
            authorization: basic_authorization(
                &self.credentials.api_key,
                &self.credentials.api_passphrase,
            ),
        };
        let verify = VerifySignatureLayer::new(
            BodyHmac::onekey(),
            KeyRing::single(self.credentials.api_signature.clone()),
        )?;
        Ok(Router::new()
            .route(CASHOUT_PATH, post(create_cashout))
            .with_state(Arc::clone(&self.shared))
            .layer(verify)
            .layer(middleware::from_fn_with_state(rules, check_rules)))
    }

    /// Binds `addr` and serves over HTTPS (the local PKI of [`example_server::tls`]) in a
    /// spawned task; returns the bound address (the base URL is `https://<addr>`).
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let app = self.router().map_err(std::io::Error::other)?;
        tokio::spawn(example_server::tls::serve_tls(
            listener,
            app,
            example_server::Limits::default(),
        ));
        Ok(local)
    }

    /// How many cashouts passed every rule.
    pub fn accepted(&self) -> usize {
        lock(&self.shared.cashouts).len()
    }

    /// The bodies of the accepted cashouts, in order.
    pub fn cashouts(&self) -> Vec<Value> {
        lock(&self.shared.cashouts).clone()
    }
}

/// `Basic base64(<api_key>:<api_passphrase>)`, the `Authorization` value OneKey expects.
pub fn basic_authorization(api_key: &Secret, api_passphrase: &Secret) -> Secret {
    let mut pair = api_key.expose_secret().to_vec();
    pair.push(b':');
    pair.extend_from_slice(api_passphrase.expose_secret());
    let encoded = base64::engine::general_purpose::STANDARD.encode(&pair);
    Secret::from_string(format!("Basic {encoded}"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `{"error":{"code":..,"message":..}}` with `status`.
fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// Whether the single `Content-Type` is `application/json` (parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().is_ok_and(|text| {
            text.split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
        }),
        _ => false,
    }
}

/// Rules 1 to 3, before the body is read.
async fn check_rules(State(rules): State<Rules>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let authorized = match (authorizations.next(), authorizations.next()) {
        (Some(value), None) => {
            bool::from(value.as_bytes().ct_eq(rules.authorization.expose_secret()))
        }
        _ => false,
    };
    if !authorized {
        return refuse(
            StatusCode::UNAUTHORIZED,
            code::BASIC_AUTH_INVALID,
            "Authorization must be Basic with the API Key and the API Passphrase",
        );
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    if !user_agent {
        return refuse(
            StatusCode::BAD_REQUEST,
            code::USER_AGENT_MISSING,
            "the User-Agent header is mandatory",
        );
    }
    if !is_json(headers) {
        return refuse(
            StatusCode::BAD_REQUEST,
            code::CONTENT_TYPE_NOT_JSON,
            "Content-Type must be application/json",
        );
    }
    next.run(request).await
}

/// Rule 5 and the answer.
async fn create_cashout(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let cashout: Value = std::str::from_utf8(&body)
        .ok()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    let external_id = cashout["external_id"].as_str().map(str::to_owned);
    let amount = cashout["amount"].as_u64().filter(|amount| *amount > 0);
    let (Some(external_id), Some(_)) = (external_id, amount) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            code::INVALID_CASHOUT,
            "a cashout needs a string external_id and a positive integer amount",
        );
    };
    let cashout_id = {
        let mut cashouts = lock(&shared.cashouts);
        cashouts.push(cashout);
        cashouts.len()
    };
    axum::Json(json!({
        "status": "PENDING",
        "cashout_id": cashout_id,
        "external_id": external_id,
    }))
    .into_response()
}
