//! `ForwardUserIpLayer` on an outbound client: `x-user-ip` from the request's `ClientIp`
//! (then, with feature `task-local`, from the scope), replacing any copy; a typed error and
//! nothing sent without a client IP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{HeaderName, Request, Response};
use tollgate_client_ip::{ClientIp, ForwardUserIp, ForwardUserIpLayer, IpOrigin, MissingClientIp};
use tower::{Layer, Service, ServiceExt, service_fn};

use common::ip;

fn provider_echo() -> impl tower::Service<
    Request<()>,
    Response = Response<Vec<String>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Vec<String>>, Infallible>> + Send,
> + Clone {
    service_fn(|request: Request<()>| async move {
        let values = request
            .headers()
            .get_all("x-user-ip")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        Ok::<_, Infallible>(Response::new(values))
    })
}

#[tokio::test]
async fn forward_inserts_replacing_client_values() {
    let client = ForwardUserIpLayer::new().layer(provider_echo());
    let mut outbound = Request::new(());
    outbound
        .headers_mut()
        .append("x-user-ip", "6.6.6.6".parse().unwrap());
    outbound
        .headers_mut()
        .append("x-user-ip", "7.7.7.7".parse().unwrap());
    outbound
        .extensions_mut()
        .insert(ClientIp::new(ip("::ffff:203.0.113.1"), IpOrigin::Peer));
    let response = client.clone().oneshot(outbound).await.unwrap();
    assert_eq!(response.body(), &["203.0.113.1"]);
}

#[cfg(feature = "task-local")]
#[tokio::test]
async fn forward_reads_the_scope_when_the_request_carries_no_client_ip() {
    let client = ForwardUserIpLayer::new().layer(provider_echo());
    // The extension wins over the scope; the scope is used without one.
    let scoped = ClientIp::new(ip("2001:db8::44"), IpOrigin::Other);
    let response = scoped
        .clone()
        .scope(client.clone().oneshot(Request::new(())))
        .await
        .unwrap();
    assert_eq!(response.body(), &["2001:db8::44"]);
    let mut with_ext = Request::new(());
    with_ext
        .extensions_mut()
        .insert(ClientIp::new(ip("192.0.2.3"), IpOrigin::Other));
    let response = scoped.scope(client.oneshot(with_ext)).await.unwrap();
    assert_eq!(response.body(), &["192.0.2.3"]);
}

#[tokio::test]
async fn forward_without_ip_fails_typed_and_sends_nothing() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let inner = service_fn(move |_: Request<()>| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(())) }
    });
    let client = ForwardUserIp::new(inner, &ForwardUserIpLayer::new());
    let err = client.oneshot(Request::new(())).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<MissingClientIp>(),
        Some(&MissingClientIp::default())
    );
    assert_eq!(
        err.to_string(),
        "no client IP for the outbound request: neither a ClientIp extension nor a client-IP scope is present; the request was not sent"
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn forward_with_custom_header_name() {
    let inner = service_fn(|request: Request<()>| async move {
        Ok::<_, Infallible>(Response::new(
            request.headers().get("x-end-user-ip").cloned(),
        ))
    });
    let client = ForwardUserIpLayer::header(HeaderName::from_static("x-end-user-ip")).layer(inner);
    let mut outbound = Request::new(());
    outbound
        .extensions_mut()
        .insert(ClientIp::new(ip("192.0.2.1"), IpOrigin::Other));
    let response = client.oneshot(outbound).await.unwrap();
    assert_eq!(response.body().as_ref().unwrap(), "192.0.2.1");
}

#[tokio::test]
async fn service_is_built_from_the_layer_and_gives_back_its_inner_service() {
    let mut client = ForwardUserIp::new(provider_echo(), &ForwardUserIp::<()>::layer());
    let _: &mut _ = client.get_mut();
    let _: &_ = client.get_ref();
    let response = client.into_inner().oneshot(Request::new(())).await.unwrap();
    assert!(response.body().is_empty());
}

/// The rule of every tollgate future: after `Ready`, `Pending`, never a panic.
fn poll_twice(request: Request<()>) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut client = ForwardUserIpLayer::new().layer(service_fn(|_: Request<()>| {
        std::future::ready(Ok::<_, Infallible>(Response::new(())))
    }));
    let mut future = pin!(client.call(request));
    assert!(matches!(future.as_mut().poll(&mut cx), Poll::Ready(_)));
    assert!(future.as_mut().poll(&mut cx).is_pending());
}

#[test]
fn a_finished_refusal_stays_pending() {
    poll_twice(Request::new(()));
}

#[test]
fn a_finished_inner_future_stays_pending() {
    let mut with_ip = Request::new(());
    with_ip
        .extensions_mut()
        .insert(ClientIp::new(ip("192.0.2.1"), IpOrigin::Other));
    poll_twice(with_ip);
}
