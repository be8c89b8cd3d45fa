//! The metrics every tollgate layer records, through the [`metrics`](https://docs.rs/metrics)
//! facade, and the span fields it records for request tracing.
//!
//! Operators alert on refusals (a spike of `signature_invalid` or `replayed` is an attack or a
//! partner with a broken key), on the nonce store's fullness and errors, and on token refresh
//! failures. tollgate records them through the `metrics` facade, the ecosystem's standard:
//! a library never picks an exporter. The application installs one recorder
//! (`metrics-exporter-prometheus`, StatsD, OpenTelemetry…) and every tollgate layer reports
//! to it; with no recorder installed, recording is a no-op. The names are constants here so
//! that every layer, dashboard and test spells them the same way.
//!
//! # Names
//!
//! Prometheus conventions: snake_case, the `tollgate_` prefix, `_total` for counters,
//! `_seconds` for durations in seconds (base units).
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | [`REQUESTS_ALLOWED_TOTAL`] | counter | `layer` | requests a server layer let through |
//! | [`REQUESTS_REFUSED_TOTAL`] | counter | `layer`, `code` | requests a server layer refused, by [rejection code](crate::rejection::code) |
//! | [`VERIFY_DURATION_SECONDS`] | histogram | `layer` | time to verify a signature or token (`signature`, `tranzila`), whatever the outcome |
//! | [`NONCE_CLAIMS_TOTAL`] | counter | `store`, `outcome` | nonce claims: `claimed`, `replayed`, `full`, `error` |
//! | [`NONCE_STORE_ERRORS_TOTAL`] | counter | `store` | failed store calls (claims answered `full` or `error`, and failed releases) |
//! | [`NONCE_CLAIM_DURATION_SECONDS`] | histogram | `store` | time of one claim, whatever its outcome |
//! | [`NONCE_STORE_ENTRIES`] | gauge | `store` | entries held by the in-memory stores of the process |
//! | [`NONCE_STORE_CAPACITY`] | gauge | `store` | their capacity: `entries / capacity` is fullness |
//! | [`TOKEN_REFRESHES_TOTAL`] | counter | `outcome` | access-token fetches: `success`, `error`, `timeout`, `invalid` |
//!
//! The `layer` label is one of [`LayerName`]'s names (`origin`, `client_ip`, `ip_allowlist`,
//! `signature`, `replay`, `tranzila`, `https`, `other`); `code` one of the codes of
//! [`rejection::code`](crate::rejection::code) (`other` for a code of your own); `store` the
//! store's kind (`memory`, `redis`, … , `custom`).
//!
//! A request refused by one layer counts once, in that layer's `refused` counter; a request
//! that passes every layer counts once in each layer's `allowed` counter. A Tranzila request
//! passes `tranzila` (the token check) and then `replay` (the built-in nonce claim).
//!
//! # Span fields
//!
//! The server layers also record what they established into the **current span**, when it
//! declares the field (a span that does not declare it is left alone, at no cost beyond the
//! lookup): declare them in tower-http's `TraceLayer::make_span_with` and every line the
//! request logs carries them. A later value replaces an earlier one in subscribers that keep
//! one value per field (tracing-subscriber's JSON format, OpenTelemetry); the default text
//! format prints every value recorded, in order, so a request let through by one layer and
//! refused by the next shows `tollgate.decision="allowed" … tollgate.decision="refused"`.
//!
//! | field | recorded by | value |
//! |---|---|---|
//! | [`span_field::CLIENT_IP`] | the client-IP layer | the resolved client IP |
//! | [`span_field::KEY_ID`] | the signature and Tranzila verifiers | the id of the key that verified (from your key ring, or the Tranzila app key found in your secrets) |
//! | [`span_field::DECISION`] | every server layer | `allowed` (by the first layer that let the request through), then `refused` if a layer refused it |
//! | [`span_field::LAYER`] | the layer that refused | its `layer` label |
//! | [`span_field::CODE`] | the layer that refused | the rejection code |
//!
//! ```
//! # use http::Request;
//! // tower-http:
//! // TraceLayer::new_for_http().make_span_with(|request: &Request<_>| { ... })
//! let make_span = |request: &Request<()>| {
//!     tracing::info_span!(
//!         "request",
//!         method = %request.method(),
//!         path = request.uri().path(),
//!         tollgate.client_ip = tracing::field::Empty,
//!         tollgate.key_id = tracing::field::Empty,
//!         tollgate.decision = tracing::field::Empty,
//!         tollgate.layer = tracing::field::Empty,
//!         tollgate.code = tracing::field::Empty,
//!     )
//! };
//! # let _ = make_span(&Request::new(()));
//! ```
//!
//! # Security considerations
//!
//! - **Label values are bounded sets, never request input.** Every label value is a
//!   `&'static str` from a fixed list: the layer's name, a known rejection code (any other code
//!   is counted as `other`), the store's kind, an outcome. No IP, path, header value or key id
//!   from a request ever becomes a label, so a flood of distinct forged requests cannot grow
//!   the recorder's memory or a time-series database's cardinality (tested: a thousand
//!   distinct client IPs and key ids give the same few series).
//! - **Span fields never carry a secret.** The key id is the ring's name for a key (or the
//!   Tranzila app key, recorded only once the token verified), never key bytes, a signature
//!   or a token; the client IP is the one the client-IP layer resolved from the sources you
//!   trust.
//!
//! # Cost
//!
//! With no recorder installed, recording is a check of the global recorder and a call into
//! the no-op one. The `layer`/`code` series are built once per process (a table of keys), so
//! the per-request path allocates nothing. The verify histogram reads the clock only when a
//! recorder can see it: each verification takes the histogram's handle from the current
//! recorder and asks it to record a value zero times, which the facade hands on (and so
//! tollgate notices) only when a real recorder is behind the handle; a recorder must treat a
//! count of zero as nothing to record, as the `metrics` crate's own do. Feature `metrics` (on by default) brings the
//! `metrics` crate, a small facade; without it the recording functions are empty.

