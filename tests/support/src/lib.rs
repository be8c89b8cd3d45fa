//! Helpers shared by tollgate's tests, in one place: free loopback ports, the outside programs
//! tests start themselves (`redis-server`, Debian's `chromium`, `php-cli`; see [`programs`]),
//! and [`LogCapture`] for asserting on log output.
//!
//! Not published. It depends on no tollgate crate, so every crate's unit and integration tests
//! may take it as a dev-dependency.
#![forbid(unsafe_code)]
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

pub mod programs;
pub mod secrets;
pub mod tls;
pub mod trace_log;

pub use programs::*;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The shared signing vectors (`shared/vectors/signing.json`, beside the repository), or
/// `None` with a skip notice naming `test` when the file is absent.
pub fn signing_vectors(test: &str) -> Option<serde_json::Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/signing.json"
    );
    match std::fs::read_to_string(path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("signing.json is JSON")),
        Err(_) => {
            println!("SKIPPED {test}: shared/vectors/signing.json is not beside the repository");
            None
        }
    }
}

/// Polls `future` to completion with a no-op waker (for futures that never wait on I/O), then
/// twice more, asserting both are `Pending`: a finished tollgate future never answers again.
pub fn poll_to_completion_then_pending<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    let mut future = pin!(future);
    let output = loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            break output;
        }
    };
    assert!(future.as_mut().poll(&mut cx).is_pending());
    assert!(future.as_mut().poll(&mut cx).is_pending());
    output
}

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
        crate::trace_log::init();
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
