//! [`TokenHeaderFuture`]: waits for the token when the cache is stale, then calls the inner
//! service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Request;
use pin_project_lite::pin_project;
use tollgate_core::BoxError;
use tower_service::Service;

use super::cache::Ticket;
use crate::HeaderError;
use crate::secret::insert_secret;

pin_project! {
    /// Response future of [`TokenHeader`](crate::TokenHeader): fetches a token when the
    /// cache is stale (or joins the fetch under way), then calls the inner service; or the
    /// refusal (a [`HeaderError`], boxed). Polled again after it returned `Poll::Ready`, it
    /// returns `Poll::Pending`.
    #[must_use = "futures do nothing unless polled"]
    pub struct TokenHeaderFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Fetching {
            ticket: Ticket,
            pending: Option<(S, Request<B>)>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Refused {
            error: Option<HeaderError>,
        },
        Done,
    }
}

impl<S, B> TokenHeaderFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(super) fn refused(error: HeaderError) -> Self {
        Self {
            state: State::Refused { error: Some(error) },
        }
    }

    pub(super) fn calling(future: S::Future) -> Self {
        Self {
            state: State::Calling { future },
        }
    }

    pub(super) fn fetching(ticket: Ticket, ready: S, request: Request<B>) -> Self {
        Self {
            state: State::Fetching {
                ticket,
                pending: Some((ready, request)),
            },
        }
    }
}

impl<S, B> Future for TokenHeaderFuture<S, B>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let output = ready!(future.poll(cx));
                    this.state.set(State::Done);
                    return Poll::Ready(output.map_err(Into::into));
                }
                StateProj::Refused { error } => match error.take() {
                    Some(error) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(Box::new(error)));
                    }
                    None => State::Done,
                },
                StateProj::Done => return Poll::Pending,
                StateProj::Fetching { ticket, pending } => {
                    let value = ready!(ticket.poll(cx));
                    match (value, pending.take()) {
                        (Ok(value), Some((mut inner, mut request))) => {
                            insert_secret(&mut request, ticket.name(), value);
                            State::Calling {
                                future: inner.call(request),
                            }
                        }
                        (Err(error), _) => State::Refused { error: Some(error) },
                        // Cannot happen: the request leaves `Fetching` with its state.
                        (Ok(_), None) => State::Done,
                    }
                }
            };
            this.state.set(next);
        }
    }
}

impl<S, B> fmt::Debug for TokenHeaderFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Fetching { .. } => "fetching",
            State::Calling { .. } => "calling",
            State::Refused { .. } => "refused",
            State::Done => "done",
        };
        f.debug_tuple("TokenHeaderFuture").field(&state).finish()
    }
}
