//! An origin allowlist that blocks, not just decorates.
//!
//! Transak requires partners to restrict every API that calls Transak to their own front-end
//! origins: `Access-Control-Allow-Origin` set explicitly (never `*`) and requests from any
//! other origin **blocked**. [`OriginAllowlistLayer`] does both. It answers a refused request
//! with 403 `origin_not_allowed` *before* the inner service runs, so the handler's side effect
//! (creating a widget session for a hijacked user) never happens, and it writes exact CORS
//! headers for the origins it allows.
//!
//! # Example
//!
//! An axum API for the front ends `https://app.example.com` and `https://<shop>.example.com`,
//! with a health check that load balancers call without any browser header:
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::{get, post}};
//! use http::Method;
//! use tollgate_origin::OriginAllowlistLayer;
//!
//! # fn main() -> Result<(), tollgate_origin::ConfigError> {
//! let origins = OriginAllowlistLayer::builder()
//!     .allow_origins(["https://app.example.com", "https://*.example.com"])
//!     .allow_methods([Method::GET, Method::POST])
//!     .allow_headers(["content-type"])
//!     .allow_credentials(true)
//!     .max_age(Duration::from_secs(600))
//!     .bypass_path("/healthz")
//!     .build()?;
//!
//! let app: Router = Router::new()
//!     .route("/api/widget-session", post(|| async { r#"{"url":"https://..."}"# }))
//!     .route("/healthz", get(|| async { "ok" }))
//!     .layer(origins);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! # Why blocking matters
//!
//! CORS is a *read* protection enforced by the browser: a foreign page cannot read the
//! response, but the request is still sent. A `POST` with a `text/plain` or form body needs
//! no preflight, so the usual CORS layers (which only leave `Access-Control-Allow-Origin`
//! out for a foreign origin) still run the handler, with the user's cookies. This layer
//! refuses such a request before the handler: the side effect does not happen.
//!
//! # Decisions
//!
//! | request | answer |
//! |---|---|
//! | `Origin` on the list, actual request | inner service runs; `Access-Control-Allow-Origin: <that origin>`, `Access-Control-Allow-Credentials: true` when configured, `Access-Control-Expose-Headers` when configured |
//! | `Origin` on the list, `OPTIONS` + `Access-Control-Request-Method` | 204 from the layer with the allowed methods, headers and max-age, when the method (case-sensitive) and every requested header (case-insensitive) are allowed; else 403 `method_not_allowed` / `header_not_allowed` |
//! | `Origin` not on the list, empty, `null`, a comma list, or several `Origin` headers | 403 `origin_not_allowed`, no CORS headers, inner service not called |
//! | no `Origin`, `Sec-Fetch-Site: cross-site` (or `same-site`, unless [`allow_same_site_without_origin`](OriginAllowlistBuilder::allow_same_site_without_origin)) | 403 `origin_not_allowed` |
//! | no `Origin`, a `Referer` | its `scheme://host[:port]` must be on the list, else 403 |
//! | no `Origin`, `Sec-Fetch-Site: same-origin` or `none` | inner service runs, no CORS headers |
//! | no browser signal at all (server-to-server) | inner service runs, no CORS headers; or 403 with [`allow_server_to_server(false)`](OriginAllowlistBuilder::allow_server_to_server) |
//! | a [bypass path](OriginAllowlistBuilder::bypass_path) | inner service runs, unchecked, its CORS headers untouched |
//! | plain `OPTIONS` without `Access-Control-Request-Method` | like any actual request |
//! | `HEAD` | like `GET` (the server leaves the body of a refusal out) |
//!
//! A refusal is a response, never an error, built from the code's one status and message
//! (`tollgate_core::rejection`): by default the JSON body
//! `{"error":{"code":"origin_not_allowed","message":"origin is not allowed"}}`, the message
//! completed with a detail where the reason is not plain (`origin is not allowed: several
//! Origin headers`). Replace it with
//! [`on_rejection`](OriginAllowlistBuilder::on_rejection), which takes a
//! `tollgate_core::RejectionResponder` or a closure.
//!
//! Every response of the layer, refusals and origin-less ones included, carries
//! `Vary: Origin`, appended to what the inner service set, never duplicated. The layer owns
//! `Access-Control-Allow-Origin` and `-Credentials`: values the inner service (or a
//! replaced rejection responder) set are replaced or removed.
//!
//! # Safe methods are checked too
//!
//! A `GET`, `HEAD` or plain `OPTIONS` from a foreign origin is refused like a `POST`, and so
//! is one marked `Sec-Fetch-Site: cross-site` without `Origin` (an `<img>`, a `<script>`, a
//! link followed from another site). Go's `CrossOriginProtection` and CSRF layers modelled
//! on it let safe methods through, because they protect against *writes* only. This layer
//! implements a different rule: the provider requires requests from other origins to be
//! **blocked**, and in practice a `GET` handler is not always free of effects (it may mint a
//! widget URL, start a session or spend a quota under the user's cookies). A foreign page
//! could not have read the answer anyway, so refusing it costs legitimate callers nothing.
//! Serve endpoints that other sites must be able to link to or embed outside this layer, or
//! list them as [bypass paths](OriginAllowlistBuilder::bypass_path).
//!
//! # Stricter than the usual layers
//!
//! - A present `Origin` is always checked against the list: neither a matching `Host`
//!   header (which the client or a proxy writes) nor `Sec-Fetch-Site: same-origin` replaces
//!   that check. When the page and the API share an origin, list it.
//! - The request value is never normalised (no lowercasing, no port or trailing-dot
//!   stripping, no decoding); several `Origin` headers, a list, an empty value and `null` are
//!   refused.
//! - A wildcard matches one label of lowercase letters, digits and `-`: no suffix or prefix
//!   matching, no regular expressions, so no unescaped-dot or `evil.com/.example.com` tricks.
//! - A bypass path is one exact path as sent, without decoding or dot-segment resolution.
//! - The requested method is compared case-sensitively (browsers upper-case only the six
//!   standard methods, and so does [`allow_methods`](OriginAllowlistBuilder::allow_methods));
//!   requested headers are compared case-insensitively, in any comma and whitespace shape,
//!   over any number of `Access-Control-Request-Headers` lines.
//!
//! # Listing origins
//!
//! An origin is `scheme://host[:port]`, nothing more. The list is validated and canonicalised
//! once, by [`build`](OriginAllowlistBuilder::build): scheme and host lowercased, the default
//! port removed, internationalised names in punycode (`https://bücher.example` becomes
//! `https://xn--bcher-kva.example`). Refused with a [`ConfigError`]: `*`, `null`, a path, a
//! trailing `/`, a query or fragment, userinfo, a non-http(s) scheme, a trailing dot, and
//! `http://` unless [`allow_http_origins(true)`](OriginAllowlistBuilder::allow_http_origins).
//!
//! The one wildcard form is a whole left-most label, `https://*.example.com`: it matches
//! exactly one label (`https://shop.example.com`), never the apex nor `a.b.example.com`;
//! scheme and port must match exactly. A wildcard on a public suffix (`*.com`, `*.co.uk`,
//! `*.github.io`, `*.replit.app`) is refused, and so is one whose every match is itself a
//! public suffix (`*.run.app`, `*.anything.ck`): it would allow the sites of unrelated
//! parties. The check uses the whole [Public Suffix List](https://publicsuffix.org/), ICANN
//! and private sections, as the `psl` crate embeds it; a base of one label (`localhost`, an
//! unlisted top-level domain) is always refused; so are the few shared-hosting names the
//! list lacks (`*.amazonaws.com`, `*.glitch.me`, ...). See [`AllowedOrigin`].
//!
//! At request time the `Origin` header is compared byte for byte with the canonical list.
//! The request value is never normalised: browsers send the canonical form, so
//! `HTTPS://APP.EXAMPLE.COM`, `https://app.example.com:443` or `%`-escapes come from
//! something else and are refused.
//!
//! The canonical form is the WHATWG URL standard's origin serialisation, computed by the
//! `url` crate: internationalised names go through UTS #46 with non-transitional processing,
//! as current browsers do (`straße.de` becomes `xn--strae-oqa.de`). The text is never
//! silently rewritten into another name: where UTS #46 would *map* it (full-width letters, an
//! ideographic full stop, an invisible or formatting character, a name not in NFC), and for
//! IPv4 written in octal, hex or shortened form, the origin is refused instead. When in doubt,
//! list the `xn--` form the browser shows in its `Origin` header.
//!
//! When the page and the API share an origin, list that origin too: browsers send `Origin`
//! on same-origin `POST`s.
//!
//! The allowed methods and headers govern preflights. An actual request from an allowed
//! origin is not checked against them: a browser sends a non-simple method or header only
//! after a successful preflight, and non-browser clients are not bound by CORS anyway.
//!
//! # The layer, the service, the future
//!
//! [`OriginAllowlistLayer`] is the configuration, validated when it is built
//! ([`OriginAllowlistLayer::new`] for a list of origins with the defaults,
//! [`OriginAllowlistLayer::builder`] for the rest): configuration errors are
//! [`ConfigError`]s then, never a per-request failure. [`OriginAllowlist`] is the service it
//! makes, and [`future::OriginAllowlistFuture`] its response future.
//!
//! # Layer order
//!
//! Put this layer **outermost** among the security layers, before anything that does work
//! for the request (client-IP extraction, body buffering, signature checks, rate limits,
//! the handler): a preflight must be answered without credentials or signatures, and a
//! refused request should cost as little as possible. Layers *outside* it (tracing,
//! compression, timeouts) see its 403s and 204s like any other response. Do not stack
//! another CORS layer inside it: its headers would be replaced.
//!
//! ```
//! # fn demo(origins: tollgate_origin::OriginAllowlistLayer) {
//! use tower::ServiceBuilder;
//! let stack = ServiceBuilder::new()
//!     .layer(origins)          // first: refuse foreign origins, answer preflights
//!     // .layer(client_ip)     // then the rest of the stack
//!     ;
//! # let _ = stack;
//! # }
//! ```
//!
//! # Metrics
//!
//! [`OriginAllowlistLayer`] counts `tollgate_requests_allowed_total` and
//! `tollgate_requests_refused_total` (by `code`, e.g. `origin_not_allowed`) with
//! `layer="origin"`, through the `metrics` facade (names in `tollgate_core::metrics`); a
//! refused origin is never a label.
//!
//! Recorded when tollgate-core's `metrics` feature is on: the `tollgate` facade's default; with
//! this crate alone, depend on `tollgate-core` with its default features (or feature
//! `metrics`). Nothing is kept until the application installs a recorder.
//!
//! # Security considerations
//!
//! - Checks based on `Origin`, `Referer` and `Sec-Fetch-Site` protect **browser** users;
//!   anything else can send any header. Authenticate server-to-server callers separately, or
//!   refuse them here with `allow_server_to_server(false)`.
//! - [`allow_credentials(true)`](OriginAllowlistBuilder::allow_credentials) lets every listed
//!   origin make cookie-carrying requests: keep the list to origins you control.
//! - A [bypass path](OriginAllowlistBuilder::bypass_path) is compared with the exact URI
//!   path; keep bypassed handlers free of side effects.
//! - Caches: responses carry `Vary: Origin`, but whether a request *without* `Origin` passes
//!   also depends on `Sec-Fetch-Site` and `Referer`, which the layer does not add to `Vary`
//!   (that would defeat every cache). A shared cache in front of the layer can therefore
//!   answer an origin-less cross-site `GET` from a stored same-origin response: the handler
//!   still does not run, but mark responses that must stay private `Cache-Control: private`
//!   or `no-store`. Refusals (403) are not cacheable by default.
//! - Wildcards are checked against the Public Suffix List compiled into the `psl` crate
//!   version in use: a suffix added to the list later is refused once `psl` is updated
//!   (`cargo update -p psl`). Until then, prefer exact origins on hosting platforms.
//! - Origins swapped while running
//!   ([`build_swappable`](OriginAllowlistBuilder::build_swappable), [`OriginsHandle`]): a
//!   stored list is validated exactly as `build` validates (the same [`ConfigError`], nothing
//!   changed on error), each request is decided against one version, and a store applies
//!   from the next request on (tested in `tests/rotation.rs`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
pub mod future;
mod handle;
mod layer;
mod origin;
mod policy;
mod public_suffix;
mod service;

pub use error::ConfigError;
pub use handle::OriginsHandle;
pub use layer::{OriginAllowlistBuilder, OriginAllowlistLayer};
pub use origin::AllowedOrigin;
pub use service::OriginAllowlist;

/// The crate's README, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
