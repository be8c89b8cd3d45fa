//! The response future of the synchronous outbound layers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tollgate_core::BoxError;

use crate::HeaderError;

pin_project! {
    /// Response future of [`SecretHeader`](crate::SecretHeader) and
    /// [`RequireHeaders`](crate::RequireHeaders): either the refusal (a [`HeaderError`]) or
    /// the inner service's future, with its error boxed.
    pub struct OutboundFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Refused { error: Option<HeaderError> },
        Inner { #[pin] future: F },
    }
}

impl<F> OutboundFuture<F> {
    pub(crate) fn refused(error: HeaderError) -> Self {
        Self {
            kind: Kind::Refused { error: Some(error) },
        }
    }

    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }
}

impl<F, T, E> Future for OutboundFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Refused { error } => Poll::Ready(Err(match error.take() {
                Some(error) => Box::new(error),
                None => "OutboundFuture polled after completion".into(),
            })),
            KindProj::Inner { future } => future.poll(cx).map_err(Into::into),
        }
    }
}

impl<F> fmt::Debug for OutboundFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Refused { .. } => "refused",
            Kind::Inner { .. } => "inner",
        };
        f.debug_tuple("OutboundFuture").field(&state).finish()
    }
}
