//! When Transak refuses a call, the browser learns that the provider refused, in tollgate's
//! own words, and nothing of what the provider said (which is about the partner's credentials
//! and allowlist); the provider's detail goes to the log.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use tollgate::core::{Secret, SystemClock};
use transak_partner::mock::{MockTransak, MockTransakConfig};

const EXPECTED: &str =
    r#"{"error":{"code":"provider_error","message":"the payment provider refused the request"}}"#;
const CALL_FAILED: &str = r#"{"error":{"code":"provider_call_failed","message":"the call to Transak could not be made"}}"#;

/// Starts a mock Transak (over HTTPS) with `secret`, tokens valid `ttl` seconds and
/// `sources`, and a partner app that calls it with `partner_secret`; returns the partner's
/// address.
async fn partner(secret: &str, ttl: u64, sources: &str, partner_secret: &str) -> SocketAddr {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mock = MockTransak::new(MockTransakConfig {
        api_keys: vec!["pk_test".to_owned()],
        api_secret: secret.to_owned(),
        token_ttl_secs: ttl,
        allowed_sources: vec![sources.parse().unwrap()],
        clock: Arc::new(SystemClock),
    });
    let url = example_server::tls::https_url(mock.spawn(any).await.unwrap());
    let config = transak_partner::Config {
        addr: any,
        transak_url: Some(url.clone()),
        mock_addr: any,
        api_key: "pk_test".to_owned(),
        api_secret: Secret::from_string(partner_secret),
        tls: example_server::tls::client_tls().unwrap(),
        transak_clock: Arc::new(SystemClock),
        allowed_origins: vec!["http://localhost:5173".to_owned()],
        allow_http_origins: true,
        client_ip_source: "remote-addr".parse().unwrap(),
        ip_allowlist: None,
        referrer_domain: "partner.example".to_owned(),
    };
    let app = transak_partner::app(&config, &url).unwrap();
    transak_partner::spawn(any, app).await.unwrap()
}

/// What the browser sees for `POST /api/widget-url`: the whole raw response.
async fn browser_call(addr: SocketAddr) -> String {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let body = r#"{"cryptoCurrencyCode":"ETH"}"#;
        write!(
            stream,
            "POST /api/widget-url HTTP/1.1\r\nhost: localhost\r\norigin: http://localhost:5173\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap()
}

fn assert_nothing_of_the_provider(answer: &str, expected: &str, provider_words: &[&str]) {
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(body, expected, "{answer}");
    for words in provider_words
        .iter()
        .chain(&["statusCode", "errorCode", "provider\""])
    {
        assert!(
            !answer.contains(words),
            "the browser saw the provider's `{words}`: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_access_token_is_not_described_to_the_browser() {
    // Tokens that expire as they are issued: the client never sends one (the provider would
    // refuse it, 401 1002), so the call fails before Transak is asked, and the browser learns
    // nothing of either.
    let addr = partner("secret", 0, "127.0.0.0/8", "secret").await;
    let answer = browser_call(addr).await;
    assert_nothing_of_the_provider(
        &answer,
        CALL_FAILED,
        &["Invalid or missing access-token", "1002", "expired"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_source_ip_is_not_described_to_the_browser() {
    let addr = partner("secret", 3600, "10.0.0.0/8", "secret").await;
    let answer = browser_call(addr).await;
    assert_nothing_of_the_provider(
        &answer,
        EXPECTED,
        &["Requests from this IP address are not allowed", "1006"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_api_secret_is_not_described_to_the_browser() {
    // The refresh-token call is refused: no access token, so no session call is sent.
    let addr = partner("the-real-secret", 3600, "127.0.0.0/8", "a-wrong-secret").await;
    let answer = browser_call(addr).await;
    assert_nothing_of_the_provider(
        &answer,
        CALL_FAILED,
        &[
            "Invalid api-secret",
            "1010",
            "the-real-secret",
            "a-wrong-secret",
        ],
    );
}
