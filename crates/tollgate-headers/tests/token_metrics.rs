//! `tollgate_token_refreshes_total{outcome}` through `TokenHeaderLayer` on a real outbound
//! stack: the layer over a hyper client to a loopback provider mock, its token provider
//! fetching from a loopback refresh endpoint that answers a scripted sequence (a token, a
//! 503, nothing at all, a blank token, a token no header can carry). Every fetch counts once
//! under its outcome; a cached token and the waiters of a shared fetch count nothing; no label
//! value comes from the token, the refresh endpoint or the request.
//!
//! The recorder is `metrics-util`'s `DebuggingRecorder`, installed for this thread only
//! (`metrics::with_local_recorder`) around a current-thread runtime: the fetch runs in a task
//! of its own, on that same thread, so it records into it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Mock, client_http1};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokio::net::TcpListener;
use tollgate_core::{BoxError, Clock, ManualClock, Secret};
use tollgate_headers::{HeaderError, Token, TokenFetchError, TokenHeaderLayer};
use tower::{ServiceBuilder, ServiceExt};

/// What the refresh endpoint answers, one per request, in order.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// 200 with this body as the token.
    Token(&'static str),
    /// This status, no token.
    Status(StatusCode),
    /// Nothing, ever (the fetch times out).
    Hang,
}

/// A refresh endpoint on 127.0.0.1 answering `script` in order.
struct RefreshEndpoint {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl RefreshEndpoint {
    async fn start(script: &[Answer]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let script = Arc::clone(&script);
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let answer = script.lock().unwrap().pop_front();
                        async move {
                            let (status, body) = match answer {
                                Some(Answer::Token(token)) => (StatusCode::OK, token),
                                Some(Answer::Status(status)) => (status, ""),
                                Some(Answer::Hang) => std::future::pending().await,
                                None => panic!("the refresh endpoint was called once too often"),
                            };
                            let mut response = Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = status;
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A provider that fetches the token from `endpoint` over HTTP, valid for an hour from
/// `clock`'s now.
fn provider(
    endpoint: SocketAddr,
    clock: ManualClock,
) -> impl Fn() -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Token, BoxError>> + Send + 'static>,
> + Send
+ Sync
+ 'static {
    let client = client_http1();
    move || {
        let client = client.clone();
        let now = clock.now_unix();
        Box::pin(async move {
            let request = Request::post(format!("http://{endpoint}/partners/api/v2/refresh-token"))
                .body(Full::default())
                .unwrap();
            let response = client.request(request).await?;
            let status = response.status();
            if status != StatusCode::OK {
                return Err(format!("refresh endpoint answered {status}").into());
            }
            let body = response.into_body().collect().await?.to_bytes();
            let token = String::from_utf8(body.to_vec())?;
            Ok(Token::new(Secret::from_string(token)).expires_at(now + 3600))
        })
    }
}

/// Every series recorded, as sorted `name{label=value,...} value` lines, and every label
/// value.
fn snapshot(
    snapshotter: &metrics_util::debugging::Snapshotter,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut lines = Vec::new();
    let mut labels = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let pairs: Vec<String> = key
            .labels()
            .map(|label| {
                labels.push((label.key().to_owned(), label.value().to_owned()));
                format!("{}={}", label.key(), label.value())
            })
            .collect();
        let value = match value {
            DebugValue::Counter(n) => n.to_string(),
            DebugValue::Gauge(g) => g.to_string(),
            DebugValue::Histogram(values) => format!("{} samples", values.len()),
        };
        lines.push(format!("{}{{{}}} {value}", key.name(), pairs.join(",")));
    }
    lines.sort();
    (lines, labels)
}

const FIRST: &str = "tok-SECRET-first-0f3a9c";
const SECOND: &str = "tok-SECRET-second-77b1e2";

#[test]
fn every_token_fetch_counts_once_under_its_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let refresh = RefreshEndpoint::start(&[
                Answer::Token(FIRST),
                Answer::Status(StatusCode::SERVICE_UNAVAILABLE),
                Answer::Hang,
                Answer::Token("   "),
                Answer::Token("tok-SECRET-bad\nline"),
                Answer::Token(SECOND),
            ])
            .await;
            let upstream = Mock::http1().await;
            let clock = ManualClock::new(1_700_000_000);
            let client = ServiceBuilder::new()
                .layer(
                    TokenHeaderLayer::access_token(
                        provider(refresh.addr, clock.clone()),
                        upstream.upstream(),
                    )
                    .clock(clock.clone())
                    .fetch_timeout(Duration::from_millis(100)),
                )
                .service(client_http1());
            let call = || {
                let client = client.clone();
                let uri = format!("{}/api/v2/orders?partnerOrderId=ord-7781", upstream.base());
                async move {
                    client
                        .oneshot(
                            Request::get(uri)
                                .header("x-user-ip", "198.51.100.23")
                                .body(Full::default())
                                .unwrap(),
                        )
                        .await
                }
            };
            let header_error = |error: &BoxError| -> String {
                match error.downcast_ref::<HeaderError>() {
                    Some(HeaderError::TokenUnavailable { source, .. }) => {
                        match source.downcast_ref::<TokenFetchError>() {
                            Some(TokenFetchError::TimedOut { after }) => {
                                format!("timed out after {after:?}")
                            }
                            _ => format!("unavailable: {source}"),
                        }
                    }
                    Some(HeaderError::InvalidSecret { header }) => format!("invalid: {header}"),
                    other => panic!("unexpected {other:?} ({error})"),
                }
            };

