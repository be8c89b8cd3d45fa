//! [`TokenHeaderLayer`]: a token fetched by an async provider, cached until it expires.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request};
use pin_project_lite::pin_project;
use tollgate_core::{BoxError, Clock, Secret, SharedClock, SystemClock};
use tower_layer::Layer;
use tower_service::Service;

use crate::HeaderError;
use crate::secret::{ACCESS_TOKEN, insert_secret};
use crate::upstream::{self, Upstream};

/// How many seconds before its expiry a cached token is refreshed, by default.
pub const DEFAULT_REFRESH_MARGIN: u64 = 60;

/// A token from a [`TokenProvider`]: the secret value and when it stops being valid.
///
/// ```
/// use tollgate_core::Secret;
/// use tollgate_headers::Token;
///
/// let token = Token::new(Secret::from_string("eyJhbGciOi")).expires_at(1_800_000_000);
/// assert_eq!(token.expiry(), Some(1_800_000_000));
/// assert_eq!(format!("{token:?}"), "Token { secret: Secret([REDACTED]), expires_at: Some(1800000000) }");
/// ```
#[derive(Clone, Debug)]
pub struct Token {
    secret: Secret,
    expires_at: Option<u64>,
}

impl Token {
    /// A token that never expires (cached until [`TokenHeaderLayer::invalidate`]).
    pub fn new(secret: Secret) -> Self {
        Self {
            secret,
            expires_at: None,
        }
    }

    /// Sets the Unix time (seconds) at which the token stops being valid (Transak's
    /// refresh-token answer carries it as `expiresAt`).
    pub fn expires_at(mut self, unix_seconds: u64) -> Self {
        self.expires_at = Some(unix_seconds);
        self
    }

    /// When the token expires, if it does.
    pub fn expiry(&self) -> Option<u64> {
        self.expires_at
    }

    /// The token's secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

/// The future a [`TokenProvider`] returns.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<Token, BoxError>> + Send + 'static>>;

/// Fetches a fresh [`Token`] (e.g. calls Transak's refresh-token endpoint).
///
/// Implemented for closures `Fn() -> impl Future<Output = Result<Token, BoxError>>`.
///
/// ```
/// use tollgate_core::{BoxError, Secret};
/// use tollgate_headers::{Token, TokenFuture, TokenProvider};
///
/// struct FromVault;
///
/// impl TokenProvider for FromVault {
///     fn fetch_token(&self) -> TokenFuture {
///         Box::pin(async { Ok(Token::new(Secret::from_string("t0ken")).expires_at(1_800_000_000)) })
///     }
/// }
///
/// // A closure works too.
/// let provider = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t0ken"))) };
/// # fn is_provider(_: impl TokenProvider) {}
/// # is_provider(FromVault);
/// # is_provider(provider);
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// Fetches a new token.
    fn fetch_token(&self) -> TokenFuture;
}

impl<F, Fut> TokenProvider for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Token, BoxError>> + Send + 'static,
{
    fn fetch_token(&self) -> TokenFuture {
        Box::pin(self())
    }
}

struct Cached {
    value: HeaderValue,
    expires_at: Option<u64>,
}

struct Shared {
    name: HeaderName,
    upstreams: Vec<Upstream>,
    provider: Arc<dyn TokenProvider>,
    clock: SharedClock,
    refresh_margin: u64,
    cache: Mutex<Option<Cached>>,
}

impl Shared {
    /// The cached value if it is still fresh.
    fn cached(&self) -> Option<HeaderValue> {
        let now = self.clock.now_unix();
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let cached = cache.as_ref()?;
        let fresh = cached
            .expires_at
            .is_none_or(|expiry| now.saturating_add(self.refresh_margin) < expiry);
        fresh.then(|| cached.value.clone())
    }

    /// Stores a fetched token and returns its header value.
    fn store(&self, token: &Token) -> Result<HeaderValue, HeaderError> {
        let value = token
            .secret
            .to_header_value()
            .map_err(|_| HeaderError::InvalidSecret {
                header: self.name.clone(),
            })?;
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *cache = Some(Cached {
            value: value.clone(),
            expires_at: token.expires_at,
        });
        tracing::debug!(
            target: "tollgate",
            layer = "token_header",
            header = %self.name,
            expires_at = token.expires_at,
            "token fetched and cached"
        );
        Ok(value)
    }
}

