//! The README's "Rotating keys", "Metrics" and "Running several instances" blocks, kept
//! identical to the README (`sections/*.rs` are the blocks byte for byte) and exercised.
//!
//! - `readme_*_block_is_compiled`: the first `rust` block under each heading is the file in
//!   `sections/`, so the README cannot show code that does not build.
//! - `rotation_swaps_the_key_of_a_built_layer`: the "Rotating keys" functions on a real
//!   verifier: the old key verifies, then after `revoke_old_key` its very next use is 401 while the
//!   new key verifies, and a blank secret is never installed.
//! - The "Metrics" block is in `metrics_section.rs`: its test installs the process's one
//!   recorder and counts exactly, so no other test may share its process.
//! - The "Slow clients" block (under "Deployment notes") is exercised over TCP by
//!   `tests/tests/hostile_clients.rs` of the workspace, which includes the same file.
//! - The "Running several instances" block is compiled only (it needs Sentinels); the
//!   replay crate's `redis_sentinel` tests run the same calls against real ones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// README code is written as a user's module: `pub` items, some only compiled here.
#[allow(unreachable_pub, dead_code)]
#[path = "sections/rotating_keys.rs"]
mod rotating_keys;
#[allow(unreachable_pub, dead_code)]
#[path = "sections/several_instances.rs"]
mod several_instances;
#[allow(unreachable_pub, dead_code)]
#[path = "sections/slow_clients.rs"]
mod slow_clients;

use std::convert::Infallible;

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tollgate::core::{Key, KeyRing, KeyRingHandle, Secret};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const README: &str = include_str!("../../../README.md");

/// The lines of the first ```rust block after the line `heading` (fences excluded).
fn block(heading: &str) -> String {
    let mut lines = README.lines().skip_while(|line| *line != heading);
    assert!(lines.next().is_some(), "README has no `{heading}` heading");
    let mut lines = lines.skip_while(|line| *line != "```rust");
    assert!(lines.next().is_some(), "no ```rust block under `{heading}`");
    let mut out = String::new();
    for line in lines.take_while(|line| *line != "```") {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn assert_same(heading: &str, file: &str, compiled: &str) {
    let readme = block(heading);
    assert!(
        readme == compiled,
        "README.md's block under \"{heading}\" and tests/readme/tests/sections/{file} differ: \
         copy one onto the other (and run rustfmt).\n--- README\n{readme}\n--- {file}\n{compiled}"
    );
}

#[test]
fn readme_slow_clients_block_is_compiled() {
    assert_same(
        "## Deployment notes",
        "slow_clients.rs",
        include_str!("sections/slow_clients.rs"),
    );
}

#[test]
fn readme_rotating_keys_block_is_compiled() {
    assert_same(
        "## Rotating keys",
        "rotating_keys.rs",
        include_str!("sections/rotating_keys.rs"),
    );
}

#[test]
fn readme_several_instances_block_is_compiled() {
    assert_same(
        "## Running several instances",
        "several_instances.rs",
        include_str!("sections/several_instances.rs"),
    );
}

/// Hex HMAC-SHA256 of `body`: an `X-Webhook-Signature`.
fn sign(body: &str, secret: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn webhook(uri: &str, body: &'static str, signature: &str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("x-webhook-signature", signature)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test]
async fn rotation_swaps_the_key_of_a_built_layer() {
    let keys = KeyRingHandle::new(KeyRing::new(Key::new(
        "2026-08",
        Secret::from_string("old-secret"),
    )));
    let service = ServiceBuilder::new()
        .layer(rotating_keys::webhook_layer(&keys).unwrap())
        .service(service_fn(|_request| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }));
    let status = |signature: String| {
        let service = service.clone();
        async move {
            let request = webhook("/webhooks", "{\"id\":1}", &signature);
            service.oneshot(request).await.unwrap().status()
        }
    };
    let body = "{\"id\":1}";

    assert_eq!(status(sign(body, "old-secret")).await, StatusCode::OK);
    assert_eq!(
        status(sign(body, "new-secret")).await,
        StatusCode::UNAUTHORIZED
    );

    rotating_keys::deploy_new_key(&keys, Secret::from_string("new-secret")).unwrap();
    // Both verify while the sender moves to the new key.
    assert_eq!(status(sign(body, "new-secret")).await, StatusCode::OK);
    assert_eq!(status(sign(body, "old-secret")).await, StatusCode::OK);
    rotating_keys::revoke_old_key(&keys).unwrap();
    assert_eq!(status(sign(body, "new-secret")).await, StatusCode::OK);
    assert_eq!(
        status(sign(body, "old-secret")).await,
        StatusCode::UNAUTHORIZED,
        "the revoked key's very next use must be refused"
    );
    assert_eq!(
        keys.load()
            .keys()
            .iter()
            .map(|key| key.id())
            .collect::<Vec<_>>(),
        ["2026-11"]
    );

    // A blank secret is never installed: the ring in place stays.
    assert!(
        rotating_keys::deploy_new_key(&keys, Secret::from_string(" ")).is_err(),
        "a blank signing key must be refused"
    );
    assert_eq!(keys.load().signing_key().id(), "2026-11");
    assert_eq!(status(sign(body, "new-secret")).await, StatusCode::OK);
}
