//! The crate docs' "Security considerations", first statement: a blank secret is refused when
//! a layer is built, and a blank secret found at lookup is refused like an unknown app key.
//!
//! The attacker here knows only what travels in clear: the app key, a time and a nonce. With
//! a blank secret the HMAC key is `"" + time + nonce` (or `" " + time + nonce`), so they can
//! compute the token themselves. Before the fix, each of these forged tokens was accepted
//! (200) and a signing layer was built with an empty secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use sha2::Sha256;
use tollgate_core::{ManualClock, Secret, SecretError};
use tollgate_tranzila::{AppKeySecrets, ConfigError, TranzilaCredentials, TranzilaVerifyLayer};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const NOW: u64 = 1_700_000_000;
const NONCE: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627";
const BLANKS: [&str; 5] = ["", " ", "   ", "\t\n", "\u{a0}"];
const UNKNOWN: &str =
    r#"{"error":{"code":"tranzila_unknown_app_key","message":"app key is not known"}}"#;

/// What the attacker computes: HMAC-SHA256(key = guessed secret + time + nonce, msg = app key).
fn forged_token(guessed_secret: &str, app_key: &str) -> String {
    let mut key = guessed_secret.as_bytes().to_vec();
    key.extend_from_slice(NOW.to_string().as_bytes());
    key.extend_from_slice(NONCE.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(app_key.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn blank_error(app_key: &str) -> SecretError {
    SecretError::Blank {
        name: format!("Tranzila app key `{app_key}`"),
    }
}

/// The verifier, or the error it fails with when it is built.
fn verifier(secrets: impl AppKeySecrets) -> Result<TranzilaVerifyLayer, ConfigError> {
    let clock = ManualClock::new(NOW);
    Ok(TranzilaVerifyLayer::new(secrets, common::store(clock.clone()))?.clock(clock))
}

/// Sends the attacker's request; returns the status and the body.
async fn send(layer: TranzilaVerifyLayer, app_key: &str, token: &str) -> (StatusCode, String) {
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(|_: Request<Empty<Bytes>>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new()))
            }));
    let request = Request::post("/v1/charge")
        .header("x-tranzila-api-app-key", app_key)
        .header("x-tranzila-api-request-time", NOW.to_string())
        .header("x-tranzila-api-nonce", NONCE)
        .header("x-tranzila-api-access-token", token)
        .body(Empty::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// `TranzilaCredentials::new` refuses a blank secret, so neither layer can be built from
/// blank credentials: the signing layer never signs with one, the verifier never checks with one.
#[test]
fn credentials_with_a_blank_secret_cannot_be_made() {
    for blank in BLANKS {
        assert_eq!(
            TranzilaCredentials::new("victim-app", blank).unwrap_err(),
            blank_error("victim-app"),
            "{blank:?}"
        );
        assert_eq!(
            TranzilaCredentials::new("victim-app", Secret::from_string(blank)).unwrap_err(),
            blank_error("victim-app")
        );
        let err = TranzilaCredentials::new("victim-app", blank).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the secret for Tranzila app key `victim-app` is empty, all zero bytes or only whitespace"
        );
    }
}

/// A map with a blank secret fails when the verifier is built, naming that app key; behind
/// an `Arc` too.
#[test]
fn static_maps_are_checked_when_the_verifier_is_built() {
    for blank in BLANKS {
        let hash = HashMap::from([
            ("good-app".to_owned(), Secret::from_string("real-secret")),
            ("victim-app".to_owned(), Secret::from_string(blank)),
            ("z-victim".to_owned(), Secret::from_string(blank)),
        ]);
        let btree: BTreeMap<_, _> = hash.clone().into_iter().collect();
        // The first blank app key in key order, whatever the hash order.
        assert_eq!(
            verifier(hash.clone()).unwrap_err(),
            ConfigError::Secret(blank_error("victim-app"))
        );
        assert_eq!(
            verifier(Arc::new(hash)).unwrap_err(),
            ConfigError::Secret(blank_error("victim-app"))
        );
        assert_eq!(
            verifier(btree).unwrap_err(),
            ConfigError::Secret(blank_error("victim-app"))
        );
    }
    let fine = HashMap::from([("good-app".to_owned(), Secret::from_string(" real "))]);
    assert!(verifier(fine).is_ok());
}

/// A lookup that returns a blank secret at request time (it cannot be checked at build time)
/// gets the same 401 as an unknown app key, for the token the attacker computed.
#[tokio::test]
async fn a_blank_secret_found_at_lookup_is_an_unknown_app_key() {
    for blank in BLANKS {
        let lookup =
            move |app_key: &str| (app_key == "victim-app").then(|| Secret::from_string(blank));
        let forged = forged_token(blank, "victim-app");
        let (status, body) = send(verifier(lookup).unwrap(), "victim-app", &forged).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{blank:?}");
        assert_eq!(body, UNKNOWN);
        // The same answer as an app key the lookup does not know.
        let (status, body) = send(verifier(lookup).unwrap(), "other-app", &forged).await;
        assert_eq!((status, body.as_str()), (StatusCode::UNAUTHORIZED, UNKNOWN));
    }
}

/// A type of your own that does not override `check_secrets` builds, and its blank secret is
/// refused at request time.
#[tokio::test]
async fn a_custom_lookup_without_check_is_refused_at_request_time() {
    struct Reloaded(HashMap<String, Secret>);
    impl AppKeySecrets for Reloaded {
        fn secret_for(&self, app_key: &str) -> Option<Secret> {
            self.0.get(app_key).cloned()
        }
    }
    let map = HashMap::from([("victim-app".to_owned(), Secret::from_string(""))]);
    let layer = verifier(Reloaded(map)).unwrap();
    let (status, body) = send(layer, "victim-app", &forged_token("", "victim-app")).await;
    assert_eq!((status, body.as_str()), (StatusCode::UNAUTHORIZED, UNKNOWN));
}

/// The harness is sound: a secret that is not blank (whitespace around it is kept) verifies
/// its own token and refuses the attacker's.
#[tokio::test]
async fn a_real_secret_still_verifies() {
    let credentials = TranzilaCredentials::new("victim-app", " s3cr3t ").unwrap();
    let (status, _) = send(
        verifier(credentials.clone()).unwrap(),
        "victim-app",
        &forged_token(" s3cr3t ", "victim-app"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        verifier(credentials).unwrap(),
        "victim-app",
        &forged_token("", "victim-app"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
