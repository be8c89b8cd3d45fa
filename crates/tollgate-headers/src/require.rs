//! [`RequireHeadersLayer`]: headers every outbound call must carry.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use http::header::{self, HeaderName};
use tollgate_core::BoxError;
use tower_layer::Layer;
use tower_service::Service;

use crate::HeaderError;
use crate::future::RequireHeadersFuture;

/// Fails an outbound call with [`HeaderError::MissingHeader`] when a required header is
/// absent or empty (only whitespace); the inner service is not called.
///
/// OneKey's rule: every call carries `Content-Type: application/json` and a `User-Agent`.
/// [`RequireHeadersLayer::onekey`] requires both. To fill in a default `User-Agent` so it is
/// never missing, put tower-http's
/// `SetRequestHeaderLayer::if_not_present(header::USER_AGENT, value)` outside this layer.
///
/// ```
/// use http::{Request, header};
/// use tollgate_core::BoxError;
/// use tollgate_headers::{HeaderError, RequireHeadersLayer};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = ServiceBuilder::new()
///     .layer(RequireHeadersLayer::onekey())
///     .service(service_fn(|_: Request<()>| async { Ok::<_, BoxError>(()) }));
///
/// let request = Request::post("https://api.onekey.example/payments")
///     .header(header::CONTENT_TYPE, "application/json")
///     .body(())
///     .unwrap();
/// let error = client.oneshot(request).await.unwrap_err();
/// match error.downcast_ref::<HeaderError>() {
///     Some(HeaderError::MissingHeader { name }) => assert_eq!(name, header::USER_AGENT),
///     other => panic!("unexpected {other:?}"),
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RequireHeadersLayer {
    names: Arc<[HeaderName]>,
}

impl RequireHeadersLayer {
    /// Requires every header in `names`.
    pub fn new(names: impl IntoIterator<Item = HeaderName>) -> Self {
        Self {
            names: names.into_iter().collect(),
        }
    }

    /// OneKey's preset: `Content-Type` and `User-Agent`.
    pub fn onekey() -> Self {
        Self::new([header::CONTENT_TYPE, header::USER_AGENT])
    }

    /// The required names.
    pub fn names(&self) -> &[HeaderName] {
        &self.names
    }
}

impl<S> Layer<S> for RequireHeadersLayer {
    type Service = RequireHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireHeaders::new(inner, self)
    }
}

/// The service of [`RequireHeadersLayer`].
///
/// ```
/// use http::{Request, header};
/// use tollgate_core::BoxError;
/// use tollgate_headers::{RequireHeaders, RequireHeadersLayer};
/// use tower::{ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = RequireHeadersLayer::new([header::ACCEPT]);
/// let client = service_fn(|_: Request<()>| async { Ok::<_, BoxError>(()) });
/// let client = RequireHeaders::new(client, &layer);
/// assert!(client.oneshot(Request::new(())).await.is_err());
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequireHeaders<S> {
    inner: S,
    names: Arc<[HeaderName]>,
}

impl<S> RequireHeaders<S> {
    /// Wraps `inner`, requiring the names of `layer`.
    pub fn new(inner: S, layer: &RequireHeadersLayer) -> Self {
        Self {
            inner,
            names: Arc::clone(&layer.names),
        }
    }

    /// A layer requiring `names` (same as [`RequireHeadersLayer::new`]).
    pub fn layer(names: impl IntoIterator<Item = HeaderName>) -> RequireHeadersLayer {
        RequireHeadersLayer::new(names)
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for RequireHeaders<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireHeaders")
            .field("inner", &self.inner)
            .field("names", &self.names)
            .finish()
    }
}

impl<S, B> Service<Request<B>> for RequireHeaders<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = RequireHeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let missing = self.names.iter().find(|name| {
            request
                .headers()
                .get(*name)
                .is_none_or(|value| value.as_bytes().iter().all(u8::is_ascii_whitespace))
        });
        if let Some(name) = missing {
            tracing::warn!(
                target: "tollgate",
                layer = "require_headers",
                header = %name,
                "outbound request refused: required header missing"
            );
            return RequireHeadersFuture::refused(HeaderError::MissingHeader {
                name: name.clone(),
            });
        }
        RequireHeadersFuture::inner(self.inner.call(request))
    }
}
