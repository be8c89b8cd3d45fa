//! `ResolveClientIpLayer` in a stack: the extension and the task-local scope, its refusals
//! (400 for the client's bytes, 500 for a missing peer), `continue_on_failure`, and the shape
//! of the service and its future (the log line of a misconfigured server: `tests/logs.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tollgate_client_ip::{
    ClientIp, ClientIpSource, ExtractError, ResolveClientIp, ResolveClientIpLayer,
};
use tollgate_core::{Rejection, RejectionResponder};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

use common::{SCOPED, behind_proxy, body_string, echo_ip, from_proxy, request, src};

#[tokio::test]
async fn layer_inserts_extension_and_scope() {
    let service = ServiceBuilder::new()
        .layer(behind_proxy())
        .service(echo_ip());
    let response = service
        .clone()
        .oneshot(from_proxy("192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_string(response).await,
        format!("192.0.2.1 ListHop {{ header: \"x-forwarded-for\", hop: 0 }} scoped={SCOPED}")
    );
    let response = service
        .oneshot(request(
            Some("[::ffff:203.0.113.9]:1"),
            &[("x-forwarded-for", "1.1.1.1")],
        ))
        .await
        .unwrap();
    assert_eq!(
        body_string(response).await,
        format!("203.0.113.9 Peer scoped={SCOPED}")
    );
}

#[cfg(feature = "task-local")]
#[tokio::test]
async fn task_local_can_be_turned_off_keeping_the_extension() {
    let layer = behind_proxy().task_local(false);
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .service(echo_ip());
    let response = service
        .clone()
        .oneshot(from_proxy("192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_string(response).await,
        "192.0.2.1 ListHop { header: \"x-forwarded-for\", hop: 0 } scoped=false"
    );
    // Failures are unchanged: still a 400 for the client's garbage.
    let response = service.oneshot(from_proxy("garbage")).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // And back on.
    let service = ServiceBuilder::new()
        .layer(layer.task_local(true))
        .service(echo_ip());
    let response = service
        .oneshot(request(Some("192.0.2.7:1"), &[]))
        .await
        .unwrap();
    assert_eq!(body_string(response).await, "192.0.2.7 Peer scoped=true");
}

#[cfg(feature = "task-local")]
#[tokio::test]
async fn scope_also_covers_the_synchronous_call() {
    #[derive(Clone)]
    struct SeesScopeInCall;
    impl tower::Service<Request<()>> for SeesScopeInCall {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<String>, Infallible>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Infallible>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<()>) -> Self::Future {
            let seen = ClientIp::current().map(|ip| ip.to_string());
            std::future::ready(Ok(Response::new(seen.unwrap_or_default())))
        }
    }
    let service = ResolveClientIpLayer::remote_addr().layer(SeesScopeInCall);
    let response = service
        .oneshot(request(Some("192.0.2.5:9"), &[]))
        .await
        .unwrap();
    assert_eq!(body_string(response).await, "192.0.2.5");
}

#[tokio::test]
async fn layer_rejects_bad_input_with_400_and_missing_peer_with_500() {
    let service = ServiceBuilder::new()
        .layer(behind_proxy())
        .service(echo_ip());
    let response = service
        .clone()
        .oneshot(from_proxy("unknown"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response
            .extensions()
            .get::<Rejection>()
            .map(Rejection::code),
        Some("invalid_client_ip")
    );
    assert_eq!(
        body_string(response).await,
        r#"{"error":{"code":"invalid_client_ip","message":"no valid client IP could be derived from the request"}}"#
    );
    let response = service
        .oneshot(request(None, &[("x-forwarded-for", "192.0.2.1")]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body_string(response).await,
        r#"{"error":{"code":"client_ip_misconfigured","message":"the server cannot determine the client IP"}}"#
    );
}

#[tokio::test]
async fn layer_can_continue_without_ip_and_replace_rejection() {
    let layer = ResolveClientIpLayer::remote_addr().continue_on_failure();
    let response = layer
        .layer(echo_ip())
        .oneshot(request(None, &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_string(response).await, "none");

    let teapot = RejectionResponder::new(|r: &Rejection| {
        let mut response = Response::new(Bytes::from(format!("no: {}", r.code())));
        *response.status_mut() = StatusCode::IM_A_TEAPOT;
        response
    });
    let layer = layer.reject_on_failure().on_rejection(teapot);
    let response = layer
        .layer(echo_ip())
        .oneshot(request(None, &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(body_string(response).await, "no: client_ip_misconfigured");
    assert_eq!(layer.source(), &ClientIpSource::remote_addr());
}

#[test]
fn continuing_layer_leaves_the_reason_in_extensions() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let service = ResolveClientIpLayer::new(src("header:x-real-ip"))
            .continue_on_failure()
            .layer(service_fn(|request: Request<()>| async move {
                let reason = request.extensions().get::<ExtractError>().cloned();
                Ok::<_, Infallible>(Response::new(format!("{reason:?}")))
            }));
        let response = service
            .oneshot(request(Some("10.0.0.1:9"), &[("x-real-ip", "nope")]))
            .await
            .unwrap();
        assert_eq!(
            body_string(response).await,
            r#"Some(InvalidHeader { header: "x-real-ip" })"#
        );
    });
}

/// Under an outer layer that found an IP (the peer), an inner continuing layer that trusts
/// the peer as its proxy and finds no header leaves no IP at all: the outer one's extension
/// is removed and its scope hidden, so nothing falls back to the proxy's address.
#[tokio::test]
async fn a_continuing_inner_layer_takes_away_the_outer_layers_ip() {
    let seen = service_fn(|request: Request<()>| async move {
        let ext = request
            .extensions()
            .get::<ClientIp>()
            .map(ToString::to_string);
        #[cfg(feature = "task-local")]
        let current = ClientIp::current().map(|ip| ip.to_string());
        #[cfg(not(feature = "task-local"))]
        let current: Option<String> = None;
        let reason = request.extensions().get::<ExtractError>().cloned();
        Ok::<_, Infallible>(Response::new(format!("{ext:?} {current:?} {reason:?}")))
    });
    let service = ServiceBuilder::new()
        .layer(ResolveClientIpLayer::remote_addr())
        .layer(ResolveClientIpLayer::new(src("header:x-real-ip:10.0.0.0/8")).continue_on_failure())
        .service(seen);
    // From the proxy without its header: nothing, and the reason.
    let response = service
        .clone()
        .oneshot(request(Some("10.0.0.1:9"), &[]))
        .await
        .unwrap();
    assert_eq!(
        body_string(response).await,
        r#"None None Some(MissingHeader { header: "x-real-ip" })"#
    );
    // With it: the inner layer's answer replaces the outer one's, in both places.
    let response = service
        .oneshot(request(Some("10.0.0.1:9"), &[("x-real-ip", "192.0.2.7")]))
        .await
        .unwrap();
    let scoped = if SCOPED {
        r#"Some("192.0.2.7")"#
    } else {
        "None"
    };
    assert_eq!(
        body_string(response).await,
        format!(r#"Some("192.0.2.7") {scoped} None"#)
    );
}

#[tokio::test]
async fn on_rejection_takes_a_closure() {
    let layer = ResolveClientIpLayer::remote_addr().on_rejection(|r: &Rejection| {
        let mut response = Response::new(Bytes::from(format!("closure: {}", r.code())));
        *response.status_mut() = r.status();
        response
    });
    let response = layer
        .layer(echo_ip())
        .oneshot(request(Some("10.0.0.1:1"), &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = layer
        .layer(echo_ip())
        .oneshot(request(None, &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body_string(response).await,
        "closure: client_ip_misconfigured"
    );
}

#[tokio::test]
async fn service_is_built_from_the_layer_and_gives_back_its_inner_service() {
    let layer = ResolveClientIpLayer::new(ClientIpSource::remote_addr());
    let mut service = ResolveClientIp::new(echo_ip(), &layer);
    let _: &mut _ = service.get_mut();
    let _: &_ = service.get_ref();
    let response = service
        .clone()
        .oneshot(request(Some("192.0.2.9:1"), &[]))
        .await
        .unwrap();
    assert!(body_string(response).await.starts_with("192.0.2.9 Peer"));
    let inner = service.into_inner();
    let response = inner.oneshot(request(None, &[])).await.unwrap();
    assert_eq!(body_string(response).await, "none");
    assert_eq!(
        ResolveClientIp::<()>::layer(ClientIpSource::cloudflare()).source(),
        &ClientIpSource::cloudflare()
    );
}

/// Every state of the future (rejected, passed on, passed on inside the scope) returns
/// `Pending` when polled again after `Ready`: never a panic (tokio's `TaskLocalFuture` panics),
/// never a second answer.
#[test]
fn a_finished_future_stays_pending() {
    let mut cx = Context::from_waker(Waker::noop());
    let ready =
        service_fn(|_: Request<()>| std::future::ready(Ok::<_, Infallible>(Response::new(()))));
    #[allow(unused_mut)]
    let mut layers = vec![
        ResolveClientIpLayer::remote_addr(),
        ResolveClientIpLayer::remote_addr().continue_on_failure(),
    ];
    #[cfg(feature = "task-local")]
    layers.push(ResolveClientIpLayer::remote_addr().task_local(false));
    for layer in layers {
        for peer in [Some("192.0.2.1:1"), None] {
            let mut service = layer.layer(ready);
            let mut future = pin!(service.call(request(peer, &[])));
            let debug = format!("{future:?}");
            assert!(debug.starts_with("ResolveClientIpFuture("), "{debug}");
            assert!(
                matches!(future.as_mut().poll(&mut cx), Poll::Ready(Ok(_))),
                "{layer:?} {peer:?}"
            );
            assert!(
                future.as_mut().poll(&mut cx).is_pending(),
                "{layer:?} {peer:?}"
            );
            assert!(
                future.as_mut().poll(&mut cx).is_pending(),
                "{layer:?} {peer:?}"
            );
            assert_eq!(format!("{future:?}"), "ResolveClientIpFuture(\"done\")");
        }
    }
}

#[cfg(feature = "task-local")]
#[test]
fn a_finished_scoped_future_stays_pending() {
    let mut cx = Context::from_waker(Waker::noop());
    let mut service = ResolveClientIpLayer::remote_addr().layer(service_fn(|_: Request<()>| {
        let mut response = Response::new(());
        response
            .extensions_mut()
            .insert(ClientIp::current().map(|ip| ip.to_string()));
        std::future::ready(Ok::<_, Infallible>(response))
    }));
    let mut future = pin!(service.call(request(Some("192.0.2.1:1"), &[])));
    assert_eq!(format!("{future:?}"), "ResolveClientIpFuture(\"scoped\")");
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => {
            let seen = response.extensions().get::<Option<String>>().cloned();
            assert_eq!(seen, Some(Some("192.0.2.1".to_owned())));
        }
        other => panic!("{other:?}"),
    }
    assert!(future.as_mut().poll(&mut cx).is_pending());
}
