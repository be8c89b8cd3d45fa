//! The replay rules as plain types with no tower in sight: where the timestamp and the nonce
//! come from, how they are checked and what is claimed. [`ReplayGuardLayer`](crate::ReplayGuardLayer)
//! holds a [`Policy`] and exposes its setters and [`check`](crate::ReplayGuardLayer::check).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use http::{Extensions, HeaderMap, HeaderValue};
use tollgate_core::header::single_value;
use tollgate_core::rejection::code;
use tollgate_core::timestamp::{TimestampError, TimestampWindow};
use tollgate_core::{Rejection, SharedClock, SystemClock, VerifiedSignature};

use crate::store::StoreError;

/// The shape a nonce must have before it is claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NonceShape {
    /// Exactly this many ASCII hexadecimal digits, either case (Tranzila: 80). The nonce is
    /// claimed exactly as sent: `ab` and `AB` are different nonces.
    Hex(usize),
    /// 1 to `max_len` visible ASCII characters (`!` to `~`): message ids, header signatures.
    Token {
        /// The longest accepted nonce, in bytes.
        max_len: usize,
    },
    /// 1 to `max_len` arbitrary bytes (raw signature bytes from [`VerifiedSignature`]).
    Bytes {
        /// The longest accepted nonce, in bytes.
        max_len: usize,
    },
}

impl NonceShape {
    /// Whether `nonce` has this shape.
    ///
    /// ```
    /// use tollgate_replay::NonceShape;
    ///
    /// assert!(NonceShape::Hex(4).matches(b"0aF9"));
    /// assert!(!NonceShape::Hex(4).matches(b"0aF"));
    /// assert!(!NonceShape::Hex(4).matches(b"0aFg"));
    /// assert!(NonceShape::Token { max_len: 8 }.matches(b"msg_1"));
    /// assert!(!NonceShape::Token { max_len: 8 }.matches(b"msg 1"));
    /// ```
    pub fn matches(&self, nonce: &[u8]) -> bool {
        match *self {
            Self::Hex(len) => nonce.len() == len && nonce.iter().all(u8::is_ascii_hexdigit),
            Self::Token { max_len } => {
                !nonce.is_empty()
                    && nonce.len() <= max_len
                    && nonce.iter().all(u8::is_ascii_graphic)
            }
            Self::Bytes { max_len } => !nonce.is_empty() && nonce.len() <= max_len,
        }
    }
}

/// Where the guard reads the timestamp and the nonce.
#[derive(Debug, Clone)]
enum Source {
    Headers {
        scheme: Cow<'static, str>,
        timestamp: HeaderName,
        nonce: HeaderName,
        key_id: Option<HeaderName>,
    },
    Verified {
        /// How long to hold the claim of a verified signature that signs no timestamp (whole
        /// seconds); `None`: such a signature is refused as a misconfiguration.
        untimed_retention: Option<u64>,
    },
}

/// The replay rules of one guard: where the timestamp and nonce are read, the window, the
/// nonce's shape, the namespace and the clock. The configuration inside a
/// [`ReplayGuardLayer`](crate::ReplayGuardLayer); its setters are the layer's.
#[derive(Clone)]
pub(crate) struct Policy {
    source: Source,
    namespace: Cow<'static, str>,
    window: TimestampWindow,
    shape: NonceShape,
    clock: SharedClock,
    skew_margin: u64,
}

/// The default shape of header nonces: 1 to 256 visible ASCII characters.
const DEFAULT_TOKEN: NonceShape = NonceShape::Token { max_len: 256 };

impl Policy {
    /// Reads the timestamp and the nonce from two headers, claimed in the namespace `scheme`.
    pub(crate) fn headers(
        scheme: Cow<'static, str>,
        timestamp: HeaderName,
        nonce: HeaderName,
    ) -> Self {
        Self {
            source: Source::Headers {
                scheme,
                timestamp,
                nonce,
                key_id: None,
            },
            namespace: Cow::Borrowed(""),
            window: TimestampWindow::default(),
            shape: DEFAULT_TOKEN,
            clock: Arc::new(SystemClock),
            skew_margin: 0,
        }
    }

