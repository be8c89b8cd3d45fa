//! [`ReplayGuardLayer`]: the guard's configuration.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use http::{Extensions, HeaderMap};
use tollgate_core::timestamp::TimestampWindow;
use tollgate_core::{Clock, RejectionResponder};
use tower_layer::Layer;

use crate::guard::{NonceShape, Policy, ReplayError, ReplayTicket};
use crate::service::ReplayGuard;
use crate::store::NonceStore;

/// What a [`ReplayGuardLayer`] and its services share.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) policy: Policy,
    pub(crate) store: Arc<dyn NonceStore>,
    pub(crate) responder: RejectionResponder,
}

impl Config {
    pub(crate) fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        self.policy.debug_fields(d);
        d.field("store", &self.store)
            .field("responder", &self.responder);
    }
}

/// Refuses requests outside the timestamp window and requests whose nonce was seen before:
/// the configuration of the [`ReplayGuard`] service.
///
/// For each request, in order:
///
/// 1. the timestamp parses as ASCII digits only (400 `timestamp_malformed`, also when the
///    header is missing or repeated) and lies within `now ± tolerance`, inclusive (401
///    `timestamp_out_of_window`; milliseconds sent where seconds are expected land here);
/// 2. the nonce has the configured [`NonceShape`] (400 `nonce_malformed`, also when missing
///    or repeated);
/// 3. with [`key_id_header`](ReplayGuardLayer::key_id_header), that header is present once
///    and not empty (400 `header_malformed`);
/// 4. the store claims the nonce until `timestamp + tolerance` (401 `replayed` when it was
///    already claimed, 503 `store_full` when the store is full of unexpired claims, 503
///    `store_unavailable` when the store fails: fail closed).
///
/// Only a request whose claim succeeded reaches the inner service, with a
/// [`RequestTimestamp`](tollgate_core::RequestTimestamp) in its extensions. Steps 1 to 3 are
/// [`check`](ReplayGuardLayer::check), usable without tower. Refusals are built with
/// [`Rejection::from_code`](tollgate_core::Rejection::from_code) and answered through a
/// [`RejectionResponder`] (JSON by default, replaceable with
/// [`on_rejection`](ReplayGuardLayer::on_rejection)).
///
/// # Where the timestamp and the nonce come from
///
/// - [`new`](ReplayGuardLayer::new): the [`VerifiedSignature`](tollgate_core::VerifiedSignature)
///   a verifier outside the guard inserted — its **signed** timestamp and its
///   [replay key](tollgate_core::VerifiedSignature::replay_key), which names the message (its
///   signed id, else the digest of the signed bytes) and never the key that verified it.
///   The guard for every verifier of this workspace (tollgate-signature's schemes, and the
///   one `TranzilaVerifyLayer` builds in).
/// - [`tranzila`](ReplayGuardLayer::tranzila), [`standard_webhooks`](ReplayGuardLayer::standard_webhooks),
///   [`headers`](ReplayGuardLayer::headers): two request headers, for a stack without a
///   verifier that records them.
///
/// # TTL semantics
///
/// The guard asks the store to hold a claim until
/// [`TimestampWindow::last_valid_second`]`(timestamp)` (plus the optional
/// [`clock_skew_margin`](ReplayGuardLayer::clock_skew_margin)), the last second at which the
/// window still accepts the request by the guard's clock. The store holds it until the later of
/// that and its own "now" plus its minimum retention ([`held_until`](crate::held_until)), so a
/// replay is refused even when the guard's and the store's clocks disagree. Once a claim
/// expires, the same request is refused by the window (401 `timestamp_out_of_window`), not
/// accepted again. See the crate docs' "TTL semantics".
///
/// # Namespaces
///
/// Keys are claimed as `(scheme, namespace + key id header, nonce)` with
/// [`replay_key`](crate::replay_key), so two schemes, two
/// [`namespace`](ReplayGuardLayer::namespace)s or two partners' app keys never collide. With
/// [`new`](ReplayGuardLayer::new) there is no key id in the key: the nonce is the message's
/// identity, the same whichever key of a rotating ring verified it.
///
/// # Failed handling releases the claim
///
/// A sender retries a delivery that failed, with the same message id (Standard Webhooks) or
/// the same signed body. So the claim must not outlive a failed handling: when the inner
/// service returns an error, or answers **5xx or 429**, and the verified signature covers the
/// body ([`VerifiedSignature::covers_content`](tollgate_core::VerifiedSignature::covers_content),
/// true for tollgate-signature's schemes but the undelimited `Canonical` layout, whose bytes
/// can move between path and body), the guard releases the claim
/// ([`NonceStore::release`], a compare-and-delete of this request's own claim) before the
/// response goes out, and the sender's retry is accepted. Any other answer (2xx, 3xx, 4xx)
/// keeps the claim: the message was handled. While a handling is in progress its claim is
/// held, so a concurrent duplicate is refused (401 `replayed`) and never runs twice.
///
/// What this asks of handlers: answer 5xx (or 429) only when the handling left no effect, and
/// 2xx/4xx once it did. A request whose connection is dropped while the handler runs keeps its
/// claim (the handler may have done its work; and a client must not be able to free a claim by
/// hanging up), so its retry is refused until the claim expires. If the release itself fails
/// (store down), the claim stays and the failure is logged.
///
/// A nonce whose signature does not cover the body is **never** released: Tranzila's access
/// token signs the app key, time and nonce only, so a released nonce would let the same
/// headers carry another body; such a sender retries with a fresh nonce. The header-based
/// guards ([`standard_webhooks`](Self::standard_webhooks), [`headers`](Self::headers),
/// [`tranzila`](Self::tranzila)) release only when the verifier outside recorded a
/// [`VerifiedSignature`](tollgate_core::VerifiedSignature) that covers the body and names the same message id and timestamp as
/// the headers they claim.
///
/// # Configuration errors
///
/// Nothing here can fail when the layer is built: every setter takes a value that works. Two
/// deployment errors can only be seen per request, because the guard cannot know at build time
/// which verifier sits outside it: with [`new`](ReplayGuardLayer::new), a request that reaches
/// the guard without a `VerifiedSignature` (no verifier ran), or with one that signs no
/// timestamp while no [`untimed_retention`](ReplayGuardLayer::untimed_retention) is set, is
/// answered 500 `replay_guard_misconfigured`.
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
///     .layer(VerifySignatureLayer)   // outer: verifies first
///     .layer(ReplayGuardLayer)       // inner: claims verified messages
///     .service(handler)
/// ```
///
/// # Example
///
/// ```
/// use axum::{Router, routing::post};
/// use tollgate_replay::{MemoryNonceStore, ReplayGuardLayer};
///
/// let app: Router = Router::new()
///     .route("/webhooks", post(|| async { "ok" }))
///     .layer(ReplayGuardLayer::standard_webhooks(MemoryNonceStore::new(600_000)).namespace("sender-a"));
/// # let _ = app;
/// ```
#[derive(Clone)]
#[must_use]
pub struct ReplayGuardLayer {
    config: Arc<Config>,
}

