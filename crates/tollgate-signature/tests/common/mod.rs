//! Helpers shared by the integration tests: the vectors file, an axum server behind
//! `VerifySignatureLayer` on loopback, and `hyper_util` clients.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body as AxumBody;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tollgate_core::{BoxError, BufferedBody, RequestTimestamp, VerifiedSignature};
use tollgate_signature::{SignRequestLayer, VerifySignatureLayer};
use tower::{ServiceBuilder, ServiceExt};

/// The shared vectors, or `None` (with a skip notice) when the file is absent.
pub fn vectors() -> Option<Value> {
    tollgate_test_support::signing_vectors("tollgate-signature vectors")
}

/// A vector's string field.
pub fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field} in {v}"))
}

/// The exact bytes of a vector's payload: the `*_hex` field wins when present.
pub fn payload(v: &Value, field: &str) -> Vec<u8> {
    match v.get(format!("{field}_hex")).and_then(Value::as_str) {
        Some(hex) => hex::decode(hex).unwrap(),
        None => s(v, field).as_bytes().to_vec(),
    }
}

/// The echo handler: what the inner service saw, as JSON.
async fn echo(request: Request<AxumBody>) -> Response<AxumBody> {
    let verified = request.extensions().get::<VerifiedSignature>().cloned();
    let timestamp = request
        .extensions()
        .get::<RequestTimestamp>()
        .map(|t| t.unix_seconds());
    let method = request.method().to_string();
    let uri = request.uri().to_string();
    let headers: serde_json::Map<String, Value> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                Value::from(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            )
        })
        .collect();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let verified = verified.map(|v| {
        json!({
            "scheme": v.scheme(),
            "key_id": v.key_id(),
            "timestamp": v.timestamp(),
            "signature_hex": hex::encode(v.signature()),
            "message_id": v.message_id().map(|id| String::from_utf8_lossy(id).into_owned()),
        })
    });
    let out = json!({
        "verified": verified,
        "request_timestamp": timestamp,
        "method": method,
        "uri": uri,
        "headers": headers,
        "body_hex": hex::encode(&body),
    });
    Response::new(AxumBody::from(out.to_string()))
}

/// Starts an axum server on 127.0.0.1 whose every route is behind `layer`.
pub async fn serve(layer: VerifySignatureLayer) -> SocketAddr {
    let app = Router::new().fallback(echo).layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The body type of the raw (unsigned) client: any body, with or without a length.
pub type AnyBody = BoxBody<Bytes, BoxError>;

/// A `hyper_util` client that sends what it is given.
pub fn raw_client() -> Client<HttpConnector, AnyBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A full body (sent with `Content-Length`).
pub fn full(bytes: impl Into<Bytes>) -> AnyBody {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

/// A body of these chunks with no size hint (sent chunked).
pub fn chunked(chunks: &[&[u8]]) -> AnyBody {
    Chunks::new(chunks).map_err(|e| match e {}).boxed()
}

/// Yields its chunks one by one, with no length known in advance, and counts how often it is
/// polled.
pub struct Chunks {
    chunks: VecDeque<Bytes>,
    polls: Arc<AtomicUsize>,
}

impl Chunks {
    /// A body of copies of `chunks`.
    pub fn new(chunks: &[&[u8]]) -> Self {
        Self {
            chunks: chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect(),
            polls: Arc::default(),
        }
    }

    /// How often the body was polled so far (shared: read it after the body moved).
    pub fn polls(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.polls)
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(self.chunks.pop_front().map(|c| Ok(Frame::data(c))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// What came back: status, headers, body bytes.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.body))
    }

    /// The rejection code of a tollgate JSON rejection.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap().to_owned()
    }
}

async fn answer<B>(response: Response<B>) -> Answer
where
    B: Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// Sends `request` as is.
pub async fn send_raw(request: Request<AnyBody>) -> Answer {
    let response = raw_client().request(request).await.unwrap();
    answer(response).await
}

/// Sends `request` through `SignRequestLayer` on a `hyper_util` client.
pub async fn send_signed(layer: SignRequestLayer, request: Request<AnyBody>) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<BufferedBody>();
    let service = ServiceBuilder::new().layer(layer).service(client);
    let response = service.oneshot(request).await.unwrap();
    answer(response).await
}

/// The exact JSON body tollgate answers a rejection with.
pub fn rejection_json(code: &str, message: &str) -> Bytes {
    Bytes::from(json!({"error": {"code": code, "message": message}}).to_string())
}
