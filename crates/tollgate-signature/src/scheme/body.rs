//! Body-only HMAC: OneKey's `Payload-Signature`, `X-Webhook-Signature`, GitHub's
//! `X-Hub-Signature-256`.

use std::borrow::Cow;

use bytes::Bytes;
use hmac::Mac as _;
use http::{HeaderName, HeaderValue};
use tollgate_core::header::single_value;
use tollgate_core::{Secret, VerifiedSignature};

use super::mac::{Encoding, MacBytes, Matched, mac_with, match_signature, signing_mac};
use super::{
    ConfigError, PreparedKeys, RequestParts, Scheme, SignError, VerifyError, sensitive_value,
};

/// HMAC-SHA256 over the exact body bytes, written in one header as
/// `<prefix><encoded MAC>`.
///
/// | preset | header | value |
/// |---|---|---|
/// | [`BodyHmac::onekey`] | `Payload-Signature` | lowercase hex |
/// | [`BodyHmac::x_webhook_signature`] | `X-Webhook-Signature` | lowercase hex |
/// | [`BodyHmac::github`] | `X-Hub-Signature-256` | `sha256=` + lowercase hex |
///
/// [`BodyHmac::new`] takes any header (hex, no prefix); [`encoding`](BodyHmac::encoding) and
/// [`prefix`](BodyHmac::prefix) change the rest. An empty body signs the empty string.
///
/// # Security considerations
///
/// The signature covers the body only: not the method, the path or a time. A captured request
/// can be sent again (pair this scheme with a replay guard keyed on the signature), and to
/// another path of the same service. Prefer [`Canonical`](crate::Canonical) for APIs you design.
///
/// ```
/// use tollgate_core::Secret;
/// use tollgate_signature::BodyHmac;
///
/// let secret = Secret::from_string("It's a Secret to Everybody");
/// assert_eq!(
///     BodyHmac::github().compute(&secret, b"Hello, World!"),
///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
/// );
/// ```
#[derive(Debug, Clone)]
pub struct BodyHmac {
    name: Cow<'static, str>,
    header: HeaderName,
    encoding: Encoding,
    prefix: Cow<'static, str>,
}

impl BodyHmac {
    /// A scheme named `"body-hmac"` writing lowercase hex without prefix into `header`.
    pub fn new(header: HeaderName) -> Self {
        Self {
            name: Cow::Borrowed("body-hmac"),
            header,
            encoding: Encoding::Hex,
            prefix: Cow::Borrowed(""),
        }
    }

    /// OneKey Payments: `Payload-Signature` = lowercase hex of HMAC-SHA256 of the exact JSON
    /// payload bytes, keyed with the "API Signature" secret. Named `"onekey"`.
    pub fn onekey() -> Self {
        Self::new(HeaderName::from_static("payload-signature")).scheme_name("onekey")
    }

    /// `X-Webhook-Signature` = lowercase hex of HMAC-SHA256 of the body, keyed with the
    /// webhook secret. Named `"x-webhook-signature"`.
    pub fn x_webhook_signature() -> Self {
        Self::new(HeaderName::from_static("x-webhook-signature")).scheme_name("x-webhook-signature")
    }

    /// GitHub: `X-Hub-Signature-256: sha256=<lowercase hex>`. Named `"github"`.
    pub fn github() -> Self {
        Self {
            name: Cow::Borrowed("github"),
            header: HeaderName::from_static("x-hub-signature-256"),
            encoding: Encoding::Hex,
            prefix: Cow::Borrowed("sha256="),
        }
    }

    /// Sets the encoding of the MAC (default [`Encoding::Hex`]).
    #[must_use]
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Sets the text written before the encoded MAC (default none; GitHub's is `sha256=`).
    ///
    /// Fails when the prefix holds characters a header value cannot carry.
    pub fn prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> Result<Self, ConfigError> {
        let prefix = prefix.into();
        if !prefix.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(ConfigError::InvalidPrefix);
        }
        self.prefix = prefix;
        Ok(self)
    }

    /// Sets the name recorded in [`VerifiedSignature::scheme`].
    #[must_use]
    pub fn scheme_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The header that carries the signature.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The header value that signs `body` with `secret`: `<prefix><encoded MAC>`.
    pub fn compute(&self, secret: &Secret, body: &[u8]) -> String {
        mac_with(secret.expose_secret(), |mac| mac.update(body))
            .map(|mac| self.encoding.encode_after(&self.prefix, &mac))
            .unwrap_or_default()
    }

