//! [`OriginAllowlist`]: the service the layer produces.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN};
use http::{Request, Response};
use tollgate_core::{RejectionResponder, ResponseBody};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::layer::OriginAllowlistLayer;
use crate::policy::{ALLOW_PRIVATE_NETWORK, Decision, Policy, append_vary_origin};

/// Enforces an origin allowlist in front of `S`; built by [`OriginAllowlistLayer`].
///
/// `call` is synchronous: the decision reads only the request line and headers, never the
/// body. A refused request never reaches `S`. Errors of `S` pass through unchanged; refusals
/// are responses (403 with tollgate's JSON by default).
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use tower::{ServiceExt, service_fn};
/// use tollgate_origin::{OriginAllowlist, OriginAllowlistLayer};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let layer = OriginAllowlistLayer::builder()
///     .allow_origin("https://app.example.com")
///     .build()
///     .unwrap();
/// let handler = service_fn(|_req: Request<Full<Bytes>>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
/// });
/// let service = OriginAllowlist::new(handler, &layer);
///
/// let request = Request::post("/api/session")
///     .header("origin", "https://evil.example")
///     .body(Full::default())
///     .unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 403);
/// assert_eq!(response.headers()["vary"], "Origin");
/// # });
/// ```
#[derive(Clone)]
#[must_use]
pub struct OriginAllowlist<S> {
    inner: S,
    policy: Arc<Policy>,
    responder: RejectionResponder,
}

impl<S> OriginAllowlist<S> {
    /// Wraps `inner` with the configuration of `layer`.
    pub fn new(inner: S, layer: &OriginAllowlistLayer) -> Self {
        Self {
            inner,
            policy: Arc::clone(&layer.policy),
            responder: layer.responder.clone(),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for OriginAllowlist<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginAllowlist")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .field("responder", &self.responder)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OriginAllowlist<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let decision =
            self.policy
                .decide(request.method(), request.uri().path(), request.headers());
        match decision {
            Decision::Reject(rejection) => {
                let mut response = self.responder.respond(rejection);
                // A refusal never grants anything, whatever a replaced responder wrote.
                let headers = response.headers_mut();
                headers.remove(ACCESS_CONTROL_ALLOW_ORIGIN);
                headers.remove(ACCESS_CONTROL_ALLOW_CREDENTIALS);
                headers.remove(ALLOW_PRIVATE_NETWORK);
                append_vary_origin(headers);
                ResponseFuture::ready(response)
            }
            Decision::Preflight {
                origin,
                private_network,
            } => ResponseFuture::ready(self.policy.preflight_response(origin, private_network)),
            Decision::Allowed(origin) => ResponseFuture::inner(
                self.inner.call(request),
                Arc::clone(&self.policy),
                Some(origin),
            ),
            Decision::NoOrigin => {
                ResponseFuture::inner(self.inner.call(request), Arc::clone(&self.policy), None)
            }
            Decision::Bypass => ResponseFuture::bypass(self.inner.call(request)),
        }
    }
}
