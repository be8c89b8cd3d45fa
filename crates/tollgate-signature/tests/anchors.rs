//! The published behaviour of the schemes' reference implementations, case by case: the
//! Standard Webhooks libraries' `Webhook.verify`/`sign`, Stripe's `constructEvent` /
//! `ValidatePayload`, GitHub's `X-Hub-Signature-256` check, OneKey's `Payload-Signature`
//! sample and the generic Method + Path + Body + Timestamp rule.
//!
//! Where tollgate is deliberately stricter than a reference (two-sided window, one `t`,
//! lowercase hex only, digits-only timestamps, empty keys), the test says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use tollgate_core::{Key, KeyRing, Secret, TimestampError, VerifiedSignature};
use tollgate_signature::{
    BodyHmac, Canonical, ConfigError, Encoding, RequestParts, Scheme, SignError, StandardWebhooks,
    Stripe, VerifyError,
};

const T: u64 = 1_700_000_000;

/// Verifies a POST to `path` carrying `headers` and `body` at `now`.
fn verify_at(
    scheme: &dyn Scheme,
    ring: &KeyRing,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now: u64,
) -> Result<VerifiedSignature, VerifyError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let uri: Uri = path.parse().unwrap();
    scheme.verify(
        &ring.clone().into(),
        &RequestParts::new(&Method::POST, &uri, &map, body),
        now,
    )
}

/// The status and code a server answers with for `result`, as `"401 signature_invalid"`.
fn answer(result: &Result<VerifiedSignature, VerifyError>) -> String {
    match result {
        Ok(_) => "200 ok".to_owned(),
        Err(err) => {
            let rejection = err.to_rejection();
            format!("{} {}", rejection.status().as_u16(), rejection.code())
        }
    }
}

/// Asserts that neither `Display`, `Debug` nor the rejection of `err` holds any of `secrets`.
fn assert_no_leak(err: &VerifyError, secrets: &[&str]) {
    let rejection = err.to_rejection();
    let texts = [
        err.to_string(),
        format!("{err:?}"),
        format!("{rejection:?}"),
        rejection.message().to_string(),
    ];
    for text in &texts {
        for secret in secrets {
            assert!(!text.contains(secret), "{text:?} contains {secret:?}");
        }
    }
}

mod standard_webhooks {
    use super::*;

    // The Standard Webhooks libraries' own test secret, message and payload.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    // A well-formed `v1` signature that matches nothing (the libraries' "bad" signature).
    const OTHER: &str = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";

    fn ring() -> KeyRing {
        KeyRing::single(StandardWebhooks::secret_from_whsec(SECRET).unwrap())
    }

    fn signature(ts: u64) -> String {
        StandardWebhooks::new().compute(
            &StandardWebhooks::secret_from_whsec(SECRET).unwrap(),
            MSG_ID,
            ts,
            PAYLOAD,
        )
    }

    fn verify(headers: &[(&str, &str)], now: u64) -> Result<VerifiedSignature, VerifyError> {
        verify_at(
            &StandardWebhooks::new(),
            &ring(),
            "/",
            headers,
            PAYLOAD,
            now,
        )
    }

    fn full(ts: &str, sig: &str) -> Result<VerifiedSignature, VerifyError> {
        verify(
            &[
                ("webhook-id", MSG_ID),
                ("webhook-timestamp", ts),
                ("webhook-signature", sig),
            ],
            T,
        )
    }

    #[test]
    fn valid_signature_verifies_and_reports_id_and_timestamp() {
        let verified = full(&T.to_string(), &signature(T)).unwrap();
        assert_eq!(verified.scheme(), "standard-webhooks");
        assert_eq!(verified.key_id(), "default");
        assert_eq!(verified.timestamp(), Some(T));
        assert_eq!(verified.message_id().unwrap().as_ref(), MSG_ID.as_bytes());
    }

    #[test]
    fn sign_output_is_v1_comma_base64_with_timestamp_header() {
        let key = StandardWebhooks::secret_from_whsec(SECRET).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_static(MSG_ID));
        let uri = Uri::from_static("/");
        let added = StandardWebhooks::new()
            .sign(
                &key,
                &RequestParts::new(&Method::POST, &uri, &headers, PAYLOAD),
                1_614_265_330,
            )
            .unwrap();
        assert_eq!(added.len(), 2);
        assert_eq!(added[0].0, "webhook-timestamp");
        assert_eq!(added[0].1, "1614265330");
        assert_eq!(added[1].0, "webhook-signature");
        assert_eq!(
            added[1].1,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(added[1].1.is_sensitive());
    }

