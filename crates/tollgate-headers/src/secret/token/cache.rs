//! The token cache and its single flight: one fetch, in a task of its own, for every call
//! that finds the cache stale. No tower in sight; the service asks [`Shared::lookup`] and
//! waits on a [`Ticket`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tollgate_core::metrics::{self, TokenRefresh};
use tollgate_core::{BoxError, SharedClock, Upstream};

use super::{TokenFetchError, TokenProvider};
use crate::HeaderError;

/// What a [`TokenHeaderLayer`](crate::TokenHeaderLayer) is configured with.
#[derive(Clone)]
pub(super) struct Config {
    pub(super) name: HeaderName,
    /// Never empty: the constructor takes the first one.
    pub(super) upstreams: Vec<Upstream>,
    pub(super) provider: Arc<dyn TokenProvider>,
    pub(super) clock: SharedClock,
    pub(super) refresh_margin: u64,
    pub(super) fetch_timeout: Duration,
}

#[derive(Clone)]
struct Cached {
    value: HeaderValue,
    /// From this second on the token is refreshed: `refresh_margin` before its expiry, or
    /// half-way through its life when that is shorter than the margin (a 30 s token under the
    /// 60 s default margin would otherwise be fetched again for every call).
    refresh_from: Option<u64>,
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

/// A layer's configuration and its token state, shared by the layer, its clones and every
/// service made from them.
pub(super) struct Shared {
    pub(super) config: Config,
    /// Identifies this layer in [`FETCHING`].
    id: u64,
    /// Lock order: `flight` before `cache` when both are held.
    cache: Mutex<Option<Cached>>,
    /// The fetch under way, shared by every call that found the cache stale.
    flight: Mutex<Option<Arc<Flight>>>,
    /// When [`invalidate_sent`](Self::invalidate_sent) last dropped a token (clock seconds).
    last_dropped: Mutex<Option<u64>>,
}

/// [`TokenHeaderLayer::invalidate_sent`](crate::TokenHeaderLayer::invalidate_sent) drops a
/// token at most once in this many seconds: 401s that are not about the token (a request
/// the provider refuses for its own reasons, which a caller may provoke at will) cause at
/// most one fetch in this time, not one per call.
pub(super) const INVALIDATE_SENT_INTERVAL: u64 = 10;

impl Clone for Shared {
    /// The state of a layer reconfigured while it was shared (`Arc::make_mut`): the same
    /// configuration and cached token, but a layer of its own: its own id, and no fetch under
    /// way (a fetch belongs to the layer that started it).
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            id: next_id(),
            cache: Mutex::new(lock(&self.cache).clone()),
            flight: Mutex::new(None),
            last_dropped: Mutex::new(*lock(&self.last_dropped)),
        }
    }
}

/// What [`Shared::lookup`] found for a call.
pub(super) enum Lookup {
    Fresh(HeaderValue),
    Wait(Ticket),
    Refused(HeaderError),
}

impl Shared {
    pub(super) fn new(config: Config) -> Self {
        Self {
            config,
            id: next_id(),
            cache: Mutex::new(None),
            flight: Mutex::new(None),
            last_dropped: Mutex::new(None),
        }
    }

    /// The cached value if it is still fresh: before its refresh point (`refresh_margin`
    /// before its expiry, or half its life for a token living less than twice the margin).
    fn cached(&self) -> Option<HeaderValue> {
        let now = self.config.clock.now_unix();
        let cache = lock(&self.cache);
        let cached = cache.as_ref()?;
        let fresh = cached.refresh_from.is_none_or(|from| now < from);
        fresh.then(|| cached.value.clone())
    }

    /// Whether the current task runs this layer's own token fetch.
    pub(super) fn in_own_fetch(&self) -> bool {
        FETCHING
            .try_with(|layers| layers.contains(&self.id))
            .unwrap_or(false)
    }

    pub(super) fn unavailable(&self, error: TokenFetchError) -> HeaderError {
        HeaderError::TokenUnavailable {
            header: self.config.name.clone(),
            source: Box::new(error),
        }
    }

