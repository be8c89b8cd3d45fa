//! A webhook receiver (axum) for three signature schemes, each route behind a body limit,
//! signature verification and a replay guard inside the verifier:
//!
//! | route | scheme | replay protection |
//! |---|---|---|
//! | `POST /webhooks/onekey` | OneKey `Payload-Signature`: hex HMAC-SHA256 of the exact body | the signed body claimed for [`BODY_ONLY_RETENTION`] (7 days): the scheme signs no time, so nothing expires it sooner; beyond that, deduplicate on the event id |
//! | `POST /webhooks/generic` | `X-Webhook-Signature`: hex HMAC-SHA256 of the exact body | as above |
//! | `POST /webhooks/standard` | Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) | ±300 s window and `webhook-id` claimed once, whichever key of the ring verified it |
//!
//! A delivery whose handling fails (5xx) releases its claim, so the sender's retry is
//! accepted. Each route claims in its own namespace, so one sender's ids never collide with
//! another's.
//!
//! The nonce store is in memory by default; with `REDIS_URL` it is Redis, shared by every
//! instance of the receiver. Each verifier holds a [`KeyRing`]: during a rotation the old key
//! still verifies until its `not_after`, then only the new one.
//!
//! Refusals are tollgate's JSON rejections: 401 `signature_missing` / `signature_invalid` /
//! `timestamp_out_of_window` / `replayed`, 400 `signature_malformed`, 413
//! `payload_too_large`, 408 `body_timeout` (the whole body did not arrive within the
//! verifier's body timeout, 10 s by default), 503 `store_full` (memory store) /
//! `store_unavailable`.
//!
//! The secrets ([`SECRET_VARS`]) are required: a receiver started without one refuses to
//! start and names it. Only `--demo` ([`Secrets::Demo`]) fills unset ones with the demo
//! secrets printed below, which anyone can read and so anyone could sign with.
//!
//! The server ([`serve`]) keeps going through accept errors, serves at most
//! [`Limits::max_connections`] connections at once and closes a connection that takes longer
//! than [`Limits::header_read_timeout`] to send its request head.
//!
//! ```sh
//! cargo run -p webhook-receiver -- --demo
//! body='{"event":"payout.completed","id":"evt_1"}'
//! sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac demo-onekey-secret -hex | sed 's/^.* //')
//! curl -i http://127.0.0.1:3002/webhooks/onekey -H 'content-type: application/json' \
//!   -H "payload-signature: $sig" -d "$body"
//! # 200 {"received":true,"scheme":"onekey","keyId":"onekey-1"}
//! curl -i http://127.0.0.1:3002/webhooks/onekey -H 'payload-signature: 0000000000000000000000000000000000000000000000000000000000000000' -d "$body"
//! # 401 {"error":{"code":"signature_invalid",...}}
//! ```
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::routing::post;
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tollgate::core::{
    BoxError, BufferedBody, Key, KeyRing, Secret, SharedClock, SystemClock, VerifiedSignature,
};
use tollgate::replay::{DEFAULT_CAPACITY, MemoryNonceStore, NonceStore, ReplayGuardLayer};
use tollgate::signature::{
    BodyHmac, Scheme, SignRequest, SignRequestLayer, StandardWebhooks, VerifySignatureLayer,
};
use tower::{Layer, ServiceBuilder, ServiceExt};

/// How long a body-only notification (OneKey, `X-Webhook-Signature`) is remembered: 7 days,
/// longer than the senders' retry schedules. Its signature never expires, so this is the whole
/// of the replay protection the scheme allows.
pub const BODY_ONLY_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// The default body limit of the receiver: 64 KiB (notifications are small).
pub const DEFAULT_WEBHOOK_BODY_LIMIT: usize = 64 * 1024;

/// The secret variables, with the demo values `--demo` gives them when unset.
pub const SECRET_VARS: [(&str, &str); 3] = [
    ("ONEKEY_SIGNATURE_SECRET", "demo-onekey-secret"),
    ("WEBHOOK_SECRET", "demo-webhook-secret"),
    (
        "STANDARD_WEBHOOK_SECRET",
        "whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ=",
    ),
];

