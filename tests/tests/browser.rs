//! A real browser against the origin allowlist: Debian's headless Chromium loads a page from an
//! allowed origin and one from a foreign origin; both pages call the same API behind
//! `OriginAllowlistLayer` and write what `fetch` returned into the DOM.
//!
//! Without `chromium` installed the test prints a skip notice, unless
//! `TOLLGATE_REQUIRE_BROWSER=1` makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Html;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tollgate::origin::OriginAllowlistLayer;
use tollgate_test_support::Chromium;

/// The page both origins serve: three calls to the API, outcomes written into `<pre>`s.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>tollgate origin test</title></head>
<body>
<pre id="get">pending</pre>
<pre id="json-post">pending</pre>
<pre id="simple-post">pending</pre>
<script>
const api = "API_ORIGIN";
async function call(id, path, init) {
  const out = document.getElementById(id);
  try {
    const response = await fetch(api + path, init);
    out.textContent = "status " + response.status + " " + (await response.text());
  } catch (error) {
    out.textContent = "failed " + error.name;
  }
}
(async () => {
  await call("get", "/api/quote", {});
  await call("json-post", "/api/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ amount: 100 }),
  });
  // No preflight for this one: text/plain is a CORS-safelisted content type.
  await call("simple-post", "/api/session", { method: "POST", body: "amount=100" });
  document.body.setAttribute("data-done", "yes");
})();
</script>
</body></html>
"#;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    method: String,
    origin: String,
    status: u16,
}

async fn serve(listener: TcpListener, app: Router) {
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
}

async fn bind() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// The text of `<pre id="{id}">` in the dumped DOM.
fn outcome<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("<pre id=\"{id}\">");
    let start = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no #{id} in {dom}"))
        + open.len();
    let end = dom[start..].find("</pre>").unwrap() + start;
    &dom[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_page_reads_json_and_foreign_page_is_blocked_before_the_handler() {
    let Some(chromium) = Chromium::find_or_skip("origin allowlist browser test") else {
        return;
    };

    let (api_listener, api_port) = bind().await;
    let (allowed_listener, allowed_port) = bind().await;
    let (foreign_listener, foreign_port) = bind().await;
    let api_origin = format!("http://127.0.0.1:{api_port}");
    let allowed_origin = format!("http://127.0.0.1:{allowed_port}");
    let foreign_origin = format!("http://localhost:{foreign_port}");

    // The API: two handlers that count their calls, behind the layer; an outer middleware
    // records what reached the server and what the layer answered.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let layer = OriginAllowlistLayer::builder()
        .allow_origin(allowed_origin.as_str())
        .allow_http_origins(true)
        .allow_methods(["GET", "POST"])
        .allow_headers(["content-type"])
        .build()
        .unwrap();
    let quote_calls = Arc::clone(&calls);
    let session_calls = Arc::clone(&calls);
    let record = Arc::clone(&seen);
    let api = Router::new()
        .route(
            "/api/quote",
            get(move || {
                quote_calls.fetch_add(1, Ordering::SeqCst);
                async {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        r#"{"quote":"ok"}"#,
                    )
                }
            }),
        )
        .route(
            "/api/session",
            post(move |body: Bytes| {
                session_calls.fetch_add(1, Ordering::SeqCst);
                let body = String::from_utf8_lossy(&body).into_owned();
                async move {
                    let json = serde_json::json!({ "session": "created", "received": body });
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        json.to_string(),
                    )
                }
            }),
        )
        .layer(layer)
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let record = Arc::clone(&record);
            async move {
                let method = request.method().to_string();
                let origin = request
                    .headers()
                    .get(header::ORIGIN)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let response = next.run(request).await;
                record.lock().unwrap().push(Seen {
                    method,
                    origin,
                    status: response.status().as_u16(),
                });
                response
            }
        }));
    serve(api_listener, api).await;

    let page = PAGE.replace("API_ORIGIN", &api_origin);
    let pages = Router::new().route(
        "/",
        get(move || {
            let page = page.clone();
            async move { Html(page) }
        }),
    );
    serve(allowed_listener, pages.clone()).await;
    serve(foreign_listener, pages).await;

    let budget = Duration::from_secs(10);

    // 1. The allowed origin reads the JSON of a simple GET and of a preflighted POST.
    let chromium = Arc::new(chromium);
    let browser = Arc::clone(&chromium);
    let url = format!("{allowed_origin}/");
    let dom = tokio::task::spawn_blocking(move || browser.dump_dom(&url, budget))
        .await
        .unwrap();
    assert!(
        dom.contains("data-done=\"yes\""),
        "page did not finish: {dom}"
    );
    assert_eq!(outcome(&dom, "get"), r#"status 200 {"quote":"ok"}"#);
    assert_eq!(
        outcome(&dom, "json-post"),
        r#"status 200 {"received":"{\"amount\":100}","session":"created"}"#
    );
    assert_eq!(
        outcome(&dom, "simple-post"),
        r#"status 200 {"received":"amount=100","session":"created"}"#
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let allowed_seen: Vec<Seen> = seen.lock().unwrap().drain(..).collect();
    let expected = |method: &str, status: u16| Seen {
        method: method.to_owned(),
        origin: allowed_origin.clone(),
        status,
    };
    assert_eq!(
        allowed_seen,
        [
            expected("GET", 200),
            expected("OPTIONS", 204),
            expected("POST", 200),
            expected("POST", 200),
        ],
        "the browser preflights the JSON POST only"
    );

    // 2. The foreign origin: every fetch fails in the page, and no handler ran, not even for
    //    the POST that needs no preflight (a CORS layer that only omits headers runs it).
    let browser = Arc::clone(&chromium);
    let url = format!("{foreign_origin}/");
    let dom = tokio::task::spawn_blocking(move || browser.dump_dom(&url, budget))
        .await
        .unwrap();
    assert!(
        dom.contains("data-done=\"yes\""),
        "page did not finish: {dom}"
    );
    for id in ["get", "json-post", "simple-post"] {
        assert_eq!(outcome(&dom, id), "failed TypeError", "#{id}");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "a handler ran for the foreign origin"
    );
    let foreign_seen: Vec<Seen> = seen.lock().unwrap().drain(..).collect();
    let expected = |method: &str| Seen {
        method: method.to_owned(),
        origin: foreign_origin.clone(),
        status: 403,
    };
    assert_eq!(
        foreign_seen,
        [expected("GET"), expected("OPTIONS"), expected("POST")],
        "the requests reached the server and the layer refused them"
    );
}
