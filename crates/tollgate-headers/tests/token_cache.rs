//! The token cache and its single flight, through `TokenHeaderLayer`: one fetch for every
//! stale caller, failures shared and not cached, abandoned fetches not joined, the refresh
//! edge, and the typed errors when there is no runtime or timer (the crate docs' "One fetch
//! for every stale caller").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderName, HeaderValue, Request};
use tollgate_core::{BoxError, Clock, ManualClock, Secret};
use tollgate_headers::{
    ConfigError, HeaderError, SecretHeaderLayer, Token, TokenFetchError, TokenHeaderLayer,
    TokenProvider, Upstream,
};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn echo() -> impl Service<Request<()>, Response = HeaderMap, Error = BoxError, Future: Send> + Clone
{
    service_fn(|request: Request<()>| async move { Ok::<_, BoxError>(request.headers().clone()) })
}

fn request() -> Request<()> {
    Request::get("https://api-gateway.transak.com/partners/api/v2/orders")
        .body(())
        .unwrap()
}

/// A provider that counts its calls and answers only when the gate opens.
fn gated(
    gate: Arc<tokio::sync::Semaphore>,
    calls: Arc<AtomicUsize>,
    answer: fn(usize) -> Result<Token, BoxError>,
) -> impl TokenProvider {
    move || {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire().await.unwrap().forget();
            answer(n)
        }
    }
}

type Pending = Pin<Box<dyn Future<Output = Result<HeaderMap, BoxError>> + Send>>;

/// `n` calls, each polled once (so each has found the cache stale and joined or started
/// the fetch, or finished if the gate was open).
fn start_calls(layer: &TokenHeaderLayer, n: usize) -> Vec<Pending> {
    let service = ServiceBuilder::new().layer(layer.clone()).service(echo());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    (0..n)
        .map(|_| {
            let mut call: Pending = Box::pin(service.clone().oneshot(request()));
            match call.as_mut().poll(&mut cx) {
                Poll::Pending => call,
                Poll::Ready(result) => Box::pin(std::future::ready(result)),
            }
        })
        .collect()
}

/// Waits until the provider has been called `n` times (the fetch runs in a task of its
/// own), then checks that it is not called again meanwhile.
async fn provider_calls(calls: &AtomicUsize, n: usize) {
    for _ in 0..5_000 {
        if calls.load(Ordering::SeqCst) >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), n);
}