impl ReplayGuardLayer {
    fn with_policy(policy: Policy, store: impl NonceStore) -> Self {
        Self {
            config: Arc::new(Config {
                policy,
                store: Arc::new(store),
                responder: RejectionResponder::json(),
            }),
        }
    }

    /// A guard claiming, in `store`, the [`VerifiedSignature`](tollgate_core::VerifiedSignature)
    /// that a verifier outside it inserted: its **signed** timestamp, and its
    /// [replay key](tollgate_core::VerifiedSignature::replay_key), which names the message (its
    /// signed id, else the digest of the signed bytes) and never the key that verified it, so
    /// a message signed under an old and a new key during a rotation is one claim however the
    /// signature list is edited. Claims are namespaced by the scheme (and
    /// [`namespace`](ReplayGuardLayer::namespace)). Nonces are 1 to 1024 bytes; the window
    /// ±300 s on the system clock.
    ///
    /// A request without the extension is answered 500 `replay_guard_misconfigured`. So is a
    /// verified signature that signs no timestamp (body-only schemes: OneKey,
    /// `X-Webhook-Signature`, GitHub) unless
    /// [`untimed_retention`](ReplayGuardLayer::untimed_retention) says how long to remember
    /// it: a time the signature does not cover bounds nothing, so the guard never reads one
    /// from an unsigned header.
    ///
    /// To share one store between several layers, pass clones of an `Arc` of it (or of a
    /// [`MemoryNonceStore`](crate::MemoryNonceStore), whose clones share their table).
    ///
    /// ```
    /// use tollgate_replay::{MemoryNonceStore, ReplayGuardLayer};
    ///
    /// // Inside tollgate-signature's verifier (or any layer inserting a VerifiedSignature).
    /// let guard = ReplayGuardLayer::new(MemoryNonceStore::new(600_000));
    /// assert_eq!(guard.window().tolerance_secs(), 300);
    /// ```
    pub fn new(store: impl NonceStore) -> Self {
        Self::with_policy(Policy::verified(), store)
    }

