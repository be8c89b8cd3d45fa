//! Pure signature schemes: compute a signature over exact bytes and verify a received one
//! against a [`KeyRing`], with no tower in sight.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use tollgate_core::header::single_value;
use tollgate_core::timestamp::{TimestampError, TimestampWindow, parse_unix_seconds};
use tollgate_core::{Secret, VerifiedSignature};

mod body;
mod canonical;
mod error;
mod mac;
mod standard_webhooks;
mod stripe;

pub use body::BodyHmac;
pub use canonical::{Canonical, MethodCase};
pub use error::{ConfigError, SignError, VerifyError};
pub use mac::{Encoding, PreparedKeys};
pub use standard_webhooks::StandardWebhooks;
pub use stripe::Stripe;

/// The parts of a request a scheme signs or verifies: method, URI, headers and the exact body
/// bytes.
///
/// A borrowed view, cheap to build from an `http::Request` that was already buffered.
/// `Debug` prints the body's length, not its bytes.
///
/// ```
/// use http::{HeaderMap, Method, Uri};
/// use tollgate_signature::RequestParts;
///
/// let (method, uri, headers) = (Method::POST, Uri::from_static("/v1/payments"), HeaderMap::new());
/// let parts = RequestParts::new(&method, &uri, &headers, b"{}");
/// assert_eq!(parts.body(), b"{}");
/// assert_eq!(format!("{parts:?}"), r#"RequestParts { method: POST, uri: /v1/payments, headers: {}, body_len: 2 }"#);
/// ```
#[derive(Clone, Copy)]
pub struct RequestParts<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a [u8],
    shared: Option<&'a Bytes>,
}

impl<'a> RequestParts<'a> {
    /// A view of a request with these parts and these exact body bytes.
    pub fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        Self {
            method,
            uri,
            headers,
            body,
            shared: None,
        }
    }

    /// Like [`new`](Self::new) over a shared `Bytes`: a verified signature then records the
    /// signed body for replay protection by reference instead of copying it (what
    /// [`VerifySignatureLayer`](crate::VerifySignatureLayer) does).
    pub fn with_body_bytes(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        body: &'a Bytes,
    ) -> Self {
        Self {
            method,
            uri,
            headers,
            body,
            shared: Some(body),
        }
    }

    /// The body as a shared `Bytes`: a reference-counted handle when the view was made with
    /// [`with_body_bytes`](Self::with_body_bytes), else a copy.
    pub(crate) fn body_bytes(&self) -> Bytes {
        match self.shared {
            Some(bytes) => bytes.clone(),
            None => Bytes::copy_from_slice(self.body),
        }
    }

    /// A view of split request parts and the body bytes read from it.
    pub fn from_parts(parts: &'a http::request::Parts, body: &'a [u8]) -> Self {
        Self::new(&parts.method, &parts.uri, &parts.headers, body)
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI (origin form on a server, usually absolute on a client).
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The exact body bytes.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The one value of the signature header `name`: [`VerifyError::Missing`] when absent,
    /// [`VerifyError::Malformed`] when sent more than once (two values leave it ambiguous
    /// which one was signed).
    pub(crate) fn signature_header(
        &self,
        name: &HeaderName,
    ) -> Result<&'a HeaderValue, VerifyError> {
        single_value(self.headers, name)?.ok_or_else(|| VerifyError::Missing {
            header: name.clone(),
        })
    }

    /// The one value of the timestamp header `name` as sent, and the Unix seconds it holds:
    /// [`TimestampError::Malformed`] when absent or not ASCII digits.
    pub(crate) fn timestamp(&self, name: &HeaderName) -> Result<(&'a [u8], u64), VerifyError> {
        let text = single_value(self.headers, name)?
            .ok_or(VerifyError::Timestamp(TimestampError::Malformed))?
            .as_bytes();
        Ok((text, parse_unix_seconds(text)?))
    }
}

