//! The futures of this crate's services.
//!
//! - [`RequireHttpsFuture`]: [`RequireHttps`](crate::RequireHttps)'s answer: its own (the
//!   refusal or the redirect), ready at once, or the inner service's future, whose response
//!   gets `Strict-Transport-Security` when configured.
//!
//! Polling it after it returned `Poll::Ready` returns `Poll::Pending`, the rule of every
//! tollgate future ([`tollgate_core::future`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::STRICT_TRANSPORT_SECURITY;
use http::{HeaderValue, Response};
use pin_project_lite::pin_project;
use tollgate_core::ResponseBody;
use tollgate_core::future::InboundFuture;

pin_project! {
    /// The response future of [`RequireHttps`](crate::RequireHttps): the layer's own answer
    /// (403 or 308, never with HSTS), ready at once, or the inner service's future, whose
    /// response gets `Strict-Transport-Security` unless it already has one.
    #[must_use = "futures do nothing unless polled"]
    pub struct RequireHttpsFuture<F> {
        #[pin]
        inner: InboundFuture<F>,
        hsts: Option<HeaderValue>,
    }
}

impl<F> RequireHttpsFuture<F> {
    /// The layer's own answer.
    pub(crate) fn own(response: Response<Bytes>) -> Self {
        Self {
            inner: InboundFuture::rejected(response),
            hsts: None,
        }
    }

    /// The inner service's future; `hsts` is added to its response.
    pub(crate) fn inner(future: F, hsts: Option<HeaderValue>) -> Self {
        Self {
            inner: InboundFuture::inner(future),
            hsts,
        }
    }
}

impl<F, B, E> Future for RequireHttpsFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut output = ready!(this.inner.poll(cx));
        if let (Ok(response), Some(hsts)) = (&mut output, this.hsts.take()) {
            response
                .headers_mut()
                .entry(STRICT_TRANSPORT_SECURITY)
                .or_insert(hsts);
        }
        Poll::Ready(output)
    }
}

impl<F> fmt::Debug for RequireHttpsFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequireHttpsFuture")
            .field(&self.inner)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Future, ready};
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use bytes::Bytes;
    use http::{HeaderValue, Response};

    use super::RequireHttpsFuture;

    #[test]
    fn a_finished_future_stays_pending_and_hsts_is_added_once() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut passed = pin!(RequireHttpsFuture::inner(
            ready(Ok::<_, Infallible>(Response::new(Bytes::new()))),
            Some(HeaderValue::from_static("max-age=60")),
        ));
        match passed.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(response)) => {
                assert_eq!(
                    response.headers()["strict-transport-security"],
                    "max-age=60"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(passed.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            format!("{passed:?}"),
            r#"RequireHttpsFuture(InboundFuture("done"))"#
        );

        // The inner service's own HSTS header is kept.
        let mut own_hsts = Response::new(Bytes::new());
        own_hsts.headers_mut().insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=1"),
        );
        let mut kept = pin!(RequireHttpsFuture::inner(
            ready(Ok::<_, Infallible>(own_hsts)),
            Some(HeaderValue::from_static("max-age=60")),
        ));
        match kept.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(response)) => {
                let values: Vec<_> = response
                    .headers()
                    .get_all("strict-transport-security")
                    .iter()
                    .collect();
                assert_eq!(values, ["max-age=1"]);
            }
            other => panic!("{other:?}"),
        }

        let mut own = pin!(RequireHttpsFuture::<
            std::future::Ready<Result<Response<Bytes>, Infallible>>,
        >::own(Response::new(Bytes::new())));
        assert!(matches!(own.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
        assert!(own.as_mut().poll(&mut cx).is_pending());
    }
}
