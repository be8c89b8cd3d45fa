//! A verified signature names the *message*, never the key that verified it: the replay key
//! of one message is the same under every key of a rotating ring and whichever encoding or
//! case variant the scheme accepts, and different for different messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use tollgate_core::{Key, KeyRing, Secret};
use tollgate_signature::{
    BodyHmac, Canonical, MethodCase, PreparedKeys, RequestParts, Scheme, StandardWebhooks, Stripe,
};

const NOW: u64 = 1_700_000_000;

fn ring() -> KeyRing {
    KeyRing::new(Key::new("old", Secret::from_string("old-secret")).not_after(NOW + 86_400))
        .rotate(Key::new("new", Secret::from_string("new-secret")))
}

/// Signs with `secret` and verifies against the two-key ring: the replay key.
fn replay_key(scheme: &dyn Scheme, secret: &str, method: &Method, body: &'static [u8]) -> Vec<u8> {
    let uri = Uri::from_static("/v1/notify?x=1");
    let body = Bytes::from_static(body);
    let mut headers = HeaderMap::new();
    if scheme.name() == "standard-webhooks" {
        headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
    }
    let signed = scheme
        .sign(
            &Secret::from_string(secret),
            &RequestParts::new(method, &uri, &headers, &body),
            NOW,
        )
        .unwrap();
    for (name, value) in signed {
        headers.insert::<HeaderName>(name, value);
    }
    // Through the shared-bytes view (what the layer uses) and the borrowed one: same answer.
    let keys = PreparedKeys::from(ring());
    let shared = scheme
        .verify(
            &keys,
            &RequestParts::with_body_bytes(method, &uri, &headers, &body),
            NOW,
        )
        .unwrap();
    let borrowed = scheme
        .verify(
            &keys,
            &RequestParts::new(method, &uri, &headers, &body),
            NOW,
        )
        .unwrap();
    assert_eq!(shared.replay_key(), borrowed.replay_key());
    assert_eq!(shared, borrowed);
    shared.replay_key().to_vec()
}

#[test]
fn one_message_one_identity_under_every_key() {
    let schemes: Vec<Box<dyn Scheme>> = vec![
        Box::new(BodyHmac::onekey()),
        Box::new(BodyHmac::x_webhook_signature()),
        Box::new(BodyHmac::github()),
        Box::new(Canonical::new()),
        Box::new(Stripe::new()),
    ];
    for scheme in &schemes {
        let old = replay_key(scheme.as_ref(), "old-secret", &Method::POST, b"{\"a\":1}");
        let new = replay_key(scheme.as_ref(), "new-secret", &Method::POST, b"{\"a\":1}");
        assert_eq!(old, new, "{}", scheme.name());
        // A digest of what the signature covers, not the signature.
        assert_eq!(old.len(), 32, "{}", scheme.name());
        let other = replay_key(scheme.as_ref(), "old-secret", &Method::POST, b"{\"a\":2}");
        assert_ne!(old, other, "{}", scheme.name());
    }
}

#[test]
fn standard_webhooks_names_the_message_by_its_id() {
    // Standard Webhooks keys are raw bytes; any secret works for the identity.
    let key = replay_key(&StandardWebhooks::new(), "old-secret", &Method::POST, b"{}");
    assert_eq!(key, b"msg_1");
}

/// The canonical scheme normalises the method's case when asked: `POST` and `post` then sign
/// the same bytes, and are one message (else flipping the case would be a second claim).
#[test]
fn canonical_method_case_variants_are_one_message() {
    let scheme = Canonical::new().method_case(MethodCase::Upper);
    let upper = replay_key(&scheme, "old-secret", &Method::POST, b"{}");
    let lower = replay_key(
        &scheme,
        "new-secret",
        &Method::from_bytes(b"post").unwrap(),
        b"{}",
    );
    assert_eq!(upper, lower);
    let delimited = Canonical::new().delimited();
    assert_ne!(
        replay_key(&delimited, "old-secret", &Method::POST, b"{}"),
        upper
    );
}
