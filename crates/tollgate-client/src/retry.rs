//! [`RetryPolicy`]: which calls are retried, how often, and how long to wait.

use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode};
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
/// | `502`, `503`, `504`, `429` | idempotent methods (`GET`, `HEAD`, `OPTIONS`, `PUT`, `DELETE`, `TRACE`) and requests carrying one non-blank value of the [idempotency key](RetryPolicy::idempotency_key) header |
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
    /// like idempotent ones, whatever their method. Only one non-blank value counts: an
    /// empty or whitespace-only key, or several values, cannot tell two attempts' effects
    /// apart, so such a request is retried only as its method allows.
    pub fn idempotency_key(mut self, header: HeaderName) -> Self {
        self.idempotency_key = Some(header);
        self
    }

    /// The idempotency-key header, if one is configured.
    pub fn idempotency_key_header(&self) -> Option<&HeaderName> {
        self.idempotency_key.as_ref()
    }

    /// The most attempts per call.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a retry is safe for `request` when it may have been sent: an idempotent
    /// method, or the idempotency key header.
    fn may_resend(&self, method: &Method, headers: &HeaderMap) -> bool {
        let idempotent = matches!(
            *method,
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
                .is_some_and(|name| is_one_key(headers, name))
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

/// The time to the next whole multiple of `tick` since the Unix epoch, plus a millisecond:
/// the wait of [`ClientBuilder::signed_time_resolution`](crate::ClientBuilder::signed_time_resolution)
/// before a retry, so that a time-signed retry never repeats the previous attempt's
/// timestamp. A zero `tick` counts as one nanosecond.
pub fn until_next_tick(tick: Duration) -> Duration {
    let tick_nanos = tick.as_nanos().max(1);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let left = tick_nanos - now % tick_nanos;
    Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX)) + Duration::from_millis(1)
}

/// The decision for one attempt's outcome, before timing is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The answer: return it.
    Final,
    /// Retry after the backoff, or at least `retry_after` when given.
    Retry { retry_after: Option<Duration> },
}

/// What became of one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome<'a> {
    /// A response arrived.
    Response {
        status: StatusCode,
        headers: &'a HeaderMap,
    },
    /// Nothing was sent: the TCP connection was refused, reset or timed out while connecting.
    NotSent,
    /// The request may have been sent, then the attempt failed (a transport error after
    /// connecting, or the attempt timeout).
    Failed,
    /// Never retried: a refused certificate, a failed TLS handshake, a non-https URI, a
    /// layer's refusal.
    Refused,
}

/// What to do after an attempt, from its outcome alone.
pub(crate) fn judge<B, ResBody>(
    policy: &RetryPolicy,
    request: &Request<B>,
    result: &Result<Response<ResBody>, BoxError>,
    now: SystemTime,
) -> Verdict {
    let outcome = match result {
        Ok(response) => Outcome::Response {
            status: response.status(),
            headers: response.headers(),
        },
        Err(error) => match error.downcast_ref::<AttemptError>() {
            // A layer's refusal (or the deadline): never retried.
            None => Outcome::Refused,
            Some(attempt) if attempt.is_connect_retryable() => Outcome::NotSent,
            Some(AttemptError::Transport(error)) if ConnectError::find(&**error).is_some() => {
                Outcome::Refused
            }
            Some(_) => Outcome::Failed,
        },
    };
    verdict(policy, request.method(), request.headers(), outcome, now)
}

/// The statuses a retry may follow (for a request that may be resent): 502, 503, 504, 429.
fn retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
            | StatusCode::TOO_MANY_REQUESTS
    )
}

