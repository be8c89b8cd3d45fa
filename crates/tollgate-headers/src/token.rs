//! [`TokenHeaderLayer`]: a token fetched by an async provider, cached until it expires.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Request};
use pin_project_lite::pin_project;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tollgate_core::{BoxError, Clock, Secret, SharedClock, SystemClock};
use tower_layer::Layer;
use tower_service::Service;

use crate::HeaderError;
use crate::secret::{ACCESS_TOKEN, insert_secret};
use crate::upstream::{self, Upstream};

/// How many seconds before its expiry a cached token is refreshed, by default.
pub const DEFAULT_REFRESH_MARGIN: u64 = 60;

/// How long a token fetch may take, by default, before every call waiting for it fails
/// with [`TokenFetchError::TimedOut`].
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Locks `mutex`, going on with the data of a poisoned one (every critical section here
/// leaves the data consistent). No future is ever polled while one of these locks is held.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

tokio::task_local! {
    /// The layers (by [`Shared::id`]) whose token fetch the current task runs: the fetch's
    /// own layer, and the layers whose fetches started it.
    static FETCHING: Arc<[u64]>;
}

/// Identifies layers (in [`FETCHING`]) and fetches (in the flight slot).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Why a token fetch produced no token, other than the provider's own error. It is the
/// source of [`HeaderError::TokenUnavailable`]:
///
/// ```
/// use tollgate_core::BoxError;
/// use tollgate_headers::{HeaderError, TokenFetchError};
///
/// fn timed_out(error: &BoxError) -> bool {
///     match error.downcast_ref::<HeaderError>() {
///         Some(HeaderError::TokenUnavailable { source, .. }) => matches!(
///             source.downcast_ref::<TokenFetchError>(),
///             Some(TokenFetchError::TimedOut { .. })
///         ),
///         _ => false,
///     }
/// }
/// # let error: BoxError = "other".into();
/// # assert!(!timed_out(&error));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFetchError {
    /// A request went through a [`TokenHeaderLayer`] from inside that layer's own token fetch
    /// (the provider's refresh call uses the stack it refreshes the token for). Refused at
    /// once: it would wait for the very fetch that waits for it.
    Reentrant,
    /// The provider did not answer within the layer's
    /// [`fetch_timeout`](TokenHeaderLayer::fetch_timeout).
    TimedOut {
        /// The fetch timeout.
        after: Duration,
    },
    /// The fetch ended without an answer: the provider panicked, the runtime is shutting
    /// down, or its timer is disabled (build it with `enable_time` or `enable_all`).
    Aborted,
    /// There is no Tokio runtime to run the fetch on (it runs as a task of its own).
    NoRuntime,
}

impl fmt::Display for TokenFetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reentrant => f.write_str(
                "the token provider's own request went through the token layer it refreshes",
            ),
            Self::TimedOut { after } => {
                write!(f, "the token provider did not answer within {after:?}")
            }
            Self::Aborted => f.write_str("the token fetch ended without an answer"),
            Self::NoRuntime => f.write_str("no Tokio runtime to run the token fetch on"),
        }
    }
}

impl std::error::Error for TokenFetchError {}

struct Shared {
    /// Identifies this configuration in [`FETCHING`].
    id: u64,
    name: HeaderName,
    upstreams: Vec<Upstream>,
    provider: Arc<dyn TokenProvider>,
    clock: SharedClock,
    refresh_margin: u64,
    fetch_timeout: Duration,
    /// Lock order: `flight` before `cache` when both are held.
    cache: Mutex<Option<Cached>>,
    /// The fetch under way, shared by every call that found the cache stale.
    flight: Mutex<Option<Arc<Flight>>>,
}

/// What [`Shared::lookup`] found for a call.
enum Lookup {
    Fresh(HeaderValue),
    Wait(Ticket),
    Refused(HeaderError),
}

impl Shared {
    /// The cached value if it is still fresh: `now + refresh_margin < expires_at`, so a
    /// token is refreshed from exactly `refresh_margin` seconds before its expiry on.
    fn cached(&self) -> Option<HeaderValue> {
        let now = self.clock.now_unix();
        let cache = lock(&self.cache);
        let cached = cache.as_ref()?;
        let fresh = cached
            .expires_at
            .is_none_or(|expiry| now.saturating_add(self.refresh_margin) < expiry);
        fresh.then(|| cached.value.clone())
    }

