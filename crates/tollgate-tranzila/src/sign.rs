//! [`TranzilaSigningLayer`]: the client side, adding the four Tranzila headers to every
//! outbound request.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use tollgate_core::upstream::{self, Upstream};
use tollgate_core::{BoxError, Clock, SharedClock, SystemClock};
use tower_layer::Layer;
use tower_service::Service;
use zeroize::Zeroize;

use crate::error::{ConfigError, SignError};
use crate::future::TranzilaSigningFuture;
use crate::token::{
    ACCESS_TOKEN_LEN, NONCE_LEN, TranzilaCredentials, access_token_into, fill_nonce,
    is_valid_app_key, is_valid_nonce,
};
use crate::{ACCESS_TOKEN, APP_KEY, NONCE, REQUEST_TIME};

type NonceSource = Arc<dyn Fn() -> Result<String, BoxError> + Send + Sync>;

/// Signs every request with Tranzila's four headers.
///
/// For each request the service reads the injected [`Clock`] (Unix **seconds**), draws a fresh
/// nonce from the OS CSPRNG ([`generate_nonce`](crate::generate_nonce)), computes the
/// [`access_token`](crate::access_token) and sets:
///
/// | header | value |
/// |---|---|
/// | `X-tranzila-api-app-key` | the app key |
/// | `X-tranzila-api-request-time` | the clock's Unix seconds, marked sensitive |
/// | `X-tranzila-api-nonce` | 80 lowercase hex characters, marked sensitive |
/// | `X-tranzila-api-access-token` | the token, marked sensitive |
///
/// *Sensitive* values are never put in HTTP/2's header compression table (HPACK's
/// "never indexed"): the token because it is a credential, the time and nonce because they
/// are new on every request and would only push out the values that repeat.
///
/// Headers of those names already on the request are replaced, never duplicated. The body is
/// passed through untouched and may be of any type.
///
/// **The token is pinned to its upstream.** The layer is built with the [`Upstream`] it may
/// sign for (usually [`Upstream::tranzila()`]; more with
/// [`upstream`](TranzilaSigningLayer::upstream)), and before anything is computed every
/// request is checked with [`tollgate_core::upstream::check`]: scheme, host and effective port
/// must match, and a `Host` header must be absent or agree with the URI. Otherwise `call`
/// fails with [`SignError::UpstreamNotAllowed`] or [`SignError::AmbiguousTarget`], no token
/// is made and the inner service is never called, so nothing reaches the network.
///
/// When a header cannot be built (the only way is a broken nonce source) or the OS has no
/// randomness, `call` fails with a [`SignError`] inside the [`BoxError`] and the request is
/// **not** sent: there is never a request with an incomplete header set.
///
/// # Security considerations
///
/// The token covers the app key, the time and the nonce, **not the method, the path or the
/// body**. Whoever sees one signed request could attach another body to those headers within
/// the time window; what protects the payload is TLS (always call Tranzila over `https`) and
/// the server refusing a nonce it has already seen. The token is a bearer credential for that
/// window, which is why it is only ever made for a configured upstream (see the crate's
/// "Security considerations" for the exact rules).
///
/// Put this layer *inside* (after) any layer that follows redirects, so every hop is checked.
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::Empty;
/// use tollgate_core::{ManualClock, Upstream};
/// use tollgate_tranzila::{SignError, TranzilaCredentials, TranzilaSigningLayer};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let credentials = TranzilaCredentials::new("pub_app_key_demo", "private_secret_demo").unwrap();
/// let layer = TranzilaSigningLayer::new(credentials, Upstream::tranzila())
///     .unwrap()
///     .clock(ManualClock::new(1_700_000_000));
/// let service = ServiceBuilder::new()
///     .layer(layer)
///     .service(service_fn(|request: Request<Empty<Bytes>>| async move {
///         // Stands in for the hyper client: look at what would be sent.
///         let headers = request.headers();
///         assert_eq!(headers["x-tranzila-api-app-key"], "pub_app_key_demo");
///         assert_eq!(headers["x-tranzila-api-request-time"], "1700000000");
///         assert_eq!(headers["x-tranzila-api-nonce"].len(), 80);
///         assert!(headers["x-tranzila-api-access-token"].is_sensitive());
///         Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new()))
///     }));
/// let url = "https://api.tranzila.com/v1/transaction/credit_card/create";
/// service.clone().oneshot(Request::post(url).body(Empty::new()).unwrap()).await.unwrap();
///
/// // Anywhere else: refused before a token is made; the inner service is not called.
/// let elsewhere = Request::post("https://attacker.example/collect").body(Empty::new()).unwrap();
/// let error = service.oneshot(elsewhere).await.unwrap_err();
/// assert!(matches!(
///     error.downcast_ref::<SignError>(),
///     Some(SignError::UpstreamNotAllowed { .. })
/// ));
/// # });
/// ```
#[derive(Clone)]
#[must_use]
pub struct TranzilaSigningLayer {
    config: Arc<SignConfig>,
}