    /// Tranzila's headers, namespaced by the app key, 80 hex digits.
    pub(crate) fn tranzila() -> Self {
        let mut policy = Self::headers(
            Cow::Borrowed("tranzila"),
            HeaderName::from_static("x-tranzila-api-request-time"),
            HeaderName::from_static("x-tranzila-api-nonce"),
        );
        policy.set_key_id_header(HeaderName::from_static("x-tranzila-api-app-key"));
        policy.shape = NonceShape::Hex(80);
        policy
    }

    /// Standard Webhooks: `webhook-timestamp` and `webhook-id`.
    pub(crate) fn standard_webhooks() -> Self {
        Self::headers(
            Cow::Borrowed("standard-webhooks"),
            HeaderName::from_static("webhook-timestamp"),
            HeaderName::from_static("webhook-id"),
        )
    }

    /// The [`VerifiedSignature`] a verifier outside the guard inserted.
    pub(crate) fn verified() -> Self {
        Self {
            source: Source::Verified {
                untimed_retention: None,
            },
            namespace: Cow::Borrowed(""),
            window: TimestampWindow::default(),
            shape: NonceShape::Bytes { max_len: 1024 },
            clock: Arc::new(SystemClock),
            skew_margin: 0,
        }
    }

    pub(crate) fn set_namespace(&mut self, namespace: Cow<'static, str>) {
        self.namespace = namespace;
    }

    /// Only with the verified source; whole seconds, at least 1.
    pub(crate) fn set_untimed_retention(&mut self, retention: Duration) {
        if let Source::Verified { untimed_retention } = &mut self.source {
            *untimed_retention = Some(retention.as_secs().max(1));
        }
    }

    /// Only with a header source.
    pub(crate) fn set_key_id_header(&mut self, header: HeaderName) {
        if let Source::Headers { key_id, .. } = &mut self.source {
            *key_id = Some(header);
        }
    }

    pub(crate) fn set_tolerance(&mut self, tolerance: Duration) {
        self.window = TimestampWindow::new(tolerance);
    }

    pub(crate) fn set_nonce_shape(&mut self, shape: NonceShape) {
        self.shape = shape;
    }

    pub(crate) fn set_clock(&mut self, clock: SharedClock) {
        self.clock = clock;
    }

    pub(crate) fn set_skew_margin(&mut self, margin: Duration) {
        self.skew_margin = margin.as_secs();
    }

    pub(crate) fn window(&self) -> TimestampWindow {
        self.window
    }

