//! The Tranzila vectors of `shared/vectors/signing.json` through `access_token`, the signing
//! layer (clock and nonce fixed) and the verify layer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Empty;
use tollgate_core::{ManualClock, Secret, Upstream, VerifiedSignature};
use tollgate_tranzila::{
    TranzilaCredentials, TranzilaSigningLayer, TranzilaVerifyLayer, access_token,
    verify_access_token,
};
use tower::{ServiceBuilder, ServiceExt, service_fn};

struct Vector {
    id: String,
    app_key: String,
    secret: String,
    time: String,
    nonce: String,
    token: String,
    headers: Vec<(String, String)>,
}

fn tranzila_vectors(test: &str) -> Option<Vec<Vector>> {
    let all = tollgate_test_support::signing_vectors(test)?;
    let list = all["tranzila"].as_array().unwrap();
    assert_eq!(
        list.len(),
        3,
        "expected the three published Tranzila vectors"
    );
    Some(
        list.iter()
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap().to_owned();
                Vector {
                    id: s("id"),
                    app_key: s("app_key"),
                    secret: s("secret"),
                    time: s("time"),
                    nonce: s("nonce"),
                    token: s("expected_access_token"),
                    headers: v["headers"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect(),
                }
            })
            .collect(),
    )
}

#[test]
fn vectors_through_access_token() {
    let Some(vectors) = tranzila_vectors("vectors_through_access_token") else {
        return;
    };
    for v in &vectors {
        let secret = Secret::from_string(v.secret.clone());
        assert_eq!(
            access_token(&v.app_key, &secret, &v.time, &v.nonce),
            v.token,
            "{}",
            v.id
        );
        assert!(verify_access_token(
            &v.app_key, &secret, &v.time, &v.nonce, &v.token
        ));
        assert_eq!(
            TranzilaCredentials::new(v.app_key.clone(), v.secret.clone())
                .unwrap()
                .access_token(&v.time, &v.nonce),
            v.token
        );
    }
}

#[tokio::test]
async fn vectors_through_signing_layer() {
    let Some(vectors) = tranzila_vectors("vectors_through_signing_layer") else {
        return;
    };
    for v in vectors {
        let seen: Arc<Mutex<Option<HeaderMap>>> = Arc::default();
        let recorder = {
            let seen = seen.clone();
            service_fn(move |request: Request<Empty<Bytes>>| {
                *seen.lock().unwrap() = Some(request.headers().clone());
                async { Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new())) }
            })
        };
        let nonce = v.nonce.clone();
        let layer = TranzilaSigningLayer::new(
            TranzilaCredentials::new(v.app_key.clone(), v.secret.clone()).unwrap(),
            Upstream::tranzila(),
        )
        .unwrap()
        .clock(ManualClock::new(v.time.parse().unwrap()))
        .with_nonce_source(move || nonce.clone());
        ServiceBuilder::new()
            .layer(layer)
            .service(recorder)
            .oneshot(
                Request::post("https://api.tranzila.com/v1/transaction/credit_card/create")
                    .body(Empty::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        let headers = seen.lock().unwrap().take().unwrap();
        assert_eq!(headers.len(), 4, "{}", v.id);
        for (name, value) in &v.headers {
            assert_eq!(headers[name.as_str()], value.as_str(), "{} {name}", v.id);
        }
        assert!(headers["x-tranzila-api-access-token"].is_sensitive());
    }
}

#[tokio::test]
async fn vectors_through_verify_layer() {
    let Some(vectors) = tranzila_vectors("vectors_through_verify_layer") else {
        return;
    };
    for v in vectors {
        let layer = TranzilaVerifyLayer::new(
            TranzilaCredentials::new(v.app_key.clone(), v.secret.clone()).unwrap(),
            common::store(ManualClock::new(v.time.parse().unwrap())),
        )
        .unwrap()
        .clock(ManualClock::new(v.time.parse().unwrap()));
        let service = ServiceBuilder::new().layer(layer).service(service_fn(
            |request: Request<Empty<Bytes>>| async move {
                let v = request.extensions().get::<VerifiedSignature>().unwrap();
                let body = format!("{} {}", v.key_id(), v.timestamp().unwrap());
                Ok::<_, Infallible>(Response::new(http_body_util::Full::new(Bytes::from(body))))
            },
        ));
        let mut request = Request::post("/").body(Empty::new()).unwrap();
        for (name, value) in &v.headers {
            request.headers_mut().insert(
                name.parse::<http::HeaderName>().unwrap(),
                value.parse().unwrap(),
            );
        }
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", v.id);
        assert_eq!(
            common::text(response.into_body()).await,
            format!("{} {}", v.app_key, v.time)
        );

        // The token of one vector does not verify another's inputs (e.g. the nonce's case).
        let mut request = Request::post("/").body(Empty::new()).unwrap();
        for (name, value) in &v.headers {
            let value = if name == "X-tranzila-api-nonce" {
                if value.chars().any(|c| c.is_ascii_uppercase()) {
                    value.to_lowercase()
                } else {
                    value.to_uppercase()
                }
            } else {
                value.clone()
            };
            request.headers_mut().insert(
                name.parse::<http::HeaderName>().unwrap(),
                value.parse().unwrap(),
            );
        }
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{}", v.id);
        assert_eq!(
            common::text(response.into_body()).await,
            r#"{"error":{"code":"signature_invalid","message":"the signature does not match: `x-tranzila-api-access-token`"}}"#
        );
    }
}
