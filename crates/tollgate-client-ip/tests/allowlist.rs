//! `IpAllowlistLayer` in a stack: the client IP, else the peer; 403 outside the ranges, 500
//! with neither; a replaced rejection; the shape of the service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tollgate_client_ip::{ClientIp, IpAllowlist, IpAllowlistLayer, IpOrigin, IpRanges};
use tollgate_core::Rejection;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

use common::{behind_proxy, body_string, echo_ip, from_proxy, ip, request};

#[tokio::test]
async fn allowlist_uses_client_ip_then_peer() {
    let service = ServiceBuilder::new()
        .layer(IpAllowlistLayer::new(
            "192.0.2.0/24, 2001:db8::/32".parse().unwrap(),
        ))
        .service(echo_ip());
    // The peer is used when no ClientIp is present.
    let response = service
        .clone()
        .oneshot(request(Some("192.0.2.7:1"), &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = service
        .clone()
        .oneshot(request(Some("198.51.100.7:1"), &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        body_string(response).await,
        r#"{"error":{"code":"ip_not_allowed","message":"client IP is not allowed"}}"#
    );
    // ClientIp wins over the peer.
    let mut allowed_by_ext = request(Some("198.51.100.7:1"), &[]);
    allowed_by_ext
        .extensions_mut()
        .insert(ClientIp::new(ip("2001:db8::9"), IpOrigin::Other));
    let response = service.clone().oneshot(allowed_by_ext).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = service.oneshot(request(None, &[])).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body_string(response).await,
        r#"{"error":{"code":"client_ip_misconfigured","message":"the server cannot determine the client IP"}}"#
    );
}

#[tokio::test]
async fn allowlist_behind_client_ip_layer() {
    let service = ServiceBuilder::new()
        .layer(behind_proxy())
        .layer(IpAllowlistLayer::new("192.0.2.0/24".parse().unwrap()))
        .service(echo_ip());
    let ok = service
        .clone()
        .oneshot(from_proxy("192.0.2.50"))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let denied = service.oneshot(from_proxy("198.51.100.50")).await.unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn on_rejection_takes_a_closure() {
    let layer =
        IpAllowlistLayer::new("192.0.2.0/24".parse().unwrap()).on_rejection(|r: &Rejection| {
            let mut response = Response::new(Bytes::from(format!("closure: {}", r.code())));
            *response.status_mut() = r.status();
            response
        });
    let response = layer
        .layer(echo_ip())
        .oneshot(request(Some("198.51.100.7:1"), &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(body_string(response).await, "closure: ip_not_allowed");
    assert!(layer.allowed().contains(ip("192.0.2.1")));
}

#[tokio::test]
async fn service_is_built_from_the_layer_and_gives_back_its_inner_service() {
    let layer = IpAllowlist::<()>::layer(IpRanges::loopback());
    let mut service = IpAllowlist::new(echo_ip(), &layer);
    let _: &mut _ = service.get_mut();
    let _: &_ = service.get_ref();
    let response = service
        .clone()
        .oneshot(request(Some("127.0.0.1:1"), &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = service
        .into_inner()
        .oneshot(request(Some("192.0.2.1:1"), &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// The rule of every tollgate future: after `Ready`, `Pending`, never a panic.
fn poll_twice(peer: &str) {
    let mut cx = Context::from_waker(Waker::noop());
    let ready =
        service_fn(|_: Request<()>| std::future::ready(Ok::<_, Infallible>(Response::new(()))));
    let mut service = IpAllowlistLayer::new(IpRanges::loopback()).layer(ready);
    let mut future = pin!(service.call(request(Some(peer), &[])));
    assert!(matches!(future.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
    assert!(future.as_mut().poll(&mut cx).is_pending(), "{peer}");
}

#[test]
fn a_finished_refusal_stays_pending() {
    poll_twice("192.0.2.1:1");
}

#[test]
fn a_finished_inner_future_stays_pending() {
    poll_twice("127.0.0.1:1");
}
