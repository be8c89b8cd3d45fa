//! Canonical HMAC over Method + Path + Body + Timestamp.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use hmac::Mac as _;
use http::{HeaderName, HeaderValue, Uri};
use tollgate_core::timestamp::TimestampWindow;
use tollgate_core::{Secret, VerifiedSignature};

use super::mac::{Encoding, HmacSha256, mac_with, match_signature, signing_mac};
use super::{
    PreparedKeys, RequestParts, Scheme, SignError, VerifyError, sensitive_value, within_window,
};

/// How the method is written into the signed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MethodCase {
    /// Exactly as sent (the default; the standard methods are upper case).
    #[default]
    AsSent,
    /// Upper-cased (ASCII).
    Upper,
    /// Lower-cased (ASCII).
    Lower,
}

/// HMAC-SHA256 over Method + Path + Body + Timestamp, with the timestamp in its own header.
///
/// The rule many payment APIs state: the message is the method, the path, the exact body and
/// the Unix-seconds timestamp, concatenated in that order with no separators; the server
/// accepts the request only within ±5 minutes of its clock, and every request gets a fresh
/// signature.
///
/// Defaults (each has a setter):
///
/// | setting | default |
/// |---|---|
/// | signature header | `X-Signature` |
/// | timestamp header | `X-Timestamp` (Unix seconds, ASCII digits only) |
/// | encoding | [`Encoding::Hex`] (lowercase) |
/// | query | part of the path (`/v1/payments?status=paid`) |
/// | method | as sent ([`MethodCase::AsSent`]) |
/// | layout | undelimited `method + path + body + timestamp` |
/// | window | ±300 s, inclusive |
///
/// The timestamp is signed as the header text that was sent (verifier) or written (signer).
/// The path signed is the path sent: an empty one is `/` on both sides, as in the HTTP request
/// line, so `http://h?x=1` signs `/?x=1` and `http://h` signs `/`.
///
/// # Security considerations
///
/// With no separators, two different requests can share a message: `GET` + `/a` + `1` and
/// `GET` + `/a1` + `` with the same timestamp sign the same bytes. When you control both
/// sides, opt into [`delimited`](Canonical::delimited), which signs
/// `method "\n" path "\n" timestamp "\n" body`: the method, path and timestamp cannot contain a
/// newline, so every field is recovered unambiguously.
///
/// What the guard does with that: the undelimited layout records its signed content with
/// [`VerifiedSignature::with_ambiguous_signed_content`](tollgate_core::VerifiedSignature::with_ambiguous_signed_content),
/// so a message keeps one replay identity but its claim is never released after a failed
/// handling (a "retry" could move body bytes into the path); the sender signs its retry anew.
/// The delimited layout's claims are released, as every body-binding scheme's, unless the
/// query is left out ([`include_query(false)`](Canonical::include_query)): then the query is
/// not signed and the claim is kept, as for the undelimited layout. A timestamp is
/// read in its one decimal spelling (no leading zero), so zeros cannot move from the body's end
/// into it either.
///
/// ```
/// use tollgate_core::Secret;
/// use tollgate_signature::{Canonical, Encoding};
///
/// let secret = Secret::from_string("whk_demo_secret");
/// let body = br#"{"amount":100,"currency":"USD"}"#;
/// assert_eq!(
///     Canonical::new().compute(&secret, "POST", "/v1/payments", body, 1_700_000_000),
///     "b90d2e298fe883a5d3b2291d8536e7f61e3727ac1f2ad8728406e40158d2f56d"
/// );
/// assert_eq!(
///     Canonical::new()
///         .encoding(Encoding::Base64)
///         .compute(&secret, "POST", "/v1/payments", body, 1_700_000_000),
///     "uQ0uKY/og6XTsikdhTbn9h43J6wfKthyhAbkAVjS9W0="
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Canonical {
    name: Cow<'static, str>,
    signature_header: HeaderName,
    timestamp_header: HeaderName,
    encoding: Encoding,
    include_query: bool,
    method_case: MethodCase,
    delimited: bool,
    window: TimestampWindow,
}

impl Default for Canonical {
    fn default() -> Self {
        Self::new()
    }
}

