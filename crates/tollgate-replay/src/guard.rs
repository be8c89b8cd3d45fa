//! [`ReplayGuard`]: where the timestamp and nonce come from and how they are checked, as plain
//! functions with no tower in sight.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use http::{Extensions, HeaderMap, StatusCode};
use tollgate_core::rejection::code;
use tollgate_core::timestamp::{TimestampError, TimestampWindow};
use tollgate_core::{Clock, Rejection, SharedClock, SystemClock, VerifiedSignature};

use crate::store::StoreError;

/// 500: the guard reads [`VerifiedSignature`] but no verifier ran before it (a deployment
/// error: the guard must sit inside the signature verifier).
pub const REPLAY_GUARD_MISCONFIGURED: &str = "replay_guard_misconfigured";

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

/// The replay rules of one scheme: where the timestamp and nonce are read, the window, the
/// nonce's shape and the clock. Used by [`ReplayGuardLayer`](crate::ReplayGuardLayer); usable
/// alone through [`check`](ReplayGuard::check).
///
/// The checks, in order:
///
/// 1. the timestamp parses as ASCII digits only (400 `timestamp_malformed`, also when the
///    header is missing or repeated) and lies within `now ± tolerance`, inclusive (401
///    `timestamp_out_of_window`; milliseconds sent where seconds are expected land here);
/// 2. the nonce has the configured [`NonceShape`] (400 `nonce_malformed`, also when missing);
/// 3. the store claims the nonce until `timestamp + tolerance` (401 `replayed` when it was
///    already claimed, 503 `store_unavailable` when the store fails: fail closed).
///
/// With [`key_id_header`](ReplayGuard::key_id_header), that header must be present once (400
/// `header_malformed` otherwise), checked between steps 2 and 3.
///
/// # TTL semantics
///
/// The guard asks the store to hold a claim until
/// [`TimestampWindow::last_valid_second`]`(timestamp)` (plus the optional
/// [`clock_skew_margin`](ReplayGuard::clock_skew_margin)), the last second at which the window
/// still accepts the request by the guard's clock. The store holds it until the later of that
/// and its own "now" plus its minimum retention ([`held_until`](crate::held_until)), so a
/// replay is refused even when the guard's and the store's clocks disagree. Once a claim
/// expires, the same request is refused by the window (401 `timestamp_out_of_window`), not
/// accepted again. See the crate docs' "TTL semantics".
///
/// # Namespaces
///
/// Keys are claimed as `(scheme, namespace + key id header, nonce)` with
/// [`replay_key`], so two schemes, two [`namespace`](ReplayGuard::namespace)s or two partners'
/// app keys never collide. With
/// [`from_verified_signature`](ReplayGuard::from_verified_signature) there is no key id in
/// the key: the nonce is the message's identity ([`VerifiedSignature::replay_key`]), the same
/// whichever key of a rotating ring verified it.
///
/// ```
/// use http::HeaderMap;
/// use tollgate_core::ManualClock;
/// use tollgate_replay::ReplayGuard;
///
/// let guard = ReplayGuard::standard_webhooks().clock(ManualClock::new(1_700_000_100));
/// let mut headers = HeaderMap::new();
/// headers.insert("webhook-id", "msg_2ZzA".parse().unwrap());
/// headers.insert("webhook-timestamp", "1700000000".parse().unwrap());
/// let ticket = guard.check(&headers, &http::Extensions::new()).unwrap();
/// assert_eq!(ticket.timestamp(), Some(1_700_000_000));
/// assert_eq!(ticket.expires_at(), 1_700_000_300);
///
/// headers.insert("webhook-timestamp", "+1700000000".parse().unwrap());
/// let refused = guard.check(&headers, &http::Extensions::new()).unwrap_err();
/// assert_eq!(refused.to_rejection().code(), "timestamp_malformed");
/// ```
#[derive(Clone)]
pub struct ReplayGuard {
    source: Source,
    namespace: Cow<'static, str>,
    window: TimestampWindow,
    shape: NonceShape,
    clock: SharedClock,
    skew_margin: u64,
}

/// The default shape of header nonces: 1 to 256 visible ASCII characters.
const DEFAULT_TOKEN: NonceShape = NonceShape::Token { max_len: 256 };

