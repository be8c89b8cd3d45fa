//! HMAC-SHA256, the signature encodings, and the constant-time match against a key ring.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tollgate_core::{Key, KeyRing, Secret};

use super::SignError;

/// HMAC-SHA256.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 output.
pub(crate) const MAC_LEN: usize = 32;

/// One HMAC-SHA256 output.
pub(crate) type MacBytes = [u8; MAC_LEN];

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

    /// The 32 MAC bytes written as `text`, or `None` when `text` is not exactly one MAC in
    /// this encoding.
    pub(crate) fn decode_mac(self, text: &[u8]) -> Option<MacBytes> {
        let mut out = [0u8; MAC_LEN];
        match self {
            Self::Hex => {
                if text.len() != 2 * MAC_LEN
                    || !text.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return None;
                }
                hex::decode_to_slice(text, &mut out).ok()?;
            }
            Self::Base64 => {
                if text.len() != 44 {
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
/// `None` is handled as "this key cannot verify" rather than a panic.
pub(crate) fn keyed(key: &[u8]) -> Option<HmacSha256> {
    <HmacSha256 as Mac>::new_from_slice(key).ok()
}

/// A MAC to sign with: refuses an empty key, whose MACs anyone can compute.
pub(crate) fn signing_mac(key: &Secret) -> Result<HmacSha256, SignError> {
    if key.is_empty() {
        return Err(SignError::InvalidKey);
    }
    keyed(key.expose_secret()).ok_or(SignError::InvalidKey)
}

/// The MAC of the concatenation of `pieces` under `key`.
pub(crate) fn mac_of(key: &[u8], pieces: &[&[u8]]) -> Option<MacBytes> {
    let mut mac = keyed(key)?;
    for piece in pieces {
        mac.update(piece);
    }
    Some(mac.finalize().into_bytes().into())
}

/// The first key usable at `now_unix` (newest first) whose MAC over the message fed by
/// `feed` equals one of `candidates`, with the index of that candidate.
///
/// The message is hashed once per key; each candidate is compared in constant time. Empty
/// keys are skipped: a MAC under an empty key proves nothing, since anyone can compute it.
pub(crate) fn find_match<'r>(
    ring: &'r KeyRing,
    now_unix: u64,
    candidates: &[MacBytes],
    feed: impl Fn(&mut HmacSha256),
) -> Option<(&'r Key, usize)> {
    if candidates.is_empty() {
        return None;
    }
    for key in ring.verification_keys(now_unix) {
        if key.secret().is_empty() {
            continue;
        }
        let Some(mut mac) = keyed(key.secret().expose_secret()) else {
            continue;
        };
        feed(&mut mac);
        let expected: MacBytes = mac.finalize().into_bytes().into();
        let mut found = None;
        for (index, candidate) in candidates.iter().enumerate() {
            let equal: bool = expected.ct_eq(candidate).into();
            if equal && found.is_none() {
                found = Some(index);
            }
        }
        if let Some(index) = found {
            return Some((key, index));
        }
    }
    None
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
}
