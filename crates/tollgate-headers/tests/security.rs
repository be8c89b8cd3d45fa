//! The statements of the crate docs' "Security considerations" section, one test each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request};
use tollgate_client_ip::{ClientIp, ForwardUserIpLayer, IpOrigin};
use tollgate_core::{BoxError, Secret};
use tollgate_headers::{
    ConfigError, DEFAULT_FETCH_TIMEOUT, HeaderError, HeaderHygieneLayer, InjectedHeaders,
    SecretHeaderLayer, Token, TokenFetchError, TokenHeaderLayer, Upstream,
};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt, service_fn};

type RefreshCall =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), BoxError>> + Send>>;
type Client = BoxCloneSyncService<Request<()>, HeaderMap, BoxError>;

const ORDERS: &str = "https://api-gateway.transak.com/partners/api/v2/orders";
const REFRESH: &str = "https://api-gateway.transak.com/partners/api/v2/refresh-token";
const END_USER: &str = "203.0.113.7";

/// Stands in for the HTTP client: answers the headers it was asked to send.
fn echo()
-> impl tower::Service<Request<()>, Response = HeaderMap, Error = BoxError, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static {
    service_fn(|request: Request<()>| async move { Ok::<_, BoxError>(request.headers().clone()) })
}

/// Every error in `error`'s source chain, as `Debug` text.
fn chain(error: &BoxError) -> Vec<String> {
    let mut texts = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&**error);
    while let Some(error) = next {
        texts.push(format!("{error:?}"));
        next = error.source();
    }
    texts
}

/// What a browser sent, copied wholesale by a handler into the outbound request.
fn browser_request() -> Request<()> {
    Request::get(ORDERS)
        .header("x-api-key", "browser-key")
        .header("access-token", "browser-token")
        .header("x-user-ip", "6.6.6.6")
        .header("authorization", "Bearer browser")
        .header("cookie", "session=browser")
        .header("accept", "application/json")
        .body(())
        .unwrap()
}

/// Security considerations, first statement: the `server_to_server` preset never forwards a
/// credential header or `x-user-ip` that came with the request.
#[tokio::test]
async fn server_to_server_never_forwards_browser_credentials_or_user_ip() {
    let hygiene_only = ServiceBuilder::new()
        .layer(HeaderHygieneLayer::server_to_server())
        .service(echo());
    let sent = hygiene_only.oneshot(browser_request()).await.unwrap();
    for name in [
        "x-api-key",
        "access-token",
        "x-user-ip",
        "authorization",
        "cookie",
    ] {
        assert!(sent.get(name).is_none(), "{name} was forwarded: {sent:?}");
    }
    assert_eq!(sent["accept"], "application/json");
}

/// Stands in for `tollgate_client_ip::ForwardUserIpLayer` once it records what it sets in
/// `InjectedHeaders`: inserts the end user's IP and records the name.
fn set_user_ip(mut request: Request<()>) -> Request<()> {
    let name = HeaderName::from_static("x-user-ip");
    request
        .headers_mut()
        .insert(name.clone(), HeaderValue::from_static(END_USER));
    InjectedHeaders::record(request.extensions_mut(), name);
    request
}

fn api_key() -> SecretHeaderLayer {
    SecretHeaderLayer::api_key(Secret::from_string("backend-key"), Upstream::transak()).unwrap()
}

fn access_token() -> TokenHeaderLayer {
    TokenHeaderLayer::access_token(
        || async { Ok::<_, BoxError>(Token::new(Secret::from_string("backend-token"))) },
        Upstream::transak(),
    )
}

fn assert_backend_values(sent: &HeaderMap, order: &str) {
    assert_eq!(sent["x-api-key"], "backend-key", "{order}");
    assert_eq!(sent["access-token"], "backend-token", "{order}");
    assert_eq!(sent["x-user-ip"], END_USER, "{order}");
    for name in ["x-api-key", "access-token", "x-user-ip"] {
        assert_eq!(sent.get_all(name).iter().count(), 1, "{order}: {name}");
    }
    assert!(sent.get("authorization").is_none(), "{order}");
    assert!(sent.get("cookie").is_none(), "{order}");
}

