//! Facts a verifying layer establishes, put into request extensions for handlers and for the
//! layers inside it (the replay guard reads [`VerifiedSignature`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// A signature that verified: which scheme, which key, the signed timestamp if the scheme has
/// one, and what identifies the signed *message* for replay protection.
///
/// # Message identity
///
/// [`replay_key`](VerifiedSignature::replay_key) names the message, never the key that
/// happened to verify it, so a message signed under two keys during a rotation (Stripe's
/// several `v1=`, Standard Webhooks' signature list) is one message, however the attacker
/// edits the list. In order of preference it is:
///
/// 1. the signed message id or nonce ([`with_message_id`](VerifiedSignature::with_message_id):
///    Standard Webhooks' `webhook-id`, Tranzila's nonce);
/// 2. the SHA-256 digest of the exact bytes the signature covers
///    ([`with_signed_content`](VerifiedSignature::with_signed_content): the body for body-only
///    schemes, `t.body` for Stripe, method + path + body + timestamp for the canonical scheme),
///    computed on first use only, so a stack without a replay guard never pays for it;
/// 3. the raw signature bytes, for a scheme of your own that records neither (then a message
///    signed with two keys has two identities: record its content).
///
/// Inserted into the request's extensions by tollgate-signature's verifier (and by the
/// Tranzila verifier); tollgate-replay's guard can take its timestamp and replay key from here,
/// namespaced by scheme so that two schemes never collide (never by key id: see "Message
/// identity").
///
/// `Debug` prints the lengths of the signature and message id, not their bytes.
///
/// A signature of up to [`VerifiedSignature::INLINE_LEN`] bytes made with
/// [`from_slice`](VerifiedSignature::from_slice) is held inline, so recording it allocates
/// nothing; [`signature_bytes`](VerifiedSignature::signature_bytes) and
/// [`replay_key`](VerifiedSignature::replay_key) read it in place, and
/// [`signature`](VerifiedSignature::signature) makes a shared `Bytes` of it on first use.
///
/// ```
/// use bytes::Bytes;
/// use tollgate_core::VerifiedSignature;
///
/// let verified = VerifiedSignature::new("stripe", "2026-11".into(), Bytes::from_static(b"\x01\x02"))
///     .with_timestamp(1_700_000_000);
/// assert_eq!(verified.key_id(), "2026-11");
/// assert_eq!(verified.timestamp(), Some(1_700_000_000));
/// assert_eq!(verified.replay_key(), b"\x01\x02");
/// ```
#[derive(Clone)]
pub struct VerifiedSignature {
    scheme: Cow<'static, str>,
    key_id: Arc<str>,
    timestamp: Option<u64>,
    signature: SignatureBytes,
    message_id: Option<Bytes>,
    content: Option<SignedContent>,
}

/// The exact bytes a signature covers, as `head ‖ body ‖ tail`, and their digest once asked.
#[derive(Clone)]
struct SignedContent {
    head: Bytes,
    body: Bytes,
    tail: Bytes,
    digest: OnceLock<[u8; 32]>,
    /// Whether the signed bytes tell the body apart from the rest (false for a layout that
    /// concatenates without separators, where bytes can move between path and body).
    binds_body: bool,
}

impl SignedContent {
    fn digest(&self) -> &[u8; 32] {
        self.digest.get_or_init(|| {
            let mut hash = Sha256::new();
            hash.update(&self.head);
            hash.update(&self.body);
            hash.update(&self.tail);
            hash.finalize().into()
        })
    }

    fn same_bytes(&self, other: &Self) -> bool {
        self.head.len() + self.body.len() + self.tail.len()
            == other.head.len() + other.body.len() + other.tail.len()
            && self.digest() == other.digest()
    }
}

/// The signature's bytes: a shared `Bytes`, or up to `INLINE_LEN` bytes in place (with the
/// `Bytes` made on the first call of `signature()`).
#[derive(Clone)]
enum SignatureBytes {
    Shared(Bytes),
    Inline {
        len: u8,
        bytes: [u8; VerifiedSignature::INLINE_LEN],
        shared: OnceLock<Bytes>,
    },
}

impl SignatureBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Shared(bytes) => bytes,
            Self::Inline { len, bytes, .. } => &bytes[..usize::from(*len)],
        }
    }
}