    /// Tranzila's headers, for a stack without `TranzilaVerifyLayer` (which builds its own guard
    /// in): `X-tranzila-api-request-time` and `X-tranzila-api-nonce` (exactly 80 hex
    /// characters), namespaced by the app key in `X-tranzila-api-app-key`. Tranzila's access
    /// token does not cover the method, path or body, so this claim is the only thing that
    /// stops a captured header set from being replayed on another request.
    pub fn tranzila(store: impl NonceStore) -> Self {
        Self::with_policy(Policy::tranzila(), store)
    }

    /// Standard Webhooks' headers: `webhook-timestamp` and the message id `webhook-id`. Give
    /// each sender its own [`namespace`](ReplayGuardLayer::namespace): `webhook-id` is unique
    /// per sender only.
    pub fn standard_webhooks(store: impl NonceStore) -> Self {
        Self::with_policy(Policy::standard_webhooks(), store)
    }

    /// Reads the timestamp (Unix seconds) and the nonce from two headers; claims them in the
    /// namespace `scheme`. The nonce shape defaults to [`NonceShape::Token`] of at most 256
    /// characters, the window to ±300 s.
    pub fn headers(
        scheme: impl Into<Cow<'static, str>>,
        timestamp: HeaderName,
        nonce: HeaderName,
        store: impl NonceStore,
    ) -> Self {
        Self::with_policy(Policy::headers(scheme.into(), timestamp, nonce), store)
    }

    fn map_policy(mut self, change: impl FnOnce(&mut Policy)) -> Self {
        change(&mut Arc::make_mut(&mut self.config).policy);
        self
    }

    /// Claims in the namespace `namespace` (default empty), next to the scheme: give each
    /// sender its own (one guard per sender's route), so that message ids chosen by one sender
    /// can never collide with, or pre-empt, another's.
    pub fn namespace(self, namespace: impl Into<Cow<'static, str>>) -> Self {
        let namespace = namespace.into();
        self.map_policy(|policy| policy.set_namespace(namespace))
    }

    /// With [`new`](ReplayGuardLayer::new): accept verified signatures that sign no timestamp
    /// (body-only schemes), remembering each for `retention` from its first acceptance (whole
    /// seconds, at least 1).
    ///
    /// A body-only signature never expires: the same body and signature stay valid for as long
    /// as the key does. So this guard can promise only that the same signed body is refused for
    /// `retention` after it was accepted; after that it is accepted again. Size `retention` to
    /// cover the sender's whole retry schedule and as long as a captured request is a risk —
    /// days, not minutes — and use a store that keeps claims that long (`RedisNonceStore`;
    /// a `MemoryNonceStore` needs `retention × requests per second` of capacity and forgets on
    /// restart). Where the body carries an event id, deduplicating on that id in your handler
    /// (in your database, for good) is the stronger rule. Ignored with the header sources.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate_replay::{MemoryNonceStore, ReplayGuardLayer};
    ///
    /// let guard = ReplayGuardLayer::new(MemoryNonceStore::new(1_000))
    ///     .untimed_retention(Duration::from_secs(7 * 24 * 3600));
    /// # let _ = guard;
    /// ```
    pub fn untimed_retention(self, retention: Duration) -> Self {
        self.map_policy(|policy| policy.set_untimed_retention(retention))
    }

    /// Namespaces claims by the value of this header too (Tranzila's app key), so the same
    /// nonce from two partners is two claims. The header must then be present exactly once
    /// and non-empty (else 400 `header_malformed`): a copy of a request without it, or with
    /// it twice, would otherwise claim in another namespace. Ignored with
    /// [`new`](ReplayGuardLayer::new), whose claims name the message, not a key.
    pub fn key_id_header(self, header: HeaderName) -> Self {
        self.map_policy(|policy| policy.set_key_id_header(header))
    }

