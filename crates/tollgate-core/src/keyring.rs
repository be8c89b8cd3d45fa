//! [`KeyRing`]: one signing key and the keys still accepted, for 90-day rotation.

use std::fmt;
use std::sync::Arc;

use crate::{Secret, SecretError};

/// A secret with an id and an optional expiry, one member of a [`KeyRing`].
///
/// ```
/// use tollgate_core::{Key, Secret};
///
/// let key = Key::new("2026-q4", Secret::from_string("s3cr3t")).not_after(1_800_000_000);
/// assert_eq!(key.id(), "2026-q4");
/// assert!(key.is_usable_at(1_800_000_000));
/// assert!(!key.is_usable_at(1_800_000_001));
/// ```
#[derive(Clone)]
pub struct Key {
    id: Arc<str>,
    secret: Secret,
    not_after: Option<u64>,
}

impl Key {
    /// A key with this id that never expires (see [`Key::not_after`]).
    pub fn new(id: impl Into<Arc<str>>, secret: Secret) -> Self {
        Self {
            id: id.into(),
            secret,
            not_after: None,
        }
    }

    /// The last Unix second at which this key is still used (inclusive).
    #[must_use]
    pub fn not_after(mut self, unix_seconds: u64) -> Self {
        self.not_after = Some(unix_seconds);
        self
    }

    /// The key's id, reported when it verifies a signature.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key's id as a shared string (cheap to clone into an extension).
    pub fn shared_id(&self) -> Arc<str> {
        Arc::clone(&self.id)
    }

    /// The secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The expiry set with [`Key::not_after`], if any.
    pub fn expires_at(&self) -> Option<u64> {
        self.not_after
    }

    /// Whether the key may be used at `now_unix`: it has no expiry, or `now_unix` is not past it.
    pub fn is_usable_at(&self, now_unix: u64) -> bool {
        self.not_after.is_none_or(|last| now_unix <= last)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("secret", &self.secret)
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// Keys for the providers' rotation rule: create a new key, deploy it, then revoke the old one.
///
/// A ring holds one *signing* key (the newest, used to sign outgoing requests) and any number
/// of older keys that are still accepted when *verifying*, each until its own
/// [`Key::not_after`]. Verification tries every usable key, newest first, and reports which
/// one matched.
///
/// ```
/// use tollgate_core::{Key, KeyRing, Secret};
///
/// let ring = KeyRing::new(Key::new("old", Secret::from_string("old-secret")).not_after(1_000))
///     .rotate(Key::new("new", Secret::from_string("new-secret")));
///
/// assert_eq!(ring.signing_key().id(), "new");
/// let ids = |now| ring.verification_keys(now).map(|k| k.id().to_owned()).collect::<Vec<_>>();
/// assert_eq!(ids(1_000), ["new", "old"]);
/// assert_eq!(ids(1_001), ["new"]);
///
/// // Which key verifies a signature made with the old secret?
/// let matched = ring.find_verifying(999, |secret| secret.expose_secret() == b"old-secret");
/// assert_eq!(matched.map(|k| k.id()), Some("old"));
/// ```
#[derive(Clone, Debug)]
pub struct KeyRing {
    /// Newest first; `keys[0]` signs.
    keys: Arc<[Key]>,
}

impl KeyRing {
    /// A ring whose signing key is `key`.
    pub fn new(key: Key) -> Self {
        Self {
            keys: Arc::from(vec![key]),
        }
    }

    /// A ring of one key with the id `"default"` that never expires.
    pub fn single(secret: Secret) -> Self {
        Self::new(Key::new("default", secret))
    }

    /// Makes `key` the signing key; the previous keys stay for verification until their own
    /// expiry. Give the outgoing key a [`Key::not_after`] before rotating it out.
    #[must_use]
    pub fn rotate(self, key: Key) -> Self {
        let mut keys = Vec::with_capacity(self.keys.len() + 1);
        keys.push(key);
        keys.extend(self.keys.iter().cloned());
        Self {
            keys: Arc::from(keys),
        }
    }

    /// Adds an older key that is accepted when verifying but never used to sign.
    #[must_use]
    pub fn with_verification_key(self, key: Key) -> Self {
        let mut keys = self.keys.to_vec();
        keys.push(key);
        Self {
            keys: Arc::from(keys),
        }
    }

    /// The key that signs (the newest), whatever its expiry.
    pub fn signing_key(&self) -> &Key {
        // The ring is never empty: every constructor takes a key.
        &self.keys[0]
    }

    /// The signing key if it is usable at `now_unix`; `None` once it expired, so that a
    /// client refuses to sign with a revoked key.
    pub fn signing_key_at(&self, now_unix: u64) -> Option<&Key> {
        Some(self.signing_key()).filter(|key| key.is_usable_at(now_unix))
    }

    /// Every key usable at `now_unix`, newest first.
    pub fn verification_keys(&self, now_unix: u64) -> impl Iterator<Item = &Key> + '_ {
        self.keys
            .iter()
            .filter(move |key| key.is_usable_at(now_unix))
    }

    /// All keys, newest first, expired ones included.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// This ring without the keys whose id is `id`: how a leaked or retired key is revoked
    /// (store the result in a [`KeyRingHandle`](crate::KeyRingHandle)). `None` when no key
    /// would remain. When the signing key goes, the next key in the ring signs.
    ///
    /// ```
    /// use tollgate_core::{Key, KeyRing, Secret};
    ///
    /// let ring = KeyRing::new(Key::new("old", Secret::from_string("old-secret")))
    ///     .rotate(Key::new("new", Secret::from_string("new-secret")));
    /// let revoked = ring.without("old").unwrap();
    /// assert_eq!(revoked.keys().iter().map(|k| k.id()).collect::<Vec<_>>(), ["new"]);
    /// assert!(revoked.without("new").is_none());
    /// ```
    #[must_use]
    pub fn without(&self, id: &str) -> Option<Self> {
        let keys: Vec<Key> = self
            .keys
            .iter()
            .filter(|key| key.id() != id)
            .cloned()
            .collect();
        (!keys.is_empty()).then(|| Self {
            keys: Arc::from(keys),
        })
    }

    /// Fails with [`SecretError::Blank`] (naming the key id, never the secret) when the
    /// signing key is [blank](Secret::is_blank): no layer may sign with it, and a ring whose
    /// newest key is blank is a configuration mistake. What
    /// [`KeyRingHandle::store`](crate::KeyRingHandle::store) checks before installing a ring.
    ///
    /// ```
    /// use tollgate_core::{Key, KeyRing, Secret, SecretError};
    ///
    /// assert!(KeyRing::single(Secret::from_string("s3cr3t")).check_signing_key().is_ok());
    /// let err = KeyRing::new(Key::new("k2", Secret::from_string(" "))).check_signing_key().unwrap_err();
    /// assert_eq!(err, SecretError::Blank { name: "signing key `k2`".into() });
    /// ```
    pub fn check_signing_key(&self) -> Result<(), SecretError> {
        let key = self.signing_key();
        key.secret()
            .check_usable(&format!("signing key `{}`", key.id()))
    }

    /// The first usable key (newest first) for which `verifies` returns true.
    ///
    /// `verifies` should compare in constant time (e.g. `Mac::verify_slice`); every usable key
    /// is tried until one matches.
    pub fn find_verifying(
        &self,
        now_unix: u64,
        mut verifies: impl FnMut(&Secret) -> bool,
    ) -> Option<&Key> {
        self.verification_keys(now_unix)
            .find(|key| verifies(key.secret()))
    }
}

impl From<Secret> for KeyRing {
    fn from(secret: Secret) -> Self {
        Self::single(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(Key::new("k1", Secret::from_string("one")).not_after(1_000))
            .rotate(Key::new("k2", Secret::from_string("two")).not_after(2_000))
            .rotate(Key::new("k3", Secret::from_string("three")))
    }

    fn ids<'a>(keys: impl Iterator<Item = &'a Key>) -> Vec<&'a str> {
        keys.map(Key::id).collect()
    }

