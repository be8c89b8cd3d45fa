//! The futures of [`ProviderClient`](crate::ProviderClient) and
//! [`AttemptService`](crate::AttemptService).
//!
//! Both follow tollgate's rule for polling after completion (the one of
//! `futures::future::Fuse`): once a future has returned `Poll::Ready`, polling it again
//! returns `Poll::Pending`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;

use crate::{AttemptError, BoxFuture, CallError};

/// A boxed future that answers once.
struct Once<T>(Option<BoxFuture<T>>);

impl<T> Once<T> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        let Some(future) = self.0.as_mut() else {
            return Poll::Pending;
        };
        let output = std::task::ready!(future.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(output)
    }
}

/// The future of [`ProviderClient`](crate::ProviderClient): the whole call (buffering the
/// body, every attempt and wait), under the deadline.
#[must_use = "futures do nothing unless polled"]
pub struct ProviderClientFuture<ResBody> {
    inner: Once<Result<Response<ResBody>, CallError>>,
}

impl<ResBody> ProviderClientFuture<ResBody> {
    pub(crate) fn new(
        future: impl Future<Output = Result<Response<ResBody>, CallError>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Once(Some(Box::pin(future))),
        }
    }
}

impl<ResBody> Future for ProviderClientFuture<ResBody> {
    type Output = Result<Response<ResBody>, CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.poll(cx)
    }
}

impl<ResBody> fmt::Debug for ProviderClientFuture<ResBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClientFuture")
            .field("done", &self.inner.0.is_none())
            .finish()
    }
}

/// The future of [`AttemptService`](crate::AttemptService): one attempt under the attempt
/// timeout.
#[must_use = "futures do nothing unless polled"]
pub struct AttemptFuture<ResBody> {
    inner: Once<Result<Response<ResBody>, AttemptError>>,
}

impl<ResBody> AttemptFuture<ResBody> {
    pub(crate) fn new(future: BoxFuture<Result<Response<ResBody>, AttemptError>>) -> Self {
        Self {
            inner: Once(Some(future)),
        }
    }
}

impl<ResBody> Future for AttemptFuture<ResBody> {
    type Output = Result<Response<ResBody>, AttemptError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.poll(cx)
    }
}

impl<ResBody> fmt::Debug for AttemptFuture<ResBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptFuture")
            .field("done", &self.inner.0.is_none())
            .finish()
    }
}
