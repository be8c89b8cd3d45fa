//! Configuration that cannot work is refused by `build()`, with the exact variant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tollgate_client::{ClientBuilder, ConfigError, RetryPolicy};
use tower::layer::util::Identity;

fn build(builder: ClientBuilder) -> Result<(), ConfigError> {
    builder.build(Identity::new()).map(drop)
}

fn acme() -> ClientBuilder {
    ClientBuilder::new("acme").base_url("https://api.acme.example/v1")
}

#[test]
fn the_defaults_build() {
    build(acme()).unwrap();
    build(ClientBuilder::new("acme")).unwrap();
}

#[test]
fn zero_settings_are_refused() {
    let cases = [
        (
            acme().connect_timeout(Duration::ZERO),
            ConfigError::ZeroTimeout {
                name: "connect timeout",
            },
        ),
        (
            acme().attempt_timeout(Duration::ZERO),
            ConfigError::ZeroTimeout {
                name: "attempt timeout",
            },
        ),
        (
            acme().deadline(Duration::ZERO),
            ConfigError::ZeroTimeout { name: "deadline" },
        ),
        (acme().retry(RetryPolicy::new(0)), ConfigError::ZeroAttempts),
        (
            acme().rate_limit(0, Duration::from_secs(1)),
            ConfigError::ZeroRateLimit,
        ),
        (
            acme().rate_limit(5, Duration::ZERO),
            ConfigError::ZeroRatePeriod,
        ),
        (acme().concurrency_limit(0), ConfigError::ZeroConcurrency),
    ];
    for (builder, expected) in cases {
        assert_eq!(build(builder), Err(expected));
    }
    build(acme().retry(RetryPolicy::none())).unwrap();
    build(
        acme()
            .rate_limit(1, Duration::from_nanos(1))
            .concurrency_limit(1),
    )
    .unwrap();
}

#[test]
fn base_urls_are_checked() {
    let secret = "hunter2";
    let cases = [
        (
            format!("https://partner:{secret}@api.acme.example"),
            ConfigError::UserInfo,
        ),
        (
            "https://api.acme.example/v1?key=abc".to_owned(),
            ConfigError::Query,
        ),
        (
            "https://api.acme.example/v1#top".to_owned(),
            ConfigError::Fragment,
        ),
        (
            "http://api.acme.example".to_owned(),
            ConfigError::NotHttps {
                scheme: "http".to_owned(),
            },
        ),
        (
            "ftp://api.acme.example:21".to_owned(),
            ConfigError::NotHttps {
                scheme: "ftp".to_owned(),
            },
        ),
    ];
    for (url, expected) in cases {
        let error = build(ClientBuilder::new("acme").base_url(&url)).unwrap_err();
        assert_eq!(error, expected, "{url}");
        assert!(!error.to_string().contains(secret));
        assert!(!format!("{error:?}").contains(secret));
    }
    for url in [
        "api.acme.example",
        "https://",
        "https://api.acme.example/v1/../admin",
        "not a url",
    ] {
        let error = build(ClientBuilder::new("acme").base_url(url)).unwrap_err();
        assert!(
            matches!(error, ConfigError::InvalidBaseUrl(_)),
            "{url}: {error:?}"
        );
    }
}

#[test]
fn debug_output_never_shows_base_url_secrets() {
    let builder =
        ClientBuilder::new("acme").base_url("https://partner:hunter2@api.acme.example/v1?key=abc");
    let debug = format!("{builder:?}");
    assert!(debug.contains("https://api.acme.example"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("key=abc"), "{debug}");

    let client = acme().build(Identity::new()).unwrap();
    let debug = format!("{client:?}");
    assert!(debug.contains("provider: \"acme\""), "{debug}");
    assert!(debug.contains("https://api.acme.example/v1"), "{debug}");
}

#[test]
fn the_client_is_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<tollgate_client::ProviderClient>();
    assert_traits::<ClientBuilder>();
    assert_traits::<RetryPolicy>();
}
