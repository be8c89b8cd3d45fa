//! Every signature header format of tollgate-signature: lowercase hex (`Payload-Signature`),
//! base64 (`X-Webhook-Signature` with `Encoding::Base64`), GitHub's `sha256=<hex>`, Stripe's
//! `t=<ts>,v1=<hex>,...`, Standard Webhooks' space-separated `v1,<base64>` list with
//! `webhook-id` / `webhook-timestamp`, and the canonical Method + Path + Body + Timestamp
//! scheme with `x-timestamp`.
//!
//! Input lines: 1. the scheme (`onekey`, `base64`, `github`, `stripe`, `standard-webhooks`,
//! `canonical`; anything else picks one by its first byte), 2. the signature header value,
//! a template where `@` becomes the right signature (current key) for this request, `$` the
//! signature under an expired key and `#` the timestamp text, 3. the timestamp text (the
//! `webhook-timestamp` / `x-timestamp` header), 4. the `webhook-id`, 5. `METHOD PATH`; the
//! remaining lines are the body.
//!
//! Oracles (signatures computed here with the `hmac` crate, independently of the schemes):
//! - accepted ⇒ the key is the current one (an expired key never verifies), and the header
//!   carries the right MAC for exactly this body (and id, timestamp, method, path), in the
//!   scheme's one spelling; for timestamped schemes the timestamp is the one signed, inside
//!   the ±300 s window, and its decimal text is the text sent;
//! - the right signature in the canonical header shape, with a timestamp in the window, is
//!   accepted (no false refusal);
//! - a refusal is one of the documented rejections (400 `signature_malformed` /
//!   `timestamp_malformed`, 401 `signature_missing` / `signature_invalid` /
//!   `timestamp_out_of_window`).
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use tollgate_core::{Key, KeyRing, Secret};
use tollgate_fuzz::{b64, hmac_sha256, lines, text};
use tollgate_signature::{
    BodyHmac, Canonical, Encoding, PreparedKeys, RequestParts, Scheme, StandardWebhooks, Stripe,
};

const NOW: u64 = 1_700_000_000;
const NEW: &[u8] = b"fuzz-current-secret";
const OLD: &[u8] = b"fuzz-expired-secret";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    OneKey,
    Base64,
    GitHub,
    Stripe,
    StandardWebhooks,
    Canonical,
}

const KINDS: [Kind; 6] = [
    Kind::OneKey,
    Kind::Base64,
    Kind::GitHub,
    Kind::Stripe,
    Kind::StandardWebhooks,
    Kind::Canonical,
];

impl Kind {
    fn pick(line: &[u8]) -> Self {
        match line {
            b"onekey" => Kind::OneKey,
            b"base64" => Kind::Base64,
            b"github" => Kind::GitHub,
            b"stripe" => Kind::Stripe,
            b"standard-webhooks" => Kind::StandardWebhooks,
            b"canonical" => Kind::Canonical,
            _ => KINDS[usize::from(line.first().copied().unwrap_or(0)) % KINDS.len()],
        }
    }

    fn header(self) -> &'static str {
        match self {
            Kind::OneKey => "payload-signature",
            Kind::Base64 => "x-webhook-signature",
            Kind::GitHub => "x-hub-signature-256",
            Kind::Stripe => "stripe-signature",
            Kind::StandardWebhooks => "webhook-signature",
            Kind::Canonical => "x-signature",
        }
    }

    /// The header value a correct signer writes, with `@` for the signature, `#` for the
    /// timestamp.
    fn canonical_template(self) -> &'static [u8] {
        match self {
            Kind::OneKey | Kind::Base64 | Kind::Canonical => b"@",
            Kind::GitHub => b"sha256=@",
            Kind::Stripe => b"t=#,v1=@",
            Kind::StandardWebhooks => b"v1,@",
        }
    }

    fn scheme(self) -> Box<dyn Scheme> {
        match self {
            Kind::OneKey => Box::new(BodyHmac::onekey()),
            Kind::Base64 => Box::new(BodyHmac::x_webhook_signature().encoding(Encoding::Base64)),
            Kind::GitHub => Box::new(BodyHmac::github()),
            Kind::Stripe => Box::new(Stripe::new()),
            Kind::StandardWebhooks => Box::new(StandardWebhooks::new()),
            Kind::Canonical => Box::new(Canonical::new()),
        }
    }
}

struct Message<'a> {
    ts: &'a [u8],
    id: &'a [u8],
    method: &'a Method,
    path: String,
    body: &'a [u8],
}

/// The signature text under `key`, by the scheme's published recipe, for the timestamp text
/// `ts`.
fn expected(kind: Kind, key: &[u8], m: &Message<'_>, ts: &[u8]) -> String {
    match kind {
        Kind::OneKey | Kind::GitHub => hex::encode(hmac_sha256(key, &[m.body])),
        Kind::Base64 => b64(&hmac_sha256(key, &[m.body])),
        Kind::Stripe => hex::encode(hmac_sha256(key, &[ts, b".", m.body])),
        Kind::StandardWebhooks => b64(&hmac_sha256(key, &[m.id, b".", ts, b".", m.body])),
        Kind::Canonical => hex::encode(hmac_sha256(
            key,
            &[m.method.as_str().as_bytes(), m.path.as_bytes(), m.body, ts],
        )),
    }
}

