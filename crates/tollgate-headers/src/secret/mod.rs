//! Backend-owned secret headers, sent only to the configured upstreams: a fixed secret
//! ([`SecretHeaderLayer`], in `fixed`), a token an async provider refreshes
//! ([`TokenHeaderLayer`], in `token`), and the upstream check both run before a secret is
//! attached (`upstream`).

mod fixed;
pub(crate) mod token;
mod upstream;

use http::{HeaderName, HeaderValue, Request};

use crate::InjectedHeaders;

pub use fixed::{SecretHeader, SecretHeaderLayer};

/// Transak's partner API key header.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Transak's partner access token header.
pub const ACCESS_TOKEN: HeaderName = HeaderName::from_static("access-token");

/// Inserts `value` (sensitive) under `name`, records it, and logs the header's name.
fn insert_secret<B>(request: &mut Request<B>, name: &HeaderName, mut value: HeaderValue) {
    value.set_sensitive(true);
    let replaced = request.headers_mut().insert(name.clone(), value).is_some();
    InjectedHeaders::record(request.extensions_mut(), name.clone());
    tracing::debug!(
        target: "tollgate",
        layer = "secret_header",
        header = %name,
        replaced,
        "secret header set"
    );
}
