//! Statement 6 of the crate docs' "Security considerations": "No error, `Debug` output or log
//! line of the signing layer holds the secret, a token, user info, a path or a query; a
//! refused target is named as `scheme://host:port` only." A binary of its own: it installs a
//! tracing subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use http::{Request, header};
use http_body_util::Empty;
use tollgate_core::{BoxError, ManualClock};
use tollgate_test_support::LogCapture;
use tollgate_tranzila::{SignError, TranzilaCredentials, TranzilaSigningLayer, Upstream};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const SECRET: &str = "private_secret_demo";
const NONCE: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627";

#[test]
fn s6_errors_debug_and_logs_hold_no_secret_token_user_info_path_or_query() {
    let credentials = TranzilaCredentials::new("pub_app_key_demo", SECRET).unwrap();
    let token = credentials.access_token("1700000000", NONCE);
    let layer = TranzilaSigningLayer::new(credentials, Upstream::tranzila())
        .unwrap()
        .clock(ManualClock::new(1_700_000_000))
        .with_nonce_source(|| NONCE.to_owned());
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(|_: Request<Empty<Bytes>>| async {
            Ok::<_, BoxError>(())
        }));

    let logs = LogCapture::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut errors = Vec::new();
    logs.during(|| {
        runtime.block_on(async {
            // Signed: its token must not be logged either.
            service
                .clone()
                .oneshot(
                    Request::post("https://api.tranzila.com/v1/charge?card=hunter2")
                        .body(Empty::new())
                        .unwrap(),
                )
                .await
                .unwrap();
            for (uri, host) in [
                (
                    "https://partner:hunter2@attacker.example/hunter2?key=hunter2",
                    None,
                ),
                (
                    "https://partner:hunter2@api.tranzila.com/hunter2?key=hunter2",
                    None,
                ),
                (
                    "https://api.tranzila.com/hunter2?key=hunter2",
                    Some("partner:hunter2@attacker.example"),
                ),
                ("/hunter2?key=hunter2", None),
            ] {
                let mut request = Request::post(uri).body(Empty::<Bytes>::new()).unwrap();
                if let Some(host) = host {
                    request
                        .headers_mut()
                        .insert(header::HOST, host.parse().unwrap());
                }
                let error = service.clone().oneshot(request).await.unwrap_err();
                assert!(error.downcast_ref::<SignError>().is_some(), "{error:?}");
                errors.push(format!("{error}\n{error:?}"));
            }
        });
    });
    let logs = logs.text();
    assert!(
        logs.contains("Tranzila request not signed; not sent"),
        "{logs}"
    );
    assert!(logs.contains("https://attacker.example"), "{logs}");
    let config = Upstream::parse("https://partner:hunter2@api.tranzila.com").unwrap_err();
    let layer_debug = format!("{layer:?}");
    for text in errors.iter().chain([
        &logs,
        &config.to_string(),
        &format!("{config:?}"),
        &layer_debug,
    ]) {
        for forbidden in [
            SECRET,
            token.as_str(),
            "hunter2",
            "partner:",
            "/v1/charge",
            "key=",
        ] {
            assert!(!text.contains(forbidden), "{forbidden:?} in {text}");
        }
    }
    assert_eq!(
        config.to_string(),
        "invalid upstream `https://api.tranzila.com`: user info is not allowed"
    );
}
