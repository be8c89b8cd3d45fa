//! The audit event: one `tracing` event per attempt, target `tollgate::audit`.

use std::time::Instant;

use http::{Method, Response, StatusCode};
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
    match result {
        Ok(response) => record_status(provider, method, path, attempt, started, response.status()),
        Err(error) => record_error(
            provider,
            method,
            path,
            attempt,
            started,
            attempt_kind(&**error),
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
    record_error(provider, method, path, attempt, started, "abandoned");
}

/// The audit event of one answered attempt (target [`AUDIT_TARGET`], INFO, message
/// `provider call`): `provider`, `method`, `path`, `status`, `attempt`, `latency_ms` since
/// `started`. Pass the URI's path only, never its query; no header value is logged.
///
/// Public so that other transports (tollgate-reqwest) log exactly the same event.
pub fn record_status(
    provider: &'static str,
    method: &Method,
    path: &str,
    attempt: u32,
    started: Instant,
    status: StatusCode,
) {
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        target: AUDIT_TARGET,
        provider,
        method = %method,
        path = %path,
        status = status.as_u16(),
        attempt,
        latency_ms,
        "provider call"
    );
}

/// The audit event of one failed attempt: as [`record_status`], with `error` (a fixed kind
/// such as `connect`, `connect_timeout`, `attempt_timeout`, `certificate`, `tls`,
/// `transport`, `refused`, `abandoned`) instead of `status`.
pub fn record_error(
    provider: &'static str,
    method: &Method,
    path: &str,
    attempt: u32,
    started: Instant,
    error: &'static str,
) {
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        target: AUDIT_TARGET,
        provider,
        method = %method,
        path = %path,
        error,
        attempt,
        latency_ms,
        "provider call"
    );
}
