//! [`TranzilaVerifyLayer`]: the server side, accepting only correctly signed, fresh, unseen
//! Tranzila-style requests. The token check lives here; the nonce claim is tollgate-replay's
//! [`ReplayGuard`], built in.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Request, Response};
use tollgate_core::header::single_value;
use tollgate_core::metrics::{self, LayerName};
use tollgate_core::rejection::code;
use tollgate_core::timestamp::TimestampWindow;
use tollgate_core::{
    Clock, Rejection, RejectionResponder, ResponseBody, Secret, SecretError, SharedClock,
    SystemClock, VerifiedSignature,
};
use tollgate_replay::{NonceShape, NonceStore, ReplayGuard, ReplayGuardLayer};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::ConfigError;
use crate::future::TranzilaVerifyFuture;
use crate::token::{
    NONCE_LEN, TranzilaCredentials, decode_token, is_valid_app_key, is_valid_nonce,
    verify_access_token,
};
use crate::{ACCESS_TOKEN, APP_KEY, NONCE, REQUEST_TIME};

/// The scheme name in [`VerifiedSignature::scheme`] and the namespace of nonce-store keys.
pub const SCHEME: &str = "tranzila";

/// Where the verifier finds the secret of an app key.
///
/// Implemented for maps (`HashMap`/`BTreeMap` from app key to [`Secret`]), for one
/// [`TranzilaCredentials`] or a `Vec` of them, for `Arc<T>`, and for closures
/// `Fn(&str) -> Option<Secret>`, so keys can be loaded from elsewhere and rotated while the
/// server runs.
///
/// **Blank secrets are never used.** [`TranzilaVerifyLayer::new`] calls
/// [`check_secrets`](AppKeySecrets::check_secrets) and fails when a secret it can see now is
/// empty or only whitespace ([`Secret::is_blank`]); maps check every entry. A secret that a
/// lookup returns blank at request time (a closure, a map behind your own type) is refused
/// with the same 401 `tranzila_unknown_app_key` as an unknown app key.
///
/// ```
/// use tollgate_core::Secret;
/// use tollgate_tranzila::AppKeySecrets;
///
/// let lookup = |app_key: &str| (app_key == "partner-1").then(|| Secret::from_string("s3cr3t"));
/// assert!(lookup.secret_for("partner-1").is_some());
/// assert!(lookup.secret_for("partner-2").is_none());
/// ```
pub trait AppKeySecrets: Send + Sync + 'static {
    /// The secret of `app_key`, or `None` when the app key is unknown.
    fn secret_for(&self, app_key: &str) -> Option<Secret>;

    /// Checks the secrets known now, when a [`TranzilaVerifyLayer`] is built: fails with
    /// [`SecretError::Blank`] (naming the app key) for a secret that is empty or only
    /// whitespace.
    ///
    /// The default accepts: a lookup that cannot list its secrets (a closure) is checked at
    /// each request instead, where a blank secret is refused like an unknown app key.
    /// Implementations over a fixed set of secrets should check each one with
    /// [`Secret::check_usable`].
    fn check_secrets(&self) -> Result<(), SecretError> {
        Ok(())
    }
}

/// The error name of `app_key`'s secret, as [`TranzilaCredentials::new`] writes it.
fn check_app_key_secret(app_key: &str, secret: &Secret) -> Result<(), SecretError> {
    secret.check_usable(&format!("Tranzila app key `{app_key}`"))
}

/// Checks every secret of a map, naming the first blank one in app-key order (so that the
/// error does not depend on a hash map's iteration order).
fn check_map<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Secret)>,
) -> Result<(), SecretError> {
    match entries
        .filter(|(_, secret)| secret.is_blank())
        .min_by_key(|(app_key, _)| *app_key)
    {
        Some((app_key, secret)) => check_app_key_secret(app_key, secret),
        None => Ok(()),
    }
}

impl<F> AppKeySecrets for F
where
    F: Fn(&str) -> Option<Secret> + Send + Sync + 'static,
{
    fn secret_for(&self, app_key: &str) -> Option<Secret> {
        self(app_key)
    }
}

impl<S: std::hash::BuildHasher + Send + Sync + 'static> AppKeySecrets
    for HashMap<String, Secret, S>
{
    fn secret_for(&self, app_key: &str) -> Option<Secret> {
        self.get(app_key).cloned()
    }

    fn check_secrets(&self) -> Result<(), SecretError> {
        check_map(self.iter())
    }
}

impl AppKeySecrets for BTreeMap<String, Secret> {
    fn secret_for(&self, app_key: &str) -> Option<Secret> {
        self.get(app_key).cloned()
    }

