//! [`ReplayGuardLayer`] and its service: the tower adapter around [`ReplayGuard`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tollgate_core::{RejectionResponder, RequestTimestamp, ResponseBody};
use tower_layer::Layer;
use tower_service::Service;

use crate::guard::{ReplayError, ReplayGuard, ReplayTicket};
use crate::store::{Claim, ClaimId, NonceStore, StoreError};

#[derive(Clone)]
struct Config {
    guard: ReplayGuard,
    store: Arc<dyn NonceStore>,
    responder: RejectionResponder,
}

/// Refuses requests outside the timestamp window and requests whose nonce was seen before.
///
/// For each request: [`ReplayGuard::check`] (timestamp, nonce shape), then
/// [`NonceStore::claim`] of the namespaced nonce until `timestamp + tolerance`. Only a
/// request whose claim succeeded reaches the inner service, with a [`RequestTimestamp`] in its
/// extensions. Refusals are answered through a [`RejectionResponder`] (JSON by default,
/// replaceable with [`on_rejection`](ReplayGuardLayer::on_rejection)): 400
/// `timestamp_malformed` / `nonce_malformed`, 401 `timestamp_out_of_window` / `replayed`, 503
/// `store_unavailable` when the store fails (never a silent pass).
///
/// # Failed handling releases the claim
///
/// A sender retries a delivery that failed, with the same message id (Standard Webhooks) or
/// the same signed body. So the claim must not outlive a failed handling: when the inner
/// service returns an error, or answers **5xx or 429**, the guard releases the claim
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
/// # Security considerations: layer order
///
/// Put the guard **inside** the signature verifier (added after it in a `ServiceBuilder`,
/// which runs layers top to bottom): then only requests whose signature verified claim a nonce,
/// so forged traffic can neither fill the store nor burn a nonce a genuine request will carry.
///
/// ```text
/// ServiceBuilder::new()
///     .layer(body limit)
///     .layer(VerifySignatureLayer / TranzilaVerifyLayer)   // outer: verifies first
///     .layer(ReplayGuardLayer)                             // inner: claims verified nonces
///     .service(handler)
/// ```
///
/// # Example
///
/// ```
/// use axum::{Router, routing::post};
/// use tollgate_replay::{MemoryNonceStore, ReplayGuard, ReplayGuardLayer};
///
/// let app: Router = Router::new()
///     .route("/webhooks", post(|| async { "ok" }))
///     .layer(ReplayGuardLayer::new(
///         ReplayGuard::standard_webhooks(),
///         MemoryNonceStore::new(600_000),
///     ));
/// # let _ = app;
/// ```
#[derive(Clone)]
#[must_use]
pub struct ReplayGuardLayer {
    config: Arc<Config>,
}

impl ReplayGuardLayer {
    /// A guard with these rules, claiming in `store`. To share one store between several
    /// layers, pass clones of an `Arc` of it (or of a [`MemoryNonceStore`](crate::MemoryNonceStore),
    /// whose clones share their table).
    pub fn new(guard: ReplayGuard, store: impl NonceStore) -> Self {
        Self {
            config: Arc::new(Config {
                guard,
                store: Arc::new(store),
                responder: RejectionResponder::json(),
            }),
        }
    }

    /// Answers refusals with `responder` instead of the default JSON.
    pub fn on_rejection(mut self, responder: RejectionResponder) -> Self {
        Arc::make_mut(&mut self.config).responder = responder;
        self
    }

    /// The guard's rules.
    pub fn guard(&self) -> &ReplayGuard {
        &self.config.guard
    }
}

impl<S> Layer<S> for ReplayGuardLayer {
    type Service = ReplayGuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReplayGuardService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

impl fmt::Debug for ReplayGuardLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_config(f.debug_struct("ReplayGuardLayer"), &self.config).finish()
    }
}

fn debug_config<'a, 'b>(
    mut d: fmt::DebugStruct<'a, 'b>,
    config: &Config,
) -> fmt::DebugStruct<'a, 'b> {
    d.field("guard", &config.guard)
        .field("store", &config.store)
        .field("responder", &config.responder);
    d
}

/// The service of [`ReplayGuardLayer`].
///
/// The inner service must be `Clone`: the claim is awaited before the inner service is called,
/// so the ready service travels in the response future.
#[derive(Clone)]
#[must_use]
pub struct ReplayGuardService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> ReplayGuardService<S> {
    /// Wraps `inner` with a guard claiming in `store`.
    pub fn new(inner: S, guard: ReplayGuard, store: impl NonceStore) -> Self {
        ReplayGuardLayer::new(guard, store).layer(inner)
    }

