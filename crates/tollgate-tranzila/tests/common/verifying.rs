//! What the `TranzilaVerifyLayer` tests share: the published vector `tranzila-ascii-1`, a small
//! nonce store that records its claims (or always fails), and a `send` that reports what the
//! inner service saw.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tollgate_core::{ManualClock, RequestTimestamp, VerifiedSignature};
use tollgate_replay::{Claim, ClaimFuture, NonceStore, StoreError};
use tollgate_tranzila::{TranzilaCredentials, TranzilaVerifyLayer};
use tower::{ServiceBuilder, ServiceExt, service_fn};

pub const APP: &str = "pub_app_key_demo";
pub const SECRET: &str = "private_secret_demo";
pub const TIME: &str = "1700000000";
pub const NONCE_HEX: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627";
pub const TOKEN: &str = "856f5100b954853bf4470826f7eb85376958d000c1a9b5c872b9f5e42dac3b16";

/// A small store for these tests: a map of key to expiry, or always failing.
#[derive(Debug, Default)]
pub struct TestStore {
    pub claims: Mutex<HashMap<Vec<u8>, u64>>,
    pub fail: bool,
}

impl NonceStore for TestStore {
    fn claim<'a>(&'a self, key: &'a [u8], expires_at: u64) -> ClaimFuture<'a> {
        Box::pin(async move {
            if self.fail {
                return Err(StoreError::Unavailable("connection refused".into()));
            }
            let mut claims = self.claims.lock().unwrap();
            if claims.contains_key(key) {
                return Ok(Claim::AlreadySeen);
            }
            claims.insert(key.to_vec(), expires_at);
            Ok(Claim::Claimed)
        })
    }
}

/// A verifier for the vector's credentials claiming in `store`, its clock at `now`.
pub fn layer(store: Arc<TestStore>, now: u64) -> TranzilaVerifyLayer {
    TranzilaVerifyLayer::new(TranzilaCredentials::new(APP, SECRET).unwrap(), store)
        .unwrap()
        .clock(ManualClock::new(now))
}

/// A request with the vector's four headers.
pub fn signed() -> http::request::Builder {
    Request::post("/v1/charge")
        .header("x-tranzila-api-app-key", APP)
        .header("x-tranzila-api-request-time", TIME)
        .header("x-tranzila-api-nonce", NONCE_HEX)
        .header("x-tranzila-api-access-token", TOKEN)
}

/// What came back, and the facts the inner service saw.
pub struct Outcome {
    pub status: StatusCode,
    pub body: String,
    pub verified: Option<VerifiedSignature>,
    pub timestamp: Option<RequestTimestamp>,
}

/// Sends `request` through `layer` to an inner service answering `inner`.
pub async fn send(layer: &TranzilaVerifyLayer, request: Request<Full<Bytes>>) -> Outcome {
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(|request: Request<Full<Bytes>>| async move {
            let mut response = Response::new(Full::new(Bytes::from_static(b"inner")));
            if let Some(v) = request.extensions().get::<VerifiedSignature>() {
                response.extensions_mut().insert(v.clone());
            }
            if let Some(t) = request.extensions().get::<RequestTimestamp>() {
                response.extensions_mut().insert(*t);
            }
            Ok::<_, Infallible>(response)
        }));
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let verified = response.extensions().get::<VerifiedSignature>().cloned();
    let timestamp = response.extensions().get::<RequestTimestamp>().copied();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Outcome {
        status,
        body: String::from_utf8(body.to_vec()).unwrap(),
        verified,
        timestamp,
    }
}

/// The JSON body of a refusal.
pub fn json(code: &str, message: &str) -> String {
    format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#)
}

/// [`layer`] at the vector's time.
pub fn layer_with(store: Arc<TestStore>) -> TranzilaVerifyLayer {
    layer(store, 1_700_000_000)
}