    /// Accepts timestamps within `tolerance` either side of the clock (default 300 s,
    /// inclusive; whole seconds).
    pub fn tolerance(self, tolerance: Duration) -> Self {
        self.map_policy(|policy| policy.set_tolerance(tolerance))
    }

    /// The shape nonces must have.
    pub fn nonce_shape(self, shape: NonceShape) -> Self {
        self.map_policy(|policy| policy.set_nonce_shape(shape))
    }

    /// The clock the window is checked against (default [`SystemClock`](tollgate_core::SystemClock)).
    pub fn clock(self, clock: impl Clock) -> Self {
        self.map_policy(|policy| policy.set_clock(Arc::new(clock)))
    }

    /// Asks the store to hold claims `margin` longer than the window needs:
    /// `expires_at = timestamp + tolerance + margin` (default 0; whole seconds).
    ///
    /// The store decides expiry with its own clock. The stores of this crate already hold
    /// every claim for a minimum retention from their clock (see
    /// [`held_until`](crate::held_until)), which covers any disagreement between this guard's
    /// clock and the store's; this margin additionally covers a store of your own without such
    /// a retention, up to `margin` seconds of skew between the store's clock and the
    /// verifiers' clocks.
    pub fn clock_skew_margin(self, margin: Duration) -> Self {
        self.map_policy(|policy| policy.set_skew_margin(margin))
    }

    /// Answers refusals with `responder` (a [`RejectionResponder`], or a closure
    /// `Fn(&Rejection) -> Response<Bytes>`) instead of the default JSON.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::Response;
    /// use tollgate_core::Rejection;
    /// use tollgate_replay::{MemoryNonceStore, ReplayGuardLayer};
    ///
    /// let guard = ReplayGuardLayer::new(MemoryNonceStore::new(1_000)).on_rejection(|r: &Rejection| {
    ///     let mut response = Response::new(Bytes::from(r.code().to_owned()));
    ///     *response.status_mut() = r.status();
    ///     response
    /// });
    /// # let _ = guard;
    /// ```
    pub fn on_rejection(mut self, responder: impl Into<RejectionResponder>) -> Self {
        Arc::make_mut(&mut self.config).responder = responder.into();
        self
    }

    /// The window.
    pub fn window(&self) -> TimestampWindow {
        self.config.policy.window()
    }

    /// Checks the timestamp, the nonce's shape and the key id header, and returns what to
    /// claim: steps 1 to 3 of the list above, with no tower in sight. Claiming (step 4) is the
    /// caller's.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use tollgate_core::ManualClock;
    /// use tollgate_replay::{MemoryNonceStore, ReplayGuardLayer};
    ///
    /// let guard = ReplayGuardLayer::standard_webhooks(MemoryNonceStore::new(1_000))
    ///     .clock(ManualClock::new(1_700_000_100));
    /// let mut headers = HeaderMap::new();
    /// headers.insert("webhook-id", "msg_2ZzA".parse().unwrap());
    /// headers.insert("webhook-timestamp", "1700000000".parse().unwrap());
    /// let ticket = guard.check(&headers, &http::Extensions::new()).unwrap();
    /// assert_eq!(ticket.timestamp(), Some(1_700_000_000));
    /// assert_eq!(ticket.expires_at(), 1_700_000_300);
    ///
    /// headers.insert("webhook-timestamp", "+1700000000".parse().unwrap());
    /// let refused = guard.check(&headers, &http::Extensions::new()).unwrap_err();
    /// assert_eq!(refused.to_rejection().code(), "timestamp_malformed");
    /// ```
    pub fn check(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<ReplayTicket, ReplayError> {
        self.config.policy.check(headers, extensions)
    }

    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }
}

impl<S> Layer<S> for ReplayGuardLayer {
    type Service = ReplayGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReplayGuard::new(inner, self)
    }
}

impl fmt::Debug for ReplayGuardLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ReplayGuardLayer");
        self.config.debug_fields(&mut d);
        d.finish()
    }
}