/// Security considerations, first statement, continued: the values tollgate's own layers set
/// survive whether hygiene runs before or after them.
#[tokio::test]
async fn backend_values_survive_hygiene_in_either_order() {
    let hygiene_first = ServiceBuilder::new()
        .layer(HeaderHygieneLayer::server_to_server())
        .layer(api_key())
        .layer(access_token())
        .map_request(set_user_ip)
        .service(echo());
    let sent = hygiene_first.oneshot(browser_request()).await.unwrap();
    assert_backend_values(&sent, "hygiene first");

    // Hygiene last: the browser's `Host` would be refused by the secret layers (see
    // `AmbiguousTarget`), so this request carries none.
    let hygiene_last = ServiceBuilder::new()
        .layer(api_key())
        .layer(access_token())
        .map_request(set_user_ip)
        .layer(HeaderHygieneLayer::server_to_server())
        .service(echo());
    let sent = hygiene_last.oneshot(browser_request()).await.unwrap();
    assert_backend_values(&sent, "hygiene last");

    // Hygiene in between.
    let hygiene_between = ServiceBuilder::new()
        .layer(api_key())
        .layer(HeaderHygieneLayer::server_to_server())
        .layer(access_token())
        .map_request(set_user_ip)
        .service(echo());
    let sent = hygiene_between.oneshot(browser_request()).await.unwrap();
    assert_backend_values(&sent, "hygiene between");

    // The real `ForwardUserIpLayer`, inside hygiene (the documented order).
    let mut request = browser_request();
    request
        .extensions_mut()
        .insert(ClientIp::new(END_USER.parse().unwrap(), IpOrigin::Other));
    let real = ServiceBuilder::new()
        .layer(HeaderHygieneLayer::server_to_server())
        .layer(api_key())
        .layer(access_token())
        .layer(ForwardUserIpLayer::new())
        .service(echo());
    let sent = real.oneshot(request).await.unwrap();
    assert_backend_values(&sent, "real ForwardUserIpLayer inside hygiene");

    // The real `ForwardUserIpLayer` outside hygiene: it records `x-user-ip` in
    // `InjectedHeaders` (tollgate-core), so hygiene keeps its value and drops only the caller's.
    let mut request = browser_request();
    request
        .extensions_mut()
        .insert(ClientIp::new(END_USER.parse().unwrap(), IpOrigin::Other));
    let real_outside = ServiceBuilder::new()
        .layer(api_key())
        .layer(access_token())
        .layer(ForwardUserIpLayer::new())
        .layer(HeaderHygieneLayer::server_to_server())
        .service(echo());
    let sent = real_outside.oneshot(request).await.unwrap();
    assert_backend_values(&sent, "real ForwardUserIpLayer outside hygiene");
}

/// Security considerations: a token provider whose refresh request goes through the same
/// `TokenHeaderLayer` fails fast; it never blocks the thread. Run on a thread of its own, so
/// a deadlock fails this test instead of hanging it.
#[test]
fn a_refresh_through_its_own_token_layer_fails_fast() {
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(async {
            let client_slot: Arc<OnceLock<Client>> = Arc::new(OnceLock::new());
            let inner_error: Arc<Mutex<Option<Vec<String>>>> = Arc::default();
            let slot = Arc::clone(&client_slot);
            let seen = Arc::clone(&inner_error);
            let provider = move || {
                let client = slot.get().cloned();
                let seen = Arc::clone(&seen);
                async move {
                    let client = client.ok_or("no client yet")?;
                    let refresh = Request::post(REFRESH).body(()).unwrap();
                    match client.oneshot(refresh).await {
                        Ok(_) => Ok(Token::new(Secret::from_string("refreshed"))),
                        Err(error) => {
                            *seen.lock().unwrap() = Some(chain(&error));
                            Err(error)
                        }
                    }
                }
            };
            let client = Client::new(
                ServiceBuilder::new()
                    .layer(TokenHeaderLayer::access_token(
                        provider,
                        Upstream::transak(),
                    ))
                    .service(echo()),
            );
            let _ = client_slot.set(client.clone());
            let request = Request::get(ORDERS).body(()).unwrap();
            let result = tokio::time::timeout(Duration::from_secs(5), client.oneshot(request))
                .await
                .map_err(|_| "the call did not finish within 5 s".to_owned())?;
            let inner = inner_error.lock().unwrap().clone();
            Ok::<_, String>((result.map_err(|error| chain(&error)), inner))
        });
        let _ = done.send(result);
    });
    let (result, inner) = outcome
        .recv_timeout(Duration::from_secs(10))
        .expect("deadlock: the worker thread did not finish within 10 s")
        .unwrap();
    // The refresh request itself was refused with the typed reason...
    let inner = inner.expect("the refresh request failed");
    assert!(inner[0].contains("TokenUnavailable"), "{inner:?}");
    assert_eq!(
        inner[1],
        format!("{:?}", TokenFetchError::Reentrant),
        "{inner:?}"
    );
    // ...so the provider failed, and so did the call that needed the token.
    let outer = result.unwrap_err();
    assert!(outer[0].contains("TokenUnavailable"), "{outer:?}");
    assert!(
        outer.contains(&format!("{:?}", TokenFetchError::Reentrant)),
        "{outer:?}"
    );
}