async fn finish(calls: Vec<Pending>) -> Vec<Result<HeaderMap, BoxError>> {
    let handles: Vec<_> = calls.into_iter().map(tokio::spawn).collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

/// Fifty calls on a stale cache: one provider call, fifty requests with its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_stale_calls_share_one_fetch() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let provider =
        gated(Arc::clone(&gate), Arc::clone(&calls), |n| {
            Ok(Token::new(Secret::from_string(format!("token-{n}")))
                .expires_at(1_000 * (n as u64 + 1)))
        });
    let clock = ManualClock::new(1_000);
    let layer = TokenHeaderLayer::access_token(provider, Upstream::transak()).clock(clock.clone());

    let pending = start_calls(&layer, 50);
    provider_calls(&calls, 1).await;
    gate.add_permits(100);
    for result in finish(pending).await {
        let sent = result.unwrap();
        assert_eq!(sent["access-token"], "token-1");
        assert!(sent["access-token"].is_sensitive());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Cached now; stale again after expiry: one more fetch for the next fifty.
    let service = ServiceBuilder::new().layer(layer.clone()).service(echo());
    service.clone().oneshot(request()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    clock.advance(1_000);
    let pending = start_calls(&layer, 50);
    for result in finish(pending).await {
        assert_eq!(result.unwrap()["access-token"], "token-2");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[derive(Debug)]
struct RefreshFailed;

impl fmt::Display for RefreshFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("refresh endpoint answered 503")
    }
}

impl std::error::Error for RefreshFailed {}

/// A failing fetch fails every waiting call, sends nothing, leaks neither the stale
/// token nor anything else, and is not cached: the next call fetches again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_shared_fetch_fails_every_waiter_without_the_stale_token() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = gated(Arc::clone(&gate), Arc::clone(&calls), |n| {
        if n == 1 {
            Ok(Token::new(Secret::from_string("stale-tok-9f3a")).expires_at(1_100))
        } else {
            Err(Box::new(RefreshFailed))
        }
    });
    let clock = ManualClock::new(1_000);
    let layer = TokenHeaderLayer::access_token(provider, Upstream::transak())
        .clock(clock.clone())
        .refresh_margin(0);
    gate.add_permits(1);
    let first = finish(start_calls(&layer, 1)).await;
    assert_eq!(first[0].as_ref().unwrap()["access-token"], "stale-tok-9f3a");

    clock.set(1_100);
    let pending = start_calls(&layer, 20);
    provider_calls(&calls, 2).await;
    gate.add_permits(100);
    let mut originals = 0;
    for result in finish(pending).await {
        let error = result.unwrap_err();
        let header_error = error.downcast_ref::<HeaderError>().unwrap();
        assert!(
            matches!(header_error, HeaderError::TokenUnavailable { header, .. } if header == "access-token")
        );
        let source = std::error::Error::source(header_error).unwrap();
        assert_eq!(source.to_string(), "refresh endpoint answered 503");
        if source.downcast_ref::<RefreshFailed>().is_some() {
            originals += 1;
        }
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains("stale-tok-9f3a"), "{text}");
        }
    }
    assert_eq!(originals, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Not cached: the next call asks the provider again.
    gate.add_permits(1);
    let again = finish(start_calls(&layer, 1)).await;
    assert!(again[0].is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// Every caller gave up (dropped its future): the hung fetch is abandoned and the next
/// call starts a new one instead of joining it.
#[tokio::test]
async fn an_abandoned_fetch_is_not_joined() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = gated(Arc::clone(&gate), Arc::clone(&calls), |n| {
        Ok(Token::new(Secret::from_string(format!("token-{n}"))))
    });
    let layer = TokenHeaderLayer::access_token(provider, Upstream::transak());
    let hung = start_calls(&layer, 3);
    provider_calls(&calls, 1).await;
    drop(hung);

    let pending = start_calls(&layer, 2);
    provider_calls(&calls, 2).await;
    gate.add_permits(10);
    for result in finish(pending).await {
        assert_eq!(result.unwrap()["access-token"], "token-2");
    }
}

/// `invalidate` while a fetch is under way: its waiters get its token, the cache does
/// not keep it.
#[tokio::test]
async fn invalidate_during_a_fetch_does_not_cache_it() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = gated(Arc::clone(&gate), Arc::clone(&calls), |n| {
        Ok(Token::new(Secret::from_string(format!("token-{n}"))))
    });
    let layer = TokenHeaderLayer::access_token(provider, Upstream::transak());
    let pending = start_calls(&layer, 2);
    layer.invalidate();
    gate.add_permits(10);
    for result in finish(pending).await {
        assert_eq!(result.unwrap()["access-token"], "token-1");
    }
    let next = finish(start_calls(&layer, 1)).await;
    assert_eq!(next[0].as_ref().unwrap()["access-token"], "token-2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// The refresh edge: fresh while `now + margin < expires_at`, refreshed at equality; a
/// margin longer than the token's life refreshes on every call; a token that is already
/// expired is still used for the call that fetched it.
#[tokio::test]
async fn expiry_exactly_at_the_refresh_margin_edge() {
    for (margin, expires_in, advance, refetch) in [
        (60, 3_600, 3_600 - 61, false),
        (60, 3_600, 3_600 - 60, true),
        (0, 3_600, 3_599, false),
        (0, 3_600, 3_600, true),
        // A margin as long as the token's life or longer: refreshed from half its life on,
        // not on every call.
        (u64::MAX, 3_600, 0, false),
        (u64::MAX, 3_600, 1_799, false),
        (u64::MAX, 3_600, 1_800, true),
        (7_200, 3_600, 1_799, false),
        (7_200, 3_600, 1_800, true),
        (60, 30, 14, false),
        (60, 30, 15, true),
    ] {
        let clock = ManualClock::new(1_000_000);
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let token_clock = clock.clone();
        let provider = move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let expiry = Clock::now_unix(&token_clock) + expires_in;
            async move {
                Ok::<_, BoxError>(
                    Token::new(Secret::from_string(format!("t{n}"))).expires_at(expiry),
                )
            }
        };
        let service = ServiceBuilder::new()
            .layer(
                TokenHeaderLayer::access_token(provider, Upstream::transak())
                    .clock(clock.clone())
                    .refresh_margin(margin),
            )
            .service(echo());
        let sent = service.clone().oneshot(request()).await.unwrap();
        assert_eq!(sent["access-token"], "t1");
        clock.advance(advance);
        let sent = service.oneshot(request()).await.unwrap();
        let expected = if refetch { "t2" } else { "t1" };
        assert_eq!(
            sent["access-token"], expected,
            "margin {margin}, +{advance}"
        );
    }

    let expired = || async {
        Ok::<_, BoxError>(Token::new(Secret::from_string("already-old")).expires_at(1))
    };
    let service = ServiceBuilder::new()
        .layer(
            TokenHeaderLayer::access_token(expired, Upstream::transak())
                .clock(ManualClock::new(1_000)),
        )
        .service(echo());
    // Expired on arrival: never sent.
    assert_eq!(
        fetch_error(service.oneshot(request()).await),
        TokenFetchError::Expired { expires_at: 1 }
    );
}

fn fetch_error(result: Result<HeaderMap, BoxError>) -> TokenFetchError {
    let error = result.unwrap_err();
    match error.downcast_ref::<HeaderError>() {
        Some(HeaderError::TokenUnavailable { source, .. }) => {
            source.downcast_ref::<TokenFetchError>().unwrap().clone()
        }
        _ => panic!("{error:?}"),
    }
}

/// Outside a Tokio runtime the fetch cannot start: a typed error, no panic, no hang.
#[test]
fn without_a_runtime_the_call_fails_typed() {
    let provider = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t"))) };
    let mut service = ServiceBuilder::new()
        .layer(TokenHeaderLayer::access_token(
            provider,
            Upstream::transak(),
        ))
        .service(echo());
    let mut call = std::pin::pin!(service.call(request()));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let Poll::Ready(result) = call.as_mut().poll(&mut cx) else {
        panic!("pending without a runtime");
    };
    assert_eq!(fetch_error(result), TokenFetchError::NoRuntime);
}

/// A runtime without its timer: the fetch task panics in `timeout`, and the waiting
/// call gets a typed error instead of waiting forever.
#[test]
fn without_a_timer_the_call_fails_typed() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let provider = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t"))) };
    let service = ServiceBuilder::new()
        .layer(TokenHeaderLayer::access_token(
            provider,
            Upstream::transak(),
        ))
        .service(echo());
    let result = runtime.block_on(service.oneshot(request()));
    assert_eq!(fetch_error(result), TokenFetchError::Aborted);
}

