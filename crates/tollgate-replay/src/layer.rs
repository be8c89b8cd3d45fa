//! [`ReplayGuardLayer`] and its service: the tower adapter around [`ReplayGuard`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tollgate_core::{RejectionResponder, RequestTimestamp, ResponseBody};
use tower_layer::Layer;
use tower_service::Service;

use crate::guard::{ReplayError, ReplayGuard};
use crate::store::{Claim, NonceStore, StoreError};

#[derive(Clone)]
struct Config {
    guard: ReplayGuard,
    store: Arc<dyn NonceStore>,
    responder: RejectionResponder,
}

/// Refuses requests outside the timestamp window and requests whose nonce was seen before.
///
/// For each request: [`ReplayGuard::check`] (timestamp, nonce shape), then
/// [`NonceStore::claim`] of the namespaced nonce until `timestamp + tolerance`. Only a
/// request whose claim succeeded reaches the inner service, with a [`RequestTimestamp`] in its
/// extensions. Refusals are answered through a [`RejectionResponder`] (JSON by default,
/// replaceable with [`on_rejection`](ReplayGuardLayer::on_rejection)): 400
/// `timestamp_malformed` / `nonce_malformed`, 401 `timestamp_out_of_window` / `replayed`, 503
/// `store_unavailable` when the store fails (never a silent pass).
///
/// # Security considerations: layer order
///
/// Put the guard **inside** the signature verifier (added after it in a `ServiceBuilder`,
/// which runs layers top to bottom): then only requests whose signature verified claim a nonce,
/// so forged traffic can neither fill the store nor burn a nonce a genuine request will carry.
///
/// ```text
/// ServiceBuilder::new()
///     .layer(body limit)
///     .layer(VerifySignatureLayer / TranzilaVerifyLayer)   // outer: verifies first
///     .layer(ReplayGuardLayer)                             // inner: claims verified nonces
///     .service(handler)
/// ```
///
/// # Example
///
/// ```
/// use axum::{Router, routing::post};
/// use tollgate_replay::{MemoryNonceStore, ReplayGuard, ReplayGuardLayer};
///
/// let app: Router = Router::new()
///     .route("/webhooks", post(|| async { "ok" }))
///     .layer(ReplayGuardLayer::new(
///         ReplayGuard::standard_webhooks(),
///         MemoryNonceStore::new(600_000),
///     ));
/// # let _ = app;
/// ```
#[derive(Clone)]
#[must_use]
pub struct ReplayGuardLayer {
    config: Arc<Config>,
}

impl ReplayGuardLayer {
    /// A guard with these rules, claiming in `store`. To share one store between several
    /// layers, pass clones of an `Arc` of it (or of a [`MemoryNonceStore`](crate::MemoryNonceStore),
    /// whose clones share their table).
    pub fn new(guard: ReplayGuard, store: impl NonceStore) -> Self {
        Self {
            config: Arc::new(Config {
                guard,
                store: Arc::new(store),
                responder: RejectionResponder::json(),
            }),
        }
    }

    /// Answers refusals with `responder` instead of the default JSON.
    pub fn on_rejection(mut self, responder: RejectionResponder) -> Self {
        Arc::make_mut(&mut self.config).responder = responder;
        self
    }

    /// The guard's rules.
    pub fn guard(&self) -> &ReplayGuard {
        &self.config.guard
    }
}

impl<S> Layer<S> for ReplayGuardLayer {
    type Service = ReplayGuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReplayGuardService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

impl fmt::Debug for ReplayGuardLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_config(f.debug_struct("ReplayGuardLayer"), &self.config).finish()
    }
}

fn debug_config<'a, 'b>(
    mut d: fmt::DebugStruct<'a, 'b>,
    config: &Config,
) -> fmt::DebugStruct<'a, 'b> {
    d.field("guard", &config.guard)
        .field("store", &config.store)
        .field("responder", &config.responder);
    d
}

/// The service of [`ReplayGuardLayer`].
///
/// The inner service must be `Clone`: the claim is awaited before the inner service is called,
/// so the ready service travels in the response future.
#[derive(Clone)]
#[must_use]
pub struct ReplayGuardService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> ReplayGuardService<S> {
    /// Wraps `inner` with a guard claiming in `store`.
    pub fn new(inner: S, guard: ReplayGuard, store: impl NonceStore) -> Self {
        ReplayGuardLayer::new(guard, store).layer(inner)
    }

    /// The layer: [`ReplayGuardLayer::new`].
    pub fn layer(guard: ReplayGuard, store: impl NonceStore) -> ReplayGuardLayer {
        ReplayGuardLayer::new(guard, store)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the guard.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for ReplayGuardService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_config(f.debug_struct("ReplayGuardService"), &self.config)
            .field("inner", &self.inner)
            .finish()
    }
}

type OwnedClaim = Pin<Box<dyn Future<Output = Result<Claim, StoreError>> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ReplayGuardService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let config = Arc::clone(&self.config);
        let ticket = match config.guard.check(request.headers(), request.extensions()) {
            Ok(ticket) => ticket,
            Err(err) => {
                return ResponseFuture {
                    state: State::Rejected {
                        error: Some(err),
                        config,
                    },
                };
            }
        };
        request
            .extensions_mut()
            .insert(RequestTimestamp(ticket.timestamp()));
        let store = Arc::clone(&config.store);
        let claim: OwnedClaim =
            Box::pin(async move { store.claim(ticket.key(), ticket.expires_at()).await });
        // The ready service goes into the future; a fresh clone stays here.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            state: State::Claiming {
                claim,
                call: Some((inner, request)),
                config,
            },
        }
    }
}

pin_project! {
    /// The response future of [`ReplayGuardService`].
    pub struct ResponseFuture<S, ReqBody>
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
            error: Option<ReplayError>,
            config: Arc<Config>,
        },
        Claiming {
            #[pin]
            claim: OwnedClaim,
            call: Option<(S, Request<ReqBody>)>,
            config: Arc<Config>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Rejected { error, config } => {
                    let error = error.take().unwrap_or(ReplayError::Misconfigured);
                    return Poll::Ready(Ok(reject(config, &error)));
                }
                StateProj::Claiming {
                    claim,
                    call,
                    config,
                } => {
                    let error = match ready!(claim.poll(cx)) {
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
                            state.set(State::Inner { future });
                        }
                        (Some(error), _) => return Poll::Ready(Ok(reject(config, &error))),
                        (None, None) => {
                            return Poll::Ready(Ok(reject(config, &ReplayError::Misconfigured)));
                        }
                    }
                }
                StateProj::Inner { future } => {
                    return future
                        .poll(cx)
                        .map(|result| result.map(|response| response.map(ResponseBody::inner)));
                }
            }
        }
    }
}

fn reject<B>(config: &Config, error: &ReplayError) -> Response<ResponseBody<B>> {
    config
        .responder
        .respond_with_body::<B>(error.to_rejection())
}

impl<S, ReqBody> fmt::Debug for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
