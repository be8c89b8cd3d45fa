//! The future of [`ReplayGuard`](crate::ReplayGuard): the one claim-then-call future of the
//! workspace (`TranzilaVerifyLayer` runs its claims through it too).
//!
//! Polling after completion returns `Poll::Pending`, as every tollgate future does (see
//! [`tollgate_core::future`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tollgate_core::ResponseBody;
use tower_service::Service;

use crate::guard::{ReplayError, ReplayTicket};
use crate::layer::Config;
use crate::store::{Claim, ClaimId, StoreError};

type OwnedClaim = Pin<Box<dyn Future<Output = (Result<Claim, StoreError>, ReplayTicket)> + Send>>;
type OwnedRelease = Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send>>;

pin_project! {
    /// The response future of [`ReplayGuard`](crate::ReplayGuard): a refusal ready at once, or
    /// the claim, then the inner call, then (when the handling failed) the release of the
    /// claim.
    #[must_use = "futures do nothing unless polled"]
    pub struct ReplayGuardFuture<S, ReqBody>
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
        Claiming {
            #[pin]
            claim: OwnedClaim,
            call: Option<(S, Request<ReqBody>)>,
            config: Arc<Config>,
            id: ClaimId,
        },
        Inner {
            #[pin]
            future: S::Future,
            release: Option<(Arc<Config>, ReplayTicket, ClaimId)>,
        },
        Releasing {
            #[pin]
            release: OwnedRelease,
            output: Option<Result<S::Response, S::Error>>,
        },
        Done,
    }
}

impl<S, ReqBody> ReplayGuardFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    /// The guard's own answer, ready at once; also what a verifier that wraps the guard
    /// answers its own refusals with (tollgate-tranzila's verify layer).
    #[doc(hidden)]
    pub fn rejected(response: Response<Bytes>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    /// Claims `ticket` in the store, then calls the ready `inner` with `request`.
    pub(crate) fn claiming(
        config: Arc<Config>,
        ticket: ReplayTicket,
        inner: S,
        request: Request<ReqBody>,
    ) -> Self {
        let store = Arc::clone(&config.store);
        let id = ClaimId::new();
        let claim: OwnedClaim = Box::pin(async move {
            let outcome = store
                .claim_with_id(ticket.key(), ticket.expires_at(), id)
                .await;
            (outcome, ticket)
        });
        Self {
            state: State::Claiming {
                claim,
                call: Some((inner, request)),
                config,
                id,
            },
        }
    }
}

/// Whether a handling failed in a way its sender retries: the claim is released.
fn handling_failed<B, E>(output: &Result<Response<B>, E>) -> bool {
    match output {
        Ok(response) => {
            response.status().is_server_error()
                || response.status() == StatusCode::TOO_MANY_REQUESTS
        }
        Err(_) => true,
    }
}

impl<S, ReqBody, ResBody> Future for ReplayGuardFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Rejected { response } => {
                    let Some(response) = response.take() else {
                        return Poll::Pending;
                    };
                    state.set(State::Done);
                    return Poll::Ready(Ok(response.map(ResponseBody::own)));
                }
                StateProj::Claiming {
                    claim,
                    call,
                    config,
                    id,
                } => {
                    let (outcome, ticket) = ready!(claim.poll(cx));
                    let error = match outcome {
                        Ok(Claim::Claimed) => None,
                        Ok(Claim::AlreadySeen) => Some(ReplayError::Replayed),
                        Err(err) => {
                            tracing::warn!(target: "tollgate", error = %err, "nonce store failed; request refused");
                            Some(ReplayError::Store(err))
                        }
                    };
                    match (error, call.take()) {
                        (None, Some((mut inner, request))) => {
                            let future = inner.call(request);
                            // Only a message whose body the signature covers may be retried.
                            let release = ticket
                                .releasable()
                                .then(|| (Arc::clone(config), ticket, *id));
                            state.set(State::Inner { future, release });
                        }
                        (Some(error), _) => {
                            let response = config.responder.respond(error.to_rejection());
                            state.set(State::Done);
                            return Poll::Ready(Ok(response.map(ResponseBody::own)));
                        }
                        // Unreachable: the call is taken once, right before leaving this state.
                        (None, None) => {
                            state.set(State::Done);
                            return Poll::Pending;
                        }
                    }
                }
                StateProj::Inner { future, release } => {
                    let output = ready!(future.poll(cx));
                    match release.take() {
                        Some((config, ticket, id)) if handling_failed(&output) => {
                            let release: OwnedRelease =
                                Box::pin(
                                    async move { config.store.release(ticket.key(), id).await },
                                );
                            state.set(State::Releasing {
                                release,
                                output: Some(output),
                            });
                        }
                        _ => {
                            state.set(State::Done);
                            return Poll::Ready(
                                output.map(|response| response.map(ResponseBody::inner)),
                            );
                        }
                    }
                }
                StateProj::Releasing { release, output } => {
                    match ready!(release.poll(cx)) {
                        Ok(true) => tracing::debug!(
                            target: "tollgate",
                            "handling failed; nonce claim released so the sender can retry"
                        ),
                        Ok(false) => tracing::warn!(
                            target: "tollgate",
                            "handling failed but the nonce claim could not be released (the store does not release, or the claim expired); a retry may be refused as replayed"
                        ),
                        Err(err) => tracing::warn!(
                            target: "tollgate",
                            error = %err,
                            "handling failed and releasing the nonce claim failed; a retry will be refused as replayed until the claim expires"
                        ),
                    }
                    let output = output.take();
                    state.set(State::Done);
                    return match output {
                        Some(output) => {
                            Poll::Ready(output.map(|response| response.map(ResponseBody::inner)))
                        }
                        // Unreachable: the output is taken once, right before `Done`.
                        None => Poll::Pending,
                    };
                }
                // Polled after completion: stays pending, never a second answer.
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

impl<S, ReqBody> fmt::Debug for ReplayGuardFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Rejected { .. } => "rejected",
            State::Claiming { .. } => "claiming",
            State::Inner { .. } => "inner",
            State::Releasing { .. } => "releasing",
            State::Done => "done",
        };
        f.debug_tuple("ReplayGuardFuture").field(&state).finish()
    }
}
