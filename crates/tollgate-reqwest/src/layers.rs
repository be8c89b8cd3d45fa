//! Named constructors of [`TowerMiddleware`] for each of tollgate's outbound layers.

use http::HeaderName;
use tollgate_client_ip::ForwardUserIpLayer;
use tollgate_core::{KeyRing, Secret, Upstream};
use tollgate_headers::{HeaderHygieneLayer, SecretHeaderLayer, TokenHeaderLayer, TokenProvider};
use tollgate_signature::{Scheme, SignRequestLayer};
use tollgate_tranzila::{TranzilaCredentials, TranzilaSigningLayer};

use crate::TowerMiddleware;

impl TowerMiddleware<HeaderHygieneLayer> {
    /// [`HeaderHygieneLayer::server_to_server`]: strips what a browser or a proxy added
    /// (cookies, `Origin`, forwarding headers, ...) before the request leaves.
    pub fn server_to_server() -> Self {
        Self::new(HeaderHygieneLayer::server_to_server())
    }

    /// [`HeaderHygieneLayer::only`]: sends only the headers named (an allowlist).
    pub fn only(names: impl IntoIterator<Item = HeaderName>) -> Self {
        Self::new(HeaderHygieneLayer::only(names))
    }
}

impl TowerMiddleware<SecretHeaderLayer> {
    /// [`SecretHeaderLayer::api_key`]: `x-api-key: secret` on requests to `upstream` only;
    /// a request anywhere else is refused (`tollgate_headers::HeaderError`).
    ///
    /// # Errors
    ///
    /// The layer's [`ConfigError`](tollgate_headers::ConfigError) (a blank secret).
    pub fn api_key(
        secret: Secret,
        upstream: Upstream,
    ) -> Result<Self, tollgate_headers::ConfigError> {
        SecretHeaderLayer::api_key(secret, upstream).map(Self::new)
    }

    /// [`SecretHeaderLayer::new`]: header `name` set to `secret`, pinned to `upstream`.
    ///
    /// # Errors
    ///
    /// The layer's [`ConfigError`](tollgate_headers::ConfigError).
    pub fn secret_header(
        name: HeaderName,
        secret: Secret,
        upstream: Upstream,
    ) -> Result<Self, tollgate_headers::ConfigError> {
        SecretHeaderLayer::new(name, secret, upstream).map(Self::new)
    }
}

impl TowerMiddleware<TokenHeaderLayer> {
    /// [`TokenHeaderLayer::access_token`]: `access-token` from `provider` (cached, refreshed
    /// before it expires), on requests to `upstream` only.
    pub fn access_token(provider: impl TokenProvider, upstream: Upstream) -> Self {
        Self::new(TokenHeaderLayer::access_token(provider, upstream))
    }
}

impl TowerMiddleware<ForwardUserIpLayer> {
    /// [`ForwardUserIpLayer`]: `x-user-ip` from the request's `ClientIp` extension or the
    /// task-local `ClientIp` of the inbound request; without one, the request is refused
    /// (`tollgate_client_ip::MissingClientIp`).
    pub fn forward_user_ip() -> Self {
        Self::new(ForwardUserIpLayer::new())
    }
}

impl TowerMiddleware<SignRequestLayer> {
    /// [`SignRequestLayer::new`]: signs the exact bytes sent with `scheme` and `ring`'s
    /// signing key, on requests to `upstream` only.
    ///
    /// # Errors
    ///
    /// The layer's [`ConfigError`](tollgate_signature::ConfigError) (a blank signing key).
    pub fn sign(
        scheme: impl Scheme,
        ring: impl Into<KeyRing>,
        upstream: Upstream,
    ) -> Result<Self, tollgate_signature::ConfigError> {
        SignRequestLayer::new(scheme, ring, upstream).map(Self::new)
    }
}

impl TowerMiddleware<TranzilaSigningLayer> {
    /// [`TranzilaSigningLayer::new`]: Tranzila's four headers (a fresh nonce and time per
    /// request), on requests to `upstream` only.
    ///
    /// # Errors
    ///
    /// The layer's [`ConfigError`](tollgate_tranzila::ConfigError).
    pub fn tranzila(
        credentials: TranzilaCredentials,
        upstream: Upstream,
    ) -> Result<Self, tollgate_tranzila::ConfigError> {
        TranzilaSigningLayer::new(credentials, upstream).map(Self::new)
    }
}
