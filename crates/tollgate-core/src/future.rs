//! The two futures most tollgate layers return, written once.
//!
//! - [`OutboundFuture`]: a client-side layer either refused the request before it was sent
//!   (a typed error, boxed) or passed it on (the inner service's future, its error boxed).
//! - [`InboundFuture`]: a server-side layer either answered itself (a rejection, ready at
//!   once) or passed the request on (the inner service's future, its body wrapped in
//!   [`ResponseBody`]).
//!
//! Each layer crate names its futures in its own `future` module, `<Service>Future`; where a
//! layer needs nothing more, that name is an alias of one of these two.
//!
//! # Polling after completion
//!
//! Every tollgate future follows one rule, the one of `futures::future::Fuse`: once it has
//! returned `Poll::Ready`, polling it again returns `Poll::Pending` (and registers no waker).
//! It never panics and never answers twice. An executor never does this; the rule only decides
//! what a buggy caller sees.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use crate::BoxError;
use crate::response::ResponseBody;

pin_project! {
    /// The future of a client-side layer: the refusal `E`, ready at once, or the inner
    /// service's future. Both errors come out boxed, as tower's client stacks expect, so the
    /// caller can `downcast_ref::<E>()`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tollgate_core::future::OutboundFuture;
    ///
    /// #[derive(Debug)]
    /// struct Refused;
    /// impl std::fmt::Display for Refused {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("refused")
    ///     }
    /// }
    /// impl std::error::Error for Refused {}
    ///
    /// let refused = OutboundFuture::<std::future::Ready<Result<(), std::io::Error>>, _>::refused(Refused);
    /// let error = refused.await.unwrap_err();
    /// assert!(error.downcast_ref::<Refused>().is_some());
    ///
    /// let passed = OutboundFuture::<_, Refused>::inner(std::future::ready(Ok::<_, std::io::Error>(7)));
    /// assert_eq!(passed.await.unwrap(), 7);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct OutboundFuture<F, E> {
        #[pin]
        state: OutboundState<F, E>,
    }
}

pin_project! {
    #[project = OutboundProj]
    enum OutboundState<F, E> {
        Refused { error: Option<E> },
        Inner { #[pin] future: F },
        Done,
    }
}

impl<F, E> OutboundFuture<F, E> {
    /// A request refused before it was sent.
    pub fn refused(error: E) -> Self {
        Self {
            state: OutboundState::Refused { error: Some(error) },
        }
    }

    /// A request passed on to the inner service.
    pub fn inner(future: F) -> Self {
        Self {
            state: OutboundState::Inner { future },
        }
    }

    /// Whether this future has answered (every later poll is `Pending`).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, OutboundState::Done)
    }
}

impl<F, E, T, FE> Future for OutboundFuture<F, E>
where
    F: Future<Output = Result<T, FE>>,
    FE: Into<BoxError>,
    E: std::error::Error + Send + Sync + 'static,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        let output = match state.as_mut().project() {
            OutboundProj::Refused { error } => match error.take() {
                Some(error) => Err(error.into()),
                None => return Poll::Pending,
            },
            OutboundProj::Inner { future } => ready!(future.poll(cx)).map_err(Into::into),
            OutboundProj::Done => return Poll::Pending,
        };
        state.set(OutboundState::Done);
        Poll::Ready(output)
    }
}

impl<F, E> fmt::Debug for OutboundFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            OutboundState::Refused { .. } => "refused",
            OutboundState::Inner { .. } => "inner",
            OutboundState::Done => "done",
        };
        f.debug_tuple("OutboundFuture").field(&state).finish()
    }
}