    #[test]
    fn secret_with_and_without_prefix_give_the_same_key() {
        let with = StandardWebhooks::secret_from_whsec(SECRET).unwrap();
        let without = StandardWebhooks::secret_from_base64(&SECRET[6..]).unwrap();
        assert_eq!(with.expose_secret(), without.expose_secret());
        assert_eq!(with.len(), 24);
        // The secret's text is never the key.
        assert_ne!(with.expose_secret(), SECRET.as_bytes());
    }

    #[test]
    fn secrets_that_are_not_whsec_base64_are_refused() {
        for (secret, err) in [
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                ConfigError::MissingWhsecPrefix,
            ),
            (
                "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                ConfigError::MissingWhsecPrefix,
            ),
            ("whsec_", ConfigError::EmptySecret),
            ("whsec_not base64!", ConfigError::InvalidBase64Secret),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
                ConfigError::InvalidBase64Secret,
            ),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
                ConfigError::InvalidBase64Secret,
            ),
        ] {
            let got = StandardWebhooks::secret_from_whsec(secret).unwrap_err();
            assert_eq!(got, err, "{secret:?}");
            // The error names the problem, never the secret.
            assert!(!got.to_string().contains("MfKQ9r8G"));
            assert!(!format!("{got:?}").contains("MfKQ9r8G"));
        }
        assert_eq!(
            StandardWebhooks::secret_from_base64("").unwrap_err(),
            ConfigError::EmptySecret
        );
    }

    #[test]
    fn several_signatures_any_order_unknown_versions_ignored() {
        let good = signature(T);
        let good_b64 = &good[3..];
        for header in [
            format!("v1,{OTHER} v2,{OTHER} {good} v1,{OTHER}"),
            format!("{good} v1,{OTHER}"),
            format!("v1,{OTHER} {good}"),
            format!("v1a,{good_b64} {good}"),
            format!("v1a,AAAA {good} v2,{good_b64}"),
            format!("{good}  v1,{OTHER}"), // a double space is one separator
            // Broken entries do not hide a good one (the JS and Rust libraries compare
            // each `v1` as text and go on).
            format!("v1,potato {good}"),
            format!("v1 {good}"),
            format!("{good} v1,{}", &OTHER[..20]),
        ] {
            assert!(full(&T.to_string(), &header).is_ok(), "{header}");
        }
    }

    #[test]
    fn only_other_versions_or_no_match_is_invalid() {
        let good = signature(T);
        for header in [
            format!("v1a,{}", &good[3..]),
            format!("v2,{}", &good[3..]),
            format!("V1,{}", &good[3..]),
            format!(",{}", &good[3..]),
            format!("v1,{OTHER}"),
            format!("v1,{OTHER} v1,{OTHER}"),
        ] {
            let result = full(&T.to_string(), &header);
            assert_eq!(result, Err(VerifyError::Invalid), "{header}");
            assert_eq!(answer(&result), "401 signature_invalid");
        }
    }

    #[test]
    fn truncated_overlong_and_unpadded_signatures_are_refused() {
        let good = signature(T);
        for header in [
            good[..good.len() - 1].to_owned(), // padding dropped
            good[..good.len() - 4].to_owned(),
            format!("{good}A"),
            format!("{good}AAAA"),
            "v1,".to_owned(),
            good[3..].to_owned(), // no version
            "v1,!!!!".to_owned(),
        ] {
            let result = full(&T.to_string(), &header);
            assert_eq!(answer(&result), "400 signature_malformed", "{header}");
        }
    }

    #[test]
    fn missing_headers() {
        let good = signature(T);
        let ts = T.to_string();
        let missing_sig = verify(&[("webhook-id", MSG_ID), ("webhook-timestamp", &ts)], T);
        assert_eq!(answer(&missing_sig), "401 signature_missing");
        let missing_id = verify(
            &[("webhook-timestamp", &ts), ("webhook-signature", &good)],
            T,
        );
        assert_eq!(answer(&missing_id), "400 signature_malformed");
        let empty_id = verify(
            &[
                ("webhook-id", ""),
                ("webhook-timestamp", &ts),
                ("webhook-signature", &good),
            ],
            T,
        );
        assert_eq!(answer(&empty_id), "400 signature_malformed");
        let missing_ts = verify(&[("webhook-id", MSG_ID), ("webhook-signature", &good)], T);
        assert_eq!(
            missing_ts,
            Err(VerifyError::Timestamp(TimestampError::Malformed))
        );
        assert_eq!(answer(&verify(&[], T)), "401 signature_missing");
    }

    #[test]
    fn the_signed_content_is_id_dot_timestamp_dot_body() {
        let good = signature(T);
        let ts = T.to_string();
        // Another id, another body, another timestamp text: all refused.
        let other_id = verify(
            &[
                ("webhook-id", "msg_other"),
                ("webhook-timestamp", &ts),
                ("webhook-signature", &good),
            ],
            T,
        );
        assert_eq!(other_id, Err(VerifyError::Invalid));
        let body = verify_at(
            &StandardWebhooks::new(),
            &ring(),
            "/",
            &[
                ("webhook-id", MSG_ID),
                ("webhook-timestamp", &ts),
                ("webhook-signature", &good),
            ],
            br#"{"test": 2432232315}"#,
            T,
        );
        assert_eq!(body, Err(VerifyError::Invalid));
        assert_eq!(full(&(T + 1).to_string(), &good), Err(VerifyError::Invalid));
        // Leading zeros would be another text of the same number: refused before the MAC
        // (one spelling per time).
        assert_eq!(
            full(&format!("0{T}"), &good),
            Err(VerifyError::Timestamp(
                tollgate_core::TimestampError::Malformed
            ))
        );
    }

    #[test]
    fn tolerance_is_five_minutes_both_ways_inclusive() {
        for (ts, expected) in [
            (T - 300, Ok(())),
            (T + 300, Ok(())),
            (T - 301, Err(TimestampError::TooOld { age: 301 })),
            (T + 301, Err(TimestampError::InFuture { ahead: 301 })),
            (
                T + 86_400 * 365,
                Err(TimestampError::InFuture {
                    ahead: 86_400 * 365,
                }),
            ),
            (0, Err(TimestampError::TooOld { age: T })),
            // Milliseconds where seconds are expected land far in the future.
            (T * 1000, Err(TimestampError::InFuture { ahead: T * 999 })),
            (
                u64::MAX,
                Err(TimestampError::InFuture {
                    ahead: u64::MAX - T,
                }),
            ),
        ] {
            let result = full(&ts.to_string(), &signature(ts));
            assert_eq!(
                result.map(|_| ()),
                expected.map_err(VerifyError::Timestamp),
                "{ts}"
            );
        }
        let result = full(&(T + 301).to_string(), &signature(T + 301));
        assert_eq!(answer(&result), "401 timestamp_out_of_window");
        // Configurable.
        let wide = StandardWebhooks::new().tolerance(std::time::Duration::from_secs(600));
        let ts = (T - 600).to_string();
        let sig = signature(T - 600);
        let headers = [
            ("webhook-id", MSG_ID),
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", sig.as_str()),
        ];
        assert!(verify_at(&wide, &ring(), "/", &headers, PAYLOAD, T).is_ok());
    }

    #[test]
    fn timestamps_are_digits_only() {
        for ts in [
            "-1",
            "-1700000000",
            "+1700000000",
            "1700000000.0",
            "1.7e9",
            " 1700000000",
            "1700000000 ",
            "",
            "abc",
            "18446744073709551616",
            "0x6553f100",
        ] {
            let result = full(ts, &signature(T));
            assert_eq!(answer(&result), "400 timestamp_malformed", "{ts:?}");
        }
    }

    #[test]
    fn rotation_signatures_in_one_header() {
        let old = StandardWebhooks::secret_from_base64("b2xkLXNlY3JldC1rZXk=").unwrap();
        let new = StandardWebhooks::secret_from_whsec(SECRET).unwrap();
        let sw = StandardWebhooks::new();
        let header = format!(
            "{} {}",
            sw.compute(&new, MSG_ID, T, PAYLOAD),
            sw.compute(&old, MSG_ID, T, PAYLOAD)
        );
        let ts = T.to_string();
        let headers = [
            ("webhook-id", MSG_ID),
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", header.as_str()),
        ];
        // A receiver that only knows the old key, one that knows both, one that knows the new.
        for (ring, id) in [
            (KeyRing::new(Key::new("old", old.clone())), "old"),
            (
                KeyRing::new(Key::new("old", old).not_after(T))
                    .rotate(Key::new("new", new.clone())),
                "new",
            ),
            (KeyRing::new(Key::new("new", new)), "new"),
        ] {
            let verified = verify_at(&sw, &ring, "/", &headers, PAYLOAD, T).unwrap();
            assert_eq!(verified.key_id(), id);
        }
    }

    #[test]
    fn errors_never_hold_the_expected_signature_or_the_secret() {
        let good = signature(T);
        let ts = T.to_string();
        let err = full(&ts, &format!("v1,{OTHER}")).unwrap_err();
        assert_no_leak(&err, &[&good[3..], &SECRET[6..]]);
        let err = full(&(T + 999).to_string(), &signature(T + 999)).unwrap_err();
        assert_no_leak(&err, &[&signature(T + 999)[3..], &SECRET[6..]]);
    }
}