#[derive(Clone)]
struct SignConfig {
    credentials: TranzilaCredentials,
    app_key: HeaderValue,
    clock: SharedClock,
    nonce_source: Option<NonceSource>,
    /// Never empty: [`TranzilaSigningLayer::new`] takes the first one.
    upstreams: Vec<Upstream>,
}

impl TranzilaSigningLayer {
    /// A layer signing with `credentials`, the system clock and OS randomness, for requests
    /// to `upstream` only (usually [`Upstream::tranzila()`]; a mock or a sandbox in tests).
    /// Allow more upstreams with [`upstream`](TranzilaSigningLayer::upstream).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidAppKey`] when the app key is empty or holds anything but visible
    /// ASCII (it could not travel in a header unchanged).
    ///
    /// ```
    /// use tollgate_core::Upstream;
    /// use tollgate_tranzila::{TranzilaCredentials, TranzilaSigningLayer};
    ///
    /// let credentials = TranzilaCredentials::new("pub_app_key_demo", "private_secret_demo")?;
    /// let layer = TranzilaSigningLayer::new(credentials, Upstream::tranzila())?
    ///     // A local mock as well (an `Upstream` parses at build time, never per request).
    ///     .upstream(Upstream::parse("http://127.0.0.1:8080")?);
    /// assert_eq!(layer.upstreams().len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(credentials: TranzilaCredentials, upstream: Upstream) -> Result<Self, ConfigError> {
        if !is_valid_app_key(credentials.app_key()) {
            return Err(ConfigError::InvalidAppKey);
        }
        let app_key =
            HeaderValue::from_str(credentials.app_key()).map_err(|_| ConfigError::InvalidAppKey)?;
        Ok(Self {
            config: Arc::new(SignConfig {
                credentials,
                app_key,
                clock: Arc::new(SystemClock),
                nonce_source: None,
                upstreams: vec![upstream],
            }),
        })
    }

    /// Also signs requests to `upstream`. Call it once per extra upstream; repeats are ignored.
    pub fn upstream(self, upstream: Upstream) -> Self {
        self.map_config(|config| {
            if !config.upstreams.contains(&upstream) {
                config.upstreams.push(upstream);
            }
        })
    }

    /// The upstreams this layer signs for (never empty).
    pub fn upstreams(&self) -> &[Upstream] {
        &self.config.upstreams
    }

    /// Reads the request time from `clock` instead of the system clock.
    pub fn clock(self, clock: impl Clock) -> Self {
        self.map_config(|config| config.clock = Arc::new(clock))
    }

    /// **For tests only**: takes nonces from `source` instead of the OS CSPRNG, so that a test
    /// can fix the nonce and reproduce published vectors. Never use it in production: a
    /// repeated nonce makes every request after the first a replay.
    ///
    /// A value that is not 80 hexadecimal characters fails the request with
    /// [`SignError::InvalidNonce`].
    #[doc(hidden)]
    pub fn with_nonce_source<F>(self, source: F) -> Self
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        let source: NonceSource = Arc::new(move || Ok(source()));
        self.map_config(|config| config.nonce_source = Some(source))
    }

    /// The credentials this layer signs with.
    pub fn credentials(&self) -> &TranzilaCredentials {
        &self.config.credentials
    }

    fn map_config(mut self, change: impl FnOnce(&mut SignConfig)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }
}

