//! [`PinMiddleware`]: every request of a client goes to its base URL, or nowhere.

use http::{Extensions, Uri};
use reqwest_middleware::{Middleware, Next};
use tollgate_core::Upstream;
use tollgate_core::upstream::describe_target;

use crate::Error;

/// Refuses, with [`Error::NotBaseUrl`], any request whose scheme, host or port is not the
/// upstream's ([`Upstream::matches`], the rule of every tollgate layer that pins a secret).
/// Nothing is sent. [`ClientBuilder`](crate::ClientBuilder) puts it first.
#[derive(Debug, Clone)]
#[must_use]
pub struct PinMiddleware {
    upstream: Upstream,
}

impl PinMiddleware {
    /// Pins requests to `upstream`.
    pub fn new(upstream: Upstream) -> Self {
        Self { upstream }
    }
}

#[async_trait::async_trait]
impl Middleware for PinMiddleware {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let uri: Uri = request
            .url()
            .as_str()
            .parse()
            .map_err(|_| Error::InvalidRequest)?;
        if !self.upstream.matches(&uri) {
            return Err(Error::NotBaseUrl {
                target: describe_target(&uri),
            }
            .into());
        }
        next.run(request, extensions).await
    }
}
