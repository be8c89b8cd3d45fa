//! [`ResponseFuture`]: the response future of [`OriginAllowlist`](crate::OriginAllowlist).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderValue, Response};
use pin_project_lite::pin_project;
use tollgate_core::ResponseBody;

use crate::policy::{Policy, append_vary_origin};

pin_project! {
    /// The response future of [`OriginAllowlist`](crate::OriginAllowlist): either the layer's
    /// own answer (a refusal or a preflight), ready at once, or the inner service's future,
    /// whose response gets the CORS headers and `Vary: Origin`.
    ///
    /// Like other futures it must not be polled again after it completed (the layer's own
    /// answer then stays pending; an inner future behaves as that future does).
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner {
            #[pin]
            future: F,
            policy: Option<Arc<Policy>>,
            origin: Option<HeaderValue>,
        },
        Ready {
            response: Option<Response<Bytes>>,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn ready(response: Response<Bytes>) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn inner(future: F, policy: Arc<Policy>, origin: Option<HeaderValue>) -> Self {
        Self {
            kind: Kind::Inner {
                future,
                policy: Some(policy),
                origin,
            },
        }
    }

    pub(crate) fn bypass(future: F) -> Self {
        Self {
            kind: Kind::Inner {
                future,
                policy: None,
                origin: None,
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner {
                future,
                policy,
                origin,
            } => {
                let mut response = ready!(future.poll(cx))?;
                match policy.take() {
                    Some(policy) => policy.apply_cors(response.headers_mut(), origin.take()),
                    None => append_vary_origin(response.headers_mut()),
                }
                Poll::Ready(Ok(response.map(ResponseBody::inner)))
            }
            KindProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response.map(ResponseBody::own))),
                None => Poll::Pending,
            },
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Ready { .. } => "ready",
        };
        f.debug_tuple("ResponseFuture").field(&kind).finish()
    }
}