    fn check_secrets(&self) -> Result<(), SecretError> {
        check_map(self.iter())
    }
}

impl AppKeySecrets for TranzilaCredentials {
    fn secret_for(&self, app_key: &str) -> Option<Secret> {
        (self.app_key() == app_key).then(|| self.secret().clone())
    }

    fn check_secrets(&self) -> Result<(), SecretError> {
        // Never blank ([`TranzilaCredentials::new`] refuses it); checked again all the same.
        check_app_key_secret(self.app_key(), self.secret())
    }
}

impl AppKeySecrets for Vec<TranzilaCredentials> {
    fn secret_for(&self, app_key: &str) -> Option<Secret> {
        self.iter()
            .find(|c| c.app_key() == app_key)
            .map(|c| c.secret().clone())
    }

    fn check_secrets(&self) -> Result<(), SecretError> {
        self.iter().try_for_each(AppKeySecrets::check_secrets)
    }
}

impl<T: AppKeySecrets + ?Sized> AppKeySecrets for Arc<T> {
    fn secret_for(&self, app_key: &str) -> Option<Secret> {
        (**self).secret_for(app_key)
    }

    fn check_secrets(&self) -> Result<(), SecretError> {
        (**self).check_secrets()
    }
}

/// Accepts a request only when its four Tranzila headers are present and well formed, the app
/// key is known, the time is within the window, the access token matches in constant time and
/// the nonce was never seen before.
///
/// The checks, in order, and what a failing request gets (a JSON body
/// `{"error":{"code":"...","message":"..."}}` built with [`Rejection::from_code`], unless
/// replaced with [`on_rejection`](TranzilaVerifyLayer::on_rejection)):
///
/// 1. each of the four headers present once, visible ASCII: else 400 `header_malformed`
///    (the message names the header);
/// 2. the nonce exactly 80 hexadecimal characters: else 400 `nonce_malformed`;
/// 3. the time Unix seconds as ASCII digits: else 400 `timestamp_malformed`;
/// 4. the token 64 hexadecimal characters: else 400 `header_malformed`;
/// 5. the app key known, with a secret that is not blank: else 401
///    `tranzila_unknown_app_key` (a blank secret found at lookup is refused like an unknown
///    key, and logged at warn level without the app key);
/// 6. the time within ±300 s of the clock (inclusive; [`TimestampWindow`]): else 401
///    `timestamp_out_of_window`;
/// 7. the token equal, in constant time, to [`access_token`](crate::access_token) over the
///    headers as received: else 401 `signature_invalid`;
/// 8. the nonce claimed by tollgate-replay's [`ReplayGuard`], built in: the layer records a
///    [`VerifiedSignature`] (scheme [`SCHEME`], key id = the app key, message id = the nonce,
///    the signed time) and the guard, configured as [`ReplayGuardLayer::new`] on the store
///    you pass (with this layer's clock, tolerance and responder, nonces of
///    [`NonceShape::Hex`]`(80)`), claims its replay key
///    [`replay_key`](tollgate_replay::replay_key)`("tranzila", "", nonce)` until
///    [`TimestampWindow::last_valid_second`] (plus the optional
///    [`clock_skew_margin`](TranzilaVerifyLayer::clock_skew_margin)): 401 `replayed` when
///    already claimed, 503 `store_full` when a memory store is full of unexpired claims and
///    503 `store_unavailable` when the store fails (both fail closed). The key
///    has tollgate-replay's one format, so a `ReplayGuardLayer::new` sharing the store claims
///    a Tranzila nonce under the same key.
///
/// An accepted request reaches the inner service with the [`VerifiedSignature`] and a
/// [`RequestTimestamp`](tollgate_core::RequestTimestamp) in its extensions. The body is not
/// read. The claim is kept whatever the inner service answers, 5xx and 429 included: the
/// token does not sign the body, so a released nonce would authorise any other request sent
/// with the same headers. A client retries with a fresh nonce.
///
/// # Security considerations
///
/// **A blank secret never verifies.** With an empty or whitespace-only secret the HMAC key is
/// just the time and nonce the request carries in clear, so anyone could compute the token.
/// [`TranzilaVerifyLayer::new`] fails with [`ConfigError::Secret`] (a [`SecretError::Blank`])
/// when a secret it can see at build time is blank (credentials, every entry of a map); a
/// secret that a lookup returns blank at request time is refused with 401
/// `tranzila_unknown_app_key`, the same answer as an unknown app key, before any MAC is
/// computed.
///
/// **The nonce claim cannot be left out.** The token does not cover the body, so only the
/// nonce check stops a captured header set from being reused with another payload: the layer
/// cannot be built without a nonce store, and it builds the replay guard in itself (there is
/// no second layer to forget). A `MemoryNonceStore` protects one process; when the service
/// runs as several instances, share one store between them (tollgate-replay's
/// `RedisNonceStore`).
///
/// **A nonce is claimed once, whatever the app key.** The claim names the message (the nonce
/// in the `tranzila` namespace), never the app key: nonces are 320 random bits, so a partner
/// could take another's nonce only by knowing it first, and anyone who sees a request in flight
/// can already replay its headers as they are.
///
/// A nonce is claimed until `time + tolerance` by **this layer's clock**, but the store
/// expires it by **its own**. tollgate-replay's stores hold every claim for at least a minimum
/// retention from their clock (twice the default tolerance in memory; twice it plus 300 s of
/// skew between instances on Redis), so a replay stays refused even when the clocks disagree;
/// with a larger [`tolerance`](TranzilaVerifyLayer::tolerance), raise the store's minimum
/// retention to at least `2 × tolerance` plus the skew between instances. See tollgate-replay's
/// "TTL semantics".
///
/// # Header names
///
/// HTTP header names are case-insensitive (RFC 9110, section 5.1): Tranzila's documents and
/// its PHP snippet write `X-tranzila-api-app-key`, hyper receives and sends names in lowercase,
/// and both are the same header. Each of the four must arrive exactly once, whatever the case
/// of each copy: two copies (`X-Tranzila-Api-Nonce` and `x-tranzila-api-nonce`) are refused
/// with 400 `header_malformed`, never joined or picked from
/// ([`tollgate_core::header::single_value`]).
///
/// The inner service must be `Clone`: the request waits for the store before it is handed
/// on, so the ready service is moved into the response future (tower's usual
/// clone-and-replace pattern).
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Empty;
/// use tollgate_core::ManualClock;
/// use tollgate_replay::MemoryNonceStore;
/// use tollgate_tranzila::{TranzilaCredentials, TranzilaVerifyLayer};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // In production both read the system clock (the default); pinned here for the example.
/// let clock = ManualClock::new(1_700_000_100);
/// let store = MemoryNonceStore::new(100_000).with_clock(clock.clone());
/// let layer = TranzilaVerifyLayer::new(
///     TranzilaCredentials::new("pub_app_key_demo", "private_secret_demo").unwrap(),
///     store,
/// )
/// .unwrap()
/// .clock(clock);
/// let service = ServiceBuilder::new().layer(layer).service(service_fn(|_req: Request<Empty<Bytes>>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new()))
/// }));
///
/// // The headers of the published vector `tranzila-ascii-1`.
/// let signed = || {
///     Request::post("/v1/charge")
///         .header("x-tranzila-api-app-key", "pub_app_key_demo")
///         .header("x-tranzila-api-request-time", "1700000000")
///         .header("x-tranzila-api-nonce", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627")
///         .header("x-tranzila-api-access-token", "856f5100b954853bf4470826f7eb85376958d000c1a9b5c872b9f5e42dac3b16")
///         .body(Empty::new())
///         .unwrap()
/// };
/// let response = service.clone().oneshot(signed()).await.unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
/// let response = service.clone().oneshot(signed()).await.unwrap();
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED); // the same nonce again: replayed
///
/// let unsigned = Request::post("/v1/charge").body(Empty::new()).unwrap();
/// let response = service.oneshot(unsigned).await.unwrap();
/// assert_eq!(response.status(), StatusCode::BAD_REQUEST);
/// # });
/// ```
#[derive(Clone)]
#[must_use]
pub struct TranzilaVerifyLayer {
    config: Arc<VerifyConfig>,
}