    /// Verifies a received header value (`None` when the header is absent) for `body`
    /// against every key of `keys` usable at `now_unix`.
    ///
    /// ```
    /// use tollgate_core::{KeyRing, Secret};
    /// use tollgate_signature::{BodyHmac, PreparedKeys, VerifyError};
    ///
    /// let keys = PreparedKeys::from(KeyRing::single(Secret::from_string("cashout_secret_key")));
    /// let good = "8d3e2b061e753c88e401ac8737e6dc7af9e02d590fd1dd4d5e1ded9f4430487c";
    /// assert!(BodyHmac::onekey().verify_value(&keys, 0, Some(good.as_bytes()), b"").is_ok());
    /// assert_eq!(
    ///     BodyHmac::onekey().verify_value(&keys, 0, Some(good.as_bytes()), b" "),
    ///     Err(VerifyError::Invalid)
    /// );
    /// ```
    pub fn verify_value(
        &self,
        keys: &PreparedKeys,
        now_unix: u64,
        value: Option<&[u8]>,
        body: &[u8],
    ) -> Result<VerifiedSignature, VerifyError> {
        let received = self.received(value)?;
        let matched = match_signature(keys, now_unix, &received, |mac| mac.update(body))?;
        Ok(self.verified(matched, Bytes::copy_from_slice(body)))
    }

    /// The one MAC the header value `value` carries.
    fn received(&self, value: Option<&[u8]>) -> Result<[MacBytes; 1], VerifyError> {
        let value = value.ok_or_else(|| VerifyError::Missing {
            header: self.header.clone(),
        })?;
        let encoded = value
            .strip_prefix(self.prefix.as_bytes())
            .ok_or(VerifyError::Malformed {
                reason: "the signature does not start with the expected prefix",
            })?;
        let received = self
            .encoding
            .decode_mac(encoded)
            .ok_or(VerifyError::Malformed {
                reason: "the signature is not one HMAC-SHA256 in the expected encoding",
            })?;
        Ok([received])
    }

    /// The record of a match: a body-only signature covers the body and nothing else.
    #[inline]
    fn verified(&self, matched: Matched<'_>, body: Bytes) -> VerifiedSignature {
        matched
            .verified(self.name.clone())
            .with_signed_content(Bytes::new(), body, Bytes::new())
    }
}

impl Scheme for BodyHmac {
    fn name(&self) -> Cow<'static, str> {
        self.name.clone()
    }

    fn sign(
        &self,
        key: &Secret,
        request: &RequestParts<'_>,
        _now_unix: u64,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let mac = signing_mac(key, |mac| mac.update(request.body()))?;
        let value = sensitive_value(self.encoding.encode_after(&self.prefix, &mac))?;
        Ok(vec![(self.header.clone(), value)])
    }

    fn verify(
        &self,
        keys: &PreparedKeys,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError> {
        let value = single_value(request.headers(), &self.header)?;
        let received = self.received(value.map(HeaderValue::as_bytes))?;
        let matched = match_signature(keys, now_unix, &received, |mac| {
            mac.update(request.body());
        })?;
        Ok(self.verified(matched, request.body_bytes()))
    }

    /// A body-only signature signs no time: only the keys' expiry reads the clock.
    fn verify_reads_clock(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_must_be_header_safe() {
        assert_eq!(
            BodyHmac::onekey().prefix("a\nb").unwrap_err(),
            ConfigError::InvalidPrefix
        );
        let scheme = BodyHmac::onekey().prefix("v=").unwrap();
        let secret = Secret::from_string("k");
        assert!(scheme.compute(&secret, b"x").starts_with("v="));
    }

    #[test]
    fn malformed_values() {
        let ring = PreparedKeys::from(tollgate_core::KeyRing::single(Secret::from_string("k")));
        let github = BodyHmac::github();
        let hex = BodyHmac::onekey().compute(&Secret::from_string("k"), b"x");
        for bad in [
            hex.clone(),                     // no prefix
            format!("sha1={hex}"),           // other prefix
            format!("sha256={hex}0"),        // too long
            format!("sha256={}", &hex[1..]), // too short
            format!("sha256={}", hex.to_uppercase()),
            "sha256=".to_owned(),
        ] {
            assert!(
                matches!(
                    github.verify_value(&ring, 0, Some(bad.as_bytes()), b"x"),
                    Err(VerifyError::Malformed { .. })
                ),
                "{bad}"
            );
        }
        assert!(
            github
                .verify_value(&ring, 0, Some(format!("sha256={hex}").as_bytes()), b"x")
                .is_ok()
        );
        assert_eq!(
            github.verify_value(&ring, 0, None, b"x"),
            Err(VerifyError::Missing {
                header: HeaderName::from_static("x-hub-signature-256")
            })
        );
    }
}