    /// Whether the current task runs this layer's own token fetch.
    fn in_own_fetch(&self) -> bool {
        FETCHING
            .try_with(|layers| layers.contains(&self.id))
            .unwrap_or(false)
    }

    fn unavailable(&self, error: TokenFetchError) -> HeaderError {
        HeaderError::TokenUnavailable {
            header: self.name.clone(),
            source: Box::new(error),
        }
    }

    /// The fresh cached value, or a place in the fetch under way, or in a new one.
    fn lookup(self: &Arc<Self>) -> Lookup {
        let mut slot = lock(&self.flight);
        // Checked again under the flight lock: a fetch that just finished has stored its
        // token before leaving the slot.
        if let Some(value) = self.cached() {
            return Lookup::Fresh(value);
        }
        let flight = match slot.as_ref() {
            Some(flight) => Arc::clone(flight),
            None => match self.start() {
                Ok(flight) => Arc::clone(slot.insert(flight)),
                Err(error) => return Lookup::Refused(self.unavailable(error)),
            },
        };
        // Counted under the flight lock, so `abandon` cannot drop a fetch being joined.
        Lookup::Wait(Ticket::new(flight, Arc::clone(self)))
    }

    /// Starts a fetch as a task of its own on the current runtime. The provider is called
    /// in that task, so it sees none of the triggering request's task-locals (such as the
    /// end user's `ClientIp`), only [`FETCHING`].
    fn start(self: &Arc<Self>) -> Result<Arc<Flight>, TokenFetchError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| TokenFetchError::NoRuntime)?;
        let (sender, outcome) = watch::channel(None);
        let id = next_id();
        let fetching: Arc<[u64]> = FETCHING
            .try_with(|outer| outer.iter().copied().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain([self.id])
            .collect();
        let shared = Arc::clone(self);
        let task = FETCHING.scope(fetching, async move {
            let outcome = shared.fetch().await;
            shared.finish(id, &outcome);
            // Nobody may be listening any more; the token is cached all the same.
            let _ = sender.send(Some(outcome));
        });
        // `spawn` never polls the task here, so no future runs under the caller's lock.
        let abort = runtime.spawn(task).abort_handle();
        Ok(Arc::new(Flight {
            id,
            outcome,
            abort,
            waiting: AtomicUsize::new(0),
        }))
    }

    /// Calls the provider, within the fetch timeout.
    async fn fetch(&self) -> Outcome {
        let fetched = tokio::time::timeout(self.fetch_timeout, self.provider.fetch_token()).await;
        match fetched {
            // A blank token is a credential anyone has: never sent (core's blank-secret rule).
            Ok(Ok(token)) if token.secret.is_blank() => {
                tracing::warn!(
                    target: "tollgate",
                    layer = "token_header",
                    header = %self.name,
                    "token provider answered a blank token; the request was not sent"
                );
                Outcome::Invalid
            }
            Ok(Ok(token)) => match token.secret.to_header_value() {
                Ok(value) => Outcome::Value {
                    value,
                    expires_at: token.expires_at,
                },
                Err(_) => Outcome::Invalid,
            },
            Ok(Err(source)) => {
                tracing::warn!(
                    target: "tollgate",
                    layer = "token_header",
                    header = %self.name,
                    "token provider failed; the request was not sent"
                );
                Outcome::Failed {
                    message: source.to_string().into(),
                    original: Arc::new(Mutex::new(Some(source))),
                }
            }
            Err(_) => {
                tracing::warn!(
                    target: "tollgate",
                    layer = "token_header",
                    header = %self.name,
                    timeout = ?self.fetch_timeout,
                    "token provider timed out; the request was not sent"
                );
                Outcome::Error(TokenFetchError::TimedOut {
                    after: self.fetch_timeout,
                })
            }
        }
    }

    /// Ends the fetch `id`: stores its token (if it is still the current fetch, i.e. no
    /// `invalidate` came in between) and frees the slot for the next fetch.
    fn finish(&self, id: u64, outcome: &Outcome) {
        let mut slot = lock(&self.flight);
        if slot.as_ref().is_none_or(|current| current.id != id) {
            return;
        }
        if let Outcome::Value { value, expires_at } = outcome {
            *lock(&self.cache) = Some(Cached {
                value: value.clone(),
                expires_at: *expires_at,
            });
            tracing::debug!(
                target: "tollgate",
                layer = "token_header",
                header = %self.name,
                expires_at = *expires_at,
                "token fetched and cached"
            );
        }
        *slot = None;
    }

    /// Stops `flight` if nobody waits for it any more and it has not finished, so a fetch
    /// that every caller gave up on (a timeout, a cancelled request) is not joined by the
    /// next call: that one starts afresh.
    fn abandon(&self, flight: &Flight) {
        let mut slot = lock(&self.flight);
        if flight.waiting.load(Ordering::SeqCst) != 0 || flight.is_done() {
            return;
        }
        if slot.as_ref().is_some_and(|current| current.id == flight.id) {
            *slot = None;
        }
        flight.abort.abort();
    }
}