    /// The layer: [`ReplayGuardLayer::new`].
    pub fn layer(guard: ReplayGuard, store: impl NonceStore) -> ReplayGuardLayer {
        ReplayGuardLayer::new(guard, store)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the guard.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for ReplayGuardService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_config(f.debug_struct("ReplayGuardService"), &self.config)
            .field("inner", &self.inner)
            .finish()
    }
}

type OwnedClaim = Pin<Box<dyn Future<Output = (Result<Claim, StoreError>, ReplayTicket)> + Send>>;
type OwnedRelease = Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ReplayGuardService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let config = Arc::clone(&self.config);
        let ticket = match config.guard.check(request.headers(), request.extensions()) {
            Ok(ticket) => ticket,
            Err(err) => {
                return ResponseFuture {
                    state: State::Rejected {
                        error: Some(err),
                        config,
                    },
                };
            }
        };
        if let Some(timestamp) = ticket.timestamp() {
            request.extensions_mut().insert(RequestTimestamp(timestamp));
        }
        let store = Arc::clone(&config.store);
        let id = ClaimId::new();
        let claim: OwnedClaim = Box::pin(async move {
            let outcome = store
                .claim_with_id(ticket.key(), ticket.expires_at(), id)
                .await;
            (outcome, ticket)
        });
        // The ready service goes into the future; a fresh clone stays here.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            state: State::Claiming {
                claim,
                call: Some((inner, request)),
                config,
                id,
            },
        }
    }
}

/// Whether a handling failed in a way its sender retries: the claim is released.
fn handling_failed<B, E>(output: &Result<Response<B>, E>) -> bool {
    match output {
        Ok(response) => {
            response.status().is_server_error()
                || response.status() == http::StatusCode::TOO_MANY_REQUESTS
        }
        Err(_) => true,
    }
}

pin_project! {
    /// The response future of [`ReplayGuardService`].
    pub struct ResponseFuture<S, ReqBody>
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
            error: Option<ReplayError>,
            config: Arc<Config>,
        },
        Claiming {
            #[pin]
            claim: OwnedClaim,
            call: Option<(S, Request<ReqBody>)>,
            config: Arc<Config>,
            id: ClaimId,
        },
        Inner {
            #[pin]
            future: S::Future,
            release: Option<(Arc<Config>, ReplayTicket, ClaimId)>,
        },
        Releasing {
            #[pin]
            release: OwnedRelease,
            output: Option<Result<S::Response, S::Error>>,
        },
        Done,
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Rejected { error, config } => {
                    let error = error.take().unwrap_or(ReplayError::Misconfigured);
                    return Poll::Ready(Ok(reject(config, &error)));
                }
                StateProj::Claiming {
                    claim,
                    call,
                    config,
                    id,
                } => {
                    let (outcome, ticket) = ready!(claim.poll(cx));
                    let error = match outcome {
                        Ok(Claim::Claimed) => None,
                        Ok(Claim::AlreadySeen) => Some(ReplayError::Replayed),
                        Err(err) => {
                            tracing::warn!(target: "tollgate", error = %err, "nonce store failed; request refused");
                            Some(ReplayError::Store(err))
                        }
                    };
                    match (error, call.take()) {
                        (None, Some((mut inner, request))) => {
                            let future = inner.call(request);
                            let release = Some((Arc::clone(config), ticket, *id));
                            state.set(State::Inner { future, release });
                        }
                        (Some(error), _) => return Poll::Ready(Ok(reject(config, &error))),
                        (None, None) => {
                            return Poll::Ready(Ok(reject(config, &ReplayError::Misconfigured)));
                        }
                    }
                }
                StateProj::Inner { future, release } => {
                    let output = ready!(future.poll(cx));
                    match release.take() {
                        Some((config, ticket, id)) if handling_failed(&output) => {
                            let release: OwnedRelease =
                                Box::pin(
                                    async move { config.store.release(ticket.key(), id).await },
                                );
                            state.set(State::Releasing {
                                release,
                                output: Some(output),
                            });
                        }
                        _ => {
                            state.set(State::Done);
                            return Poll::Ready(
                                output.map(|response| response.map(ResponseBody::inner)),
                            );
                        }
                    }
                }
                StateProj::Releasing { release, output } => {
                    match ready!(release.poll(cx)) {
                        Ok(true) => tracing::debug!(
                            target: "tollgate",
                            "handling failed; nonce claim released so the sender can retry"
                        ),
                        Ok(false) => tracing::warn!(
                            target: "tollgate",
                            "handling failed but the nonce claim could not be released (the store does not release, or the claim expired); a retry may be refused as replayed"
                        ),
                        Err(err) => tracing::warn!(
                            target: "tollgate",
                            error = %err,
                            "handling failed and releasing the nonce claim failed; a retry will be refused as replayed until the claim expires"
                        ),
                    }
                    let output = output.take();
                    state.set(State::Done);
                    return match output {
                        Some(output) => {
                            Poll::Ready(output.map(|response| response.map(ResponseBody::inner)))
                        }
                        // Unreachable: the output is taken once, right before `Done`.
                        None => Poll::Pending,
                    };
                }
                // Polled after completion: stays pending rather than panicking.
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

