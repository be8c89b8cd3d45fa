//! The client-side rate limit: one budget shared by every clone of a client and every
//! attempt of every call.
//!
//! tower's `RateLimit` counts per service instance and is not `Clone`: behind clones and
//! retries it would multiply the budget. This is a sliding window instead: the start times of
//! the last `requests` grants are kept (behind a `Mutex`, never held across an `.await`), and
//! a new grant is given the earliest time at which it is at most the `requests`-th in any
//! window of length `per`. A caller waits for its time with `tokio::time::sleep_until`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Request;
use tokio::time::Instant;
use tollgate_core::{BoxError, BufferedBody};
use tower::ServiceExt as _;
use tower_service::Service;

use crate::attempt::CallDeadline;
use crate::error::DeadlineReached;

/// At most `requests` grants in any window of length `per`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    requests: usize,
    per: Duration,
    /// The times of the last (at most) `requests` grants, ascending; some may lie ahead.
    granted: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(requests: u32, per: Duration) -> Self {
        Self {
            requests: usize::try_from(requests).unwrap_or(usize::MAX).max(1),
            per,
            granted: Mutex::new(VecDeque::new()),
        }
    }

    /// Reserves the earliest time a request may start, at `now` or later; `None` (nothing
    /// reserved) when that time is after `latest`.
    pub(crate) fn reserve(&self, now: Instant, latest: Option<Instant>) -> Option<Instant> {
        let mut granted = match self.granted.lock() {
            Ok(granted) => granted,
            // A panic while the lock was held cannot leave the deque inconsistent (every
            // update is one push and one pop): keep going.
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut at = now;
        if let Some(&last) = granted.back() {
            at = at.max(last);
        }
        if granted.len() >= self.requests
            && let Some(&oldest) = granted.front()
        {
            at = at.max(oldest + self.per);
        }
        if latest.is_some_and(|latest| at > latest) {
            return None;
        }
        granted.push_back(at);
        while granted.len() > self.requests {
            granted.pop_front();
        }
        Some(at)
    }
}

/// Waits for the shared rate limiter, then calls the inner service.
#[derive(Clone)]
pub(crate) struct RateLimit<S> {
    pub(crate) inner: S,
    pub(crate) limiter: Arc<RateLimiter>,
}

impl<S, ResBody> Service<Request<BufferedBody>> for RateLimit<S>
where
    S: Service<Request<BufferedBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = BoxError;
    type Future = crate::BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner service's readiness (the concurrency limit) is awaited after the wait.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        let inner = self.inner.clone();
        let limiter = Arc::clone(&self.limiter);
        Box::pin(async move {
            let deadline = request.extensions().get::<CallDeadline>().copied();
            let latest = deadline.map(|deadline| Instant::from_std(deadline.at));
            let Some(at) = limiter.reserve(Instant::now(), latest) else {
                let after = deadline.map_or(Duration::ZERO, |deadline| deadline.after);
                return Err(Box::new(DeadlineReached { after }) as BoxError);
            };
            tokio::time::sleep_until(at).await;
            inner.oneshot(request).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_n_per_window() {
        let limiter = RateLimiter::new(3, Duration::from_secs(1));
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..7)
            .map(|_| limiter.reserve(t0, None).map(|at| at - t0))
            .map(|slot| slot.unwrap_or(Duration::MAX))
            .collect();
        let secs = Duration::from_secs;
        assert_eq!(
            slots,
            [
                secs(0),
                secs(0),
                secs(0),
                secs(1),
                secs(1),
                secs(1),
                secs(2)
            ]
        );
    }

    #[test]
    fn time_passing_frees_the_window() {
        let limiter = RateLimiter::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(limiter.reserve(t0, None), Some(t0));
        let later = t0 + Duration::from_millis(600);
        assert_eq!(limiter.reserve(later, None), Some(later));
        // Third: one second after the first.
        assert_eq!(
            limiter.reserve(later, None),
            Some(t0 + Duration::from_secs(1))
        );
        // Fourth: one second after the second.
        let much_later = t0 + Duration::from_secs(5);
        assert_eq!(limiter.reserve(much_later, None), Some(much_later));
    }

    #[test]
    fn a_slot_past_the_deadline_is_not_reserved() {
        let limiter = RateLimiter::new(1, Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(limiter.reserve(t0, Some(t0)), Some(t0));
        assert_eq!(
            limiter.reserve(t0, Some(t0 + Duration::from_millis(999))),
            None
        );
        // Nothing was reserved by the refusal: the next slot is still at one second.
        assert_eq!(limiter.reserve(t0, None), Some(t0 + Duration::from_secs(1)));
    }
}
