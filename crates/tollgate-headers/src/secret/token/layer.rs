//! [`TokenHeaderLayer`]: the configuration, and the cache every service made from it shares.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tollgate_core::{Clock, SystemClock, Upstream};
use tower_layer::Layer;

use super::cache::{Config, Shared};
use super::{DEFAULT_FETCH_TIMEOUT, DEFAULT_REFRESH_MARGIN, TokenHeader, TokenProvider};
use crate::secret::ACCESS_TOKEN;

/// Sets a header from a token that an async [`TokenProvider`] fetches, cached until its
/// refresh point (`refresh_margin` seconds before its expiry, or half its life for a token
/// living less than twice the margin; Transak's partner `access-token`, which is refreshed
/// through an API call), and sent only to the configured [`Upstream`]s.
///
/// Everything [`SecretHeaderLayer`](crate::SecretHeaderLayer) promises holds here: the header
/// is inserted (replacing any caller value), marked sensitive, recorded in
/// [`InjectedHeaders`](crate::InjectedHeaders), and only sent to the configured
/// [`Upstream`]s; the upstream is a constructor argument, and it is checked *before* any
/// token is fetched. A failing provider fails the call with
/// [`HeaderError::TokenUnavailable`](crate::HeaderError::TokenUnavailable); nothing is sent.
///
/// The cache is shared by every service made from one layer (and its clones). A setter called
/// on a layer that is shared gives that layer a cache of its own (starting from the cached
/// token). Time comes from a [`Clock`] ([`SystemClock`] unless set), so tests move it with a
/// `ManualClock`. A token is used until its refresh point: `refresh_margin` seconds before its
/// expiry, or, for a token whose life (from its fetch) is shorter than twice the margin, half
/// its life, so a short-lived token
/// is not fetched again for every call. A token that has already expired when it arrives is
/// never sent: the call fails with [`TokenFetchError::Expired`](crate::TokenFetchError::Expired).
///
/// Concurrent calls that find the cache stale share one fetch (single flight): the provider
/// is called once, every waiting call gets the same token, or the same failure (the first
/// call to read a provider error gets that error as the
/// [`TokenUnavailable`](crate::HeaderError::TokenUnavailable) source, the others an error
/// with its message). A failure is not cached: the next call fetches again. When every
/// waiting call has given up (dropped, e.g. by a timeout), the fetch is aborted and the next
/// call starts a new one. When the provider answers a call 401, call
/// [`invalidate_sent`](TokenHeaderLayer::invalidate_sent) with the value that call carried
/// (one drop in 10 s at most; the ready Transak client does it);
/// [`invalidate`](TokenHeaderLayer::invalidate) drops the token unconditionally.
///
/// # Security considerations
///
/// - The fetch runs as a task of its own on the current Tokio runtime (it needs one with
///   its timer enabled, as `#[tokio::main]` builds; without a runtime the call fails with
///   [`TokenFetchError::NoRuntime`](crate::TokenFetchError::NoRuntime)). The provider,
///   including the synchronous part of [`fetch_token`](TokenProvider::fetch_token), runs
///   outside the triggering request's task: it sees none of that request's task-locals, so a
///   `ForwardUserIpLayer` on the refresh call never sends the end user's IP of whichever
///   request found the token stale.
/// - No lock is held while a future is polled. A request that goes through this layer from
///   inside the layer's own fetch (a provider whose refresh call uses the stack it refreshes
///   the token for) fails at once with
///   [`TokenFetchError::Reentrant`](crate::TokenFetchError::Reentrant) as the
///   [`TokenUnavailable`](crate::HeaderError::TokenUnavailable) source instead of waiting for
///   itself. Give the refresh call a client without this layer.
/// - A fetch that takes longer than [`fetch_timeout`](TokenHeaderLayer::fetch_timeout)
///   ([`DEFAULT_FETCH_TIMEOUT`], 10 seconds, unless set) fails every waiting call with
///   [`TokenFetchError::TimedOut`](crate::TokenFetchError::TimedOut), so a hung provider, or
///   a refresh that reaches this layer from another task, never hangs a request for longer.
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
///     .layer(TokenHeaderLayer::access_token(refresh, Upstream::transak()).clock(clock))
///     .service(service_fn(|request: Request<()>| async move {
///         Ok::<_, BoxError>(request.headers().clone())
///     }));
/// let request = Request::get("https://api-gateway.transak.com/partners/api/v2/orders").body(()).unwrap();
/// let sent = client.oneshot(request).await.unwrap();
/// assert_eq!(sent["access-token"], "eyJ-access");
/// # }
/// ```
///
/// A layer without an upstream cannot be written:
///
/// ```compile_fail,E0061
/// use tollgate_core::{BoxError, Secret};
/// use tollgate_headers::{Token, TokenHeaderLayer};
///
/// let refresh = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t"))) };
/// let layer = TokenHeaderLayer::access_token(refresh);
/// ```
#[derive(Clone)]
#[must_use]
pub struct TokenHeaderLayer {
    pub(super) shared: Arc<Shared>,
}

