//! [`VerifySignatureLayer`]: buffer, verify, and hand the same bytes on (server side).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tollgate_core::body::check_content_length;
use tollgate_core::metrics::{self, LayerName};
use tollgate_core::{
    BoxError, BufferedBody, Clock, DEFAULT_BODY_TIMEOUT, KeyRing, KeyRingHandle, Rejection,
    RejectionResponder, RequestTimestamp, ResponseBody,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{Common, common_setters};
use crate::future::VerifySignatureFuture;
use crate::scheme::{ConfigError, PreparedKeys, RequestParts, Scheme};

/// The verified request body, in the request's extensions next to the
/// [`VerifiedSignature`](tollgate_core::VerifiedSignature).
///
/// The same `Bytes` the inner service receives as its body (a reference-counted handle, not a
/// copy), so handlers and extractors can read the exact signed bytes without consuming the body.
/// `Debug` prints the length only.
///
/// ```
/// use bytes::Bytes;
/// use tollgate_signature::VerifiedBody;
///
/// let body = VerifiedBody::new(Bytes::from_static(b"{}"));
/// assert_eq!(body.bytes(), &b"{}"[..]);
/// assert_eq!(format!("{body:?}"), "VerifiedBody { len: 2 }");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedBody(Bytes);

impl VerifiedBody {
    /// Wraps verified bytes.
    pub fn new(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// The exact bytes that verified.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The bytes, by value.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl fmt::Debug for VerifiedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedBody")
            .field("len", &self.0.len())
            .finish()
    }
}

/// The configuration of [`VerifySignatureLayer`], shared by its services.
#[derive(Clone)]
pub(crate) struct VerifyConfig {
    pub(crate) common: Common,
    /// The ring, with each key's HMAC state keyed once.
    keys: VerifyKeys,
    pub(crate) responder: RejectionResponder,
    /// How long the whole body may take to arrive.
    pub(crate) body_timeout: Duration,
    /// [`Scheme::verify_reads_clock`], asked once.
    scheme_reads_clock: bool,
}

/// The keys a verifier checks against: a ring fixed when the layer was built, or a
/// [`KeyRingHandle`] shared with whoever rotates it.
enum VerifyKeys {
    /// Keyed once, when the layer was built; nothing is loaded per request.
    Fixed(PreparedKeys),
    /// Loaded once per request. The keyed state of the ring last seen is cached with the
    /// handle's [version](KeyRingHandle::version) it was loaded at, and used only while the
    /// version has not moved: a request never mixes the keys of one version with the state of
    /// another, and a store is seen by the next request.
    Live {
        handle: KeyRingHandle,
        prepared: ArcSwap<Prepared>,
    },
}

/// The keyed state of one version of a handle's ring.
struct Prepared {
    /// The handle's version read before `ring` was loaded: `ring` is that version or newer.
    version: u64,
    keys: PreparedKeys,
}

impl Prepared {
    fn load(handle: &KeyRingHandle) -> Self {
        let version = handle.version();
        let keys = PreparedKeys::new(KeyRing::clone(&handle.load()));
        Self { version, keys }
    }
}

impl VerifyKeys {
    /// Fixed when nobody else holds `handle` (a plain ring was passed), else live.
    fn new(handle: KeyRingHandle) -> Self {
        match handle.into_unshared() {
            Ok(ring) => Self::Fixed(PreparedKeys::new(Arc::unwrap_or_clone(ring))),
            Err(handle) => {
                let prepared = ArcSwap::from_pointee(Prepared::load(&handle));
                Self::Live { handle, prepared }
            }
        }
    }

    /// Runs `verify` with the keys of exactly one version of the ring, loaded once, here: the
    /// cached keyed state when the handle's version has not moved since it was loaded (one
    /// atomic read and one lock-free load), else the ring loaded and keyed afresh.
    #[inline]
    fn with<R>(&self, verify: impl FnOnce(&PreparedKeys) -> R) -> R {
        match self {
            Self::Fixed(keys) => verify(keys),
            Self::Live { handle, prepared } => {
                let version = handle.version();
                let cached = prepared.load();
                if cached.version == version {
                    return verify(&cached.keys);
                }
                // The ring was swapped since the state was keyed: key it once, for this
                // request and the next ones.
                let fresh = Arc::new(Prepared::load(handle));
                prepared.store(Arc::clone(&fresh));
                verify(&fresh.keys)
            }
        }
    }

    /// Whether the current ring has a key that can verify.
    fn can_verify(&self) -> bool {
        self.with(PreparedKeys::can_verify)
    }
}

impl Clone for VerifyKeys {
    fn clone(&self) -> Self {
        match self {
            Self::Fixed(keys) => Self::Fixed(keys.clone()),
            Self::Live { handle, prepared } => Self::Live {
                handle: handle.clone(),
                prepared: ArcSwap::new(prepared.load_full()),
            },
        }
    }
}

impl fmt::Debug for VerifyKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(keys) => keys.ring().fmt(f),
            Self::Live { handle, .. } => handle.fmt(f),
        }
    }
}

