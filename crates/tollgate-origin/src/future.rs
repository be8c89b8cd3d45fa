//! The response future of [`OriginAllowlist`](crate::OriginAllowlist).
//!
//! Not an alias of `tollgate_core::future::InboundFuture`: the inner half writes the CORS
//! headers on the inner service's response, and one flat enum keeps the allowed path as fast
//! as a plain inner future (nesting the core future in front of a CORS-writing one cost about
//! a tenth of the layer's time per allowed request). It follows the same rules: the layer's
//! own answer ready at once, the body wrapped in [`ResponseBody`], `Poll::Pending` after
//! completion.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderValue, Response};
use pin_project_lite::pin_project;
use tollgate_core::ResponseBody;

use crate::config::Config;
use crate::policy::append_vary_origin;

pin_project! {
    /// The response future of [`OriginAllowlist`](crate::OriginAllowlist): either the layer's
    /// own answer (a refusal or a preflight), ready at once, or the inner service's future,
    /// whose response gets the CORS headers and `Vary: Origin`.
    ///
    /// After it completed, polling again returns `Poll::Pending`, the rule of every tollgate
    /// future: the inner future is not polled again.
    #[must_use = "futures do nothing unless polled"]
    pub struct OriginAllowlistFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        /// The layer's own answer, `None` once taken.
        Own { response: Option<Response<Bytes>> },
        /// The inner service's future and what to write on its response, `None` once done.
        Inner {
            #[pin]
            future: F,
            headers: Option<Headers>,
        },
    }
}

impl<F> OriginAllowlistFuture<F> {
    /// The layer's own answer.
    pub(crate) fn own(response: Response<Bytes>) -> Self {
        Self {
            state: State::Own {
                response: Some(response),
            },
        }
    }

    /// The inner service's future, its response given the CORS headers of an allowed
    /// `origin` (none when `None`) and `Vary: Origin`.
    pub(crate) fn inner(future: F, config: Arc<Config>, origin: Option<HeaderValue>) -> Self {
        Self::wrap(future, Headers::Cors { config, origin })
    }

    /// The inner service's future for a bypassed path: only `Vary: Origin` is added.
    pub(crate) fn bypass(future: F) -> Self {
        Self::wrap(future, Headers::VaryOnly)
    }

    fn wrap(future: F, headers: Headers) -> Self {
        Self {
            state: State::Inner {
                future,
                headers: Some(headers),
            },
        }
    }
}

impl<F, B, E> Future for OriginAllowlistFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Own { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response.map(ResponseBody::own))),
                None => Poll::Pending,
            },
            StateProj::Inner { future, headers } => {
                if headers.is_none() {
                    return Poll::Pending;
                }
                let result = ready!(future.poll(cx));
                let headers = headers.take();
                let mut response = result?;
                match headers {
                    Some(Headers::Cors { config, origin }) => {
                        config.policy.apply_cors(response.headers_mut(), origin);
                    }
                    Some(Headers::VaryOnly) | None => append_vary_origin(response.headers_mut()),
                }
                Poll::Ready(Ok(response.map(ResponseBody::inner)))
            }
        }
    }
}

impl<F> fmt::Debug for OriginAllowlistFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Own { .. } => "own",
            State::Inner { .. } => "inner",
        };
        f.debug_tuple("OriginAllowlistFuture")
            .field(&state)
            .finish()
    }
}

/// What the layer writes on the inner service's response.
enum Headers {
    /// The CORS headers of an allowed origin (or their removal, for `None`) and `Vary`.
    Cors {
        config: Arc<Config>,
        origin: Option<HeaderValue>,
    },
    /// `Vary: Origin` only (a bypassed path).
    VaryOnly,
}
