//! What both layers are configured with: the scheme, the clock and the body limit.

use std::fmt;
use std::sync::Arc;

use tollgate_core::{DEFAULT_BODY_LIMIT, SharedClock, SystemClock};

use crate::scheme::Scheme;

/// The settings [`SignRequestLayer`](crate::SignRequestLayer) and
/// [`VerifySignatureLayer`](crate::VerifySignatureLayer) share, with their defaults: the
/// system clock and a 1 MiB body limit.
#[derive(Clone)]
pub(crate) struct Common {
    pub(crate) scheme: Arc<dyn Scheme>,
    pub(crate) clock: SharedClock,
    pub(crate) limit: usize,
}

impl Common {
    pub(crate) fn new(scheme: impl Scheme) -> Self {
        Self {
            scheme: Arc::new(scheme),
            clock: Arc::new(SystemClock),
            limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Writes the shared fields into a layer's `Debug`.
    pub(crate) fn debug_fields(&self, out: &mut fmt::DebugStruct<'_, '_>) {
        out.field("scheme", &self.scheme)
            .field("clock", &self.clock)
            .field("limit", &self.limit);
    }
}

/// The setters of [`Common`]'s settings, written once for both layers (each holds its
/// configuration as `config: Arc<_>` with a `common: Common` field, copied on write).
macro_rules! common_setters {
    () => {
        /// Reads the time from `clock` (tests pass a `ManualClock`).
        pub fn clock(mut self, clock: impl tollgate_core::Clock) -> Self {
            std::sync::Arc::make_mut(&mut self.config).common.clock = std::sync::Arc::new(clock);
            self
        }

        /// Sets the body limit in bytes (default 1 MiB).
        pub fn body_limit(mut self, limit: usize) -> Self {
            std::sync::Arc::make_mut(&mut self.config).common.limit = limit;
            self
        }
    };
}
pub(crate) use common_setters;