impl VerifyConfig {
    /// Verifies the buffered request whose head is `parts` and whose body is `bytes`, timed
    /// for [`VERIFY_DURATION_SECONDS`](tollgate_core::metrics::VERIFY_DURATION_SECONDS). On
    /// success the facts are in `parts`' extensions (built there, not moved around) and the
    /// request is counted as allowed; else the rejection.
    pub(crate) fn verify(
        &self,
        parts: &mut http::request::Parts,
        bytes: &Bytes,
    ) -> Result<(), Rejection> {
        let timer = metrics::verify_timer(LayerName::Signature);
        let uri = signed_uri(parts);
        let view = RequestParts::with_body_bytes(&parts.method, uri, &parts.headers, bytes);
        let verified = self.keys.with(|keys| {
            // The clock is read when the answer can depend on it: a scheme that checks a time,
            // or a key that expires. Else no check reads `now`.
            let now = if self.scheme_reads_clock || keys.expiring() {
                self.common.clock.now_unix()
            } else {
                0
            };
            self.common.scheme.verify(keys, &view, now)
        });
        timer.finish();
        // Matched rather than mapped, and inserted where matched: the verified signature
        // (about 340 bytes) is moved as few times as the compiler allows.
        let verified = match verified {
            Ok(verified) => verified,
            Err(err) => return Err(err.to_rejection()),
        };
        tracing::debug!(
            target: "tollgate",
            scheme = verified.scheme(),
            key_id = verified.key_id(),
            "signature verified"
        );
        let extensions = &mut parts.extensions;
        metrics::allowed_verified(LayerName::Signature, verified.key_id(), extensions);
        if let Some(timestamp) = verified.timestamp() {
            extensions.insert(RequestTimestamp(timestamp));
        }
        extensions.insert(verified);
        extensions.insert(VerifiedBody(bytes.clone()));
        Ok(())
    }
}

impl fmt::Debug for VerifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("VerifySignatureLayer");
        out.field("ring", &self.keys);
        self.common.debug_fields(&mut out);
        out.field("body_timeout", &self.body_timeout)
            .field("responder", &self.responder)
            .finish()
    }
}

/// The URI the client signed: behind axum's `Router::nest` the request's URI lost its prefix,
/// and axum keeps the original in an extension.
#[cfg(feature = "axum")]
fn signed_uri(parts: &http::request::Parts) -> &http::Uri {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(&parts.uri, |original| &original.0)
}

#[cfg(not(feature = "axum"))]
fn signed_uri(parts: &http::request::Parts) -> &http::Uri {
    &parts.uri
}

