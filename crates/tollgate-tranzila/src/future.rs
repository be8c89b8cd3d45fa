//! The futures of this crate's services.
//!
//! Polling after completion returns `Poll::Pending`, as every tollgate future does (see
//! [`tollgate_core::future`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tollgate_core::ResponseBody;
use tollgate_core::future::OutboundFuture;
use tollgate_replay::future::ReplayGuardFuture;
use tower_service::Service;

use crate::error::SignError;

/// The future of [`TranzilaSigning`](crate::TranzilaSigning): the [`SignError`] (boxed; the
/// request was not sent), or the inner call with its error boxed.
pub type TranzilaSigningFuture<F> = OutboundFuture<F, SignError>;

pin_project! {
    /// The future of [`TranzilaVerify`](crate::TranzilaVerify): the verifier's own refusal,
    /// ready at once, or the built-in replay guard's future (the nonce claim, then the inner
    /// call).
    #[must_use = "futures do nothing unless polled"]
    pub struct TranzilaVerifyFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Rejected {
            response: Option<Response<Bytes>>,
        },
        Guarded {
            #[pin]
            future: ReplayGuardFuture<S, ReqBody>,
        },
    }
}

impl<S, ReqBody> TranzilaVerifyFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn rejected(response: Response<Bytes>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    pub(crate) fn guarded(future: ReplayGuardFuture<S, ReqBody>) -> Self {
        Self {
            state: State::Guarded { future },
        }
    }
}

impl<S, ReqBody, ResBody> Future for TranzilaVerifyFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            // Taken once: polled again, it stays pending.
            StateProj::Rejected { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response.map(ResponseBody::own))),
                None => Poll::Pending,
            },
            // Pending after completion by the guard future's own rule.
            StateProj::Guarded { future } => future.poll(cx),
        }
    }
}

impl<S, ReqBody> fmt::Debug for TranzilaVerifyFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Rejected { .. } => f
                .debug_tuple("TranzilaVerifyFuture")
                .field(&"rejected")
                .finish(),
            State::Guarded { future } => {
                f.debug_tuple("TranzilaVerifyFuture").field(future).finish()
            }
        }
    }
}