mod stripe {
    use super::*;

    // stripe-node's and stripe-go's test secret and a typical event.
    const SECRET: &str = "whsec_test_secret";
    const PAYLOAD: &[u8] = b"{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";

    fn ring() -> KeyRing {
        KeyRing::single(Secret::from_string(SECRET))
    }

    fn v1(ts: u64, secret: &str) -> String {
        let header = Stripe::new().compute(&Secret::from_string(secret), ts, PAYLOAD);
        header.split_once(",v1=").unwrap().1.to_owned()
    }

    fn verify(header: &str) -> Result<VerifiedSignature, VerifyError> {
        verify_at(
            &Stripe::new(),
            &ring(),
            "/",
            &[("stripe-signature", header)],
            PAYLOAD,
            T,
        )
    }

    #[test]
    fn valid_header_verifies_with_the_whole_secret_as_key() {
        let header = Stripe::new().compute(&Secret::from_string(SECRET), T, PAYLOAD);
        let verified = verify(&header).unwrap();
        assert_eq!(verified.scheme(), "stripe");
        assert_eq!(verified.timestamp(), Some(T));
        assert_eq!(hex::encode(verified.signature()), v1(T, SECRET));
        // The secret without its prefix, or base64-decoded, is another key.
        let stripped = KeyRing::single(Secret::from_string("test_secret"));
        let result = verify_at(
            &Stripe::new(),
            &stripped,
            "/",
            &[("stripe-signature", &header)],
            PAYLOAD,
            T,
        );
        assert_eq!(result, Err(VerifyError::Invalid));
    }

