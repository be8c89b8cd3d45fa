//! HMAC-SHA256, the signature encodings, prepared keys, and the one constant-time match of
//! received signatures against a key ring that every scheme uses.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tollgate_core::{Key, KeyRing, Secret, VerifiedSignature};

use super::{SignError, VerifyError};

/// HMAC-SHA256.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 output.
pub(crate) const MAC_LEN: usize = 32;

/// One HMAC-SHA256 output.
pub(crate) type MacBytes = [u8; MAC_LEN];

/// Length of one HMAC-SHA256 in padded standard base64.
const BASE64_MAC_LEN: usize = 44;

/// The value of the lowercase hex digit `c`, and whether `c` is one (`0-9`, `a-f`).
///
/// Arithmetic only (no table, no branch), so that [`decode_lower_hex`]'s loop over the 64
/// characters compiles to straight-line code.
#[inline(always)]
fn lower_hex_digit(c: u8) -> (u8, bool) {
    let digit = c.wrapping_sub(b'0');
    let letter = c.wrapping_sub(b'a');
    let is_digit = digit < 10;
    let is_letter = letter < 6;
    let value = if is_digit {
        digit
    } else {
        letter.wrapping_add(10)
    };
    (value, is_digit | is_letter)
}

/// The 32 bytes written as 64 lowercase hex characters, or `None` when any character is not
/// lowercase hex (one spelling only, see [`Encoding`]).
///
/// One pass, no early exit. Decoding stays hand-written (encoding uses the `hex` crate):
/// `hex::decode_to_slice` reads upper case too, and the lowercase check it then needs plus its
/// decode measured about 50 ns (4 %) more per 1 KiB `VerifySignatureLayer` request than a
/// one-pass table decoder; this arithmetic pass (no table lookups) runs about 110
/// instructions where that table decoder ran about 500 (callgrind, per signature).
fn decode_lower_hex(text: &[u8; 2 * MAC_LEN]) -> Option<MacBytes> {
    let mut values = [0u8; 2 * MAC_LEN];
    let mut valid = true;
    for (value, &c) in values.iter_mut().zip(text) {
        let (digit, ok) = lower_hex_digit(c);
        *value = digit;
        valid &= ok;
    }
    let mut out = [0u8; MAC_LEN];
    for (byte, pair) in out.iter_mut().zip(values.chunks_exact(2)) {
        *byte = (pair[0] << 4) | (pair[1] & 0x0f);
    }
    valid.then_some(out)
}

/// How the 32 MAC bytes are written in a header.
///
/// Decoding is strict so that one MAC has exactly one accepted spelling (a changed byte in
/// the header never verifies): hex is lowercase only, as every provider sends it; base64 is the
/// standard alphabet with `=` padding and no stray bits.
///
/// Upper-case hex is refused on purpose. GitHub's documented check and OneKey's sample
/// compare the received header with the lowercase hex they compute (OneKey's `strtolower`
/// lowers *its own* output), so `SHA256=ABC...` or `ABC...` fails there too; Standard
/// Webhooks' and Stripe's Node library compare text in the same way. Accepting a second
/// spelling would let a captured signature be re-sent in another form, and a proxy or log
/// pipeline that normalises case could no longer be told from a tampered header. A sender
/// that writes upper case is non-conforming and gets 400 `signature_malformed`.
///
/// ```
/// use tollgate_signature::Encoding;
///
/// assert_eq!(Encoding::Hex.encode(&[0xab, 0x01]), "ab01");
/// assert_eq!(Encoding::Base64.encode(&[0xab, 0x01]), "qwE=");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// Lowercase hexadecimal (64 characters for HMAC-SHA256). The default.
    #[default]
    Hex,
    /// Standard base64 with padding (44 characters for HMAC-SHA256).
    Base64,
}

