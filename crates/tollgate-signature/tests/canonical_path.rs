//! "Security considerations", canonical path: the signer signs the path that is sent. A URI
//! with no path (`http://h?x=1`, `http://h`) is sent with the path `/`, so it is signed with
//! `/` too, and the verifier reads the same. Signer and verifier together, over TCP: a
//! `hyper_util` client with `SignRequestLayer(Canonical)` and an axum server with
//! `VerifySignatureLayer(Canonical)` on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use http::{Method, Request, StatusCode, Uri};
use tollgate_core::{KeyRing, ManualClock, Secret, Upstream};
use tollgate_signature::{Canonical, RequestParts, Scheme, SignRequestLayer, VerifySignatureLayer};

use common::{full, send_signed, serve};

const T: u64 = 1_700_000_000;

fn ring() -> KeyRing {
    KeyRing::single(Secret::from_string("canonical-secret"))
}

/// Security considerations, "The canonical path is the path sent": "With [`Canonical`], a URI
/// with an empty path is signed with the path `/`, as HTTP sends it: `http://h?x=1` signs
/// `/?x=1` and `http://h` signs `/`, so the verifier (which sees the request line) accepts
/// it." Over TCP, for the default, delimited and path-only layouts.
#[tokio::test]
async fn an_empty_path_is_signed_as_sent_and_verifies_over_tcp() {
    for scheme in [
        Canonical::new(),
        Canonical::new().delimited(),
        Canonical::new().include_query(false),
    ] {
        let addr = serve(
            VerifySignatureLayer::new(scheme.clone(), ring())
                .unwrap()
                .clock(ManualClock::new(T)),
        )
        .await;
        for (suffix, on_the_wire) in [
            ("?x=1", "/?x=1"),
            ("", "/"),
            ("/", "/"),
            ("/?x=1", "/?x=1"),
            ("?", "/?"),
            ("?a=1&b=%20", "/?a=1&b=%20"),
            ("/v1/payments?status=paid", "/v1/payments?status=paid"),
        ] {
            let upstream = Upstream::parse(&format!("http://{addr}")).unwrap();
            let layer = SignRequestLayer::new(scheme.clone(), ring(), upstream)
                .unwrap()
                .clock(ManualClock::new(T));
            let request = Request::post(format!("http://{addr}{suffix}"))
                .header("content-type", "application/json")
                .body(full(r#"{"amount":1}"#))
                .unwrap();
            let answer = send_signed(layer, request).await;
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{scheme:?} http://{addr}{suffix}: {:?}",
                answer.body
            );
            assert_eq!(answer.json()["uri"], on_the_wire, "{suffix}");
        }
    }
}

/// The same statement at the scheme level: what `sign` covers for the absolute form is what
/// `verify` covers for the origin form on the wire.
#[test]
fn absolute_and_origin_forms_sign_the_same_path() {
    let secret = Secret::from_string("canonical-secret");
    let scheme = Canonical::new();
    for (absolute, origin) in [
        ("http://h?x=1", "/?x=1"),
        ("http://h", "/"),
        ("https://h:8443?x=1", "/?x=1"),
        ("http://h?", "/?"),
    ] {
        let absolute: Uri = absolute.parse().unwrap();
        let headers = http::HeaderMap::new();
        let added = scheme
            .sign(
                &secret,
                &RequestParts::new(&Method::GET, &absolute, &headers, b""),
                T,
            )
            .unwrap();
        let signature = added
            .iter()
            .find(|(name, _)| name == "x-signature")
            .map(|(_, value)| value.to_str().unwrap().to_owned())
            .unwrap();
        assert_eq!(
            signature,
            scheme.compute(&secret, "GET", origin, b"", T),
            "{absolute} must sign {origin}"
        );
    }
}
