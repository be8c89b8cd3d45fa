//! The futures of this crate's services.
//!
//! - [`ResolveClientIpFuture`]: [`ResolveClientIp`](crate::ResolveClientIp)'s answer, the
//!   rejection or the inner service's future (inside the client-IP task-local scope with
//!   feature `task-local`).
//! - [`IpAllowlistFuture`]: [`IpAllowlist`](crate::IpAllowlist)'s answer, an alias of
//!   [`InboundFuture`].
//! - [`ForwardUserIpFuture`]: [`ForwardUserIp`](crate::ForwardUserIp)'s outbound call, an
//!   alias of [`OutboundFuture`] refusing with [`MissingClientIp`].
//!
//! [`SetPeerAddr`](crate::SetPeerAddr) returns its inner service's future unchanged.
//!
//! Polling any of them after it returned `Poll::Ready` returns `Poll::Pending`, the rule of
//! every tollgate future ([`tollgate_core::future`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tollgate_core::future::{InboundFuture, OutboundFuture};
use tollgate_core::metrics::{self, LayerName};
use tollgate_core::{Rejection, RejectionResponder, ResponseBody};
use tower_service::Service;

use crate::MissingClientIp;

/// The response future of [`IpAllowlist`](crate::IpAllowlist): the 403 (or the refusal of
/// a request without a client IP), or the inner service's future.
pub type IpAllowlistFuture<F> = InboundFuture<F>;

/// The response future of [`ForwardUserIp`](crate::ForwardUserIp): [`MissingClientIp`]
/// (boxed) when there was no client IP to send, or the inner service's future with its error
/// boxed.
pub type ForwardUserIpFuture<F> = OutboundFuture<F, MissingClientIp>;

/// The inner future run inside the client-IP task-local scope.
#[cfg(feature = "task-local")]
type Scoped<F> = tokio::task::futures::TaskLocalFuture<Option<crate::ClientIp>, F>;
/// Without feature `task-local` there is no scope, and the variant holding it is never built.
#[cfg(not(feature = "task-local"))]
type Scoped<F> = F;

pin_project! {
    /// The response future of [`ResolveClientIp`](crate::ResolveClientIp): the rejection, or
    /// the inner service's future, run inside the client-IP task-local scope when the layer
    /// opened one (feature `task-local`, [`ClientIp::current`](crate::ClientIp::current)).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResolveClientIpFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    #[cfg_attr(not(feature = "task-local"), allow(dead_code))]
    enum State<F> {
        // Rejected, or passed on without a scope.
        Plain { #[pin] future: InboundFuture<F> },
        // Passed on inside the task-local scope. Core's future never polls it again once it
        // has answered (tokio's `TaskLocalFuture` would panic).
        Scoped { #[pin] future: InboundFuture<Scoped<F>> },
    }
}

impl<F> ResolveClientIpFuture<F> {
    pub(crate) fn plain(future: InboundFuture<F>) -> Self {
        Self {
            state: State::Plain { future },
        }
    }

    #[cfg(feature = "task-local")]
    pub(crate) fn scoped(future: Scoped<F>) -> Self {
        Self {
            state: State::Scoped {
                future: InboundFuture::inner(future),
            },
        }
    }
}

impl<F, B, E> Future for ResolveClientIpFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Plain { future } => future.poll(cx),
            StateProj::Scoped { future } => future.poll(cx),
        }
    }
}

impl<F> fmt::Debug for ResolveClientIpFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tuple = f.debug_tuple("ResolveClientIpFuture");
        match &self.state {
            State::Plain { future } if future.is_finished() => tuple.field(&"done"),
            State::Scoped { future } if future.is_finished() => tuple.field(&"done"),
            State::Plain { future } => tuple.field(future),
            State::Scoped { .. } => tuple.field(&"scoped"),
        };
        tuple.finish()
    }
}

/// How a server layer of this crate ends `call`: the request goes on to `inner` (`Ok`), or
/// the layer answers the rejection itself through `responder` and `inner` never sees it.
///
/// `layer` names the layer in the metrics: the pass is counted in
/// `tollgate_requests_allowed_total`, the refusal (by the responder) in
/// `tollgate_requests_refused_total`.
pub(crate) fn call_or_reject<S, ReqBody>(
    inner: &mut S,
    mut request: Request<ReqBody>,
    verdict: Result<(), Rejection>,
    responder: &RejectionResponder,
    layer: LayerName,
) -> InboundFuture<S::Future>
where
    S: Service<Request<ReqBody>>,
{
    match verdict {
        Ok(()) => {
            metrics::allowed(layer, request.extensions_mut());
            InboundFuture::inner(inner.call(request))
        }
        Err(rejection) => InboundFuture::rejected(responder.refuse(layer, rejection)),
    }
}