    /// Checks the timestamp and the nonce's shape, and returns what to claim. Claiming is the
    /// caller's.
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<ReplayTicket, ReplayError> {
        let now = self.clock.now_unix();
        match &self.source {
            Source::Headers {
                scheme,
                timestamp,
                nonce,
                key_id,
            } => {
                let value = single(headers, timestamp).ok_or(ReplayError::TimestampMissing)?;
                let ts = self.window.parse_and_check(value, now)?;
                let nonce = single(headers, nonce).ok_or(ReplayError::NonceMalformed)?;
                if !self.shape.matches(nonce) {
                    return Err(ReplayError::NonceMalformed);
                }
                let key_id = match key_id {
                    // Missing or repeated would claim in another namespace than the request
                    // it copies: refuse instead.
                    Some(name) => single(headers, name)
                        .filter(|value| !value.is_empty())
                        .ok_or_else(|| ReplayError::KeyIdMalformed {
                            header: name.clone(),
                        })?,
                    None => b"",
                };
                let key = replay_key(scheme.as_bytes(), &self.middle(key_id), nonce);
                // Released after a failed handling only when a verifier outside vouched that
                // these very headers name a message whose body its signature covers (Standard
                // Webhooks: the id and timestamp are signed with the body). Tranzila's token
                // covers no body: never.
                let releasable = extensions
                    .get::<VerifiedSignature>()
                    .is_some_and(|verified| {
                        verified.covers_content()
                            && verified.timestamp() == Some(ts)
                            && verified.message_id().is_some_and(|id| id.as_ref() == nonce)
                    });
                Ok(self.ticket(key, ts, releasable))
            }
            Source::Verified { untimed_retention } => {
                let verified = extensions
                    .get::<VerifiedSignature>()
                    .ok_or(ReplayError::Misconfigured)?;
                let nonce = verified.replay_key();
                if !self.shape.matches(nonce) {
                    return Err(ReplayError::NonceMalformed);
                }
                // The message, never the key that verified it: a rotation's second signature
                // must not make a second claim.
                let key = replay_key(verified.scheme().as_bytes(), &self.middle(b""), nonce);
                let releasable = verified.covers_content();
                match (verified.timestamp(), untimed_retention) {
                    (Some(ts), _) => {
                        self.window.check(ts, now)?;
                        Ok(self.ticket(key, ts, releasable))
                    }
                    (None, Some(retention)) => Ok(ReplayTicket {
                        key,
                        timestamp: None,
                        expires_at: now
                            .saturating_add(*retention)
                            .saturating_add(self.skew_margin),
                        releasable,
                    }),
                    (None, None) => Err(ReplayError::UntimedSignature),
                }
            }
        }
    }

    /// The namespace part of a store key: the key id alone when there is no namespace (the
    /// keys of 0.1), else the namespace length-prefixed and then the key id. A key id is a
    /// header value, which never holds a NUL byte, and a length prefix starts with one, so
    /// the two forms never meet.
    fn middle<'k>(&self, key_id: &'k [u8]) -> Cow<'k, [u8]> {
        let namespace = self.namespace.as_bytes();
        if namespace.is_empty() {
            // The common case: no copy, `replay_key` makes the one allocation.
            return Cow::Borrowed(key_id);
        }
        let mut middle = Vec::with_capacity(4 + namespace.len() + key_id.len());
        let len = u32::try_from(namespace.len()).unwrap_or(u32::MAX);
        middle.extend_from_slice(&len.to_be_bytes());
        middle.extend_from_slice(namespace);
        middle.extend_from_slice(key_id);
        Cow::Owned(middle)
    }

    fn ticket(&self, key: Vec<u8>, timestamp: u64, releasable: bool) -> ReplayTicket {
        ReplayTicket {
            key,
            releasable,
            timestamp: Some(timestamp),
            expires_at: self
                .window
                .last_valid_second(timestamp)
                .saturating_add(self.skew_margin),
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Policy");
        self.debug_fields(&mut d);
        d.finish()
    }
}

impl Policy {
    /// The fields of the layer's `Debug`: no secret among them.
    pub(crate) fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        match &self.source {
            Source::Headers {
                scheme,
                timestamp,
                nonce,
                key_id,
            } => d
                .field("scheme", scheme)
                .field("timestamp_header", timestamp)
                .field("nonce_header", nonce)
                .field("key_id_header", key_id),
            Source::Verified { untimed_retention } => d
                .field("source", &"VerifiedSignature")
                .field("untimed_retention_secs", untimed_retention),
        };
        d.field("namespace", &self.namespace)
            .field("tolerance_secs", &self.window.tolerance_secs())
            .field("clock_skew_margin_secs", &self.skew_margin)
            .field("nonce_shape", &self.shape)
            .field("clock", &self.clock);
    }
}

/// The value of `name` when it is present exactly once ([`single_value`]); `None` when it is
/// missing or repeated.
fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h [u8]> {
    single_value(headers, name)
        .ok()
        .flatten()
        .map(HeaderValue::as_bytes)
}

