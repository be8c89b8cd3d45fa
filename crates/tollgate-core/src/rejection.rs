//! [`Rejection`]: the one shape every tollgate server layer answers a refused request with.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::metrics::LayerName;
use crate::response::ResponseBody;

/// The stable, machine-readable codes tollgate's layers use. Clients may match on them.
pub mod code {
    /// 403: the `Origin` (or `Referer`, or fetch metadata) is not on the allowlist.
    pub const ORIGIN_NOT_ALLOWED: &str = "origin_not_allowed";
    /// 403: a preflight asked for a method that is not allowed.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 403: a preflight asked for a header that is not allowed.
    pub const HEADER_NOT_ALLOWED: &str = "header_not_allowed";
    /// 400: no valid client IP could be derived from what the client sent.
    pub const INVALID_CLIENT_IP: &str = "invalid_client_ip";
    /// 500: no peer address reached the client-IP layer (a deployment error).
    pub const CLIENT_IP_MISCONFIGURED: &str = "client_ip_misconfigured";
    /// 403: the client IP is outside the allowlist.
    pub const IP_NOT_ALLOWED: &str = "ip_not_allowed";
    /// 401: the signature header is absent.
    pub const SIGNATURE_MISSING: &str = "signature_missing";
    /// 401: no usable key produces the received signature.
    pub const SIGNATURE_INVALID: &str = "signature_invalid";
    /// 400: the signature header cannot be parsed.
    pub const SIGNATURE_MALFORMED: &str = "signature_malformed";
    /// 401: the request's timestamp is outside the accepted window.
    pub const TIMESTAMP_OUT_OF_WINDOW: &str = "timestamp_out_of_window";
    /// 400: the timestamp is not an unsigned decimal number of seconds.
    pub const TIMESTAMP_MALFORMED: &str = "timestamp_malformed";
    /// 400: the nonce does not have the required shape.
    pub const NONCE_MALFORMED: &str = "nonce_malformed";
    /// 401: the nonce or signature was seen before.
    pub const REPLAYED: &str = "replayed";
    /// 413: the body is larger than the limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// 400: the body could not be read.
    pub const BODY_READ_FAILED: &str = "body_read_failed";
    /// 408: the whole body did not arrive within the layer's body timeout (a client that
    /// trickles its body, or declares a length and stops sending).
    pub const BODY_TIMEOUT: &str = "body_timeout";
    /// 503: the nonce store could not be reached; the request was refused (fail closed).
    pub const STORE_UNAVAILABLE: &str = "store_unavailable";
    /// 503: the nonce store is full of unexpired claims and refuses new ones until some
    /// expire; the request was refused (fail closed, nothing unexpired is evicted). Answered
    /// by tollgate-replay's `MemoryNonceStore`; a Redis that runs out of memory answers
    /// `store_unavailable`.
    pub const STORE_FULL: &str = "store_full";
    /// 401: the Tranzila app key is not known.
    pub const TRANZILA_UNKNOWN_APP_KEY: &str = "tranzila_unknown_app_key";
    /// 400: a required header is missing or malformed.
    pub const HEADER_MALFORMED: &str = "header_malformed";
    /// 500: the replay guard found no [`VerifiedSignature`](crate::VerifiedSignature): no
    /// verifier ran before it (a deployment error: the guard must sit inside the verifier).
    pub const REPLAY_GUARD_MISCONFIGURED: &str = "replay_guard_misconfigured";
    /// 500: a signed-body extractor ran without the signature verifier in front of the
    /// handler (a deployment error).
    pub const SIGNATURE_LAYER_MISSING: &str = "signature_layer_missing";
    /// 400: the verified body is not JSON of the expected shape.
    pub const JSON_INVALID: &str = "json_invalid";
    /// 403: the request did not arrive over HTTPS (neither on a TLS connection nor, by a
    /// trusted proxy's word, over HTTPS before it).
    pub const HTTPS_REQUIRED: &str = "https_required";
}

