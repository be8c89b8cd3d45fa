//! [`RetryMiddleware`]: tollgate-client's retry rules, deadline, limits and audit, for
//! reqwest.

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::{Extensions, Method};
use reqwest_middleware::{Middleware, Next};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tollgate_client::{RateLimiter, RetryPolicy};

use crate::Error;
use crate::adapter::{KeyProbe, without_url};

/// Retries a request by [`RetryPolicy`]'s rules — the rules of tollgate's own provider
/// clients, not a second implementation: `502`, `503`, `504` and `429` for idempotent methods
/// and requests carrying one non-blank value of the idempotency-key header, `Retry-After` honoured up to its limit, a
/// connection refused or reset while connecting for any method, a certificate or TLS failure
/// and a tollgate layer's refusal never; capped exponential backoff with equal jitter.
///
/// Each attempt is a fresh `try_clone` of the request *as the caller made it* and goes through
/// every middleware added after this one: place it before the [`TowerMiddleware`](crate::TowerMiddleware)
/// and every attempt is signed anew (new nonce, time and signature).
/// [`ClientBuilder`](crate::ClientBuilder) and [`client`](crate::client()) do. A request that
/// cannot be cloned (a streaming body) gets one attempt, which tollgate's layers then refuse.
///
/// The rest of tollgate-client's call stack is opt-in, with the same rules and the same code
/// ([`client`](crate::client()) turns each on from a `tollgate_client::ClientBuilder`):
///
/// - [`deadline`](RetryMiddleware::deadline): the whole call, attempts and waits included;
///   a backoff or `Retry-After` that would end after it returns the last answer, a deadline
///   that passes during an attempt fails the call with [`Error::DeadlineExceeded`].
/// - [`rate_limit`](RetryMiddleware::rate_limit) and
///   [`concurrency_limit`](RetryMiddleware::concurrency_limit): per attempt, shared by every
///   clone of the middleware (and of the `ClientWithMiddleware` holding it). A rate-limit slot
///   after the deadline fails the call at once with [`Error::DeadlineExceeded`].
/// - [`signed_time_resolution`](RetryMiddleware::signed_time_resolution): a retry waits for
///   the next tick of that clock before running the layers again.
/// - [`audit`](RetryMiddleware::audit): one event per attempt, target
///   [`tollgate_client::AUDIT_TARGET`], the fields of tollgate-client's.
/// - [`max_request_body`](RetryMiddleware::max_request_body): a longer body is refused with
///   [`Error::BodyTooLarge`], unsent.
#[derive(Debug, Clone)]
#[must_use]
pub struct RetryMiddleware {
    policy: RetryPolicy,
    deadline: Option<Duration>,
    tick: Option<Duration>,
    rate: Option<Arc<RateLimiter>>,
    concurrency: Option<Arc<Semaphore>>,
    provider: Option<&'static str>,
    max_request_body: Option<usize>,
}

impl RetryMiddleware {
    /// Retries by `policy`; no deadline, limit, audit or body limit.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            deadline: None,
            tick: None,
            rate: None,
            concurrency: None,
            provider: None,
            max_request_body: None,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// How long a whole call may take, every attempt and wait included.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Each retry starts in a new tick of a clock of this resolution (one second for signed
    /// Unix-seconds timestamps), before its rate-limit slot is taken.
    pub fn signed_time_resolution(mut self, tick: Duration) -> Self {
        self.tick = Some(tick);
        self
    }

    /// At most `requests` attempts start in any window of `per`, across every clone
    /// (tollgate-client's [`RateLimiter`]).
    pub fn rate_limit(mut self, requests: u32, per: Duration) -> Self {
        self.rate = Some(Arc::new(RateLimiter::new(requests, per)));
        self
    }

    /// At most `max` attempts in flight at once, across every clone.
    pub fn concurrency_limit(mut self, max: usize) -> Self {
        self.concurrency = Some(Arc::new(Semaphore::new(max)));
        self
    }

