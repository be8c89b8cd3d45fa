//! [`TranzilaVerifyLayer`]: the server side, accepting only correctly signed, fresh, unseen
//! Tranzila-style requests.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tollgate_core::rejection::code;
use tollgate_core::timestamp::{TimestampError, TimestampWindow};
use tollgate_core::{
    Clock, Rejection, RejectionResponder, RequestTimestamp, ResponseBody, Secret, SecretError,
    SharedClock, SystemClock, VerifiedSignature,
};
use tollgate_replay::{Claim, NonceStore, StoreError};
use tower_layer::Layer;
use tower_service::Service;

use crate::token::{
    TranzilaCredentials, decode_token, is_valid_app_key, is_valid_nonce, verify_access_token,
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
/// `{"error":{"code":"...","message":"..."}}` unless replaced with
/// [`on_rejection`](TranzilaVerifyLayer::on_rejection)):
///
/// 1. each of the four headers present once, visible ASCII: else 400 `header_malformed`;
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
/// 8. the nonce claimed in the [`NonceStore`] under the key `tranzila:<app key>:<nonce>`
///    until [`TimestampWindow::last_valid_second`] (plus the optional
///    [`clock_skew_margin`](TranzilaVerifyLayer::clock_skew_margin)): 401 `replayed` when
///    already claimed, 503 `store_unavailable` when the store fails (fail closed). The key
///    cannot be confused with another app key's (the nonce after the last `:` always has 80
///    characters) nor with tollgate-replay's `replay_key`s (which start with a zero byte), so a
///    `ReplayGuardLayer` may share the store.
///
/// An accepted request reaches the inner service with a [`VerifiedSignature`] (scheme
/// `"tranzila"`, key id = the app key, the timestamp, the nonce as message id) and a
/// [`RequestTimestamp`] in its extensions. The body is not read.
///
/// # Security considerations
///
/// **A blank secret never verifies.** With an empty or whitespace-only secret the HMAC key is
/// just the time and nonce the request carries in clear, so anyone could compute the token.
/// [`TranzilaVerifyLayer::new`] fails with [`SecretError::Blank`] when a secret it can see
/// at build time is blank (credentials, every entry of a map); a secret that a lookup returns
/// blank at request time is refused with 401 `tranzila_unknown_app_key`, the same answer as an
/// unknown app key, before any MAC is computed.
///
/// The nonce store is required: the layer cannot be built without one, because the token
/// does not cover the body and only the nonce check stops a captured header set from being
/// reused with another payload. A `MemoryNonceStore` protects one process; when the service
/// runs as several instances, share one store between them (tollgate-replay's
/// `RedisNonceStore`).
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
/// with 400 `header_malformed`, never joined or picked from.
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
    store: Arc<dyn NonceStore>,
    clock: SharedClock,
    window: TimestampWindow,
    skew_margin: u64,
    responder: RejectionResponder,
}

impl TranzilaVerifyLayer {
    /// A verifier taking secrets from `secrets` and claiming nonces in `store`, with the system
    /// clock and a ±300 s window.
    ///
    /// # Errors
    ///
    /// [`SecretError::Blank`], naming the app key, when a secret that `secrets` holds now is
    /// empty or only whitespace ([`AppKeySecrets::check_secrets`]).
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// use tollgate_core::{Secret, SecretError};
    /// use tollgate_replay::MemoryNonceStore;
    /// use tollgate_tranzila::TranzilaVerifyLayer;
    ///
    /// let secrets = HashMap::from([
    ///     ("partner-1".to_owned(), Secret::from_string("s3cr3t")),
    ///     ("partner-2".to_owned(), Secret::from_string("")),
    /// ]);
    /// let err = TranzilaVerifyLayer::new(secrets, MemoryNonceStore::new(1_000)).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "the secret for Tranzila app key `partner-2` is empty, all zero bytes or only whitespace"
    /// );
    /// ```
    pub fn new(secrets: impl AppKeySecrets, store: impl NonceStore) -> Result<Self, SecretError> {
        secrets.check_secrets()?;
        Ok(Self {
            config: Arc::new(VerifyConfig {
                secrets: Arc::new(secrets),
                store: Arc::new(store),
                clock: Arc::new(SystemClock),
                window: TimestampWindow::default(),
                skew_margin: 0,
                responder: RejectionResponder::json(),
            }),
        })
    }