/// A refused request: status, stable code and a human message.
///
/// The message says what was wrong with the request in general terms. It never holds a
/// secret, a body or an expected signature. Layers turn a `Rejection` into a response through
/// a [`RejectionResponder`] (JSON by default), which also emits a `tracing` event with target
/// `tollgate` and puts the `Rejection` into the response's extensions.
///
/// ```
/// use http::StatusCode;
/// use tollgate_core::{Rejection, rejection::code};
///
/// let rejection = Rejection::new(StatusCode::FORBIDDEN, code::IP_NOT_ALLOWED, "client IP is not allowed");
/// assert_eq!(
///     rejection.to_json(),
///     r#"{"error":{"code":"ip_not_allowed","message":"client IP is not allowed"}}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    status: StatusCode,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
}

impl Rejection {
    /// A rejection with this status, code (see [`code`]) and message.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// The rejection every layer answers with for `code` (one of [`code`]): the code's one
    /// status and one message, the same in every layer. An unknown code gives 500 with a
    /// generic message.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tollgate_core::{Rejection, rejection::code};
    ///
    /// let replayed = Rejection::from_code(code::REPLAYED);
    /// assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    /// assert_eq!(replayed.message(), "request was already received");
    /// ```
    pub fn from_code(code: &'static str) -> Self {
        let (status, message) = standard(code);
        Self::new(status, code, message)
    }

    /// Adds what exactly was wrong to the message: `"<message>: <detail>"`. The detail names
    /// a header or a limit, never a value the client sent or a secret.
    ///
    /// ```
    /// use tollgate_core::{Rejection, rejection::code};
    ///
    /// let missing = Rejection::from_code(code::SIGNATURE_MISSING).with_detail("`x-signature`");
    /// assert_eq!(missing.message(), "the signature is missing: `x-signature`");
    /// ```
    pub fn with_detail(mut self, detail: impl fmt::Display) -> Self {
        self.message = Cow::Owned(format!("{}: {detail}", self.message));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body: `{"error":{"code":"...","message":"..."}}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } }).to_string()
    }

    /// The default response: the status, `content-type: application/json`, the
    /// [`to_json`](Rejection::to_json) body, and this `Rejection` in the extensions.
    pub fn json_response(&self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(self.to_json()));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response.extensions_mut().insert(self.clone());
        response
    }

    /// A gRPC "trailers-only" response for gRPC callers: HTTP 200, `content-type:
    /// application/grpc`, `grpc-status` mapped from the HTTP status (400 → 3
    /// `INVALID_ARGUMENT`, 401 → 16 `UNAUTHENTICATED`, 403 → 7 `PERMISSION_DENIED`, 413 and 429
    /// → 8 `RESOURCE_EXHAUSTED`, 503 → 14 `UNAVAILABLE`, other → 13 `INTERNAL`) and
    /// `grpc-message` = `<code>: <message>`, percent-encoded. A tonic client reads it as a
    /// `tonic::Status`.
    pub fn grpc_response(&self) -> Response<Bytes> {
        let grpc_status = match self.status.as_u16() {
            400 => "3",
            401 => "16",
            403 => "7",
            413 | 429 => "8",
            503 => "14",
            _ => "13",
        };
        let message = percent_encode_grpc(&format!("{}: {}", self.code, self.message));
        let mut response = Response::new(Bytes::new());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from_static(grpc_status));
        if let Ok(value) = HeaderValue::from_str(&message) {
            headers.insert("grpc-message", value);
        }
        response.extensions_mut().insert(self.clone());
        response
    }

    /// Emits the `tracing` events of a rejection (target `tollgate`, fields `status`, `code`
    /// and `message`, never a secret):
    ///
    /// - one `DEBUG` event for every rejection;
    /// - one `INFO` event (`WARN` for a 5xx) per code per second at most, with a `suppressed`
    ///   field counting the rejections of that code since the last one. A scan or a flood of
    ///   forged requests therefore costs one line per code per second at `INFO`, and an
    ///   operator still sees that it happens and how much.
    pub fn trace(&self) {
        tracing::debug!(
            target: "tollgate",
            status = self.status.as_u16(),
            code = %self.code,
            message = %self.message,
            "request rejected"
        );
        let Some(suppressed) = sampler::admit(&self.code) else {
            return;
        };
        if self.status.is_server_error() {
            tracing::warn!(
                target: "tollgate",
                status = self.status.as_u16(),
                code = %self.code,
                message = %self.message,
                suppressed,
                "request rejected"
            );
        } else {
            tracing::info!(
                target: "tollgate",
                status = self.status.as_u16(),
                code = %self.code,
                message = %self.message,
                suppressed,
                "request rejected"
            );
        }
    }
}