    #[test]
    fn sign_output_matches_stripes_test_header_format() {
        let uri = Uri::from_static("/");
        let headers = HeaderMap::new();
        let added = Stripe::new()
            .sign(
                &Secret::from_string(SECRET),
                &RequestParts::new(&Method::POST, &uri, &headers, PAYLOAD),
                T,
            )
            .unwrap();
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].0, "stripe-signature");
        assert_eq!(
            added[0].1,
            "t=1700000000,v1=4f1cd7feda9826e746b7d482c4badebb657398df1099e1046364f6196a230150"
        );
        assert!(added[0].1.is_sensitive());
    }

    #[test]
    fn at_least_one_valid_signature_among_several_in_any_order() {
        let good = v1(T, SECRET);
        let wrong = v1(T, "whsec_other");
        for header in [
            // stripe-node: "should return true when the header contains at least one valid
            // signature" (`,v1=potato` appended).
            format!("t={T},v1={good},v1=potato"),
            format!("t={T},v1=potato,v1={good}"),
            format!("t={T},v1={wrong},v1={good}"),
            format!("t={T},v1={good},v1={wrong}"),
            format!("v1={good},t={T}"),
            format!("v0={wrong},v1={good},t={T}"),
            format!("t={T},v1={good},v0={wrong},v2={wrong},x=y"),
            // Spaces around elements (Stripe's Ruby and .NET libraries trim them).
            format!("t={T}, v1={good}"),
            format!("t={T} , v1={good} ,v0={wrong}"),
            format!("t={T},\tv1={good}"),
            // Empty elements and elements without `=` are skipped.
            format!("t={T},,v1={good},"),
            format!("t={T},junk,v1={good}"),
        ] {
            assert!(verify(&header).is_ok(), "{header}");
        }
    }

    #[test]
    fn no_v1_signature_is_refused() {
        let good = v1(T, SECRET);
        for header in [
            format!("t={T},v0={good}"),
            format!("t={T},v2={good}"),
            format!("t={T},V1={good}"),
            format!("t={T}"),
            format!("t={T},v1"),
        ] {
            let result = verify(&header);
            assert_eq!(result, Err(VerifyError::Invalid), "{header}");
            assert_eq!(answer(&result), "401 signature_invalid");
        }
    }

    #[test]
    fn wrong_secret_or_payload_is_invalid() {
        let header = format!("t={T},v1={}", v1(T, "whsec_other"));
        assert_eq!(verify(&header), Err(VerifyError::Invalid));
        let header = format!("t={T},v1={}", v1(T, SECRET));
        let result = verify_at(
            &Stripe::new(),
            &ring(),
            "/",
            &[("stripe-signature", &header)],
            b"{\"id\": \"evt_test_webhook\", \"object\": \"event\"}",
            T,
        );
        assert_eq!(result, Err(VerifyError::Invalid));
        // The timestamp is part of the signed payload.
        let header = format!("t={},v1={}", T + 1, v1(T, SECRET));
        assert_eq!(verify(&header), Err(VerifyError::Invalid));
    }

    #[test]
    fn malformed_headers() {
        let good = v1(T, SECRET);
        for (header, expected) in [
            // stripe-node's `bad_header`: no timestamp can be extracted.
            ("bad_header".to_owned(), "400 signature_malformed"),
            (String::new(), "400 signature_malformed"),
            (format!("v1={good}"), "400 signature_malformed"),
            (format!("t={T},t={T},v1={good}"), "400 signature_malformed"),
            (format!("t={T},v1=potato"), "400 signature_malformed"),
            (
                format!("t={T},v1={}", good.to_uppercase()),
                "400 signature_malformed",
            ),
            (
                format!("t={T},v1={}", &good[..63]),
                "400 signature_malformed",
            ),
            (format!("t={T},v1={good}0"), "400 signature_malformed"),
            (format!("t={T},v1={good}00"), "400 signature_malformed"),
            (format!("t={T},v1="), "400 signature_malformed"),
            (format!("t=-{T},v1={good}"), "400 timestamp_malformed"),
            (format!("t=+{T},v1={good}"), "400 timestamp_malformed"),
            (format!("t={T}.5,v1={good}"), "400 timestamp_malformed"),
            (format!("t=,v1={good}"), "400 timestamp_malformed"),
            (format!("t=abc,v1={good}"), "400 timestamp_malformed"),
            (
                format!("t=99999999999999999999,v1={good}"),
                "400 timestamp_malformed",
            ),
            // `t` without `=` is not a timestamp.
            (format!("t,v1={good}"), "400 signature_malformed"),
        ] {
            assert_eq!(answer(&verify(&header)), expected, "{header:?}");
        }
        assert_eq!(
            answer(&verify_at(&Stripe::new(), &ring(), "/", &[], PAYLOAD, T)),
            "401 signature_missing"
        );
    }

    #[test]
    fn tolerance_300_seconds_and_future_timestamps_refused() {
        for (ts, expected) in [
            (T - 300, "200 ok"),
            (T + 300, "200 ok"),
            (T - 301, "401 timestamp_out_of_window"),
            // Stripe's libraries accept any future timestamp; tollgate's window is two-sided.
            (T + 301, "401 timestamp_out_of_window"),
            (T + 10 * 365 * 86_400, "401 timestamp_out_of_window"),
            (T * 1000, "401 timestamp_out_of_window"),
            (0, "401 timestamp_out_of_window"),
        ] {
            let header = format!("t={ts},v1={}", v1(ts, SECRET));
            assert_eq!(answer(&verify(&header)), expected, "{ts}");
        }
        let lax = Stripe::new().tolerance(std::time::Duration::from_secs(3600));
        let header = format!("t={},v1={}", T - 3600, v1(T - 3600, SECRET));
        let result = verify_at(
            &lax,
            &ring(),
            "/",
            &[("stripe-signature", &header)],
            PAYLOAD,
            T,
        );
        assert!(result.is_ok());
    }

    #[test]
    fn rolled_secret_two_v1_entries() {
        let header = format!("t={T},v1={},v1={}", v1(T, "whsec_new"), v1(T, SECRET));
        let ring = KeyRing::new(Key::new("old", Secret::from_string(SECRET)).not_after(T))
            .rotate(Key::new("new", Secret::from_string("whsec_new")));
        let verified = verify_at(
            &Stripe::new(),
            &ring,
            "/",
            &[("stripe-signature", &header)],
            PAYLOAD,
            T,
        )
        .unwrap();
        assert_eq!(verified.key_id(), "new");
        assert_eq!(hex::encode(verified.signature()), v1(T, "whsec_new"));
        // Only the old key's signature, after its expiry: refused.
        let header = format!("t={},v1={}", T + 1, v1(T + 1, SECRET));
        let result = verify_at(
            &Stripe::new(),
            &ring,
            "/",
            &[("stripe-signature", &header)],
            PAYLOAD,
            T + 1,
        );
        assert_eq!(result, Err(VerifyError::Invalid));
    }

    #[test]
    fn custom_header_and_duplicate_header() {
        let scheme = Stripe::new().header(HeaderName::from_static("x-signature"));
        let header = Stripe::new().compute(&Secret::from_string(SECRET), T, PAYLOAD);
        assert!(
            verify_at(
                &scheme,
                &ring(),
                "/",
                &[("x-signature", &header)],
                PAYLOAD,
                T
            )
            .is_ok()
        );
        let twice = verify_at(
            &Stripe::new(),
            &ring(),
            "/",
            &[("stripe-signature", &header), ("stripe-signature", &header)],
            PAYLOAD,
            T,
        );
        assert_eq!(answer(&twice), "400 signature_malformed");
    }

    #[test]
    fn errors_never_hold_the_expected_signature_or_the_secret() {
        let good = v1(T, SECRET);
        for header in [
            format!("t={T},v1={}", v1(T, "whsec_other")),
            format!("t={},v1={}", T + 999, v1(T + 999, SECRET)),
            format!("t={T},v1=potato"),
        ] {
            let err = verify(&header).unwrap_err();
            assert_no_leak(&err, &[&good, &v1(T + 999, SECRET), SECRET]);
        }
    }
}

