//! Request timestamps: the digits-only parse and the two-sided window every verifier uses.
//!
//! The providers' rule: a request carries its creation time in Unix seconds, and the server
//! accepts it only within ±5 minutes of its own clock. tollgate parses the value strictly (ASCII
//! digits only: no sign, no spaces, no fraction, no overflow) and checks `|now - ts| <=
//! tolerance`, inclusive on both sides.

use std::fmt;
use std::time::Duration;

use crate::rejection::{Rejection, code};

/// The default tolerance: 300 seconds either side of the server's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a timestamp was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimestampError {
    /// Not an unsigned base-10 integer of seconds that fits in a `u64`: answer 400.
    Malformed,
    /// Older than the tolerance allows: answer 401.
    TooOld {
        /// How many seconds older than `now` the timestamp is.
        age: u64,
    },
    /// Further ahead than the tolerance allows: answer 401. Milliseconds sent where
    /// seconds are expected land here.
    InFuture {
        /// How many seconds ahead of `now` the timestamp is.
        ahead: u64,
    },
}

impl TimestampError {
    /// 400 `timestamp_malformed` or 401 `timestamp_out_of_window`.
    pub fn to_rejection(&self) -> Rejection {
        match self {
            Self::Malformed => Rejection::from_code(code::TIMESTAMP_MALFORMED),
            Self::TooOld { .. } => {
                Rejection::from_code(code::TIMESTAMP_OUT_OF_WINDOW).with_detail("too old")
            }
            Self::InFuture { .. } => Rejection::from_code(code::TIMESTAMP_OUT_OF_WINDOW)
                .with_detail("too far in the future"),
        }
    }
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("timestamp is not Unix seconds as ASCII digits"),
            Self::TooOld { age } => write!(f, "timestamp is {age} s old"),
            Self::InFuture { ahead } => write!(f, "timestamp is {ahead} s in the future"),
        }
    }
}

impl std::error::Error for TimestampError {}

/// Parses Unix seconds: one or more ASCII digits and nothing else, fitting in a `u64`, in
/// their one decimal spelling (no leading zero but in `0` itself).
///
/// One time has one spelling, so a signature over the timestamp text authorises one time text:
/// where a scheme signs body and timestamp without a separator, `…amount=100` + `1700000000`
/// and `…amount=1` + `001700000000` would otherwise sign the same bytes for the same time.
///
/// ```
/// use tollgate_core::timestamp::{parse_unix_seconds, TimestampError};
///
/// assert_eq!(parse_unix_seconds(b"1700000000"), Ok(1_700_000_000));
/// assert_eq!(parse_unix_seconds(b"0"), Ok(0));
/// for bad in [&b"+1700000000"[..], b" 1700000000", b"1700000000.0", b"-1", b"", b"99999999999999999999", b"01700000000", b"00"] {
///     assert_eq!(parse_unix_seconds(bad), Err(TimestampError::Malformed));
/// }
/// ```
pub fn parse_unix_seconds(value: &[u8]) -> Result<u64, TimestampError> {
    if value.is_empty() || (value.len() > 1 && value[0] == b'0') {
        return Err(TimestampError::Malformed);
    }
    value.iter().try_fold(0u64, |acc, &byte| {
        if !byte.is_ascii_digit() {
            return Err(TimestampError::Malformed);
        }
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(u64::from(byte - b'0')))
            .ok_or(TimestampError::Malformed)
    })
}

/// The accepted window around the server's clock: `|now - ts| <= tolerance`.
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::timestamp::{TimestampError, TimestampWindow};
///
/// let window = TimestampWindow::default(); // ±300 s
/// assert!(window.check(1_700_000_000, 1_700_000_300).is_ok());
/// assert_eq!(window.check(1_700_000_000, 1_700_000_301), Err(TimestampError::TooOld { age: 301 }));
/// assert_eq!(window.check(1_700_000_301, 1_700_000_000), Err(TimestampError::InFuture { ahead: 301 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampWindow {
    tolerance: u64,
}

impl TimestampWindow {
    /// A window of `tolerance` either side (whole seconds; sub-second parts are dropped).
    pub fn new(tolerance: Duration) -> Self {
        Self {
            tolerance: tolerance.as_secs(),
        }
    }

    /// The tolerance in seconds.
    pub fn tolerance_secs(&self) -> u64 {
        self.tolerance
    }

    /// Whether `timestamp` is within the window around `now` (both Unix seconds).
    pub fn check(&self, timestamp: u64, now: u64) -> Result<(), TimestampError> {
        if timestamp <= now {
            let age = now - timestamp;
            if age > self.tolerance {
                return Err(TimestampError::TooOld { age });
            }
        } else {
            let ahead = timestamp - now;
            if ahead > self.tolerance {
                return Err(TimestampError::InFuture { ahead });
            }
        }
        Ok(())
    }

    /// [`parse_unix_seconds`] then [`check`](TimestampWindow::check); returns the timestamp.
    pub fn parse_and_check(&self, value: &[u8], now: u64) -> Result<u64, TimestampError> {
        let timestamp = parse_unix_seconds(value)?;
        self.check(timestamp, now)?;
        Ok(timestamp)
    }

    /// The last second at which a request stamped `timestamp` is still inside the window:
    /// `timestamp + tolerance`. A nonce claimed for that request must be kept until then
    /// (and no longer is needed: after it, the window refuses the request anyway).
    pub fn last_valid_second(&self, timestamp: u64) -> u64 {
        timestamp.saturating_add(self.tolerance)
    }
}

impl Default for TimestampWindow {
    fn default() -> Self {
        Self::new(DEFAULT_TOLERANCE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_only() {
        assert_eq!(parse_unix_seconds(b"0"), Ok(0));
        assert_eq!(parse_unix_seconds(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [
            &b"18446744073709551616"[..],
            b"+1700000000",
            b" 1700000000",
            b"1700000000 ",
            b"1700000000.0",
            b"1.7e9",
            b"-1",
            b"",
            b"0x10",
            "１７".as_bytes(),
        ] {
            assert_eq!(
                parse_unix_seconds(bad),
                Err(TimestampError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn window_edges_from_the_vectors() {
        let w = TimestampWindow::default();
        assert_eq!(
            w.parse_and_check(b"1700000000", 1_700_000_300),
            Ok(1_700_000_000)
        );
        assert_eq!(
            w.parse_and_check(b"1700000000", 1_700_000_301),
            Err(TimestampError::TooOld { age: 301 })
        );
        assert_eq!(
            w.parse_and_check(b"1700000300", 1_700_000_000),
            Ok(1_700_000_300)
        );
        assert_eq!(
            w.parse_and_check(b"1700000301", 1_700_000_000),
            Err(TimestampError::InFuture { ahead: 301 })
        );
        assert_eq!(
            w.parse_and_check(b"-1", 1_700_000_000),
            Err(TimestampError::Malformed)
        );
        // Milliseconds where seconds are expected: far in the future.
        assert!(matches!(
            w.parse_and_check(b"1700000000000", 1_700_000_000),
            Err(TimestampError::InFuture { .. })
        ));
    }

    #[test]
    fn rejections() {
        let r = TimestampError::Malformed.to_rejection();
        assert_eq!(
            (r.status().as_u16(), r.code()),
            (400, "timestamp_malformed")
        );
        let r = TimestampError::TooOld { age: 301 }.to_rejection();
        assert_eq!(
            (r.status().as_u16(), r.code()),
            (401, "timestamp_out_of_window")
        );
        assert_eq!(
            TimestampWindow::new(Duration::from_secs(60)).last_valid_second(100),
            160
        );
    }
}
