//! axum extractors for handlers behind [`VerifySignatureLayer`](crate::VerifySignatureLayer)
//! (feature `axum`).
//!
//! # Do not re-encode the JSON
//!
//! A signature covers the exact bytes that were sent. Parsing the body and serialising it
//! again (to log it, store it, forward it or "verify" it) produces *different* bytes:
//! key order, whitespace, `1.0` vs `1`, `\u00e9` vs `é` all change, and the signature no
//! longer matches. Keep the bytes you were given: [`SignedJson`] parses them once and hands you
//! both the value and the original [`Bytes`].
//!
//! ```
//! use axum::{Router, routing::post};
//! use serde::Deserialize;
//! use tollgate_core::{KeyRing, Secret};
//! use tollgate_signature::{BodyHmac, SignedJson, VerifySignatureLayer};
//!
//! #[derive(Deserialize)]
//! struct Notification { id: String }
//!
//! async fn notify(SignedJson { value, bytes, signature }: SignedJson<Notification>) -> String {
//!     // Wrong: serde_json::to_vec(&value) is not what was signed.
//!     // Right: store or forward `bytes`, the verified original.
//!     format!("{} ({} bytes, key {})", value.id, bytes.len(), signature.key_id())
//! }
//!
//! let app: Router = Router::new()
//!     .route("/webhooks", post(notify))
//!     .layer(VerifySignatureLayer::new(
//!         BodyHmac::x_webhook_signature(),
//!         KeyRing::single(Secret::from_string("webhook-secret")),
//!     )?);
//! # let _ = app;
//! # Ok::<(), tollgate_signature::ConfigError>(())
//! ```
//!
//! Without the layer in front, both extractors answer 500 `signature_layer_missing` (a
//! deployment error); [`SignedJson`] answers 400 `json_invalid` when the verified bytes are
//! not JSON of the expected shape. Both codes are in
//! [`tollgate_core::rejection::code`].

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use serde::de::DeserializeOwned;
use tollgate_core::rejection::code;
use tollgate_core::{Rejection, VerifiedSignature};

use crate::VerifiedBody;

/// The verified raw body and the signature that verified it.
///
/// Reads the request extensions, so it does not consume the body and can sit next to other
/// extractors.
///
/// ```
/// use tollgate_signature::SignedBody;
///
/// async fn handler(SignedBody { bytes, signature }: SignedBody) -> String {
///     format!("{} bytes signed by {}", bytes.len(), signature.key_id())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct SignedBody {
    /// The exact body bytes that verified (the same memory the body holds).
    pub bytes: Bytes,
    /// The signature that verified.
    pub signature: VerifiedSignature,
}

/// JSON parsed from the verified raw body, with those bytes and the signature.
///
/// The value is parsed from exactly the bytes that verified; keep `bytes` if you need the
/// payload again (see [the module docs](self) on not re-encoding).
#[derive(Debug, Clone)]
pub struct SignedJson<T> {
    /// The parsed value.
    pub value: T,
    /// The exact body bytes that verified.
    pub bytes: Bytes,
    /// The signature that verified.
    pub signature: VerifiedSignature,
}

/// Why a signed-body extractor failed: a [`Rejection`] answered as tollgate's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBodyRejection(pub Rejection);

impl IntoResponse for SignedBodyRejection {
    fn into_response(self) -> Response {
        self.0.trace();
        self.0.json_response().map(axum::body::Body::from)
    }
}

fn signed_parts(parts: &Parts) -> Result<SignedBody, SignedBodyRejection> {
    match (
        parts.extensions.get::<VerifiedBody>(),
        parts.extensions.get::<VerifiedSignature>(),
    ) {
        (Some(body), Some(signature)) => Ok(SignedBody {
            bytes: body.bytes().clone(),
            signature: signature.clone(),
        }),
        _ => Err(SignedBodyRejection(Rejection::from_code(
            code::SIGNATURE_LAYER_MISSING,
        ))),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SignedBody {
    type Rejection = SignedBodyRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        signed_parts(parts)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for SignedJson<T> {
    type Rejection = SignedBodyRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let SignedBody { bytes, signature } = signed_parts(parts)?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|_| SignedBodyRejection(Rejection::from_code(code::JSON_INVALID)))?;
        Ok(Self {
            value,
            bytes,
            signature,
        })
    }
}