mod github {
    use super::*;

    // GitHub's documented test values.
    const SECRET: &str = "It's a Secret to Everybody";
    const PAYLOAD: &[u8] = b"Hello, World!";
    const HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn verify(value: Option<&str>, body: &[u8]) -> Result<VerifiedSignature, VerifyError> {
        let headers: Vec<(&str, &str)> = value
            .map(|v| ("x-hub-signature-256", v))
            .into_iter()
            .collect();
        verify_at(
            &BodyHmac::github(),
            &KeyRing::single(Secret::from_string(SECRET)),
            "/",
            &headers,
            body,
            T,
        )
    }

    #[test]
    fn documented_value_verifies() {
        let verified = verify(Some(&format!("sha256={HEX}")), PAYLOAD).unwrap();
        assert_eq!(verified.scheme(), "github");
        assert_eq!(hex::encode(verified.signature()), HEX);
        assert_eq!(verified.timestamp(), None);
    }

    #[test]
    fn the_full_string_must_match() {
        for value in [
            HEX.to_owned(),
            format!("sha256={}", HEX.to_uppercase()),
            format!("SHA256={HEX}"),
            format!("sha1={HEX}"),
            format!("sha256:{HEX}"),
            format!("sha256= {HEX}"),
            format!("sha256={}", &HEX[..63]),
            format!("sha256={HEX}0"),
            format!("sha256={HEX},sha256={HEX}"),
            "sha256=".to_owned(),
            String::new(),
        ] {
            let result = verify(Some(&value), PAYLOAD);
            assert_eq!(answer(&result), "400 signature_malformed", "{value:?}");
        }
        assert_eq!(answer(&verify(None, PAYLOAD)), "401 signature_missing");
        let result = verify(Some(&format!("sha256={HEX}")), b"Hello, World?");
        assert_eq!(answer(&result), "401 signature_invalid");
    }
}

