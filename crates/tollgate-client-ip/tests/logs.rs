//! The client-IP layer's log line for a missing peer, in a binary of its own: `tracing`
//! caches a callsite's interest process-wide, and tests of the same binary running on other
//! threads without a subscriber could race this one's capture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use http::StatusCode;
use tollgate_client_ip::{ExtractError, ResolveClientIpLayer};
use tollgate_test_support::LogCapture;
use tower::{Layer, ServiceExt};

use common::{echo_ip, request};

#[test]
fn missing_peer_logs_a_clear_error_line() {
    let logs = LogCapture::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    logs.during(|| {
        runtime.block_on(async {
            let response = ResolveClientIpLayer::remote_addr()
                .continue_on_failure()
                .layer(echo_ip())
                .oneshot(request(None, &[]))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        });
    });
    let logs = logs.text();
    let reason = ExtractError::MissingPeer.to_string();
    assert!(
        reason.starts_with("no peer address reached the client-IP extraction: "),
        "{reason}"
    );
    assert!(
        logs.contains(&format!(
            "ERROR tollgate: client IP misconfigured: {reason} source=remote-addr"
        )),
        "{logs}"
    );
}