impl Encoding {
    /// `bytes` in this encoding.
    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Self::Hex => hex::encode(bytes),
            Self::Base64 => STANDARD.encode(bytes),
        }
    }

    /// `prefix` followed by `mac` in this encoding, written into one string.
    pub(crate) fn encode_after(self, prefix: &str, mac: &MacBytes) -> String {
        let mut out = String::with_capacity(prefix.len() + 2 * MAC_LEN);
        out.push_str(prefix);
        match self {
            Self::Hex => {
                let mut digits = [0u8; 2 * MAC_LEN];
                // Cannot fail: the buffer is exactly twice the MAC's length.
                if hex::encode_to_slice(mac, &mut digits).is_ok() {
                    out.extend(digits.iter().copied().map(char::from));
                }
            }
            Self::Base64 => STANDARD.encode_string(mac, &mut out),
        }
        out
    }

    /// The 32 MAC bytes written as `text`, or `None` when `text` is not exactly one MAC in
    /// this encoding.
    ///
    /// The received text is public (it came with the request); what must not leak timing is
    /// the comparison with the expected MAC, which [`match_signature`] does in constant time.
    pub(crate) fn decode_mac(self, text: &[u8]) -> Option<MacBytes> {
        let mut out = [0u8; MAC_LEN];
        match self {
            Self::Hex => {
                let text = <&[u8; 2 * MAC_LEN]>::try_from(text).ok()?;
                out = decode_lower_hex(text)?;
            }
            Self::Base64 => {
                if text.len() != BASE64_MAC_LEN {
                    return None;
                }
                let mut buf = [0u8; MAC_LEN + 3];
                let len = STANDARD.decode_slice(text, &mut buf).ok()?;
                if len != MAC_LEN {
                    return None;
                }
                out.copy_from_slice(&buf[..MAC_LEN]);
            }
        }
        Some(out)
    }
}

/// A MAC keyed with `key`. HMAC takes keys of any length, so this never fails in practice;
/// `None` is handled as "this key cannot sign or verify" rather than a panic.
fn keyed(key: &[u8]) -> Option<HmacSha256> {
    <HmacSha256 as KeyInit>::new_from_slice(key).ok()
}

/// The MAC under `key` of the message `feed` writes.
pub(crate) fn mac_with(key: &[u8], feed: impl FnOnce(&mut HmacSha256)) -> Option<MacBytes> {
    let mut mac = keyed(key)?;
    feed(&mut mac);
    Some(mac.finalize().into_bytes().into())
}

/// The MAC to sign with: like [`mac_with`], refusing a blank key (empty or only whitespace,
/// tollgate-core's rule [`Secret::is_blank`]), whose MACs anyone can compute.
pub(crate) fn signing_mac(
    key: &Secret,
    feed: impl FnOnce(&mut HmacSha256),
) -> Result<MacBytes, SignError> {
    if key.is_blank() {
        return Err(SignError::InvalidKey);
    }
    mac_with(key.expose_secret(), feed).ok_or(SignError::InvalidKey)
}

/// A [`KeyRing`] with every key's HMAC-SHA256 state computed once: what
/// [`Scheme::verify`](crate::Scheme::verify) takes.
///
/// Keying an HMAC hashes the key padded to a block twice; a verifier that keeps this value
/// clones the keyed state per request instead.
/// [`VerifySignatureLayer`](crate::VerifySignatureLayer) builds one when it is configured.
/// To verify with a ring you hold, convert it: `scheme.verify(&ring.into(), ..)` or
/// `&PreparedKeys::from(ring)` (a [`KeyRing`] is cheap to clone).
///
/// Blank keys ([`Secret::is_blank`]: empty, all zero bytes or only whitespace) are never
/// keyed, so they never verify: anyone can compute a MAC under a blank key.
///
/// The keyed state is as sensitive as the secret (it can compute MACs): `Debug` prints the
/// ring's redacted form only, and the state is overwritten when the value is dropped.
///
/// ```
/// use http::{HeaderMap, Method, Uri};
/// use tollgate_core::{KeyRing, Secret};
/// use tollgate_signature::{BodyHmac, PreparedKeys, RequestParts, Scheme};
///
/// let keys = PreparedKeys::from(KeyRing::single(Secret::from_string("cashout_secret_key")));
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     "payload-signature",
///     "8d3e2b061e753c88e401ac8737e6dc7af9e02d590fd1dd4d5e1ded9f4430487c".parse().unwrap(),
/// );
/// let (method, uri) = (Method::POST, Uri::from_static("/cashout"));
/// let request = RequestParts::new(&method, &uri, &headers, b"");
/// let verified = BodyHmac::onekey().verify(&keys, &request, 0).unwrap();
/// assert_eq!(verified.key_id(), "default");
/// assert!(!format!("{keys:?}").contains("cashout_secret_key"));
/// ```
#[derive(Clone)]
pub struct PreparedKeys {
    ring: KeyRing,
    /// One entry per key of the ring, same order; `None` for blank keys (never verify).
    macs: Vec<Option<HmacSha256>>,
    /// Whether a key of the ring has an expiry (else which keys are usable does not depend
    /// on the time).
    expiring: bool,
}

