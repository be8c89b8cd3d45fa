//! The README's example, kept identical to the README and run as a user would run it.
//!
//! - `readme_code_block_is_the_compiled_example` / `readme_cargo_block_is_this_crate`: the
//!   README's `rust` block under "A stacked example" is `src/example.rs` byte for byte, and its
//!   "Add to Cargo.toml" block is this crate's `[dependencies]` (the facade by path instead of
//!   by version), so neither can drift from what is built here.
//! - `readme_example_serves_over_tcp`: `serve` on a real listener, called by a `hyper_util`
//!   client: an allowed origin reaches an HTTPS loopback mock of the provider (its test CA
//!   trusted through `PROVIDER_CA_PEM`) with the API key
//!   and `x-user-ip` (the socket peer read through axum's `ConnectInfo`, which needs the
//!   facade's `axum` feature, on by default: without it every request is 500
//!   `client_ip_misconfigured`); a foreign origin is refused. `serve` reads `PROVIDER_API_KEY`, `PROVIDER_URL` and `PROVIDER_CA_PEM` from the
//!   environment, which a test cannot set safely while other threads run, so the test
//!   re-runs itself as a child process with both set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tollgate_test_support::TempDir;
use tollgate_test_support::tls::{HttpsServer, TestPki, handler};

const README: &str = include_str!("../../../README.md");
const CHILD: &str = "TOLLGATE_README_CHILD";
const API_KEY: &str = "readme-test-api-key";

/// The lines of the first fenced block of `lang` after the line `heading` (the fences
/// excluded), each ending with a newline.
fn block(heading: &str, lang: &str) -> String {
    let mut lines = README.lines().skip_while(|line| *line != heading);
    assert!(lines.next().is_some(), "README has no `{heading}` heading");
    let fence = format!("```{lang}");
    let mut lines = lines.skip_while(|line| *line != fence);
    assert!(
        lines.next().is_some(),
        "no ```{lang} block under `{heading}`"
    );
    let mut out = String::new();
    for line in lines.take_while(|line| *line != "```") {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn readme_starts_with_add_to_cargo_toml() {
    let first = README.lines().find(|line| line.starts_with("## "));
    assert_eq!(first, Some("## Add to Cargo.toml"));
}

#[test]
fn readme_code_block_is_the_compiled_example() {
    let readme = block("## A stacked example", "rust");
    let compiled = include_str!("../src/example.rs");
    assert!(
        readme == compiled,
        "README.md's code block under \"## A stacked example\" and tests/readme/src/example.rs \
         differ: copy one onto the other (and run rustfmt).\n--- README\n{readme}\n--- example.rs\n{compiled}"
    );
}

#[test]
fn readme_provider_block_is_the_compiled_one() {
    let readme = block("## Calling a provider", "rust");
    let compiled = include_str!("../src/providers.rs");
    assert!(
        readme == compiled,
        "README.md's code block under \"## Calling a provider\" and tests/readme/src/providers.rs \
         differ: copy one onto the other (and run rustfmt).\n--- README\n{readme}\n--- providers.rs\n{compiled}"
    );
}

#[test]
fn readme_cargo_block_is_this_crate() {
    let readme = block("## Add to Cargo.toml", "toml").replace(
        r#"tollgate = "0.1""#,
        r#"tollgate = { path = "../../crates/tollgate" }"#,
    );
    let manifest = include_str!("../Cargo.toml");
    let start = manifest.find("[dependencies]\n").expect("[dependencies]");
    let end = manifest[start..]
        .find("\n\n")
        .map_or(manifest.len(), |end| start + end + 1);
    let built = &manifest[start..end];
    assert!(
        readme == built,
        "README.md's Cargo.toml block and tests/readme/Cargo.toml's [dependencies] differ\n\
         --- README\n{readme}\n--- Cargo.toml\n{built}"
    );
}

/// What the provider mock saw: `(x-api-key, x-user-ip, origin present)` per call.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>, bool)>>>;

#[test]
fn readme_example_serves_over_tcp() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let seen = Seen::default();
    // The provider mock, over HTTPS with a certificate from a CA made now; the example trusts
    // that CA through PROVIDER_CA_PEM.
    let pki = TestPki::generate();
    let dir = TempDir::new("tollgate-readme");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let provider = runtime.block_on({
        let seen = seen.clone();
        let leaf = pki.good;
        async move {
            HttpsServer::start(
                &leaf,
                handler(move |request: Request<Bytes>| {
                    let seen = seen.clone();
                    async move {
                        let headers = request.headers();
                        let header = |name: &str| {
                            headers
                                .get(name)
                                .and_then(|value| value.to_str().ok())
                                .map(str::to_owned)
                        };
                        let status = if request.uri().path() == "/api/v2/auth/session" {
                            seen.lock().unwrap().push((
                                header("x-api-key"),
                                header("x-user-ip"),
                                headers.contains_key("origin"),
                            ));
                            StatusCode::CREATED
                        } else {
                            StatusCode::NOT_FOUND
                        };
                        let mut response = http::Response::new(Bytes::new());
                        *response.status_mut() = status;
                        response
                    }
                }),
            )
            .await
        }
    });
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "readme_example_serves_over_tcp", "--nocapture"])
        .env(CHILD, "1")
        .env("PROVIDER_API_KEY", API_KEY)
        .env("PROVIDER_URL", provider.url())
        .env("PROVIDER_CA_PEM", &ca)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "child failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("child: served"),
        "the child ran no scenario: {stdout}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [(
            Some(API_KEY.to_owned()),
            Some("127.0.0.1".to_owned()),
            false
        )],
        "the provider mock must see exactly one call, with the key and the end user's IP, no Origin"
    );
}

/// The child: `serve` on a loopback listener, one allowed and one foreign call.
fn child() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let server = tokio::spawn(tollgate_readme::serve(listener));
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let call = |origin: &'static str| {
            let request = Request::post(format!("http://{addr}/api/widget-url"))
                .header("origin", origin)
                .body(Full::new(Bytes::new()))
                .unwrap();
            client.request(request)
        };

        let allowed = call("https://app.example.com").await.unwrap();
        assert_eq!(
            allowed.status(),
            StatusCode::CREATED,
            "the allowed origin must reach the provider mock through the outbound stack \
             (500: no peer address, is the facade's `axum` feature on?; 502: the outbound call failed)"
        );
        let foreign = call("https://evil.example").await.unwrap();
        assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
        assert!(!server.is_finished(), "serve returned early: {:?}", server.await);
        println!("child: served");
    });
}
