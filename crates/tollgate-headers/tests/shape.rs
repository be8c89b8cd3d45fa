//! The one layer shape (CONTRIBUTING.md), checked for every layer of the crate: `FooLayer`
//! and `Foo<S>` are `Send + Sync + Clone`, `Foo::new(inner, &layer)` builds the same service
//! as `layer.layer(inner)`, `Foo::layer(..)` builds the layer, the accessors reach the inner
//! service, and the futures are `Send`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;

use http::{HeaderName, Request, header};
use tollgate_core::{BoxError, Secret};
use tollgate_headers::future::{RequireHeadersFuture, SecretHeaderFuture, TokenHeaderFuture};
use tollgate_headers::{
    HeaderError, HeaderHygiene, HeaderHygieneLayer, InboundHygiene, InboundHygieneLayer,
    RequireHeaders, RequireHeadersLayer, SecretHeader, SecretHeaderLayer, Token, TokenHeader,
    TokenHeaderLayer, Upstream,
};
use tower::util::ServiceFn;
use tower::{Layer, ServiceExt, service_fn};

fn assert_traits<T: Send + Sync + Clone>() {}
fn assert_send<T: Send>() {}

#[test]
fn layers_and_services_are_send_sync_clone() {
    assert_traits::<HeaderHygieneLayer>();
    assert_traits::<HeaderHygiene<()>>();
    assert_traits::<InboundHygieneLayer>();
    assert_traits::<InboundHygiene<()>>();
    assert_traits::<SecretHeaderLayer>();
    assert_traits::<SecretHeader<()>>();
    assert_traits::<TokenHeaderLayer>();
    assert_traits::<TokenHeader<()>>();
    assert_traits::<RequireHeadersLayer>();
    assert_traits::<RequireHeaders<()>>();
    type Ready = std::future::Ready<Result<(), Infallible>>;
    assert_send::<SecretHeaderFuture<Ready>>();
    assert_send::<RequireHeadersFuture<Ready>>();
    type Echo = ServiceFn<fn(Request<()>) -> Ready>;
    assert_send::<TokenHeaderFuture<Echo, ()>>();
    assert_send::<HeaderError>();
}

/// A service over a counter, to tell the inner services apart.
#[derive(Clone, Debug, PartialEq)]
struct Inner(u32);

#[test]
fn new_layer_and_accessors() {
    let hygiene = HeaderHygiene::<Inner>::layer().keep(header::ACCEPT);
    let mut service = HeaderHygiene::new(Inner(1), &hygiene);
    service.get_mut().0 += 1;
    assert_eq!(service.get_ref(), &Inner(2));
    assert_eq!(hygiene.layer(Inner(3)).into_inner(), Inner(3));
    assert!(format!("{service:?}").starts_with("HeaderHygiene { inner: Inner(2), rules: "));

    let inbound = InboundHygiene::<Inner>::layer();
    let mut service = InboundHygiene::new(Inner(1), &inbound);
    service.get_mut().0 += 1;
    assert_eq!(service.get_ref(), &Inner(2));
    assert_eq!(inbound.layer(Inner(3)).into_inner(), Inner(3));

    let secret = SecretHeader::<Inner>::layer(
        HeaderName::from_static("x-api-key"),
        Secret::from_string("k"),
        Upstream::transak(),
    )
    .unwrap();
    let mut service = SecretHeader::new(Inner(1), &secret);
    service.get_mut().0 += 1;
    assert_eq!(service.get_ref(), &Inner(2));
    assert_eq!(secret.layer(Inner(3)).into_inner(), Inner(3));
    assert!(!format!("{service:?}").contains("\"k\""));

    let provider = || async { Ok::<_, BoxError>(Token::new(Secret::from_string("t"))) };
    let token = TokenHeader::<Inner>::layer(
        HeaderName::from_static("access-token"),
        provider,
        Upstream::transak(),
    );
    let mut service = TokenHeader::new(Inner(1), &token);
    service.get_mut().0 += 1;
    assert_eq!(service.get_ref(), &Inner(2));
    assert_eq!(token.layer(Inner(3)).into_inner(), Inner(3));

    let require = RequireHeaders::<Inner>::layer([header::USER_AGENT]);
    assert_eq!(require.names(), [header::USER_AGENT]);
    let mut service = RequireHeaders::new(Inner(1), &require);
    service.get_mut().0 += 1;
    assert_eq!(service.get_ref(), &Inner(2));
    assert_eq!(require.layer(Inner(3)).into_inner(), Inner(3));
}

/// The default constructors: `HeaderHygieneLayer::new()` forwards nothing it was not told
/// to (an empty allowlist); `InboundHygieneLayer::new()` is the `backend_derived` preset.
#[tokio::test]
async fn default_constructors_are_the_safe_ones() {
    let echo =
        service_fn(
            |request: Request<()>| async move { Ok::<_, Infallible>(request.headers().clone()) },
        );
    let request = || {
        Request::builder()
            .header(header::ACCEPT, "*/*")
            .header(header::ACCEPT_LANGUAGE, "he-IL")
            .header("x-user-ip", "6.6.6.6")
            .header("x-forwarded-for", "6.6.6.6")
            .body(())
            .unwrap()
    };
    let outbound = HeaderHygieneLayer::new().layer(echo);
    assert!(
        outbound
            .clone()
            .oneshot(request())
            .await
            .unwrap()
            .is_empty()
    );
    let outbound = HeaderHygieneLayer::default()
        .keep(header::ACCEPT)
        .layer(echo);
    let sent = outbound.oneshot(request()).await.unwrap();
    assert_eq!(sent.keys().collect::<Vec<_>>(), [header::ACCEPT]);

    for inbound in [InboundHygieneLayer::new(), InboundHygieneLayer::default()] {
        let seen = inbound.layer(echo).oneshot(request()).await.unwrap();
        let mut names: Vec<_> = seen.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "accept-language"]);
    }
    assert_eq!(
        format!("{:?}", InboundHygieneLayer::new()),
        format!("{:?}", InboundHygieneLayer::backend_derived())
    );
}
