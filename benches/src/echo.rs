//! Inner services for the layer benchmarks: as cheap as a service can be, so the figures
//! are the layers' own cost.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use tower_service::Service;

/// Answers every request with an empty `200 OK` (the request is dropped).
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl<B> Service<Request<B>> for Echo {
    type Response = Response<Empty<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        ready(Ok(Response::new(Empty::new())))
    }
}

/// Returns the request it is given, so a client-side layer's output can be inspected (and
/// dropped outside the timed section).
#[derive(Debug, Clone, Copy, Default)]
pub struct Passthrough;

impl<B> Service<Request<B>> for Passthrough {
    type Response = Request<B>;
    type Error = Infallible;
    type Future = Ready<Result<Request<B>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ready(Ok(request))
    }
}