    /// The fresh cached value, or a place in the fetch under way, or in a new one.
    pub(super) fn lookup(self: &Arc<Self>) -> Lookup {
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
        let Config {
            name,
            provider,
            fetch_timeout,
            ..
        } = &self.config;
        let fetched = tokio::time::timeout(*fetch_timeout, provider.fetch_token()).await;
        let outcome = match fetched {
            // A blank token is a credential anyone has: never sent (core's blank-secret rule).
            Ok(Ok(token)) if token.secret.is_blank() => {
                tracing::warn!(
                    target: "tollgate",
                    layer = "token_header",
                    header = %name,
                    "token provider answered a blank token; the request was not sent"
                );
                Outcome::Invalid
            }
            Ok(Ok(token)) => {
                let now = self.config.clock.now_unix();
                match (token.secret.to_header_value(), token.expires_at) {
                    // Expired on arrival: sending it would fail at best.
                    (Ok(_), Some(expires_at)) if expires_at <= now => {
                        tracing::warn!(
                            target: "tollgate",
                            layer = "token_header",
                            header = %name,
                            expires_at,
                            now,
                            "token provider answered an expired token; the request was not sent"
                        );
                        Outcome::Error(TokenFetchError::Expired { expires_at })
                    }
                    (Ok(value), expires_at) => Outcome::Value {
                        value,
                        expires_at,
                        refresh_from: expires_at.map(|expiry| {
                            let margin = self.config.refresh_margin.min((expiry - now) / 2);
                            expiry - margin
                        }),
                    },
                    (Err(_), _) => Outcome::Invalid,
                }
            }
            Ok(Err(source)) => {
                tracing::warn!(
                    target: "tollgate",
                    layer = "token_header",
                    header = %name,
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
                    header = %name,
                    timeout = ?fetch_timeout,
                    "token provider timed out; the request was not sent"
                );
                Outcome::Error(TokenFetchError::TimedOut {
                    after: *fetch_timeout,
                })
            }
        };
        // `tollgate_token_refreshes_total{outcome}`: a bounded set, never the provider's text.
        metrics::token_refresh(match &outcome {
            Outcome::Value { .. } => TokenRefresh::Success,
            // A token expired on arrival is as unusable as a blank one.
            Outcome::Invalid | Outcome::Error(TokenFetchError::Expired { .. }) => {
                TokenRefresh::Invalid
            }
            Outcome::Error(TokenFetchError::TimedOut { .. }) => TokenRefresh::Timeout,
            Outcome::Failed { .. } | Outcome::Error(_) => TokenRefresh::Error,
        });
        outcome
    }

    /// Ends the fetch `id`: stores its token (if it is still the current fetch, i.e. no
    /// `invalidate` came in between) and frees the slot for the next fetch.
    fn finish(&self, id: u64, outcome: &Outcome) {
        let mut slot = lock(&self.flight);
        if slot.as_ref().is_none_or(|current| current.id != id) {
            return;
        }
        if let Outcome::Value {
            value,
            expires_at,
            refresh_from,
        } = outcome
        {
            *lock(&self.cache) = Some(Cached {
                value: value.clone(),
                refresh_from: *refresh_from,
            });
            tracing::debug!(
                target: "tollgate",
                layer = "token_header",
                header = %self.config.name,
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

    /// [`invalidate`](Self::invalidate) if the cached token is `sent` and no such drop
    /// happened in the last [`INVALIDATE_SENT_INTERVAL`] seconds; else nothing (a newer
    /// token, or a fetch of one, is already there, or a storm of 401s is under way).
    pub(super) fn invalidate_sent(&self, sent: &HeaderValue) {
        let now = self.config.clock.now_unix();
        let mut flight = lock(&self.flight);
        let mut cache = lock(&self.cache);
        let mut last = lock(&self.last_dropped);
        // Also due when the clock stepped back past the last drop: a wall-clock step must not
        // keep a revoked token in use until the clock catches up.
        let due =
            last.is_none_or(|at| now < at || now >= at.saturating_add(INVALIDATE_SENT_INTERVAL));
        if due && cache.as_ref().is_some_and(|cached| cached.value == sent) {
            *cache = None;
            *flight = None;
            *last = Some(now);
        }
    }

    /// Drops the cached token and forgets the fetch under way (its waiters still get its
    /// outcome; its token is not cached).
    pub(super) fn invalidate(&self) {
        let mut flight = lock(&self.flight);
        *flight = None;
        *lock(&self.cache) = None;
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config {
            name,
            upstreams,
            clock,
            refresh_margin,
            fetch_timeout,
            ..
        } = &self.config;
        f.debug_struct("TokenHeader")
            .field("name", name)
            .field("upstreams", upstreams)
            .field("clock", clock)
            .field("refresh_margin", refresh_margin)
            .field("fetch_timeout", fetch_timeout)
            .finish_non_exhaustive()
    }
}

/// What a finished fetch left for the calls that waited on it.
#[derive(Clone)]
enum Outcome {
    Value {
        value: HeaderValue,
        expires_at: Option<u64>,
        refresh_from: Option<u64>,
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
pub(super) struct Ticket {
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

    /// The header the token is for.
    pub(super) fn name(&self) -> &HeaderName {
        &self.shared.config.name
    }

    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<HeaderValue, HeaderError>> {
        self.wait
            .as_mut()
            .poll(cx)
            .map(|outcome| outcome.into_result(&self.shared.config.name))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.flight.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.abandon(&self.flight);
        }
    }
}
