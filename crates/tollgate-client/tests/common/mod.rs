//! Helpers shared by this crate's integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use tollgate_client::{Attempt, TlsConfig};
use tollgate_core::{BoxError, BufferedBody};
use tollgate_test_support::tls::TestPki;
use tower::{Layer, Service};

/// Trusts the test CA only.
pub fn trust(pki: &TestPki) -> TlsConfig {
    TlsConfig::new()
        .roots_only()
        .add_root_pem(pki.ca_pem.as_bytes())
        .unwrap()
}

/// `https://127.0.0.1:<port>` (the test leaves name 127.0.0.1).
pub fn url(server: &tollgate_test_support::tls::HttpsServer) -> String {
    format!("https://127.0.0.1:{}", server.addr().port())
}

pub fn empty() -> Full<Bytes> {
    Full::new(Bytes::new())
}

pub fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(empty()).unwrap()
}

pub fn post(uri: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

pub fn respond(status: u16) -> Response<Bytes> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .body(Bytes::new())
        .unwrap()
}

/// A stand-in for a provider's signing layer: on every pass it counts, and stamps the
/// request with `x-stamp: <count>` and `x-attempt: <Attempt>`.
#[derive(Clone, Default)]
pub struct Stamp {
    pub count: Arc<AtomicUsize>,
    pub attempts: Arc<Mutex<Vec<u32>>>,
}

impl Stamp {
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn attempts(&self) -> Vec<u32> {
        self.attempts.lock().unwrap().clone()
    }
}

impl<S> Layer<S> for Stamp {
    type Service = StampService<S>;
    fn layer(&self, inner: S) -> StampService<S> {
        StampService {
            inner,
            stamp: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct StampService<S> {
    inner: S,
    stamp: Stamp,
}

impl<S> Service<Request<BufferedBody>> for StampService<S>
where
    S: Service<Request<BufferedBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<BufferedBody>) -> S::Future {
        let count = self.stamp.count.fetch_add(1, Ordering::SeqCst) + 1;
        let attempt = request.extensions().get::<Attempt>().map_or(0, |a| a.get());
        self.stamp.attempts.lock().unwrap().push(attempt);
        request
            .headers_mut()
            .insert("x-stamp", HeaderValue::from(count));
        request
            .headers_mut()
            .insert("x-attempt", HeaderValue::from(attempt));
        self.inner.call(request)
    }
}

/// A layer that refuses every request, like a signing layer that cannot sign.
#[derive(Clone)]
pub struct RefuseLayer;

#[derive(Debug, PartialEq, Eq)]
pub struct CannotSign;

impl fmt::Display for CannotSign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot sign")
    }
}

impl std::error::Error for CannotSign {}

impl<S> Layer<S> for RefuseLayer {
    type Service = Refuse;
    fn layer(&self, _inner: S) -> Refuse {
        Refuse
    }
}

#[derive(Clone)]
pub struct Refuse;

impl Service<Request<BufferedBody>> for Refuse {
    type Response = Response<hyper::body::Incoming>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<BufferedBody>) -> Self::Future {
        std::future::ready(Err(Box::new(CannotSign)))
    }
}

/// Records what a server saw: a header's values in order.
#[derive(Clone, Default)]
pub struct Seen(pub Arc<Mutex<Vec<String>>>);

impl Seen {
    pub fn push(&self, value: String) {
        self.0.lock().unwrap().push(value);
    }
    pub fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

pub fn header(request: &Request<Bytes>, name: &str) -> String {
    request
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}