#[derive(Clone)]
struct VerifyConfig {
    secrets: Arc<dyn AppKeySecrets>,
    clock: SharedClock,
    window: TimestampWindow,
    responder: RejectionResponder,
    /// The nonce claim: [`ReplayGuardLayer::new`] on the user's store, with the clock,
    /// tolerance and responder above.
    guard: ReplayGuardLayer,
}

impl TranzilaVerifyLayer {
    /// A verifier taking secrets from `secrets` and claiming nonces in `store` (through a
    /// [`ReplayGuard`] it builds in), with the system clock and a ±300 s window.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Secret`] ([`SecretError::Blank`], naming the app key) when a secret that
    /// `secrets` holds now is empty or only whitespace ([`AppKeySecrets::check_secrets`]).
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// use tollgate_core::{Secret, SecretError};
    /// use tollgate_replay::MemoryNonceStore;
    /// use tollgate_tranzila::{ConfigError, TranzilaVerifyLayer};
    ///
    /// let secrets = HashMap::from([
    ///     ("partner-1".to_owned(), Secret::from_string("s3cr3t")),
    ///     ("partner-2".to_owned(), Secret::from_string("")),
    /// ]);
    /// let err = TranzilaVerifyLayer::new(secrets, MemoryNonceStore::new(1_000)).unwrap_err();
    /// assert!(matches!(err, ConfigError::Secret(SecretError::Blank { .. })));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "the secret for Tranzila app key `partner-2` is empty, all zero bytes or only whitespace"
    /// );
    /// ```
    pub fn new(secrets: impl AppKeySecrets, store: impl NonceStore) -> Result<Self, ConfigError> {
        secrets.check_secrets()?;
        let responder = RejectionResponder::json();
        let guard = ReplayGuardLayer::new(store)
            .nonce_shape(NonceShape::Hex(NONCE_LEN))
            .on_rejection(responder.clone());
        Ok(Self {
            config: Arc::new(VerifyConfig {
                secrets: Arc::new(secrets),
                clock: Arc::new(SystemClock),
                window: TimestampWindow::default(),
                responder,
                guard,
            }),
        })
    }