impl Canonical {
    /// The scheme with the defaults listed above, named `"canonical"`.
    pub fn new() -> Self {
        Self {
            name: Cow::Borrowed("canonical"),
            signature_header: HeaderName::from_static("x-signature"),
            timestamp_header: HeaderName::from_static("x-timestamp"),
            encoding: Encoding::Hex,
            include_query: true,
            method_case: MethodCase::AsSent,
            delimited: false,
            window: TimestampWindow::default(),
        }
    }

    /// Sets the header that carries the signature.
    #[must_use]
    pub fn signature_header(mut self, header: HeaderName) -> Self {
        self.signature_header = header;
        self
    }

    /// Sets the header that carries the timestamp.
    #[must_use]
    pub fn timestamp_header(mut self, header: HeaderName) -> Self {
        self.timestamp_header = header;
        self
    }

    /// Sets the encoding of the MAC.
    #[must_use]
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Whether the query string is part of the signed path (default `true`).
    ///
    /// Without it the query is not signed: anyone who sees a request can send it again with
    /// another query under the same signature. The replay guard then never releases the
    /// claim after a failed handling (a "retry" could carry another query), and the handler
    /// must not trust the query.
    #[must_use]
    pub fn include_query(mut self, include: bool) -> Self {
        self.include_query = include;
        self
    }

    /// How the method is written into the message.
    #[must_use]
    pub fn method_case(mut self, case: MethodCase) -> Self {
        self.method_case = case;
        self
    }

    /// Signs `method "\n" path "\n" timestamp "\n" body` instead of the undelimited
    /// concatenation. Both sides must agree; use it for APIs of your own.
    #[must_use]
    pub fn delimited(mut self) -> Self {
        self.delimited = true;
        self
    }

    /// Sets the accepted clock difference either side (default 300 s, inclusive).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.window = TimestampWindow::new(tolerance);
        self
    }

    /// Sets the name recorded in [`VerifiedSignature::scheme`].
    #[must_use]
    pub fn scheme_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The header that carries the signature.
    pub fn signature_header_name(&self) -> &HeaderName {
        &self.signature_header
    }

    /// The header that carries the timestamp.
    pub fn timestamp_header_name(&self) -> &HeaderName {
        &self.timestamp_header
    }

    /// The encoded signature of a request: `path` is what goes into the message as is (give it
    /// with or without the query, as configured), `timestamp` is written in decimal.
    pub fn compute(
        &self,
        secret: &Secret,
        method: &str,
        path: &str,
        body: &[u8],
        timestamp: u64,
    ) -> String {
        let timestamp = timestamp.to_string();
        let message = self.message(method, path, timestamp.as_bytes());
        mac_with(secret.expose_secret(), |mac| message.feed(mac, body))
            .map(|mac| self.encoding.encode_after("", &mac))
            .unwrap_or_default()
    }

    /// The path as signed for `uri`: the path as HTTP sends it, an empty one as `/` (the
    /// request line of `http://h?x=1` is `/?x=1`, and of `http://h` is `/`), followed by
    /// `?` and the query when it is included. The signer (absolute form) and the verifier
    /// (origin form, as received) therefore cover the same text.
    fn path_of<'u>(&self, uri: &'u Uri) -> Cow<'u, str> {
        let path = match uri.path() {
            "" => "/",
            path => path,
        };
        let Some(query) = uri.query().filter(|_| self.include_query) else {
            return Cow::Borrowed(path);
        };
        match uri.path_and_query() {
            // Already `path?query` as written (the common case): no copy.
            Some(written) if written.as_str().starts_with(path) => Cow::Borrowed(written.as_str()),
            _ => Cow::Owned(format!("{path}?{query}")),
        }
    }

    /// What the signature covers around the body: `method path` before it and `timestamp`
    /// after it, or, [`delimited`](Self::delimited), `method \n path \n timestamp \n` before
    /// it. The MAC is fed `head ‖ body ‖ tail`, and the verifier records the same three parts
    /// so that their digest names the message whatever key signed it.
    fn message(&self, method: &str, path: &str, timestamp: &[u8]) -> Message {
        let mut head = Vec::with_capacity(method.len() + path.len() + timestamp.len() + 3);
        head.extend(method.bytes().map(|byte| match self.method_case {
            MethodCase::AsSent => byte,
            MethodCase::Upper => byte.to_ascii_uppercase(),
            MethodCase::Lower => byte.to_ascii_lowercase(),
        }));
        if self.delimited {
            for part in [path.as_bytes(), timestamp] {
                head.push(b'\n');
                head.extend_from_slice(part);
            }
            head.push(b'\n');
            Message {
                head,
                tail: Vec::new(),
            }
        } else {
            head.extend_from_slice(path.as_bytes());
            Message {
                head,
                tail: timestamp.to_vec(),
            }
        }
    }
}

