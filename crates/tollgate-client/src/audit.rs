//! The audit event: one `tracing` event per attempt, target `tollgate::audit`.

use std::time::Instant;

use http::{Method, Response};
use tollgate_core::BoxError;

use crate::error::attempt_kind;

/// The target of the audit events.
pub const AUDIT_TARGET: &str = "tollgate::audit";

/// Logs one attempt after it ends: provider, method, path (never the query), status or error
/// kind, attempt, latency since `started`. Never a header value.
pub(crate) fn record<ResBody>(
    provider: &'static str,
    method: &Method,
    path: &str,
    attempt: u32,
    started: Instant,
    result: &Result<Response<ResBody>, BoxError>,
) {
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Ok(response) => tracing::info!(
            target: AUDIT_TARGET,
            provider,
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            attempt,
            latency_ms,
            "provider call"
        ),
        Err(error) => tracing::info!(
            target: AUDIT_TARGET,
            provider,
            method = %method,
            path = %path,
            error = attempt_kind(&**error),
            attempt,
            latency_ms,
            "provider call"
        ),
    }
}

/// Logs an attempt whose future was dropped before it ended (the call's deadline passed, or
/// the caller went away): `error="abandoned"`. It may have reached the provider.
pub(crate) fn abandoned(
    provider: &'static str,
    method: &Method,
    path: &str,
    attempt: u32,
    started: Instant,
) {
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        target: AUDIT_TARGET,
        provider,
        method = %method,
        path = %path,
        error = "abandoned",
        attempt,
        latency_ms,
        "provider call"
    );
}