/// Verifies the signature of every request before the inner service sees it.
///
/// For each request the layer:
///
/// 1. answers 413 `payload_too_large` when `Content-Length` declares more than the limit
///    (default [`DEFAULT_BODY_LIMIT`](tollgate_core::DEFAULT_BODY_LIMIT), 1 MiB), before
///    reading a byte;
/// 2. reads the body into one `Bytes`, answering 413 once more than the limit arrives (chunked
///    bodies too), 400 `body_read_failed` when reading fails and 408 `body_timeout` when the
///    whole body has not arrived within the [body timeout](Self::body_timeout) (default
///    [`DEFAULT_BODY_TIMEOUT`], 10 s, counted from the start of reading, not reset by each
///    chunk);
/// 3. verifies it with the [`Scheme`] against every key of the [`KeyRing`] usable at the
///    [`Clock`]'s now, answering 401 `signature_missing` / `signature_invalid` /
///    `timestamp_out_of_window` or 400 `signature_malformed` / `timestamp_malformed`;
/// 4. hands the inner service a [`BufferedBody`] over the **same** `Bytes` (nothing is copied a
///    second time), with a [`VerifiedSignature`](tollgate_core::VerifiedSignature), a
///    [`VerifiedBody`] and, when the scheme has a timestamp, a [`RequestTimestamp`] in the
///    request's extensions.
///
/// Rejections are tollgate's JSON (`{"error":{"code":"...","message":"..."}}`, one message per
/// code: [`Rejection::from_code`]), replaceable with
/// [`on_rejection`](VerifySignatureLayer::on_rejection). They never contain the expected
/// signature. A ring with no usable key (every key blank) is refused when the layer is built
/// ([`ConfigError::NoUsableKey`]).
///
/// # Security considerations
///
/// - Put this layer *outside* anything that changes the body, the path or the headers it
///   signs; the inner service must use the bytes it is handed (see the crate docs on not
///   re-encoding JSON).
/// - A replay guard that reads [`VerifiedSignature`](tollgate_core::VerifiedSignature) goes
///   *inside* this layer.
/// - The body limit bounds memory per request; raise it only as far as your provider needs.
/// - The body timeout bounds how long a slow or stalled client holds a request: a body that
///   trickles in a byte at a time, or never comes after its `Content-Length`, is answered
///   408 `body_timeout` once the timeout has passed since reading began. Keep it below the
///   server's own whole-request timeout so the answer is tollgate's.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode};
/// use tollgate_core::{BufferedBody, KeyRing, ManualClock, Secret, VerifiedSignature};
/// use tollgate_signature::{BodyHmac, VerifySignatureLayer};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let layer = VerifySignatureLayer::new(BodyHmac::onekey(), KeyRing::single(Secret::from_string("cashout_secret_key")))
///     .unwrap()
///     .clock(ManualClock::new(1_700_000_000));
/// let service = ServiceBuilder::new().layer(layer).service(service_fn(|req: Request<BufferedBody>| async move {
///     let key_id = req.extensions().get::<VerifiedSignature>().unwrap().key_id().to_owned();
///     Ok::<_, Infallible>(Response::new(key_id))
/// }));
///
/// let request = Request::post("/notify")
///     .header("payload-signature", "8d3e2b061e753c88e401ac8737e6dc7af9e02d590fd1dd4d5e1ded9f4430487c")
///     .body(String::new())
///     .unwrap();
/// let response = service.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
///
/// let unsigned = Request::post("/notify").body(String::new()).unwrap();
/// assert_eq!(service.oneshot(unsigned).await.unwrap().status(), StatusCode::UNAUTHORIZED);
/// # });
/// ```
#[derive(Clone)]
#[must_use]
pub struct VerifySignatureLayer {
    config: Arc<VerifyConfig>,
}

impl VerifySignatureLayer {
    /// Verifies with `scheme` against `ring`, using the system clock, a 1 MiB body limit and
    /// JSON rejections. Each key's HMAC state is keyed here, once.
    ///
    /// `ring` is a [`KeyRing`] (or a [`Secret`](tollgate_core::Secret)), fixed for the
    /// layer's life, or a [`KeyRingHandle`] to rotate and revoke keys while the service runs:
    /// each request then loads the handle once, when its body has arrived, and is verified
    /// against exactly that version (its keyed state is computed once per version). A key
    /// removed from the handle's ring fails the very next request signed with it.
    ///
    /// Fails with [`ConfigError::NoUsableKey`] when every key of `ring` is blank (empty, all
    /// zero bytes or only whitespace): nothing could verify. Blank keys next to usable ones
    /// are skipped. A handle refuses a later ring whose signing key is blank
    /// ([`KeyRingHandle::store`]), so it never holds one this check would refuse.
    ///
    /// ```
    /// use tollgate_core::{Key, KeyRing, KeyRingHandle, Secret};
    /// use tollgate_signature::{BodyHmac, ConfigError, VerifySignatureLayer};
    ///
    /// assert!(VerifySignatureLayer::new(BodyHmac::onekey(), Secret::from_string("s3cr3t")).is_ok());
    /// assert_eq!(
    ///     VerifySignatureLayer::new(BodyHmac::onekey(), Secret::from_string("")).unwrap_err(),
    ///     ConfigError::NoUsableKey
    /// );
    ///
    /// // Swappable: keep a clone of the handle and store new rings into it.
    /// let keys = KeyRingHandle::new(KeyRing::new(Key::new("2026-08", Secret::from_string("old"))));
    /// let layer = VerifySignatureLayer::new(BodyHmac::onekey(), keys.clone())?;
    /// keys.store(KeyRing::new(Key::new("2026-11", Secret::from_string("new"))))?;
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(scheme: impl Scheme, ring: impl Into<KeyRingHandle>) -> Result<Self, ConfigError> {
        let keys = VerifyKeys::new(ring.into());
        if !keys.can_verify() {
            return Err(ConfigError::NoUsableKey);
        }
        // A scheme with a window reads the clock whatever it answers: handed 0, a window
        // would accept timestamps near 0.
        let scheme_reads_clock =
            scheme.verify_reads_clock() || scheme.timestamp_tolerance().is_some();
        Ok(Self {
            config: Arc::new(VerifyConfig {
                common: Common::new(scheme),
                scheme_reads_clock,
                keys,
                responder: RejectionResponder::json(),
                body_timeout: DEFAULT_BODY_TIMEOUT,
            }),
        })
    }