impl fmt::Debug for TranzilaSigningLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TranzilaSigningLayer")
            .field("credentials", &self.config.credentials)
            .field("upstreams", &self.config.upstreams)
            .field("clock", &self.config.clock)
            .field("fixed_nonce_source", &self.config.nonce_source.is_some())
            .finish()
    }
}

impl<S> Layer<S> for TranzilaSigningLayer {
    type Service = TranzilaSigning<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TranzilaSigning::new(inner, self)
    }
}

/// The service made by [`TranzilaSigningLayer`].
#[derive(Clone)]
#[must_use]
pub struct TranzilaSigning<S> {
    inner: S,
    config: Arc<SignConfig>,
}

impl<S> TranzilaSigning<S> {
    /// Wraps `inner` (usually a `hyper_util` client) with `layer`'s configuration.
    pub fn new(inner: S, layer: &TranzilaSigningLayer) -> Self {
        Self {
            inner,
            config: Arc::clone(&layer.config),
        }
    }

    /// A layer that wraps services in `TranzilaSigning` (same as [`TranzilaSigningLayer::new`]).
    pub fn layer(
        credentials: TranzilaCredentials,
        upstream: Upstream,
    ) -> Result<TranzilaSigningLayer, ConfigError> {
        TranzilaSigningLayer::new(credentials, upstream)
    }

    tollgate_core::__inner_service_accessors!();

    /// Computes the four headers for one request.
    ///
    /// The time, nonce and token are written straight into one buffer ([`SignedValues`])
    /// whose single allocation their three header values share; the app key's value is shared
    /// with the layer. Nothing else is allocated.
    fn headers(&self) -> Result<SignedHeaders, SignError> {
        let config = &self.config;
        let mut digits = [0u8; MAX_U64_DIGITS];
        let time = format_unix_seconds(config.clock.now_unix(), &mut digits);
        let mut values = SignedValues {
            bytes: [0u8; SIGNED_VALUES_LEN],
            len: ACCESS_TOKEN_LEN + NONCE_LEN + time.len(),
        };
        let (token, rest) = values.bytes.split_at_mut(ACCESS_TOKEN_LEN);
        let (nonce, rest) = rest.split_at_mut(NONCE_LEN);
        rest[..time.len()].copy_from_slice(time);
        match &config.nonce_source {
            // The crate's own nonce is 80 lowercase hex characters by construction.
            None => fill_nonce(nonce).map_err(|_| SignError::Randomness)?,
            Some(source) => {
                let custom = source().map_err(|_| SignError::Randomness)?;
                if !is_valid_nonce(&custom) {
                    return Err(SignError::InvalidNonce);
                }
                nonce.copy_from_slice(custom.as_bytes());
            }
        }
        access_token_into(
            config.credentials.app_key().as_bytes(),
            config.credentials.secret(),
            time,
            nonce,
            token,
        );

        let mut time = Bytes::from_owner(values);
        let token = time.split_to(ACCESS_TOKEN_LEN);
        let nonce = time.split_to(NONCE_LEN);
        let mut time =
            HeaderValue::from_maybe_shared(time).map_err(|_| SignError::InvalidHeader)?;
        let mut nonce =
            HeaderValue::from_maybe_shared(nonce).map_err(|_| SignError::InvalidNonce)?;
        let mut token =
            HeaderValue::from_maybe_shared(token).map_err(|_| SignError::InvalidHeader)?;
        // Never indexed by HTTP/2's header compression (HPACK): the token is a credential,
        // and the time and nonce are new on every request, so indexing them would only
        // churn both ends' tables and push out the values that do repeat (the app key).
        token.set_sensitive(true);
        time.set_sensitive(true);
        nonce.set_sensitive(true);
        Ok(SignedHeaders {
            app_key: config.app_key.clone(),
            time,
            nonce,
            token,
        })
    }
}