use std::fmt;
use std::time::Duration;

/// Counter `tollgate_requests_allowed_total{layer}`: requests a server layer let through.
pub const REQUESTS_ALLOWED_TOTAL: &str = "tollgate_requests_allowed_total";
/// Counter `tollgate_requests_refused_total{layer,code}`: requests a server layer refused.
pub const REQUESTS_REFUSED_TOTAL: &str = "tollgate_requests_refused_total";
/// Histogram `tollgate_verify_duration_seconds{layer}`: time to verify a signature or token.
pub const VERIFY_DURATION_SECONDS: &str = "tollgate_verify_duration_seconds";
/// Counter `tollgate_nonce_claims_total{store,outcome}`: nonce claims by outcome
/// ([`ClaimOutcome`]).
pub const NONCE_CLAIMS_TOTAL: &str = "tollgate_nonce_claims_total";
/// Counter `tollgate_nonce_store_errors_total{store}`: store calls that failed.
pub const NONCE_STORE_ERRORS_TOTAL: &str = "tollgate_nonce_store_errors_total";
/// Histogram `tollgate_nonce_claim_duration_seconds{store}`: time of one claim.
pub const NONCE_CLAIM_DURATION_SECONDS: &str = "tollgate_nonce_claim_duration_seconds";
/// Gauge `tollgate_nonce_store_entries{store}`: entries held by the process's in-memory stores
/// (expired entries not reclaimed yet included).
pub const NONCE_STORE_ENTRIES: &str = "tollgate_nonce_store_entries";
/// Gauge `tollgate_nonce_store_capacity{store}`: the capacity of the process's in-memory
/// stores.
pub const NONCE_STORE_CAPACITY: &str = "tollgate_nonce_store_capacity";
/// Counter `tollgate_token_refreshes_total{outcome}`: access-token fetches by outcome
/// ([`TokenRefresh`]).
pub const TOKEN_REFRESHES_TOTAL: &str = "tollgate_token_refreshes_total";

/// The label names.
pub mod label {
    /// The server layer: one of [`LayerName`](super::LayerName)'s names.
    pub const LAYER: &str = "layer";
    /// The rejection code (`other` for a code outside
    /// [`rejection::code`](crate::rejection::code)).
    pub const CODE: &str = "code";
    /// The nonce store's kind (`NonceStore::kind` in tollgate-replay).
    pub const STORE: &str = "store";
    /// The outcome of a claim or a token refresh.
    pub const OUTCOME: &str = "outcome";
}