    /// Asks the store to hold each nonce `margin` longer than the window needs:
    /// `expires_at = time + tolerance + margin` (default 0; whole seconds).
    ///
    /// tollgate-replay's stores already hold every claim for a minimum retention from their
    /// own clock, which keeps replays refused when this layer's clock and the store's disagree;
    /// this margin additionally covers a `NonceStore` of your own without such a retention, up
    /// to `margin` seconds of skew between the store's clock and the verifiers' clocks.
    pub fn clock_skew_margin(self, margin: Duration) -> Self {
        self.map_config(|config| config.skew_margin = margin.as_secs())
    }

    /// Reads the server time from `clock` instead of the system clock.
    pub fn clock(self, clock: impl Clock) -> Self {
        self.map_config(|config| config.clock = Arc::new(clock))
    }

    /// Accepts request times within `tolerance` either side of the clock (default 300 s,
    /// inclusive). Nonces are kept as long as the window accepts their request.
    pub fn tolerance(self, tolerance: Duration) -> Self {
        self.map_config(|config| config.window = TimestampWindow::new(tolerance))
    }

    /// Answers refused requests with `responder` (for example
    /// [`RejectionResponder::grpc`] or a closure) instead of the JSON default.
    pub fn on_rejection(self, responder: RejectionResponder) -> Self {
        self.map_config(|config| config.responder = responder)
    }

    fn map_config(self, change: impl FnOnce(&mut VerifyConfig)) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
        change(&mut config);
        Self {
            config: Arc::new(config),
        }
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
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("tolerance_secs", &self.window.tolerance_secs())
            .field("clock_skew_margin_secs", &self.skew_margin)
            .field("responder", &self.responder)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for TranzilaVerifyLayer {
    type Service = TranzilaVerify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TranzilaVerify {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service made by [`TranzilaVerifyLayer`].
#[derive(Clone)]
#[must_use]
pub struct TranzilaVerify<S> {
    inner: S,
    config: Arc<VerifyConfig>,
}

impl<S> TranzilaVerify<S> {
    /// Wraps `inner` with `layer`'s configuration.
    pub fn new(inner: S, layer: &TranzilaVerifyLayer) -> Self {
        layer.layer(inner)
    }

    /// A layer that wraps services in `TranzilaVerify` (same as [`TranzilaVerifyLayer::new`]).
    ///
    /// # Errors
    ///
    /// As [`TranzilaVerifyLayer::new`]: a blank secret.
    pub fn layer(
        secrets: impl AppKeySecrets,
        store: impl NonceStore,
    ) -> Result<TranzilaVerifyLayer, SecretError> {
        TranzilaVerifyLayer::new(secrets, store)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for TranzilaVerify<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TranzilaVerify")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

/// A request whose headers passed every check but the nonce store.
struct Checked {
    claim_key: Vec<u8>,
    expires_at: u64,
    verified: VerifiedSignature,
    timestamp: u64,
}

/// The one value of header `name`, as visible ASCII text.
fn single_header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<&'a str, Rejection> {
    let mut values = headers.get_all(name).iter();
    let malformed = || {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            code::HEADER_MALFORMED,
            format!("header `{name}` must be present once, as visible ASCII"),
        )
    };
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(malformed());
    };
    let text = value.to_str().map_err(|_| malformed())?;
    if !is_valid_app_key(text) {
        // Same rule for all four: non-empty visible ASCII.
        return Err(malformed());
    }
    Ok(text)
}

fn check(config: &VerifyConfig, headers: &HeaderMap) -> Result<Checked, Rejection> {
    let app_key = single_header(headers, &APP_KEY)?;
    let time = single_header(headers, &REQUEST_TIME)?;
    let nonce = single_header(headers, &NONCE)?;
    let token = single_header(headers, &ACCESS_TOKEN)?;

    if !is_valid_nonce(nonce) {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            code::NONCE_MALFORMED,
            "nonce must be exactly 80 hexadecimal characters",
        ));
    }
    let timestamp = tollgate_core::timestamp::parse_unix_seconds(time.as_bytes())
        .map_err(|err| err.to_rejection())?;
    let Some(mac) = decode_token(token) else {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            code::HEADER_MALFORMED,
            "access token must be 64 hexadecimal characters",
        ));
    };
    let unknown = || {
        Rejection::new(
            StatusCode::UNAUTHORIZED,
            code::TRANZILA_UNKNOWN_APP_KEY,
            "app key is not known",
        )
    };
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
        .map_err(|err: TimestampError| err.to_rejection())?;
    if !verify_access_token(app_key, &secret, time, nonce, token) {
        return Err(Rejection::new(
            StatusCode::UNAUTHORIZED,
            code::SIGNATURE_INVALID,
            "access token does not match",
        ));
    }

    let claim_key = claim_key(app_key, nonce);

    let verified = VerifiedSignature::new(SCHEME, Arc::from(app_key), Bytes::copy_from_slice(&mac))
        .with_timestamp(timestamp)
        .with_message_id(Bytes::copy_from_slice(nonce.as_bytes()));
    Ok(Checked {
        claim_key,
        expires_at: config
            .window
            .last_valid_second(timestamp)
            .saturating_add(config.skew_margin),
        verified,
        timestamp,
    })
}