/// The once-per-second-per-code gate of [`Rejection::trace`]'s `INFO`/`WARN` events.
mod sampler {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    use super::code;

    /// The codes with a slot of their own; any other code shares the last slot.
    const CODES: [&str; 24] = [
        code::ORIGIN_NOT_ALLOWED,
        code::METHOD_NOT_ALLOWED,
        code::HEADER_NOT_ALLOWED,
        code::INVALID_CLIENT_IP,
        code::CLIENT_IP_MISCONFIGURED,
        code::IP_NOT_ALLOWED,
        code::SIGNATURE_MISSING,
        code::SIGNATURE_INVALID,
        code::SIGNATURE_MALFORMED,
        code::TIMESTAMP_OUT_OF_WINDOW,
        code::TIMESTAMP_MALFORMED,
        code::NONCE_MALFORMED,
        code::REPLAYED,
        code::PAYLOAD_TOO_LARGE,
        code::BODY_READ_FAILED,
        code::BODY_TIMEOUT,
        code::STORE_UNAVAILABLE,
        code::STORE_FULL,
        code::TRANZILA_UNKNOWN_APP_KEY,
        code::HEADER_MALFORMED,
        code::REPLAY_GUARD_MISCONFIGURED,
        code::SIGNATURE_LAYER_MISSING,
        code::JSON_INVALID,
        code::HTTPS_REQUIRED,
    ];

    /// Per slot: when its last event was let through (milliseconds since the first rejection
    /// of the process, plus one; 0 = never), and how many were held back since.
    struct Slot {
        last: AtomicU64,
        suppressed: AtomicU64,
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Slot = Slot {
        last: AtomicU64::new(0),
        suppressed: AtomicU64::new(0),
    };
    static SLOTS: [Slot; CODES.len() + 1] = [EMPTY; CODES.len() + 1];
    static START: OnceLock<Instant> = OnceLock::new();

    const INTERVAL_MS: u64 = 1000;

    /// `Some(held back since the last one)` when this rejection's event may be written.
    pub(super) fn admit(code: &str) -> Option<u64> {
        let slot = &SLOTS[super::code_index(code).unwrap_or(CODES.len())];
        let elapsed = START.get_or_init(Instant::now).elapsed().as_millis();
        admit_at(slot, u64::try_from(elapsed).unwrap_or(u64::MAX - 1) + 1)
    }

    /// [`admit`] for `slot` at `now` (milliseconds, never 0).
    fn admit_at(slot: &Slot, now: u64) -> Option<u64> {
        let last = slot.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < INTERVAL_MS {
            slot.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        // One writer per interval: whoever moves `last` forward.
        if slot
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            slot.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(slot.suppressed.swap(0, Ordering::Relaxed))
    }

    pub(super) fn every_code() -> &'static [&'static str] {
        &CODES
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn one_event_per_second_with_the_count_held_back() {
            let slot = EMPTY;
            assert_eq!(admit_at(&slot, 1), Some(0));
            for now in 2..=1000 {
                assert_eq!(admit_at(&slot, now), None, "at {now} ms");
            }
            assert_eq!(admit_at(&slot, 1001), Some(999));
            assert_eq!(admit_at(&slot, 1500), None);
            assert_eq!(admit_at(&slot, 5000), Some(1));
            assert_eq!(admit_at(&slot, 5001), None);
        }

        #[test]
        fn codes_have_slots_of_their_own() {
            // A flood of one code does not hide the first event of another.
            for _ in 0..10 {
                let _ = admit(code::REPLAYED);
            }
            assert_eq!(admit(code::HTTPS_REQUIRED).map(|_| ()), Some(()));
        }
    }
}

/// Every code of [`code`], in one list (the log sampler's slots, the metrics' `code` labels).
pub(crate) fn all_codes() -> &'static [&'static str] {
    sampler::every_code()
}

