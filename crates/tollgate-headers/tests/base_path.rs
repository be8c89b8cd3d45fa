//! An upstream with a base path, through a real layer: the secret goes to paths under the
//! base path only, and a path a server could read as another one is refused before the
//! HTTP client is called. (The rules themselves are tested in `tollgate_core::upstream`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderMap, Request};
use tollgate_core::{BoxError, Secret};
use tollgate_headers::{HeaderError, SecretHeaderLayer, Token, TokenHeaderLayer, Upstream};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const BASE: &str = "https://api.example/api/v1";

/// Sends `path` (appended to `https://api.example`) through `x-api-key` and `access-token`
/// layers pinned to [`BASE`]; the headers the client was asked to send, or the error.
async fn send(path: &str) -> Result<HeaderMap, BoxError> {
    let sent = Arc::new(AtomicUsize::new(0));
    let fetched = Arc::new(AtomicUsize::new(0));
    let upstream = Upstream::parse(BASE).unwrap();
    let client = {
        let sent = Arc::clone(&sent);
        service_fn(move |request: Request<()>| {
            sent.fetch_add(1, Ordering::SeqCst);
            let headers = request.headers().clone();
            async move { Ok::<_, BoxError>(headers) }
        })
    };
    let refresh = {
        let fetched = Arc::clone(&fetched);
        move || {
            fetched.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, BoxError>(Token::new(Secret::from_string("backend-token"))) }
        }
    };
    let stack = ServiceBuilder::new()
        .layer(
            SecretHeaderLayer::api_key(Secret::from_string("backend-key"), upstream.clone())
                .unwrap(),
        )
        .layer(TokenHeaderLayer::access_token(refresh, upstream))
        .service(client);
    let request = Request::get(format!("https://api.example{path}"))
        .body(())
        .unwrap();
    let result = stack.oneshot(request).await;
    if result.is_err() {
        assert_eq!(
            sent.load(Ordering::SeqCst),
            0,
            "{path}: the client was called"
        );
        assert_eq!(
            fetched.load(Ordering::SeqCst),
            0,
            "{path}: a token was fetched"
        );
    }
    result
}

#[tokio::test]
async fn paths_under_the_base_path_get_the_credentials() {
    for path in ["/api/v1", "/api/v1/", "/api/v1/orders/42?expand=1"] {
        let sent = send(path).await.unwrap();
        assert_eq!(sent["x-api-key"], "backend-key", "{path}");
        assert_eq!(sent["access-token"], "backend-token", "{path}");
    }
}

#[tokio::test]
async fn other_paths_are_refused_before_anything_is_sent() {
    for path in ["/api/v10", "/api", "/other", "/API/v1/orders"] {
        let error = send(path).await.unwrap_err();
        match error.downcast_ref::<HeaderError>() {
            Some(HeaderError::UpstreamNotAllowed { header, target }) => {
                assert_eq!(header, "x-api-key", "{path}");
                assert_eq!(
                    target, "https://api.example (outside the configured base path)",
                    "{path}"
                );
            }
            other => panic!("{path}: {other:?}"),
        }
        assert_eq!(
            error.to_string(),
            "refusing to send the `x-api-key` header to https://api.example (outside the configured base path): not a configured upstream",
            "{path}"
        );
    }
}

#[tokio::test]
async fn ambiguous_paths_are_refused_before_anything_is_sent() {
    for path in [
        "/api/v1/../admin",
        "/api/v1/%2e%2e/admin",
        "/api/v1/..%2Fadmin",
        "/api/v1/..;/admin",
        "/api%2Fv1/orders",
        "/api//v1/orders",
    ] {
        let error = send(path).await.unwrap_err();
        assert!(
            matches!(
                error.downcast_ref::<HeaderError>(),
                Some(HeaderError::AmbiguousTarget { .. })
            ),
            "{path}: {error:?}"
        );
        assert!(!error.to_string().contains("admin"), "{path}: {error}");
    }
}

/// A refusal for a path outside the base path says so, and names no path.
#[test]
fn outside_the_base_path_is_named_in_the_error() {
    let upstream = tollgate_headers::Upstream::parse("https://api.example/api/v1").unwrap();
    let error = tollgate_core::upstream::check(
        &[upstream],
        &"https://api.example/admin/secret-path".parse().unwrap(),
        &http::HeaderMap::new(),
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("outside the base path"), "{text}");
    assert!(!text.contains("secret-path"), "{text}");
}
