//! Body-only HMAC: OneKey's `Payload-Signature`, `X-Webhook-Signature`, GitHub's
//! `X-Hub-Signature-256`.

use std::borrow::Cow;

use bytes::Bytes;
use hmac::Mac as _;
use http::{HeaderName, HeaderValue};
use tollgate_core::{KeyRing, Secret, VerifiedSignature};

use super::mac::{Encoding, Keys, find_match, mac_of, signing_mac};
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
        let mac = mac_of(secret.expose_secret(), &[body]).unwrap_or_default();
        let mut out = String::with_capacity(self.prefix.len() + 64);
        out.push_str(&self.prefix);
        out.push_str(&self.encoding.encode(&mac));
        out
    }

    /// Verifies a received header value (`None` when the header is absent) for `body`
    /// against every key of `ring` usable at `now_unix`.
    ///
    /// ```
    /// use tollgate_core::{KeyRing, Secret};
    /// use tollgate_signature::{BodyHmac, VerifyError};
    ///
    /// let ring = KeyRing::single(Secret::from_string("cashout_secret_key"));
    /// let good = "8d3e2b061e753c88e401ac8737e6dc7af9e02d590fd1dd4d5e1ded9f4430487c";
    /// assert!(BodyHmac::onekey().verify_value(&ring, 0, Some(good.as_bytes()), b"").is_ok());
    /// assert_eq!(
    ///     BodyHmac::onekey().verify_value(&ring, 0, Some(good.as_bytes()), b" "),
    ///     Err(VerifyError::Invalid)
    /// );
    /// ```
    pub fn verify_value(
        &self,
        ring: &KeyRing,
        now_unix: u64,
        value: Option<&[u8]>,
        body: &[u8],
    ) -> Result<VerifiedSignature, VerifyError> {
        self.verify_value_with(ring.into(), now_unix, value, body)
            .map(|verified| {
                verified.with_signed_content(
                    Bytes::new(),
                    Bytes::copy_from_slice(body),
                    Bytes::new(),
                )
            })
    }

    fn verify_value_with(
        &self,
        keys: Keys<'_>,
        now_unix: u64,
        value: Option<&[u8]>,
        body: &[u8],
    ) -> Result<VerifiedSignature, VerifyError> {
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
        let candidates = [received];
        let (key, _) = find_match(keys, now_unix, &candidates, |mac| mac.update(body))
            .ok_or(VerifyError::Invalid)?;
        Ok(VerifiedSignature::from_slice(
            self.name.clone(),
            key.shared_id(),
            &received,
        ))
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
        let mut mac = signing_mac(key)?;
        mac.update(request.body());
        let mac = mac.finalize().into_bytes();
        let mut text = String::with_capacity(self.prefix.len() + 64);
        text.push_str(&self.prefix);
        text.push_str(&self.encoding.encode(&mac));
        Ok(vec![(self.header.clone(), sensitive_value(text)?)])
    }

    fn verify(
        &self,
        ring: &KeyRing,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError> {
        let value = request.single_header(&self.header)?;
        self.verify_value_with(
            ring.into(),
            now_unix,
            value.map(HeaderValue::as_bytes),
            request.body(),
        )
        .map(|verified| {
            verified.with_signed_content(Bytes::new(), request.body_bytes(), Bytes::new())
        })
    }

    fn verify_prepared(
        &self,
        keys: &PreparedKeys,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError> {
        let value = request.single_header(&self.header)?;
        self.verify_value_with(
            keys.into(),
            now_unix,
            value.map(HeaderValue::as_bytes),
            request.body(),
        )
        .map(|verified| {
            verified.with_signed_content(Bytes::new(), request.body_bytes(), Bytes::new())
        })
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
        let ring = KeyRing::single(Secret::from_string("k"));
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