/// The store key for `nonce` in the namespace (`scheme`, `key_id`): each part but the last
/// length-prefixed (4 bytes, big-endian), so different triples never give the same bytes
/// (the `replay_key_round_trips` property test decodes every key back to its triple).
///
/// ```
/// use tollgate_replay::replay_key;
///
/// assert_ne!(replay_key(b"a", b"bc", b"d"), replay_key(b"ab", b"c", b"d"));
/// assert_eq!(replay_key(b"s", b"k", b"n"), b"\0\0\0\x01s\0\0\0\x01kn");
/// ```
pub fn replay_key(scheme: &[u8], key_id: &[u8], nonce: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + scheme.len() + key_id.len() + nonce.len());
    for part in [scheme, key_id] {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        key.extend_from_slice(&len.to_be_bytes());
        key.extend_from_slice(part);
    }
    key.extend_from_slice(nonce);
    key
}

/// What a request asks the store to claim, from
/// [`ReplayGuardLayer::check`](crate::ReplayGuardLayer::check).
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayTicket {
    key: Vec<u8>,
    timestamp: Option<u64>,
    expires_at: u64,
    releasable: bool,
}

impl ReplayTicket {
    /// The namespaced key ([`replay_key`]).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The request's signed timestamp (Unix seconds), inside the window; `None` for a
    /// signature that signs no timestamp ([`ReplayGuardLayer::untimed_retention`](crate::ReplayGuardLayer::untimed_retention)).
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    /// Until when the claim must hold: `timestamp + tolerance` (inclusive), or the guard's
    /// now plus the untimed retention.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Whether a failed handling may release the claim so the sender can retry: only when
    /// the verified signature covers the body
    /// ([`VerifiedSignature::covers_content`]), so a retry can only be the same message.
    /// A nonce whose signature leaves the body out (Tranzila's token, a header-based guard)
    /// authorises any body sent with it and stays spent whatever the answer.
    pub fn releasable(&self) -> bool {
        self.releasable
    }
}

impl fmt::Debug for ReplayTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayTicket")
            .field("key_len", &self.key.len())
            .field("timestamp", &self.timestamp)
            .field("expires_at", &self.expires_at)
            .field("releasable", &self.releasable)
            .finish()
    }
}

/// Why the guard refused a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayError {
    /// The timestamp header is missing or repeated: 400 `timestamp_malformed`.
    TimestampMissing,
    /// The timestamp is malformed (400) or outside the window (401).
    Timestamp(TimestampError),
    /// The nonce is missing, repeated or of the wrong shape: 400 `nonce_malformed`.
    NonceMalformed,
    /// The key id header
    /// ([`ReplayGuardLayer::key_id_header`](crate::ReplayGuardLayer::key_id_header)) is
    /// missing, empty or repeated: 400 `header_malformed`.
    KeyIdMalformed {
        /// The key id header's name.
        header: HeaderName,
    },
    /// The nonce was claimed before and has not expired: 401 `replayed`.
    Replayed,
    /// The store failed: 503 `store_full` or `store_unavailable` (fail closed).
    Store(StoreError),
    /// No [`VerifiedSignature`] to read: 500
    /// [`REPLAY_GUARD_MISCONFIGURED`](code::REPLAY_GUARD_MISCONFIGURED).
    Misconfigured,
    /// The verified signature signs no timestamp and the guard has no
    /// [`untimed_retention`](crate::ReplayGuardLayer::untimed_retention): 500
    /// [`REPLAY_GUARD_MISCONFIGURED`](code::REPLAY_GUARD_MISCONFIGURED).
    UntimedSignature,
}

