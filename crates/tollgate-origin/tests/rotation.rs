//! Allowed origins swapped while the server runs (`build_swappable`), over real sockets: a
//! stored list applies to the next request, an invalid list is refused with build's error,
//! and clients racing a swap loop get one consistent answer per request, none lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::{Router, routing::get};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tollgate_origin::{ConfigError, OriginAllowlistLayer, OriginsHandle};

const A: &str = "https://app.example.com";
const B: &str = "https://checkout.example.com";

async fn serve() -> (SocketAddr, OriginsHandle) {
    let (layer, origins) = OriginAllowlistLayer::builder()
        .allow_origin(A)
        .build_swappable()
        .unwrap();
    let app = Router::new()
        .route("/quote", get(|| async { "ok" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, origins)
}

fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The status, `Access-Control-Allow-Origin` and body for a request from `origin`.
async fn from(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    origin: &str,
) -> (StatusCode, Option<String>, String) {
    let request = Request::get(format!("http://{addr}/quote"))
        .header("origin", origin)
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let allow = response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, allow, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_stored_origin_list_applies_to_the_next_request() {
    let (addr, origins) = serve().await;
    let client = client();
    assert_eq!(
        from(&client, addr, A).await,
        (StatusCode::OK, Some(A.into()), "ok".into())
    );
    let (status, allow, body) = from(&client, addr, B).await;
    assert_eq!((status, allow), (StatusCode::FORBIDDEN, None));
    assert_eq!(
        body,
        r#"{"error":{"code":"origin_not_allowed","message":"origin is not allowed"}}"#
    );

    // B added, then A retired: each change applies to the very next request.
    origins.store([A, B]).unwrap();
    assert_eq!(
        from(&client, addr, B).await,
        (StatusCode::OK, Some(B.into()), "ok".into())
    );
    origins.store([B]).unwrap();
    assert_eq!(from(&client, addr, A).await.0, StatusCode::FORBIDDEN);
    assert_eq!(from(&client, addr, B).await.0, StatusCode::OK);
}

/// What `build` refuses, `store` refuses with the same error, and the list in place stays.
#[tokio::test]
async fn store_refuses_what_build_refuses() {
    let (addr, origins) = serve().await;
    for bad in [
        vec!["*"],
        vec!["http://app.example.com"],
        vec!["https://*.github.io"],
        vec!["https://app.example.com/path"],
        vec![],
    ] {
        let built = OriginAllowlistLayer::new(bad.clone()).unwrap_err();
        let stored: ConfigError = origins.store(bad.clone()).unwrap_err();
        assert_eq!(stored, built, "{bad:?}");
    }
    assert_eq!(origins.load().len(), 1);
    assert_eq!(from(&client(), addr, A).await.0, StatusCode::OK);
}

/// Clients from A and B while another task swaps the list between [A] and [B]: every answer
/// is a whole one (200 with its own origin echoed, or 403 with no CORS header), none lost,
/// both seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_racing_an_origin_swap_loop_get_whole_answers() {
    const TASKS: usize = 8;
    const REQUESTS: usize = 30;
    let (addr, origins) = serve().await;
    let done = Arc::new(AtomicBool::new(false));
    let swapper = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut swaps = 0usize;
            while !done.load(Ordering::Relaxed) {
                swaps += 1;
                origins
                    .store([if swaps.is_multiple_of(2) { A } else { B }])
                    .unwrap();
                tokio::task::yield_now().await;
            }
            swaps
        })
    };
    let (allowed, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (allowed, refused) = (Arc::clone(&allowed), Arc::clone(&refused));
        tasks.push(tokio::spawn(async move {
            let client = client();
            for i in 0..REQUESTS {
                let origin = if (task + i) % 2 == 0 { A } else { B };
                match from(&client, addr, origin).await {
                    (StatusCode::OK, Some(allow), body) if allow == origin && body == "ok" => {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                    (StatusCode::FORBIDDEN, None, body) if body.contains("origin_not_allowed") => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("torn answer for {origin}: {other:?}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let swaps = swapper.await.unwrap();
    let (allowed, refused) = (
        allowed.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    assert_eq!(allowed + refused, TASKS * REQUESTS, "a request was lost");
    assert!(
        allowed > 0 && refused > 0,
        "allowed {allowed}, refused {refused}"
    );
    assert!(swaps > 10, "only {swaps} swaps");
}