/// The index of `code` in [`all_codes`], `None` for a code of someone else's.
pub(crate) fn code_index(code: &str) -> Option<usize> {
    all_codes().iter().position(|known| *known == code)
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for Rejection {}

/// The one status and message of each code.
fn standard(code: &str) -> (StatusCode, &'static str) {
    match code {
        code::ORIGIN_NOT_ALLOWED => (StatusCode::FORBIDDEN, "origin is not allowed"),
        code::METHOD_NOT_ALLOWED => (StatusCode::FORBIDDEN, "method is not allowed"),
        code::HEADER_NOT_ALLOWED => (StatusCode::FORBIDDEN, "header is not allowed"),
        code::INVALID_CLIENT_IP => (
            StatusCode::BAD_REQUEST,
            "no valid client IP could be derived from the request",
        ),
        code::CLIENT_IP_MISCONFIGURED => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server cannot determine the client IP",
        ),
        code::IP_NOT_ALLOWED => (StatusCode::FORBIDDEN, "client IP is not allowed"),
        code::SIGNATURE_MISSING => (StatusCode::UNAUTHORIZED, "the signature is missing"),
        code::SIGNATURE_INVALID => (StatusCode::UNAUTHORIZED, "the signature does not match"),
        code::SIGNATURE_MALFORMED => (StatusCode::BAD_REQUEST, "the signature cannot be parsed"),
        code::TIMESTAMP_OUT_OF_WINDOW => (
            StatusCode::UNAUTHORIZED,
            "timestamp is outside the accepted window",
        ),
        code::TIMESTAMP_MALFORMED => (
            StatusCode::BAD_REQUEST,
            "timestamp must be Unix seconds as ASCII digits",
        ),
        code::NONCE_MALFORMED => (StatusCode::BAD_REQUEST, "nonce is missing or malformed"),
        code::REPLAYED => (StatusCode::UNAUTHORIZED, "request was already received"),
        code::PAYLOAD_TOO_LARGE => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than the limit",
        ),
        code::BODY_READ_FAILED => (StatusCode::BAD_REQUEST, "request body could not be read"),
        code::BODY_TIMEOUT => (
            StatusCode::REQUEST_TIMEOUT,
            "request body did not arrive in time",
        ),
        code::STORE_UNAVAILABLE => (
            StatusCode::SERVICE_UNAVAILABLE,
            "replay protection is temporarily unavailable",
        ),
        code::STORE_FULL => (
            StatusCode::SERVICE_UNAVAILABLE,
            "replay protection is at capacity; retry later",
        ),
        code::TRANZILA_UNKNOWN_APP_KEY => (StatusCode::UNAUTHORIZED, "app key is not known"),
        code::HEADER_MALFORMED => (
            StatusCode::BAD_REQUEST,
            "a required header is missing or malformed",
        ),
        code::REPLAY_GUARD_MISCONFIGURED => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "replay protection is misconfigured",
        ),
        code::SIGNATURE_LAYER_MISSING => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request did not pass through the signature layer",
        ),
        code::JSON_INVALID => (
            StatusCode::BAD_REQUEST,
            "the signed body is not JSON of the expected shape",
        ),
        code::HTTPS_REQUIRED => (StatusCode::FORBIDDEN, "HTTPS is required"),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request could not be processed",
        ),
    }
}

/// gRPC's `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
fn percent_encode_grpc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Turns a [`Rejection`] into the response sent to the client. Implement it (or pass a
/// closure `Fn(&Rejection) -> Response<Bytes>`) to replace tollgate's JSON.
///
/// ```
/// use bytes::Bytes;
/// use http::Response;
/// use tollgate_core::{Rejection, RejectionResponder};
///
/// let plain = RejectionResponder::new(|rejection: &Rejection| {
///     let mut response = Response::new(Bytes::from(rejection.code().to_owned()));
///     *response.status_mut() = rejection.status();
///     response
/// });
/// # let _ = plain;
/// ```
pub trait RespondRejection: Send + Sync + 'static {
    /// The response for `rejection`.
    fn respond(&self, rejection: &Rejection) -> Response<Bytes>;
}