/// The four header values of one signed request.
struct SignedHeaders {
    app_key: HeaderValue,
    time: HeaderValue,
    nonce: HeaderValue,
    token: HeaderValue,
}

/// Room for the token, the nonce and the longest time, in that order.
const SIGNED_VALUES_LEN: usize = ACCESS_TOKEN_LEN + NONCE_LEN + MAX_U64_DIGITS;

/// The bytes behind one request's token, nonce and time header values: one allocation that
/// the three values share. The token's bytes are wiped when the last of them is dropped.
struct SignedValues {
    bytes: [u8; SIGNED_VALUES_LEN],
    len: usize,
}

impl AsRef<[u8]> for SignedValues {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Drop for SignedValues {
    fn drop(&mut self) {
        self.bytes[..ACCESS_TOKEN_LEN].zeroize();
    }
}

/// Decimal digits of `u64::MAX`.
const MAX_U64_DIGITS: usize = 20;

/// `seconds` in decimal (as `to_string` would write it) at the end of `buf`, returned as a
/// slice of it.
fn format_unix_seconds(mut seconds: u64, buf: &mut [u8; MAX_U64_DIGITS]) -> &[u8] {
    let mut start = MAX_U64_DIGITS;
    loop {
        start -= 1;
        // `% 10` is below 10: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (seconds % 10) as u8;
        buf[start] = b'0' + digit;
        seconds /= 10;
        if seconds == 0 {
            return &buf[start..];
        }
    }
}

impl<S> fmt::Debug for TranzilaSigning<S>
where
    S: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TranzilaSigning")
            .field("inner", &self.inner)
            .field("credentials", &self.config.credentials)
            .field("upstreams", &self.config.upstreams)
            .finish()
    }
}

/// Sets (replacing) the four headers.
fn apply(headers: &mut HeaderMap, signed: SignedHeaders) {
    headers.reserve(4);
    headers.insert(APP_KEY, signed.app_key);
    headers.insert(REQUEST_TIME, signed.time);
    headers.insert(NONCE, signed.nonce);
    headers.insert(ACCESS_TOKEN, signed.token);
}

