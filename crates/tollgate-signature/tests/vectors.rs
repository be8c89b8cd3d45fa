//! Every vector of `shared/vectors/signing.json`, through the pure API and through the layers
//! over real TCP (axum server with `VerifySignatureLayer`, `hyper_util` client with
//! `SignRequestLayer`), with one-byte mutations that must be refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use serde_json::Value;
use tollgate_core::{Key, KeyRing, ManualClock, Secret, Upstream};
use tollgate_signature::{
    BodyHmac, Canonical, Encoding, PreparedKeys, RequestParts, Scheme, SignRequestLayer,
    StandardWebhooks, Stripe, VerifyError, VerifySignatureLayer,
};

use common::{AnyBody, full, payload, rejection_json, s, send_raw, send_signed, serve, vectors};

/// A request as the tests build and mutate it.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn new(method: &str, path: &str, body: Vec<u8>) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn to_request(&self, addr: std::net::SocketAddr) -> Request<AnyBody> {
        let mut builder = Request::builder()
            .method(Method::from_bytes(self.method.as_bytes()).unwrap())
            .uri(format!("http://{addr}{}", self.path));
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder.body(full(self.body.clone())).unwrap()
    }

    /// The same request with one character of header `name` changed (at `index`, counted from
    /// the end when negative) to another character of the same alphabet.
    fn change_header(&self, name: &str, index: isize) -> Self {
        let mut out = self.clone();
        let (_, value) = out.headers.iter_mut().find(|(n, _)| n == name).unwrap();
        let mut bytes = value.clone().into_bytes();
        let at = if index < 0 {
            bytes.len() - index.unsigned_abs()
        } else {
            index as usize
        };
        bytes[at] = sibling(bytes[at]);
        *value = String::from_utf8(bytes).unwrap();
        out
    }

    fn change_body(&self) -> Self {
        let mut out = self.clone();
        match out.body.first_mut() {
            Some(first) => *first ^= 0x01,
            None => out.body.push(b'x'),
        }
        out
    }

    fn change_method(&self) -> Self {
        let mut out = self.clone();
        let mut bytes = out.method.into_bytes();
        let last = bytes.len() - 1;
        bytes[last] += 1;
        out.method = String::from_utf8(bytes).unwrap();
        out
    }

    fn change_path(&self) -> Self {
        let mut out = self.clone();
        let mut bytes = out.path.into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = sibling(bytes[last]);
        out.path = String::from_utf8(bytes).unwrap();
        out
    }
}

/// Another character of the same class (digits, a-f, g-z, A-Z, + and /), so that hex stays
/// hex, base64 stays base64 and digits stay digits.
fn sibling(c: u8) -> u8 {
    match c {
        b'9' => b'0',
        b'0'..=b'8' => c + 1,
        b'f' => b'a',
        b'a'..=b'e' => c + 1,
        b'z' => b'g',
        b'g'..=b'y' => c + 1,
        b'Z' => b'A',
        b'A'..=b'Y' => c + 1,
        b'+' => b'/',
        b'/' => b'+',
        other => panic!("no sibling for {:?}", other as char),
    }
}