    fn map_config(mut self, change: impl FnOnce(&mut VerifyConfig)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// Asks the store to hold each nonce `margin` longer than the window needs:
    /// `expires_at = time + tolerance + margin` (default 0; whole seconds).
    ///
    /// tollgate-replay's stores already hold every claim for a minimum retention from their
    /// own clock, which keeps replays refused when this layer's clock and the store's disagree;
    /// this margin additionally covers a `NonceStore` of your own without such a retention, up
    /// to `margin` seconds of skew between the store's clock and the verifiers' clocks.
    pub fn clock_skew_margin(self, margin: Duration) -> Self {
        self.map_config(|config| config.guard = config.guard.clone().clock_skew_margin(margin))
    }

    /// Reads the server time from `clock` instead of the system clock (the window here and
    /// in the built-in replay guard).
    pub fn clock(self, clock: impl Clock) -> Self {
        let clock: SharedClock = Arc::new(clock);
        self.map_config(|config| {
            config.guard = config.guard.clone().clock(Arc::clone(&clock));
            config.clock = clock;
        })
    }

    /// Accepts request times within `tolerance` either side of the clock (default 300 s,
    /// inclusive). Nonces are kept as long as the window accepts their request.
    pub fn tolerance(self, tolerance: Duration) -> Self {
        self.map_config(|config| {
            config.window = TimestampWindow::new(tolerance);
            config.guard = config.guard.clone().tolerance(tolerance);
        })
    }

    /// Answers refused requests with `responder` (for example
    /// [`RejectionResponder::grpc`], or a closure `Fn(&Rejection) -> Response<Bytes>`) instead
    /// of the JSON default; the built-in replay guard's refusals (`replayed`,
    /// `store_unavailable`) too.
    pub fn on_rejection(self, responder: impl Into<RejectionResponder>) -> Self {
        let responder = responder.into();
        self.map_config(|config| {
            config.guard = config.guard.clone().on_rejection(responder.clone());
            config.responder = responder;
        })
    }
}

impl fmt::Debug for TranzilaVerifyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl fmt::Debug for VerifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TranzilaVerifyLayer")
            .field("clock", &self.clock)
            .field("tolerance_secs", &self.window.tolerance_secs())
            .field("responder", &self.responder)
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for TranzilaVerifyLayer {
    type Service = TranzilaVerify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TranzilaVerify::new(inner, self)
    }
}

/// The service made by [`TranzilaVerifyLayer`]: the token check, around a [`ReplayGuard`]
/// around the inner service.
#[derive(Clone)]
#[must_use]
pub struct TranzilaVerify<S> {
    guard: ReplayGuard<S>,
    config: Arc<VerifyConfig>,
}

impl<S> TranzilaVerify<S> {
    /// Wraps `inner` with `layer`'s configuration.
    pub fn new(inner: S, layer: &TranzilaVerifyLayer) -> Self {
        Self {
            guard: ReplayGuard::new(inner, &layer.config.guard),
            config: Arc::clone(&layer.config),
        }
    }