#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let mut service = ServiceBuilder::new()
        .layer(TokenHeaderLayer::access_token(
            || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t"))) },
            Upstream::transak(),
        ))
        .service(echo());
    let future = service.call(request());
    assert_send(&future);
    assert_eq!(format!("{future:?}"), "TokenHeaderFuture(\"refused\")");
}

#[tokio::test]
async fn invalid_secrets_fail_closed() {
    let provider = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("bad\ntoken"))) };
    let tokens = ServiceBuilder::new()
        .layer(TokenHeaderLayer::access_token(
            provider,
            Upstream::transak(),
        ))
        .service(echo());
    let error = tokens.oneshot(request()).await.unwrap_err();
    assert!(matches!(
        error.downcast_ref::<HeaderError>(),
        Some(HeaderError::InvalidSecret { header }) if header == "access-token"
    ));

    // A fixed secret is checked when its layer is built: it never gets to a request.
    let fixed = SecretHeaderLayer::api_key(Secret::from_string("bad\nkey"), Upstream::transak());
    assert!(matches!(
        fixed,
        Err(ConfigError::InvalidSecret { header }) if header == "x-api-key"
    ));
}

#[tokio::test]
async fn token_without_expiry_is_cached_and_debug_is_redacted() {
    let clock = ManualClock::new(10);
    let provider = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("tok-3f9a"))) };
    let layer = TokenHeaderLayer::new(
        HeaderName::from_static("x-partner-token"),
        provider,
        Upstream::transak(),
    )
    .clock(clock.clone());
    let service = ServiceBuilder::new().layer(layer.clone()).service(echo());
    let sent = service.clone().oneshot(request()).await.unwrap();
    assert_eq!(sent["x-partner-token"], "tok-3f9a");
    assert!(sent["x-partner-token"].is_sensitive());
    clock.advance(u64::MAX);
    let sent = service.oneshot(request()).await.unwrap();
    assert_eq!(sent["x-partner-token"], "tok-3f9a");

    let debug = format!("{layer:?}");
    assert!(!debug.contains("tok-3f9a"), "{debug}");
    assert_eq!(
        debug,
        "TokenHeaderLayer(TokenHeader { name: \"x-partner-token\", upstreams: [Upstream(https://api-gateway.transak.com:443)], clock: ManualClock { now: 18446744073709551615 }, refresh_margin: 60, fetch_timeout: 10s, .. })"
    );
}