/// The nonce-store key `tranzila:<app key>:<nonce>`. Injective over checked inputs: the nonce
/// is always [`NONCE_LEN`](crate::NONCE_LEN) characters, so the app key (which may hold `:`) is
/// everything between the first 9 bytes and the last 81.
fn claim_key(app_key: &str, nonce: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(SCHEME.len() + app_key.len() + nonce.len() + 2);
    key.extend_from_slice(SCHEME.as_bytes());
    key.push(b':');
    key.extend_from_slice(app_key.as_bytes());
    key.push(b':');
    key.extend_from_slice(nonce.as_bytes());
    key
}

type OwnedClaim = Pin<Box<dyn Future<Output = Result<Claim, StoreError>> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TranzilaVerify<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = VerifyFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let checked = match check(&self.config, request.headers()) {
            Ok(checked) => checked,
            Err(rejection) => {
                // The code only: header values are the client's and the token is secret-derived.
                tracing::debug!(target: "tollgate", code = rejection.code(), "Tranzila request refused");
                let response = self.config.responder.respond(rejection);
                return VerifyFuture {
                    state: State::Rejected {
                        response: Some(response),
                    },
                };
            }
        };
        let extensions = request.extensions_mut();
        extensions.insert(checked.verified);
        extensions.insert(RequestTimestamp(checked.timestamp));

        let store = self.config.store.clone();
        let (key, expires_at) = (checked.claim_key, checked.expires_at);
        let claim: OwnedClaim = Box::pin(async move { store.claim(&key, expires_at).await });

        // The ready service goes into the future; a fresh clone stays here.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        VerifyFuture {
            state: State::Claiming {
                claim,
                pending: Some((inner, request)),
                responder: self.config.responder.clone(),
            },
        }
    }
}

pin_project! {
    /// The future of [`TranzilaVerify`]: a rejection, the nonce claim, then the inner call.
    #[must_use = "futures do nothing unless polled"]
    pub struct VerifyFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Rejected {
            response: Option<Response<Bytes>>,
        },
        Claiming {
            claim: OwnedClaim,
            pending: Option<(S, Request<ReqBody>)>,
            responder: RejectionResponder,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, ReqBody> fmt::Debug for VerifyFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Rejected { .. } => "rejected",
            State::Claiming { .. } => "claiming",
            State::Inner { .. } => "inner",
        };
        f.debug_struct("VerifyFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Future for VerifyFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Rejected { response } => {
                    let response = response
                        .take()
                        .unwrap_or_else(|| RejectionResponder::json().respond(polled_twice()));
                    return Poll::Ready(Ok(response.map(ResponseBody::own)));
                }
                StateProj::Claiming {
                    claim,
                    pending,
                    responder,
                } => {
                    let outcome = ready!(claim.as_mut().poll(cx));
                    let rejection = match outcome {
                        Ok(Claim::Claimed) => None,
                        Ok(Claim::AlreadySeen) => {
                            tracing::debug!(target: "tollgate", code = code::REPLAYED, "Tranzila request refused");
                            Some(Rejection::new(
                                StatusCode::UNAUTHORIZED,
                                code::REPLAYED,
                                "nonce was already used",
                            ))
                        }
                        Err(error) => {
                            tracing::warn!(target: "tollgate", %error, "Tranzila nonce store failed");
                            Some(error.to_rejection())
                        }
                    };
                    let next = match (rejection, pending.take()) {
                        (None, Some((mut inner, request))) => State::Inner {
                            future: inner.call(request),
                        },
                        (Some(rejection), _) => State::Rejected {
                            response: Some(responder.respond(rejection)),
                        },
                        (None, None) => State::Rejected {
                            response: Some(responder.respond(polled_twice())),
                        },
                    };
                    state.set(next);
                }
                StateProj::Inner { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
            }
        }
    }
}

