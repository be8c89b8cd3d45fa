//! The verifier's logs name each refusal's code and never a secret, a token or a header
//! value. A binary of its own: it installs a tracing subscriber, and a test on another thread
//! registering the same callsites at that moment could make it miss events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use http_body_util::Full;
use tollgate_test_support::LogCapture;

use common::verifying::*;

#[test]
fn logs_name_the_refusal_never_a_secret_or_a_header_value() {
    let logs = LogCapture::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    logs.during(|| {
        runtime.block_on(async {
            let store = Arc::new(TestStore::default());
            let layer = layer(store, 1_700_000_000);
            send(&layer, signed().body(Full::default()).unwrap()).await;
            send(&layer, signed().body(Full::default()).unwrap()).await;
            let mut forged = signed().body(Full::default()).unwrap();
            forged.headers_mut().insert(
                "x-tranzila-api-access-token",
                http::HeaderValue::from_str(&TOKEN.replace('8', "9")).unwrap(),
            );
            send(&layer, forged).await;
            let failing = Arc::new(TestStore {
                fail: true,
                ..TestStore::default()
            });
            send(
                &layer_with(failing),
                signed().body(Full::default()).unwrap(),
            )
            .await;
        });
    });
    let logs = logs.text();
    // Every refusal is logged with its code (the responder's event); the verifier's own
    // refusals also at debug level, the store's failure with its cause.
    assert!(logs.contains("code=replayed"), "{logs}");
    assert!(logs.contains("code=\"signature_invalid\""), "{logs}");
    assert!(logs.contains("code=store_unavailable"), "{logs}");
    assert!(logs.contains("nonce store failed"), "{logs}");
    for secret_or_value in [SECRET, TOKEN, &TOKEN.replace('8', "9"), NONCE_HEX] {
        assert!(!logs.contains(secret_or_value), "{logs}");
    }
}