    common_setters!();

    /// Sets how long the **whole** body may take to arrive (default
    /// [`DEFAULT_BODY_TIMEOUT`](tollgate_core::DEFAULT_BODY_TIMEOUT), 10 s); past it the
    /// answer is 408 `body_timeout` and the inner service is not called.
    ///
    /// The time counts from when the layer starts reading the body and is not reset by the
    /// bytes that keep arriving: a client that trickles one byte a second, or declares a
    /// `Content-Length` and sends nothing, holds the request for this long at most. A declared
    /// `Content-Length` over the [body limit](Self::body_limit) is still answered 413 at once.
    /// `Duration::ZERO` waits for nothing (only a body already complete when the layer reads
    /// it passes); there is no "no timeout" value short of one too long to represent
    /// (`Duration::MAX`). The timer is tokio's, started only for a body that has to be waited
    /// for (see [`BufferBody::timeout`](tollgate_core::BufferBody::timeout)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate_core::Secret;
    /// use tollgate_signature::{BodyHmac, VerifySignatureLayer};
    ///
    /// let layer = VerifySignatureLayer::new(BodyHmac::onekey(), Secret::from_string("s3cr3t"))?
    ///     .body_limit(64 * 1024)
    ///     .body_timeout(Duration::from_secs(5));
    /// # let _ = layer;
    /// # Ok::<(), tollgate_signature::ConfigError>(())
    /// ```
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).body_timeout = timeout;
        self
    }

    /// Replaces the rejection response: a closure `Fn(&Rejection) -> Response<Bytes>`, any
    /// [`RespondRejection`](tollgate_core::RespondRejection), or a whole
    /// [`RejectionResponder`] (e.g. [`RejectionResponder::grpc`]). The rejection is still
    /// logged and put into the response's extensions.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Response, StatusCode};
    /// use tollgate_core::{Rejection, RejectionResponder, Secret};
    /// use tollgate_signature::{BodyHmac, VerifySignatureLayer};
    ///
    /// let layer = VerifySignatureLayer::new(BodyHmac::onekey(), Secret::from_string("s3cr3t"))?
    ///     .on_rejection(|rejection: &Rejection| {
    ///         let mut response = Response::new(Bytes::from(rejection.code().to_owned()));
    ///         *response.status_mut() = rejection.status();
    ///         response
    ///     });
    /// let grpc = layer.on_rejection(RejectionResponder::grpc());
    /// # let _ = grpc;
    /// # Ok::<(), tollgate_signature::ConfigError>(())
    /// ```
    pub fn on_rejection(mut self, responder: impl Into<RejectionResponder>) -> Self {
        Arc::make_mut(&mut self.config).responder = responder.into();
        self
    }
}

impl fmt::Debug for VerifySignatureLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl<S> Layer<S> for VerifySignatureLayer {
    type Service = VerifySignature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifySignature {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`VerifySignatureLayer`].
#[derive(Clone, Debug)]
#[must_use]
pub struct VerifySignature<S> {
    inner: S,
    config: Arc<VerifyConfig>,
}

impl<S> VerifySignature<S> {
    /// Wraps `inner` with the configuration of `layer`.
    pub fn new(inner: S, layer: &VerifySignatureLayer) -> Self {
        layer.layer(inner)
    }

    /// The layer, to wrap services with (same as [`VerifySignatureLayer::new`]).
    pub fn layer(
        scheme: impl Scheme,
        ring: impl Into<KeyRingHandle>,
    ) -> Result<VerifySignatureLayer, ConfigError> {
        VerifySignatureLayer::new(scheme, ring)
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifySignature<S>
where
    S: Service<Request<BufferedBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = VerifySignatureFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // 413 before reading a byte when the declared `Content-Length` is too large; a body
        // whose size hint says so is refused by the buffering before its first read.
        if let Err(error) = check_content_length(request.headers(), self.config.common.limit) {
            let response = self
                .config
                .responder
                .refuse(LayerName::Signature, error.to_rejection());
            return VerifySignatureFuture::rejected(response, Arc::clone(&self.config));
        }
        // The ready service goes into the future; a fresh clone stays here.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        VerifySignatureFuture::reading(request, inner, Arc::clone(&self.config))
    }
}