fn reject<B>(config: &Config, error: &ReplayError) -> Response<ResponseBody<B>> {
    config
        .responder
        .respond_with_body::<B>(error.to_rejection())
}

impl<S, ReqBody> fmt::Debug for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Mutex;
    use std::time::Duration;

    use bytes::Bytes;
    use http::StatusCode;
    use http_body_util::{BodyExt, Full};
    use tollgate_core::{ManualClock, Rejection, VerifiedSignature};
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;
    use crate::{MemoryNonceStore, NonceShape};

    const NOW: u64 = 1_700_000_000;
    const NONCE: &str =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627";

    /// An echo handler that reports the RequestTimestamp it saw.
    async fn echo(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
        let ts = request
            .extensions()
            .get::<RequestTimestamp>()
            .map_or(0, RequestTimestamp::unix_seconds);
        Ok(Response::new(Full::new(Bytes::from(format!("ok {ts}")))))
    }

    struct Fixture {
        clock: ManualClock,
        layer: ReplayGuardLayer,
    }

    fn fixture(guard: ReplayGuard) -> Fixture {
        let clock = ManualClock::new(NOW);
        let store = MemoryNonceStore::new(1_000).with_clock(clock.clone());
        let layer = ReplayGuardLayer::new(guard.clock(clock.clone()), store);
        Fixture { clock, layer }
    }

    fn tranzila_request(time: &str, nonce: &str) -> Request<Full<Bytes>> {
        Request::post("/api")
            .header("x-tranzila-api-app-key", "pub_app_key_demo")
            .header("x-tranzila-api-request-time", time)
            .header("x-tranzila-api-nonce", nonce)
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    async fn send(layer: &ReplayGuardLayer, request: Request<Full<Bytes>>) -> (StatusCode, String) {
        let service = ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(echo));
        let response = service.oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn json(code: &str, message: &str) -> String {
        format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#)
    }

    fn vectors() -> Option<serde_json::Value> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors/signing.json"
        );
        match std::fs::read_to_string(path) {
            Ok(text) => Some(serde_json::from_str(&text).unwrap()),
            Err(_) => {
                println!("SKIPPED vectors: shared/vectors/signing.json is absent");
                None
            }
        }
    }

    #[tokio::test]
    async fn tranzila_vector_accepted_once_then_replayed() {
        let f = fixture(ReplayGuard::tranzila());
        let (time, nonce) = match vectors() {
            Some(v) => {
                let case = &v["tranzila"][0]["headers"];
                (
                    case["X-tranzila-api-request-time"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    case["X-tranzila-api-nonce"].as_str().unwrap().to_owned(),
                )
            }
            None => ("1700000000".to_owned(), NONCE.to_owned()),
        };
        assert_eq!(
            send(&f.layer, tranzila_request(&time, &nonce)).await,
            (StatusCode::OK, "ok 1700000000".to_owned())
        );
        assert_eq!(
            send(&f.layer, tranzila_request(&time, &nonce)).await,
            (
                StatusCode::UNAUTHORIZED,
                json("replayed", "request was already received")
            )
        );
        // The upper-case nonce is a different nonce (used exactly as sent).
        let upper = nonce.to_uppercase();
        assert_eq!(
            send(&f.layer, tranzila_request(&time, &upper)).await.0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn window_edges_from_the_vectors() {
        let cases: Vec<(u64, String, &str)> = match vectors() {
            Some(v) => v["timestamp_window"]["cases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let expect = match c["expect"].as_str().unwrap() {
                        "accept" => "accept",
                        "reject_too_old" | "reject_in_future" => "window",
                        "reject_malformed" => "malformed",
                        other => panic!("unknown expectation {other}"),
                    };
                    (
                        c["now"].as_u64().unwrap(),
                        c["ts"].as_str().unwrap().to_owned(),
                        expect,
                    )
                })
                .collect(),
            None => vec![],
        };
        let mut all = cases;
        all.extend([
            (NOW + 300, NOW.to_string(), "accept"),
            (NOW + 301, NOW.to_string(), "window"),
            (NOW - 300, NOW.to_string(), "accept"),
            (NOW - 301, NOW.to_string(), "window"),
            // Milliseconds where seconds are expected: out of window, not malformed.
            (NOW, "1700000000000".to_owned(), "window"),
        ]);
        for bad in [
            "+1700000000",
            " 1700000000",
            "1700000000.0",
            "-1",
            "99999999999999999999",
            "",
            "1.7e9",
        ] {
            all.push((NOW, bad.to_owned(), "malformed"));
        }
        for (i, (now, ts, expect)) in all.into_iter().enumerate() {
            let f = fixture(ReplayGuard::tranzila());
            f.clock.set(now);
            let nonce = format!("{i:080x}");
            let request = tranzila_request(&ts, &nonce);
            let (status, body) = send(&f.layer, request).await;
            match expect {
                "accept" => assert_eq!(status, StatusCode::OK, "{ts} at {now}"),
                "window" => {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{ts} at {now}");
                    assert!(
                        body.contains(r#""code":"timestamp_out_of_window""#),
                        "{body}"
                    );
                }
                _ => assert_eq!(
                    (status, body),
                    (
                        StatusCode::BAD_REQUEST,
                        json(
                            "timestamp_malformed",
                            "timestamp must be Unix seconds as ASCII digits"
                        )
                    ),
                    "{ts:?}"
                ),
            }
        }
    }

    #[tokio::test]
    async fn exact_window_rejection_bodies() {
        let f = fixture(ReplayGuard::tranzila());
        assert_eq!(
            send(&f.layer, tranzila_request("1699999699", NONCE)).await,
            (
                StatusCode::UNAUTHORIZED,
                json(
                    "timestamp_out_of_window",
                    "timestamp is outside the accepted window: too old"
                )
            )
        );
        assert_eq!(
            send(&f.layer, tranzila_request("1700000301", NONCE)).await,
            (
                StatusCode::UNAUTHORIZED,
                json(
                    "timestamp_out_of_window",
                    "timestamp is outside the accepted window: too far in the future"
                )
            )
        );
    }

    #[tokio::test]
    async fn nonce_shape_is_checked() {
        let f = fixture(ReplayGuard::tranzila());
        let malformed = (
            StatusCode::BAD_REQUEST,
            json("nonce_malformed", "nonce is missing or malformed"),
        );
        for nonce in [
            &NONCE[..79],
            &format!("{NONCE}0"),
            &format!("{}g", &NONCE[..79]),
            &format!("{} ", &NONCE[..79]),
            "",
        ] {
            assert_eq!(
                send(&f.layer, tranzila_request("1700000000", nonce)).await,
                malformed,
                "{nonce:?}"
            );
        }
        // Missing and repeated nonce headers.
        let mut request = tranzila_request("1700000000", NONCE);
        request.headers_mut().remove("x-tranzila-api-nonce");
        assert_eq!(send(&f.layer, request).await, malformed);
        let mut request = tranzila_request("1700000000", NONCE);
        request
            .headers_mut()
            .append("x-tranzila-api-nonce", NONCE.parse().unwrap());
        assert_eq!(send(&f.layer, request).await, malformed);
        // Missing timestamp.
        let mut request = tranzila_request("1700000000", NONCE);
        request.headers_mut().remove("x-tranzila-api-request-time");
        assert_eq!(send(&f.layer, request).await.0, StatusCode::BAD_REQUEST);
        // None of these claimed the nonce.
        assert_eq!(
            send(&f.layer, tranzila_request("1700000000", NONCE))
                .await
                .0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn expired_claim_is_refused_by_the_window_not_accepted_again() {
        let f = fixture(ReplayGuard::tranzila());
        let ahead = (NOW + 300).to_string();
        assert_eq!(
            send(&f.layer, tranzila_request(&ahead, NONCE)).await.0,
            StatusCode::OK
        );
        // A future-dated request's claim lasts until timestamp + tolerance: 600 s from now.
        f.clock.set(NOW + 600);
        assert_eq!(
            send(&f.layer, tranzila_request(&ahead, NONCE)).await.1,
            json("replayed", "request was already received")
        );
        // Past it the claim is gone, and the window refuses the request.
        f.clock.set(NOW + 601);
        assert_eq!(
            send(&f.layer, tranzila_request(&ahead, NONCE)).await,
            (
                StatusCode::UNAUTHORIZED,
                json(
                    "timestamp_out_of_window",
                    "timestamp is outside the accepted window: too old"
                )
            )
        );
    }

    #[tokio::test]
    async fn namespaces_keep_app_keys_and_schemes_apart() {
        let clock = ManualClock::new(NOW);
        let store = Arc::new(MemoryNonceStore::new(1_000).with_clock(clock.clone()));
        let tranzila = ReplayGuardLayer::new(
            ReplayGuard::tranzila().clock(clock.clone()),
            Arc::clone(&store),
        );
        let other_scheme = ReplayGuardLayer::new(
            ReplayGuard::headers(
                "other",
                http::HeaderName::from_static("x-tranzila-api-request-time"),
                http::HeaderName::from_static("x-tranzila-api-nonce"),
            )
            .clock(clock.clone()),
            Arc::clone(&store),
        );
        assert_eq!(
            send(&tranzila, tranzila_request("1700000000", NONCE))
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            send(&other_scheme, tranzila_request("1700000000", NONCE))
                .await
                .0,
            StatusCode::OK
        );
        let mut second_partner = tranzila_request("1700000000", NONCE);
        second_partner
            .headers_mut()
            .insert("x-tranzila-api-app-key", "another_app".parse().unwrap());
        assert_eq!(send(&tranzila, second_partner).await.0, StatusCode::OK);
        assert_eq!(
            send(&tranzila, tranzila_request("1700000000", NONCE))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(store.len(), 3);
    }

    #[tokio::test]
    async fn standard_webhooks_and_canonical_presets() {
        let f = fixture(ReplayGuard::standard_webhooks());
        let request = || {
            Request::post("/hook")
                .header("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
                .header("webhook-timestamp", "1700000000")
                .body(Full::new(Bytes::new()))
                .unwrap()
        };
        assert_eq!(send(&f.layer, request()).await.0, StatusCode::OK);
        assert_eq!(send(&f.layer, request()).await.0, StatusCode::UNAUTHORIZED);

        // The canonical preset reads the verifier's VerifiedSignature: its signed timestamp
        // and the digest of what the signature covers.
        let f = fixture(ReplayGuard::canonical());
        let request = || {
            let mut request = Request::post("/v1/payments")
                .body(Full::new(Bytes::new()))
                .unwrap();
            request.extensions_mut().insert(
                VerifiedSignature::from_slice("canonical", "k".into(), &[7; 32])
                    .with_timestamp(NOW)
                    .with_signed_content(
                        Bytes::from_static(b"POST/v1/payments"),
                        Bytes::new(),
                        Bytes::from_static(b"1700000000"),
                    ),
            );
            request
        };
        assert_eq!(send(&f.layer, request()).await.0, StatusCode::OK);
        assert_eq!(send(&f.layer, request()).await.0, StatusCode::UNAUTHORIZED);
    }

    fn verified(scheme: &'static str, key_id: &str, ts: Option<u64>) -> VerifiedSignature {
        let v = VerifiedSignature::new(scheme, key_id.into(), Bytes::from_static(b"\x01\x02\x03"));
        match ts {
            Some(ts) => v.with_timestamp(ts),
            None => v,
        }
    }

    #[tokio::test]
    async fn from_verified_signature() {
        let f = fixture(ReplayGuard::from_verified_signature());
        let request = |v: Option<VerifiedSignature>| {
            let mut request = Request::post("/hook")
                .body(Full::new(Bytes::new()))
                .unwrap();
            if let Some(v) = v {
                request.extensions_mut().insert(v);
            }
            request
        };
        let sig = || Some(verified("stripe", "2026-11", Some(NOW - 10)));
        assert_eq!(
            send(&f.layer, request(sig())).await,
            (StatusCode::OK, format!("ok {}", NOW - 10))
        );
        assert_eq!(
            send(&f.layer, request(sig())).await.0,
            StatusCode::UNAUTHORIZED
        );
        // The claim names the message, not the key: the same message verified under another
        // key id is the same claim. Another scheme is another namespace.
        assert_eq!(
            send(
                &f.layer,
                request(Some(verified("stripe", "2026-08", Some(NOW - 10))))
            )
            .await
            .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            send(
                &f.layer,
                request(Some(verified("onekey", "2026-11", Some(NOW))))
            )
            .await
            .0,
            StatusCode::OK
        );
        // Window applies to the verified timestamp.
        assert_eq!(
            send(&f.layer, request(Some(verified("x", "k", Some(NOW - 301)))))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        // Without the extension, or without any timestamp: a deployment error.
        let misconfigured = (
            StatusCode::INTERNAL_SERVER_ERROR,
            json(
                "replay_guard_misconfigured",
                "replay protection is misconfigured",
            ),
        );
        assert_eq!(send(&f.layer, request(None)).await, misconfigured);
        assert_eq!(
            send(&f.layer, request(Some(verified("onekey", "k", None)))).await,
            misconfigured
        );

        // A body-only scheme: an unsigned timestamp header is never read; the retention the
        // user stated bounds the claim instead.
        let f = fixture(
            ReplayGuard::from_verified_signature().untimed_retention(Duration::from_secs(86_400)),
        );
        let mut r = request(Some(verified("onekey", "k", None)));
        r.headers_mut()
            .insert("x-timestamp", "1700000000".parse().unwrap());
        assert_eq!(send(&f.layer, r).await.0, StatusCode::OK);
        let mut r = request(Some(verified("onekey", "k", None)));
        r.headers_mut()
            .insert("x-timestamp", "1700009999".parse().unwrap());
        assert_eq!(send(&f.layer, r).await.0, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_requests_with_one_nonce_have_one_winner() {
        let f = fixture(ReplayGuard::tranzila());
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let layer = f.layer.clone();
                tokio::spawn(
                    async move { send(&layer, tranzila_request("1700000000", NONCE)).await.0 },
                )
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1);
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == StatusCode::UNAUTHORIZED)
                .count(),
            63
        );
    }

    #[derive(Debug)]
    struct FailingStore(Mutex<u32>);

    impl NonceStore for FailingStore {
        fn claim<'a>(&'a self, _key: &'a [u8], _expires_at: u64) -> crate::ClaimFuture<'a> {
            *self.0.lock().unwrap() += 1;
            Box::pin(async { Err(StoreError::Unavailable("connection refused".into())) })
        }
    }

    #[tokio::test]
    async fn store_failure_fails_closed_and_custom_responder() {
        let clock = ManualClock::new(NOW);
        let store = Arc::new(FailingStore(Mutex::new(0)));
        let layer = ReplayGuardLayer::new(
            ReplayGuard::tranzila().clock(clock.clone()),
            Arc::clone(&store),
        );
        assert_eq!(
            send(&layer, tranzila_request("1700000000", NONCE)).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json(
                    "store_unavailable",
                    "replay protection is temporarily unavailable"
                )
            )
        );
        assert_eq!(*store.0.lock().unwrap(), 1);

        let layer = layer.on_rejection(RejectionResponder::new(|r: &Rejection| {
            let mut response = Response::new(Bytes::from(r.code().to_owned()));
            *response.status_mut() = StatusCode::IM_A_TEAPOT;
            response
        }));
        let service = ServiceBuilder::new().layer(layer).service(service_fn(echo));
        let response = service
            .oneshot(tranzila_request("1700000000", NONCE))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(
            response
                .extensions()
                .get::<Rejection>()
                .map(Rejection::code),
            Some("store_unavailable")
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "store_unavailable");
    }

    #[tokio::test]
    async fn custom_shape_and_tolerance() {
        let f = fixture(
            ReplayGuard::standard_webhooks()
                .tolerance(std::time::Duration::from_secs(60))
                .nonce_shape(NonceShape::Hex(8)),
        );
        let request = |id: &str, ts: u64| {
            Request::post("/hook")
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .body(Full::new(Bytes::new()))
                .unwrap()
        };
        assert_eq!(
            send(&f.layer, request("0011aaff", NOW - 60)).await.0,
            StatusCode::OK
        );
        assert_eq!(
            send(&f.layer, request("0011aafe", NOW - 61)).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            send(&f.layer, request("msg_1", NOW)).await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(f.layer.guard().window().tolerance_secs(), 60);
    }

    /// Sends `request` to `layer` twice: the second must be refused as a replay.
    async fn assert_replay_refused(layer: &ReplayGuardLayer, time: &str, nonce: &str) {
        assert_eq!(
            send(layer, tranzila_request(time, nonce)).await,
            (StatusCode::OK, format!("ok {time}"))
        );
        assert_eq!(
            send(layer, tranzila_request(time, nonce)).await,
            (
                StatusCode::UNAUTHORIZED,
                json("replayed", "request was already received")
            )
        );
    }

    #[tokio::test]
    async fn replay_refused_when_the_verifier_clock_is_far_from_the_store_clock() {
        // The guard reads a manual clock in 2023, the store the real system clock: every
        // `expires_at` is long past by the store's clock.
        let store = MemoryNonceStore::new(1_000);
        let layer =
            ReplayGuardLayer::new(ReplayGuard::tranzila().clock(ManualClock::new(NOW)), store);
        assert_replay_refused(&layer, "1700000000", NONCE).await;

        // The guard's clock far ahead of the store's: claims outlive the window, never less.
        let store = MemoryNonceStore::new(1_000);
        let far = 4_000_000_000u64;
        let layer =
            ReplayGuardLayer::new(ReplayGuard::tranzila().clock(ManualClock::new(far)), store);
        assert_replay_refused(&layer, &far.to_string(), NONCE).await;

        // Both manual, the store 250 s ahead, the replay 100 s later: without the minimum
        // retention the claim (until ts + 300 by the guard) would already be gone by the store's
        // clock while the guard's window still accepts the request.
        for (retention, replay_status) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some(std::time::Duration::ZERO), StatusCode::OK),
        ] {
            let guard_clock = ManualClock::new(NOW);
            let store_clock = ManualClock::new(NOW + 250);
            let mut store = MemoryNonceStore::new(1_000).with_clock(store_clock.clone());
            if let Some(retention) = retention {
                store = store.with_min_retention(retention);
            }
            let layer =
                ReplayGuardLayer::new(ReplayGuard::tranzila().clock(guard_clock.clone()), store);
            assert_eq!(
                send(&layer, tranzila_request("1700000000", NONCE)).await.0,
                StatusCode::OK
            );
            guard_clock.advance(100);
            store_clock.advance(100);
            assert_eq!(
                send(&layer, tranzila_request("1700000000", NONCE)).await.0,
                replay_status,
                "retention {retention:?}"
            );
        }
    }

    #[tokio::test]
    async fn skewed_instances_sharing_a_store_refuse_the_replay() {
        // Instance A's clock is 200 s ahead of B's; the store reads A's clock (the worst case:
        // the claim is written by the instance whose clock is ahead). A retention of
        // 2 × tolerance + skew (the shared-store default, 900 s) refuses every replay; the
        // single-process default of 2 × tolerance does not cover the skew, as documented.
        for (retention, at_700) in [
            (
                crate::DEFAULT_SHARED_MIN_RETENTION,
                StatusCode::UNAUTHORIZED,
            ),
            (crate::DEFAULT_MIN_RETENTION, StatusCode::OK),
        ] {
            let a_clock = ManualClock::new(NOW + 200);
            let b_clock = ManualClock::new(NOW);
            let store = Arc::new(
                MemoryNonceStore::new(1_000)
                    .with_clock(a_clock.clone())
                    .with_min_retention(retention),
            );
            let a = ReplayGuardLayer::new(
                ReplayGuard::tranzila().clock(a_clock.clone()),
                Arc::clone(&store),
            );
            let b = ReplayGuardLayer::new(
                ReplayGuard::tranzila().clock(b_clock.clone()),
                Arc::clone(&store),
            );
            // Stamped as far ahead as A accepts: A asks for expires_at = ts + 300 = NOW + 800.
            let ts = (NOW + 500).to_string();
            assert_eq!(
                send(&a, tranzila_request(&ts, NONCE)).await.0,
                StatusCode::OK
            );
            // B accepts that timestamp from when its clock reads NOW + 200 until NOW + 800,
            // 800 s after A's claim; by then the store's clock reads NOW + 1000, past the
            // requested expiry.
            for elapsed in [200, 400, 600, 700, 800] {
                a_clock.set(NOW + 200 + elapsed);
                b_clock.set(NOW + elapsed);
                let expected = if elapsed >= 700 {
                    at_700
                } else {
                    StatusCode::UNAUTHORIZED
                };
                let (status, body) = send(&b, tranzila_request(&ts, NONCE)).await;
                assert_eq!(status, expected, "{retention:?}, {elapsed} s later: {body}");
                if status == StatusCode::OK {
                    break;
                }
                assert_eq!(body, json("replayed", "request was already received"));
            }
            // Once B's window has closed the request is stale, not accepted again.
            a_clock.set(NOW + 200 + 801);
            b_clock.set(NOW + 801);
            assert_eq!(
                send(&b, tranzila_request(&ts, NONCE)).await.1,
                json(
                    "timestamp_out_of_window",
                    "timestamp is outside the accepted window: too old"
                )
            );
        }
    }

    #[tokio::test]
    async fn clock_skew_margin_lengthens_the_requested_expiry() {
        let guard = ReplayGuard::tranzila()
            .clock(ManualClock::new(NOW))
            .clock_skew_margin(std::time::Duration::from_secs(120));
        let ticket = guard
            .check(
                tranzila_request("1700000000", NONCE).headers(),
                &http::Extensions::new(),
            )
            .unwrap();
        assert_eq!(ticket.expires_at(), NOW + 300 + 120);
        assert!(format!("{guard:?}").contains("clock_skew_margin_secs: 120"));
    }

    #[tokio::test]
    async fn the_key_id_header_must_be_present_once() {
        let f = fixture(ReplayGuard::tranzila());
        let refused = (
            StatusCode::BAD_REQUEST,
            json("header_malformed", "key id header is missing or repeated"),
        );
        let mut missing = tranzila_request("1700000000", NONCE);
        missing.headers_mut().remove("x-tranzila-api-app-key");
        assert_eq!(send(&f.layer, missing).await, refused);
        let mut twice = tranzila_request("1700000000", NONCE);
        twice
            .headers_mut()
            .append("x-tranzila-api-app-key", "another_app".parse().unwrap());
        assert_eq!(send(&f.layer, twice).await, refused);
        let mut empty = tranzila_request("1700000000", NONCE);
        empty
            .headers_mut()
            .insert("x-tranzila-api-app-key", "".parse().unwrap());
        assert_eq!(send(&f.layer, empty).await, refused);
        // None of them claimed the nonce.
        assert_eq!(
            send(&f.layer, tranzila_request("1700000000", NONCE))
                .await
                .0,
            StatusCode::OK
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes, any number of times, in the three headers: a refusal with a JSON body or
        /// an acceptance, never a panic; only accepted requests claim.
        #[test]
        fn hostile_headers_never_panic(
            values in proptest::collection::vec(
                (0usize..3, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..90)),
                0..6,
            ),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let clock = ManualClock::new(NOW);
            let store = Arc::new(MemoryNonceStore::new(100).with_clock(clock.clone()));
            let layer = ReplayGuardLayer::new(ReplayGuard::tranzila().clock(clock), Arc::clone(&store));
            let names = ["x-tranzila-api-app-key", "x-tranzila-api-request-time", "x-tranzila-api-nonce"];
            let mut request = Request::post("/").body(Full::new(Bytes::new())).unwrap();
            for (name, value) in values {
                if let Ok(value) = http::HeaderValue::from_bytes(&value) {
                    request.headers_mut().append(names[name], value);
                }
            }
            let (status, body) = runtime.block_on(send(&layer, request));
            match status.as_u16() {
                200 => proptest::prop_assert_eq!(store.len(), 1),
                400 | 401 => {
                    proptest::prop_assert!(body.starts_with(r#"{"error":{"code":""#), "{}", body);
                    proptest::prop_assert_eq!(store.len(), 0);
                }
                other => proptest::prop_assert!(false, "status {}", other),
            }
        }
    }

    #[test]
    fn services_are_send_clone_and_debug_hides_nothing_secret() {
        fn assert_send_clone<T: Send + Sync + Clone>() {}
        assert_send_clone::<ReplayGuardLayer>();
        type Svc = ReplayGuardService<
            tower::util::ServiceFn<
                fn(
                    Request<Full<Bytes>>,
                )
                    -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
            >,
        >;
        assert_send_clone::<Svc>();
        let f = fixture(ReplayGuard::tranzila());
        let debug = format!("{:?}", f.layer);
        assert!(debug.contains("scheme: \"tranzila\""), "{debug}");
        assert!(debug.contains("nonce_shape: Hex(80)"), "{debug}");
    }
}