    /// A layer that wraps services in `TranzilaVerify` (same as [`TranzilaVerifyLayer::new`]).
    ///
    /// # Errors
    ///
    /// As [`TranzilaVerifyLayer::new`]: a blank secret.
    pub fn layer(
        secrets: impl AppKeySecrets,
        store: impl NonceStore,
    ) -> Result<TranzilaVerifyLayer, ConfigError> {
        TranzilaVerifyLayer::new(secrets, store)
    }

    // Written out rather than with `__inner_service_accessors!`: the wrapped service sits
    // inside the built-in replay guard.

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
        self.guard.get_ref()
    }

    /// A mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        self.guard.get_mut()
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.guard.into_inner()
    }
}

impl<S: fmt::Debug> fmt::Debug for TranzilaVerify<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TranzilaVerify")
            .field("config", &self.config)
            .field("inner", self.get_ref())
            .finish()
    }
}

/// The one value of header `name`, as visible ASCII text.
fn single_header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<&'a str, Rejection> {
    let malformed = || {
        Rejection::from_code(code::HEADER_MALFORMED).with_detail(format_args!(
            "`{name}` must be present once, as visible ASCII"
        ))
    };
    let value = single_value(headers, name)
        .ok()
        .flatten()
        .ok_or_else(malformed)?;
    let text = value.to_str().map_err(|_| malformed())?;
    if !is_valid_app_key(text) {
        // Same rule for all four: non-empty visible ASCII.
        return Err(malformed());
    }
    Ok(text)
}

/// Checks 1 to 7 of [`TranzilaVerifyLayer`]: the verified signature to record, or the refusal.
fn check(config: &VerifyConfig, headers: &HeaderMap) -> Result<VerifiedSignature, Rejection> {
    let app_key = single_header(headers, &APP_KEY)?;
    let time = single_header(headers, &REQUEST_TIME)?;
    let nonce = single_header(headers, &NONCE)?;
    let token = single_header(headers, &ACCESS_TOKEN)?;

    if !is_valid_nonce(nonce) {
        return Err(Rejection::from_code(code::NONCE_MALFORMED)
            .with_detail("`x-tranzila-api-nonce` must be exactly 80 hexadecimal characters"));
    }
    let timestamp = tollgate_core::timestamp::parse_unix_seconds(time.as_bytes())
        .map_err(|err| err.to_rejection())?;
    let Some(mac) = decode_token(token) else {
        return Err(Rejection::from_code(code::HEADER_MALFORMED)
            .with_detail("`x-tranzila-api-access-token` must be 64 hexadecimal characters"));
    };
    let unknown = || Rejection::from_code(code::TRANZILA_UNKNOWN_APP_KEY);
    let Some(secret) = config.secrets.secret_for(app_key) else {
        return Err(unknown());
    };
    if secret.is_blank() {
        // A MAC under a blank secret is one anyone can compute: the key is as good as unknown.
        // The app key is the client's header value: not logged.
        tracing::warn!(
            target: "tollgate",
            "Tranzila secret lookup returned a blank secret; refused as an unknown app key"
        );
        return Err(unknown());
    }
    config
        .window
        .check(timestamp, config.clock.now_unix())
        .map_err(|err| err.to_rejection())?;
    if !verify_access_token(app_key, &secret, time, nonce, token) {
        return Err(Rejection::from_code(code::SIGNATURE_INVALID)
            .with_detail("`x-tranzila-api-access-token`"));
    }
    Ok(
        VerifiedSignature::from_slice(SCHEME, Arc::from(app_key), &mac)
            .with_timestamp(timestamp)
            .with_message_id(Bytes::copy_from_slice(nonce.as_bytes())),
    )
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TranzilaVerify<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = TranzilaVerifyFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.guard.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Timed only when a recorder sees the histogram (no clock read otherwise).
        let timer = metrics::verify_timer(LayerName::Tranzila);
        let checked = check(&self.config, request.headers());
        timer.finish();
        match checked {
            Ok(verified) => {
                // The app key, once its token verified: found in the secrets, not a guess.
                metrics::allowed_verified(
                    LayerName::Tranzila,
                    verified.key_id(),
                    request.extensions_mut(),
                );
                // The guard reads it (message id = the nonce, the signed time) and claims.
                request.extensions_mut().insert(verified);
                self.guard.call(request)
            }
            Err(rejection) => {
                // The code only: header values are the client's and the token is secret-derived.
                tracing::debug!(target: "tollgate", code = rejection.code(), "Tranzila request refused");
                TranzilaVerifyFuture::rejected(
                    self.config.responder.refuse(LayerName::Tranzila, rejection),
                )
            }
        }
    }
}