impl<F> RespondRejection for F
where
    F: Fn(&Rejection) -> Response<Bytes> + Send + Sync + 'static,
{
    fn respond(&self, rejection: &Rejection) -> Response<Bytes> {
        self(rejection)
    }
}

/// How a layer answers the requests it refuses: [`Rejection::json_response`] unless
/// replaced. Cheap to clone.
///
/// Whatever the response, the responder logs the rejection ([`Rejection::trace`]) and puts it
/// into the response's extensions, so outer layers and tests can read the structured reason.
#[derive(Clone)]
pub struct RejectionResponder {
    custom: Option<Arc<dyn RespondRejection>>,
    grpc: bool,
}

impl RejectionResponder {
    /// A responder that uses `respond` to build the response.
    pub fn new(respond: impl RespondRejection) -> Self {
        Self {
            custom: Some(Arc::new(respond)),
            grpc: false,
        }
    }

    /// The default: [`Rejection::json_response`].
    pub fn json() -> Self {
        Self {
            custom: None,
            grpc: false,
        }
    }

    /// For gRPC servers: [`Rejection::grpc_response`].
    pub fn grpc() -> Self {
        Self {
            custom: None,
            grpc: true,
        }
    }

    /// The response for `rejection`, with the event logged, the refusal counted (layer
    /// [`LayerName::Other`]: tollgate's layers call [`refuse`](RejectionResponder::refuse), which
    /// names them) and the rejection in the response's extensions.
    pub fn respond(&self, rejection: Rejection) -> Response<Bytes> {
        self.refuse(LayerName::Other, rejection)
    }

    /// The response `layer` answers `rejection` with: the event logged
    /// ([`Rejection::trace`]), the refusal counted in
    /// [`REQUESTS_REFUSED_TOTAL`](crate::metrics::REQUESTS_REFUSED_TOTAL)`{layer, code}` and
    /// recorded in the current span ([`crate::metrics`]), and the rejection in the response's
    /// extensions. Counted here, whatever builds the response, so a replaced responder's
    /// refusals count too; once per refusal.
    ///
    /// ```
    /// use tollgate_core::metrics::LayerName;
    /// use tollgate_core::{Rejection, RejectionResponder, rejection::code};
    ///
    /// let response = RejectionResponder::json().refuse(LayerName::IpAllowlist, Rejection::from_code(code::IP_NOT_ALLOWED));
    /// assert_eq!(response.status(), 403);
    /// ```
    pub fn refuse(&self, layer: LayerName, rejection: Rejection) -> Response<Bytes> {
        crate::metrics::refused(layer, rejection.code());
        rejection.trace();
        let mut response = match (&self.custom, self.grpc) {
            (Some(custom), _) => custom.respond(&rejection),
            (None, true) => rejection.grpc_response(),
            (None, false) => rejection.json_response(),
        };
        response.extensions_mut().insert(rejection);
        response
    }

    /// [`respond`](RejectionResponder::respond), with the body as a layer's [`ResponseBody`].
    pub fn respond_with_body<B>(&self, rejection: Rejection) -> Response<ResponseBody<B>> {
        self.respond(rejection).map(ResponseBody::own)
    }

    /// [`refuse`](RejectionResponder::refuse), with the body as a layer's [`ResponseBody`].
    pub fn refuse_with_body<B>(
        &self,
        layer: LayerName,
        rejection: Rejection,
    ) -> Response<ResponseBody<B>> {
        self.refuse(layer, rejection).map(ResponseBody::own)
    }
}

/// Any [`RespondRejection`] (a closure `Fn(&Rejection) -> Response<Bytes>` included) is a
/// responder, so every layer's `on_rejection` takes either.
impl<R: RespondRejection> From<R> for RejectionResponder {
    fn from(respond: R) -> Self {
        Self::new(respond)
    }
}