impl<S, ReqBody> Service<Request<ReqBody>> for TranzilaSigning<S>
where
    S: Service<Request<ReqBody>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = TranzilaSigningFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // First of all: no token is made for a request that may not carry one.
        if let Err(refused) =
            upstream::check(&self.config.upstreams, request.uri(), request.headers())
        {
            let error = SignError::refused(refused, request.uri());
            tracing::warn!(target: "tollgate", %error, "Tranzila request not signed; not sent");
            return TranzilaSigningFuture::refused(error);
        }
        match self.headers() {
            Ok(signed) => {
                apply(request.headers_mut(), signed);
                // Backend-owned: header hygiene, wherever it runs, keeps these four.
                tollgate_core::InjectedHeaders::record_all(
                    request.extensions_mut(),
                    [APP_KEY, REQUEST_TIME, NONCE, ACCESS_TOKEN],
                );
                TranzilaSigningFuture::inner(self.inner.call(request))
            }
            Err(error) => {
                tracing::warn!(target: "tollgate", %error, "Tranzila request not signed; not sent");
                TranzilaSigningFuture::refused(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Mutex;

    use bytes::Bytes;
    use http::Response;
    use http_body_util::{Empty, Full};
    use tollgate_core::ManualClock;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;

    const NONCE: &str =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627";

    const URL: &str = "https://api.tranzila.com/v1/transaction/credit_card/create";

    fn to_tranzila() -> Request<Empty<Bytes>> {
        Request::post(URL).body(Empty::new()).unwrap()
    }

    fn credentials() -> TranzilaCredentials {
        TranzilaCredentials::new("pub_app_key_demo", "private_secret_demo").unwrap()
    }

    type Seen = Arc<Mutex<Vec<HeaderMap>>>;

    fn recorder<B: Send + 'static>(
        seen: Seen,
    ) -> impl Service<
        Request<B>,
        Response = Response<Empty<Bytes>>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<Empty<Bytes>>, Infallible>> + Send,
    > + Clone {
        service_fn(move |request: Request<B>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(request.headers().clone());
                Ok::<_, Infallible>(Response::new(Empty::new()))
            }
        })
    }

    #[tokio::test]
    async fn fixed_clock_and_nonce_reproduce_the_vector_and_replace_headers() {
        let seen = Seen::default();
        let layer = TranzilaSigningLayer::new(credentials(), Upstream::tranzila())
            .unwrap()
            .clock(ManualClock::new(1_700_000_000))
            .with_nonce_source(|| NONCE.to_owned());
        let service = ServiceBuilder::new()
            .layer(layer)
            .service(recorder(seen.clone()));
        let request = Request::post(URL)
            .header("x-tranzila-api-app-key", "someone-else")
            .header("X-Tranzila-Api-Access-Token", "forged")
            .header("x-tranzila-api-access-token", "forged-twice")
            .header("x-other", "kept")
            .body(Full::new(Bytes::from_static(b"{\"amount\":1}")))
            .unwrap();
        service.oneshot(request).await.unwrap();
        let headers = seen.lock().unwrap().pop().unwrap();
        assert_eq!(headers.get_all("x-tranzila-api-app-key").iter().count(), 1);
        assert_eq!(
            headers
                .get_all("x-tranzila-api-access-token")
                .iter()
                .count(),
            1
        );
        assert_eq!(headers["x-tranzila-api-app-key"], "pub_app_key_demo");
        assert_eq!(headers["x-tranzila-api-request-time"], "1700000000");
        assert_eq!(headers["x-tranzila-api-nonce"], NONCE);
        let token = &headers["x-tranzila-api-access-token"];
        assert_eq!(
            token,
            "856f5100b954853bf4470826f7eb85376958d000c1a9b5c872b9f5e42dac3b16"
        );
        assert!(token.is_sensitive());
        assert!(headers["x-tranzila-api-nonce"].is_sensitive());
        assert_eq!(headers["x-other"], "kept");
        assert_eq!(headers.len(), 5);
    }

    #[tokio::test]
    async fn fresh_nonce_and_current_time_per_request() {
        let seen = Seen::default();
        let clock = ManualClock::new(1_700_000_000);
        let mut service = ServiceBuilder::new()
            .layer(
                TranzilaSigningLayer::new(credentials(), Upstream::tranzila())
                    .unwrap()
                    .clock(clock.clone()),
            )
            .service(recorder(seen.clone()));
        for _ in 0..3 {
            service
                .ready()
                .await
                .unwrap()
                .call(to_tranzila())
                .await
                .unwrap();
            clock.advance(7);
        }
        let seen = seen.lock().unwrap();
        let times: Vec<_> = seen
            .iter()
            .map(|h| {
                h["x-tranzila-api-request-time"]
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(times, ["1700000000", "1700000007", "1700000014"]);
        let nonces: std::collections::HashSet<_> = seen
            .iter()
            .map(|h| h["x-tranzila-api-nonce"].clone())
            .collect();
        assert_eq!(nonces.len(), 3);
        for headers in seen.iter() {
            let nonce = headers["x-tranzila-api-nonce"].to_str().unwrap();
            assert!(is_valid_nonce(nonce));
            let time = headers["x-tranzila-api-request-time"].to_str().unwrap();
            assert_eq!(
                headers["x-tranzila-api-access-token"],
                credentials().access_token(time, nonce).as_str()
            );
        }
    }

    #[tokio::test]
    async fn broken_nonce_fails_with_typed_error_and_sends_nothing() {
        let seen = Seen::default();
        let service = ServiceBuilder::new()
            .layer(
                TranzilaSigningLayer::new(credentials(), Upstream::tranzila())
                    .unwrap()
                    .with_nonce_source(|| "short".to_owned()),
            )
            .service(recorder(seen.clone()));
        let err = service.oneshot(to_tranzila()).await.unwrap_err();
        assert_eq!(
            err.downcast_ref::<SignError>(),
            Some(&SignError::InvalidNonce)
        );
        assert_eq!(
            err.to_string(),
            "the Tranzila nonce is not 80 hexadecimal characters"
        );
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn time_digits_match_to_string() {
        let mut buf = [0u8; MAX_U64_DIGITS];
        for seconds in [
            0,
            1,
            9,
            10,
            99,
            100,
            1_699_999_999,
            1_700_000_000,
            9_999_999_999,
            10_000_000_000,
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(
                format_unix_seconds(seconds, &mut buf),
                seconds.to_string().as_bytes()
            );
        }
    }

    #[test]
    fn edge_times_and_nonce_case_go_on_the_wire_as_signed() {
        let upper = NONCE.to_uppercase();
        for seconds in [0, 9, 1_700_000_000, u64::MAX] {
            let custom = upper.clone();
            let layer = TranzilaSigningLayer::new(credentials(), Upstream::tranzila())
                .unwrap()
                .clock(ManualClock::new(seconds))
                .with_nonce_source(move || custom.clone());
            let mut headers = HeaderMap::new();
            apply(&mut headers, layer.layer(()).headers().unwrap());
            assert_eq!(headers.len(), 4);
            assert_eq!(headers[APP_KEY], "pub_app_key_demo");
            assert_eq!(headers[REQUEST_TIME], seconds.to_string().as_str());
            assert_eq!(headers[super::NONCE], upper.as_str());
            assert_eq!(
                headers[ACCESS_TOKEN],
                credentials()
                    .access_token(&seconds.to_string(), &upper)
                    .as_str()
            );
            assert!(headers[ACCESS_TOKEN].is_sensitive());
            assert!(headers[REQUEST_TIME].is_sensitive());
            assert!(headers[super::NONCE].is_sensitive());
            assert!(!headers[APP_KEY].is_sensitive());
            // The three values share one buffer: each outlives the others.
            let nonce = headers.remove(super::NONCE).unwrap();
            drop(headers);
            assert_eq!(nonce, upper.as_str());
        }
        // The built-in nonce is lowercase hex.
        let signed = TranzilaSigningLayer::new(credentials(), Upstream::tranzila())
            .unwrap()
            .layer(())
            .headers()
            .unwrap();
        assert_eq!(signed.nonce.len(), NONCE_LEN);
        assert!(
            signed
                .nonce
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)),
            "{:?}",
            signed.nonce
        );
    }

    #[test]
    fn invalid_app_keys_fail_at_build_time() {
        for bad in ["", "with space", "new\nline", "מפתח"] {
            let credentials = TranzilaCredentials::new(bad, "s").unwrap();
            let err = TranzilaSigningLayer::new(credentials, Upstream::tranzila()).unwrap_err();
            assert_eq!(err, ConfigError::InvalidAppKey);
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let layer = TranzilaSigningLayer::new(credentials(), Upstream::tranzila()).unwrap();
        let debug = format!("{layer:?}");
        assert!(!debug.contains("private_secret_demo"), "{debug}");
        assert!(debug.contains("pub_app_key_demo"), "{debug}");
        let service = layer.layer(());
        let debug = format!("{service:?}");
        assert!(!debug.contains("private_secret_demo"), "{debug}");
    }

    #[test]
    fn send_sync_clone() {
        fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
        assert_send_sync_clone::<TranzilaSigningLayer>();
        assert_send_sync_clone::<TranzilaSigning<()>>();
    }
}
