//! Hostile input: any header bytes a client can send, fed to every scheme's `verify`, never
//! panic, never verify without the key, and never produce an error that holds the expected
//! signature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use proptest::prelude::*;
use tollgate_core::{Key, KeyRing, Secret};
use tollgate_signature::{
    BodyHmac, Canonical, Encoding, PreparedKeys, RequestParts, Scheme, StandardWebhooks, Stripe,
    VerifyError,
};

const T: u64 = 1_700_000_000;
const SECRET: &str = "hostile-test-secret";

fn schemes() -> Vec<Box<dyn Scheme>> {
    vec![
        Box::new(BodyHmac::onekey()),
        Box::new(BodyHmac::x_webhook_signature()),
        Box::new(BodyHmac::github()),
        Box::new(BodyHmac::onekey().encoding(Encoding::Base64)),
        Box::new(Canonical::new()),
        Box::new(Canonical::new().delimited().encoding(Encoding::Base64)),
        Box::new(StandardWebhooks::new()),
        Box::new(Stripe::new()),
    ]
}

/// Every header any scheme reads.
const HEADERS: [&str; 8] = [
    "payload-signature",
    "x-webhook-signature",
    "x-hub-signature-256",
    "x-signature",
    "x-timestamp",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

fn ring() -> KeyRing {
    KeyRing::new(Key::new("old", Secret::from_string("old-secret")).not_after(T))
        .rotate(Key::new("new", Secret::from_string(SECRET)))
}

/// Bytes a header value can hold (anything but controls other than tab, and DEL), as hyper
/// would hand them over: any length, obs-text included.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..160),
        // Near-valid shapes: the characters the parsers look for.
        proptest::collection::vec(
            prop::sample::select(b"tv01a=, ;.+-/AZaf9sh256_\t\x80\xff".to_vec()),
            0..160
        ),
        // A real-looking prefix with a hostile tail.
        (
            prop::sample::select(vec![
                &b"t=1700000000,v1="[..],
                b"v1,",
                b"sha256=",
                b"v1,AAAA v1,",
                b"t=1700000000, v1=",
            ]),
            proptest::collection::vec(any::<u8>(), 0..100)
        )
            .prop_map(|(head, tail)| [head, &tail[..]].concat()),
    ]
    .prop_map(|bytes| {
        bytes
            .into_iter()
            .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
            .collect()
    })
}

fn expected_signatures() -> Vec<String> {
    let secret = Secret::from_string(SECRET);
    let sw = StandardWebhooks::new().compute(&secret, "msg_1", T, b"{}");
    vec![
        BodyHmac::onekey().compute(&secret, b"{}"),
        Canonical::new().compute(&secret, "POST", "/", b"{}", T),
        sw[3..].to_owned(),
        Stripe::new().compute(&secret, T, b"{}")[16..].to_owned(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_header_bytes_are_refused_without_panic(
        values in proptest::collection::vec(header_bytes(), HEADERS.len()),
        present in proptest::collection::vec(any::<bool>(), HEADERS.len()),
        twice in any::<Option<prop::sample::Index>>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        now in prop_oneof![Just(T), any::<u64>()],
    ) {
        let mut headers = HeaderMap::new();
        for ((name, value), present) in HEADERS.iter().zip(&values).zip(&present) {
            if *present {
                headers.append(
                    HeaderName::from_static(name),
                    HeaderValue::from_bytes(value).unwrap(),
                );
            }
        }
        if let Some(index) = twice {
            let name = HEADERS[index.index(HEADERS.len())];
            headers.append(HeaderName::from_static(name), HeaderValue::from_static("x"));
        }
        let uri = Uri::from_static("/");
        let ring = PreparedKeys::from(ring());
        let leaks = expected_signatures();
        for scheme in schemes() {
            let request = RequestParts::new(&Method::POST, &uri, &headers, &body);
            let err = match scheme.verify(&ring, &request, now) {
                Ok(verified) => panic!("{scheme:?} verified random bytes: {verified:?}"),
                Err(err) => err,
            };
            let rejection = err.to_rejection();
            prop_assert!(matches!(rejection.status().as_u16(), 400 | 401), "{err:?}");
            let texts = [err.to_string(), format!("{err:?}"), rejection.to_json()];
            for text in &texts {
                prop_assert!(!text.contains(SECRET));
                for leak in &leaks {
                    prop_assert!(!text.contains(leak.as_str()), "{text}");
                }
            }
        }
    }

    #[test]
    fn stripe_noise_around_a_valid_signature_still_verifies(
        before in proptest::collection::vec("[a-z0-9]{0,3}(=[a-zA-Z0-9]{0,70})?", 0..4),
        after in proptest::collection::vec("[a-z0-9]{0,3}(=[a-zA-Z0-9]{0,70})?", 0..4),
        spaces in " {0,2}",
    ) {
        // Skip noise that is itself a `t`: exactly one `t` is required.
        prop_assume!(before.iter().chain(&after).all(|item| !item.starts_with("t=")));
        let secret = Secret::from_string(SECRET);
        let good = Stripe::new().compute(&secret, T, b"{}");
        let mut items = before;
        items.extend(good.split(',').map(str::to_owned));
        items.extend(after.iter().cloned());
        let header = items.join(&format!(",{spaces}"));
        let mut headers = HeaderMap::new();
        headers.insert("stripe-signature", HeaderValue::from_str(&header).unwrap());
        let uri = Uri::from_static("/");
        let verified = Stripe::new()
            .verify(&ring().into(), &RequestParts::new(&Method::POST, &uri, &headers, b"{}"), T);
        prop_assert!(verified.is_ok(), "{header}: {verified:?}");
    }

    #[test]
    fn standard_webhooks_noise_around_a_valid_entry_still_verifies(
        before in proptest::collection::vec("[a-z0-9,!+/=]{1,50}", 0..4),
        after in proptest::collection::vec("[a-z0-9,!+/=]{1,50}", 0..4),
    ) {
        let secret = Secret::from_string(SECRET);
        let good = StandardWebhooks::new().compute(&secret, "msg_1", T, b"{}");
        let mut entries = before;
        entries.push(good);
        entries.extend(after.iter().cloned());
        let header = entries.join(" ");
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
        headers.insert("webhook-timestamp", HeaderValue::from(T));
        headers.insert("webhook-signature", HeaderValue::from_str(&header).unwrap());
        let uri = Uri::from_static("/");
        let verified = StandardWebhooks::new()
            .verify(&ring().into(), &RequestParts::new(&Method::POST, &uri, &headers, b"{}"), T);
        prop_assert!(verified.is_ok(), "{header}: {verified:?}");
    }
}

#[test]
fn verify_error_display_names_no_signature() {
    // The one error that names something the client sent is `Missing`, and it names a header.
    let err = VerifyError::Missing {
        header: HeaderName::from_static("stripe-signature"),
    };
    assert_eq!(err.to_string(), "the `stripe-signature` header is missing");
}