impl PreparedKeys {
    /// Keys every key of `ring` that is not blank ([`Secret::is_blank`]) once.
    pub fn new(ring: impl Into<KeyRing>) -> Self {
        let ring = ring.into();
        let macs = ring
            .keys()
            .iter()
            .map(|key| {
                let secret = key.secret();
                if secret.is_blank() {
                    None
                } else {
                    keyed(secret.expose_secret())
                }
            })
            .collect();
        let expiring = ring.keys().iter().any(|key| key.expires_at().is_some());
        Self {
            ring,
            macs,
            expiring,
        }
    }

    /// The ring the state was computed from.
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Whether a key of the ring has an expiry: which keys are usable depends on the time.
    pub(crate) fn expiring(&self) -> bool {
        self.expiring
    }

    /// Whether any key of the ring can verify (is not blank), whatever its expiry.
    pub(crate) fn can_verify(&self) -> bool {
        self.macs.iter().any(Option::is_some)
    }

    /// Every key usable at `now_unix` (newest first) that can verify, with a MAC keyed by it.
    fn usable(&self, now_unix: u64) -> impl Iterator<Item = (&Key, HmacSha256)> {
        self.ring
            .keys()
            .iter()
            .zip(&self.macs)
            .filter(move |(key, _)| key.is_usable_at(now_unix))
            .filter_map(|(key, mac)| Some((key, mac.clone()?)))
    }
}

impl From<KeyRing> for PreparedKeys {
    fn from(ring: KeyRing) -> Self {
        Self::new(ring)
    }
}

impl fmt::Debug for PreparedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedKeys")
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl Drop for PreparedKeys {
    fn drop(&mut self) {
        // Best effort without `unsafe`: replace each keyed state in place with one keyed by
        // nothing secret, and keep the optimiser from treating the stores as dead.
        for mac in self.macs.iter_mut().flatten() {
            if let Some(blank) = keyed(&[]) {
                *mac = blank;
            }
        }
        std::hint::black_box(&mut self.macs);
    }
}

/// `mac` as four native-endian words, for a constant-time comparison that takes four steps
/// instead of 32 (`subtle` compares a slice element by element, each behind an optimisation
/// barrier). Equal words are equal bytes, so the answer is the byte comparison's.
fn mac_words(mac: &MacBytes) -> [u64; MAC_LEN / 8] {
    let mut words = [0u64; MAC_LEN / 8];
    for (word, bytes) in words.iter_mut().zip(mac.chunks_exact(8)) {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(bytes);
        *word = u64::from_ne_bytes(chunk);
    }
    words
}

/// A key of the ring whose MAC equals a signature the request carries: what
/// [`match_signature`] finds, before it is recorded.
pub(crate) struct Matched<'a> {
    key: &'a Key,
    signature: &'a MacBytes,
}

impl Matched<'_> {
    /// The match recorded as a [`VerifiedSignature`] of `scheme` naming the key and the
    /// signature. Inlined, so that a scheme's whole record is written once, where it is
    /// returned, instead of being moved through every step that adds to it.
    #[inline]
    pub(crate) fn verified(self, scheme: Cow<'static, str>) -> VerifiedSignature {
        VerifiedSignature::from_slice(scheme, self.key.shared_id(), self.signature)
    }
}

