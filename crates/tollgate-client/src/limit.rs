//! The client-side rate limit: one budget shared by every clone of a client and every
//! attempt of every call.
//!
//! tower's `RateLimit` counts per service instance and is not `Clone`: behind clones and
//! retries it would multiply the budget. This is a sliding window instead: the start times of
//! the last `requests` grants are kept (behind a `Mutex`, never held across an `.await`), and
//! a new grant is given the earliest time at which it is at most the `requests`-th in any
//! window of length `per`. A caller waits for its time with `tokio::time::sleep_until`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// At most `requests` grants in any window of length `per`: the rate limit of
/// [`ClientBuilder::rate_limit`](crate::ClientBuilder::rate_limit), public so that other
/// transports (tollgate-reqwest) share the same logic. Share one limiter (in an `Arc`) between
/// everything that spends the same budget.
#[derive(Debug)]
pub struct RateLimiter {
    requests: usize,
    per: Duration,
    /// The times of the last (at most) `requests` grants, ascending; some may lie ahead.
    granted: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// At most `requests` grants (at least one) in any window of length `per`.
    pub fn new(requests: u32, per: Duration) -> Self {
        Self {
            requests: usize::try_from(requests).unwrap_or(usize::MAX).max(1),
            per,
            granted: Mutex::new(VecDeque::new()),
        }
    }

    /// Reserves the earliest time a request may start, at `now` or later; `None` (nothing
    /// reserved) when that time is after `latest`.
    ///
    /// Wait for the returned time with `tokio::time::sleep_until` before starting the request.
    pub fn reserve(&self, now: Instant, latest: Option<Instant>) -> Option<Instant> {
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