/// The span fields the server layers record into the current span, when it declares them.
pub mod span_field {
    /// The client IP the client-IP layer resolved.
    pub const CLIENT_IP: &str = "tollgate.client_ip";
    /// The id of the key that verified the request.
    pub const KEY_ID: &str = "tollgate.key_id";
    /// `allowed`, or `refused`.
    pub const DECISION: &str = "tollgate.decision";
    /// The layer that refused (a `layer` label value).
    pub const LAYER: &str = "tollgate.layer";
    /// The code of the refusal.
    pub const CODE: &str = "tollgate.code";
}

/// A server layer, as the `layer` label names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LayerName {
    /// tollgate-origin's `OriginAllowlistLayer`: `origin`.
    Origin,
    /// tollgate-client-ip's `ResolveClientIpLayer`: `client_ip`.
    ClientIp,
    /// tollgate-client-ip's `IpAllowlistLayer`: `ip_allowlist`.
    IpAllowlist,
    /// tollgate-signature's `VerifySignatureLayer`: `signature`.
    Signature,
    /// tollgate-replay's `ReplayGuardLayer` (also the one inside `TranzilaVerifyLayer`):
    /// `replay`.
    Replay,
    /// tollgate-tranzila's `TranzilaVerifyLayer` (its token check): `tranzila`.
    Tranzila,
    /// tollgate-https's `RequireHttpsLayer`: `https`.
    Https,
    /// A refusal answered outside any tollgate layer (an extractor, your own code calling
    /// [`RejectionResponder::respond`](crate::RejectionResponder::respond)): `other`.
    Other,
}

impl LayerName {
    /// Every layer, in the order of their index.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    const ALL: [LayerName; 8] = [
        LayerName::Origin,
        LayerName::ClientIp,
        LayerName::IpAllowlist,
        LayerName::Signature,
        LayerName::Replay,
        LayerName::Tranzila,
        LayerName::Https,
        LayerName::Other,
    ];

    /// The `layer` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            LayerName::Origin => "origin",
            LayerName::ClientIp => "client_ip",
            LayerName::IpAllowlist => "ip_allowlist",
            LayerName::Signature => "signature",
            LayerName::Replay => "replay",
            LayerName::Tranzila => "tranzila",
            LayerName::Https => "https",
            LayerName::Other => "other",
        }
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for LayerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a nonce claim, the `outcome` label of [`NONCE_CLAIMS_TOTAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClaimOutcome {
    /// The nonce was new and is now claimed: `claimed`.
    Claimed,
    /// The nonce was claimed before: `replayed`.
    Replayed,
    /// The store is full of unexpired claims: `full`.
    Full,
    /// The store failed (timeout, unreachable, error): `error`.
    Error,
}

impl ClaimOutcome {
    /// The `outcome` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ClaimOutcome::Claimed => "claimed",
            ClaimOutcome::Replayed => "replayed",
            ClaimOutcome::Full => "full",
            ClaimOutcome::Error => "error",
        }
    }
}

/// The outcome of an access-token fetch, the `outcome` label of [`TOKEN_REFRESHES_TOTAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenRefresh {
    /// The provider answered a usable token: `success`.
    Success,
    /// The provider failed: `error`.
    Error,
    /// The provider did not answer within the fetch timeout: `timeout`.
    Timeout,
    /// The provider answered a blank token, one that is no header value, or one that had
    /// already expired: `invalid`.
    Invalid,
}

impl TokenRefresh {
    /// The `outcome` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenRefresh::Success => "success",
            TokenRefresh::Error => "error",
            TokenRefresh::Timeout => "timeout",
            TokenRefresh::Invalid => "invalid",
        }
    }
}

/// The `code` label of `code`: the known code itself, else `other` (so a code of your own, or
/// any string, never grows the label set).
pub fn code_label(code: &str) -> &'static str {
    label_of(crate::rejection::code_index(code))
}

/// The `code` label of the known code at `index`, `other` for none.
fn label_of(index: Option<usize>) -> &'static str {
    index
        .and_then(|index| crate::rejection::all_codes().get(index))
        .copied()
        .unwrap_or("other")
}

/// The current span when it can record anything: none without a subscriber (one atomic read
/// when no subscriber was ever set, instead of looking the current span up) or when disabled.
fn current_span() -> Option<tracing::Span> {
    if !tracing::dispatcher::has_been_set() {
        return None;
    }
    let span = tracing::Span::current();
    (!span.is_disabled()).then_some(span)
}

/// Marks a request whose `allowed` decision is in its span already.
#[derive(Clone, Copy, Debug)]
struct DecisionRecorded;

