//! Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::Mac as _;
use http::{HeaderName, HeaderValue};
use tollgate_core::header::single_value;
use tollgate_core::timestamp::TimestampWindow;
use tollgate_core::{Secret, VerifiedSignature};

use super::mac::{Encoding, HmacSha256, MacBytes, mac_with, match_signature, signing_mac};
use super::{
    ConfigError, PreparedKeys, RequestParts, Scheme, SignError, VerifyError, sensitive_value,
    within_window,
};

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// [Standard Webhooks](https://www.standardwebhooks.com/): HMAC-SHA256 over
/// `webhook-id + "." + webhook-timestamp + "." + body`, sent as
/// `webhook-signature: v1,<base64>` (several space-separated entries during a key rotation).
///
/// The key is the *decoded* secret: a `whsec_...` secret is base64 after its prefix. Decode it
/// explicitly with [`StandardWebhooks::secret_from_whsec`] (or
/// [`secret_from_base64`](StandardWebhooks::secret_from_base64)); nothing here guesses an
/// encoding from the text of a secret.
///
/// Verifying skips entries of other versions (such as the asymmetric `v1a`), accepts any
/// matching `v1` entry, and checks `webhook-timestamp` within the window (default ±300 s,
/// both ways, inclusive, like the reference libraries). The verified `webhook-id` becomes the
/// [`VerifiedSignature::message_id`], the key a replay guard remembers.
///
/// | request | result |
/// |---|---|
/// | `v1,<a> v1,<b> v1a,<c>`, in any order | accepted when any `v1` matches a usable key |
/// | a broken entry (`v1`, `v1,!!`, unpadded base64) next to a good `v1` | the good one verifies |
/// | only broken entries | 400 `signature_malformed` |
/// | only other versions (`v1a,..`, `v2,..`) | 401 `signature_invalid` |
/// | no `webhook-signature` | 401 `signature_missing` |
/// | no (or empty) `webhook-id` | 400 `signature_malformed` |
/// | no `webhook-timestamp`, or not ASCII digits (`-1`, `1.5`, overflow) | 400 `timestamp_malformed` |
/// | `webhook-timestamp` more than the tolerance old or ahead | 401 `timestamp_out_of_window` |
/// | any of the three headers sent twice | 400 `signature_malformed` |
///
/// Signing needs the `webhook-id` header on the request: the sender picks the id and keeps
/// it across retries of the same message, so it is never made up here.
///
/// ```
/// use tollgate_signature::StandardWebhooks;
///
/// let secret = StandardWebhooks::secret_from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
/// assert_eq!(
///     StandardWebhooks::new().compute(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#),
///     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/// );
/// ```
#[derive(Debug, Clone)]
pub struct StandardWebhooks {
    window: TimestampWindow,
}

impl Default for StandardWebhooks {
    fn default() -> Self {
        Self::new()
    }
}

impl StandardWebhooks {
    /// The scheme with a ±300 s window, named `"standard-webhooks"`.
    pub fn new() -> Self {
        Self {
            window: TimestampWindow::default(),
        }
    }

    /// Sets the accepted clock difference either side (default 300 s, inclusive).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.window = TimestampWindow::new(tolerance);
        self
    }

    /// Decodes a `whsec_<base64>` secret into its key bytes. The prefix is required.
    pub fn secret_from_whsec(secret: &str) -> Result<Secret, ConfigError> {
        let encoded = secret
            .strip_prefix("whsec_")
            .ok_or(ConfigError::MissingWhsecPrefix)?;
        Self::secret_from_base64(encoded)
    }

    /// Decodes a standard-base64 secret (no prefix) into its key bytes.
    pub fn secret_from_base64(secret: &str) -> Result<Secret, ConfigError> {
        let bytes = STANDARD
            .decode(secret)
            .map_err(|_| ConfigError::InvalidBase64Secret)?;
        let secret = Secret::from_bytes(bytes);
        // tollgate-core's one rule: empty, or text made only of whitespace.
        if secret.is_blank() {
            return Err(ConfigError::EmptySecret);
        }
        Ok(secret)
    }

    /// The `webhook-signature` value (`v1,<base64>`) for a message.
    pub fn compute(
        &self,
        secret: &Secret,
        message_id: &str,
        timestamp: u64,
        body: &[u8],
    ) -> String {
        let timestamp = timestamp.to_string();
        mac_with(secret.expose_secret(), |mac| {
            feed(mac, message_id.as_bytes(), timestamp.as_bytes(), body);
        })
        .map(|mac| Encoding::Base64.encode_after("v1,", &mac))
        .unwrap_or_default()
    }
}

fn feed(mac: &mut HmacSha256, id: &[u8], timestamp: &[u8], body: &[u8]) {
    mac.update(id);
    mac.update(b".");
    mac.update(timestamp);
    mac.update(b".");
    mac.update(body);
}

