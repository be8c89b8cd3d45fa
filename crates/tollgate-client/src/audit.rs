//! The audit event: one `tracing` event per attempt, target `tollgate::audit`.

use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tollgate_core::{BoxError, BufferedBody};
use tower::util::BoxCloneSyncService;
use tower_service::Service;

use crate::attempt::Attempt;
use crate::error::attempt_kind;

/// The target of the audit events.
pub const AUDIT_TARGET: &str = "tollgate::audit";

/// Logs each attempt after it ends: provider, method, path (never the query), status or
/// error kind, attempt, latency. Never a header value.
pub(crate) struct Audit<ResBody> {
    pub(crate) provider: &'static str,
    pub(crate) inner: BoxCloneSyncService<Request<BufferedBody>, Response<ResBody>, BoxError>,
}

impl<ResBody> Clone for Audit<ResBody> {
    fn clone(&self) -> Self {
        Self {
            provider: self.provider,
            inner: self.inner.clone(),
        }
    }
}

impl<ResBody: 'static> Service<Request<BufferedBody>> for Audit<ResBody> {
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = crate::BoxFuture<Result<Response<ResBody>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        let provider = self.provider;
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let attempt = request
            .extensions()
            .get::<Attempt>()
            .map_or(1, |attempt| attempt.get());
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match &result {
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
            result
        })
    }
}
