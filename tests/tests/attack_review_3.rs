//! Regression tests from an attacker's review of base paths on upstreams. Each failed before
//! its fix: a request path that `upstream::check` let a credential go to, although a server
//! that decodes or normalises the path one step further than `check` did (a second decode,
//! overlong UTF-8, Unicode lookalikes, IIS `%u`, Windows trailing dots) reads it as a path
//! outside the base path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::convert::Infallible;

use http::{HeaderMap, Request, Response, Uri};
use tollgate::core::Secret;
use tollgate::core::upstream::{self, TargetError, Upstream};
use tollgate::headers::SecretHeaderLayer;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const BASE: &str = "https://api.example/api/v1";

fn check(path: &str) -> Result<(), TargetError> {
    let uri: Uri = format!("https://api.example{path}").parse().unwrap();
    upstream::check(&[Upstream::parse(BASE).unwrap()], &uri, &HeaderMap::new())
}

fn refused(paths: &[&str]) {
    let passed: Vec<_> = paths.iter().filter(|path| check(path).is_ok()).collect();
    assert!(passed.is_empty(), "sent with the credential: {passed:?}");
}

/// FINDING 1: double (or repeated) percent-encoding. `has_dot_segment` decodes exactly once,
/// so `%252e%252e` becomes `%2e%2e`, which it does not read as `..`. A proxy that decodes the
/// path before forwarding it (or a framework that decodes twice) hands the backend
/// `/api/v1/%2e%2e/admin`, which it resolves to `/api/admin`.
#[test]
fn double_encoded_dot_segments_are_refused() {
    refused(&[
        "/api/v1/%252e%252e/admin",
        "/api/v1/.%252e/admin",
        "/api/v1/%252e%252e%252fadmin",
        "/api/v1/..%252fadmin",
        "/api/v1/..%255cadmin",
        "/api/v1/%25252e%25252e/admin",
    ]);
}

/// End to end: the x-api-key reaches what a double-decoding server routes as `/api/admin`.
#[tokio::test]
async fn double_encoded_traversal_delivers_the_api_key_outside_the_base_path() {
    // The "server": decodes the path twice (proxy + app), then resolves dot segments.
    fn routed(path: &str) -> String {
        let twice = pct(&pct(path));
        let mut out: Vec<&str> = Vec::new();
        for segment in twice.split('/').skip(1) {
            match segment {
                ".." => {
                    out.pop();
                }
                "." => {}
                s => out.push(s),
            }
        }
        format!("/{}", out.join("/"))
    }
    fn pct(s: &str) -> String {
        let b = s.as_bytes();
        let mut o = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                o.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                o.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(o).unwrap()
    }
    let service = ServiceBuilder::new()
        .layer(
            SecretHeaderLayer::api_key(
                Secret::from_string("sk_live_partner_key"),
                Upstream::parse(BASE).unwrap(),
            )
            .unwrap(),
        )
        .service(service_fn(|request: Request<()>| async move {
            let route = routed(request.uri().path());
            let key = request.headers().contains_key("x-api-key");
            Ok::<_, Infallible>(Response::new((route, key)))
        }));
    let request = Request::get("https://api.example/api/v1/%252e%252e/admin")
        .body(())
        .unwrap();
    if let Ok(response) = service.oneshot(request).await {
        let (route, key) = response.into_body();
        assert!(
            !key || route.starts_with("/api/v1"),
            "x-api-key delivered to {route}"
        );
    }
}

/// FINDING 2: overlong UTF-8 encodings of `.` (`%c0%ae`, `%e0%80%ae`) and `/` or `\`
/// (`%c0%af`, `%c1%9c`). Invalid UTF-8, but lenient decoders (old IIS, Tomcat before the
/// CVE-2008-2938 fix, several hand-written Java/C decoders) read them as `.`, `/`, `\`.
#[test]
fn overlong_utf8_dots_and_slashes_are_refused() {
    refused(&[
        "/api/v1/%c0%ae%c0%ae/admin",
        "/api/v1/%e0%80%ae%e0%80%ae/admin",
        "/api/v1/..%c0%afadmin",
        "/api/v1/..%c1%9cadmin",
    ]);
}

/// FINDING 3: non-ASCII in the path. `http::Uri` accepts raw UTF-8 bytes in a path and hyper
/// sends them unencoded. Servers that apply Unicode (NFKC) normalisation, or Windows
/// "best-fit" code-page mapping (ANSI APIs behind IIS/CGI), read the full-width full stop
/// U+FF0E, the small full stop U+FE52 and the two-dot leader U+2025 as `.`/`..`, and
/// YEN SIGN U+00A5 as `\` on Japanese code pages.
#[test]
fn unicode_dot_lookalikes_are_refused() {
    refused(&[
        "/api/v1/\u{ff0e}\u{ff0e}/admin",
        "/api/v1/%ef%bc%8e%ef%bc%8e/admin",
        "/api/v1/\u{fe52}\u{fe52}/admin",
        "/api/v1/\u{2025}/admin",
        "/api/v1/..\u{a5}admin",
    ]);
}

/// FINDING 4 (lower): IIS's non-standard `%uXXXX` escapes (also ASP.NET's UrlDecode), and
/// segments that Windows path handling shortens to `..` (trailing spaces/dots, NUL
/// truncation in C code, NTFS `::$DATA`).
#[test]
fn iis_u_escapes_and_windows_dot_spellings_are_refused() {
    refused(&[
        "/api/v1/%u002e%u002e/admin",
        "/api/v1/..%u2215admin",
        "/api/v1/..%20/admin",
        "/api/v1/..%00/admin",
        "/api/v1/.../admin",
        "/api/v1/..::$DATA/admin",
    ]);
}
