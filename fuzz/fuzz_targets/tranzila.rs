//! The four Tranzila headers through `TranzilaVerifyLayer` (tollgate-tranzila), with its
//! built-in nonce claim on a memory store.
//!
//! Input lines: 1. `x-tranzila-api-app-key`, 2. `x-tranzila-api-request-time`,
//! 3. `x-tranzila-api-nonce`, 4. `x-tranzila-api-access-token`, a template where `@` becomes
//! the right token for these headers (lowercase hex) and `%` the same in uppercase, then more
//! `name: value` headers (repeats make several fields).
//!
//! Oracles:
//! - the answer equals the documented order of checks, modelled here (400
//!   `header_malformed` / `nonce_malformed` / `timestamp_malformed`, 401
//!   `tranzila_unknown_app_key` / `timestamp_out_of_window` / `signature_invalid`, 200), with a
//!   JSON refusal body; the token is computed here with the `hmac` crate from the PHP
//!   reference (`hash_hmac('sha256', $appKey, $secret . $time . $nonce)`), independently of
//!   the crate;
//! - accepted ⇒ the app key is a configured one and the token is its HMAC; the inner service
//!   runs exactly once; the same headers again are 401 `replayed` (the nonce is spent).
#![no_main]

use std::cell::Cell;
use std::rc::Rc;

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use tollgate_core::ManualClock;
use tollgate_fuzz::{
    assert_json_refusal, block_on, body_bytes, count, headers, hmac_sha256, lines,
};
use tollgate_replay::MemoryNonceStore;
use tollgate_tranzila::{TranzilaCredentials, TranzilaVerifyLayer};
use tower_layer::Layer;
use tower_service::Service;

const NOW: u64 = 1_700_000_000;
const CREDENTIALS: [(&str, &str); 2] = [
    ("fuzz-app", "fuzz-secret-1"),
    ("other-app", "fuzz-secret-2"),
];
const NAMES: [&str; 4] = [
    "x-tranzila-api-app-key",
    "x-tranzila-api-request-time",
    "x-tranzila-api-nonce",
    "x-tranzila-api-access-token",
];

fn secret_of(app_key: &[u8]) -> Option<&'static str> {
    CREDENTIALS
        .iter()
        .find(|(key, _)| key.as_bytes() == app_key)
        .map(|(_, secret)| *secret)
}

fn token(app_key: &[u8], secret: &str, time: &[u8], nonce: &[u8]) -> [u8; 32] {
    let key = [secret.as_bytes(), time, nonce].concat();
    hmac_sha256(&key, &[app_key])
}

fn model(h: &HeaderMap) -> Option<(StatusCode, &'static str)> {
    let mut values = Vec::new();
    for name in NAMES {
        let ok = count(h, name) == 1
            && !h[name].is_empty()
            && h[name].as_bytes().iter().all(|b| (b'!'..=b'~').contains(b));
        if !ok {
            return Some((StatusCode::BAD_REQUEST, "header_malformed"));
        }
        values.push(h[name].as_bytes());
    }
    let (app_key, time, nonce, sent) = (values[0], values[1], values[2], values[3]);
    if nonce.len() != 80 || !nonce.iter().all(u8::is_ascii_hexdigit) {
        return Some((StatusCode::BAD_REQUEST, "nonce_malformed"));
    }
    let text = std::str::from_utf8(time).unwrap_or_default();
    let Some(ts) = text.parse::<u64>().ok().filter(|t| t.to_string() == text) else {
        return Some((StatusCode::BAD_REQUEST, "timestamp_malformed"));
    };
    let mut decoded = [0u8; 32];
    if sent.len() != 64 || hex::decode_to_slice(sent, &mut decoded).is_err() {
        return Some((StatusCode::BAD_REQUEST, "header_malformed"));
    }
    let Some(secret) = secret_of(app_key) else {
        return Some((StatusCode::UNAUTHORIZED, "tranzila_unknown_app_key"));
    };
    if ts.abs_diff(NOW) > 300 {
        return Some((StatusCode::UNAUTHORIZED, "timestamp_out_of_window"));
    }
    if decoded != token(app_key, secret, time, nonce) {
        return Some((StatusCode::UNAUTHORIZED, "signature_invalid"));
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let lines = lines(data);
    let line = |i: usize| lines.get(i).copied().unwrap_or_default().trim_ascii();
    let (app_key, time, nonce) = (line(0), line(1), line(2));
    let secret = secret_of(app_key).unwrap_or(CREDENTIALS[0].1);
    let right = hex::encode(token(app_key, secret, time, nonce));
    let mut sent = Vec::new();
    for &b in line(3) {
        match b {
            b'@' => sent.extend_from_slice(right.as_bytes()),
            b'%' => sent.extend_from_slice(right.to_ascii_uppercase().as_bytes()),
            b => sent.push(b),
        }
    }
    let mut h = HeaderMap::new();
    for (name, value) in NAMES.iter().zip([app_key, time, nonce, &sent[..]]) {
        if let Ok(value) = HeaderValue::from_bytes(value.trim_ascii()) {
            h.append(HeaderName::from_static(name), value);
        }
    }
    for (name, value) in &headers(lines.iter().skip(4).copied()) {
        h.append(name.clone(), value.clone());
    }
    let expect = model(&h);

    let credentials: Vec<TranzilaCredentials> = CREDENTIALS
        .iter()
        .map(|(key, secret)| TranzilaCredentials::new(*key, *secret).expect("fixed credentials"))
        .collect();
    let store = MemoryNonceStore::new(1024).with_clock(ManualClock::new(NOW));
    let layer = TranzilaVerifyLayer::new(credentials, store)
        .expect("a valid configuration")
        .clock(ManualClock::new(NOW));
    let calls = Rc::new(Cell::new(0u32));
    let seen = calls.clone();
    let mut service = layer.layer(tollgate_fuzz::service_fn(move |_request: Request<()>| {
        seen.set(seen.get() + 1);
        Response::new("handled".to_owned())
    }));
    for attempt in 0..2 {
        let mut request = Request::new(());
        *request.headers_mut() = h.clone();
        let response = block_on(service.call(request)).unwrap_or_else(|never| match never {});
        let (parts, body) = body_bytes(response);
        let want = match (expect, attempt) {
            (Some(refusal), _) => Some(refusal),
            (None, 0) => None,
            (None, _) => Some((StatusCode::UNAUTHORIZED, "replayed")),
        };
        match want {
            None => {
                assert_eq!(
                    parts.status,
                    StatusCode::OK,
                    "{h:?}: {}",
                    String::from_utf8_lossy(&body)
                );
                assert_eq!(&body[..], b"handled");
            }
            Some((status, code)) => {
                assert_eq!(
                    parts.status,
                    status,
                    "{h:?}: {}",
                    String::from_utf8_lossy(&body)
                );
                let got = assert_json_refusal(
                    &body,
                    &[
                        "header_malformed",
                        "nonce_malformed",
                        "timestamp_malformed",
                        "tranzila_unknown_app_key",
                        "timestamp_out_of_window",
                        "signature_invalid",
                        "replayed",
                    ],
                );
                assert_eq!(got, code, "{h:?}");
            }
        }
    }
    assert_eq!(calls.get(), u32::from(expect.is_none()));
});
