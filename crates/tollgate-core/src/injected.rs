//! [`InjectedHeaders`]: the request extension naming headers the backend set itself.

use http::{Extensions, HeaderName};

/// The names of the headers that backend layers (tollgate-headers' `SecretHeader` and
/// `TokenHeader`, tollgate-client-ip's `ForwardUserIp`) set on an outbound request, kept in
/// the request's extensions.
///
/// tollgate-headers' `HeaderHygiene` never removes or substitutes a header named here, so a
/// backend-owned header survives hygiene whichever way the layers are stacked (including
/// `Connection: x-api-key` tricks and allowlist mode), while a copy of the same header sent
/// by the caller is removed. It lives in tollgate-core so that every crate's layers record
/// into one type. Another layer that sets a backend-owned header records it with
/// [`InjectedHeaders::record`].
///
/// ```
/// use http::{HeaderName, Request};
/// use tollgate_core::InjectedHeaders;
///
/// let mut request = Request::new(());
/// InjectedHeaders::record(request.extensions_mut(), HeaderName::from_static("x-user-ip"));
/// let injected = request.extensions().get::<InjectedHeaders>().unwrap();
/// assert!(injected.contains(&HeaderName::from_static("x-user-ip")));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InjectedHeaders {
    names: Vec<HeaderName>,
}

impl InjectedHeaders {
    /// Adds `name` to the request's `InjectedHeaders` (creating it if needed).
    pub fn record(extensions: &mut Extensions, name: HeaderName) {
        match extensions.get_mut::<Self>() {
            Some(injected) => {
                if !injected.names.contains(&name) {
                    injected.names.push(name);
                }
            }
            None => {
                extensions.insert(Self { names: vec![name] });
            }
        }
    }

    /// Adds every name of `names` (as [`record`](Self::record) would, one by one), with room
    /// made once: a layer that sets several headers records them with one allocation.
    ///
    /// ```
    /// use http::{Extensions, HeaderName};
    /// use tollgate_core::InjectedHeaders;
    ///
    /// let mut extensions = Extensions::new();
    /// InjectedHeaders::record_all(
    ///     &mut extensions,
    ///     [HeaderName::from_static("x-a"), HeaderName::from_static("x-b")],
    /// );
    /// let injected = extensions.get::<InjectedHeaders>().unwrap();
    /// assert_eq!(injected.names(), ["x-a", "x-b"]);
    /// ```
    pub fn record_all<I>(extensions: &mut Extensions, names: I)
    where
        I: IntoIterator<Item = HeaderName>,
        I::IntoIter: ExactSizeIterator,
    {
        let names = names.into_iter();
        match extensions.get_mut::<Self>() {
            Some(injected) => {
                injected.names.reserve(names.len());
                for name in names {
                    if !injected.names.contains(&name) {
                        injected.names.push(name);
                    }
                }
            }
            None => {
                let mut recorded = Vec::with_capacity(names.len());
                for name in names {
                    if !recorded.contains(&name) {
                        recorded.push(name);
                    }
                }
                extensions.insert(Self { names: recorded });
            }
        }
    }

    /// The recorded names, in the order they were recorded.
    pub fn names(&self) -> &[HeaderName] {
        &self.names
    }

    /// Whether `name` was recorded.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.names.contains(name)
    }
}
