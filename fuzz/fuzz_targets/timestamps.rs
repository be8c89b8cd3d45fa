//! Timestamps and nonces: `parse_unix_seconds` and `TimestampWindow` (tollgate-core), and the
//! header-based `ReplayGuardLayer` (tollgate-replay) with a memory store.
//!
//! Input lines: 1. the timestamp header, 2. the nonce header, 3. the key id header, then
//! more `name: value` headers (repeats of the same names make them several).
//!
//! Oracles:
//! - `parse_unix_seconds` accepts exactly the one decimal spelling of a `u64` (ASCII digits,
//!   no sign, no leading zero but in `0`), and its value is that number;
//! - `TimestampWindow::check` equals `|now - ts| <= tolerance` in wide arithmetic, with the
//!   documented error (`TooOld { age }` / `InFuture { ahead }`);
//! - the guard answers exactly the documented order of checks (400 `timestamp_malformed`,
//!   401 `timestamp_out_of_window`, 400 `nonce_malformed`, 400 `header_malformed`, else the
//!   inner service), its JSON body parses, the inner service runs only when it answers 200,
//!   and the same request again is 401 `replayed`.
#![no_main]

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use tollgate_core::ManualClock;
use tollgate_core::timestamp::{TimestampError, TimestampWindow, parse_unix_seconds};
use tollgate_fuzz::{assert_json_refusal, block_on, body_bytes, count, headers, lines, service_fn};
use tollgate_replay::{MemoryNonceStore, NonceShape, ReplayGuardLayer};
use tower_layer::Layer;
use tower_service::Service;

const NOW: u64 = 1_700_000_000;

fn reference_seconds(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

fn check_seconds(value: &[u8]) {
    let got = parse_unix_seconds(value);
    match reference_seconds(value) {
        Some(n) => assert_eq!(got, Ok(n), "{:?}", String::from_utf8_lossy(value)),
        None => assert_eq!(
            got,
            Err(TimestampError::Malformed),
            "{:?}",
            String::from_utf8_lossy(value)
        ),
    }
    if let Ok(ts) = got {
        for tolerance in [0u64, 1, 300, u64::MAX] {
            let window = TimestampWindow::new(Duration::from_secs(tolerance));
            for now in [NOW, 0, u64::MAX, ts, ts.wrapping_add(300)] {
                let diff = i128::from(now) - i128::from(ts);
                let expected = if diff.unsigned_abs() <= u128::from(tolerance) {
                    Ok(())
                } else if diff > 0 {
                    Err(TimestampError::TooOld { age: now - ts })
                } else {
                    Err(TimestampError::InFuture { ahead: ts - now })
                };
                assert_eq!(
                    window.check(ts, now),
                    expected,
                    "ts {ts} now {now} ±{tolerance}"
                );
                assert_eq!(window.last_valid_second(ts), ts.saturating_add(tolerance));
            }
        }
    }
}

fn single<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    (count(h, name) == 1).then(|| h[name].as_bytes())
}

/// The documented outcome of the guard's checks: `None` when they pass.
fn model(
    h: &HeaderMap,
    ts: &str,
    nonce: &str,
    shape: NonceShape,
    key_id: Option<&str>,
) -> Option<(StatusCode, &'static str)> {
    let Some(ts) = single(h, ts).and_then(reference_seconds) else {
        return Some((StatusCode::BAD_REQUEST, "timestamp_malformed"));
    };
    if ts.abs_diff(NOW) > 300 {
        return Some((StatusCode::UNAUTHORIZED, "timestamp_out_of_window"));
    }
    let nonce_ok = single(h, nonce).is_some_and(|n| match shape {
        NonceShape::Hex(len) => n.len() == len && n.iter().all(u8::is_ascii_hexdigit),
        NonceShape::Token { max_len } => {
            !n.is_empty() && n.len() <= max_len && n.iter().all(|b| (b'!'..=b'~').contains(b))
        }
        _ => unreachable!(),
    });
    if !nonce_ok {
        return Some((StatusCode::BAD_REQUEST, "nonce_malformed"));
    }
    if let Some(name) = key_id
        && !single(h, name).is_some_and(|v| !v.is_empty())
    {
        return Some((StatusCode::BAD_REQUEST, "header_malformed"));
    }
    None
}

fn run(layer: ReplayGuardLayer, h: &HeaderMap, expect: Option<(StatusCode, &'static str)>) {
    let calls = Rc::new(Cell::new(0u32));
    let seen = calls.clone();
    let mut service = layer.layer(service_fn(move |_request: Request<()>| {
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
                assert_eq!(parts.status, StatusCode::OK, "{h:?}");
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
                        "timestamp_malformed",
                        "timestamp_out_of_window",
                        "nonce_malformed",
                        "header_malformed",
                        "replayed",
                    ],
                );
                assert_eq!(got, code, "{h:?}");
            }
        }
    }
    assert_eq!(
        calls.get(),
        u32::from(expect.is_none()),
        "the inner service runs once, only when accepted"
    );
}

fuzz_target!(|data: &[u8]| {
    let lines = lines(data);
    for line in &lines {
        check_seconds(line);
        check_seconds(line.trim_ascii());
    }
    let line = |i: usize| lines.get(i).copied().unwrap_or_default();
    let extra = headers(lines.iter().skip(3).copied());

    // Standard Webhooks' headers, token nonces.
    let mut h = HeaderMap::new();
    for (name, value) in [("webhook-timestamp", line(0)), ("webhook-id", line(1))] {
        if let Ok(value) = HeaderValue::from_bytes(value.trim_ascii()) {
            h.append(HeaderName::from_static(name), value);
        }
    }
    for (name, value) in &extra {
        h.append(name.clone(), value.clone());
    }
    let store = MemoryNonceStore::new(1024).with_clock(ManualClock::new(NOW));
    let layer = ReplayGuardLayer::standard_webhooks(store).clock(ManualClock::new(NOW));
    let expect = model(
        &h,
        "webhook-timestamp",
        "webhook-id",
        NonceShape::Token { max_len: 256 },
        None,
    );
    run(layer, &h, expect);

    // Custom headers, hex nonces of 8, and a key id header.
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("x-time", line(0)),
        ("x-nonce", line(1)),
        ("x-key", line(2)),
    ] {
        if let Ok(value) = HeaderValue::from_bytes(value.trim_ascii()) {
            h.append(HeaderName::from_static(name), value);
        }
    }
    for (name, value) in &extra {
        h.append(name.clone(), value.clone());
    }
    let store = MemoryNonceStore::new(1024).with_clock(ManualClock::new(NOW));
    let layer = ReplayGuardLayer::headers(
        "fuzz",
        HeaderName::from_static("x-time"),
        HeaderName::from_static("x-nonce"),
        store,
    )
    .key_id_header(HeaderName::from_static("x-key"))
    .nonce_shape(NonceShape::Hex(8))
    .clock(ManualClock::new(NOW));
    let expect = model(&h, "x-time", "x-nonce", NonceShape::Hex(8), Some("x-key"));
    run(layer, &h, expect);
});
