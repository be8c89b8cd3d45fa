//! The shape every layer of the crate shares: `Send + Sync + Clone + Debug` layers and
//! services, `Send` futures, and the `Debug` of the configurations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;

use http::{Request, Response};
use tollgate_client_ip::future::{ForwardUserIpFuture, IpAllowlistFuture, ResolveClientIpFuture};
use tollgate_client_ip::{
    ClientIp, ClientIpSource, ForwardUserIpLayer, IpAllowlistLayer, IpOrigin, IpRanges,
    ResolveClientIpLayer, SetPeerAddr, SetPeerAddrLayer,
};
use tower::{Layer, Service, service_fn};

use common::ip;

#[test]
fn services_are_send_sync_clone_and_debug() {
    fn assert_send_clone<T: Send + Sync + Clone + std::fmt::Debug>(_: &T) {}
    #[derive(Clone, Debug)]
    struct Inner;
    assert_send_clone(&ResolveClientIpLayer::cloudflare().layer(Inner));
    assert_send_clone(&IpAllowlistLayer::new(IpRanges::private()).layer(Inner));
    assert_send_clone(&ForwardUserIpLayer::new().layer(Inner));
    assert_send_clone(&SetPeerAddrLayer::new("192.0.2.1:1".parse().unwrap()).layer(Inner));
    assert_send_clone(&IpAllowlistLayer::new(IpRanges::private()));
    assert_send_clone(&ForwardUserIpLayer::new());
    assert_send_clone(&SetPeerAddrLayer::new("192.0.2.1:1".parse().unwrap()));
    assert_send_clone(&ResolveClientIpLayer::cloudflare());
    assert_send_clone(&ClientIpSource::cloudflare());
    assert_send_clone(&ClientIp::new(ip("192.0.2.1"), IpOrigin::Peer));
    assert_eq!(
        format!("{:?}", ForwardUserIpLayer::new()),
        "ForwardUserIpLayer { header: \"x-user-ip\" }"
    );
    assert_eq!(
        format!("{:?}", ResolveClientIpLayer::remote_addr()),
        "ResolveClientIpLayer { source: ClientIpSource(remote-addr), reject: true, responder: RejectionResponder(\"json\") }"
    );
}

#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let ready = service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
    let request = || common::request(Some("192.0.2.1:1"), &[]);
    let future: ResolveClientIpFuture<_> = ResolveClientIpLayer::remote_addr()
        .layer(ready)
        .call(request());
    assert_send(&future);
    let future: IpAllowlistFuture<_> = IpAllowlistLayer::new(IpRanges::any())
        .layer(ready)
        .call(request());
    assert_send(&future);
    let future: ForwardUserIpFuture<_> = ForwardUserIpLayer::new().layer(ready).call(request());
    assert_send(&future);
}

#[test]
fn set_peer_addr_is_built_from_the_layer_and_gives_back_its_inner_service() {
    #[derive(Clone, Debug, PartialEq)]
    struct Inner;
    let peer = "173.245.48.1:443".parse().unwrap();
    let layer = SetPeerAddr::<()>::layer(peer);
    assert_eq!(layer, SetPeerAddrLayer::new(peer));
    assert_eq!(layer.peer(), peer);
    let mut service = SetPeerAddr::new(Inner, &layer);
    assert_eq!(service.peer(), peer);
    assert_eq!(service.get_ref(), &Inner);
    assert_eq!(service.get_mut(), &mut Inner);
    assert_eq!(service.into_inner(), Inner);
}
