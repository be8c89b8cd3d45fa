//! The end user's real IP in, `x-user-ip` out, and an IP allowlist.
//!
//! Transak requires the header `x-user-ip` on every backend call: the end user's originating
//! IP as your backend sees it, not your own address and not a proxy or CDN hop (behind
//! Cloudflare: `cf-connecting-ip`), exactly one valid IPv4 or IPv6 address, else it answers
//! 400 "`x-user-ip` must be a valid IPv4 or IPv6 address". It pins sessions to that IP, so a
//! wrong or spoofable value breaks users or lets sessions be hijacked. Providers also refuse
//! calls from source IPs outside a registered allowlist (403). This crate gets the first
//! part right on the way in, sends it on the way out, and enforces allowlists:
//!
//! - [`ClientIpSource`]: pure extraction, no tower needed. Trust is decided on the socket
//!   peer; forwarding headers are walked right to left without allocating.
//! - [`ResolveClientIpLayer`]: puts a [`ClientIp`] into request extensions and (feature
//!   `task-local`) a task-local scope; 400 `invalid_client_ip` / 500
//!   `client_ip_misconfigured` when there is none.
//! - [`ForwardUserIpLayer`]: sets `x-user-ip` on outbound calls, or fails the call with
//!   [`MissingClientIp`] so no request leaves without it.
//! - [`IpAllowlistLayer`]: 403 `ip_not_allowed` outside the allowed ranges.
//! - [`SetPeerAddrLayer`] (tests only): a fixed socket peer, so a loopback test can come
//!   "from" Cloudflare or your proxy ([testing](#testing-your-stack-behind-cloudflare)).
//!
//! Each layer `FooLayer` is the configuration and `Foo<S>` its service; the services' futures
//! are in [`future`].
//!
//! # Example
//!
//! An axum server behind one nginx on `10.0.0.5` that calls the provider through a
//! `hyper_util` client: the handler does not pass the IP along, the task-local scope does
//! (feature `task-local`, on by default; without it, insert the handler's [`ClientIp`] into
//! the outbound request's extensions).
//!
//! ```
//! use std::net::SocketAddr;
//!
//! use axum::{Router, routing::post};
//! use bytes::Bytes;
//! use http::{Request, StatusCode};
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tollgate_client_ip::{ClientIp, ClientIpSource, ForwardUserIpLayer, ResolveClientIpLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[cfg(feature = "axum")]
//! async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
//!     let source: ClientIpSource = "rightmost-trusted-range:x-forwarded-for:10.0.0.5".parse().unwrap();
//!     let provider = ServiceBuilder::new()
//!         .layer(ForwardUserIpLayer::new())
//!         .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
//!
//!     let app = Router::new()
//!         .route("/quote", post(move |ip: ClientIp| {
//!             let provider = provider.clone();
//!             async move {
//!                 tracing::info!(client = %ip, "quote requested");
//!                 let request = Request::post("http://provider.example/quote")
//!                     .body(Full::new(Bytes::new()))
//!                     .unwrap();
//!                 // `x-user-ip: <ip>` is added by ForwardUserIpLayer.
//!                 match provider.oneshot(request).await {
//!                     Ok(response) => response.status(),
//!                     Err(_) => StatusCode::BAD_GATEWAY,
//!                 }
//!             }
//!         }))
//!         .layer(ResolveClientIpLayer::new(source));
//!
//!     axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
//! }
//! ```
//!
//! # Deployment guide
//!
//! Which source is right depends only on what sits between the internet and your server.
//! Two rules drive every choice:
//!
//! 1. **Only the socket peer is a fact.** Every header can be written by the client, so a
//!    header is believed only when the peer that delivered it is a proxy you trust to have
//!    set it. Every source here checks the peer; an untrusted peer *is* the client.
//! 2. **Read list headers from the right.** Each proxy appends what it saw; the client
//!    controls everything left of what your first trusted proxy appended. The rightmost
//!    address not written by your own proxies is the client; leftmost values are spoofable.
//!
//! ## Directly exposed (no proxy)
//!
//! Use [`ClientIpSource::remote_addr`] (`remote-addr`). Ignore every forwarding header:
//! anyone can send `X-Forwarded-For: 1.2.3.4`. With axum, serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`; with plain hyper, insert
//! [`PeerAddr`] per connection; tonic's `TcpConnectInfo` is read with feature `tonic`.
//!
//! ## Behind one reverse proxy (nginx, Caddy, HAProxy, Envoy)
//!
//! Use [`ClientIpSource::rightmost_trusted_range`] with the proxy's address:
//! `rightmost-trusted-range:x-forwarded-for:10.0.0.5`. The proxy appends the peer it saw, so
//! the rightmost entry that is not your proxy is the client. If the proxy *replaces* a
//! single header instead (nginx `proxy_set_header X-Real-IP $remote_addr`),
//! `header:x-real-ip:10.0.0.5` is equally good. Never trust a header without naming the
//! proxy: if the server port is reachable from elsewhere, anyone can set it.
//!
//! ## Behind Cloudflare
//!
//! Use [`ClientIpSource::cloudflare`] (`cloudflare`): `cf-connecting-ip`, believed only from
//! Cloudflare's published ranges ([`IpRanges::cloudflare`], dated
//! [`CLOUDFLARE_RANGES_DATE`]). A client that finds your origin and connects directly can
//! send any `cf-connecting-ip`; it is ignored and the peer is the client. Refresh the ranges
//! when Cloudflare publishes changes, or pass your own with
//! `header:cf-connecting-ip:<ranges>`. Better still, firewall the origin to Cloudflare.
//! Cloudflare's ranges are shared by every Cloudflare customer: anyone can put their own zone
//! (and their own Worker) in front of your origin's address and send a `cf-connecting-ip` of
//! their choice from a Cloudflare address. Where the client IP decides something, also have
//! the origin accept only your zone's connections (Cloudflare's Authenticated Origin Pulls,
//! TLS client certificates checked by your TLS terminator).
//! If Cloudflare sits in front of your own proxy, list both:
//! `rightmost-trusted-range:x-forwarded-for:cloudflare,10.0.0.5` (Cloudflare appends to
//! `X-Forwarded-For` too).
//!
//! ## Testing your stack behind Cloudflare
//!
//! A test over loopback always arrives from `127.0.0.1`, never from a Cloudflare address, so
//! it cannot show that `cf-connecting-ip` is believed from Cloudflare and ignored from
//! anyone else. [`SetPeerAddrLayer`], outside [`ResolveClientIpLayer`], makes every request
//! come from the peer you name (it inserts [`PeerAddr`], which the layer reads before axum's
//! `ConnectInfo`). The same works for your own proxy's address. Test code only: in
//! production it would make every client look like the proxy.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::convert::Infallible;
//! use std::net::SocketAddr;
//!
//! use http::{Request, Response};
//! use tollgate_client_ip::{ClientIp, ClientIpSource, ResolveClientIpLayer, SetPeerAddrLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! /// The client IP the stack derives for `request` arriving from `peer`.
//! async fn client_ip(peer: SocketAddr, request: Request<()>) -> Option<String> {
//!     let stack = ServiceBuilder::new()
//!         .layer(SetPeerAddrLayer::new(peer))
//!         .layer(ResolveClientIpLayer::new(ClientIpSource::cloudflare()))
//!         .service(service_fn(|request: Request<()>| async move {
//!             // Echo the ClientIp the layer inserted, through the response extensions.
//!             let mut response = Response::new(());
//!             *response.extensions_mut() = request.extensions().clone();
//!             Ok::<_, Infallible>(response)
//!         }));
//!     let response = stack.oneshot(request).await.unwrap();
//!     response.extensions().get::<ClientIp>().map(ToString::to_string)
//! }
//!
//! let from_user = || {
//!     Request::get("/").header("cf-connecting-ip", "203.0.113.7").body(()).unwrap()
//! };
//! // Through Cloudflare (173.245.48.0/20 is one of its ranges): the end user's IP.
//! let ip = client_ip("173.245.48.1:443".parse().unwrap(), from_user()).await;
//! assert_eq!(ip.as_deref(), Some("203.0.113.7"));
//! // Straight to the origin, with the same header: the header is ignored, the peer is the client.
//! let ip = client_ip("198.51.100.9:5000".parse().unwrap(), from_user()).await;
//! assert_eq!(ip.as_deref(), Some("198.51.100.9"));
//! # }
//! ```
//!
//! With axum, put the layer on the router in the test (`app.layer(SetPeerAddrLayer::new(..))`)
//! and call it with `oneshot`; a `PeerAddr` set this way wins over `ConnectInfo`.
//!
//! ## Behind a load balancer plus nginx
//!
//! The request passes a cloud load balancer (private addresses, e.g. `10.0.0.0/8`, possibly
//! changing) and then nginx. Both append to `X-Forwarded-For`. Use
//! `rightmost-trusted-range:x-forwarded-for:10.0.0.0/8` with the ranges that hold *both*
//! hops: the walk skips nginx's and the balancer's entries and stops at the first address
//! neither wrote. If the addresses are unknown but the number of hops is fixed, use
//! [`ClientIpSource::rightmost_trusted_count`] with the number of proxies
//! (`rightmost-trusted-count:x-forwarded-for:2`; note its off-by-one). If every proxy is in
//! a private network, [`ClientIpSource::rightmost_non_private`] needs no list, but it takes
//! a private client address (a user on the same VPN) for a proxy.
//!
//! ## More than one path in
//!
//! When requests arrive both through Cloudflare and through an internal proxy, chain the
//! sources: `cloudflare or header:x-real-ip:10.0.0.5`. A source that does not trust the
//! peer passes to the next one; the peer is the client only when no source trusts it, and
//! each header is read only from the peers its own source trusts.
//!
//! ## Never for security
//!
//! [`ClientIpSource::leftmost_non_private`] returns what the client claims. It is there for
//! analytics; never use it for allowlists, rate limits, session pinning or `x-user-ip`.
//!
//! ## Coming from nginx, Envoy, Express or realclientip-go
//!
//! | you had | here |
//! |---|---|
//! | nginx `set_real_ip_from <ranges>; real_ip_header X-Forwarded-For; real_ip_recursive on;` | `rightmost-trusted-range:x-forwarded-for:<ranges>` |
//! | nginx `real_ip_header X-Real-IP;` (or any single-IP header) | `header:x-real-ip:<ranges>` |
//! | nginx `real_ip_recursive off;` | `rightmost-trusted-count:x-forwarded-for:1` (it does not check the peer) |
//! | Envoy `use_remote_address: true`, `xff_num_trusted_hops: 0` | `remote-addr` |
//! | Envoy `use_remote_address: true`, `xff_num_trusted_hops: N` (N ≥ 1) | `rightmost-trusted-count:x-forwarded-for:N` |
//! | Envoy `use_remote_address: false`, `xff_num_trusted_hops: N` | `rightmost-trusted-count:x-forwarded-for:N+1` |
//! | Express `trust proxy` = `n` (hop count) | `rightmost-trusted-count:x-forwarded-for:n`; `0` is `remote-addr` |
//! | Express `trust proxy` = `'loopback, 10.0.0.0/8'` | `rightmost-trusted-range:x-forwarded-for:loopback,10.0.0.0/8` (`linklocal`, `uniquelocal` and dotted netmasks work too) |
//! | realclientip-go `RightmostTrustedRangeStrategy`, `RightmostTrustedCountStrategy`, `SingleIPHeaderStrategy`, `ChainStrategy`, ... | the source of the same name |
//!
//! Where they differ, tollgate chooses the answer that cannot be wrong about the client:
//!
//! - When every hop is trusted, or a hop count exceeds the list, there is no IP (nginx and
//!   `proxy-addr` answer the leftmost entry, a proxy or a client's claim).
//! - An entry that is not an address stops the walk with an error (`proxy-addr` answers its
//!   raw text, nginx keeps the proxy's address); the output is always a plain IP.
//! - IPv6 zones are dropped from the output (realclientip-go keeps `%eth0`), since
//!   `x-user-ip` takes a plain address.
//! - The peer is always checked (realclientip-go's header strategies leave it to the
//!   caller).
//! - A chain never falls back to the peer once a source trusted it
//!   ([security considerations](#security-considerations)); realclientip-go's
//!   `ChainStrategy` with `RemoteAddrStrategy` last answers the proxy's address when the
//!   header is missing or invalid.
//! - `Forwarded` honours quoted strings and refuses elements with malformed parameters,
//!   where realclientip-go splits on every comma and skips malformed parameters: an
//!   unterminated quote sent by a client could otherwise swallow the element a proxy
//!   appended on the same line.
//!
//! # Metrics
//!
//! Through the `metrics` facade (names in `tollgate_core::metrics`):
//! [`ResolveClientIpLayer`] (and the [`ClientIp`] extractor's refusals) count
//! `tollgate_requests_allowed_total` / `tollgate_requests_refused_total` with
//! `layer="client_ip"`, [`IpAllowlistLayer`] with `layer="ip_allowlist"` (`code` on refusals:
//! `ip_not_allowed`, `invalid_client_ip`, `client_ip_misconfigured`, …). The resolved IP goes
//! into the span field `tollgate.client_ip` when the current span declares it, never into a
//! label.
//!
//! Recorded when tollgate-core's `metrics` feature is on: the `tollgate` facade's default; with
//! this crate alone, depend on `tollgate-core` with its default features (or feature
//! `metrics`). Nothing is kept until the application installs a recorder.
//!
//! # Security considerations
//!
//! The guarantee every source, chain and layer here keeps (property-tested over arbitrary
//! header bytes and chains of every source kind in `tests/trusted_proxy.rs`):
//!
//! The socket peer is taken for the client only when no source of the configured chain
//! trusts it as a proxy. Once a source trusts the peer, the client IP is read from the
//! headers that proxy forwarded, or there is none: `ResolveClientIpLayer` answers 400
//! `invalid_client_ip`, and with `continue_on_failure` the request goes on without a
//! `ClientIp`, which `IpAllowlistLayer` refuses and `ForwardUserIpLayer` never sends. A
//! trusted proxy's own address is never reported as the client because it connected.
//!
//! So `remote-addr` in a chain is never a fallback for a source that trusts the peer and
//! fails (`cloudflare or remote-addr` from Cloudflare without a valid `cf-connecting-ip` is
//! a 400, not Cloudflare's address), and a client cannot reach an allowlist of internal
//! networks by sending a header that the proxy's own entry cannot be read after (an
//! unterminated quote in `Forwarded`). The peer's address can still come out of a header
//! that names it, as any other address can: which headers are believed is the choice of
//! source described in the deployment guide.
//!
//! **Ranges swapped while running** ([`IpRangesHandle`]: trusted proxies of a source, an
//! allowlist) are loaded once per request: the peer check and the whole right-to-left walk
//! use one version, never the old ranges for one hop and the new for the next, and a stored
//! set applies from the next request on. The walk reads the handle's ranges in place, in
//! atomic words checked by a sequence number before and after; a walk that a store
//! overlapped is thrown away and done again on a version loaded whole, so its answer always
//! comes from one version (tested in `src/handle.rs`, where three threads judge addresses
//! while another stores two sets in a loop, and in `tests/rotation.rs`: a loop swapping
//! between two versions while clients resolve never yields an address no single version
//! gives, and loses no request; `tests/tests/attack_review_16.rs` and `attack_review_18.rs`
//! race IPv4, IPv6, peerless and `any` walks, and sets larger than the copy, against stores
//! in a tight loop). A chain of sources that share one handle (`header(..,
//! h).or(rightmost_trusted_range(.., h))`) loads it once for the whole chain (tested in
//! `tests/tests/attack_review_9.rs`). Two *different* handles are two cells: a reload that
//! stores the trusted proxies and then the allowlist lets a request in between resolve with
//! the new proxies and be checked against the old allowlist; store the one that narrows
//! access first. Cloudflare's compiled-in ranges are dated
//! ([`CLOUDFLARE_RANGES_DATE`]); put them in a handle to refresh them from Cloudflare's list
//! without a redeploy.
//!
//! # Configuration grammar
//!
//! [`ClientIpSource`] implements [`FromStr`](std::str::FromStr) (and `serde::Deserialize`
//! with feature `serde`) so the source can come from configuration:
//!
//! | text | source |
//! |---|---|
//! | `remote-addr` | [`ClientIpSource::remote_addr`] |
//! | `cloudflare` | [`ClientIpSource::cloudflare`] (same as `header:cf-connecting-ip:cloudflare`) |
//! | `header:<name>` | [`ClientIpSource::header`] believed from **any** peer ([`IpRanges::any`]) |
//! | `header:<name>:<ranges>` | [`ClientIpSource::header`] believed from `<ranges>` |
//! | `rightmost-trusted-range:<x-forwarded-for\|forwarded>:<ranges>` | [`ClientIpSource::rightmost_trusted_range`] |
//! | `rightmost-trusted-count:<x-forwarded-for\|forwarded>:<n>` | [`ClientIpSource::rightmost_trusted_count`], `n >= 1` |
//! | `rightmost-non-private:<x-forwarded-for\|forwarded>` | [`ClientIpSource::rightmost_non_private`] |
//! | `leftmost-non-private:<x-forwarded-for\|forwarded>` | [`ClientIpSource::leftmost_non_private`] |
//! | `<source> or <source>` | a chain ([`ClientIpSource::or`]) |
//!
//! `<ranges>` is a comma-separated list of CIDRs (also with a dotted netmask,
//! `10.0.0.0/255.0.0.0`), bare addresses and the names `cloudflare`, `private`, `loopback`,
//! `linklocal` and `uniquelocal` ([`IpRanges`]). `header:` refuses `x-forwarded-for` and
//! `forwarded` (they are lists, not single-IP headers). Header names are case-insensitive.
//! Errors say what is wrong:
//!
//! ```
//! use tollgate_client_ip::ClientIpSource;
//!
//! let source: ClientIpSource =
//!     "header:cf-connecting-ip:cloudflare or rightmost-trusted-range:forwarded:10.0.0.0/8, fd00::/8"
//!         .parse()
//!         .unwrap();
//! assert_eq!(
//!     source.to_string(),
//!     "header:cf-connecting-ip:cloudflare or rightmost-trusted-range:forwarded:10.0.0.0/8,fd00::/8"
//! );
//! let err = "rightmost-trusted-range:x-real-ip:10.0.0.0/8".parse::<ClientIpSource>().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "`rightmost-trusted-range` reads `x-forwarded-for` or `forwarded`, got `x-real-ip`"
//! );
//! ```
//!
//! # Parsing rules
//!
//! All lines of a list header are merged in order; elements are split on commas and
//! trimmed; `ip:port`, `[v6]:port` (and, leniently, `[v4]:port`) lose the port (0 to
//! 65535, or an RFC 7239 obfuscated `_port`); an IPv6 zone (`%eth0`) is stripped;
//! IPv4-mapped IPv6 is folded to IPv4 for the output and for trust checks (ranges are
//! canonicalised the same way). `0.0.0.0`, `::`, empty elements, `unknown`, obfuscated
//! identifiers (`_hidden`) and garbage are invalid hops that stop the walk; they are never
//! skipped by the rightmost sources (only [`ClientIpSource::leftmost_non_private`], whose
//! every answer is client-controlled anyway, skips them). `Forwarded` is parsed per
//! RFC 7239 with quoted strings, so a comma inside quotes does not split and one malformed
//! element invalidates only itself; parameter names are case-insensitive (`For=`, `FOR=`)
//! and unquoted IPv6 or `ip:port` values are tolerated. When every hop is trusted there is
//! no IP. [`parse_ip`] applies the same rules to one address.
//!
//! A single-IP header must hold exactly one address (an optional port is dropped);
//! `cloudfront-viewer-address` is read as CloudFront writes it, `ip:port` with IPv6
//! unbracketed. When it appears on several lines, the last one counts.
//!
//! The common path does not allocate: list headers are walked right to left over the
//! header bytes (a `Forwarded` line with more than 32 elements spills to the heap).
//!
//! # Features
//!
//! - `task-local` (default): the task-local scope ([`ClientIp::current`],
//!   [`ClientIp::scope`]) that [`ResolveClientIpLayer`] opens around the inner service, read
//!   by [`ForwardUserIpLayer`] when the outbound request carries no [`ClientIp`]. Without it
//!   the crate does not depend on tokio, and [`ForwardUserIpLayer`] reads the outbound
//!   request's extensions only.
//! - `axum`: [`ClientIp`] as an extractor (and `Option<ClientIp>`), and axum's
//!   `ConnectInfo<SocketAddr>` as a peer source.
//! - `tonic`: tonic's `TcpConnectInfo` and `TlsConnectInfo<TcpConnectInfo>` as peer sources.
//! - `serde`: `Deserialize` for [`ClientIpSource`] and [`IpRanges`] from the grammar above.
//!
#![cfg_attr(
    not(feature = "task-local"),
    doc = "[`ClientIp::current`]: ClientIp\n[`ClientIp::scope`]: ClientIp"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod allowlist;
mod client_ip;
mod config;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod forward;
pub mod future;
mod handle;
mod parse;
mod ranges;
mod resolve;
mod source;
mod testing;

pub use allowlist::{IpAllowlist, IpAllowlistLayer};
pub use client_ip::{ClientIp, IpOrigin, PeerAddr};
pub use error::{ConfigError, ExtractError, MissingClientIp};
#[cfg(feature = "axum")]
pub use extract::ClientIpRejection;
pub use forward::{ForwardUserIp, ForwardUserIpLayer, X_USER_IP};
pub use handle::{IpRangesGuard, IpRangesHandle};
pub use parse::parse_ip;
pub use ranges::{CLOUDFLARE_IPV4, CLOUDFLARE_IPV6, CLOUDFLARE_RANGES_DATE, IpRanges};
pub use resolve::{ResolveClientIp, ResolveClientIpLayer};
pub use source::{ClientIpSource, ListHeader};
pub use testing::{SetPeerAddr, SetPeerAddrLayer};

/// The crate's README, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
