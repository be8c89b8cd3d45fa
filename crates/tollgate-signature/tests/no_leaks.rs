//! Captured `tracing` output, rejection bodies, errors and every `Debug` of the layers hold no
//! secret and no expected signature.
//!
//! This file holds one test on purpose: it installs a thread-local subscriber, and other tests
//! running on other threads of the same binary at the same moment can leave a callsite's
//! cached interest at "never" (a known race of scoped subscribers), so events would be missed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use http::{Request, StatusCode};
use tollgate_core::{BufferedBody, Key, KeyRing, ManualClock, Secret, Upstream};
use tollgate_signature::{Canonical, SignRequestLayer, StandardWebhooks, VerifySignatureLayer};
use tollgate_test_support::LogCapture;
use tower::{ServiceBuilder, ServiceExt};

use common::{full, send_raw, send_signed, serve};

const T: u64 = 1_700_000_000;

fn post(addr: std::net::SocketAddr, path: &str) -> http::request::Builder {
    Request::post(format!("http://{addr}{path}"))
}

#[tokio::test]
async fn logs_bodies_and_debug_never_show_secrets_or_expected_signatures() {
    let capture = LogCapture::new();
    let _guard = capture.install();

    let secret_text = "super-secret-key-material";
    let secret = Secret::from_string(secret_text);
    let ring = KeyRing::new(Key::new("k1", secret.clone()).not_after(T + 10));
    let verify = VerifySignatureLayer::new(Canonical::new(), ring.clone())
        .unwrap()
        .clock(ManualClock::new(T));
    let addr = serve(verify.clone()).await;
    let upstream = Upstream::parse(&format!("http://{addr}")).unwrap();
    let sign = SignRequestLayer::new(Canonical::new(), ring.clone(), upstream.clone())
        .unwrap()
        .clock(ManualClock::new(T));

    // A body the client did not sign: the server's expected signature must stay inside.
    let sent_signature = Canonical::new().compute(&secret, "POST", "/", b"{\"a\":1}", T);
    let expected_for_tampered = Canonical::new().compute(&secret, "POST", "/", b"{\"a\":2}", T);
    let tampered = post(addr, "/")
        .header("x-signature", &sent_signature)
        .header("x-timestamp", T.to_string())
        .body(full("{\"a\":2}"))
        .unwrap();
    let answer = send_raw(tampered).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let ok = send_signed(sign.clone(), post(addr, "/").body(full("{}")).unwrap()).await;
    assert_eq!(ok.status, StatusCode::OK);

    let expired = SignRequestLayer::new(Canonical::new(), ring, upstream)
        .unwrap()
        .clock(ManualClock::new(T + 11));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<BufferedBody>();
    let err = ServiceBuilder::new()
        .layer(expired.clone())
        .service(client)
        .oneshot(post(addr, "/").body(full("{}")).unwrap())
        .await
        .unwrap_err();

    let logs = capture.text();
    assert!(logs.contains("code=signature_invalid"), "{logs}");
    let everything = [
        logs,
        String::from_utf8_lossy(&answer.body).into_owned(),
        format!("{err} {err:?}"),
        format!("{verify:?}"),
        format!("{sign:?}"),
        format!("{expired:?}"),
        format!("{:?}", tower::Layer::layer(&verify, ())),
        format!("{:?}", Canonical::new()),
        format!(
            "{:?}",
            StandardWebhooks::secret_from_whsec("whsec_c3VwZXItc2VjcmV0LWtleS1tYXRlcmlhbA==")
        ),
    ];
    for text in &everything {
        assert!(!text.contains(secret_text), "{text}");
        assert!(!text.contains(&expected_for_tampered), "{text}");
        assert!(!text.contains(&sent_signature), "{text}");
    }
    assert!(format!("{verify:?}").contains("Secret([REDACTED])"));
}