    /// One audit event per attempt, naming `provider`.
    pub fn audit(mut self, provider: &'static str) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Refuses a body longer than `bytes` ([`Error::BodyTooLarge`]).
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        self.max_request_body = Some(bytes);
        self
    }

    /// Every attempt of `request`; the waits between them end before `end`.
    async fn attempts(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        end: Option<Instant>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let mut attempt: u32 = 1;
        // With an idempotency key configured: whether it went out (a layer may strip it).
        let probe = self.policy.idempotency_key_header().map(|name| KeyProbe {
            name: name.clone(),
            stripped: std::sync::Arc::default(),
        });
        if let Some(probe) = &probe {
            extensions.insert(probe.clone());
        }
        let mut request = request;
        loop {
            // The last attempt sends the request itself: no copy is kept for a retry.
            if attempt >= self.policy.max_attempts() {
                return self.attempt(request, attempt, extensions, next, end).await;
            }
            let Some(copy) = request.try_clone() else {
                return self.attempt(request, attempt, extensions, next, end).await;
            };
            let result = self
                .attempt(copy, attempt, extensions, next.clone(), end)
                .await;
            let following = attempt.saturating_add(1);
            if let Some(probe) = &probe
                && probe.was_stripped()
            {
                // The provider never saw the key: the retry rules must not count on it.
                request.headers_mut().remove(&probe.name);
            }
            let wait = match &result {
                Ok(response) => self.policy.retry_after_response(
                    following,
                    request.method(),
                    request.headers(),
                    response.status(),
                    response.headers(),
                ),
                Err(reqwest_middleware::Error::Reqwest(error)) => sent(error).and_then(|sent| {
                    self.policy.retry_after_failure(
                        following,
                        request.method(),
                        request.headers(),
                        sent,
                    )
                }),
                // A tollgate layer's refusal, or another middleware's error: never retried.
                Err(reqwest_middleware::Error::Middleware(_)) => None,
            };
            let Some(wait) = wait else {
                return result;
            };
            let wait = match self.tick {
                Some(tick) => wait.max(tollgate_client::until_next_tick(tick)),
                None => wait,
            };
            if let Some(end) = end
                && Instant::now().checked_add(wait).is_none_or(|at| at >= end)
            {
                return result;
            }
            drop(result);
            tokio::time::sleep(wait).await;
            attempt = following;
        }
    }

    /// One attempt: a concurrency permit, a rate-limit slot, then the rest of the chain,
    /// audited.
    async fn attempt(
        &self,
        request: reqwest::Request,
        attempt: u32,
        extensions: &mut Extensions,
        next: Next<'_>,
        end: Option<Instant>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        // The semaphore is never closed; were it, the attempt would go on unlimited.
        let _permit = match &self.concurrency {
            Some(semaphore) => semaphore.acquire().await.ok(),
            None => None,
        };
        if let Some(limiter) = &self.rate {
            let now = Instant::now();
            let Some(at) = limiter.reserve(now, end) else {
                return Err(Error::DeadlineExceeded {
                    after: self.deadline.unwrap_or_default(),
                }
                .into());
            };
            if at > now {
                tokio::time::sleep_until(at).await;
            }
        }
        let Some(provider) = self.provider else {
            return next.run(request, extensions).await;
        };
        let mut pending = PendingAudit {
            provider,
            method: request.method().clone(),
            path: request.url().path().to_owned(),
            attempt,
            started: std::time::Instant::now(),
            done: false,
        };
        let result = next.run(request, extensions).await;
        pending.done = true;
        match &result {
            Ok(response) => tollgate_client::record_status(
                provider,
                &pending.method,
                &pending.path,
                attempt,
                pending.started,
                response.status(),
            ),
            Err(error) => tollgate_client::record_error(
                provider,
                &pending.method,
                &pending.path,
                attempt,
                pending.started,
                error_kind(error),
            ),
        }
        result
    }
}

