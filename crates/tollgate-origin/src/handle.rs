//! [`OriginsHandle`]: the allowed origins of a running layer, swappable.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::error::ConfigError;
use crate::origin::AllowedOrigin;

/// The allowed origins of an [`OriginAllowlistLayer`](crate::OriginAllowlistLayer) built with
/// [`build_swappable`](crate::OriginAllowlistBuilder::build_swappable): replace them while the
/// service runs (a new front-end origin, one retired) without rebuilding the stack.
///
/// - **Store validates as build does.** [`store`](Self::store) parses the list with the
///   builder's rules (the same [`AllowedOrigin::parse`], the layer's
///   [`allow_http_origins`](crate::OriginAllowlistBuilder::allow_http_origins) setting, an
///   empty list refused) and fails with the same [`ConfigError`] `build` would; the current
///   list then stays.
/// - **One version per request.** The layer loads the list once per request, without
///   locking; a stored list applies from the next request on.
/// - `Clone` shares the cell; `Debug` prints the current list.
///
/// ```
/// use tollgate_origin::{ConfigError, OriginAllowlistLayer};
///
/// let (layer, origins) = OriginAllowlistLayer::builder()
///     .allow_origin("https://app.example.com")
///     .build_swappable()?;
/// origins.store(["https://app.example.com", "https://checkout.example.com"])?;
/// assert_eq!(layer.allowed_origins().len(), 2);
///
/// // Refused as `build` refuses it; the list in place stays.
/// assert_eq!(origins.store(["*"]).unwrap_err(), ConfigError::AnyOrigin);
/// assert!(matches!(origins.store(["http://app.example.com"]), Err(ConfigError::HttpNotEnabled { .. })));
/// assert_eq!(origins.store(Vec::<String>::new()).unwrap_err(), ConfigError::NoOrigins);
/// assert_eq!(origins.load().len(), 2);
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone)]
pub struct OriginsHandle {
    cell: Arc<ArcSwap<Vec<AllowedOrigin>>>,
    allow_http: bool,
}

impl OriginsHandle {
    pub(crate) fn new(origins: Vec<AllowedOrigin>, allow_http: bool) -> Self {
        Self {
            cell: Arc::new(ArcSwap::from_pointee(origins)),
            allow_http,
        }
    }

    /// The current list (canonical, in the order given, duplicates removed).
    pub fn load(&self) -> Arc<[AllowedOrigin]> {
        Arc::from(self.cell.load().as_slice())
    }

    /// Replaces the allowed origins: validated and canonicalised exactly as
    /// [`build`](crate::OriginAllowlistBuilder::build) does, or the same [`ConfigError`]
    /// and no change.
    pub fn store<I>(&self, origins: I) -> Result<(), ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let origins: Vec<String> = origins.into_iter().map(Into::into).collect();
        let parsed = parse_origins(&origins, self.allow_http)?;
        self.cell.store(Arc::new(parsed));
        Ok(())
    }

    /// Runs `f` with one version of the list (loaded once, without locking).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&[AllowedOrigin]) -> R) -> R {
        f(&self.cell.load())
    }
}

impl fmt::Debug for OriginsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OriginsHandle")
            .field(&**self.cell.load())
            .finish()
    }
}

/// The allowed origins of a layer: fixed when built, or a handle.
#[derive(Clone)]
pub(crate) enum Origins {
    Fixed(Arc<[AllowedOrigin]>),
    Live(OriginsHandle),
}

impl Origins {
    /// Runs `f` with one version of the list.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&[AllowedOrigin]) -> R) -> R {
        match self {
            Self::Fixed(origins) => f(origins),
            Self::Live(handle) => handle.with(f),
        }
    }

    /// The list now.
    pub(crate) fn current(&self) -> Arc<[AllowedOrigin]> {
        match self {
            Self::Fixed(origins) => Arc::clone(origins),
            Self::Live(handle) => handle.load(),
        }
    }
}

impl fmt::Debug for Origins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with(|origins| f.debug_list().entries(origins).finish())
    }
}

/// The origins of a configuration, parsed, deduplicated, never empty: the one check of
/// `build` and [`OriginsHandle::store`].
pub(crate) fn parse_origins(
    origins: &[String],
    allow_http: bool,
) -> Result<Vec<AllowedOrigin>, ConfigError> {
    let mut parsed: Vec<AllowedOrigin> = Vec::with_capacity(origins.len());
    for origin in origins {
        let origin = AllowedOrigin::parse(origin, allow_http)?;
        if !parsed.contains(&origin) {
            parsed.push(origin);
        }
    }
    if parsed.is_empty() {
        return Err(ConfigError::NoOrigins);
    }
    Ok(parsed)
}