            // A fetch that succeeds, then the cached token: one `success`.
            assert_eq!(call().await.unwrap().status(), StatusCode::OK);
            assert_eq!(call().await.unwrap().status(), StatusCode::OK);
            assert_eq!(refresh.requests(), 1);

            // Stale: each failure is not cached, so each call fetches again.
            clock.advance(3600);
            let error = call().await.unwrap_err();
            assert_eq!(
                header_error(&error),
                "unavailable: refresh endpoint answered 503 Service Unavailable"
            );
            let error = call().await.unwrap_err();
            assert_eq!(header_error(&error), "timed out after 100ms");
            let error = call().await.unwrap_err();
            assert_eq!(header_error(&error), "invalid: access-token");
            let error = call().await.unwrap_err();
            assert_eq!(header_error(&error), "invalid: access-token");
            assert_eq!(refresh.requests(), 5);

            // Ten calls on the stale cache share one fetch: one more `success`.
            let calls: Vec<_> = (0..10).map(|_| tokio::spawn(call())).collect();
            for call in calls {
                assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
            }
            assert_eq!(refresh.requests(), 6);

            let sent: Vec<String> = upstream
                .seen()
                .iter()
                .map(|seen| seen.headers["access-token"].to_str().unwrap().to_owned())
                .collect();
            let mut expected = vec![FIRST.to_owned(); 2];
            expected.extend(std::iter::repeat_n(SECOND.to_owned(), 10));
            assert_eq!(sent, expected);
        });
    });

    let (lines, labels) = snapshot(&snapshotter);
    assert_eq!(
        lines,
        [
            "tollgate_token_refreshes_total{outcome=error} 1",
            "tollgate_token_refreshes_total{outcome=invalid} 2",
            "tollgate_token_refreshes_total{outcome=success} 2",
            "tollgate_token_refreshes_total{outcome=timeout} 1",
        ]
    );
    // The label values are the fixed outcome names: nothing from the token, the provider's
    // error, the refresh endpoint, or the request (its path, query, headers).
    for (name, value) in &labels {
        assert_eq!(name, "outcome");
        assert!(
            ["success", "error", "timeout", "invalid"].contains(&value.as_str()),
            "label value {value:?}"
        );
        for leaked in [
            "tok",
            "SECRET",
            "503",
            "127.0.0.1",
            "orders",
            "ord-7781",
            "198.51.100.23",
        ] {
            assert!(!value.contains(leaked), "label value {value:?}");
        }
    }
}
