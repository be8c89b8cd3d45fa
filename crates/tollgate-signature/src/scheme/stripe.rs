//! Stripe-style: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>...]`.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use hmac::Mac as _;
use http::{HeaderName, HeaderValue};
use tollgate_core::timestamp::{TimestampWindow, parse_unix_seconds};
use tollgate_core::{KeyRing, Secret, VerifiedSignature};

use super::mac::{Encoding, HmacSha256, MacBytes, find_match, keyed};
use super::{RequestParts, Scheme, SignError, VerifyError, sensitive_value};

/// Stripe-style signatures: HMAC-SHA256 over `t + "." + body`, sent as
/// `t=<unix seconds>,v1=<lowercase hex>`; during a secret roll the header carries several
/// `v1` entries and any one may match.
///
/// The key is the **whole** secret string as bytes, `whsec_` prefix included: build it with
/// `Secret::from_string("whsec_...")`, never decoded.
///
/// Verifying ignores entries it does not know (`v0`, future versions), requires exactly one
/// `t`, and checks it within the window (default ±300 s). The header is `Stripe-Signature`
/// unless set with [`header`](Stripe::header).
///
/// ```
/// use tollgate_core::Secret;
/// use tollgate_signature::Stripe;
///
/// let secret = Secret::from_string("whsec_test_secret");
/// let body = b"{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";
/// assert_eq!(
///     Stripe::new().compute(&secret, 1_700_000_000, body),
///     "t=1700000000,v1=4f1cd7feda9826e746b7d482c4badebb657398df1099e1046364f6196a230150"
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Stripe {
    header: HeaderName,
    window: TimestampWindow,
}

impl Default for Stripe {
    fn default() -> Self {
        Self::new()
    }
}

impl Stripe {
    /// The scheme on `Stripe-Signature` with a ±300 s window, named `"stripe"`.
    pub fn new() -> Self {
        Self {
            header: HeaderName::from_static("stripe-signature"),
            window: TimestampWindow::default(),
        }
    }

    /// Sets the header that carries `t=..,v1=..`.
    #[must_use]
    pub fn header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// Sets the accepted clock difference either side (default 300 s, inclusive).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.window = TimestampWindow::new(tolerance);
        self
    }

    /// The header that carries the signature.
    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }

    /// The header value `t=<timestamp>,v1=<hex>` for `body`.
    pub fn compute(&self, secret: &Secret, timestamp: u64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        keyed(secret.expose_secret())
            .map(|mut mac| {
                feed(&mut mac, timestamp.as_bytes(), body);
                format!(
                    "t={timestamp},v1={}",
                    Encoding::Hex.encode(&mac.finalize().into_bytes())
                )
            })
            .unwrap_or_default()
    }
}

fn feed(mac: &mut HmacSha256, timestamp: &[u8], body: &[u8]) {
    mac.update(timestamp);
    mac.update(b".");
    mac.update(body);
}

/// The parsed header: the raw `t` text and the `v1` signatures.
#[derive(Debug)]
struct Parsed<'a> {
    timestamp: &'a [u8],
    signatures: Vec<MacBytes>,
}

fn parse(value: &[u8]) -> Result<Parsed<'_>, VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(|&b| b == b',') {
        let eq = item
            .iter()
            .position(|&b| b == b'=')
            .ok_or(VerifyError::Malformed {
                reason: "a signature header element is not `key=value`",
            })?;
        let (key, val) = (&item[..eq], &item[eq + 1..]);
        match key {
            b"t" if timestamp.is_some() => {
                return Err(VerifyError::Malformed {
                    reason: "the signature header has more than one `t`",
                });
            }
            b"t" => timestamp = Some(val),
            b"v1" => signatures.push(Encoding::Hex.decode_mac(val).ok_or(
                VerifyError::Malformed {
                    reason: "a v1 signature is not one lowercase hex HMAC-SHA256",
                },
            )?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed {
        reason: "the signature header has no `t`",
    })?;
    Ok(Parsed {
        timestamp,
        signatures,
    })
}

impl Scheme for Stripe {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("stripe")
    }

    fn sign(
        &self,
        key: &Secret,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let timestamp = now_unix.to_string();
        let mut mac = keyed(key.expose_secret()).ok_or(SignError::InvalidKey)?;
        feed(&mut mac, timestamp.as_bytes(), request.body());
        let value = format!(
            "t={timestamp},v1={}",
            Encoding::Hex.encode(&mac.finalize().into_bytes())
        );
        Ok(vec![(self.header.clone(), sensitive_value(value)?)])
    }

    fn verify(
        &self,
        ring: &KeyRing,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError> {
        let value = request
            .single_header(&self.header)?
            .ok_or_else(|| VerifyError::Missing {
                header: self.header.clone(),
            })?;
        let parsed = parse(value.as_bytes())?;
        let timestamp = parse_unix_seconds(parsed.timestamp)?;
        let (key, index) = find_match(ring, now_unix, &parsed.signatures, |mac| {
            feed(mac, parsed.timestamp, request.body());
        })
        .ok_or(VerifyError::Invalid)?;
        self.window.check(timestamp, now_unix)?;
        Ok(VerifiedSignature::new(
            self.name(),
            key.shared_id(),
            Bytes::copy_from_slice(&parsed.signatures[index]),
        )
        .with_timestamp(timestamp))
    }
}

#[cfg(test)]
mod tests {
    use tollgate_core::TimestampError;

    use super::*;

    #[test]
    fn parsing() {
        let hex = Encoding::Hex.encode(&[9u8; 32]);
        let header = format!("v0=abc,t=12,x1=,v1={hex},v1={hex}");
        let parsed = parse(header.as_bytes()).unwrap();
        assert_eq!(parsed.timestamp, b"12");
        assert_eq!(parsed.signatures.len(), 2);
        assert!(parse(b"t=12,v0=abc").unwrap().signatures.is_empty());
        for bad in [
            &b""[..],
            b"t=1,t=2",
            b"v1=00",
            b"t=1,v1",
            b"t=1,,v1=00",
            b"t=1,v1=zz",
        ] {
            assert!(
                matches!(parse(bad), Err(VerifyError::Malformed { .. })),
                "{bad:?}"
            );
        }
        // `t` is digits only.
        assert_eq!(
            parse_unix_seconds(parse(b"t=-1").unwrap().timestamp),
            Err(TimestampError::Malformed)
        );
    }
}