/// What to do after an attempt of a `method` request with `headers` ended in `outcome`.
fn verdict(
    policy: &RetryPolicy,
    method: &Method,
    headers: &HeaderMap,
    outcome: Outcome<'_>,
    now: SystemTime,
) -> Verdict {
    match outcome {
        Outcome::Response {
            status,
            headers: response_headers,
        } => {
            if !retryable_status(status) || !policy.may_resend(method, headers) {
                return Verdict::Final;
            }
            let retry_after = if matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) {
                retry_after(response_headers, now)
            } else {
                None
            };
            match retry_after {
                Some(wait) if wait > policy.max_retry_after => Verdict::Final,
                retry_after => Verdict::Retry { retry_after },
            }
        }
        Outcome::NotSent => Verdict::Retry { retry_after: None },
        Outcome::Refused => Verdict::Final,
        Outcome::Failed => {
            if policy.may_resend(method, headers) {
                Verdict::Retry { retry_after: None }
            } else {
                Verdict::Final
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
        // The usual answer, decided without reading the clocks.
        if let Ok(response) = result
            && !retryable_status(response.status())
        {
            return None;
        }
        let wait = self.wait_for(next, judge(self, request, result, SystemTime::now()))?;
        match Instant::now().checked_add(wait) {
            // The wait would outlast the call: the outcome we have is the answer.
            Some(end) if end < deadline => Some(wait),
            _ => None,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `next` (2 for the first retry) after attempt `next - 1` of a
    /// `method` request carrying `request_headers` was answered with `status` and
    /// `response_headers`; `None` when that response is the answer (no attempt left, a status
    /// or method that is not retried, a `Retry-After` over
    /// [`max_retry_after`](RetryPolicy::max_retry_after)).
    ///
    /// The rules of the type's table and its backoff, for HTTP clients other than
    /// tollgate's own (tollgate-reqwest); the caller enforces any deadline of its own.
    ///
    /// ```
    /// use http::{HeaderMap, Method, StatusCode};
    /// use tollgate_client::RetryPolicy;
    ///
    /// let policy = RetryPolicy::new(2);
    /// let none = HeaderMap::new();
    /// assert!(policy.retry_after_response(2, &Method::GET, &none, StatusCode::SERVICE_UNAVAILABLE, &none).is_some());
    /// // No attempt left, a POST without the idempotency key, a final status.
    /// assert!(policy.retry_after_response(3, &Method::GET, &none, StatusCode::SERVICE_UNAVAILABLE, &none).is_none());
    /// assert!(policy.retry_after_response(2, &Method::POST, &none, StatusCode::SERVICE_UNAVAILABLE, &none).is_none());
    /// assert!(policy.retry_after_response(2, &Method::GET, &none, StatusCode::NOT_FOUND, &none).is_none());
    /// ```
    pub fn retry_after_response(
        &self,
        next: u32,
        method: &Method,
        request_headers: &HeaderMap,
        status: StatusCode,
        response_headers: &HeaderMap,
    ) -> Option<Duration> {
        let outcome = Outcome::Response {
            status,
            headers: response_headers,
        };
        self.wait_for(
            next,
            verdict(self, method, request_headers, outcome, SystemTime::now()),
        )
    }

    /// The wait before attempt `next` (2 for the first retry) after attempt `next - 1` of a
    /// `method` request carrying `request_headers` failed without a response: `sent` is
    /// `false` when nothing was sent (the TCP connection was refused, reset or timed out while
    /// connecting: retried for any method), `true` when the request may have been sent (a
    /// transport error after connecting, or the attempt timeout: retried for idempotent
    /// methods and the idempotency key). `None` when no attempt is left or the failure is not
    /// retried. Failures never retried (a refused certificate, a failed TLS handshake, a
    /// layer's refusal) are not asked about.
    ///
    /// ```
    /// use http::{HeaderMap, Method};
    /// use tollgate_client::RetryPolicy;
    ///
    /// let policy = RetryPolicy::new(3);
    /// let none = HeaderMap::new();
    /// assert!(policy.retry_after_failure(2, &Method::POST, &none, false).is_some());
    /// assert!(policy.retry_after_failure(2, &Method::POST, &none, true).is_none());
    /// assert!(policy.retry_after_failure(2, &Method::GET, &none, true).is_some());
    /// ```
    pub fn retry_after_failure(
        &self,
        next: u32,
        method: &Method,
        request_headers: &HeaderMap,
        sent: bool,
    ) -> Option<Duration> {
        let outcome = if sent {
            Outcome::Failed
        } else {
            Outcome::NotSent
        };
        self.wait_for(
            next,
            verdict(self, method, request_headers, outcome, SystemTime::now()),
        )
    }

    /// The wait a `verdict` on attempt `next - 1` asks for: the backoff, at least the
    /// `Retry-After`; `None` when the outcome is the answer or no attempt is left.
    fn wait_for(&self, next: u32, verdict: Verdict) -> Option<Duration> {
        if next > self.max_attempts || next < 2 {
            return None;
        }
        let retry_after = match verdict {
            Verdict::Final => return None,
            Verdict::Retry { retry_after } => retry_after,
        };
        let backoff = self.backoff_for(next - 1, random_u64());
        Some(retry_after.map_or(backoff, |at_least| at_least.max(backoff)))
    }
}

/// Whether `headers` carry exactly one value of `name` with something in it.
fn is_one_key(headers: &HeaderMap, name: &HeaderName) -> bool {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => !value.as_bytes().trim_ascii().is_empty(),
        _ => false,
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
        // A blank key, or two, tell nothing apart: the POST is not resent.
        for values in [&[""][..], &[" \t"], &["order-1", "order-2"]] {
            let mut post = request(Method::POST);
            for value in values {
                post.headers_mut()
                    .append("idempotency-key", HeaderValue::from_static(value));
            }
            assert_eq!(
                judge(&policy, &post, &response(503, None), now),
                Verdict::Final,
                "{values:?}"
            );
        }
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
    fn public_rules_are_the_same_rules() {
        let policy = RetryPolicy::new(3)
            .backoff(Duration::from_millis(10), Duration::from_millis(10))
            .idempotency_key(HeaderName::from_static("idempotency-key"));
        let none = HeaderMap::new();
        let mut keyed = HeaderMap::new();
        keyed.insert("idempotency-key", HeaderValue::from_static("k"));
        let mut later = HeaderMap::new();
        later.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        let wait = policy
            .retry_after_response(
                2,
                &Method::GET,
                &none,
                StatusCode::SERVICE_UNAVAILABLE,
                &none,
            )
            .unwrap();
        assert!(wait >= Duration::from_millis(5) && wait <= Duration::from_millis(10));
        assert_eq!(
            policy.retry_after_response(
                2,
                &Method::GET,
                &none,
                StatusCode::TOO_MANY_REQUESTS,
                &later
            ),
            Some(Duration::from_secs(1))
        );
        assert!(
            policy
                .retry_after_response(2, &Method::POST, &keyed, StatusCode::BAD_GATEWAY, &none)
                .is_some()
        );
        assert!(
            policy
                .retry_after_response(2, &Method::POST, &none, StatusCode::BAD_GATEWAY, &none)
                .is_none()
        );
        assert!(
            policy
                .retry_after_response(4, &Method::GET, &none, StatusCode::BAD_GATEWAY, &none)
                .is_none()
        );
        assert!(
            policy
                .retry_after_response(1, &Method::GET, &none, StatusCode::BAD_GATEWAY, &none)
                .is_none()
        );
        assert!(
            policy
                .retry_after_failure(3, &Method::POST, &none, false)
                .is_some()
        );
        assert!(
            policy
                .retry_after_failure(4, &Method::POST, &none, false)
                .is_none()
        );
        assert!(
            policy
                .retry_after_failure(2, &Method::POST, &none, true)
                .is_none()
        );
        assert!(
            policy
                .retry_after_failure(2, &Method::POST, &keyed, true)
                .is_some()
        );
        assert!(
            policy
                .retry_after_failure(2, &Method::PUT, &none, true)
                .is_some()
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