/// What a finished fetch left for the calls that waited on it.
#[derive(Clone)]
enum Outcome {
    Value {
        value: HeaderValue,
        expires_at: Option<u64>,
    },
    Invalid,
    /// The provider's error: the first call to read it gets the error itself, the others
    /// its message ([`SharedFetchError`]).
    Failed {
        message: Arc<str>,
        original: Arc<Mutex<Option<BoxError>>>,
    },
    Error(TokenFetchError),
}

impl Outcome {
    fn into_result(self, name: &HeaderName) -> Result<HeaderValue, HeaderError> {
        let source: BoxError = match self {
            Self::Value { value, .. } => return Ok(value),
            Self::Invalid => {
                return Err(HeaderError::InvalidSecret {
                    header: name.clone(),
                });
            }
            Self::Failed { message, original } => match lock(&original).take() {
                Some(original) => original,
                None => Box::new(SharedFetchError(message)),
            },
            Self::Error(error) => Box::new(error),
        };
        Err(HeaderError::TokenUnavailable {
            header: name.clone(),
            source,
        })
    }
}

/// One token fetch shared by every call that found the cache stale (single flight): the
/// provider is called once, in a task of its own, however many requests wait; its outcome
/// reaches them through a `watch` channel.
struct Flight {
    id: u64,
    outcome: watch::Receiver<Option<Outcome>>,
    abort: AbortHandle,
    waiting: AtomicUsize,
}

impl Flight {
    fn is_done(&self) -> bool {
        self.outcome.borrow().is_some()
    }
}

/// The provider's error as seen by a call that waited on another call's fetch: its message
/// (the provider's error itself went to the first call that read the outcome).
#[derive(Debug)]
struct SharedFetchError(Arc<str>);

impl fmt::Display for SharedFetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SharedFetchError {}

type WaitOutcome = Pin<Box<dyn Future<Output = Outcome> + Send + Sync>>;

/// A call's place in a [`Flight`]: counted while it waits, so the last one to give up can
/// abandon the fetch.
struct Ticket {
    flight: Arc<Flight>,
    shared: Arc<Shared>,
    wait: WaitOutcome,
}

