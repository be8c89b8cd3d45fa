//! A minimal single-thread executor for futures that are (almost) always ready.
//!
//! Benchmarks of tower services poll their futures here instead of in a Tokio runtime, so
//! a runtime's scheduling cost is not added to a layer's cost.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls futures on the current thread, parking it while a future is pending.
#[derive(Debug, Clone)]
pub struct Executor {
    waker: Waker,
}

impl Executor {
    /// An executor for the current thread (use it on that thread only).
    pub fn new() -> Self {
        Self {
            waker: Waker::from(Arc::new(Unpark(thread::current()))),
        }
    }

    /// Runs `future` to completion.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(&self.waker);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            thread::park();
        }
    }
}

impl Default for Executor {
    fn default() -> Self {
        Self::new()
    }
}
