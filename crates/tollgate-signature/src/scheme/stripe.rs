//! Stripe-style: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>...]`.

use std::borrow::Cow;
use std::time::Duration;
use tollgate_core::header::trim_ows;

use bytes::Bytes;
use hmac::Mac as _;
use http::{HeaderName, HeaderValue};
use tollgate_core::timestamp::{TimestampWindow, parse_unix_seconds};
use tollgate_core::{Secret, VerifiedSignature};

use super::mac::{Encoding, HmacSha256, MacBytes, mac_with, match_signature, signing_mac};
use super::{
    PreparedKeys, RequestParts, Scheme, SignError, VerifyError, sensitive_value, within_window,
};

/// Stripe-style signatures: HMAC-SHA256 over `t + "." + body`, sent as
/// `t=<unix seconds>,v1=<lowercase hex>`; during a secret roll the header carries several
/// `v1` entries and any one may match.
///
/// The key is the **whole** secret string as bytes, `whsec_` prefix included: build it with
/// `Secret::from_string("whsec_...")`, never decoded.
///
/// The header is `Stripe-Signature` unless set with [`header`](Stripe::header). Verifying
/// reads it the way Stripe's libraries do, and is stricter where they are lax:
///
/// | header | result |
/// |---|---|
/// | spaces around elements (`t=1, v1=..`), empty elements, elements without `=` | skipped |
/// | `v0=..`, `v2=..`, any other key | skipped |
/// | several `v1`, in any order | accepted when any one matches a usable key |
/// | a `v1` that is not 64 lowercase hex digits, next to others | cannot match; the others still may |
/// | every `v1` unreadable | 400 `signature_malformed` |
/// | no `v1` at all (only `v0`, say) | 401 `signature_invalid` |
/// | no `t`, or `t` twice | 400 `signature_malformed` |
/// | `t` not ASCII digits (`-1`, `+1`, `1.5`, ` 1`, overflow) | 400 `timestamp_malformed` |
/// | `t` more than the tolerance (default 300 s) in the past **or the future** | 401 `timestamp_out_of_window` |
///
/// Stripe's libraries refuse only *old* timestamps; this window is two-sided, so a signature
/// made with a clock far ahead cannot be held back and used later. Hex is accepted in lower
/// case only, as Stripe sends it and as stripe-node compares it (see [`Encoding::Hex`]).
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
        mac_with(secret.expose_secret(), |mac| {
            feed(mac, timestamp.as_bytes(), body);
        })
        .map(|mac| header_value(&timestamp, &mac))
        .unwrap_or_default()
    }
}

/// `t=<timestamp>,v1=<hex>`.
fn header_value(timestamp: &str, mac: &MacBytes) -> String {
    Encoding::Hex.encode_after(&format!("t={timestamp},v1="), mac)
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

/// Parses `t=<ts>,v1=<hex>[,v1=<hex>...]` the way Stripe's own libraries read it: elements
/// are split on `,` with spaces around them ignored; elements that are empty, without `=`,
/// or of another scheme (`v0`, future versions) are skipped; a `v1` value that is not one
/// lowercase hex HMAC-SHA256 simply cannot match (another `v1` still may).
///
/// Stricter than those libraries where a lax reading is ambiguous: exactly one `t`, and a
/// header whose every `v1` is unreadable is malformed (400) rather than merely unmatched.
fn parse(value: &[u8]) -> Result<Parsed<'_>, VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    let mut unreadable_v1 = false;
    for item in value.split(|&b| b == b',').map(trim_ows) {
        let Some(eq) = item.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, val) = (&item[..eq], &item[eq + 1..]);
        match key {
            b"t" if timestamp.is_some() => {
                return Err(VerifyError::Malformed {
                    reason: "the signature header has more than one `t`",
                });
            }
            b"t" => timestamp = Some(val),
            b"v1" => match Encoding::Hex.decode_mac(val) {
                Some(mac) => signatures.push(mac),
                None => unreadable_v1 = true,
            },
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed {
        reason: "the signature header has no `t`",
    })?;
    if signatures.is_empty() && unreadable_v1 {
        return Err(VerifyError::Malformed {
            reason: "no v1 signature is one lowercase hex HMAC-SHA256",
        });
    }
    Ok(Parsed {
        timestamp,
        signatures,
    })
}

impl Scheme for Stripe {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("stripe")
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
        let timestamp = now_unix.to_string();
        let mac = signing_mac(key, |mac| {
            feed(mac, timestamp.as_bytes(), request.body());
        })?;
        let value = sensitive_value(header_value(&timestamp, &mac))?;
        Ok(vec![(self.header.clone(), value)])
    }

    fn verify(
        &self,
        keys: &PreparedKeys,
        request: &RequestParts<'_>,
        now_unix: u64,
    ) -> Result<VerifiedSignature, VerifyError> {
        let value = request.signature_header(&self.header)?;
        let parsed = parse(value.as_bytes())?;
        let timestamp = parse_unix_seconds(parsed.timestamp)?;
        let verified = match_signature(keys, now_unix, &parsed.signatures, |mac| {
            feed(mac, parsed.timestamp, request.body());
        })?
        .verified(self.name());
        within_window(verified, &self.window, timestamp, now_unix).map(|verified| {
            // Exactly what was signed: the whole `t` text, `.`, the body.
            verified.with_signed_content(
                Bytes::from([parsed.timestamp, b"."].concat()),
                request.body_bytes(),
                Bytes::new(),
            )
        })
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
        // Spaces around elements, empty elements, elements without `=` and unreadable `v1`
        // values next to a readable one are skipped, as Stripe's libraries do.
        let lax = format!(" t=12 ,\tv1={hex} , ,junk,v1=potato,v1=,");
        let parsed = parse(lax.as_bytes()).unwrap();
        assert_eq!(parsed.timestamp, b"12");
        assert_eq!(parsed.signatures, vec![[9u8; 32]]);
        assert!(parse(b"t=12,v1").unwrap().signatures.is_empty());
        for bad in [
            &b""[..],
            b"t=1,t=2",
            b"v1=00",
            b"t=1,v1=00",
            b"t=1,,v1=zz",
            b"t=1,v1=",
            b"garbage",
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
