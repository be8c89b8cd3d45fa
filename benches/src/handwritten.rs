//! The whole-stack bench's rules written by hand as one small tower service: the least code a
//! partner could write to enforce what `load.sh` checks, as a floor for the stack's cost.
//!
//! A request passes when its `Origin` is exactly `https://app.example.com` and its client, the
//! rightmost `X-Forwarded-For` address that is not loopback when the peer is loopback (else
//! the peer), is in `203.0.113.0/24`; the answer then gets `Access-Control-Allow-Origin` and
//! `Vary: Origin`. Anything else gets an empty 403. Nothing else that tollgate's stack does is
//! here: no `Sec-Fetch-Site`, preflight or `Forwarded` handling, no error bodies, no metrics,
//! no tracing, no configuration. It is a bench baseline, not middleware to use.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::ConnectInfo;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN, VARY};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

const ALLOWED_ORIGIN: HeaderValue = HeaderValue::from_static("https://app.example.com");
const ORIGIN_VARY: HeaderValue = HeaderValue::from_static("origin");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Wraps a service in [`Handwritten`].
#[derive(Clone, Copy, Debug, Default)]
pub struct HandwrittenLayer;

impl<S> Layer<S> for HandwrittenLayer {
    type Service = Handwritten<S>;

    fn layer(&self, inner: S) -> Handwritten<S> {
        Handwritten { inner }
    }
}

/// The hand-written rules around `S` (see the module docs).
#[derive(Clone, Debug)]
pub struct Handwritten<S> {
    inner: S,
}

/// Whether the request passes the rules.
fn allowed<B>(request: &Request<B>) -> bool {
    if request.headers().get(ORIGIN) != Some(&ALLOWED_ORIGIN) {
        return false;
    }
    let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
        return false;
    };
    let mut client = peer.ip();
    if client.is_loopback() {
        let mut found = None;
        'lines: for line in request.headers().get_all(X_FORWARDED_FOR).iter().rev() {
            let Ok(line) = line.to_str() else {
                return false;
            };
            for hop in line.rsplit(',') {
                let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                    return false;
                };
                if !ip.is_loopback() {
                    found = Some(ip);
                    break 'lines;
                }
            }
        }
        let Some(ip) = found else {
            return false;
        };
        client = ip;
    }
    matches!(client, IpAddr::V4(v4) if v4.octets()[..3] == [203, 0, 113])
}

impl<S, B, ResBody> Service<Request<B>> for Handwritten<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = HandwrittenFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if allowed(&request) {
            HandwrittenFuture::Inner {
                future: self.inner.call(request),
            }
        } else {
            HandwrittenFuture::Refused
        }
    }
}

pin_project! {
    /// The future of [`Handwritten`]: the inner answer with the two CORS headers, or a 403.
    #[project = HandwrittenProj]
    #[derive(Debug)]
    #[allow(missing_docs)] // the field of `Inner`: the inner service's future
    pub enum HandwrittenFuture<F> {
        /// The request passed.
        Inner {
            #[pin]
            future: F,
        },
        /// The request was refused.
        Refused,
    }
}

impl<F, ResBody, E> Future for HandwrittenFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            HandwrittenProj::Inner { future } => {
                let mut response = ready!(future.poll(cx))?;
                let headers = response.headers_mut();
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, ALLOWED_ORIGIN);
                headers.append(VARY, ORIGIN_VARY);
                Poll::Ready(Ok(response))
            }
            HandwrittenProj::Refused => {
                let mut response = Response::new(ResBody::default());
                *response.status_mut() = StatusCode::FORBIDDEN;
                Poll::Ready(Ok(response))
            }
        }
    }
}