mod onekey {
    use super::*;

    const SECRET: &str = "cashout_secret_key";

    #[test]
    fn exact_payload_bytes_lowercase_hex() {
        let ring = KeyRing::single(Secret::from_string(SECRET));
        let minified = br#"{"amount":2000,"currency":"MXN"}"#;
        let pretty = b"{\n  \"amount\": 2000,\n  \"currency\": \"MXN\"\n}";
        let sig = BodyHmac::onekey().compute(&Secret::from_string(SECRET), minified);
        assert_eq!(sig.len(), 64);
        assert!(sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        let check = |value: &str, body: &[u8]| {
            verify_at(
                &BodyHmac::onekey(),
                &ring,
                "/cashout",
                &[("payload-signature", value)],
                body,
                T,
            )
        };
        assert!(check(&sig, minified).is_ok());
        // The same JSON re-serialised is other bytes: refused.
        assert_eq!(check(&sig, pretty), Err(VerifyError::Invalid));
        // Upper-case hex from a sender: refused as malformed (see `Encoding`).
        assert_eq!(
            answer(&check(&sig.to_uppercase(), minified)),
            "400 signature_malformed"
        );
        assert_eq!(
            answer(&check(&format!("sha256={sig}"), minified)),
            "400 signature_malformed"
        );
        // Base64 of the same MAC is not the OneKey spelling.
        let b64 = BodyHmac::onekey()
            .encoding(Encoding::Base64)
            .compute(&Secret::from_string(SECRET), minified);
        assert_eq!(answer(&check(&b64, minified)), "400 signature_malformed");
    }
}

mod canonical {
    use super::*;

