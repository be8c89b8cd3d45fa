//! HTTPS only, both ways.
//!
//! The payment providers' rule: **all calls over HTTPS, plain HTTP rejected, TLS 1.2 or later,
//! certificates always validated (never disabled, not even in development).** This crate
//! enforces it on the way out and on the way in:
//!
//! - Outbound: [`HttpsConnector`], a `hyper_util` connector on rustls that refuses anything
//!   but `https://` before opening a connection, speaks TLS 1.2 and 1.3 only and always
//!   verifies the server's certificate against the roots of a [`TlsConfig`] (Mozilla's,
//!   compiled in, plus any you add; a connection error is a typed [`ConnectError`]).
//! - Inbound: [`RequireHttpsLayer`], which refuses (403 `https_required`) or redirects (308)
//!   requests that did not arrive over HTTPS, deciding from the connection (the
//!   [`HttpsConnection`] marker your TLS accept loop inserts) or from a trusted proxy's
//!   `X-Forwarded-Proto` / `Forwarded: proto=`, and adds `Strict-Transport-Security` to the
//!   answers of HTTPS requests when asked.
//!
//! The crypto provider is ring and the roots are `webpki-roots`: one provider for the whole
//! tree (no aws-lc-rs C build), and the same trust on every machine and container image.
//!
//! # Calling a provider
//!
//! ```no_run
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::Full;
//! use tollgate_https::{ConnectError, HttpsConnector, TlsConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = HttpsConnector::new(&TlsConfig::new())?.client::<Full<Bytes>>();
//! let request = Request::get("https://api.example.com/v1/ping").body(Full::new(Bytes::new()))?;
//! match client.request(request).await {
//!     Ok(response) => println!("{}", response.status()),
//!     // Nothing was sent: a certificate refused, a timeout, plain http, ...
//!     Err(error) => match ConnectError::find(&error) {
//!         Some(ConnectError::Certificate { reason }) => eprintln!("bad certificate: {reason}"),
//!         Some(other) => eprintln!("no connection: {other}"),
//!         None => eprintln!("request failed: {error}"),
//!     },
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A private CA (or, in tests and the demo, a test CA) is trusted by adding it, never by
//! turning verification off: `TlsConfig::new().roots_only().add_root_pem(ca_pem)?`.
//!
//! # Requiring HTTPS on a server
//!
//! ## Serving over TLS with hyper
//!
//! Your accept loop knows which connections are TLS: insert [`HttpsConnection`] (and the
//! peer's [`PeerAddr`](tollgate_client_ip::PeerAddr)) into every request of those, in the
//! connection's `service_fn`.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use hyper::body::Incoming;
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use tollgate_client_ip::PeerAddr;
//! use tollgate_https::{Hsts, HttpsConnection, RequireHttpsLayer};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! async fn serve(
//!     listener: tokio::net::TcpListener,
//!     tls: Arc<rustls::ServerConfig>,
//! ) -> Result<(), Box<dyn std::error::Error>> {
//!     let app = RequireHttpsLayer::new()
//!         .hsts(Hsts::one_year())
//!         .layer(service_fn(|_: Request<Incoming>| async {
//!             Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("paid"))))
//!         }));
//!     let acceptor = tokio_rustls::TlsAcceptor::from(tls);
//!     loop {
//!         let (tcp, peer) = listener.accept().await?;
//!         let (acceptor, app) = (acceptor.clone(), app.clone());
//!         tokio::spawn(async move {
//!             let Ok(stream) = acceptor.accept(tcp).await else { return };
//!             let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
//!                 // This connection is TLS: say so, for every request read from it.
//!                 request.extensions_mut().insert(HttpsConnection);
//!                 request.extensions_mut().insert(PeerAddr::new(peer));
//!                 app.clone().oneshot(request)
//!             });
//!             let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
//!                 .serve_connection(TokioIo::new(stream), service)
//!                 .await;
//!         });
//!     }
//! }
//! ```
//!
//! ## Serving over TLS with axum
//!
//! Add `Extension(HttpsConnection)` to the router you serve over TLS (with axum-server's
//! `bind_rustls`, or an accept loop like the one above), outside [`RequireHttpsLayer`], and
//! never to a router served over plain HTTP:
//!
//! ```
//! use axum::{Extension, Router, routing::post};
//! use tollgate_https::{Hsts, HttpsConnection, RequireHttpsLayer};
//!
//! # fn main() -> Result<(), tollgate_https::ConfigError> {
//! let api = Router::new().route("/pay", post(|| async { "paid" }));
//! // Served over TLS: every request carries the marker.
//! let over_tls: Router = api
//!     .clone()
//!     .layer(RequireHttpsLayer::new().hsts(Hsts::one_year()))
//!     .layer(Extension(HttpsConnection));
//! // Served on port 80: GET/HEAD redirected, the rest refused.
//! let over_plain_http: Router = api
//!     .layer(RequireHttpsLayer::new().redirect_to("https://pay.example.com".parse()?));
//! # let _ = (over_tls, over_plain_http);
//! # Ok(())
//! # }
//! ```
//!
//! ## Behind a TLS-terminating proxy
//!
//! Trust the proxy's addresses: its `X-Forwarded-Proto` / `Forwarded: proto=` are believed
//! from those peers only ([`PeerAddr::find`](tollgate_client_ip::PeerAddr::find): tollgate's
//! `PeerAddr`, axum's `ConnectInfo` with feature `axum`, tonic's `TcpConnectInfo` with feature
//! `tonic`).
//!
//! ```
//! use tollgate_https::RequireHttpsLayer;
//!
//! let layer = RequireHttpsLayer::new().trust_forwarded_proto("10.0.0.5/32".parse().unwrap());
//! # let _ = layer;
//! ```
//!
//! # Features
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `axum` | the trusted-proxy check reads axum's `ConnectInfo<SocketAddr>` |
//! | `tonic` | the trusted-proxy check reads tonic's `TcpConnectInfo` (and `TlsConnectInfo`) |
//!
//! # Metrics
//!
//! [`RequireHttpsLayer`] counts `tollgate_requests_allowed_total` and
//! `tollgate_requests_refused_total{code="https_required"}` with `layer="https"` (a redirect to
//! HTTPS counts as refused too), through the `metrics` facade (names in
//! `tollgate_core::metrics`). The connector records nothing.
//!
//! Recorded when tollgate-core's `metrics` feature is on: the `tollgate` facade's default; with
//! this crate alone, depend on `tollgate-core` with its default features (or feature
//! `metrics`). Nothing is kept until the application installs a recorder.
//!
//! # Security considerations
//!
//! Each statement is tested; the test is named.
//!
//! - **Nothing is sent over plain HTTP.** An `http://` URI is refused with
//!   [`ConnectError::NotHttps`] before any DNS lookup or TCP connection
//!   (`tests/connector.rs`: `plain_http_is_refused_before_any_connection_is_opened`,
//!   `connector_refuses_other_schemes_and_missing_hosts_directly`).
//! - **Certificates are always verified; there is no way to turn that off.** [`TlsConfig`]
//!   has no "accept invalid certificates" switch and no custom verifier; an expired
//!   certificate, one for another name, a self-signed one or one of an untrusted CA fails the
//!   handshake with [`ConnectError::Certificate`], and the request is never sent
//!   (`expired_certificate_is_refused_and_nothing_sent`,
//!   `certificate_for_another_name_is_refused_and_nothing_sent`,
//!   `self_signed_certificate_is_refused_and_nothing_sent`,
//!   `good_certificate_of_an_untrusted_ca_is_refused_and_nothing_sent`).
//! - **TLS 1.2 or later.** The client offers TLS 1.3 and 1.2 and nothing older
//!   (`the_client_offers_tls_1_3_and_1_2_only`, `tls_1_3_is_preferred_and_tls_1_2_is_accepted`,
//!   `a_server_limited_to_tls_1_2_is_accepted`).
//! - **A connection that cannot be made fails in bounded time** with a typed error
//!   (`connect_timeout_is_a_timeout_error`, `connection_refused_is_a_connect_error`), and a
//!   configuration that cannot work fails when built (`bad_configurations_are_refused_when_built`).
//! - **Untrusted forwarding headers are ignored.** `X-Forwarded-Proto` and `Forwarded` are
//!   read only when the socket peer is inside the ranges given to
//!   [`trust_forwarded_proto`](RequireHttpsLayer::trust_forwarded_proto); only the value the
//!   nearest proxy wrote (the rightmost) counts; disagreeing or malformed values mean plain
//!   HTTP (`tests/require.rs`: `untrusted_peer_x_forwarded_proto_is_ignored`,
//!   `rightmost_x_forwarded_proto_value_decides`,
//!   `forwarded_proto_of_the_rightmost_element_decides`, `both_headers_must_agree`).
//! - **The scheme of the request line is never trusted**: an absolute-form
//!   `GET https://…` over plain TCP and HTTP/2's `:scheme https` over plain TCP are refused
//!   (`absolute_form_https_request_line_is_not_trusted`,
//!   `http2_scheme_https_over_plain_tcp_is_not_trusted`).
//! - **HSTS only on HTTPS answers**: never on the 403 or the 308, and an HSTS header the
//!   inner service set is kept (`over_tls_with_the_marker_passes_with_hsts`,
//!   `plain_http_is_refused_with_json_and_no_hsts`,
//!   `redirect_mode_sends_get_and_head_to_the_configured_origin`).
//! - **The redirect never goes to a host taken from the request**: the origin is fixed at
//!   build time, an [`HttpsOrigin`] validated when parsed (`https`, a host, no path, query,
//!   user info or fragment); only
//!   the request's path and query are appended, and only for `GET`/`HEAD`
//!   (`redirect_mode_sends_get_and_head_to_the_configured_origin`,
//!   `redirect_mode_refuses_other_methods`, `bad_configurations_are_refused_when_built`).
//! - **Logs hold no request data**: the refusal is logged by the responder with its code, the
//!   redirect without the path or query (`the_rejection_goes_through_the_responder_and_is_logged`,
//!   `the_redirect_is_logged_without_the_path`).
//! - **The [`HttpsConnection`] marker is believed as is**: insert it only in the accept loop
//!   of TLS connections. Extensions cannot be set by a client.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod connector;
mod error;
pub mod future;
mod proto;
mod require;
mod tls;

pub use connector::{DEFAULT_CONNECT_TIMEOUT, HttpsConnector, HttpsStream};
pub use error::{ConfigError, ConnectError};
pub use require::{Hsts, HttpsConnection, HttpsOrigin, RequireHttps, RequireHttpsLayer};
pub use tls::TlsConfig;

/// rustls's certificate type, for [`TlsConfig::add_root_certificate`].
pub use rustls::pki_types::CertificateDer;

/// The crate's README, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