/// Records that `layer` let the request whose extensions these are through:
/// [`REQUESTS_ALLOWED_TOTAL`], and [`span_field::DECISION`] = `allowed` in the current span
/// (once per request: the first layer that allows it records it).
#[doc(hidden)]
pub fn allowed(layer: LayerName, extensions: &mut http::Extensions) {
    imp::allowed(layer);
    if let Some(span) = current_span() {
        record_allowed(&span, extensions);
    }
}

/// Records [`span_field::DECISION`] = `allowed` in `span`, unless a layer did for this request.
fn record_allowed(span: &tracing::Span, extensions: &mut http::Extensions) {
    if extensions.get::<DecisionRecorded>().is_none() {
        extensions.insert(DecisionRecorded);
        span.record(span_field::DECISION, "allowed");
    }
}

/// Records that `layer` verified the request whose extensions these are with the key
/// `key_id` and lets it through: [`record_key_id`] then [`allowed`], looking the current span
/// up once.
#[doc(hidden)]
pub fn allowed_verified(layer: LayerName, key_id: &str, extensions: &mut http::Extensions) {
    imp::allowed(layer);
    if let Some(span) = current_span() {
        span.record(span_field::KEY_ID, key_id);
        record_allowed(&span, extensions);
    }
}

/// Records that `layer` refused a request with `code`: [`REQUESTS_REFUSED_TOTAL`], and the
/// decision, layer and code in the current span. Called by
/// [`RejectionResponder::refuse`](crate::RejectionResponder::refuse); a layer that answers a
/// refusal without the responder (tollgate-https's redirect) calls it itself.
#[doc(hidden)]
pub fn refused(layer: LayerName, code: &str) {
    let index = crate::rejection::code_index(code);
    let code = label_of(index);
    imp::refused(layer, index);
    if let Some(span) = current_span() {
        span.record(span_field::DECISION, "refused");
        span.record(span_field::LAYER, layer.as_str());
        span.record(span_field::CODE, code);
    }
}

/// Times one verification of `layer` for [`VERIFY_DURATION_SECONDS`]: start it before
/// verifying, [`finish`](VerifyTimer::finish) it after, whatever the outcome.
///
/// The clock is read only when a recorder can see the histogram: the histogram's handle is
/// taken from the current recorder (the thread's local one, else the global one) when the
/// timer starts, so a recorder installed after earlier requests gets the next ones, and with
/// no recorder neither the start nor the end is read.
#[doc(hidden)]
pub fn verify_timer(layer: LayerName) -> VerifyTimer {
    VerifyTimer(imp::verify_timer(layer))
}

/// A running [`verify_timer`].
#[doc(hidden)]
#[must_use = "a timer records nothing until it is finished"]
pub struct VerifyTimer(imp::VerifyTimer);

impl fmt::Debug for VerifyTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyTimer").finish_non_exhaustive()
    }
}

impl VerifyTimer {
    /// Records the time since the timer started, when a recorder can see it.
    pub fn finish(self) {
        self.0.finish();
    }
}

/// Records one nonce claim in `store` ([`NONCE_CLAIMS_TOTAL`],
/// [`NONCE_CLAIM_DURATION_SECONDS`], and [`NONCE_STORE_ERRORS_TOTAL`] for `full` and `error`).
#[doc(hidden)]
pub fn nonce_claim(store: &'static str, outcome: ClaimOutcome, elapsed: Duration) {
    imp::nonce_claim(store, outcome, elapsed);
}

/// Records a failed store call other than a claim (a release): [`NONCE_STORE_ERRORS_TOTAL`].
#[doc(hidden)]
pub fn nonce_store_error(store: &'static str) {
    imp::nonce_store_error(store);
}

/// Adds `entries` (may be negative) to [`NONCE_STORE_ENTRIES`] and `capacity` to
/// [`NONCE_STORE_CAPACITY`] of `store`: each in-memory store adds what it holds, so the gauges
/// are the process's total.
#[doc(hidden)]
pub fn nonce_store_size(store: &'static str, entries: f64, capacity: f64) {
    imp::nonce_store_size(store, entries, capacity);
}

/// Records one access-token fetch ([`TOKEN_REFRESHES_TOTAL`]).
#[doc(hidden)]
pub fn token_refresh(outcome: TokenRefresh) {
    imp::token_refresh(outcome);
}