    const SECRET: &str = "whk_demo_secret";

    #[test]
    fn the_order_is_method_path_body_timestamp() {
        let scheme = Canonical::new();
        let secret = Secret::from_string(SECRET);
        let body = br#"{"amount":100}"#;
        let sig = scheme.compute(&secret, "POST", "/v1/payments", body, T);
        let concat = [&b"POST/v1/payments"[..], body, T.to_string().as_bytes()].concat();
        assert_eq!(sig, BodyHmac::onekey().compute(&secret, &concat));
        // Other orders sign other bytes.
        let swapped = [
            &b"POST"[..],
            body,
            b"/v1/payments",
            T.to_string().as_bytes(),
        ]
        .concat();
        assert_ne!(sig, BodyHmac::onekey().compute(&secret, &swapped));
    }

    #[test]
    fn verification_rules() {
        let scheme = Canonical::new();
        let ring = KeyRing::single(Secret::from_string(SECRET));
        let secret = Secret::from_string(SECRET);
        let sig = scheme.compute(&secret, "POST", "/p?a=1", b"{}", T);
        let ts = T.to_string();
        let check = |path: &str, headers: &[(&str, &str)], now: u64| {
            verify_at(&scheme, &ring, path, headers, b"{}", now)
        };
        let good = [("x-signature", sig.as_str()), ("x-timestamp", ts.as_str())];
        assert!(check("/p?a=1", &good, T).is_ok());
        assert!(check("/p?a=1", &good, T + 300).is_ok());
        assert!(check("/p?a=1", &good, T - 300).is_ok());
        assert_eq!(
            answer(&check("/p?a=1", &good, T + 301)),
            "401 timestamp_out_of_window"
        );
        assert_eq!(
            answer(&check("/p?a=1", &good, T - 301)),
            "401 timestamp_out_of_window"
        );
        assert_eq!(answer(&check("/p?a=2", &good, T)), "401 signature_invalid");
        assert_eq!(answer(&check("/p", &good, T)), "401 signature_invalid");
        let ms = (T * 1000).to_string();
        let ms_sig = scheme.compute(&secret, "POST", "/p?a=1", b"{}", T * 1000);
        let in_ms = [
            ("x-signature", ms_sig.as_str()),
            ("x-timestamp", ms.as_str()),
        ];
        assert_eq!(
            answer(&check("/p?a=1", &in_ms, T)),
            "401 timestamp_out_of_window"
        );
        let upper = sig.to_uppercase();
        let upper = [
            ("x-signature", upper.as_str()),
            ("x-timestamp", ts.as_str()),
        ];
        assert_eq!(
            answer(&check("/p?a=1", &upper, T)),
            "400 signature_malformed"
        );
        let negative = [("x-signature", sig.as_str()), ("x-timestamp", "-1")];
        assert_eq!(
            answer(&check("/p?a=1", &negative, T)),
            "400 timestamp_malformed"
        );
        assert_eq!(
            answer(&check("/p?a=1", &[("x-timestamp", ts.as_str())], T)),
            "401 signature_missing"
        );
        assert_eq!(
            answer(&check("/p?a=1", &[("x-signature", sig.as_str())], T)),
            "400 timestamp_malformed"
        );
    }
}

mod empty_keys {
    use super::*;