impl fmt::Debug for RequestParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestParts")
            .field("method", self.method)
            .field("uri", self.uri)
            .field("headers", self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A signature scheme: how a request is signed and how a received signature is checked.
///
/// Implemented by [`BodyHmac`] (OneKey, `X-Webhook-Signature`, GitHub), [`Canonical`]
/// (Method + Path + Body + Timestamp), [`StandardWebhooks`] and [`Stripe`]. The layers
/// [`VerifySignatureLayer`](crate::VerifySignatureLayer) and
/// [`SignRequestLayer`](crate::SignRequestLayer) are thin adapters over these two methods, so
/// every scheme can also be used directly on bytes you already hold.
///
/// Verifying takes [`PreparedKeys`], a [`KeyRing`](tollgate_core::KeyRing) whose HMAC state is
/// keyed once: convert a ring with `&ring.into()` or `&PreparedKeys::from(ring)`.
///
/// Implementations compare signatures in constant time, never put the expected signature into
/// an error, and try every key of the ring that is usable at `now_unix`. The schemes of this
/// crate skip blank keys (empty or only whitespace, tollgate-core's rule
/// [`Secret::is_blank`](tollgate_core::Secret::is_blank)) when verifying and refuse to sign
/// with one ([`SignError::InvalidKey`]): anyone can compute a MAC under a blank key.
///
/// ```
/// use http::{HeaderMap, Method, Uri};
/// use tollgate_core::{KeyRing, Secret};
/// use tollgate_signature::{BodyHmac, RequestParts, Scheme};
///
/// let scheme = BodyHmac::onekey();
/// let ring = KeyRing::single(Secret::from_string("cashout_secret_key"));
/// let (method, uri, mut headers) = (Method::POST, Uri::from_static("/cashout"), HeaderMap::new());
///
/// // Sign: the headers to add.
/// let added = scheme.sign(ring.signing_key().secret(), &RequestParts::new(&method, &uri, &headers, b""), 0).unwrap();
/// headers.extend(added);
/// assert_eq!(
///     headers["payload-signature"],
///     "8d3e2b061e753c88e401ac8737e6dc7af9e02d590fd1dd4d5e1ded9f4430487c"
/// );
///
/// // Verify: which key matched.
/// let verified = scheme.verify(&ring.into(), &RequestParts::new(&method, &uri, &headers, b""), 0).unwrap();
/// assert_eq!((verified.scheme(), verified.key_id()), ("onekey", "default"));
/// ```
pub trait Scheme: fmt::Debug + Send + Sync + 'static {
    /// The scheme's name, recorded in [`VerifiedSignature::scheme`].
    fn name(&self) -> Cow<'static, str>;

    /// The headers that sign `request` with `key` at `now_unix` (signature headers marked
    /// sensitive, plus timestamp headers where the scheme has them).
    fn sign(
        &self,
        key: &Secret,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError>;

    /// Checks the signature `request` carries against every key of `keys` usable at
    /// `now_unix`, and the timestamp (if the scheme has one) against the scheme's window.
    fn verify(
        &self,
        keys: &PreparedKeys,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError>;

    /// For a scheme that signs a timestamp of whole seconds: its window's tolerance in
    /// seconds (how far from a verifier's clock a timestamp may be). `SignRequestLayer` signs
    /// a repeat of one message within half of it ahead of its clock, so that no signature is
    /// made twice. `None` (the default, and for schemes that sign no time): never ahead.
    fn timestamp_tolerance(&self) -> Option<u64> {
        None
    }

    /// Whether [`verify`](Self::verify) reads `now_unix` for anything but the keys' expiry
    /// (which [`PreparedKeys`] checks): a timestamp window, a time of its own. `true` (the
    /// default) for every scheme with a timestamp and for schemes of your own.
    ///
    /// [`VerifySignatureLayer`](crate::VerifySignatureLayer) reads its clock for each request
    /// unless this is `false` and no key of the ring has an expiry: then nothing depends on
    /// the time and `verify` is handed a `now_unix` of 0. [`BodyHmac`] answers `false`. A
    /// scheme with a [`timestamp_tolerance`](Self::timestamp_tolerance) is always handed the
    /// time, whatever this answers; a scheme of your own that checks a time without declaring
    /// a tolerance must answer `true` (the default), or it would judge timestamps against 0.
    fn verify_reads_clock(&self) -> bool {
        true
    }
}

impl<T: Scheme + ?Sized> Scheme for std::sync::Arc<T> {
    fn name(&self) -> Cow<'static, str> {
        (**self).name()
    }

    fn sign(
        &self,
        key: &Secret,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        (**self).sign(key, request, now_unix)
    }

    fn verify(
        &self,
        keys: &PreparedKeys,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError> {
        (**self).verify(keys, request, now_unix)
    }

    fn timestamp_tolerance(&self) -> Option<u64> {
        (**self).timestamp_tolerance()
    }

    fn verify_reads_clock(&self) -> bool {
        (**self).verify_reads_clock()
    }
}

/// `verified` with its `timestamp`, once that is inside `window` at `now_unix`.
///
/// Timestamped schemes call it after the signature matched, so a forged request is
/// `signature_invalid` whatever its timestamp.
pub(crate) fn within_window(
    verified: VerifiedSignature,
    window: &TimestampWindow,
    timestamp: u64,
    now_unix: u64,
) -> Result<VerifiedSignature, VerifyError> {
    window.check(timestamp, now_unix)?;
    Ok(verified.with_timestamp(timestamp))
}

/// A header value holding an encoded signature, marked sensitive.
pub(crate) fn sensitive_value(text: String) -> Result<HeaderValue, SignError> {
    let mut value = HeaderValue::try_from(text).map_err(|_| SignError::InvalidHeaderValue)?;
    value.set_sensitive(true);
    Ok(value)
}