pub use example_server::Secrets;

/// The secret variables of [`SECRET_VARS`] that `var` finds unset or empty.
pub fn missing_secrets(var: impl Fn(&str) -> Option<String>) -> Vec<&'static str> {
    example_server::missing_vars(SECRET_VARS.iter().map(|(name, _)| *name), var)
}

/// Settings, from the environment with loopback defaults.
#[derive(Clone)]
pub struct Config {
    /// `WEBHOOK_ADDR`, default `127.0.0.1:3002`.
    pub addr: SocketAddr,
    /// `ONEKEY_SIGNATURE_SECRET` (key id `onekey-1`); required (`demo-onekey-secret` with
    /// `--demo`).
    pub onekey: KeyRing,
    /// `WEBHOOK_SECRET` (key id `generic-1`); required (`demo-webhook-secret` with `--demo`).
    pub generic: KeyRing,
    /// `STANDARD_WEBHOOK_SECRET`, a `whsec_` secret (key id `standard-1`); required
    /// (`whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ=` with `--demo`).
    pub standard: KeyRing,
    /// `WEBHOOK_BODY_LIMIT` in bytes, default 64 KiB.
    pub body_limit: usize,
    /// `REDIS_URL`: when set, nonces are claimed in Redis instead of memory.
    pub redis_url: Option<String>,
    /// The clock of the verifiers and the replay guard.
    pub clock: SharedClock,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("onekey", &self.onekey)
            .field("generic", &self.generic)
            .field("standard", &self.standard)
            .field("body_limit", &self.body_limit)
            .field("redis", &self.redis_url.is_some())
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the environment; every secret variable is required ([`Secrets::Required`]).
    pub fn from_env() -> Result<Self, BoxError> {
        Self::from_vars(Secrets::Required, |name| std::env::var(name).ok())
    }

    /// Reads the settings through `var` (the environment in [`Config::from_env`]). With
    /// [`Secrets::Required`], an unset or empty secret variable is an error that names every
    /// missing one; with [`Secrets::Demo`] they take the demo values.
    pub fn from_vars(
        secrets: Secrets,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BoxError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let or = |name: &str, default: &str| var(name).unwrap_or_else(|| default.to_owned());
        secrets.check(&missing_secrets(var))?;
        let secret = |name: &str| {
            let demo = SECRET_VARS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, demo)| *demo);
            or(name, demo)
        };
        let standard = StandardWebhooks::secret_from_whsec(&secret("STANDARD_WEBHOOK_SECRET"))?;
        Ok(Self {
            addr: or("WEBHOOK_ADDR", "127.0.0.1:3002").parse()?,
            onekey: KeyRing::new(Key::new(
                "onekey-1",
                Secret::from_string(secret("ONEKEY_SIGNATURE_SECRET")),
            )),
            generic: KeyRing::new(Key::new(
                "generic-1",
                Secret::from_string(secret("WEBHOOK_SECRET")),
            )),
            standard: KeyRing::new(Key::new("standard-1", standard)),
            body_limit: var("WEBHOOK_BODY_LIMIT")
                .map(|v| v.parse())
                .transpose()?
                .unwrap_or(DEFAULT_WEBHOOK_BODY_LIMIT),
            redis_url: var("REDIS_URL"),
            clock: Arc::new(SystemClock),
        })
    }

    /// The nonce store: Redis when `redis_url` is set, else memory.
    pub fn nonce_store(&self) -> Result<Arc<dyn NonceStore>, BoxError> {
        Ok(match &self.redis_url {
            Some(url) => Arc::new(
                tollgate::replay::RedisNonceStore::builder(url.clone())
                    .clock(self.clock.clone())
                    .build()?,
            ),
            None => {
                Arc::new(MemoryNonceStore::new(DEFAULT_CAPACITY).with_clock(self.clock.clone()))
            }
        })
    }
}

/// A notification the receiver accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The scheme that verified it.
    pub scheme: String,
    /// The key that verified it.
    pub key_id: String,
    /// The exact body.
    pub body: Bytes,
}