    #[test]
    fn signs_with_newest_and_verifies_with_every_unexpired_key() {
        let ring = ring();
        assert_eq!(ring.signing_key().id(), "k3");
        assert_eq!(ids(ring.verification_keys(0)), ["k3", "k2", "k1"]);
        assert_eq!(ids(ring.verification_keys(1_000)), ["k3", "k2", "k1"]);
        assert_eq!(ids(ring.verification_keys(1_001)), ["k3", "k2"]);
        assert_eq!(ids(ring.verification_keys(2_001)), ["k3"]);
        assert_eq!(ring.keys().len(), 3);
    }

    #[test]
    fn reports_which_key_matched_and_respects_expiry() {
        let ring = ring();
        let by = |secret: &'static [u8], now| {
            ring.find_verifying(now, |s| s.expose_secret() == secret)
                .map(|k| k.id().to_owned())
        };
        assert_eq!(by(b"one", 999).as_deref(), Some("k1"));
        assert_eq!(by(b"one", 1_001), None);
        assert_eq!(by(b"two", 2_000).as_deref(), Some("k2"));
        assert_eq!(by(b"three", u64::MAX).as_deref(), Some("k3"));
        assert_eq!(by(b"nope", 0), None);
    }

    #[test]
    fn expired_signing_key_is_not_offered() {
        let ring = KeyRing::new(Key::new("only", Secret::from_string("x")).not_after(10));
        assert_eq!(ring.signing_key_at(10).map(Key::id), Some("only"));
        assert!(ring.signing_key_at(11).is_none());
    }

    #[test]
    fn verification_only_keys_never_sign() {
        let ring = KeyRing::single(Secret::from_string("new"))
            .with_verification_key(Key::new("legacy", Secret::from_string("old")));
        assert_eq!(ring.signing_key().id(), "default");
        assert_eq!(ids(ring.verification_keys(0)), ["default", "legacy"]);
    }

    #[test]
    fn debug_redacts_secrets() {
        let debug = format!("{:?}", ring());
        assert!(debug.contains("k1") && debug.contains("Secret([REDACTED])"));
        assert!(!debug.contains("three"), "{debug}");
    }
}
