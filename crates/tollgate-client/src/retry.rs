//! [`RetryPolicy`]: which calls are retried, how often, and how long to wait; and the
//! `tower::retry::Policy` that applies it.

use std::time::{Duration, Instant, SystemTime};

use http::{HeaderName, Method, Request, Response, StatusCode};
use tollgate_core::{BoxError, BufferedBody};
use tollgate_https::ConnectError;

use crate::AttemptError;
use crate::retry_after::retry_after;

/// The default number of attempts: 3 (the first and two retries).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The default backoff base: 100 ms.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(100);
/// The default backoff cap: 2 s.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// The default longest `Retry-After` honoured: 30 s.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Which failed attempts are tried again, how many times, and how long to wait in between.
///
/// What is retried (whatever the policy, only while attempts remain and the wait ends before
/// the call's deadline):
///
/// | outcome of an attempt | retried for |
/// | --- | --- |
/// | the TCP connection was refused, reset or timed out while connecting (nothing sent) | any method |
/// | `502`, `503`, `504`, `429` | idempotent methods (`GET`, `HEAD`, `OPTIONS`, `PUT`, `DELETE`, `TRACE`) and requests carrying the [idempotency key](RetryPolicy::idempotency_key) header |
/// | a transport error after connecting, or the attempt timeout | the same |
/// | a refused certificate, a failed TLS handshake, a non-https URI | never |
/// | a refusal by one of the provider's layers (signing, pinning, ...) | never |
/// | any other response | never: it is the answer |
///
/// The wait before retry *n* is a capped exponential backoff with **equal jitter**: with
/// `cap = min(max, base × 2ⁿ⁻¹)`, a uniformly random wait in `[cap / 2, cap]`. Half the wait is
/// guaranteed (the provider gets room to recover), half is random (clients that failed
/// together do not retry together). On `429` and `503`, a `Retry-After` (delta-seconds or an
/// HTTP-date) is honoured: the wait is at least that long; a `Retry-After` longer than
/// [`max_retry_after`](RetryPolicy::max_retry_after), or one that would end after the
/// deadline, ends retrying and the response is returned as it is.
///
/// The default, [`RetryPolicy::default`], is 3 attempts, backoff from 100 ms up to 2 s,
/// `Retry-After` up to 30 s, no idempotency key header.
///
/// ```
/// use std::time::Duration;
/// use http::HeaderName;
/// use tollgate_client::RetryPolicy;
///
/// let policy = RetryPolicy::new(4)
///     .backoff(Duration::from_millis(200), Duration::from_secs(5))
///     .max_retry_after(Duration::from_secs(10))
///     .idempotency_key(HeaderName::from_static("idempotency-key"));
/// assert_eq!(policy.max_attempts(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct RetryPolicy {
    max_attempts: u32,
    base: Duration,
    max: Duration,
    max_retry_after: Duration,
    idempotency_key: Option<HeaderName>,
}

impl RetryPolicy {
    /// At most `max_attempts` attempts per call (the first one included): `1` is no retry;
    /// `0` is refused when the client is built ([`ConfigError::ZeroAttempts`](crate::ConfigError::ZeroAttempts)).
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            base: DEFAULT_BACKOFF_BASE,
            max: DEFAULT_BACKOFF_MAX,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            idempotency_key: None,
        }
    }

    /// One attempt, never a retry.
    pub fn none() -> Self {
        Self::new(1)
    }

    /// The backoff: `base` for the first retry, doubling up to `max` (see the type's docs for
    /// the jitter). A `base` over `max` is `max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base = base.min(max);
        self.max = max;
        self
    }

    /// The longest `Retry-After` waited for; a longer one ends retrying and its response is
    /// returned.
    pub fn max_retry_after(mut self, longest: Duration) -> Self {
        self.max_retry_after = longest;
        self
    }

    /// Requests carrying `header` (the provider's documented idempotency key) are retried
    /// like idempotent ones, whatever their method.
    pub fn idempotency_key(mut self, header: HeaderName) -> Self {
        self.idempotency_key = Some(header);
        self
    }

    /// The most attempts per call.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a retry is safe for `request` when it may have been sent: an idempotent
    /// method, or the idempotency key header.
    fn may_resend<B>(&self, request: &Request<B>) -> bool {
        let idempotent = matches!(
            *request.method(),
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::PUT
                | Method::DELETE
                | Method::TRACE
        );
        idempotent
            || self
                .idempotency_key
                .as_ref()
                .is_some_and(|name| request.headers().contains_key(name))
    }

    /// The wait before the retry that follows attempt `failed` (1-based): equal jitter over
    /// the capped exponential.
    pub(crate) fn backoff_for(&self, failed: u32, random: u64) -> Duration {
        let exponent = failed.saturating_sub(1).min(31);
        let cap = self
            .base
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max)
            .min(self.max);
        let half = cap / 2;
        let spread = u64::try_from((cap - half).as_nanos()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            random % spread.saturating_add(1)
        };
        half + Duration::from_nanos(jitter)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ATTEMPTS)
    }
}