impl Ticket {
    fn new(flight: Arc<Flight>, shared: Arc<Shared>) -> Self {
        flight.waiting.fetch_add(1, Ordering::SeqCst);
        let mut outcome = flight.outcome.clone();
        let wait = Box::pin(async move {
            match outcome.wait_for(Option::is_some).await {
                Ok(outcome) => (*outcome)
                    .clone()
                    .unwrap_or(Outcome::Error(TokenFetchError::Aborted)),
                // The task ended without sending: aborted, panicked, or the runtime stopped.
                Err(_) => Outcome::Error(TokenFetchError::Aborted),
            }
        });
        Self {
            flight,
            shared,
            wait,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<HeaderValue, HeaderError>> {
        self.wait
            .as_mut()
            .poll(cx)
            .map(|outcome| outcome.into_result(&self.shared.name))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.flight.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.abandon(&self.flight);
        }
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
/// `ManualClock`. A token is used while `now + refresh_margin < expires_at` and refreshed
/// from exactly `refresh_margin` seconds before its expiry on.
///
/// Concurrent calls that find the cache stale share one fetch (single flight): the provider
/// is called once, every waiting call gets the same token, or the same failure (the first
/// call to read a provider error gets that error as the
/// [`TokenUnavailable`](HeaderError::TokenUnavailable) source, the others an error with its
/// message). A failure is not cached: the next call fetches again. When every waiting call
/// has given up (dropped, e.g. by a timeout), the fetch is aborted and the next call starts
/// a new one. Call [`invalidate`](TokenHeaderLayer::invalidate) after the provider answers
/// 401 to force a refresh.
///
/// # Security considerations
///
/// - The fetch runs as a task of its own on the current Tokio runtime (it needs one with
///   its timer enabled, as `#[tokio::main]` builds; without a runtime the call fails with
///   [`TokenFetchError::NoRuntime`]). The provider, including the synchronous part of
///   [`fetch_token`](TokenProvider::fetch_token), runs outside the triggering request's
///   task: it sees none of that request's task-locals, so a `ForwardUserIpLayer` on the
///   refresh call never sends the end user's IP of whichever request found the token stale.
/// - No lock is held while a future is polled. A request that goes through this layer from
///   inside the layer's own fetch (a provider whose refresh call uses the stack it refreshes
///   the token for) fails at once with [`TokenFetchError::Reentrant`] as the
///   [`TokenUnavailable`](HeaderError::TokenUnavailable) source instead of waiting for
///   itself. Give the refresh call a client without this layer.
/// - A fetch that takes longer than [`fetch_timeout`](TokenHeaderLayer::fetch_timeout)
///   ([`DEFAULT_FETCH_TIMEOUT`], 10 seconds, unless set) fails every waiting call with
///   [`TokenFetchError::TimedOut`], so a hung provider, or a refresh that reaches this
///   layer from another task, never hangs a request for longer.
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
                id: next_id(),
                name,
                upstreams: Vec::new(),
                provider: Arc::new(provider),
                clock: Arc::new(SystemClock),
                refresh_margin: DEFAULT_REFRESH_MARGIN,
                fetch_timeout: DEFAULT_FETCH_TIMEOUT,
                cache: Mutex::new(None),
                flight: Mutex::new(None),
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
            let cached = lock(&old.cache).as_ref().map(|c| Cached {
                value: c.value.clone(),
                expires_at: c.expires_at,
            });
            self.shared = Arc::new(Shared {
                id: next_id(),
                name: old.name.clone(),
                upstreams: old.upstreams.clone(),
                provider: Arc::clone(&old.provider),
                clock: Arc::clone(&old.clock),
                refresh_margin: old.refresh_margin,
                fetch_timeout: old.fetch_timeout,
                cache: Mutex::new(cached),
                flight: Mutex::new(None),
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

    /// How long a token fetch may take before every call waiting for it fails with
    /// [`TokenFetchError::TimedOut`] ([`DEFAULT_FETCH_TIMEOUT`], 10 seconds, unless set).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate_core::{BoxError, Secret};
    /// use tollgate_headers::{Token, TokenHeaderLayer, Upstream};
    ///
    /// let refresh = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t"))) };
    /// let layer = TokenHeaderLayer::access_token(refresh)
    ///     .upstream(Upstream::transak())
    ///     .fetch_timeout(Duration::from_secs(3));
    /// # let _ = layer;
    /// ```
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.shared_mut().fetch_timeout = timeout;
        self
    }

    /// Drops the cached token; the next call fetches a new one. Affects every service made
    /// from this layer. A fetch already under way still serves the calls waiting for it, but
    /// its token is not cached.
    pub fn invalidate(&self) {
        let mut flight = lock(&self.shared.flight);
        *flight = None;
        *lock(&self.shared.cache) = None;
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
            .field("fetch_timeout", &self.fetch_timeout)
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
        if shared.in_own_fetch() {
            tracing::warn!(
                target: "tollgate",
                layer = "token_header",
                header = %shared.name,
                "request from inside the layer's own token fetch refused"
            );
            return TokenHeaderFuture::refused(shared.unavailable(TokenFetchError::Reentrant));
        }
        let ticket = match shared.lookup() {
            Lookup::Fresh(value) => {
                insert_secret(&mut request, &shared.name, value);
                return TokenHeaderFuture {
                    state: State::Calling {
                        future: self.inner.call(request),
                    },
                };
            }
            Lookup::Wait(ticket) => ticket,
            Lookup::Refused(error) => return TokenHeaderFuture::refused(error),
        };
        // Keep the ready service for this request; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        TokenHeaderFuture {
            state: State::Fetching {
                ticket,
                pending: Some((ready, request)),
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
                StateProj::Fetching { ticket, pending } => {
                    let value = match ticket.poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(value) => value,
                    };
                    match (value, pending.take()) {
                        (Ok(value), Some((mut inner, mut request))) => {
                            insert_secret(&mut request, &ticket.shared.name, value);
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

    /// A provider that counts its calls and answers only when the gate opens.
    fn gated(
        gate: Arc<tokio::sync::Semaphore>,
        calls: Arc<AtomicUsize>,
        answer: fn(usize) -> Result<Token, BoxError>,
    ) -> impl TokenProvider {
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let gate = Arc::clone(&gate);
            async move {
                gate.acquire().await.unwrap().forget();
                answer(n)
            }
        }
    }

    type Pending = Pin<Box<dyn Future<Output = Result<HeaderMap, BoxError>> + Send>>;

    /// `n` calls, each polled once (so each has found the cache stale and joined or started
    /// the fetch, or finished if the gate was open).
    fn start_calls(layer: &TokenHeaderLayer, n: usize) -> Vec<Pending> {
        let service = ServiceBuilder::new().layer(layer.clone()).service(echo());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        (0..n)
            .map(|_| {
                let mut call: Pending = Box::pin(service.clone().oneshot(request()));
                match call.as_mut().poll(&mut cx) {
                    Poll::Pending => call,
                    Poll::Ready(result) => Box::pin(std::future::ready(result)),
                }
            })
            .collect()
    }

    /// Waits until the provider has been called `n` times (the fetch runs in a task of its
    /// own), then checks that it is not called again meanwhile.
    async fn provider_calls(calls: &AtomicUsize, n: usize) {
        for _ in 0..5_000 {
            if calls.load(Ordering::SeqCst) >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), n);
    }

    async fn finish(calls: Vec<Pending>) -> Vec<Result<HeaderMap, BoxError>> {
        let handles: Vec<_> = calls.into_iter().map(tokio::spawn).collect();
        let mut results = Vec::new();
        for handle in handles {
            results.push(handle.await.unwrap());
        }
        results
    }

    /// Fifty calls on a stale cache: one provider call, fifty requests with its token.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_stale_calls_share_one_fetch() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = gated(Arc::clone(&gate), Arc::clone(&calls), |n| {
            Ok(Token::new(Secret::from_string(format!("token-{n}")))
                .expires_at(1_000 * (n as u64 + 1)))
        });
        let clock = ManualClock::new(1_000);
        let layer = TokenHeaderLayer::access_token(provider)
            .upstream(Upstream::transak())
            .clock(clock.clone());

        let pending = start_calls(&layer, 50);
        provider_calls(&calls, 1).await;
        gate.add_permits(100);
        for result in finish(pending).await {
            let sent = result.unwrap();
            assert_eq!(sent["access-token"], "token-1");
            assert!(sent["access-token"].is_sensitive());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Cached now; stale again after expiry: one more fetch for the next fifty.
        let service = ServiceBuilder::new().layer(layer.clone()).service(echo());
        service.clone().oneshot(request()).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        clock.advance(1_000);
        let pending = start_calls(&layer, 50);
        for result in finish(pending).await {
            assert_eq!(result.unwrap()["access-token"], "token-2");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[derive(Debug)]
    struct RefreshFailed;

    impl fmt::Display for RefreshFailed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("refresh endpoint answered 503")
        }
    }

    impl std::error::Error for RefreshFailed {}

    /// A failing fetch fails every waiting call, sends nothing, leaks neither the stale
    /// token nor anything else, and is not cached: the next call fetches again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_shared_fetch_fails_every_waiter_without_the_stale_token() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = gated(Arc::clone(&gate), Arc::clone(&calls), |n| {
            if n == 1 {
                Ok(Token::new(Secret::from_string("stale-tok-9f3a")).expires_at(1_100))
            } else {
                Err(Box::new(RefreshFailed))
            }
        });
        let clock = ManualClock::new(1_000);
        let layer = TokenHeaderLayer::access_token(provider)
            .upstream(Upstream::transak())
            .clock(clock.clone())
            .refresh_margin(0);
        gate.add_permits(1);
        let first = finish(start_calls(&layer, 1)).await;
        assert_eq!(first[0].as_ref().unwrap()["access-token"], "stale-tok-9f3a");

        clock.set(1_100);
        let pending = start_calls(&layer, 20);
        provider_calls(&calls, 2).await;
        gate.add_permits(100);
        let mut originals = 0;
        for result in finish(pending).await {
            let error = result.unwrap_err();
            let header_error = error.downcast_ref::<HeaderError>().unwrap();
            assert!(
                matches!(header_error, HeaderError::TokenUnavailable { header, .. } if header == "access-token")
            );
            let source = std::error::Error::source(header_error).unwrap();
            assert_eq!(source.to_string(), "refresh endpoint answered 503");
            if source.downcast_ref::<RefreshFailed>().is_some() {
                originals += 1;
            }
            for text in [error.to_string(), format!("{error:?}")] {
                assert!(!text.contains("stale-tok-9f3a"), "{text}");
            }
        }
        assert_eq!(originals, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Not cached: the next call asks the provider again.
        gate.add_permits(1);
        let again = finish(start_calls(&layer, 1)).await;
        assert!(again[0].is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    /// Every caller gave up (dropped its future): the hung fetch is abandoned and the next
    /// call starts a new one instead of joining it.
    #[tokio::test]
    async fn an_abandoned_fetch_is_not_joined() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = gated(Arc::clone(&gate), Arc::clone(&calls), |n| {
            Ok(Token::new(Secret::from_string(format!("token-{n}"))))
        });
        let layer = TokenHeaderLayer::access_token(provider).upstream(Upstream::transak());
        let hung = start_calls(&layer, 3);
        provider_calls(&calls, 1).await;
        drop(hung);

        let pending = start_calls(&layer, 2);
        provider_calls(&calls, 2).await;
        gate.add_permits(10);
        for result in finish(pending).await {
            assert_eq!(result.unwrap()["access-token"], "token-2");
        }
    }

    /// `invalidate` while a fetch is under way: its waiters get its token, the cache does
    /// not keep it.
    #[tokio::test]
    async fn invalidate_during_a_fetch_does_not_cache_it() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = gated(Arc::clone(&gate), Arc::clone(&calls), |n| {
            Ok(Token::new(Secret::from_string(format!("token-{n}"))))
        });
        let layer = TokenHeaderLayer::access_token(provider).upstream(Upstream::transak());
        let pending = start_calls(&layer, 2);
        layer.invalidate();
        gate.add_permits(10);
        for result in finish(pending).await {
            assert_eq!(result.unwrap()["access-token"], "token-1");
        }
        let next = finish(start_calls(&layer, 1)).await;
        assert_eq!(next[0].as_ref().unwrap()["access-token"], "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// The refresh edge: fresh while `now + margin < expires_at`, refreshed at equality; a
    /// margin longer than the token's life refreshes on every call; a token that is already
    /// expired is still used for the call that fetched it.
    #[tokio::test]
    async fn expiry_exactly_at_the_refresh_margin_edge() {
        for (margin, expires_in, advance, refetch) in [
            (60, 3_600, 3_600 - 61, false),
            (60, 3_600, 3_600 - 60, true),
            (0, 3_600, 3_599, false),
            (0, 3_600, 3_600, true),
            (u64::MAX, 3_600, 0, true),
            (7_200, 3_600, 0, true),
        ] {
            let clock = ManualClock::new(1_000_000);
            let calls = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&calls);
            let token_clock = clock.clone();
            let provider = move || {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let expiry = Clock::now_unix(&token_clock) + expires_in;
                async move {
                    Ok::<_, BoxError>(
                        Token::new(Secret::from_string(format!("t{n}"))).expires_at(expiry),
                    )
                }
            };
            let service = ServiceBuilder::new()
                .layer(
                    TokenHeaderLayer::access_token(provider)
                        .upstream(Upstream::transak())
                        .clock(clock.clone())
                        .refresh_margin(margin),
                )
                .service(echo());
            let sent = service.clone().oneshot(request()).await.unwrap();
            assert_eq!(sent["access-token"], "t1");
            clock.advance(advance);
            let sent = service.oneshot(request()).await.unwrap();
            let expected = if refetch { "t2" } else { "t1" };
            assert_eq!(
                sent["access-token"], expected,
                "margin {margin}, +{advance}"
            );
        }

        let expired = || async {
            Ok::<_, BoxError>(Token::new(Secret::from_string("already-old")).expires_at(1))
        };
        let service = ServiceBuilder::new()
            .layer(
                TokenHeaderLayer::access_token(expired)
                    .upstream(Upstream::transak())
                    .clock(ManualClock::new(1_000)),
            )
            .service(echo());
        let sent = service.oneshot(request()).await.unwrap();
        assert_eq!(sent["access-token"], "already-old");
    }

    fn fetch_error(result: Result<HeaderMap, BoxError>) -> TokenFetchError {
        let error = result.unwrap_err();
        match error.downcast_ref::<HeaderError>() {
            Some(HeaderError::TokenUnavailable { source, .. }) => {
                source.downcast_ref::<TokenFetchError>().unwrap().clone()
            }
            _ => panic!("{error:?}"),
        }
    }

    /// Outside a Tokio runtime the fetch cannot start: a typed error, no panic, no hang.
    #[test]
    fn without_a_runtime_the_call_fails_typed() {
        let provider = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t"))) };
        let mut service = ServiceBuilder::new()
            .layer(TokenHeaderLayer::access_token(provider).upstream(Upstream::transak()))
            .service(echo());
        let mut call = std::pin::pin!(service.call(request()));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(result) = call.as_mut().poll(&mut cx) else {
            panic!("pending without a runtime");
        };
        assert_eq!(fetch_error(result), TokenFetchError::NoRuntime);
    }

    /// A runtime without its timer: the fetch task panics in `timeout`, and the waiting
    /// call gets a typed error instead of waiting forever.
    #[test]
    fn without_a_timer_the_call_fails_typed() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let provider = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t"))) };
        let service = ServiceBuilder::new()
            .layer(TokenHeaderLayer::access_token(provider).upstream(Upstream::transak()))
            .service(echo());
        let result = runtime.block_on(service.oneshot(request()));
        assert_eq!(fetch_error(result), TokenFetchError::Aborted);
    }

    #[test]
    fn fetch_errors_name_no_secret() {
        for (error, text) in [
            (
                TokenFetchError::Reentrant,
                "the token provider's own request went through the token layer it refreshes",
            ),
            (
                TokenFetchError::TimedOut {
                    after: DEFAULT_FETCH_TIMEOUT,
                },
                "the token provider did not answer within 10s",
            ),
            (
                TokenFetchError::Aborted,
                "the token fetch ended without an answer",
            ),
            (
                TokenFetchError::NoRuntime,
                "no Tokio runtime to run the token fetch on",
            ),
        ] {
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let mut service = ServiceBuilder::new()
            .layer(TokenHeaderLayer::access_token(|| async {
                Ok::<_, BoxError>(Token::new(Secret::from_string("t")))
            }))
            .service(echo());
        let future = service.call(request());
        assert_send(&future);
        assert_eq!(format!("{future:?}"), "TokenHeaderFuture(\"refused\")");
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
                    .unwrap()
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
            "TokenHeaderLayer(TokenHeader { name: \"x-partner-token\", upstreams: [Upstream(https://api-gateway.transak.com:443)], clock: ManualClock { now: 18446744073709551615 }, refresh_margin: 60, fetch_timeout: 10s, .. })"
        );
    }
}