/// The signed message around the body (see [`Canonical::message`]).
struct Message {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Message {
    fn feed(&self, mac: &mut HmacSha256, body: &[u8]) {
        mac.update(&self.head);
        mac.update(body);
        mac.update(&self.tail);
    }
}

impl Scheme for Canonical {
    fn name(&self) -> Cow<'static, str> {
        self.name.clone()
    }

    fn timestamp_tolerance(&self) -> Option<u64> {
        Some(self.window.tolerance_secs())
    }

    fn sign(
        &self,
        key: &Secret,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let timestamp = HeaderValue::from(now_unix);
        let path = self.path_of(request.uri());
        let message = self.message(request.method().as_str(), &path, timestamp.as_bytes());
        let mac = signing_mac(key, |mac| message.feed(mac, request.body()))?;
        let signature = sensitive_value(self.encoding.encode_after("", &mac))?;
        Ok(vec![
            (self.timestamp_header.clone(), timestamp),
            (self.signature_header.clone(), signature),
        ])
    }

    fn verify(
        &self,
        keys: &PreparedKeys,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError> {
        let value = request.signature_header(&self.signature_header)?;
        let received =
            self.encoding
                .decode_mac(value.as_bytes())
                .ok_or(VerifyError::Malformed {
                    reason: "the signature is not one HMAC-SHA256 in the expected encoding",
                })?;
        let (timestamp_text, timestamp) = request.timestamp(&self.timestamp_header)?;
        let path = self.path_of(request.uri());
        let message = self.message(request.method().as_str(), &path, timestamp_text);
        let verified = match_signature(keys, now_unix, &[received], |mac| {
            message.feed(mac, request.body());
        })?
        .verified(self.name.clone());
        let Message { head, tail } = message;
        within_window(verified, &self.window, timestamp, now_unix).map(|verified| {
            let (head, body, tail) = (Bytes::from(head), request.body_bytes(), Bytes::from(tail));
            if self.delimited && self.include_query {
                verified.with_signed_content(head, body, tail)
            } else {
                // Without separators bytes can move between path and body under one
                // signature, and without the query the request's query is not signed: one
                // identity, but a failed handling never frees the claim (a "retry" with
                // another query, or bytes moved, would be accepted).
                verified.with_ambiguous_signed_content(head, body, tail)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, Method};
    use tollgate_core::{KeyRing, TimestampError};

    use super::*;

    fn sign_then_verify(scheme: &Canonical, method: &Method, uri: &str) -> HeaderMap {
        let uri: Uri = uri.parse().unwrap();
        let mut headers = HeaderMap::new();
        let added = scheme
            .sign(
                &Secret::from_string("k"),
                &RequestParts::new(method, &uri, &headers, b"body"),
                1_000,
            )
            .unwrap();
        headers.extend(added);
        headers
    }

    #[test]
    fn delimited_variant_separates_fields() {
        let secret = Secret::from_string("k");
        let plain = Canonical::new();
        assert_eq!(
            plain.compute(&secret, "GET", "/a", b"1", 5),
            plain.compute(&secret, "GET", "/a1", b"", 5)
        );
        let delimited = Canonical::new().delimited();
        assert_ne!(
            delimited.compute(&secret, "GET", "/a", b"1", 5),
            delimited.compute(&secret, "GET", "/a1", b"", 5)
        );
    }

    #[test]
    fn query_and_method_case_settings() {
        let ring = PreparedKeys::from(KeyRing::single(Secret::from_string("k")));
        let check = |scheme: &Canonical, method: Method, sign_uri: &str, verify_uri: &str| {
            let headers = sign_then_verify(scheme, &method, sign_uri);
            let uri: Uri = verify_uri.parse().unwrap();
            scheme.verify(
                &ring,
                &RequestParts::new(&method, &uri, &headers, b"body"),
                1_000,
            )
        };
        let with_query = Canonical::new();
        assert!(check(&with_query, Method::GET, "/p?a=1", "/p?a=1").is_ok());
        assert_eq!(
            check(&with_query, Method::GET, "/p?a=1", "/p?a=2"),
            Err(VerifyError::Invalid)
        );
        let without_query = Canonical::new().include_query(false);
        assert!(check(&without_query, Method::GET, "/p?a=1", "/p?a=2").is_ok());
        // Only the delimited layout with the query signed covers the whole request: the
        // guard may release its claim after a failed handling, never the others'.
        for (scheme, covers) in [
            (Canonical::new().delimited(), true),
            (Canonical::new().delimited().include_query(false), false),
            (Canonical::new(), false),
            (Canonical::new().include_query(false), false),
        ] {
            let verified = check(&scheme, Method::POST, "/p?a=1", "/p?a=1").unwrap();
            assert_eq!(verified.covers_content(), covers, "{scheme:?}");
        }
        // The client's absolute URI signs the same path as the server's origin form.
        assert!(check(&with_query, Method::GET, "http://h:1/p?a=1", "/p?a=1").is_ok());
        assert!(check(&with_query, Method::GET, "http://h:1", "/").is_ok());
        // An empty path is `/` on both sides, with or without a query.
        assert!(check(&with_query, Method::GET, "http://h:1?a=1", "/?a=1").is_ok());
        assert!(check(&with_query, Method::GET, "http://h:1?", "/?").is_ok());
        assert_eq!(
            check(&with_query, Method::GET, "http://h:1?a=1", "/?a=2"),
            Err(VerifyError::Invalid)
        );
        assert!(check(&without_query, Method::GET, "http://h:1?a=1", "/?a=2").is_ok());
        assert!(
            check(
                &Canonical::new().delimited(),
                Method::GET,
                "http://h:1?a=1",
                "/?a=1"
            )
            .is_ok()
        );

        let lower = Canonical::new().method_case(MethodCase::Lower);
        let secret = Secret::from_string("k");
        assert_eq!(
            lower.compute(&secret, "POST", "/", b"", 1),
            Canonical::new().compute(&secret, "post", "/", b"", 1)
        );
        let upper = Canonical::new().method_case(MethodCase::Upper);
        assert_eq!(
            upper.compute(&secret, "post", "/", b"", 1),
            Canonical::new().compute(&secret, "POST", "/", b"", 1)
        );
    }

    #[test]
    fn missing_and_malformed_headers() {
        let ring = PreparedKeys::from(KeyRing::single(Secret::from_string("k")));
        let scheme = Canonical::new();
        let uri = Uri::from_static("/p");
        let good = sign_then_verify(&scheme, &Method::POST, "/p");
        let verify = |headers: &HeaderMap| {
            scheme.verify(
                &ring,
                &RequestParts::new(&Method::POST, &uri, headers, b"body"),
                1_000,
            )
        };
        assert!(verify(&good).is_ok());

        let mut no_sig = good.clone();
        no_sig.remove("x-signature");
        assert!(matches!(verify(&no_sig), Err(VerifyError::Missing { .. })));

        let mut no_ts = good.clone();
        no_ts.remove("x-timestamp");
        assert_eq!(
            verify(&no_ts),
            Err(VerifyError::Timestamp(TimestampError::Malformed))
        );

        for bad in ["+1000", "1000.0", " 1000", "", "1e3"] {
            let mut headers = good.clone();
            headers.insert("x-timestamp", HeaderValue::from_str(bad).unwrap());
            assert_eq!(
                verify(&headers),
                Err(VerifyError::Timestamp(TimestampError::Malformed)),
                "{bad:?}"
            );
        }

        let mut twice = good;
        twice.append("x-signature", HeaderValue::from_static("00"));
        assert!(matches!(verify(&twice), Err(VerifyError::Malformed { .. })));
    }
}