/// What the receiver accepted so far.
#[derive(Debug, Clone, Default)]
pub struct Inbox(Arc<Mutex<Vec<Received>>>);

impl Inbox {
    /// Every accepted notification, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many were accepted.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether none was accepted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The receiver's routes, recording accepted notifications in `inbox`.
pub fn app(config: &Config, inbox: Inbox) -> Result<Router, BoxError> {
    let store = config.nonce_store()?;
    let verify = |scheme: BodyHmac, ring: &KeyRing| {
        VerifySignatureLayer::new(scheme, ring.clone()).map(|layer| {
            layer
                .body_limit(config.body_limit)
                .clock(config.clock.clone())
        })
    };
    // Body-only schemes sign no time: the signed body is remembered for a stated retention.
    let body_only = |namespace: &'static str| {
        ReplayGuardLayer::new(Arc::clone(&store))
            .untimed_retention(BODY_ONLY_RETENTION)
            .namespace(namespace)
            .clock(config.clock.clone())
    };
    let onekey = ServiceBuilder::new()
        .layer(verify(BodyHmac::onekey(), &config.onekey)?)
        .layer(body_only("onekey"));
    let generic = ServiceBuilder::new()
        .layer(verify(BodyHmac::x_webhook_signature(), &config.generic)?)
        .layer(body_only("generic"));
    // Standard Webhooks signs its timestamp and id: verify first, then claim the message (its
    // id, never the key that verified it) once.
    let standard = ServiceBuilder::new()
        .layer(
            VerifySignatureLayer::new(StandardWebhooks::new(), config.standard.clone())?
                .body_limit(config.body_limit)
                .clock(config.clock.clone()),
        )
        .layer(
            ReplayGuardLayer::new(store)
                .namespace("standard")
                .clock(config.clock.clone()),
        );
    Ok(Router::new()
        .route("/webhooks/onekey", post(receive).layer(onekey))
        .route("/webhooks/generic", post(receive).layer(generic))
        .route("/webhooks/standard", post(receive).layer(standard))
        .with_state(inbox))
}

async fn receive(
    State(inbox): State<Inbox>,
    Extension(verified): Extension<VerifiedSignature>,
    body: Bytes,
) -> Json<Value> {
    let received = Received {
        scheme: verified.scheme().to_owned(),
        key_id: verified.key_id().to_owned(),
        body,
    };
    let answer = json!({ "received": true, "scheme": received.scheme, "keyId": received.key_id });
    inbox
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(received);
    Json(answer)
}

/// Binds `addr` and serves `app` with the default [`Limits`] in a spawned task; returns the
/// bound address.
pub async fn spawn(addr: SocketAddr, app: Router) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(serve(listener, app, Limits::default()));
    Ok(local)
}

pub use example_server::{Limits, serve};

/// A webhook sender: a `hyper_util` client that signs every request with `scheme` and the
/// signing key of `ring`, reading time from `clock`.
pub type Sender = SignRequest<Client<HttpConnector, BufferedBody>>;

/// Builds a [`Sender`] that signs and sends to `receiver` only (the receiver's
/// `scheme://host:port`); a request to anywhere else fails with
/// `SignError::UpstreamNotAllowed` and is not sent.
///
/// # Errors
///
/// [`ConfigError`](tollgate::signature::ConfigError) when the ring's signing key is blank.
pub fn sender(
    scheme: impl Scheme,
    ring: KeyRing,
    clock: SharedClock,
    receiver: tollgate::signature::Upstream,
) -> Result<Sender, tollgate::signature::ConfigError> {
    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    Ok(SignRequestLayer::new(scheme, ring, receiver)?
        .clock(clock)
        .layer(client))
}

/// Sends `body` as JSON to `url` through `sender`, with extra `headers` (e.g. `webhook-id`),
/// and reads the whole response.
pub async fn send(
    sender: &Sender,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Response<Bytes>, BoxError> {
    let mut builder = Request::post(url).header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = sender
        .clone()
        .oneshot(builder.body(Full::new(body))?)
        .await?;
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(
        parts,
        body.collect().await?.to_bytes(),
    ))
}