/// Records the resolved client IP in the current span ([`span_field::CLIENT_IP`]).
#[doc(hidden)]
pub fn record_client_ip(ip: &dyn fmt::Display) {
    if let Some(span) = current_span() {
        span.record(span_field::CLIENT_IP, tracing::field::display(ip));
    }
}

/// Records the id of the key that verified the request in the current span
/// ([`span_field::KEY_ID`]). Never pass a value the request chose unless it was verified.
#[doc(hidden)]
pub fn record_key_id(key_id: &str) {
    if let Some(span) = current_span() {
        span.record(span_field::KEY_ID, key_id);
    }
}

#[cfg(feature = "metrics")]
mod imp {
    use std::cell::Cell;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use metrics::{Histogram, IntoF64, Key, Label, Level, Metadata};

    use super::{ClaimOutcome, LayerName, TokenRefresh, label};
    use crate::rejection;

    static METADATA: Metadata<'static> =
        Metadata::new("tollgate", Level::INFO, Some(module_path!()));

    /// One key per layer, or per layer and code: built once, so recording allocates nothing.
    struct Keys {
        allowed: Vec<Key>,
        verify: Vec<Key>,
        /// `layer index * (codes + 1) + code index` (the last code slot: `other`).
        refused: Vec<Key>,
    }

