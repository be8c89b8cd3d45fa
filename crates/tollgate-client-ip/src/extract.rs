//! The axum extractor for [`ClientIp`] (feature `axum`).

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use tollgate_core::RejectionResponder;

use crate::{ClientIp, ExtractError};

/// `ClientIp` as a handler argument failed: no
/// [`ResolveClientIpLayer`](crate::ResolveClientIpLayer) ran before the handler, or it was set
/// to [`continue_on_failure`](crate::ResolveClientIpLayer::continue_on_failure) and found no
/// IP.
///
/// Answers like the layer would have: 400 `invalid_client_ip` when the layer found the
/// request's headers at fault (a client's bytes never cause a 500), 500
/// `client_ip_misconfigured` when no layer ran or no peer address reached it. Take
/// `Option<ClientIp>` to handle the absence yourself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub struct ClientIpRejection {
    reason: Option<ExtractError>,
}

impl ClientIpRejection {
    /// Why the layer found no IP; `None` when no
    /// [`ResolveClientIpLayer`](crate::ResolveClientIpLayer) ran before the handler.
    pub fn reason(&self) -> Option<&ExtractError> {
        self.reason.as_ref()
    }
}

impl IntoResponse for ClientIpRejection {
    fn into_response(self) -> Response {
        let rejection = match &self.reason {
            Some(reason) => {
                if reason.is_misconfiguration() {
                    tracing::error!(target: "tollgate", "client IP misconfigured: {reason}");
                } else {
                    tracing::debug!(target: "tollgate", "no client IP: {reason}");
                }
                reason.to_rejection()
            }
            None => {
                tracing::error!(
                    target: "tollgate",
                    "ClientIp extractor used without a ResolveClientIpLayer in front of the handler"
                );
                ExtractError::MissingPeer.to_rejection()
            }
        };
        RejectionResponder::json()
            .refuse(tollgate_core::metrics::LayerName::ClientIp, rejection)
            .map(axum::body::Body::from)
    }
}

/// `ClientIp` as a handler argument: the one the
/// [`ResolveClientIpLayer`](crate::ResolveClientIpLayer) in front of the handler resolved.
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ClientIpRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientIp>()
            .cloned()
            .ok_or_else(|| ClientIpRejection {
                reason: parts.extensions.get::<ExtractError>().cloned(),
            })
    }
}

/// `Option<ClientIp>` as a handler argument: `None` when no client IP was resolved.
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S: Send + Sync> OptionalFromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<ClientIp>().cloned())
    }
}