/// Sets a header from a token that an async [`TokenProvider`] fetches, cached until
/// `refresh_margin` seconds before its expiry (Transak's partner `access-token`, which is
/// refreshed through an API call).
///
/// Everything [`SecretHeaderLayer`](crate::SecretHeaderLayer) promises holds here: the header
/// is inserted (replacing any caller value), marked sensitive, recorded in
/// [`InjectedHeaders`](crate::InjectedHeaders), and only sent to the configured
/// [`Upstream`]s; the upstream is checked *before* any token is fetched. A failing provider
/// fails the call with [`HeaderError::TokenUnavailable`]; nothing is sent.
///
/// The cache is shared by every service made from one layer (and its clones). Time comes
/// from a [`Clock`] ([`SystemClock`] unless set), so tests move it with a
/// `ManualClock`. Concurrent calls that find the cache stale may each fetch a token; the
/// last one fetched is cached. Call [`invalidate`](TokenHeaderLayer::invalidate) after the
/// provider answers 401 to force a refresh.
///
/// The service needs `S: Clone` (the HTTP client is): while the token is fetched, the request
/// waits in the response future with a clone of the ready client.
///
/// ```
/// use http::Request;
/// use tollgate_core::{BoxError, ManualClock, Secret};
/// use tollgate_headers::{Token, TokenHeaderLayer, Upstream};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let clock = ManualClock::new(1_700_000_000);
/// let refresh = || async {
///     // Here: call Transak's refresh-token endpoint with the partner secret.
///     Ok::<_, BoxError>(Token::new(Secret::from_string("eyJ-access")).expires_at(1_700_604_800))
/// };
/// let client = ServiceBuilder::new()
///     .layer(TokenHeaderLayer::access_token(refresh).upstream(Upstream::transak()).clock(clock))
///     .service(service_fn(|request: Request<()>| async move {
///         Ok::<_, BoxError>(request.headers().clone())
///     }));
/// let request = Request::get("https://api-gateway.transak.com/partners/api/v2/orders").body(()).unwrap();
/// let sent = client.oneshot(request).await.unwrap();
/// assert_eq!(sent["access-token"], "eyJ-access");
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct TokenHeaderLayer {
    shared: Arc<Shared>,
}

impl TokenHeaderLayer {
    /// Sets the header `name` from tokens fetched by `provider`.
    pub fn new(name: HeaderName, provider: impl TokenProvider) -> Self {
        Self {
            shared: Arc::new(Shared {
                name,
                upstreams: Vec::new(),
                provider: Arc::new(provider),
                clock: Arc::new(SystemClock),
                refresh_margin: DEFAULT_REFRESH_MARGIN,
                cache: Mutex::new(None),
            }),
        }
    }

    /// Sets `access-token` (Transak's partner access token).
    pub fn access_token(provider: impl TokenProvider) -> Self {
        Self::new(ACCESS_TOKEN, provider)
    }

    fn shared_mut(&mut self) -> &mut Shared {
        if Arc::get_mut(&mut self.shared).is_none() {
            let old = &self.shared;
            let cached = old
                .cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .as_ref()
                .map(|c| Cached {
                    value: c.value.clone(),
                    expires_at: c.expires_at,
                });
            self.shared = Arc::new(Shared {
                name: old.name.clone(),
                upstreams: old.upstreams.clone(),
                provider: Arc::clone(&old.provider),
                clock: Arc::clone(&old.clock),
                refresh_margin: old.refresh_margin,
                cache: Mutex::new(cached),
            });
        }
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared,
            None => unreachable_unique(),
        }
    }

    /// Allows sending the token to `upstream`. Call it once per allowed upstream.
    pub fn upstream(mut self, upstream: Upstream) -> Self {
        let shared = self.shared_mut();
        if !shared.upstreams.contains(&upstream) {
            shared.upstreams.push(upstream);
        }
        self
    }

    /// The clock that decides whether the cached token has expired.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.shared_mut().clock = Arc::new(clock);
        self
    }

    /// Refresh the token this many seconds before it expires
    /// ([`DEFAULT_REFRESH_MARGIN`] unless set).
    pub fn refresh_margin(mut self, seconds: u64) -> Self {
        self.shared_mut().refresh_margin = seconds;
        self
    }

    /// Drops the cached token; the next call fetches a new one. Affects every service made
    /// from this layer.
    pub fn invalidate(&self) {
        let mut cache = self
            .shared
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *cache = None;
    }

    /// The header this layer sets.
    pub fn header_name(&self) -> &HeaderName {
        &self.shared.name
    }
}

#[allow(clippy::panic)]
fn unreachable_unique() -> ! {
    panic!("a freshly created Arc is unique")
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenHeader")
            .field("name", &self.name)
            .field("upstreams", &self.upstreams)
            .field("clock", &self.clock)
            .field("refresh_margin", &self.refresh_margin)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for TokenHeaderLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TokenHeaderLayer")
            .field(&self.shared)
            .finish()
    }
}

impl<S> Layer<S> for TokenHeaderLayer {
    type Service = TokenHeader<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TokenHeader {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`TokenHeaderLayer`].
#[derive(Clone)]
#[must_use]
pub struct TokenHeader<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> TokenHeader<S> {
    /// Wraps `inner` with the layer's configuration (sharing its cache).
    pub fn new(inner: S, layer: &TokenHeaderLayer) -> Self {
        layer.layer(inner)
    }