/// The one check every scheme ends with: the first key of `keys` usable at `now_unix`
/// (newest first) whose MAC over the message `feed` writes equals one of `candidates` (the
/// signatures the request carries), with that candidate ([`Matched::verified`] records it).
/// [`VerifyError::Invalid`] when no key matches any candidate.
///
/// The message is hashed once per key; every candidate is compared with it in constant time,
/// whichever matched first. Blank keys are never tried ([`PreparedKeys`]).
pub(crate) fn match_signature<'a>(
    keys: &'a PreparedKeys,
    now_unix: u64,
    candidates: &'a [MacBytes],
    feed: impl Fn(&mut HmacSha256),
) -> Result<Matched<'a>, VerifyError> {
    if candidates.is_empty() {
        return Err(VerifyError::Invalid);
    }
    for (key, mut mac) in keys.usable(now_unix) {
        feed(&mut mac);
        let expected = mac_words(&mac.finalize().into_bytes().into());
        let mut found = None;
        for candidate in candidates {
            let equal: bool = expected.ct_eq(&mac_words(candidate)).into();
            if equal && found.is_none() {
                found = Some(candidate);
            }
        }
        if let Some(signature) = found {
            return Ok(Matched { key, signature });
        }
    }
    Err(VerifyError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_strict() {
        let mac = [0xabu8; 32];
        let hex = Encoding::Hex.encode(&mac);
        assert_eq!(Encoding::Hex.decode_mac(hex.as_bytes()), Some(mac));
        assert_eq!(
            Encoding::Hex.decode_mac(hex.to_uppercase().as_bytes()),
            None
        );
        assert_eq!(Encoding::Hex.decode_mac(&hex.as_bytes()[..62]), None);
        assert_eq!(Encoding::Hex.decode_mac(b""), None);
        // Every byte that is not lowercase hex, at the first, a middle and the last place.
        for bad in (0u8..=255).filter(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            for at in [0, 31, 63] {
                let mut text = hex.clone().into_bytes();
                text[at] = bad;
                assert_eq!(Encoding::Hex.decode_mac(&text), None, "{bad} at {at}");
            }
        }
        // Every digit decodes to its value.
        let all: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37)).collect();
        assert_eq!(
            Encoding::Hex.decode_mac(Encoding::Hex.encode(&all).as_bytes()),
            Some(<[u8; 32]>::try_from(all.as_slice()).unwrap())
        );

        let b64 = Encoding::Base64.encode(&mac);
        assert_eq!(b64.len(), 44);
        assert_eq!(Encoding::Base64.decode_mac(b64.as_bytes()), Some(mac));
        assert_eq!(
            Encoding::Base64.decode_mac(b64.trim_end_matches('=').as_bytes()),
            None
        );
        // The last character carries two stray bits: a spelling with them set is refused.
        let mut stray = b64.into_bytes();
        assert_eq!(stray[42], b's'); // 101100: the two low bits are padding
        stray[42] = b't'; // 101101
        assert_eq!(Encoding::Base64.decode_mac(&stray), None);
        // 33 bytes fit in 44 characters too, but are not a MAC.
        assert_eq!(
            Encoding::Base64.decode_mac(Encoding::Base64.encode(&[1u8; 33]).as_bytes()),
            None
        );
    }

    /// The arithmetic digit decoder agrees with the definition on every byte, and a text with
    /// one bad character anywhere is refused.
    #[test]
    fn lower_hex_digits_are_exactly_0_9_a_f() {
        for c in 0u8..=255 {
            let expected = match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            let (value, ok) = lower_hex_digit(c);
            assert_eq!(ok.then_some(value), expected, "{c}");
        }
        let hex = Encoding::Hex.encode(&[0x5au8; 32]);
        for at in 0..64 {
            for bad in [b'g', b'A', b'/', b':', b'`', 0, 0xff] {
                let mut text = hex.clone().into_bytes();
                text[at] = bad;
                assert_eq!(Encoding::Hex.decode_mac(&text), None, "{bad} at {at}");
            }
        }
    }

    /// A MAC that differs from the expected one in any single bit never matches (the
    /// comparison runs on words), and the matching candidate is the one recorded.
    #[test]
    fn one_flipped_bit_anywhere_never_matches() {
        let keys = PreparedKeys::from(KeyRing::single(Secret::from_string("k")));
        let expected = mac_with(b"k", |mac| mac.update(b"body")).unwrap();
        let feed = |mac: &mut HmacSha256| mac.update(b"body");
        let verified = match_signature(&keys, 0, &[expected], feed)
            .unwrap()
            .verified("t".into());
        assert_eq!(&verified.signature()[..], &expected[..]);
        for byte in 0..MAC_LEN {
            for bit in 0..8 {
                let mut forged = expected;
                forged[byte] ^= 1 << bit;
                assert!(
                    matches!(
                        match_signature(&keys, 0, &[forged], feed),
                        Err(VerifyError::Invalid)
                    ),
                    "byte {byte} bit {bit}"
                );
            }
        }
        let mut other = expected;
        other[31] ^= 1;
        let verified = match_signature(&keys, 0, &[other, expected], feed)
            .unwrap()
            .verified("t".into());
        assert_eq!(&verified.signature()[..], &expected[..]);
    }

    /// The core rule (`Secret::is_blank`): a blank key (empty, all zero bytes, only invisible characters) never signs
    /// and never verifies, since anyone can compute its MACs.
    #[test]
    fn blank_keys_never_sign_nor_verify() {
        use http::{HeaderMap, HeaderValue, Method, Uri};

        use crate::{BodyHmac, RequestParts, Scheme, SignError, VerifyError};

        let (method, uri, body) = (Method::POST, Uri::from_static("/hook"), b"{}");
        let scheme = BodyHmac::onekey();
        for blank in ["", " ", "\t\n", "\u{3000}"] {
            let secret = Secret::from_string(blank);
            let headers = HeaderMap::new();
            let parts = RequestParts::new(&method, &uri, &headers, body);
            assert!(
                matches!(scheme.sign(&secret, &parts, 0), Err(SignError::InvalidKey)),
                "signed with {blank:?}"
            );
            let keys = PreparedKeys::from(KeyRing::single(secret.clone()));
            assert!(!keys.can_verify(), "{blank:?}");
            let mut headers = HeaderMap::new();
            let forged = HeaderValue::try_from(scheme.compute(&secret, body)).unwrap();
            headers.insert("payload-signature", forged);
            let parts = RequestParts::new(&method, &uri, &headers, body);
            assert_eq!(
                scheme.verify(&keys, &parts, 0),
                Err(VerifyError::Invalid),
                "{blank:?}"
            );
        }
    }

    /// Prepared keys answer as the ring says: rotation, expiry, empty keys, unknown keys, for
    /// a body-only and a timestamped scheme, and a clone of the keyed state (what a layer's
    /// copy-on-write makes) answers the same.
    #[test]
    fn prepared_keys_verify_as_the_ring_says() {
        use http::{HeaderMap, HeaderValue, Method, Uri};

        use crate::{BodyHmac, RequestParts, Scheme, Stripe, VerifyError};

        let ring =
            KeyRing::new(Key::new("old", Secret::from_string("old-secret")).not_after(1_000))
                .rotate(Key::new("new", Secret::from_string("new-secret")))
                .with_verification_key(Key::new("empty", Secret::from_string("")));
        let prepared = PreparedKeys::from(ring);
        assert!(prepared.can_verify());
        let copy = prepared.clone();
        let (method, uri, body) = (Method::POST, Uri::from_static("/hook"), b"{\"a\":1}");
        let body_hmac = BodyHmac::onekey();
        let stripe = Stripe::new();
        for secret in ["old-secret", "new-secret", "", "other"] {
            let secret = Secret::from_string(secret);
            for now in [500, 1_000, 1_001] {
                let cases: [(&dyn Scheme, &str, String); 2] = [
                    (
                        &body_hmac,
                        "payload-signature",
                        body_hmac.compute(&secret, body),
                    ),
                    (
                        &stripe,
                        "stripe-signature",
                        stripe.compute(&secret, now, body),
                    ),
                ];
                for (scheme, header, value) in cases {
                    let mut headers = HeaderMap::new();
                    headers.insert(header, HeaderValue::try_from(value).unwrap());
                    let parts = RequestParts::new(&method, &uri, &headers, body);
                    let answer = scheme.verify(&prepared, &parts, now);
                    assert_eq!(scheme.verify(&copy, &parts, now), answer);
                    let expected = match (secret.expose_secret(), now) {
                        (b"new-secret", _) => Some("new"),
                        (b"old-secret", 500 | 1_000) => Some("old"),
                        _ => None,
                    };
                    match expected {
                        Some(id) => assert_eq!(answer.unwrap().key_id(), id),
                        None => assert_eq!(answer, Err(VerifyError::Invalid)),
                    }
                }
            }
        }
        let debug = format!("{prepared:?}");
        assert!(
            debug.contains("REDACTED") && !debug.contains("-secret"),
            "{debug}"
        );
    }

    #[test]
    fn encode_after_writes_the_prefix_then_the_mac() {
        let mac = [0xabu8; 32];
        assert_eq!(
            Encoding::Hex.encode_after("sha256=", &mac),
            format!("sha256={}", Encoding::Hex.encode(&mac))
        );
        assert_eq!(
            Encoding::Base64.encode_after("v1,", &mac),
            format!("v1,{}", Encoding::Base64.encode(&mac))
        );
    }
}
