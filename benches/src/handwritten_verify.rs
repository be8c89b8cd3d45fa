//! The signature bench's rule written by hand as a small tower middleware, the way a partner
//! would write it without tollgate: a baseline for `VerifySignatureLayer`'s cost that does
//! what the layer must do around the HMAC (read the body, hand the request on, drop it) and
//! nothing more.
//!
//! The body is read with `http_body_util`'s `Limited` and `collect`, the `Payload-Signature`
//! header is hex-decoded with `hex`, the HMAC-SHA256 of the body is keyed and computed with
//! `hmac` + `sha2` as the bench's `raw-hmac` row does and compared with `verify_slice`
//! (constant time); the inner service gets the body back as a `Full<Bytes>`. The future is a
//! boxed `async` block, as `axum::middleware::from_fn` and most hand-written middleware make
//! it. A bad body answers an empty 400, a missing or wrong signature an empty 401. Nothing
//! else that tollgate's layer does is here: no key ring, rotation or expiry, no
//! `Content-Length` check before reading, no body timeout, no duplicate-header refusal, no
//! facts in the request's extensions, no error bodies, metrics or tracing. It is a bench
//! baseline, not middleware to use.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use sha2::Sha256;
use tower_layer::Layer;
use tower_service::Service;

const SIGNATURE: HeaderName = HeaderName::from_static("payload-signature");

/// Wraps a service in [`HandwrittenVerify`] with one HMAC secret and a body limit.
#[derive(Clone, Debug)]
pub struct HandwrittenVerifyLayer {
    secret: Arc<[u8]>,
    limit: usize,
}

impl HandwrittenVerifyLayer {
    /// Verifies `Payload-Signature` (hex HMAC-SHA256 of the body) with `secret`, refusing
    /// bodies over `limit` bytes.
    pub fn new(secret: &[u8], limit: usize) -> Self {
        Self {
            secret: secret.into(),
            limit,
        }
    }
}

impl<S> Layer<S> for HandwrittenVerifyLayer {
    type Service = HandwrittenVerify<S>;

    fn layer(&self, inner: S) -> HandwrittenVerify<S> {
        HandwrittenVerify {
            inner,
            secret: Arc::clone(&self.secret),
            limit: self.limit,
        }
    }
}

/// The hand-written signature check around `S` (see the module docs).
#[derive(Clone, Debug)]
pub struct HandwrittenVerify<S> {
    inner: S,
    secret: Arc<[u8]>,
    limit: usize,
}

/// An empty answer with `status`.
fn refuse<ResBody: Default>(status: StatusCode) -> Response<ResBody> {
    let mut response = Response::new(ResBody::default());
    *response.status_mut() = status;
    response
}

impl<S, B, ResBody> Service<Request<B>> for HandwrittenVerify<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service that was polled ready goes into the future; a clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let secret = Arc::clone(&self.secret);
        let limit = self.limit;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let Ok(collected) = Limited::new(body, limit).collect().await else {
                return Ok(refuse(StatusCode::BAD_REQUEST));
            };
            let body = collected.to_bytes();
            let Some(Ok(tag)) = parts
                .headers
                .get(SIGNATURE)
                .map(|value| hex::decode(value.as_bytes()))
            else {
                return Ok(refuse(StatusCode::UNAUTHORIZED));
            };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&secret) else {
                return Ok(refuse(StatusCode::UNAUTHORIZED));
            };
            mac.update(&body);
            if mac.verify_slice(&tag).is_err() {
                return Ok(refuse(StatusCode::UNAUTHORIZED));
            }
            inner
                .call(Request::from_parts(parts, Full::new(body)))
                .await
        })
    }
}