/// The decision for one attempt's outcome, before timing is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The answer: return it.
    Final,
    /// Retry after the backoff, or at least `retry_after` when given.
    Retry { retry_after: Option<Duration> },
}

/// What to do after an attempt, from its outcome alone.
pub(crate) fn judge<B, ResBody>(
    policy: &RetryPolicy,
    request: &Request<B>,
    result: &Result<Response<ResBody>, BoxError>,
    now: SystemTime,
) -> Verdict {
    match result {
        Ok(response) => {
            let status = response.status();
            let retryable = matches!(
                status,
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
                    | StatusCode::TOO_MANY_REQUESTS
            );
            if !retryable || !policy.may_resend(request) {
                return Verdict::Final;
            }
            let retry_after = if matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) {
                retry_after(response.headers(), now)
            } else {
                None
            };
            match retry_after {
                Some(wait) if wait > policy.max_retry_after => Verdict::Final,
                retry_after => Verdict::Retry { retry_after },
            }
        }
        Err(error) => {
            let Some(attempt) = error.downcast_ref::<AttemptError>() else {
                // A layer's refusal (or the deadline): never retried.
                return Verdict::Final;
            };
            if attempt.is_connect_retryable() {
                return Verdict::Retry { retry_after: None };
            }
            let refused_before_sending = match attempt {
                AttemptError::Transport(error) => ConnectError::find(&**error).is_some(),
                AttemptError::Timeout { .. } => false,
            };
            if refused_before_sending || !policy.may_resend(request) {
                Verdict::Final
            } else {
                Verdict::Retry { retry_after: None }
            }
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `next` (2 for the first retry) after `result`, the outcome of
    /// attempt `next - 1` of `request`; `None` when `result` is the answer: no attempt left,
    /// not retryable, or a wait that would not end before `deadline`.
    pub(crate) fn wait_before<ResBody>(
        &self,
        next: u32,
        request: &Request<BufferedBody>,
        result: &Result<Response<ResBody>, BoxError>,
        deadline: Instant,
    ) -> Option<Duration> {
        if next > self.max_attempts {
            return None;
        }
        let retry_after = match judge(self, request, result, SystemTime::now()) {
            Verdict::Final => return None,
            Verdict::Retry { retry_after } => retry_after,
        };
        let backoff = self.backoff_for(next - 1, random_u64());
        let wait = retry_after.map_or(backoff, |at_least| at_least.max(backoff));
        match Instant::now().checked_add(wait) {
            // The wait would outlast the call: the outcome we have is the answer.
            Some(end) if end < deadline => Some(wait),
            _ => None,
        }
    }
}

/// Randomness for the jitter. It needs to differ between clients and calls, not to be secret:
/// std's `RandomState` (keys seeded from the OS once per thread, then advanced for every new
/// state) gives that with no dependency.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn request(method: Method) -> Request<()> {
        Request::builder().method(method).body(()).unwrap()
    }

    fn response(status: u16, retry_after: Option<&'static str>) -> Result<Response<()>, BoxError> {
        let mut response = Response::builder().status(status).body(()).unwrap();
        if let Some(value) = retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static(value));
        }
        Ok(response)
    }

    #[test]
    fn statuses_and_methods() {
        let policy = RetryPolicy::default();
        let now = SystemTime::now();
        for status in [502, 503, 504, 429] {
            assert_eq!(
                judge(&policy, &request(Method::GET), &response(status, None), now),
                Verdict::Retry { retry_after: None },
                "{status}"
            );
            assert_eq!(
                judge(
                    &policy,
                    &request(Method::POST),
                    &response(status, None),
                    now
                ),
                Verdict::Final,
                "{status}"
            );
            assert_eq!(
                judge(
                    &policy,
                    &request(Method::PATCH),
                    &response(status, None),
                    now
                ),
                Verdict::Final,
                "{status}"
            );
        }
        for status in [200, 400, 401, 404, 409, 500, 501] {
            assert_eq!(
                judge(&policy, &request(Method::GET), &response(status, None), now),
                Verdict::Final,
                "{status}"
            );
        }
        for method in [
            Method::HEAD,
            Method::OPTIONS,
            Method::PUT,
            Method::DELETE,
            Method::TRACE,
        ] {
            assert_eq!(
                judge(&policy, &request(method), &response(503, None), now),
                Verdict::Retry { retry_after: None }
            );
        }
    }

    #[test]
    fn idempotency_key_makes_any_method_retryable() {
        let policy =
            RetryPolicy::default().idempotency_key(HeaderName::from_static("idempotency-key"));
        let mut post = request(Method::POST);
        let now = SystemTime::now();
        assert_eq!(
            judge(&policy, &post, &response(503, None), now),
            Verdict::Final
        );
        post.headers_mut()
            .insert("Idempotency-Key", HeaderValue::from_static("order-1"));
        assert_eq!(
            judge(&policy, &post, &response(503, None), now),
            Verdict::Retry { retry_after: None }
        );
    }

    #[test]
    fn retry_after_is_read_on_429_and_503_only() {
        let policy = RetryPolicy::default();
        let get = request(Method::GET);
        let now = SystemTime::now();
        let two = Some(Duration::from_secs(2));
        assert_eq!(
            judge(&policy, &get, &response(429, Some("2")), now),
            Verdict::Retry { retry_after: two }
        );
        assert_eq!(
            judge(&policy, &get, &response(503, Some("2")), now),
            Verdict::Retry { retry_after: two }
        );
        assert_eq!(
            judge(&policy, &get, &response(502, Some("2")), now),
            Verdict::Retry { retry_after: None }
        );
        // Longer than max_retry_after: the response is the answer.
        assert_eq!(
            judge(&policy, &get, &response(429, Some("31")), now),
            Verdict::Final
        );
        assert_eq!(
            judge(&policy, &get, &response(429, Some("30")), now),
            Verdict::Retry {
                retry_after: Some(Duration::from_secs(30))
            }
        );
    }

    #[test]
    fn errors() {
        let policy = RetryPolicy::default();
        let now = SystemTime::now();
        let connect = |error: ConnectError| -> Result<Response<()>, BoxError> {
            Err(Box::new(AttemptError::Transport(Box::new(error))))
        };
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        // Nothing sent: any method.
        assert_eq!(
            judge(
                &policy,
                &request(Method::POST),
                &connect(ConnectError::Connect(Box::new(refused))),
                now
            ),
            Verdict::Retry { retry_after: None }
        );
        assert_eq!(
            judge(
                &policy,
                &request(Method::POST),
                &connect(ConnectError::Timeout {
                    after: Duration::from_secs(1)
                }),
                now
            ),
            Verdict::Retry { retry_after: None }
        );
        // Never.
        for error in [
            ConnectError::Certificate {
                reason: "expired".into(),
            },
            ConnectError::Tls {
                reason: "alert".into(),
            },
            ConnectError::NotHttps {
                scheme: "http".into(),
            },
            ConnectError::MissingHost,
        ] {
            assert_eq!(
                judge(&policy, &request(Method::GET), &connect(error), now),
                Verdict::Final
            );
        }
        // Maybe sent: idempotent only.
        let timeout: Result<Response<()>, BoxError> = Err(Box::new(AttemptError::Timeout {
            after: Duration::from_secs(1),
        }));
        assert_eq!(
            judge(&policy, &request(Method::GET), &timeout, now),
            Verdict::Retry { retry_after: None }
        );
        assert_eq!(
            judge(&policy, &request(Method::POST), &timeout, now),
            Verdict::Final
        );
        let reset: Result<Response<()>, BoxError> = Err(Box::new(AttemptError::Transport(
            Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        )));
        assert_eq!(
            judge(&policy, &request(Method::GET), &reset, now),
            Verdict::Retry { retry_after: None }
        );
        assert_eq!(
            judge(&policy, &request(Method::POST), &reset, now),
            Verdict::Final
        );
        // A layer's refusal: never.
        let refusal: Result<Response<()>, BoxError> = Err("cannot sign".into());
        assert_eq!(
            judge(&policy, &request(Method::GET), &refusal, now),
            Verdict::Final
        );
    }

    #[test]
    fn jitter_differs_between_calls() {
        let draws: std::collections::HashSet<u64> = (0..16).map(|_| random_u64()).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn backoff_is_capped_exponential_with_equal_jitter() {
        let policy =
            RetryPolicy::default().backoff(Duration::from_millis(100), Duration::from_secs(2));
        for (failed, cap) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1600),
            (6, 2000),
            (40, 2000),
        ] {
            let cap = Duration::from_millis(cap);
            assert_eq!(policy.backoff_for(failed, 0), cap / 2, "attempt {failed}");
            assert_eq!(
                policy.backoff_for(failed, u64::MAX),
                cap / 2
                    + Duration::from_nanos(
                        u64::MAX % (u64::try_from((cap - cap / 2).as_nanos()).unwrap() + 1)
                    )
            );
            for random in [1, 7, 12345, u64::MAX / 3] {
                let wait = policy.backoff_for(failed, random);
                assert!(
                    wait >= cap / 2 && wait <= cap,
                    "{wait:?} for attempt {failed}"
                );
            }
        }
        assert_eq!(
            RetryPolicy::default()
                .backoff(Duration::ZERO, Duration::ZERO)
                .backoff_for(3, 99),
            Duration::ZERO
        );
    }
}