impl TokenHeaderLayer {
    /// Sets the header `name` from tokens fetched by `provider`, sent only to `upstream`
    /// (add more with [`upstream`](TokenHeaderLayer::upstream)).
    pub fn new(name: HeaderName, provider: impl TokenProvider, upstream: Upstream) -> Self {
        Self {
            shared: Arc::new(Shared::new(Config {
                name,
                upstreams: vec![upstream],
                provider: Arc::new(provider),
                clock: Arc::new(SystemClock),
                refresh_margin: DEFAULT_REFRESH_MARGIN,
                fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            })),
        }
    }

    /// Sets `access-token` (Transak's partner access token), sent only to `upstream`.
    pub fn access_token(provider: impl TokenProvider, upstream: Upstream) -> Self {
        Self::new(ACCESS_TOKEN, provider, upstream)
    }

    /// The configuration of this layer alone: copied first (with the cached token, but as a
    /// cache of its own) if a clone or a service shares it.
    fn config_mut(&mut self) -> &mut Config {
        &mut Arc::make_mut(&mut self.shared).config
    }

    /// Also allows sending the token to `upstream`. Call it once per further upstream.
    pub fn upstream(mut self, upstream: Upstream) -> Self {
        let config = self.config_mut();
        if !config.upstreams.contains(&upstream) {
            config.upstreams.push(upstream);
        }
        self
    }

    /// The clock that decides whether the cached token has expired.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.config_mut().clock = Arc::new(clock);
        self
    }

    /// Refresh the token this many seconds before it expires
    /// ([`DEFAULT_REFRESH_MARGIN`] unless set), or from half its life on when that comes
    /// later (a token that lives less than twice the margin).
    pub fn refresh_margin(mut self, seconds: u64) -> Self {
        self.config_mut().refresh_margin = seconds;
        self
    }

    /// How long a token fetch may take before every call waiting for it fails with
    /// [`TokenFetchError::TimedOut`](crate::TokenFetchError::TimedOut)
    /// ([`DEFAULT_FETCH_TIMEOUT`], 10 seconds, unless set).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate_core::{BoxError, Secret};
    /// use tollgate_headers::{Token, TokenHeaderLayer, Upstream};
    ///
    /// let refresh = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t"))) };
    /// let layer = TokenHeaderLayer::access_token(refresh, Upstream::transak())
    ///     .fetch_timeout(Duration::from_secs(3));
    /// # let _ = layer;
    /// ```
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().fetch_timeout = timeout;
        self
    }

    /// Drops the cached token; the next call fetches a new one. Affects every service made
    /// from this layer. A fetch already under way still serves the calls waiting for it, but
    /// its token is not cached.
    pub fn invalidate(&self) {
        self.shared.invalidate();
    }

    /// Drops the cached token if it is `sent`, the value a call carried (read from that
    /// call's request): what to do when the provider answers that call 401. A newer token,
    /// cached by another call meanwhile, stays, so many calls refused at once cause one
    /// fetch, not one each; and a token is dropped this way at most once in 10 seconds, so
    /// 401s that are not about the token (which a caller may provoke at will) cause at most
    /// one fetch in that time. [`invalidate`](Self::invalidate) is not limited.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use tollgate_core::{BoxError, Secret};
    /// use tollgate_headers::{Token, TokenHeaderLayer, Upstream};
    ///
    /// let refresh = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t"))) };
    /// let layer = TokenHeaderLayer::access_token(refresh, Upstream::transak());
    /// // After `response.status() == 401` for a request that carried `sent`:
    /// let sent = HeaderValue::from_static("t");
    /// layer.invalidate_sent(&sent);
    /// ```
    pub fn invalidate_sent(&self, sent: &HeaderValue) {
        self.shared.invalidate_sent(sent);
    }

    /// The header this layer sets.
    pub fn header_name(&self) -> &HeaderName {
        &self.shared.config.name
    }

    /// The upstreams the token may be sent to (never empty).
    pub fn upstreams(&self) -> &[Upstream] {
        &self.shared.config.upstreams
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
        TokenHeader::new(inner, self)
    }
}
