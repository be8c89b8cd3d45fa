//! The axum extractor for [`ClientIp`] (feature `axum`).

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use tollgate_core::rejection::code;
use tollgate_core::{Rejection, RejectionResponder};

use crate::ClientIp;

/// `ClientIp` as a handler argument failed: no [`ClientIpLayer`](crate::ClientIpLayer) ran
/// before the handler (or it was set to continue and found no IP). Answers 500
/// `client_ip_misconfigured`; take `Option<ClientIp>` to handle the absence yourself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientIpRejection;

impl IntoResponse for ClientIpRejection {
    fn into_response(self) -> Response {
        tracing::error!(
            target: "tollgate",
            "ClientIp extractor used without a ClientIpLayer in front of the handler"
        );
        RejectionResponder::json()
            .respond(Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::CLIENT_IP_MISCONFIGURED,
                "the server cannot determine the client IP",
            ))
            .map(axum::body::Body::from)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ClientIpRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientIp>()
            .cloned()
            .ok_or(ClientIpRejection)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<ClientIp>().cloned())
    }
}