impl ReplayError {
    /// The refusal: [`Rejection::from_code`] with the code above (its one status and message);
    /// a missing key id header is named.
    ///
    /// ```
    /// use tollgate_replay::ReplayError;
    ///
    /// let replayed = ReplayError::Replayed.to_rejection();
    /// assert_eq!(replayed.status(), 401);
    /// assert_eq!(replayed.code(), "replayed");
    /// assert_eq!(replayed.message(), "request was already received");
    /// ```
    pub fn to_rejection(&self) -> Rejection {
        match self {
            Self::TimestampMissing => Rejection::from_code(code::TIMESTAMP_MALFORMED),
            Self::Timestamp(err) => err.to_rejection(),
            Self::NonceMalformed => Rejection::from_code(code::NONCE_MALFORMED),
            Self::KeyIdMalformed { header } => Rejection::from_code(code::HEADER_MALFORMED)
                .with_detail(format_args!("`{header}` must be present once, not empty")),
            Self::Replayed => Rejection::from_code(code::REPLAYED),
            Self::Store(err) => err.to_rejection(),
            Self::Misconfigured | Self::UntimedSignature => {
                Rejection::from_code(code::REPLAY_GUARD_MISCONFIGURED)
            }
        }
    }
}

impl From<TimestampError> for ReplayError {
    fn from(err: TimestampError) -> Self {
        Self::Timestamp(err)
    }
}

impl From<StoreError> for ReplayError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimestampMissing => f.write_str("timestamp header is missing or repeated"),
            Self::Timestamp(err) => err.fmt(f),
            Self::NonceMalformed => f.write_str("nonce is missing or malformed"),
            Self::KeyIdMalformed { header } => {
                write!(f, "key id header `{header}` is missing, empty or repeated")
            }
            Self::Replayed => f.write_str("nonce was already claimed"),
            Self::Store(err) => err.fmt(f),
            Self::Misconfigured => f.write_str("no verified signature reached the replay guard"),
            Self::UntimedSignature => f.write_str(
                "the verified signature signs no timestamp: set ReplayGuardLayer::untimed_retention \
                 to say how long to remember it",
            ),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Timestamp(err) => Some(err),
            Self::Store(err) => Some(err),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The inverse of [`replay_key`]: recovers the triple from the key alone. That it exists
    /// (and round-trips) is the proof that two different triples never share a key.
    fn split_replay_key(key: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
        let mut rest = key;
        let mut parts = [&[][..]; 2];
        for part in &mut parts {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
            if tail.len() < len {
                return None;
            }
            let (value, tail) = tail.split_at(len);
            *part = value;
            rest = tail;
        }
        Some((parts[0], parts[1], rest))
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    /// Few symbols, short parts, and the length bytes themselves among the symbols: where
    /// accidental collisions would be found if there were any.
    fn tricky(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![Just(0u8), Just(1), Just(b':'), Just(b'a')],
            0..max,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn replay_key_round_trips(scheme in bytes(40), key_id in bytes(40), nonce in bytes(120)) {
            let key = replay_key(&scheme, &key_id, &nonce);
            prop_assert_eq!(key.len(), 8 + scheme.len() + key_id.len() + nonce.len());
            let split = split_replay_key(&key);
            prop_assert_eq!(
                split,
                Some((scheme.as_slice(), key_id.as_slice(), nonce.as_slice()))
            );
        }

        #[test]
        fn different_triples_never_share_a_key(
            a in (tricky(6), tricky(6), tricky(6)),
            b in (tricky(6), tricky(6), tricky(6)),
        ) {
            let key_a = replay_key(&a.0, &a.1, &a.2);
            let key_b = replay_key(&b.0, &b.1, &b.2);
            prop_assert_eq!(key_a == key_b, a == b);
        }
    }

    #[test]
    fn the_presets_namespace_as_documented() {
        assert_eq!(
            replay_key(b"tranzila", b"app", b"n"),
            b"\0\0\0\x08tranzila\0\0\0\x03appn"
        );
        // Shifting bytes between the parts changes the key.
        assert_ne!(replay_key(b"ab", b"", b"c"), replay_key(b"a", b"b", b"c"));
        assert_ne!(replay_key(b"", b"ab", b"c"), replay_key(b"", b"a", b"bc"));
        assert_ne!(replay_key(b"a", b"", b""), replay_key(b"", b"a", b""));
    }
}