/// Security considerations: a refresh that reaches its own layer from another task (where
/// re-entry cannot be seen) waits for itself only until the fetch timeout.
#[tokio::test(start_paused = true)]
async fn a_refresh_through_its_own_layer_from_another_task_times_out() {
    let client_slot: Arc<OnceLock<Client>> = Arc::new(OnceLock::new());
    let slot = Arc::clone(&client_slot);
    let provider = move || {
        let client = slot.get().cloned();
        async move {
            let client = client.ok_or("no client yet")?;
            let refresh = Request::post(REFRESH).body(()).unwrap();
            tokio::spawn(client.oneshot(refresh)).await??;
            Ok(Token::new(Secret::from_string("refreshed")))
        }
    };
    let client = Client::new(
        ServiceBuilder::new()
            .layer(
                TokenHeaderLayer::access_token(provider, Upstream::transak())
                    .fetch_timeout(Duration::from_secs(2)),
            )
            .service(echo()),
    );
    let _ = client_slot.set(client.clone());
    let started = tokio::time::Instant::now();
    let error = tokio::time::timeout(
        Duration::from_secs(3_600),
        client.oneshot(Request::get(ORDERS).body(()).unwrap()),
    )
    .await
    .expect("the call was still waiting after an hour")
    .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert!(
        chain(&error).contains(&format!(
            "{:?}",
            TokenFetchError::TimedOut {
                after: Duration::from_secs(2)
            }
        )),
        "{:?}",
        chain(&error)
    );
}

/// Security considerations: a fetch that takes longer than the fetch timeout fails every
/// waiting call; a hung provider never hangs a request.
#[tokio::test(start_paused = true)]
async fn a_hung_provider_times_out() {
    let provider = || std::future::pending::<Result<Token, BoxError>>();
    let client = ServiceBuilder::new()
        .layer(TokenHeaderLayer::access_token(
            provider,
            Upstream::transak(),
        ))
        .service(echo());
    let started = tokio::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(3_600),
        client.oneshot(Request::get(ORDERS).body(()).unwrap()),
    )
    .await
    .expect("the call was still waiting for the token after an hour");
    let error = result.unwrap_err();
    let Some(HeaderError::TokenUnavailable { source, .. }) = error.downcast_ref::<HeaderError>()
    else {
        panic!("{error:?}");
    };
    assert_eq!(
        source.downcast_ref::<TokenFetchError>(),
        Some(&TokenFetchError::TimedOut {
            after: DEFAULT_FETCH_TIMEOUT
        })
    );
    assert_eq!(DEFAULT_FETCH_TIMEOUT, Duration::from_secs(10));
    assert_eq!(started.elapsed(), DEFAULT_FETCH_TIMEOUT);
}

/// Security considerations: the shared refresh runs in a task of its own, outside the
/// triggering request's task-local scope, so a `ForwardUserIpLayer` on the refresh call
/// never sends that user's IP.
#[tokio::test]
async fn the_refresh_never_carries_the_triggering_users_ip() {
    let refresh_saw: Arc<Mutex<Vec<Option<HeaderValue>>>> = Arc::default();
    let record = Arc::clone(&refresh_saw);
    let refresh_client = ServiceBuilder::new()
        .layer(ForwardUserIpLayer::new())
        .service(service_fn(move |request: Request<()>| {
            record
                .lock()
                .unwrap()
                .push(request.headers().get("x-user-ip").cloned());
            async { Ok::<_, BoxError>(()) }
        }));
    let context_seen: Arc<Mutex<Vec<Option<ClientIp>>>> = Arc::default();
    let seen = Arc::clone(&context_seen);
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fetches);
    let provider = move || {
        counter.fetch_add(1, Ordering::SeqCst);
        // What the provider sees synchronously, and what its refresh call sends.
        seen.lock().unwrap().push(ClientIp::current());
        let refresh: RefreshCall = Box::pin(
            refresh_client
                .clone()
                .oneshot(Request::post(REFRESH).body(()).unwrap()),
        );
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().unwrap().push(ClientIp::current());
            let _ = refresh.await;
            Ok::<_, BoxError>(Token::new(Secret::from_string("backend-token")))
        }
    };
    let client = ServiceBuilder::new()
        .layer(TokenHeaderLayer::access_token(
            provider,
            Upstream::transak(),
        ))
        .layer(ForwardUserIpLayer::new())
        .service(echo());
    let user = ClientIp::new(END_USER.parse().unwrap(), IpOrigin::Other);
    let sent = user
        .scope(client.oneshot(Request::get(ORDERS).body(()).unwrap()))
        .await
        .unwrap();
    // The user's own request carries the user's IP and the token.
    assert_eq!(sent["x-user-ip"], END_USER);
    assert_eq!(sent["access-token"], "backend-token");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // The refresh saw no user, and its x-user-ip layer sent nothing.
    assert_eq!(
        *refresh_saw.lock().unwrap(),
        Vec::<Option<HeaderValue>>::new()
    );
    assert_eq!(*context_seen.lock().unwrap(), [None, None]);
}