/// The audit event of an attempt in flight: logged as `abandoned` if its future is dropped
/// (the deadline, or the caller went away).
struct PendingAudit {
    provider: &'static str,
    method: Method,
    path: String,
    attempt: u32,
    started: std::time::Instant,
    done: bool,
}

impl Drop for PendingAudit {
    fn drop(&mut self) {
        if !self.done {
            tollgate_client::record_error(
                self.provider,
                &self.method,
                &self.path,
                self.attempt,
                self.started,
                "abandoned",
            );
        }
    }
}

/// The audit `error` of a failed attempt, with tollgate-client's names.
fn error_kind(error: &reqwest_middleware::Error) -> &'static str {
    match error {
        reqwest_middleware::Error::Middleware(_) => "refused",
        reqwest_middleware::Error::Reqwest(error) => {
            if error.is_timeout() {
                if error.is_connect() {
                    "connect_timeout"
                } else {
                    "attempt_timeout"
                }
            } else if error.is_connect() {
                if tcp_failure(error) {
                    "connect"
                } else if certificate_failure(error) {
                    "certificate"
                } else {
                    "tls"
                }
            } else {
                "transport"
            }
        }
    }
}

/// Whether the chain holds rustls's refusal of the server's certificate (an invalid one, or
/// none at all), as tollgate-https's `ConnectError::Certificate` sorts it. An `io::Error`'s
/// `source` skips the error it wraps, so the chain goes through `get_ref` there.
fn certificate_failure(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(cause) = current {
        if cause.downcast_ref::<rustls::Error>().is_some_and(|error| {
            matches!(
                error,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        }) {
            return true;
        }
        current = match cause.downcast_ref::<io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => cause.source(),
        };
    }
    false
}

/// How a transport error ended an attempt: `Some(false)` nothing was sent (refused, reset or
/// timed out while connecting), `Some(true)` it may have been sent, `None` never retried (a
/// certificate or TLS failure, a request reqwest would not build or redirect).
fn sent(error: &reqwest::Error) -> Option<bool> {
    if error.is_connect() {
        if error.is_timeout() || tcp_failure(error) {
            return Some(false);
        }
        return None;
    }
    if error.is_timeout() || error.is_request() {
        return Some(true);
    }
    None
}

/// Whether the chain holds an I/O error of the TCP connection itself.
fn tcp_failure(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::TimedOut
            );
        }
        current = cause.source();
    }
    false
}

#[async_trait::async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if let Some(limit) = self.max_request_body
            && request
                .body()
                .and_then(reqwest::Body::as_bytes)
                .is_some_and(|bytes| bytes.len() > limit)
        {
            return Err(Error::BodyTooLarge { limit }.into());
        }
        // A deadline too far to represent is no deadline.
        let Some((after, end)) = self
            .deadline
            .and_then(|after| Some((after, Instant::now().checked_add(after)?)))
        else {
            return self
                .attempts(request, extensions, next, None)
                .await
                .map_err(without_url);
        };
        match tokio::time::timeout_at(end, self.attempts(request, extensions, next, Some(end)))
            .await
        {
            Ok(result) => result.map_err(without_url),
            Err(_elapsed) => Err(Error::DeadlineExceeded { after }.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain tokio-rustls and hyper build: rustls's error inside an `io::Error` inside
    /// another error.
    #[derive(Debug)]
    struct Outer(io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    fn wrapped(error: rustls::Error) -> Outer {
        Outer(io::Error::new(io::ErrorKind::InvalidData, error))
    }

    #[test]
    fn a_refused_or_missing_certificate_is_a_certificate_failure() {
        let expired = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert!(certificate_failure(&wrapped(expired)));
        assert!(certificate_failure(&wrapped(
            rustls::Error::NoCertificatesPresented
        )));
        assert!(!certificate_failure(&wrapped(
            rustls::Error::HandshakeNotComplete
        )));
        assert!(!certificate_failure(&io::Error::from(
            io::ErrorKind::ConnectionRefused
        )));
    }
}