    fn keys() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let per_layer = |name: &'static str| -> Vec<Key> {
                LayerName::ALL
                    .iter()
                    .map(|layer| {
                        Key::from_parts(
                            name,
                            vec![Label::from_static_parts(label::LAYER, layer.as_str())],
                        )
                    })
                    .collect()
            };
            let codes = rejection::all_codes();
            let mut refused = Vec::with_capacity(LayerName::ALL.len() * (codes.len() + 1));
            for layer in LayerName::ALL {
                for code in codes.iter().copied().chain(["other"]) {
                    refused.push(Key::from_parts(
                        super::REQUESTS_REFUSED_TOTAL,
                        vec![
                            Label::from_static_parts(label::LAYER, layer.as_str()),
                            Label::from_static_parts(label::CODE, code),
                        ],
                    ));
                }
            }
            Keys {
                allowed: per_layer(super::REQUESTS_ALLOWED_TOTAL),
                verify: per_layer(super::VERIFY_DURATION_SECONDS),
                refused,
            }
        })
    }

    pub(super) fn allowed(layer: LayerName) {
        if let Some(key) = keys().allowed.get(layer.index()) {
            metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA))
                .increment(1);
        }
    }

    /// `code`: the index of a known code, `None` for `other`.
    pub(super) fn refused(layer: LayerName, code: Option<usize>) {
        let codes = rejection::all_codes().len();
        let index = layer.index() * (codes + 1) + code.unwrap_or(codes);
        if let Some(key) = keys().refused.get(index) {
            metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA))
                .increment(1);
        }
    }

    /// A histogram handle and, when a recorder sees it, when the timing started.
    pub(crate) struct VerifyTimer {
        histogram: Histogram,
        started: Option<Instant>,
    }

    impl VerifyTimer {
        pub(super) fn finish(self) {
            if let Some(started) = self.started {
                self.histogram.record(started.elapsed().as_secs_f64());
            }
        }
    }

    /// Whether `histogram` reaches a recorder: the `metrics` facade answers a no-op handle
    /// when no recorder is installed, and converts a value only for a handle that has one.
    /// Recording a value zero times asks for that conversion and records nothing.
    fn is_recorded(histogram: &Histogram) -> bool {
        struct Probe<'a>(&'a Cell<bool>);
        impl IntoF64 for Probe<'_> {
            fn into_f64(self) -> f64 {
                self.0.set(true);
                0.0
            }
        }
        let recorded = Cell::new(false);
        histogram.record_many(Probe(&recorded), 0);
        recorded.get()
    }

    pub(super) fn verify_timer(layer: LayerName) -> VerifyTimer {
        let histogram = match keys().verify.get(layer.index()) {
            Some(key) => {
                metrics::with_recorder(|recorder| recorder.register_histogram(key, &METADATA))
            }
            None => Histogram::noop(),
        };
        let started = is_recorded(&histogram).then(Instant::now);
        VerifyTimer { histogram, started }
    }

    /// The nonce-store series of one store kind, built once for the crate's own stores.
    struct StoreKeys {
        /// By `ClaimOutcome` index.
        claims: [Key; 4],
        duration: Key,
        errors: Key,
        entries: Key,
        capacity: Key,
    }

    impl StoreKeys {
        fn new(store: &'static str) -> Self {
            let key = |name: &'static str| {
                Key::from_parts(name, vec![Label::from_static_parts(label::STORE, store)])
            };
            let claim = |outcome: ClaimOutcome| {
                Key::from_parts(
                    super::NONCE_CLAIMS_TOTAL,
                    vec![
                        Label::from_static_parts(label::STORE, store),
                        Label::from_static_parts(label::OUTCOME, outcome.as_str()),
                    ],
                )
            };
            Self {
                claims: [
                    claim(ClaimOutcome::Claimed),
                    claim(ClaimOutcome::Replayed),
                    claim(ClaimOutcome::Full),
                    claim(ClaimOutcome::Error),
                ],
                duration: key(super::NONCE_CLAIM_DURATION_SECONDS),
                errors: key(super::NONCE_STORE_ERRORS_TOTAL),
                entries: key(super::NONCE_STORE_ENTRIES),
                capacity: key(super::NONCE_STORE_CAPACITY),
            }
        }
    }

    /// Runs `f` with the series of `store`: built once for `memory` and `redis` (recording
    /// then allocates nothing), per call for a store kind of your own.
    fn with_store_keys<R>(store: &'static str, f: impl FnOnce(&StoreKeys) -> R) -> R {
        static MEMORY: OnceLock<StoreKeys> = OnceLock::new();
        static REDIS: OnceLock<StoreKeys> = OnceLock::new();
        match store {
            "memory" => f(MEMORY.get_or_init(|| StoreKeys::new("memory"))),
            "redis" => f(REDIS.get_or_init(|| StoreKeys::new("redis"))),
            other => f(&StoreKeys::new(other)),
        }
    }

    fn outcome_index(outcome: ClaimOutcome) -> usize {
        match outcome {
            ClaimOutcome::Claimed => 0,
            ClaimOutcome::Replayed => 1,
            ClaimOutcome::Full => 2,
            ClaimOutcome::Error => 3,
        }
    }

    pub(super) fn nonce_claim(store: &'static str, outcome: ClaimOutcome, elapsed: Duration) {
        with_store_keys(store, |keys| {
            metrics::with_recorder(|recorder| {
                recorder
                    .register_counter(&keys.claims[outcome_index(outcome)], &METADATA)
                    .increment(1);
                recorder
                    .register_histogram(&keys.duration, &METADATA)
                    .record(elapsed.as_secs_f64());
                if matches!(outcome, ClaimOutcome::Full | ClaimOutcome::Error) {
                    recorder
                        .register_counter(&keys.errors, &METADATA)
                        .increment(1);
                }
            });
        });
    }

    pub(super) fn nonce_store_error(store: &'static str) {
        with_store_keys(store, |keys| {
            metrics::with_recorder(|recorder| recorder.register_counter(&keys.errors, &METADATA))
                .increment(1);
        });
    }

    pub(super) fn nonce_store_size(store: &'static str, entries: f64, capacity: f64) {
        with_store_keys(store, |keys| {
            metrics::with_recorder(|recorder| {
                if entries != 0.0 {
                    recorder
                        .register_gauge(&keys.entries, &METADATA)
                        .increment(entries);
                }
                if capacity != 0.0 {
                    recorder
                        .register_gauge(&keys.capacity, &METADATA)
                        .increment(capacity);
                }
            });
        });
    }

    pub(super) fn token_refresh(outcome: TokenRefresh) {
        metrics::counter!(super::TOKEN_REFRESHES_TOTAL, label::OUTCOME => outcome.as_str())
            .increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    use std::time::Duration;

    use super::{ClaimOutcome, LayerName, TokenRefresh};

    pub(super) fn allowed(_: LayerName) {}
    pub(super) fn refused(_: LayerName, _: Option<usize>) {}

    pub(crate) struct VerifyTimer;

    impl VerifyTimer {
        pub(super) fn finish(self) {}
    }

    pub(super) fn verify_timer(_: LayerName) -> VerifyTimer {
        VerifyTimer
    }
    pub(super) fn nonce_claim(_: &'static str, _: ClaimOutcome, _: Duration) {}
    pub(super) fn nonce_store_error(_: &'static str) {}
    pub(super) fn nonce_store_size(_: &'static str, _: f64, _: f64) {}
    pub(super) fn token_refresh(_: TokenRefresh) {}
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use bytes::Bytes;
    use http::{Response, StatusCode};
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;
    use crate::rejection::code;
    use crate::{Rejection, RejectionResponder};

    /// Runs `f` with a recorder of its own (this thread only) and answers what it recorded:
    /// one line `name{label=value,...} value` per series, sorted.
    fn recorded(f: impl FnOnce()) -> Vec<String> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, f);
        let mut lines: Vec<String> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels: Vec<String> = key
                    .labels()
                    .map(|label| format!("{}={}", label.key(), label.value()))
                    .collect();
                let value = match value {
                    DebugValue::Counter(n) => n.to_string(),
                    DebugValue::Gauge(g) => g.to_string(),
                    DebugValue::Histogram(values) => format!("{} samples", values.len()),
                };
                format!("{}{{{}}} {value}", key.name(), labels.join(","))
            })
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn a_refusal_counts_once_by_layer_and_code_whatever_the_responder() {
        let custom = RejectionResponder::new(|rejection: &Rejection| {
            let mut response = Response::new(Bytes::new());
            *response.status_mut() = rejection.status();
            response
        });
        let lines = recorded(|| {
            let _ = RejectionResponder::json().refuse(
                LayerName::Signature,
                Rejection::from_code(code::SIGNATURE_INVALID),
            );
            let _ = custom.refuse(
                LayerName::Signature,
                Rejection::from_code(code::SIGNATURE_INVALID),
            );
            let _ = RejectionResponder::grpc()
                .refuse(LayerName::Replay, Rejection::from_code(code::REPLAYED));
            // Without a layer: `other`.
            let _ = custom.respond(Rejection::from_code(code::IP_NOT_ALLOWED));
        });
        assert_eq!(
            lines,
            [
                "tollgate_requests_refused_total{layer=other,code=ip_not_allowed} 1",
                "tollgate_requests_refused_total{layer=replay,code=replayed} 1",
                "tollgate_requests_refused_total{layer=signature,code=signature_invalid} 2",
            ]
        );
    }

    #[test]
    fn labels_stay_a_bounded_set_whatever_the_codes() {
        // A thousand made-up codes (your own `Rejection::new`, or anything) are one series.
        let lines = recorded(|| {
            for n in 0..1000 {
                let rejection =
                    Rejection::new(StatusCode::FORBIDDEN, format!("made_up_{n}"), "refused");
                let _ = RejectionResponder::json().refuse(LayerName::Origin, rejection);
                allowed(LayerName::ClientIp, &mut http::Extensions::new());
            }
        });
        assert_eq!(
            lines,
            [
                "tollgate_requests_allowed_total{layer=client_ip} 1000",
                "tollgate_requests_refused_total{layer=origin,code=other} 1000",
            ]
        );
    }

    #[test]
    fn every_layer_and_code_has_its_series() {
        let lines = recorded(|| {
            for layer in LayerName::ALL {
                allowed(layer, &mut http::Extensions::new());
                verify_timer(layer).finish();
                for code in crate::rejection::all_codes() {
                    refused(layer, code);
                }
            }
        });
        let codes = crate::rejection::all_codes().len();
        assert_eq!(lines.len(), LayerName::ALL.len() * (2 + codes));
        assert!(lines.contains(
            &"tollgate_requests_refused_total{layer=https,code=https_required} 1".to_owned()
        ));
        assert!(
            lines
                .contains(&"tollgate_verify_duration_seconds{layer=tranzila} 1 samples".to_owned())
        );
        for (index, layer) in LayerName::ALL.iter().enumerate() {
            assert_eq!(layer.index(), index);
        }
    }

    /// The verify timer records one sample per finished timer, into the recorder current
    /// when it started (one installed after earlier requests gets the next ones), and its
    /// probe for a recorder records nothing.
    #[test]
    fn verify_timer_records_once_where_a_recorder_sees_it() {
        // No recorder: nothing to record, nothing fails.
        verify_timer(LayerName::Signature).finish();
        let lines = recorded(|| {
            verify_timer(LayerName::Signature).finish();
            verify_timer(LayerName::Signature).finish();
            verify_timer(LayerName::Tranzila).finish();
            // Started, never finished: no sample.
            drop(verify_timer(LayerName::Tranzila));
        });
        assert_eq!(
            lines,
            [
                "tollgate_verify_duration_seconds{layer=signature} 2 samples",
                "tollgate_verify_duration_seconds{layer=tranzila} 1 samples",
            ]
        );
        // Started with a recorder, finished after it is gone: recorded into the one it
        // started with (the handle is kept).
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let timer = metrics::with_local_recorder(&recorder, || verify_timer(LayerName::Signature));
        timer.finish();
        let samples: Vec<_> = snapshotter.snapshot().into_vec();
        assert_eq!(samples.len(), 1);
        assert!(
            matches!(&samples[0].3, DebugValue::Histogram(values) if values.len() == 1
                && values[0].into_inner() >= 0.0)
        );
    }

    #[test]
    fn nonce_store_and_token_series() {
        let lines = recorded(|| {
            nonce_claim("memory", ClaimOutcome::Claimed, Duration::from_micros(3));
            nonce_claim("memory", ClaimOutcome::Replayed, Duration::from_micros(3));
            nonce_claim("redis", ClaimOutcome::Full, Duration::from_micros(3));
            nonce_claim("redis", ClaimOutcome::Error, Duration::from_micros(3));
            nonce_store_error("redis");
            nonce_store_size("memory", 3.0, 96.0);
            nonce_store_size("memory", -1.0, 0.0);
            token_refresh(TokenRefresh::Success);
            token_refresh(TokenRefresh::Timeout);
        });
        assert_eq!(
            lines,
            [
                "tollgate_nonce_claim_duration_seconds{store=memory} 2 samples",
                "tollgate_nonce_claim_duration_seconds{store=redis} 2 samples",
                "tollgate_nonce_claims_total{store=memory,outcome=claimed} 1",
                "tollgate_nonce_claims_total{store=memory,outcome=replayed} 1",
                "tollgate_nonce_claims_total{store=redis,outcome=error} 1",
                "tollgate_nonce_claims_total{store=redis,outcome=full} 1",
                "tollgate_nonce_store_capacity{store=memory} 96",
                "tollgate_nonce_store_entries{store=memory} 2",
                "tollgate_nonce_store_errors_total{store=redis} 3",
                "tollgate_token_refreshes_total{outcome=success} 1",
                "tollgate_token_refreshes_total{outcome=timeout} 1",
            ]
        );
    }

    #[test]
    fn span_fields_are_recorded_where_declared() {
        let declared = || {
            tracing::info_span!(
                "request",
                tollgate.client_ip = tracing::field::Empty,
                tollgate.key_id = tracing::field::Empty,
                tollgate.decision = tracing::field::Empty,
                tollgate.layer = tracing::field::Empty,
                tollgate.code = tracing::field::Empty,
            )
        };
        let capture = tollgate_test_support::LogCapture::new();
        capture.during(|| {
            // Allowed by three layers: one `allowed`, the client IP and the key id.
            declared().in_scope(|| {
                let mut extensions = http::Extensions::new();
                allowed(LayerName::Origin, &mut extensions);
                record_client_ip(&std::net::Ipv4Addr::new(203, 0, 113, 7));
                allowed(LayerName::ClientIp, &mut extensions);
                record_key_id("2026-11");
                allowed(LayerName::Signature, &mut extensions);
                tracing::info!("first request done");
            });
            // Allowed by one layer, refused by the next.
            declared().in_scope(|| {
                allowed(LayerName::Signature, &mut http::Extensions::new());
                let _ = RejectionResponder::json()
                    .refuse(LayerName::Replay, Rejection::from_code(code::REPLAYED));
                tracing::info!("second request done");
            });
            // A span without the fields is left alone.
            tracing::info_span!("plain").in_scope(|| {
                allowed(LayerName::Origin, &mut http::Extensions::new());
                record_key_id("2026-11");
                tracing::info!("third request done");
            });
        });
        let logs = capture.text();
        let line = |marker: &str| {
            logs.lines()
                .find(|line| line.contains(marker))
                .unwrap_or_default()
                .to_owned()
        };
        assert!(
            line("first request done").contains(
                "request{tollgate.decision=\"allowed\" tollgate.client_ip=203.0.113.7 \
                 tollgate.key_id=\"2026-11\"}: "
            ),
            "{logs}"
        );
        assert!(
            line("second request done").contains(
                "request{tollgate.decision=\"allowed\" tollgate.decision=\"refused\" \
                 tollgate.layer=\"replay\" tollgate.code=\"replayed\"}: "
            ),
            "{logs}"
        );
        assert!(line("third request done").contains(" plain: "), "{logs}");
    }
}
