//! Facts a verifying layer establishes, put into request extensions for handlers and for the
//! layers inside it (the replay guard reads [`VerifiedSignature`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// A signature that verified: which scheme, which key, the signed timestamp if the scheme has
/// one, and the bytes that identify the request for replay protection.
///
/// Inserted into the request's extensions by tollgate-signature's verifier (and by the
/// Tranzila verifier); tollgate-replay's guard can take its timestamp and replay key from here,
/// namespaced by scheme and key id so that two schemes never collide.
///
/// `Debug` prints the lengths of the signature and message id, not their bytes.
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
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    scheme: Cow<'static, str>,
    key_id: Arc<str>,
    timestamp: Option<u64>,
    signature: Bytes,
    message_id: Option<Bytes>,
}

impl VerifiedSignature {
    /// A verified `signature` (the raw MAC bytes received) made by `scheme` with key `key_id`.
    pub fn new(scheme: impl Into<Cow<'static, str>>, key_id: Arc<str>, signature: Bytes) -> Self {
        Self {
            scheme: scheme.into(),
            key_id,
            timestamp: None,
            signature,
            message_id: None,
        }
    }

    /// Records the signed timestamp (Unix seconds).
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: u64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Records a signed message id or nonce (Standard Webhooks' `webhook-id`, Tranzila's nonce).
    #[must_use]
    pub fn with_message_id(mut self, message_id: Bytes) -> Self {
        self.message_id = Some(message_id);
        self
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

    /// The raw signature bytes that verified.
    pub fn signature(&self) -> &Bytes {
        &self.signature
    }

    /// The signed message id or nonce, when the scheme has one.
    pub fn message_id(&self) -> Option<&Bytes> {
        self.message_id.as_ref()
    }

    /// What identifies this request for replay protection: the message id when there is one,
    /// else the signature.
    pub fn replay_key(&self) -> &[u8] {
        self.message_id.as_ref().unwrap_or(&self.signature)
    }
}

impl fmt::Debug for VerifiedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedSignature")
            .field("scheme", &self.scheme)
            .field("key_id", &self.key_id)
            .field("timestamp", &self.timestamp)
            .field("signature_len", &self.signature.len())
            .field("message_id_len", &self.message_id.as_ref().map(Bytes::len))
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
}
