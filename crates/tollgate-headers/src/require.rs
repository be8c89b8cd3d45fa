//! [`RequireHeadersLayer`] and [`DefaultHeaderLayer`]: headers every outbound call carries.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use http::header::{self, HeaderName, HeaderValue};
use tollgate_core::BoxError;
use tower_layer::Layer;
use tower_service::Service;

use crate::HeaderError;
use crate::future::OutboundFuture;

/// Fails an outbound call with [`HeaderError::MissingHeader`] when a required header is
/// absent or empty; the inner service is not called.
///
/// OneKey's rule: every call carries `Content-Type: application/json` and a `User-Agent`.
/// [`RequireHeadersLayer::onekey`] requires both (pair it with
/// [`DefaultHeaderLayer::user_agent`] outside it so the `User-Agent` is never missing).
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
        RequireHeaders {
            inner,
            names: Arc::clone(&self.names),
        }
    }
}

/// The service of [`RequireHeadersLayer`].
#[derive(Clone, Debug)]
#[must_use]
pub struct RequireHeaders<S> {
    inner: S,
    names: Arc<[HeaderName]>,
}

impl<S> RequireHeaders<S> {
    /// Wraps `inner`, requiring `names`.
    pub fn new(inner: S, names: impl IntoIterator<Item = HeaderName>) -> Self {
        RequireHeadersLayer::new(names).layer(inner)
    }

    /// A layer requiring `names` (same as [`RequireHeadersLayer::new`]).
    pub fn layer(names: impl IntoIterator<Item = HeaderName>) -> RequireHeadersLayer {
        RequireHeadersLayer::new(names)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for RequireHeaders<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = OutboundFuture<S::Future>;

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
            return OutboundFuture::refused(HeaderError::MissingHeader { name: name.clone() });
        }
        OutboundFuture::inner(self.inner.call(request))
    }
}

/// Sets a header when the request does not carry it (for example a default `User-Agent`);
/// a value already present is left as it is.
///
/// ```
/// use http::{HeaderValue, Request, header};
/// use tollgate_headers::DefaultHeaderLayer;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = ServiceBuilder::new()
///     .layer(DefaultHeaderLayer::user_agent(HeaderValue::from_static("shop-backend/1.4.0")))
///     .service(service_fn(|request: Request<()>| async move {
///         Ok::<_, std::convert::Infallible>(request.headers().clone())
///     }));
/// let sent = client.oneshot(Request::new(())).await.unwrap();
/// assert_eq!(sent[header::USER_AGENT], "shop-backend/1.4.0");
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct DefaultHeaderLayer {
    header: Arc<(HeaderName, HeaderValue)>,
}

impl DefaultHeaderLayer {
    /// Sets `name: value` when `name` is absent.
    pub fn new(name: HeaderName, value: HeaderValue) -> Self {
        Self {
            header: Arc::new((name, value)),
        }
    }

    /// Sets `User-Agent: value` when the request has none.
    pub fn user_agent(value: HeaderValue) -> Self {
        Self::new(header::USER_AGENT, value)
    }
}

impl<S> Layer<S> for DefaultHeaderLayer {
    type Service = DefaultHeader<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DefaultHeader {
            inner,
            header: Arc::clone(&self.header),
        }
    }
}

/// The service of [`DefaultHeaderLayer`]. Never fails a request.
#[derive(Clone)]
#[must_use]
pub struct DefaultHeader<S> {
    inner: S,
    header: Arc<(HeaderName, HeaderValue)>,
}

impl<S> DefaultHeader<S> {
    /// Wraps `inner`, setting `name: value` when absent.
    pub fn new(inner: S, name: HeaderName, value: HeaderValue) -> Self {
        DefaultHeaderLayer::new(name, value).layer(inner)
    }

    /// A layer setting `name: value` when absent (same as [`DefaultHeaderLayer::new`]).
    pub fn layer(name: HeaderName, value: HeaderValue) -> DefaultHeaderLayer {
        DefaultHeaderLayer::new(name, value)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for DefaultHeader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultHeader")
            .field("inner", &self.inner)
            .field("name", &self.header.0)
            .field("value", &self.header.1)
            .finish()
    }
}

impl<S, B> Service<Request<B>> for DefaultHeader<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let (name, value) = &*self.header;
        if !request.headers().contains_key(name) {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        self.inner.call(request)
    }
}