impl ReplayGuard {
    /// Reads the timestamp (Unix seconds) and the nonce from two headers; claims them in the
    /// namespace `scheme`. The nonce shape defaults to [`NonceShape::Token`] of at most 256
    /// characters, the window to ±300 s.
    pub fn headers(
        scheme: impl Into<Cow<'static, str>>,
        timestamp: HeaderName,
        nonce: HeaderName,
    ) -> Self {
        Self {
            source: Source::Headers {
                scheme: scheme.into(),
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

    /// Tranzila: `X-tranzila-api-request-time` and `X-tranzila-api-nonce` (exactly 80 hex
    /// characters), namespaced by the app key in `X-tranzila-api-app-key`. Tranzila's access
    /// token does not cover the method, path or body, so this claim is the only thing that
    /// stops a captured header set from being replayed on another request.
    pub fn tranzila() -> Self {
        Self::headers(
            "tranzila",
            HeaderName::from_static("x-tranzila-api-request-time"),
            HeaderName::from_static("x-tranzila-api-nonce"),
        )
        .key_id_header(HeaderName::from_static("x-tranzila-api-app-key"))
        .nonce_shape(NonceShape::Hex(80))
    }

    /// The canonical Method + Path + Body + Timestamp scheme: the same as
    /// [`from_verified_signature`](ReplayGuard::from_verified_signature), since the scheme has
    /// no nonce and its message is what its signature covers. Place it inside the verifier.
    pub fn canonical() -> Self {
        Self::from_verified_signature()
    }

    /// Standard Webhooks: `webhook-timestamp` and the message id `webhook-id`.
    pub fn standard_webhooks() -> Self {
        Self::headers(
            "standard-webhooks",
            HeaderName::from_static("webhook-timestamp"),
            HeaderName::from_static("webhook-id"),
        )
    }

    /// Reads the [`VerifiedSignature`] that a verifier outside this guard inserted: its
    /// **signed** timestamp, and its [replay key](VerifiedSignature::replay_key), which names
    /// the message (its signed id, else the digest of the signed bytes) and never the key that
    /// verified it, so a message signed under an old and a new key during a rotation is one
    /// claim however the signature list is edited. Claims are namespaced by the scheme (and
    /// [`namespace`](ReplayGuard::namespace)).
    ///
    /// A request without the extension is answered 500 [`REPLAY_GUARD_MISCONFIGURED`]. So is a
    /// verified signature that signs no timestamp (body-only schemes: OneKey,
    /// `X-Webhook-Signature`, GitHub) unless [`untimed_retention`](ReplayGuard::untimed_retention)
    /// says how long to remember it: a time the signature does not cover bounds nothing, so
    /// the guard never reads one from an unsigned header.
    pub fn from_verified_signature() -> Self {
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

    /// Claims in the namespace `namespace` (default empty), next to the scheme: give each
    /// sender its own (one guard per sender's route), so that message ids chosen by one sender
    /// can never collide with, or pre-empt, another's. Standard Webhooks' `webhook-id` is
    /// unique per sender only.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<Cow<'static, str>>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// With [`from_verified_signature`](ReplayGuard::from_verified_signature): accept verified
    /// signatures that sign no timestamp (body-only schemes), remembering each for `retention`
    /// from its first acceptance (whole seconds, at least 1).
    ///
    /// A body-only signature never expires: the same body and signature stay valid for as long
    /// as the key does. So this guard can promise only that the same signed body is refused for
    /// `retention` after it was accepted; after that it is accepted again. Size `retention` to
    /// cover the sender's whole retry schedule and as long as a captured request is a risk —
    /// days, not minutes — and use a store that keeps claims that long (`RedisNonceStore`;
    /// a `MemoryNonceStore` needs `retention × requests per second` of capacity and forgets on
    /// restart). Where the body carries an event id, deduplicating on that id in your handler
    /// (in your database, for good) is the stronger rule. Ignored with the header presets.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate_replay::ReplayGuard;
    ///
    /// let guard = ReplayGuard::from_verified_signature()
    ///     .untimed_retention(Duration::from_secs(7 * 24 * 3600));
    /// # let _ = guard;
    /// ```
    #[must_use]
    pub fn untimed_retention(mut self, retention: Duration) -> Self {
        if let Source::Verified { untimed_retention } = &mut self.source {
            *untimed_retention = Some(retention.as_secs().max(1));
        }
        self
    }

    /// Namespaces claims by the value of this header too (Tranzila's app key), so the same
    /// nonce from two partners is two claims. The header must then be present exactly once
    /// and non-empty (else 400 `header_malformed`): a copy of a request without it, or with
    /// it twice, would otherwise claim in another namespace. Ignored with
    /// `from_verified_signature`, whose claims name the message, not a key.
    #[must_use]
    pub fn key_id_header(mut self, header: HeaderName) -> Self {
        if let Source::Headers { key_id, .. } = &mut self.source {
            *key_id = Some(header);
        }
        self
    }

    /// The tolerance either side of the clock (default 300 s; whole seconds).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.window = TimestampWindow::new(tolerance);
        self
    }

    /// The shape nonces must have.
    #[must_use]
    pub fn nonce_shape(mut self, shape: NonceShape) -> Self {
        self.shape = shape;
        self
    }

    /// The clock the window is checked against (default [`SystemClock`]).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Asks the store to hold claims `margin` longer than the window needs:
    /// `expires_at = timestamp + tolerance + margin` (default 0; whole seconds).
    ///
    /// The store decides expiry with its own clock. The stores of this crate already hold
    /// every claim for a minimum retention from their clock (see [`held_until`]), which
    /// covers any disagreement between this guard's clock and the store's; this margin
    /// additionally covers a store of your own without such a retention, up to `margin`
    /// seconds of skew between the store's clock and the verifiers' clocks.
    ///
    /// [`held_until`]: crate::held_until
    #[must_use]
    pub fn clock_skew_margin(mut self, margin: Duration) -> Self {
        self.skew_margin = margin.as_secs();
        self
    }

    /// The window.
    pub fn window(&self) -> TimestampWindow {
        self.window
    }

    /// Checks the timestamp and the nonce's shape, and returns what to claim: steps 1 and 2
    /// of the list above. Claiming (step 3) is the caller's.
    pub fn check(
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
                        .ok_or(ReplayError::KeyIdMalformed)?,
                    None => b"",
                };
                let key = replay_key(scheme.as_bytes(), &self.middle(key_id), nonce);
                Ok(self.ticket(key, ts))
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
                match (verified.timestamp(), untimed_retention) {
                    (Some(ts), _) => {
                        self.window.check(ts, now)?;
                        Ok(self.ticket(key, ts))
                    }
                    (None, Some(retention)) => Ok(ReplayTicket {
                        key,
                        timestamp: None,
                        expires_at: now
                            .saturating_add(*retention)
                            .saturating_add(self.skew_margin),
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

    fn ticket(&self, key: Vec<u8>, timestamp: u64) -> ReplayTicket {
        ReplayTicket {
            key,
            timestamp: Some(timestamp),
            expires_at: self
                .window
                .last_valid_second(timestamp)
                .saturating_add(self.skew_margin),
        }
    }
}

impl fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ReplayGuard");
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
            .field("clock", &self.clock)
            .finish()
    }
}

/// The value of `name` when it is present exactly once.
fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h [u8]> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    Some(first.as_bytes())
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

/// What a request asks the store to claim, from [`ReplayGuard::check`].
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayTicket {
    key: Vec<u8>,
    timestamp: Option<u64>,
    expires_at: u64,
}

impl ReplayTicket {
    /// The namespaced key ([`replay_key`]).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The request's signed timestamp (Unix seconds), inside the window; `None` for a
    /// signature that signs no timestamp ([`ReplayGuard::untimed_retention`]).
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    /// Until when the claim must hold: `timestamp + tolerance` (inclusive), or the guard's
    /// now plus the untimed retention.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

impl fmt::Debug for ReplayTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayTicket")
            .field("key_len", &self.key.len())
            .field("timestamp", &self.timestamp)
            .field("expires_at", &self.expires_at)
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
    /// The key id header ([`ReplayGuard::key_id_header`]) is missing, empty or repeated: 400
    /// `header_malformed`.
    KeyIdMalformed,
    /// The nonce was claimed before and has not expired: 401 `replayed`.
    Replayed,
    /// The store failed: 503 `store_unavailable` (fail closed).
    Store(StoreError),
    /// No [`VerifiedSignature`] to read: 500 [`REPLAY_GUARD_MISCONFIGURED`].
    Misconfigured,
    /// The verified signature signs no timestamp and the guard has no
    /// [`untimed_retention`](ReplayGuard::untimed_retention): 500
    /// [`REPLAY_GUARD_MISCONFIGURED`].
    UntimedSignature,
}

impl ReplayError {
    /// The response's status, stable code and message.
    pub fn to_rejection(&self) -> Rejection {
        match self {
            Self::TimestampMissing => Rejection::new(
                StatusCode::BAD_REQUEST,
                code::TIMESTAMP_MALFORMED,
                "timestamp must be Unix seconds as ASCII digits",
            ),
            Self::Timestamp(err) => err.to_rejection(),
            Self::NonceMalformed => Rejection::new(
                StatusCode::BAD_REQUEST,
                code::NONCE_MALFORMED,
                "nonce is missing or malformed",
            ),
            Self::KeyIdMalformed => Rejection::new(
                StatusCode::BAD_REQUEST,
                code::HEADER_MALFORMED,
                "key id header is missing or repeated",
            ),
            Self::Replayed => Rejection::new(
                StatusCode::UNAUTHORIZED,
                code::REPLAYED,
                "request was already received",
            ),
            Self::Store(err) => err.to_rejection(),
            Self::Misconfigured | Self::UntimedSignature => Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                REPLAY_GUARD_MISCONFIGURED,
                "replay protection is misconfigured",
            ),
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
            Self::KeyIdMalformed => f.write_str("key id header is missing, empty or repeated"),
            Self::Replayed => f.write_str("nonce was already claimed"),
            Self::Store(err) => err.fmt(f),
            Self::Misconfigured => f.write_str("no verified signature reached the replay guard"),
            Self::UntimedSignature => f.write_str(
                "the verified signature signs no timestamp: set ReplayGuard::untimed_retention \
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