/// The `v1` signatures of a `webhook-signature` value.
///
/// Entries are separated by spaces (runs of spaces are allowed). Entries of other versions
/// (`v1a`, `v2`, ...) are skipped. As in the reference libraries, which compare each `v1`
/// entry with the expected text, a broken entry (no comma, or a `v1` value that is not one
/// padded base64 HMAC-SHA256) only fails to match: another `v1` entry may still verify. When
/// no `v1` entry is readable and one was broken, the header is malformed; when there is no
/// `v1` entry at all, the list is empty and verifying answers `Invalid`.
fn parse_signatures(value: &[u8]) -> Result<Vec<MacBytes>, VerifyError> {
    let mut signatures = Vec::new();
    let mut entries = 0usize;
    let mut broken = false;
    for entry in value.split(|&b| b == b' ').filter(|e| !e.is_empty()) {
        entries += 1;
        let Some(comma) = entry.iter().position(|&b| b == b',') else {
            broken = true;
            continue;
        };
        let (version, signature) = (&entry[..comma], &entry[comma + 1..]);
        if version == b"v1" {
            match Encoding::Base64.decode_mac(signature) {
                Some(mac) => signatures.push(mac),
                None => broken = true,
            }
        }
    }
    if entries == 0 {
        return Err(VerifyError::Malformed {
            reason: "the webhook-signature header is empty",
        });
    }
    if signatures.is_empty() && broken {
        return Err(VerifyError::Malformed {
            reason: "no webhook-signature entry is `v1,<base64 HMAC-SHA256>`",
        });
    }
    Ok(signatures)
}

impl Scheme for StandardWebhooks {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("standard-webhooks")
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
        let id = match single_value(request.headers(), WEBHOOK_ID) {
            Ok(Some(id)) if !id.is_empty() => id,
            _ => return Err(SignError::MissingHeader { header: WEBHOOK_ID }),
        };
        let timestamp = HeaderValue::from(now_unix);
        let mac = signing_mac(key, |mac| {
            feed(mac, id.as_bytes(), timestamp.as_bytes(), request.body());
        })?;
        let signature = sensitive_value(Encoding::Base64.encode_after("v1,", &mac))?;
        Ok(vec![
            (WEBHOOK_TIMESTAMP, timestamp),
            (WEBHOOK_SIGNATURE, signature),
        ])
    }

    fn verify(
        &self,
        keys: &PreparedKeys,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError> {
        let value = request.signature_header(&WEBHOOK_SIGNATURE)?;
        let signatures = parse_signatures(value.as_bytes())?;
        let id = single_value(request.headers(), WEBHOOK_ID)?
            .filter(|id| !id.is_empty())
            .ok_or(VerifyError::Malformed {
                reason: "the webhook-id header is missing",
            })?
            .as_bytes();
        let (timestamp_text, timestamp) = request.timestamp(&WEBHOOK_TIMESTAMP)?;
        let verified = match_signature(keys, now_unix, &signatures, |mac| {
            feed(mac, id, timestamp_text, request.body());
        })?
        .verified(self.name());
        // The message id names the message; the signed content records that the signature
        // covers the body (a failed handling may then be retried: tollgate-replay).
        // One allocation: the id is the first bytes of the signed head.
        within_window(verified, &self.window, timestamp, now_unix).map(|verified| {
            let head = Bytes::from([id, b".", timestamp_text, b"."].concat());
            verified
                .with_message_id(head.slice(..id.len()))
                .with_signed_content(head, request.body_bytes(), Bytes::new())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_decoded_only_when_asked() {
        let key = StandardWebhooks::secret_from_whsec("whsec_/wEC").unwrap();
        assert_eq!(key.expose_secret(), &[0xff, 1, 2]);
        assert_eq!(
            StandardWebhooks::secret_from_base64("/wEC")
                .unwrap()
                .expose_secret(),
            &[0xff, 1, 2]
        );
        // 32 zero bytes are HMAC's empty key: blank, refused.
        assert_eq!(
            StandardWebhooks::secret_from_whsec(
                "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            )
            .unwrap_err(),
            ConfigError::EmptySecret
        );
        assert_eq!(
            StandardWebhooks::secret_from_whsec("AAEC").unwrap_err(),
            ConfigError::MissingWhsecPrefix
        );
        assert_eq!(
            StandardWebhooks::secret_from_whsec("whsec_!!").unwrap_err(),
            ConfigError::InvalidBase64Secret
        );
        assert_eq!(
            StandardWebhooks::secret_from_whsec("whsec_").unwrap_err(),
            ConfigError::EmptySecret
        );
        // "ICAg" is three spaces: blank by tollgate-core's rule, refused the same way.
        assert_eq!(
            StandardWebhooks::secret_from_whsec("whsec_ICAg").unwrap_err(),
            ConfigError::EmptySecret
        );
    }

    #[test]
    fn signature_lists() {
        let sig = Encoding::Base64.encode(&[7u8; 32]);
        let parsed = parse_signatures(format!("v1a,xyz v2,{sig}  v1,{sig}").as_bytes()).unwrap();
        assert_eq!(parsed, vec![[7u8; 32]]);
        assert!(parse_signatures(b"v2,abc").unwrap().is_empty());
        // A broken entry next to a readable `v1` does not hide it.
        let mixed = format!("v1 v1,!!!! v1,{sig} v1,{} garbage", &sig[..43]);
        assert_eq!(parse_signatures(mixed.as_bytes()).unwrap(), vec![[7u8; 32]]);
        for bad in [
            &b""[..],
            b"   ",
            b"v1",
            b"v1,",
            b"v1,abc",
            b"v1;abc",
            b"v2,x v1",
        ] {
            assert!(
                matches!(parse_signatures(bad), Err(VerifyError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }
}