/// Only reachable when a completed future is polled again.
fn polled_twice() -> Rejection {
    Rejection::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the request could not be processed",
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::sync::Mutex;

    use http_body_util::{BodyExt, Empty, Full};
    use tollgate_core::ManualClock;
    use tollgate_replay::ClaimFuture;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;

    const APP: &str = "pub_app_key_demo";
    const SECRET: &str = "private_secret_demo";
    const TIME: &str = "1700000000";
    const NONCE_HEX: &str =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627";
    const TOKEN: &str = "856f5100b954853bf4470826f7eb85376958d000c1a9b5c872b9f5e42dac3b16";

    /// A small store for these tests: a map of key to expiry, or always failing.
    #[derive(Debug, Default)]
    struct TestStore {
        claims: Mutex<HashMap<Vec<u8>, u64>>,
        fail: bool,
    }

    impl NonceStore for TestStore {
        fn claim<'a>(&'a self, key: &'a [u8], expires_at: u64) -> ClaimFuture<'a> {
            Box::pin(async move {
                if self.fail {
                    return Err(StoreError::Unavailable("connection refused".into()));
                }
                let mut claims = self.claims.lock().unwrap();
                if claims.contains_key(key) {
                    return Ok(Claim::AlreadySeen);
                }
                claims.insert(key.to_vec(), expires_at);
                Ok(Claim::Claimed)
            })
        }
    }

    fn layer(store: Arc<TestStore>, now: u64) -> TranzilaVerifyLayer {
        TranzilaVerifyLayer::new(TranzilaCredentials::new(APP, SECRET).unwrap(), store)
            .unwrap()
            .clock(ManualClock::new(now))
    }

    fn signed() -> http::request::Builder {
        Request::post("/v1/charge")
            .header("x-tranzila-api-app-key", APP)
            .header("x-tranzila-api-request-time", TIME)
            .header("x-tranzila-api-nonce", NONCE_HEX)
            .header("x-tranzila-api-access-token", TOKEN)
    }

    struct Outcome {
        status: StatusCode,
        body: String,
        verified: Option<VerifiedSignature>,
        timestamp: Option<RequestTimestamp>,
    }

    async fn send(layer: &TranzilaVerifyLayer, request: Request<Full<Bytes>>) -> Outcome {
        let service = ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(|request: Request<Full<Bytes>>| async move {
                let mut response = Response::new(Full::new(Bytes::from_static(b"inner")));
                if let Some(v) = request.extensions().get::<VerifiedSignature>() {
                    response.extensions_mut().insert(v.clone());
                }
                if let Some(t) = request.extensions().get::<RequestTimestamp>() {
                    response.extensions_mut().insert(*t);
                }
                Ok::<_, Infallible>(response)
            }));
        let response = service.oneshot(request).await.unwrap();
        let status = response.status();
        let verified = response.extensions().get::<VerifiedSignature>().cloned();
        let timestamp = response.extensions().get::<RequestTimestamp>().copied();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Outcome {
            status,
            body: String::from_utf8(body.to_vec()).unwrap(),
            verified,
            timestamp,
        }
    }

    fn json(code: &str, message: &str) -> String {
        format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#)
    }

    #[tokio::test]
    async fn accepts_the_vector_inserts_facts_and_claims_namespaced_nonce() {
        let store = Arc::new(TestStore::default());
        let layer = layer(store.clone(), 1_700_000_100);
        let outcome = send(&layer, signed().body(Full::default()).unwrap()).await;
        assert_eq!(outcome.status, StatusCode::OK);
        assert_eq!(outcome.body, "inner");
        let verified = outcome.verified.unwrap();
        assert_eq!(verified.scheme(), "tranzila");
        assert_eq!(verified.key_id(), APP);
        assert_eq!(verified.timestamp(), Some(1_700_000_000));
        assert_eq!(verified.message_id().unwrap(), NONCE_HEX.as_bytes());
        assert_eq!(verified.signature().as_ref(), hex::decode(TOKEN).unwrap());
        assert_eq!(outcome.timestamp, Some(RequestTimestamp(1_700_000_000)));
        let claims = store.claims.lock().unwrap();
        let key = format!("tranzila:{APP}:{NONCE_HEX}");
        assert_eq!(claims.get(key.as_bytes()), Some(&1_700_000_300));
        assert_eq!(claims.len(), 1);
    }

    #[tokio::test]
    async fn same_request_twice_is_replayed() {
        let store = Arc::new(TestStore::default());
        let layer = layer(store, 1_700_000_000);
        let first = send(&layer, signed().body(Full::default()).unwrap()).await;
        assert_eq!(first.status, StatusCode::OK);
        // Another body with the same headers: the token does not cover it, the nonce does.
        let second = send(
            &layer,
            signed()
                .body(Full::new(Bytes::from_static(b"{\"amount\":999}")))
                .unwrap(),
        )
        .await;
        assert_eq!(second.status, StatusCode::UNAUTHORIZED);
        assert_eq!(second.body, json("replayed", "nonce was already used"));
        assert!(second.verified.is_none());
    }

    #[tokio::test]
    async fn malformed_headers_are_400_and_claim_nothing() {
        let store = Arc::new(TestStore::default());
        let layer = layer(store.clone(), 1_700_000_000);
        let cases: Vec<(Request<Full<Bytes>>, &str, &str)> = vec![
            (
                Request::post("/").body(Full::default()).unwrap(),
                "header_malformed",
                "header `x-tranzila-api-app-key` must be present once, as visible ASCII",
            ),
            (
                signed()
                    .header("x-tranzila-api-nonce", NONCE_HEX)
                    .body(Full::default())
                    .unwrap(),
                "header_malformed",
                "header `x-tranzila-api-nonce` must be present once, as visible ASCII",
            ),
            (
                {
                    let mut r = signed().body(Full::default()).unwrap();
                    r.headers_mut().insert(
                        "x-tranzila-api-access-token",
                        http::HeaderValue::from_bytes(b"\xfftoken").unwrap(),
                    );
                    r
                },
                "header_malformed",
                "header `x-tranzila-api-access-token` must be present once, as visible ASCII",
            ),
            (
                {
                    let mut r = signed().body(Full::default()).unwrap();
                    r.headers_mut().insert(
                        "x-tranzila-api-nonce",
                        http::HeaderValue::from_str(&NONCE_HEX[..79]).unwrap(),
                    );
                    r
                },
                "nonce_malformed",
                "nonce must be exactly 80 hexadecimal characters",
            ),
            (
                {
                    let mut r = signed().body(Full::default()).unwrap();
                    r.headers_mut().insert(
                        "x-tranzila-api-nonce",
                        http::HeaderValue::from_str(&format!("{}g", &NONCE_HEX[..79])).unwrap(),
                    );
                    r
                },
                "nonce_malformed",
                "nonce must be exactly 80 hexadecimal characters",
            ),
            (
                {
                    let mut r = signed().body(Full::default()).unwrap();
                    r.headers_mut().insert(
                        "x-tranzila-api-request-time",
                        http::HeaderValue::from_static("1700000000000.5"),
                    );
                    r
                },
                "timestamp_malformed",
                "timestamp must be Unix seconds as ASCII digits",
            ),
            (
                {
                    let mut r = signed().body(Full::default()).unwrap();
                    r.headers_mut().insert(
                        "x-tranzila-api-access-token",
                        http::HeaderValue::from_static("zz"),
                    );
                    r
                },
                "header_malformed",
                "access token must be 64 hexadecimal characters",
            ),
        ];
        for (request, code, message) in cases {
            let outcome = send(&layer, request).await;
            assert_eq!(outcome.status, StatusCode::BAD_REQUEST, "{code}");
            assert_eq!(outcome.body, json(code, message));
        }
        assert!(store.claims.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn unknown_key_bad_token_and_window_are_401_without_claiming() {
        let store = Arc::new(TestStore::default());
        let check = |now: u64, request: Request<Full<Bytes>>| {
            let layer = layer(store.clone(), now);
            async move { send(&layer, request).await }
        };

        let mut unknown = signed().body(Full::default()).unwrap();
        unknown.headers_mut().insert(
            "x-tranzila-api-app-key",
            http::HeaderValue::from_static("someone_else"),
        );
        let outcome = check(1_700_000_000, unknown).await;
        assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            outcome.body,
            json("tranzila_unknown_app_key", "app key is not known")
        );

        let mut forged = signed().body(Full::default()).unwrap();
        forged.headers_mut().insert(
            "x-tranzila-api-access-token",
            http::HeaderValue::from_str(&TOKEN.replace('8', "9")).unwrap(),
        );
        let outcome = check(1_700_000_000, forged).await;
        assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            outcome.body,
            json("signature_invalid", "access token does not match")
        );

        // Inclusive window edges, both sides.
        for (now, status) in [
            (1_700_000_300, StatusCode::OK),
            (1_699_999_700, StatusCode::OK),
        ] {
            let fresh = Arc::new(TestStore::default());
            let outcome = send(&layer(fresh, now), signed().body(Full::default()).unwrap()).await;
            assert_eq!(outcome.status, status, "now = {now}");
        }
        let outcome = check(1_700_000_301, signed().body(Full::default()).unwrap()).await;
        assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            outcome.body,
            json(
                "timestamp_out_of_window",
                "timestamp is outside the accepted window: too old"
            )
        );
        let outcome = check(1_699_999_699, signed().body(Full::default()).unwrap()).await;
        assert_eq!(
            outcome.body,
            json(
                "timestamp_out_of_window",
                "timestamp is outside the accepted window: too far in the future"
            )
        );
        assert!(store.claims.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn store_failure_is_503_and_never_reaches_inner() {
        let store = Arc::new(TestStore {
            fail: true,
            ..TestStore::default()
        });
        let outcome = send(
            &layer(store, 1_700_000_000),
            signed().body(Full::default()).unwrap(),
        )
        .await;
        assert_eq!(outcome.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            outcome.body,
            json(
                "store_unavailable",
                "replay protection is temporarily unavailable"
            )
        );
        assert!(!outcome.body.contains("connection refused"));
    }

    #[tokio::test]
    async fn closure_lookup_rotates_and_custom_rejection_keeps_extension() {
        let current = Arc::new(Mutex::new(Some(Secret::from_string("old"))));
        let lookup = {
            let current = current.clone();
            move |app_key: &str| {
                if app_key == APP {
                    current.lock().unwrap().clone()
                } else {
                    None
                }
            }
        };
        let layer = TranzilaVerifyLayer::new(lookup, Arc::new(TestStore::default()))
            .unwrap()
            .clock(ManualClock::new(1_700_000_000))
            .on_rejection(RejectionResponder::new(|r: &Rejection| {
                let mut response = Response::new(Bytes::from(format!("no: {}", r.code())));
                *response.status_mut() = r.status();
                response
            }));
        let outcome = send(&layer, signed().body(Full::default()).unwrap()).await;
        assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
        assert_eq!(outcome.body, "no: signature_invalid");

        *current.lock().unwrap() = Some(Secret::from_string(SECRET));
        let outcome = send(&layer, signed().body(Full::default()).unwrap()).await;
        assert_eq!(outcome.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn rejection_is_in_response_extensions() {
        let service = ServiceBuilder::new()
            .layer(layer(Arc::new(TestStore::default()), 1_700_000_000))
            .service(service_fn(|_: Request<Empty<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
            }));
        let response = service.oneshot(Request::new(Empty::new())).await.unwrap();
        let rejection = response.extensions().get::<Rejection>().unwrap();
        assert_eq!(rejection.code(), "header_malformed");
        assert_eq!(response.headers()["content-type"], "application/json");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_headers_are_refused_never_panic(
            app_key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
            time in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..25),
            nonce in proptest::collection::vec(proptest::prelude::any::<u8>(), 78..82),
            token in proptest::collection::vec(proptest::prelude::any::<u8>(), 62..66),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut request = Request::post("/").body(Full::default()).unwrap();
            for (name, value) in [
                (&APP_KEY, app_key),
                (&REQUEST_TIME, time),
                (&NONCE, nonce),
                (&ACCESS_TOKEN, token),
            ] {
                if let Ok(value) = http::HeaderValue::from_bytes(&value) {
                    request.headers_mut().insert(name.clone(), value);
                }
            }
            let store = Arc::new(TestStore::default());
            let outcome = runtime.block_on(send(&layer(store.clone(), 1_700_000_000), request));
            proptest::prop_assert!(
                outcome.status == StatusCode::BAD_REQUEST || outcome.status == StatusCode::UNAUTHORIZED,
                "{}", outcome.status
            );
            proptest::prop_assert!(
                outcome.body.starts_with(r#"{"error":{"code":""#),
                "{}",
                outcome.body
            );
            proptest::prop_assert!(store.claims.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn duplicate_headers_in_any_case_are_refused_and_claim_nothing() {
        let store = Arc::new(TestStore::default());
        let layer = layer(store.clone(), 1_700_000_000);
        for (name, value) in [
            ("X-tranzila-api-app-key", APP),
            ("X-TRANZILA-API-REQUEST-TIME", TIME),
            ("X-Tranzila-Api-Nonce", NONCE_HEX),
            ("x-TRANZILA-api-ACCESS-token", TOKEN),
        ] {
            // The same value twice, under another spelling of the name: still two copies.
            let mut request = signed().body(Full::default()).unwrap();
            request.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_static(value),
            );
            let lower = name.to_ascii_lowercase();
            assert_eq!(request.headers().get_all(&lower).iter().count(), 2);
            let outcome = send(&layer, request).await;
            assert_eq!(outcome.status, StatusCode::BAD_REQUEST, "{name}");
            assert_eq!(
                outcome.body,
                json(
                    "header_malformed",
                    &format!("header `{lower}` must be present once, as visible ASCII")
                )
            );
        }
        assert!(store.claims.lock().unwrap().is_empty());
        // The single copies, in the PHP documentation's spelling, are accepted.
        let mut request = Request::post("/").body(Full::default()).unwrap();
        for (name, value) in [
            ("X-tranzila-api-app-key", APP),
            ("X-tranzila-api-request-time", TIME),
            ("X-tranzila-api-nonce", NONCE_HEX),
            ("X-tranzila-api-access-token", TOKEN),
        ] {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_static(value),
            );
        }
        assert_eq!(send(&layer, request).await.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn non_ascii_app_keys_are_refused_as_malformed() {
        let store = Arc::new(TestStore::default());
        let layer = layer(store.clone(), 1_700_000_000);
        for app_key in [
            "מפתח".as_bytes(),
            b"caf\xc3\xa9",
            b"\x80\xff",
            b"with space",
        ] {
            let mut request = signed().body(Full::default()).unwrap();
            request.headers_mut().insert(
                "x-tranzila-api-app-key",
                http::HeaderValue::from_bytes(app_key).unwrap(),
            );
            let outcome = send(&layer, request).await;
            assert_eq!(
                outcome.body,
                json(
                    "header_malformed",
                    "header `x-tranzila-api-app-key` must be present once, as visible ASCII"
                ),
                "{app_key:?}"
            );
        }
        assert!(store.claims.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn replay_refused_when_the_verifier_clock_is_far_from_the_store_clock() {
        // The verifier reads a manual clock in 2023, the memory store the system clock: the
        // claim's expiry is long past by the store's clock, and the store holds it anyway.
        let store = tollgate_replay::MemoryNonceStore::new(100);
        let layer = TranzilaVerifyLayer::new(TranzilaCredentials::new(APP, SECRET).unwrap(), store)
            .unwrap()
            .clock(ManualClock::new(1_700_000_000));
        assert_eq!(
            send(&layer, signed().body(Full::default()).unwrap())
                .await
                .status,
            StatusCode::OK
        );
        let again = send(&layer, signed().body(Full::default()).unwrap()).await;
        assert_eq!(again.status, StatusCode::UNAUTHORIZED);
        assert_eq!(again.body, json("replayed", "nonce was already used"));
    }

    #[tokio::test]
    async fn skewed_verifiers_sharing_a_store_refuse_the_replay() {
        // Verifier A's clock is 200 s ahead of B's; the shared store reads A's clock. The
        // vector's time is as far ahead as A accepts, so A asks for expiry NOW + 800 (A's
        // clock); B accepts the time until its clock reads NOW + 800, when the store's reads
        // NOW + 1000.
        let now = 1_700_000_000 - 500;
        let a_clock = ManualClock::new(now + 200);
        let b_clock = ManualClock::new(now);
        let store = Arc::new(
            tollgate_replay::MemoryNonceStore::new(100)
                .with_clock(a_clock.clone())
                .with_min_retention(tollgate_replay::DEFAULT_SHARED_MIN_RETENTION),
        );
        let verifier = |clock: &ManualClock| {
            TranzilaVerifyLayer::new(
                TranzilaCredentials::new(APP, SECRET).unwrap(),
                store.clone(),
            )
            .unwrap()
            .clock(clock.clone())
        };
        let (a, b) = (verifier(&a_clock), verifier(&b_clock));
        assert_eq!(
            send(&a, signed().body(Full::default()).unwrap())
                .await
                .status,
            StatusCode::OK
        );
        for elapsed in [200, 500, 700, 800] {
            a_clock.set(now + 200 + elapsed);
            b_clock.set(now + elapsed);
            let outcome = send(&b, signed().body(Full::default()).unwrap()).await;
            assert_eq!(
                outcome.body,
                json("replayed", "nonce was already used"),
                "{elapsed} s later"
            );
        }
        b_clock.set(now + 801);
        let outcome = send(&b, signed().body(Full::default()).unwrap()).await;
        assert_eq!(
            outcome.body,
            json(
                "timestamp_out_of_window",
                "timestamp is outside the accepted window: too old"
            )
        );
    }

    #[tokio::test]
    async fn clock_skew_margin_lengthens_the_requested_expiry() {
        let store = Arc::new(TestStore::default());
        let layer = layer(store.clone(), 1_700_000_000).clock_skew_margin(Duration::from_secs(90));
        assert_eq!(
            send(&layer, signed().body(Full::default()).unwrap())
                .await
                .status,
            StatusCode::OK
        );
        let claims = store.claims.lock().unwrap();
        assert_eq!(
            claims.values().copied().collect::<Vec<_>>(),
            [1_700_000_390]
        );
        assert!(format!("{layer:?}").contains("clock_skew_margin_secs: 90"));
    }

    #[test]
    fn logs_name_the_refusal_never_a_secret_or_a_header_value() {
        use std::io::Write;

        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            // Other tests in this binary run on other threads without a subscriber; one of them may
            // have registered a callsite as uninteresting while this subscriber was being set.
            tracing::callsite::rebuild_interest_cache();
            runtime.block_on(async {
                let store = Arc::new(TestStore::default());
                let layer = layer(store, 1_700_000_000);
                send(&layer, signed().body(Full::default()).unwrap()).await;
                send(&layer, signed().body(Full::default()).unwrap()).await;
                let mut forged = signed().body(Full::default()).unwrap();
                forged.headers_mut().insert(
                    "x-tranzila-api-access-token",
                    http::HeaderValue::from_str(&TOKEN.replace('8', "9")).unwrap(),
                );
                send(&layer, forged).await;
                let failing = Arc::new(TestStore {
                    fail: true,
                    ..TestStore::default()
                });
                send(
                    &layer_with(failing),
                    signed().body(Full::default()).unwrap(),
                )
                .await;
            });
        });
        let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("code=\"replayed\""), "{logs}");
        assert!(logs.contains("code=\"signature_invalid\""), "{logs}");
        assert!(logs.contains("Tranzila nonce store failed"), "{logs}");
        for secret_or_value in [SECRET, TOKEN, &TOKEN.replace('8', "9"), NONCE_HEX] {
            assert!(!logs.contains(secret_or_value), "{logs}");
        }
    }

    fn layer_with(store: Arc<TestStore>) -> TranzilaVerifyLayer {
        layer(store, 1_700_000_000)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1_000))]

        /// Two different (app key, nonce) pairs never share a claim key, and no claim key is a
        /// tollgate-replay `replay_key` (those start with a zero length byte).
        #[test]
        fn claim_keys_are_injective(
            a in ("[!-~]{1,6}", "[0-9a-fA-F:]{0,2}"),
            b in ("[!-~]{1,6}", "[0-9a-fA-F:]{0,2}"),
            nonce_a in "[0-9a-f]{78}",
            nonce_b in "[0-9a-f]{78}",
            same_nonce in proptest::prelude::any::<bool>(),
        ) {
            // Nonces that differ only near the app key are the interesting ones.
            let nonce_a = format!("{}{nonce_a}", "ab");
            let nonce_b = if same_nonce { nonce_a.clone() } else { format!("{}{nonce_b}", "ab") };
            let app_a = format!("{}{}", a.0, a.1);
            let app_b = format!("{}{}", b.0, b.1);
            let key_a = claim_key(&app_a, &nonce_a);
            let key_b = claim_key(&app_b, &nonce_b);
            proptest::prop_assert_eq!(key_a == key_b, (&app_a, &nonce_a) == (&app_b, &nonce_b));
            // Decoding: the app key is recovered from the key alone.
            proptest::prop_assert_eq!(&key_a[9..key_a.len() - 81], app_a.as_bytes());
            proptest::prop_assert_eq!(&key_a[key_a.len() - 80..], nonce_a.as_bytes());
            let replay = tollgate_replay::replay_key(SCHEME.as_bytes(), app_a.as_bytes(), nonce_a.as_bytes());
            proptest::prop_assert_ne!(replay[0], key_a[0]);
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let layer = layer(Arc::new(TestStore::default()), 0);
        let debug = format!("{layer:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains("tolerance_secs: 300"), "{debug}");
    }

    #[test]
    fn services_are_send_sync_clone() {
        fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
        assert_send_sync_clone::<TranzilaVerifyLayer>();
        assert_send_sync_clone::<TranzilaVerify<()>>();
    }
}
