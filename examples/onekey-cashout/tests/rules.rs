//! The mock OneKey API checks every OneKey rule over real TLS, and `OneKeyClient` satisfies
//! them all: each broken rule gets its own refusal and creates no cashout.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use onekey_cashout::mock::{MockOneKey, basic_authorization};
use onekey_cashout::{CASHOUT_PATH, Config, Secrets, cashout_body};
use tollgate::https::HttpsConnector;
use tollgate::signature::BodyHmac;

async fn mock() -> (Config, MockOneKey, String) {
    let config = Config::from_vars(Secrets::Demo, |_| None).unwrap();
    let mock = MockOneKey::new(config.mock_credentials());
    let url =
        example_server::tls::https_url(mock.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap());
    (config, mock, url)
}

/// A raw request with every header right unless `skip` names it; the signature is over
/// `signed`, the body sent is `sent`. Returns `"<status> <error code>"`.
async fn raw(config: &Config, url: &str, skip: &str, signed: &Bytes, sent: Bytes) -> String {
    let mut builder = Request::post(format!("{url}{CASHOUT_PATH}"));
    if skip != "authorization" {
        let value = basic_authorization(&config.api_key, &config.api_passphrase);
        builder = builder.header("authorization", value.expose_secret());
    }
    if skip != "user-agent" {
        builder = builder.header("user-agent", "rules-test");
    }
    builder = builder.header(
        "content-type",
        if skip == "content-type" {
            "text/plain"
        } else {
            "application/json"
        },
    );
    if skip != "payload-signature" {
        builder = builder.header(
            "payload-signature",
            BodyHmac::onekey().compute(&config.api_signature, signed),
        );
    }
    let client = HttpsConnector::new(&example_server::tls::client_tls().unwrap())
        .unwrap()
        .client::<Full<Bytes>>();
    let response = client
        .request(builder.body(Full::new(sent)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    match json["error"]["code"].as_str() {
        Some(code) => format!("{status} {code}"),
        None => format!("{status} {}", json["status"].as_str().unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_satisfies_every_rule() {
    let (config, mock, url) = mock().await;
    let client =
        onekey_cashout::cashout_client(&config, &url, example_server::tls::client_tls().unwrap())
            .unwrap();
    let response = onekey_cashout::create_cashout(&client, "order-1", 2000)
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body());
    assert_eq!(
        response.body().as_ref(),
        br#"{"cashout_id":1,"external_id":"order-1","status":"PENDING"}"#
    );
    assert_eq!(
        mock.cashouts(),
        vec![serde_json::json!({"external_id":"order-1","amount":2000})]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_rule_is_named_and_creates_nothing() {
    let (config, mock, url) = mock().await;
    let body = cashout_body("order-2", 2000);
    assert_eq!(
        raw(&config, &url, "", &body, body.clone()).await,
        "200 PENDING"
    );
    let cases = [
        ("authorization", body.clone(), "401 basic_auth_invalid"),
        ("user-agent", body.clone(), "400 user_agent_missing"),
        ("content-type", body.clone(), "400 content_type_not_json"),
        ("payload-signature", body.clone(), "401 signature_missing"),
        ("", cashout_body("order-2", 9000), "401 signature_invalid"),
    ];
    for (skip, sent, expected) in cases {
        assert_eq!(
            raw(&config, &url, skip, &body, sent).await,
            expected,
            "{skip}"
        );
    }
    let not_a_cashout = Bytes::from_static(br#"{"external_id":"order-3"}"#);
    assert_eq!(
        raw(&config, &url, "", &not_a_cashout, not_a_cashout.clone()).await,
        "400 invalid_cashout"
    );
    assert_eq!(mock.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_passphrase_is_refused_by_the_mock() {
    let (config, mock, url) = mock().await;
    let wrong = Config {
        api_passphrase: tollgate::core::Secret::from_string("not-it"),
        ..config
    };
    let client =
        onekey_cashout::cashout_client(&wrong, &url, example_server::tls::client_tls().unwrap())
            .unwrap();
    let response = onekey_cashout::create_cashout(&client, "order-4", 100)
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(String::from_utf8_lossy(response.body()).contains("basic_auth_invalid"));
    assert_eq!(mock.accepted(), 0);
}
