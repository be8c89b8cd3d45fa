//! Helpers shared by tollgate's tests, in one place: free loopback ports, the outside programs
//! tests start themselves (`redis-server`, Debian's `chromium`, `php-cli`; see [`programs`]),
//! and [`LogCapture`] for asserting on log output.
//!
//! Not published. It depends on no tollgate crate, so every crate's unit and integration tests
//! may take it as a dev-dependency.
#![forbid(unsafe_code)]
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

pub mod programs;

pub use programs::*;

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::subscriber::DefaultGuard;

/// Everything `tracing` writes while it is installed, as text, for asserting on log output
/// (codes logged, secrets not logged).
///
/// ```
/// let logs = tollgate_test_support::LogCapture::new();
/// {
///     let _guard = logs.install();
///     tracing::warn!(target: "tollgate", code = "replayed", "refused");
/// }
/// assert!(logs.text().contains("code=\"replayed\""));
/// ```
#[derive(Clone, Debug, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs a subscriber writing into this capture (every level, no colours) for the
    /// current thread, until the guard is dropped.
    ///
    /// Other tests of the binary run on other threads without a subscriber, and one of them
    /// may have cached a callsite as uninteresting; the interest cache is rebuilt so events
    /// of this thread are seen.
    #[must_use = "the capture stops when the guard is dropped"]
    pub fn install(&self) -> DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        guard
    }

    /// Runs `f` with the capture installed, returning its result.
    pub fn during<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.install();
        f()
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// Forgets what was written so far.
    pub fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