/// The pure API's view of a `Req`.
fn verify_pure(
    scheme: &dyn Scheme,
    ring: &KeyRing,
    req: &Req,
    now: u64,
) -> Result<String, VerifyError> {
    let method = Method::from_bytes(req.method.as_bytes()).unwrap();
    let uri: Uri = req.path.parse().unwrap();
    let mut headers = HeaderMap::new();
    for (name, value) in &req.headers {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    scheme
        .verify(
            &ring.clone().into(),
            &RequestParts::new(&method, &uri, &headers, &req.body),
            now,
        )
        .map(|v| v.key_id().to_owned())
}

/// One vector through the layers: signing produces exactly `signed` (the clock fixed at
/// `now`), the vector's request verifies, and every mutation gets 401 `signature_invalid`.
async fn through_layers<S: Scheme + Clone>(
    id: &str,
    scheme: S,
    secret: Secret,
    now: u64,
    unsigned: Req,
    signed: &[(&str, &str)],
    mutations: Vec<Req>,
) {
    let ring = KeyRing::new(Key::new("vector", secret));
    let clock = ManualClock::new(now);
    let addr = serve(
        VerifySignatureLayer::new(scheme.clone(), ring.clone())
            .unwrap()
            .clock(clock.clone()),
    )
    .await;

    // Sign side: the headers the client layer adds equal the vector.
    let answer = send_signed(
        SignRequestLayer::new(
            scheme.clone(),
            ring.clone(),
            Upstream::parse(&format!("http://{addr}")).unwrap(),
        )
        .unwrap()
        .clock(clock.clone()),
        unsigned.to_request(addr),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{id}: {:?}", answer.body);
    let echo = answer.json();
    for (name, value) in signed {
        assert_eq!(echo["headers"][*name], Value::from(*value), "{id}: {name}");
    }
    assert_eq!(echo["verified"]["key_id"], "vector", "{id}");
    assert_eq!(
        echo["body_hex"],
        Value::from(hex::encode(&unsigned.body)),
        "{id}"
    );

    // Verify side: the vector's request as a provider would send it.
    let mut request = unsigned.clone();
    for (name, value) in signed {
        request = request.header(name, value);
    }
    assert_eq!(
        verify_pure(&scheme, &ring, &request, now).as_deref(),
        Ok("vector"),
        "{id}"
    );
    let answer = send_raw(request.to_request(addr)).await;
    assert_eq!(answer.status, StatusCode::OK, "{id}: {:?}", answer.body);
    assert_eq!(
        answer.json()["verified"]["scheme"],
        Value::from(scheme.name().as_ref())
    );

    for mutated in mutations {
        let answer = send_raw(mutated.to_request(addr)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{id}: {mutated:?}");
        assert_eq!(
            answer.body,
            rejection_json("signature_invalid", "the signature does not match"),
            "{id}: {mutated:?}"
        );
        assert_eq!(
            verify_pure(&scheme, &ring, &mutated, now),
            Err(VerifyError::Invalid),
            "{id}: {mutated:?}"
        );
    }
}

#[tokio::test]
async fn onekey_payload_signature() {
    let Some(vectors) = vectors() else { return };
    let list = vectors["onekey_payload_signature"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for v in list {
        let id = s(v, "id");
        let secret = Secret::from_string(s(v, "secret"));
        let body = payload(v, "payload");
        assert_eq!(
            body.len() as u64,
            v["payload_len"].as_u64().unwrap(),
            "{id}"
        );
        let expected = s(v, "expected_payload_signature");

        // Pure API.
        assert_eq!(BodyHmac::onekey().compute(&secret, &body), expected, "{id}");
        let keys = PreparedKeys::from(KeyRing::single(secret.clone()));
        let verified = BodyHmac::onekey()
            .verify_value(&keys, 0, Some(expected.as_bytes()), &body)
            .unwrap();
        assert_eq!(
            (verified.scheme(), verified.key_id()),
            ("onekey", "default")
        );
        assert_eq!(hex::encode(verified.signature()), expected);
        assert_eq!(verified.timestamp(), None);

        // Layers.
        let unsigned =
            Req::new("POST", "/cashout", body).header("content-type", "application/json");
        let signed = unsigned.clone().header("payload-signature", expected);
        let mutations = vec![
            signed.change_body(),
            signed.change_header("payload-signature", -1),
            signed.change_header("payload-signature", 0),
        ];
        through_layers(
            id,
            BodyHmac::onekey(),
            secret,
            1_700_000_000,
            unsigned,
            &[("payload-signature", expected)],
            mutations,
        )
        .await;
    }
}

#[tokio::test]
async fn github_and_x_webhook_signature() {
    let Some(vectors) = vectors() else { return };
    for v in vectors["github_webhook"].as_array().unwrap() {
        let id = s(v, "id");
        let secret = Secret::from_string(s(v, "secret"));
        let body = payload(v, "payload");
        let expected = s(v, "expected");
        assert_eq!(BodyHmac::github().compute(&secret, &body), expected, "{id}");

        let unsigned = Req::new("POST", "/hooks/github", body.clone());
        let signed = unsigned.clone().header("x-hub-signature-256", expected);
        let mutations = vec![
            signed.change_body(),
            signed.change_header("x-hub-signature-256", -1),
        ];
        through_layers(
            id,
            BodyHmac::github(),
            secret.clone(),
            1_700_000_000,
            unsigned,
            &[("x-hub-signature-256", expected)],
            mutations,
        )
        .await;

        // The same MAC without the prefix is what X-Webhook-Signature carries.
        let bare = expected.strip_prefix("sha256=").unwrap();
        assert_eq!(
            BodyHmac::x_webhook_signature().compute(&secret, &body),
            bare
        );
        let unsigned = Req::new("POST", "/hooks/generic", body);
        let signed = unsigned.clone().header("x-webhook-signature", bare);
        let mutations = vec![
            signed.change_body(),
            signed.change_header("x-webhook-signature", 3),
        ];
        through_layers(
            id,
            BodyHmac::x_webhook_signature(),
            secret,
            1_700_000_000,
            unsigned,
            &[("x-webhook-signature", bare)],
            mutations,
        )
        .await;
    }
}

#[tokio::test]
async fn method_path_body_timestamp() {
    let Some(vectors) = vectors() else { return };
    let list = vectors["method_path_body_timestamp"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for v in list {
        let id = s(v, "id");
        let secret = Secret::from_string(s(v, "secret"));
        let body = payload(v, "body");
        let (method, path, ts) = (s(v, "method"), s(v, "path"), s(v, "timestamp"));
        let now: u64 = ts.parse().unwrap();
        let mut canonical = method.as_bytes().to_vec();
        canonical.extend_from_slice(path.as_bytes());
        canonical.extend_from_slice(&body);
        canonical.extend_from_slice(ts.as_bytes());
        assert_eq!(hex::encode(&canonical), s(v, "canonical_hex"), "{id}");

        for (encoding, expected) in [
            (Encoding::Hex, s(v, "expected_hex")),
            (Encoding::Base64, s(v, "expected_base64")),
        ] {
            let scheme = Canonical::new().encoding(encoding);
            assert_eq!(
                scheme.compute(&secret, method, path, &body, now),
                expected,
                "{id}"
            );

            let unsigned = Req::new(method, path, body.clone());
            let signed = unsigned
                .clone()
                .header("x-timestamp", ts)
                .header("x-signature", expected);
            let sig_index = if encoding == Encoding::Hex { -1 } else { 5 };
            let mutations = vec![
                signed.change_body(),
                signed.change_path(),
                signed.change_method(),
                signed.change_header("x-timestamp", -1),
                signed.change_header("x-signature", sig_index),
            ];
            through_layers(
                id,
                scheme,
                secret.clone(),
                now,
                unsigned,
                &[("x-timestamp", ts), ("x-signature", expected)],
                mutations,
            )
            .await;
        }
    }
}

#[tokio::test]
async fn standard_webhooks() {
    let Some(vectors) = vectors() else { return };
    let list = vectors["standard_webhooks"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for v in list {
        let id = s(v, "id");
        let secret = StandardWebhooks::secret_from_whsec(s(v, "secret")).unwrap();
        let body = payload(v, "payload");
        let (msg_id, ts, expected) = (s(v, "msg_id"), s(v, "timestamp"), s(v, "expected"));
        let now: u64 = ts.parse().unwrap();
        assert_eq!(
            StandardWebhooks::new().compute(&secret, msg_id, now, &body),
            expected,
            "{id}"
        );

        // The whsec_ text itself is not the key: used raw, it does not verify.
        let raw_ring = KeyRing::single(Secret::from_string(s(v, "secret")));
        let unsigned = Req::new("POST", "/webhooks", body).header("webhook-id", msg_id);
        let signed = unsigned
            .clone()
            .header("webhook-timestamp", ts)
            .header("webhook-signature", expected);
        assert_eq!(
            verify_pure(&StandardWebhooks::new(), &raw_ring, &signed, now),
            Err(VerifyError::Invalid)
        );
        let mutations = vec![
            signed.change_body(),
            signed.change_header("webhook-id", -1),
            signed.change_header("webhook-timestamp", -1),
            signed.change_header("webhook-signature", 8),
        ];
        through_layers(
            id,
            StandardWebhooks::new(),
            secret,
            now,
            unsigned,
            &[("webhook-timestamp", ts), ("webhook-signature", expected)],
            mutations,
        )
        .await;
    }
}

#[tokio::test]
async fn standard_webhooks_message_id_reaches_the_extension() {
    let Some(vectors) = vectors() else { return };
    let v = &vectors["standard_webhooks"][0];
    let secret = StandardWebhooks::secret_from_whsec(s(v, "secret")).unwrap();
    let now: u64 = s(v, "timestamp").parse().unwrap();
    let addr = serve(
        VerifySignatureLayer::new(StandardWebhooks::new(), secret)
            .unwrap()
            .clock(ManualClock::new(now)),
    )
    .await;
    let req = Req::new("POST", "/", payload(v, "payload"))
        .header("webhook-id", s(v, "msg_id"))
        .header("webhook-timestamp", s(v, "timestamp"))
        .header("webhook-signature", s(v, "expected"));
    let echo = send_raw(req.to_request(addr)).await.json();
    assert_eq!(echo["verified"]["message_id"], s(v, "msg_id"));
    assert_eq!(echo["verified"]["timestamp"], now);
    assert_eq!(echo["request_timestamp"], now);
    assert_eq!(echo["verified"]["scheme"], "standard-webhooks");
}

#[tokio::test]
async fn stripe_style() {
    let Some(vectors) = vectors() else { return };
    let list = vectors["stripe_style"].as_array().unwrap();
    assert_eq!(list.len(), 2);

    let basic = &list[0];
    let id = s(basic, "id");
    let secret = Secret::from_string(s(basic, "secret"));
    let body = payload(basic, "payload");
    let ts = s(basic, "timestamp");
    let now: u64 = ts.parse().unwrap();
    let header = s(basic, "header");
    assert_eq!(Stripe::new().compute(&secret, now, &body), header);
    assert_eq!(header, format!("t={ts},v1={}", s(basic, "expected_v1")));

    let unsigned = Req::new("POST", "/stripe", body);
    let signed = unsigned.clone().header("stripe-signature", header);
    let mutations = vec![
        signed.change_body(),
        signed.change_header("stripe-signature", 11), // last digit of t
        signed.change_header("stripe-signature", -1), // last hex digit of v1
    ];
    through_layers(
        id,
        Stripe::new(),
        secret,
        now,
        unsigned,
        &[("stripe-signature", header)],
        mutations,
    )
    .await;

    // Several v1 entries, v0 and unknown keys: each rolled secret verifies alone.
    let rotation = &list[1];
    let header = s(rotation, "header");
    let body = payload(rotation, "payload");
    let now: u64 = s(rotation, "timestamp").parse().unwrap();
    for (n, secret) in rotation["verifies_with"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let key_id = format!("secret-{n}");
        let ring = KeyRing::new(Key::new(
            key_id.as_str(),
            Secret::from_string(secret.as_str().unwrap()),
        ));
        let req = Req::new("POST", "/stripe", body.clone()).header("stripe-signature", header);
        assert_eq!(
            verify_pure(&Stripe::new(), &ring, &req, now),
            Ok(key_id.clone())
        );
        let addr = serve(
            VerifySignatureLayer::new(Stripe::new(), ring)
                .unwrap()
                .clock(ManualClock::new(now)),
        )
        .await;
        let answer = send_raw(req.to_request(addr)).await;
        assert_eq!(answer.status, StatusCode::OK);
        let echo = answer.json();
        assert_eq!(echo["verified"]["key_id"], Value::from(key_id));
        // The extension carries the v1 that matched.
        let v1s: Vec<&str> = header
            .split(',')
            .filter_map(|e| e.strip_prefix("v1="))
            .collect();
        assert_eq!(echo["verified"]["signature_hex"], v1s[n]);
    }
    // A secret that is in no entry does not verify it.
    let ring = KeyRing::single(Secret::from_string("whsec_other"));
    let req = Req::new("POST", "/stripe", body).header("stripe-signature", header);
    assert_eq!(
        verify_pure(&Stripe::new(), &ring, &req, now),
        Err(VerifyError::Invalid)
    );
}

#[tokio::test]
async fn timestamp_window_cases() {
    let Some(vectors) = vectors() else { return };
    let cases = vectors["timestamp_window"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    let secret = Secret::from_string("window-secret");
    let scheme = Canonical::new();
    let clock = ManualClock::new(0);
    let addr = serve(
        VerifySignatureLayer::new(scheme.clone(), secret.clone())
            .unwrap()
            .clock(clock.clone()),
    )
    .await;
    for case in cases {
        let now = case["now"].as_u64().unwrap();
        let ts = s(case, "ts");
        clock.set(now);
        let signature = scheme.compute(&secret, "POST", "/w", b"{}", 0);
        // Sign over the timestamp text exactly as it will be sent.
        let signature = match ts.parse::<u64>() {
            Ok(ts) => scheme.compute(&secret, "POST", "/w", b"{}", ts),
            Err(_) => signature,
        };
        let req = Req::new("POST", "/w", b"{}".to_vec())
            .header("x-timestamp", ts)
            .header("x-signature", &signature);
        let answer = send_raw(req.to_request(addr)).await;
        let (status, code) = match s(case, "expect") {
            "accept" => (StatusCode::OK, None),
            "reject_too_old" | "reject_in_future" => {
                (StatusCode::UNAUTHORIZED, Some("timestamp_out_of_window"))
            }
            "reject_malformed" => (StatusCode::BAD_REQUEST, Some("timestamp_malformed")),
            other => panic!("unknown expectation {other}"),
        };
        assert_eq!(answer.status, status, "{case}");
        if let Some(code) = code {
            assert_eq!(answer.code(), code, "{case}");
        }
    }
}