pin_project! {
    /// The future of a server-side layer: the layer's own answer (a rejection), ready at
    /// once, or the inner service's future. The error is the inner service's: a refusal is a
    /// response, never an error, so the layer fits axum (`Error = Infallible`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use bytes::Bytes;
    /// use http::Response;
    /// use http_body_util::{BodyExt, Full};
    /// use tollgate_core::future::InboundFuture;
    ///
    /// type Inner = std::future::Ready<Result<Response<Full<Bytes>>, std::convert::Infallible>>;
    /// let own = InboundFuture::<Inner>::rejected(Response::new(Bytes::from_static(b"{}")));
    /// let body = own.await.unwrap().into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(body, "{}");
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct InboundFuture<F> {
        #[pin]
        state: InboundState<F>,
    }
}

pin_project! {
    #[project = InboundProj]
    enum InboundState<F> {
        Rejected { response: Option<Response<Bytes>> },
        Inner { #[pin] future: F },
        Done,
    }
}

impl<F> InboundFuture<F> {
    /// The layer's own answer.
    pub fn rejected(response: Response<Bytes>) -> Self {
        Self {
            state: InboundState::Rejected {
                response: Some(response),
            },
        }
    }

    /// The request passed on to the inner service.
    pub fn inner(future: F) -> Self {
        Self {
            state: InboundState::Inner { future },
        }
    }

    /// Whether this future has answered (every later poll is `Pending`).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, InboundState::Done)
    }
}

impl<F, B, E> Future for InboundFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        let output = match state.as_mut().project() {
            InboundProj::Rejected { response } => match response.take() {
                Some(response) => Ok(response.map(ResponseBody::own)),
                None => return Poll::Pending,
            },
            InboundProj::Inner { future } => {
                ready!(future.poll(cx)).map(|response| response.map(ResponseBody::inner))
            }
            InboundProj::Done => return Poll::Pending,
        };
        state.set(InboundState::Done);
        Poll::Ready(output)
    }
}

impl<F> fmt::Debug for InboundFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            InboundState::Rejected { .. } => "rejected",
            InboundState::Inner { .. } => "inner",
            InboundState::Done => "done",
        };
        f.debug_tuple("InboundFuture").field(&state).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Future, ready};
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use bytes::Bytes;
    use http::Response;

    use super::{InboundFuture, OutboundFuture};

    #[derive(Debug)]
    struct Refused;
    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("refused")
        }
    }
    impl std::error::Error for Refused {}

    #[test]
    fn a_finished_future_stays_pending() {
        let mut cx = Context::from_waker(Waker::noop());

        let mut refused = pin!(OutboundFuture::<
            std::future::Ready<Result<(), Infallible>>,
            _,
        >::refused(Refused));
        assert!(matches!(
            refused.as_mut().poll(&mut cx),
            Poll::Ready(Err(_))
        ));
        assert!(refused.as_mut().poll(&mut cx).is_pending());

        let mut rejected = pin!(InboundFuture::<
            std::future::Ready<Result<Response<Bytes>, Infallible>>,
        >::rejected(Response::new(Bytes::new())));
        assert!(matches!(
            rejected.as_mut().poll(&mut cx),
            Poll::Ready(Ok(_))
        ));
        assert!(rejected.as_mut().poll(&mut cx).is_pending());

        // `std::future::Ready` panics when polled again: the inner future is never polled twice.
        let mut inner = pin!(InboundFuture::inner(ready(Ok::<_, Infallible>(
            Response::new(Bytes::new())
        ))));
        assert_eq!(format!("{inner:?}"), r#"InboundFuture("inner")"#);
        assert!(matches!(inner.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
        assert!(inner.as_mut().poll(&mut cx).is_pending());
        assert_eq!(format!("{inner:?}"), r#"InboundFuture("done")"#);
        assert!(inner.is_finished());

        let mut passed = pin!(OutboundFuture::<_, Refused>::inner(ready(Ok::<
            _,
            Infallible,
        >(7))));
        assert!(matches!(passed.as_mut().poll(&mut cx), Poll::Ready(Ok(7))));
        assert!(passed.as_mut().poll(&mut cx).is_pending());
    }
}