    /// A layer setting `name` from `provider` (same as [`TokenHeaderLayer::new`]).
    pub fn layer(name: HeaderName, provider: impl TokenProvider) -> TokenHeaderLayer {
        TokenHeaderLayer::new(name, provider)
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
        if let Err(error) = upstream::check(
            &shared.upstreams,
            &shared.name,
            request.uri(),
            request.headers(),
        ) {
            return TokenHeaderFuture::refused(error);
        }
        if let Some(value) = shared.cached() {
            insert_secret(&mut request, &shared.name, value);
            return TokenHeaderFuture {
                state: State::Calling {
                    future: self.inner.call(request),
                },
            };
        }
        // Keep the ready service for this request; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        TokenHeaderFuture {
            state: State::Fetching {
                fetch: shared.provider.fetch_token(),
                pending: Some((ready, request)),
                shared: Arc::clone(shared),
            },
        }
    }
}

pin_project! {
    /// Response future of [`TokenHeader`]: fetches a token when the cache is stale, then
    /// calls the inner service.
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
            fetch: TokenFuture,
            pending: Option<(S, Request<B>)>,
            shared: Arc<Shared>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Refused {
            error: Option<HeaderError>,
        },
    }
}

impl<S, B> TokenHeaderFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn refused(error: HeaderError) -> Self {
        Self {
            state: State::Refused { error: Some(error) },
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
                StateProj::Calling { future } => return future.poll(cx).map_err(Into::into),
                StateProj::Refused { error } => {
                    return Poll::Ready(Err(match error.take() {
                        Some(error) => Box::new(error),
                        None => "TokenHeaderFuture polled after completion".into(),
                    }));
                }
                StateProj::Fetching {
                    fetch,
                    pending,
                    shared,
                } => {
                    let fetched = match fetch.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(fetched) => fetched,
                    };
                    let value = fetched
                        .map_err(|source| HeaderError::TokenUnavailable {
                            header: shared.name.clone(),
                            source,
                        })
                        .and_then(|token| shared.store(&token));
                    match (value, pending.take()) {
                        (Ok(value), Some((mut inner, mut request))) => {
                            insert_secret(&mut request, &shared.name, value);
                            State::Calling {
                                future: inner.call(request),
                            }
                        }
                        (Err(error), _) => State::Refused { error: Some(error) },
                        (Ok(_), None) => State::Refused { error: None },
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
        };
        f.debug_tuple("TokenHeaderFuture").field(&state).finish()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use tollgate_core::ManualClock;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;
    use crate::SecretHeaderLayer;

    fn echo()
    -> impl Service<Request<()>, Response = HeaderMap, Error = BoxError, Future: Send> + Clone {
        service_fn(
            |request: Request<()>| async move { Ok::<_, BoxError>(request.headers().clone()) },
        )
    }

    fn request() -> Request<()> {
        Request::get("https://api-gateway.transak.com/partners/api/v2/orders")
            .body(())
            .unwrap()
    }

    #[tokio::test]
    async fn invalid_secrets_fail_closed() {
        let provider =
            || async { Ok::<_, BoxError>(Token::new(Secret::from_string("bad\ntoken"))) };
        let tokens = ServiceBuilder::new()
            .layer(TokenHeaderLayer::access_token(provider).upstream(Upstream::transak()))
            .service(echo());
        let error = tokens.oneshot(request()).await.unwrap_err();
        assert!(matches!(
            error.downcast_ref::<HeaderError>(),
            Some(HeaderError::InvalidSecret { header }) if header == "access-token"
        ));

        let fixed = ServiceBuilder::new()
            .layer(
                SecretHeaderLayer::api_key(Secret::from_string("bad\nkey"))
                    .upstream(Upstream::transak()),
            )
            .service(echo());
        let error = fixed.oneshot(request()).await.unwrap_err();
        assert!(matches!(
            error.downcast_ref::<HeaderError>(),
            Some(HeaderError::InvalidSecret { header }) if header == "x-api-key"
        ));
    }

    #[tokio::test]
    async fn token_without_expiry_is_cached_and_debug_is_redacted() {
        let clock = ManualClock::new(10);
        let provider = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("tok-3f9a"))) };
        let layer = TokenHeaderLayer::new(HeaderName::from_static("x-partner-token"), provider)
            .upstream(Upstream::transak())
            .clock(clock.clone());
        let service = ServiceBuilder::new().layer(layer.clone()).service(echo());
        let sent = service.clone().oneshot(request()).await.unwrap();
        assert_eq!(sent["x-partner-token"], "tok-3f9a");
        assert!(sent["x-partner-token"].is_sensitive());
        clock.advance(u64::MAX);
        let sent = service.oneshot(request()).await.unwrap();
        assert_eq!(sent["x-partner-token"], "tok-3f9a");

        let debug = format!("{layer:?}");
        assert!(!debug.contains("tok-3f9a"), "{debug}");
        assert_eq!(
            debug,
            "TokenHeaderLayer(TokenHeader { name: \"x-partner-token\", upstreams: [Upstream(https://api-gateway.transak.com:443)], clock: ManualClock { now: 18446744073709551615 }, refresh_margin: 60, .. })"
        );
    }
}