impl Default for RejectionResponder {
    fn default() -> Self {
        Self::json()
    }
}

impl fmt::Debug for RejectionResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match (&self.custom, self.grpc) {
            (Some(_), _) => "custom",
            (None, true) => "grpc",
            (None, false) => "json",
        };
        f.debug_tuple("RejectionResponder").field(&kind).finish()
    }
}

#[cfg(test)]
mod tests {

    use http_body_util::BodyExt;

    use super::*;

    fn sample() -> Rejection {
        Rejection::new(
            StatusCode::UNAUTHORIZED,
            code::SIGNATURE_INVALID,
            "signature does not match \"any\" key",
        )
    }

    #[test]
    fn json_shape_is_exact_and_escaped() {
        let response = RejectionResponder::default().respond(sample());
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(
            response.body(),
            &Bytes::from_static(
                br#"{"error":{"code":"signature_invalid","message":"signature does not match \"any\" key"}}"#
            )
        );
        assert_eq!(response.extensions().get::<Rejection>(), Some(&sample()));
    }

    #[test]
    fn replacement_response_keeps_extension() {
        let responder = RejectionResponder::new(|r: &Rejection| {
            let mut response = Response::new(Bytes::from(format!("nope: {}", r.code())));
            *response.status_mut() = StatusCode::IM_A_TEAPOT;
            response
        });
        let response = responder.respond(sample());
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(response.body(), "nope: signature_invalid");
        assert_eq!(
            response
                .extensions()
                .get::<Rejection>()
                .map(Rejection::code),
            Some("signature_invalid")
        );
        assert_eq!(format!("{responder:?}"), "RejectionResponder(\"custom\")");
    }

    #[tokio::test]
    async fn response_body_wrapper_carries_json() {
        let response =
            RejectionResponder::json().respond_with_body::<http_body_util::Empty<Bytes>>(sample());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body.starts_with(br#"{"error":{"code":"signature_invalid""#));
    }

    #[test]
    fn every_code_constant_is_in_the_one_list() {
        // `sampler::every_code()` is what the table test below and the log sampler walk: a
        // constant added to `code` but not to that list would go untested and unsampled.
        let source = include_str!("rejection.rs");
        let module = &source[source.find("pub mod code {").unwrap()..];
        let module = &module[..module.find("\n}").unwrap()];
        let constants = module.matches("pub const ").count();
        assert_eq!(constants, sampler::every_code().len());
    }

    #[test]
    fn every_code_has_one_status_and_message() {
        let all = sampler::every_code().iter().copied();
        let unknown = Rejection::from_code("not_a_code");
        let mut messages = std::collections::HashSet::new();
        for code in all {
            let rejection = Rejection::from_code(code);
            assert_ne!(
                rejection.message(),
                unknown.message(),
                "{code} has no entry"
            );
            assert!(messages.insert(rejection.message().to_owned()), "{code}");
            assert!(rejection.status().is_client_error() || rejection.status().is_server_error());
        }
    }

    #[test]
    fn grpc_shape() {
        let rejection = Rejection::new(StatusCode::FORBIDDEN, code::IP_NOT_ALLOWED, "100% denied");
        let response = RejectionResponder::grpc().respond(rejection);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/grpc");
        assert_eq!(response.headers()["grpc-status"], "7");
        assert_eq!(
            response.headers()["grpc-message"],
            "ip_not_allowed: 100%25 denied"
        );
        assert!(response.body().is_empty());
    }

    #[test]
    fn every_rejection_is_traced_with_code() {
        let capture = tollgate_test_support::LogCapture::new();
        capture.during(|| {
            RejectionResponder::json().respond(sample());
            RejectionResponder::json().respond(Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::STORE_UNAVAILABLE,
                "nonce store unavailable",
            ));
        });
        let logs = capture.text();
        assert!(
            logs.contains("DEBUG tollgate: request rejected status=401 code=signature_invalid"),
            "{logs}"
        );
        assert!(
            logs.contains("DEBUG tollgate: request rejected status=503 code=store_unavailable"),
            "{logs}"
        );
    }
}