/// `SecretHeaderLayer`'s "Security considerations": a blank secret is refused when the
/// layer is built, so no request can carry it. (Before the fix, the layer was built and sent
/// `x-api-key: ` with an empty value.)
#[test]
fn blank_secret_is_refused_when_the_layer_is_built() {
    for blank in ["", " ", "\t", "\r\n", "\u{a0}"] {
        for (layer, header) in [
            (
                SecretHeaderLayer::api_key(Secret::from_string(blank), Upstream::transak()),
                "x-api-key",
            ),
            (
                SecretHeaderLayer::access_token(Secret::from_string(blank), Upstream::transak()),
                "access-token",
            ),
            (
                SecretHeaderLayer::new(
                    HeaderName::from_static("x-partner-key"),
                    Secret::from_string(blank),
                    Upstream::transak(),
                ),
                "x-partner-key",
            ),
        ] {
            let err = layer.unwrap_err();
            assert_eq!(
                err,
                ConfigError::Secret(tollgate_core::SecretError::Blank {
                    name: format!("the `{header}` header")
                }),
                "{blank:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "the secret for the `{header}` header is empty, all zero bytes or only whitespace"
                )
            );
        }
    }
    // Whitespace around a real key is part of the key: not blank.
    assert!(SecretHeaderLayer::api_key(Secret::from_string(" k "), Upstream::transak()).is_ok());
}

/// Security considerations: a token provider that answers a blank token (empty or whitespace
/// only) fails the call, as an unusable value does; nothing is sent with `access-token: ""`.
#[tokio::test]
async fn a_blank_fetched_token_is_never_sent() {
    for blank in ["", " ", "\t \n"] {
        let provider =
            move || async move { Ok::<_, BoxError>(Token::new(Secret::from_string(blank))) };
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&sent);
        let client = ServiceBuilder::new()
            .layer(TokenHeaderLayer::access_token(
                provider,
                Upstream::transak(),
            ))
            .service(service_fn(move |request: Request<()>| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move { Ok::<_, BoxError>(request.headers().clone()) }
            }));
        let result = client.oneshot(Request::get(ORDERS).body(()).unwrap()).await;
        assert!(result.is_err(), "{blank:?} was sent: {result:?}");
        assert_eq!(
            sent.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "{blank:?}"
        );
    }
}

/// Security considerations: no secret layer exists without an upstream, or with a secret it
/// could not send. The upstream is a constructor argument (a layer without one does not
/// compile: the `compile_fail` examples on `SecretHeaderLayer` and `TokenHeaderLayer`); a
/// secret that is not a valid header value fails the constructor. (Before, such a layer was
/// built and failed every call with `UpstreamNotConfigured` or `InvalidSecret`.)
#[tokio::test]
async fn secret_layers_are_built_whole_or_not_at_all() {
    let error =
        SecretHeaderLayer::api_key(Secret::from_string("key\r\nx-evil: 1"), Upstream::transak())
            .unwrap_err();
    assert_eq!(
        error,
        ConfigError::InvalidSecret {
            header: HeaderName::from_static("x-api-key")
        }
    );
    assert!(!format!("{error:?}").contains("evil"));

    // Built, each layer sends to its upstreams at once: nothing left to fail per request.
    let keys = api_key().upstream(Upstream::transak_staging());
    assert_eq!(
        keys.upstreams(),
        [Upstream::transak(), Upstream::transak_staging()]
    );
    let tokens = access_token().upstream(Upstream::transak_staging());
    assert_eq!(
        tokens.upstreams(),
        [Upstream::transak(), Upstream::transak_staging()]
    );
    let client = ServiceBuilder::new()
        .layer(keys)
        .layer(tokens)
        .service(echo());
    for base in [
        ORDERS,
        "https://api-gateway-stg.transak.com/partners/api/v2/orders",
    ] {
        let sent = client
            .clone()
            .oneshot(Request::get(base).body(()).unwrap())
            .await
            .unwrap();
        assert_eq!(sent["x-api-key"], "backend-key", "{base}");
        assert_eq!(sent["access-token"], "backend-token", "{base}");
    }
}
