//! [`ReplayGuard`]: the service of [`ReplayGuardLayer`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tollgate_core::metrics::LayerName;
use tollgate_core::{RequestTimestamp, ResponseBody};
use tower_service::Service;

use crate::future::ReplayGuardFuture;
use crate::layer::{Config, ReplayGuardLayer};
use crate::store::NonceStore;

/// The service of [`ReplayGuardLayer`]: checks the timestamp and the nonce, claims the nonce,
/// then calls the inner service (see the layer for the rules).
///
/// The inner service must be `Clone`: the claim is awaited before the inner service is called,
/// so the ready service travels in the response future (tower's clone-and-replace pattern).
#[derive(Clone)]
#[must_use]
pub struct ReplayGuard<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> ReplayGuard<S> {
    /// Wraps `inner` with `layer`'s configuration.
    pub fn new(inner: S, layer: &ReplayGuardLayer) -> Self {
        Self {
            inner,
            config: Arc::clone(layer.config()),
        }
    }

    /// The layer: [`ReplayGuardLayer::new`] (the guard reading the `VerifiedSignature`).
    pub fn layer(store: impl NonceStore) -> ReplayGuardLayer {
        ReplayGuardLayer::new(store)
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for ReplayGuard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ReplayGuard");
        self.config.debug_fields(&mut d);
        d.field("inner", &self.inner).finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ReplayGuard<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ReplayGuardFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let ticket = match self
            .config
            .policy
            .check(request.headers(), request.extensions())
        {
            Ok(ticket) => ticket,
            Err(error) => {
                let response = self
                    .config
                    .responder
                    .refuse(LayerName::Replay, error.to_rejection());
                return ReplayGuardFuture::rejected(response);
            }
        };
        if let Some(timestamp) = ticket.timestamp() {
            request.extensions_mut().insert(RequestTimestamp(timestamp));
        }
        // The ready service goes into the future; a fresh clone stays here.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ReplayGuardFuture::claiming(Arc::clone(&self.config), ticket, inner, request)
    }
}