fn fill(template: &[u8], sig: &str, old: &str, ts: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + 64);
    for &b in template {
        match b {
            b'@' => out.extend_from_slice(sig.as_bytes()),
            b'$' => out.extend_from_slice(old.as_bytes()),
            b'#' => out.extend_from_slice(ts),
            b => out.push(b),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let lines = lines(data);
    let line = |i: usize| lines.get(i).copied().unwrap_or_default();
    let kind = Kind::pick(line(0));
    let template = line(1);
    let request_line = text(line(4));
    let (method, path) = request_line
        .split_once(' ')
        .unwrap_or(("POST", "/webhooks"));
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST);
    let uri = path
        .parse::<Uri>()
        .ok()
        .filter(|u| u.path().starts_with('/') && u.scheme().is_none())
        .unwrap_or_else(|| Uri::from_static("/webhooks"));
    let body = lines
        .get(5..)
        .map(|rest| rest.join(&b'\n'))
        .unwrap_or_default();
    let m = Message {
        ts: line(2),
        id: line(3),
        method: &method,
        path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        body: &body,
    };

    let sig = expected(kind, NEW, &m, m.ts);
    let old = expected(kind, OLD, &m, m.ts);
    let value = fill(template, &sig, &old, m.ts);

    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &[u8]| {
        if let Ok(value) = HeaderValue::from_bytes(value.trim_ascii()) {
            headers.append(HeaderName::from_static(name), value);
        }
    };
    put(kind.header(), &value);
    match kind {
        Kind::StandardWebhooks => {
            put("webhook-id", m.id);
            put("webhook-timestamp", m.ts);
        }
        Kind::Canonical => put("x-timestamp", m.ts),
        _ => {}
    }

    let ring = KeyRing::new(Key::new("old", Secret::from_bytes(OLD)).not_after(NOW - 1))
        .rotate(Key::new("new", Secret::from_bytes(NEW)));
    let keys = PreparedKeys::new(ring);
    let scheme = kind.scheme();
    let result = scheme.verify(
        &keys,
        &RequestParts::new(&method, &uri, &headers, &body),
        NOW,
    );
    let sent = headers.get(kind.header()).map(HeaderValue::as_bytes);

    match &result {
        Ok(verified) => {
            assert_eq!(
                verified.key_id(),
                "new",
                "{kind:?}: a key other than the current one"
            );
            let sent = sent.expect("a verified request carries its signature header");
            match kind {
                Kind::OneKey | Kind::Base64 => assert_eq!(sent, sig.as_bytes(), "{kind:?}"),
                Kind::GitHub => assert_eq!(sent, format!("sha256={sig}").as_bytes(), "{kind:?}"),
                Kind::Stripe | Kind::StandardWebhooks | Kind::Canonical => {
                    let ts = verified
                        .timestamp()
                        .expect("a timestamped scheme records it");
                    assert!(ts.abs_diff(NOW) <= 300, "{kind:?}: {ts} outside the window");
                    let ts_text = ts.to_string();
                    let right = expected(kind, NEW, &m, ts_text.as_bytes());
                    match kind {
                        Kind::Stripe => {
                            let elements: Vec<&[u8]> =
                                sent.split(|b| *b == b',').map(<[u8]>::trim_ascii).collect();
                            assert!(
                                elements.contains(&format!("v1={right}").as_bytes()),
                                "stripe: no v1 element carries the right MAC"
                            );
                            assert!(
                                elements.contains(&format!("t={ts_text}").as_bytes()),
                                "stripe: the signed t is not the one sent"
                            );
                        }
                        Kind::StandardWebhooks => {
                            assert!(
                                sent.split(|b| *b == b' ')
                                    .any(|e| e == format!("v1,{right}").as_bytes()),
                                "standard webhooks: no v1 entry carries the right MAC"
                            );
                            assert_eq!(headers["webhook-timestamp"], ts_text.as_str());
                            assert_eq!(headers["webhook-id"].as_bytes(), m.id);
                        }
                        _ => {
                            assert_eq!(sent, right.as_bytes(), "canonical");
                            assert_eq!(headers["x-timestamp"], ts_text.as_str());
                        }
                    }
                }
            }
        }
        Err(err) => {
            let rejection = err.to_rejection();
            let allowed: &[(StatusCode, &str)] = &[
                (StatusCode::BAD_REQUEST, "signature_malformed"),
                (StatusCode::BAD_REQUEST, "timestamp_malformed"),
                (StatusCode::UNAUTHORIZED, "signature_missing"),
                (StatusCode::UNAUTHORIZED, "signature_invalid"),
                (StatusCode::UNAUTHORIZED, "timestamp_out_of_window"),
            ];
            assert!(
                allowed.contains(&(rejection.status(), rejection.code())),
                "{kind:?}: undocumented refusal {} {}",
                rejection.status(),
                rejection.code()
            );
        }
    }

    // No false refusal: the canonical shape with the right signature and a timestamp
    // inside the window (its one decimal spelling) verifies.
    let ts_ok = std::str::from_utf8(m.ts)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
        .is_some_and(|t| t.to_string().as_bytes() == m.ts && t.abs_diff(NOW) <= 300);
    let needs_ts = matches!(
        kind,
        Kind::Stripe | Kind::StandardWebhooks | Kind::Canonical
    );
    let id_ok = kind != Kind::StandardWebhooks
        || (!m.id.is_empty() && HeaderValue::from_bytes(m.id).is_ok() && m.id.trim_ascii() == m.id);
    if template == kind.canonical_template() && (ts_ok || !needs_ts) && id_ok {
        assert!(
            result.as_ref().is_ok_and(|v| v.key_id() == "new"),
            "{kind:?}: the right signature is refused: {result:?}"
        );
    }
});