impl PartialEq for VerifiedSignature {
    fn eq(&self, other: &Self) -> bool {
        self.scheme == other.scheme
            && self.key_id == other.key_id
            && self.timestamp == other.timestamp
            && self.signature.as_slice() == other.signature.as_slice()
            && self.message_id == other.message_id
            && match (&self.content, &other.content) {
                (Some(a), Some(b)) => a.same_bytes(b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl Eq for VerifiedSignature {}

impl VerifiedSignature {
    /// The longest signature [`from_slice`](Self::from_slice) holds without allocating
    /// (64 bytes: an HMAC-SHA512 output, twice an HMAC-SHA256 one).
    pub const INLINE_LEN: usize = 64;

    /// A verified `signature` (the raw MAC bytes received) made by `scheme` with key `key_id`.
    pub fn new(scheme: impl Into<Cow<'static, str>>, key_id: Arc<str>, signature: Bytes) -> Self {
        Self {
            scheme: scheme.into(),
            key_id,
            timestamp: None,
            signature: SignatureBytes::Shared(signature),
            message_id: None,
            content: None,
        }
    }

    /// Like [`new`](Self::new), copying `signature`: held inline (no allocation) when it is at
    /// most [`INLINE_LEN`](Self::INLINE_LEN) bytes long, as every HMAC-SHA256 is.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tollgate_core::VerifiedSignature;
    ///
    /// let inline = VerifiedSignature::from_slice("onekey", "k".into(), &[7; 32]);
    /// assert_eq!(inline.signature_bytes(), &[7; 32]);
    /// assert_eq!(inline.signature(), &Bytes::from(vec![7; 32]));
    /// assert_eq!(inline, VerifiedSignature::new("onekey", "k".into(), Bytes::from(vec![7; 32])));
    /// ```
    #[inline]
    pub fn from_slice(
        scheme: impl Into<Cow<'static, str>>,
        key_id: Arc<str>,
        signature: &[u8],
    ) -> Self {
        let signature = match u8::try_from(signature.len()) {
            Ok(len) if signature.len() <= Self::INLINE_LEN => {
                let mut bytes = [0u8; Self::INLINE_LEN];
                bytes[..signature.len()].copy_from_slice(signature);
                SignatureBytes::Inline {
                    len,
                    bytes,
                    shared: OnceLock::new(),
                }
            }
            _ => SignatureBytes::Shared(Bytes::copy_from_slice(signature)),
        };
        Self {
            scheme: scheme.into(),
            key_id,
            timestamp: None,
            signature,
            message_id: None,
            content: None,
        }
    }

    /// Records the signed timestamp (Unix seconds).
    #[inline]
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: u64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Records a signed message id or nonce (Standard Webhooks' `webhook-id`, Tranzila's nonce).
    #[inline]
    #[must_use]
    pub fn with_message_id(mut self, message_id: Bytes) -> Self {
        self.message_id = Some(message_id);
        self
    }

    /// Records the exact bytes the signature covers, as `head ‖ body ‖ tail` (the bytes fed to
    /// the MAC, in order). All three are shared `Bytes`, never copied here: a scheme hands over
    /// the request's body and the small head and tail it built anyway. Their SHA-256 digest, computed on the
    /// first call of [`replay_key`](Self::replay_key) or
    /// [`content_digest`](Self::content_digest), identifies the message whatever key signed
    /// it.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tollgate_core::VerifiedSignature;
    ///
    /// // Stripe signs `t.body`: the same message under two keys has one identity.
    /// let body = Bytes::from_static(b"{}");
    /// let old = VerifiedSignature::from_slice("stripe", "old".into(), &[1; 32])
    ///     .with_signed_content(Bytes::from_static(b"1700000000."), body.clone(), Bytes::new());
    /// let new = VerifiedSignature::from_slice("stripe", "new".into(), &[2; 32])
    ///     .with_signed_content(Bytes::from_static(b"1700000000."), body, Bytes::new());
    /// assert_eq!(old.replay_key(), new.replay_key());
    /// assert_eq!(old.replay_key().len(), 32);
    /// ```
    #[inline]
    #[must_use]
    pub fn with_signed_content(mut self, head: Bytes, body: Bytes, tail: Bytes) -> Self {
        self.content = Some(SignedContent {
            head,
            body,
            tail,
            digest: OnceLock::new(),
            binds_body: true,
        });
        self
    }

    /// Records the signed content as [`with_signed_content`](Self::with_signed_content) does,
    /// for a layout whose bytes do not tell the body apart from what surrounds it (method,
    /// path and body concatenated without separators: `POST /orders/` + `42` and
    /// `POST /orders/4` + `2` sign the same bytes). The message keeps one identity
    /// ([`replay_key`](Self::replay_key)), but [`covers_content`](Self::covers_content) is
    /// `false`: a retry after a failed handling could carry another body, so its claim is
    /// never released.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tollgate_core::VerifiedSignature;
    ///
    /// let verified = VerifiedSignature::from_slice("canonical", "k".into(), &[1; 32])
    ///     .with_ambiguous_signed_content(
    ///         Bytes::from_static(b"POST/orders/"),
    ///         Bytes::from_static(b"42"),
    ///         Bytes::from_static(b"1700000000"),
    ///     );
    /// assert!(verified.content_digest().is_some());
    /// assert!(!verified.covers_content());
    /// ```
    #[inline]
    #[must_use]
    pub fn with_ambiguous_signed_content(self, head: Bytes, body: Bytes, tail: Bytes) -> Self {
        let mut verified = self.with_signed_content(head, body, tail);
        if let Some(content) = verified.content.as_mut() {
            content.binds_body = false;
        }
        verified
    }

    /// Whether the scheme recorded the bytes its signature covers, the body among them
    /// ([`with_signed_content`](Self::with_signed_content)). A signature that covers the body
    /// authorises one message; one that does not (Tranzila's access token: app key, time and
    /// nonce) authorises any body sent with it, so its nonce must stay spent whatever the
    /// answer (tollgate-replay releases a claim after a failed handling only when this is
    /// `true`).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tollgate_core::VerifiedSignature;
    ///
    /// let token = VerifiedSignature::from_slice("tranzila", "app".into(), &[1; 32]);
    /// assert!(!token.covers_content());
    /// let body = token.with_signed_content(Bytes::new(), Bytes::from_static(b"{}"), Bytes::new());
    /// assert!(body.covers_content());
    /// ```
    pub fn covers_content(&self) -> bool {
        self.content
            .as_ref()
            .is_some_and(|content| content.binds_body)
    }

    /// The SHA-256 digest of the signed content, when the scheme recorded it
    /// ([`with_signed_content`](Self::with_signed_content)).
    pub fn content_digest(&self) -> Option<&[u8; 32]> {
        self.content.as_ref().map(SignedContent::digest)
    }

    /// The scheme's name (`"onekey"`, `"canonical"`, `"standard-webhooks"`, `"stripe"`, ...).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The id of the key that matched.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The signed timestamp, when the scheme has one.
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    /// The raw signature bytes that verified, as a shared `Bytes` (made, once, on the first
    /// call when the signature is held inline; [`signature_bytes`](Self::signature_bytes)
    /// never allocates).
    pub fn signature(&self) -> &Bytes {
        match &self.signature {
            SignatureBytes::Shared(bytes) => bytes,
            SignatureBytes::Inline { len, bytes, shared } => {
                shared.get_or_init(|| Bytes::copy_from_slice(&bytes[..usize::from(*len)]))
            }
        }
    }

    /// The raw signature bytes that verified, read in place.
    pub fn signature_bytes(&self) -> &[u8] {
        self.signature.as_slice()
    }

    /// The signed message id or nonce, when the scheme has one.
    pub fn message_id(&self) -> Option<&Bytes> {
        self.message_id.as_ref()
    }

    /// What identifies this message for replay protection, whichever key verified it: the
    /// signed message id when there is one, else the digest of the signed content, else the
    /// signature (see "Message identity" above).
    pub fn replay_key(&self) -> &[u8] {
        match (&self.message_id, &self.content) {
            (Some(message_id), _) => message_id,
            (None, Some(content)) => content.digest(),
            (None, None) => self.signature.as_slice(),
        }
    }
}

impl fmt::Debug for VerifiedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedSignature")
            .field("scheme", &self.scheme)
            .field("key_id", &self.key_id)
            .field("timestamp", &self.timestamp)
            .field("signature_len", &self.signature.as_slice().len())
            .field("message_id_len", &self.message_id.as_ref().map(Bytes::len))
            .field(
                "content_len",
                &self
                    .content
                    .as_ref()
                    .map(|c| c.head.len() + c.body.len() + c.tail.len()),
            )
            .finish()
    }
}

/// The request's verified timestamp (Unix seconds), inserted by layers that checked it.
///
/// ```
/// use tollgate_core::RequestTimestamp;
///
/// assert_eq!(RequestTimestamp(1_700_000_000).unix_seconds(), 1_700_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestTimestamp(pub u64);

impl RequestTimestamp {
    /// The timestamp in Unix seconds.
    pub fn unix_seconds(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_key_prefers_message_id_and_debug_hides_bytes() {
        let v = VerifiedSignature::new(
            "standard-webhooks",
            "k".into(),
            Bytes::from_static(b"sigsig"),
        )
        .with_message_id(Bytes::from_static(b"msg_1"));
        assert_eq!(v.replay_key(), b"msg_1");
        assert_eq!(v.scheme(), "standard-webhooks");
        let debug = format!("{v:?}");
        assert!(
            !debug.contains("sigsig") && !debug.contains("msg_1"),
            "{debug}"
        );
        assert!(debug.contains("signature_len: 6"));
    }

    #[test]
    fn inline_signature_reads_like_a_shared_one() {
        let shared = VerifiedSignature::new("onekey", "k".into(), Bytes::from(vec![9u8; 32]));
        let inline = VerifiedSignature::from_slice("onekey", "k".into(), &[9u8; 32]);
        assert_eq!(inline.signature_bytes(), shared.signature_bytes());
        assert_eq!(inline.replay_key(), &[9u8; 32]);
        assert_eq!(format!("{inline:?}"), format!("{shared:?}"));
        assert_eq!(inline, shared);
        // The shared copy is made once and kept.
        let first = inline.signature().as_ptr();
        assert_eq!(inline.signature().as_ptr(), first);
        assert_eq!(inline.signature(), shared.signature());
        // Longer than the inline room: still exact.
        let long = VerifiedSignature::from_slice("x", "k".into(), &[1u8; 65]);
        assert_eq!(long.signature_bytes(), &[1u8; 65][..]);
        assert_eq!(long.signature().len(), 65);
        assert_ne!(long, inline);
        let empty = VerifiedSignature::from_slice("x", "k".into(), &[]);
        assert_eq!(empty.signature(), &Bytes::new());
    }
}
