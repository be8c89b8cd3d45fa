//! [`TokenHeader`]: the service of [`TokenHeaderLayer`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, Request};
use tollgate_core::{BoxError, Upstream};
use tower_service::Service;

use super::cache::{Lookup, Shared};
use super::future::TokenHeaderFuture;
use super::{TokenFetchError, TokenHeaderLayer, TokenProvider};
use crate::secret::{insert_secret, upstream};

/// The service of [`TokenHeaderLayer`]: checks the upstream, then sets the cached token, or
/// waits for a fetch in its [`TokenHeaderFuture`](crate::future::TokenHeaderFuture).
///
/// ```
/// use http::Request;
/// use tollgate_core::{BoxError, Secret};
/// use tollgate_headers::{Token, TokenHeader, TokenHeaderLayer, Upstream};
/// use tower::{ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// let refresh = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t0k3n"))) };
/// let layer = TokenHeaderLayer::new("x-partner-token".parse()?, refresh, Upstream::transak());
/// let client = service_fn(|request: Request<()>| async move {
///     Ok::<_, BoxError>(request.headers().clone())
/// });
/// let client = TokenHeader::new(client, &layer);
/// let request = Request::get("https://api-gateway.transak.com/partners/api/v2/orders").body(())?;
/// assert_eq!(client.oneshot(request).await?["x-partner-token"], "t0k3n");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct TokenHeader<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> TokenHeader<S> {
    /// Wraps `inner` with the configuration of `layer` (sharing its cache).
    pub fn new(inner: S, layer: &TokenHeaderLayer) -> Self {
        Self {
            inner,
            shared: Arc::clone(&layer.shared),
        }
    }

    /// A layer setting `name` from `provider`, sent only to `upstream` (same as
    /// [`TokenHeaderLayer::new`]).
    pub fn layer(
        name: HeaderName,
        provider: impl TokenProvider,
        upstream: Upstream,
    ) -> TokenHeaderLayer {
        TokenHeaderLayer::new(name, provider, upstream)
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for TokenHeader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenHeader")
            .field("inner", &self.inner)
            .field("config", &self.shared)
            .finish()
    }
}

impl<S, B> Service<Request<B>> for TokenHeader<S>
where
    S: Service<Request<B>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = TokenHeaderFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let shared = &self.shared;
        let name = &shared.config.name;
        if let Err(error) = upstream::check(
            &shared.config.upstreams,
            name,
            request.uri(),
            request.headers(),
        ) {
            return TokenHeaderFuture::refused(error);
        }
        if shared.in_own_fetch() {
            tracing::warn!(
                target: "tollgate",
                layer = "token_header",
                header = %name,
                "request from inside the layer's own token fetch refused"
            );
            return TokenHeaderFuture::refused(shared.unavailable(TokenFetchError::Reentrant));
        }
        let ticket = match shared.lookup() {
            Lookup::Fresh(value) => {
                insert_secret(&mut request, name, value);
                return TokenHeaderFuture::calling(self.inner.call(request));
            }
            Lookup::Wait(ticket) => ticket,
            Lookup::Refused(error) => return TokenHeaderFuture::refused(error),
        };
        // Keep the ready service for this request; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        TokenHeaderFuture::fetching(ticket, ready, request)
    }
}
