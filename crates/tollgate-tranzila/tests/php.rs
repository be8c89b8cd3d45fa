//! Interoperability with Tranzila's PHP reference (`hash_hmac('sha256', $appKey, $secret .
//! $time . $nonce)`, `bin2hex(random_bytes(40))`), run with Debian's `php-cli` and `php-curl`.
//! Without PHP the tests print a skip notice, unless `TOLLGATE_REQUIRE_PHP=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tollgate_core::SystemClock;
use tollgate_test_support::{ChildGuard, Php, TempDir, free_port, wait_for, which};
use tollgate_tranzila::{TranzilaCredentials, TranzilaSigningLayer, TranzilaVerifyLayer};
use tower::{Service, ServiceBuilder, ServiceExt};

const APP_KEY: &str = "pub_app_key_demo";
const SECRET: &str = "private_secret_demo";

/// A PHP client written from Tranzila's snippet: signs, POSTs JSON with curl, then sends the
/// very same request (same headers) again, then one signed with a wrong secret. Prints one
/// line per request: `<status> <body>`.
const PHP_CLIENT: &str = r#"<?php
[$script, $url, $appKey, $secret] = $argv;

function tranzila_headers(string $appKey, string $secret): array {
    $time = time();
    $nonce = bin2hex(random_bytes(40));
    $accessToken = hash_hmac('sha256', $appKey, $secret . $time . $nonce);
    return [
        'X-tranzila-api-app-key: ' . $appKey,
        'X-tranzila-api-request-time: ' . $time,
        'X-tranzila-api-nonce: ' . $nonce,
        'X-tranzila-api-access-token: ' . $accessToken,
        'Content-Type: application/json',
    ];
}

function post(string $url, array $headers, string $body): string {
    $ch = curl_init($url);
    curl_setopt_array($ch, [
        CURLOPT_POST => true,
        CURLOPT_POSTFIELDS => $body,
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_TIMEOUT => 10,
    ]);
    $response = curl_exec($ch);
    if ($response === false) {
        fwrite(STDERR, curl_error($ch));
        exit(2);
    }
    $status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    curl_close($ch);
    return $status . ' ' . $response;
}

$headers = tranzila_headers($appKey, $secret);
$body = json_encode(['terminal_name' => 'demo', 'amount' => 10]);
echo post($url, $headers, $body), "\n";
echo post($url, $headers, $body), "\n";
echo post($url, tranzila_headers($appKey, $secret . 'x'), $body), "\n";
"#;

#[tokio::test(flavor = "multi_thread")]
async fn php_client_is_accepted_then_replay_refused() {
    php_client_round(SECRET, "php_client_is_accepted_then_replay_refused").await;
}

/// The secret of the published vector `tranzila-hebrew-secret`: PHP strings are bytes, so the
/// key is its UTF-8 bytes, as `TranzilaCredentials::new` takes a `&str`.
#[tokio::test(flavor = "multi_thread")]
async fn php_client_with_a_non_ascii_secret_is_accepted() {
    php_client_round(
        "סוד-טרנזילה",
        "php_client_with_a_non_ascii_secret_is_accepted",
    )
    .await;
}

async fn php_client_round(secret: &'static str, test: &str) {
    let Some(php) = Php::find_or_skip(test) else {
        return;
    };
    // PHP stamps requests with its own time(): the server reads the real clock here.
    let layer = TranzilaVerifyLayer::new(
        TranzilaCredentials::new(APP_KEY, secret).unwrap(),
        common::store(SystemClock),
    )
    .unwrap()
    .clock(SystemClock);
    let addr = common::serve(layer).await;
    let url = format!("http://{addr}/v1/charge");
    let output = tokio::task::spawn_blocking(move || php.run(PHP_CLIENT, &[&url, APP_KEY, secret]))
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "php failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");

    let accepted = lines[0]
        .strip_prefix("200 pub_app_key_demo ")
        .unwrap_or_else(|| {
            panic!("PHP's signed request was not accepted: {stdout}");
        });
    let (nonce, body) = accepted.split_once(' ').unwrap();
    assert_eq!(nonce.len(), 80);
    assert!(nonce.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(body, r#"{"terminal_name":"demo","amount":10}"#);

    assert_eq!(
        lines[1],
        r#"401 {"error":{"code":"replayed","message":"request was already received"}}"#
    );
    assert_eq!(
        lines[2],
        r#"401 {"error":{"code":"signature_invalid","message":"the signature does not match: `x-tranzila-api-access-token`"}}"#
    );
}

/// A PHP verifier written from the documented formula, as a router script of PHP's built-in
/// server. Answers 200 `ok <app key> <body>` or 401 `<reason>`.
const PHP_VERIFIER: &str = r#"<?php
$secrets = ['pub_app_key_demo' => getenv('TRANZILA_SECRET')];
$appKey = $_SERVER['HTTP_X_TRANZILA_API_APP_KEY'] ?? '';
$time = $_SERVER['HTTP_X_TRANZILA_API_REQUEST_TIME'] ?? '';
$nonce = $_SERVER['HTTP_X_TRANZILA_API_NONCE'] ?? '';
$token = $_SERVER['HTTP_X_TRANZILA_API_ACCESS_TOKEN'] ?? '';

function refuse(string $reason) {
    http_response_code(401);
    echo $reason;
    exit;
}

if (!isset($secrets[$appKey])) refuse('unknown app key');
if (!preg_match('/^[0-9a-f]{80}$/', $nonce)) refuse('nonce');
if (!ctype_digit($time) || abs(time() - (int) $time) > 300) refuse('time');
$expected = hash_hmac('sha256', $appKey, $secrets[$appKey] . $time . $nonce);
if (!hash_equals($expected, $token)) refuse('token');
echo 'ok ', $appKey, ' ', file_get_contents('php://input');
"#;

#[tokio::test(flavor = "multi_thread")]
async fn php_verifier_accepts_signing_layer_requests() {
    if Php::find_or_skip("php_verifier_accepts_signing_layer_requests").is_none() {
        return;
    }
    let program = which("php").unwrap();
    let dir = TempDir::new("tranzila-php-verifier");
    let router = dir.path().join("router.php");
    std::fs::write(&router, PHP_VERIFIER).unwrap();
    let port = free_port();
    let child = Command::new(&program)
        .arg("-S")
        .arg(format!("127.0.0.1:{port}"))
        .arg(&router)
        .env("TRANZILA_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = ChildGuard::new(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    tokio::task::spawn_blocking(move || {
        wait_for(
            Duration::from_secs(10),
            || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
            "php -S to listen",
        );
    })
    .await
    .unwrap();

    let url = format!("http://{addr}/v1/transaction");
    let signing = |secret: &str| {
        ServiceBuilder::new()
            .layer(
                TranzilaSigningLayer::new(
                    TranzilaCredentials::new(APP_KEY, secret).unwrap(),
                    common::upstream(addr),
                )
                .unwrap()
                .clock(Arc::new(SystemClock)),
            )
            .service(common::client())
    };
    let mut client = signing(SECRET);
    for i in 0..3 {
        let body = format!("{{\"amount\":{i}}}");
        let request = Request::post(&url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let response = client.ready().await.unwrap().call(request).await.unwrap();
        let status = response.status();
        let text = common::text(response.into_body()).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(text, format!("ok {APP_KEY} {body}"));
    }

    // The PHP verifier really checks: a wrong secret is refused.
    let response = signing("not-the-secret")
        .oneshot(Request::post(&url).body(Full::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(common::text(response.into_body()).await, "token");
}