/// tollgate's one polling rule: polled again after it returned `Poll::Ready`, the future
/// returns `Poll::Pending`: after a refusal, after the inner call (the inner future is not
/// polled again), and after a fetch.
#[tokio::test]
async fn a_finished_future_stays_pending() {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let provider = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t"))) };
    let layer = TokenHeaderLayer::access_token(provider, Upstream::transak());
    let mut service = ServiceBuilder::new().layer(layer.clone()).service(echo());

    let wrong = Request::get("https://attacker.example/").body(()).unwrap();
    let mut refused = std::pin::pin!(service.call(wrong));
    assert_eq!(format!("{refused:?}"), "TokenHeaderFuture(\"refused\")");
    assert!(matches!(
        refused.as_mut().poll(&mut cx),
        Poll::Ready(Err(_))
    ));
    assert!(refused.as_mut().poll(&mut cx).is_pending());
    assert_eq!(format!("{refused:?}"), "TokenHeaderFuture(\"done\")");

    // Stale cache: the future waits for the fetch, then calls the inner service.
    let mut fetching = std::pin::pin!(service.call(request()));
    assert_eq!(format!("{fetching:?}"), "TokenHeaderFuture(\"fetching\")");
    let sent = std::future::poll_fn(|cx| fetching.as_mut().poll(cx))
        .await
        .unwrap();
    assert_eq!(sent["access-token"], "t");
    assert!(fetching.as_mut().poll(&mut cx).is_pending());

    // Fresh cache: the inner call at once (an `async` block, which panics if polled again).
    let mut calling = std::pin::pin!(service.call(request()));
    assert_eq!(format!("{calling:?}"), "TokenHeaderFuture(\"calling\")");
    assert!(matches!(calling.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
    assert!(calling.as_mut().poll(&mut cx).is_pending());
}

/// One copy-on-write rule (`Arc::make_mut`): a setter on a layer nobody shares changes it in
/// place (its services keep its cache); on a shared layer it gives the new layer a cache of
/// its own, starting from the cached token, so `invalidate` on one leaves the other alone.
#[tokio::test]
async fn a_setter_on_a_shared_layer_gives_it_a_cache_of_its_own() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let provider = move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok::<_, BoxError>(Token::new(Secret::from_string(format!("t{n}")))) }
    };
    let original = TokenHeaderLayer::access_token(provider, Upstream::transak())
        .refresh_margin(30)
        .fetch_timeout(std::time::Duration::from_secs(5));
    let send = |layer: &TokenHeaderLayer| {
        let service = ServiceBuilder::new().layer(layer.clone()).service(echo());
        async move { service.oneshot(request()).await.unwrap()["access-token"].clone() }
    };
    assert_eq!(send(&original).await, "t1");

    let copy = original.clone().refresh_margin(0);
    assert!(format!("{original:?}").contains("refresh_margin: 30"));
    assert!(format!("{copy:?}").contains("refresh_margin: 0"));
    // The copy starts from the cached token...
    assert_eq!(send(&copy).await, "t1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // ...but its cache is its own.
    copy.invalidate();
    assert_eq!(send(&copy).await, "t2");
    assert_eq!(send(&original).await, "t1");
    original.invalidate();
    assert_eq!(send(&original).await, "t3");
    assert_eq!(send(&copy).await, "t2");
    assert_eq!(copy.header_name(), "access-token");
}

/// `invalidate_sent`: drops the cached token only if it is the one a call carried, and at
/// most once in 10 seconds (a storm of 401s that are not about the token fetches once).
#[tokio::test]
async fn invalidate_sent_drops_only_the_token_sent_and_at_most_once_in_ten_seconds() {
    let clock = ManualClock::new(1_000_000);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let provider = move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            Ok::<_, BoxError>(
                Token::new(Secret::from_string(format!("t{n}"))).expires_at(2_000_000),
            )
        }
    };
    let layer = TokenHeaderLayer::access_token(provider, Upstream::transak()).clock(clock.clone());
    let service = ServiceBuilder::new().layer(layer.clone()).service(echo());
    let token =
        || async { service.clone().oneshot(request()).await.unwrap()["access-token"].clone() };
    assert_eq!(token().await, "t1");
    layer.invalidate_sent(&HeaderValue::from_static("t1"));
    assert_eq!(token().await, "t2");
    // Within 10 s of the last drop: kept, and an older token never drops a newer one.
    layer.invalidate_sent(&HeaderValue::from_static("t2"));
    layer.invalidate_sent(&HeaderValue::from_static("t1"));
    assert_eq!(token().await, "t2");
    clock.advance(10);
    layer.invalidate_sent(&HeaderValue::from_static("t1"));
    assert_eq!(token().await, "t2");
    layer.invalidate_sent(&HeaderValue::from_static("t2"));
    assert_eq!(token().await, "t3");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
