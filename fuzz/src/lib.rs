//! Code shared by the fuzz targets: the input format, a one-thread runtime to drive the
//! tower services, and the oracles every target shares (documented statuses, JSON refusals).
//!
//! Every target reads its input as text lines (invalid UTF-8 is kept as bytes where a header
//! value may hold it), so the seeds in `corpus/<target>/` are readable and written by hand:
//! each target's first lines are its parameters, the remaining `name: value` lines are request
//! headers.

use std::future::Future;
use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response};
use http_body::Body;
use http_body_util::BodyExt;

/// Splits the input into lines (on `\n`, a trailing `\r` dropped).
pub fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .collect()
}

/// A line as text, lossily (for the parameters that are `&str` in the API).
pub fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// The headers of `lines`: each `name: value` line whose name and value the `http` crate
/// accepts (as a server would receive them), in order, repeated names appended. Lines that
/// are not headers are skipped. Leading and trailing spaces of the value are trimmed, as
/// hyper does.
pub fn headers<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let Ok(name) = HeaderName::from_bytes(name) else {
            continue;
        };
        let value = value.trim_ascii();
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        map.append(name, value);
    }
    map
}

/// One current-thread tokio runtime per fuzzing process, with time enabled (stores and
/// guards may arm timers).
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a current-thread runtime")
        })
        .block_on(future)
}

/// The body of `response`, collected.
pub fn body_bytes<B>(response: Response<B>) -> (http::response::Parts, Bytes)
where
    B: Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let bytes = block_on(body.collect())
        .expect("a response body of the layer never fails")
        .to_bytes();
    (parts, bytes)
}

/// The oracle for a refusal: the default responder's JSON body
/// `{"error":{"code":"<code>","message":"<text>"}}`, with `code` one of `codes`. Returns
/// the code.
pub fn assert_json_refusal(body: &[u8], codes: &[&str]) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|err| {
        panic!(
            "refusal body is not JSON ({err}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    let error = json.get("error").expect("a refusal has an `error` object");
    let code = error
        .get("code")
        .and_then(serde_json::Value::as_str)
        .expect("a refusal has a string `error.code`");
    assert!(
        error
            .get("message")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|m| !m.is_empty()),
        "a refusal has a non-empty `error.message`: {json}"
    );
    assert!(
        codes.contains(&code),
        "refusal code `{code}` is not one of the documented {codes:?}"
    );
    assert_eq!(
        json.as_object().map(|o| o.len()),
        Some(1),
        "a refusal body holds only `error`: {json}"
    );
    code.to_owned()
}

/// Whether `bytes` holds `needle`.
pub fn contains(bytes: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || bytes.windows(needle.len()).any(|w| w == needle)
}

/// Independent HMAC-SHA256 (the `hmac` crate directly), the reference the signature oracles
/// compare with.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Standard base64 with padding.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A `tower::Service` from a synchronous function (the inner service of a layer under test).
#[derive(Clone, Debug)]
pub struct ServiceFn<F>(F);

/// [`ServiceFn`] from `f`.
pub fn service_fn<F>(f: F) -> ServiceFn<F> {
    ServiceFn(f)
}

impl<F, B> tower_service::Service<http::Request<B>> for ServiceFn<F>
where
    F: FnMut(http::Request<B>) -> Response<String>,
{
    type Response = Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Response<String>, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        std::future::ready(Ok((self.0)(request)))
    }
}

/// How many values `name` has in `headers`.
pub fn count(headers: &HeaderMap, name: &str) -> usize {
    headers.get_all(name).iter().count()
}