    fn schemes() -> Vec<Box<dyn Scheme>> {
        vec![
            Box::new(BodyHmac::onekey()),
            Box::new(BodyHmac::github()),
            Box::new(Canonical::new()),
            Box::new(StandardWebhooks::new()),
            Box::new(Stripe::new()),
        ]
    }

    #[test]
    fn nothing_is_signed_with_an_empty_key() {
        let uri = Uri::from_static("/");
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
        for scheme in schemes() {
            let err = scheme
                .sign(
                    &Secret::from_bytes(Vec::new()),
                    &RequestParts::new(&Method::POST, &uri, &headers, b"{}"),
                    T,
                )
                .unwrap_err();
            assert!(matches!(err, SignError::InvalidKey), "{scheme:?}");
        }
    }

    #[test]
    fn an_empty_key_never_verifies_but_the_others_of_the_ring_do() {
        let uri = Uri::from_static("/");
        let mut base = HeaderMap::new();
        base.insert("webhook-id", HeaderValue::from_static("msg_1"));
        let real = Secret::from_string("real-key");
        for scheme in schemes() {
            // What a forger who guesses "the key is empty" would send: MACs under an empty key.
            let mut forged = base.clone();
            forged.extend(forge_with_empty_key(&*scheme, &uri, &base));
            let empty_only = KeyRing::single(Secret::from_string(""));
            let result = scheme.verify(
                &empty_only.into(),
                &RequestParts::new(&Method::POST, &uri, &forged, b"{}"),
                T,
            );
            assert_eq!(result, Err(VerifyError::Invalid), "{scheme:?}");

            let mut signed = base.clone();
            signed.extend(
                scheme
                    .sign(
                        &real,
                        &RequestParts::new(&Method::POST, &uri, &base, b"{}"),
                        T,
                    )
                    .unwrap(),
            );
            let ring = KeyRing::new(Key::new("real", real.clone()))
                .rotate(Key::new("empty", Secret::from_string("")));
            let verified = scheme
                .verify(
                    &ring.into(),
                    &RequestParts::new(&Method::POST, &uri, &signed, b"{}"),
                    T,
                )
                .unwrap();
            assert_eq!(verified.key_id(), "real");
        }
    }

    /// The headers `scheme` would produce under an empty key, computed by hand.
    fn forge_with_empty_key(
        scheme: &dyn Scheme,
        _uri: &Uri,
        _headers: &HeaderMap,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let empty = Secret::from_bytes(Vec::new());
        let ts = T.to_string();
        let value = |text: String| HeaderValue::from_str(&text).unwrap();
        match scheme.name().as_ref() {
            "onekey" => vec![(
                HeaderName::from_static("payload-signature"),
                value(BodyHmac::onekey().compute(&empty, b"{}")),
            )],
            "github" => vec![(
                HeaderName::from_static("x-hub-signature-256"),
                value(BodyHmac::github().compute(&empty, b"{}")),
            )],
            "canonical" => vec![
                (
                    HeaderName::from_static("x-signature"),
                    value(Canonical::new().compute(&empty, "POST", "/", b"{}", T)),
                ),
                (HeaderName::from_static("x-timestamp"), value(ts)),
            ],
            "standard-webhooks" => vec![
                (
                    HeaderName::from_static("webhook-signature"),
                    value(StandardWebhooks::new().compute(&empty, "msg_1", T, b"{}")),
                ),
                (HeaderName::from_static("webhook-timestamp"), value(ts)),
            ],
            "stripe" => vec![(
                HeaderName::from_static("stripe-signature"),
                value(Stripe::new().compute(&empty, T, b"{}")),
            )],
            other => panic!("unexpected scheme {other}"),
        }
    }
}
