//! The cashout through reqwest, against onekey-cashout's mock over HTTPS on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use onekey_cashout::mock::MockOneKey;
use reqwest_onekey::{Config, Secrets};
use tollgate::core::Secret;

async fn mock(config: &Config) -> (MockOneKey, String) {
    let mock = MockOneKey::new(config.mock_credentials());
    let addr = mock.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (mock, example_server::tls::https_url(addr))
}

#[tokio::test]
async fn the_cashout_is_accepted_by_the_mock() {
    let config = Config::from_vars(Secrets::Demo, |_| None).unwrap();
    let (mock, url) = mock(&config).await;
    let client =
        reqwest_onekey::cashout_client(&config, &url, example_server::tls::client_tls().unwrap())
            .unwrap();
    let reply = reqwest_onekey::create_cashout(&client, &url, "order-1", 2000)
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(reply.body()).unwrap();
    assert_eq!(json["status"], "PENDING");
    assert_eq!(mock.accepted(), 1);
}

#[tokio::test]
async fn a_wrong_passphrase_is_refused_by_the_mock() {
    let config = Config::from_vars(Secrets::Demo, |_| None).unwrap();
    let (mock, url) = mock(&config).await;
    let mut wrong = config.clone();
    wrong.api_passphrase = Secret::from_string("not-the-passphrase");
    let client =
        reqwest_onekey::cashout_client(&wrong, &url, example_server::tls::client_tls().unwrap())
            .unwrap();
    let reply = reqwest_onekey::create_cashout(&client, &url, "order-2", 2000)
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
    assert!(String::from_utf8_lossy(reply.body()).contains("basic_auth_invalid"));
    assert_eq!(mock.accepted(), 0);
}

#[test]
fn an_http_base_url_is_refused() {
    let config = Config::from_vars(Secrets::Demo, |_| None).unwrap();
    let error = reqwest_onekey::cashout_client(
        &config,
        "http://127.0.0.1:1",
        example_server::tls::client_tls().unwrap(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("https"), "{error}");
}
